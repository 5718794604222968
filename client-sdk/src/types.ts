/**
 * Shapes of the Coform REST API (JSON, camelCase). Times are milliseconds
 * since the epoch.
 *
 * @module
 */

/** A workspace role: owner > admin > editor > viewer. */
export type Role = 'owner' | 'admin' | 'editor' | 'viewer'

/** An account. */
export interface User {
  id: string
  email: string
  name: string
  /** Presence colour, `#rrggbb`. */
  color: string
  /** Whether `email` was proved by the link mailed to it. */
  emailVerified: boolean
  /**
   * A new address asked for with `updateMe({ email, currentPassword })`:
   * `email` stays the account's address until the link mailed to this one
   * is opened (`verifyEmail`).
   */
  pendingEmail: string | null
  lastLogin: number | null
  createdAt: number
  updatedAt: number
  profile: Record<string, unknown>
}

/** Answer of register, login and refresh. */
export interface TokenResponse {
  accessToken: string
  refreshToken: string
  tokenType: 'Bearer'
  /** Seconds until the access token expires. */
  expiresIn: number
  user: User
}

export interface RegisterInput { email: string, password: string, name: string }
export interface LoginInput { email: string, password: string }
export interface UpdateMeInput {
  name?: string
  /**
   * A new address: it becomes `pendingEmail` (not `email`) until the link
   * mailed to it is opened. Needs `currentPassword`. The current address
   * cancels a pending change.
   */
  email?: string
  color?: string
  profile?: Record<string, unknown>
  /** The account's password; required with a new `email`. */
  currentPassword?: string
}

/** A login session of the account (see `client.sessions()`). */
export interface SessionInfo {
  id: string
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  userAgent: string
  ip: string
  /** The session of this client. */
  current: boolean
}

export interface Workspace {
  id: string
  name: string
  description: string
  createdBy: string
  settings: Record<string, unknown>
  createdAt: number
  updatedAt: number
  /** The caller's role (absent inside backups). */
  role?: Role
}

export interface Member {
  userId: string
  email: string
  name: string
  role: Role
  joinedAt: number
}

/**
 * An invitation of an address that is not (yet) verified, or has no
 * account: it becomes a membership with `role` once the owner of `email`
 * verifies it. The same shape whether or not the address has an account.
 */
export interface Invitation {
  status: 'invited'
  email: string
  role: Role
  /** The member who sent or last renewed it. */
  invitedBy: string
  invitedAt: number
  /** After this time it grants nothing. */
  expiresAt: number
}

export interface WorkspaceDetail extends Workspace {
  members: Member[]
}

export interface CreateWorkspaceInput { name: string, description?: string, settings?: Record<string, unknown> }
export interface UpdateWorkspaceInput { name?: string, description?: string, settings?: Record<string, unknown> }

export interface WorkspaceAnalytics {
  templates: number
  members: number
  /** Distinct users connected to any template of the workspace now. */
  activeEditors: number
  lastActivity: number
}

/** The JSON form of a template document. */
export interface TemplateContent {
  meta: Record<string, unknown>
  components: Record<string, Record<string, unknown>>
}

/** A template listing; `content` is present on single reads. */
export interface Template {
  id: string
  workspaceId: string
  name: string
  description: string
  tags: string[]
  isPublic: boolean
  createdBy: string
  createdAt: number
  updatedAt: number
  /** Bumped by every REST change of the listing or content. */
  version: number
  content?: TemplateContent
}

export interface TemplateQuery {
  /** Only this workspace (default: all of the caller's). */
  workspaceId?: string
  /** Only templates with this tag. */
  tag?: string
  /** Text to find in name or description. */
  q?: string
  /** 1-based page (default 1). */
  page?: number
  /** 1 to 100 (default 20). */
  pageSize?: number
}

export interface TemplatePage {
  items: Template[]
  total: number
  page: number
  pageSize: number
}

export interface CreateTemplateInput {
  workspaceId: string
  name: string
  description?: string
  tags?: string[]
  isPublic?: boolean
  content?: Partial<TemplateContent>
}

export interface UpdateTemplateInput {
  name?: string
  description?: string
  tags?: string[]
  isPublic?: boolean
  /** Applied as a minimal CRDT edit: live editors keep their own changes. */
  content?: Partial<TemplateContent>
}

/** A short-lived token for the template's WebSocket. */
export interface DocumentToken {
  token: string
  expiresIn: number
  role: Role
  /** Path of the WebSocket: `/collab/{id}`. */
  url: string
}

/** A workspace backup file (`POST /api/workspaces/{id}/backup`). */
export interface WorkspaceBackup {
  format: 'coform-workspace-backup'
  version: number
  exportedAt: number
  workspace: Workspace
  members: Member[]
  templates: Array<Template & { state: string }>
}

export interface RestoreReport {
  /** Templates brought back to the backup's content. */
  restored: number
  /** Templates recreated because they no longer existed. */
  created: number
}

/** A saved version of a template (without content). */
export interface Version {
  /** 1, 2, 3, ... per template. */
  number: number
  name: string
  note: string
  authorId: string
  authorName: string | null
  createdAt: number
  /** Stored size in bytes. */
  size: number
}

export interface VersionDetail extends Version {
  content: TemplateContent
}

export interface CreateVersionInput { name?: string, note?: string }

export interface VersionRestoreResult {
  /** The version whose content the document now has. */
  restored: number
  /** The version saved from the document just before the restore. */
  backup: Version
  /** The document after the restore. */
  content: TemplateContent
}

/** Which side of a diff: a version number or the live document. */
export type VersionRef = number | 'current'

export interface VersionDiff {
  from: string
  to: string
  added: string[]
  removed: string[]
  moved: Array<{ id: string, from: { parent: string | null, index: string | null }, to: { parent: string | null, index: string | null } }>
  /** Dotted paths of the values that differ per component (`label`, `properties.placeholder`, ...). */
  changed: Array<{ id: string, fields: string[] }>
  /** Dotted paths of the meta values that differ. */
  meta: string[]
}

/** A template file (`format: coform-template`, version 1). */
export interface TemplateFile {
  format: 'coform-template'
  version: number
  template: { name: string, description?: string, tags?: string[] }
  content: TemplateContent
}

/** One invalid field in a `validation_failed` error's details. */
export interface FieldError { field: string, message: string }
