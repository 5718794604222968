// Malformed input closes only the offending socket with a protocol error
// code; the process, the room and the clients already in it carry on.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  Y,
  docSnapshot,
  docSummary,
  encodeRawAwarenessMessage,
  encodeSyncStep1,
  encodeUpdateMessage,
  serverSuite,
  uniqueName,
  waitUntil
} from './harness.js'

const BINARY_ERROR_CODES = [1002, 1007] // protocol error / invalid payload data
const TEXT_FRAME_CODES = [1003] // unsupported data

/** A valid `[sync, update, <update>]` message with some content in it. */
function validUpdateMessage (text = 'a perfectly valid update that will be cut short') {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, text)
  doc.getMap('map').set('k', 'v')
  const msg = encodeUpdateMessage(Y.encodeStateAsUpdate(doc))
  doc.destroy()
  return msg
}

const bytes = (...xs) => Uint8Array.from(xs.flat())

/** Reports a close and checks that it is an error close, not a normal one. */
function assertErrorClose (t, { code, reason }) {
  t.diagnostic(`close code ${code}${reason ? ` (${reason})` : ''}`)
  assert.ok(code !== 1000 && code !== 1005, `expected an error close code, got ${code}`)
}

const CASES = [
  {
    name: 'garbage bytes (a varint that never terminates)',
    frame: () => bytes(Array(16).fill(0xff))
  },
  {
    name: 'garbage bytes after a valid handshake',
    handshakeFirst: true,
    frame: () => bytes(0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe, 0xff, 0xff, 0xff)
  },
  {
    name: 'a truncated sync update message',
    handshakeFirst: true,
    frame: () => {
      const full = validUpdateMessage()
      return full.slice(0, Math.floor(full.length / 2))
    }
  },
  {
    name: 'a truncated sync step 1 (state vector length points past the end)',
    frame: () => bytes(0x00, 0x00, 0x05, 0x01)
  },
  {
    name: 'a well-framed update whose payload is not a Yjs update',
    frame: () => bytes(0x00, 0x02, 0x08, Array(8).fill(0xff))
  },
  {
    name: 'a sync step 2 with an undecodable payload',
    frame: () => bytes(0x00, 0x01, 0x04, 0xde, 0xad, 0xbe, 0xef)
  },
  {
    name: 'a huge varint length (4 GiB update in a tiny frame)',
    handshakeFirst: true,
    frame: () => bytes(0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02, 0x03)
  },
  {
    name: 'a varint length wider than 64 bits',
    frame: () => bytes(0x00, 0x02, Array(10).fill(0xff), 0x7f, 0x01)
  },
  {
    name: 'a truncated awareness message',
    handshakeFirst: true,
    frame: () => bytes(0x01, 0x0a, 0x01, 0x7b)
  },
  {
    name: 'an empty binary frame',
    frame: () => new Uint8Array(0)
  },
  {
    name: 'a text frame',
    text: true,
    expect: TEXT_FRAME_CODES,
    frame: () => 'hello, I am not a binary y-websocket message'
  }
]

describe('bad frames', () => {
  let room
  let resident
  let watcher
  const residentCloses = []
  let rawIdCounter = 0x0abc000
  let round = 0

  // Every test below shares the room, the resident and the watcher.
  const { server, clients } = serverSuite({}, { keepClients: true, setup: openSharedRoom })

  async function openSharedRoom () {
    room = uniqueName('bad-frames')
    resident = await clients.synced(room)
    watcher = await clients.synced(room)
    for (const p of [resident, watcher]) {
      p.on('connection-close', (event) => residentCloses.push({ client: p === resident ? 'resident' : 'watcher', code: event?.code }))
    }
    resident.doc.getText('text').insert(0, 'resident content;')
    resident.awareness.setLocalStateField('user', { name: 'resident' })
    await waitUntil(() => watcher.doc.getText('text').toString() === 'resident content;', { what: 'watcher to get the resident content' })
  }

  /** The resident client can still edit and the watcher still receives it. */
  async function residentStillWorks (label) {
    round += 1
    const marker = `[after ${round}]`
    resident.doc.getText('text').insert(resident.doc.getText('text').length, marker)
    await waitUntil(() => watcher.doc.getText('text').toString().includes(marker), {
      what: `the watcher to receive the resident's edit after ${label}`,
      detail: () => docSummary(watcher.doc)
    })
    assert.deepEqual(residentCloses, [], 'a client already in the room lost its connection')
  }

  for (const c of CASES) {
    test(`${c.name}: closes only that socket`, server.guard(async (t) => {
      const raw = await clients.rawSocket(room)
      let rawID = null
      if (c.handshakeFirst) {
        rawID = ++rawIdCounter
        await raw.send(encodeSyncStep1())
        await raw.send(encodeRawAwarenessMessage(rawID, 1, { user: { name: 'raw' } }))
        await waitUntil(() => watcher.awareness.getStates().has(rawID), { what: "the watcher to see the raw client's presence before the bad frame" })
      }

      const frame = c.frame()
      const { code, reason } = await raw.sendAndAwaitClose(frame, { binary: !c.text, what: `the server to close the socket after ${c.name}` })
      const expected = c.expect ?? BINARY_ERROR_CODES
      assertErrorClose(t, { code, reason })
      assert.ok(expected.includes(code),
        `sent ${c.text ? 'text' : 'binary'} frame ${c.text ? JSON.stringify(frame) : `[${Array.from(frame).join(',')}]`}: ` +
        `expected close code ${expected.join(' or ')}, got ${code}${reason ? ` (${reason})` : ''}`)

      if (rawID !== null) {
        await waitUntil(() => !watcher.awareness.getStates().has(rawID), {
          timeoutMs: 3000,
          what: "the closed socket's presence to be removed at the watcher"
        })
      }
      await server.assertHealthy()
      await residentStillWorks(c.name)
    }))
  }

  test('a new client joins the room that saw the bad frames and syncs everything', server.guard(async () => {
    await server.assertHealthy()
    const fresh = await clients.synced(room)
    await waitUntil(() => JSON.stringify(docSnapshot(fresh.doc)) === JSON.stringify(docSnapshot(resident.doc)), {
      what: 'the new client to hold the same document as the resident',
      detail: () => [docSummary(fresh.doc), docSummary(resident.doc)]
    })
    assert.ok(fresh.doc.getText('text').toString().startsWith('resident content;'))
    await waitUntil(() => fresh.awareness.getStates().get(resident.doc.clientID)?.user?.name === 'resident', {
      what: "the new client to see the resident's presence"
    })
    fresh.doc.getMap('map').set('fresh', true)
    await waitUntil(() => resident.doc.getMap('map').get('fresh') === true, { what: "the resident to receive the new client's edit" })
    assert.deepEqual(residentCloses, [], 'a client already in the room lost its connection')
  }))
})

describe('oversized frames', () => {
  const LIMIT = 64 * 1024
  const { server, clients } = serverSuite({ maxFrameBytes: LIMIT })

  test(`a frame above --max-frame-bytes closes only that socket; smaller frames pass`, server.guard(async (t) => {
    const room = uniqueName('oversize')
    const a = await clients.synced(room)
    const b = await clients.synced(room)

    const raw = await clients.rawSocket(room)
    await raw.send(encodeSyncStep1())
    const big = validUpdateMessage('x'.repeat(LIMIT * 3))
    assert.ok(big.length > LIMIT)
    const { code, reason } = await raw.sendAndAwaitClose(big, { what: `the server to close a socket that sent a ${big.length}-byte frame` })
    assertErrorClose(t, { code, reason })
    assert.equal(code, 1009, `a ${big.length}-byte frame over --max-frame-bytes ${LIMIT} should close with 1009 (message too big), got ${code}`)

    await server.assertHealthy()
    // The oversized update must not have been applied.
    const probe = await clients.synced(room)
    a.doc.getText('text').insert(0, 'small.')
    await waitUntil(() => probe.doc.getText('text').toString() === 'small.', {
      what: 'a small edit to arrive (and nothing of the oversized one)',
      detail: () => docSummary(probe.doc)
    })

    // A frame comfortably under the limit goes through.
    const medium = 'm'.repeat(Math.floor(LIMIT / 4))
    a.doc.getMap('map').set('medium', medium)
    await waitUntil(() => b.doc.getMap('map').get('medium') === medium, { what: 'a frame under the limit to be relayed' })
    assert.equal(a.wsconnected && b.wsconnected, true)
  }))
})
