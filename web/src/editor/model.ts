// The editor's view-model: pure functions from what the SDK reports
// (components, people) to what the page shows (the nested outline, where
// a component can move, who is here). No DOM and no session here, so all
// of it is unit-tested.
import type { Component, MoveTarget, Person, Repair } from "@coform/sdk";
import { buildTree, childrenOf } from "../form/tree";

/** One row of the display tree: a component, how deep it sits, its place among siblings. */
export interface Row {
  id: string;
  depth: number;
  parent: string | null;
  /** Its siblings in display order (ids), itself included. */
  siblings: readonly string[];
}

/** Sections deeper than this cannot take children (the model's nesting limit). */
export const MAX_SECTION_DEPTH = 15;

/** Every component in display order (depth first), with its depth and siblings. */
export function buildRows(components: ReadonlyMap<string, Component>): Row[] {
  const tree = buildTree(components.values());
  const rows: Row[] = [];
  const walk = (list: Component[], parent: string | null, depth: number): void => {
    const siblings = list.map((c) => c.id);
    for (const c of list) {
      rows.push({ id: c.id, depth, parent, siblings });
      walk(childrenOf(tree, c.id), c.id, depth + 1);
    }
  };
  walk(tree.roots, null, 0);
  return rows;
}

/** `id` and everything inside it. */
export function subtree(rows: readonly Row[], id: string): Set<string> {
  const out = new Set<string>([id]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of rows) {
      if (r.parent !== null && out.has(r.parent) && !out.has(r.id)) {
        out.add(r.id);
        grew = true;
      }
    }
  }
  return out;
}

/**
 * Alt+Up / Alt+Down: one step among siblings; past the first or last
 * sibling, out of the section to just before or after it. Null when it
 * cannot move further that way.
 */
export function stepMove(rows: readonly Row[], id: string, direction: "up" | "down"): MoveTarget | null {
  const row = rows.find((r) => r.id === id);
  if (row === undefined) return null;
  const i = row.siblings.indexOf(id);
  if (direction === "up") {
    if (i > 0) return { parent: row.parent, before: row.siblings[i - 1] };
  } else if (i < row.siblings.length - 1) {
    return { parent: row.parent, after: row.siblings[i + 1] };
  }
  if (row.parent === null) return null;
  const section = rows.find((r) => r.id === row.parent);
  if (section === undefined) return null;
  return direction === "up"
    ? { parent: section.parent, before: section.id }
    : { parent: section.parent, after: section.id };
}

/** One choice of the "Move to…" menu. */
export interface MoveChoice {
  /** What the menu says. */
  label: string;
  /** The section it goes into (null: the top level), at the end. */
  parent: string | null;
  depth: number;
}

/**
 * Where `id` may move: the top level and every section that is not `id`
 * itself, not inside it, and not too deep; its current parent is left out
 * (moving there is a no-op).
 */
export function moveChoices(
  rows: readonly Row[],
  components: ReadonlyMap<string, Component>,
  id: string,
): MoveChoice[] {
  const row = rows.find((r) => r.id === id);
  if (row === undefined) return [];
  const inside = subtree(rows, id);
  const out: MoveChoice[] = [];
  if (row.parent !== null) out.push({ label: "Top level of the form", parent: null, depth: 0 });
  for (const r of rows) {
    const c = components.get(r.id);
    if (c === undefined || c.type !== "section" || inside.has(r.id) || r.id === row.parent) continue;
    if (r.depth >= MAX_SECTION_DEPTH) continue;
    out.push({ label: `Section “${c.label || "Untitled"}”`, parent: r.id, depth: r.depth + 1 });
  }
  return out;
}

/** Where a dragged component lands, given the item under the pointer and where on it. */
export function dropTarget(
  rows: readonly Row[],
  components: ReadonlyMap<string, Component>,
  overId: string,
  zone: "before" | "after" | "inside",
  dragged: string | null,
): MoveTarget | null {
  const over = rows.find((r) => r.id === overId);
  if (over === undefined) return null;
  if (dragged !== null && subtree(rows, dragged).has(overId)) return null;
  if (zone === "inside") {
    const c = components.get(overId);
    if (c?.type !== "section" || over.depth >= MAX_SECTION_DEPTH) return null;
    return { parent: overId };
  }
  return zone === "before" ? { parent: over.parent, before: overId } : { parent: over.parent, after: overId };
}

// ------------------------------------------------------------------ presence

/** Someone else with the template open, as the presence bar shows them. */
export interface Peer {
  /** One entry per account (several tabs of one person are one avatar). */
  key: string;
  name: string;
  color: string;
  initials: string;
  /** Awareness client ids of their open sessions. */
  clientIds: number[];
  /** What they have selected (in their most recent session with a selection). */
  selection: string | null;
  idle: boolean;
}

/** Extra presence fields the designer shares besides the SDK's. */
export interface PresenceExtras {
  idle?: boolean;
  pointer?: { x: number; y: number } | null;
}

export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const first = [...words[0]][0] ?? "";
  const last = words.length > 1 ? ([...words[words.length - 1]][0] ?? "") : "";
  return (first + last).toUpperCase();
}

/**
 * The other people here, one per account, sorted by name; `extras` gives
 * each awareness client's idle flag. A person is idle only when all their
 * sessions are.
 */
export function peers(people: readonly Person[], extras: (clientId: number) => PresenceExtras | undefined): Peer[] {
  const byKey = new Map<string, Peer>();
  for (const p of people) {
    if (p.self) continue;
    const key = p.userId ?? `client:${p.clientId}`;
    const idle = extras(p.clientId)?.idle === true;
    const existing = byKey.get(key);
    if (existing === undefined) {
      byKey.set(key, {
        key,
        name: p.name,
        color: p.color,
        initials: initials(p.name),
        clientIds: [p.clientId],
        selection: p.selection,
        idle,
      });
    } else {
      existing.clientIds.push(p.clientId);
      existing.selection ??= p.selection;
      existing.idle = existing.idle && idle;
    }
  }
  return [...byKey.values()].sort((a, b) => a.name.localeCompare(b.name) || a.key.localeCompare(b.key));
}

/** The avatars to draw and how many more there are (“+N”). */
export function visiblePeers(list: readonly Peer[], max: number): { shown: Peer[]; more: number } {
  if (list.length <= max) return { shown: [...list], more: 0 };
  return { shown: list.slice(0, max - 1), more: list.length - (max - 1) };
}

/** Who has each component selected: component id → peers. */
export function selectionsByComponent(list: readonly Peer[]): Map<string, Peer[]> {
  const out = new Map<string, Peer[]>();
  for (const p of list) {
    if (p.selection === null) continue;
    let l = out.get(p.selection);
    if (l === undefined) out.set(p.selection, (l = []));
    l.push(p);
  }
  return out;
}

/**
 * Follow mode: while following someone, your selection is theirs (when it
 * is a component that exists). Returns what to select, or undefined to
 * leave the selection alone.
 */
export function followedSelection(
  following: string | null,
  list: readonly Peer[],
  exists: (id: string) => boolean,
): string | null | undefined {
  if (following === null) return undefined;
  const p = list.find((x) => x.key === following);
  if (p === undefined) return undefined;
  if (p.selection === null) return null;
  return exists(p.selection) ? p.selection : undefined;
}

// ------------------------------------------------------------------ problems

/** One finding of the server's validator. */
export interface Problem {
  path: string;
  message: string;
}

/**
 * The problems of one component by field: `label`, `properties.<name>`,
 * `validation.<name>` (deeper paths such as `properties.options[1].value`
 * are shown at their field, `properties.options`).
 */
export function problemsOf(problems: readonly Problem[], id: string): Map<string, string[]> {
  const prefix = `components.${id}.`;
  const out = new Map<string, string[]>();
  for (const p of problems) {
    if (!p.path.startsWith(prefix)) continue;
    const rest = p.path.slice(prefix.length);
    const m = /^(properties|validation|styling|position)\.([^.[]+)/.exec(rest);
    const field = m ? `${m[1]}.${m[2]}` : (rest.split(/[.[]/)[0] ?? rest);
    let list = out.get(field);
    if (list === undefined) out.set(field, (list = []));
    list.push(p.message);
  }
  return out;
}

// ------------------------------------------------------------------ adding

/** The catalog's view of a type that `newComponent` needs. */
export interface TypeDefaults {
  type: string;
  label: string;
  properties: ReadonlyArray<{ name: string; kind: string; required: boolean }>;
}

/**
 * A new component of a type, valid as the server's model sees it: its
 * label is the type's name, required option lists get two options, and
 * text content (a heading's or button's text) is filled in.
 */
export function newComponent(info: TypeDefaults): { type: string; label: string; properties: Record<string, unknown> } {
  const properties: Record<string, unknown> = {};
  for (const f of info.properties) {
    if (f.kind === "options" && f.required) {
      properties[f.name] = [
        { value: "option-1", label: "Option 1" },
        { value: "option-2", label: "Option 2" },
      ];
    } else if (f.name === "text" && f.kind === "text") {
      properties[f.name] = info.type === "button" ? "Submit" : info.label;
    }
  }
  return { type: info.type, label: info.label, properties };
}

/**
 * Where a new component goes: into the selected section (at its end),
 * else right after the selected component, else at the end of the form.
 */
export function placeNew(
  components: ReadonlyMap<string, Component>,
  rows: readonly Row[],
  selection: string | null,
): { parent: string | null; after?: string } {
  if (selection === null) return { parent: null };
  const sel = components.get(selection);
  const row = rows.find((r) => r.id === selection);
  if (sel === undefined || row === undefined) return { parent: null };
  if (sel.type === "section" && row.depth < MAX_SECTION_DEPTH) return { parent: selection };
  return { parent: row.parent, after: selection };
}

// ------------------------------------------------------------------ colours

function luminance(hex: string): number | null {
  const m = /^#([0-9a-f]{6})$/i.exec(hex.trim());
  if (!m) return null;
  const channel = (i: number) => {
    const c = parseInt(m[1].slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
}

/**
 * Black or white, whichever reads better on a person's colour (their
 * colour comes from the server, so text on it must adapt).
 */
export function textOn(color: string): "#000000" | "#ffffff" {
  const l = luminance(color);
  if (l === null) return "#ffffff";
  // Contrast with white is 1.05 / (l + 0.05); with black (l + 0.05) / 0.05.
  return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? "#ffffff" : "#000000";
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** "properties.minLength" → "Min length": the last part of a dotted field, in words. */
function fieldName(field: string): string {
  const last = field.split(".").pop() || field;
  return upperFirst(last.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase());
}

/** The validator's reason without the path it starts with. */
function problemOf(reason: string): string {
  const at = reason.indexOf(": ");
  const path = at >= 0 ? reason.slice(0, at) : "";
  return /^(components|meta)(\.|$)/.test(path) ? reason.slice(at + 2) : reason;
}

/** One repair in words: what the server did to which field, and why. */
function describeRepair(r: Repair, labelOf: (id: string) => string | undefined): string {
  const name = r.component ? `“${labelOf(r.component) || r.component}”` : "the form";
  const field = fieldName(r.field);
  const why = `(${problemOf(r.reason)})`;
  switch (r.action) {
    case "restored":
      return `${field} of ${name} was put back ${why}.`;
    case "defaulted":
      return `${field} of ${name} was reset to its default ${why}.`;
    case "removed":
      return `${field} of ${name} was removed ${why}.`;
    case "reparented":
      return `${upperFirst(name)} was moved to the top level ${why}.`;
    case "idFixed":
      return `The id of ${name} was set to its key ${why}.`;
    case "dropped":
      return `${upperFirst(name)} was removed ${why}.`;
  }
}

/** At most this many repairs are spelled out in one message. */
const MAX_REPAIRS_SAID = 3;

/** What to tell a designer whose change the server repaired to keep the
 *  form valid: each repair in words (the first few, then how many more). */
export function repairMessage(repairs: readonly Repair[], labelOf: (id: string) => string | undefined): string {
  const said = repairs.slice(0, MAX_REPAIRS_SAID).map((r) => describeRepair(r, labelOf));
  const more = repairs.length - said.length;
  if (more > 0) said.push(`${more} more ${more === 1 ? "change was" : "changes were"} put right.`);
  return `The server kept the form valid: ${said.join(" ")}`;
}
