// Viewers and editors with authentication on, through the unmodified
// y-websocket provider: a viewer's edits never reach another client, an
// editor's do, and presence carries the account's name whatever the
// client claims.
//
// The server runs with auth on (no `--auth off`); accounts, the workspace
// and the template are made through the REST API, and each provider
// connects with `params: { token }`.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  CoformServer,
  createTemplate,
  createWorkspace,
  emailOf,
  serverSuite,
  signUp,
  verifyEmail,
  waitForSynced,
  waitUntil
} from './harness.js'

const DROPPED = 'coform_readonly_updates_dropped_total'

/** `coform serve` with authentication on. */
class AuthServer extends CoformServer {
  args () {
    const args = super.args()
    const i = args.indexOf('--auth')
    if (i >= 0) args.splice(i, 2)
    return args
  }
}

describe('viewers and editors over y-websocket with auth on', () => {
  /** @type {Record<string, { id: string, name: string, color: string, access: string }>} */
  const people = {}
  let templateId
  const { server, clients } = serverSuite(new AuthServer(), { setup: teamWithViewerAndEditor })

  async function register (key, name) {
    const body = await signUp(server, key, name)
    people[key] = { ...body.user, access: body.accessToken }
  }

  /**
   * Alice owns the workspace and its template; Carol is a viewer and Dave
   * an editor. Only a verified address is added to a workspace at once.
   */
  async function teamWithViewerAndEditor () {
    await register('alice', 'Alice')
    await register('carol', 'Carol')
    await register('dave', 'Dave')
    await verifyEmail(server, 'carol')
    await verifyEmail(server, 'dave')
    const workspaceId = await createWorkspace(server, people.alice.access)
    for (const [key, role] of [['carol', 'viewer'], ['dave', 'editor']]) {
      await server.apiExpect(201, 'POST', `/api/workspaces/${workspaceId}/members`, {
        token: people.alice.access, body: { email: emailOf(key), role }
      })
    }
    templateId = await createTemplate(server, people.alice.access, workspaceId, {
      content: { meta: { title: 'original' }, components: {} }
    })
  }

  /** A stock provider on the template, signed in with `token`. */
  const provider = (token) => clients.provider(templateId, { params: { token } })

  const metaOf = (p) => p.doc.getMap('meta').toJSON()

  test("a viewer's edits never reach another client", server.guard(async () => {
    const editor = provider(people.alice.access)
    const observer = provider(people.dave.access)
    const viewer = provider(people.carol.access)
    await Promise.all([editor, observer, viewer].map((p) => waitForSynced(p)))
    await waitUntil(() => viewer.doc.getMap('meta').get('title') === 'original', {
      what: 'the viewer to receive the template', detail: () => metaOf(viewer)
    })

    const dropped = await server.metric(DROPPED)
    viewer.doc.transact(() => {
      viewer.doc.getMap('meta').set('title', 'defaced by the viewer')
      viewer.doc.getMap('components').set('hack', { id: 'hack', type: 'text' })
    })
    // The server has handled (and dropped) the viewer's update once the
    // counter moves; an editor's edit sent after that arrives after it.
    await waitUntil(async () => (await server.metric(DROPPED)) === dropped + 1, {
      what: 'the server to drop the viewer update'
    })
    editor.doc.getMap('meta').set('after', 'an editor edit')
    await waitUntil(() => observer.doc.getMap('meta').get('after') === 'an editor edit', {
      what: 'the editor edit to reach the observer', detail: () => metaOf(observer)
    })
    assert.equal(observer.doc.getMap('meta').get('title'), 'original')
    assert.equal(observer.doc.getMap('components').get('hack'), undefined)
    assert.equal(editor.doc.getMap('meta').get('title'), 'original')

    const stored = await server.apiExpect(200, 'GET', `/api/templates/${templateId}`, { token: people.alice.access })
    assert.deepEqual(stored.content, { meta: { title: 'original', after: 'an editor edit' }, components: {} })

    // A client that joins now gets the server's document, without it.
    const late = provider(people.dave.access)
    await waitForSynced(late)
    await waitUntil(() => late.doc.getMap('meta').get('after') === 'an editor edit', { what: 'the late client to sync' })
    assert.equal(late.doc.getMap('meta').get('title'), 'original')
    assert.equal(late.doc.getMap('components').get('hack'), undefined)
  }))

  test("an editor's edits reach every client, viewers included", server.guard(async () => {
    const editor = provider(people.dave.access)
    const observer = provider(people.alice.access)
    const viewer = provider(people.carol.access)
    await Promise.all([editor, observer, viewer].map((p) => waitForSynced(p)))

    editor.doc.transact(() => {
      editor.doc.getMap('meta').set('subtitle', 'by an editor')
      editor.doc.getMap('components').set('c1', { id: 'c1', type: 'email', index: 'a0' })
    })
    for (const p of [observer, viewer]) {
      await waitUntil(() => p.doc.getMap('meta').get('subtitle') === 'by an editor', {
        what: 'the editor edit to arrive', detail: () => metaOf(p)
      })
      assert.deepEqual(p.doc.getMap('components').get('c1'), { id: 'c1', type: 'email', index: 'a0' })
    }
    const stored = await server.apiExpect(200, 'GET', `/api/templates/${templateId}`, { token: people.carol.access })
    assert.equal(stored.content.meta.subtitle, 'by an editor')
    assert.deepEqual(stored.content.components.c1, { id: 'c1', type: 'email', index: 'a0' })
  }))

  test("presence shows the viewer's account name and colour, not what it claims", server.guard(async () => {
    const observer = provider(people.dave.access)
    const viewer = provider(people.carol.access)
    await Promise.all([observer, viewer].map((p) => waitForSynced(p)))
    viewer.awareness.setLocalState({ user: { name: 'The CEO', color: '#ff0000' }, cursor: 7 })
    const id = viewer.awareness.clientID
    const state = await waitUntil(() => {
      const s = observer.awareness.getStates().get(id)
      return s && s.cursor === 7 ? s : null
    }, {
      what: "the viewer's presence at the observer",
      detail: () => Object.fromEntries(observer.awareness.getStates())
    })
    assert.equal(state.user.name, people.carol.name)
    assert.equal(state.user.color, people.carol.color)
    assert.equal(state.user.id, people.carol.id)
  }))
})
