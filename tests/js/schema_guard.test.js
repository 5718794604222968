// Plain y-websocket clients (no Coform extensions) writing what the form
// model refuses: the server repairs it, and every client, the writer
// included, converges on a valid form.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { Y, serverSuite, uniqueName, waitForConvergence } from './harness.js'

/** A component as a Y.Map (fields set after it is attached). */
function addComponent (doc, id, fields) {
  const map = new Y.Map()
  doc.getMap('components').set(id, map)
  for (const [k, v] of Object.entries(fields)) map.set(k, v)
  return map
}

function components (doc) {
  return doc.getMap('components').toJSON()
}

describe('schema guard', () => {
  const { server, clients } = serverSuite()

  test('an unknown type, a mistyped field and a dangling parent are repaired for every plain client', server.guard(async () => {
    const room = uniqueName('guard')
    const [a, b] = await clients.syncedAll(room, 2)
    a.doc.transact(() => {
      addComponent(a.doc, 'name', { id: 'name', type: 'text', label: 'Name', index: 'a0' })
    })
    await waitForConvergence([a.doc, b.doc], { check: (d) => components(d).name !== undefined })

    // The writer's own client sees the invalid form for a moment; the
    // repair reaches it like any other update.
    a.doc.transact(() => {
      addComponent(a.doc, 'bad', { id: 'bad', type: 'hologram', index: 'a1' })
      const name = a.doc.getMap('components').get('name')
      name.set('label', 42)
      name.set('parent', 'nowhere')
    })
    await waitForConvergence([a.doc, b.doc], {
      what: 'the repair to reach both clients',
      check: (d) => components(d).bad === undefined && components(d).name?.label === 'Name' &&
        components(d).name?.parent === null
    })
    for (const p of [a, b]) {
      assert.deepEqual(components(p.doc), { name: { id: 'name', type: 'text', label: 'Name', index: 'a0', parent: null } })
    }
    const repaired = await server.metric('coform_schema_repaired_updates_total')
    assert.ok(repaired >= 1, `coform_schema_repaired_updates_total = ${repaired}`)
  }))
})
