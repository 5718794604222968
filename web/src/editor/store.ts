// One open template as signals: the SDK's TemplateSession adapted to
// what the editor's parts read. Each component has its own signal, and the
// tree (who is inside what, in which order) is a separate one, so a
// change to one component's label re-renders that component alone.
import { computed, signal, type Signal } from "@preact/signals";
import {
  CoformError,
  type ChangeEvent,
  type Component,
  type ComponentPatch,
  type MoveTarget,
  type NewComponent,
  type SaveState,
  type SessionStatus,
  type TemplateSession,
} from "@coform/sdk";
import {
  buildRows,
  followedSelection,
  peers,
  repairMessage,
  selectionsByComponent,
  type Peer,
  type PresenceExtras,
  type Problem,
  type Row,
} from "./model";

/** Fields whose change moves a component in the tree. */
const STRUCTURAL = new Set(["parent", "index", "type", "*"]);

/** How often a pointer position is shared at most (about 30 per second). */
export const POINTER_INTERVAL_MS = 33;
/** Without a key press or pointer move for this long, you show as idle. */
export const IDLE_AFTER_MS = 60_000;

export interface Ended {
  /** `access`: removed from the workspace or the template is gone; `session`: signed out. */
  why: "access" | "session";
  message: string;
}

export class EditorStore {
  readonly session: TemplateSession;
  /** Every component by id; each is its own signal. */
  readonly byId = new Map<string, Signal<Component>>();
  /** Bumped when components appear, disappear or move. */
  readonly structure = signal(0);
  readonly rows = computed<Row[]>(() => {
    void this.structure.value;
    return buildRows(this.snapshot());
  });
  /** Children of each parent (null: top level), in display order. */
  readonly children = computed(() => {
    const out = new Map<string | null, string[]>();
    for (const r of this.rows.value) {
      let l = out.get(r.parent);
      if (l === undefined) out.set(r.parent, (l = []));
      l.push(r.id);
    }
    return out;
  });

  readonly selection = signal<string | null>(null);
  readonly people = signal<Peer[]>([]);
  /** Presence extras (pointer, idle) of each awareness client. */
  readonly extras = signal<Map<number, PresenceExtras>>(new Map());
  readonly following = signal<string | null>(null);
  readonly saveState = signal<{ state: SaveState; unsaved: number }>({ state: "saving", unsaved: 0 });
  readonly status = signal<SessionStatus>("connecting");
  readonly canUndo = signal(false);
  readonly canRedo = signal(false);
  readonly readOnly = signal(false);
  readonly ended = signal<Ended | null>(null);
  readonly problems = signal<Problem[]>([]);
  /** What the server last repaired of this designer's own changes, in
   *  words (said in a toast); a new object each time, so the same words
   *  twice are said twice. */
  readonly repaired = signal<{ message: string } | null>(null);
  /** Who has each component selected. */
  readonly selectedBy = computed(() => selectionsByComponent(this.people.value));

  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #idle = false;
  #lastPointer = 0;
  #pointerTimer: ReturnType<typeof setTimeout> | null = null;
  #pendingPointer: { x: number; y: number } | null = null;
  #peopleKey = "";
  readonly #off: Array<() => void> = [];

  constructor(session: TemplateSession) {
    this.session = session;
    for (const c of session.components()) this.byId.set(c.id, signal(c));
    this.readOnly.value = session.readOnly;
    this.status.value = session.status;
    this.saveState.value = { state: session.saveState, unsaved: session.unsavedChanges };
    this.#off.push(
      session.on("change", (e) => this.#onChange(e)),
      session.on("presence", () => this.#onPresence()),
      session.on("saveState", ({ state, unsavedChanges }) => {
        this.saveState.value = { state, unsaved: unsavedChanges };
      }),
      session.on("status", (s) => {
        this.status.value = s;
        this.readOnly.value = session.readOnly;
      }),
      session.on("synced", () => (this.readOnly.value = session.readOnly)),
      session.on("rejected", () => (this.readOnly.value = true)),
      session.on("repaired", ({ yours, repairs }) => {
        // Someone else's repaired change is theirs to hear about; here
        // the form simply shows the repaired value.
        if (!yours || repairs.length === 0) return;
        this.repaired.value = { message: repairMessage(repairs, (id) => this.byId.get(id)?.value.label) };
      }),
      session.on("closed", ({ reason, error }) => {
        if (reason !== "access_lost") return;
        const signedOut = error instanceof CoformError && error.status === 401;
        this.ended.value = signedOut
          ? { why: "session", message: "Your session has ended. Sign in again; your changes are kept on this device." }
          : { why: "access", message: "You no longer have access to this template. Editing has stopped." };
        this.readOnly.value = true;
      }),
    );
    const um = session.undoManager;
    const onStack = (): void => {
      this.canUndo.value = session.canUndo();
      this.canRedo.value = session.canRedo();
    };
    for (const ev of ["stack-item-added", "stack-item-popped", "stack-cleared"] as const) {
      um.on(ev, onStack);
      this.#off.push(() => um.off(ev, onStack));
    }
    const onAwareness = (): void => this.#onAwareness();
    session.awareness.on("change", onAwareness);
    this.#off.push(() => session.awareness.off("change", onAwareness));
    this.#onPresence();
    this.#onAwareness();
    this.active();
  }

  dispose(): void {
    for (const f of this.#off) f();
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    if (this.#pointerTimer !== null) clearTimeout(this.#pointerTimer);
  }

  // ---------------------------------------------------------------- reading

  component(id: string): Component | undefined {
    return this.byId.get(id)?.peek();
  }

  /** The components as a map (not reactive). */
  snapshot(): Map<string, Component> {
    const out = new Map<string, Component>();
    for (const [id, s] of this.byId) out.set(id, s.peek());
    return out;
  }

  #onChange(e: ChangeEvent): void {
    let moved = e.added.length > 0 || e.removed.length > 0;
    for (const id of e.removed) this.byId.delete(id);
    for (const id of e.added) {
      const c = this.session.component(id);
      if (c !== undefined) this.byId.set(id, signal(c));
    }
    for (const id of e.updated) {
      const c = this.session.component(id);
      if (c === undefined) continue;
      const s = this.byId.get(id);
      if (s === undefined) this.byId.set(id, signal(c));
      else s.value = c;
      if ((e.fields[id] ?? ["*"]).some((f) => STRUCTURAL.has(f))) moved = true;
    }
    if (moved) this.structure.value++;
    const sel = this.selection.peek();
    if (sel !== null && !this.byId.has(sel)) this.select(null);
    if (e.local) this.active();
  }

  #onPresence(): void {
    const list = peers(this.session.people(), (id) => this.extras.peek().get(id));
    // Pointer moves change awareness often; the avatars only when this does.
    const key = JSON.stringify(list);
    if (key !== this.#peopleKey) {
      this.#peopleKey = key;
      this.people.value = list;
    }
    const follow = followedSelection(this.following.peek(), list, (id) => this.byId.has(id));
    if (follow !== undefined && follow !== this.selection.peek()) this.#setSelection(follow);
    if (this.following.peek() !== null && !list.some((p) => p.key === this.following.peek())) {
      this.following.value = null;
    }
  }

  #onAwareness(): void {
    const out = new Map<number, PresenceExtras>();
    for (const [clientId, state] of this.session.awareness.getStates()) {
      if (clientId === this.session.doc.clientID || state === null || typeof state !== "object") continue;
      const s = state as { idle?: unknown; pointer?: unknown };
      const p = s.pointer as { x?: unknown; y?: unknown } | null | undefined;
      const pointer =
        p && typeof p.x === "number" && typeof p.y === "number" && Number.isFinite(p.x) && Number.isFinite(p.y)
          ? { x: p.x, y: p.y }
          : null;
      out.set(clientId, { idle: s.idle === true, pointer });
    }
    this.extras.value = out;
    this.#onPresence();
  }

  // ---------------------------------------------------------------- presence

  /** You did something: not idle, and following stops. */
  active(): void {
    if (this.#idle) {
      this.#idle = false;
      this.session.awareness.setLocalStateField("idle", false);
    }
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#idle = true;
      this.session.awareness.setLocalStateField("idle", true);
    }, IDLE_AFTER_MS);
  }

  /** Shares where your pointer is on the canvas (at most ~30 times a second). */
  pointer(at: { x: number; y: number } | null): void {
    this.#pendingPointer = at;
    if (at === null) {
      if (this.#pointerTimer !== null) clearTimeout(this.#pointerTimer);
      this.#pointerTimer = null;
      this.session.awareness.setLocalStateField("pointer", null);
      return;
    }
    if (this.#pointerTimer !== null) return;
    const wait = Math.max(0, this.#lastPointer + POINTER_INTERVAL_MS - Date.now());
    this.#pointerTimer = setTimeout(() => {
      this.#pointerTimer = null;
      this.#lastPointer = Date.now();
      const p = this.#pendingPointer;
      if (p !== null) this.session.awareness.setLocalStateField("pointer", { x: Math.round(p.x), y: Math.round(p.y) });
    }, wait);
  }

  /** Selects a component (your own action: following stops). */
  select(id: string | null): void {
    this.following.value = null;
    this.#setSelection(id);
  }

  #setSelection(id: string | null): void {
    this.selection.value = id;
    this.session.setSelection(id);
  }

  follow(key: string | null): void {
    this.following.value = key;
    this.#onPresence();
  }

  // ---------------------------------------------------------------- editing

  /** Runs an edit; a read-only session does nothing. Your own edits stop following. */
  #edit<T>(f: () => T): T | undefined {
    if (this.readOnly.peek() || this.ended.peek() !== null) return undefined;
    this.following.value = null;
    return f();
  }

  add(spec: NewComponent): string | undefined {
    return this.#edit(() => {
      this.session.stopCapturing();
      const id = this.session.addComponent(spec);
      this.session.stopCapturing();
      return id;
    });
  }

  update(id: string, patch: ComponentPatch): void {
    this.#edit(() => this.session.updateComponent(id, patch));
  }

  move(id: string, target: MoveTarget): void {
    this.#edit(() => {
      this.session.stopCapturing();
      this.session.moveComponent(id, target);
      this.session.stopCapturing();
    });
  }

  remove(id: string): boolean {
    return (
      this.#edit(() => {
        this.session.stopCapturing();
        const done = this.session.removeComponent(id);
        this.session.stopCapturing();
        return done;
      }) ?? false
    );
  }

  undo(): boolean {
    return this.#edit(() => this.session.undo()) ?? false;
  }

  redo(): boolean {
    return this.#edit(() => this.session.redo()) ?? false;
  }
}
