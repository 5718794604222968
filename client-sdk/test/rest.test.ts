// The REST helpers against the real server: sign-up, login, token refresh
// and rotation, sign-out on reuse, workspaces, templates, versions,
// export/import, and the typed errors.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  CoformClient, CoformError, localStorageStorage, type KeyValueStore, type SignOutReason, type TemplateFile
} from '../src/index.js'
import { Server, unique, withLog } from './harness.js'

// The server allows 10 sign-ups per hour from one address: this file makes 9.
let server: Server | undefined
const ACCESS_TTL_S = 3

/** A fetch that records every answer's status. */
function recordingFetch (log: Array<{ method: string, url: string, status: number }>) {
  return async (input: string, init?: RequestInit): Promise<Response> => {
    const res = await globalThis.fetch(input, init)
    log.push({ method: init?.method ?? 'GET', url: input, status: res.status })
    return res
  }
}

function memoryKeyValue (): KeyValueStore & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => { data.set(k, v) },
    removeItem: (k) => { data.delete(k) }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('REST helpers', () => {
  before(async () => {
    server = await new Server(['--access-token-ttl', `${ACCESS_TTL_S}s`]).start()
  })
  after(async () => {
    await server?.dispose()
  })

  test('register, login, me; typed errors', withLog(() => server, async () => {
    const c = server!.client()
    const email = `${unique('ada')}@example.com`
    const user = await c.register({ email, password: 'correct horse battery 9', name: 'Ada' })
    assert.equal(user.name, 'Ada')
    assert.equal(c.user?.email, email)
    assert.match(user.color, /^#[0-9a-f]{6}$/)
    assert.equal((await c.me()).id, user.id)
    const renamed = await c.updateMe({ name: 'Ada L.' })
    assert.equal(renamed.name, 'Ada L.')
    assert.equal(c.user?.name, 'Ada L.')

    const other = server!.client()
    await assert.rejects(other.login({ email, password: 'wrong password 1' }),
      (e: unknown) => e instanceof CoformError && e.status === 401 && e.code === 'invalid_credentials')
    await assert.rejects(other.register({ email: 'not-an-email', password: 'x', name: '' }), (e: unknown) => {
      assert.ok(e instanceof CoformError)
      assert.equal(e.status, 422)
      assert.equal(e.code, 'validation_failed')
      const fields = (e.details as Array<{ field: string }>).map((f) => f.field).sort()
      assert.deepEqual(fields, ['email', 'name', 'password'])
      return true
    })
    await assert.rejects(other.workspaces.list(), (e: unknown) => e instanceof CoformError && e.code === 'not_signed_in' && e.status === 0)
    const logged = await other.login({ email, password: 'correct horse battery 9' })
    assert.equal(logged.id, user.id)
    const mine = await other.sessions()
    assert.equal(mine.filter((s) => s.current).length, 1)
    assert.ok(mine.length >= 2)

    // Unreachable server: a network error, typed.
    const nowhere = new CoformClient({ baseUrl: 'http://127.0.0.1:9' })
    await assert.rejects(nowhere.login({ email, password: 'x' }), (e: unknown) => e instanceof CoformError && e.code === 'network_error')
  }))

  test('access tokens are refreshed before they expire, and after a 401 token_expired; the refresh token rotates', withLog(() => server, async () => {
    const log: Array<{ method: string, url: string, status: number }> = []
    const kv = memoryKeyValue()
    const c = new CoformClient({ baseUrl: server!.baseUrl, fetch: recordingFetch(log), storage: localStorageStorage('auth', kv) })
    await c.register({ email: `${unique('grace')}@example.com`, password: 'correct horse battery 9', name: 'Grace' })
    let refreshed = 0
    c.on('refreshed', () => { refreshed += 1 })
    const firstRefresh = JSON.parse(kv.data.get('auth')!).refreshToken as string

    // Near expiry (inside the margin: a fifth of 3 s): refreshed first, no 401.
    await sleep(ACCESS_TTL_S * 1000 - 400)
    await c.workspaces.list()
    assert.equal(refreshed, 1)
    assert.equal(log.filter((r) => r.status === 401).length, 0)
    const secondRefresh = JSON.parse(kv.data.get('auth')!).refreshToken as string
    assert.notEqual(secondRefresh, firstRefresh, 'the refresh token rotated')

    // A client whose clock believes the token is still good (skew) meets
    // the server's 401 token_expired: it refreshes and retries once.
    // (The server counts whole seconds: a token lives up to TTL + 1 s.)
    await sleep(ACCESS_TTL_S * 1000 + 1200)
    const skewed = JSON.parse(kv.getItem('auth')!)
    skewed.accessExpiresAt = Date.now() + 60_000
    kv.setItem('auth', JSON.stringify(skewed))
    const lazy = new CoformClient({ baseUrl: server!.baseUrl, fetch: recordingFetch(log), storage: localStorageStorage('auth', kv), refreshMarginMs: 0 })
    let lazyRefreshed = 0
    lazy.on('refreshed', () => { lazyRefreshed += 1 })
    // (The first client is not used any more: one client per storage.)
    log.length = 0
    // Several requests at once share one refresh (a second use of the same
    // refresh token would end the session).
    const results = await Promise.all([lazy.workspaces.list(), lazy.workspaces.list(), lazy.me(), lazy.templates.list()])
    assert.equal(results.length, 4)
    assert.equal(lazyRefreshed, 1)
    assert.ok(log.some((r) => r.status === 401), 'the server answered token_expired first')
    assert.equal(log.filter((r) => r.url.endsWith('/api/auth/refresh')).length, 1)
    assert.equal(lazy.signedIn, true)
  }))

  test('presenting a used refresh token signs the client out (token_reused), and the session ends everywhere', withLog(() => server, async () => {
    const kvA = memoryKeyValue()
    const a = new CoformClient({ baseUrl: server!.baseUrl, storage: localStorageStorage('auth', kvA) })
    await a.register({ email: `${unique('mallory')}@example.com`, password: 'correct horse battery 9', name: 'Victim' })
    // A copy of the stored tokens (as a thief would have).
    const stolen = memoryKeyValue()
    stolen.setItem('auth', kvA.getItem('auth')!)
    await a.refresh() // rotates: the copied refresh token is now used
    const thief = new CoformClient({ baseUrl: server!.baseUrl, storage: localStorageStorage('auth', stolen) })
    await thief.ready()
    assert.equal(thief.signedIn, true)
    const thiefOut: SignOutReason[] = []
    thief.on('signedOut', (e) => thiefOut.push(e.reason))
    await assert.rejects(thief.refresh(), (e: unknown) => e instanceof CoformError && e.code === 'token_reused')
    assert.deepEqual(thiefOut, ['token_reused'])
    assert.equal(thief.signedIn, false)
    assert.equal(stolen.getItem('auth'), null, 'the storage was cleared')

    // The whole session ended: the rightful client is signed out too on its next call.
    const aOut: SignOutReason[] = []
    a.on('signedOut', (e) => aOut.push(e.reason))
    await assert.rejects(a.workspaces.list(), (e: unknown) => e instanceof CoformError && e.status === 401)
    assert.equal(aOut.length, 1)
    assert.ok(['session_revoked', 'token_reused'].includes(aOut[0]!), aOut.join())
    assert.equal(a.signedIn, false)
  }))

  test('logout ends the session on the server; tokens survive a reload through storage', withLog(() => server, async () => {
    const kv = memoryKeyValue()
    const c = new CoformClient({ baseUrl: server!.baseUrl, storage: localStorageStorage('auth', kv) })
    const u = await c.register({ email: `${unique('linus')}@example.com`, password: 'correct horse battery 9', name: 'Linus' })
    const reloaded = new CoformClient({ baseUrl: server!.baseUrl, storage: localStorageStorage('auth', kv) })
    assert.equal((await reloaded.me()).id, u.id)
    const access = JSON.parse(kv.getItem('auth')!).accessToken as string
    const out: SignOutReason[] = []
    reloaded.on('signedOut', (e) => out.push(e.reason))
    await reloaded.logout()
    assert.deepEqual(out, ['logout'])
    assert.equal(kv.getItem('auth'), null)
    const res = await fetch(`${server!.baseUrl}/api/auth/me`, { headers: { authorization: `Bearer ${access}` } })
    assert.equal(res.status, 401)
    await assert.rejects(reloaded.me(), (e: unknown) => e instanceof CoformError && e.code === 'not_signed_in')
  }))

  test('workspaces: create, list, get, update, members, analytics, backup, restore, delete', withLog(() => server, async () => {
    const owner = (await server!.user('Owner')).client
    const member = await server!.user('Member')
    const ws = await owner.workspaces.create({ name: 'Marketing', description: 'Forms for campaigns', settings: { locale: 'en' } })
    assert.equal(ws.role, 'owner')
    assert.deepEqual(ws.settings, { locale: 'en' })
    assert.ok((await owner.workspaces.list()).some((w) => w.id === ws.id))
    const updated = await owner.workspaces.update(ws.id, { name: 'Growth' })
    assert.equal(updated.name, 'Growth')

    const m = await owner.workspaces.addMember(ws.id, { email: member.email, role: 'viewer' })
    if ('status' in m) assert.fail(`a verified address must join at once, got ${JSON.stringify(m)}`)
    assert.equal(m.role, 'viewer')
    await assert.rejects(owner.workspaces.addMember(ws.id, { email: member.email, role: 'editor' }),
      (e: unknown) => e instanceof CoformError && e.status === 409 && e.code === 'already_member')
    // An address without a verified account is invited instead.
    const invited = await owner.workspaces.addMember(ws.id, { email: `${unique('newcomer')}@example.com`, role: 'editor' })
    assert.ok('status' in invited && invited.status === 'invited', JSON.stringify(invited))
    assert.deepEqual((await owner.workspaces.invitations(ws.id)).map((i) => i.email), [invited.email])
    await owner.workspaces.cancelInvitation(ws.id, invited.email)
    assert.deepEqual(await owner.workspaces.invitations(ws.id), [])
    await owner.workspaces.updateMember(ws.id, m.userId, { role: 'editor' })
    const detail = await owner.workspaces.get(ws.id)
    assert.equal(detail.members.find((x) => x.userId === m.userId)?.role, 'editor')
    assert.equal((await member.client.workspaces.get(ws.id)).role, 'editor')
    await assert.rejects(member.client.workspaces.delete(ws.id), (e: unknown) => e instanceof CoformError && e.status === 403)

    const t = await owner.templates.create({ workspaceId: ws.id, name: 'Signup', content: { meta: { name: 'Signup' }, components: {} } })
    const stats = await owner.workspaces.analytics(ws.id)
    assert.equal(stats.templates, 1)
    assert.equal(stats.members, 2)

    const backup = await owner.workspaces.backup(ws.id)
    assert.equal(backup.format, 'coform-workspace-backup')
    assert.equal(backup.templates.length, 1)
    await owner.templates.update(t.id, { content: { meta: { name: 'Changed after backup' } } })
    const report = await owner.workspaces.restore(ws.id, backup)
    assert.deepEqual(report, { restored: 1, created: 0 })
    assert.equal((await owner.templates.get(t.id)).content?.meta.name, 'Signup')

    await owner.workspaces.removeMember(ws.id, m.userId)
    await assert.rejects(member.client.workspaces.get(ws.id), (e: unknown) => e instanceof CoformError && e.status === 404)
    await owner.workspaces.delete(ws.id)
    await assert.rejects(owner.workspaces.get(ws.id), (e: unknown) => e instanceof CoformError && e.status === 404 && e.code === 'not_found')
  }))

  test('templates: create with content, list with filters and paging, get, update, session token, delete', withLog(() => server, async () => {
    const c = (await server!.user('Templater')).client
    const ws = await c.workspaces.create({ name: 'Forms' })
    const content = {
      meta: { name: 'Contact' },
      components: { name: { id: 'name', type: 'text', label: 'Name', parent: null, index: 'V', properties: {}, validation: { required: true } } }
    }
    const made = await c.templates.create({ workspaceId: ws.id, name: 'Contact', tags: ['crm'], content })
    assert.equal((made.content?.components.name as { label: string }).label, 'Name')
    for (let i = 0; i < 4; i++) await c.templates.create({ workspaceId: ws.id, name: `Survey ${i}`, tags: ['survey'], description: 'quarterly' })

    const page1 = await c.templates.list({ workspaceId: ws.id, pageSize: 2, page: 1 })
    assert.equal(page1.total, 5)
    assert.equal(page1.items.length, 2)
    const page3 = await c.templates.list({ workspaceId: ws.id, pageSize: 2, page: 3 })
    assert.equal(page3.items.length, 1)
    assert.equal((await c.templates.list({ workspaceId: ws.id, tag: 'crm' })).total, 1)
    assert.equal((await c.templates.list({ q: 'quarterly' })).total, 4)
    await assert.rejects(c.templates.list({ pageSize: 1000 }), (e: unknown) => e instanceof CoformError && e.status === 422)

    const got = await c.templates.get(made.id)
    assert.deepEqual(got.tags, ['crm'])
    const upd = await c.templates.update(made.id, { name: 'Contact us', content: { meta: { name: 'Contact us' } } })
    assert.equal(upd.name, 'Contact us')
    assert.equal(upd.content?.meta.name, 'Contact us')
    assert.ok(upd.version > made.version)

    const token = await c.templates.session(made.id)
    assert.equal(token.role, 'owner')
    assert.equal(token.url, `/collab/${made.id}`)
    assert.ok(token.token.length > 20 && token.expiresIn > 0)

    await c.templates.delete(made.id)
    await assert.rejects(c.templates.get(made.id), (e: unknown) => e instanceof CoformError && e.status === 404)
  }))

  test('versions: save, list, get, diff, restore', withLog(() => server, async () => {
    const c = (await server!.user('Historian')).client
    const ws = await c.workspaces.create({ name: 'History' })
    const tpl = await c.templates.create({ workspaceId: ws.id, name: 'Versioned', content: { meta: { name: 'v1' }, components: {} } })
    const v1 = await c.versions.create(tpl.id, { name: 'First', note: 'initial' })
    assert.equal(v1.number, 1)
    assert.equal(v1.authorName, 'Historian')
    await c.templates.update(tpl.id, { content: { meta: { name: 'v2' }, components: { a: { id: 'a', type: 'text', label: 'A', parent: null, index: 'V' } } } })
    const v2 = await c.versions.create(tpl.id, { name: 'Second' })
    assert.deepEqual((await c.versions.list(tpl.id)).map((v) => v.number), [2, 1])
    assert.equal((await c.versions.get(tpl.id, 1)).content.meta.name, 'v1')
    const diff = await c.versions.diff(tpl.id, 1, v2.number)
    assert.deepEqual(diff.added, ['a'])
    assert.ok(diff.meta.includes('name'), JSON.stringify(diff))
    const vsCurrent = await c.versions.diff(tpl.id, 2, 'current')
    assert.deepEqual(vsCurrent.added, [])

    const restored = await c.versions.restore(tpl.id, 1)
    assert.equal(restored.restored, 1)
    assert.equal(restored.backup.number, 3)
    assert.equal(restored.content.meta.name, 'v1')
    assert.equal((await c.templates.get(tpl.id)).content?.meta.name, 'v1')
    await assert.rejects(c.versions.get(tpl.id, 99), (e: unknown) => e instanceof CoformError && e.status === 404)
  }))

  test('export and import: a file round-trips; bad files list every problem', withLog(() => server, async () => {
    const c = (await server!.user('Porter')).client
    const ws = await c.workspaces.create({ name: 'Files' })
    const content = {
      meta: { name: 'Feedback' },
      components: {
        s: { id: 's', type: 'section', label: 'About you', parent: null, index: 'V', properties: {}, validation: {} },
        q: { id: 'q', type: 'textarea', label: 'Comments', parent: 's', index: 'V', properties: {}, validation: { required: true } }
      }
    }
    const tpl = await c.templates.create({ workspaceId: ws.id, name: 'Feedback', tags: ['ux'], content })
    const file = await c.templates.export(tpl.id)
    assert.equal(file.format, 'coform-template')
    assert.equal(file.template.name, 'Feedback')
    assert.deepEqual(Object.keys(file.content.components).sort(), ['q', 's'])

    const copy = await c.templates.importNew(ws.id, file)
    assert.notEqual(copy.id, tpl.id)
    assert.equal(copy.name, 'Feedback')
    assert.deepEqual(copy.content?.components, (await c.templates.get(tpl.id)).content?.components)

    const empty = await c.templates.create({ workspaceId: ws.id, name: 'Target' })
    const into = await c.templates.import(empty.id, file)
    assert.equal(into.name, 'Target', 'the listing is kept')
    assert.ok(into.content?.components.q !== undefined)

    const bad = { ...file, content: { meta: {}, components: { x: { id: 'x', type: 'hologram', label: 'X', parent: 'nope', index: 'V' } } } } as unknown as TemplateFile
    await assert.rejects(c.templates.import(empty.id, bad), (e: unknown) => {
      assert.ok(e instanceof CoformError)
      assert.equal(e.code, 'validation_failed')
      const fields = (e.details as Array<{ field: string }>).map((f) => f.field)
      assert.ok(fields.length >= 2, JSON.stringify(e.details))
      assert.ok(fields.every((f) => f.startsWith('content.components.x')), JSON.stringify(fields))
      return true
    })

    // A file's text goes as written: a key written twice reaches the server,
    // which refuses the file (parsed here, only the last copy would count).
    const text = JSON.stringify(file)
    const twice = text.replace('"format":', '"format":"nonsense","format":')
    assert.notEqual(twice, text)
    const before = (await c.templates.list({ workspaceId: ws.id })).total
    await assert.rejects(c.templates.importNew(ws.id, twice), (e: unknown) => {
      assert.ok(e instanceof CoformError, String(e))
      assert.equal(e.status, 422, e.message)
      return true
    })
    assert.equal((await c.templates.list({ workspaceId: ws.id })).total, before, 'nothing was created')
    const fromText = await c.templates.importNew(ws.id, text)
    assert.deepEqual(fromText.content?.components, copy.content?.components)
  }))
})
