import type { CoformClient } from './client.js'
import { CoformError } from './errors.js'
import type {
  CacheChange, DataSource, DataSourceChanges, DataSourceHealth, DataSourceInput, DataSourcePage, DataSourceParams,
  DataSourceQuery, DataSourceSchema, DataSourceTestInput, DataSourceTestResult, ExecuteOptions, ExecuteResult,
  ValidateResult
} from './types.js'

const enc = encodeURIComponent

/** What the server shows in place of a secret it keeps. */
export const SECRET_MASK = '••••••'

/**
 * `/api/data-sources/*`: a workspace's connections to REST APIs, GraphQL
 * endpoints and PostgreSQL databases, and calls through them.
 *
 * Every call the server makes for a source goes only to addresses its
 * policy allows (`blocked_address` otherwise). Secrets are write-only:
 * what comes back has `SECRET_MASK` in their place. Owners, admins and
 * editors manage and try sources; viewers list them and, through a form
 * that binds one, {@link execute} them.
 */
export class DataSourcesApi {
  constructor (private readonly client: CoformClient) {}

  #at (id: string, ...rest: string[]): string {
    return ['/api/data-sources', id, ...rest].map((s, i) => i === 0 ? s : enc(s)).join('/')
  }

  /** The sources of a workspace, filtered and paged (every member). */
  list (query: DataSourceQuery): Promise<DataSourcePage> {
    return this.client.request('GET', '/api/data-sources', { query: { ...query } })
  }

  /** One source, its secrets masked. */
  get (id: string): Promise<DataSource> {
    return this.client.request('GET', this.#at(id))
  }

  /** Stores a new source; a wrong configuration throws `invalid_config` naming the field. */
  create (input: DataSourceInput): Promise<DataSource> {
    return this.client.request('POST', '/api/data-sources', { body: input })
  }

  /**
   * Renames a source or changes its configuration, merged key by key
   * (`null` removes a key). A new origin, host or authentication type
   * without its secrets throws `secrets_required`: {@link requiredSecrets}
   * lists the fields to give again.
   */
  update (id: string, changes: DataSourceChanges): Promise<DataSource> {
    return this.client.request('PUT', this.#at(id), { body: changes })
  }

  /** Deletes a source with its cached answers. */
  async remove (id: string): Promise<void> {
    await this.client.request('DELETE', this.#at(id))
  }

  /**
   * Calls a source once without keeping anything but its figures: a
   * configuration not stored yet, or a stored source with changes not
   * saved yet. Resolves with the answer; a failure throws with its code
   * (`blocked_address`, `upstream_timeout`, `upstream_error`, ...).
   */
  test (input: DataSourceTestInput, params?: DataSourceParams): Promise<DataSourceTestResult> {
    return this.client.request('POST', '/api/data-sources/test', {
      body: params === undefined ? input : { ...input, params }
    })
  }

  /**
   * Calls a stored source with values for its placeholders. A viewer
   * passes `templateId`, a template whose form binds the source.
   */
  execute (id: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    return this.client.request('POST', this.#at(id, 'execute'), { body: options })
  }

  /**
   * What the source offers: tables and columns, GraphQL types, or the
   * shape of a REST answer, read from a sample call made with `params`
   * (a REST source whose placeholders get no value throws
   * `parameter_refused`).
   */
  schema (id: string, params?: DataSourceParams): Promise<DataSourceSchema> {
    const query = params && Object.keys(params).length > 0 ? { params: JSON.stringify(params) } : undefined
    return this.client.request('GET', this.#at(id, 'schema'), query ? { query } : undefined)
  }

  /** Checks the stored configuration and its literal hosts, without dialling. */
  validate (id: string): Promise<ValidateResult> {
    return this.client.request('POST', this.#at(id, 'validate'))
  }

  /** Dials the source now and says whether it answered. */
  health (id: string): Promise<DataSourceHealth> {
    return this.client.request('GET', this.#at(id, 'health'))
  }

  /** Drops the source's kept answers (`{ invalidate: true }`) or changes its caching. */
  cache (id: string, change: CacheChange): Promise<DataSource> {
    return this.client.request('POST', this.#at(id, 'cache'), { body: change })
  }
}

/**
 * The configuration fields a `secrets_required` error asks to be given
 * again (`authentication.token`, `password`, ...); empty for any other
 * error.
 */
export function requiredSecrets (err: unknown): string[] {
  if (!(err instanceof CoformError) || err.code !== 'secrets_required') return []
  const d = err.details
  const fields = Array.isArray(d) ? d : (d as { fields?: unknown } | null)?.fields
  return Array.isArray(fields) ? fields.filter((f): f is string => typeof f === 'string') : []
}

/**
 * The field an `invalid_config` error names, or the first field of a
 * `validation_failed` one (`config.url`, `name`, ...); `null` for others.
 */
export function invalidField (err: unknown): string | null {
  if (!(err instanceof CoformError) || (err.code !== 'invalid_config' && err.code !== 'validation_failed')) return null
  const d = err.details
  // `{ field }`, or the `[{ field, message }]` of a validation error.
  const field = (Array.isArray(d) ? d[0] : d as { field?: unknown } | null)?.field
  return typeof field === 'string' ? field : null
}
