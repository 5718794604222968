//! Tests of the model: the validator, strict parsing, lenient reading,
//! display order and diffs.

use std::collections::BTreeSet;

use serde_json::{json, Map as JsonMap, Value};

use crate::check::is_accept;
use crate::*;

fn good() -> Value {
    json!({
        "meta": {"name": "Signup", "description": "Join us", "tags": ["a", "b"],
                 "category": "hr", "theme": {"dark": true}},
        "components": {
            "s1": {"id": "s1", "type": "section", "label": "You", "parent": null, "index": "a0",
                   "properties": {"description": "About you", "collapsible": true}},
            "name": {"id": "name", "type": "text", "label": "Name", "parent": "s1", "index": "a0",
                     "properties": {"placeholder": "Ada", "name": "full_name", "autocomplete": "name"},
                     "validation": {"required": true, "minLength": 2, "maxLength": 80.0,
                                    "pattern": "^[^<>]+$", "message": "Your name",
                                    "rules": ["noDigits"], "customValidation": "value => value.length > 1"},
                     "position": {"x": 0, "y": 10, "w": 200, "h": 40},
                     "styling": {"theme": "light", "customStyles": {"font-weight": "bold"}}},
            "age": {"id": "age", "type": "number", "label": "Age", "parent": "s1", "index": "a1",
                    "properties": {"min": 0, "max": 150, "step": 1, "defaultValue": 30},
                    "validation": {"min": 18, "max": 120}},
            "mail": {"id": "mail", "type": "email", "label": "E-mail", "parent": null, "index": "a1"},
            "tel": {"id": "tel", "type": "phone", "label": "Phone", "index": "a2"},
            "bio": {"id": "bio", "type": "textarea", "label": "Bio", "index": "a3",
                    "properties": {"rows": 4}},
            "born": {"id": "born", "type": "date", "label": "Born", "index": "a4",
                     "properties": {"min": "1900-01-01", "max": "2024-02-29"},
                     "validation": {"min": "1900-01-01"}},
            "color": {"id": "color", "type": "select", "label": "Colour", "index": "a5",
                      "properties": {"options": [{"value": "r", "label": "Red"}, {"value": "g", "label": "Green"}],
                                     "multiple": true, "defaultValue": ["r"]}},
            "size": {"id": "size", "type": "radio", "label": "Size", "index": "a6",
                     "properties": {"options": [{"value": "s", "label": "S"}], "layout": "horizontal",
                                    "defaultValue": "s"},
                     "validation": {"required": true}},
            "tos": {"id": "tos", "type": "checkbox", "label": "I agree", "index": "a7",
                    "properties": {"defaultValue": false}, "validation": {"required": true}},
            "cv": {"id": "cv", "type": "file", "label": "CV", "index": "a8",
                   "properties": {"accept": "application/pdf, .doc,image/*", "maxSize": 1000000, "multiple": false}},
            "h": {"id": "h", "type": "heading", "label": "", "index": "a9",
                  "properties": {"text": "Welcome", "level": 2}, "validation": {}},
            "p": {"id": "p", "type": "paragraph", "label": "", "index": "b0",
                  "properties": {"text": "Fill in\nplease"}},
            "go": {"id": "go", "type": "button", "label": "Send", "index": "b1",
                   "properties": {"action": "submit", "text": "Send"}}
        }
    })
}

fn errors(v: &Value) -> Vec<(String, String)> {
    validate(v)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn paths(v: &Value) -> Vec<String> {
    errors(v).into_iter().map(|(p, _)| p).collect()
}

/// The validator finds a problem at each of `wants` (among others).
fn assert_errors_at(v: &Value, wants: &[&str]) {
    let got = paths(v);
    for want in wants {
        assert!(
            got.iter().any(|p| p == want),
            "no error at {want}: {got:#?}"
        );
    }
}

/// The message of the problem at `path`, which must be found.
fn message_at(v: &Value, path: &str) -> String {
    let errs = errors(v);
    let found = errs.iter().find(|(p, _)| p == path);
    found
        .unwrap_or_else(|| panic!("no error at {path}: {errs:#?}"))
        .1
        .clone()
}

/// The problem at each path says what its pair names.
fn assert_messages(v: &Value, wants: &[(&str, &str)]) {
    for (path, says) in wants {
        let message = message_at(v, path);
        assert!(
            message.contains(says),
            "{path}: {message:?} does not say {says:?}"
        );
    }
}

#[test]
fn a_good_document_of_every_type_is_valid() {
    assert_eq!(errors(&good()), vec![]);
    let form = parse(&good()).unwrap();
    assert_eq!(form.components.len(), 14);
    let kinds: BTreeSet<ComponentType> = form
        .components
        .values()
        .map(|c| c.component_type())
        .collect();
    assert_eq!(kinds.len(), ComponentType::ALL.len());
    assert_eq!(form.meta.name, "Signup");
    assert_eq!(form.meta.extra["theme"], json!({"dark": true}));
    let Kind::Text {
        properties,
        validation,
    } = &form.components["name"].kind
    else {
        panic!("name is a text input")
    };
    assert_eq!(validation.required, Some(true));
    assert_eq!(validation.max_length, Some(80));
    assert_eq!(properties.placeholder.as_deref(), Some("Ada"));
    let Kind::Number { properties, .. } = &form.components["age"].kind else {
        panic!("age is a number")
    };
    assert_eq!(properties.min, Some(0.0));
    let Kind::Date { properties, .. } = &form.components["born"].kind else {
        panic!("born is a date")
    };
    assert_eq!(properties.max, Some(types::Date("2024-02-29".into())));
    let Kind::Button { properties, .. } = &form.components["go"].kind else {
        panic!("go is a button")
    };
    assert_eq!(properties.action, Some(ButtonAction::Submit));
    // Empty content and an empty object are valid too.
    assert_eq!(errors(&json!({})), vec![]);
    assert_eq!(errors(&json!({"meta": {}, "components": {}})), vec![]);
}

#[test]
fn typed_form_serializes_to_the_documented_shape() {
    let form = parse(&good()).unwrap();
    let v = serde_json::to_value(&form).unwrap();
    assert_eq!(v["components"]["name"]["type"], "text");
    assert_eq!(v["components"]["name"]["validation"]["maxLength"], 80);
    assert_eq!(v["components"]["born"]["properties"]["min"], "1900-01-01");
    assert_eq!(v["meta"]["theme"], json!({"dark": true}));
    let back: Form = serde_json::from_value(v).unwrap();
    assert_eq!(back, form);
}

#[test]
fn hostile_values_get_precise_paths() {
    let mut doc = good();
    let c = &mut doc["components"];
    c["age"]["validation"]["min"] = json!("eighteen");
    c["name"]["validation"]["maxLength"] = json!(1.5);
    c["name"]["validation"]["required"] = json!("yes");
    c["name"]["properties"]["onclick"] = json!("alert(1)");
    c["bio"]["properties"]["rows"] = json!(1000);
    c["h"]["properties"]["level"] = json!(7);
    c["go"]["properties"]["action"] = json!("javascript:alert(1)");
    c["cv"]["properties"]["accept"] = json!("<script>");
    c["born"]["validation"]["max"] = json!("2023-02-29");
    c["size"]["properties"]["options"][0]["value"] = json!(5);
    c["color"]["properties"]["options"][1]["value"] = json!("r");
    c["h"]["validation"]["required"] = json!(true);
    c["mail"]["validation"] = json!({"min": 3});
    c["tel"]["position"] = json!({"x": "left", "w": -1, "z": 0});
    c["tel"]["styling"] = json!({"customStyles": {"a b": "x"}, "css": "y"});
    c["p"]["label"] = json!(["not", "a", "string"]);
    c["p"]["evil"] = json!(1);
    doc["meta"]["tags"] = json!(["ok", 3, " "]);
    doc["meta"]["name"] = json!({"x": 1});
    assert_errors_at(
        &doc,
        &[
            "components.age.validation.min",
            "components.name.validation.maxLength",
            "components.name.validation.required",
            "components.name.properties.onclick",
            "components.bio.properties.rows",
            "components.h.properties.level",
            "components.go.properties.action",
            "components.cv.properties.accept",
            "components.born.validation.max",
            "components.size.properties.options[0].value",
            "components.color.properties.options[1].value",
            "components.h.validation.required",
            "components.mail.validation.min",
            "components.tel.position.x",
            "components.tel.position.w",
            "components.tel.position.z",
            "components.tel.styling.customStyles.a b",
            "components.tel.styling.css",
            "components.p.label",
            "components.p.evil",
            "meta.tags[1]",
            "meta.tags[2]",
            "meta.name",
            // The radio's default no longer matches an option value.
            "components.size.properties.defaultValue",
        ],
    );
    assert_messages(
        &doc,
        &[
            ("components.age.validation.min", "number"),
            ("components.color.properties.options[1].value", "duplicate"),
            ("components.h.validation.required", "heading"),
        ],
    );
}

#[test]
fn unknown_types_orphans_loops_and_duplicate_ids() {
    let doc = json!({"components": {
        "a": {"id": "a", "type": "marquee", "index": "a0"},
        "b": {"id": "b", "type": "text", "index": "a1", "parent": "ghost"},
        "c": {"id": "c", "type": "text", "index": "a2", "parent": "d"},
        "d": {"id": "d", "type": "heading", "index": "a3"},
        "e": {"id": "b", "type": "text", "index": "a4"},
        "f": {"id": "zz", "type": "text", "index": "a5"},
        "s1": {"id": "s1", "type": "section", "index": "a6", "parent": "s2"},
        "s2": {"id": "s2", "type": "section", "index": "a7", "parent": "s1"},
        "s3": {"id": "s3", "type": "section", "index": "a8", "parent": "s3"},
        "g": {"type": "text"},
        "h": 5,
        "i": {"id": "i", "type": "text", "index": "has space"},
        "j k": {"id": "j k", "type": "text", "index": "a9"}
    }, "extra": {}});
    assert_messages(
        &doc,
        &[
            ("components.a.type", "unknown component type"),
            ("components.b.parent", "orphan"),
            ("components.c.parent", "not a section"),
            ("components.e.id", "duplicate id"),
            ("components.f.id", "must equal"),
            ("components.s1.parent", "loop"),
            ("components.s2.parent", "loop"),
            ("components.s3.parent", "own parent"),
            ("components.h", "object"),
            ("components.i.index", "fractional"),
            ("components.j k (key)", "spaces"),
            ("extra", "unknown key"),
        ],
    );
    assert_eq!(message_at(&doc, "components.g.id"), "is required");
    assert_eq!(message_at(&doc, "components.g.index"), "is required");
}

#[test]
fn select_and_radio_need_options_and_defaults_must_match() {
    let doc = json!({"components": {
        "s": {"id": "s", "type": "select", "index": "a0"},
        "r": {"id": "r", "type": "radio", "index": "a1", "properties": {"options": []}},
        "c": {"id": "c", "type": "checkbox", "index": "a2",
              "properties": {"options": [{"value": "x", "label": "X"}], "defaultValue": ["y"]}},
        "n": {"id": "n", "type": "number", "index": "a3",
              "properties": {"min": 10, "max": 1, "step": 0}},
        "t": {"id": "t", "type": "text", "index": "a4",
              "validation": {"minLength": 5, "maxLength": 2, "pattern": "x".repeat(MAX_PATTERN_CHARS + 1)}},
        "f": {"id": "f", "type": "file", "index": "a5", "properties": {"defaultValue": "x"}}
    }});
    assert_errors_at(
        &doc,
        &[
            "components.s.properties.options",
            "components.r.properties.options",
            "components.c.properties.defaultValue[0]",
            "components.n.properties.max",
            "components.n.properties.step",
            "components.t.validation.maxLength",
            "components.t.validation.pattern",
            "components.f.properties.defaultValue",
        ],
    );
}

#[test]
fn patterns_and_custom_code_are_data_never_compiled() {
    // An invalid regex and code-looking strings are fine: kept as text.
    let doc = json!({"components": {"t": {"id": "t", "type": "text", "index": "a0",
        "validation": {"pattern": "([unclosed", "rules": ["process.exit()"],
                       "customValidation": "while(true){}"}}}});
    assert_eq!(errors(&doc), vec![]);
    let form = parse(&doc).unwrap();
    let Kind::Text { validation, .. } = &form.components["t"].kind else {
        panic!("t is a text input")
    };
    assert_eq!(validation.pattern.as_deref(), Some("([unclosed"));
}

#[test]
fn error_list_is_bounded() {
    let mut comps = JsonMap::new();
    for i in 0..300 {
        comps.insert(
            format!("c{i}"),
            json!({"id": format!("c{i}"), "type": "nope", "index": "a"}),
        );
    }
    let errs = validate(&json!({ "components": comps })).unwrap_err();
    assert_eq!(errs.len(), MAX_ERRORS + 1);
    assert!(errs.last().unwrap().message.contains("200 more"));
    let mut many = JsonMap::new();
    for i in 0..=MAX_COMPONENTS {
        many.insert(format!("c{i}"), json!({}));
    }
    let errs = validate(&json!({ "components": many })).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "components");
}

#[test]
fn non_object_roots_and_deep_meta() {
    assert_eq!(paths(&json!([1])), vec![""]);
    assert_eq!(
        paths(&json!({"meta": 1, "components": []})),
        vec!["meta", "components"]
    );
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    assert_eq!(paths(&json!({"meta": {"x": deep}})), vec!["meta.x"]);
}

#[test]
fn numbers_read_exactly_and_survive_a_round_trip_through_text() {
    // Long numbers are where a fast, inexact reading is off by one unit
    // in the last place: written out and read again, they changed.
    for text in [
        "16666666666666666666666666666666666666666666666",
        "0.30000000000000004441",
        "9007199254740993",
        "2.2250738585072011e-308",
    ] {
        let exact: f64 = text.parse().unwrap();
        let v = parse_strict(&format!(r#"{{"n": {text}}}"#)).unwrap();
        assert_eq!(v["n"].as_f64(), Some(exact), "{text}");
        let again = parse_strict(&v.to_string()).unwrap();
        assert!(json_eq(&again, &v), "{text}: {v} became {again}");
    }
}

#[test]
fn strict_parsing_refuses_duplicate_keys_with_their_path() {
    let text = r#"{"content": {"components": {"c1": {"id": "c1"}, "c1": {"id": "c1"}}}}"#;
    let err = parse_strict(text).unwrap_err();
    assert_eq!(err.path, "content.components.c1");
    assert_eq!(err.message, "duplicate key");
    let err = parse_strict(r#"{"a": [{"x": 1, "x": 2}]}"#).unwrap_err();
    assert_eq!(err.path, "a[0].x");
    let err = parse_strict("{").unwrap_err();
    assert!(err.message.starts_with("invalid JSON"), "{err}");
    assert!(parse_strict("{} x").is_err());
    let ok = parse_strict(r#"{"a": [1, 2.5, -3, "s", null, true, {"b": {}}]}"#).unwrap();
    assert_eq!(ok, json!({"a": [1, 2.5, -3, "s", null, true, {"b": {}}]}));
}

#[test]
fn display_order_follows_parents_and_fractional_indexes() {
    let form = Form::read(&good());
    let order: Vec<(usize, &str)> = form
        .ordered()
        .into_iter()
        .map(|(d, c)| (d, c.id.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            (0, "s1"),
            (1, "name"),
            (1, "age"),
            (0, "mail"),
            (0, "tel"),
            (0, "bio"),
            (0, "born"),
            (0, "color"),
            (0, "size"),
            (0, "tos"),
            (0, "cv"),
            (0, "h"),
            (0, "p"),
            (0, "go"),
        ]
    );
    let top: Vec<&str> = form
        .children(Some("s1"))
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(top, ["name", "age"]);
}

#[test]
fn lenient_reading_of_a_damaged_document_loses_nothing_visible() {
    let doc = json!({"meta": "nope", "components": {
        "x": {"type": "text", "label": 5, "index": 3, "parent": "loop1",
              "properties": {"options": "no", "rows": -1}, "validation": []},
        "loop1": {"type": "section", "parent": "loop2", "index": "b"},
        "loop2": {"type": "section", "parent": "loop1", "index": "a"},
        "bad": {"type": "marquee"},
        "worse": [1, 2]
    }});
    let form = Form::read(&doc);
    assert_eq!(form.meta, Meta::default());
    assert_eq!(form.components.len(), 3);
    let ids: BTreeSet<&str> = form.ordered().iter().map(|(_, c)| c.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["x", "loop1", "loop2"]));
    assert_eq!(form.components["x"].label, "");
    assert_eq!(
        form.components["x"].kind,
        Kind::empty(ComponentType::Text),
        "nothing that does not fit is kept"
    );
}

#[test]
fn diff_reports_added_removed_moved_changed_and_meta() {
    let a = good();
    let mut b = good();
    let c = &mut b["components"];
    c.as_object_mut().unwrap().remove("tel");
    c["new"] = json!({"id": "new", "type": "text", "label": "New", "index": "c0"});
    c["age"]["parent"] = json!(null);
    c["bio"]["index"] = json!("Z9");
    c["name"]["label"] = json!("Full name");
    c["name"]["validation"]["required"] = json!(false);
    c["name"]["properties"]["helpText"] = json!("As in your passport");
    c["color"]["properties"]["options"][0]["label"] = json!("Rouge");
    // Numbers compare by value: 80 == 80.0 is no change.
    c["name"]["validation"]["maxLength"] = json!(80);
    b["meta"]["name"] = json!("Signup v2");
    b["meta"]["theme"]["dark"] = json!(false);
    let d = diff(&a, &b);
    assert_eq!(d.added, ["new"]);
    assert_eq!(d.removed, ["tel"]);
    assert_eq!(
        d.moved,
        vec![
            Moved {
                id: "age".into(),
                from: Place {
                    parent: Some("s1".into()),
                    index: Some("a1".into())
                },
                to: Place {
                    parent: None,
                    index: Some("a1".into())
                },
            },
            Moved {
                id: "bio".into(),
                from: Place {
                    parent: None,
                    index: Some("a3".into())
                },
                to: Place {
                    parent: None,
                    index: Some("Z9".into())
                },
            },
        ]
    );
    assert_eq!(
        d.changed,
        vec![
            Changed {
                id: "color".into(),
                fields: vec!["properties.options".into()]
            },
            Changed {
                id: "name".into(),
                fields: vec![
                    "label".into(),
                    "properties.helpText".into(),
                    "validation.required".into()
                ]
            },
        ]
    );
    assert_eq!(d.meta, ["name", "theme.dark"]);
    assert!(diff(&a, &a).is_empty());
    assert!(diff(&json!(null), &json!([])).is_empty());
}

#[test]
fn dates_and_accept_lists() {
    for ok in ["2024-02-29", "2000-02-29", "1999-12-31", "0001-01-01"] {
        assert!(is_date(ok), "{ok}");
    }
    for bad in [
        "2023-02-29",
        "1900-02-29",
        "2024-13-01",
        "2024-1-01",
        "2024-01-00",
        "２０２４-01-01",
        "",
    ] {
        assert!(!is_date(bad), "{bad}");
    }
    assert!(is_accept("image/*,.pdf, application/vnd.ms-excel"));
    for bad in ["", "pdf", ".", "image/", "<x>/y", "a/b c"] {
        assert!(!is_accept(bad), "{bad}");
    }
}

/// `good()` with a select whose options, and an e-mail input whose
/// default, come from data sources.
fn bound() -> Value {
    let mut doc = good();
    let c = &mut doc["components"];
    c["color"]["properties"]["optionsSource"] = json!({
        "dataSourceId": "ds_countries", "params": {"region": "europe", "api.version": "2"},
        "path": "data.items", "labelKey": "name.common", "valueKey": "code"});
    c["mail"]["properties"]["defaultSource"] = json!({
        "dataSourceId": "ds_me", "path": "user.email"});
    c["size"]["properties"]["optionsSource"] = json!({"dataSourceId": "ds_countries"});
    doc
}

#[test]
fn bindings_to_data_sources_are_valid_and_round_trip() {
    let doc = bound();
    assert_eq!(errors(&doc), vec![]);
    let form = parse(&doc).unwrap();
    let source = form.components["color"].kind.options_source().unwrap();
    assert_eq!(source.data_source_id, "ds_countries");
    assert_eq!(source.params["api.version"], "2");
    assert_eq!(source.path.as_deref(), Some("data.items"));
    assert_eq!(source.label_key.as_deref(), Some("name.common"));
    assert_eq!(source.value_key.as_deref(), Some("code"));
    let default = form.components["mail"].kind.default_source().unwrap();
    assert_eq!(default.path.as_deref(), Some("user.email"));
    assert!(default.params.is_empty());
    // Written back, the bindings are as they were (absent params stay absent).
    let back = serde_json::to_value(&form).unwrap();
    assert_eq!(
        back["components"]["color"]["properties"]["optionsSource"],
        doc["components"]["color"]["properties"]["optionsSource"]
    );
    assert_eq!(
        back["components"]["size"]["properties"]["optionsSource"],
        json!({"dataSourceId": "ds_countries"})
    );
    assert_eq!(serde_json::from_value::<Form>(back).unwrap(), form);
    // The catalog offers them in their groups, with their own kinds.
    let select = catalog().get("select").unwrap();
    let options = select.property("optionsSource").unwrap();
    assert_eq!(
        (options.kind.clone(), options.group.as_str()),
        (schema::FieldKind::OptionsSource, "options")
    );
    for t in catalog().types.iter() {
        let default = t.property("defaultSource");
        assert_eq!(default.is_some(), t.input, "{}", t.name);
        if let Some(d) = default {
            assert_eq!(
                (d.kind.clone(), d.group.as_str()),
                (schema::FieldKind::DefaultSource, "data")
            );
        }
        let has = t.property("optionsSource").is_some();
        assert_eq!(
            has,
            ["select", "radio", "checkbox"].contains(&t.name.as_str())
        );
    }
}

#[test]
fn bad_bindings_are_refused_at_their_field() {
    let cases: &[(&str, Value, &str, &str)] = &[
        (
            "color",
            json!("ds_countries"),
            "properties.optionsSource",
            "binding object",
        ),
        (
            "color",
            json!({"path": "items"}),
            "properties.optionsSource.dataSourceId",
            "is required",
        ),
        (
            "color",
            json!({"dataSourceId": ""}),
            "properties.optionsSource.dataSourceId",
            "1 to 64",
        ),
        (
            "color",
            json!({"dataSourceId": "x".repeat(65)}),
            "properties.optionsSource.dataSourceId",
            "1 to 64",
        ),
        (
            "color",
            json!({"dataSourceId": "a b"}),
            "properties.optionsSource.dataSourceId",
            "without spaces",
        ),
        (
            "color",
            json!({"dataSourceId": 7}),
            "properties.optionsSource.dataSourceId",
            "must be a string",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "url": "http://x"}),
            "properties.optionsSource.url",
            "unknown key",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "params": []}),
            "properties.optionsSource.params",
            "object of strings",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "params": {"n": 1}}),
            "properties.optionsSource.params.n",
            "must be a string",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "params": {"a b": "x"}}),
            "properties.optionsSource.params.a b",
            "parameter name",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "params": {"n": "x".repeat(1001)}}),
            "properties.optionsSource.params.n",
            "at most 1000",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "path": "data..items"}),
            "properties.optionsSource.path",
            "single dots",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "labelKey": ".name"}),
            "properties.optionsSource.labelKey",
            "single dots",
        ),
        (
            "color",
            json!({"dataSourceId": "d", "valueKey": "x".repeat(201)}),
            "properties.optionsSource.valueKey",
            "at most 200",
        ),
        (
            "mail",
            json!({"dataSourceId": "d", "labelKey": "name"}),
            "properties.defaultSource.labelKey",
            "unknown key",
        ),
        (
            "mail",
            json!({"dataSourceId": "d", "path": ""}),
            "properties.defaultSource.path",
            "single dots",
        ),
    ];
    for (id, value, at, says) in cases {
        let mut doc = good();
        let key = at.split('.').nth(1).unwrap();
        doc["components"][id]["properties"][key] = value.clone();
        let path = format!("components.{id}.{at}");
        assert_messages(&doc, &[(path.as_str(), says)]);
    }
    let mut too_many = good();
    let params: JsonMap<String, Value> = (0..21).map(|i| (format!("p{i}"), json!("v"))).collect();
    too_many["components"]["color"]["properties"]["optionsSource"] =
        json!({"dataSourceId": "d", "params": params});
    assert_messages(
        &too_many,
        &[(
            "components.color.properties.optionsSource.params",
            "at most 20",
        )],
    );
    // Options are bound only where there are options; defaults only on inputs.
    let mut misplaced = good();
    misplaced["components"]["mail"]["properties"]["optionsSource"] = json!({"dataSourceId": "d"});
    misplaced["components"]["go"]["properties"]["defaultSource"] = json!({"dataSourceId": "d"});
    assert_errors_at(
        &misplaced,
        &[
            "components.mail.properties.optionsSource",
            "components.go.properties.defaultSource",
        ],
    );
    // A bound select still needs its static options: they are the fallback.
    let mut no_fallback = bound();
    no_fallback["components"]["color"]["properties"]["options"] = json!([]);
    no_fallback["components"]["color"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("defaultValue");
    assert_messages(
        &no_fallback,
        &[("components.color.properties.options", "at least one option")],
    );
}

#[test]
fn a_damaged_binding_reads_as_absent_and_costs_nothing_else() {
    let mut doc = bound();
    doc["components"]["color"]["properties"]["optionsSource"] =
        json!({"dataSourceId": "d", "evil": true});
    doc["components"]["mail"]["properties"]["defaultSource"] = json!({"params": {}});
    let form = Form::read(&doc);
    let color = &form.components["color"].kind;
    assert_eq!(color.options_source(), None);
    let Kind::Select { properties, .. } = color else {
        panic!("color is a select")
    };
    assert_eq!(
        properties.options.len(),
        2,
        "the rest of the properties are kept"
    );
    assert_eq!(properties.multiple, Some(true));
    assert_eq!(form.components["mail"].kind.default_source(), None);
}

#[test]
fn bound_sources_lists_every_source_a_form_binds_once() {
    let form = parse(&bound()).unwrap();
    assert_eq!(
        bound_sources(&form),
        BTreeSet::from(["ds_countries".to_owned(), "ds_me".to_owned()])
    );
    assert!(bound_sources(&parse(&good()).unwrap()).is_empty());
    // A hidden field in a section binds as well: its default is submitted.
    let mut doc = bound();
    doc["components"]["age"]["properties"]["hidden"] = json!(true);
    doc["components"]["age"]["properties"]["defaultSource"] = json!({"dataSourceId": "ds_age"});
    doc["components"]["tos"]["properties"]["defaultSource"] = json!({"dataSourceId": "ds_tos"});
    let ids = bound_sources(&parse(&doc).unwrap());
    assert_eq!(ids.len(), 4);
    assert!(ids.contains("ds_age") && ids.contains("ds_tos"));
    // What a lenient read drops is not bound.
    doc["components"]["age"]["properties"]["defaultSource"] = json!({"dataSourceId": 5});
    assert!(!bound_sources(&Form::read(&doc)).contains("ds_age"));
}
