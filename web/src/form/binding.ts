// Data-source bindings of a component, as pure functions: reading the
// binding a document holds, finding the list (or the value) in a source's
// answer, and turning its items into options. The canvas, the preview and
// the properties panel's live preview all map answers with these, so what
// the designer previews is what the form shows.
import type { Option } from "./values";

/** `properties.optionsSource`: where a component's options come from. */
export interface OptionsBinding {
  dataSourceId: string;
  params: Record<string, string>;
  path?: string;
  labelKey?: string;
  valueKey?: string;
}

/** `properties.defaultSource`: where an input's default value comes from. */
export interface DefaultBinding {
  dataSourceId: string;
  params: Record<string, string>;
  path?: string;
}

/** Why an answer gave no options: a short code and a sentence for people. */
export interface MappingProblem {
  code: "not_found" | "not_a_list" | "no_values";
  message: string;
}

export type Mapped = { ok: true; options: Option[]; skipped: number } | { ok: false; problem: MappingProblem };

function nonEmpty(v: unknown): string | undefined {
  return typeof v === "string" && v.trim() !== "" ? v : undefined;
}

/** The string-valued entries of `v` (an object), else none. */
function stringParams(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === null || typeof v !== "object" || Array.isArray(v)) return out;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === "string") out[k] = x;
  }
  return out;
}

/**
 * The binding of a component's options, read leniently (a live document
 * can hold anything): absent unless it names a source.
 */
export function readOptionsBinding(v: unknown): OptionsBinding | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const id = nonEmpty(o.dataSourceId);
  if (id === undefined) return undefined;
  return {
    dataSourceId: id,
    params: stringParams(o.params),
    path: nonEmpty(o.path),
    labelKey: nonEmpty(o.labelKey),
    valueKey: nonEmpty(o.valueKey),
  };
}

/** The binding of an input's default value, read leniently. */
export function readDefaultBinding(v: unknown): DefaultBinding | undefined {
  const b = readOptionsBinding(v);
  return b && { dataSourceId: b.dataSourceId, params: b.params, path: b.path };
}

/** What tells two executions of a source apart: its id and its parameters. */
export function callKey(dataSourceId: string, params: Record<string, string>): string {
  const sorted = Object.keys(params)
    .sort()
    .map((k) => [k, params[k]]);
  return JSON.stringify([dataSourceId, sorted]);
}

/**
 * The value at a dot path (`data.items`, `rows.0.name`) in `v`; the
 * whole of `v` for no path. A number walks into an array. `found` is
 * false when a step is missing.
 */
export function at(v: unknown, path: string | undefined): { found: boolean; value: unknown } {
  if (path === undefined || path === "") return { found: true, value: v };
  let cur: unknown = v;
  for (const key of path.split(".")) {
    if (Array.isArray(cur) && /^\d+$/.test(key)) {
      const i = Number(key);
      if (i >= cur.length) return { found: false, value: undefined };
      cur = cur[i];
    } else if (cur !== null && typeof cur === "object" && !Array.isArray(cur) && Object.hasOwn(cur, key)) {
      cur = (cur as Record<string, unknown>)[key];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value: cur };
}

/** A scalar as an option's text; objects and arrays have none. */
function scalar(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  if (typeof v === "boolean") return String(v);
  return undefined;
}

/** Most options taken from one answer (the model's limit of static options). */
export const MAX_BOUND_OPTIONS = 500;

/**
 * A source's answer as options: the array at `path`, each item's
 * `valueKey` as the value and `labelKey` as the label (the value when
 * missing). Without `valueKey` an item must itself be a string or number.
 * Items without a usable value, and repeated values, are skipped and
 * counted; an answer without a list, or whose every item is skipped, is a
 * problem (the form then falls back to its static options).
 */
export function mapOptions(
  answer: unknown,
  b: { path?: string; labelKey?: string; valueKey?: string },
): Mapped {
  const { found, value: list } = at(answer, b.path);
  if (!found) {
    return { ok: false, problem: { code: "not_found", message: `The answer has nothing at “${b.path}”.` } };
  }
  if (!Array.isArray(list)) {
    const what = list === null ? "null" : typeof list === "object" ? "an object" : `a ${typeof list}`;
    const where = b.path ? `At “${b.path}” the answer has` : "The answer is";
    return { ok: false, problem: { code: "not_a_list", message: `${where} ${what}, not a list.` } };
  }
  const options: Option[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const item of list) {
    const value = scalar(b.valueKey === undefined ? item : at(item, b.valueKey).value);
    if (value === undefined || value === "" || seen.has(value) || options.length >= MAX_BOUND_OPTIONS) {
      skipped++;
      continue;
    }
    seen.add(value);
    const label = b.labelKey === undefined ? undefined : scalar(at(item, b.labelKey).value);
    options.push({ value, label: label !== undefined && label.trim() !== "" ? label : value });
  }
  if (options.length === 0 && list.length > 0) {
    const key = b.valueKey === undefined ? "items are not strings or numbers" : `no item has a value at “${b.valueKey}”`;
    return { ok: false, problem: { code: "no_values", message: `The list has ${list.length} items, but ${key}.` } };
  }
  return { ok: true, options, skipped };
}

/**
 * A source's answer as a default value: what is at `path`, if it is a
 * string, number, boolean or an array of strings (option values).
 */
export function mapDefault(answer: unknown, path: string | undefined): { found: boolean; value: unknown } {
  const { found, value } = at(answer, path);
  if (!found) return { found: false, value: undefined };
  if (typeof value === "string" || typeof value === "boolean") return { found: true, value };
  if (typeof value === "number" && Number.isFinite(value)) return { found: true, value };
  if (Array.isArray(value) && value.every((x) => scalar(x) !== undefined)) {
    return { found: true, value: value.map((x) => scalar(x)!) };
  }
  return { found: false, value: undefined };
}

/**
 * The `{{name}}` placeholders a source's configuration holds (URL,
 * headers, query parameters, body, SQL or GraphQL query and variables),
 * each name once, in the order found. Names are letters, digits, `_`,
 * `-` and `.`, as the server reads them.
 */
export function placeholderNames(config: unknown): string[] {
  const names: string[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth > 16) return;
    if (typeof v === "string") {
      for (const m of v.matchAll(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g)) {
        if (!names.includes(m[1]!)) names.push(m[1]!);
      }
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
    } else if (v !== null && typeof v === "object") {
      for (const x of Object.values(v)) walk(x, depth + 1);
    }
  };
  walk(config, 0);
  return names;
}
