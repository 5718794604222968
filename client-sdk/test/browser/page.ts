// Runs inside Chromium: the SDK with the browser's own fetch and WebSocket.
import { CoformClient, type Person } from '../../src/index.js'

const report = (body: unknown): Promise<Response> => fetch('/result', { method: 'POST', body: JSON.stringify(body) })
window.addEventListener('error', (e) => { void report({ ok: false, error: String(e.message) }) })
window.addEventListener('unhandledrejection', (e) => { void report({ ok: false, error: String((e.reason as Error)?.stack ?? e.reason) }) })

const cfg = await (await fetch('/config')).json() as { templateId: string, email: string, password: string }
const client = new CoformClient({ baseUrl: location.origin })
await client.login({ email: cfg.email, password: cfg.password })
const form = await client.openTemplate(cfg.templateId)
const states: string[] = []
form.on('saveState', (e) => states.push(e.state))
const id = form.addComponent({ id: 'from-browser', type: 'text', label: 'Typed in Chromium' })
form.setSelection(id)
await form.whenSaved()
const bob = await new Promise<Person>((resolve) => {
  const check = (): void => {
    const p = form.people().find((x) => !x.self && x.selection === id)
    if (p !== undefined) resolve(p)
  }
  form.on('presence', check)
  check()
})
await new Promise<void>((resolve) => {
  const check = (): void => { if (form.component('from-bob') !== undefined) resolve() }
  form.on('change', check)
  check()
})
await report({ ok: true, states, bob: { name: bob.name, color: bob.color }, order: form.tree().map((c) => c.id), socket: form.provider.ws?.constructor.name })
