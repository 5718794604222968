//! JSON helpers without recursion: equality by value and nesting depth.
//! Content comes from clients; no walk over it may recurse once per level
//! (a deep enough value would exhaust a thread's stack).

use serde_json::Value;

/// Deepest level a read renders below a root. Live documents never nest
/// deeper than the server's nesting limit; this only cuts documents and
/// versions stored before that limit existed (deeper content renders as
/// `null`), and bounds walks such as diffs.
pub const MAX_READ_DEPTH: usize = 64;

/// JSON equality where numbers compare by value (`1 == 1.0`). Without
/// recursion, however deep the values.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    let mut pending = vec![(a, b)];
    while let Some((a, b)) = pending.pop() {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                if x.as_f64() != y.as_f64() {
                    return false;
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                pending.extend(x.iter().zip(y));
            }
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (k, v) in x {
                    match y.get(k) {
                        Some(w) => pending.push((v, w)),
                        None => return false,
                    }
                }
            }
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
                return false
            }
            _ => {
                if a != b {
                    return false;
                }
            }
        }
    }
    true
}

/// How deeply a JSON value nests (0 for a scalar), without recursion.
pub fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_by_value_and_depth_without_recursion() {
        assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_eq(&json!({"a": [1]}), &json!({"a": 1})));
        assert_eq!(json_depth(&json!({"a": [1, {"b": []}]})), 4);
        let mut deep = json!(1);
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert_eq!(json_depth(&deep), 100_000);
        assert!(json_eq(&deep, &deep));
        // Dropping it recursively would overflow; keep it.
        std::mem::forget(deep);
    }
}
