/**
 * A live template: its Y.Doc kept in sync with the server, typed form
 * operations, presence, saved-state and per-user undo.
 *
 * # Connection
 *
 * The provider is y-websocket's `WebsocketProvider` (unmodified protocol),
 * but this session decides when to connect: every (re)connect first asks
 * the server for a fresh document token (`POST /api/templates/{id}/session`)
 * and puts it in the provider's `params`, then waits a jittered,
 * exponentially growing delay after failures, so that the clients of a
 * restarted server do not all come back in the same millisecond. A close
 * code in 4400–4499 (access revoked, template deleted) or a 404 for the
 * token ends the session for good (`closed` event).
 *
 * # Saved state
 *
 * The WebSocket class handed to the provider is a thin subclass of the
 * app's that counts outgoing update messages; the provider's message
 * handlers 100 and 101 read the server's acknowledgements (see
 * `save-state.ts`).
 *
 * @module
 */
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as decoding from 'lib0/decoding'

import type { CoformClient } from './client.js'
import { Emitter } from './emitter.js'
import { CoformError } from './errors.js'
import { isValidKey, keyBetween, keysBetween } from './fractional-index.js'
import {
  applyPatch, compareByParent, compareSiblings, effectiveParents, newComponentId, readComponent, setValue,
  type Component, type ComponentPatch, type MoveTarget, type NewComponent
} from './model.js'
import { SaveTracker, frameKind } from './save-state.js'
import type { Role } from './types.js'

/** Minimal shape of a WebSocket instance (browser `WebSocket` or the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number
  binaryType: string
  send(data: any): void
  close(code?: number, reason?: string): void
}

/** A WebSocket class: the browser's, or `ws` in Node. */
export type WebSocketClass = new (url: string, protocols?: string | string[]) => WebSocketLike

/** Server acknowledgement message types (Coform extension, `?acks=1`). */
export const MSG_SAVED = 100
export const MSG_REJECTED = 101
/** The server repaired what an update left invalid (Coform extension, `?acks=1`). */
export const MSG_REPAIRED = 102

/** One repair the server made to keep the form valid. */
export interface Repair {
  /** The component's id; absent for a `meta` entry. */
  component?: string
  /** The field, dotted (`properties.placeholder`, `meta.name`); empty when the whole component was removed. */
  field: string
  /** `restored` (its value before the edit), `defaulted` (the catalog's default), `removed`,
   *  `reparented` (moved to the top level), `idFixed`, `dropped` (the whole component). */
  action: 'restored' | 'defaulted' | 'removed' | 'reparented' | 'idFixed' | 'dropped'
  /** The problem, as the server's validator words it. */
  reason: string
}

/** `'saving'`: changes not yet stored; `'saved'`: everything sent is stored; `'offline'`: no connection. */
export type SaveState = 'saving' | 'saved' | 'offline'

/** Connection status of a session. */
export type SessionStatus = 'connecting' | 'connected' | 'offline' | 'closed'

export interface OpenTemplateOptions {
  /** Resolve `openTemplate` only once synced with the server (default true). */
  waitForSync?: boolean
  /** How long `openTemplate` waits for the first sync (default 30 s). */
  syncTimeoutMs?: number
  /**
   * Keep the document in IndexedDB (via `y-indexeddb`) so it opens and can
   * be edited offline; edits are sent when the connection is back. Only
   * where `indexedDB` exists (browsers); ignored elsewhere.
   */
  offline?: boolean
  /** Longest wait between reconnect attempts (default 10 s). */
  maxBackoffMs?: number
  /** First reconnect delay (default 250 ms; doubles per failed attempt, with jitter). */
  minBackoffMs?: number
  /** Edits closer together than this become one undo step (default 500 ms; 0: every operation is its own step). */
  undoCaptureTimeoutMs?: number
  /** Sync with other tabs of this browser through BroadcastChannel (default false). */
  crossTab?: boolean
  /** Use this Y.Doc instead of a new one. */
  doc?: Y.Doc
}

/** What changed in one transaction. */
export interface ChangeEvent {
  /** Components that appeared. */
  added: string[]
  /** Components whose fields changed (not added or removed in the same transaction). */
  updated: string[]
  /** Components that disappeared. */
  removed: string[]
  /** Meta keys that changed. */
  meta: string[]
  /** Per updated component, the dotted paths that changed (`label`, `properties.placeholder`, `position.x`, or `*` when replaced). */
  fields: Record<string, string[]>
  /** This session's own operation (also true for its undo/redo). */
  local: boolean
}

/** The caret of a person in a text field of a component. */
export interface Cursor {
  componentId: string
  field: string
  offset: number
}

/** Someone with the template open (one entry per connection). */
export interface Person {
  /** Awareness client id (one per open session). */
  clientId: number
  /** Account id (server-stamped; `null` only on a server with auth off). */
  userId: string | null
  name: string
  /** `#rrggbb` */
  color: string
  selection: string | null
  cursor: Cursor | null
  /** This session. */
  self: boolean
}

export interface PresenceEvent {
  added: Person[]
  updated: Person[]
  removed: Person[]
  /** Everyone here now. */
  people: Person[]
}

export interface SessionEvents {
  change: (event: ChangeEvent) => void
  presence: (event: PresenceEvent) => void
  saveState: (event: { state: SaveState, unsavedChanges: number }) => void
  status: (status: SessionStatus) => void
  /** Every time the document is in sync with the server after (re)connecting. */
  synced: () => void
  /** The server refused changes of this session (it is read-only). */
  rejected: (event: { changes: number }) => void
  /**
   * An update left the form invalid and the server repaired it (the repair
   * has already been applied here). `yours`: the update came from this
   * session; otherwise from someone else, or two edits that were each
   * valid clashed.
   */
  repaired: (event: { yours: boolean, repairs: Repair[] }) => void
  /** A reconnect attempt failed (it will be retried). */
  error: (error: CoformError) => void
  /** The session ended: `close()`, sign-out, or access lost (then `error` says why). */
  closed: (event: { reason: 'closed' | 'access_lost', error?: CoformError }) => void
}

/** Changes collected during one transaction, reported after it. */
interface PendingChanges {
  added: Set<string>
  updated: Map<string, Set<string>>
  removed: Set<string>
  meta: Set<string>
}

/** Where the local copy keeps the number of changes not yet stored. */
const PENDING_KEY = 'coform:unsavedChanges'

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d']

/** Errors after which reconnecting can't help. */
function isPermanent (err: unknown): boolean {
  if (!(err instanceof CoformError)) return false
  if (err.code === 'not_signed_in') return true
  return err.status === 401 || err.status === 403 || err.status === 404 || err.status === 410
}

/**
 * One open template. Get it from `client.openTemplate(id)`.
 *
 * Every operation runs in `doc.transact(fn, session)`, so the session is
 * the origin of its own edits: undo/redo only ever touches those.
 */
export class TemplateSession extends Emitter<SessionEvents> {
  readonly templateId: string
  readonly doc: Y.Doc
  readonly provider: WebsocketProvider
  readonly awareness: awarenessProtocol.Awareness
  /** Undo/redo of this session's own edits only. */
  readonly undoManager: Y.UndoManager
  /** Role on the template (from the latest document token). */
  role: Role | null = null

  readonly #client: CoformClient
  readonly #meta: Y.Map<unknown>
  readonly #components: Y.Map<Y.Map<unknown>>
  readonly #tracker = new SaveTracker()
  readonly #ownsDoc: boolean
  readonly #minBackoff: number
  readonly #maxBackoff: number
  readonly #offline: boolean
  #persistence: {
    destroy(): unknown
    whenSynced: Promise<unknown>
    get(key: string): Promise<unknown>
    set(key: string, value: unknown): Promise<unknown>
  } | null = null
  #status: SessionStatus = 'offline'
  #saveState: SaveState = 'offline'
  #unsaved = 0
  #wantConnected = true
  #closed = false
  #tokenInFlight = false
  #attempt = 0
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null
  #knownPeople = new Map<number, Person>()
  #pending: PendingChanges | null = null
  readonly #cleanup: Array<() => void> = []

  /** @internal use `client.openTemplate()` */
  constructor (client: CoformClient, templateId: string, options: OpenTemplateOptions = {}) {
    super()
    this.#client = client
    this.templateId = templateId
    this.#ownsDoc = options.doc === undefined
    this.doc = options.doc ?? new Y.Doc()
    this.#meta = this.doc.getMap('meta')
    this.#components = this.doc.getMap('components')
    this.#minBackoff = options.minBackoffMs ?? 250
    this.#maxBackoff = options.maxBackoffMs ?? 10_000
    this.#offline = options.offline === true && typeof (globalThis as { indexedDB?: unknown }).indexedDB !== 'undefined'

    const Base = client.WebSocketImpl
    if (Base === undefined) throw new CoformError(0, 'invalid_argument', 'no WebSocket class')
    this.provider = new WebsocketProvider(client.wsUrl, templateId, this.doc, {
      connect: false,
      params: { acks: '1' },
      WebSocketPolyfill: countingSocketClass(Base, this) as any,
      disableBc: options.crossTab !== true,
      maxBackoffTime: this.#maxBackoff
    })
    this.awareness = this.provider.awareness
    this.provider.messageHandlers[MSG_SAVED] = (_enc, dec) => {
      this.#tracker.saved(decoding.readVarUint(dec))
      this.#updateSaveState()
    }
    this.provider.messageHandlers[MSG_REPAIRED] = (_enc, dec) => {
      let notice: { yours?: unknown, repairs?: unknown }
      try {
        notice = JSON.parse(decoding.readVarString(dec))
      } catch {
        return
      }
      const repairs = Array.isArray(notice.repairs) ? notice.repairs as Repair[] : []
      this.emit('repaired', { yours: notice.yours === true, repairs })
    }
    this.provider.messageHandlers[MSG_REJECTED] = (_enc, dec) => {
      const changes = this.#tracker.refused(decoding.readVarUint(dec))
      // The server switched this connection to read-only (role changed).
      this.role = 'viewer'
      if (changes > 0) this.emit('rejected', { changes })
      this.#updateSaveState()
    }

    this.undoManager = new Y.UndoManager([this.#meta, this.#components], {
      trackedOrigins: new Set([this]),
      captureTimeout: options.undoCaptureTimeoutMs ?? 500
    })

    this.#wireProvider()
    this.#wireDocument()
    this.#wirePresence()
  }

  // ------------------------------------------------------------ lifecycle

  /** @internal first connection; called by `openTemplate`. */
  async start (waitForSync: boolean, timeoutMs: number): Promise<void> {
    if (this.#offline) {
      const { IndexeddbPersistence } = await import('y-indexeddb')
      const user = this.#client.user
      const persistence = new IndexeddbPersistence(`coform:${user?.id ?? 'anonymous'}:${this.templateId}`, this.doc)
      this.#persistence = persistence
      await persistence.whenSynced
      // Changes made before a reload and never stored are still pending:
      // the local copy remembers how many (they go in the next sync).
      const pending = await persistence.get(PENDING_KEY).catch(() => 0)
      if (typeof pending === 'number' && Number.isInteger(pending) && pending > 0) {
        this.#tracker.unsent += pending
        this.#updateSaveState()
      }
    }
    try {
      await this.#fetchTokenAndConnect(true)
    } catch (err) {
      // With a local copy the session works offline and keeps trying.
      if (this.#persistence !== null && !isPermanent(err)) {
        this.#scheduleReconnect()
        return
      }
      throw err
    }
    if (waitForSync) await this.whenSynced(timeoutMs)
  }

  /** Connection status. */
  get status (): SessionStatus {
    return this.#status
  }

  /** Is the document in sync with the server right now? */
  get synced (): boolean {
    return this.provider.synced
  }

  /** Save state; see {@link SaveState}. */
  get saveState (): SaveState {
    return this.#saveState
  }

  /** Local changes the server has not confirmed as stored. */
  get unsavedChanges (): number {
    return this.#unsaved
  }

  /** Changes the server refused (this session is read-only). */
  get rejectedChanges (): number {
    return this.#tracker.rejected
  }

  /** The session may not edit (viewer). */
  get readOnly (): boolean {
    return this.role === 'viewer'
  }

  /** Resolves when synced with the server. */
  whenSynced (timeoutMs = 30_000): Promise<void> {
    if (this.provider.synced) return Promise.resolve()
    return this.#waitFor('synced', () => this.provider.synced, timeoutMs, 'the first sync')
  }

  /** Resolves when every local change is stored on the server. */
  whenSaved (timeoutMs = 30_000): Promise<void> {
    if (this.#saveState === 'saved') return Promise.resolve()
    return this.#waitFor('saveState', () => this.#saveState === 'saved', timeoutMs, "the server's acknowledgement")
  }

  #waitFor (event: 'synced' | 'saveState', done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (err?: CoformError): void => {
        clearTimeout(timer)
        offEvent()
        offClosed()
        if (err) reject(err)
        else resolve()
      }
      const timer = setTimeout(() => finish(new CoformError(0, 'timeout', `timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs)
      const offEvent = this.on(event, () => { if (done()) finish() })
      const offClosed = this.on('closed', (e) => finish(e.error ?? new CoformError(0, 'session_closed', 'the session was closed')))
      if (this.#closed) finish(new CoformError(0, 'session_closed', 'the session was closed'))
    })
  }

  /** Goes offline on purpose (edits keep working locally and are sent on `connect()`). */
  disconnect (): void {
    this.#wantConnected = false
    this.#clearReconnect()
    this.provider.disconnect()
    this.#setStatus('offline')
  }

  /** Reconnects after `disconnect()`. */
  connect (): void {
    if (this.#closed) throw new CoformError(0, 'session_closed', 'the session was closed')
    this.#wantConnected = true
    this.#attempt = 0
    void this.#fetchTokenAndConnect(false).catch(() => {})
  }

  /** Leaves the template: presence disappears for others at once. Idempotent. */
  close (): void {
    this.#end('closed')
  }

  /** Same as {@link close}. */
  destroy (): void {
    this.close()
  }

  #end (reason: 'closed' | 'access_lost', error?: CoformError): void {
    if (this.#closed) return
    this.#closed = true
    this.#wantConnected = false
    this.#clearReconnect()
    for (const f of this.#cleanup) f()
    this.undoManager.destroy()
    this.provider.destroy()
    this.awareness.destroy()
    void this.#persistence?.destroy()
    if (this.#ownsDoc) this.doc.destroy()
    this.#setStatus('closed')
    this.emit('closed', error ? { reason, error } : { reason })
    this.removeAllListeners()
  }

  // ------------------------------------------------------------ connection

  async #fetchTokenAndConnect (first: boolean): Promise<void> {
    if (this.#closed || !this.#wantConnected || this.#tokenInFlight || this.provider.ws !== null) return
    this.#tokenInFlight = true
    this.#setStatus('connecting')
    let token
    try {
      token = await this.#client.templates.session(this.templateId)
    } catch (err) {
      this.#tokenInFlight = false
      const e = err instanceof CoformError ? err : new CoformError(0, 'network_error', String(err), null, { cause: err })
      if (first) {
        this.#setStatus('offline')
        throw e
      }
      if (isPermanent(e)) {
        this.#end('access_lost', e)
      } else {
        this.emit('error', e)
        this.#setStatus('offline')
        this.#scheduleReconnect()
      }
      return
    }
    this.#tokenInFlight = false
    if (this.#closed || !this.#wantConnected) return
    this.role = token.role
    this.provider.params = { ...this.provider.params, token: token.token, acks: '1' }
    this.provider.connect()
  }

  #scheduleReconnect (): void {
    if (this.#closed || !this.#wantConnected || this.#reconnectTimer !== null) return
    // Exponential backoff with "equal jitter": half fixed, half random.
    const ceiling = Math.min(this.#maxBackoff, this.#minBackoff * 2 ** this.#attempt)
    const delay = ceiling / 2 + Math.random() * (ceiling / 2)
    this.#attempt += 1
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null
      void this.#fetchTokenAndConnect(false)
    }, delay)
  }

  #clearReconnect (): void {
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
  }

  #wireProvider (): void {
    const p = this.provider
    const onStatus = ({ status }: { status: string }): void => {
      if (status === 'connected') this.#setStatus('connected')
      else if (status === 'connecting') this.#setStatus('connecting')
      this.#updateSaveState()
    }
    const onClose = (event: { code?: number, reason?: string } | null): void => {
      // Take reconnection over from the provider (fresh token, jitter).
      p.shouldConnect = false
      this.#tracker.connectionClosed()
      this.#setStatus(this.#closed ? 'closed' : 'offline')
      this.#updateSaveState()
      if (this.#closed || !this.#wantConnected) return
      const code = event?.code ?? 0
      if (code === 4401) {
        // The sign-in session ended (logout elsewhere, password change or
        // reset, session revoked). Asking the server confirms it and signs
        // the client out (`signedOut` with `session_revoked`).
        this.#end('access_lost', new CoformError(401, 'session_revoked',
          `your session has ended; sign in again${event?.reason ? ` (${event.reason})` : ''}`))
        this.#client.me().catch(() => {})
        return
      }
      if (code >= 4400 && code < 4500) {
        this.#end('access_lost', new CoformError(code === 4403 ? 403 : 0, 'access_revoked',
          `the server closed the template (${code}${event?.reason ? `: ${event.reason}` : ''})`))
        return
      }
      this.#scheduleReconnect()
    }
    const onSync = (synced: boolean): void => {
      if (!synced) return
      this.#attempt = 0
      this.emit('synced')
    }
    p.on('status', onStatus)
    p.on('connection-close', onClose as any)
    p.on('sync', onSync)
    this.#cleanup.push(() => {
      p.off('status', onStatus)
      p.off('connection-close', onClose as any)
      p.off('sync', onSync)
    })
  }

  /** @internal a socket was created by the provider. */
  socketCreated (): void {
    this.#tracker.connectionOpened()
  }

  /** @internal a frame is about to be sent on `socket`. */
  beforeSend (socket: WebSocketLike, data: unknown): void {
    if (socket !== this.provider.ws) return
    const kind = frameKind(data)
    if (kind === 'other') return
    this.#tracker.sent(kind)
    this.#updateSaveState()
  }

  #setStatus (status: SessionStatus): void {
    if (this.#status === status) return
    if (this.#status === 'closed') return
    this.#status = status
    this.emit('status', status)
  }

  #updateSaveState (): void {
    const connected = this.provider.wsconnected && !this.#closed
    const state: SaveState = !connected ? 'offline' : this.#tracker.allSaved ? 'saved' : 'saving'
    const unsaved = this.#tracker.unsavedChanges
    if (state === this.#saveState && unsaved === this.#unsaved) return
    if (unsaved !== this.#unsaved) this.#persistence?.set(PENDING_KEY, unsaved).catch(() => {})
    this.#saveState = state
    this.#unsaved = unsaved
    this.emit('saveState', { state, unsavedChanges: unsaved })
  }

  // ------------------------------------------------------------ document events

  #wireDocument (): void {
    const doc = this.doc
    const onUpdate = (_update: Uint8Array, origin: unknown): void => {
      if (origin === this.provider) return // from the server
      // Read back from the local copy: already counted when it was made.
      if (origin !== null && origin === this.#persistence) return
      // The provider sends an update only on an open, connected socket;
      // otherwise it waits for the next sync step 2.
      const ws = this.provider.ws
      const sendable = this.provider.wsconnected && ws !== null && ws.readyState === 1
      if (!sendable) this.#tracker.notSent()
      this.#updateSaveState()
    }
    doc.on('update', onUpdate)

    const pending = (): PendingChanges => {
      this.#pending ??= { added: new Set(), updated: new Map(), removed: new Set(), meta: new Set() }
      return this.#pending
    }
    const touch = (id: string, field: string): void => {
      const p = pending()
      let set = p.updated.get(id)
      if (set === undefined) p.updated.set(id, (set = new Set()))
      set.add(field)
    }
    const onComponents = (events: Array<Y.YEvent<any>>): void => {
      for (const ev of events) {
        if (ev.target === this.#components) {
          ev.changes.keys.forEach((change, key) => {
            if (change.action === 'add') pending().added.add(key)
            else if (change.action === 'delete') pending().removed.add(key)
            else touch(key, '*')
          })
          continue
        }
        const path = ev.path
        const id = path[0]
        if (typeof id !== 'string') continue
        const prefix = path.slice(1).join('.')
        if (ev instanceof Y.YMapEvent) {
          for (const key of ev.keysChanged) touch(id, prefix === '' ? String(key) : `${prefix}.${String(key)}`)
        } else {
          touch(id, prefix === '' ? '*' : prefix)
        }
      }
    }
    const onMeta = (events: Array<Y.YEvent<any>>): void => {
      for (const ev of events) {
        if (ev.target === this.#meta && ev instanceof Y.YMapEvent) {
          for (const key of ev.keysChanged) pending().meta.add(String(key))
        } else if (typeof ev.path[0] === 'string') {
          pending().meta.add(ev.path[0])
        }
      }
    }
    const onAfterTransaction = (tr: Y.Transaction): void => {
      const p = this.#pending
      if (p === null) return
      this.#pending = null
      const added = [...p.added].filter((id) => !p.removed.has(id) || this.#components.has(id))
      const removed = [...p.removed].filter((id) => !this.#components.has(id))
      const fields: Record<string, string[]> = {}
      for (const [id, set] of p.updated) {
        if (p.added.has(id) || p.removed.has(id) || !this.#components.has(id)) continue
        fields[id] = [...set].sort()
      }
      const local = tr.origin === this || tr.origin === this.undoManager
      this.emit('change', { added, updated: Object.keys(fields), removed, meta: [...p.meta], fields, local })
    }
    this.#components.observeDeep(onComponents)
    this.#meta.observeDeep(onMeta)
    doc.on('afterTransaction', onAfterTransaction)
    this.#cleanup.push(() => {
      doc.off('update', onUpdate)
      this.#components.unobserveDeep(onComponents)
      this.#meta.unobserveDeep(onMeta)
      doc.off('afterTransaction', onAfterTransaction)
    })
  }

  // ------------------------------------------------------------ presence

  #wirePresence (): void {
    const user = this.#client.user
    // The server replaces `user` with the account's own data for everyone
    // else; locally it is what this session shows itself as.
    this.awareness.setLocalState({
      user: user ? { id: user.id, name: user.name, color: user.color } : null,
      selection: null,
      cursor: null
    })
    for (const p of this.people()) this.#knownPeople.set(p.clientId, p)
    const onChange = ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }): void => {
      const now = new Map(this.people().map((p) => [p.clientId, p]))
      const pick = (ids: number[]): Person[] => ids.map((id) => now.get(id)).filter((p): p is Person => p !== undefined)
      const gone = removed.map((id) => this.#knownPeople.get(id)).filter((p): p is Person => p !== undefined)
      for (const id of removed) this.#knownPeople.delete(id)
      for (const [id, p] of now) this.#knownPeople.set(id, p)
      this.emit('presence', { added: pick(added), updated: pick(updated), removed: gone, people: [...now.values()] })
    }
    this.awareness.on('change', onChange)
    this.#cleanup.push(() => this.awareness.off('change', onChange))
  }

  /** Who has the template open (this session included), with names and colours. */
  people (): Person[] {
    const out: Person[] = []
    for (const [clientId, state] of this.awareness.getStates()) {
      if (state === null || typeof state !== 'object') continue
      const self = clientId === this.doc.clientID
      const account = self ? this.#client.user : null
      const u = (state as { user?: { id?: unknown, name?: unknown, color?: unknown } }).user
      const name = account?.name ?? (typeof u?.name === 'string' ? u.name : 'Anonymous')
      const color = account?.color ?? (typeof u?.color === 'string' ? u.color : PALETTE[clientId % PALETTE.length]!)
      const userId = account?.id ?? (typeof u?.id === 'string' ? u.id : null)
      const sel = (state as { selection?: unknown }).selection
      const cur = (state as { cursor?: unknown }).cursor
      out.push({
        clientId,
        userId,
        name,
        color,
        selection: typeof sel === 'string' ? sel : null,
        cursor: isCursor(cur) ? cur : null,
        self
      })
    }
    return out.sort((a, b) => (a.self === b.self ? a.clientId - b.clientId : a.self ? -1 : 1))
  }

  /** Shows which component this session has selected (`null`: none). */
  setSelection (componentId: string | null): void {
    this.awareness.setLocalStateField('selection', componentId)
  }

  /** Shows this session's caret in a field of a component (`null`: none). */
  setCursor (cursor: Cursor | null): void {
    this.awareness.setLocalStateField('cursor', cursor === null ? null : { ...cursor })
  }

  // ------------------------------------------------------------ reading

  /** Every meta value as plain JSON. */
  meta (): Record<string, unknown> {
    return this.#meta.toJSON()
  }

  /** One meta value as plain JSON. */
  getMeta (key: string): unknown {
    const v = this.#meta.get(key)
    return v instanceof Y.AbstractType ? v.toJSON() : v
  }

  /** One component, or `undefined`. */
  component (id: string): Component | undefined {
    const m = this.#components.get(id)
    return m instanceof Y.Map ? readComponent(id, m) : undefined
  }

  /** Every component, ordered by parent (top level first), then index, then id. */
  components (): Component[] {
    const out: Component[] = []
    this.#components.forEach((m, id) => {
      if (m instanceof Y.Map) out.push(readComponent(id, m))
    })
    return out.sort(compareByParent)
  }

  /**
   * The components displayed directly in `parent` (`null`: top level), in
   * display order. A component whose parent is missing, not a section, or
   * part of a loop of sections is displayed at the top level (as the
   * server renders it).
   */
  children (parent: string | null): Component[] {
    const all = this.components()
    const shown = effectiveParents(all)
    return all.filter((c) => shown.get(c.id) === parent).sort(compareSiblings)
  }

  /** The section `id` is displayed in (`null`: top level); see {@link children}. */
  displayParent (id: string): string | null {
    return effectiveParents(this.components()).get(id) ?? null
  }

  /** Display order: depth first, each section followed by its contents, with depth. */
  tree (): Array<Component & { depth: number }> {
    const all = this.components()
    const shown = effectiveParents(all)
    const kids = new Map<string | null, Component[]>()
    for (const c of all) {
      const p = shown.get(c.id) ?? null
      let list = kids.get(p)
      if (list === undefined) kids.set(p, (list = []))
      list.push(c)
    }
    const out: Array<Component & { depth: number }> = []
    const walk = (parent: string | null, depth: number): void => {
      for (const c of (kids.get(parent) ?? []).sort(compareSiblings)) {
        out.push({ ...c, depth })
        walk(c.id, depth + 1)
      }
    }
    walk(null, 0)
    return out
  }

  /** The document as `{ meta, components }` JSON (what the REST API shows). */
  toJSON (): { meta: Record<string, unknown>, components: Record<string, unknown> } {
    return { meta: this.#meta.toJSON(), components: this.#components.toJSON() }
  }

  // ------------------------------------------------------------ editing

  /**
   * Runs `fn` as one transaction of this session: one update on the wire,
   * one undo step. Operations called inside join it.
   */
  transact<T> (fn: () => T): T {
    this.#assertWritable()
    let result!: T
    this.doc.transact(() => { result = fn() }, this)
    return result
  }

  /** Sets a meta value (`undefined` removes it). */
  setMeta (key: string, value: unknown): void {
    this.transact(() => setValue(this.#meta, key, value))
  }

  /** Adds a component; returns its id. */
  addComponent (spec: NewComponent): string {
    this.#assertWritable()
    if (spec === null || typeof spec !== 'object' || typeof spec.type !== 'string' || spec.type === '') {
      throw new CoformError(0, 'invalid_argument', 'a component needs a type')
    }
    const id = spec.id ?? newComponentId()
    if (typeof id !== 'string' || id === '') throw new CoformError(0, 'invalid_argument', 'component ids are non-empty strings')
    if (this.#components.has(id)) throw new CoformError(0, 'invalid_argument', `component ${id} already exists`)
    let parent = spec.parent ?? null
    const ref = spec.before ?? spec.after
    if (ref !== undefined && spec.parent === undefined) parent = this.#displayParentOf(ref)
    this.#checkParent(parent, id)
    const { index, repairs } = this.#indexFor(parent, spec, id)
    this.transact(() => {
      this.#repair(repairs)
      const m = new Y.Map<unknown>()
      this.#components.set(id, m)
      m.set('id', id)
      m.set('type', spec.type)
      m.set('label', spec.label ?? '')
      m.set('parent', parent)
      m.set('index', index)
      for (const key of ['properties', 'position', 'validation'] as const) {
        const nested = new Y.Map<unknown>()
        m.set(key, nested)
        for (const [k, v] of Object.entries(spec[key] ?? {})) if (v !== undefined) nested.set(k, v)
      }
      const styling = new Y.Map<unknown>()
      m.set('styling', styling)
      const { customStyles, ...rest } = spec.styling ?? {}
      for (const [k, v] of Object.entries(rest)) if (v !== undefined) styling.set(k, v)
      const custom = new Y.Map<unknown>()
      styling.set('customStyles', custom)
      for (const [k, v] of Object.entries(customStyles ?? {})) if (v !== undefined) custom.set(k, v)
    })
    return id
  }

  /**
   * Changes a component. Nested maps (`properties`, `position`,
   * `validation`, `styling`, `styling.customStyles`) are edited key by key;
   * `undefined` removes a key. Use {@link moveComponent} for `parent`/`index`.
   */
  updateComponent (id: string, patch: ComponentPatch): void {
    this.#assertWritable()
    const m = this.#requireMap(id)
    this.transact(() => applyPatch(m, patch))
  }

  /**
   * Moves a component: into another section (`parent`), and/or right
   * before or after a sibling; with neither `before` nor `after` it goes
   * to the end of its (new) parent. Only its own `parent` and `index`
   * fields change, so concurrent moves of one component end with it in
   * exactly one place (the last writer's).
   */
  moveComponent (id: string, target: MoveTarget): void {
    this.#assertWritable()
    const comp = this.#require(id)
    if (target.before !== undefined && target.after !== undefined) {
      throw new CoformError(0, 'invalid_argument', 'give before or after, not both')
    }
    const ref = target.before ?? target.after
    if (ref === id) throw new CoformError(0, 'invalid_argument', 'a component cannot be placed next to itself')
    let parent = target.parent === undefined ? comp.parent : target.parent
    if (ref !== undefined) {
      const refParent = this.#displayParentOf(ref)
      if (target.parent !== undefined && target.parent !== refParent) {
        throw new CoformError(0, 'invalid_argument', `${ref} is not in ${String(target.parent)}`)
      }
      parent = refParent
    }
    this.#checkParent(parent, id)
    const { index, repairs } = this.#indexFor(parent, target, id)
    const m = this.#requireMap(id)
    this.transact(() => {
      this.#repair(repairs)
      if (comp.parent !== parent) m.set('parent', parent)
      m.set('index', index)
    })
  }

  /**
   * Removes a component (with everything inside it, for a section, unless
   * `withChildren` is false). Returns false if it was not there.
   */
  removeComponent (id: string, { withChildren = true }: { withChildren?: boolean } = {}): boolean {
    this.#assertWritable()
    if (!this.#components.has(id)) return false
    const doomed = new Set([id])
    if (withChildren) {
      const all = this.components()
      let grew = true
      while (grew) {
        grew = false
        for (const c of all) {
          if (c.parent !== null && doomed.has(c.parent) && !doomed.has(c.id)) {
            doomed.add(c.id)
            grew = true
          }
        }
      }
    }
    this.transact(() => { for (const d of doomed) this.#components.delete(d) })
    return true
  }

  /** Undoes this session's last edit (never anyone else's). Returns false if there was none. */
  undo (): boolean {
    return this.undoManager.undo() !== null
  }

  /** Redoes what {@link undo} undid. */
  redo (): boolean {
    return this.undoManager.redo() !== null
  }

  canUndo (): boolean {
    return this.undoManager.canUndo()
  }

  canRedo (): boolean {
    return this.undoManager.canRedo()
  }

  /** Ends the current undo step: the next edit starts a new one. */
  stopCapturing (): void {
    this.undoManager.stopCapturing()
  }

  #assertWritable (): void {
    if (this.#closed) throw new CoformError(0, 'session_closed', 'the session was closed')
    if (this.readOnly) throw new CoformError(0, 'read_only', 'this session may not edit the template (viewer)')
  }

  #requireMap (id: string): Y.Map<unknown> {
    const m = this.#components.get(id)
    if (!(m instanceof Y.Map)) throw new CoformError(0, 'invalid_argument', `no component ${id}`)
    return m
  }

  #require (id: string): Component {
    const c = this.component(id)
    if (c === undefined) throw new CoformError(0, 'invalid_argument', `no component ${id}`)
    return c
  }

  /** Where `id` is displayed; throws if there is no such component. */
  #displayParentOf (id: string): string | null {
    this.#require(id)
    return this.displayParent(id)
  }

  /** `parent` must be an existing section that is not `id` nor inside it. */
  #checkParent (parent: string | null, id: string): void {
    if (parent === null) return
    const p = this.component(parent)
    if (p === undefined) throw new CoformError(0, 'invalid_argument', `no section ${parent}`)
    if (p.type !== 'section') throw new CoformError(0, 'invalid_argument', `${parent} is a ${p.type}, not a section`)
    const seen = new Set<string>()
    for (let cur: string | null = parent; cur !== null && !seen.has(cur); cur = this.component(cur)?.parent ?? null) {
      if (cur === id) throw new CoformError(0, 'invalid_argument', `${id} cannot be moved into itself`)
      seen.add(cur)
    }
  }

  /**
   * A fractional index for `moving` in `parent`, before/after a sibling or
   * at the end. Siblings whose index is not a well-formed key (written by
   * another tool, e.g. `a0`) cannot be placed between; then every sibling
   * gets a fresh key in its current display order, returned as `repairs`
   * to write in the same transaction.
   */
  #indexFor (parent: string | null, place: { before?: string, after?: string }, moving: string): { index: string, repairs: Array<[string, string]> } {
    let sibs = this.children(parent).filter((c) => c.id !== moving)
    const repairs: Array<[string, string]> = []
    if (sibs.some((c) => !isValidKey(c.index))) {
      const keys = keysBetween(null, null, sibs.length)
      sibs = sibs.map((c, i) => {
        repairs.push([c.id, keys[i]!])
        return { ...c, index: keys[i]! }
      })
    }
    let lo: string | null = null
    let hi: string | null = null
    if (place.after !== undefined) {
      const i = sibs.findIndex((c) => c.id === place.after)
      if (i < 0) throw new CoformError(0, 'invalid_argument', `${place.after} is not in ${String(parent)}`)
      lo = sibs[i]!.index
      hi = sibs[i + 1]?.index ?? null
    } else if (place.before !== undefined) {
      const i = sibs.findIndex((c) => c.id === place.before)
      if (i < 0) throw new CoformError(0, 'invalid_argument', `${place.before} is not in ${String(parent)}`)
      lo = sibs[i - 1]?.index ?? null
      hi = sibs[i]!.index
    } else {
      lo = sibs[sibs.length - 1]?.index ?? null
    }
    if (lo !== null && hi !== null && lo >= hi) {
      // Two siblings share an index (concurrent inserts): place it just
      // after the group instead.
      hi = sibs.find((c) => c.index > lo!)?.index ?? null
    }
    return { index: keyBetween(lo, hi), repairs }
  }

  /** Writes the sibling indexes that {@link #indexFor} re-keyed. */
  #repair (repairs: Array<[string, string]>): void {
    for (const [id, key] of repairs) this.#requireMap(id).set('index', key)
  }
}

function isCursor (v: unknown): v is Cursor {
  if (v === null || typeof v !== 'object') return false
  const c = v as Record<string, unknown>
  return typeof c.componentId === 'string' && typeof c.field === 'string' && typeof c.offset === 'number'
}

/**
 * A subclass of the app's WebSocket class that tells the session about
 * every socket the provider opens and every frame it sends.
 */
function countingSocketClass (Base: WebSocketClass, session: TemplateSession): WebSocketClass {
  const B = Base as unknown as new (url: string, protocols?: string | string[]) => WebSocketLike
  return class CoformSocket extends (B as any) {
    constructor (url: string, protocols?: string | string[]) {
      super(url, protocols)
      session.socketCreated()
    }

    send (data: unknown, ...rest: unknown[]): void {
      session.beforeSend(this as unknown as WebSocketLike, data)
      super.send(data, ...rest)
    }
  } as unknown as WebSocketClass
}
