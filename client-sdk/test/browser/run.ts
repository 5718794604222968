// A real browser check (not part of `npm test`: it needs Chromium).
//
//   npm run test:browser          # CHROMIUM=/path/to/chromium to choose one
//
// Bundles test/browser/page.ts with esbuild, serves it from a small
// same-origin server that also forwards /api and /collab to a real coform
// process, opens it in headless Chromium and checks, from Node, what the
// page did: sign-in, live editing, saved state, presence with names.

import http from 'node:http'
import net from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, execFileSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { build } from 'esbuild'

import { PACKAGE_ROOT, Server, waitUntil } from '../harness.js'

function findChromium (): string {
  const candidates = [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome'].filter((c): c is string => !!c)
  for (const c of candidates) {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore' })
      return c
    } catch {}
  }
  throw new Error('no Chromium found: install it (e.g. apt-get install chromium) or set CHROMIUM')
}

const server = await new Server().start()
const chromiumBin = findChromium()
let browser: ReturnType<typeof spawn> | undefined
let web: http.Server | undefined
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'coform-chromium-'))
try {
  const alice = await server.user('Alice')
  const bob = await server.user('Bob')
  const ws = await alice.client.workspaces.create({ name: 'Browser' })
  await alice.client.workspaces.addMember(ws.id, { email: bob.email, role: 'editor' })
  const tpl = await alice.client.templates.create({ workspaceId: ws.id, name: 'Browser form' })

  const bundle = await build({
    entryPoints: [path.join(PACKAGE_ROOT, 'test', 'browser', 'page.ts')],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent'
  })
  const app = bundle.outputFiles[0]!.text
  let result: { ok: boolean, error?: string, states?: string[], bob?: { name: string, color: string }, order?: string[], socket?: string } | undefined

  web = http.createServer((req, res) => {
    const url = req.url ?? '/'
    if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>sdk</title><script type="module" src="/app.js"></script>')
    } else if (url === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(app)
    } else if (url === '/config') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ templateId: tpl.id, email: alice.email, password: alice.password }))
    } else if (url === '/result') {
      let body = ''
      req.on('data', (c) => { body += c })
      req.on('end', () => { result ??= JSON.parse(body); res.writeHead(204).end() })
    } else {
      // Same origin for the API: forward to coform.
      const up = http.request({ host: '127.0.0.1', port: server.port, path: url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.writeHead(502).end())
      req.pipe(up)
    }
  })
  web.on('upgrade', (req, socket, head) => {
    const up = net.connect(server.port, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`), '', '']
      up.write(lines.join('\r\n'))
      if (head.length > 0) up.write(head)
      socket.pipe(up)
      up.pipe(socket)
    })
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
  })
  await new Promise<void>((resolve) => web!.listen(0, '127.0.0.1', resolve))
  const port = (web.address() as net.AddressInfo).port

  browser = spawn(chromiumBin, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`], { stdio: 'ignore' })

  // Bob, in Node, answers the browser: selects its field and adds one of his own.
  const session = await bob.client.openTemplate(tpl.id)
  await waitUntil(() => session.component('from-browser') !== undefined, "the browser's component to arrive", 60_000)
  session.setSelection('from-browser')
  session.addComponent({ id: 'from-bob', type: 'email', label: 'From Node' })
  await waitUntil(() => result, 'the page to report', 60_000)
  session.close()

  assert.equal(result!.ok, true, result!.error)
  assert.deepEqual(result!.bob, { name: 'Bob', color: bob.client.user!.color })
  assert.ok(result!.states!.includes('saved'), JSON.stringify(result!.states))
  assert.deepEqual(result!.order, ['from-browser', 'from-bob'])
  assert.equal(result!.socket, 'CoformSocket', 'the native WebSocket was subclassed')
  const content = (await alice.client.templates.get(tpl.id)).content!
  assert.equal((content.components['from-browser'] as { label: string }).label, 'Typed in Chromium')
  console.log(`browser check passed in ${path.basename(chromiumBin)}: ${JSON.stringify(result)}`)
  console.log('1 passed, 0 failed')
} catch (err) {
  console.error(err)
  console.error(`--- coform stderr (tail) ---\n${server.log.slice(-4000)}`)
  console.log('0 passed, 1 failed')
  process.exitCode = 1
} finally {
  if (browser?.pid !== undefined) browser.kill('SIGKILL')
  web?.close()
  web?.closeAllConnections()
  await server.dispose()
  fs.rmSync(profile, { recursive: true, force: true })
}
