// Saved state is driven by the server's durable acknowledgements: 'saved'
// only once the server stored every change, and what was 'saved' survives
// a server restart (SIGTERM) and a crash (SIGKILL). Sessions reconnect by
// themselves with a fresh document token after the server comes back.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'

import { CoformClient, type SaveState, type SessionStatus, type TemplateSession, type WebSocketClass } from '../src/index.js'
import { Proxy, Server, unique, waitUntil, withLog } from './harness.js'

/**
 * A `ws` WebSocket whose incoming messages can be held back: the server's
 * acknowledgement then cannot arrive, whatever the server did.
 */
class PausableSocket extends WebSocket {
  static paused = false
  static held: Array<() => void> = []

  static release (): void {
    PausableSocket.paused = false
    const held = PausableSocket.held
    PausableSocket.held = []
    for (const deliver of held) deliver()
  }
}

// y-websocket assigns `onmessage`; deliver through the hold queue.
const inherited = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage')!
Object.defineProperty(PausableSocket.prototype, 'onmessage', {
  configurable: true,
  get (this: WebSocket) { return inherited.get!.call(this) },
  set (this: WebSocket, fn: ((ev: WebSocket.MessageEvent) => void) | null) {
    inherited.set!.call(this, fn === null
      ? null
      : (ev: WebSocket.MessageEvent) => {
          if (PausableSocket.paused) PausableSocket.held.push(() => fn.call(this, ev))
          else fn.call(this, ev)
        })
  }
})

let server: Server | undefined
let proxy: Proxy | undefined
let owner: CoformClient
let email: string
let password: string
let workspaceId: string
let sessionTokens = 0
const sessions: TemplateSession[] = []

/** Counts document-token requests (one per connection attempt that reached REST). */
const countingFetch = (input: string, init?: RequestInit): Promise<Response> => {
  if (init?.method === 'POST' && /\/api\/templates\/[^/]+\/session$/.test(input)) sessionTokens += 1
  return globalThis.fetch(input, init)
}

async function newTemplate (): Promise<string> {
  return (await owner.templates.create({ workspaceId, name: unique('saved') })).id
}

function record (s: TemplateSession): { states: SaveState[], statuses: SessionStatus[] } {
  const log = { states: [] as SaveState[], statuses: [] as SessionStatus[] }
  s.on('saveState', (e) => log.states.push(e.state))
  s.on('status', (st) => log.statuses.push(st))
  return log
}

/** A fresh client signed in as the owner, talking to the server directly. */
async function freshReader (): Promise<CoformClient> {
  const c = server!.client()
  await c.login({ email, password })
  return c
}

describe('saved state and durability', () => {
  before(async () => {
    // Short document tokens: a reconnect after a restart needs a new one.
    server = await new Server(['--doc-token-ttl', '1s']).start()
    proxy = await new Proxy(() => server!.port).start()
    const u = await server.user('Owner', { baseUrl: proxy.baseUrl, fetch: countingFetch, WebSocket: PausableSocket as unknown as WebSocketClass })
    owner = u.client
    email = u.email
    password = u.password
    workspaceId = (await owner.workspaces.create({ name: 'Durable' })).id
  })

  after(async () => {
    PausableSocket.release()
    for (const s of sessions) s.close()
    await proxy?.close()
    await server?.dispose()
  })

  test("'saving' until the server's acknowledgement arrives, even when the server already has the change", withLog(() => server, async () => {
    const id = await newTemplate()
    const s = await owner.openTemplate(id)
    sessions.push(s)
    await s.whenSaved()
    assert.equal(s.saveState, 'saved')
    assert.equal(s.unsavedChanges, 0)

    PausableSocket.paused = true
    s.addComponent({ id: 'held', type: 'text', label: 'Held back' })
    assert.equal(s.saveState, 'saving')
    assert.equal(s.unsavedChanges, 1)
    // The server stores the change (a fresh reader sees it) ...
    const reader = await freshReader()
    await waitUntil(async () => (await reader.templates.get(id)).content?.components.held !== undefined, 'the server to have the change')
    // ... but without its acknowledgement the session does not claim it.
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(s.saveState, 'saving')
    assert.equal(s.unsavedChanges, 1)
    PausableSocket.release()
    await s.whenSaved(5000)
    assert.equal(s.unsavedChanges, 0)
    reader.destroy()
  }))

  test("a big batch is 'saving' at once and 'saved' after the store; a SIGTERM restart keeps it", withLog(() => server, async () => {
    const id = await newTemplate()
    const s = await owner.openTemplate(id)
    sessions.push(s)
    const log = record(s)
    s.transact(() => {
      for (let i = 0; i < 1500; i++) s.addComponent({ id: `f${i}`, type: 'text', label: `Field ${i}`, properties: { placeholder: 'x'.repeat(50) } })
    })
    s.setMeta('name', 'Big form')
    assert.equal(s.saveState, 'saving')
    assert.equal(s.unsavedChanges, 2)
    await s.whenSaved(20_000)
    assert.deepEqual(log.states.filter((st, i) => st !== log.states[i - 1]), ['saving', 'saved'])

    await server!.restart('SIGTERM')
    const reader = await freshReader()
    const content = (await reader.templates.get(id)).content!
    assert.equal(Object.keys(content.components).length, 1500)
    assert.equal(content.meta.name, 'Big form')
    reader.destroy()

    // The session noticed the restart and came back by itself with a new token.
    await waitUntil(() => s.status === 'connected' && s.synced, 'the session to reconnect', 20_000, () => log.statuses)
    assert.ok(log.statuses.includes('offline'), log.statuses.join(','))
    assert.equal(s.saveState, 'saved')
  }))

  test("what was 'saved' survives a crash (SIGKILL right after the acknowledgement)", withLog(() => server, async () => {
    const id = await newTemplate()
    const s = await owner.openTemplate(id)
    sessions.push(s)
    s.addComponent({ id: 'crash-proof', type: 'number', label: 'Survives kill -9' })
    s.setMeta('name', 'Crash test')
    await s.whenSaved(5000)
    await server!.restart('SIGKILL')
    const reader = await freshReader()
    const content = (await reader.templates.get(id)).content!
    assert.equal((content.components['crash-proof'] as { label?: string }).label, 'Survives kill -9')
    assert.equal(content.meta.name, 'Crash test')
    reader.destroy()
    await waitUntil(() => s.synced, 'the session to reconnect after the crash', 20_000)
  }))

  test("edits made while the server is down are 'offline', then sent and 'saved' after it is back", withLog(() => server, async () => {
    const id = await newTemplate()
    const s = await owner.openTemplate(id)
    sessions.push(s)
    const log = record(s)
    s.addComponent({ id: 'before', type: 'text' })
    await s.whenSaved()
    const tokensBefore = sessionTokens

    await server!.stop('SIGTERM')
    await waitUntil(() => s.saveState === 'offline', 'the session to notice the server is gone')
    s.addComponent({ id: 'while-down-1', type: 'text' })
    s.updateComponent('before', { label: 'edited while down' })
    assert.equal(s.saveState, 'offline')
    assert.equal(s.unsavedChanges, 2)
    // The document token of the first connection has expired by now.
    await new Promise((resolve) => setTimeout(resolve, 1200))
    await server!.start()

    await s.whenSaved(20_000)
    assert.equal(s.unsavedChanges, 0)
    assert.ok(sessionTokens > tokensBefore, 'a fresh document token was fetched for the reconnect')
    assert.ok(log.states.indexOf('offline') < log.states.lastIndexOf('saved'))
    const reader = await freshReader()
    const content = (await reader.templates.get(id)).content!
    assert.ok(content.components['while-down-1'] !== undefined)
    assert.equal((content.components.before as { label?: string }).label, 'edited while down')
    reader.destroy()
  }))

  test('disconnect() and connect() go offline and back on purpose', withLog(() => server, async () => {
    const id = await newTemplate()
    const s = await owner.openTemplate(id)
    sessions.push(s)
    s.disconnect()
    assert.equal(s.status, 'offline')
    assert.equal(s.saveState, 'offline')
    s.setMeta('name', 'Offline rename')
    assert.equal(s.unsavedChanges, 1)
    s.connect()
    await s.whenSaved(10_000)
    const reader = await freshReader()
    assert.equal((await reader.templates.get(id)).content?.meta.name, 'Offline rename')
    reader.destroy()
  }))
})
