// Shared helpers for the Coform end-to-end tests.
//
// Every test file starts its own `coform serve` process on a fresh data
// directory, talks to it with the stock Yjs client stack (yjs, y-websocket,
// y-protocols over `ws`) and stops it with SIGTERM when done.
//
// Synchronisation rule: nothing here sleeps to "let things settle". Helpers
// either wait for an event or poll a condition until a bounded deadline, and
// a missed deadline fails with a message that says what was awaited.
//
// Test files import everything from here. This file holds the server fixture,
// the suite hooks (`serverSuite`) and the client registry; it re-exports
// support/wait.js (waiting), support/protocol.js (y-websocket messages and
// raw sockets) and support/accounts.js (REST set-up with auth on).

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { before, after, afterEach } from 'node:test'
import { fileURLToPath } from 'node:url'

import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as awarenessProtocol from 'y-protocols/awareness'

import { DEFAULT_TIMEOUT_MS, TimeoutError, waitForSynced, waitUntil } from './support/wait.js'
import { openRawSocket } from './support/protocol.js'

export { Y, WebSocket, WebsocketProvider, awarenessProtocol }
export * from './support/wait.js'
export * from './support/protocol.js'
export * from './support/accounts.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
export const REPO_ROOT = path.resolve(HERE, '..', '..')
export const COFORM_BIN = process.env.COFORM_BIN
  ? path.resolve(process.env.COFORM_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', process.platform === 'win32' ? 'coform.exe' : 'coform')

/** How long the server may take to print its listening line. */
const STARTUP_TIMEOUT_MS = 30000
/** How long the server may take to exit after SIGTERM. */
const SHUTDOWN_TIMEOUT_MS = 10000
/** How much stderr to keep per server fixture (the tail is what matters). */
const MAX_LOG_CHARS = 256 * 1024

const LISTENING_RE = /^coform listening on http:\/\/127\.0\.0\.1:(\d+)\s*$/

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

/** Recursively sorts object keys so that equal content has equal JSON. */
function canonical (value) {
  if (Array.isArray(value)) return value.map(canonical)
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]))
  }
  return value
}

/**
 * The shared types every test uses, by convention: Y.Text 'text', Y.Map
 * 'map' and Y.Array 'list'. (A replica only knows a root type's kind once it
 * has been asked for it, so snapshots always ask for these three.)
 */
export const ROOT_TYPES = { text: 'text', map: 'map', list: 'list' }

/**
 * Snapshot of a doc's content with sorted keys (Y.Map key order depends on
 * the order in which a replica learned about entries, so it is not compared).
 */
export function docSnapshot (doc) {
  return canonical({
    text: doc.getText(ROOT_TYPES.text).toString(),
    map: doc.getMap(ROOT_TYPES.map).toJSON(),
    list: doc.getArray(ROOT_TYPES.list).toJSON()
  })
}

/** Short description of a doc for timeout messages. */
export function docSummary (doc) {
  const text = doc.getText(ROOT_TYPES.text)
  return {
    clientID: doc.clientID,
    stateVector: Object.fromEntries(Y.decodeStateVector(Y.encodeStateVector(doc))),
    text: `(${text.length} chars) ${JSON.stringify(text.toString().slice(0, 80))}`,
    mapSize: doc.getMap(ROOT_TYPES.map).size,
    listLength: doc.getArray(ROOT_TYPES.list).length
  }
}

const bytesEqual = (a, b) => a.length === b.length && a.every((v, i) => v === b[i])

/**
 * Waits until every doc has the same state vector and the same content, and
 * (optionally) `check(doc)` holds for each.
 *
 * @param {Y.Doc[]} docs
 * @param {{ timeoutMs?: number, what?: string, check?: (doc: Y.Doc) => boolean }} [opts]
 */
export async function waitForConvergence (docs, { timeoutMs = DEFAULT_TIMEOUT_MS, what = 'documents to converge', check } = {}) {
  await waitUntil(() => {
    const sv0 = Y.encodeStateVector(docs[0])
    const json0 = JSON.stringify(docSnapshot(docs[0]))
    return docs.every((d) =>
      bytesEqual(Y.encodeStateVector(d), sv0) &&
      JSON.stringify(docSnapshot(d)) === json0 &&
      (check ? check(d) : true))
  }, {
    timeoutMs,
    what,
    detail: () => docs.map(docSummary)
  })
}

// ---------------------------------------------------------------------------
// Names and temp dirs
// ---------------------------------------------------------------------------

let nameCounter = 0
/** A room name that no other test (or earlier run) uses. */
export function uniqueName (prefix = 'doc') {
  nameCounter += 1
  return `${prefix}-${process.pid}-${nameCounter}-${Math.random().toString(36).slice(2, 8)}`
}

export function makeTempDir (prefix = 'coform-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

// ---------------------------------------------------------------------------
// Server fixture
// ---------------------------------------------------------------------------

/** Fails (never skips) when the binary is missing. */
export function assertBinaryPresent () {
  let stat
  try {
    stat = fs.statSync(COFORM_BIN)
  } catch {
    throw new Error(
      `coform binary not found at ${COFORM_BIN}.\n` +
      'Build it first by running `cargo build` in the repository root ' +
      '(or point COFORM_BIN at an existing coform binary).'
    )
  }
  if (!stat.isFile()) throw new Error(`COFORM_BIN (${COFORM_BIN}) is not a file; run \`cargo build\` in the repository root.`)
  try {
    fs.accessSync(COFORM_BIN, fs.constants.X_OK)
  } catch {
    throw new Error(`coform binary at ${COFORM_BIN} is not executable; run \`cargo build\` in the repository root.`)
  }
}

/**
 * One logical Coform server: a data directory plus the process currently
 * serving it. `restart()` stops the process and starts a new one on the same
 * data directory (the port changes; `wsUrl`/`httpUrl` follow it).
 */
export class CoformServer {
  /**
   * @param {{ roomGrace?: string, maxFrameBytes?: number, extraArgs?: string[], env?: Record<string,string>, dataDir?: string, auth?: boolean }} [opts]
   *   `auth: true` runs with accounts and tokens (the default is `--auth off`).
   */
  constructor ({ roomGrace, maxFrameBytes, extraArgs = [], env = {}, dataDir, auth = false } = {}) {
    this.auth = auth
    this.roomGrace = roomGrace
    this.maxFrameBytes = maxFrameBytes
    this.extraArgs = extraArgs
    this.env = env
    this.ownsDataDir = dataDir === undefined
    this.dataDir = dataDir
    this.child = null
    this.port = null
    this.runs = 0
    this.log = ''
    this.stdoutLines = []
    this.unexpectedExit = null
    this._killOnExit = null
    this.setupError = null
  }

  get httpUrl () {
    this._assertRunning()
    return `http://127.0.0.1:${this.port}`
  }

  /** Base URL for WebsocketProvider: the provider appends `/${docName}`. */
  get wsUrl () {
    this._assertRunning()
    return `ws://127.0.0.1:${this.port}/collab`
  }

  /** Full WebSocket URL of one room. */
  roomUrl (docName) {
    return `${this.wsUrl}/${encodeURIComponent(docName)}`
  }

  get pid () {
    return this.child?.pid
  }

  get running () {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null
  }

  _assertRunning () {
    if (this.child === null) throw new Error('coform server is not running')
  }

  _appendLog (text) {
    this.log += text
    if (this.log.length > MAX_LOG_CHARS) this.log = this.log.slice(this.log.length - MAX_LOG_CHARS)
  }

  /** The captured stderr (all runs of this fixture), trimmed to its tail. */
  logs () {
    return this.log
  }

  args () {
    const args = ['serve', '--auth', this.auth ? 'on' : 'off', '--bind', '127.0.0.1:0', '--data-dir', this.dataDir]
    if (this.roomGrace !== undefined) args.push('--room-grace', String(this.roomGrace))
    if (this.maxFrameBytes !== undefined) args.push('--max-frame-bytes', String(this.maxFrameBytes))
    return args.concat(this.extraArgs)
  }

  async start () {
    if (this.child !== null) throw new Error('coform server already started')
    assertBinaryPresent()
    if (this.dataDir === undefined) this.dataDir = makeTempDir()
    this.runs += 1
    this.unexpectedExit = null
    const args = this.args()
    this._appendLog(`\n===== run ${this.runs}: ${path.basename(COFORM_BIN)} ${args.join(' ')} =====\n`)

    // Settings come from the command line only: drop COFORM_* variables of
    // the calling environment (except the log ones) so that they cannot
    // change what is being tested.
    const env = Object.fromEntries(Object.entries(process.env)
      .filter(([k]) => !k.startsWith('COFORM_') || k.startsWith('COFORM_LOG')))
    const child = spawn(COFORM_BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env, ...this.env }
    })
    this.child = child
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk) => this._appendLog(chunk))

    // Never leave a server behind if the test process dies; kill only our own child.
    this._killOnExit = () => { try { child.kill('SIGKILL') } catch {} }
    process.once('exit', this._killOnExit)

    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }))
      // A failed spawn may report only an error, never an exit.
      child.once('error', (error) => resolve({ code: null, signal: null, error }))
    })
    this._exited = exited
    exited.then(({ code, signal }) => {
      if (this.child === child && !this._stopping) {
        this.unexpectedExit = { code, signal }
        this._appendLog(`\n===== coform exited unexpectedly: code=${code} signal=${signal} =====\n`)
      }
    })

    const lines = readline.createInterface({ input: child.stdout, crlfDelay: Infinity })
    const listening = new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        this.stdoutLines.push(line)
        const m = LISTENING_RE.exec(line)
        if (m) resolve(Number(m[1]))
      })
      exited.then(({ code, signal, error }) => reject(error ? new Error(`failed to spawn ${COFORM_BIN}: ${error.message}`) : new Error(
        `coform exited before printing its listening line (code=${code}, signal=${signal}).\n` +
        `stdout: ${JSON.stringify(this.stdoutLines)}\n--- stderr ---\n${this.logs().slice(-8000)}`)))
    })
    let timer
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(
        `coform did not print 'coform listening on http://127.0.0.1:PORT' within ${STARTUP_TIMEOUT_MS} ms.\n` +
        `stdout so far: ${JSON.stringify(this.stdoutLines)}\n--- stderr ---\n${this.logs().slice(-8000)}`)), STARTUP_TIMEOUT_MS)
    })
    try {
      this.port = await Promise.race([listening, timeout])
    } catch (err) {
      await this._kill()
      throw err
    } finally {
      clearTimeout(timer)
    }
    return this
  }

  async _kill () {
    const child = this.child
    if (child === null) return
    this._stopping = true
    if (this.running) child.kill('SIGKILL')
    await this._exited
    this._cleanupChild()
  }

  _cleanupChild () {
    if (this._killOnExit) process.removeListener('exit', this._killOnExit)
    this._killOnExit = null
    this.child = null
    this.port = null
    this._stopping = false
  }

  /**
   * Graceful stop: SIGTERM to our own child, then wait for it to exit.
   * Fails if it does not exit in time or exits unsuccessfully.
   */
  async stop () {
    const child = this.child
    if (child === null) return null
    this._stopping = true
    if (this.running) child.kill('SIGTERM')
    let timer
    const result = await Promise.race([
      this._exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve(null), SHUTDOWN_TIMEOUT_MS) })
    ])
    clearTimeout(timer)
    if (result === null) {
      child.kill('SIGKILL')
      await this._exited
      this._cleanupChild()
      throw new Error(`coform (pid ${child.pid}) did not exit within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM\n--- stderr ---\n${this.logs().slice(-8000)}`)
    }
    this._cleanupChild()
    const unexpected = this.unexpectedExit
    if (unexpected) {
      throw new Error(`coform had already exited on its own (code=${unexpected.code}, signal=${unexpected.signal})\n--- stderr ---\n${this.logs().slice(-8000)}`)
    }
    if (result.code !== 0) {
      throw new Error(`coform did not shut down cleanly on SIGTERM: code=${result.code}, signal=${result.signal}\n--- stderr ---\n${this.logs().slice(-8000)}`)
    }
    return result
  }

  /** Hard kill (SIGKILL) of our own child, e.g. to check durability. */
  async kill () {
    await this._kill()
  }

  /** Stops the process and starts a new one on the same data directory. */
  async restart () {
    await this.stop()
    return this.start()
  }

  /** Stops the server (if running) and removes its temp data dir. */
  async dispose () {
    try {
      if (this.child !== null) await this.stop()
    } finally {
      if (this.ownsDataDir && this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true })
    }
  }

  /**
   * A JSON request to the REST API: `{ status, json }`.
   * @param {string} method
   * @param {string} pathname
   * @param {{ token?: string, body?: any }} [opts]
   */
  async api (method, pathname, { token, body } = {}) {
    const headers = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${this.httpUrl}${pathname}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await res.text()
    let json = null
    try { json = JSON.parse(text) } catch {}
    return { status: res.status, json, text }
  }

  /**
   * A REST call that must answer `status`; returns the JSON body.
   * @param {number} status
   * @param {string} method
   * @param {string} pathname
   * @param {{ token?: string, body?: any }} [opts]
   */
  async apiExpect (status, method, pathname, opts) {
    const r = await this.api(method, pathname, opts)
    assert.equal(r.status, status, `${method} ${pathname}: ${r.text}`)
    return r.json
  }

  /** Resident memory of the server process, in bytes (Linux /proc). */
  rssBytes () {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
    if (!m) throw new Error(`no VmRSS in /proc/${this.pid}/status`)
    return Number(m[1]) * 1024
  }

  /** GET a path on the HTTP port. */
  async get (pathname) {
    const res = await fetch(`${this.httpUrl}${pathname}`)
    const text = await res.text()
    return { status: res.status, text, headers: res.headers }
  }

  /**
   * Reads one unlabelled sample from /metrics (Prometheus text format).
   * Fails if the metric is not exposed.
   */
  async metric (name) {
    const res = await this.get('/metrics')
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
    for (const line of res.text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
      if (m && m[1] === name && !m[2]) return Number(m[3])
    }
    throw new Error(`metric ${name} not found in /metrics`)
  }

  /** Asserts the process is alive and /healthz answers 200. */
  async assertHealthy () {
    if (this.unexpectedExit) {
      throw new Error(`coform exited unexpectedly (code=${this.unexpectedExit.code}, signal=${this.unexpectedExit.signal})`)
    }
    if (!this.running) throw new Error('coform is not running')
    let res
    try {
      res = await this.get('/healthz')
    } catch (err) {
      throw new Error(`GET /healthz failed: ${err.cause?.message ?? err.message} (process running: ${this.running})`)
    }
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status}: ${res.text}`)
  }

  /**
   * For a suite's `before` hook: starts the server and runs `setup`. A
   * failure is kept and rethrown by every `guard`ed test, so that a missing
   * binary or a broken start makes each test fail (not merely be cancelled).
   */
  async startForSuite (setup) {
    this.setupError = null
    try {
      await this.start()
      if (setup) await setup()
    } catch (err) {
      this.setupError = err
    }
  }

  /**
   * Wraps a test body so that a failure carries the tail of the server's
   * stderr, which is usually what explains it.
   */
  guard (fn) {
    return async (t) => {
      if (this.setupError) {
        const err = this.setupError
        const tail = this.logs().slice(-8000)
        throw new Error(`suite setup failed: ${err && err.message ? err.message : String(err)}` +
          (tail.trim() ? `\n\n--- coform stderr (tail) ---\n${tail}\n--- end of coform stderr ---` : ''))
      }
      try {
        return await fn(t)
      } catch (err) {
        const tail = this.logs().slice(-12000)
        const message = err && err.message ? err.message : String(err)
        const wrapped = new Error(`${message}\n\n--- coform stderr (tail) ---\n${tail || '(empty)'}\n--- end of coform stderr ---`)
        const frames = err && typeof err.stack === 'string' ? err.stack.split('\n').filter((l) => /^\s+at /.test(l)) : []
        wrapped.stack = `${wrapped.name}: ${wrapped.message}\n${frames.join('\n')}`
        throw wrapped
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/**
 * Keeps track of the providers/docs/raw sockets a test creates so that they
 * can all be torn down in afterEach.
 */
export class Clients {
  /** @param {CoformServer} server */
  constructor (server) {
    this.server = server
    this.providers = new Set()
    this.docs = new Set()
    this.sockets = new Set()
  }

  /**
   * Creates a WebsocketProvider for `docName` against the server's current port.
   * BroadcastChannel is disabled: clients in one Node process would otherwise
   * sync with each other directly and hide what the server does.
   *
   * @param {string} docName
   * @param {{ doc?: Y.Doc, connect?: boolean, awareness?: awarenessProtocol.Awareness, url?: string, params?: Record<string,string> }} [opts]
   *   `params` go into the query string (e.g. `{ token }` with auth on).
   */
  provider (docName, { doc, connect = true, awareness, url, params } = {}) {
    const ydoc = doc ?? new Y.Doc()
    this.docs.add(ydoc)
    const opts = { WebSocketPolyfill: WebSocket, disableBc: true, connect, maxBackoffTime: 1000 }
    if (awareness) opts.awareness = awareness
    if (params) opts.params = params
    const provider = new WebsocketProvider(url ?? this.server.wsUrl, docName, ydoc, opts)
    this.providers.add(provider)
    return provider
  }

  /** Creates a provider and waits until it has synced. */
  async synced (docName, opts = {}) {
    const provider = this.provider(docName, opts)
    await waitForSynced(provider, { timeoutMs: opts.timeoutMs })
    return provider
  }

  /** Opens `count` providers on one room at once and waits until all have synced. */
  syncedAll (docName, count, opts = {}) {
    return Promise.all(Array.from({ length: count }, () => this.synced(docName, opts)))
  }

  /** Destroys a provider and its awareness (which otherwise keeps a timer alive). */
  destroyProvider (provider) {
    if (!this.providers.has(provider)) return
    this.providers.delete(provider)
    provider.destroy()
    provider.awareness.destroy()
  }

  /**
   * Opens a raw WebSocket to a room (for protocol-level tests).
   * @param {string} docName
   */
  async rawSocket (docName, opts) {
    const raw = await openRawSocket(this.server.roomUrl(docName), opts)
    this.sockets.add(raw)
    return raw
  }

  async destroyAll () {
    for (const provider of this.providers) {
      try { provider.destroy() } catch {}
      try { provider.awareness.destroy() } catch {}
    }
    this.providers.clear()
    for (const doc of this.docs) {
      try { doc.destroy() } catch {}
    }
    this.docs.clear()
    for (const raw of this.sockets) raw.terminate()
    this.sockets.clear()
  }
}

/**
 * For a `describe` block: one server for the whole suite and the clients its
 * tests open. Registers the hooks: `before` starts the server and runs
 * `setup` (see `startForSuite`), `afterEach` closes the clients a test opened
 * (unless `keepClients`, for suites whose tests share clients made in
 * `setup`), and `after` closes every client and disposes of the server.
 *
 * @param {CoformServer | ConstructorParameters<typeof CoformServer>[0]} [server]
 *   a server fixture, or the options for a new one
 * @param {{ setup?: () => Promise<void>, keepClients?: boolean }} [opts]
 * @returns {{ server: CoformServer, clients: Clients }}
 */
export function serverSuite (server = {}, { setup, keepClients = false } = {}) {
  const fixture = server instanceof CoformServer ? server : new CoformServer(server)
  const clients = new Clients(fixture)
  before(() => fixture.startForSuite(setup))
  if (!keepClients) afterEach(() => clients.destroyAll())
  after(async () => {
    await clients.destroyAll()
    await fixture.dispose()
  })
  return { server: fixture, clients }
}

/**
 * Drops a provider's connection abruptly (TCP close, no WebSocket close
 * handshake, no awareness goodbye). With `reconnect: false` the provider stays
 * offline; otherwise it reconnects by itself as it would after a network blip.
 */
export function dropConnection (provider, { reconnect = false } = {}) {
  if (!reconnect) provider.shouldConnect = false
  const ws = provider.ws
  if (ws === null) throw new Error('provider has no open socket to drop')
  ws.terminate()
}
