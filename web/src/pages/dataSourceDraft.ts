// The data-source form's state and what it sends: a flat draft of text
// fields (what the inputs hold), the configuration it stands for, and the
// changes from a stored configuration to it. Pure functions, unit-tested.
//
// Secrets are write-only: the server shows SECRET_MASK in their place. An
// edited source's secret inputs start empty ("set — leave blank to keep");
// a blank one stands for the stored value, so it is left out of the
// changes, and a filled one is sent.
import {
  SECRET_MASK,
  type ConfigChanges,
  type DataSource,
  type DataSourceAuthType,
  type DataSourceConfig,
  type DataSourceKind,
  type DataSourceParams,
  type HttpMethod,
  type SslMode,
} from "@coform/sdk";

/** One name/value row: a header, a query parameter or a test parameter. */
export interface Row {
  name: string;
  value: string;
  /** A header whose value is a secret. */
  secret: boolean;
}

export interface Draft {
  name: string;
  type: DataSourceKind;
  // REST and GraphQL.
  url: string;
  method: HttpMethod;
  headers: Row[];
  queryParams: Row[];
  /** REST: the JSON body, as text. */
  body: string;
  /** GraphQL: the query document; database: the SQL. */
  query: string;
  /** GraphQL: the variables, JSON as text. */
  variables: string;
  authType: DataSourceAuthType;
  token: string;
  username: string;
  password: string;
  keyName: string;
  keyValue: string;
  keyIn: "header" | "query";
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope: string;
  // Database.
  host: string;
  port: string;
  database: string;
  user: string;
  dbPassword: string;
  sslMode: SslMode;
  // Every kind.
  cachingEnabled: boolean;
  ttl: string;
  timeoutMs: string;
  retries: string;
}

export const KINDS: ReadonlyArray<{ value: DataSourceKind; label: string }> = [
  { value: "rest", label: "REST API" },
  { value: "graphql", label: "GraphQL" },
  { value: "database", label: "PostgreSQL" },
];

export function kindLabel(kind: DataSourceKind): string {
  return KINDS.find((k) => k.value === kind)?.label ?? kind;
}

export const METHODS: readonly HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

export const AUTH_TYPES: ReadonlyArray<{ value: DataSourceAuthType; label: string }> = [
  { value: "none", label: "None" },
  { value: "bearer", label: "Bearer token" },
  { value: "basic", label: "Username and password" },
  { value: "apiKey", label: "API key" },
  { value: "oauth2", label: "OAuth 2 client credentials" },
];

export const SSL_MODES: ReadonlyArray<{ value: SslMode; label: string }> = [
  { value: "disable", label: "Disable" },
  { value: "prefer", label: "Prefer" },
  { value: "require", label: "Require" },
  { value: "verify-full", label: "Verify full" },
];

/** The configuration paths of the secrets, with what the form calls them. */
const SECRET_LABELS: Record<string, string> = {
  "authentication.token": "Bearer token",
  "authentication.credentials.password": "Password",
  "authentication.credentials.value": "API key",
  "authentication.credentials.clientSecret": "Client secret",
  password: "Database password",
  "url.password": "Password in the URL",
};

/** What the form calls a configuration field a server error names. */
export function fieldLabel(field: string): string {
  const path = field.replace(/^config\./, "");
  if (SECRET_LABELS[path]) return SECRET_LABELS[path];
  const header = /^headers\.(.+)$/.exec(path);
  if (header) return `Value of header ${header[1]}`;
  return path;
}

export function emptyDraft(type: DataSourceKind = "rest"): Draft {
  return {
    name: "",
    type,
    url: "",
    method: "GET",
    headers: [],
    queryParams: [],
    body: "",
    query: "",
    variables: "",
    authType: "none",
    token: "",
    username: "",
    password: "",
    keyName: "",
    keyValue: "",
    keyIn: "header",
    tokenUrl: "",
    clientId: "",
    clientSecret: "",
    scope: "",
    host: "",
    port: "5432",
    database: "",
    user: "",
    dbPassword: "",
    sslMode: "prefer",
    cachingEnabled: false,
    ttl: "300",
    timeoutMs: "",
    retries: "",
  };
}

const text = (v: unknown): string => (typeof v === "string" && v !== SECRET_MASK ? v : "");
const json = (v: unknown): string => (v === undefined || v === null ? "" : JSON.stringify(v, null, 2));
const num = (v: unknown): string => (typeof v === "number" ? String(v) : "");

/** The draft of a stored source: its values, with every secret input empty. */
export function draftOf(ds: DataSource): Draft {
  const c = ds.config;
  const a = c.authentication ?? {};
  const cr = a.credentials ?? {};
  const secret = new Set((c.secretHeaders ?? []).map((h) => h.toLowerCase()));
  // A masked value is a kept secret, whether the header is named in
  // secretHeaders or is one the server always keeps secret (Authorization).
  const rows = (m: Record<string, string> | undefined, secrets?: Set<string>): Row[] =>
    Object.entries(m ?? {}).map(([name, value]) => ({
      name,
      value: value === SECRET_MASK ? "" : value,
      secret: secrets?.has(name.toLowerCase()) ?? false,
    }));
  return {
    ...emptyDraft(ds.type),
    name: ds.name,
    url: text(c.url),
    method: c.method ?? "GET",
    headers: rows(c.headers, secret),
    queryParams: rows(c.queryParams),
    body: json(c.body),
    query: text(c.query),
    variables: json(c.variables),
    authType: a.type ?? "none",
    username: text(cr.username),
    keyName: text(cr.name),
    keyIn: cr.in ?? "header",
    tokenUrl: text(cr.tokenUrl),
    clientId: text(cr.clientId),
    scope: text(cr.scope),
    host: text(c.host),
    port: num(c.port) || "5432",
    database: text(c.database),
    user: text(c.user),
    sslMode: c.sslMode ?? "prefer",
    cachingEnabled: c.caching?.enabled ?? false,
    ttl: num(c.caching?.ttl) || "300",
    timeoutMs: num(c.timeoutMs),
    retries: num(c.retries),
  };
}

/** The secrets a stored configuration keeps, by path (see {@link fieldLabel}). */
export function storedSecrets(c: DataSourceConfig | undefined): Set<string> {
  const set = new Set<string>();
  if (!c) return set;
  const a = c.authentication;
  if (a?.token) set.add("authentication.token");
  if (a?.credentials?.password) set.add("authentication.credentials.password");
  if (a?.credentials?.value) set.add("authentication.credentials.value");
  if (a?.credentials?.clientSecret) set.add("authentication.credentials.clientSecret");
  if (c.password) set.add("password");
  for (const [h, v] of Object.entries(c.headers ?? {})) if (v === SECRET_MASK) set.add("headers." + h);
  return set;
}

/** A problem with what was typed, found before anything is sent. */
export class DraftError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "DraftError";
  }
}

function parseJson(value: string, field: string, label: string): unknown {
  if (value.trim() === "") return undefined;
  try {
    return JSON.parse(value);
  } catch {
    throw new DraftError(field, `${label} is not valid JSON.`);
  }
}

function integer(value: string, field: string, label: string): number | undefined {
  if (value.trim() === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new DraftError(field, `${label} must be a whole number.`);
  return n;
}

/** Rows with a name, as a map (the last of two equal names wins, as in the inputs' order). */
function map(rows: Row[], keep: (r: Row) => string | undefined): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const r of rows) {
    const name = r.name.trim();
    if (name === "") continue;
    const value = keep(r);
    if (value !== undefined) out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The configuration a draft stands for. With `stored` (an edited
 * source's configuration), a blank secret input keeps the stored secret:
 * it becomes SECRET_MASK, as in `stored`, so that {@link changesFrom}
 * leaves it out. Without, a blank secret is not set. Throws
 * {@link DraftError} for JSON or numbers that do not parse.
 */
export function configOf(d: Draft, stored?: DataSourceConfig): DataSourceConfig {
  const kept = storedSecrets(stored);
  // A field an edited source leaves to the server's default stays unset
  // while the form shows that default, so that opening and saving the form
  // changes nothing.
  const unlessDefault = <T>(value: T, fallback: T, was: unknown): T | undefined =>
    stored && was === undefined && value === fallback ? undefined : value;
  const secret = (value: string, path: string): string | undefined =>
    value !== "" ? value : kept.has(path) ? SECRET_MASK : undefined;
  const c: DataSourceConfig = {};
  if (d.type === "rest" || d.type === "graphql") {
    if (d.url.trim()) c.url = d.url.trim();
    if (d.type === "rest") c.method = unlessDefault(d.method, "GET", stored?.method);
    c.headers = map(d.headers, (r) => secret(r.value, "headers." + r.name.trim()));
    const secretHeaders = d.headers.filter((r) => r.secret && r.name.trim()).map((r) => r.name.trim());
    if (secretHeaders.length > 0) c.secretHeaders = secretHeaders;
    c.queryParams = map(d.queryParams, (r) => r.value);
    if (d.type === "rest") c.body = parseJson(d.body, "body", "The body");
    if (d.type === "graphql") {
      if (d.query.trim()) c.query = d.query;
      c.variables = parseJson(d.variables, "variables", "The variables");
    }
    if (d.authType !== "none") {
      const credentials: Record<string, string | undefined> = {};
      let token: string | undefined;
      if (d.authType === "bearer") token = secret(d.token, "authentication.token");
      if (d.authType === "basic") {
        credentials.username = d.username || undefined;
        credentials.password = secret(d.password, "authentication.credentials.password");
      }
      if (d.authType === "apiKey") {
        credentials.name = d.keyName || undefined;
        credentials.value = secret(d.keyValue, "authentication.credentials.value");
        credentials.in = unlessDefault(d.keyIn, "header", stored?.authentication?.credentials?.in);
      }
      if (d.authType === "oauth2") {
        credentials.tokenUrl = d.tokenUrl.trim() || undefined;
        credentials.clientId = d.clientId || undefined;
        credentials.clientSecret = secret(d.clientSecret, "authentication.credentials.clientSecret");
        credentials.scope = d.scope || undefined;
      }
      c.authentication = prune({ type: d.authType, credentials, token }) as DataSourceConfig["authentication"];
    }
  } else {
    c.engine = "postgresql";
    if (d.host.trim()) c.host = d.host.trim();
    c.port = unlessDefault(integer(d.port, "port", "The port"), 5432, stored?.port);
    if (d.database.trim()) c.database = d.database.trim();
    if (d.user.trim()) c.user = d.user.trim();
    c.password = secret(d.dbPassword, "password");
    c.sslMode = unlessDefault(d.sslMode, "prefer", stored?.sslMode);
    if (d.query.trim()) c.query = d.query;
  }
  c.caching = { enabled: d.cachingEnabled, ttl: integer(d.ttl, "caching.ttl", "The cache time") ?? 300 };
  c.timeoutMs = integer(d.timeoutMs, "timeoutMs", "The time limit");
  c.retries = integer(d.retries, "retries", "Retries");
  return prune(c) as DataSourceConfig;
}

/** Drops undefined values and objects left empty, recursively. */
function prune(v: unknown): unknown {
  if (!isPlain(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const p = prune(x);
    if (p === undefined) continue;
    if (isPlain(p) && Object.keys(p).length === 0) continue;
    out[k] = p;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isPlain(a) && isPlain(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
  }
  return false;
}

/** Values the server replaces whole rather than merging: JSON documents of their own. */
const WHOLE = new Set(["body", "variables"]);

/**
 * The changes that turn `from` into `to`, as the server merges them: key
 * by key into objects, `null` for a key that is gone, an array or a value
 * as a whole (and `body` and `variables`, documents of their own, whole).
 * Nothing for what is equal, so a kept secret (SECRET_MASK on both sides)
 * is never sent.
 */
export function changesFrom(from: DataSourceConfig, to: DataSourceConfig): ConfigChanges {
  const out: Record<string, unknown> = {};
  // An empty object is as good as none (the server shows
  // `credentials: {}` for a bearer token).
  const a = prune(from) as Record<string, unknown>;
  const b = prune(to) as Record<string, unknown>;
  for (const k of Object.keys(a)) if (!(k in b)) out[k] = null;
  for (const [k, v] of Object.entries(b)) {
    if (!(k in a)) out[k] = v;
    else if (WHOLE.has(k)) {
      if (!equal(a[k], v)) out[k] = v;
    } else {
      const d = diff(a[k], v);
      if (d !== undefined) out[k] = d;
    }
  }
  return out as ConfigChanges;
}

function diff(a: unknown, b: unknown): unknown {
  if (isPlain(a) && isPlain(b)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(a)) if (!(k in b)) out[k] = null;
    for (const [k, v] of Object.entries(b)) {
      if (!(k in a)) out[k] = v;
      else {
        const d = diff(a[k], v);
        if (d !== undefined) out[k] = d;
      }
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return equal(a, b) ? undefined : b;
}

/**
 * Test parameters from rows: a value that reads as a number, `true`,
 * `false` or `null` is sent as that; anything else as text.
 */
export function paramsOf(rows: Row[]): DataSourceParams {
  const out: DataSourceParams = {};
  for (const r of rows) {
    const name = r.name.trim();
    if (name === "") continue;
    const v = r.value.trim();
    if (v === "true" || v === "false") out[name] = v === "true";
    else if (v === "null") out[name] = null;
    else if (v !== "" && /^-?\d+(\.\d+)?$/.test(v)) out[name] = Number(v);
    else out[name] = r.value;
  }
  return out;
}

/** The `{{name}}` placeholders of a stored configuration, in order of appearance. */
export function placeholders(c: DataSourceConfig): string[] {
  const seen: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "string") {
      for (const m of v.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g)) if (!seen.includes(m[1])) seen.push(m[1]);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (isPlain(v)) Object.values(v).forEach(walk);
  };
  walk(c);
  return seen;
}
