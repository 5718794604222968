// Rooms are isolated: documents and presence in one room never show up in a
// room with a different name, including names that are prefixes of each
// other or differ only in case.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  docSummary,
  serverSuite,
  uniqueName,
  waitUntil
} from './harness.js'

const textOf = (p) => p.doc.getText('text').toString()

describe('room isolation', () => {
  const { server, clients } = serverSuite()

  /** Two synced clients in room `nameA`, then two in room `nameB`. */
  async function twoClientsEach (nameA, nameB) {
    const opened = []
    for (const name of [nameA, nameA, nameB, nameB]) opened.push(await clients.synced(name))
    return opened
  }

  /**
   * Edits in room `nameA` must reach the other client of `nameA` and nothing
   * in `nameB`, and vice versa.
   */
  async function assertDocumentsIsolated (nameA, nameB) {
    const [a1, a2, b1, b2] = await twoClientsEach(nameA, nameB)

    a1.doc.getText('text').insert(0, 'secret-of-A')
    a1.doc.getMap('map').set('owner', 'A')
    b1.doc.getText('text').insert(0, 'secret-of-B')
    b1.doc.getMap('map').set('owner', 'B')

    await waitUntil(() => textOf(a2) === 'secret-of-A', { what: `room '${nameA}' to relay its own edit`, detail: () => docSummary(a2.doc) })
    await waitUntil(() => textOf(b2) === 'secret-of-B', { what: `room '${nameB}' to relay its own edit`, detail: () => docSummary(b2.doc) })

    // Another round in each room: by the time it arrives, a leaked update from
    // the first round would have arrived too.
    a1.doc.getArray('list').push(['a-round-2'])
    b1.doc.getArray('list').push(['b-round-2'])
    await waitUntil(() => a2.doc.getArray('list').length === 1 && b2.doc.getArray('list').length === 1, {
      what: 'second round of edits to arrive in both rooms'
    })

    for (const p of [a1, a2]) {
      assert.equal(textOf(p), 'secret-of-A', `a client of '${nameA}' sees foreign text`)
      assert.equal(p.doc.getMap('map').get('owner'), 'A')
      assert.deepEqual(p.doc.getArray('list').toArray(), ['a-round-2'])
    }
    for (const p of [b1, b2]) {
      assert.equal(textOf(p), 'secret-of-B', `a client of '${nameB}' sees foreign text`)
      assert.equal(p.doc.getMap('map').get('owner'), 'B')
      assert.deepEqual(p.doc.getArray('list').toArray(), ['b-round-2'])
    }

    // Newcomers get only their own room's document.
    for (const [name, expected] of [[nameA, 'secret-of-A'], [nameB, 'secret-of-B']]) {
      const late = await clients.synced(name)
      await waitUntil(() => textOf(late) === expected, { what: `a newcomer in '${name}' to get its room's document`, detail: () => docSummary(late.doc) })
      assert.deepEqual(late.doc.getArray('list').toArray(), [name === nameA ? 'a-round-2' : 'b-round-2'])
    }
  }

  test('documents in two differently named rooms stay separate', server.guard(async () => {
    await assertDocumentsIsolated(uniqueName('iso-left'), uniqueName('iso-right'))
  }))

  test('a room name that is a prefix of another is a different room', server.guard(async () => {
    const base = uniqueName('iso-prefix')
    await assertDocumentsIsolated(base, `${base}0`)
  }))

  test('room names that differ only in case are different rooms', server.guard(async () => {
    const base = uniqueName('iso-case')
    await assertDocumentsIsolated(base, base.toUpperCase())
  }))

  test('room names with spaces and non-ASCII letters are rooms of their own', server.guard(async () => {
    const base = uniqueName('iso')
    // The stock provider puts the name into the URL as is; the URL parser
    // percent-encodes it and the server decodes it back.
    await assertDocumentsIsolated(`${base} formulär ünïcode`, `${base} formular unicode`)
  }))

  test('awareness in one room does not reach another room', server.guard(async () => {
    const nameA = uniqueName('iso-aw-a')
    const nameB = uniqueName('iso-aw-b')
    const [a1, a2, b1, b2] = await twoClientsEach(nameA, nameB)

    a1.awareness.setLocalStateField('user', { name: 'in-room-a' })
    b1.awareness.setLocalStateField('user', { name: 'in-room-b' })
    await waitUntil(() => a2.awareness.getStates().get(a1.doc.clientID)?.user?.name === 'in-room-a', { what: 'room A to relay presence' })
    await waitUntil(() => b2.awareness.getStates().get(b1.doc.clientID)?.user?.name === 'in-room-b', { what: 'room B to relay presence' })

    // Second round, as a barrier for anything leaked by the first.
    a1.awareness.setLocalStateField('cursor', 1)
    b1.awareness.setLocalStateField('cursor', 2)
    await waitUntil(() => a2.awareness.getStates().get(a1.doc.clientID)?.cursor === 1 &&
      b2.awareness.getStates().get(b1.doc.clientID)?.cursor === 2, { what: 'second round of presence in both rooms' })

    const idsA = [a1.doc.clientID, a2.doc.clientID]
    const idsB = [b1.doc.clientID, b2.doc.clientID]
    for (const p of [b1, b2]) {
      for (const id of idsA) assert.equal(p.awareness.getStates().has(id), false, `room B sees presence ${id} of room A`)
    }
    for (const p of [a1, a2]) {
      for (const id of idsB) assert.equal(p.awareness.getStates().has(id), false, `room A sees presence ${id} of room B`)
    }

    // A newcomer in room B: once it has B's presence, it must not have A's.
    const late = await clients.synced(nameB)
    await waitUntil(() => late.awareness.getStates().get(b1.doc.clientID)?.cursor === 2, { what: "newcomer in room B to get room B's presence" })
    for (const id of idsA) assert.equal(late.awareness.getStates().has(id), false, `newcomer in room B sees presence ${id} of room A`)
  }))
})
