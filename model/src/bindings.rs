//! Which data sources a form binds. A component may read its options
//! (`properties.optionsSource`: select, radio, checkbox) or its default
//! value (`properties.defaultSource`: every input) from a data source of
//! the template's workspace. The server lets a viewer execute a source
//! only when the form it is viewing binds it: [`bound_sources`] is that
//! list, read from the typed model so that it and the schema cannot
//! disagree on where a binding may stand.

use std::collections::BTreeSet;

use crate::types::{Content, DefaultSource, Kind, OptionsSource};

impl Kind {
    /// The binding of its options, if it has options and they are bound.
    pub fn options_source(&self) -> Option<&OptionsSource> {
        match self {
            Kind::Select { properties, .. } => properties.options_source.as_ref(),
            Kind::Radio { properties, .. } => properties.options_source.as_ref(),
            Kind::Checkbox { properties, .. } => properties.options_source.as_ref(),
            _ => None,
        }
    }

    /// The binding of its default value, if it is an input and it is bound.
    pub fn default_source(&self) -> Option<&DefaultSource> {
        match self {
            Kind::Text { properties, .. }
            | Kind::Email { properties, .. }
            | Kind::Phone { properties, .. } => properties.default_source.as_ref(),
            Kind::Textarea { properties, .. } => properties.default_source.as_ref(),
            Kind::Number { properties, .. } => properties.default_source.as_ref(),
            Kind::Date { properties, .. } => properties.default_source.as_ref(),
            Kind::Select { properties, .. } => properties.default_source.as_ref(),
            Kind::Radio { properties, .. } => properties.default_source.as_ref(),
            Kind::Checkbox { properties, .. } => properties.default_source.as_ref(),
            Kind::File { properties, .. } => properties.default_source.as_ref(),
            Kind::Section { .. }
            | Kind::Heading { .. }
            | Kind::Paragraph { .. }
            | Kind::Button { .. } => None,
        }
    }
}

/// Every data source id a component of `content` binds, through
/// `optionsSource` or `defaultSource`. Hidden components count: a hidden
/// field's default is still submitted.
pub fn bound_sources(content: &Content) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for component in content.components.values() {
        if let Some(s) = component.kind.options_source() {
            ids.insert(s.data_source_id.clone());
        }
        if let Some(s) = component.kind.default_source() {
            ids.insert(s.data_source_id.clone());
        }
    }
    ids
}
