import { Emitter } from './emitter.js'
import { CoformError } from './errors.js'
import { memoryStorage, type StoredAuth, type TokenStorage } from './storage.js'
import type { LoginInput, RegisterInput, SessionInfo, TokenResponse, UpdateMeInput, User } from './types.js'
import { TemplatesApi, VersionsApi, WorkspacesApi } from './api.js'
import { DataSourcesApi } from './datasources.js'
import { TemplateSession, type OpenTemplateOptions, type WebSocketClass } from './session.js'

/** The `fetch` function the client uses (the global one by default). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export interface CoformClientOptions {
  /** The server, e.g. `https://forms.example.com` (REST under `/api`, WebSockets under `/collab`). */
  baseUrl: string
  /**
   * The WebSocket class for template sessions. Browsers have one; in
   * Node pass the `ws` package's default export.
   */
  WebSocket?: WebSocketClass
  /** Replaces the global `fetch`. */
  fetch?: FetchLike
  /** Where tokens are kept (default: memory). See {@link TokenStorage}. */
  storage?: TokenStorage
  /** WebSocket base URL if it is not `baseUrl` with ws(s):// and `/collab`. */
  wsUrl?: string
  /**
   * Refresh the access token this long before it expires (default 60 s,
   * at most a fifth of its lifetime).
   */
  refreshMarginMs?: number
}

/** Why the client signed out. */
export type SignOutReason =
  /** `logout()` was called. */
  | 'logout'
  /** A used refresh token was presented again: the server ended the session (leaked token or a second client on one storage). */
  | 'token_reused'
  /** The session ended elsewhere (logout on another device, password change, revoked). */
  | 'session_revoked'
  /** The refresh token is unknown or the account is gone. */
  | 'invalid_token'

export interface ClientEvents {
  /** After register or login. */
  signedIn: (user: User) => void
  /** The client lost its session; sign in again. */
  signedOut: (event: { reason: SignOutReason }) => void
  /** Tokens were refreshed (the refresh token rotated). */
  refreshed: (user: User) => void
}

export interface RequestOptions {
  body?: unknown
  /** A JSON text sent exactly as it is (instead of `body`), for the server to check as written. */
  json?: string
  query?: Record<string, string | number | boolean | undefined | null>
  /** Send the access token (default true). */
  auth?: boolean
  /** Read the answer as text instead of JSON. */
  text?: boolean
}

const SIGN_OUT_CODES = new Set(['token_reused', 'session_revoked', 'invalid_token'])

/**
 * A Coform server seen from an app: accounts, workspaces, templates,
 * versions and live template sessions.
 *
 * ```ts
 * const client = new CoformClient({ baseUrl: 'http://127.0.0.1:8080', WebSocket })
 * await client.login({ email, password })
 * const session = await client.openTemplate(templateId)
 * ```
 *
 * Access tokens are refreshed shortly before they expire, and once more
 * if the server still answers 401 `token_expired`; the refresh token
 * rotates each time. One refresh runs at a time however many requests
 * need it (a second use of one refresh token would end the session).
 */
export class CoformClient extends Emitter<ClientEvents> {
  readonly baseUrl: string
  readonly wsUrl: string
  readonly workspaces: WorkspacesApi
  readonly templates: TemplatesApi
  readonly versions: VersionsApi
  readonly dataSources: DataSourcesApi
  /** @internal */
  readonly WebSocketImpl: WebSocketClass | undefined

  readonly #fetch: FetchLike
  readonly #storage: TokenStorage
  readonly #refreshMarginMs: number
  #auth: StoredAuth | null = null
  #loaded: Promise<void> | null = null
  #refreshing: Promise<StoredAuth> | null = null
  readonly #sessions = new Set<TemplateSession>()

  constructor (options: CoformClientOptions) {
    super()
    if (typeof options?.baseUrl !== 'string' || options.baseUrl === '') {
      throw new CoformError(0, 'invalid_argument', 'baseUrl is required')
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.wsUrl = (options.wsUrl ?? `${this.baseUrl.replace(/^http/i, 'ws')}/collab`).replace(/\/+$/, '')
    const f = options.fetch ?? (globalThis.fetch as FetchLike | undefined)
    if (f === undefined) throw new CoformError(0, 'invalid_argument', 'no fetch here; pass options.fetch')
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.#storage = options.storage ?? memoryStorage()
    this.#refreshMarginMs = options.refreshMarginMs ?? 60_000
    this.WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket
    this.workspaces = new WorkspacesApi(this)
    this.templates = new TemplatesApi(this)
    this.versions = new VersionsApi(this)
    this.dataSources = new DataSourcesApi(this)
  }

  // ------------------------------------------------------------ session state

  /** Loads tokens from storage (done automatically before the first request). */
  ready (): Promise<void> {
    if (this.#loaded === null) {
      this.#loaded = (async () => {
        const stored = await this.#storage.load()
        if (stored !== null && this.#auth === null) this.#auth = stored
      })()
    }
    return this.#loaded
  }

  /** The signed-in account, or `null` (after {@link ready}). */
  get user (): User | null {
    return this.#auth?.user ?? null
  }

  /** Is a session held (after {@link ready})? It may still have been revoked on the server. */
  get signedIn (): boolean {
    return this.#auth !== null
  }

  // ------------------------------------------------------------ auth

  /** Creates an account and signs in. */
  async register (input: RegisterInput): Promise<User> {
    const res = await this.request<TokenResponse>('POST', '/api/auth/register', { body: input, auth: false })
    await this.#accept(res)
    this.emit('signedIn', res.user)
    return res.user
  }

  /** Signs in with e-mail and password. */
  async login (input: LoginInput): Promise<User> {
    const res = await this.request<TokenResponse>('POST', '/api/auth/login', { body: input, auth: false })
    await this.#accept(res)
    this.emit('signedIn', res.user)
    return res.user
  }

  /**
   * Ends the session on the server (its tokens stop working), forgets the
   * tokens and closes this client's template sessions.
   */
  async logout (): Promise<void> {
    await this.ready()
    if (this.#auth === null) return
    try {
      await this.request('POST', '/api/auth/logout')
    } catch (err) {
      // A session that already ended is as good as logged out.
      if (!(err instanceof CoformError) || err.status !== 401) throw err
    }
    await this.#signOut('logout')
  }

  /**
   * Trades the refresh token for new tokens now. Called automatically;
   * exposed for apps that want to refresh eagerly (e.g. on focus).
   */
  async refresh (): Promise<User> {
    return (await this.#refresh()).user
  }

  /** The signed-in account, fresh from the server. */
  async me (): Promise<User> {
    const user = await this.request<User>('GET', '/api/auth/me')
    await this.#updateUser(user)
    return user
  }

  /**
   * Changes name, colour, profile or e-mail. A new e-mail needs
   * `currentPassword` and only becomes `pendingEmail` until the link mailed
   * to it is opened.
   */
  async updateMe (patch: UpdateMeInput): Promise<User> {
    const user = await this.request<User>('PUT', '/api/auth/me', { body: patch })
    await this.#updateUser(user)
    return user
  }

  /** Changes the password; every other session of the account ends. */
  async changePassword (currentPassword: string, newPassword: string): Promise<void> {
    await this.request('PUT', '/api/auth/password', { body: { currentPassword, newPassword } })
  }

  /** The account's active sessions. */
  sessions (): Promise<SessionInfo[]> {
    return this.request('GET', '/api/auth/sessions')
  }

  /** Ends one session of the account. */
  async revokeSession (id: string): Promise<void> {
    await this.request('DELETE', `/api/auth/sessions/${enc(id)}`)
  }

  /** Asks for a password-reset e-mail. */
  async forgotPassword (email: string): Promise<void> {
    await this.request('POST', '/api/auth/forgot-password', { body: { email }, auth: false })
  }

  /** Sets a new password with the e-mailed token (ends every session). */
  async resetPassword (token: string, password: string): Promise<void> {
    await this.request('POST', '/api/auth/reset-password', { body: { token, password }, auth: false })
  }

  /**
   * Confirms an address with the token mailed to it: the account's own, or
   * the pending new one (which then becomes the account's address).
   */
  verifyEmail (token: string): Promise<User> {
    return this.request('GET', '/api/auth/verify-email', { query: { token }, auth: false })
  }

  /** Mails a new verification link to the account's (unverified) address. */
  async resendVerification (): Promise<void> {
    await this.request('POST', '/api/auth/verify-email/resend')
  }

  async #accept (res: TokenResponse): Promise<StoredAuth> {
    const auth: StoredAuth = {
      accessToken: res.accessToken,
      refreshToken: res.refreshToken,
      accessExpiresAt: Date.now() + res.expiresIn * 1000,
      accessLifetimeMs: res.expiresIn * 1000,
      user: res.user
    }
    // A login replaces whatever was loaded; mark storage as loaded.
    this.#loaded ??= Promise.resolve()
    this.#auth = auth
    await this.#storage.save(auth)
    return auth
  }

  async #updateUser (user: User): Promise<void> {
    if (this.#auth === null) return
    this.#auth = { ...this.#auth, user }
    await this.#storage.save(this.#auth)
  }

  async #signOut (reason: SignOutReason): Promise<void> {
    const had = this.#auth !== null
    this.#auth = null
    await this.#storage.clear()
    for (const s of [...this.#sessions]) s.close()
    if (had) this.emit('signedOut', { reason })
  }

  /** One refresh at a time; concurrent callers share it. */
  #refresh (): Promise<StoredAuth> {
    if (this.#refreshing !== null) return this.#refreshing
    this.#refreshing = (async () => {
      await this.ready()
      const current = this.#auth
      if (current === null) throw new CoformError(0, 'not_signed_in', 'sign in first')
      let res: TokenResponse
      try {
        res = await this.request<TokenResponse>('POST', '/api/auth/refresh', {
          body: { refreshToken: current.refreshToken },
          auth: false
        })
      } catch (err) {
        if (err instanceof CoformError && err.status === 401 && SIGN_OUT_CODES.has(err.code) && this.#auth === current) {
          await this.#signOut(err.code as SignOutReason)
        }
        throw err
      }
      if (this.#auth !== current) {
        // Signed out or in again meanwhile: the new state wins.
        if (this.#auth === null) throw new CoformError(0, 'not_signed_in', 'signed out during refresh')
        return this.#auth
      }
      const auth = await this.#accept(res)
      this.emit('refreshed', auth.user)
      return auth
    })().finally(() => { this.#refreshing = null })
    return this.#refreshing
  }

  /** A valid access token, refreshed first if it is about to expire. */
  async #accessToken (): Promise<string> {
    await this.ready()
    const auth = this.#auth
    if (auth === null) throw new CoformError(0, 'not_signed_in', 'sign in first (register or login)')
    const left = auth.accessExpiresAt - Date.now()
    // Never more than a fifth of the token's life, so short lifetimes work.
    const margin = Math.min(this.#refreshMarginMs, this.#lifetimeMs(auth) / 5)
    if (left <= margin) return (await this.#refresh()).accessToken
    return auth.accessToken
  }

  #lifetimeMs (auth: StoredAuth): number {
    return auth.accessLifetimeMs ?? 15 * 60_000
  }

  // ------------------------------------------------------------ HTTP

  /**
   * Sends one API request and returns its JSON answer (`undefined` for
   * 204). Non-2xx answers throw {@link CoformError}. Used by the typed
   * helpers; public for routes the SDK does not wrap yet.
   */
  async request<T = unknown> (method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const auth = options.auth ?? true
    let token = auth ? await this.#accessToken() : undefined
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#send<T>(method, path, options, token)
      } catch (err) {
        if (!auth || !(err instanceof CoformError) || err.status !== 401) throw err
        if (err.code === 'token_expired' && attempt === 0) {
          token = (await this.#refresh()).accessToken
          continue
        }
        if (err.code === 'session_revoked') await this.#signOut('session_revoked')
        throw err
      }
    }
  }

  async #send<T> (method: string, path: string, options: RequestOptions, token: string | undefined): Promise<T> {
    let url = this.baseUrl + path
    if (options.query !== undefined) {
      const q = new URLSearchParams()
      for (const [k, v] of Object.entries(options.query)) {
        if (v !== undefined && v !== null) q.set(k, String(v))
      }
      const s = q.toString()
      if (s !== '') url += `?${s}`
    }
    const headers: Record<string, string> = { accept: 'application/json' }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    let body: string | undefined
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = options.json
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.body)
    }
    let res: Response
    try {
      res = await this.#fetch(url, { method, headers, body })
    } catch (err) {
      throw new CoformError(0, 'network_error', `${method} ${path} failed: ${(err as Error)?.message ?? String(err)}`, null, { cause: err })
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw new CoformError(0, 'network_error', `${method} ${path}: the answer was cut off`, null, { cause: err })
    }
    if (!res.ok) throw errorFromResponse(res.status, text, method, path)
    if (options.text === true) return text as T
    if (res.status === 204 || text === '') return undefined as T
    try {
      return JSON.parse(text) as T
    } catch {
      throw new CoformError(res.status, 'invalid_response', `${method} ${path}: the answer is not JSON`)
    }
  }

  // ------------------------------------------------------------ templates

  /**
   * Opens a template for live editing. Resolves once the document has
   * synced with the server (or, with `waitForSync: false`, once the first
   * connection attempt started). Rejects with {@link CoformError} when the
   * template can't be opened (404: missing or not yours).
   */
  async openTemplate (templateId: string, options: OpenTemplateOptions = {}): Promise<TemplateSession> {
    if (this.WebSocketImpl === undefined) {
      throw new CoformError(0, 'invalid_argument', 'no WebSocket class here; pass options.WebSocket (e.g. the `ws` package in Node)')
    }
    await this.ready()
    if (this.#auth === null) throw new CoformError(0, 'not_signed_in', 'sign in first (register or login)')
    const session = new TemplateSession(this, templateId, options)
    this.#sessions.add(session)
    session.on('closed', () => this.#sessions.delete(session))
    try {
      await session.start(options.waitForSync ?? true, options.syncTimeoutMs ?? 30_000)
    } catch (err) {
      session.close()
      throw err
    }
    return session
  }

  /** Closes every open template session and forgets listeners. */
  destroy (): void {
    for (const s of [...this.#sessions]) s.close()
    this.removeAllListeners()
  }
}

function enc (s: string): string {
  return encodeURIComponent(s)
}

function errorFromResponse (status: number, text: string, method: string, path: string): CoformError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown, message?: unknown, details?: unknown } }
    const e = body?.error
    if (e !== undefined && e !== null && typeof e.code === 'string') {
      const { code, message, details, ...rest } = e
      // Some errors carry their data beside the code (`secrets_required`:
      // `fields`; `invalid_config`: `field`): kept as the details when
      // there are none.
      const extra = Object.keys(rest).length > 0 ? rest : null
      return new CoformError(status, code, typeof message === 'string' ? message : code, details ?? extra)
    }
  } catch {}
  return new CoformError(status, status === 404 ? 'not_found' : 'http_error', `${method} ${path} answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`)
}
