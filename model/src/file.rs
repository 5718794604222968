//! The template file (export and import, `docs/TEMPLATE_FORMAT.md`):
//!
//! ```json
//! {"format": "coform-template", "version": 1,
//!  "template": {"name": "...", "description": "...", "tags": ["..."]},
//!  "content": {"meta": {...}, "components": {...}}}
//! ```
//!
//! [`check_file`] checks a whole file — the envelope, the listing fields
//! and the content against the model ([`crate::validate`]) — and lists
//! every problem with its path (`content.components.c1.validation.min`).
//! It is pure: the server reads the body (refusing duplicate keys with
//! [`crate::parse_strict`]) and decides what an import changes.

use serde_json::{json, Value};

use crate::limits::{MAX_DESCRIPTION_CHARS, MAX_META_NAME_CHARS, MAX_TAGS, MAX_TAG_CHARS};
use crate::ModelError;

/// `format` of a template file.
pub const FORMAT: &str = "coform-template";
/// The file format version this server writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// The checked listing fields of a file: trimmed, tags without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
}

fn field(errors: &mut Vec<ModelError>, path: impl Into<String>, message: impl Into<String>) {
    errors.push(ModelError {
        path: path.into(),
        message: message.into(),
    });
}

/// 1 to `max` characters once trimmed, none of them a control character.
fn is_short_text(text: &str, max: usize) -> bool {
    !text.is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

fn check_listing(errors: &mut Vec<ModelError>, v: Option<&Value>) -> Option<Listing> {
    let Some(obj) = v.and_then(Value::as_object) else {
        field(
            errors,
            "template",
            "must be an object with name, description and tags",
        );
        return None;
    };
    let before = errors.len();
    for key in obj.keys() {
        if !matches!(key.as_str(), "name" | "description" | "tags") {
            field(
                errors,
                format!("template.{key}"),
                "unknown key: template has name, description and tags",
            );
        }
    }
    let name = match obj.get("name").and_then(Value::as_str) {
        Some(n) if is_short_text(n.trim(), MAX_META_NAME_CHARS) => n.trim().to_owned(),
        Some(_) => {
            field(
                errors,
                "template.name",
                format!("must be 1 to {MAX_META_NAME_CHARS} characters without control characters"),
            );
            String::new()
        }
        None => {
            field(errors, "template.name", "is required and must be a string");
            String::new()
        }
    };
    let description = match obj.get("description") {
        None => String::new(),
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION_CHARS => d.trim().to_owned(),
        Some(Value::String(_)) => {
            field(
                errors,
                "template.description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            );
            String::new()
        }
        Some(_) => {
            field(errors, "template.description", "must be a string");
            String::new()
        }
    };
    let mut tags: Vec<String> = Vec::new();
    match obj.get("tags") {
        None => {}
        Some(Value::Array(items)) if items.len() <= MAX_TAGS => {
            for (i, t) in items.iter().enumerate() {
                match t.as_str().map(str::trim) {
                    Some(t) if is_short_text(t, MAX_TAG_CHARS) => {
                        if !tags.iter().any(|x| x == t) {
                            tags.push(t.to_owned());
                        }
                    }
                    _ => field(
                        errors,
                        format!("template.tags[{i}]"),
                        format!(
                            "must be 1 to {MAX_TAG_CHARS} characters without control characters"
                        ),
                    ),
                }
            }
        }
        Some(Value::Array(_)) => field(errors, "template.tags", format!("at most {MAX_TAGS} tags")),
        Some(_) => field(errors, "template.tags", "must be an array of strings"),
    }
    (errors.len() == before).then_some(Listing {
        name,
        description,
        tags,
    })
}

/// Checks a whole template file; returns its listing and its content with
/// both roots present (a missing root means empty), or every error found.
pub fn check_file(file: &Value) -> Result<(Listing, Value), Vec<ModelError>> {
    let mut errors = Vec::new();
    let Some(obj) = file.as_object() else {
        field(&mut errors, "", "a template file is a JSON object");
        return Err(errors);
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "format" | "version" | "template" | "content") {
            field(
                &mut errors,
                key.as_str(),
                "unknown key: a template file has format, version, template and content",
            );
        }
    }
    if obj.get("format").and_then(Value::as_str) != Some(FORMAT) {
        field(&mut errors, "format", format!("must be \"{FORMAT}\""));
    }
    match obj.get("version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        Some(v) => field(
            &mut errors,
            "version",
            format!("unsupported format version {v}; this server reads version {FORMAT_VERSION}"),
        ),
        None => field(
            &mut errors,
            "version",
            "must be the format version number (1)",
        ),
    }
    let listing = check_listing(&mut errors, obj.get("template"));
    let content = obj.get("content");
    match content {
        Some(c) => {
            if let Err(model_errors) = crate::validate(c) {
                errors.extend(model_errors.into_iter().map(|e| ModelError {
                    path: if e.path.is_empty() {
                        "content".into()
                    } else {
                        format!("content.{}", e.path)
                    },
                    message: e.message,
                }));
            }
        }
        None => field(&mut errors, "content", "is required"),
    }
    match (listing, content) {
        (Some(listing), Some(content)) if errors.is_empty() => {
            let root = |k: &str| content.get(k).cloned().unwrap_or_else(|| json!({}));
            let content = json!({"meta": root("meta"), "components": root("components")});
            Ok((listing, content))
        }
        _ => Err(errors),
    }
}
