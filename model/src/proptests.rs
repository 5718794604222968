//! Property tests: templates generated from the schema (through the
//! catalog derived from it, so every type, property and limit the schema
//! knows is exercised) are valid, survive reading into the typed model
//! and back, survive strict parsing of their text, and differ from
//! themselves in nothing.

use proptest::prelude::*;
use serde_json::{json, Map as JsonMap, Value};

use crate::schema::{catalog, Field, FieldKind, TypeInfo};
use crate::*;

/// A small deterministic generator: proptest picks the seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// Text of at most `max` characters, some of them unusual.
    fn text(&mut self, max: usize) -> String {
        const CHARS: &[char] = &[
            'a', 'b', 'Z', '0', ' ', 'é', '🎉', '"', '\'', '<', '&', '\n', '\t', '-', '.',
        ];
        let len = self.below(max.min(24) as u64 + 1) as usize;
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect()
    }
    fn date(&mut self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            1900 + self.below(200),
            1 + self.below(12),
            1 + self.below(28)
        )
    }
}

/// A value for `field` within its limits (cross-field rules are fixed up
/// afterwards).
fn value(g: &mut Gen, field: &Field) -> Value {
    let l = &field.limits;
    match field.kind {
        FieldKind::Text => json!(g.text(l.max_length.unwrap_or(50) as usize)),
        FieldKind::Boolean => json!(g.chance(50)),
        FieldKind::Integer => {
            let lo = l.minimum.unwrap_or(0.0) as u64;
            let hi = l.maximum.unwrap_or(1_000.0).min(1_000_000.0) as u64;
            json!(lo + g.below(hi - lo + 1))
        }
        FieldKind::Number => match l.exclusive_minimum {
            Some(m) => json!(m + 0.5 + g.below(1_000) as f64),
            None => json!(g.below(2_000) as f64 / 4.0 - 250.0),
        },
        FieldKind::Date => json!(g.date()),
        FieldKind::Choice => json!(field.values[g.below(field.values.len() as u64) as usize]),
        FieldKind::Options => {
            let n = l.min_items.unwrap_or(0).max(1) + g.below(4);
            let options: Vec<Value> = (0..n)
                .map(|i| json!({"value": format!("v{i}"), "label": g.text(20)}))
                .collect();
            json!(options)
        }
        FieldKind::Accept => {
            json!(["image/*", ".pdf", "application/pdf, .doc"][g.below(3) as usize])
        }
        FieldKind::List => {
            // An empty list reads as absent: generate at least one item.
            let n = 1 + g.below(3);
            json!((0..n).map(|_| g.text(10)).collect::<Vec<_>>())
        }
        FieldKind::OptionValue => Value::Null,
        FieldKind::OptionsSource | FieldKind::DefaultSource => {
            let mut b = json!({"dataSourceId": format!("ds{}", g.below(5))});
            // Empty params are written as absent: generate some or none.
            if g.chance(50) {
                b["params"] = json!({"q": g.text(30), "api.v": "2"});
            }
            if g.chance(50) {
                b["path"] = json!(["data.items", "rows", "a.0.b"][g.below(3) as usize]);
            }
            if field.kind == FieldKind::OptionsSource && g.chance(50) {
                b["labelKey"] = json!("name.common");
                b["valueKey"] = json!("code");
            }
            b
        }
    }
}

/// Properties or rules of one component: a random subset of the fields,
/// every required one, each valid alone.
fn fields(g: &mut Gen, fields: &[Field]) -> JsonMap<String, Value> {
    let mut out = JsonMap::new();
    for f in fields {
        if f.required || g.chance(40) {
            let v = value(g, f);
            if !v.is_null() {
                out.insert(f.name.clone(), v);
            }
        }
    }
    out
}

/// `min ≤ max`, `minLength ≤ maxLength`.
fn order(map: &mut JsonMap<String, Value>, lo: &str, hi: &str) {
    if let (Some(a), Some(b)) = (map.get(lo).cloned(), map.get(hi).cloned()) {
        let swap = match (a.as_f64(), b.as_f64(), a.as_str(), b.as_str()) {
            (Some(x), Some(y), _, _) => x > y,
            (_, _, Some(x), Some(y)) => x > y,
            _ => false,
        };
        if swap {
            map.insert(lo.into(), b);
            map.insert(hi.into(), a);
        }
    }
}

/// A choice type's default value: option values, as the type wants them.
fn choice_default(g: &mut Gen, t: &TypeInfo, props: &JsonMap<String, Value>) -> Option<Value> {
    let values: Vec<Value> = props
        .get("options")?
        .as_array()?
        .iter()
        .map(|o| o["value"].clone())
        .collect();
    let many = props.get("multiple") == Some(&json!(true)) || t.name == "checkbox";
    match (t.name.as_str(), values.is_empty()) {
        ("checkbox", true) => Some(json!(g.chance(50))),
        (_, true) => None,
        _ if many => Some(json!(values[..1 + g.below(values.len() as u64) as usize])),
        _ => Some(values[g.below(values.len() as u64) as usize].clone()),
    }
}

/// One component of type `t` under `parent`.
fn component(g: &mut Gen, id: &str, t: &TypeInfo, parent: Option<&str>) -> Value {
    let mut props = fields(g, &t.properties);
    props.remove("defaultValue");
    if t.name == "checkbox" && g.chance(50) {
        props.remove("options");
    }
    if matches!(t.name.as_str(), "select" | "radio" | "checkbox") {
        if let Some(d) = choice_default(g, t, &props).filter(|_| g.chance(60)) {
            props.insert("defaultValue".into(), d);
        }
    } else if let Some(f) = t.property("defaultValue").filter(|_| g.chance(50)) {
        props.insert("defaultValue".into(), value(g, f));
    }
    let mut rules = fields(g, &t.validation);
    for map in [&mut props, &mut rules] {
        order(map, "min", "max");
        order(map, "minLength", "maxLength");
    }
    let mut c = json!({
        "id": id, "type": t.name, "label": g.text(30),
        "parent": parent, "index": format!("a{}", g.below(1_000)),
        "properties": props, "validation": rules,
    });
    if g.chance(30) {
        c["position"] = json!({"x": 1.5, "y": 0, "w": 100, "h": 40});
    }
    if g.chance(30) {
        c["styling"] = json!({"theme": "light", "customStyles": {"font-weight": "bold"}});
    }
    c
}

/// A valid template: components of every kind the catalog offers,
/// sections nested (never in a loop, never too deep), meta with extras.
fn template(seed: u64) -> Value {
    let mut g = Gen(seed | 1);
    let types = &catalog().types;
    let mut components = JsonMap::new();
    let mut sections: Vec<(String, usize)> = Vec::new();
    for i in 0..g.below(16) {
        let t = &types[g.below(types.len() as u64) as usize];
        let id = format!("c{i}");
        let parent = if !sections.is_empty() && g.chance(50) {
            let (p, depth) = sections[g.below(sections.len() as u64) as usize].clone();
            (depth < MAX_DEPTH).then_some((p, depth))
        } else {
            None
        };
        let c = component(&mut g, &id, t, parent.as_ref().map(|(p, _)| p.as_str()));
        if t.container {
            sections.push((id.clone(), parent.map_or(1, |(_, d)| d + 1)));
        }
        components.insert(id, c);
    }
    json!({
        "meta": {"name": g.text(40), "description": g.text(100), "tags": ["a", "b"],
                 "category": "test", "theme": {"dark": g.chance(50)}},
        "components": components,
    })
}

/// The served JSON Schema, compiled by an independent validator.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        jsonschema::draft202012::new(template_schema()).expect("the schema compiles")
    })
}

#[test]
fn the_schema_refuses_what_the_validator_refuses_for_reasons_a_schema_can_state() {
    let base = json!({"components": {
        "t": {"id": "t", "type": "text", "index": "a0", "properties": {"placeholder": "x"}},
        "s": {"id": "s", "type": "select", "index": "a1",
              "properties": {"options": [{"value": "a", "label": "A"}]}}}});
    assert!(schema().is_valid(&base));
    assert_eq!(validate(&base), Ok(()));
    let mutations: &[(&str, Value)] = &[
        ("/components/t/properties/rows", json!(3)),
        (
            "/components/t/properties/placeholder",
            json!("x".repeat(201)),
        ),
        ("/components/t/properties/disabled", json!("yes")),
        ("/components/t/type", json!("marquee")),
        ("/components/t/evil", json!(1)),
        ("/components/t/validation", json!({"min": 3})),
        ("/components/s/properties/options", json!([])),
        ("/components/s/properties/layout", json!("horizontal")),
        ("/components/t/index", json!("has space")),
        ("/meta/tags", json!(vec!["a"; 21])),
        (
            "/components/s/properties/optionsSource",
            json!({"dataSourceId": "d", "url": "http://x"}),
        ),
        (
            "/components/s/properties/optionsSource",
            json!({"path": "items"}),
        ),
        (
            "/components/s/properties/optionsSource",
            json!({"dataSourceId": "x".repeat(65)}),
        ),
        (
            "/components/s/properties/optionsSource",
            json!({"dataSourceId": "d", "params": {"a b": "x"}}),
        ),
        (
            "/components/s/properties/optionsSource",
            json!({"dataSourceId": "d", "path": "a..b"}),
        ),
        (
            "/components/t/properties/defaultSource",
            json!({"dataSourceId": "d", "valueKey": "code"}),
        ),
        (
            "/components/t/properties/optionsSource",
            json!({"dataSourceId": "d"}),
        ),
    ];
    for (pointer, value) in mutations {
        let mut doc = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        if doc.pointer(parent).is_none() {
            doc["meta"] = json!({});
        }
        doc.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert(key.into(), value.clone());
        assert!(
            validate(&doc).is_err(),
            "the validator accepts {pointer} = {value}"
        );
        assert!(
            !schema().is_valid(&doc),
            "the schema accepts {pointer} = {value}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_templates_are_valid_round_trip_and_equal_themselves(seed in any::<u64>()) {
        let content = template(seed);
        prop_assert_eq!(validate(&content), Ok(()), "{}", content);
        prop_assert!(schema().is_valid(&content), "the schema refuses {}", content);
        // Read into the typed model and written back, nothing changes.
        let typed = parse(&content).unwrap();
        let back = serde_json::to_value(&typed).unwrap();
        prop_assert!(json_eq(&back, &content), "{} != {}", back, content);
        prop_assert_eq!(validate(&back), Ok(()));
        // As text (an export file's content), strictly parsed (an import).
        let text = serde_json::to_string(&content).unwrap();
        prop_assert!(json_eq(&parse_strict(&text).unwrap(), &content));
        prop_assert!(diff(&content, &content).is_empty());
        prop_assert!(diff(&content, &back).is_empty());
    }
}

/// A value likely to be wrong somewhere: wrong types, out of range,
/// too long, oddly shaped.
fn damage(g: &mut Gen) -> Value {
    match g.below(9) {
        0 => json!(-1e9),
        1 => json!("x".repeat(5000)),
        2 => json!(null),
        3 => json!({"nested": [1, 2, {"deep": true}]}),
        4 => json!([]),
        5 => json!(true),
        6 => json!(g.text(8)),
        7 => json!((0..300)
            .map(|i| json!({"label": i, "value": i}))
            .collect::<Vec<_>>()),
        _ => json!(42),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever one field of a valid component is set to, the repair
    /// leaves the component valid or drops it (only for a broken type);
    /// when the field's previous value is known, it comes back exactly.
    #[test]
    fn a_damaged_field_is_repaired_back_to_a_valid_component(seed in any::<u64>()) {
        use crate::repair::{repair_component, Outcome, Previous};
        let content = template(seed);
        let components = content["components"].as_object().unwrap().clone();
        prop_assume!(!components.is_empty());
        let mut g = Gen(seed.rotate_left(17) | 1);
        let keys: Vec<&String> = components.keys().collect();
        let key = keys[g.below(keys.len() as u64) as usize].clone();
        let original = components[&key].clone();
        // A field to damage: a top-level key, or one entry of a nested map
        // (an existing one, or a new name).
        let top = ["id", "type", "label", "parent", "index", "properties", "validation",
                   "position", "styling", "colour"];
        let first = top[g.below(top.len() as u64) as usize].to_owned();
        let mut field = vec![first.clone()];
        if let Some(nested) = original.get(&first).and_then(Value::as_object) {
            if g.chance(70) {
                let names: Vec<&String> = nested.keys().collect();
                let second = if names.is_empty() || g.chance(20) {
                    "unknownField".to_owned()
                } else {
                    names[g.below(names.len() as u64) as usize].clone()
                };
                field.push(second);
            }
        }
        let mut damaged = original.clone();
        {
            let mut at = &mut damaged;
            for k in &field[..field.len() - 1] {
                at = at.get_mut(k).unwrap();
            }
            at.as_object_mut().unwrap().insert(field.last().unwrap().clone(), damage(&mut g));
        }
        let mut all = components.clone();
        all.insert(key.clone(), damaged.clone());
        let before = field.iter().try_fold(&original, |v, k| v.get(k));
        let mut previous = Previous::new();
        previous.insert(field.clone(), before.cloned());
        match repair_component(&key, &damaged, &previous, &all) {
            Outcome::Valid => {}
            Outcome::Drop(r) => prop_assert_eq!(&field[..], &["type".to_owned()][..], "dropped: {:?}", r),
            Outcome::Fixed { value, .. } => {
                all.insert(key.clone(), value.clone());
                prop_assert!(check_component(&key, &value, &all).is_empty(), "{}", value);
                // The previous value was valid: the component is as it was,
                // except that a broken parent always means the top level.
                let mut expected = original.clone();
                if field == ["parent"] {
                    expected["parent"] = Value::Null;
                }
                prop_assert!(json_eq(&value, &expected), "{} != {}", value, expected);
            }
        }
    }
}
