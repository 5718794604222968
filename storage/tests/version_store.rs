//! The `VersionStore` contract, run against every backend that has one.
//!
//! Each test is an async fn over [`Stores`] (the account and version
//! traits of one store); `suite!` (see `support`) instantiates it once per
//! backend. Tests at the end run on MongoDB only (several replicas sharing
//! one database).

use std::sync::Arc;

use bytes::Bytes;
use coform_storage::mongo::MongoStore;
use coform_storage::testing::MongoServer;
use coform_storage::{AccountStore, NewVersion, StoreError, TemplateStats, VersionStore};

#[macro_use]
mod support;
use support::*;

/// The two traits of one store.
struct Stores {
    accounts: Arc<dyn AccountStore>,
    versions: Arc<dyn VersionStore>,
}

impl Stores {
    fn of<S: AccountStore + VersionStore>(store: S) -> Stores {
        let store = Arc::new(store);
        Stores {
            accounts: store.clone(),
            versions: store,
        }
    }
}

suite!(
    wrap = super::Stores::of;
    versions_are_numbered_per_template,
    version_round_trip_keeps_every_field_and_the_state,
    create_version_needs_the_template,
    concurrent_creates_get_distinct_consecutive_numbers,
    large_state_round_trips,
    state_larger_than_a_mongodb_document_round_trips,
    figures_count_views_edits_and_distinct_editors,
    last_edit_keeps_the_latest_time,
    figures_of_unknown_templates_are_not_kept,
    delete_history_removes_versions_and_figures_of_one_template,
    deleted_template_gains_no_versions,
);

// ---------------------------------------------------------------- fixtures

/// User `u1`, workspace `w1` and the given templates in it.
async fn setup(s: &Stores, templates: &[&str]) {
    templates_of_u1(&*s.accounts, templates).await;
}

/// The number `v` gives a new version; it must be accepted.
async fn number_of(v: &Arc<dyn VersionStore>, version: NewVersion) -> u64 {
    v.create_version(version).await.unwrap().number
}

fn new_version(template: &str, name: &str, state: &[u8]) -> NewVersion {
    NewVersion {
        template_id: template.into(),
        name: name.into(),
        note: format!("note of {name}"),
        author_id: "u1".into(),
        created_at: NOW,
        state: Bytes::copy_from_slice(state),
    }
}

fn numbers(list: &[coform_storage::VersionInfo]) -> Vec<u64> {
    list.iter().map(|v| v.number).collect()
}

// ---------------------------------------------------------------- versions

async fn versions_are_numbered_per_template(s: Stores) {
    setup(&s, &["t1", "t2"]).await;
    let v = &s.versions;
    assert_eq!(number_of(v, new_version("t1", "a", b"1")).await, 1);
    assert_eq!(number_of(v, new_version("t2", "b", b"2")).await, 1);
    assert_eq!(number_of(v, new_version("t1", "c", b"3")).await, 2);
    assert_eq!(number_of(v, new_version("t1", "d", b"4")).await, 3);
    assert_eq!(numbers(&v.list_versions("t1").await.unwrap()), [3, 2, 1]);
    assert_eq!(numbers(&v.list_versions("t2").await.unwrap()), [1]);
    assert!(v.list_versions("nope").await.unwrap().is_empty());
}

async fn version_round_trip_keeps_every_field_and_the_state(s: Stores) {
    setup(&s, &["t1"]).await;
    let mut nv = new_version(
        "t1",
        "Première <version> \"quoted\" 🎉",
        b"\x00\x01\xffstate",
    );
    nv.note = String::new();
    nv.author_id = "someone-else".into();
    nv.created_at = NOW + 42;
    let info = s.versions.create_version(nv.clone()).await.unwrap();
    assert_eq!(info.template_id, "t1");
    assert_eq!(info.number, 1);
    assert_eq!(info.name, nv.name);
    assert_eq!(info.note, "");
    assert_eq!(info.author_id, "someone-else");
    assert_eq!(info.created_at, NOW + 42);
    assert_eq!(info.size, 8);
    let got = s
        .versions
        .version("t1", 1)
        .await
        .unwrap()
        .expect("version 1");
    assert_eq!(got.info, info);
    assert_eq!(got.state.as_ref(), b"\x00\x01\xffstate");
    assert_eq!(s.versions.list_versions("t1").await.unwrap(), vec![info]);
    assert!(s.versions.version("t1", 2).await.unwrap().is_none());
    assert!(s.versions.version("t1", 0).await.unwrap().is_none());
    assert!(s.versions.version("t1", u64::MAX).await.unwrap().is_none());
    assert!(s.versions.version("t2", 1).await.unwrap().is_none());
}

async fn create_version_needs_the_template(s: Stores) {
    setup(&s, &["t1"]).await;
    let err = s
        .versions
        .create_version(new_version("missing", "x", b"1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(s
        .versions
        .list_versions("missing")
        .await
        .unwrap()
        .is_empty());
}

async fn concurrent_creates_get_distinct_consecutive_numbers(s: Stores) {
    setup(&s, &["t1"]).await;
    let mut got = at_once(24, |i| {
        let v = s.versions.clone();
        async move {
            v.create_version(new_version("t1", &format!("v{i}"), &[i as u8]))
                .await
        }
    })
    .await
    .into_iter()
    .map(|info| info.unwrap().number)
    .collect::<Vec<_>>();
    got.sort_unstable();
    assert_eq!(got, (1..=24).collect::<Vec<u64>>());
    let listed = s.versions.list_versions("t1").await.unwrap();
    assert_eq!(numbers(&listed), (1..=24).rev().collect::<Vec<u64>>());
    // Each number holds the state saved with its name.
    for info in listed {
        let v = s
            .versions
            .version("t1", info.number)
            .await
            .unwrap()
            .unwrap();
        let i: u8 = info.name[1..].parse().unwrap();
        assert_eq!(v.state.as_ref(), &[i]);
    }
}

async fn large_state_round_trips(s: Stores) {
    setup(&s, &["t1"]).await;
    let state: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let info = s
        .versions
        .create_version(new_version("t1", "big", &state))
        .await
        .unwrap();
    assert_eq!(info.size, state.len() as u64);
    let got = s.versions.version("t1", 1).await.unwrap().unwrap();
    assert!(got.state.as_ref() == state.as_slice(), "state differs");
}

/// 20 MiB: more than a MongoDB document holds (16 MiB), so that backend
/// splits it.
async fn state_larger_than_a_mongodb_document_round_trips(s: Stores) {
    setup(&s, &["t1"]).await;
    let v = &s.versions;
    let big = noise(20 << 20, 1);
    v.create_version(new_version("t1", "small", b"before"))
        .await
        .unwrap();
    let info = v
        .create_version(new_version("t1", "big", &big))
        .await
        .unwrap();
    assert_eq!((info.number, info.size), (2, 20 << 20));
    v.create_version(new_version("t1", "after", b"after"))
        .await
        .unwrap();
    let listed = v.list_versions("t1").await.unwrap();
    assert_eq!(numbers(&listed), [3, 2, 1]);
    assert_eq!(listed[1], info);
    let got = v.version("t1", 2).await.unwrap().unwrap();
    assert_eq!(got.info, info);
    assert!(got.state == big, "state differs");
    assert_eq!(
        v.version("t1", 3).await.unwrap().unwrap().state.as_ref(),
        b"after"
    );
    v.delete_template_history("t1").await.unwrap();
    assert!(v.version("t1", 2).await.unwrap().is_none());
}

// ---------------------------------------------------------------- figures

async fn figures_count_views_edits_and_distinct_editors(s: Stores) {
    setup(&s, &["t1", "t2"]).await;
    let v = &s.versions;
    assert_eq!(
        v.template_stats("t1").await.unwrap(),
        TemplateStats::default()
    );
    v.record_views("t1", 1).await.unwrap();
    v.record_views("t1", 2).await.unwrap();
    v.record_edits("t1", 5, &["a".into(), "b".into(), "a".into()], NOW)
        .await
        .unwrap();
    v.record_edits("t1", 1, &["c".into()], NOW + 10)
        .await
        .unwrap();
    v.record_edits("t1", 2, &[], NOW + 20).await.unwrap();
    v.record_edits("t2", 7, &["z".into()], NOW).await.unwrap();
    assert_eq!(
        v.template_stats("t1").await.unwrap(),
        TemplateStats {
            views: 3,
            edits: 8,
            editors: 3,
            last_edit_at: Some(NOW + 20),
            // The edit at NOW + 20 named nobody: the last named one stays.
            last_editor: Some("c".into()),
        }
    );
    let t2 = v.template_stats("t2").await.unwrap();
    assert_eq!((t2.views, t2.edits, t2.editors), (0, 7, 1));
}

async fn last_edit_keeps_the_latest_time(s: Stores) {
    setup(&s, &["t1"]).await;
    let v = &s.versions;
    v.record_edits("t1", 1, &["late".into()], NOW + 100)
        .await
        .unwrap();
    // A batch recorded after, but made earlier, does not move it back.
    v.record_edits("t1", 1, &["early".into()], NOW)
        .await
        .unwrap();
    let st = v.template_stats("t1").await.unwrap();
    assert_eq!(st.last_edit_at, Some(NOW + 100));
    assert_eq!(st.last_editor.as_deref(), Some("late"));
    assert_eq!((st.edits, st.editors), (2, 2));
}

async fn figures_of_unknown_templates_are_not_kept(s: Stores) {
    setup(&s, &["t1"]).await;
    let v = &s.versions;
    v.record_views("ghost", 3).await.unwrap();
    v.record_edits("ghost", 3, &["a".into()], NOW)
        .await
        .unwrap();
    assert_eq!(
        v.template_stats("ghost").await.unwrap(),
        TemplateStats::default()
    );
}

async fn delete_history_removes_versions_and_figures_of_one_template(s: Stores) {
    setup(&s, &["t1", "t2"]).await;
    let v = &s.versions;
    for t in ["t1", "t2"] {
        v.create_version(new_version(t, "a", b"1")).await.unwrap();
        v.create_version(new_version(t, "b", b"2")).await.unwrap();
        v.record_views(t, 4).await.unwrap();
        v.record_edits(t, 4, &["u1".into()], NOW).await.unwrap();
    }
    v.delete_template_history("t1").await.unwrap();
    assert!(v.list_versions("t1").await.unwrap().is_empty());
    assert!(v.version("t1", 1).await.unwrap().is_none());
    assert_eq!(
        v.template_stats("t1").await.unwrap(),
        TemplateStats::default()
    );
    assert_eq!(numbers(&v.list_versions("t2").await.unwrap()), [2, 1]);
    assert_eq!(v.template_stats("t2").await.unwrap().views, 4);
    // Nothing to delete is fine.
    v.delete_template_history("t1").await.unwrap();
    v.delete_template_history("never-existed").await.unwrap();
}

async fn deleted_template_gains_no_versions(s: Stores) {
    setup(&s, &["t1"]).await;
    s.versions
        .create_version(new_version("t1", "a", b"1"))
        .await
        .unwrap();
    s.accounts.delete_template("t1").await.unwrap();
    s.versions.delete_template_history("t1").await.unwrap();
    let err = s
        .versions
        .create_version(new_version("t1", "late", b"2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    s.versions.record_views("t1", 1).await.unwrap();
    assert!(s.versions.list_versions("t1").await.unwrap().is_empty());
    assert_eq!(
        s.versions.template_stats("t1").await.unwrap(),
        TemplateStats::default()
    );
}

// ---------------------------------------------------------------- MongoDB only

/// Several replicas (each its own connection pool) saving versions of two
/// templates at once: each template's numbers are 1..=N, none lost or
/// repeated, and each number holds the state saved with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_replicas_number_concurrent_versions_consecutively() {
    const PER_TEMPLATE: u8 = 20;
    let url = MongoServer::shared().fresh_database_url();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(MongoStore::connect(&url).await.unwrap()));
    }
    setup(
        &Stores::of(MongoStore::connect(&url).await.unwrap()),
        &["t1", "t2"],
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..PER_TEMPLATE {
        for (k, t) in ["t1", "t2"].into_iter().enumerate() {
            let store = replicas[(usize::from(i) + k) % replicas.len()].clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("{t}-{i}");
                let info = store
                    .create_version(new_version(t, &name, name.as_bytes()))
                    .await
                    .unwrap();
                (t, info.number)
            }));
        }
    }
    let mut got: [Vec<u64>; 2] = Default::default();
    for task in tasks {
        let (t, number) = task.await.unwrap();
        got[usize::from(t == "t2")].push(number);
    }
    let check = replicas[0].clone();
    for (k, t) in ["t1", "t2"].into_iter().enumerate() {
        got[k].sort_unstable();
        assert_eq!(
            got[k],
            (1..=u64::from(PER_TEMPLATE)).collect::<Vec<_>>(),
            "{t}"
        );
        let listed = check.list_versions(t).await.unwrap();
        assert_eq!(
            numbers(&listed),
            (1..=u64::from(PER_TEMPLATE)).rev().collect::<Vec<_>>(),
            "{t}"
        );
        for info in listed {
            let v = check.version(t, info.number).await.unwrap().unwrap();
            assert_eq!(v.state.as_ref(), info.name.as_bytes());
        }
    }
    // The next one, from any replica, follows on.
    let next = replicas[2]
        .create_version(new_version("t1", "next", b"n"))
        .await
        .unwrap();
    assert_eq!(next.number, u64::from(PER_TEMPLATE) + 1);
    coform_storage::testing::drop_database(&url).await.unwrap();
}
