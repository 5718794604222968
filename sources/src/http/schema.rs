//! [`infer_schema`]: what a sample answer looks like, in JSON Schema's
//! words, so the designer can offer its fields for binding.

use serde_json::{json, Map, Value};

/// Array items looked at when inferring an array's item schema: enough
/// to see optional fields, bounded for answers with huge lists.
const ITEMS_SAMPLED: usize = 100;

/// A JSON-Schema-like description of `sample`: `type` (`object`,
/// `array`, `string`, `integer`, `number`, `boolean`, `null`), an
/// object's `properties` and `required` (the keys present), an array's
/// `items` (merged over its first items; a key missing from some item
/// is not required; differing types become a list of types or an
/// `anyOf`). Pure: the same sample gives the same schema.
pub fn infer_schema(sample: &Value) -> Value {
    match sample {
        Value::Null => json!({"type": "null"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => {
            let items = items
                .iter()
                .take(ITEMS_SAMPLED)
                .map(infer_schema)
                .reduce(merge)
                .unwrap_or_else(|| json!({}));
            json!({"type": "array", "items": items})
        }
        Value::Object(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|(key, value)| (key.clone(), infer_schema(value)))
                .collect();
            // Sorted: the order of a JSON object's keys depends on how
            // serde_json was built (sorted, or as read), a list's does not.
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            let required: Vec<Value> = keys.into_iter().map(|k| Value::String(k.clone())).collect();
            json!({"type": "object", "properties": properties, "required": required})
        }
    }
}

/// The schema of values that are either `a` or `b`.
fn merge(a: Value, b: Value) -> Value {
    if a == b {
        return a;
    }
    let type_of = |s: &Value| s.get("type").and_then(Value::as_str).map(str::to_owned);
    match (type_of(&a).as_deref(), type_of(&b).as_deref()) {
        (Some("object"), Some("object")) => merge_objects(a, b),
        (Some("array"), Some("array")) => {
            let items = match (a.get("items"), b.get("items")) {
                (Some(x), Some(y)) if x == &json!({}) => y.clone(),
                (Some(x), Some(y)) if y == &json!({}) => x.clone(),
                (Some(x), Some(y)) => merge(x.clone(), y.clone()),
                _ => json!({}),
            };
            json!({"type": "array", "items": items})
        }
        (Some("integer"), Some("number")) | (Some("number"), Some("integer")) => {
            json!({"type": "number"})
        }
        // A scalar that is sometimes null: one schema with two types.
        (Some("null"), Some(t)) | (Some(t), Some("null")) if !matches!(t, "object" | "array") => {
            json!({"type": [t, "null"]})
        }
        _ => {
            let mut options = Vec::new();
            for schema in [a, b] {
                match schema.get("anyOf").and_then(Value::as_array) {
                    Some(inner) => options.extend(inner.iter().cloned()),
                    None => options.push(schema),
                }
            }
            let mut unique: Vec<Value> = Vec::new();
            for option in options {
                if !unique.contains(&option) {
                    unique.push(option);
                }
            }
            json!({"anyOf": unique})
        }
    }
}

fn merge_objects(a: Value, b: Value) -> Value {
    let props = |s: &Value| {
        s.get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let required = |s: &Value| -> Vec<Value> {
        s.get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut properties = props(&a);
    for (key, schema) in props(&b) {
        let merged = match properties.remove(&key) {
            Some(existing) => merge(existing, schema),
            None => schema,
        };
        properties.insert(key, merged);
    }
    let in_b = required(&b);
    let both: Vec<Value> = required(&a)
        .into_iter()
        .filter(|k| in_b.contains(k))
        .collect();
    json!({"type": "object", "properties": properties, "required": both})
}
