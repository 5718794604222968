// The data-source helpers' requests: method, path (ids encoded), query and
// body, as the server's routes expect them; and how the errors of a call
// reach the caller (`secrets_required` with its fields, `invalid_config`
// with its field, the codes of a failed call).
//
// These check what the SDK sends and how it reads answers, with a fetch
// that records each request and answers what a test gives it. What the
// server does with them is tested with the server.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  CoformClient, CoformError, invalidField, requiredSecrets, type StoredAuth, type TokenStorage, type User
} from '../src/index.js'

interface Sent { method: string, url: string, headers: Record<string, string>, body: unknown }

const USER: User = {
  id: 'u1',
  email: 'ada@example.com',
  name: 'Ada',
  color: '#112233',
  emailVerified: true,
  pendingEmail: null,
  lastLogin: null,
  createdAt: 0,
  updatedAt: 0,
  profile: {}
}

/** A storage holding a session whose access token is good for an hour. */
function signedIn (): TokenStorage {
  const auth: StoredAuth = {
    accessToken: 'access-1',
    refreshToken: 'refresh-1',
    accessExpiresAt: Date.now() + 3_600_000,
    accessLifetimeMs: 3_600_000,
    user: USER
  }
  return { load: () => auth, save: () => {}, clear: () => {} }
}

/**
 * A client whose every request is recorded and answered with `answer`
 * (status 200 and `{}` unless it says otherwise).
 */
function recording (answer: (s: Sent) => { status?: number, body?: unknown } = () => ({})) {
  const sent: Sent[] = []
  const client = new CoformClient({
    baseUrl: 'http://127.0.0.1:1',
    storage: signedIn(),
    fetch: async (url, init) => {
      const s: Sent = {
        method: init?.method ?? 'GET',
        url,
        headers: init?.headers as Record<string, string>,
        body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined
      }
      sent.push(s)
      const a = answer(s)
      const status = a.status ?? 200
      return new Response(status === 204 ? null : JSON.stringify(a.body ?? {}), { status })
    }
  })
  return { client, sent }
}

describe('data sources: requests', () => {
  test('list sends the workspace, filter and page as query parameters', async () => {
    const { client, sent } = recording(() => ({ body: { items: [], total: 0, page: 2, pageSize: 5 } }))
    const page = await client.dataSources.list({ workspaceId: 'w 1', search: 'crm & co', type: 'graphql', page: 2, pageSize: 5 })
    assert.equal(page.page, 2)
    assert.equal(sent.length, 1)
    assert.equal(sent[0]!.method, 'GET')
    const url = new URL(sent[0]!.url)
    assert.equal(url.pathname, '/api/data-sources')
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      workspaceId: 'w 1', search: 'crm & co', type: 'graphql', page: '2', pageSize: '5'
    })
    assert.equal(sent[0]!.headers.authorization, 'Bearer access-1')
    assert.equal(sent[0]!.body, undefined)

    // Unset filters are not sent at all.
    await client.dataSources.list({ workspaceId: 'w1' })
    assert.equal(new URL(sent[1]!.url).search, '?workspaceId=w1')
  })

  test('one source: get, create, update, remove, with the id encoded in the path', async () => {
    const { client, sent } = recording((s) => (s.method === 'DELETE' ? { status: 204 } : { body: { id: 'a/b?c' } }))
    const id = 'a/b?c'
    const created = await client.dataSources.create({
      workspaceId: 'w1', name: 'CRM', type: 'rest', config: { url: 'https://crm.example/api', method: 'GET' }
    })
    assert.equal(created.id, id)
    await client.dataSources.get(id)
    await client.dataSources.update(id, { name: 'CRM 2', config: { headers: null, timeoutMs: 5000 } })
    const removed = await client.dataSources.remove(id)
    assert.equal(removed, undefined)

    assert.deepEqual(sent.map((s) => [s.method, new URL(s.url).pathname]), [
      ['POST', '/api/data-sources'],
      ['GET', '/api/data-sources/a%2Fb%3Fc'],
      ['PUT', '/api/data-sources/a%2Fb%3Fc'],
      ['DELETE', '/api/data-sources/a%2Fb%3Fc']
    ])
    assert.deepEqual(sent[0]!.body, {
      workspaceId: 'w1', name: 'CRM', type: 'rest', config: { url: 'https://crm.example/api', method: 'GET' }
    })
    // `null` survives the trip: it is how a key is removed.
    assert.deepEqual(sent[2]!.body, { name: 'CRM 2', config: { headers: null, timeoutMs: 5000 } })
    assert.equal(sent[0]!.headers['content-type'], 'application/json')
  })

  test('test sends a new configuration or a stored id, with params only when given', async () => {
    const { client, sent } = recording(() => ({ body: { ok: true, durationMs: 12, sample: [{ a: 1 }] } }))
    const fresh = { workspaceId: 'w1', type: 'rest' as const, config: { url: 'http://127.0.0.1:9/x' } }
    const r = await client.dataSources.test(fresh)
    assert.deepEqual(r, { ok: true, durationMs: 12, sample: [{ a: 1 }] })
    await client.dataSources.test({ id: 's1', config: { url: 'http://127.0.0.1:9/y' } }, { city: 'Oslo', n: 3 })

    assert.deepEqual(sent.map((s) => [s.method, new URL(s.url).pathname]), [
      ['POST', '/api/data-sources/test'],
      ['POST', '/api/data-sources/test']
    ])
    assert.deepEqual(sent[0]!.body, fresh)
    assert.ok(!('params' in (sent[0]!.body as object)))
    assert.deepEqual(sent[1]!.body, { id: 's1', config: { url: 'http://127.0.0.1:9/y' }, params: { city: 'Oslo', n: 3 } })
  })

  test('execute, schema, validate, health and cache go to the source\'s own routes', async () => {
    const { client, sent } = recording(() => ({ body: {} }))
    await client.dataSources.execute('s 1', { params: { q: 'x' }, templateId: 't1' })
    await client.dataSources.execute('s 1')
    await client.dataSources.schema('s 1')
    await client.dataSources.validate('s 1')
    await client.dataSources.health('s 1')
    await client.dataSources.cache('s 1', { invalidate: true })
    await client.dataSources.cache('s 1', { enabled: true, ttl: 60 })

    assert.deepEqual(sent.map((s) => [s.method, new URL(s.url).pathname, s.body]), [
      ['POST', '/api/data-sources/s%201/execute', { params: { q: 'x' }, templateId: 't1' }],
      ['POST', '/api/data-sources/s%201/execute', {}],
      ['GET', '/api/data-sources/s%201/schema', undefined],
      ['POST', '/api/data-sources/s%201/validate', undefined],
      ['GET', '/api/data-sources/s%201/health', undefined],
      ['POST', '/api/data-sources/s%201/cache', { invalidate: true }],
      ['POST', '/api/data-sources/s%201/cache', { enabled: true, ttl: 60 }]
    ])
  })
})

describe('data sources: errors', () => {
  const refuse = (error: unknown, status = 422) => recording(() => ({ status, body: { error } })).client

  test('secrets_required names the fields to give again, beside the code or in details', async () => {
    const beside = refuse({ code: 'secrets_required', message: 'give the token again', fields: ['authentication.token'] })
    await assert.rejects(beside.dataSources.update('s1', { config: { url: 'https://other.example/' } }), (e: unknown) => {
      assert.ok(e instanceof CoformError)
      assert.equal(e.status, 422)
      assert.equal(e.code, 'secrets_required')
      assert.equal(e.message, 'give the token again')
      assert.deepEqual(requiredSecrets(e), ['authentication.token'])
      return true
    })
    const inDetails = refuse({ code: 'secrets_required', message: 'm', details: { fields: ['password', 7] } })
    await assert.rejects(inDetails.dataSources.update('s1', { config: { host: 'db2' } }), (e: unknown) => {
      assert.deepEqual(requiredSecrets(e), ['password'])
      return true
    })
  })

  test('invalid_config and validation_failed name their field; other errors name none', async () => {
    const c = refuse({ code: 'invalid_config', message: 'url: not http or https', field: 'url', details: null })
    const err = await c.dataSources.create({ workspaceId: 'w', name: 'x', type: 'rest', config: { url: 'ftp://x' } })
      .then(() => null, (e: unknown) => e)
    assert.ok(err instanceof CoformError)
    assert.equal(invalidField(err), 'url')
    assert.deepEqual(requiredSecrets(err), [])
    assert.equal(invalidField(new CoformError(422, 'validation_failed', 'm', [{ field: 'config.url', message: 'bad' }])), 'config.url')
    assert.equal(invalidField(new CoformError(400, 'blocked_address', 'm', { field: 'url' })), null)
    assert.equal(invalidField(new Error('x')), null)
  })

  test('a failed call keeps its code and status; an error without extras keeps null details', async () => {
    const c = refuse({ code: 'blocked_address', message: '"10.0.0.1" leads to 10.0.0.1, private, which is not dialled', details: null }, 400)
    await assert.rejects(c.dataSources.test({ id: 's1' }), (e: unknown) => {
      assert.ok(e instanceof CoformError)
      assert.equal(e.status, 400)
      assert.equal(e.code, 'blocked_address')
      assert.equal(e.details, null)
      return true
    })
  })
})
