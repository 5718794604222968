// The properties panel's editor of a data-source binding: a component's
// options (`optionsSource`) or default value (`defaultSource`) read from a
// data source of the workspace. Every change is written through the
// editor store like any other property, so collaborators see it at once;
// a live preview calls the source and maps its answer with the same
// functions the canvas and the preview use.
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { DataSource } from "@coform/sdk";
import { client, describe } from "../client";
import { callKey, mapDefault, mapOptions, placeholderNames, readOptionsBinding } from "../form/binding";

/** The sources of each workspace, listed once per page. */
const listed = new Map<string, Promise<DataSource[]>>();

function sourcesOf(workspaceId: string): Promise<DataSource[]> {
  let p = listed.get(workspaceId);
  if (p === undefined) {
    p = client.dataSources.list({ workspaceId, pageSize: 100 }).then(
      (page) => page.items,
      (e: unknown) => {
        listed.delete(workspaceId);
        throw e;
      },
    );
    listed.set(workspaceId, p);
  }
  return p;
}

interface Row {
  name: string;
  value: string;
}

/** The parameters rows stand for: named rows only, the last of a name wins. */
function paramsOf(rows: Row[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of rows) if (r.name.trim() !== "") out[r.name.trim()] = r.value;
  return out;
}

function rowsOf(params: Record<string, string>): Row[] {
  return Object.entries(params).map(([name, value]) => ({ name, value }));
}

/** The error code and message of a failed call, for the designer. */
function failure(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code !== "network_error" ? `${code}: ${describe(e)}` : describe(e);
}

export interface BindingFieldProps {
  /** `prop-optionsSource` or `prop-defaultSource`: starts every element id. */
  id: string;
  label: string;
  /** True for options (label and value keys), false for a default value. */
  options: boolean;
  value: unknown;
  disabled: boolean;
  errors?: string[];
  description?: string;
  workspaceId: string | null;
  templateId: string;
  onValue: (v: unknown) => void;
}

export function BindingField(props: BindingFieldProps) {
  const { id, options, disabled, errors, workspaceId, templateId } = props;
  const binding = readOptionsBinding(props.value);
  const sources = useSignal<DataSource[] | null>(null);
  const listError = useSignal<unknown>(null);
  const rows = useSignal<Row[]>(rowsOf(binding?.params ?? {}));
  const preview = useSignal<{ key: string; state: "loading" | "ok" | "failed"; data?: unknown; error?: unknown } | null>(
    null,
  );

  useEffect(() => {
    if (workspaceId === null) return;
    let live = true;
    sourcesOf(workspaceId).then(
      (list) => live && (sources.value = list),
      (e: unknown) => live && (listError.value = e),
    );
    return () => {
      live = false;
    };
  }, [workspaceId]);

  // Someone else changed the parameters: show theirs. Our own writes come
  // back equal to the rows, so rows being typed are left alone.
  const docParams = JSON.stringify(binding?.params ?? {});
  useEffect(() => {
    if (JSON.stringify(paramsOf(rows.value)) !== docParams) rows.value = rowsOf(binding?.params ?? {});
  }, [docParams]);

  // The live preview: the source called with the parameters, a moment
  // after the last change.
  const key = binding ? callKey(binding.dataSourceId, binding.params) : "";
  useEffect(() => {
    if (!binding) {
      preview.value = null;
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      preview.value = { key, state: "loading" };
      client.dataSources.execute(binding.dataSourceId, { params: binding.params, templateId }).then(
        (r) => live && (preview.value = { key, state: "ok", data: r.data }),
        (e: unknown) => live && (preview.value = { key, state: "failed", error: e }),
      );
    }, 300);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [key]);

  /** Writes the binding with `changes`; empty texts and parameters are left out. */
  function write(changes: Partial<{ dataSourceId: string; params: Record<string, string>; path: string; labelKey: string; valueKey: string }>) {
    const next: Record<string, unknown> = { ...(binding ?? {}), ...changes };
    for (const k of ["path", "labelKey", "valueKey"]) {
      if (typeof next[k] !== "string" || (next[k] as string).trim() === "") delete next[k];
    }
    if (!options) {
      delete next.labelKey;
      delete next.valueKey;
    }
    if (next.params && Object.keys(next.params as object).length === 0) delete next.params;
    props.onValue(next);
  }

  function setRows(next: Row[]) {
    rows.value = next;
    write({ params: paramsOf(next) });
  }

  const list = sources.value ?? [];
  const chosen = binding ? list.find((s) => s.id === binding.dataSourceId) : undefined;
  const suggested = chosen ? placeholderNames(chosen.config) : [];
  const missing = suggested.filter((n) => !rows.value.some((r) => r.name.trim() === n));
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const describedBy = [props.description ? helpId : "", errors?.length ? errorId : ""].filter(Boolean).join(" ") || undefined;

  return (
    <fieldset class="field binding-field" aria-describedby={describedBy}>
      <legend>{props.label}</legend>
      {props.description && (
        <span id={helpId} class="field-help">
          {props.description}
        </span>
      )}
      <div class="field">
        <label for={`${id}-source`}>Data source</label>
        <select
          id={`${id}-source`}
          disabled={disabled}
          value={binding?.dataSourceId ?? ""}
          onChange={(e) => {
            const v = e.currentTarget.value;
            if (v === "") props.onValue(undefined);
            else write({ dataSourceId: v });
          }}
        >
          <option value="">None{options ? " (the options below)" : ""}</option>
          {binding && !chosen && (
            <option value={binding.dataSourceId}>
              {sources.value === null ? binding.dataSourceId : `${binding.dataSourceId} (not in this workspace)`}
            </option>
          )}
          {list.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name} ({s.type})
            </option>
          ))}
        </select>
        {workspaceId === null && <span class="field-help">The workspace's sources show once it is known (online).</span>}
        {listError.value !== null && <span class="field-error">The data sources could not be listed: {describe(listError.value)}</span>}
        {sources.value !== null && list.length === 0 && (
          <span class="field-help">This workspace has no data sources yet.</span>
        )}
      </div>
      {binding && (
        <>
          <fieldset class="binding-params">
            <legend>Parameters</legend>
            {suggested.length > 0 && (
              <datalist id={`${id}-names`}>
                {suggested.map((n) => (
                  <option key={n} value={n} />
                ))}
              </datalist>
            )}
            {rows.value.map((r, i) => (
              <div class="option-row" key={i}>
                <label for={`${id}-p${i}-name`} class="visually-hidden">
                  Parameter {i + 1} name
                </label>
                <input
                  id={`${id}-p${i}-name`}
                  value={r.name}
                  disabled={disabled}
                  placeholder="Name"
                  list={suggested.length > 0 ? `${id}-names` : undefined}
                  onInput={(e) => setRows(rows.value.map((x, j) => (j === i ? { ...x, name: e.currentTarget.value } : x)))}
                />
                <label for={`${id}-p${i}-value`} class="visually-hidden">
                  Parameter {i + 1} value
                </label>
                <input
                  id={`${id}-p${i}-value`}
                  value={r.value}
                  disabled={disabled}
                  placeholder="Value"
                  onInput={(e) => setRows(rows.value.map((x, j) => (j === i ? { ...x, value: e.currentTarget.value } : x)))}
                />
                {!disabled && (
                  <button
                    type="button"
                    class="secondary small"
                    aria-label={`Remove parameter ${i + 1}`}
                    onClick={() => setRows(rows.value.filter((_, j) => j !== i))}
                  >
                    ✕
                  </button>
                )}
              </div>
            ))}
            {!disabled && (
              <div class="binding-add">
                {missing.map((n) => (
                  <button key={n} type="button" class="secondary small" onClick={() => setRows([...rows.value, { name: n, value: "" }])}>
                    Add {`{{${n}}}`}
                  </button>
                ))}
                <button type="button" class="secondary small" onClick={() => (rows.value = [...rows.value, { name: "", value: "" }])}>
                  Add parameter
                </button>
              </div>
            )}
          </fieldset>
          <KeyInput id={`${id}-path`} label={options ? "Path to the list" : "Path to the value"} hint={options ? "data.items" : "data.user.email"}
            value={binding.path} disabled={disabled} onValue={(v) => write({ path: v })} />
          {options && (
            <>
              <KeyInput id={`${id}-labelKey`} label="Label key" hint="name" value={binding.labelKey} disabled={disabled}
                onValue={(v) => write({ labelKey: v })} />
              <KeyInput id={`${id}-valueKey`} label="Value key" hint="code" value={binding.valueKey} disabled={disabled}
                onValue={(v) => write({ valueKey: v })} />
            </>
          )}
          <Preview id={id} options={options} binding={binding} preview={preview.value?.key === key ? preview.value : null} />
          {!disabled && (
            <button type="button" class="secondary small" onClick={() => props.onValue(undefined)}>
              Clear binding
            </button>
          )}
        </>
      )}
      {errors && errors.length > 0 && (
        <span id={errorId} class="field-error">
          {errors.join(" ")}
        </span>
      )}
    </fieldset>
  );
}

function KeyInput(props: {
  id: string;
  label: string;
  hint: string;
  value: string | undefined;
  disabled: boolean;
  onValue: (v: string) => void;
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        value={props.value ?? ""}
        disabled={props.disabled}
        placeholder={props.hint}
        maxLength={200}
        onInput={(e) => props.onValue(e.currentTarget.value)}
      />
    </div>
  );
}

/** What the binding gives now: the first options, the value, or why not. */
function Preview(props: {
  id: string;
  options: boolean;
  binding: { path?: string; labelKey?: string; valueKey?: string };
  preview: { state: "loading" | "ok" | "failed"; data?: unknown; error?: unknown } | null;
}) {
  const { preview, binding } = props;
  let body;
  if (preview === null || preview.state === "loading") {
    body = <p class="muted">Calling the data source…</p>;
  } else if (preview.state === "failed") {
    body = <p class="field-error">The call failed — {failure(preview.error)}</p>;
  } else if (props.options) {
    const m = mapOptions(preview.data, binding);
    if (!m.ok) body = <p class="field-error">{m.problem.message}</p>;
    else {
      const first = m.options.slice(0, 5);
      body = (
        <>
          <p>
            {m.options.length} {m.options.length === 1 ? "option" : "options"}
            {m.skipped > 0 && ` (${m.skipped} ${m.skipped === 1 ? "item" : "items"} skipped)`}
            {m.options.length > 0 && ":"}
          </p>
          {first.length > 0 && (
            <ul class="binding-options">
              {first.map((o) => (
                <li key={o.value}>
                  {o.label} <span class="muted">({o.value})</span>
                </li>
              ))}
              {m.options.length > first.length && <li class="muted">…</li>}
            </ul>
          )}
        </>
      );
    }
  } else {
    const d = mapDefault(preview.data, binding.path);
    body = d.found ? (
      <p>
        Default value: <code>{JSON.stringify(d.value)}</code>
      </p>
    ) : (
      <p class="field-error">The answer has no text, number or list of values {binding.path ? `at “${binding.path}”` : "as a whole"}.</p>
    );
  }
  return (
    <div class="binding-preview" id={`${props.id}-preview`} role="status" aria-label="Preview of the binding">
      {body}
    </div>
  );
}
