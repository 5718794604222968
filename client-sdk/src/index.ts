/**
 * `@coform/sdk`: the TypeScript SDK of Coform.
 *
 * # Layout
 *
 * - `client.ts`: {@link CoformClient}: REST requests, sign-in and token refresh.
 * - `api.ts`: typed helpers for workspaces, templates and versions.
 * - `datasources.ts`: data sources (REST, GraphQL, PostgreSQL) and calls through them.
 * - `session.ts`: {@link TemplateSession}: a live template (Y.Doc +
 *   y-websocket provider), form operations, presence, saved state, undo.
 * - `model.ts`: the form model inside the Y.Doc and how it is read/written.
 * - `generated/form.ts`: the form model's types (component types, each
 *   type's properties and rules), generated from the server's schema.
 * - `fractional-index.ts`: base-62 midpoint keys for component order.
 * - `save-state.ts`: bookkeeping of the server's durable acknowledgements.
 * - `storage.ts`, `errors.ts`, `emitter.ts`, `types.ts`: the small parts.
 *
 * @module
 */
export { CoformClient } from './client.js'
export type { CoformClientOptions, ClientEvents, FetchLike, RequestOptions, SignOutReason } from './client.js'
export { WorkspacesApi, TemplatesApi, VersionsApi } from './api.js'
export { DataSourcesApi, SECRET_MASK, requiredSecrets, invalidField } from './datasources.js'
export { TemplateSession, MSG_SAVED, MSG_REJECTED, MSG_REPAIRED } from './session.js'
export type { Repair } from './session.js'
export type {
  ChangeEvent, Cursor, OpenTemplateOptions, Person, PresenceEvent, SaveState, SessionEvents, SessionStatus,
  WebSocketClass, WebSocketLike
} from './session.js'
export { CoformError, isCoformError } from './errors.js'
export { memoryStorage, localStorageStorage } from './storage.js'
export type { StoredAuth, TokenStorage, KeyValueStore } from './storage.js'
export { keyBetween, keysBetween, isValidKey } from './fractional-index.js'
export { COMPONENT_TYPES, MAX_DEPTH, compareSiblings, effectiveParents } from './model.js'
export type { Component, ComponentPatch, ComponentType, MoveTarget, NewComponent, Position, Styling, Validation } from './model.js'
export { SaveTracker, frameKind } from './save-state.js'
export type * from './types.js'
export type * from './generated/form.js'
