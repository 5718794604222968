// Several clients editing one document converge; late joiners and clients
// after a restart see everything; the server does not echo updates back.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { Y, docSnapshot, docSummary, serverSuite, uniqueName, waitForConvergence } from './harness.js'
import { encodeSyncStep1, encodeUpdateMessage, isSyncStep2, isSyncUpdate } from './support/protocol.js'
import { waitForSynced, waitUntil } from './support/wait.js'

const ROUNDS = 25
const COMPACT_AFTER = 20

/** Applies a burst of interleaved edits from every client without yielding. */
function concurrentEdits (providers, rounds = ROUNDS) {
  for (let r = 0; r < rounds; r++) {
    providers.forEach((p, i) => {
      const doc = p.doc
      const text = doc.getText('text')
      const map = doc.getMap('map')
      const list = doc.getArray('list')
      doc.transact(() => {
        // Alternate inserts at the start, in the middle and at the end.
        const token = `<c${i}r${r}>`
        // Positions are token boundaries so tokens stay intact and can be checked.
        const str = text.toString()
        const mid = str.indexOf('>', Math.floor(str.length / 2))
        const pos = r % 3 === 0 ? 0 : r % 3 === 1 ? (mid < 0 ? str.length : mid + 1) : str.length
        text.insert(pos, token)
        map.set(`c${i}r${r}`, { client: i, round: r })
        map.set('contended', `c${i}r${r}`) // every client fights over one key
        list.push([`c${i}r${r}`])
      })
    })
  }
}

function expectAllEdits (doc, clientCount, rounds = ROUNDS) {
  const text = doc.getText('text').toString()
  const map = doc.getMap('map')
  const list = doc.getArray('list').toArray()
  for (let i = 0; i < clientCount; i++) {
    for (let r = 0; r < rounds; r++) {
      if (!text.includes(`<c${i}r${r}>`)) return false
      if (map.get(`c${i}r${r}`)?.round !== r) return false
      if (!list.includes(`c${i}r${r}`)) return false
    }
  }
  return list.length === clientCount * rounds
}

describe('convergence', () => {
  // Compact often, so that compaction runs under the tests below too.
  const { server, clients } = serverSuite({ extraArgs: ['--compact-after-updates', String(COMPACT_AFTER)] })

  test('three clients making concurrent Y.Text and Y.Map edits converge to identical content', server.guard(async () => {
    const room = uniqueName('converge')
    const providers = await clients.syncedAll(room, 3)

    concurrentEdits(providers)

    const docs = providers.map((p) => p.doc)
    await waitForConvergence(docs, {
      timeoutMs: 10000,
      what: 'three clients to converge on every concurrent edit',
      check: (d) => expectAllEdits(d, 3)
    })
    const [a, b, c] = docs.map((d) => docSnapshot(d))
    assert.deepEqual(b, a)
    assert.deepEqual(c, a)
    assert.equal(docs[0].getArray('list').length, 3 * ROUNDS)
    assert.equal(docs[0].getText('text').length, docs[1].getText('text').length)
    assert.match(String(docs[0].getMap('map').get('contended')), /^c[0-2]r\d+$/)
  }))

  test('a late joiner receives everything, while others are connected and after all left', server.guard(async () => {
    const room = uniqueName('late')
    const writers = await clients.syncedAll(room, 3)
    concurrentEdits(writers, 10)
    await waitForConvergence(writers.map((p) => p.doc), {
      what: 'writers to converge',
      check: (d) => expectAllEdits(d, 3, 10)
    })
    const expected = docSnapshot(writers[0].doc)

    // Joins while the writers are still online.
    const late = clients.provider(room)
    let atSynced = null
    late.on('synced', (s) => { if (s && atSynced === null) atSynced = docSnapshot(late.doc) })
    await waitForSynced(late)
    assert.deepEqual(atSynced, expected, 'late joiner should have the whole document when it reports synced')

    // Joins after every writer has gone.
    for (const p of writers) clients.destroyProvider(p)
    clients.destroyProvider(late)
    const later = await clients.synced(room)
    await waitUntil(() => JSON.stringify(docSnapshot(later.doc)) === JSON.stringify(expected), {
      what: 'a joiner of the emptied room to get the whole document',
      detail: () => docSummary(later.doc)
    })
  }))

  test('a fresh client after a graceful restart on the same data dir sees everything', server.guard(async () => {
    const room = uniqueName('restart')
    const a = await clients.synced(room)
    const b = await clients.synced(room)
    concurrentEdits([a, b], 10)
    await waitForConvergence([a.doc, b.doc], {
      what: 'both writers to converge before the restart',
      check: (d) => expectAllEdits(d, 2, 10)
    })
    const expected = docSnapshot(a.doc)
    await clients.destroyAll()

    await server.restart()

    // Exactly what a client holds at its first `synced` is checked in
    // sync_before_flash.test.js; here the document just has to come back.
    const fresh = await clients.synced(room)
    await waitUntil(() => JSON.stringify(docSnapshot(fresh.doc)) === JSON.stringify(expected), {
      what: 'a client after the restart to receive the whole stored document',
      detail: () => docSummary(fresh.doc)
    })
    assert.deepEqual(docSnapshot(fresh.doc), expected)
    // ...and the restored room still accepts and relays edits.
    const other = await clients.synced(room)
    fresh.doc.getText('text').insert(0, 'after-restart:')
    await waitUntil(() => other.doc.getText('text').toString().startsWith('after-restart:'), {
      what: 'an edit made after the restart to reach another client'
    })
  }))

  test('an update that reached another client survives a hard kill (stored before broadcast)', server.guard(async () => {
    const room = uniqueName('durable')
    const writer = await clients.synced(room)
    const reader = await clients.synced(room)
    writer.doc.getText('text').insert(0, 'committed')
    writer.doc.getMap('map').set('answer', 42)
    await waitForConvergence([writer.doc, reader.doc], {
      what: 'the reader to receive the update',
      check: (d) => d.getMap('map').get('answer') === 42
    })
    // The reader has the update, so the server must already have stored it.
    await server.kill()
    await clients.destroyAll()
    await server.start()

    const fresh = await clients.synced(room)
    await waitUntil(() => fresh.doc.getMap('map').get('answer') === 42, {
      what: 'the update acknowledged to another client before SIGKILL to be present after restart',
      detail: () => docSummary(fresh.doc)
    })
    assert.equal(fresh.doc.getText('text').toString(), 'committed')
    assert.equal(fresh.doc.getMap('map').get('answer'), 42)
  }))

  test('the server does not echo a client\'s own update back to it', server.guard(async () => {
    const room = uniqueName('echo')
    const observer = await clients.synced(room)
    const raw = await clients.rawSocket(room)
    await raw.send(encodeSyncStep1())
    await raw.waitForMessage(isSyncStep2, { what: 'sync step 2 for the raw client' })

    // The raw client authors an update.
    const mine = new Y.Doc()
    mine.getText('text').insert(0, 'from raw client')
    const update = Y.encodeStateAsUpdate(mine)
    const before = raw.messages.length
    await raw.send(encodeUpdateMessage(update))
    await waitUntil(() => observer.doc.getText('text').toString() === 'from raw client', {
      what: 'the observer to receive the raw client\'s update'
    })
    // Round trip on the raw socket: once the reply to this arrives, anything
    // the server queued for this socket before it has arrived too.
    await raw.send(encodeSyncStep1(mine))
    await raw.waitForMessage((m, i) => i >= before && isSyncStep2(m),
      { what: 'the reply to a second sync step 1' })

    const later = raw.decoded().slice(before)
    const echoed = later.filter(isSyncUpdate)
    assert.equal(echoed.length, 0,
      `server sent ${echoed.length} update message(s) back to their author: ` +
      JSON.stringify(echoed.map((m) => Array.from(m.raw))))
    mine.destroy()
  }))
  test('a large document (2 MB of text) reaches a late joiner', server.guard(async () => {
    const room = uniqueName('large')
    const writer = await clients.synced(room)
    const big = 'lorem ipsum dolor sit amet '.repeat(80000) // ~2.1 MB
    writer.doc.getText('text').insert(0, big)
    writer.doc.getMap('map').set('after-big', true)
    const late = await clients.synced(room, { timeoutMs: 20000 })
    await waitUntil(() => late.doc.getMap('map').get('after-big') === true, {
      timeoutMs: 20000,
      what: 'the late joiner to receive the large document',
      detail: () => docSummary(late.doc)
    })
    assert.equal(late.doc.getText('text').length, big.length)
    assert.equal(late.doc.getText('text').toString(), big)
  }))

  test('an update that arrives before the one it depends on is kept until that one arrives, through compaction and restart', server.guard(async () => {
    const room = uniqueName('pending')
    // One author, two consecutive edits; the second depends on the first.
    const author = new Y.Doc()
    const updates = []
    author.on('update', (u) => updates.push(u))
    author.getText('text').insert(0, 'first ')
    author.getText('text').insert(6, 'second')
    assert.equal(updates.length, 2)

    // The second edit reaches the server first (e.g. relayed by another tab).
    const early = await clients.rawSocket(room)
    await early.send(encodeSyncStep1())
    await early.send(encodeUpdateMessage(updates[1]))

    // Enough unrelated updates afterwards to trigger compaction.
    const compactionsBefore = await server.metric('coform_compactions_total')
    const filler = await clients.synced(room)
    for (let i = 0; i < COMPACT_AFTER * 2; i++) filler.doc.getArray('list').push([i])
    const observer = await clients.synced(room)
    await waitUntil(() => observer.doc.getArray('list').length === COMPACT_AFTER * 2, { what: 'filler updates to reach the observer' })
    await waitUntil(async () => (await server.metric('coform_compactions_total')) > compactionsBefore, {
      what: `a compaction of the room after ${COMPACT_AFTER * 2} updates`
    })
    assert.equal(observer.doc.getText('text').toString(), '', 'an edit whose dependency is missing cannot be visible yet')

    await clients.destroyAll()
    await server.restart()

    // Now the first edit arrives.
    const late = await clients.rawSocket(room)
    await late.send(encodeSyncStep1())
    await late.send(encodeUpdateMessage(updates[0]))
    const fresh = await clients.synced(room)
    await waitUntil(() => fresh.doc.getText('text').toString() === 'first second', {
      what: 'both edits to be visible once the missing one arrived',
      detail: () => docSummary(fresh.doc)
    })
    assert.equal(fresh.doc.getArray('list').length, COMPACT_AFTER * 2)
    author.destroy()
  }))

  test('stdout carries nothing but one listening line per start', server.guard(async () => {
    assert.ok(server.runs >= 2, 'this runs after the restarts above')
    assert.equal(server.stdoutLines.length, server.runs, `stdout lines: ${JSON.stringify(server.stdoutLines)}`)
    for (const line of server.stdoutLines) assert.match(line, /^coform listening on http:\/\/127\.0\.0\.1:\d+$/)
  }))
})
