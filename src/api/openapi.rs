//! What the OpenAPI document says beyond the route declarations: one
//! operation id per operation, the 400 answer of every operation that
//! reads a body or a query string, the rules the server checks on text
//! fields (as lengths, patterns and enums), and the links from the
//! operations that create a resource to those that use its id.
//!
//! `utoipa` derives the paths, parameters, bodies and schemas from the
//! handlers; these additions apply to many operations at once, so they are
//! made here, on the finished document, rather than repeated on every
//! handler.

use serde_json::{json, Map, Value};

/// The methods an OpenAPI path item may hold operations for.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The description of the 400 answer added to operations with a body or a
/// query string.
const MALFORMED: &str = "Malformed request: the body is not JSON of the documented shape \
(`invalid_json`), or a query parameter does not parse (`bad_request`)";

/// One link: after `source` answers `status`, `target` can be called with
/// `parameters` (and `body` merged into its generated body) taken from the
/// answer or the request, as OpenAPI runtime expressions.
struct Link {
    source: (&'static str, &'static str),
    status: &'static str,
    name: &'static str,
    target: (&'static str, &'static str),
    parameters: &'static [(&'static str, &'static str)],
    body: Option<(&'static str, &'static str)>,
}

/// Every operation that takes a workspace's, template's, version's, data
/// source's, member's, invitation's or session's id can be reached from the
/// operation that created (or listed) it.
fn links() -> Vec<Link> {
    const WS: &str = "/api/workspaces/{id}";
    const TPL: &str = "/api/templates/{id}";
    const DS: &str = "/api/data-sources/{id}";
    const BODY_ID: &[(&str, &str)] = &[("path.id", "$response.body#/id")];
    let mut links = Vec::new();
    let mut add = |source: (&'static str, &'static str),
                   status: &'static str,
                   name: &'static str,
                   target: (&'static str, &'static str),
                   parameters: &'static [(&'static str, &'static str)],
                   body: Option<(&'static str, &'static str)>| {
        links.push(Link {
            source,
            status,
            name,
            target,
            parameters,
            body,
        })
    };

    // A new workspace: itself, its members and invitations, and what is
    // created in it.
    let ws = ("post", "/api/workspaces");
    for (name, target) in [
        ("GetWorkspace", ("get", WS)),
        ("UpdateWorkspace", ("put", WS)),
        ("DeleteWorkspace", ("delete", WS)),
        ("AddMember", ("post", "/api/workspaces/{id}/members")),
        (
            "ListInvitations",
            ("get", "/api/workspaces/{id}/invitations"),
        ),
        (
            "WorkspaceAnalytics",
            ("get", "/api/workspaces/{id}/analytics"),
        ),
        ("BackUpWorkspace", ("post", "/api/workspaces/{id}/backup")),
        ("RestoreWorkspace", ("post", "/api/workspaces/{id}/restore")),
    ] {
        add(ws, "201", name, target, BODY_ID, None);
    }
    const WS_QUERY: &[(&str, &str)] = &[("query.workspaceId", "$response.body#/id")];
    add(
        ws,
        "201",
        "ListTemplates",
        ("get", "/api/templates"),
        WS_QUERY,
        None,
    );
    add(
        ws,
        "201",
        "ListDataSources",
        ("get", "/api/data-sources"),
        WS_QUERY,
        None,
    );
    add(
        ws,
        "201",
        "ImportTemplate",
        ("post", "/api/templates/import"),
        WS_QUERY,
        None,
    );
    let in_ws = Some(("workspaceId", "$response.body#/id"));
    add(
        ws,
        "201",
        "CreateTemplate",
        ("post", "/api/templates"),
        &[],
        in_ws,
    );
    add(
        ws,
        "201",
        "CreateDataSource",
        ("post", "/api/data-sources"),
        &[],
        in_ws,
    );
    add(
        ws,
        "201",
        "TestDataSource",
        ("post", "/api/data-sources/test"),
        &[],
        in_ws,
    );

    // A member added, or an address invited.
    let member = ("post", "/api/workspaces/{id}/members");
    const MEMBER: &[(&str, &str)] = &[
        ("path.id", "$request.path.id"),
        ("path.userId", "$response.body#/userId"),
    ];
    add(
        member,
        "201",
        "UpdateMember",
        ("put", "/api/workspaces/{id}/members/{userId}"),
        MEMBER,
        None,
    );
    add(
        member,
        "201",
        "RemoveMember",
        ("delete", "/api/workspaces/{id}/members/{userId}"),
        MEMBER,
        None,
    );
    const INVITED: &[(&str, &str)] = &[
        ("path.id", "$request.path.id"),
        ("path.email", "$response.body#/email"),
    ];
    add(
        member,
        "202",
        "CancelInvitation",
        ("delete", "/api/workspaces/{id}/invitations/{email}"),
        INVITED,
        None,
    );

    // A new template (created or imported): everything under its id.
    for source in [
        ("post", "/api/templates"),
        ("post", "/api/templates/import"),
    ] {
        for (name, target) in [
            ("GetTemplate", ("get", TPL)),
            ("UpdateTemplate", ("put", TPL)),
            ("DeleteTemplate", ("delete", TPL)),
            ("OpenSession", ("post", "/api/templates/{id}/session")),
            ("ListVersions", ("get", "/api/templates/{id}/versions")),
            ("SaveVersion", ("post", "/api/templates/{id}/versions")),
            ("ExportTemplate", ("post", "/api/templates/{id}/export")),
            ("ImportIntoTemplate", ("post", "/api/templates/{id}/import")),
            ("PreviewTemplate", ("get", "/api/templates/{id}/preview")),
            (
                "PublicPreview",
                ("get", "/api/public/templates/{id}/preview"),
            ),
            (
                "TemplateAnalytics",
                ("get", "/api/templates/{id}/analytics"),
            ),
            ("TemplateProblems", ("get", "/api/templates/{id}/problems")),
        ] {
            add(source, "201", name, target, BODY_ID, None);
        }
    }

    // A saved version.
    let version = ("post", "/api/templates/{id}/versions");
    const NUMBER: &[(&str, &str)] = &[
        ("path.id", "$request.path.id"),
        ("path.number", "$response.body#/number"),
    ];
    add(
        version,
        "201",
        "GetVersion",
        ("get", "/api/templates/{id}/versions/{number}"),
        NUMBER,
        None,
    );
    add(
        version,
        "201",
        "RestoreVersion",
        ("post", "/api/templates/{id}/versions/{number}/restore"),
        NUMBER,
        None,
    );
    add(
        version,
        "201",
        "DiffVersions",
        ("get", "/api/templates/{id}/versions/{from}/diff/{to}"),
        &[
            ("path.id", "$request.path.id"),
            ("path.from", "$response.body#/number"),
            ("path.to", "$response.body#/number"),
        ],
        None,
    );

    // A new data source.
    let ds = ("post", "/api/data-sources");
    for (name, target) in [
        ("GetDataSource", ("get", DS)),
        ("UpdateDataSource", ("put", DS)),
        ("DeleteDataSource", ("delete", DS)),
        (
            "ExecuteDataSource",
            ("post", "/api/data-sources/{id}/execute"),
        ),
        ("DataSourceSchema", ("get", "/api/data-sources/{id}/schema")),
        (
            "ValidateDataSource",
            ("post", "/api/data-sources/{id}/validate"),
        ),
        ("DataSourceHealth", ("get", "/api/data-sources/{id}/health")),
        (
            "ClearDataSourceCache",
            ("post", "/api/data-sources/{id}/cache"),
        ),
    ] {
        add(ds, "201", name, target, BODY_ID, None);
    }

    // The caller's sessions.
    add(
        ("get", "/api/auth/sessions"),
        "200",
        "RevokeSession",
        ("delete", "/api/auth/sessions/{id}"),
        &[("path.id", "$response.body#/0/id")],
        None,
    );
    links
}

/// Completes the generated document; see the module comment.
pub fn complete(doc: &mut Value) {
    unique_operation_ids(doc);
    malformed_requests(doc);
    field_rules(doc);
    add_links(doc);
}

/// No control character (Unicode `Cc`, what `char::is_control` finds).
const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// Like [`NO_CONTROL`], but tabs and line breaks are allowed.
const NO_CONTROL_MULTILINE: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";
/// Something besides white space, and no control character.
const NOT_BLANK: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";
/// `local@domain`: neither part empty nor holding white space, controls or
/// `<>()[]\,;:"@`; the domain has a dot, not at its start or end.
const EMAIL: &str = r#"^[^\s\x00-\x1f\x7f-\x9f<>()\[\]\\,;:"@]+@[^\s\x00-\x1f\x7f-\x9f<>()\[\]\\,;:"@.][^\s\x00-\x1f\x7f-\x9f<>()\[\]\\,;:"@]*\.[^\s\x00-\x1f\x7f-\x9f<>()\[\]\\,;:"@]*[^\s\x00-\x1f\x7f-\x9f<>()\[\]\\,;:"@.]$"#;

/// A display name of 1 to `max` characters (`auth::checks::check_name`).
fn name(max: usize) -> Value {
    json!({ "minLength": 1, "maxLength": max, "pattern": NOT_BLANK })
}

/// A free-text description (`auth::checks::check_description`).
fn description() -> Value {
    json!({ "maxLength": 2000 })
}

/// An address `auth::checks::normalize_email` accepts.
fn email() -> Value {
    json!({ "minLength": 3, "maxLength": 254, "pattern": EMAIL })
}

/// What `auth::password::policy_violations` can be told by a schema; its
/// other rules (a letter, a digit or symbol, four different characters,
/// not the address, not easy to guess) answer 422 with their reasons.
fn password() -> Value {
    use crate::auth::password::{MAX_LEN, MIN_LEN};
    json!({ "minLength": MIN_LEN, "maxLength": MAX_LEN })
}

/// Tags of a template: at most 20, each 1 to 50 characters.
fn tags() -> Value {
    let mut item = name(50);
    item["type"] = json!("string");
    json!({ "maxItems": 20, "items": item })
}

/// A saved version's number, or `current` (the live document).
const VERSION_OR_CURRENT: &str = "^(current|[1-9][0-9]{0,18})$";

fn role() -> Value {
    json!({ "enum": ["viewer", "editor", "admin", "owner"] })
}

/// The rules the handlers check, added to the schema of each field, by
/// schema and property name.
fn field_rules(doc: &mut Value) {
    let control = || json!({ "pattern": NO_CONTROL });
    let rules: Vec<(&str, &str, Value)> = vec![
        ("RegisterRequest", "email", email()),
        ("RegisterRequest", "name", name(100)),
        ("RegisterRequest", "password", password()),
        ("UpdateMeRequest", "email", email()),
        ("UpdateMeRequest", "name", name(100)),
        (
            "UpdateMeRequest",
            "color",
            json!({ "pattern": "^#[0-9A-Fa-f]{6}$" }),
        ),
        ("ChangePasswordRequest", "newPassword", password()),
        ("ResetRequest", "password", password()),
        ("CreateWorkspace", "name", name(200)),
        ("CreateWorkspace", "description", description()),
        ("UpdateWorkspace", "name", name(200)),
        ("UpdateWorkspace", "description", description()),
        ("AddMember", "email", email()),
        ("AddMember", "role", role()),
        ("UpdateMember", "role", role()),
        ("CreateTemplate", "name", name(200)),
        ("CreateTemplate", "description", description()),
        ("CreateTemplate", "tags", tags()),
        ("UpdateTemplate", "name", name(200)),
        ("UpdateTemplate", "description", description()),
        ("UpdateTemplate", "tags", tags()),
        (
            "CreateVersion",
            "name",
            json!({ "maxLength": 200, "pattern": NO_CONTROL }),
        ),
        (
            "CreateVersion",
            "note",
            json!({ "maxLength": 2000, "pattern": NO_CONTROL_MULTILINE }),
        ),
        ("MemberView", "role", role()),
        ("WorkspaceView", "role", role()),
        (
            "Backup",
            "format",
            json!({ "enum": ["coform-workspace-backup"] }),
        ),
        ("Backup", "version", json!({ "enum": [1] })),
        (
            "TemplateFile",
            "format",
            json!({ "enum": ["coform-template"] }),
        ),
        ("TemplateFile", "version", json!({ "enum": [1] })),
        ("FileListing", "name", name(200)),
        ("FileListing", "description", description()),
        ("FileListing", "tags", tags()),
        ("CreateDataSource", "name", name(100)),
        (
            "CreateDataSource",
            "type",
            json!({ "enum": ["rest", "graphql", "database"] }),
        ),
        ("UpdateDataSource", "name", name(100)),
        ("TestDataSource", "name", name(100)),
        (
            "TestDataSource",
            "type",
            json!({ "enum": ["rest", "graphql", "database", null] }),
        ),
    ];
    for (schema, property, rule) in rules {
        let Some(field) = doc
            .pointer_mut(&format!(
                "/components/schemas/{schema}/properties/{property}"
            ))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        // A nullable field (`["string", "null"]`) keeps `null` acceptable:
        // its rules apply to the strings only.
        for (k, v) in rule.as_object().into_iter().flatten() {
            field.insert(k.clone(), v.clone());
        }
    }
    // A template file has exactly its documented keys.
    for schema in ["TemplateFile", "FileListing"] {
        if let Some(s) = doc
            .pointer_mut(&format!("/components/schemas/{schema}"))
            .and_then(Value::as_object_mut)
        {
            s.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    // Query strings: free text without control characters; the listings'
    // type filter names a kind of source. Path segments: an invitation's
    // address, version numbers.
    const DIFF: &str = "/api/templates/{id}/versions/{from}/diff/{to}";
    let version = || json!({ "pattern": VERSION_OR_CURRENT });
    let number = || json!({ "minimum": 1 });
    for (method, path, param, rule) in [
        ("get", "/api/templates", "q", control()),
        ("get", "/api/templates", "tag", control()),
        ("get", "/api/data-sources", "search", control()),
        (
            "get",
            "/api/data-sources",
            "type",
            json!({ "enum": ["rest", "graphql", "database"] }),
        ),
        (
            "delete",
            "/api/workspaces/{id}/invitations/{email}",
            "email",
            email(),
        ),
        ("get", DIFF, "from", version()),
        ("get", DIFF, "to", version()),
        (
            "get",
            "/api/templates/{id}/versions/{number}",
            "number",
            number(),
        ),
        (
            "post",
            "/api/templates/{id}/versions/{number}/restore",
            "number",
            number(),
        ),
    ] {
        let Some(params) = doc
            .pointer_mut(&format!(
                "/paths/{}/{method}/parameters",
                path.replace('/', "~1")
            ))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for p in params.iter_mut().filter(|p| p["name"] == param) {
            if let Some(schema) = p["schema"].as_object_mut() {
                for (k, v) in rule.as_object().into_iter().flatten() {
                    schema.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Each operation's `(method, path, operation)`, in document order.
fn operations(doc: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut out = Vec::new();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return out;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if let (true, Some(op)) = (METHODS.contains(&method.as_str()), op.as_object_mut()) {
                out.push((method.clone(), path.clone(), op));
            }
        }
    }
    out
}

/// The handlers' names repeat across modules (`list`, `get`, `create`...);
/// an id used by several operations is prefixed with the path's fixed
/// segments, `get` of `/api/templates/{id}/versions/{number}` becoming
/// `templates_versions_get`.
fn unique_operation_ids(doc: &mut Value) {
    let mut count = std::collections::HashMap::<String, usize>::new();
    for (_, _, op) in operations(doc) {
        if let Some(id) = op.get("operationId").and_then(Value::as_str) {
            *count.entry(id.to_owned()).or_default() += 1;
        }
    }
    for (_, path, op) in operations(doc) {
        let Some(id) = op.get("operationId").and_then(Value::as_str) else {
            continue;
        };
        if count[id] < 2 {
            continue;
        }
        let mut words: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != "api" && !s.starts_with('{'))
            .map(|s| s.replace('-', "_"))
            .collect();
        if words.last().map(String::as_str) != Some(id) {
            words.push(id.to_owned());
        }
        op.insert("operationId".into(), Value::String(words.join("_")));
    }
}

/// Every operation that reads a JSON body or a query string answers 400
/// when it does not parse.
fn malformed_requests(doc: &mut Value) {
    for (_, _, op) in operations(doc) {
        let reads_query = op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        if !(reads_query || op.contains_key("requestBody")) {
            continue;
        }
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        match responses.get_mut("400") {
            Some(existing) => {
                let said = existing["description"].as_str().unwrap_or("").to_owned();
                if !said.contains("invalid_json") {
                    let joined = if said.is_empty() {
                        MALFORMED.to_owned()
                    } else {
                        format!("{said}; or: {MALFORMED}")
                    };
                    existing["description"] = Value::String(joined);
                }
            }
            None => {
                responses.insert("400".into(), json!({ "description": MALFORMED }));
            }
        }
    }
}

/// Writes [`links`] into the responses of their source operations, naming
/// targets by operation id.
fn add_links(doc: &mut Value) {
    let ids: std::collections::HashMap<(String, String), String> = operations(doc)
        .into_iter()
        .filter_map(|(method, path, op)| {
            let id = op.get("operationId")?.as_str()?.to_owned();
            Some(((method, path), id))
        })
        .collect();
    for link in links() {
        let key = |(m, p): (&str, &str)| (m.to_owned(), p.to_owned());
        // A link to or from an operation the document lacks is a mistake in
        // the table above; the document test finds it.
        let Some(target) = ids.get(&key(link.target)) else {
            continue;
        };
        let Some(response) = doc
            .pointer_mut(&format!(
                "/paths/{}/{}/responses/{}",
                link.source.1.replace('~', "~0").replace('/', "~1"),
                link.source.0,
                link.status
            ))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut value = json!({
            "operationId": target,
            "parameters": link.parameters.iter()
                .map(|(name, expr)| ((*name).to_owned(), Value::String((*expr).to_owned())))
                .collect::<Map<String, Value>>(),
        });
        if let Some((field, expr)) = link.body {
            value["requestBody"] = json!({ field: expr });
        }
        if value["parameters"].as_object().is_some_and(Map::is_empty) {
            value.as_object_mut().map(|v| v.remove("parameters"));
        }
        response
            .entry("links")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|links| links.insert(link.name.to_owned(), value));
    }
}
