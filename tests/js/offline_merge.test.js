// A client that goes offline keeps editing; when it comes back, its offline
// edits and the edits others made meanwhile merge on every replica.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { docSnapshot, docSummary, serverSuite, uniqueName, waitForConvergence } from './harness.js'
import { waitForSynced, waitUntil } from './support/wait.js'

describe('offline edits merge on reconnect', () => {
  // Compact often, so that clients come back to documents compacted while they were away.
  const { server, clients } = serverSuite({ extraArgs: ['--compact-after-updates', '10'] })

  test('offline edits of one client and online edits of another converge after connect()', server.guard(async () => {
    const room = uniqueName('offline')
    const a = await clients.synced(room)
    const b = await clients.synced(room)
    const watcher = await clients.synced(room)

    a.doc.getText('text').insert(0, 'base.')
    a.doc.getMap('map').set('title', 'draft')
    await waitForConvergence([a.doc, b.doc, watcher.doc], {
      what: 'the base content to reach everyone',
      check: (d) => d.getText('text').toString() === 'base.'
    })

    a.disconnect()
    assert.equal(a.wsconnected, false, 'provider A should be offline after disconnect()')

    // A edits offline: text, a map key nobody else touches, and a key B also sets.
    a.doc.getText('text').insert(5, '[offline-A]')
    a.doc.getMap('map').set('fromA', 'offline')
    a.doc.getMap('map').set('title', 'title-by-A')
    a.doc.getArray('list').push(['a1', 'a2'])

    // B edits online at the same time.
    b.doc.getText('text').insert(0, '[online-B]')
    b.doc.getMap('map').set('fromB', 'online')
    b.doc.getMap('map').set('title', 'title-by-B')
    b.doc.getArray('list').push(['b1'])

    // The watcher sees B's edits (so they went through the server) ...
    await waitUntil(() => watcher.doc.getMap('map').get('fromB') === 'online', {
      what: "B's online edits to reach the watcher",
      detail: () => docSummary(watcher.doc)
    })
    // ... and none of A's offline edits, which never left A.
    assert.equal(watcher.doc.getMap('map').get('fromA'), undefined, "A's offline edit leaked while A was disconnected")
    assert.ok(!watcher.doc.getText('text').toString().includes('[offline-A]'))
    assert.ok(!a.doc.getText('text').toString().includes('[online-B]'), 'A received edits while disconnected')

    a.connect()
    await waitForSynced(a, { what: 'A to sync again after connect()' })

    await waitForConvergence([a.doc, b.doc, watcher.doc], {
      what: 'A, B and the watcher to converge after A reconnected',
      check: (d) => {
        const text = d.getText('text').toString()
        const map = d.getMap('map')
        return text.includes('[offline-A]') && text.includes('[online-B]') && text.includes('base.') &&
          map.get('fromA') === 'offline' && map.get('fromB') === 'online' &&
          d.getArray('list').length === 3
      }
    })
    const title = a.doc.getMap('map').get('title')
    assert.ok(title === 'title-by-A' || title === 'title-by-B', `conflicting key resolved to ${title}`)
    assert.deepEqual(docSnapshot(b.doc), docSnapshot(a.doc))
    assert.deepEqual(docSnapshot(watcher.doc), docSnapshot(a.doc))
  }))

  test('both sides editing while disconnected (several rounds) converge', server.guard(async () => {
    const room = uniqueName('offline-rounds')
    const a = await clients.synced(room)
    const b = await clients.synced(room)

    for (let round = 0; round < 3; round++) {
      a.disconnect()
      for (let i = 0; i < 20; i++) {
        a.doc.getArray('list').push([`a${round}-${i}`])
        b.doc.getArray('list').push([`b${round}-${i}`])
      }
      a.doc.getText('text').insert(0, `A${round};`)
      b.doc.getText('text').insert(0, `B${round};`)
      a.connect()
      await waitForSynced(a, { what: `A to sync again (round ${round})` })
      await waitForConvergence([a.doc, b.doc], {
        what: `A and B to converge after round ${round}`,
        check: (d) => d.getArray('list').length === 40 * (round + 1)
      })
    }
    const text = a.doc.getText('text').toString()
    for (let round = 0; round < 3; round++) {
      assert.ok(text.includes(`A${round};`) && text.includes(`B${round};`), `missing round ${round} in ${text}`)
    }
  }))

  test('offline edits made while the server restarts reach the restarted server and its clients', server.guard(async () => {
    const room = uniqueName('offline-restart')
    const a = await clients.synced(room)
    const b = await clients.synced(room)
    a.doc.getText('text').insert(0, 'before-restart.')
    await waitForConvergence([a.doc, b.doc], {
      what: 'initial content to reach B',
      check: (d) => d.getText('text').length > 0
    })

    a.disconnect()
    clients.destroyProvider(b)
    await server.restart()

    // Edits made while there was no server at all.
    a.doc.getText('text').insert(a.doc.getText('text').length, 'while-down.')
    a.doc.getMap('map').set('offline', true)

    // The restarted server listens on a new port; point A at it and reconnect.
    a.serverUrl = server.wsUrl
    a.connect()
    await waitForSynced(a, { what: 'A to sync with the restarted server' })

    const c = await clients.synced(room)
    await waitUntil(() => c.doc.getText('text').toString() === 'before-restart.while-down.' &&
      c.doc.getMap('map').get('offline') === true, {
      what: "a new client to see both the stored content and A's offline edits",
      detail: () => docSummary(c.doc)
    })
    await waitForConvergence([a.doc, c.doc], { what: 'A and the new client to converge' })
  }))
})
