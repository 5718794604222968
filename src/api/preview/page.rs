//! The preview page in `maud`: one function per kind of component.
//! Text goes through [`Esc`], which escapes `& < > " '` and replaces
//! control characters, wherever it lands (element content or attribute).

use coform_model::{
    format_number, ButtonAction, Checked, Choice, Component, Form, Kind, Layout, Selection,
};
use maud::{html, Markup, PreEscaped, Render, DOCTYPE};

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

/// Escapes `s` into `out` for HTML element content and double- or
/// single-quoted attribute values: `& < > " '` become entities; NUL and
/// other control characters (but tab and line breaks) become U+FFFD.
fn escape_into(s: &str, out: &mut String) {
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
}

/// `s` escaped as [`Esc`] writes it.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(s, &mut out);
    out
}

/// Text to write into the page, escaped.
struct Esc<'a>(&'a str);

impl Render for Esc<'_> {
    fn render_to(&self, buffer: &mut String) {
        escape_into(self.0, buffer);
    }
}

/// Lines of text with `<br>` between them.
fn lines(text: &str) -> Markup {
    html! {
        @for (i, line) in text.split('\n').enumerate() {
            @if i > 0 { br; }
            (Esc(line))
        }
    }
}

/// What every control needs: its element id, submitted name, label, help.
struct Control<'a> {
    c: &'a Component,
    /// The element id: `f-` and the component id.
    id: String,
    name: &'a str,
    required: bool,
    help: Option<&'a str>,
    disabled: bool,
    read_only: bool,
}

impl<'a> Control<'a> {
    fn new(c: &'a Component, common: Common<'a>) -> Control<'a> {
        Control {
            c,
            id: format!("f-{}", c.id),
            name: common.name.unwrap_or(&c.id),
            required: common.required == Some(true),
            help: common.help.map(str::trim).filter(|h| !h.is_empty()),
            disabled: common.disabled == Some(true),
            read_only: common.read_only == Some(true),
        }
    }

    fn label(&self) -> &'a str {
        label_or(self.c, &self.c.id)
    }

    fn help_id(&self) -> Option<String> {
        self.help.map(|_| format!("{}-help", self.id))
    }

    fn help(&self) -> Markup {
        html! {
            @if let (Some(text), Some(id)) = (self.help, self.help_id()) {
                p.help id=(Esc(&id)) { (Esc(text)) }
            }
        }
    }
}

/// The fields of an input's properties and rules that every input has.
struct Common<'a> {
    name: Option<&'a str>,
    help: Option<&'a str>,
    disabled: Option<bool>,
    read_only: Option<bool>,
    required: Option<bool>,
}

macro_rules! common {
    ($p:expr, $v:expr) => {
        Common {
            name: $p.name.as_deref(),
            help: $p.help_text.as_deref(),
            disabled: $p.disabled,
            read_only: $p.read_only,
            required: $v.required,
        }
    };
}

/// A component's label, else `fallback`.
fn label_or<'a>(c: &'a Component, fallback: &'a str) -> &'a str {
    if c.label.trim().is_empty() {
        fallback
    } else {
        &c.label
    }
}

fn required_mark(required: bool) -> Markup {
    html! {
        @if required { span.req aria-hidden="true" { "*" } }
    }
}

/// The label of a single control, then the control, then its help.
fn field(ctl: &Control, control: Markup) -> Markup {
    html! {
        div.field {
            label for=(Esc(&ctl.id)) { (Esc(ctl.label())) (required_mark(ctl.required)) }
            (control)
            (ctl.help())
        }
    }
}

/// Attributes of an `<input>` beyond its type, id and name, each written
/// only when present, always in this order.
#[derive(Default)]
struct Attrs<'a> {
    value: Option<String>,
    placeholder: Option<&'a str>,
    autocomplete: Option<&'a str>,
    min: Option<String>,
    max: Option<String>,
    step: Option<String>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<&'a str>,
    accept: Option<&'a str>,
    multiple: bool,
}

/// A labelled `<input>` of `ty`.
fn input(ctl: &Control, ty: &str, a: Attrs) -> Markup {
    let described = ctl.help_id();
    field(
        ctl,
        html! {
            input type=(ty) id=(Esc(&ctl.id)) name=(Esc(ctl.name))
                value=[a.value.as_deref().map(Esc)]
                placeholder=[a.placeholder.map(Esc)]
                autocomplete=[a.autocomplete.map(Esc)]
                min=[a.min.as_deref().map(Esc)]
                max=[a.max.as_deref().map(Esc)]
                step=[a.step.as_deref().map(Esc)]
                minlength=[a.min_length]
                maxlength=[a.max_length]
                pattern=[a.pattern.map(Esc)]
                accept=[a.accept.map(Esc)]
                multiple[a.multiple]
                disabled[ctl.disabled]
                readonly[ctl.read_only]
                required[ctl.required]
                aria-required=[ctl.required.then_some("true")]
                aria-describedby=[described.as_deref().map(Esc)];
        },
    )
}

/// A labelled `<textarea>`.
fn textarea(
    ctl: &Control,
    rows: Option<u32>,
    placeholder: Option<&str>,
    default: Option<&str>,
    min_length: Option<u64>,
    max_length: Option<u64>,
) -> Markup {
    let described = ctl.help_id();
    field(
        ctl,
        html! {
            textarea id=(Esc(&ctl.id)) name=(Esc(ctl.name))
                rows=[rows]
                placeholder=[placeholder.map(Esc)]
                minlength=[min_length]
                maxlength=[max_length]
                disabled[ctl.disabled]
                readonly[ctl.read_only]
                required[ctl.required]
                aria-required=[ctl.required.then_some("true")]
                aria-describedby=[described.as_deref().map(Esc)]
            { (Esc(default.unwrap_or_default())) }
        },
    )
}

/// Whether option `value` is chosen by default.
fn selected(default: Option<&Selection>, value: &str) -> bool {
    match default {
        Some(Selection::One(s)) => s == value,
        Some(Selection::Many(items)) => items.iter().any(|v| v == value),
        None => false,
    }
}

/// A labelled drop-down.
fn select(
    ctl: &Control,
    options: &[Choice],
    multiple: bool,
    placeholder: Option<&str>,
    default: Option<&Selection>,
) -> Markup {
    let described = ctl.help_id();
    field(
        ctl,
        html! {
            select id=(Esc(&ctl.id)) name=(Esc(ctl.name))
                multiple[multiple]
                disabled[ctl.disabled]
                required[ctl.required]
                aria-required=[ctl.required.then_some("true")]
                aria-describedby=[described.as_deref().map(Esc)]
            {
                @if !multiple {
                    option value="" { (Esc(placeholder.unwrap_or("Choose…"))) }
                }
                @for o in options {
                    option value=(Esc(&o.value)) selected[selected(default, &o.value)] { (Esc(&o.label)) }
                }
            }
        },
    )
}

/// A radio group, or a checkbox group: a fieldset whose legend is the
/// label, one choice per option.
fn group(
    ctl: &Control,
    radio: bool,
    options: &[Choice],
    layout: Option<Layout>,
    checked: impl Fn(&str) -> bool,
) -> Markup {
    let class = match layout {
        Some(Layout::Horizontal) => "field horizontal",
        _ => "field",
    };
    let described = ctl.help_id();
    html! {
        fieldset class=(class) id=(Esc(&ctl.id))
            role=[radio.then_some("radiogroup")]
            aria-required=[(radio && ctl.required).then_some("true")]
            aria-describedby=[described.as_deref().map(Esc)]
        {
            legend { (Esc(ctl.label())) (required_mark(ctl.required)) }
            @for (i, o) in options.iter().enumerate() {
                @let oid = format!("{}-{i}", ctl.id);
                div.choice {
                    input type=(if radio { "radio" } else { "checkbox" }) id=(Esc(&oid))
                        name=(Esc(ctl.name)) value=(Esc(&o.value))
                        checked[checked(&o.value)]
                        disabled[ctl.disabled]
                        required[radio && ctl.required];
                    label for=(Esc(&oid)) { (Esc(&o.label)) }
                }
            }
            (ctl.help())
        }
    }
}

/// A single checkbox: the control, then its label.
fn single_checkbox(ctl: &Control, checked: bool) -> Markup {
    let described = ctl.help_id();
    html! {
        div.field.choice {
            input type="checkbox" id=(Esc(&ctl.id)) name=(Esc(ctl.name)) value="on"
                checked[checked]
                disabled[ctl.disabled]
                required[ctl.required]
                aria-required=[ctl.required.then_some("true")]
                aria-describedby=[described.as_deref().map(Esc)];
            label for=(Esc(&ctl.id)) { (Esc(ctl.label())) (required_mark(ctl.required)) }
            (ctl.help())
        }
    }
}

/// One component (and, for a section, what it contains).
fn component(form: &Form, c: &Component) -> Markup {
    if c.is_hidden() {
        return html! {};
    }
    let id = format!("f-{}", c.id);
    match &c.kind {
        Kind::Text {
            properties: p,
            validation: v,
        }
        | Kind::Email {
            properties: p,
            validation: v,
        }
        | Kind::Phone {
            properties: p,
            validation: v,
        } => {
            let ty = match c.component_type() {
                coform_model::ComponentType::Email => "email",
                coform_model::ComponentType::Phone => "tel",
                _ => "text",
            };
            input(
                &Control::new(c, common!(p, v)),
                ty,
                Attrs {
                    value: p.default_value.clone(),
                    placeholder: p.placeholder.as_deref(),
                    autocomplete: p.autocomplete.as_deref(),
                    min_length: v.min_length,
                    max_length: v.max_length,
                    pattern: v.pattern.as_deref(),
                    ..Attrs::default()
                },
            )
        }
        Kind::Textarea {
            properties: p,
            validation: v,
        } => textarea(
            &Control::new(c, common!(p, v)),
            p.rows,
            p.placeholder.as_deref(),
            p.default_value.as_deref(),
            v.min_length,
            v.max_length,
        ),
        Kind::Number {
            properties: p,
            validation: v,
        } => input(
            &Control::new(c, common!(p, v)),
            "number",
            Attrs {
                value: p.default_value.map(format_number),
                placeholder: p.placeholder.as_deref(),
                min: v.min.or(p.min).map(format_number),
                max: v.max.or(p.max).map(format_number),
                step: p.step.map(format_number),
                ..Attrs::default()
            },
        ),
        Kind::Date {
            properties: p,
            validation: v,
        } => input(
            &Control::new(c, common!(p, v)),
            "date",
            Attrs {
                value: p.default_value.as_ref().map(|d| d.0.clone()),
                min: v.min.as_ref().or(p.min.as_ref()).map(|d| d.0.clone()),
                max: v.max.as_ref().or(p.max.as_ref()).map(|d| d.0.clone()),
                ..Attrs::default()
            },
        ),
        Kind::File {
            properties: p,
            validation: v,
        } => input(
            &Control::new(c, common!(p, v)),
            "file",
            Attrs {
                accept: p.accept.as_deref(),
                multiple: p.multiple == Some(true),
                ..Attrs::default()
            },
        ),
        Kind::Select {
            properties: p,
            validation: v,
        } => select(
            &Control::new(c, common!(p, v)),
            &p.options,
            p.multiple == Some(true),
            p.placeholder.as_deref(),
            p.default_value.as_ref(),
        ),
        Kind::Radio {
            properties: p,
            validation: v,
        } => {
            let default = p.default_value.as_deref();
            group(
                &Control::new(c, common!(p, v)),
                true,
                &p.options,
                p.layout,
                |value| default == Some(value),
            )
        }
        Kind::Checkbox {
            properties: p,
            validation: v,
        } if !p.options.is_empty() => {
            let default = &p.default_value;
            group(
                &Control::new(c, common!(p, v)),
                false,
                &p.options,
                p.layout,
                |value| matches!(default, Some(Checked::Values(values)) if values.iter().any(|x| x == value)),
            )
        }
        Kind::Checkbox {
            properties: p,
            validation: v,
        } => single_checkbox(
            &Control::new(c, common!(p, v)),
            p.default_value == Some(Checked::Single(true)),
        ),
        Kind::Section { properties: p, .. } => html! {
            fieldset.section id=(Esc(&id)) {
                @if !c.label.trim().is_empty() { legend { (Esc(&c.label)) } }
                @if let Some(d) = p.description.as_deref().filter(|d| !d.trim().is_empty()) {
                    p.description { (Esc(d)) }
                }
                @for child in form.children(Some(&c.id)) { (component(form, child)) }
            }
        },
        Kind::Heading { properties: p, .. } => {
            let text = Esc(p.text.as_deref().unwrap_or(&c.label));
            let id = Esc(&id);
            match p.level.unwrap_or(2).clamp(1, 6) {
                1 => html! { h1 id=(id) { (text) } },
                2 => html! { h2 id=(id) { (text) } },
                3 => html! { h3 id=(id) { (text) } },
                4 => html! { h4 id=(id) { (text) } },
                5 => html! { h5 id=(id) { (text) } },
                _ => html! { h6 id=(id) { (text) } },
            }
        }
        Kind::Paragraph { properties: p, .. } => html! {
            p id=(Esc(&id)) { (lines(p.text.as_deref().unwrap_or(&c.label))) }
        },
        Kind::Button { properties: p, .. } => {
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
            html! {
                button type=(ty) id=(Esc(&id)) disabled[p.disabled == Some(true)] { (Esc(text)) }
            }
        }
    }
}

/// Is any visible component required?
fn any_required(form: &Form) -> bool {
    form.components.values().any(|c| {
        !c.is_hidden()
            && match &c.kind {
                Kind::Text { validation: v, .. }
                | Kind::Textarea { validation: v, .. }
                | Kind::Email { validation: v, .. }
                | Kind::Phone { validation: v, .. } => v.required,
                Kind::Number { validation: v, .. } => v.required,
                Kind::Date { validation: v, .. } => v.required,
                Kind::Select { validation: v, .. }
                | Kind::Radio { validation: v, .. }
                | Kind::Checkbox { validation: v, .. }
                | Kind::File { validation: v, .. } => v.required,
                _ => None,
            } == Some(true)
    })
}

/// The whole page. `fallback_title` is used when the form has no name.
pub fn render(form: &Form, fallback_title: &str) -> String {
    let title = if form.meta.name.trim().is_empty() {
        fallback_title
    } else {
        &form.meta.name
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (Esc(title)) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 #form-title { (Esc(title)) }
                    @if !form.meta.description.trim().is_empty() {
                        p.description { (lines(&form.meta.description)) }
                    }
                    @if any_required(form) {
                        p.help { "Fields marked " span.req aria-hidden="true" { "*" } " are required." }
                    }
                    form aria-labelledby="form-title" {
                        @for c in form.children(None) { (component(form, c)) }
                    }
                }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
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
