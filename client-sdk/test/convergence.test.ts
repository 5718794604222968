// Seeded randomized convergence: three sessions (two of one account, one
// of another) make random form edits, go offline and back, undo, while the
// server restarts once in the middle. In the end every session and the
// server hold the same form, every component appears once in the display
// order, and every session is 'saved'. Replay a failure with SEED=<n>.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { CoformError, type TemplateSession } from '../src/index.js'
import { Proxy, Server, waitUntil, withLog } from './harness.js'

let server: Server | undefined
let proxy: Proxy | undefined
const sessions: TemplateSession[] = []

function lcg (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

function canonical (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
  }
  return v
}

const TYPES = ['text', 'number', 'email', 'select', 'section', 'section'] as const

describe('randomized convergence', () => {
  before(async () => {
    server = await new Server().start()
    proxy = await new Proxy(() => server!.port).start()
  })
  after(async () => {
    for (const s of sessions) s.close()
    await proxy?.close()
    await server?.dispose()
  })

  test('random edits, disconnects, undo and a server restart converge', withLog(() => server, async () => {
    const seed = Number(process.env.SEED ?? (Date.now() % 1_000_000))
    const random = lcg(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
    const note = `seed ${seed} (replay with SEED=${seed})`

    const a = await server!.user('Alice', { baseUrl: proxy!.baseUrl })
    const b = await server!.user('Bob', { baseUrl: proxy!.baseUrl })
    const ws = await a.client.workspaces.create({ name: 'Chaos' })
    await a.client.workspaces.addMember(ws.id, { email: b.email, role: 'editor' })
    const tpl = await a.client.templates.create({ workspaceId: ws.id, name: 'Random' })
    const secondTab = server!.client({ baseUrl: proxy!.baseUrl })
    await secondTab.login({ email: a.email, password: a.password })
    const opts = { undoCaptureTimeoutMs: 0, minBackoffMs: 50, maxBackoffMs: 400 }
    const all = [
      await a.client.openTemplate(tpl.id, opts),
      await secondTab.openTemplate(tpl.id, opts),
      await b.client.openTemplate(tpl.id, opts)
    ]
    sessions.push(...all)

    const step = (s: TemplateSession): void => {
      const comps = s.components()
      const sections = comps.filter((c) => c.type === 'section').map((c) => c.id)
      const r = random()
      try {
        if (comps.length < 4 || r < 0.25) {
          const parent = random() < 0.5 && sections.length > 0 ? pick(sections) : null
          s.addComponent({ type: pick(TYPES), label: `L${Math.floor(random() * 1000)}`, parent })
        } else if (r < 0.5) {
          const c = pick(comps)
          s.updateComponent(c.id, { label: `L${Math.floor(random() * 1000)}`, properties: { [pick(['p', 'q', 'r'])]: Math.floor(random() * 10) }, position: { x: Math.floor(random() * 100) } })
        } else if (r < 0.75) {
          const c = pick(comps)
          const other = pick(comps)
          const where = pick(['before', 'after', 'parent', 'end'] as const)
          if (where === 'before' && other.id !== c.id) s.moveComponent(c.id, { before: other.id })
          else if (where === 'after' && other.id !== c.id) s.moveComponent(c.id, { after: other.id })
          else if (where === 'parent') s.moveComponent(c.id, { parent: sections.length > 0 && random() < 0.7 ? pick(sections) : null })
          else s.moveComponent(c.id, {})
        } else if (r < 0.85) {
          s.removeComponent(pick(comps).id, { withChildren: random() < 0.5 })
        } else if (r < 0.93) {
          s.setMeta(pick(['name', 'description', 'category']), `M${Math.floor(random() * 100)}`)
        } else {
          s.undo()
        }
      } catch (err) {
        // Moving a section into its own subtree is refused locally: fine.
        if (!(err instanceof CoformError && err.code === 'invalid_argument')) throw err
      }
    }

    for (let round = 0; round < 60; round++) {
      for (const s of all) {
        if (random() < 0.08) {
          if (s.status === 'offline' && s.saveState === 'offline') s.connect()
          else s.disconnect()
        }
        step(s)
      }
      if (round === 30) await server!.restart('SIGTERM')
      if (round % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    for (const s of all) if (s.status === 'offline') s.connect()
    await Promise.all(all.map((s) => s.whenSaved(30_000)))
    await waitUntil(() => all.every((s) => JSON.stringify(canonical(s.toJSON())) === JSON.stringify(canonical(all[0]!.toJSON()))),
      `sessions to converge (${note})`, 20_000, () => all.map((s) => s.components().length))

    const reference = all[0]!
    const tree = reference.tree().map((c) => c.id)
    assert.equal(new Set(tree).size, tree.length, `duplicates in the display order (${note})`)
    assert.equal(tree.length, reference.components().length, `every component is displayed once (${note})`)
    for (const s of all) assert.deepEqual(s.tree().map((c) => c.id), tree, note)
    // The server's own rendering puts the components in the same order.
    const html = await a.client.request<string>('GET', `/api/templates/${tpl.id}/preview`, { text: true })
    const rendered = [...new Set([...html.matchAll(/ id="f-(c[0-9A-Za-z]{12})"/g)].map((m) => m[1]!))]
    assert.deepEqual(rendered, tree, `the server's preview shows the same order (${note})`)
    const rest = await a.client.templates.get(tpl.id)
    assert.deepEqual(canonical(rest.content), canonical(reference.toJSON()), `the server has the same form (${note})`)
  }))
})
