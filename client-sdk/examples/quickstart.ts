import WebSocket from 'ws'
import { CoformClient } from '@coform/sdk'

export async function quickstart (baseUrl: string, email: string): Promise<string[]> {
  // 1. Sign up (or `login`), then make a workspace and a template.
  const ada = new CoformClient({ baseUrl, WebSocket })
  await ada.register({ email, password: 'correct horse battery 9', name: 'Ada' })
  const team = await ada.workspaces.create({ name: 'Team' })
  const template = await ada.templates.create({ workspaceId: team.id, name: 'Contact' })

  // 2. Open it live and edit with typed operations.
  const form = await ada.openTemplate(template.id)
  form.setMeta('name', 'Contact us')
  const details = form.addComponent({ type: 'section', label: 'Your details' })
  const name = form.addComponent({ type: 'text', label: 'Name', parent: details })
  const mail = form.addComponent({ type: 'email', label: 'E-mail', parent: details, validation: { required: true } })
  form.moveComponent(mail, { before: name })
  form.updateComponent(name, { properties: { placeholder: 'Ada Lovelace' } })
  form.on('saveState', ({ state, unsavedChanges }) => console.log(`save: ${state} (${unsavedChanges} unsaved)`))
  await form.whenSaved() // the server has stored every change

  // 3. Everything is in the server's copy too.
  const stored = await ada.templates.get(template.id)
  console.log(stored.content?.meta.name) // "Contact us"
  const order = form.tree().map((c) => `${'  '.repeat(c.depth)}${c.label}`)
  form.close()
  return order // ["Your details", "  E-mail", "  Name"]
}
