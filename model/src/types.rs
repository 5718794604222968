//! The form model as plain Rust types: the one schema of a template's
//! content. Everything else — the JSON Schema, the component catalog, the
//! SDK's TypeScript types, the format reference and the validator's
//! per-type rules — is derived from these declarations (see
//! [`crate::schema`]); a limit or a property is stated here once.
//!
//! Each property carries what a designer's property panel needs: a title
//! (its label), a description (its help) and a group (`x-group`). Limits
//! are the constants of [`crate::limits`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::*;

/// A template's content: `doc.getMap("meta")` and
/// `doc.getMap("components")` as JSON. A missing root means empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Template content")]
pub struct Content {
    #[serde(default)]
    pub meta: Meta,
    /// Component id → component. Each component's `id` equals its key.
    #[serde(default)]
    #[schemars(extend("maxProperties" = MAX_COMPONENTS))]
    pub components: BTreeMap<String, Component>,
}

/// Template-wide fields. Keys beyond these are kept as they are (any JSON
/// nested at most 16 levels).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Meta {
    #[serde(default)]
    #[schemars(length(max = MAX_META_NAME_CHARS), title = "Name")]
    pub name: String,
    #[serde(default)]
    #[schemars(length(max = MAX_DESCRIPTION_CHARS), title = "Description")]
    pub description: String,
    /// Short labels to find templates by.
    #[serde(default)]
    #[schemars(length(max = MAX_TAGS), title = "Tags", inner(length(min = 1, max = MAX_TAG_CHARS)))]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_CATEGORY_CHARS), title = "Category")]
    pub category: Option<String>,
    /// Other meta keys, kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One component of a form. `type` selects its `properties` and
/// `validation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("unevaluatedProperties" = false))]
pub struct Component {
    /// Equals the component's key in `components`: 1–100 characters
    /// without spaces or control characters.
    #[schemars(length(min = 1, max = MAX_ID_CHARS), regex(pattern = ID_PATTERN))]
    pub id: String,
    #[serde(default)]
    #[schemars(length(max = MAX_LABEL_CHARS), title = "Label", extend("x-group" = "basic"))]
    pub label: String,
    /// The `section` it sits in; `null` or absent at the top level.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::nullable_string")]
    pub parent: Option<String>,
    /// Fractional index: order among siblings, compared byte by byte, then
    /// by id.
    #[schemars(length(min = 1, max = MAX_INDEX_CHARS), regex(pattern = INDEX_PATTERN))]
    pub index: String,
    /// Where the designer placed it on its canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Its look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub styling: Option<Styling>,
    #[serde(flatten)]
    pub kind: Kind,
}

/// Where the designer placed a component on its canvas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub h: Option<f64>,
}

/// Look of a component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Styling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_THEME_CHARS), title = "Theme")]
    pub theme: Option<String>,
    /// CSS property name (letters, digits, `-`) → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(
        title = "Custom styles",
        extend(
            "maxProperties" = MAX_CUSTOM_STYLES,
            "propertyNames" = {"pattern": CSS_NAME_PATTERN, "minLength": 1, "maxLength": MAX_CSS_NAME_CHARS},
            "additionalProperties" = {"type": "string", "maxLength": MAX_STYLE_VALUE_CHARS}
        )
    )]
    pub custom_styles: BTreeMap<String, String>,
}

/// One option of a select, radio group or checkbox group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// What is submitted; distinct within a component.
    #[schemars(length(min = 1, max = MAX_OPTION_VALUE_CHARS))]
    pub value: String,
    /// What is shown; the value when absent.
    #[serde(default)]
    #[schemars(length(max = MAX_LABEL_CHARS))]
    pub label: String,
}

/// A component's options read from a data source of the workspace: the
/// source is executed with `params`, the array at `path` in its answer
/// becomes the options (each item's `valueKey` and `labelKey`). The
/// static `options` stay the fallback shown while the source cannot be
/// reached, so a bound form never shows an empty list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Options from a data source")]
pub struct OptionsSource {
    /// The data source's id (in the template's workspace).
    #[schemars(length(min = 1, max = MAX_DATA_SOURCE_ID_CHARS), regex(pattern = ID_PATTERN), title = "Data source")]
    pub data_source_id: String,
    /// Literal values for the source's `{{name}}` placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(
        title = "Parameters",
        extend(
            "maxProperties" = MAX_SOURCE_PARAMS,
            "propertyNames" = {"pattern": PARAM_NAME_PATTERN, "minLength": 1, "maxLength": MAX_SOURCE_PARAM_NAME_CHARS},
            "additionalProperties" = {"type": "string", "maxLength": MAX_SOURCE_PARAM_VALUE_CHARS}
        )
    )]
    pub params: BTreeMap<String, String>,
    /// Dot path to the array in the answer (`data.items`); the answer
    /// itself when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SOURCE_PATH_CHARS), regex(pattern = SOURCE_PATH_PATTERN), title = "Path to the list")]
    pub path: Option<String>,
    /// Key (or dot path) of each item shown as the option's label; the
    /// value when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SOURCE_PATH_CHARS), regex(pattern = SOURCE_PATH_PATTERN), title = "Label key")]
    pub label_key: Option<String>,
    /// Key (or dot path) of each item submitted as the option's value;
    /// the item itself (a string or number) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SOURCE_PATH_CHARS), regex(pattern = SOURCE_PATH_PATTERN), title = "Value key")]
    pub value_key: Option<String>,
}

/// An input's default value read from a data source of the workspace: the
/// value at `path` in the answer of the source executed with `params`.
/// The static `defaultValue`, if any, is the fallback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Default from a data source")]
pub struct DefaultSource {
    /// The data source's id (in the template's workspace).
    #[schemars(length(min = 1, max = MAX_DATA_SOURCE_ID_CHARS), regex(pattern = ID_PATTERN), title = "Data source")]
    pub data_source_id: String,
    /// Literal values for the source's `{{name}}` placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(
        title = "Parameters",
        extend(
            "maxProperties" = MAX_SOURCE_PARAMS,
            "propertyNames" = {"pattern": PARAM_NAME_PATTERN, "minLength": 1, "maxLength": MAX_SOURCE_PARAM_NAME_CHARS},
            "additionalProperties" = {"type": "string", "maxLength": MAX_SOURCE_PARAM_VALUE_CHARS}
        )
    )]
    pub params: BTreeMap<String, String>,
    /// Dot path to the value in the answer (`data.user.email`); the
    /// answer itself when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SOURCE_PATH_CHARS), regex(pattern = SOURCE_PATH_PATTERN), title = "Path to the value")]
    pub path: Option<String>,
}

/// A date `YYYY-MM-DD` naming a real day.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Date(pub String);

impl JsonSchema for Date {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date"})
    }
}

/// How options are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Vertical,
    Horizontal,
}

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ButtonAction {
    Submit,
    Reset,
    Button,
}

/// A select's default: one option value, or several when `multiple`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Selection {
    One(String),
    Many(Vec<String>),
}

/// A checkbox's default: checked or not (a single box), or the option
/// values checked (a group).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Checked {
    Single(bool),
    Values(Vec<String>),
}

/// Declares a properties (or validation) struct: the fields every struct
/// of its family has, then its own. Written once here so that the common
/// fields cannot drift between types.
macro_rules! family {
    (
        $(#[$meta:meta])*
        $name:ident [$($common:tt)*] { $($own:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name { $($common)* $($own)* }
    };
}

/// The properties every input has (all types but section, heading,
/// paragraph and button).
macro_rules! input_properties {
    ($(#[$meta:meta])* $name:ident { $($own:tt)* }) => {
        family! {
            $(#[$meta])*
            $name [
                /// The field's name in submitted data; the component's id
                /// when absent.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(length(max = MAX_NAME_CHARS), title = "Field name", extend("x-group" = "data"))]
                pub name: Option<String>,
                /// Shown under the field.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(length(max = MAX_HELP_CHARS), title = "Help text", extend("x-group" = "basic"))]
                pub help_text: Option<String>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(title = "Disabled", extend("x-group" = "behaviour", "default" = false))]
                pub disabled: Option<bool>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(title = "Read-only", extend("x-group" = "behaviour", "default" = false))]
                pub read_only: Option<bool>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(title = "Hidden", extend("x-group" = "behaviour", "default" = false))]
                pub hidden: Option<bool>,
                /// Reads the default value from a data source (the static
                /// default is the fallback).
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(title = "Default from a data source", extend("x-group" = "data"))]
                pub default_source: Option<DefaultSource>,
            ] { $($own)* }
        }
    };
}

/// The validation rules every input has.
macro_rules! input_validation {
    ($(#[$meta:meta])* $name:ident { $($own:tt)* }) => {
        family! {
            $(#[$meta])*
            $name [
                /// The person filling the form must answer.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(title = "Required", extend("x-group" = "validation", "default" = false))]
                pub required: Option<bool>,
                /// Shown when a rule fails.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(length(max = MAX_MESSAGE_CHARS), title = "Error message", extend("x-group" = "validation"))]
                pub message: Option<String>,
                /// Names of custom rules the client knows (never run by the
                /// server).
                #[serde(default, skip_serializing_if = "Vec::is_empty")]
                #[schemars(length(max = MAX_RULES), title = "Custom rules", extend("x-group" = "advanced"), inner(length(max = MAX_RULE_CHARS)))]
                pub rules: Vec<String>,
                /// Source of a custom validation function: data, never run
                /// by the server.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                #[schemars(length(max = MAX_CUSTOM_VALIDATION_CHARS), title = "Custom validation", extend("x-group" = "advanced"))]
                pub custom_validation: Option<String>,
            ] { $($own)* }
        }
    };
}

input_properties! {
    /// Properties of a one-line text input (`text`, `email`, `phone`).
    TextProperties {
        /// Shown in the empty field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_PLACEHOLDER_CHARS), title = "Placeholder", extend("x-group" = "basic"))]
        pub placeholder: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_DEFAULT_TEXT_CHARS), title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<String>,
        /// A browser autofill hint (`name`, `email`, `tel`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_NAME_CHARS), title = "Autocomplete", extend("x-group" = "data"))]
        pub autocomplete: Option<String>,
    }
}

input_properties! {
    /// Properties of a multi-line text input.
    TextareaProperties {
        /// Shown in the empty field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_PLACEHOLDER_CHARS), title = "Placeholder", extend("x-group" = "basic"))]
        pub placeholder: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_DEFAULT_TEXT_CHARS), title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<String>,
        /// Visible lines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = MAX_ROWS), title = "Rows", extend("x-group" = "layout", "default" = 3))]
        pub rows: Option<u32>,
    }
}

input_properties! {
    /// Properties of a number input.
    NumberProperties {
        /// Shown in the empty field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_PLACEHOLDER_CHARS), title = "Placeholder", extend("x-group" = "basic"))]
        pub placeholder: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<f64>,
        /// Lowest value the control offers (`min` ≤ `max`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Minimum", extend("x-group" = "data"))]
        pub min: Option<f64>,
        /// Highest value the control offers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Maximum", extend("x-group" = "data"))]
        pub max: Option<f64>,
        /// Increment of the control.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Step", extend("x-group" = "data", "exclusiveMinimum" = 0))]
        pub step: Option<f64>,
    }
}

input_properties! {
    /// Properties of a date input.
    DateProperties {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<Date>,
        /// Earliest date the control offers (`min` ≤ `max`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Earliest", extend("x-group" = "data"))]
        pub min: Option<Date>,
        /// Latest date the control offers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Latest", extend("x-group" = "data"))]
        pub max: Option<Date>,
    }
}

input_properties! {
    /// Properties of a drop-down list.
    SelectProperties {
        /// Shown while nothing is chosen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_PLACEHOLDER_CHARS), title = "Placeholder", extend("x-group" = "basic"))]
        pub placeholder: Option<String>,
        /// At least one, with distinct values.
        #[schemars(length(min = 1, max = MAX_OPTIONS), title = "Options", extend("x-group" = "options"))]
        pub options: Vec<Choice>,
        /// Reads the options from a data source (the static `options` are
        /// the fallback).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Options from a data source", extend("x-group" = "options"))]
        pub options_source: Option<OptionsSource>,
        /// Several options may be chosen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Multiple", extend("x-group" = "options", "default" = false))]
        pub multiple: Option<bool>,
        /// An option's value; an array of them when `multiple`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<Selection>,
    }
}

input_properties! {
    /// Properties of a group of radio buttons.
    RadioProperties {
        /// At least one, with distinct values.
        #[schemars(length(min = 1, max = MAX_OPTIONS), title = "Options", extend("x-group" = "options"))]
        pub options: Vec<Choice>,
        /// Reads the options from a data source (the static `options` are
        /// the fallback).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Options from a data source", extend("x-group" = "options"))]
        pub options_source: Option<OptionsSource>,
        /// An option's value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Layout", extend("x-group" = "layout", "default" = "vertical"))]
        pub layout: Option<Layout>,
    }
}

input_properties! {
    /// Properties of a checkbox: a single box without `options`, a group
    /// with them.
    CheckboxProperties {
        /// Distinct values; none for a single box.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = MAX_OPTIONS), title = "Options", extend("x-group" = "options"))]
        pub options: Vec<Choice>,
        /// Reads the options from a data source (the static `options` are
        /// the fallback).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Options from a data source", extend("x-group" = "options"))]
        pub options_source: Option<OptionsSource>,
        /// A single box: checked or not; a group: the values checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Default value", extend("x-group" = "data"))]
        pub default_value: Option<Checked>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Layout", extend("x-group" = "layout", "default" = "vertical"))]
        pub layout: Option<Layout>,
    }
}

input_properties! {
    /// Properties of a file upload.
    FileProperties {
        /// File types: `.ext` or `type/subtype` (subtype may be `*`),
        /// comma-separated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_ACCEPT_CHARS), title = "Accepted types", extend("x-group" = "data", "format" = "accept"))]
        pub accept: Option<String>,
        /// Several files may be chosen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Multiple", extend("x-group" = "data", "default" = false))]
        pub multiple: Option<bool>,
        /// Largest file, in bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Largest size (bytes)", extend("x-group" = "data", "exclusiveMinimum" = 0))]
        pub max_size: Option<f64>,
    }
}

family! {
    /// Properties of a section: a container of other components.
    SectionProperties [] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Hidden", extend("x-group" = "behaviour", "default" = false))]
        pub hidden: Option<bool>,
        /// Shown under its title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_DESCRIPTION_CHARS), title = "Description", extend("x-group" = "basic"))]
        pub description: Option<String>,
        /// The person filling the form may fold it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Collapsible", extend("x-group" = "behaviour", "default" = false))]
        pub collapsible: Option<bool>,
    }
}

family! {
    /// Properties of a heading.
    HeadingProperties [] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Hidden", extend("x-group" = "behaviour", "default" = false))]
        pub hidden: Option<bool>,
        /// Its text; the label when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_HEADING_CHARS), title = "Text", extend("x-group" = "basic"))]
        pub text: Option<String>,
        /// 1 (largest) to 6.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 6), title = "Level", extend("x-group" = "basic", "default" = 2))]
        pub level: Option<u8>,
    }
}

family! {
    /// Properties of a paragraph of text.
    ParagraphProperties [] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Hidden", extend("x-group" = "behaviour", "default" = false))]
        pub hidden: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_PARAGRAPH_CHARS), title = "Text", extend("x-group" = "basic"))]
        pub text: Option<String>,
    }
}

family! {
    /// Properties of a button.
    ButtonProperties [] {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Hidden", extend("x-group" = "behaviour", "default" = false))]
        pub hidden: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Disabled", extend("x-group" = "behaviour", "default" = false))]
        pub disabled: Option<bool>,
        /// Its text; the label when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_BUTTON_TEXT_CHARS), title = "Text", extend("x-group" = "basic"))]
        pub text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Action", extend("x-group" = "behaviour", "default" = "submit"))]
        pub action: Option<ButtonAction>,
    }
}

input_validation! {
    /// Validation rules of inputs without length or range rules.
    InputValidation {}
}

input_validation! {
    /// Validation rules of free-text inputs.
    TextValidation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(max = MAX_TEXT_LENGTH_RULE), title = "Shortest", extend("x-group" = "validation"))]
        pub min_length: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(max = MAX_TEXT_LENGTH_RULE), title = "Longest", extend("x-group" = "validation"))]
        pub max_length: Option<u64>,
        /// A JavaScript regular expression the answer must match: data,
        /// never compiled by the server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = MAX_PATTERN_CHARS), title = "Pattern", extend("x-group" = "validation"))]
        pub pattern: Option<String>,
    }
}

input_validation! {
    /// Validation rules of a number input.
    NumberValidation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Minimum", extend("x-group" = "validation"))]
        pub min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Maximum", extend("x-group" = "validation"))]
        pub max: Option<f64>,
    }
}

input_validation! {
    /// Validation rules of a date input.
    DateValidation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Earliest", extend("x-group" = "validation"))]
        pub min: Option<Date>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(title = "Latest", extend("x-group" = "validation"))]
        pub max: Option<Date>,
    }
}

family! {
    /// Components that collect nothing have no validation rules.
    NoValidation [] {}
}

/// Declares [`Kind`] and [`ComponentType`] from one list: each type with
/// its properties and validation structs, its title and its group.
macro_rules! kinds {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident ($name:literal, $title:literal, $group:literal): $props:ident, $valid:ident;
    )*) => {
        /// A component's type with its type-specific `properties` and
        /// `validation`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", rename_all = "lowercase")]
        pub enum Kind {
            $(
                $(#[doc = $doc])*
                #[schemars(title = $title, extend("x-group" = $group))]
                $variant {
                    #[serde(default)]
                    properties: $props,
                    #[serde(default)]
                    validation: $valid,
                },
            )*
        }

        /// The kinds of component.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum ComponentType {
            $($variant,)*
        }

        impl ComponentType {
            /// Every type, in the palette's order.
            pub const ALL: &'static [ComponentType] = &[$(ComponentType::$variant,)*];

            /// Its name in documents (`"text"`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ComponentType::$variant => $name,)*
                }
            }
        }

        impl Kind {
            /// The type of this kind.
            pub fn component_type(&self) -> ComponentType {
                match self {
                    $(Kind::$variant { .. } => ComponentType::$variant,)*
                }
            }

            /// `properties.hidden`, which every type has.
            pub fn hidden(&self) -> Option<bool> {
                match self {
                    $(Kind::$variant { properties, .. } => properties.hidden,)*
                }
            }

            /// An empty kind of `t` (every property absent).
            pub fn empty(t: ComponentType) -> Kind {
                match t {
                    $(ComponentType::$variant => Kind::$variant {
                        properties: Default::default(),
                        validation: Default::default(),
                    },)*
                }
            }
        }
    };
}

kinds! {
    /// One line of text.
    Text ("text", "Short text", "input"): TextProperties, TextValidation;
    /// Several lines of text.
    Textarea ("textarea", "Long text", "input"): TextareaProperties, TextValidation;
    /// A number.
    Number ("number", "Number", "input"): NumberProperties, NumberValidation;
    /// An e-mail address.
    Email ("email", "E-mail", "input"): TextProperties, TextValidation;
    /// A phone number.
    Phone ("phone", "Phone", "input"): TextProperties, TextValidation;
    /// A calendar date.
    Date ("date", "Date", "input"): DateProperties, DateValidation;
    /// One (or several) of a list, in a drop-down.
    Select ("select", "Drop-down", "choice"): SelectProperties, InputValidation;
    /// One of a list of radio buttons.
    Radio ("radio", "Radio buttons", "choice"): RadioProperties, InputValidation;
    /// A single checkbox, or a group of them.
    Checkbox ("checkbox", "Checkboxes", "choice"): CheckboxProperties, InputValidation;
    /// A file upload.
    File ("file", "File upload", "input"): FileProperties, InputValidation;
    /// A container: other components name it as their `parent`.
    Section ("section", "Section", "layout"): SectionProperties, NoValidation;
    /// A heading.
    Heading ("heading", "Heading", "content"): HeadingProperties, NoValidation;
    /// A paragraph of text.
    Paragraph ("paragraph", "Paragraph", "content"): ParagraphProperties, NoValidation;
    /// A button.
    Button ("button", "Button", "action"): ButtonProperties, NoValidation;
}

impl ComponentType {
    /// The type named `s`, if any.
    pub fn parse(s: &str) -> Option<ComponentType> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// Collects a value from the person filling the form.
    pub fn is_input(self) -> bool {
        !matches!(
            self,
            ComponentType::Section
                | ComponentType::Heading
                | ComponentType::Paragraph
                | ComponentType::Button
        )
    }

    /// Free text, where length and pattern rules apply.
    pub fn is_textual(self) -> bool {
        matches!(
            self,
            ComponentType::Text
                | ComponentType::Textarea
                | ComponentType::Email
                | ComponentType::Phone
        )
    }

    /// Offers a list of options.
    pub fn has_options(self) -> bool {
        matches!(
            self,
            ComponentType::Select | ComponentType::Radio | ComponentType::Checkbox
        )
    }
}
