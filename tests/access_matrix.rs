//! Who may do what, endpoint by endpoint.
//!
//! Alice owns workspace A, Bob owns workspace B. Carol is, in turn, owner,
//! admin, editor and viewer of A, and never a member of B. For every REST
//! endpoint and for the WebSocket, a member whose role is high enough gets
//! 2xx, a member whose role is too low gets 403, and anyone outside the
//! workspace gets 404 — never 403, so nobody can probe for others' data.
//! Every case runs against freshly created workspaces, and a refused
//! request must leave them exactly as they were. Data sources answer from
//! an upstream on 127.0.0.1 (`support::upstream`).

mod support;

use std::fmt;

use serde_json::{json, Value};
use support::upstream::Upstream;
use support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// An address every world has invited (as a viewer); nobody owns it.
const INVITED: &str = "invited@example.com";

/// The people of every test.
struct People {
    alice: Account,
    bob: Account,
    carol: Account,
    dave: Account,
    erin: Account,
}

/// One workspace made for one case: its owner, an editor (Dave), a
/// data source, a template of the owner's whose form binds it, and a
/// backup of it.
struct World {
    ws: String,
    tpl: String,
    src: String,
    upstream: String,
    owner_id: String,
    dave_id: String,
    erin_email: String,
    backup: Value,
}

/// The requests of the matrix, one a line: name | the lowest role
/// allowed | the status of success | method and path | JSON body. In the
/// path and the body, `{ws}`, `{tpl}`, `{dave}`, `{owner}`, `{me}`,
/// `{erin}` and `{invited}` stand for the world's workspace, template,
/// Dave's and the owner's ids, the acting user's id, Erin's and the
/// invited address; `{backup}` is the world's backup, renamed.
const CASES: &str = r#"
GET workspace                        | viewer | 200 | GET /api/workspaces/{ws}
PUT workspace                        | admin  | 200 | PUT /api/workspaces/{ws} | {"name": "Renamed", "settings": {"k": "v"}}
DELETE workspace                     | owner  | 204 | DELETE /api/workspaces/{ws}
GET analytics                        | viewer | 200 | GET /api/workspaces/{ws}/analytics
POST backup                          | admin  | 200 | POST /api/workspaces/{ws}/backup
POST restore                         | admin  | 200 | POST /api/workspaces/{ws}/restore | {backup}
add an editor                        | admin  | 201 | POST /api/workspaces/{ws}/members | {"email": "{erin}", "role": "editor"}
add an admin                         | admin  | 201 | POST /api/workspaces/{ws}/members | {"email": "{erin}", "role": "admin"}
add an owner                         | owner  | 201 | POST /api/workspaces/{ws}/members | {"email": "{erin}", "role": "owner"}
invite an address without an account | admin  | 202 | POST /api/workspaces/{ws}/members | {"email": "newcomer@example.com", "role": "editor"}
invite an owner                      | owner  | 202 | POST /api/workspaces/{ws}/members | {"email": "newcomer@example.com", "role": "owner"}
list invitations                     | admin  | 200 | GET /api/workspaces/{ws}/invitations
cancel an invitation                 | admin  | 204 | DELETE /api/workspaces/{ws}/invitations/{invited}
demote an editor                     | admin  | 204 | PUT /api/workspaces/{ws}/members/{dave} | {"role": "viewer"}
promote an editor to admin           | admin  | 204 | PUT /api/workspaces/{ws}/members/{dave} | {"role": "admin"}
grant owner                          | owner  | 204 | PUT /api/workspaces/{ws}/members/{dave} | {"role": "owner"}
demote an owner                      | owner  | 204 | PUT /api/workspaces/{ws}/members/{owner} | {"role": "editor"}
remove an editor                     | admin  | 204 | DELETE /api/workspaces/{ws}/members/{dave}
remove an owner                      | owner  | 204 | DELETE /api/workspaces/{ws}/members/{owner}
leave                                | viewer | 204 | DELETE /api/workspaces/{ws}/members/{me}
list the workspace's templates       | viewer | 200 | GET /api/templates?workspaceId={ws}
create a template                    | editor | 201 | POST /api/templates | {"workspaceId": "{ws}", "name": "New", "content": {"meta": {"title": "new"}}}
GET template                         | viewer | 200 | GET /api/templates/{tpl}
PUT template listing                 | editor | 200 | PUT /api/templates/{tpl} | {"name": "Renamed", "tags": ["x"]}
PUT template content                 | editor | 200 | PUT /api/templates/{tpl} | {"content": {"meta": {"title": "changed"}}}
DELETE another's template            | admin  | 204 | DELETE /api/templates/{tpl}
POST template session                | viewer | 200 | POST /api/templates/{tpl}/session
list data sources                    | viewer | 200 | GET /api/data-sources?workspaceId={ws}
GET data source                      | viewer | 200 | GET /api/data-sources/{src}
create a data source                 | editor | 201 | POST /api/data-sources | {"workspaceId": "{ws}", "name": "New", "type": "rest", "config": {"url": "{upstream}/countries"}}
PUT data source                      | editor | 200 | PUT /api/data-sources/{src} | {"name": "Renamed", "config": {"timeoutMs": 3000}}
DELETE data source                   | editor | 204 | DELETE /api/data-sources/{src}
test a saved data source             | editor | 200 | POST /api/data-sources/test | {"id": "{src}"}
test an unsaved data source          | editor | 200 | POST /api/data-sources/test | {"workspaceId": "{ws}", "type": "rest", "config": {"url": "{upstream}/countries"}}
execute a data source                | editor | 200 | POST /api/data-sources/{src}/execute | {"params": {}}
execute for a form that binds it     | viewer | 200 | POST /api/data-sources/{src}/execute | {"templateId": "{tpl}"}
data source schema                   | editor | 200 | GET /api/data-sources/{src}/schema
validate a data source               | editor | 200 | POST /api/data-sources/{src}/validate
data source health                   | editor | 200 | GET /api/data-sources/{src}/health
data source cache                    | editor | 200 | POST /api/data-sources/{src}/cache | {"invalidate": true}
"#;

struct Case {
    name: String,
    /// The lowest role allowed.
    min: Role,
    /// The status of success.
    ok: u16,
    method: &'static str,
    path: String,
    body: Option<String>,
}

impl Case {
    /// The request of this case in world `w`, sent by `me` with `token`.
    fn call(&self, w: &World, me: &Account, token: Option<&str>) -> Call {
        let fill = |text: &str| {
            text.replace("{ws}", &w.ws)
                .replace("{tpl}", &w.tpl)
                .replace("{src}", &w.src)
                .replace("{upstream}", &w.upstream)
                .replace("{dave}", &w.dave_id)
                .replace("{owner}", &w.owner_id)
                .replace("{me}", &me.id)
                .replace("{erin}", &w.erin_email)
                .replace("{invited}", INVITED)
        };
        let body = match self.body.as_deref() {
            None => Value::Null,
            Some("{backup}") => {
                let mut b = w.backup.clone();
                b["workspace"]["name"] = json!("Restored");
                b
            }
            Some(text) => serde_json::from_str(&fill(text)).expect("a JSON body in CASES"),
        };
        Call {
            method: self.method,
            path: fill(&self.path),
            token: token.map(str::to_owned),
            body,
            status: self.ok,
            code: "",
        }
    }
}

fn cases() -> Vec<Case> {
    let role = |r: &str| match r {
        "viewer" => Role::Viewer,
        "editor" => Role::Editor,
        "admin" => Role::Admin,
        "owner" => Role::Owner,
        other => panic!("no role {other} in CASES"),
    };
    let method = |m: &str| match m {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        other => panic!("no method {other} in CASES"),
    };
    CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.splitn(5, '|').map(str::trim).collect();
            let (verb, path) = cols[3].split_once(' ').expect("method and path");
            Case {
                name: cols[0].to_owned(),
                min: role(cols[1]),
                ok: cols[2].parse().expect("a status"),
                method: method(verb),
                path: path.to_owned(),
                body: cols.get(4).map(|b| b.to_string()),
            }
        })
        .collect()
}

/// What a refused request must not have changed.
#[derive(PartialEq)]
struct Snapshot {
    workspace: Value,
    template: Value,
    templates: Value,
    invitations: Value,
    sources: Value,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workspace={} template={} templates={} invitations={} sources={}",
            self.workspace, self.template, self.templates, self.invitations, self.sources
        )
    }
}

async fn snapshot(s: &Server, owner: &Account, w: &World) -> Snapshot {
    let get =
        |path: String| async move { s.get(&path, Some(&owner.access)).await.expect(200).clone() };
    Snapshot {
        workspace: get(format!("/api/workspaces/{}", w.ws)).await,
        template: get(format!("/api/templates/{}", w.tpl)).await,
        templates: get(format!("/api/templates?workspaceId={}", w.ws)).await,
        invitations: get(format!("/api/workspaces/{}/invitations", w.ws)).await,
        sources: get(format!("/api/data-sources?workspaceId={}", w.ws)).await,
    }
}

/// The server, opened to its upstream on 127.0.0.1 (data sources), and
/// the upstream.
async fn servers() -> (Server, Upstream) {
    let up = Upstream::start().await;
    let s = Server::start_with(|c| {
        c.data_source_allow = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    (s, up)
}

async fn people(s: &Server) -> People {
    let p = People {
        alice: s.register("Alice", "alice@example.com").await,
        bob: s.register("Bob", "bob@example.com").await,
        carol: s.register("Carol", "carol@example.com").await,
        dave: s.register("Dave", "dave@example.com").await,
        erin: s.register("Erin", "erin@example.com").await,
    };
    // Erin is added by the cases: only a verified address joins at once.
    s.ensure_verified("erin@example.com").await;
    p
}

/// A fresh workspace of `owner` with Dave as editor, Carol in `carol`'s
/// role (if any), an invitation of [`INVITED`], and a template of the
/// owner's.
async fn world(
    s: &Server,
    up: &Upstream,
    p: &People,
    owner: &Account,
    carol: Option<Role>,
) -> World {
    let ws = s.create_workspace(&owner.access, "Workspace").await;
    let src = id_of(
        s.post(
            "/api/data-sources",
            Some(&owner.access),
            json!({"workspaceId": ws, "name": "Countries", "type": "rest",
                   "config": {"url": up.url("/countries")}}),
        )
        .await
        .expect(201),
    );
    s.invite(&owner.access, &ws, INVITED, "viewer")
        .await
        .expect(202);
    s.add_member(&owner.access, &ws, &p.dave.email, "editor")
        .await;
    if let Some(role) = carol {
        s.add_member(&owner.access, &ws, &p.carol.email, role.as_str())
            .await;
    }
    let tpl = id_of(
        &s.create_template(
            &owner.access,
            &ws,
            "Form",
            Some(json!({"meta": {"title": "original"}, "components": {"c1": {
                "id": "c1", "type": "select", "label": "Country", "index": "a0",
                "properties": {"options": [{"label": "None", "value": "none"}],
                               "optionsSource": {"dataSourceId": src, "labelKey": "name", "valueKey": "code"}}}}})),
        )
        .await,
    );
    let backup = s.backup_json(&owner.access, &ws).await;
    World {
        ws,
        tpl,
        src,
        upstream: up.url(""),
        owner_id: owner.id.clone(),
        dave_id: p.dave.id.clone(),
        erin_email: p.erin.email.clone(),
        backup,
    }
}

/// Checks one answer; returns a line describing a mismatch, if any.
fn check(who: &str, case: &Case, expected: u16, r: &Resp) -> Option<String> {
    let code = match expected {
        403 => Some("forbidden"),
        404 => Some("not_found"),
        401 => Some("unauthorized"),
        _ => None,
    };
    let ok = r.status == expected
        && code
            .is_none_or(|c| r.json["error"]["code"] == c && r.json["error"]["message"].is_string());
    (!ok).then(|| {
        format!(
            "{who}: {} -> expected {expected}, got {}: {}",
            case.name,
            r.status,
            r.text.chars().take(200).collect::<String>()
        )
    })
}

/// Runs every case with Carol in `role` of workspace A (none: not a
/// member), plus the cross-workspace requests, and reports every mismatch.
async fn run_matrix(role: Option<Role>) {
    let (s, up) = servers().await;
    let p = people(&s).await;
    let mut failures = Vec::new();
    for case in cases() {
        let a = world(&s, &up, &p, &p.alice, role).await;
        let b = world(&s, &up, &p, &p.bob, None).await;
        let (before_a, before_b) = (
            snapshot(&s, &p.alice, &a).await,
            snapshot(&s, &p.bob, &b).await,
        );

        // Outsiders first: nothing they do may change anything.
        let who = format!("Carol ({:?} of A) on B", role);
        let r = s
            .call(&case.call(&b, &p.carol, Some(&p.carol.access)))
            .await;
        failures.extend(check(&who, &case, 404, &r));
        let r = s.call(&case.call(&a, &p.bob, Some(&p.bob.access))).await;
        failures.extend(check("Bob (owner of B) on A", &case, 404, &r));
        if snapshot(&s, &p.bob, &b).await != before_b {
            failures.push(format!("{who}: {} changed workspace B", case.name));
        }

        let expected = match role {
            None => 404,
            Some(r) if r >= case.min => case.ok,
            Some(_) => 403,
        };
        let who = format!("Carol as {role:?} of A");
        let r = s
            .call(&case.call(&a, &p.carol, Some(&p.carol.access)))
            .await;
        failures.extend(check(&who, &case, expected, &r));
        if expected >= 400 {
            let after = snapshot(&s, &p.alice, &a).await;
            if after != before_a {
                failures.push(format!(
                    "{who}: refused {} changed workspace A:\n  before {before_a:?}\n  after  {after:?}",
                    case.name
                ));
            }
        }
        if case.name == "POST template session" && r.status == 200 {
            let granted = r.json["role"].as_str().unwrap_or_default();
            if Some(granted) != role.map(Role::as_str) {
                failures.push(format!("{who}: session token role {granted:?}"));
            }
        }
    }

    // The WebSocket: any member may open a template; outsiders get 404.
    let a = world(&s, &up, &p, &p.alice, role).await;
    let b = world(&s, &up, &p, &p.bob, None).await;
    let ws_status = |tpl: String, token: String| {
        let addr = s.addr;
        async move {
            match WsClient::try_connect_token(addr, &tpl, &token, "matrix").await {
                Ok(c) => {
                    c.wait_synced().await;
                    101
                }
                Err(r) => r.status,
            }
        }
    };
    let expected = if role.is_some() { 101 } else { 404 };
    let got = ws_status(a.tpl.clone(), p.carol.access.clone()).await;
    if got != expected {
        failures.push(format!(
            "Carol as {role:?} of A: WebSocket -> expected {expected}, got {got}"
        ));
    }
    if role.is_some() {
        let doc = s.doc_token(&p.carol.access, &a.tpl).await;
        let got = ws_status(a.tpl.clone(), doc).await;
        if got != 101 {
            failures.push(format!(
                "Carol as {role:?} of A: WebSocket with a document token -> {got}"
            ));
        }
    }
    for (who, tpl, token) in [
        ("Carol on B", b.tpl.clone(), p.carol.access.clone()),
        ("Bob on A", a.tpl.clone(), p.bob.access.clone()),
    ] {
        let got = ws_status(tpl, token).await;
        if got != 404 {
            failures.push(format!("{who}: WebSocket -> expected 404, got {got}"));
        }
    }

    assert!(
        failures.is_empty(),
        "{} mismatches of the access matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One test per role of Carol in workspace A.
macro_rules! matrix_tests {
    ($($name:ident: $role:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            run_matrix($role).await;
        }
    )*};
}

matrix_tests! {
    an_owner_may_do_everything: Some(Role::Owner);
    an_admin_may_do_everything_but_touch_owners_and_delete_the_workspace: Some(Role::Admin);
    an_editor_may_read_and_edit_templates_only: Some(Role::Editor);
    a_viewer_may_only_read_and_leave: Some(Role::Viewer);
    a_non_member_gets_404_everywhere: None;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_without_a_token_get_401_everywhere() {
    let (s, up) = servers().await;
    let p = people(&s).await;
    let w = world(&s, &up, &p, &p.alice, None).await;
    let before = snapshot(&s, &p.alice, &w).await;
    let mut failures = Vec::new();
    for case in cases() {
        let r = s.call(&case.call(&w, &p.carol, None)).await;
        failures.extend(check("anonymous", &case, 401, &r));
        let r = s.call(&case.call(&w, &p.carol, Some("not-a-token"))).await;
        if r.status != 401 || r.json["error"]["code"] != "invalid_token" {
            failures.push(format!(
                "bad token: {} -> {}: {}",
                case.name, r.status, r.text
            ));
        }
    }
    for path in [
        "/api/workspaces",
        "/api/templates",
        "/api/auth/me",
        "/api/auth/sessions",
    ] {
        let r = s.get(path, None).await;
        if r.status != 401 {
            failures.push(format!("anonymous GET {path} -> {}", r.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(snapshot(&s, &p.alice, &w).await, before);
    s.ws_refused(&w.tpl, None).await.expect(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listings_show_only_the_callers_workspaces_and_templates() {
    let (s, up) = servers().await;
    let p = people(&s).await;
    let a = world(&s, &up, &p, &p.alice, Some(Role::Viewer)).await;
    let b = world(&s, &up, &p, &p.bob, None).await;
    let ids = |r: &Resp, key: Option<&str>| -> Vec<String> {
        let list = match key {
            Some(k) => &r.json[k],
            None => &r.json,
        };
        list.as_array()
            .unwrap_or_else(|| panic!("{}", r.text))
            .iter()
            .map(id_of)
            .collect()
    };
    let carol_ws = s.get("/api/workspaces", Some(&p.carol.access)).await;
    assert_eq!(ids(&carol_ws, None), vec![a.ws.clone()]);
    assert_eq!(carol_ws.json[0]["role"], "viewer");
    let carol_tpl = s.get("/api/templates", Some(&p.carol.access)).await;
    assert_eq!(ids(&carol_tpl, Some("items")), vec![a.tpl.clone()]);
    assert_eq!(carol_tpl.json["total"], 1);
    // Dave is an editor of both.
    let dave_tpl = s.get("/api/templates", Some(&p.dave.access)).await;
    let mut dave_ids = ids(&dave_tpl, Some("items"));
    dave_ids.sort();
    let mut both = vec![a.tpl.clone(), b.tpl.clone()];
    both.sort();
    assert_eq!(dave_ids, both);
    // Erin belongs nowhere.
    let erin = s.get("/api/templates", Some(&p.erin.access)).await;
    assert_eq!(erin.expect(200)["total"], 0);
    assert_eq!(
        s.get("/api/workspaces", Some(&p.erin.access))
            .await
            .expect(200),
        &json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_editor_deletes_own_templates_but_not_once_demoted_to_viewer() {
    let (s, up) = servers().await;
    let p = people(&s).await;
    let a = world(&s, &up, &p, &p.alice, Some(Role::Editor)).await;
    let mine = id_of(
        &s.create_template(&p.carol.access, &a.ws, "Mine", None)
            .await,
    );
    let kept = id_of(
        &s.create_template(&p.carol.access, &a.ws, "Kept", None)
            .await,
    );
    // Another editor's template is not hers to delete.
    s.delete(&format!("/api/templates/{}", a.tpl), Some(&p.carol.access))
        .await
        .expect_error(403, "forbidden");
    s.delete(&format!("/api/templates/{mine}"), Some(&p.carol.access))
        .await
        .expect(204);
    s.set_role(&p.alice.access, &a.ws, &p.carol.id, "viewer")
        .await;
    s.delete(&format!("/api/templates/{kept}"), Some(&p.carol.access))
        .await
        .expect_error(403, "forbidden");
    s.put(
        &format!("/api/templates/{kept}"),
        Some(&p.carol.access),
        json!({"name": "Still mine?"}),
    )
    .await
    .expect_error(403, "forbidden");
    s.get(&format!("/api/templates/{kept}"), Some(&p.carol.access))
        .await
        .expect(200);
    // Dave, an editor, may not delete Carol's template either.
    s.delete(&format!("/api/templates/{kept}"), Some(&p.dave.access))
        .await
        .expect_error(403, "forbidden");
}
