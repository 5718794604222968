// A version diff in words. The server's diff names components by id and
// fields by dotted path; people know components by their label and
// fields by the names the properties panel shows, so both sides' contents
// and the catalog are used to say what changed.
import type { TemplateContent, VersionDiff } from "@coform/sdk";
import { typeInfo, type Catalog } from "../schema";

type Json = Record<string, unknown>;

/** A component as people know it. */
export interface Named {
  id: string;
  /** Its label, or "Untitled". */
  name: string;
  /** Its type's name ("Short text"). */
  kind: string;
}

/** One field that differs, with both values when they are short enough to show. */
export interface FieldChange {
  label: string;
  before?: string;
  after?: string;
}

export interface DiffSummary {
  added: Named[];
  removed: Named[];
  moved: Array<Named & { where: string }>;
  changed: Array<Named & { fields: FieldChange[] }>;
  /** The template's own fields (name, description, ...). */
  meta: FieldChange[];
}

const META_LABELS: Record<string, string> = {
  name: "Name",
  description: "Description",
  tags: "Tags",
  category: "Category",
};

const LONGEST = 60;

function object(v: unknown): Json {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {};
}

function component(content: TemplateContent, id: string): Json | undefined {
  const c = object(content.components)[id];
  return c === undefined ? undefined : object(c);
}

/** The value at a dotted path (`properties.placeholder`). */
export function valueAt(root: unknown, path: string): unknown {
  if (path === "") return root;
  let v: unknown = root;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
    v = (v as Json)[key];
  }
  return v;
}

/** A value in a few words, or undefined when it cannot be said briefly. */
export function showValue(v: unknown): string | undefined {
  if (v === undefined || v === null) return "none";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") {
    if (v === "") return "empty";
    return "“" + (v.length > LONGEST ? v.slice(0, LONGEST - 1) + "…" : v) + "”";
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return "none";
    if (v.every((x) => typeof x === "string")) {
      const joined = v.join(", ");
      return joined.length > LONGEST ? `${v.length} items` : joined;
    }
    return v.length === 1 ? "1 option" : `${v.length} options`;
  }
  return undefined;
}

function named(c: Json | undefined, id: string, catalog: Catalog | null): Named {
  const label = typeof c?.label === "string" ? c.label.trim() : "";
  const type = typeof c?.type === "string" ? c.type : "";
  return {
    id,
    name: label || "Untitled",
    kind: typeInfo(catalog, type)?.label ?? (type || "component"),
  };
}

/** The name the properties panel gives a component's field. */
export function fieldLabel(path: string, type: string, catalog: Catalog | null): string {
  if (path === "") return "Whole component";
  const [head, key] = path.split(".");
  const info = typeInfo(catalog, type);
  switch (head) {
    case "label":
      return "Label";
    case "type":
      return "Type";
    case "position":
      return "Place on the canvas";
    case "styling":
      return "Styling";
    case "properties":
      return (key && info?.properties.find((f) => f.name === key)?.label) || key || "Properties";
    case "validation":
      return (key && info?.validation.find((f) => f.name === key)?.label) || key || "Validation";
    default:
      return path;
  }
}

/**
 * Field changes under readable names. Paths sharing a name (`position.x`
 * and `position.y`) become one entry; values are shown only for a field
 * that is one path with short values on both sides.
 */
function fieldChanges(
  paths: string[],
  label: (path: string) => string,
  before: unknown,
  after: unknown,
): FieldChange[] {
  const byLabel = new Map<string, string[]>();
  for (const p of paths) {
    const l = label(p);
    const list = byLabel.get(l);
    if (list) list.push(p);
    else byLabel.set(l, [p]);
  }
  return [...byLabel].map(([l, ps]) => {
    if (ps.length !== 1) return { label: l };
    const b = showValue(valueAt(before, ps[0]));
    const a = showValue(valueAt(after, ps[0]));
    return b !== undefined && a !== undefined ? { label: l, before: b, after: a } : { label: l };
  });
}

/** Where a component sits, in words. */
function where(parent: string | null, content: TemplateContent): string {
  if (parent === null) return "the top level";
  const label = valueAt(component(content, parent), "label");
  return typeof label === "string" && label.trim() ? `section “${label.trim()}”` : "an untitled section";
}

/** The diff from `before` to `after` as people read it. */
export function summarize(
  diff: VersionDiff,
  before: TemplateContent,
  after: TemplateContent,
  catalog: Catalog | null,
): DiffSummary {
  return {
    added: diff.added.map((id) => named(component(after, id), id, catalog)),
    removed: diff.removed.map((id) => named(component(before, id), id, catalog)),
    moved: diff.moved.map((m) => ({
      ...named(component(after, m.id), m.id, catalog),
      where:
        m.from.parent === m.to.parent
          ? `new place within ${where(m.to.parent, after)}`
          : `from ${where(m.from.parent, before)} to ${where(m.to.parent, after)}`,
    })),
    changed: diff.changed.map((ch) => {
      const a = component(after, ch.id);
      const b = component(before, ch.id);
      const type = typeof a?.type === "string" ? a.type : "";
      return {
        ...named(a, ch.id, catalog),
        fields: fieldChanges(ch.fields, (p) => fieldLabel(p, type, catalog), b, a),
      };
    }),
    meta: fieldChanges(
      diff.meta,
      (p) => META_LABELS[p] ?? p,
      object(before.meta),
      object(after.meta),
    ),
  };
}

/** Whether nothing differs. */
export function isEmpty(s: DiffSummary): boolean {
  return !s.added.length && !s.removed.length && !s.moved.length && !s.changed.length && !s.meta.length;
}
