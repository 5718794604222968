//! Template listings: round trips, filters, search and paging.

use super::*;

pub(crate) async fn template_round_trip_update_delete(s: Store) {
    users(&s, 1).await;
    owned(&s, "w1", "u1").await;
    let t = Template {
        id: "t1".into(),
        workspace_id: "w1".into(),
        name: "Sprint retro 🚀".into(),
        description: "What went \"well\", what didn't".into(),
        tags: vec!["retro".into(), "agile".into(), "quote\"d".into()],
        is_public: true,
        created_by: "u1".into(),
        created_at: NOW,
        updated_at: NOW,
        version: 1,
    };
    s.create_template(&t).await.unwrap();
    assert_eq!(s.template("t1").await.unwrap().unwrap(), t);

    let mut changed = t.clone();
    changed.name = "Retro".into();
    changed.description = String::new();
    changed.tags = Vec::new();
    changed.is_public = false;
    changed.updated_at = NOW + 100;
    changed.version = 2;
    // Not replaced: workspace_id, created_by, created_at.
    let mut sent = changed.clone();
    sent.workspace_id = "elsewhere".into();
    sent.created_by = "someone".into();
    sent.created_at = 0;
    s.update_template(&sent).await.unwrap();
    assert_eq!(s.template("t1").await.unwrap().unwrap(), changed);

    let r = s.update_template(&template("nope", "w1", NOW)).await;
    assert!(is_not_found(&r), "{r:?}");
    s.delete_template("t1").await.unwrap();
    assert!(s.template("t1").await.unwrap().is_none());
    let r = s.delete_template("t1").await;
    assert!(is_not_found(&r), "{r:?}");
}

pub(crate) async fn list_templates_filters_by_workspace_and_tag(s: Store) {
    users(&s, 1).await;
    for w in ["w1", "w2", "w3"] {
        s.create_workspace(&workspace(w, "u1", NOW), "u1")
            .await
            .unwrap();
    }
    let tagged = |id: &str, w: &str, at: i64, tags: &[&str]| {
        let mut t = template(id, w, at);
        t.tags = tags.iter().map(|t| t.to_string()).collect();
        t
    };
    for t in [
        tagged("a", "w1", NOW + 1, &["design", "ux"]),
        tagged("b", "w1", NOW + 2, &["Design"]),
        tagged("c", "w2", NOW + 3, &["design"]),
        tagged("d", "w3", NOW + 4, &["designer"]),
        tagged("e", "w3", NOW + 5, &[]),
        tagged("f", "w3", NOW + 6, &["say \"hi\"", "%"]),
    ] {
        s.create_template(&t).await.unwrap();
    }

    let (page, total) = s.list_templates(&query(&["w1", "w3"])).await.unwrap();
    assert_eq!((ids(&page), total), (vec!["f", "e", "d", "b", "a"], 5));
    let (page, total) = s.list_templates(&query(&["w2"])).await.unwrap();
    assert_eq!((ids(&page), total), (vec!["c"], 1));
    // No workspaces: nothing (not everything).
    let (page, total) = s.list_templates(&query(&[])).await.unwrap();
    assert_eq!((page.len(), total), (0, 0));
    let (page, _) = s.list_templates(&query(&["nope"])).await.unwrap();
    assert!(page.is_empty());

    let with_tag = |ws: &[&str], tag: &str| {
        let mut q = query(ws);
        q.tag = Some(tag.into());
        q
    };
    // Exact, case-sensitive tag match: no substrings, no case folding.
    let (page, total) = s
        .list_templates(&with_tag(&["w1", "w2", "w3"], "design"))
        .await
        .unwrap();
    assert_eq!((ids(&page), total), (vec!["c", "a"], 2));
    let (page, _) = s
        .list_templates(&with_tag(&["w1", "w3"], "design"))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["a"]);
    let (page, _) = s
        .list_templates(&with_tag(&["w1", "w2", "w3"], "Design"))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["b"]);
    for tag in ["desig", "esign", "", "ux\"", "%"] {
        let (page, _) = s
            .list_templates(&with_tag(&["w1", "w2"], tag))
            .await
            .unwrap();
        assert!(page.is_empty(), "tag {tag:?}: {:?}", ids(&page));
    }
    let (page, _) = s
        .list_templates(&with_tag(&["w3"], "say \"hi\""))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["f"]);
    let (page, _) = s.list_templates(&with_tag(&["w3"], "%")).await.unwrap();
    assert_eq!(ids(&page), ["f"]);

    // Tag and search combine.
    let mut q = with_tag(&["w1", "w2", "w3"], "design");
    q.search = Some("template C".into());
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!((ids(&page), total), (vec!["c"], 1));
}

pub(crate) async fn list_templates_search_is_literal_and_case_insensitive(s: Store) {
    users(&s, 1).await;
    owned(&s, "w1", "u1").await;
    owned(&s, "w2", "u1").await;
    let listing = |id: &str, at: i64, name: &str, description: &str| {
        let mut t = template(id, "w1", at);
        t.name = name.into();
        t.description = description.into();
        t
    };
    for t in [
        listing("pct", 1, "100% Cotton", "plain"),
        listing("cotton", 2, "100 Cotton", "a_b"),
        listing("snake", 3, "snake_case names", r"C:\path\to"),
        listing("german", 4, "Größe Übersicht", "Deutsch"),
        listing("french", 5, "Café menu", "ÉTÉ spécial"),
        listing("emoji", 6, "Launch 🚀 plan", "ok"),
        listing("quote", 7, "O'Brien's notes", "it's \"quoted\""),
    ] {
        s.create_template(&t).await.unwrap();
    }
    // Same name in a workspace outside the query.
    let mut hidden = template("hidden", "w2", 8);
    hidden.name = "100% Cotton".into();
    s.create_template(&hidden).await.unwrap();

    let search = |needle: &str| {
        let mut q = query(&["w1"]);
        q.search = Some(needle.into());
        q
    };
    let cases: &[(&str, &[&str])] = &[
        ("cotton", &["cotton", "pct"]),
        ("COTTON", &["cotton", "pct"]),
        ("100%", &["pct"]),
        ("%", &["pct"]),
        ("%%", &[]),
        ("_", &["snake", "cotton"]),
        ("a_b", &["cotton"]),
        ("e_c", &["snake"]),
        ("s_c", &[]),
        (r"\", &["snake"]),
        (r"c:\PATH", &["snake"]),
        ("größe", &["german"]),
        ("GRÖSSE", &[]),
        ("GRÖ", &["german"]),
        ("übersicht", &["german"]),
        ("café", &["french"]),
        ("CAFÉ", &["french"]),
        ("été", &["french"]),
        ("🚀", &["emoji"]),
        ("o'brien", &["quote"]),
        ("\"quoted\"", &["quote"]),
        ("'; DROP TABLE users; --", &[]),
        ("' OR '1'='1", &[]),
        ("\") OR 1=1 --", &[]),
        ("plain", &["pct"]),
        ("nothing like this", &[]),
        (
            "",
            &[
                "quote", "emoji", "french", "german", "snake", "cotton", "pct",
            ],
        ),
    ];
    for (needle, want) in cases {
        let (page, total) = s.list_templates(&search(needle)).await.unwrap();
        assert_eq!(ids(&page), *want, "search {needle:?}");
        assert_eq!(total, want.len() as u64, "search {needle:?}");
    }
    // The injection attempt changed nothing.
    assert!(s.user("u1").await.unwrap().is_some());
    assert_eq!(s.list_templates(&query(&["w1"])).await.unwrap().1, 7);
}

pub(crate) async fn list_templates_pages_newest_first(s: Store) {
    users(&s, 1).await;
    owned(&s, "w1", "u1").await;
    // t00..t24, updated in a shuffled order; t24b ties with t24.
    for i in 0..25i64 {
        let at = NOW + (i * 7) % 25;
        s.create_template(&template(&format!("t{i:02}"), "w1", at))
            .await
            .unwrap();
    }
    let expected: Vec<String> = {
        let mut all: Vec<(i64, String)> = (0..25i64)
            .map(|i| (NOW + (i * 7) % 25, format!("t{i:02}")))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        all.into_iter().map(|(_, id)| id).collect()
    };
    let mut seen = Vec::new();
    for (offset, len) in [(0, 10), (10, 10), (20, 5), (30, 0)] {
        let mut q = query(&["w1"]);
        q.offset = offset;
        q.limit = 10;
        let (page, total) = s.list_templates(&q).await.unwrap();
        assert_eq!(total, 25);
        assert_eq!(page.len(), len, "offset {offset}");
        seen.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(seen, expected);

    // Equal updated_at: ties break by id.
    let newest = NOW + 1000;
    for id in ["tie-b", "tie-a"] {
        s.create_template(&template(id, "w1", newest))
            .await
            .unwrap();
    }
    let mut q = query(&["w1"]);
    q.limit = 3;
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!(total, 27);
    assert_eq!(ids(&page), ["tie-a", "tie-b", expected[0].as_str()]);

    // An update moves a template to the front.
    let mut last = s.template(expected.last().unwrap()).await.unwrap().unwrap();
    last.updated_at = newest + 1;
    last.version += 1;
    s.update_template(&last).await.unwrap();
    let (page, _) = s.list_templates(&q).await.unwrap();
    assert_eq!(page[0], last);

    // limit 0: no rows, but the count.
    q.limit = 0;
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!((page.len(), total), (0, 27));
    // Huge values don't overflow.
    q.limit = u64::MAX;
    q.offset = 25;
    let (page, _) = s.list_templates(&q).await.unwrap();
    assert_eq!(page.len(), 2);
    q.offset = u64::MAX;
    let (page, total) = s.list_templates(&q).await.unwrap();
    assert_eq!((page.len(), total), (0, 27));
}
