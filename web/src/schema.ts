// The component catalog served by the server (`GET /api/schema/components`):
// every component type with its label, palette group, properties and
// validation rules. The palette and the properties panel are drawn from it,
// so the designer never carries a second, hand-written copy of the model.
import { signal } from "@preact/signals";

export type FieldKind =
  | "text"
  | "boolean"
  | "integer"
  | "number"
  | "date"
  | "choice"
  | "options"
  | "accept"
  | "list"
  | "optionValue"
  /** Options read from a data source: `{dataSourceId, params, path, labelKey, valueKey}`. */
  | "optionsSource"
  /** A default value read from a data source: `{dataSourceId, params, path}`. */
  | "defaultSource";

export interface FieldLimits {
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  itemMaxLength?: number;
}

/** One property or validation rule of a component type. */
export interface FieldInfo {
  name: string;
  label: string;
  description?: string;
  /** `basic`, `data`, `options`, `layout`, `behaviour`, `validation`, `advanced`. */
  group: string;
  kind: FieldKind;
  required: boolean;
  default?: unknown;
  limits: FieldLimits;
  /** The allowed values of a `choice`. */
  values?: string[];
}

/** One component type, as the palette shows it. */
export interface TypeInfo {
  type: string;
  label: string;
  description: string;
  /** `input`, `choice`, `layout`, `content`, `action`. */
  group: string;
  input: boolean;
  container: boolean;
  properties: FieldInfo[];
  validation: FieldInfo[];
}

export interface Catalog {
  types: TypeInfo[];
  /** Fields every component has (`label`, ...). */
  common: FieldInfo[];
}

/** The catalog once loaded (null until then). */
export const catalog = signal<Catalog | null>(null);
export const catalogError = signal<unknown>(null);

let loading: Promise<Catalog> | null = null;

/** Loads the catalog once per page (it changes only with the server). */
export function loadCatalog(): Promise<Catalog> {
  loading ??= fetch("/api/schema/components", { headers: { Accept: "application/json" } })
    .then(async (res) => {
      if (!res.ok) throw new Error(`The component catalog could not be loaded (HTTP ${res.status}).`);
      const c = (await res.json()) as Catalog;
      catalog.value = c;
      catalogError.value = null;
      return c;
    })
    .catch((e: unknown) => {
      loading = null;
      catalogError.value = e;
      throw e;
    });
  return loading;
}

/** The catalog entry of a type, if the server knows it. */
export function typeInfo(c: Catalog | null, type: string): TypeInfo | undefined {
  return c?.types.find((t) => t.type === type);
}
