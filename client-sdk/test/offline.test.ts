// Offline persistence: with `offline: true` (and IndexedDB present — here
// the in-memory fake-indexeddb, as a browser would have the real one) a
// template opens from the local copy while the server is down, accepts
// edits, and sends them once the server is back.

import 'fake-indexeddb/auto'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'

import type { CoformClient, TemplateSession } from '../src/index.js'
import { Proxy, Server, waitUntil, withLog } from './harness.js'

let server: Server | undefined
let proxy: Proxy | undefined
let client: CoformClient
let email: string
let password: string
const sessions: TemplateSession[] = []

describe('offline persistence (IndexedDB)', () => {
  before(async () => {
    server = await new Server().start()
    proxy = await new Proxy(() => server!.port).start()
    const u = await server.user('Nomad', { baseUrl: proxy.baseUrl })
    client = u.client
    email = u.email
    password = u.password
  })

  after(async () => {
    for (const s of sessions) s.close()
    await proxy?.close()
    await server?.dispose()
  })

  test('a template opens from the local copy while the server is down, and offline edits reach the server later', withLog(() => server, async () => {
    const ws = await client.workspaces.create({ name: 'Field work' })
    const tpl = await client.templates.create({ workspaceId: ws.id, name: 'Survey' })
    const first = await client.openTemplate(tpl.id, { offline: true })
    first.addComponent({ id: 'q1', type: 'text', label: 'Question 1' })
    await first.whenSaved()
    first.close()
    // Let the local copy be written (y-indexeddb stores updates as they happen).
    await new Promise((resolve) => setTimeout(resolve, 100))

    await server!.stop()
    const second = await client.openTemplate(tpl.id, { offline: true, minBackoffMs: 100, maxBackoffMs: 500 })
    sessions.push(second)
    assert.equal(second.saveState, 'offline')
    assert.equal(second.component('q1')?.label, 'Question 1', 'content comes from IndexedDB')
    assert.equal(second.unsavedChanges, 0, 'what the local copy holds was stored: nothing is pending')
    second.addComponent({ id: 'q2', type: 'number', label: 'Question 2', after: 'q1' })
    second.updateComponent('q1', { label: 'Question one' })
    assert.equal(second.unsavedChanges, 2)
    second.close()

    // A reload while offline: the local copy still knows what is pending.
    const third = await client.openTemplate(tpl.id, { offline: true, minBackoffMs: 100, maxBackoffMs: 500 })
    sessions.push(third)
    assert.equal(third.saveState, 'offline')
    assert.equal(third.component('q2')?.label, 'Question 2')
    assert.equal(third.unsavedChanges, 2, 'pending changes survive a reload')

    await server!.start()
    await third.whenSaved(20_000)
    assert.equal(third.unsavedChanges, 0)
    const reader = server!.client()
    await reader.login({ email, password })
    const content = (await reader.templates.get(tpl.id)).content!
    assert.deepEqual(Object.keys(content.components).sort(), ['q1', 'q2'])
    assert.equal(content.components.q1?.label, 'Question one')
    reader.destroy()
    await waitUntil(() => third.synced, 'the session to be synced')
  }))
})
