// Accounts, workspaces and templates through the REST API, for suites that
// run the server with authentication on. Every call must answer the status
// it is made for; the e-mail address of account `key` is `key@example.com`.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

/** The password of every account the tests make. */
export const PASSWORD = 'correct horse 9'

export const emailOf = (key) => `${key}@example.com`

/** Registers account `key`; returns the answer ({ user, accessToken, ... }). */
export function signUp (server, key, name) {
  return server.apiExpect(201, 'POST', '/api/auth/register', {
    body: { email: emailOf(key), password: PASSWORD, name }
  })
}

/** Signs account `key` in again (a new session); returns the answer. */
export function logIn (server, key) {
  return server.apiExpect(200, 'POST', '/api/auth/login', { body: { email: emailOf(key), password: PASSWORD } })
}

/**
 * Verifies the address of account `key` with the link of its verification
 * mail (the server writes mails to `<data-dir>/outbox/`).
 */
export async function verifyEmail (server, key) {
  const outbox = path.join(server.dataDir, 'outbox')
  const mails = fs.readdirSync(outbox).filter((f) => f.endsWith('.eml')).sort()
    .map((f) => fs.readFileSync(path.join(outbox, f), 'utf8'))
    .filter((m) => m.includes(`To: ${emailOf(key)}\n`) && m.includes('Subject: Verify your Coform e-mail address'))
  const token = /verify-email\?token=([A-Za-z0-9_-]{43})/.exec(mails.at(-1) ?? '')?.[1]
  assert.ok(token, `no verification mail to ${emailOf(key)}`)
  await server.apiExpect(200, 'GET', `/api/auth/verify-email?token=${token}`)
}

/** Creates a workspace named `name` owned by the holder of `token`; returns its id. */
export async function createWorkspace (server, token, name = 'Team') {
  return (await server.apiExpect(201, 'POST', '/api/workspaces', { token, body: { name } })).id
}

/** Creates a template in a workspace; returns its id (also its room name). */
export async function createTemplate (server, token, workspaceId, { name = 'Form', content } = {}) {
  const body = { workspaceId, name }
  if (content !== undefined) body.content = content
  return (await server.apiExpect(201, 'POST', '/api/templates', { token, body })).id
}
