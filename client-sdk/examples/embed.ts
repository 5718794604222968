import { CoformClient, localStorageStorage, type TemplateSession } from '@coform/sdk'
export async function embedForm (root: HTMLElement, baseUrl: string, templateId: string, login: { email: string, password: string }): Promise<TemplateSession> {
  const client = new CoformClient({ baseUrl, storage: localStorageStorage() })
  await client.ready()
  if (!client.signedIn) await client.login(login)
  const form = await client.openTemplate(templateId)
  const render = (): void => root.replaceChildren(...form.tree().map((c) => {
    const row = document.createElement('div')
    const other = form.people().find((p) => !p.self && p.selection === c.id)
    row.textContent = `${'  '.repeat(c.depth)}${c.label}${other ? ` (${other.name})` : ''}`
    row.style.borderLeft = `3px solid ${other?.color ?? 'transparent'}`
    row.onclick = () => form.setSelection(c.id)
    return row
  }))
  form.on('change', render)
  form.on('presence', render)
  render()
  return form
}
