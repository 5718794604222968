/**
 * The form model inside a template's Y.Doc, and how to read and write it.
 *
 * ```text
 * doc.getMap("meta")        name, description, tags, category, ...
 * doc.getMap("components")  id -> Y.Map { id, type, label, parent, index,
 *                             properties: Y.Map, position: Y.Map {x,y,w,h},
 *                             validation: Y.Map {required, rules, customValidation, ...},
 *                             styling: Y.Map {theme, customStyles: Y.Map} }
 * ```
 *
 * Siblings (components with the same `parent`, `null` at the top level)
 * are displayed by `index` (a fractional index, see `fractional-index.ts`),
 * then by id — the same order the server uses for previews and exports.
 *
 * @module
 */
import * as Y from 'yjs'

import { COMPONENT_TYPES, MAX_DEPTH, type KnownComponentType, type Position, type Styling } from './generated/form.js'

/** The component types the server knows (generated from the server's form model). */
export { COMPONENT_TYPES, MAX_DEPTH }
export type { Position, Styling }

/** A component type; `section` is the container type. Other strings are kept but the server refuses them on import. */
export type ComponentType = KnownComponentType | (string & {})

/** Validation rules: data for the form runtime; the server never runs them. */
export interface Validation {
  required?: boolean
  /** Names of custom rules. */
  rules?: string[]
  /** Source of a custom validation function (kept as text). */
  customValidation?: string
  min?: number | string
  max?: number | string
  minLength?: number
  maxLength?: number
  pattern?: string
  message?: string
  [key: string]: unknown
}

/** One component, read from the document. */
export interface Component {
  id: string
  type: ComponentType
  label: string
  /** The section it sits in, or `null` at the top level. */
  parent: string | null
  /** Fractional index: order among siblings. */
  index: string
  properties: Record<string, unknown>
  position: Position
  validation: Validation
  styling: Styling
}

/** What `addComponent` takes. */
export interface NewComponent {
  /** Default: a random id. */
  id?: string
  type: ComponentType
  label?: string
  /** A section's id, or `null`/absent for the top level. */
  parent?: string | null
  /** Place it right before this sibling … */
  before?: string
  /** … or right after this one (default: at the end of its parent). */
  after?: string
  properties?: Record<string, unknown>
  position?: Position
  validation?: Validation
  styling?: Styling
}

/**
 * What `updateComponent` takes. Nested maps are edited key by key: keys
 * not named are left alone (so two people editing different properties of
 * one component both keep their edit). A key set to `undefined` is
 * removed. Values equal to the current ones are not written.
 */
export interface ComponentPatch {
  type?: ComponentType
  label?: string
  properties?: Record<string, unknown>
  position?: { [K in keyof Position]?: number | undefined }
  validation?: Partial<Validation>
  styling?: { theme?: string | undefined, customStyles?: Record<string, string | undefined> }
}

/** Where `moveComponent` puts a component. */
export interface MoveTarget {
  /** New parent section (`null`: top level). Default: the current parent, or that of `before`/`after`. */
  parent?: string | null
  /** Right before this sibling. */
  before?: string
  /** Right after this sibling. */
  after?: string
}

/** Nested maps every component has. */
export const NESTED_KEYS = ['properties', 'position', 'validation', 'styling'] as const

// ---------------------------------------------------------------- reading

/** A value as plain JSON (Y types converted). */
export function plain (value: unknown): unknown {
  if (value instanceof Y.AbstractType) return value.toJSON()
  return value
}

function plainObject (value: unknown): Record<string, unknown> {
  const v = plain(value)
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {}
}

/** Reads one component map leniently: missing fields get defaults. */
export function readComponent (id: string, map: Y.Map<unknown>): Component {
  const type = map.get('type')
  const label = map.get('label')
  const parent = map.get('parent')
  const index = map.get('index')
  const styling = plainObject(map.get('styling'))
  return {
    id,
    type: typeof type === 'string' ? type : 'text',
    label: typeof label === 'string' ? label : '',
    parent: typeof parent === 'string' ? parent : null,
    index: typeof index === 'string' ? index : '',
    properties: plainObject(map.get('properties')),
    position: plainObject(map.get('position')) as Position,
    validation: plainObject(map.get('validation')) as Validation,
    styling: styling as Styling
  }
}

/** Display order of siblings: by index, then by id. */
export function compareSiblings (a: Component, b: Component): number {
  if (a.index !== b.index) return a.index < b.index ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** Order of `components()`: by parent (top level first), then index, then id. */
export function compareByParent (a: Component, b: Component): number {
  if (a.parent !== b.parent) {
    if (a.parent === null) return -1
    if (b.parent === null) return 1
    return a.parent < b.parent ? -1 : 1
  }
  return compareSiblings(a, b)
}

/**
 * The section each component is displayed in, as the server decides it:
 * its `parent` if that is a section whose own chain of parents reaches the
 * top level (no loop, at most {@link MAX_DEPTH} deep); otherwise the top
 * level (`null`), so nothing of a damaged or concurrently edited document
 * (two sections moved into each other) disappears from view.
 */
export function effectiveParents (components: Iterable<Component>): Map<string, string | null> {
  const byId = new Map<string, Component>()
  for (const c of components) byId.set(c.id, c)
  const out = new Map<string, string | null>()
  for (const c of byId.values()) {
    let result: string | null = null
    if (c.parent !== null) {
      const seen = new Set([c.id])
      let current: string = c.parent
      for (;;) {
        const p = byId.get(current)
        if (p === undefined || p.type !== 'section' || seen.has(current)) break
        seen.add(current)
        if (seen.size > MAX_DEPTH + 1) break
        if (p.parent === null) {
          result = c.parent
          break
        }
        current = p.parent
      }
    }
    out.set(c.id, result)
  }
  return out
}

// ---------------------------------------------------------------- writing

/** Deep equality of JSON-like values. */
export function jsonEqual (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]))
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) return false
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  return ka.length === kb.length &&
    ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

/** Sets `map[key] = value` unless equal; `undefined` deletes. */
export function setValue (map: Y.Map<unknown>, key: string, value: unknown): void {
  if (value === undefined) {
    if (map.has(key)) map.delete(key)
    return
  }
  if (map.has(key) && jsonEqual(plain(map.get(key)), value)) return
  map.set(key, value)
}

/**
 * The nested Y.Map at `map[key]`, created if missing. A plain object found
 * there (written by another kind of client) is turned into a Y.Map with
 * the same entries.
 */
export function nestedMap (map: Y.Map<unknown>, key: string): Y.Map<unknown> {
  const cur = map.get(key)
  if (cur instanceof Y.Map) return cur
  const fresh = new Y.Map<unknown>()
  map.set(key, fresh)
  if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
    for (const [k, v] of Object.entries(cur as Record<string, unknown>)) {
      if (v !== undefined) fresh.set(k, v)
    }
  }
  return fresh
}

/** Edits `map[key]` (a nested map) key by key with `patch`. */
export function patchNested (map: Y.Map<unknown>, key: string, patch: Record<string, unknown>): void {
  const nested = nestedMap(map, key)
  for (const [k, v] of Object.entries(patch)) setValue(nested, k, v)
}

/** Applies a {@link ComponentPatch} to a component map (inside a transaction). */
export function applyPatch (map: Y.Map<unknown>, patch: ComponentPatch): void {
  if ('type' in patch && patch.type !== undefined) setValue(map, 'type', patch.type)
  if ('label' in patch && patch.label !== undefined) setValue(map, 'label', patch.label)
  if (patch.properties !== undefined) patchNested(map, 'properties', patch.properties)
  if (patch.position !== undefined) patchNested(map, 'position', patch.position)
  if (patch.validation !== undefined) patchNested(map, 'validation', patch.validation)
  if (patch.styling !== undefined) {
    const styling = nestedMap(map, 'styling')
    const { customStyles, ...rest } = patch.styling
    for (const [k, v] of Object.entries(rest)) setValue(styling, k, v)
    if (customStyles !== undefined) patchNested(styling, 'customStyles', customStyles)
  }
}

/** A random component id: `c` + 12 base-62 characters. */
export function newComponentId (): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
  const bytes = new Uint8Array(12)
  globalThis.crypto.getRandomValues(bytes)
  let id = 'c'
  for (const b of bytes) id += alphabet[b % 62]
  return id
}
