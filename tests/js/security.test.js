// Security regressions with the stock Yjs client stack: an update nested
// 20,000 levels deep, floods of presence, and sockets that must end with
// their sign-in session. Before the fixes, the first aborted the server,
// the second grew it by hundreds of MiB, the third left sockets editing.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  WebSocket,
  Y,
  createTemplate,
  createWorkspace,
  encodeAwarenessEntries,
  encodeUpdateMessage,
  logIn,
  serverSuite,
  signUp,
  uniqueName,
  waitForEvent,
  waitUntil
} from './harness.js'

const POLICY = 1008
const SESSION_ENDED = 4401

/** An awareness message with `count` states of about `bytes` each. */
function awarenessFlood (count, bytes, firstClient = 1) {
  const state = JSON.stringify({ cursor: 'x'.repeat(bytes) })
  return encodeAwarenessEntries(Array.from({ length: count }, (_, i) => [firstClient + i, 1, state]))
}

describe('hostile input from Yjs clients', () => {
  const { server, clients } = serverSuite()

  test('an update of 20,000 nested Y.Maps is refused; the server and the room carry on', server.guard(async () => {
    const room = uniqueName('nested')
    const observer = await clients.synced(room)
    observer.doc.getMap('meta').set('name', 'before')

    // Built by a real Yjs client: m.set('x', new Y.Map()) in a loop.
    const evil = new Y.Doc()
    evil.transact(() => {
      let m = evil.getMap('components')
      for (let i = 0; i < 20000; i++) {
        const next = new Y.Map()
        m.set('x', next)
        m = next
      }
    })
    const update = Y.encodeStateAsUpdate(evil)
    const attacker = await clients.rawSocket(room)
    const closed = await attacker.sendAndAwaitClose(encodeUpdateMessage(update), { what: 'the nested update to be refused' })
    assert.equal(closed.code, POLICY, `closed with ${closed.code}: ${closed.reason}`)
    assert.match(closed.reason, /nest/)

    await server.assertHealthy()
    assert.equal(await server.metric('coform_updates_refused_nesting_total') >= 1, true)
    // Nobody got it, and the room still relays edits.
    const late = await clients.synced(room)
    assert.equal(late.doc.getMap('components').has('x'), false)
    assert.equal(observer.doc.getMap('components').has('x'), false)
    assert.equal(late.doc.getMap('meta').get('name'), 'before')
    observer.doc.getMap('meta').set('name', 'after')
    await waitUntil(() => late.doc.getMap('meta').get('name') === 'after', { what: 'an edit after the refusal' })
  }))

  test('a presence flood closes its sender and memory stays bounded', server.guard(async () => {
    const room = uniqueName('flood')
    const observer = await clients.synced(room)
    const flood = awarenessFlood(100000, 100) // about 12 MiB
    assert.ok(flood.length > 11 << 20, `flood is ${flood.length} bytes`)
    const before = server.rssBytes()
    for (let i = 0; i < 20; i++) {
      const viewer = await clients.rawSocket(room)
      const closed = await viewer.sendAndAwaitClose(flood, { what: `flood ${i} to be refused` })
      assert.equal(closed.code, POLICY, `flood ${i}: ${closed.code} ${closed.reason}`)
      viewer.terminate()
    }
    const grown = server.rssBytes() - before
    // Before: +455 MiB after one such frame, 1 GiB after twenty.
    assert.ok(grown < 96 << 20, `server grew by ${(grown / 1048576).toFixed(1)} MiB`)
    await server.assertHealthy()
    assert.equal(observer.awareness.getStates().size, 1, 'flooded states reached a client')
  }))

  test('a busy room: twelve stock clients with presence stay connected (their echoes are not held against them)', server.guard(async () => {
    const room = uniqueName('busy')
    // Each stock provider listens for the process's exit: twelve of them
    // are expected here, not a leak.
    process.setMaxListeners(process.getMaxListeners() + 12)
    const providers = []
    const closes = []
    for (let i = 0; i < 12; i++) {
      const p = await clients.synced(room)
      p.on('connection-close', (event) => closes.push(event?.code))
      p.awareness.setLocalStateField('user', { name: `designer ${i}` })
      providers.push(p)
    }
    for (const p of providers) {
      await waitUntil(() => p.awareness.getStates().size === 12, {
        what: 'every client to see twelve people',
        detail: () => p.awareness.getStates().size
      })
    }
    // Pointers move; every client sends back what it receives.
    for (let round = 0; round < 5; round++) {
      for (const p of providers) p.awareness.setLocalStateField('pointer', { x: round, y: round })
    }
    for (const p of providers) {
      await waitUntil(() => [...p.awareness.getStates().values()].every((st) => st.pointer?.x === 4), {
        what: 'every pointer to arrive everywhere'
      })
    }
    assert.deepEqual(closes, [])
    assert.ok(providers.every((p) => p.wsconnected))
  }))

  test('a presence state that is not JSON never reaches other clients', server.guard(async () => {
    const room = uniqueName('notjson')
    const observer = await clients.synced(room)
    const errors = []
    const onError = (err) => errors.push(err)
    process.on('uncaughtException', onError)
    try {
      const sender = await clients.rawSocket(room)
      // One presence entry whose state text is not JSON.
      const closed = await sender.sendAndAwaitClose(encodeAwarenessEntries([[424242, 1, '{"cursor": ']]), { what: 'the bad state to be refused' })
      assert.equal(closed.code, POLICY)
      // A later, valid state from someone else arrives; the bad one never did.
      const other = await clients.synced(room)
      other.awareness.setLocalStateField('user', { name: 'other' })
      await waitUntil(() => observer.awareness.getStates().get(other.doc.clientID)?.user?.name === 'other', {
        what: 'a valid state after the refused one'
      })
      assert.equal(observer.awareness.getStates().has(424242), false)
      assert.equal(observer.wsconnected, true)
      assert.deepEqual(errors, [])
    } finally {
      process.off('uncaughtException', onError)
    }
  }))
})

describe('sessions and sockets', () => {
  let template
  const { server, clients } = serverSuite({ auth: true }, {
    setup: async () => {
      const owner = await signUp(server, 'ada', 'Ada')
      template = await createTemplate(server, owner.accessToken, await createWorkspace(server, owner.accessToken))
    }
  })

  const login = () => logIn(server, 'ada')
  const docToken = async (access) =>
    (await server.apiExpect(200, 'POST', `/api/templates/${template}/session`, { token: access })).token
  /** A y-websocket provider on the template with `token`, synced. */
  const open = (token) => clients.synced(template, { params: { token } })
  /** The HTTP status of an upgrade with `token`. */
  const upgradeStatus = (token) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/${template}?token=${encodeURIComponent(token)}`)
    ws.on('unexpected-response', (_, res) => { resolve(res.statusCode); ws.terminate() })
    ws.on('open', () => { resolve(101); ws.terminate() })
    ws.on('error', (err) => reject(err))
  })

  test('logout closes the session\'s sockets with 4401 and its document token opens nothing', server.guard(async () => {
    const phone = await login()
    const token = await docToken(phone.accessToken)
    const onPhone = await open(token)
    const closed = waitForEvent(onPhone, 'closed', { what: 'the phone\'s socket to close' })
    const r = await server.api('POST', '/api/auth/logout', { token: phone.accessToken })
    assert.equal(r.status, 204)
    const [event] = await closed
    assert.equal(event.code, SESSION_ENDED, event.reason)
    assert.equal(await upgradeStatus(token), 401)

    // An edit made after the logout never reaches the server.
    onPhone.doc.getMap('meta').set('name', 'after logout')
    const laptop = await open(await docToken((await login()).accessToken))
    assert.equal(laptop.doc.getMap('meta').get('name'), undefined)
  }))

  test('ending a session from another one closes its sockets at once', server.guard(async () => {
    const tablet = await login()
    const onTablet = await open(tablet.accessToken)
    const desk = await login()
    const onDesk = await open(await docToken(desk.accessToken))
    const sessions = await server.api('GET', '/api/auth/sessions', { token: desk.accessToken })
    const sid = JSON.parse(Buffer.from(tablet.accessToken.split('.')[1], 'base64url')).sid
    assert.ok(sessions.json.some((s) => s.id === sid))
    const closed = waitForEvent(onTablet, 'closed', { what: 'the tablet\'s socket to close' })
    const r = await server.api('DELETE', `/api/auth/sessions/${sid}`, { token: desk.accessToken })
    assert.equal(r.status, 204)
    assert.equal((await closed)[0].code, SESSION_ENDED)
    // The other session's socket stays and edits.
    onDesk.doc.getMap('meta').set('name', 'desk')
    const check = await open(await docToken(desk.accessToken))
    await waitUntil(() => check.doc.getMap('meta').get('name') === 'desk', { what: 'the desk edit' })
    assert.equal(onDesk.wsconnected, true)
  }))
})
