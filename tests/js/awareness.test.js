// Presence: awareness states travel between clients, disappear promptly when
// their connection goes away (no 30 s ghosts), and show again promptly when
// the same client (same Y.Doc clientID) comes back.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  Y,
  dropConnection,
  encodeRawAwarenessMessage,
  encodeSyncStep1,
  serverSuite,
  uniqueName,
  waitForSynced,
  waitUntil
} from './harness.js'

/** Presence must be updated much faster than y-protocols' 30 s timeout. */
const PROMPT_MS = 3000

const states = (provider) => provider.awareness.getStates()
const userOf = (provider, clientID) => states(provider).get(clientID)?.user
const describeStates = (provider) => () => Object.fromEntries(states(provider))

function setUser (provider, name, extra = {}) {
  provider.awareness.setLocalStateField('user', { name, ...extra })
}

async function seesUser (observer, clientID, name, what, timeoutMs = PROMPT_MS) {
  await waitUntil(() => userOf(observer, clientID)?.name === name, {
    timeoutMs,
    what,
    detail: describeStates(observer)
  })
}

async function seesGone (observer, clientID, what, timeoutMs = PROMPT_MS) {
  await waitUntil(() => !states(observer).has(clientID), {
    timeoutMs,
    what,
    detail: describeStates(observer)
  })
}

describe('awareness', () => {
  const { server, clients } = serverSuite()

  /** A and B synced on `room`; A has set its user `name` and B has seen it. */
  async function presentPair (room, name = 'alice') {
    const a = await clients.synced(room)
    const b = await clients.synced(room)
    const aID = a.doc.clientID
    setUser(a, name)
    await seesUser(b, aID, name, 'B to see A')
    return { a, b, aID }
  }

  /**
   * A newcomer C joins and sees B's fresh state: a round trip through the
   * room, after which C holds whatever presence the room still has.
   */
  async function newcomerAfterRoundTrip (room, b) {
    const c = await clients.synced(room)
    setUser(b, 'bob')
    await seesUser(c, b.doc.clientID, 'bob', 'newcomer C to see B (awareness round trip)')
    return c
  }

  test('a state set by A arrives at B, and so do later changes', server.guard(async () => {
    const room = uniqueName('aw-basic')
    const a = await clients.synced(room)
    const b = await clients.synced(room)
    const aID = a.doc.clientID

    setUser(a, 'alice', { color: '#f00' })
    await seesUser(b, aID, 'alice', "B to see A's awareness state")
    assert.deepEqual(userOf(b, aID), { name: 'alice', color: '#f00' })

    a.awareness.setLocalStateField('cursor', { anchor: 3, head: 7 })
    await waitUntil(() => states(b).get(aID)?.cursor?.head === 7, {
      what: "B to see A's cursor update",
      detail: describeStates(b)
    })

    setUser(b, 'bob')
    await seesUser(a, b.doc.clientID, 'bob', "A to see B's awareness state")
  }))

  test('a client joining later receives the states of those already present', server.guard(async () => {
    const room = uniqueName('aw-late')
    const a = await clients.synced(room)
    const b = await clients.synced(room)
    setUser(a, 'alice')
    setUser(b, 'bob')
    await seesUser(b, a.doc.clientID, 'alice', 'B to see A')
    await seesUser(a, b.doc.clientID, 'bob', 'A to see B')

    const c = await clients.synced(room)
    await seesUser(c, a.doc.clientID, 'alice', 'late joiner C to see A')
    await seesUser(c, b.doc.clientID, 'bob', 'late joiner C to see B')
  }))

  test('destroying A\'s provider removes A at B promptly', server.guard(async (t) => {
    const room = uniqueName('aw-destroy')
    const { a, b, aID } = await presentPair(room)

    const started = Date.now()
    clients.destroyProvider(a)
    await seesGone(b, aID, `B to drop A within ${PROMPT_MS} ms of A's provider being destroyed`)
    t.diagnostic(`removal seen after ${Date.now() - started} ms`)
  }))

  test('a connection that drops without any goodbye removes A at B promptly', server.guard(async (t) => {
    const room = uniqueName('aw-drop')
    const { a, b, aID } = await presentPair(room)

    // TCP goes away: no close handshake and no "state = null" message from A.
    const started = Date.now()
    dropConnection(a, { reconnect: false })
    await seesGone(b, aID, `B to drop A within ${PROMPT_MS} ms of A's connection dropping (server must clean up, not wait for the 30 s timeout)`)
    t.diagnostic(`removal seen after ${Date.now() - started} ms`)

    // The room itself no longer holds A either: a newcomer must not see a ghost.
    const c = await newcomerAfterRoundTrip(room, b)
    assert.equal(states(c).has(aID), false, `newcomer C sees a ghost of A: ${JSON.stringify(states(c).get(aID))}`)
  }))

  test('a raw connection that announced a state and then vanished leaves no ghost', server.guard(async () => {
    const room = uniqueName('aw-raw')
    const b = await clients.synced(room)
    const ghostID = 0x1234567
    const raw = await clients.rawSocket(room)
    await raw.send(encodeSyncStep1())
    await raw.send(encodeRawAwarenessMessage(ghostID, 1, { user: { name: 'ghost' } }))
    await seesUser(b, ghostID, 'ghost', "B to see the raw client's state")

    raw.terminate()
    await seesGone(b, ghostID, `B to drop the vanished raw client within ${PROMPT_MS} ms`)

    const c = await newcomerAfterRoundTrip(room, b)
    assert.equal(states(c).has(ghostID), false, 'newcomer sees a ghost of the vanished raw client')
  }))

  test('A disconnects and connects again (same Y.Doc): B sees A again promptly', server.guard(async (t) => {
    const room = uniqueName('aw-reconnect')
    const { a, b, aID } = await presentPair(room)

    a.disconnect()
    await seesGone(b, aID, 'B to drop A after A disconnected')

    const started = Date.now()
    a.connect()
    await seesUser(b, aID, 'alice', `B to see A again within ${PROMPT_MS} ms of A reconnecting (not after the 15 s renewal)`)
    t.diagnostic(`presence back after ${Date.now() - started} ms`)

    // And A is really back: a later change of A still arrives and A stays present.
    setUser(a, 'alice-2')
    await seesUser(b, aID, 'alice-2', "B to see A's next change after the reconnect")
  }))

  test('A\'s socket drops and the provider reconnects by itself: B sees A again promptly', server.guard(async (t) => {
    const room = uniqueName('aw-autoreconnect')
    const { a, b, aID } = await presentPair(room)

    let started = Date.now()
    const changesAtB = []
    b.awareness.on('change', ({ added, removed }) => {
      if (added.includes(aID)) changesAtB.push(`+${Date.now() - started}ms added`)
      if (removed.includes(aID)) changesAtB.push(`+${Date.now() - started}ms removed`)
    })

    started = Date.now()
    dropConnection(a, { reconnect: true })
    await waitForSynced(a, { what: 'A to reconnect by itself', timeoutMs: PROMPT_MS })

    // A's state is unchanged: B must show it without A having to renew it.
    // First make sure B has received what the server sent after A came back.
    a.doc.getText('text').insert(0, 'x1')
    await waitUntil(() => b.doc.getText('text').toString().includes('x1'), { what: "B to receive A's edit after the reconnect" })
    await waitUntil(() => userOf(b, aID)?.name === 'alice', {
      timeoutMs: Math.max(0, PROMPT_MS - (Date.now() - started)),
      what: `B to show A (state unchanged) within ${PROMPT_MS} ms of the drop`,
      detail: () => ({ statesAtB: Object.fromEntries(states(b)), changesAtB })
    })

    // A must stay present: round trips in both directions, then check again.
    b.doc.getText('text').insert(0, 'y1')
    await waitUntil(() => a.doc.getText('text').toString().includes('y1'), { what: "A to receive B's edit" })
    a.doc.getText('text').insert(0, 'x2')
    await waitUntil(() => b.doc.getText('text').toString().includes('x2'), { what: "B to receive A's second edit" })
    assert.equal(userOf(b, aID)?.name, 'alice', `B lost A again after the reconnect: ${JSON.stringify(changesAtB)}`)

    setUser(a, 'alice-after-drop')
    await seesUser(b, aID, 'alice-after-drop', "B to see A's change after the automatic reconnect")
    t.diagnostic(`presence changes of A at B: ${JSON.stringify(changesAtB)}`)
  }))

  test('a new provider over the same Y.Doc (same clientID, fresh awareness) shows at B promptly', server.guard(async (t) => {
    const room = uniqueName('aw-newprovider')
    const doc = new Y.Doc()
    const a1 = await clients.synced(room, { doc })
    const b = await clients.synced(room)
    const aID = doc.clientID
    // Bump A's awareness clock a few times so the next provider starts lower.
    for (let i = 0; i < 5; i++) setUser(a1, `alice-v${i}`)
    await seesUser(b, aID, 'alice-v4', 'B to see the first incarnation of A')

    clients.destroyProvider(a1)
    await seesGone(b, aID, 'B to drop the first incarnation of A')

    const started = Date.now()
    const a2 = clients.provider(room, { doc })
    setUser(a2, 'alice-again')
    await waitForSynced(a2)
    await seesUser(b, aID, 'alice-again', `B to see A's new provider within ${PROMPT_MS} ms`)
    t.diagnostic(`presence back after ${Date.now() - started} ms`)
  }))
  /**
   * What a client does when its network changes: it gives up on its socket
   * and connects anew, while the server has not yet seen the old socket go
   * away (it only notices later, e.g. by timeout). Returns the old socket,
   * still open as far as the server knows.
   */
  function abandonAndReconnect (provider) {
    const stale = provider.ws
    stale.onmessage = null
    stale.onclose = null
    stale.onopen = null
    stale.onerror = () => {}
    provider.ws = null
    provider.wsconnected = false
    provider.synced = false
    provider.connect()
    return stale
  }

  async function overtakingReconnect (room) {
    const { a, b, aID } = await presentPair(room, 'roaming')

    const removals = []
    b.awareness.on('change', ({ removed }) => { if (removed.includes(aID)) removals.push(Date.now()) })

    const stale = abandonAndReconnect(a)
    await waitForSynced(a, { what: 'A to sync on its new connection' })
    const connectionsBefore = await server.metric('coform_connections')
    const closedAt = Date.now()
    stale.terminate()
    await waitUntil(async () => (await server.metric('coform_connections')) < connectionsBefore, {
      what: "the server to notice A's old connection closed"
    })
    // Round trip through the room after the server handled the close.
    const c = await newcomerAfterRoundTrip(room, b)
    return { a, b, c, aID, removals, closedAt }
  }

  // Note: at the protocol level the new connection's first announcement of A
  // (same clientID, same clock) looks exactly like another client echoing
  // A's state, so the server cannot hand A over to the new connection at
  // once. What it must do is bring A back within a round trip when the old
  // connection closes (a brief removal at B is allowed).
  test('a reconnect that overtakes the old connection\'s close: A is shown again within a round trip', server.guard(async (t) => {
    const { b, c, aID, removals, closedAt } = await overtakingReconnect(uniqueName('aw-overtake'))
    await seesUser(b, aID, 'roaming', `B to show A within ${PROMPT_MS} ms of A's old connection closing`)
    await seesUser(c, aID, 'roaming', `newcomer C to show A within ${PROMPT_MS} ms of A's old connection closing`)
    t.diagnostic(`A removed at B ${removals.length} time(s): ${removals.map((x) => `+${x - closedAt}ms`).join(', ')}`)
  }))
})
