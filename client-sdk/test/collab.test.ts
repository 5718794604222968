// Live editing against the real server: convergence, concurrent moves,
// change events, presence, per-user undo and the viewer role.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'

import { CoformClient, CoformError, type ChangeEvent, type Person, type PresenceEvent, type Repair, type TemplateSession } from '../src/index.js'
import { Server, unique, waitUntil, withLog } from './harness.js'

let server: Server | undefined
let alice: CoformClient
let bob: CoformClient
let carol: CoformClient
let workspaceId: string
const sessions: TemplateSession[] = []

async function newTemplate (): Promise<string> {
  const t = await alice.templates.create({ workspaceId, name: unique('form') })
  return t.id
}

async function open (client: CoformClient, id: string, opts = {}): Promise<TemplateSession> {
  const s = await client.openTemplate(id, { undoCaptureTimeoutMs: 0, ...opts })
  sessions.push(s)
  return s
}

function sameDoc (a: TemplateSession, b: TemplateSession): boolean {
  return JSON.stringify(canonical(a.toJSON())) === JSON.stringify(canonical(b.toJSON()))
}

function canonical (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
  }
  return v
}

async function converge (...s: TemplateSession[]): Promise<void> {
  await waitUntil(() => s.every((x) => sameDoc(s[0]!, x)), 'sessions to converge', undefined,
    () => s.map((x) => x.toJSON()))
}

describe('live editing', () => {
  before(async () => {
    server = await new Server().start()
    alice = (await server.user('Alice')).client
    const b = await server.user('Bob')
    bob = b.client
    const c = await server.user('Carol')
    carol = c.client
    const ws = await alice.workspaces.create({ name: 'Design team' })
    workspaceId = ws.id
    await alice.workspaces.addMember(workspaceId, { email: b.email, role: 'editor' })
    await alice.workspaces.addMember(workspaceId, { email: c.email, role: 'viewer' })
  })

  after(async () => {
    for (const s of sessions) s.close()
    await server?.dispose()
  })

  test('two sessions converge, and the server has the same content', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    const b = await open(bob, id)
    const seenByBob: ChangeEvent[] = []
    b.on('change', (e) => seenByBob.push(e))

    const section = a.addComponent({ id: 'contact', type: 'section', label: 'Contact' })
    const name = a.addComponent({ type: 'text', label: 'Name', parent: section, properties: { placeholder: 'Ada' } })
    const email = b.addComponent({ type: 'email', label: 'E-mail', validation: { required: true } })
    a.setMeta('name', 'Contact form')
    b.updateComponent(email, { styling: { theme: 'dark', customStyles: { color: 'red' } }, position: { x: 1, y: 2 } })
    await converge(a, b)

    assert.deepEqual(b.components().map((c) => c.id).sort(), [section, name, email].sort())
    assert.equal(b.component(name)?.parent, section)
    assert.equal(b.component(name)?.properties.placeholder, 'Ada')
    assert.equal(a.component(email)?.validation.required, true)
    assert.deepEqual(a.component(email)?.styling, { theme: 'dark', customStyles: { color: 'red' } })
    assert.deepEqual(a.component(email)?.position, { x: 1, y: 2 })
    assert.equal(b.getMeta('name'), 'Contact form')

    // Bob's change events name what Alice did, as remote changes.
    const added = seenByBob.filter((e) => !e.local).flatMap((e) => e.added)
    assert.ok(added.includes(section) && added.includes(name), JSON.stringify(seenByBob))
    assert.ok(seenByBob.some((e) => !e.local && e.meta.includes('name')))
    assert.ok(seenByBob.some((e) => e.local && e.added.includes(email)))

    // Key-by-key edits: both edit different properties of one component at once.
    a.updateComponent(name, { properties: { placeholder: 'Grace' } })
    b.updateComponent(name, { properties: { helpText: 'As on a passport' }, label: 'Full name' })
    await converge(a, b)
    assert.deepEqual(a.component(name)?.properties, { placeholder: 'Grace', helpText: 'As on a passport' })
    const fieldsSeen = seenByBob.filter((e) => !e.local && e.updated.includes(name)).flatMap((e) => e.fields[name] ?? [])
    assert.ok(fieldsSeen.includes('properties.placeholder'), JSON.stringify(fieldsSeen))

    await a.whenSaved()
    await b.whenSaved()
    const rest = await alice.templates.get(id)
    assert.deepEqual(canonical(rest.content), canonical(a.toJSON()))

    // Removing a section removes what is inside it.
    assert.equal(a.removeComponent(section), true)
    await converge(a, b)
    assert.deepEqual(b.components().map((c) => c.id), [email])
    assert.equal(a.removeComponent('nope'), false)
  }))

  test('concurrent moves of one component leave exactly one, in the same place for everyone', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    const b = await open(bob, id)
    const s1 = a.addComponent({ id: 's1', type: 'section', label: 'One' })
    const ids = ['f0', 'f1', 'f2', 'f3', 'f4'].map((fid) => a.addComponent({ id: fid, type: 'text', label: fid }))
    a.addComponent({ id: 'k0', type: 'text', parent: s1 })
    await converge(a, b)

    let seed = 7
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    const targets = (): Array<{ parent?: string | null, before?: string, after?: string }> => [
      { before: 'f0' }, { after: 'f4' }, { after: 'f2' }, { before: 'f3' }, { parent: s1 }, { parent: null }, { after: 'k0' }
    ]
    for (let round = 0; round < 25; round++) {
      const moving = ids[rand(ids.length)]!
      const ta = targets().filter((t) => t.before !== moving && t.after !== moving)
      const tb = ta
      // Same tick: neither has seen the other's move.
      a.moveComponent(moving, ta[rand(ta.length)]!)
      b.moveComponent(moving, tb[rand(tb.length)]!)
      if (round % 5 === 0) {
        // Both also insert at the very same spot.
        a.addComponent({ id: `a${round}`, type: 'text', after: 'f1' })
        b.addComponent({ id: `b${round}`, type: 'text', after: 'f1' })
      }
    }
    await converge(a, b)
    for (const s of [a, b]) {
      const tree = s.tree().map((c) => c.id)
      assert.equal(new Set(tree).size, tree.length, `duplicates in ${tree.join(',')}`)
      assert.equal(tree.length, s.components().length)
      for (const f of ids) assert.equal(tree.filter((x) => x === f).length, 1, `${f} appears once`)
    }
    assert.deepEqual(a.tree().map((c) => [c.id, c.depth]), b.tree().map((c) => [c.id, c.depth]))
    // Explicit placements work as asked.
    a.moveComponent('f3', { before: 'f0' })
    a.moveComponent('f0', { parent: s1 })
    a.moveComponent('f1', { parent: s1, before: 'k0' })
    await converge(a, b)
    const inS1 = b.children(s1).map((c) => c.id)
    assert.ok(inS1.indexOf('f1') < inS1.indexOf('k0'), inS1.join(','))
    assert.equal(inS1[inS1.length - 1], 'f0')
    assert.throws(() => a.moveComponent(s1, { parent: s1 }), (e: unknown) => e instanceof CoformError && e.code === 'invalid_argument')
    assert.throws(() => a.moveComponent('f2', { parent: 'f4' }), /not a section/)
  }))

  test('siblings with indexes written by another tool are re-keyed in display order before a placement', withLog(() => server, async () => {
    const t = await alice.templates.create({
      workspaceId,
      name: unique('form'),
      content: {
        components: {
          x: { id: 'x', type: 'text', label: 'X', index: 'a0' },
          y: { id: 'y', type: 'text', label: 'Y', index: 'b0' },
          z: { id: 'z', type: 'text', label: 'Z', index: 'b1' }
        }
      }
    })
    const a = await open(alice, t.id)
    const b = await open(bob, t.id)
    // `a0` and `b0` end with 0: not keys new ones can be placed between.
    const added = a.addComponent({ type: 'text', label: 'New' })
    assert.deepEqual(a.tree().map((c) => c.id), ['x', 'y', 'z', added])
    a.moveComponent('z', { before: 'x' })
    a.moveComponent('x', { after: 'y' })
    await converge(a, b)
    assert.deepEqual(b.tree().map((c) => c.id), ['z', 'y', 'x', added])
    for (const c of b.components()) assert.match(c.index, /^[0-9A-Za-z]*[1-9A-Za-z]$/, c.id)
  }))

  test('two sections moved into each other at once: the server breaks the loop, and both sessions hear why', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    const b = await open(bob, id)
    const heard: Array<{ who: string, yours: boolean, repairs: Repair[] }> = []
    a.on('repaired', (e) => heard.push({ who: 'a', ...e }))
    b.on('repaired', (e) => heard.push({ who: 'b', ...e }))
    a.addComponent({ id: 'A', type: 'section' })
    a.addComponent({ id: 'B', type: 'section' })
    a.addComponent({ id: 'inA', type: 'text', parent: 'A' })
    await converge(a, b)
    // Each move is valid alone; together they would make a loop.
    a.moveComponent('A', { parent: 'B' })
    b.moveComponent('B', { parent: 'A' })
    await waitUntil(() => heard.length === 2 && sameDoc(a, b), 'both sessions to hear of the repair and converge',
      undefined, () => ({ heard, a: a.toJSON() }))
    // The move that arrived second was undone to the top level: one
    // section is inside the other, nothing is lost.
    const top = a.component('A')?.parent === null ? 'A' : 'B'
    const inner = top === 'A' ? 'B' : 'A'
    assert.equal(a.component(top)?.parent, null)
    assert.equal(a.component(inner)?.parent, top)
    for (const s of [a, b]) {
      assert.deepEqual(s.tree().map((c) => c.id).sort(), ['A', 'B', 'inA'])
      assert.equal(s.displayParent(inner), top)
    }
    for (const h of heard) {
      assert.deepEqual(h.repairs.map((r) => [r.component, r.field, r.action]), [[top, 'parent', 'reparented']])
      assert.match(h.repairs[0]!.reason, /loop/)
    }
    // Only the session whose move was undone hears it as its own.
    assert.equal(heard.filter((h) => h.yours).length, 1)
  }))

  test('what a plain Yjs client writes outside the model is repaired for everyone', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    const b = await open(bob, id)
    const name = a.addComponent({ type: 'text', label: 'Name', properties: { placeholder: 'Ada' } })
    await converge(a, b)
    const heard: Array<{ yours: boolean, repairs: Repair[] }> = []
    a.on('repaired', (e) => heard.push(e))
    // Straight into the document, as any Yjs client could: an unknown
    // component type, a number where the placeholder's text belongs.
    b.doc.transact(() => {
      const comps = b.doc.getMap('components')
      const bad = new Y.Map<unknown>()
      comps.set('bad', bad)
      bad.set('id', 'bad')
      bad.set('type', 'hologram')
      bad.set('index', 'a5')
      const props = (comps.get(name) as Y.Map<unknown>).get('properties') as Y.Map<unknown>
      props.set('placeholder', 42)
    })
    await waitUntil(() => heard.length === 1 && sameDoc(a, b) && b.component('bad') === undefined,
      'the repair to reach both sessions', undefined, () => ({ heard, b: b.toJSON() }))
    assert.equal(heard[0]!.yours, false)
    assert.deepEqual(heard[0]!.repairs.map((r) => [r.component, r.field, r.action]).sort(),
      [['bad', '', 'dropped'], [name, 'properties.placeholder', 'restored']])
    assert.equal(b.component(name)?.properties.placeholder, 'Ada')
    assert.equal((b.doc.getMap('components').get('bad')), undefined)
  }))

  test('presence: people arrive with their account names and colours, and leave', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    const events: PresenceEvent[] = []
    a.on('presence', (e) => events.push(e))
    assert.deepEqual(a.people().map((p) => [p.name, p.self]), [['Alice', true]])

    const b = await open(bob, id)
    // Bob tries to claim another name; the server stamps his account's.
    b.awareness.setLocalStateField('user', { id: 'x', name: 'Mallory', color: '#000000' })
    b.setSelection('field-1')
    b.setCursor({ componentId: 'field-1', field: 'label', offset: 3 })
    const seen = await waitUntil(() => a.people().find((p) => !p.self && p.cursor !== null) ?? false, 'Bob in Alice\'s presence', undefined, () => a.people()) as Person
    assert.equal(seen.name, 'Bob')
    assert.equal(seen.userId, bob.user!.id)
    assert.equal(seen.color, bob.user!.color)
    assert.equal(seen.selection, 'field-1')
    assert.deepEqual(seen.cursor, { componentId: 'field-1', field: 'label', offset: 3 })
    assert.ok(events.some((e) => e.added.some((p) => p.name === 'Bob')))
    // Bob sees Alice too.
    await waitUntil(() => b.people().some((p) => p.name === 'Alice' && !p.self), 'Alice in Bob\'s presence')

    b.close()
    await waitUntil(() => a.people().length === 1, 'Bob to leave', undefined, () => a.people())
    assert.ok(events.some((e) => e.removed.some((p) => p.name === 'Bob')))
  }))

  test('undo and redo touch only one\'s own edits', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    const b = await open(bob, id)
    const a1 = a.addComponent({ id: 'a1', type: 'text', label: 'by Alice' })
    await converge(a, b)
    const b1 = b.addComponent({ id: 'b1', type: 'text', label: 'by Bob' })
    await converge(a, b)
    a.setMeta('name', 'Alice name')
    await converge(a, b)
    b.setMeta('description', 'Bob description')
    await converge(a, b)
    // Alice relabels Bob's field; then Bob relabels it again.
    a.updateComponent(b1, { label: 'Alice label' })
    await converge(a, b)
    b.updateComponent(b1, { label: 'Bob label' })
    await converge(a, b)

    // Alice's relabel was overwritten by Bob: undoing it changes nothing,
    // so the first undo goes on to Alice's meta name.
    assert.equal(a.undo(), true)
    await converge(a, b)
    assert.equal(b.component(b1)?.label, 'Bob label')
    assert.equal(b.getMeta('name'), undefined)
    assert.equal(a.undo(), true) // Alice's component
    assert.equal(a.undo(), false)
    await converge(a, b)
    for (const s of [a, b]) {
      assert.equal(s.component(a1), undefined)
      assert.equal(s.component(b1)?.label, 'Bob label')
      assert.equal(s.getMeta('name'), undefined)
      assert.equal(s.getMeta('description'), 'Bob description')
    }
    assert.equal(a.redo(), true)
    await converge(a, b)
    assert.equal(b.component(a1)?.label, 'by Alice')
    assert.equal(b.canUndo(), true)
    b.undo() // Bob's relabel
    b.undo() // Bob's description
    await converge(a, b)
    assert.equal(a.getMeta('description'), undefined)
    assert.equal(a.component(a1)?.label, 'by Alice')
  }))

  test('a viewer can watch but not edit; changes made behind the SDK\'s back are refused by the server', withLog(() => server, async () => {
    const id = await newTemplate()
    const a = await open(alice, id)
    a.addComponent({ id: 'only', type: 'text', label: 'Only' })
    await a.whenSaved()
    const c = await open(carol, id)
    assert.equal(c.role, 'viewer')
    assert.equal(c.readOnly, true)
    assert.deepEqual(c.components().map((x) => x.id), ['only'])
    assert.throws(() => c.addComponent({ type: 'text' }), (e: unknown) => e instanceof CoformError && e.code === 'read_only')
    const rejected = new Promise<number>((resolve) => c.on('rejected', (e) => resolve(e.changes)))
    c.doc.getMap('meta').set('name', 'vandalised') // bypasses the SDK's check
    assert.equal(await rejected, 1)
    assert.equal(c.rejectedChanges, 1)
    await waitUntil(() => c.saveState === 'saved', 'carol\'s save state to settle')
    const rest = await alice.templates.get(id)
    assert.equal(rest.content?.meta.name, undefined)
    assert.equal(a.getMeta('name'), undefined)
  }))

  test('a member demoted while editing becomes read-only; a removed member is closed out', withLog(() => server, async () => {
    const d = await server!.user('Dana')
    await alice.workspaces.addMember(workspaceId, { email: d.email, role: 'editor' })
    const id = await newTemplate()
    const a = await open(alice, id)
    const s = await open(d.client, id)
    assert.equal(s.readOnly, false)
    await alice.workspaces.updateMember(workspaceId, d.client.user!.id, { role: 'viewer' })
    const rejected = new Promise<number>((resolve) => s.on('rejected', (e) => resolve(e.changes)))
    s.addComponent({ id: 'late', type: 'text' }) // the SDK does not know yet
    assert.equal(await rejected, 1)
    assert.equal(s.readOnly, true)
    assert.throws(() => s.setMeta('name', 'x'), (e: unknown) => e instanceof CoformError && e.code === 'read_only')
    await a.whenSaved()
    assert.equal(a.component('late'), undefined)

    const closed = new Promise<{ reason: string, error?: CoformError }>((resolve) => s.on('closed', resolve))
    await alice.workspaces.removeMember(workspaceId, d.client.user!.id)
    const event = await closed
    assert.equal(event.reason, 'access_lost')
    assert.equal(event.error?.code, 'access_revoked')
    assert.equal(s.status, 'closed')
    await waitUntil(() => a.people().length === 1, 'Dana to disappear from presence')
  }))

  test('a sign-in session ended elsewhere closes its templates and signs the client out', withLog(() => server, async () => {
    const e = await server!.user('Erin')
    await alice.workspaces.addMember(workspaceId, { email: e.email, role: 'editor' })
    const id = await newTemplate()
    const s = await open(e.client, id)
    const closed = new Promise<{ reason: string, error?: CoformError }>((resolve) => s.on('closed', resolve))
    const signedOut = new Promise<{ reason: string }>((resolve) => e.client.on('signedOut', resolve))
    // The same person, on another device, changes the password: every
    // other session ends, and with it this one's socket (4401).
    const other = server!.client()
    await other.login({ email: e.email, password: e.password })
    await other.changePassword(e.password, 'battery staple 42')
    const event = await closed
    assert.equal(event.reason, 'access_lost')
    assert.equal(event.error?.code, 'session_revoked')
    assert.equal((await signedOut).reason, 'session_revoked')
    assert.equal(e.client.signedIn, false)
  }))

  test('opening a template one cannot see fails with a typed 404', withLog(() => server, async () => {
    const other = (await server!.user('Dave')).client
    const id = await newTemplate()
    await assert.rejects(other.openTemplate(id), (e: unknown) => e instanceof CoformError && e.status === 404 && e.code === 'not_found')
    await assert.rejects(other.openTemplate('does-not-exist'), (e: unknown) => e instanceof CoformError && e.status === 404)
    other.destroy()
  }))

  test('a template opened on a caller-supplied Y.Doc keeps that doc', withLog(() => server, async () => {
    const id = await newTemplate()
    const doc = new Y.Doc()
    const a = await open(alice, id, { doc })
    assert.equal(a.doc, doc)
    a.close()
    assert.equal(a.status, 'closed')
    assert.throws(() => a.addComponent({ type: 'text' }), (e: unknown) => e instanceof CoformError && e.code === 'session_closed')
    doc.getMap('meta').set('still', 'usable')
    doc.destroy()
  }))
})
