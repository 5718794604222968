// The canvas: the form as it will look, one item per component, sections
// nested. Items are one composite widget: the selected item is the Tab
// stop, Up/Down move between items, Enter or Space selects, Alt+Up/Down
// move the component, Delete deletes it (with undo); its properties come
// next in the Tab order. Drag and
// drop does the same for pointer users.
import { signal, useComputed } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { Component, MoveTarget } from "@coform/sdk";
import { focusItem } from "./focus";
import { FormControl } from "./FormControl";
import type { Catalog } from "../schema";
import { typeInfo } from "../schema";
import { dropTarget, stepMove, textOn } from "./model";
import { addFromPalette, NEW_TYPE } from "./Palette";
import type { EditorStore } from "./store";
import { toast } from "./Toast";

const MOVE_ID = "application/x-coform-move";

/** Where a drop would land, for the indicator. */
const dropHint = signal<{ id: string; zone: "before" | "after" | "inside" } | null>(null);
/** The component being dragged on this page (drag data is unreadable during dragover). */
let dragging: string | null = null;

/** Deletes a component, says so, and offers to undo it. */
export function deleteWithUndo(store: EditorStore, id: string): void {
  const c = store.component(id);
  if (c === undefined) return;
  const rows = store.rows.peek();
  const i = rows.findIndex((r) => r.id === id);
  if (!store.remove(id)) return;
  toast(`Deleted “${c.label || "component"}”.`, {
    label: "Undo",
    run: () => {
      store.undo();
      requestAnimationFrame(() => focusItem(id));
    },
  });
  const after = store.rows.peek();
  const next = after[Math.min(i, after.length - 1)];
  store.select(next?.id ?? null);
  if (next) requestAnimationFrame(() => focusItem(next.id));
}

export function Canvas(props: { store: EditorStore; catalog: Catalog | null }) {
  const { store } = props;
  const empty = useComputed(() => store.rows.value.length === 0);
  const readOnly = store.readOnly.value;

  function onPointerMove(e: PointerEvent) {
    const el = e.currentTarget as HTMLElement;
    const r = el.getBoundingClientRect();
    store.pointer({ x: e.clientX - r.left + el.scrollLeft, y: e.clientY - r.top + el.scrollTop });
  }

  return (
    <section
      class="canvas"
      aria-label="Canvas"
      onPointerMove={onPointerMove}
      onPointerLeave={() => store.pointer(null)}
      onDragOver={(e) => {
        if (readOnly) return;
        e.preventDefault();
        if (e.target === e.currentTarget) dropHint.value = null;
      }}
      onDrop={(e) => {
        if (readOnly || e.defaultPrevented) return;
        e.preventDefault();
        drop(store, props.catalog, e, { parent: null });
      }}
    >
      <h2 class="visually-hidden">Canvas</h2>
      {empty.value ? (
        <p class="canvas-empty">
          {readOnly ? "This form has no components yet." : "Add a component from the palette, or drag one here."}
        </p>
      ) : (
        <CanvasList store={store} catalog={props.catalog} parent={null} />
      )}
      <Pointers store={store} />
    </section>
  );
}

function drop(
  store: EditorStore,
  catalog: Catalog | null,
  e: DragEvent,
  target: MoveTarget,
) {
  dropHint.value = null;
  const type = e.dataTransfer?.getData(NEW_TYPE);
  const info = type ? typeInfo(catalog, type) : undefined;
  if (info) {
    addFromPalette(store, info, target);
    return;
  }
  const id = e.dataTransfer?.getData(MOVE_ID) || dragging;
  if (id && id !== target.before && id !== target.after && id !== target.parent) {
    store.move(id, target);
    store.select(id);
  }
}

function CanvasList(props: { store: EditorStore; catalog: Catalog | null; parent: string | null }) {
  const { store, catalog, parent } = props;
  const ids = useComputed(() => store.children.value.get(parent) ?? []);
  return (
    <div class="canvas-list" role="list">
      {ids.value.map((id) => (
        <CanvasItem key={id} store={store} catalog={catalog} id={id} />
      ))}
    </div>
  );
}

/**
 * Benchmarks count canvas item renders by defining this function before
 * the page loads (web/bench/designer.mjs); otherwise it is absent.
 */
declare global {
  // eslint-disable-next-line no-var
  var __coformCanvasRender: ((id: string) => void) | undefined;
}

function CanvasItem(props: { store: EditorStore; catalog: Catalog | null; id: string }) {
  const { store, catalog, id } = props;
  globalThis.__coformCanvasRender?.(id);
  const sig = store.byId.get(id);
  const selected = useComputed(() => store.selection.value === id);
  const tabStop = useComputed(
    () => store.selection.value === id || (store.selection.value === null && store.rows.value[0]?.id === id),
  );
  const others = useComputed(() =>
    (store.selectedBy.value.get(id) ?? []).map((p) => `${p.color}\u0000${p.name}`).join("\u0001"),
  );
  const flagged = useComputed(() => store.problems.value.some((p) => p.path.startsWith(`components.${id}.`)));
  const hint = useComputed(() => (dropHint.value?.id === id ? dropHint.value.zone : null));
  const body = useRef<HTMLDivElement>(null);
  // Following someone, your view goes where their selection goes.
  useEffect(() => {
    if (selected.value && store.following.peek() !== null) body.current?.scrollIntoView({ block: "nearest" });
  }, [selected.value]);
  if (sig === undefined) return null;
  const c: Component = sig.value;
  const info = typeInfo(catalog, c.type);
  const readOnly = store.readOnly.value;
  const peers = others.value === "" ? [] : others.value.split("\u0001").map((s) => s.split("\u0000"));
  const typeLabel = info?.label ?? c.type;

  function onKeyDown(e: KeyboardEvent) {
    if (e.target !== e.currentTarget) return;
    const rows = store.rows.peek();
    const i = rows.findIndex((r) => r.id === id);
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      const t = stepMove(rows, id, e.key === "ArrowUp" ? "up" : "down");
      if (t) {
        store.move(id, t);
        requestAnimationFrame(() => focusItem(id));
      }
    } else if (e.key === "ArrowUp" || e.key === "ArrowDown" || e.key === "Home" || e.key === "End") {
      e.preventDefault();
      const j = e.key === "Home" ? 0 : e.key === "End" ? rows.length - 1 : i + (e.key === "ArrowUp" ? -1 : 1);
      const next = rows[Math.max(0, Math.min(rows.length - 1, j))];
      if (next) {
        store.select(next.id);
        focusItem(next.id);
      }
    } else if ((e.key === "Delete" || e.key === "Backspace") && !readOnly) {
      e.preventDefault();
      deleteWithUndo(store, id);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      store.select(id);
    } else if (e.key === "Escape") {
      store.select(null);
    }
  }

  function onDragOver(e: DragEvent) {
    if (readOnly) return;
    e.stopPropagation();
    const el = e.currentTarget as HTMLElement;
    const r = el.getBoundingClientRect();
    const y = (e.clientY - r.top) / Math.max(1, r.height);
    const zone = c.type === "section" && y > 0.25 && y < 0.75 ? "inside" : y < 0.5 ? "before" : "after";
    const t = dropTarget(store.rows.peek(), store.snapshot(), id, zone, dragging);
    if (t === null) {
      dropHint.value = null;
      return;
    }
    e.preventDefault();
    if (dropHint.peek()?.id !== id || dropHint.peek()?.zone !== zone) dropHint.value = { id, zone };
  }

  function onDrop(e: DragEvent) {
    if (readOnly) return;
    e.stopPropagation();
    e.preventDefault();
    const zone = dropHint.peek()?.id === id ? dropHint.peek()!.zone : "after";
    const t = dropTarget(store.rows.peek(), store.snapshot(), id, zone, dragging);
    if (t) drop(store, catalog, e, t);
    dropHint.value = null;
  }

  const style = peers.length > 0 ? { "--peer": peers[0][0], "--peer-fg": textOn(peers[0][0]) } : undefined;
  return (
    <div
      role="listitem"
      class={[
        "canvas-item",
        c.type === "section" ? "is-section" : "",
        selected.value ? "selected" : "",
        peers.length > 0 ? "peer-selected" : "",
        flagged.value ? "has-problems" : "",
        hint.value ? `drop-${hint.value}` : "",
      ].join(" ")}
      style={style}
    >
      <div
        class="canvas-item-body"
        ref={body}
        data-component-id={id}
        tabIndex={tabStop.value ? 0 : -1}
        role="group"
        aria-label={
          `${typeLabel}: ${c.label || "no label"}` +
          (peers.length > 0 ? `, selected by ${peers.map(([, n]) => n).join(", ")}` : "") +
          (flagged.value ? " (has problems)" : "")
        }
        aria-current={selected.value ? "true" : undefined}
        aria-keyshortcuts="Alt+ArrowUp Alt+ArrowDown Delete"
        draggable={!readOnly}
        onClick={(e) => {
          e.stopPropagation();
          store.select(id);
        }}
        onKeyDown={onKeyDown}
        onDragStart={(e) => {
          e.stopPropagation();
          dragging = id;
          e.dataTransfer?.setData(MOVE_ID, id);
          if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
        }}
        onDragEnd={() => {
          dragging = null;
          dropHint.value = null;
        }}
        onDragOver={onDragOver}
        onDragLeave={() => {
          if (dropHint.peek()?.id === id) dropHint.value = null;
        }}
        onDrop={onDrop}
      >
        <span class="item-type" aria-hidden="true">
          {typeLabel}
        </span>
        <FormControl component={c} info={info} />
        {peers.length > 0 && (
          <span class="remote-selection" aria-hidden="true">
            {peers.map(([, name]) => name).join(", ")}
          </span>
        )}
      </div>
      {c.type === "section" && <CanvasList store={store} catalog={catalog} parent={id} />}
    </div>
  );
}

/** Other people's pointers over the canvas, in their colours. */
function Pointers(props: { store: EditorStore }) {
  const { store } = props;
  const list = store.people.value;
  const extras = store.extras.value;
  const out = [];
  for (const p of list) {
    for (const clientId of p.clientIds) {
      const at = extras.get(clientId)?.pointer;
      if (!at) continue;
      out.push(
        <div
          key={clientId}
          class="pointer"
          aria-hidden="true"
          style={{ transform: `translate(${at.x}px, ${at.y}px)`, "--peer": p.color, "--peer-fg": textOn(p.color) }}
        >
          <svg width="14" height="18" viewBox="0 0 14 18">
            <path d="M1 1 L13 11 L7 11.5 L4 17 Z" />
          </svg>
          <span>{p.name}</span>
        </div>,
      );
    }
  }
  return <>{out}</>;
}
