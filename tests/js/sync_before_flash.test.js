// After a restart, the first sync step 2 a client gets already holds the
// stored document: at its first `synced` event a client never shows an empty
// (or partial) document that fills in a moment later.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { Y, docSnapshot, serverSuite, uniqueName, waitForConvergence } from './harness.js'
import { encodeSyncStep1, isSyncStep2, isSyncUpdate } from './support/protocol.js'
import { waitForSynced, waitUntil } from './support/wait.js'

const EDITS = 150
const LAST_KEY = Math.floor((EDITS - 1) / 10) * 10

/**
 * Creates a provider that records the document exactly as it is when its
 * first `synced` event fires.
 */
function providerWithSyncedSnapshot (clients, room) {
  const doc = new Y.Doc()
  const provider = clients.provider(room, { doc, connect: false })
  const record = { snapshot: null, updatesBeforeSynced: 0 }
  doc.on('update', () => { if (record.snapshot === null) record.updatesBeforeSynced += 1 })
  provider.on('synced', (state) => {
    if (state && record.snapshot === null) record.snapshot = docSnapshot(doc)
  })
  provider.connect()
  return { provider, record }
}

describe('no empty flash: the first sync already has the stored document', () => {
  // Short idle grace so rooms unload during the test; frequent compaction
  // so that what is loaded after the restart is partly compacted.
  const { server, clients } = serverSuite({ roomGrace: '1s', extraArgs: ['--compact-after-updates', '25'] }, { setup: writeRoomsAndRestart })
  const rooms = []
  const expected = new Map()

  async function writeRoomsAndRestart () {
    // Several rooms, each written as many small, separate updates.
    for (let r = 0; r < 3; r++) {
      const room = uniqueName(`flash-${r}`)
      rooms.push(room)
      const writer = await clients.synced(room)
      const reader = await clients.synced(room)
      const text = writer.doc.getText('text')
      for (let i = 0; i < EDITS; i++) {
        text.insert(text.length, `${i},`)
        if (i % 10 === 0) writer.doc.getMap('map').set(`k${i}`, i)
        if (i % 25 === 0) writer.doc.getArray('list').push([i])
      }
      text.delete(0, 2) // a deletion too, so the stored form has a delete set
      await waitForConvergence([writer.doc, reader.doc], {
        what: `room ${r} content to reach a second client`,
        check: (d) => d.getMap('map').get(`k${LAST_KEY}`) === LAST_KEY
      })
      expected.set(room, docSnapshot(writer.doc))
    }
    await clients.destroyAll()
    await server.restart()
  }

  test('at its first synced event a new client already shows the stored document', server.guard(async (t) => {
    const room = rooms[0]
    const { provider, record } = providerWithSyncedSnapshot(clients, room)
    await waitForSynced(provider)
    assert.notEqual(record.snapshot, null)
    assert.deepEqual(record.snapshot, expected.get(room),
      'document at the first synced event differs from the stored one (empty or partial flash)')
    assert.ok(record.snapshot.text.length > 0)
    t.diagnostic(`${record.updatesBeforeSynced} doc update(s) applied up to the first synced event`)
  }))

  test('the first sync step 2 from the server carries the whole stored document', server.guard(async () => {
    const room = rooms[1]
    const raw = await clients.rawSocket(room)
    await raw.send(encodeSyncStep1()) // empty state vector: "send me everything"
    const first = await raw.waitForMessage(isSyncStep2, {
      what: 'the first sync step 2'
    })
    const earlierUpdates = raw.decoded()
      .slice(0, raw.decoded().findIndex(isSyncStep2))
      .filter(isSyncUpdate)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, first.payload)
    assert.deepEqual(docSnapshot(doc), expected.get(room),
      `first sync step 2 (${first.payload.length} bytes) does not hold the stored document`)
    assert.equal(earlierUpdates.length, 0, 'the server sent document updates before its sync step 2')
    doc.destroy()
  }))

  test('clients racing to open a cold room all get the full document at their first synced', server.guard(async () => {
    const room = rooms[2]
    const racers = Array.from({ length: 6 }, () => providerWithSyncedSnapshot(clients, room))
    await Promise.all(racers.map(({ provider }) => waitForSynced(provider)))
    racers.forEach(({ record }, i) => {
      assert.deepEqual(record.snapshot, expected.get(room), `racer ${i} saw a different document at its first synced event`)
    })
  }))

  test('a room reopened after its idle grace period has ended still syncs fully at once', server.guard(async (t) => {
    const room = uniqueName('flash-idle')
    const writer = await clients.synced(room)
    writer.doc.getText('text').insert(0, 'written before going idle')
    writer.doc.getMap('map').set('idle', true)
    const reader = await clients.synced(room)
    await waitUntil(() => reader.doc.getMap('map').get('idle') === true, { what: 'the reader to receive the content' })
    const want = docSnapshot(writer.doc)
    await clients.destroyAll()

    // Reopen repeatedly across the 1 s grace period: whether the room is
    // still loaded or has been unloaded, the first sync must be complete.
    const deadline = Date.now() + 2500
    let attempts = 0
    while (Date.now() < deadline || attempts < 3) {
      attempts += 1
      const { provider, record } = providerWithSyncedSnapshot(clients, room)
      await waitForSynced(provider)
      assert.deepEqual(record.snapshot, want, `attempt ${attempts}: incomplete document at the first synced event`)
      clients.destroyProvider(provider)
    }
    t.diagnostic(`${attempts} reopen attempts`)
    await server.assertHealthy()

    // Certainly cold now: wait until the server reports no room in memory,
    // then open the room once more.
    await waitUntil(async () => (await server.metric('coform_rooms_loaded')) === 0, {
      timeoutMs: 10000,
      what: 'the idle room to be unloaded (coform_rooms_loaded == 0) after its 1 s grace'
    })
    const { provider, record } = providerWithSyncedSnapshot(clients, room)
    await waitForSynced(provider)
    assert.deepEqual(record.snapshot, want, 'incomplete document at the first synced event after the room was unloaded')
  }))
})
