import type { CoformClient } from './client.js'
import type {
  CreateTemplateInput, CreateVersionInput, CreateWorkspaceInput, DocumentToken, Invitation, Member, RestoreReport, Role,
  Template, TemplateFile, TemplatePage, TemplateQuery, UpdateTemplateInput, UpdateWorkspaceInput, Version,
  VersionDetail, VersionDiff, VersionRef, VersionRestoreResult, Workspace, WorkspaceAnalytics, WorkspaceBackup,
  WorkspaceDetail
} from './types.js'

const enc = encodeURIComponent

/**
 * What every collection under `/api` answers: create, read, update and
 * delete one item by id. Subclasses add their own routes with {@link at}.
 */
abstract class Collection<Item, Detail, Create, Update> {
  constructor (protected readonly client: CoformClient, private readonly base: string) {}

  /** The path of item `id`, then each further segment, URL-encoded. */
  protected at (id: string, ...rest: string[]): string {
    return [this.base, id, ...rest].map((s, i) => i === 0 ? s : enc(s)).join('/')
  }

  /** Creates an item (workspace: the caller becomes its owner; template: editor). */
  create (input: Create): Promise<Item> {
    return this.client.request('POST', this.base, { body: input })
  }

  /** One item in full (workspace: with its members; template: with its content). */
  get (id: string): Promise<Detail> {
    return this.client.request('GET', this.at(id))
  }

  /** Changes the listing (and a template's content): admin for a workspace, editor for a template. */
  update (id: string, patch: Update): Promise<Item> {
    return this.client.request('PUT', this.at(id), { body: patch })
  }

  /** Deletes the item with what it holds: a workspace (owner) its templates, a template its document and history. */
  async delete (id: string): Promise<void> {
    await this.client.request('DELETE', this.at(id))
  }
}

/** `/api/workspaces/*`: workspaces, members, invitations, analytics, backup and restore. */
export class WorkspacesApi extends Collection<Workspace, WorkspaceDetail, CreateWorkspaceInput, UpdateWorkspaceInput> {
  constructor (client: CoformClient) {
    super(client, '/api/workspaces')
  }

  /** The workspaces the signed-in user belongs to, with their role. */
  list (): Promise<Workspace[]> {
    return this.client.request('GET', '/api/workspaces')
  }



  /**
   * Adds a member by e-mail (admin; only owners add owners). An account
   * whose address is verified joins at once (a {@link Member}); any other
   * address is invited (an {@link Invitation}, `status: 'invited'`) and
   * joins with the role once its owner verifies it.
   */
  addMember (id: string, input: { email: string, role: Role }): Promise<Member | Invitation> {
    return this.client.request('POST', this.at(id, 'members'), { body: input })
  }

  /** Invitations still waiting for their address to be verified (admin). */
  invitations (id: string): Promise<Invitation[]> {
    return this.client.request('GET', this.at(id, 'invitations'))
  }

  /** Cancels the invitation of an address (admin; owners for an owner's). */
  async cancelInvitation (id: string, email: string): Promise<void> {
    await this.client.request('DELETE', this.at(id, 'invitations', email))
  }

  /** Changes a member's role; their open sessions switch at once. */
  async updateMember (id: string, userId: string, input: { role: Role }): Promise<void> {
    await this.client.request('PUT', this.at(id, 'members', userId), { body: input })
  }

  /** Removes a member (admin), or leaves when `userId` is one's own id. */
  async removeMember (id: string, userId: string): Promise<void> {
    await this.client.request('DELETE', this.at(id, 'members', userId))
  }

  /** Counts and activity. */
  analytics (id: string): Promise<WorkspaceAnalytics> {
    return this.client.request('GET', this.at(id, 'analytics'))
  }

  /** The whole workspace as one JSON document (admin). */
  backup (id: string): Promise<WorkspaceBackup> {
    return this.client.request('POST', this.at(id, 'backup'))
  }

  /**
   * Brings the workspace back to a backup (admin): listing fields and every
   * template's content, as a forward edit live editors see at once.
   * Memberships are not changed.
   */
  restore (id: string, backup: WorkspaceBackup): Promise<RestoreReport> {
    return this.client.request('POST', this.at(id, 'restore'), { body: backup })
  }
}

/** `/api/templates/*`: listings, content, document tokens, export and import. */
export class TemplatesApi extends Collection<Template, Template, CreateTemplateInput, UpdateTemplateInput> {
  constructor (client: CoformClient) {
    super(client, '/api/templates')
  }

  /** Templates of the caller's workspaces, filtered and paged. */
  list (query: TemplateQuery = {}): Promise<TemplatePage> {
    return this.client.request('GET', '/api/templates', { query: { ...query } })
  }

  /** A short-lived token for `/collab/{id}` (what `openTemplate` uses). */
  session (id: string): Promise<DocumentToken> {
    return this.client.request('POST', this.at(id, 'session'))
  }

  /** What the server's validator says of the live content (empty when valid). */
  problems (id: string): Promise<{ problems: Array<{ path: string, message: string }> }> {
    return this.client.request('GET', this.at(id, 'problems'))
  }

  /** The template as a file (`coform-template` format). */
  export (id: string): Promise<TemplateFile> {
    return this.client.request('POST', this.at(id, 'export'))
  }

  /**
   * Replaces a template's content with a file's (editor), as one edit live
   * editors see at once. The listing is kept. A bad file throws
   * `validation_failed` with every problem in `details`.
   */
  import (id: string, file: TemplateFile | string): Promise<Template> {
    return this.client.request('POST', this.at(id, 'import'), fileBody(file))
  }

  /** Creates a new template in a workspace from a file (editor there). */
  importNew (workspaceId: string, file: TemplateFile | string): Promise<Template> {
    return this.client.request('POST', '/api/templates/import', { ...fileBody(file), query: { workspaceId } })
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

/**
 * A file's text is sent as it is, so that the server sees what the file
 * says (a key written twice is refused there, where parsing it here would
 * keep only the last one); an object is sent as JSON.
 */
function fileBody (file: TemplateFile | string): { json: string } | { body: TemplateFile } {
  return typeof file === 'string' ? { json: file } : { body: file }
}
