// The outline: every component as a nested list, in form order. Choosing
// one selects it and takes you to it on the canvas.
import { useComputed } from "@preact/signals";
import type { EditorStore } from "./store";
import { focusItem } from "./focus";

export function Outline(props: { store: EditorStore }) {
  const { store } = props;
  const empty = useComputed(() => store.rows.value.length === 0);
  return (
    <nav class="outline" aria-label="Outline">
      <h2>Outline</h2>
      {empty.value ? <p class="muted">Nothing here yet.</p> : <OutlineList store={store} parent={null} />}
    </nav>
  );
}

function OutlineList(props: { store: EditorStore; parent: string | null }) {
  const { store, parent } = props;
  const ids = useComputed(() => store.children.value.get(parent) ?? []);
  return (
    <ul>
      {ids.value.map((id) => (
        <OutlineItem key={id} store={store} id={id} />
      ))}
    </ul>
  );
}

function OutlineItem(props: { store: EditorStore; id: string }) {
  const { store, id } = props;
  const c = store.byId.get(id)?.value;
  const selected = useComputed(() => store.selection.value === id);
  if (c === undefined) return null;
  return (
    <li>
      <button
        type="button"
        class="outline-item"
        aria-current={selected.value ? "true" : undefined}
        onClick={() => {
          store.select(id);
          focusItem(id);
        }}
      >
        <span class="outline-type">{c.type}</span> {c.label || "(no label)"}
      </button>
      {c.type === "section" && <OutlineList store={store} parent={id} />}
    </li>
  );
}
