// How one component looks on the canvas: what a person filling the form
// would see, inert (the canvas item around it is what takes focus).
import type { Component } from "@coform/sdk";
import type { TypeInfo } from "../schema";

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

export function FormControl(props: { component: Component; info?: TypeInfo }) {
  const c = props.component;
  const p = c.properties;
  const required = c.validation.required === true;
  const label = (
    <span class="fc-label">
      {c.label}
      {required && <span class="fc-required"> *</span>}
    </span>
  );
  const help = str(p.helpText) && <span class="fc-help">{str(p.helpText)}</span>;
  const options = Array.isArray(p.options) ? (p.options as Array<{ value?: unknown; label?: unknown }>) : [];
  switch (c.type) {
    case "section":
      return (
        <span class="fc fc-section">
          <span class="fc-legend">{c.label}</span>
          {str(p.description) && <span class="fc-help">{str(p.description)}</span>}
        </span>
      );
    case "heading":
      return <span class={`fc fc-heading level-${Number(p.level) || 2}`}>{str(p.text) || c.label}</span>;
    case "paragraph":
      return <span class="fc fc-paragraph">{str(p.text) || c.label}</span>;
    case "button":
      return (
        <span class="fc">
          <span class="fc-button">{str(p.text) || c.label}</span>
        </span>
      );
    case "radio":
    case "checkbox":
      return (
        <span class="fc">
          {label}
          <span class={`fc-options ${str(p.layout) || "vertical"}`}>
            {options.map((o, i) => (
              <span class="fc-option" key={i}>
                <span class={`fc-mark ${c.type}`} /> {str(o.label) || str(o.value)}
              </span>
            ))}
          </span>
          {help}
        </span>
      );
    default:
      return (
        <span class="fc">
          {label}
          <span class={`fc-input type-${c.type}`}>
            {c.type === "select" ? str(p.placeholder) || str(options[0]?.label) : str(p.placeholder)}
            {c.type === "select" && <span class="fc-caret">▾</span>}
          </span>
          {help}
        </span>
      );
  }
}
