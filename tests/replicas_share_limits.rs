//! Rate limits and login backoffs shared by replicas through Redis: two
//! in-process servers on one `redis-server` of the test's own give an
//! attacker one budget, not two. Each server has its own store, so what
//! they share here is Redis alone. And when Redis stops answering, every
//! limit still holds, counted in the process.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// A server counting its limits in `redis`, trusting X-Forwarded-For so a
/// test can speak from several client addresses, with a long first login
/// wait.
async fn replica(redis: &Redis, address_failures: u32) -> Server {
    let url = redis.url();
    Server::start_with(move |c| {
        c.redis = Some(url.clone());
        c.trust_proxy = true;
        c.login.backoff_base = Duration::from_secs(60);
        c.login.address_failures = address_failures;
    })
    .await
}

async fn login_from(s: &Server, ip: &str, email: &str, password: &str) -> Resp {
    s.request(
        "POST",
        "/api/auth/login",
        None,
        &[("x-forwarded-for", ip)],
        Body::Json(json!({ "email": email, "password": password })),
    )
    .await
}

async fn register_from(s: &Server, ip: &str, email: &str) -> Resp {
    s.request(
        "POST",
        "/api/auth/register",
        None,
        &[("x-forwarded-for", ip)],
        Body::Json(json!({ "email": email, "password": PASSWORD, "name": "Someone" })),
    )
    .await
}

/// Every key the limiters left in `redis`.
async fn limit_keys(redis: &Redis) -> Vec<String> {
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis-server");
    redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("KEYS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_failures_on_one_replica_back_off_the_source_on_the_other() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis, 100).await, replica(&redis, 100).await);
    a.register("Ada", "ada@example.com").await;
    b.register("Ada", "ada@example.com").await;
    const ATTACKER: &str = "203.0.113.7";
    // Five failures, spread over both replicas: the fifth imposes a wait.
    for (i, s) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        login_from(s, ATTACKER, "ada@example.com", &format!("guess {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    // Each replica alone saw fewer than five; together they saw five.
    for s in [&a, &b] {
        let r = login_from(s, ATTACKER, "ada@example.com", PASSWORD).await;
        r.expect_error(429, "rate_limited");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((50..=60).contains(&wait), "Retry-After {wait}");
    }
    // The owner elsewhere is not affected, on either replica.
    login_from(&b, "198.51.100.20", "ada@example.com", PASSWORD)
        .await
        .expect(200);

    // What Redis holds: prefixed keys, and no e-mail address in clear.
    let keys = limit_keys(&redis).await;
    let ours: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("coform:rl:"))
        .collect();
    assert!(
        ours.iter().any(|k| k.contains(ATTACKER)),
        "no backoff key for the attacker in {keys:?}"
    );
    for key in &ours {
        assert!(!key.contains("ada") && !key.contains("example"), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_success_on_one_replica_starts_the_count_over_on_the_other() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis, 100).await, replica(&redis, 100).await);
    a.register("Ada", "ada@example.com").await;
    b.register("Ada", "ada@example.com").await;
    const ME: &str = "198.51.100.20";
    for i in 0..4 {
        login_from(&a, ME, "ada@example.com", &format!("typo {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    login_from(&b, ME, "ada@example.com", PASSWORD)
        .await
        .expect(200);
    // Four more failures on A are free again: the success on B reset them.
    for i in 0..4 {
        login_from(&a, ME, "ada@example.com", &format!("typo again {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    login_from(&a, ME, "ada@example.com", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_at_one_address_add_up_across_replicas_and_sources() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis, 4).await, replica(&redis, 4).await);
    b.register("Bob", "bob@example.com").await;
    // Four sources, two failures on each replica: the address's budget.
    for (i, s) in [&a, &b, &a, &b].into_iter().enumerate() {
        login_from(s, &format!("192.0.2.{i}"), "ada@example.com", "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    for s in [&a, &b] {
        login_from(s, "192.0.2.200", "ada@example.com", "guess")
            .await
            .expect_error(429, "rate_limited");
    }
    // Another address is not affected.
    login_from(&b, "192.0.2.200", "bob@example.com", PASSWORD)
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ups_from_one_address_share_one_budget_across_replicas() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis, 100).await, replica(&redis, 100).await);
    const SOURCE: &str = "203.0.113.50";
    // Ten sign-ups an hour from one address, wherever they land.
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        register_from(s, SOURCE, &format!("user{i}@example.com"))
            .await
            .expect(201);
    }
    for s in [&a, &b] {
        register_from(s, SOURCE, "one-more@example.com")
            .await
            .expect_error(429, "rate_limited");
    }
    // Another address still signs up.
    register_from(&b, "203.0.113.51", "other@example.com")
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_down_each_replica_still_limits_on_its_own() {
    let mut redis = Redis::start();
    let s = replica(&redis, 100).await;
    s.register("Ada", "ada@example.com").await;
    // One answer through Redis first, so the connection exists when Redis
    // goes away.
    login_from(&s, "198.51.100.20", "ada@example.com", PASSWORD)
        .await
        .expect(200);
    redis.stop();

    const ATTACKER: &str = "203.0.113.7";
    for i in 0..5 {
        login_from(&s, ATTACKER, "ada@example.com", &format!("guess {i}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    login_from(&s, ATTACKER, "ada@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    // Not a lockout: the owner from elsewhere signs in.
    login_from(&s, "198.51.100.20", "ada@example.com", PASSWORD)
        .await
        .expect(200);
    // Sign-ups are limited too.
    for i in 0..10 {
        register_from(&s, ATTACKER, &format!("user{i}@example.com"))
            .await
            .expect(201);
    }
    register_from(&s, ATTACKER, "one-more@example.com")
        .await
        .expect_error(429, "rate_limited");
}
