// The adapter from the SDK's TemplateSession to the editor's signals, on a
// real session that is never connected: edits are local transactions,
// a collaborator's are updates of a second document applied as the
// server would deliver them, presence comes through the awareness
// protocol.
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import * as awarenessProtocol from "y-protocols/awareness";
import { CoformClient, TemplateSession, type WebSocketClass } from "@coform/sdk";
import { EditorStore, IDLE_AFTER_MS, POINTER_INTERVAL_MS } from "./store";

/** A socket class that is never used: the session is never connected. */
const NoSocket = class {
  readyState = 3;
  constructor() {
    throw new Error("no network in unit tests");
  }
} as unknown as WebSocketClass;

const open: EditorStore[] = [];

function editor(): EditorStore {
  const client = new CoformClient({
    baseUrl: "http://127.0.0.1:9",
    WebSocket: NoSocket,
    fetch: () => Promise.reject(new Error("no network in unit tests")),
  });
  const store = new EditorStore(new TemplateSession(client, "t1", { undoCaptureTimeoutMs: 0 }));
  open.push(store);
  return store;
}

/** Applies what `change` does to a copy of the store's document, as another person's edit. */
function remote(store: EditorStore, change: (doc: Y.Doc) => void): void {
  const other = new Y.Doc();
  Y.applyUpdate(other, Y.encodeStateAsUpdate(store.session.doc));
  const before = Y.encodeStateVector(other);
  change(other);
  Y.applyUpdate(store.session.doc, Y.encodeStateAsUpdate(other, before), store.session.provider);
}

afterEach(() => {
  for (const s of open.splice(0)) {
    s.dispose();
    s.session.close();
  }
});

describe("EditorStore", () => {
  it("gives each component its own signal, and moves the tree only when the structure changes", () => {
    const store = editor();
    const a = store.add({ type: "text", label: "A" })!;
    const s = store.add({ type: "section", label: "S" })!;
    expect(store.rows.value.map((r) => r.id)).toEqual([a, s]);
    const structure = store.structure.value;
    const signalOfA = store.byId.get(a)!;
    const signalOfS = store.byId.get(s)!;
    const sBefore = signalOfS.value;

    store.update(a, { label: "A2", properties: { placeholder: "x" } });
    expect(signalOfA.value.label).toBe("A2");
    expect(signalOfS.value).toBe(sBefore); // untouched: same object, no re-render
    expect(store.structure.value).toBe(structure);

    store.move(a, { parent: s });
    expect(store.structure.value).toBeGreaterThan(structure);
    expect(store.rows.value.map((r) => [r.id, r.depth])).toEqual([
      [s, 0],
      [a, 1],
    ]);
    expect(store.children.value.get(s)).toEqual([a]);
  });

  it("takes in another person's edits like the server delivers them", () => {
    const store = editor();
    const a = store.add({ type: "text", label: "Mine" })!;
    const b = store.add({ type: "email", label: "Also mine" })!;
    const signalOfB = store.byId.get(b)!.value;
    remote(store, (doc) => {
      const m = doc.getMap("components").get(a) as Y.Map<unknown>;
      m.set("label", "Theirs");
    });
    expect(store.component(a)?.label).toBe("Theirs");
    expect(store.byId.get(b)!.value).toBe(signalOfB);
    remote(store, (doc) => doc.getMap("components").delete(a));
    expect(store.byId.has(a)).toBe(false);
    expect(store.rows.value.map((r) => r.id)).toEqual([b]);
  });

  it("undoes only its own edits, and clears a selection that disappears", () => {
    const store = editor();
    const a = store.add({ type: "text", label: "One" })!;
    store.select(a);
    remote(store, (doc) => (doc.getMap("components").get(a) as Y.Map<unknown>).set("label", "Changed by them"));
    store.update(a, { properties: { placeholder: "mine" } });
    expect(store.canUndo.value).toBe(true);
    store.undo();
    expect(store.component(a)?.properties.placeholder).toBeUndefined();
    expect(store.component(a)?.label).toBe("Changed by them");
    store.undo(); // the addition
    expect(store.byId.has(a)).toBe(false);
    expect(store.selection.value).toBeNull();
    store.redo();
    expect(store.component(a)?.label).toBe("Changed by them");
  });

  it("lists other people, follows one until you act, and shows who selected what", () => {
    const store = editor();
    const a = store.add({ type: "text", label: "A" })!;
    const b = store.add({ type: "text", label: "B" })!;
    const theirs = new awarenessProtocol.Awareness(new Y.Doc());
    const say = (state: Record<string, unknown>) => {
      theirs.setLocalState(state);
      const update = awarenessProtocol.encodeAwarenessUpdate(theirs, [theirs.clientID]);
      awarenessProtocol.applyAwarenessUpdate(store.session.awareness, update, "server");
    };
    say({ user: { id: "u-bea", name: "Bea", color: "#16a34a" }, selection: a, cursor: null });
    expect(store.people.value.map((p) => [p.name, p.selection])).toEqual([["Bea", a]]);
    expect(store.selectedBy.value.get(a)?.map((p) => p.name)).toEqual(["Bea"]);

    store.follow("u-bea");
    expect(store.selection.value).toBe(a);
    say({ user: { id: "u-bea", name: "Bea", color: "#16a34a" }, selection: b, cursor: null, idle: true });
    expect(store.selection.value).toBe(b);
    expect(store.people.value[0]?.idle).toBe(true);

    // Your own action ends following.
    store.update(a, { label: "A!" });
    expect(store.following.value).toBeNull();
    say({ user: { id: "u-bea", name: "Bea", color: "#16a34a" }, selection: a, cursor: null });
    expect(store.selection.value).toBe(b);

    say({ user: { id: "u-bea", name: "Bea", color: "#16a34a" }, selection: a, cursor: null, pointer: { x: 10, y: 20 } });
    expect(store.extras.value.get(theirs.clientID)?.pointer).toEqual({ x: 10, y: 20 });
    awarenessProtocol.removeAwarenessStates(theirs, [theirs.clientID], "gone");
    awarenessProtocol.applyAwarenessUpdate(
      store.session.awareness,
      awarenessProtocol.encodeAwarenessUpdate(theirs, [theirs.clientID]),
      "server",
    );
    expect(store.people.value).toEqual([]);
  });

  it("shares the pointer at most about 30 times a second, and goes idle after a minute", () => {
    vi.useFakeTimers();
    try {
      const store = editor();
      const sent: unknown[] = [];
      store.session.awareness.on("change", () => sent.push(store.session.awareness.getLocalState()?.pointer));
      // A pointer moving every 4 ms for one second: 250 moves.
      for (let t = 0; t < 1000; t += 4) {
        store.pointer({ x: t, y: t / 2 });
        vi.advanceTimersByTime(4);
      }
      vi.advanceTimersByTime(POINTER_INTERVAL_MS);
      const shared = sent.filter((p) => p !== undefined && p !== null);
      expect(shared.length).toBeGreaterThan(20);
      expect(shared.length).toBeLessThanOrEqual(Math.ceil(1000 / POINTER_INTERVAL_MS) + 1);
      // The last position is the one shown.
      expect(shared.at(-1)).toEqual({ x: 996, y: 498 });
      store.pointer(null);
      expect(store.session.awareness.getLocalState()?.pointer).toBeNull();

      expect(store.session.awareness.getLocalState()?.idle).not.toBe(true);
      vi.advanceTimersByTime(IDLE_AFTER_MS + 1);
      expect(store.session.awareness.getLocalState()?.idle).toBe(true);
      store.active();
      expect(store.session.awareness.getLocalState()?.idle).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not edit once access is lost or the session is read-only", () => {
    const store = editor();
    store.readOnly.value = true;
    expect(store.add({ type: "text", label: "No" })).toBeUndefined();
    expect(store.byId.size).toBe(0);
  });
});
