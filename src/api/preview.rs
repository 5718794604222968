//! `/api/templates/{id}/preview`: the form as a standalone HTML page.
//!
//! The page is accessible (every control has a `<label for>`, required
//! fields carry `required`, `aria-required` and a visible marker, sections
//! and radio groups are `<fieldset>`s with a `<legend>`, headings are
//! headings) and inert: it has no script, and its Content-Security-Policy
//! forbids any script, remote resource, form submission and framing.
//! Every string of the document — ids, labels, option labels, help texts,
//! patterns, meta fields — goes through [`escape`], so a document can't
//! inject markup however hostile its content.
//!
//! The live document is read leniently ([`coform_collab::model::Form::read`]):
//! whatever does not fit the model is left out, never an error.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use coform_collab::model::{Bound, ButtonAction, Component, ComponentType, Form, Layout};
use serde_json::Value;

use super::access::template_role;
use super::extract::AuthUser;
use super::versions::current_content;
use crate::error::ApiError;
use crate::server::AppState;

/// The preview's Content-Security-Policy.
pub const PREVIEW_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML element content and double- or single-quoted
/// attribute values: `& < > " '` become entities; NUL and other control
/// characters (but tab and line breaks) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}\
.field{margin:0 0 1.25rem}label,legend{display:block;font-weight:600;margin-bottom:.25rem}\
.choice label{display:inline;font-weight:normal;margin-left:.35rem}\
.horizontal .choice{display:inline-block;margin-right:1rem}\
input:not([type=radio]):not([type=checkbox]),select,textarea{box-sizing:border-box;width:100%;\
padding:.45rem;border:1px solid #767676;border-radius:4px;font:inherit}\
fieldset{border:1px solid #c8c8c8;border-radius:6px;padding:.75rem 1rem;margin:0 0 1.25rem}\
.req{color:#b00020;margin-left:.2rem}.help{color:#555;font-size:.9rem;margin:.25rem 0 0}\
.description{color:#333}button{font:inherit;padding:.5rem 1.25rem}";

/// A control's element id. Component ids can't hold spaces (the model
/// refuses them); escaping makes any id safe in an attribute.
fn control_id(c: &Component) -> String {
    format!("f-{}", escape(&c.id))
}

fn required_mark(out: &mut String, required: bool) {
    if required {
        out.push_str("<span class=\"req\" aria-hidden=\"true\">*</span>");
    }
}

/// ` required aria-required="true"` for a required control.
fn required_attrs(required: bool) -> &'static str {
    if required {
        " required aria-required=\"true\""
    } else {
        ""
    }
}

/// A text for a component: its label, else `fallback`.
fn label_or<'a>(c: &'a Component, fallback: &'a str) -> &'a str {
    if c.label.trim().is_empty() {
        fallback
    } else {
        &c.label
    }
}

fn attr(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        let _ = write!(out, " {name}=\"{}\"", escape(v));
    }
}

fn flag(out: &mut String, name: &str, on: Option<bool>) {
    if on == Some(true) {
        let _ = write!(out, " {name}");
    }
}

fn default_str(c: &Component) -> Option<String> {
    match c.properties.default_value.as_ref()? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n
            .as_f64()
            .map(coform_collab::model::format_number)
            .or_else(|| Some(n.to_string())),
        _ => None,
    }
}

/// Whether `value` is selected by default.
fn is_default(c: &Component, value: &str) -> bool {
    match c.properties.default_value.as_ref() {
        Some(Value::String(s)) => s == value,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(value)),
        _ => false,
    }
}

fn help(out: &mut String, c: &Component) -> Option<String> {
    let text = c.properties.help_text.as_deref()?.trim();
    if text.is_empty() {
        return None;
    }
    let id = format!("{}-help", control_id(c));
    let _ = write!(out, "<p class=\"help\" id=\"{id}\">{}</p>", escape(text));
    Some(id)
}

fn bound_attr(out: &mut String, name: &str, rule: &Option<Bound>, prop: &Option<Bound>) {
    if let Some(b) = rule.as_ref().or(prop.as_ref()) {
        attr(out, name, Some(&b.to_attr()));
    }
}

/// The label of a single control, then the control.
fn render_input(out: &mut String, c: &Component) {
    let id = control_id(c);
    let required = c.validation.is_required();
    let p = &c.properties;
    let v = &c.validation;
    out.push_str("<div class=\"field\">");
    let _ = write!(out, "<label for=\"{id}\">{}", escape(label_or(c, &c.id)));
    required_mark(out, required);
    out.push_str("</label>");
    // The help paragraph is written after the control but referenced
    // from it, so render it into its own buffer first.
    let mut help_html = String::new();
    let help_id = help(&mut help_html, c);
    let name = p.name.as_deref().unwrap_or(&c.id);
    match c.kind {
        ComponentType::Textarea => {
            let _ = write!(out, "<textarea id=\"{id}\" name=\"{}\"", escape(name));
            if let Some(rows) = p.rows {
                let _ = write!(out, " rows=\"{rows}\"");
            }
        }
        ComponentType::Select => {
            let _ = write!(out, "<select id=\"{id}\" name=\"{}\"", escape(name));
            flag(out, "multiple", p.multiple);
        }
        _ => {
            let ty = match c.kind {
                ComponentType::Number => "number",
                ComponentType::Email => "email",
                ComponentType::Phone => "tel",
                ComponentType::Date => "date",
                ComponentType::File => "file",
                _ => "text",
            };
            let _ = write!(
                out,
                "<input type=\"{ty}\" id=\"{id}\" name=\"{}\"",
                escape(name)
            );
            if c.kind != ComponentType::File {
                attr(out, "value", default_str(c).as_deref());
            }
        }
    }
    if !matches!(
        c.kind,
        ComponentType::Select | ComponentType::File | ComponentType::Date
    ) {
        attr(out, "placeholder", p.placeholder.as_deref());
    }
    if c.kind.is_textual() && c.kind != ComponentType::Textarea {
        attr(out, "autocomplete", p.autocomplete.as_deref());
    }
    if matches!(c.kind, ComponentType::Number | ComponentType::Date) {
        bound_attr(out, "min", &v.min, &p.min);
        bound_attr(out, "max", &v.max, &p.max);
    }
    if let Some(step) = p.step {
        attr(
            out,
            "step",
            Some(&coform_collab::model::format_number(step)),
        );
    }
    if c.kind.is_textual() {
        if let Some(n) = v.min_length {
            let _ = write!(out, " minlength=\"{n}\"");
        }
        if let Some(n) = v.max_length {
            let _ = write!(out, " maxlength=\"{n}\"");
        }
        if c.kind != ComponentType::Textarea {
            attr(out, "pattern", v.pattern.as_deref());
        }
    }
    if c.kind == ComponentType::File {
        attr(out, "accept", p.accept.as_deref());
        flag(out, "multiple", p.multiple);
    }
    flag(out, "disabled", p.disabled);
    if c.kind != ComponentType::Select {
        flag(out, "readonly", p.read_only);
    }
    out.push_str(required_attrs(required));
    attr(out, "aria-describedby", help_id.as_deref());
    out.push('>');
    match c.kind {
        ComponentType::Textarea => {
            let _ = write!(
                out,
                "{}</textarea>",
                escape(&default_str(c).unwrap_or_default())
            );
        }
        ComponentType::Select => {
            if p.multiple != Some(true) {
                let _ = write!(
                    out,
                    "<option value=\"\">{}</option>",
                    escape(p.placeholder.as_deref().unwrap_or("Choose…"))
                );
            }
            for o in &p.options {
                let _ = write!(out, "<option value=\"{}\"", escape(&o.value));
                flag(out, "selected", Some(is_default(c, &o.value)));
                let _ = write!(out, ">{}</option>", escape(&o.label));
            }
            out.push_str("</select>");
        }
        _ => {}
    }
    out.push_str(&help_html);
    out.push_str("</div>");
}

/// A radio group, or a checkbox group (with options): a fieldset whose
/// legend is the label.
fn render_group(out: &mut String, c: &Component) {
    let id = control_id(c);
    let required = c.validation.is_required();
    let p = &c.properties;
    let radio = c.kind == ComponentType::Radio;
    let layout = match p.layout {
        Some(Layout::Horizontal) => " horizontal",
        _ => "",
    };
    let mut help_html = String::new();
    let help_id = help(&mut help_html, c);
    let _ = write!(out, "<fieldset class=\"field{layout}\" id=\"{id}\"");
    if radio {
        out.push_str(" role=\"radiogroup\"");
        out.push_str(if required {
            " aria-required=\"true\""
        } else {
            ""
        });
    }
    attr(out, "aria-describedby", help_id.as_deref());
    let _ = write!(out, "><legend>{}", escape(label_or(c, &c.id)));
    required_mark(out, required);
    out.push_str("</legend>");
    let name = p.name.as_deref().unwrap_or(&c.id);
    for (i, o) in p.options.iter().enumerate() {
        let oid = format!("{id}-{i}");
        let _ = write!(
            out,
            "<div class=\"choice\"><input type=\"{}\" id=\"{oid}\" name=\"{}\" value=\"{}\"",
            if radio { "radio" } else { "checkbox" },
            escape(name),
            escape(&o.value)
        );
        flag(out, "checked", Some(is_default(c, &o.value)));
        flag(out, "disabled", p.disabled);
        if radio && required {
            out.push_str(" required");
        }
        let _ = write!(
            out,
            "><label for=\"{oid}\">{}</label></div>",
            escape(&o.label)
        );
    }
    out.push_str(&help_html);
    out.push_str("</fieldset>");
}

/// A single checkbox: the control, then its label.
fn render_checkbox(out: &mut String, c: &Component) {
    let id = control_id(c);
    let required = c.validation.is_required();
    let p = &c.properties;
    let mut help_html = String::new();
    let help_id = help(&mut help_html, c);
    let name = p.name.as_deref().unwrap_or(&c.id);
    let _ = write!(
        out,
        "<div class=\"field choice\"><input type=\"checkbox\" id=\"{id}\" name=\"{}\" value=\"on\"",
        escape(name)
    );
    flag(
        out,
        "checked",
        Some(p.default_value.as_ref() == Some(&Value::Bool(true))),
    );
    flag(out, "disabled", p.disabled);
    out.push_str(required_attrs(required));
    attr(out, "aria-describedby", help_id.as_deref());
    let _ = write!(out, "><label for=\"{id}\">{}", escape(label_or(c, &c.id)));
    required_mark(out, required);
    out.push_str("</label>");
    out.push_str(&help_html);
    out.push_str("</div>");
}

fn render_component(out: &mut String, form: &Form, c: &Component) {
    if c.is_hidden() {
        return;
    }
    let p = &c.properties;
    match c.kind {
        ComponentType::Section => {
            let _ = write!(out, "<fieldset class=\"section\" id=\"{}\">", control_id(c));
            if !c.label.trim().is_empty() {
                let _ = write!(out, "<legend>{}</legend>", escape(&c.label));
            }
            if let Some(d) = p.description.as_deref().filter(|d| !d.trim().is_empty()) {
                let _ = write!(out, "<p class=\"description\">{}</p>", escape(d));
            }
            for child in form.children(Some(&c.id)) {
                render_component(out, form, child);
            }
            out.push_str("</fieldset>");
        }
        ComponentType::Heading => {
            let level = p.level.unwrap_or(2).clamp(1, 6);
            let text = p.text.as_deref().unwrap_or(&c.label);
            let _ = write!(
                out,
                "<h{level} id=\"{}\">{}</h{level}>",
                control_id(c),
                escape(text)
            );
        }
        ComponentType::Paragraph => {
            let text = p.text.as_deref().unwrap_or(&c.label);
            let _ = write!(
                out,
                "<p id=\"{}\">{}</p>",
                control_id(c),
                escape(text).replace('\n', "<br>")
            );
        }
        ComponentType::Button => {
            let ty = match p.action {
                Some(ButtonAction::Reset) => "reset",
                Some(ButtonAction::Button) => "button",
                _ => "submit",
            };
            let text = p
                .text
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| label_or(c, "Submit"));
            let _ = write!(out, "<button type=\"{ty}\" id=\"{}\"", control_id(c));
            flag(out, "disabled", p.disabled);
            let _ = write!(out, ">{}</button>", escape(text));
        }
        ComponentType::Radio => render_group(out, c),
        ComponentType::Checkbox if !p.options.is_empty() => render_group(out, c),
        ComponentType::Checkbox => render_checkbox(out, c),
        _ => render_input(out, c),
    }
}

/// The whole page. `fallback_title` is used when the form has no name.
pub fn render(form: &Form, fallback_title: &str) -> String {
    let title = if form.meta.name.trim().is_empty() {
        fallback_title
    } else {
        &form.meta.name
    };
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>\
         <h1 id=\"form-title\">{}</h1>",
        escape(title),
        escape(title)
    );
    if !form.meta.description.trim().is_empty() {
        let _ = write!(
            out,
            "<p class=\"description\">{}</p>",
            escape(&form.meta.description).replace('\n', "<br>")
        );
    }
    let any_required = form
        .components
        .values()
        .any(|c| !c.is_hidden() && c.validation.is_required());
    if any_required {
        out.push_str(
            "<p class=\"help\">Fields marked <span class=\"req\" aria-hidden=\"true\">*</span> \
             are required.</p>",
        );
    }
    out.push_str("<form aria-labelledby=\"form-title\">");
    for c in form.children(None) {
        render_component(&mut out, form, c);
    }
    out.push_str("</form></main></body></html>\n");
    out
}

/// The form as a standalone, script-free HTML page (any member). Counts
/// as a view.
#[utoipa::path(get, path = "/api/templates/{id}/preview", tag = "templates", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The HTML page", content_type = "text/html"), (status = 401), (status = 404)))]
pub async fn preview(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (template, _) = template_role(&state, &id, &me.user.id).await?;
    let content = current_content(&state, &id).await?;
    let html = render(&Form::read(&content), &template.name);
    super::stats::record_view(&state, &id).await;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PREVIEW_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escape_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("é 🎉 \u{0}\u{7}\n"), "é 🎉 \u{FFFD}\u{FFFD}\n");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn labels_are_tied_to_controls_and_required_is_marked() {
        let form = Form::read(&json!({"meta": {"name": "F"}, "components": {
            "a": {"id": "a", "type": "text", "label": "A", "index": "a0",
                  "validation": {"required": true}, "properties": {"helpText": "Help"}},
            "r": {"id": "r", "type": "radio", "label": "R", "index": "a1",
                  "properties": {"options": [{"value": "1", "label": "One"}]},
                  "validation": {"required": true}},
            "s": {"id": "s", "type": "section", "label": "S", "index": "a2"},
            "in": {"id": "in", "type": "email", "label": "E", "index": "a0", "parent": "s"},
            "hid": {"id": "hid", "type": "text", "label": "Hidden", "index": "a3",
                    "properties": {"hidden": true}}
        }}));
        let html = render(&form, "x");
        assert!(html.contains(
            "<label for=\"f-a\">A<span class=\"req\" aria-hidden=\"true\">*</span></label>"
        ));
        assert!(html.contains(
            "<input type=\"text\" id=\"f-a\" name=\"a\" required aria-required=\"true\" aria-describedby=\"f-a-help\">"
        ), "{html}");
        assert!(html.contains("role=\"radiogroup\" aria-required=\"true\""));
        assert!(html.contains("<legend>R<span class=\"req\""));
        assert!(html.contains("<input type=\"radio\" id=\"f-r-0\" name=\"r\" value=\"1\" required><label for=\"f-r-0\">One</label>"));
        assert!(html.contains("<fieldset class=\"section\" id=\"f-s\"><legend>S</legend><div class=\"field\"><label for=\"f-in\">E</label><input type=\"email\""));
        assert!(!html.contains("Hidden"));
        assert!(!html.contains("<script"));
    }
}
