// The operational HTTP endpoints answer, and the connection gauge follows
// clients coming and going.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { dropConnection, serverSuite, uniqueName, waitUntil } from './harness.js'

describe('http endpoints', () => {
  const { server, clients } = serverSuite()

  test('/healthz and /readyz answer 200', server.guard(async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await server.get(path)
      assert.equal(res.status, 200, `${path} answered ${res.status}: ${res.text}`)
    }
  }))

  test('/metrics is Prometheus text', server.guard(async () => {
    const res = await server.get('/metrics')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
    assert.match(res.text, /^# TYPE \S+ (counter|gauge|histogram|summary|untyped)$/m)
    for (const line of res.text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?(\d+(\.\d+)?([eE][-+]?\d+)?|\+Inf|-Inf|NaN)$/, `not a sample line: ${line}`)
    }
  }))

  test('unknown API paths are 404, other paths are the designer, a plain GET of a room is refused', server.guard(async () => {
    assert.equal((await server.get('/api/no-such-endpoint')).status, 404)
    const page = await server.get('/no-such-page')
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    const res = await server.get(`/collab/${uniqueName('plain-get')}`)
    assert.ok(res.status >= 400 && res.status < 500, `plain GET of a room answered ${res.status}`)
  }))

  test('the connection gauge counts open WebSockets and drops when they close', server.guard(async () => {
    const base = await server.metric('coform_connections')
    const room = uniqueName('gauge')
    const providers = await clients.syncedAll(room, 3)
    await waitUntil(async () => (await server.metric('coform_connections')) === base + 3, {
      what: `coform_connections to reach ${base + 3}`
    })
    clients.destroyProvider(providers[0])
    dropConnection(providers[1], { reconnect: false })
    await waitUntil(async () => (await server.metric('coform_connections')) === base + 1, {
      what: `coform_connections to fall back to ${base + 1} after one close and one drop`
    })
  }))
})
