// Reading a component's properties for display. A live document can hold
// anything its editors' clients wrote, so every reader is lenient: a value
// of the wrong shape counts as absent, and an absent value falls back to
// the default the catalog gives for the type.
import type { Component } from "@coform/sdk";
import type { TypeInfo } from "../schema";

/** One option of a select, radio group or checkbox group. */
export interface Option {
  value: string;
  /** What is shown: the option's label, else its value. */
  label: string;
}

/** A property, else the catalog's default for it. */
export function prop(c: Component, info: TypeInfo | undefined, name: string): unknown {
  const v = c.properties[name];
  if (v !== undefined && v !== null) return v;
  return info?.properties.find((f) => f.name === name)?.default;
}

/** A validation rule, else the catalog's default for it. */
export function rule(c: Component, info: TypeInfo | undefined, name: string): unknown {
  const v = c.validation[name];
  if (v !== undefined && v !== null) return v;
  return info?.validation.find((f) => f.name === name)?.default;
}

/** A string with something visible in it, else undefined. */
export function text(v: unknown): string | undefined {
  return typeof v === "string" && v.trim() !== "" ? v : undefined;
}

/** A finite number, else undefined. */
export function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** True only for `true`. */
export function flag(v: unknown): boolean {
  return v === true;
}

/** A number or an ISO date as an attribute value, else undefined. */
export function bound(v: unknown): string | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : undefined;
  return text(v);
}

/** The options of a choice component; entries of the wrong shape are skipped. */
export function options(v: unknown): Option[] {
  if (!Array.isArray(v)) return [];
  const out: Option[] = [];
  for (const o of v) {
    if (o === null || typeof o !== "object") continue;
    const { value, label } = o as { value?: unknown; label?: unknown };
    if (typeof value !== "string") continue;
    out.push({ value, label: text(label) ?? value });
  }
  return out;
}

/** The option values a default names: one value, or several. */
export function chosen(v: unknown): Set<string> {
  if (typeof v === "string") return new Set([v]);
  if (Array.isArray(v)) return new Set(v.filter((x): x is string => typeof x === "string"));
  return new Set();
}

/** What the person filling the form reads as the component's name. */
export function labelOf(c: Component, info: TypeInfo | undefined): string {
  return text(c.label) ?? info?.label ?? c.type;
}

/** A heading level 1 to 6 (default 2). */
export function headingLevel(v: unknown): number {
  const n = num(v);
  return n === undefined ? 2 : Math.min(6, Math.max(1, Math.round(n)));
}

/** A size in bytes for people: "512 bytes", "1.5 MB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} ${n === 1 ? "byte" : "bytes"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  // One decimal below 10 (1.5 MB), none above (250 MB).
  const shown = v < 10 ? Math.round(v * 10) / 10 : Math.round(v);
  return `${shown} ${units[u]}`;
}

/**
 * An element id for a component, unique per rendering: `prefix` tells two
 * renderings on one page apart. Whitespace would split an id list such as
 * `aria-describedby`, so it is replaced.
 */
export function domId(prefix: string, componentId: string, ...rest: string[]): string {
  return [prefix, componentId.replace(/\s/g, "_"), ...rest].join("-");
}
