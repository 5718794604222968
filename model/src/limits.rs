//! Every limit of the form model, stated once: the types' schema
//! attributes, the validator and the generated reference all use these.

/// Most components in one template.
pub const MAX_COMPONENTS: usize = 2_000;
/// Most characters of a component id.
pub const MAX_ID_CHARS: usize = 100;
/// Most characters of an `index`.
pub const MAX_INDEX_CHARS: usize = 100;
/// Most options of a select, radio group or checkbox group.
pub const MAX_OPTIONS: usize = 500;
/// Most characters of an option's value.
pub const MAX_OPTION_VALUE_CHARS: usize = 200;
/// Most characters of a label (components and options).
pub const MAX_LABEL_CHARS: usize = 500;
/// Most characters of `validation.pattern` (kept as text, never compiled).
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// Most custom rules of one component.
pub const MAX_RULES: usize = 50;
/// Most characters of one custom rule's name.
pub const MAX_RULE_CHARS: usize = 1_000;
/// Most characters of `validation.customValidation` (kept as text, never run).
pub const MAX_CUSTOM_VALIDATION_CHARS: usize = 10_000;
/// Most characters of `validation.message`.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Largest `minLength` / `maxLength` rule.
pub const MAX_TEXT_LENGTH_RULE: u64 = 1_000_000;
/// Deepest nesting of sections, and of JSON values under extra meta keys.
pub const MAX_DEPTH: usize = 16;
/// Most errors [`crate::validate`] lists; one more entry says the rest were cut.
pub const MAX_ERRORS: usize = 100;

/// Most characters of a field name (`properties.name`) and of `autocomplete`.
pub const MAX_NAME_CHARS: usize = 100;
/// Most characters of a help text.
pub const MAX_HELP_CHARS: usize = 1_000;
/// Most characters of a placeholder.
pub const MAX_PLACEHOLDER_CHARS: usize = 200;
/// Most characters of a text input's default value.
pub const MAX_DEFAULT_TEXT_CHARS: usize = 10_000;
/// Most visible lines of a textarea.
pub const MAX_ROWS: u32 = 100;
/// Most characters of a file input's `accept` list.
pub const MAX_ACCEPT_CHARS: usize = 500;
/// Most characters of a heading.
pub const MAX_HEADING_CHARS: usize = 500;
/// Most characters of a paragraph.
pub const MAX_PARAGRAPH_CHARS: usize = 10_000;
/// Most characters of a button's text.
pub const MAX_BUTTON_TEXT_CHARS: usize = 200;

/// Most characters of `meta.name`.
pub const MAX_META_NAME_CHARS: usize = 200;
/// Most characters of a description (`meta`, sections).
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Most tags, and most characters of one.
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 50;
/// Most characters of `meta.category`.
pub const MAX_CATEGORY_CHARS: usize = 100;
/// Most characters of a key under `meta` beyond the known ones.
pub const MAX_META_KEY_CHARS: usize = 100;

/// Most characters of `styling.theme`.
pub const MAX_THEME_CHARS: usize = 100;
/// Most entries of `styling.customStyles`, characters of a CSS property
/// name and of its value.
pub const MAX_CUSTOM_STYLES: usize = 100;
pub const MAX_CSS_NAME_CHARS: usize = 100;
pub const MAX_STYLE_VALUE_CHARS: usize = 1_000;

/// Most characters of a bound data source's id (`dataSourceId`).
pub const MAX_DATA_SOURCE_ID_CHARS: usize = 64;
/// Most parameters of one binding, characters of a parameter's name and
/// of its value.
pub const MAX_SOURCE_PARAMS: usize = 20;
pub const MAX_SOURCE_PARAM_NAME_CHARS: usize = 64;
pub const MAX_SOURCE_PARAM_VALUE_CHARS: usize = 1_000;
/// Most characters of a binding's `path`, `labelKey` and `valueKey`.
pub const MAX_SOURCE_PATH_CHARS: usize = 200;

/// A component id: no whitespace, no control characters.
pub const ID_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f]+$";
/// A fractional index: visible ASCII characters.
pub const INDEX_PATTERN: &str = r"^[!-~]+$";
/// A CSS property name.
pub const CSS_NAME_PATTERN: &str = r"^[A-Za-z0-9-]+$";
/// A parameter's name: what a data source's `{{name}}` placeholders may
/// name (letters, digits, `_`, `-`, `.`).
pub const PARAM_NAME_PATTERN: &str = r"^[A-Za-z0-9_.-]+$";
/// A dot path into a data source's answer (`data.items`, `rows.0.name`):
/// non-empty keys separated by single dots.
pub const SOURCE_PATH_PATTERN: &str = r"^[^.]+(\.[^.]+)*$";
