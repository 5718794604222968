//! The `DataSourceStore` contract, run against every backend.
//!
//! Each test is an async fn over [`Stores`] (the account and data-source
//! traits of one store); `suite!` (see `support`) instantiates it once per
//! backend. Tests at the end run on one backend only: several MongoDB
//! replicas sharing a database, and an embedded database from before data
//! sources.

use std::sync::Arc;

use coform_storage::embedded::EmbeddedStore;
use coform_storage::mongo::MongoStore;
use coform_storage::testing::MongoServer;
use coform_storage::{
    AccountStore, DataSource, DataSourceQuery, DataSourceStore, DocStore, Durability, StoreError,
};

#[macro_use]
mod support;
use support::*;

/// The two traits of one store.
struct Stores {
    accounts: Arc<dyn AccountStore>,
    sources: Arc<dyn DataSourceStore>,
}

impl Stores {
    fn of<S: AccountStore + DataSourceStore>(store: S) -> Stores {
        let store = Arc::new(store);
        Stores {
            accounts: store.clone(),
            sources: store,
        }
    }
}

suite!(
    wrap = super::Stores::of;
    round_trip_keeps_every_field,
    create_needs_the_workspace,
    names_are_unique_per_workspace_whatever_their_case,
    ids_are_unique,
    list_pages_in_name_order_with_the_total,
    list_filters_by_kind_and_searches_folded_names,
    update_replaces_name_and_config_from_the_expected_version_only,
    update_to_a_taken_name_conflicts_and_changes_nothing,
    concurrent_updates_from_one_version_let_exactly_one_win,
    delete_removes_one_source_and_frees_its_name,
    record_call_counts_calls_errors_and_durations,
    concurrent_record_calls_are_all_counted,
    record_health_sets_health_alerts_and_last_check,
    figures_of_unknown_sources_are_not_kept,
    deleting_a_workspace_deletes_its_sources,
    deleting_a_sole_member_deletes_their_workspace_sources,
    data_sources_after_walks_every_workspace_by_id,
    reseal_replaces_only_the_config_from_the_expected_version,
    values_beyond_the_integer_range_are_refused,
);

// ---------------------------------------------------------------- fixtures

/// User `u1` owning workspaces `w1` and `w2`.
async fn setup(s: &Stores) {
    templates_of_u1(&*s.accounts, &[]).await;
    s.accounts
        .create_workspace(&workspace("w2", "u1", NOW), "u1")
        .await
        .unwrap();
}

async fn create(s: &Stores, id: &str, workspace: &str, name: &str) -> DataSource {
    let source = data_source(id, workspace, name);
    s.sources.create_data_source(&source).await.unwrap();
    source
}

async fn get(s: &Stores, id: &str) -> DataSource {
    s.sources
        .data_source(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("data source {id}"))
}

fn query(workspace: &str, page: u64, page_size: u64) -> DataSourceQuery {
    DataSourceQuery {
        workspace_id: workspace.into(),
        kind: None,
        search: None,
        page,
        page_size,
    }
}

/// The ids of a page, and the total.
async fn listed(s: &Stores, q: &DataSourceQuery) -> (Vec<String>, u64) {
    let (page, total) = s.sources.list_data_sources(q).await.unwrap();
    (page.into_iter().map(|d| d.id).collect(), total)
}

fn ids(list: &[DataSource]) -> Vec<&str> {
    list.iter().map(|d| d.id.as_str()).collect()
}

fn is_conflict_on(r: &Result<impl std::fmt::Debug, StoreError>, what: &str) -> bool {
    matches!(r, Err(StoreError::Conflict(w)) if w == what)
}

// ---------------------------------------------------------------- records

async fn round_trip_keeps_every_field(s: Stores) {
    setup(&s).await;
    let source = DataSource {
        id: "ds1".into(),
        workspace_id: "w1".into(),
        name: "Facturation « API » 🎉".into(),
        kind: "graphql".into(),
        config: r#"{"url":"http://127.0.0.1:9/graphql","headers":{"$sealed":"v1:AbC=="}}"#.into(),
        config_version: 7,
        created_by: "someone".into(),
        created_at: NOW - 5,
        updated_at: NOW + 5,
        last_used: Some(NOW + 1),
        call_count: 12,
        error_count: 3,
        total_duration_ms: 4_321,
        last_error: Some("upstream_timeout".into()),
        status: "failing".into(),
        last_check: Some(NOW + 2),
        health: "unhealthy".into(),
        alerts: vec!["slow responses".into(), "certificate expires soon".into()],
    };
    s.sources.create_data_source(&source).await.unwrap();
    assert_eq!(get(&s, "ds1").await, source);
    assert!(s.sources.data_source("ds2").await.unwrap().is_none());
    // The fixture's empty and absent values round-trip too.
    let plain = create(&s, "ds2", "w1", "plain").await;
    assert_eq!(get(&s, "ds2").await, plain);
}

async fn create_needs_the_workspace(s: Stores) {
    setup(&s).await;
    let r = s
        .sources
        .create_data_source(&data_source("ds1", "ghost", "x"))
        .await;
    assert!(is_not_found(&r), "{r:?}");
    assert!(s.sources.data_source("ds1").await.unwrap().is_none());
    assert_eq!(listed(&s, &query("ghost", 1, 10)).await, (vec![], 0));
}

async fn names_are_unique_per_workspace_whatever_their_case(s: Stores) {
    setup(&s).await;
    create(&s, "ds1", "w1", "Billing API").await;
    for name in ["Billing API", "billing api", "BILLING API"] {
        let r = s
            .sources
            .create_data_source(&data_source("dup", "w1", name))
            .await;
        assert!(is_conflict_on(&r, "data_source_name"), "{name}: {r:?}");
    }
    // Folding is full Unicode, not ASCII only.
    create(&s, "ds2", "w1", "Été").await;
    let r = s
        .sources
        .create_data_source(&data_source("dup", "w1", "ÉTÉ"))
        .await;
    assert!(is_conflict_on(&r, "data_source_name"), "{r:?}");
    assert!(s.sources.data_source("dup").await.unwrap().is_none());
    // Another workspace may use the name.
    create(&s, "ds3", "w2", "billing api").await;
    assert_eq!(listed(&s, &query("w1", 1, 10)).await.1, 2);
}

async fn ids_are_unique(s: Stores) {
    setup(&s).await;
    let first = create(&s, "ds1", "w1", "one").await;
    let r = s
        .sources
        .create_data_source(&data_source("ds1", "w2", "two"))
        .await;
    assert!(is_conflict_on(&r, "data_source"), "{r:?}");
    assert_eq!(get(&s, "ds1").await, first);
    assert_eq!(listed(&s, &query("w2", 1, 10)).await, (vec![], 0));
}

async fn list_pages_in_name_order_with_the_total(s: Stores) {
    setup(&s).await;
    // Created out of order; listed by folded name: alpha, Beta, delta,
    // Gamma, omega.
    for (id, name) in [
        ("d4", "omega"),
        ("d1", "Gamma"),
        ("d5", "alpha"),
        ("d2", "delta"),
        ("d3", "Beta"),
    ] {
        create(&s, id, "w1", name).await;
    }
    create(&s, "other", "w2", "aardvark").await;
    let pages: Vec<_> = [1, 2, 3, 4]
        .into_iter()
        .map(|p| query("w1", p, 2))
        .collect();
    assert_eq!(
        listed(&s, &pages[0]).await,
        (vec!["d5".into(), "d3".into()], 5)
    );
    assert_eq!(
        listed(&s, &pages[1]).await,
        (vec!["d2".into(), "d1".into()], 5)
    );
    assert_eq!(listed(&s, &pages[2]).await, (vec!["d4".into()], 5));
    assert_eq!(listed(&s, &pages[3]).await, (vec![], 5));
    // Page 0 is the first page; a page of no sources still counts them.
    assert_eq!(
        listed(&s, &query("w1", 0, 2)).await,
        listed(&s, &pages[0]).await
    );
    assert_eq!(listed(&s, &query("w1", 1, 0)).await, (vec![], 5));
    // Pages far beyond the end (offsets that overflow) are empty.
    assert_eq!(
        listed(&s, &query("w1", u64::MAX, u64::MAX)).await,
        (vec![], 5)
    );
    let (all, _) = s
        .sources
        .list_data_sources(&query("w1", 1, 100))
        .await
        .unwrap();
    assert_eq!(ids(&all), ["d5", "d3", "d2", "d1", "d4"]);
    assert_eq!(all[1], get(&s, "d3").await);
}

async fn list_filters_by_kind_and_searches_folded_names(s: Stores) {
    setup(&s).await;
    for (id, name, kind) in [
        ("d1", "Orders REST API", "rest"),
        ("d2", "Catalogue GraphQL", "graphql"),
        ("d3", "Orders database", "database"),
        ("d4", "Rapid payments", "rest"),
        ("d5", "100% uptime_probe", "rest"),
    ] {
        let mut d = data_source(id, "w1", name);
        d.kind = kind.into();
        s.sources.create_data_source(&d).await.unwrap();
    }
    let mut q = query("w1", 1, 10);
    q.kind = Some("rest".into());
    assert_eq!(
        listed(&s, &q).await,
        (vec!["d5".into(), "d1".into(), "d4".into()], 3)
    );
    q.search = Some("aPi".into());
    // "Orders REST API" and "Rapid payments" both contain "api", folded.
    assert_eq!(listed(&s, &q).await, (vec!["d1".into(), "d4".into()], 2));
    q.kind = None;
    q.search = Some("ORDERS".into());
    assert_eq!(listed(&s, &q).await, (vec!["d3".into(), "d1".into()], 2));
    q.kind = Some("graphql".into());
    assert_eq!(listed(&s, &q).await, (vec![], 0));
    // Search text is literal: `%` and `_` are no wildcards.
    q.kind = None;
    q.search = Some("0% UPTIME_".into());
    assert_eq!(listed(&s, &q).await, (vec!["d5".into()], 1));
    q.search = Some("o%s".into());
    assert_eq!(listed(&s, &q).await, (vec![], 0));
    q.search = Some("$nameFolded".into());
    assert_eq!(listed(&s, &q).await, (vec![], 0));
    q.search = Some(String::new());
    assert_eq!(listed(&s, &q).await.1, 5);
    q.kind = Some("soap".into());
    q.search = None;
    assert_eq!(listed(&s, &q).await, (vec![], 0));
}

async fn update_replaces_name_and_config_from_the_expected_version_only(s: Stores) {
    setup(&s).await;
    let before = create(&s, "ds1", "w1", "old name").await;
    let mut changed = before.clone();
    changed.name = "New Name".into();
    changed.config = r#"{"baseUrl":"http://127.0.0.1:9/v2"}"#.into();
    changed.updated_at = NOW + 60;
    // Fields the update does not own: they must keep their stored values.
    changed.kind = "database".into();
    changed.workspace_id = "w2".into();
    changed.call_count = 99;
    changed.config_version = 42;
    assert!(s.sources.update_data_source(&changed, 1).await.unwrap());
    let after = get(&s, "ds1").await;
    assert_eq!(
        after,
        DataSource {
            name: "New Name".into(),
            config: changed.config.clone(),
            updated_at: NOW + 60,
            config_version: 2,
            ..before.clone()
        }
    );
    // A writer that read version 1 is too late now: nothing changes.
    let mut stale = before.clone();
    stale.name = "stale".into();
    stale.config = "{}".into();
    stale.updated_at = NOW + 120;
    assert!(!s.sources.update_data_source(&stale, 1).await.unwrap());
    assert!(!s.sources.update_data_source(&stale, 3).await.unwrap());
    assert_eq!(get(&s, "ds1").await, after);
    // The search and the name index follow the new name.
    let mut q = query("w1", 1, 10);
    q.search = Some("new".into());
    assert_eq!(listed(&s, &q).await.1, 1);
    q.search = Some("old".into());
    assert_eq!(listed(&s, &q).await.1, 0);
    create(&s, "ds2", "w1", "OLD NAME").await;
    // A source that is gone is not updated (and not recreated).
    let mut ghost = data_source("ghost", "w1", "ghost");
    assert!(!s.sources.update_data_source(&ghost, 1).await.unwrap());
    ghost.config_version = 0;
    assert!(!s.sources.update_data_source(&ghost, 0).await.unwrap());
    assert!(s.sources.data_source("ghost").await.unwrap().is_none());
    // The next update goes on from version 2; a change of case only is
    // not a conflict with itself.
    let mut next = after.clone();
    next.name = "NEW NAME".into();
    assert!(s.sources.update_data_source(&next, 2).await.unwrap());
    assert_eq!(get(&s, "ds1").await.config_version, 3);
    assert_eq!(get(&s, "ds1").await.name, "NEW NAME");
}

async fn update_to_a_taken_name_conflicts_and_changes_nothing(s: Stores) {
    setup(&s).await;
    create(&s, "ds1", "w1", "first").await;
    let second = create(&s, "ds2", "w1", "second").await;
    let mut renamed = second.clone();
    renamed.name = "FIRST".into();
    renamed.config = "{}".into();
    let r = s.sources.update_data_source(&renamed, 1).await;
    assert!(is_conflict_on(&r, "data_source_name"), "{r:?}");
    assert_eq!(get(&s, "ds2").await, second);
}

async fn concurrent_updates_from_one_version_let_exactly_one_win(s: Stores) {
    setup(&s).await;
    let base = create(&s, "ds1", "w1", "contested").await;
    let won = at_once(16, |i| {
        let (sources, mut d) = (s.sources.clone(), base.clone());
        async move {
            d.config = format!(r#"{{"writer":{i}}}"#);
            sources.update_data_source(&d, 1).await.unwrap()
        }
    })
    .await;
    let winners: Vec<usize> = (0..won.len()).filter(|&i| won[i]).collect();
    assert_eq!(winners.len(), 1, "{won:?}");
    let stored = get(&s, "ds1").await;
    assert_eq!(stored.config_version, 2);
    assert_eq!(stored.config, format!(r#"{{"writer":{}}}"#, winners[0]));
}

async fn delete_removes_one_source_and_frees_its_name(s: Stores) {
    setup(&s).await;
    create(&s, "ds1", "w1", "Gone soon").await;
    let kept = create(&s, "ds2", "w1", "kept").await;
    assert!(s.sources.delete_data_source("ds1").await.unwrap());
    assert!(s.sources.data_source("ds1").await.unwrap().is_none());
    assert!(!s.sources.delete_data_source("ds1").await.unwrap());
    assert!(!s.sources.delete_data_source("never").await.unwrap());
    assert_eq!(
        listed(&s, &query("w1", 1, 10)).await,
        (vec!["ds2".into()], 1)
    );
    assert_eq!(get(&s, "ds2").await, kept);
    create(&s, "ds3", "w1", "gone SOON").await;
}

// ---------------------------------------------------------------- figures

async fn record_call_counts_calls_errors_and_durations(s: Stores) {
    setup(&s).await;
    let before = create(&s, "ds1", "w1", "api").await;
    let v = &s.sources;
    v.record_call("ds1", true, 100, None, NOW + 10)
        .await
        .unwrap();
    let d = get(&s, "ds1").await;
    assert_eq!(
        (d.call_count, d.error_count, d.total_duration_ms),
        (1, 0, 100)
    );
    assert_eq!((d.status.as_str(), d.last_used), ("active", Some(NOW + 10)));
    assert_eq!(d.last_error, None);
    v.record_call("ds1", false, 300, Some("upstream_timeout"), NOW + 30)
        .await
        .unwrap();
    let d = get(&s, "ds1").await;
    assert_eq!(
        (d.call_count, d.error_count, d.total_duration_ms),
        (2, 1, 400)
    );
    assert_eq!(d.status, "failing");
    assert_eq!(d.last_error.as_deref(), Some("upstream_timeout"));
    // A call that ended earlier but is recorded later: counted, its
    // success sets the status, but the last use does not move back and
    // the last error stays.
    v.record_call("ds1", true, 50, Some("ignored"), NOW + 20)
        .await
        .unwrap();
    let d = get(&s, "ds1").await;
    assert_eq!(
        d,
        DataSource {
            call_count: 3,
            error_count: 1,
            total_duration_ms: 450,
            last_used: Some(NOW + 30),
            status: "active".into(),
            last_error: Some("upstream_timeout".into()),
            ..before.clone()
        }
    );
    // A failure without a code leaves none.
    v.record_call("ds1", false, 0, None, NOW + 40)
        .await
        .unwrap();
    let d = get(&s, "ds1").await;
    assert_eq!((d.error_count, d.last_error), (2, None));
    assert_eq!(d.config_version, 1);
}

async fn concurrent_record_calls_are_all_counted(s: Stores) {
    setup(&s).await;
    create(&s, "ds1", "w1", "busy").await;
    create(&s, "ds2", "w1", "quiet").await;
    at_once(50, |i| {
        let sources = s.sources.clone();
        async move {
            let ok = i % 5 != 0;
            let error = (!ok).then_some("upstream_error");
            sources
                .record_call("ds1", ok, i as u64, error, NOW + i as i64)
                .await
                .unwrap();
        }
    })
    .await;
    let d = get(&s, "ds1").await;
    assert_eq!(d.call_count, 50);
    assert_eq!(d.error_count, 10);
    assert_eq!(d.total_duration_ms, (0..50).sum::<u64>());
    assert_eq!(d.last_used, Some(NOW + 49));
    assert_eq!(d.last_error.as_deref(), Some("upstream_error"));
    assert_eq!(get(&s, "ds2").await.call_count, 0);
}

async fn record_health_sets_health_alerts_and_last_check(s: Stores) {
    setup(&s).await;
    let before = create(&s, "ds1", "w1", "api").await;
    s.sources
        .record_call("ds1", true, 10, None, NOW)
        .await
        .unwrap();
    let alerts = vec!["slow: p95 above 2 s".to_string(), "\"quoted\" ✓".into()];
    s.sources
        .record_health("ds1", "unhealthy", &alerts, NOW + 5)
        .await
        .unwrap();
    let d = get(&s, "ds1").await;
    assert_eq!(
        d,
        DataSource {
            health: "unhealthy".into(),
            alerts,
            last_check: Some(NOW + 5),
            call_count: 1,
            total_duration_ms: 10,
            last_used: Some(NOW),
            status: "active".into(),
            ..before
        }
    );
    s.sources
        .record_health("ds1", "healthy", &[], NOW + 6)
        .await
        .unwrap();
    let d = get(&s, "ds1").await;
    assert_eq!(
        (d.health.as_str(), d.alerts.len(), d.last_check),
        ("healthy", 0, Some(NOW + 6))
    );
}

async fn figures_of_unknown_sources_are_not_kept(s: Stores) {
    setup(&s).await;
    create(&s, "ds1", "w1", "api").await;
    s.sources.delete_data_source("ds1").await.unwrap();
    s.sources
        .record_call("ds1", false, 5, Some("x"), NOW)
        .await
        .unwrap();
    s.sources
        .record_health("ds1", "healthy", &["a".into()], NOW)
        .await
        .unwrap();
    s.sources
        .record_call("never", true, 5, None, NOW)
        .await
        .unwrap();
    assert!(s.sources.data_source("ds1").await.unwrap().is_none());
    assert!(s.sources.data_source("never").await.unwrap().is_none());
    assert!(s
        .sources
        .data_sources_after(None, 10)
        .await
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------- workspaces

async fn deleting_a_workspace_deletes_its_sources(s: Stores) {
    setup(&s).await;
    create(&s, "a1", "w1", "one").await;
    create(&s, "a2", "w1", "two").await;
    let kept = create(&s, "b1", "w2", "one").await;
    s.accounts.delete_workspace("w1").await.unwrap();
    for id in ["a1", "a2"] {
        assert!(s.sources.data_source(id).await.unwrap().is_none(), "{id}");
    }
    assert_eq!(listed(&s, &query("w1", 1, 10)).await, (vec![], 0));
    assert_eq!(
        s.sources.data_sources_after(None, 10).await.unwrap(),
        [kept]
    );
    // A workspace of the same id starts without sources or taken names.
    s.accounts
        .create_workspace(&workspace("w1", "u1", NOW + 1), "u1")
        .await
        .unwrap();
    assert_eq!(listed(&s, &query("w1", 1, 10)).await, (vec![], 0));
    create(&s, "a3", "w1", "one").await;
}

async fn deleting_a_sole_member_deletes_their_workspace_sources(s: Stores) {
    setup(&s).await;
    s.accounts
        .create_user(&user("u2", "u2@example.com"))
        .await
        .unwrap();
    s.accounts
        .create_workspace(&workspace("w3", "u2", NOW), "u2")
        .await
        .unwrap();
    create(&s, "mine", "w3", "private").await;
    let kept = create(&s, "theirs", "w1", "shared").await;
    s.accounts.delete_user("u2").await.unwrap();
    assert!(s.accounts.workspace("w3").await.unwrap().is_none());
    assert!(s.sources.data_source("mine").await.unwrap().is_none());
    assert_eq!(
        s.sources.data_sources_after(None, 10).await.unwrap(),
        [kept]
    );
}

// ---------------------------------------------------------------- key rotation

async fn data_sources_after_walks_every_workspace_by_id(s: Stores) {
    setup(&s).await;
    for (id, w) in [
        ("s5", "w1"),
        ("s1", "w2"),
        ("s7", "w1"),
        ("s3", "w2"),
        ("s2", "w1"),
        ("s6", "w2"),
        ("s4", "w1"),
    ] {
        create(&s, id, w, id).await;
    }
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .sources
            .data_sources_after(after.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        walked.extend(page.iter().map(|d| d.id.clone()));
        pages += 1;
    }
    assert_eq!(walked, ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]);
    assert_eq!(pages, 3);
    let page = s.sources.data_sources_after(Some("s2"), 2).await.unwrap();
    assert_eq!(ids(&page), ["s3", "s4"]);
    assert_eq!(page[0], get(&s, "s3").await);
    // An `after` that is no id starts where it would sort.
    assert_eq!(
        ids(&s.sources.data_sources_after(Some("s35"), 1).await.unwrap()),
        ["s4"]
    );
    assert!(s
        .sources
        .data_sources_after(Some("s1"), 0)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .sources
        .data_sources_after(Some("s7"), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn reseal_replaces_only_the_config_from_the_expected_version(s: Stores) {
    setup(&s).await;
    let before = create(&s, "ds1", "w1", "api").await;
    let resealed = r#"{"baseUrl":"http://127.0.0.1:9/ds1","$sealed":"k2"}"#;
    assert!(s
        .sources
        .reseal_data_source("ds1", resealed, 1)
        .await
        .unwrap());
    assert_eq!(
        get(&s, "ds1").await,
        DataSource {
            config: resealed.into(),
            ..before.clone()
        }
    );
    // An update in between: the rotation read version 1 and must not
    // write its stale configuration over the new one.
    let mut updated = before.clone();
    updated.config = r#"{"baseUrl":"http://127.0.0.1:9/new"}"#.into();
    assert!(s.sources.update_data_source(&updated, 1).await.unwrap());
    assert!(!s
        .sources
        .reseal_data_source("ds1", resealed, 1)
        .await
        .unwrap());
    let d = get(&s, "ds1").await;
    assert_eq!(
        (d.config.as_str(), d.config_version),
        (updated.config.as_str(), 2)
    );
    assert!(s.sources.reseal_data_source("ds1", "{}", 2).await.unwrap());
    assert_eq!(get(&s, "ds1").await.config_version, 2);
    assert!(!s
        .sources
        .reseal_data_source("ghost", "{}", 1)
        .await
        .unwrap());
    assert!(s.sources.data_source("ghost").await.unwrap().is_none());
}

async fn values_beyond_the_integer_range_are_refused(s: Stores) {
    setup(&s).await;
    let mut big = data_source("big", "w1", "big");
    big.call_count = u64::MAX;
    let r = s.sources.create_data_source(&big).await;
    assert!(
        matches!(r, Err(StoreError::Constraint("out_of_range"))),
        "{r:?}"
    );
    assert!(s.sources.data_source("big").await.unwrap().is_none());
    create(&s, "ds1", "w1", "api").await;
    let r = s
        .sources
        .record_call("ds1", true, u64::MAX, None, NOW)
        .await;
    assert!(
        matches!(r, Err(StoreError::Constraint("out_of_range"))),
        "{r:?}"
    );
    assert_eq!(get(&s, "ds1").await.call_count, 0);
    // A version no store can hold is never the stored one.
    let d = get(&s, "ds1").await;
    assert!(!s.sources.update_data_source(&d, u64::MAX).await.unwrap());
    assert!(!s
        .sources
        .reseal_data_source("ds1", "{}", u64::MAX)
        .await
        .unwrap());
    assert_eq!(get(&s, "ds1").await, d);
}

// ---------------------------------------------------------------- MongoDB only

/// Several replicas (each its own connection pool) recording calls of one
/// source at once: every call, error and millisecond is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_replicas_recording_calls_at_once_lose_none() {
    const CALLS: u64 = 60;
    let url = MongoServer::shared().fresh_database_url();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(MongoStore::connect(&url).await.unwrap()));
    }
    let s = Stores::of(MongoStore::connect(&url).await.unwrap());
    setup(&s).await;
    create(&s, "ds1", "w1", "shared").await;
    let mut tasks = Vec::new();
    for i in 0..CALLS {
        let store = replicas[i as usize % replicas.len()].clone();
        tasks.push(tokio::spawn(async move {
            let ok = i % 3 != 0;
            store
                .record_call("ds1", ok, i, (!ok).then_some("e"), NOW + i as i64)
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let d = get(&s, "ds1").await;
    assert_eq!(
        (d.call_count, d.error_count, d.total_duration_ms),
        (CALLS, CALLS / 3, (0..CALLS).sum::<u64>())
    );
    assert_eq!(d.last_used, Some(NOW + CALLS as i64 - 1));
    coform_storage::testing::drop_database(&url).await.unwrap();
}

// ---------------------------------------------------------------- embedded only

/// Opens the embedded store in `dir`, as both traits.
fn open_embedded(dir: &std::path::Path) -> (Arc<EmbeddedStore>, Stores) {
    let store = Arc::new(EmbeddedStore::open(dir, Durability::Full).unwrap());
    let s = Stores {
        accounts: store.clone(),
        sources: store.clone(),
    };
    (store, s)
}

/// Sources are on disk: they survive closing and reopening the store.
#[tokio::test]
async fn embedded_sources_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, s) = open_embedded(dir.path());
    setup(&s).await;
    create(&s, "ds1", "w1", "Kept").await;
    s.sources
        .record_call("ds1", false, 7, Some("upstream_timeout"), NOW)
        .await
        .unwrap();
    s.sources
        .record_health("ds1", "unhealthy", &["down".into()], NOW)
        .await
        .unwrap();
    let stored = get(&s, "ds1").await;
    store.close().await;
    drop((store, s));
    let (store, s) = open_embedded(dir.path());
    assert_eq!(get(&s, "ds1").await, stored);
    store.close().await;
}

/// A data directory written before data sources existed: it opens with
/// every record it had, and gains an empty, working table of sources
/// (with its case-insensitive name index). Opening it again changes
/// nothing.
#[tokio::test]
async fn embedded_database_from_before_data_sources_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, s) = open_embedded(dir.path());
        templates_of_u1(&*s.accounts, &["t1"]).await;
        store.close().await;
    }
    {
        let conn =
            rusqlite::Connection::open(dir.path().join(coform_storage::embedded::DB_FILE)).unwrap();
        conn.execute_batch("DROP INDEX data_sources_by_name; DROP TABLE data_sources;")
            .unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'data_sources%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }
    for round in 0..2 {
        let (store, s) = open_embedded(dir.path());
        assert!(s.accounts.template("t1").await.unwrap().is_some());
        assert_eq!(
            s.accounts.member_role("w1", "u1").await.unwrap(),
            Some(coform_storage::Role::Owner)
        );
        if round == 0 {
            assert_eq!(listed(&s, &query("w1", 1, 10)).await, (vec![], 0));
            create(&s, "ds1", "w1", "Upgraded").await;
        }
        let r = s
            .sources
            .create_data_source(&data_source("ds2", "w1", "UPGRADED"))
            .await;
        assert!(is_conflict_on(&r, "data_source_name"), "{r:?}");
        assert_eq!(
            listed(&s, &query("w1", 1, 10)).await,
            (vec!["ds1".into()], 1)
        );
        store.close().await;
    }
}
