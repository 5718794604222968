//! Several `coform` processes sharing one MongoDB-protocol store
//! (SecantusDB) and one Redis: clients on different replicas see each
//! other's edits and presence; a replica killed with SIGKILL leaves no
//! ghosts and loses nothing anyone received; a Redis restart heals; a late
//! replica catches up. Everything runs as real processes on loopback.

mod support;

use std::time::{Duration, Instant};

use support::{
    http_get, map_keys, metrics, wait_metric, within, MongoServer, ProcessServer, Redis, WsClient,
    TIMEOUT,
};

async fn replica(store: &str, redis: &Redis) -> ProcessServer {
    ProcessServer::start(&[
        "--store",
        store,
        "--redis",
        &redis.url(),
        "--room-grace",
        "1s",
    ])
    .await
}

/// Two replicas and a client of the form on each.
async fn two_replicas(
    store: &str,
    redis: &Redis,
) -> (ProcessServer, ProcessServer, WsClient, WsClient) {
    let (r1, r2) = (replica(store, redis).await, replica(store, redis).await);
    let a = WsClient::connect(r1.addr, "form", "a@r1").await;
    let b = WsClient::connect(r2.addr, "form", "b@r2").await;
    (r1, r2, a, b)
}

fn has_user(client: &WsClient, other: u64) -> bool {
    client
        .awareness_of(other)
        .is_some_and(|(_, json)| json != "null")
}

async fn wait_presence(client: &WsClient, other: u64, present: bool, timeout: Duration) {
    client
        .wait_state_within(
            &format!("presence of {other} to be {present}"),
            timeout,
            |s| {
                s.awareness
                    .get(&other)
                    .is_some_and(|(_, json)| (json != "null") == present)
                    || (!present && !s.awareness.contains_key(&other))
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_and_three_replicas_converge_and_see_each_other() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let (r1, r2, a, b) = two_replicas(&store, &redis).await;
    a.set_key("notes", "from-a", "1").await;
    b.set_key("notes", "from-b", "2").await;
    for c in [&a, &b] {
        c.wait_map_len("notes", 2).await;
    }

    // Presence crosses replicas and disappears when its client leaves.
    a.set_awareness(1, r#"{"user":{"name":"A"}}"#).await;
    wait_presence(&b, a.client_id(), true, TIMEOUT).await;
    assert!(has_user(&b, a.client_id()));
    a.close().await;
    wait_presence(&b, a.client_id(), false, Duration::from_secs(5)).await;

    // A third replica joins the same document.
    let r3 = replica(&store, &redis).await;
    let c = WsClient::connect(r3.addr, "form", "c@r3").await;
    c.wait_map_len("notes", 2).await;
    c.set_key("notes", "from-c", "3").await;
    b.wait_has_key("notes", "from-c").await;
    drop((r1, r2, r3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_leaves_no_ghosts_and_loses_nothing_received() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let (mut r1, r2, a, b) = two_replicas(&store, &redis).await;
    a.set_awareness(1, r#"{"user":{"name":"A"}}"#).await;
    wait_presence(&b, a.client_id(), true, TIMEOUT).await;

    // A edits on r1 while r1 is killed mid-stream.
    for i in 0..50 {
        a.set_key("notes", &format!("a{i}"), "x").await;
    }
    b.wait_until("some of a's edits", TIMEOUT, |d| {
        !map_keys(d, "notes").is_empty()
    })
    .await;
    r1.kill9().await;
    let killed = Instant::now();
    let seen_by_b = b.map_keys("notes");

    // Its client's presence goes from the other replica within the
    // heartbeat bound (TTL 3 s, checked every second).
    wait_presence(&b, a.client_id(), false, Duration::from_secs(8)).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(8), "ghost lasted {took:?}");

    // A reconnects to the surviving replica with its document and catches
    // up; nothing that b had received is missing there.
    let a = a.reconnect(r2.addr).await;
    a.wait_synced().await;
    let fresh = WsClient::connect(r2.addr, "form", "fresh@r2").await;
    fresh
        .wait_until("every edit b had received", TIMEOUT, |d| {
            let keys = map_keys(d, "notes");
            seen_by_b.iter().all(|k| keys.contains(k))
        })
        .await;
    // And a's own edits, which it still holds, reach everyone again.
    let all_a = a.map_keys("notes");
    b.wait_until("all of a's edits after its reconnect", TIMEOUT, |d| {
        let keys = map_keys(d, "notes");
        all_a.iter().all(|k| keys.contains(k))
    })
    .await;
    assert_eq!(all_a.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_after_redis_restarts_mid_editing() {
    let store = MongoServer::shared().fresh_database_url();
    let mut redis = Redis::start();
    let (r1, _r2, a, b) = two_replicas(&store, &redis).await;
    a.set_key("notes", "before", "1").await;
    b.wait_has_key("notes", "before").await;
    assert_eq!(metrics(r1.addr).await.get("coform_redis_connected"), 1.0);

    redis.stop();
    // Each replica keeps serving its own clients while Redis is down.
    within(TIMEOUT, "readyz to report redis down", async {
        loop {
            let (status, body) = http_get(r1.addr, "/readyz").await;
            if status == 200 && body.contains(r#""redis":"down""#) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The gauge the Redis alert watches says so too.
    assert_eq!(metrics(r1.addr).await.get("coform_redis_connected"), 0.0);
    for i in 0..20 {
        a.set_key("notes", &format!("during-a{i}"), "x").await;
        b.set_key("notes", &format!("during-b{i}"), "y").await;
    }
    redis.spawn();

    // No client action: the replicas heal from the store once Redis is back.
    for c in [&a, &b] {
        c.wait_map_len("notes", 41).await;
    }
    a.set_key("notes", "after", "1").await;
    b.wait_has_key("notes", "after").await;
    wait_metric(r1.addr, "coform_redis_connected", TIMEOUT, |v| v == 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_joins_late_loads_and_catches_up() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let r1 = replica(&store, &redis).await;
    let a = WsClient::connect(r1.addr, "form", "a@r1").await;
    for i in 0..30 {
        a.set_key("notes", &format!("k{i}"), "v").await;
    }
    a.round_trip().await;
    let r2 = replica(&store, &redis).await;
    let b = WsClient::connect(r2.addr, "form", "b@r2").await;
    b.wait_map_len("notes", 30).await;
    a.set_key("notes", "live", "1").await;
    b.wait_has_key("notes", "live").await;
}

/// A component map: its fields as plain values.
fn component(fields: &[(&str, yrs::Any)]) -> yrs::MapPrelim {
    fields
        .iter()
        .map(|(k, v)| (k.to_string(), yrs::In::Any(v.clone())))
        .collect()
}

/// Raw Yjs clients on two replicas write what the form model refuses: an
/// unknown component type, a field of the wrong type, and two edits that
/// are each valid but not together (one moves a component into a section,
/// the other, on the other replica, deletes that section). Every replica
/// and client converges on a valid form, and nothing valid is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_that_break_the_form_are_repaired_on_every_replica() {
    use yrs::{Any, Map, Out, WriteTxn};
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let (r1, r2, a, b) = two_replicas(&store, &redis).await;
    a.edit(|txn| {
        let comps = txn.get_or_insert_map("components");
        let s = [
            ("id", Any::from("s")),
            ("type", Any::from("section")),
            ("label", Any::from("Section")),
            ("index", Any::from("a0")),
        ];
        comps.insert(txn, "s", component(&s));
        let name = [
            ("id", Any::from("name")),
            ("type", Any::from("text")),
            ("label", Any::from("Name")),
            ("index", Any::from("a1")),
        ];
        comps.insert(txn, "name", component(&name));
    })
    .await;
    b.wait_has_key("components", "name").await;

    // An unknown type and a mistyped label, from a client on replica 1.
    a.edit(|txn| {
        let comps = txn.get_or_insert_map("components");
        let bad = [
            ("id", Any::from("bad")),
            ("type", Any::from("hologram")),
            ("index", Any::from("a2")),
        ];
        comps.insert(txn, "bad", component(&bad));
        if let Some(Out::YMap(name)) = comps.get(txn, "name") {
            name.insert(txn, "label", 42.0);
        }
    })
    .await;
    a.set_key_seen_by(&b, "meta", "marker", "1").await;
    for c in [&a, &b] {
        let doc = c.json();
        assert!(doc["components"].get("bad").is_none(), "{doc}");
        assert_eq!(doc["components"]["name"]["label"], "Name", "{doc}");
        assert!(coform_model::validate(&doc).is_ok(), "{doc}");
    }

    // Valid alone, invalid together, on two replicas at once.
    let move_in = a.edit_local(|txn| {
        let comps = txn.get_or_insert_map("components");
        if let Some(Out::YMap(name)) = comps.get(txn, "name") {
            name.insert(txn, "parent", "s");
        }
    });
    let delete = b.edit_local(|txn| {
        txn.get_or_insert_map("components").remove(txn, "s");
    });
    a.send_update(move_in).await;
    b.send_update(delete).await;
    let settled = |c: &WsClient| {
        let doc = c.json();
        doc["components"].get("s").is_none()
            && doc["components"]["name"]["parent"].is_null()
            && coform_model::validate(&doc).is_ok()
    };
    for c in [&a, &b] {
        c.wait_doc("the orphan back at the top level", |_| settled(c))
            .await;
    }
    assert_eq!(a.json(), b.json());
    // A late client on each replica loads the same valid form.
    for r in [&r1, &r2] {
        let late = WsClient::connect(r.addr, "form", "late").await;
        assert_eq!(late.json(), a.json());
    }
    let repaired = metrics(r1.addr)
        .await
        .get("coform_schema_repaired_updates_total")
        + metrics(r2.addr)
            .await
            .get("coform_schema_repaired_updates_total");
    assert!(repaired >= 2.0, "{repaired}");
}

/// The value of `name` with the label `via="<via>"` (0 when absent).
fn heals(m: &support::Metrics, via: &str) -> f64 {
    m.series
        .iter()
        .filter(|(n, labels, _)| n == "coform_bus_heals_total" && labels.contains(via))
        .map(|(_, _, v)| v)
        .sum()
}

/// A connection to the suite's Redis, for what the tests do behind the
/// replicas' backs.
async fn redis_conn(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// Publishes, on `doc`'s channel, a heal hint in the name of `replica`:
/// "I failed to publish updates of this document".
async fn hint_as(redis: &Redis, doc: &str, replica: &str) {
    use coform_collab::bus::{BusKind, BusMessage};
    let raw = BusMessage {
        kind: BusKind::Heal,
        replica: replica.into(),
        seq: 1,
        payload: Default::default(),
    }
    .encode();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(format!("coform:doc:{doc}"))
        .arg(raw.as_ref())
        .query_async(&mut redis_conn(redis).await)
        .await
        .expect("PUBLISH");
    assert!(receivers >= 1, "no replica listens on {doc}'s channel");
}

/// An update whose publish fails on the way is not lost to the other
/// replica, and healing it costs one exchange with the replica that made
/// it: no store read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_publish_is_healed_by_asking_the_replica_that_made_it() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let (r1, r2, a, b) = two_replicas(&store, &redis).await;
    a.set_key_seen_by(&b, "notes", "before", "1").await;

    let before = metrics(r2.addr).await;
    // Cut the connection replica 1 publishes on (its name says whose it
    // is); its subscription stays up, so no reconnect heals.
    let mut conn = redis_conn(&redis).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    let pid = format!("-{}-", r1.pid());
    let publisher = clients
        .lines()
        .find(|l| l.contains(" name=coform:publish:") && l.contains(&pid))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .unwrap_or_else(|| panic!("no publishing connection of replica 1:\n{clients}"));
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(publisher)
        .query_async(&mut conn)
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);

    // This update's publish fails; replica 1 says so once Redis answers,
    // and replica 2 asks it for what it lacks.
    a.set_key("notes", "lost on the way", "1").await;
    b.wait_has_key("notes", "lost on the way").await;
    let m = metrics(r2.addr).await;
    assert!(
        heals(&m, "exchange") > heals(&before, "exchange"),
        "{}",
        m.raw
    );
    assert_eq!(
        heals(&m, "store"),
        heals(&before, "store"),
        "healed from the store:\n{}",
        m.raw
    );
    // The bus works as before afterwards.
    a.set_key_seen_by(&b, "notes", "after", "1").await;
}

/// When the replica asked does not answer (it unloaded the document, or
/// is not there at all), the room heals from the store instead: here an
/// update stored by a replica that is not on the bus reaches the other
/// replica's client only that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heal_nobody_answers_falls_back_to_the_store() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let r2 = replica(&store, &redis).await;
    let b = WsClient::connect(r2.addr, "form", "b@r2").await;
    b.set_key("notes", "b", "1").await;
    b.round_trip().await;
    // A replica without Redis stores an update no other replica hears of.
    let offbus = ProcessServer::start(&["--store", &store, "--room-grace", "1s"]).await;
    let c = WsClient::connect(offbus.addr, "form", "c@offbus").await;
    c.wait_has_key("notes", "b").await;
    c.set_key("notes", "stored, never published", "1").await;
    c.round_trip().await;
    assert!(!b.map_keys("notes").contains("stored, never published"));

    let before = metrics(r2.addr).await;
    hint_as(&redis, "form", "a-replica-that-is-gone").await;
    b.wait_has_key("notes", "stored, never published").await;
    let m = metrics(r2.addr).await;
    assert_eq!(
        heals(&m, "store"),
        heals(&before, "store") + 1.0,
        "{}",
        m.raw
    );
    assert_eq!(heals(&m, "exchange"), 0.0, "{}", m.raw);
}

/// How many PUBLISH commands Redis has run.
async fn publishes(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis_conn(redis).await)
        .await
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// A replica alone with a document publishes none of its updates: no
/// other replica would read them. Once another replica loads it, both
/// publish, and nothing edited before or since is missing anywhere; once
/// that replica unloads it, the first stops again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_alone_with_a_document_publishes_nothing_until_another_loads_it() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let (r1, r2) = (replica(&store, &redis).await, replica(&store, &redis).await);
    let a = WsClient::connect(r1.addr, "solo", "a@r1").await;
    a.set_key("notes", "first", "1").await;
    a.round_trip().await;

    let before = publishes(&redis).await;
    for i in 0..30 {
        a.set_key("notes", &format!("alone-{i}"), "x").await;
    }
    a.round_trip().await;
    assert_eq!(publishes(&redis).await, before, "updates were published");

    // Another replica loads it: everything is there, and edits flow both
    // ways from then on.
    let b = WsClient::connect(r2.addr, "solo", "b@r2").await;
    b.wait_map_len("notes", 31).await;
    a.set_key_seen_by(&b, "notes", "together", "1").await;
    b.set_key_seen_by(&a, "notes", "from b", "1").await;
    assert!(publishes(&redis).await > before);

    // It unloads (its grace is 1 s): the first replica is alone again.
    b.close().await;
    wait_metric(r2.addr, "coform_rooms_loaded", TIMEOUT, |v| v == 0.0).await;
    within(TIMEOUT, "publishing to stop", async {
        let mut i = 0;
        loop {
            let before = publishes(&redis).await;
            for _ in 0..5 {
                a.set_key("notes", &format!("alone again {i}"), "x").await;
                i += 1;
            }
            a.round_trip().await;
            if publishes(&redis).await == before {
                break;
            }
        }
    })
    .await;
    let _ = r1;
}

/// A replica that loads a document while a client of another replica
/// edits it at full speed, and whose own client edits at once, misses
/// nothing, and neither does the other: whatever one stored before it
/// knew of the other reaches it by the exchange that follows their
/// meeting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_loads_mid_editing_misses_nothing() {
    let store = MongoServer::shared().fresh_database_url();
    let redis = Redis::start();
    let (r1, r2) = (replica(&store, &redis).await, replica(&store, &redis).await);
    let a = WsClient::connect(r1.addr, "race", "a@r1").await;
    let (_, b) = tokio::join!(
        async {
            for i in 0..150 {
                a.set_key("notes", &format!("a{i}"), "x").await;
            }
        },
        async {
            let b = WsClient::connect(r2.addr, "race", "b@r2").await;
            for i in 0..20 {
                b.set_key("notes", &format!("b{i}"), "y").await;
            }
            b
        }
    );
    for c in [&a, &b] {
        c.wait_map_len("notes", 170).await;
    }
    assert_eq!(a.map_keys("notes"), b.map_keys("notes"));
    let _ = (r1, r2);
}
