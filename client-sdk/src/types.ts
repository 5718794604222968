/**
 * Shapes of the Coform REST API (JSON, camelCase). Times are milliseconds
 * since the epoch.
 *
 * @module
 */

/** A workspace role: owner > admin > editor > viewer. */
export type Role = 'owner' | 'admin' | 'editor' | 'viewer'

/** An account. */
export interface User {
  id: string
  email: string
  name: string
  /** Presence colour, `#rrggbb`. */
  color: string
  /** Whether `email` was proved by the link mailed to it. */
  emailVerified: boolean
  /**
   * A new address asked for with `updateMe({ email, currentPassword })`:
   * `email` stays the account's address until the link mailed to this one
   * is opened (`verifyEmail`).
   */
  pendingEmail: string | null
  lastLogin: number | null
  createdAt: number
  updatedAt: number
  profile: Record<string, unknown>
}

/** Answer of register, login and refresh. */
export interface TokenResponse {
  accessToken: string
  refreshToken: string
  tokenType: 'Bearer'
  /** Seconds until the access token expires. */
  expiresIn: number
  user: User
}

export interface RegisterInput { email: string, password: string, name: string }
export interface LoginInput { email: string, password: string }
export interface UpdateMeInput {
  name?: string
  /**
   * A new address: it becomes `pendingEmail` (not `email`) until the link
   * mailed to it is opened. Needs `currentPassword`. The current address
   * cancels a pending change.
   */
  email?: string
  color?: string
  profile?: Record<string, unknown>
  /** The account's password; required with a new `email`. */
  currentPassword?: string
}

/** A login session of the account (see `client.sessions()`). */
export interface SessionInfo {
  id: string
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  userAgent: string
  ip: string
  /** The session of this client. */
  current: boolean
}

export interface Workspace {
  id: string
  name: string
  description: string
  createdBy: string
  settings: Record<string, unknown>
  createdAt: number
  updatedAt: number
  /** The caller's role (absent inside backups). */
  role?: Role
}

export interface Member {
  userId: string
  email: string
  name: string
  role: Role
  joinedAt: number
}

/**
 * An invitation of an address that is not (yet) verified, or has no
 * account: it becomes a membership with `role` once the owner of `email`
 * verifies it. The same shape whether or not the address has an account.
 */
export interface Invitation {
  status: 'invited'
  email: string
  role: Role
  /** The member who sent or last renewed it. */
  invitedBy: string
  invitedAt: number
  /** After this time it grants nothing. */
  expiresAt: number
}

export interface WorkspaceDetail extends Workspace {
  members: Member[]
}

export interface CreateWorkspaceInput { name: string, description?: string, settings?: Record<string, unknown> }
export interface UpdateWorkspaceInput { name?: string, description?: string, settings?: Record<string, unknown> }

export interface WorkspaceAnalytics {
  templates: number
  members: number
  /** Distinct users connected to any template of the workspace now. */
  activeEditors: number
  lastActivity: number
}

/** The JSON form of a template document. */
export interface TemplateContent {
  meta: Record<string, unknown>
  components: Record<string, Record<string, unknown>>
}

/** A template listing; `content` is present on single reads. */
export interface Template {
  id: string
  workspaceId: string
  name: string
  description: string
  tags: string[]
  /** Anyone with the id may read the preview page without an account
   * (`GET /api/public/templates/{id}/preview`); nothing else is opened. */
  isPublic: boolean
  createdBy: string
  createdAt: number
  updatedAt: number
  /** Bumped by every REST change of the listing or content. */
  version: number
  content?: TemplateContent
}

export interface TemplateQuery {
  /** Only this workspace (default: all of the caller's). */
  workspaceId?: string
  /** Only templates with this tag. */
  tag?: string
  /** Text to find in name or description. */
  q?: string
  /** 1-based page (default 1). */
  page?: number
  /** 1 to 100 (default 20). */
  pageSize?: number
}

export interface TemplatePage {
  items: Template[]
  total: number
  page: number
  pageSize: number
}

export interface CreateTemplateInput {
  workspaceId: string
  name: string
  description?: string
  tags?: string[]
  /** Anyone with the id may read the preview page without an account
   * (`GET /api/public/templates/{id}/preview`); nothing else is opened. */
  isPublic?: boolean
  content?: Partial<TemplateContent>
}

export interface UpdateTemplateInput {
  name?: string
  description?: string
  tags?: string[]
  /** Anyone with the id may read the preview page without an account
   * (`GET /api/public/templates/{id}/preview`); nothing else is opened. */
  isPublic?: boolean
  /** Applied as a minimal CRDT edit: live editors keep their own changes. */
  content?: Partial<TemplateContent>
}

/** A short-lived token for the template's WebSocket. */
export interface DocumentToken {
  token: string
  expiresIn: number
  role: Role
  /** Path of the WebSocket: `/collab/{id}`. */
  url: string
}

/** A workspace backup file (`POST /api/workspaces/{id}/backup`). */
export interface WorkspaceBackup {
  format: 'coform-workspace-backup'
  version: number
  exportedAt: number
  workspace: Workspace
  members: Member[]
  templates: Array<Template & { state: string }>
}

export interface RestoreReport {
  /** Templates brought back to the backup's content. */
  restored: number
  /** Templates recreated because they no longer existed. */
  created: number
}

/** A saved version of a template (without content). */
export interface Version {
  /** 1, 2, 3, ... per template. */
  number: number
  name: string
  note: string
  authorId: string
  authorName: string | null
  createdAt: number
  /** Stored size in bytes. */
  size: number
}

export interface VersionDetail extends Version {
  content: TemplateContent
}

export interface CreateVersionInput { name?: string, note?: string }

export interface VersionRestoreResult {
  /** The version whose content the document now has. */
  restored: number
  /** The version saved from the document just before the restore. */
  backup: Version
  /** The document after the restore. */
  content: TemplateContent
}

/** Which side of a diff: a version number or the live document. */
export type VersionRef = number | 'current'

export interface VersionDiff {
  from: string
  to: string
  added: string[]
  removed: string[]
  moved: Array<{ id: string, from: { parent: string | null, index: string | null }, to: { parent: string | null, index: string | null } }>
  /** Dotted paths of the values that differ per component (`label`, `properties.placeholder`, ...). */
  changed: Array<{ id: string, fields: string[] }>
  /** Dotted paths of the meta values that differ. */
  meta: string[]
}

/** A template file (`format: coform-template`, version 1). */
export interface TemplateFile {
  format: 'coform-template'
  version: number
  template: { name: string, description?: string, tags?: string[] }
  content: TemplateContent
}

/** One invalid field in a `validation_failed` error's details. */
export interface FieldError { field: string, message: string }

// ------------------------------------------------------------ data sources

/**
 * What a data source talks to: an HTTP API answering JSON, a GraphQL
 * endpoint, or a database (`config.engine`: only `postgresql`).
 */
export type DataSourceKind = 'rest' | 'graphql' | 'database'

/** The HTTP method of a REST source (GraphQL always POSTs). */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/**
 * How a source proves who it is to the upstream: `bearer` sends
 * `authentication.token`, `basic` the username and password, `apiKey` a
 * key named `credentials.name` in a header or query parameter, `oauth2`
 * fetches a token from `credentials.tokenUrl` (client credentials).
 */
export type DataSourceAuthType = 'none' | 'bearer' | 'basic' | 'apiKey' | 'oauth2'

/**
 * The credentials an authentication type uses; the others stay unset.
 * The secret ones (`password`, `value`, `clientSecret`) come back from
 * the server as `••••••` (`SECRET_MASK`), never as they were written.
 */
export interface DataSourceCredentials {
  /** `basic`. */
  username?: string
  /** `basic`; secret. */
  password?: string
  /** `apiKey`: the header or query parameter that carries the key. */
  name?: string
  /** `apiKey`: the key; secret. */
  value?: string
  /** `apiKey`: where the key goes (default `header`). */
  in?: 'header' | 'query'
  /** `oauth2`: where the token is fetched (guarded like the source's own URL). */
  tokenUrl?: string
  /** `oauth2`. */
  clientId?: string
  /** `oauth2`; secret. */
  clientSecret?: string
  /** `oauth2`, optional. */
  scope?: string
}

/** The authentication of a REST or GraphQL source. */
export interface DataSourceAuthentication {
  type?: DataSourceAuthType
  credentials?: DataSourceCredentials
  /** `bearer`: the token; secret. */
  token?: string
}

/** Whether answers are kept, and for how many seconds (at most a day). */
export interface DataSourceCaching {
  enabled?: boolean
  ttl?: number
}

/** How a PostgreSQL connection uses TLS (`verify-full` checks the certificate and host name). */
export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-full'

/**
 * The configuration of a data source. Every field is optional; which
 * ones a kind uses (and requires) is checked by the server, which answers
 * `invalid_config` naming the first wrong field. Text fields may hold
 * `{{name}}` placeholders, filled from the `params` of a call.
 *
 * Secrets (a secret header's value, the bearer token, the password, the
 * API key, the client secret) are write-only: reads show
 * `••••••` (`SECRET_MASK`) in their place and `credentialsSet` on the source.
 */
export interface DataSourceConfig {
  // REST and GraphQL.
  /** `http` or `https`. */
  url?: string
  /** REST only (default `GET`). */
  method?: HttpMethod
  headers?: Record<string, string>
  /** Names in `headers` whose values are secrets (e.g. a key header). */
  secretHeaders?: string[]
  /** REST only: the JSON body sent with POST, PUT or PATCH. */
  body?: unknown
  queryParams?: Record<string, string>
  authentication?: DataSourceAuthentication
  /** GraphQL: the query document. Database: the SQL (read only; `{{name}}` becomes a bound parameter). */
  query?: string
  /** GraphQL: the variables (JSON). */
  variables?: unknown

  // Database.
  engine?: 'postgresql'
  host?: string
  port?: number
  database?: string
  user?: string
  /** Secret. */
  password?: string
  sslMode?: SslMode

  // Every kind.
  caching?: DataSourceCaching
  /** Time limit of one call (default 10 000, at most 60 000). */
  timeoutMs?: number
  /** Further attempts after a failure that may pass on retry (0 to 3). */
  retries?: number
}

/** A connection to an outside source of data, kept by a workspace. */
export interface DataSource {
  id: string
  workspaceId: string
  name: string
  type: DataSourceKind
  /** Secrets replaced by `••••••` (`SECRET_MASK`). */
  config: DataSourceConfig
  /** Whether the source keeps any secret. */
  credentialsSet: boolean
  /** Bumped by every change of the configuration (cached answers of older versions are not used). */
  configVersion: number
  createdBy: string
  createdAt: number
  updatedAt: number
  /** The last call (test, execute or health check), or `null`. */
  lastUsed: number | null
  /** `failing` after a failed call, `active` after a successful one. */
  status: 'untested' | 'active' | 'failing'
  /** Failed calls so far. */
  errorCount: number
  performance: {
    /** Average duration of a call, in milliseconds. */
    responseTime: number
    /** Share of calls that succeeded, 0..1; `null` before the first call. */
    successRate: number | null
  }
  monitoring: {
    /** The last health check, or `null`. */
    lastCheck: number | null
    health: 'unknown' | 'healthy' | 'unhealthy'
    alerts: string[]
  }
}

/** A filter and page of {@link DataSourcesApi.list}. */
export interface DataSourceQuery {
  /** The workspace (required). */
  workspaceId: string
  /** Text to find in the name. */
  search?: string
  /** Only sources of this kind. */
  type?: DataSourceKind
  /** 1-based page (default 1). */
  page?: number
  /** 1 to 100 (default 20). */
  pageSize?: number
}

export interface DataSourcePage {
  items: DataSource[]
  total: number
  page: number
  pageSize: number
}

/** A new data source (owner, admin or editor of the workspace). */
export interface DataSourceInput {
  workspaceId: string
  name: string
  type: DataSourceKind
  config: DataSourceConfig
}

/**
 * Changes to a data source. `config` is merged key by key into the stored
 * one; a `null` value removes the key. Changing the origin of the URL, the
 * host, or the authentication type without giving the secrets again is
 * refused with `secrets_required` (see {@link requiredSecrets}), so that a
 * stored secret is never sent somewhere new.
 */
export interface DataSourceChanges {
  name?: string
  config?: ConfigChanges
}

/** A partial configuration in which `null` removes a key. */
export type ConfigChanges = { [K in keyof DataSourceConfig]?: DataSourceConfig[K] | null }

/** Values for the `{{name}}` placeholders of a source. */
export type DataSourceParams = Record<string, string | number | boolean | null>

/**
 * What {@link DataSourcesApi.test} tries: a configuration not stored yet
 * (a create body, `name` optional), or a stored source with unsaved
 * changes applied.
 */
export type DataSourceTestInput =
  | { workspaceId: string, type: DataSourceKind, config: DataSourceConfig, name?: string }
  | { id: string, config?: ConfigChanges }

/** A test that worked: how long it took and what came back. Failures throw. */
export interface DataSourceTestResult {
  ok: true
  durationMs: number
  /** The answer (a database: the rows). */
  sample: unknown
}

export interface ExecuteOptions {
  params?: DataSourceParams
  /**
   * A template of the workspace whose form binds this source: what lets a
   * viewer call it.
   */
  templateId?: string
}

/** The answer of {@link DataSourcesApi.execute}. */
export interface ExecuteResult {
  data: unknown
  /** Served from the cache, without calling the upstream. */
  cached: boolean
  durationMs: number
}

/** One column of a database table. */
export interface SchemaColumn { name: string, type: string, nullable: boolean }
/** One table (or view) a database source can read. */
export interface SchemaTable { schema: string, name: string, columns: SchemaColumn[] }

/**
 * What a source offers: a database its tables (`{ tables }`), GraphQL the
 * introspected `{ types }`, REST a JSON-schema-like description inferred
 * from one answer (`type`, `properties`, `items`).
 */
export type DataSourceSchema =
  | { tables: SchemaTable[] }
  | { types: Array<{ name: string, kind?: string, fields?: Array<{ name: string, type?: unknown }> | null, [k: string]: unknown }> }
  | InferredSchema

/** A JSON-schema-like description of a JSON value. */
export interface InferredSchema {
  type?: string | string[]
  properties?: Record<string, InferredSchema>
  items?: InferredSchema
  [k: string]: unknown
}

/** The answer of {@link DataSourcesApi.health}: the source was dialled. */
export interface DataSourceHealth {
  health: 'healthy' | 'unhealthy'
  checkedAt: number
  durationMs: number
  /** What the server's monitoring says of the source now. */
  alerts?: string[]
  /** Why it is unhealthy. */
  error?: { code: string, message: string }
}

/** The answer of {@link DataSourcesApi.validate}: the configuration checked without dialling. */
export interface ValidateResult {
  valid: boolean
  problems: FieldError[]
}

/** The body of {@link DataSourcesApi.cache}: drop kept answers, or change the caching. */
export type CacheChange = { invalidate: true } | { enabled: boolean, ttl?: number }

/**
 * The codes a data-source call can fail with, besides the usual
 * `not_found`, `forbidden` and `validation_failed`.
 */
export type DataSourceErrorCode =
  /** The host is, or resolves to, an address the server does not dial. */
  | 'blocked_address'
  /** A change of origin, host or authentication type needs the secrets again: `details.fields`. */
  | 'secrets_required'
  /** A parameter could not be used where its placeholder stands. */
  | 'parameter_refused'
  /** The database role may write or is a superuser. */
  | 'unsafe_role'
  | 'upstream_timeout'
  | 'too_many_redirects'
  | 'response_too_large'
  | 'row_limit'
  /** The upstream answered with an error (HTTP status, GraphQL errors, database error). */
  | 'upstream_error'
  /** The configuration is wrong: `details.field` names the field (see `invalidField`). */
  | 'invalid_config'
  | 'invalid_host'
  | 'unresolvable_host'
  | 'upstream_unreachable'
  | 'insecure_redirect'
  | 'invalid_redirect'
  | 'unsupported_scheme'
  | 'source_busy'
  | 'invalid_response'
