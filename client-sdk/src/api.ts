import type { CoformClient } from './client.js'
import type {
  CreateTemplateInput, CreateVersionInput, CreateWorkspaceInput, DocumentToken, Invitation, Member, RestoreReport, Role,
  Template, TemplateFile, TemplatePage, TemplateQuery, UpdateTemplateInput, UpdateWorkspaceInput, Version,
  VersionDetail, VersionDiff, VersionRef, VersionRestoreResult, Workspace, WorkspaceAnalytics, WorkspaceBackup,
  WorkspaceDetail
} from './types.js'

const enc = encodeURIComponent

/** `/api/workspaces/*`: workspaces, members, invitations, analytics, backup and restore. */
export class WorkspacesApi {
  constructor (private readonly client: CoformClient) {}

  /** The workspaces the signed-in user belongs to, with their role. */
  list (): Promise<Workspace[]> {
    return this.client.request('GET', '/api/workspaces')
  }

  /** Creates a workspace; the caller becomes its owner. */
  create (input: CreateWorkspaceInput): Promise<Workspace> {
    return this.client.request('POST', '/api/workspaces', { body: input })
  }

  /** A workspace with its members. */
  get (id: string): Promise<WorkspaceDetail> {
    return this.client.request('GET', `/api/workspaces/${enc(id)}`)
  }

  /** Renames or changes description/settings (admin). */
  update (id: string, patch: UpdateWorkspaceInput): Promise<Workspace> {
    return this.client.request('PUT', `/api/workspaces/${enc(id)}`, { body: patch })
  }

  /** Deletes the workspace and its templates (owner). */
  async delete (id: string): Promise<void> {
    await this.client.request('DELETE', `/api/workspaces/${enc(id)}`)
  }

  /**
   * Adds a member by e-mail (admin; only owners add owners). An account
   * whose address is verified joins at once (a {@link Member}); any other
   * address is invited (an {@link Invitation}, `status: 'invited'`) and
   * joins with the role once its owner verifies it.
   */
  addMember (id: string, input: { email: string, role: Role }): Promise<Member | Invitation> {
    return this.client.request('POST', `/api/workspaces/${enc(id)}/members`, { body: input })
  }

  /** Invitations still waiting for their address to be verified (admin). */
  invitations (id: string): Promise<Invitation[]> {
    return this.client.request('GET', `/api/workspaces/${enc(id)}/invitations`)
  }

  /** Cancels the invitation of an address (admin; owners for an owner's). */
  async cancelInvitation (id: string, email: string): Promise<void> {
    await this.client.request('DELETE', `/api/workspaces/${enc(id)}/invitations/${enc(email)}`)
  }

  /** Changes a member's role; their open sessions switch at once. */
  async updateMember (id: string, userId: string, input: { role: Role }): Promise<void> {
    await this.client.request('PUT', `/api/workspaces/${enc(id)}/members/${enc(userId)}`, { body: input })
  }

  /** Removes a member (admin), or leaves when `userId` is one's own id. */
  async removeMember (id: string, userId: string): Promise<void> {
    await this.client.request('DELETE', `/api/workspaces/${enc(id)}/members/${enc(userId)}`)
  }

  /** Counts and activity. */
  analytics (id: string): Promise<WorkspaceAnalytics> {
    return this.client.request('GET', `/api/workspaces/${enc(id)}/analytics`)
  }

  /** The whole workspace as one JSON document (admin). */
  backup (id: string): Promise<WorkspaceBackup> {
    return this.client.request('POST', `/api/workspaces/${enc(id)}/backup`)
  }

  /**
   * Brings the workspace back to a backup (admin): listing fields and every
   * template's content, as a forward edit live editors see at once.
   * Memberships are not changed.
   */
  restore (id: string, backup: WorkspaceBackup): Promise<RestoreReport> {
    return this.client.request('POST', `/api/workspaces/${enc(id)}/restore`, { body: backup })
  }
}

/** `/api/templates/*`: listings, content, document tokens, export and import. */
export class TemplatesApi {
  constructor (private readonly client: CoformClient) {}

  /** Templates of the caller's workspaces, filtered and paged. */
  list (query: TemplateQuery = {}): Promise<TemplatePage> {
    return this.client.request('GET', '/api/templates', { query: { ...query } })
  }

  /** Creates a template (editor), optionally with content. */
  create (input: CreateTemplateInput): Promise<Template> {
    return this.client.request('POST', '/api/templates', { body: input })
  }

  /** A template with its content. */
  get (id: string): Promise<Template> {
    return this.client.request('GET', `/api/templates/${enc(id)}`)
  }

  /** Changes the listing and/or the content (editor). */
  update (id: string, patch: UpdateTemplateInput): Promise<Template> {
    return this.client.request('PUT', `/api/templates/${enc(id)}`, { body: patch })
  }

  /** Deletes the template, its document and history. */
  async delete (id: string): Promise<void> {
    await this.client.request('DELETE', `/api/templates/${enc(id)}`)
  }

  /** A short-lived token for `/collab/{id}` (what `openTemplate` uses). */
  session (id: string): Promise<DocumentToken> {
    return this.client.request('POST', `/api/templates/${enc(id)}/session`)
  }

  /** The template as a file (`coform-template` format). */
  export (id: string): Promise<TemplateFile> {
    return this.client.request('POST', `/api/templates/${enc(id)}/export`)
  }

  /**
   * Replaces a template's content with a file's (editor), as one edit live
   * editors see at once. The listing is kept. A bad file throws
   * `validation_failed` with every problem in `details`.
   */
  import (id: string, file: TemplateFile): Promise<Template> {
    return this.client.request('POST', `/api/templates/${enc(id)}/import`, { body: file })
  }

  /** Creates a new template in a workspace from a file (editor there). */
  importNew (workspaceId: string, file: TemplateFile): Promise<Template> {
    return this.client.request('POST', '/api/templates/import', { body: file, query: { workspaceId } })
  }
}

/** `/api/templates/{id}/versions/*`: saved versions, restore and diffs. */
export class VersionsApi {
  constructor (private readonly client: CoformClient) {}

  /** Versions of a template, newest first. */
  list (templateId: string): Promise<Version[]> {
    return this.client.request('GET', `/api/templates/${enc(templateId)}/versions`)
  }

  /** Saves the template's current state as a new version (editor). */
  create (templateId: string, input: CreateVersionInput = {}): Promise<Version> {
    return this.client.request('POST', `/api/templates/${enc(templateId)}/versions`, { body: input })
  }

  /** One version with its content. */
  get (templateId: string, number: number): Promise<VersionDetail> {
    return this.client.request('GET', `/api/templates/${enc(templateId)}/versions/${number}`)
  }

  /**
   * Brings the document back to a version's content (editor). The current
   * state is saved as a version first; history is never truncated.
   */
  restore (templateId: string, number: number): Promise<VersionRestoreResult> {
    return this.client.request('POST', `/api/templates/${enc(templateId)}/versions/${number}/restore`)
  }

  /** What changed from `from` to `to` (version numbers or `'current'`). */
  diff (templateId: string, from: VersionRef, to: VersionRef): Promise<VersionDiff> {
    return this.client.request('GET', `/api/templates/${enc(templateId)}/versions/${from}/diff/${to}`)
  }
}
