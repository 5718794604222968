// One component of a form, drawn as the person filling the form sees it.
// The editor's canvas and the preview both draw components with this, so
// what an editor arranges is what the preview shows.
import type { Component } from "@coform/sdk";
import { Fragment, type ComponentChildren, type JSX } from "preact";
import { useState } from "preact/hooks";
import type { TypeInfo } from "../schema";
import { mapDefault, mapOptions, readDefaultBinding, readOptionsBinding } from "./binding";
import { useSourceAnswer } from "./sources";
import {
  bound,
  chosen,
  domId,
  flag,
  formatBytes,
  headingLevel,
  labelOf,
  num,
  options,
  prop,
  rule,
  text,
  type Option,
} from "./values";
import "./form.css";

export interface ControlProps {
  component: Component;
  /** The type's catalog entry: its defaults fill in absent properties. */
  info?: TypeInfo;
  /**
   * False on the editor canvas: the control is drawn but cannot be used,
   * focused or read out (the canvas's own wrapper names the component).
   */
  interactive: boolean;
  /** Starts every element id, so two renderings on one page never clash. */
  idPrefix: string;
  /** A section's content. */
  children?: ComponentChildren;
}

/** What every input has: its ids, label, help and state. */
interface Field {
  c: Component;
  info: TypeInfo | undefined;
  id: string;
  label: string;
  help: string | undefined;
  helpId: string | undefined;
  /** The submitted name; none on the canvas, where nothing is submitted. */
  name: string | undefined;
  required: boolean;
  disabled: boolean;
  readOnly: boolean;
  interactive: boolean;
  /** The options shown: from the bound data source, else the static ones. */
  choices: Option[];
  /** The default value: from the bound data source, else the static one. */
  initial: unknown;
  /** Why a bound source's options are not shown, if they are not. */
  sourceNote: string | undefined;
}

const CHOICE = new Set(["select", "radio", "checkbox"]);

/** What a component's data-source bindings give, with the static fallbacks. */
function useBound(c: Component, info: TypeInfo | undefined): Pick<Field, "choices" | "initial" | "sourceNote"> {
  const optionsBinding = readOptionsBinding(prop(c, info, "optionsSource"));
  const defaultBinding = readDefaultBinding(prop(c, info, "defaultSource"));
  const optionsAnswer = useSourceAnswer(optionsBinding);
  const defaultAnswer = useSourceAnswer(defaultBinding);
  let choices = options(prop(c, info, "options"));
  let sourceNote: string | undefined;
  if (optionsAnswer.state === "ok" && optionsBinding) {
    const mapped = mapOptions(optionsAnswer.data, optionsBinding);
    if (mapped.ok) choices = mapped.options;
    else sourceNote = `Options could not be read from the data source (${mapped.problem.message}); showing the saved options.`;
  } else if (optionsAnswer.state === "failed") {
    const code = (optionsAnswer.error as { code?: unknown } | null)?.code;
    sourceNote = `Options could not be loaded from the data source${typeof code === "string" ? ` (${code})` : ""}; showing the saved options.`;
  }
  let initial = prop(c, info, "defaultValue");
  if (defaultAnswer.state === "ok" && defaultBinding) {
    const found = mapDefault(defaultAnswer.data, defaultBinding.path);
    // An option's value is text: a number in the answer names the option
    // it prints as.
    if (found.found) initial = typeof found.value === "number" && CHOICE.has(c.type) ? String(found.value) : found.value;
  }
  return { choices, initial, sourceNote };
}

function field(props: ControlProps, sourced: Pick<Field, "choices" | "initial" | "sourceNote">): Field {
  const { component: c, info, interactive } = props;
  const id = domId(props.idPrefix, c.id);
  const help = text(prop(c, info, "helpText"));
  return {
    c,
    info,
    id,
    label: labelOf(c, info),
    help,
    helpId: help ? id + "-help" : undefined,
    name: interactive ? (text(prop(c, info, "name")) ?? c.id) : undefined,
    required: flag(rule(c, info, "required")),
    disabled: flag(prop(c, info, "disabled")),
    readOnly: flag(prop(c, info, "readOnly")),
    interactive,
    ...sourced,
  };
}

/** Attributes every form control shares. */
function common(f: Field, describedBy = f.helpId) {
  return {
    id: f.id,
    name: f.name,
    required: f.required,
    disabled: f.disabled,
    // The canvas keeps keyboard focus on its own wrappers.
    tabIndex: f.interactive ? undefined : -1,
    "aria-describedby": describedBy,
  };
}

function RequiredMark(props: { on: boolean }) {
  // Decorative: the control itself says it is required.
  return props.on ? (
    <span class="form-required" aria-hidden="true">
      *
    </span>
  ) : null;
}

function Label(props: { f: Field }) {
  const { f } = props;
  return (
    <label class="form-label" for={f.id}>
      {f.label}
      <RequiredMark on={f.required} />
    </label>
  );
}

function Help(props: { f: Field }) {
  const { f } = props;
  return f.help ? (
    <p class="form-help" id={f.helpId}>
      {f.help}
    </p>
  ) : null;
}

/** Why a bound source's options are not shown (the static ones are). */
function SourceNote(props: { f: Field }) {
  return props.f.sourceNote ? <p class="form-help form-source-note">{props.f.sourceNote}</p> : null;
}

/** One-line inputs: text, e-mail, phone, number and date. */
function LineInput(props: { f: Field; type: "text" | "email" | "tel" | "number" | "date" }) {
  const { f, type } = props;
  const { c, info } = f;
  const ranged = type === "number" || type === "date";
  const lengths = !ranged;
  const initial = f.initial;
  // The rules bound what is accepted; the properties bound what the
  // control offers. The stricter source, the rule, wins.
  const limit = (k: "min" | "max") => bound(rule(c, info, k)) ?? bound(prop(c, info, k));
  // The attribute types are a union keyed by `type`; these are the ones
  // every one-line type takes.
  const attributes = {
    ...common(f),
    class: "form-input",
    type,
    readOnly: f.readOnly,
    defaultValue: type === "number" ? bound(initial) : text(initial),
    placeholder: type === "date" ? undefined : text(prop(c, info, "placeholder")),
    autocomplete: lengths ? text(prop(c, info, "autocomplete")) : undefined,
    min: ranged ? limit("min") : undefined,
    max: ranged ? limit("max") : undefined,
    step: type === "number" ? bound(prop(c, info, "step")) : undefined,
    minLength: lengths ? num(rule(c, info, "minLength")) : undefined,
    maxLength: lengths ? num(rule(c, info, "maxLength")) : undefined,
    pattern: lengths ? text(rule(c, info, "pattern")) : undefined,
  } as JSX.IntrinsicElements["input"];
  return (
    <div class="form-field">
      <Label f={f} />
      <input {...attributes} />
      <Help f={f} />
    </div>
  );
}

function TextArea(props: { f: Field }) {
  const { f } = props;
  const { c, info } = f;
  const rows = Math.min(100, Math.max(1, Math.round(num(prop(c, info, "rows")) ?? 3)));
  return (
    <div class="form-field">
      <Label f={f} />
      <textarea
        {...common(f)}
        class="form-input"
        rows={rows}
        readOnly={f.readOnly}
        defaultValue={text(f.initial)}
        placeholder={text(prop(c, info, "placeholder"))}
        minLength={num(rule(c, info, "minLength"))}
        maxLength={num(rule(c, info, "maxLength"))}
      />
      <Help f={f} />
    </div>
  );
}

function Select(props: { f: Field; choices: Option[] }) {
  const { f, choices } = props;
  const { c, info } = f;
  const multiple = flag(prop(c, info, "multiple"));
  const initial = chosen(f.initial);
  return (
    <div class="form-field">
      <Label f={f} />
      <select {...common(f)} class="form-input" multiple={multiple}>
        {!multiple && (
          <option value="" selected={initial.size === 0}>
            {text(prop(c, info, "placeholder")) ?? "Choose…"}
          </option>
        )}
        {choices.map((o, i) => (
          <option key={i} value={o.value} selected={initial.has(o.value)}>
            {o.label}
          </option>
        ))}
      </select>
      <SourceNote f={f} />
      <Help f={f} />
    </div>
  );
}

/** Radio buttons, or a group of checkboxes: the label is the group's legend. */
function ChoiceGroup(props: { f: Field; choices: Option[]; kind: "radio" | "checkbox" }) {
  const { f, choices, kind } = props;
  const { c, info } = f;
  const initial = chosen(f.initial);
  const horizontal = prop(c, info, "layout") === "horizontal";
  const radio = kind === "radio";
  return (
    <fieldset
      class={"form-field form-group" + (horizontal ? " is-horizontal" : "")}
      id={f.id}
      role={radio ? "radiogroup" : undefined}
      aria-required={radio && f.required ? "true" : undefined}
      aria-describedby={f.helpId}
    >
      <legend class="form-label">
        {f.label}
        <RequiredMark on={f.required} />
        {/* A checkbox group has no native way to say it needs an answer. */}
        {!radio && f.required && <span class="form-sr-only"> (required)</span>}
      </legend>
      {choices.length === 0 ? (
        <p class="form-help">No options yet.</p>
      ) : (
        <div class="form-options">
          {choices.map((o, i) => {
            const id = `${f.id}-${i}`;
            return (
              <div class="form-option" key={i}>
                <input
                  id={id}
                  type={kind}
                  name={f.name}
                  value={o.value}
                  defaultChecked={initial.has(o.value)}
                  required={radio && f.required}
                  disabled={f.disabled}
                  tabIndex={f.interactive ? undefined : -1}
                />
                <label for={id}>{o.label}</label>
              </div>
            );
          })}
        </div>
      )}
      <SourceNote f={f} />
      <Help f={f} />
    </fieldset>
  );
}

/** A checkbox without options: the box, then its label. */
function SingleCheckbox(props: { f: Field }) {
  const { f } = props;
  return (
    <div class="form-field form-check">
      <input
        {...common(f)}
        type="checkbox"
        value="on"
        defaultChecked={f.initial === true}
      />
      <Label f={f} />
      <Help f={f} />
    </div>
  );
}

function FileInput(props: { f: Field }) {
  const { f } = props;
  const { c, info } = f;
  const maxSize = num(prop(c, info, "maxSize"));
  const limitId = maxSize !== undefined && maxSize > 0 ? f.id + "-limit" : undefined;
  const describedBy = [f.helpId, limitId].filter(Boolean).join(" ") || undefined;
  return (
    <div class="form-field">
      <Label f={f} />
      <input
        {...common(f, describedBy)}
        class="form-input form-file"
        type="file"
        accept={text(prop(c, info, "accept"))}
        multiple={flag(prop(c, info, "multiple"))}
      />
      {limitId && maxSize !== undefined && (
        <p class="form-help" id={limitId}>
          Largest file: {formatBytes(maxSize)}
        </p>
      )}
      <Help f={f} />
    </div>
  );
}

function Section(props: { f: Field; children?: ComponentChildren }) {
  const { f } = props;
  const description = text(prop(f.c, f.info, "description"));
  const collapsible = flag(prop(f.c, f.info, "collapsible"));
  const [open, setOpen] = useState(true);
  const bodyId = f.id + "-body";
  if (!f.interactive) {
    // The title is drawn but not read out; the content stays reachable,
    // since the canvas puts its own wrappers in it.
    return (
      <div class="form-section" id={f.id}>
        <div class="form-decor" aria-hidden="true" inert>
          <div class="form-legend">
            {collapsible && <span class="form-fold-mark">▾ </span>}
            {f.label}
          </div>
          {description && <p class="form-description">{description}</p>}
        </div>
        <div class="form-section-body">{props.children}</div>
      </div>
    );
  }
  return (
    <fieldset class="form-section" id={f.id}>
      <legend class="form-legend">
        {collapsible ? (
          <button
            type="button"
            class="form-fold"
            aria-expanded={open}
            aria-controls={bodyId}
            onClick={() => setOpen(!open)}
          >
            <span class="form-fold-mark" aria-hidden="true">
              {open ? "▾" : "▸"}
            </span>{" "}
            {f.label}
          </button>
        ) : (
          f.label
        )}
      </legend>
      {description && <p class="form-description">{description}</p>}
      <div class="form-section-body" id={bodyId} hidden={!open}>
        {props.children}
      </div>
    </fieldset>
  );
}

function Heading(props: { f: Field }) {
  const { f } = props;
  const level = headingLevel(prop(f.c, f.info, "level"));
  // The page around the form owns the <h1>, so the form's headings sit one
  // level below it; the class keeps the size the author chose.
  const Tag = `h${Math.min(6, level + 1)}` as "h2";
  return (
    <Tag class={`form-heading form-heading-${level}`} id={f.id}>
      {text(prop(f.c, f.info, "text")) ?? f.label}
    </Tag>
  );
}

function Paragraph(props: { f: Field }) {
  const { f } = props;
  const lines = (text(prop(f.c, f.info, "text")) ?? text(f.c.label) ?? "").split("\n");
  return (
    <p class="form-paragraph" id={f.id}>
      {lines.map((line, i) => (
        <Fragment key={i}>
          {i > 0 && <br />}
          {line}
        </Fragment>
      ))}
    </p>
  );
}

function Button(props: { f: Field }) {
  const { f } = props;
  const action = prop(f.c, f.info, "action");
  const type = action === "reset" || action === "button" ? action : "submit";
  return (
    <button
      class="form-button"
      id={f.id}
      type={type}
      disabled={f.disabled}
      tabIndex={f.interactive ? undefined : -1}
    >
      {text(prop(f.c, f.info, "text")) ?? text(f.c.label) ?? "Submit"}
    </button>
  );
}

/** A type this designer does not know: its label in a neutral box. */
function Unknown(props: { f: Field }) {
  const { f } = props;
  return (
    <div class="form-field form-unknown" id={f.id}>
      <span class="form-label">{f.label}</span>
      <span class="form-help">A “{f.c.type}” component, which this designer cannot show.</span>
    </div>
  );
}

function Body(props: { f: Field }) {
  const { f } = props;
  const choices = () => f.choices;
  switch (f.c.type) {
    case "text":
      return <LineInput f={f} type="text" />;
    case "email":
      return <LineInput f={f} type="email" />;
    case "phone":
      return <LineInput f={f} type="tel" />;
    case "number":
      return <LineInput f={f} type="number" />;
    case "date":
      return <LineInput f={f} type="date" />;
    case "textarea":
      return <TextArea f={f} />;
    case "select":
      return <Select f={f} choices={choices()} />;
    case "radio":
      return <ChoiceGroup f={f} choices={choices()} kind="radio" />;
    case "checkbox": {
      const list = choices();
      return list.length > 0 ? <ChoiceGroup f={f} choices={list} kind="checkbox" /> : <SingleCheckbox f={f} />;
    }
    case "file":
      return <FileInput f={f} />;
    case "heading":
      return <Heading f={f} />;
    case "paragraph":
      return <Paragraph f={f} />;
    case "button":
      return <Button f={f} />;
    default:
      return <Unknown f={f} />;
  }
}

/**
 * One component's control. A hidden component is left out of an
 * interactive rendering; on the canvas it is drawn and marked, so that
 * editors can still find it.
 */
export function Control(props: ControlProps) {
  const f = field(props, useBound(props.component, props.info));
  const hidden = flag(prop(f.c, f.info, "hidden"));
  if (hidden && props.interactive) return null;
  if (f.c.type === "section") {
    const section = <Section f={f}>{props.children}</Section>;
    return hidden ? <HiddenMark>{section}</HiddenMark> : section;
  }
  if (props.interactive) return <Body f={f} />;
  const drawn = (
    // Drawn, not usable: out of the tab order, the accessibility tree and
    // the way of clicks, which reach the canvas's wrapper instead.
    <div class="form-decor" aria-hidden="true" inert>
      <Body f={f} />
    </div>
  );
  return hidden ? <HiddenMark>{drawn}</HiddenMark> : drawn;
}

/** A component the person filling the form will not see (canvas only). */
function HiddenMark(props: { children: ComponentChildren }) {
  return (
    <div class="form-hidden">
      <span class="form-badge" aria-hidden="true">
        Hidden
      </span>
      {props.children}
    </div>
  );
}
