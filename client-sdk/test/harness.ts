// Test fixtures: a real `coform serve` process (auth on) on an ephemeral
// port with a temporary data directory, and signed-in SDK clients.
//
// Nothing here sleeps to "let things settle": helpers wait for an event or
// poll a condition until a deadline, and a missed deadline fails with a
// message saying what was awaited.

import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

import { CoformClient, type FetchLike, type WebSocketClass } from '../src/index.js'

/** The client-sdk folder (this file runs from build-test/test/). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const REPO_ROOT = path.resolve(PACKAGE_ROOT, '..')
export const COFORM_BIN = process.env.COFORM_BIN !== undefined && process.env.COFORM_BIN !== ''
  ? path.resolve(process.env.COFORM_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', process.platform === 'win32' ? 'coform.exe' : 'coform')

const LISTENING_RE = /^coform listening on http:\/\/127\.0\.0\.1:(\d+)\s*$/
const STARTUP_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 15_000
export const WAIT_MS = 10_000

// Every provider adds a process 'exit' listener; tests open many at once.
process.setMaxListeners(100)

export const NodeWebSocket: WebSocketClass = WebSocket

/** Fails (never skips) when the server binary is missing. */
export function assertBinary (): void {
  let ok = false
  try {
    ok = fs.statSync(COFORM_BIN).isFile()
    fs.accessSync(COFORM_BIN, fs.constants.X_OK)
  } catch {
    ok = false
  }
  if (!ok) {
    throw new Error(`coform binary not found or not executable at ${COFORM_BIN}.\n` +
      'Build it first: run `cargo build -p coform` in the repository root ' +
      '(or set COFORM_BIN to an existing coform binary).')
  }
}

/** Polls `condition` until truthy or the deadline; returns its value. */
export async function waitUntil<T> (condition: () => T | Promise<T>, what: string, timeoutMs = WAIT_MS, detail?: () => unknown): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await condition()
      if (v) return v
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      let msg = `timed out after ${timeoutMs} ms waiting for ${what}`
      if (lastError) msg += `\n  last error: ${(lastError as Error).message ?? String(lastError)}`
      if (detail) {
        try { msg += `\n  last observed: ${JSON.stringify(detail())}` } catch {}
      }
      throw new Error(msg)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

let counter = 0
export function unique (prefix: string): string {
  counter += 1
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`
}

/** One data directory and the `coform` process serving it. */
export class Server {
  dataDir: string
  port = 0
  child: ChildProcess | null = null
  log = ''
  readonly extraArgs: string[]

  constructor (extraArgs: string[] = []) {
    this.extraArgs = extraArgs
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coform-sdk-'))
  }

  get baseUrl (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<this> {
    assertBinary()
    if (this.child !== null) throw new Error('already running')
    // Settings come from the command line only (the caller's COFORM_* must not leak in).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COFORM_') || k.startsWith('COFORM_LOG')))
    const args = ['serve', '--bind', '127.0.0.1:0', '--data-dir', this.dataDir, '--room-grace', '1s', '--shutdown-grace', '5s', ...this.extraArgs]
    this.log += `\n===== ${path.basename(COFORM_BIN)} ${args.join(' ')} =====\n`
    const child = spawn(COFORM_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
    this.child = child
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (chunk: string) => {
      this.log += chunk
      if (this.log.length > 200_000) this.log = this.log.slice(-200_000)
    })
    const killOnExit = (): void => { try { child.kill('SIGKILL') } catch {} }
    process.once('exit', killOnExit)
    child.once('exit', () => process.off('exit', killOnExit))
    const lines = readline.createInterface({ input: child.stdout! })
    this.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`coform did not start within ${STARTUP_TIMEOUT_MS} ms\n${this.log.slice(-4000)}`)), STARTUP_TIMEOUT_MS)
      lines.on('line', (line) => {
        const m = LISTENING_RE.exec(line)
        if (m) {
          clearTimeout(timer)
          resolve(Number(m[1]))
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`coform exited during start (code ${code}, signal ${signal})\n${this.log.slice(-4000)}`))
      })
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
    return this
  }

  /** Stops the process (SIGTERM: stores everything pending, closes sockets with 1012). */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child
    if (child === null) return
    this.child = null
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }

  /** Stops and starts again on the same data directory (the port changes). */
  async restart (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal)
    await this.start()
  }

  async dispose (): Promise<void> {
    await this.stop()
    fs.rmSync(this.dataDir, { recursive: true, force: true })
  }

  /** A client of this server (not signed in). */
  client (opts: { WebSocket?: WebSocketClass, baseUrl?: string, fetch?: FetchLike } = {}): CoformClient {
    return new CoformClient({ baseUrl: opts.baseUrl ?? this.baseUrl, WebSocket: opts.WebSocket ?? NodeWebSocket, fetch: opts.fetch })
  }

  /**
   * A client signed in as a new account, its address verified with the
   * link of its verification mail (so it can be added to workspaces).
   */
  async user (name: string, opts: { WebSocket?: WebSocketClass, baseUrl?: string, fetch?: FetchLike } = {}): Promise<{ client: CoformClient, email: string, password: string }> {
    const client = this.client(opts)
    const email = `${unique(name.toLowerCase().replace(/\W+/g, ''))}@example.com`
    const password = 'correct horse battery 9'
    await client.register({ email, password, name })
    await client.verifyEmail(this.mailedToken(email, 'Verify your Coform e-mail address'))
    return { client, email, password }
  }

  /** The token of the newest mail to `to` whose subject contains `subject` (the outbox of the data directory). */
  mailedToken (to: string, subject: string): string {
    const outbox = path.join(this.dataDir, 'outbox')
    const mails = fs.readdirSync(outbox).filter((f) => f.endsWith('.eml')).sort()
      .map((f) => fs.readFileSync(path.join(outbox, f), 'utf8'))
      .filter((m) => m.includes(`To: ${to}\n`) && m.split('\n').some((l) => l.startsWith('Subject:') && l.includes(subject)))
    const token = /token=([A-Za-z0-9_-]{43})/.exec(mails.at(-1) ?? '')?.[1]
    if (token === undefined) throw new Error(`no mail to ${to} about ${subject}`)
    return token
  }
}

/** Wraps a test so that a failure carries the tail of the server's log. */
export function withLog<A extends unknown[]> (server: () => Server | undefined, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args)
    } catch (err) {
      const s = server()
      if (s !== undefined && err instanceof Error) {
        err.message += `\n--- coform stderr (tail) ---\n${s.log.slice(-6000)}\n--- end ---`
      }
      throw err
    }
  }
}

/**
 * A TCP forwarder on a port of its own that stays the same while the
 * server behind it restarts on new ports: clients keep one base URL.
 */
export class Proxy {
  port = 0
  readonly #server: net.Server
  readonly #sockets = new Set<net.Socket>()

  constructor (target: () => number) {
    this.#server = net.createServer((down) => {
      const up = net.connect(target(), '127.0.0.1')
      for (const s of [down, up]) {
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => { down.destroy(); up.destroy() })
      }
      down.pipe(up)
      up.pipe(down)
    })
  }

  get baseUrl (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as net.AddressInfo).port
    return this
  }

  async close (): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
