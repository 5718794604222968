// The README's examples are files in examples/ (type-checked with the
// tests); here they run against the real server, and the README is
// checked to contain them verbatim, so they cannot drift.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import WebSocket from 'ws'

import { quickstart } from '../examples/quickstart.js'
import { embedForm } from '../examples/embed.js'
import { PACKAGE_ROOT, Server, unique, waitUntil, withLog } from './harness.js'

let server: Server | undefined

/** Just enough DOM for the embed example. */
class FakeElement {
  style: Record<string, string> = {}
  textContent = ''
  onclick: (() => void) | null = null
  children: FakeElement[] = []
  replaceChildren (...els: FakeElement[]): void { this.children = els }
}

describe('README examples', () => {
  before(async () => { server = await new Server().start() })
  after(async () => { await server?.dispose() })

  test('README shows the example files verbatim', () => {
    const readme = fs.readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8')
    for (const file of ['quickstart.ts', 'embed.ts']) {
      const code = fs.readFileSync(path.join(PACKAGE_ROOT, 'examples', file), 'utf8').trim()
      assert.ok(readme.includes(code), `README.md does not contain examples/${file} as it is`)
    }
    const embedLines = fs.readFileSync(path.join(PACKAGE_ROOT, 'examples', 'embed.ts'), 'utf8').trim().split('\n').length
    assert.ok(embedLines < 20, `the embed example has ${embedLines} lines`)
  })

  test('the quickstart runs', withLog(() => server, async () => {
    const order = await quickstart(server!.baseUrl, `${unique('ada')}@example.com`)
    assert.deepEqual(order, ['Your details', '  E-mail', '  Name'])
  }))

  test('the embed example shows live edits and who selected what', withLog(() => server, async () => {
    const owner = await server!.user('Owner')
    const ws = await owner.client.workspaces.create({ name: 'Embedded' })
    const tpl = await owner.client.templates.create({ workspaceId: ws.id, name: 'Embedded form' })
    const g = globalThis as Record<string, unknown>
    const saved = { document: g.document, localStorage: g.localStorage, WebSocket: g.WebSocket }
    const store = new Map<string, string>()
    g.document = { createElement: () => new FakeElement() }
    g.localStorage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => store.set(k, v), removeItem: (k: string) => store.delete(k) }
    g.WebSocket = WebSocket
    try {
      const root = new FakeElement()
      const form = await embedForm(root as unknown as HTMLElement, server!.baseUrl, tpl.id, { email: owner.email, password: owner.password })
      assert.equal(root.children.length, 0)
      const other = await owner.client.openTemplate(tpl.id)
      const id = other.addComponent({ type: 'text', label: 'Phone' })
      await waitUntil(() => root.children.some((r) => r.textContent === 'Phone'), 'the embedded form to show the new field', undefined, () => root.children.map((r) => r.textContent))
      other.setSelection(id)
      await waitUntil(() => root.children.some((r) => r.textContent === 'Phone (Owner)'), 'the other person\'s selection to show', undefined, () => root.children.map((r) => r.textContent))
      assert.equal(root.children[0]!.style.borderLeft, `3px solid ${owner.client.user!.color}`)
      root.children[0]!.onclick!()
      assert.equal(form.people().find((p) => p.self)?.selection, id)
      form.close()
      other.close()
    } finally {
      Object.assign(g, saved)
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete g[k]
    }
  }))
})
