// The data-source helpers against the real server, whose sources call a
// small JSON API this file runs on 127.0.0.1 (the server is started with
// `--data-source-allow 127.0.0.1/32`): create, list, get with secrets
// masked, test with parameters, execute, schema, validate, health, cache,
// update (secrets kept, then asked for again), remove, and what viewers
// and strangers may do.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

import { CoformError, requiredSecrets, SECRET_MASK } from '../src/index.js'
import { Server, withLog } from './harness.js'

interface Seen { path: string, query: Record<string, string>, authorization: string | undefined }

/** A JSON API: `GET /items?kind=` answers two items of that kind; `kind=broken` answers 500. */
async function upstream (): Promise<{ url: string, seen: Seen[], close: () => Promise<void> }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    seen.push({ path: url.pathname, query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization })
    res.setHeader('content-type', 'application/json')
    const kind = url.searchParams.get('kind') ?? ''
    if (url.pathname !== '/items' || kind === 'broken') {
      res.statusCode = 500
      res.end('{"error":"broken"}')
      return
    }
    res.end(JSON.stringify([{ id: 1, kind, price: 2.5 }, { id: 2, kind, price: 4 }]))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

// Three sign-ups: the server allows ten per hour from one address.
let server: Server | undefined
let api: Awaited<ReturnType<typeof upstream>> | undefined
let moved: Awaited<ReturnType<typeof upstream>> | undefined

describe('data sources against the server', () => {
  before(async () => {
    api = await upstream()
    moved = await upstream()
    server = await new Server(['--data-source-allow', '127.0.0.1/32']).start()
  })
  after(async () => {
    await server?.dispose()
    await api?.close()
    await moved?.close()
  })

  /** Waits for `p` to fail with `code` (and `status`, when given); returns the error. */
  const rejects = async (p: Promise<unknown>, status: number | null, code: string): Promise<CoformError> => {
    let caught: unknown
    await assert.rejects(p, (e: unknown) => {
      caught = e
      assert.ok(e instanceof CoformError, String(e))
      assert.equal(e.code, code, e.toString())
      if (status !== null) assert.equal(e.status, status, e.toString())
      return true
    })
    return caught as CoformError
  }

  test('an editor creates, tests, calls and changes a source; secrets never come back', withLog(() => server, async () => {
    const owner = (await server!.user('Owner')).client
    const viewer = await server!.user('Viewer')
    const stranger = (await server!.user('Stranger')).client
    const ws = await owner.workspaces.create({ name: 'Shop' })
    await owner.workspaces.addMember(ws.id, { email: viewer.email, role: 'viewer' })

    const ds = await owner.dataSources.create({
      workspaceId: ws.id,
      name: 'Items',
      type: 'rest',
      config: {
        url: `${api!.url}/items`,
        queryParams: { kind: '{{kind}}' },
        authentication: { type: 'bearer', token: 'tok-1' }
      }
    })
    assert.equal(ds.name, 'Items')
    assert.equal(ds.type, 'rest')
    assert.equal(ds.config.authentication?.token, SECRET_MASK)
    assert.equal(ds.credentialsSet, true)
    assert.equal(ds.status, 'untested')
    assert.equal((await owner.dataSources.get(ds.id)).config.authentication?.token, SECRET_MASK)

    const page = await viewer.client.dataSources.list({ workspaceId: ws.id })
    assert.deepEqual(page.items.map((s) => s.id), [ds.id])
    assert.ok(!JSON.stringify(page).includes('tok-1'))
    assert.equal((await owner.dataSources.list({ workspaceId: ws.id, type: 'graphql' })).total, 0)
    assert.equal((await owner.dataSources.list({ workspaceId: ws.id, search: 'ite' })).total, 1)

    // Test with parameters: the upstream sees them and the token.
    const tested = await owner.dataSources.test({ id: ds.id }, { kind: 'tea' })
    assert.equal(tested.ok, true)
    assert.ok(tested.durationMs >= 0)
    assert.deepEqual(tested.sample, [{ id: 1, kind: 'tea', price: 2.5 }, { id: 2, kind: 'tea', price: 4 }])
    assert.deepEqual(api!.seen.at(-1), { path: '/items', query: { kind: 'tea' }, authorization: 'Bearer tok-1' })
    // A configuration not stored yet.
    const fresh = await owner.dataSources.test({ workspaceId: ws.id, type: 'rest', config: { url: `${api!.url}/items?kind=fresh` } })
    assert.deepEqual((fresh.sample as Array<{ kind: string }>).map((i) => i.kind), ['fresh', 'fresh'])
    // A failure comes back with its code.
    await rejects(owner.dataSources.test({ id: ds.id }, { kind: 'broken' }), null, 'upstream_error')

    const run = await owner.dataSources.execute(ds.id, { params: { kind: 'coffee' } })
    assert.deepEqual((run.data as Array<{ kind: string }>).map((i) => i.kind), ['coffee', 'coffee'])
    assert.equal(run.cached, false)

    // The schema comes from a call without parameters: a source that
    // needs some cannot give one; one that needs none can.
    await rejects(owner.dataSources.schema(ds.id), null, 'parameter_refused')
    const fixed = await owner.dataSources.create({ workspaceId: ws.id, name: 'All items', type: 'rest', config: { url: `${api!.url}/items?kind=all` } })
    const schema = await owner.dataSources.schema(fixed.id)
    assert.deepEqual(Object.keys((schema as { items?: { properties?: object } }).items?.properties ?? {}).sort(), ['id', 'kind', 'price'],
      JSON.stringify(schema))
    await owner.dataSources.remove(fixed.id)
    assert.deepEqual(await owner.dataSources.validate(ds.id), { valid: true, problems: [] })
    const health = await owner.dataSources.health(ds.id)
    assert.equal(health.health, 'healthy', JSON.stringify(health))

    // Caching: the second call is served from the cache until invalidated.
    await owner.dataSources.cache(ds.id, { enabled: true, ttl: 60 })
    const calls = api!.seen.length
    await owner.dataSources.execute(ds.id, { params: { kind: 'milk' } })
    assert.equal((await owner.dataSources.execute(ds.id, { params: { kind: 'milk' } })).cached, true)
    assert.equal(api!.seen.length, calls + 1)
    await owner.dataSources.cache(ds.id, { invalidate: true })
    assert.equal((await owner.dataSources.execute(ds.id, { params: { kind: 'milk' } })).cached, false)

    // Calls are counted (tests are not): a failing one too.
    await rejects(owner.dataSources.execute(ds.id, { params: { kind: 'broken' } }), null, 'upstream_error')
    const figures = await owner.dataSources.get(ds.id)
    assert.equal(figures.errorCount, 1, JSON.stringify(figures))
    assert.equal(figures.status, 'failing')
    assert.notEqual(figures.lastUsed, null)
    assert.ok(figures.performance.successRate !== null && figures.performance.successRate > 0 && figures.performance.successRate < 1,
      JSON.stringify(figures.performance))

    // A rename keeps the token; a new origin needs it again.
    const renamed = await owner.dataSources.update(ds.id, { name: 'Goods', config: { timeoutMs: 5000 } })
    assert.equal(renamed.name, 'Goods')
    assert.equal(renamed.config.timeoutMs, 5000)
    await owner.dataSources.test({ id: ds.id }, { kind: 'salt' })
    assert.equal(api!.seen.at(-1)?.authorization, 'Bearer tok-1')
    const refused = await rejects(owner.dataSources.update(ds.id, { config: { url: `${moved!.url}/items` } }), 422, 'secrets_required')
    assert.deepEqual(requiredSecrets(refused), ['authentication.token'])
    await owner.dataSources.update(ds.id, { config: { url: `${moved!.url}/items`, authentication: { token: 'tok-2' } } })
    await owner.dataSources.test({ id: ds.id }, { kind: 'pepper' })
    assert.deepEqual(moved!.seen.at(-1), { path: '/items', query: { kind: 'pepper' }, authorization: 'Bearer tok-2' })

    // Viewers read; strangers see nothing.
    await rejects(viewer.client.dataSources.test({ id: ds.id }), 403, 'forbidden')
    await rejects(viewer.client.dataSources.update(ds.id, { name: 'x' }), 403, 'forbidden')
    await rejects(viewer.client.dataSources.execute(ds.id), 403, 'forbidden')
    await rejects(stranger.dataSources.get(ds.id), 404, 'not_found')
    await rejects(stranger.dataSources.list({ workspaceId: ws.id }), 404, 'not_found')

    // An address outside the allowed ones is refused.
    await rejects(owner.dataSources.test({ workspaceId: ws.id, type: 'rest', config: { url: 'http://10.1.2.3/x' } }), null, 'blocked_address')

    await owner.dataSources.remove(ds.id)
    await rejects(owner.dataSources.get(ds.id), 404, 'not_found')
    assert.equal((await owner.dataSources.list({ workspaceId: ws.id })).total, 0)
  }))
})
