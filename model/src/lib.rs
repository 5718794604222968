//! # coform-model
//!
//! The form model of a Coform template — the one schema that every part
//! of Coform reads: plain Rust types with serde. It knows no Y.Doc, HTTP
//! or storage; the collaboration core reads and writes documents with it,
//! the REST API validates, renders and compares with it, and the SDK's
//! TypeScript types and the format reference are generated from it.
//!
//! ```text
//! {"meta": {"name", "description", "tags", "category", ...},
//!  "components": {"<id>": {"id", "type", "label", "parent", "index",
//!                          "properties", "position", "validation", "styling"}}}
//! ```
//!
//! # Layout
//!
//! - [`limits`]: every limit, stated once.
//! - [`types`]: the model: [`Content`] (`meta` + `components`), and each
//!   component type with its `properties` and `validation` ([`Kind`]).
//! - [`schema`]: the JSON Schema (2020-12) derived from the types, and the
//!   component [`Catalog`] derived from the schema: each type's fields with
//!   kind, limits, default, label and group.
//! - [`validate`](mod@validate): every problem of a content with its
//!   path; per-type checks come from the catalog (`check`), the rules a
//!   schema cannot state are written beside it.
//! - [`strict`]: JSON text read refusing duplicate keys.
//! - [`file`]: the template file (export and import): its envelope and
//!   listing checked along with its content.
//! - [`bindings`]: the data sources a form binds ([`bound_sources`]).
//! - [`read`]: lenient reading into the typed model, and display order.
//! - [`repair`]: the smallest change that makes a component (or a meta
//!   entry) valid again after a live edit broke it.
//! - [`diff`](mod@diff): what changed between two contents.
//! - [`json`]: equality and depth of JSON values without recursion.
//! - [`generate`]: the SDK's TypeScript types and the format reference,
//!   generated from the schema (tests fail if the committed copies drift).

pub mod bindings;
pub mod check;
pub mod diff;
pub mod file;
pub mod generate;
pub mod json;
pub mod limits;
pub mod read;
pub mod repair;
pub mod schema;
pub mod strict;
pub mod types;
pub mod validate;

pub use bindings::bound_sources;
pub use check::is_date;
pub use diff::{diff, Changed, Diff, Moved, Place};
pub use json::{json_depth, json_eq, MAX_READ_DEPTH};
pub use limits::*;
pub use read::Form;
pub use schema::{catalog, template_schema, Catalog};
pub use strict::parse_strict;
pub use types::*;
pub use validate::{check_component, check_meta_entry, validate, Components};

use serde::{Deserialize, Serialize};

/// The root maps of a template document.
pub const ROOTS: [&str; 2] = ["meta", "components"];

/// One problem of a document: where (a dotted path, `[i]` for array
/// items) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Validates `content` and reads it into typed structs.
pub fn parse(content: &serde_json::Value) -> Result<Form, Vec<ModelError>> {
    validate(content)?;
    Ok(Form::read(content))
}

/// `path.key`, or `key` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A number as JavaScript prints it (`3`, not `3.0`).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
