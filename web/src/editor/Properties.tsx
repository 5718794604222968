// The properties panel of the selected component, drawn from the server's
// catalog: the label, then each property and validation rule of its type,
// grouped. Text fields send every keystroke (others see it as you type);
// the server validator's findings are shown at the field they concern.
import { useComputed, useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { Component, ComponentPatch } from "@coform/sdk";
import type { JSX, TargetedEvent } from "preact";
import { typeInfo, type Catalog, type FieldInfo } from "../schema";
import { BindingField } from "./Bindings";
import { deleteWithUndo } from "./Canvas";
import { focusItem } from "./focus";
import { moveChoices, problemsOf, stepMove } from "./model";
import type { EditorStore } from "./store";

const GROUP_TITLES: Record<string, string> = {
  basic: "Basics",
  options: "Options",
  data: "Data",
  layout: "Layout",
  behaviour: "Behaviour",
  advanced: "Advanced",
  validation: "Validation",
};
const GROUP_ORDER = ["basic", "options", "data", "layout", "behaviour", "validation", "advanced"];

/** Fields whose text is long enough for a text area. */
const LONG_TEXT = new Set(["text", "description", "customValidation", "helpText"]);

/** Where the template lives: data-source bindings list and call its workspace's sources. */
export interface Place {
  templateId: string;
  /** Unknown while offline before the template was ever loaded. */
  workspaceId: string | null;
}

export function Properties(props: { store: EditorStore; catalog: Catalog | null; place: Place }) {
  const { store, catalog, place } = props;
  const id = store.selection.value;
  const sig = id === null ? undefined : store.byId.get(id);
  return (
    <section class="properties" aria-label="Properties">
      <h2>Properties</h2>
      {sig === undefined || id === null ? (
        <p class="muted">Select a component on the canvas to see and change its properties.</p>
      ) : (
        <Panel key={id} store={store} catalog={catalog} id={id} component={sig.value} place={place} />
      )}
    </section>
  );
}

function Panel(props: { store: EditorStore; catalog: Catalog | null; id: string; component: Component; place: Place }) {
  const { store, catalog, id, component: c, place } = props;
  const info = typeInfo(catalog, c.type);
  const readOnly = store.readOnly.value;
  const problems = useComputed(() => problemsOf(store.problems.value, id));
  const found = problems.value;
  const label = catalog?.common.find((f) => f.name === "label");

  const fields: Array<{ f: FieldInfo; where: "properties" | "validation" }> = [
    ...(info?.properties ?? []).map((f) => ({ f, where: "properties" as const })),
    ...(info?.validation ?? []).map((f) => ({ f, where: "validation" as const })),
  ];
  const groups = new Map<string, typeof fields>();
  for (const x of fields) {
    const g = x.where === "validation" ? "validation" : x.f.group;
    let l = groups.get(g);
    if (l === undefined) groups.set(g, (l = []));
    l.push(x);
  }
  const ordered = [...groups.keys()].sort(
    (a, b) => (GROUP_ORDER.indexOf(a) + 1 || 99) - (GROUP_ORDER.indexOf(b) + 1 || 99),
  );

  return (
    <div class="panel">
      <p class="panel-type">
        {info?.label ?? c.type}
        {info?.description && <span class="muted"> — {info.description}</span>}
      </p>
      {!readOnly && <Actions store={store} id={id} />}
      {(found.get("") ?? found.get("type"))?.map((m) => (
        <p class="field-error" key={m}>
          {m}
        </p>
      ))}
      <TextInput
        id="prop-label"
        label="Label"
        value={c.label}
        maxLength={label?.limits.maxLength}
        disabled={readOnly}
        errors={found.get("label")}
        onValue={(v) => store.update(id, { label: v })}
      />
      {ordered.map((g) => (
        <fieldset class="prop-group" key={g}>
          <legend>{GROUP_TITLES[g] ?? g}</legend>
          {groups.get(g)!.map(({ f, where }) => (
            <PropField
              key={`${where}.${f.name}`}
              field={f}
              where={where}
              value={(where === "properties" ? c.properties : c.validation)[f.name]}
              disabled={readOnly}
              place={place}
              errors={found.get(`${where}.${f.name}`)}
              onValue={(v) => store.update(id, { [where]: { [f.name]: v } } as ComponentPatch)}
            />
          ))}
        </fieldset>
      ))}
    </div>
  );
}

/** Move up/down, Move to…, Delete. */
function Actions(props: { store: EditorStore; id: string }) {
  const { store, id } = props;
  const open = useSignal(false);
  const opener = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLUListElement>(null);
  const rows = store.rows.value;
  const up = stepMove(rows, id, "up");
  const down = stepMove(rows, id, "down");
  const choices = open.value ? moveChoices(rows, store.snapshot(), id) : [];
  useEffect(() => {
    // An opened menu takes the focus on its first item.
    if (open.value) menu.current?.querySelector<HTMLElement>("[role=menuitem]")?.focus();
  }, [open.value]);
  function move(t: Parameters<EditorStore["move"]>[1]) {
    store.move(id, t);
    open.value = false;
    requestAnimationFrame(() => focusItem(id));
  }
  function close() {
    open.value = false;
    opener.current?.focus();
  }
  function onMenuKey(e: KeyboardEvent) {
    const items = [...(menu.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
    const i = items.indexOf(document.activeElement as HTMLElement);
    const go = (j: number) => items[(j + items.length) % items.length]?.focus();
    if (e.key === "ArrowDown") go(i + 1);
    else if (e.key === "ArrowUp") go(i - 1);
    else if (e.key === "Home") go(0);
    else if (e.key === "End") go(items.length - 1);
    else if (e.key === "Escape") close();
    else if (e.key === "Tab") open.value = false;
    else return;
    if (e.key !== "Tab") e.preventDefault();
  }
  return (
    <div class="prop-actions">
      <button type="button" class="secondary" disabled={!up} onClick={() => up && move(up)} aria-keyshortcuts="Alt+ArrowUp">
        Move up
      </button>
      <button type="button" class="secondary" disabled={!down} onClick={() => down && move(down)} aria-keyshortcuts="Alt+ArrowDown">
        Move down
      </button>
      <button
        type="button"
        class="secondary"
        ref={opener}
        aria-haspopup="menu"
        aria-expanded={open.value}
        aria-controls={open.value ? "move-menu" : undefined}
        onClick={() => (open.value = !open.value)}
      >
        Move to…
      </button>
      <button type="button" class="danger" onClick={() => deleteWithUndo(store, id)} aria-keyshortcuts="Delete">
        Delete
      </button>
      {open.value && (
        <ul id="move-menu" class="move-menu" role="menu" aria-label="Move to" ref={menu} onKeyDown={onMenuKey}>
          {choices.map((ch) => (
            <li role="none" key={ch.parent ?? ""} style={{ "--depth": String(ch.depth) }}>
              <button type="button" role="menuitem" class="link-button" onClick={() => move({ parent: ch.parent })}>
                {ch.label}
              </button>
            </li>
          ))}
          <li role="none">
            <button type="button" role="menuitem" class="link-button" onClick={close}>
              {choices.length === 0 ? "Cancel (there is no other place to move it to)" : "Cancel"}
            </button>
          </li>
        </ul>
      )}
    </div>
  );
}

interface InputProps<T> {
  id: string;
  label: string;
  value: T;
  disabled: boolean;
  errors?: string[];
  description?: string;
  onValue: (v: T) => void;
}

/** Error and help text ids for aria-describedby. */
function described(id: string, errors?: string[], description?: string) {
  const ids = [errors?.length ? `${id}-error` : "", description ? `${id}-help` : ""].filter(Boolean);
  return ids.length > 0 ? ids.join(" ") : undefined;
}

function Notes(props: { id: string; errors?: string[]; description?: string }) {
  return (
    <>
      {props.description && (
        <span id={`${props.id}-help`} class="field-help">
          {props.description}
        </span>
      )}
      {props.errors && props.errors.length > 0 && (
        <span id={`${props.id}-error`} class="field-error">
          {props.errors.join(" ")}
        </span>
      )}
    </>
  );
}

function TextInput(
  props: InputProps<string> & { maxLength?: number; multiline?: boolean; type?: "text" | "number" | "date" },
) {
  const { id, label, value, disabled, errors, description } = props;
  const attrs = {
    id,
    value,
    disabled,
    maxLength: props.maxLength,
    "aria-invalid": errors?.length ? true : undefined,
    "aria-describedby": described(id, errors, description),
    onInput: (e: TargetedEvent<HTMLInputElement | HTMLTextAreaElement>) => props.onValue(e.currentTarget.value),
  };
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {props.multiline ? (
        <textarea rows={3} {...attrs} />
      ) : (
        // The attribute types are a union keyed by `type`; all of these are text-like.
        <input {...({ ...attrs, type: props.type ?? "text" } as JSX.IntrinsicElements["input"])} />
      )}
      <Notes id={id} errors={errors} description={description} />
    </div>
  );
}

function PropField(props: {
  field: FieldInfo;
  where: "properties" | "validation";
  value: unknown;
  disabled: boolean;
  place: Place;
  errors?: string[];
  onValue: (v: unknown) => void;
}) {
  const { field: f, value, disabled, errors } = props;
  const id = `prop-${props.where === "validation" ? "v-" : ""}${f.name}`;
  const description = f.description || undefined;
  const common = { id, label: f.label, disabled, errors, description };
  switch (f.kind) {
    case "boolean": {
      const checked = typeof value === "boolean" ? value : f.default === true;
      return (
        <div class="field check">
          <input
            id={id}
            type="checkbox"
            checked={checked}
            disabled={disabled}
            aria-invalid={errors?.length ? true : undefined}
            aria-describedby={described(id, errors, description)}
            onChange={(e) => props.onValue(e.currentTarget.checked)}
          />
          <label for={id}>{f.label}</label>
          <Notes id={id} errors={errors} description={description} />
        </div>
      );
    }
    case "integer":
    case "number":
      return (
        <TextInput
          {...common}
          type="number"
          value={typeof value === "number" ? String(value) : ""}
          onValue={(v) => {
            if (v.trim() === "") return props.onValue(undefined);
            const n = Number(v);
            if (Number.isFinite(n)) props.onValue(n);
          }}
        />
      );
    case "date":
      return (
        <TextInput
          {...common}
          type="date"
          value={typeof value === "string" ? value : ""}
          onValue={(v) => props.onValue(v === "" ? undefined : v)}
        />
      );
    case "choice":
      return (
        <div class="field">
          <label for={id}>{f.label}</label>
          <select
            id={id}
            disabled={disabled}
            value={typeof value === "string" ? value : ""}
            aria-invalid={errors?.length ? true : undefined}
            aria-describedby={described(id, errors, description)}
            onChange={(e) => props.onValue(e.currentTarget.value === "" ? undefined : e.currentTarget.value)}
          >
            <option value="">Default{f.default !== undefined ? ` (${String(f.default)})` : ""}</option>
            {(f.values ?? []).map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
          <Notes id={id} errors={errors} description={description} />
        </div>
      );
    case "options":
      return <OptionsField {...common} value={value} onValue={props.onValue} />;
    case "optionsSource":
    case "defaultSource":
      return (
        <BindingField
          {...common}
          options={f.kind === "optionsSource"}
          value={value}
          workspaceId={props.place.workspaceId}
          templateId={props.place.templateId}
          onValue={props.onValue}
        />
      );
    case "list":
      return (
        <TextInput
          {...common}
          description={[description, "Separate items with commas."].filter(Boolean).join(" ")}
          value={Array.isArray(value) ? value.join(", ") : ""}
          onValue={(v) => {
            const items = v.split(",").map((s) => s.trim()).filter(Boolean);
            props.onValue(items.length > 0 ? items : undefined);
          }}
        />
      );
    default:
      return (
        <TextInput
          {...common}
          multiline={LONG_TEXT.has(f.name)}
          maxLength={f.limits.maxLength}
          value={typeof value === "string" ? value : Array.isArray(value) ? value.join(", ") : value == null ? "" : String(value)}
          onValue={(v) => props.onValue(v === "" ? undefined : v)}
        />
      );
  }
}

interface Option {
  value: string;
  label: string;
}

/** A list of options: label and value per row, add, remove. */
function OptionsField(props: InputProps<unknown> & { description?: string }) {
  const { id, label, disabled, errors } = props;
  const list: Option[] = Array.isArray(props.value)
    ? (props.value as Array<Partial<Option>>).map((o) => ({ value: String(o?.value ?? ""), label: String(o?.label ?? "") }))
    : [];
  const set = (next: Option[]) => props.onValue(next);
  return (
    <fieldset class="field options-field" aria-describedby={described(id, errors)}>
      <legend>{label}</legend>
      {list.map((o, i) => (
        <div class="option-row" key={i}>
          <label for={`${id}-${i}-label`} class="visually-hidden">
            Option {i + 1} label
          </label>
          <input
            id={`${id}-${i}-label`}
            value={o.label}
            disabled={disabled}
            placeholder="Label"
            onInput={(e) => set(list.map((x, j) => (j === i ? { ...x, label: e.currentTarget.value } : x)))}
          />
          <label for={`${id}-${i}-value`} class="visually-hidden">
            Option {i + 1} value
          </label>
          <input
            id={`${id}-${i}-value`}
            value={o.value}
            disabled={disabled}
            placeholder="Value"
            onInput={(e) => set(list.map((x, j) => (j === i ? { ...x, value: e.currentTarget.value } : x)))}
          />
          {!disabled && (
            <button
              type="button"
              class="secondary small"
              aria-label={`Remove option ${i + 1}`}
              onClick={() => set(list.filter((_, j) => j !== i))}
            >
              ✕
            </button>
          )}
        </div>
      ))}
      {!disabled && (
        <button
          type="button"
          class="secondary small"
          onClick={() => set([...list, { value: `option-${list.length + 1}`, label: `Option ${list.length + 1}` }])}
        >
          Add option
        </button>
      )}
      <Notes id={id} errors={errors} />
    </fieldset>
  );
}
