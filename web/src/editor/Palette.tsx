// The palette: every component type the server's catalog lists, grouped.
// Add one by clicking its button (or Enter/Space on it), or drag it onto
// the canvas.
import type { MoveTarget } from "@coform/sdk";
import type { Catalog, TypeInfo } from "../schema";
import { focusItem } from "./focus";
import { newComponent, placeNew } from "./model";
import type { EditorStore } from "./store";

const GROUPS: Array<[string, string]> = [
  ["input", "Inputs"],
  ["choice", "Choices"],
  ["layout", "Layout"],
  ["content", "Content"],
  ["action", "Actions"],
];

/** The drag data type of a palette item (its value is the component type). */
export const NEW_TYPE = "application/x-coform-new-type";

/** Adds a component of `info`'s type where the selection says; selects it. */
export function addFromPalette(store: EditorStore, info: TypeInfo, at?: MoveTarget) {
  const place = at ?? placeNew(store.snapshot(), store.rows.peek(), store.selection.peek());
  const id = store.add({ ...newComponent(info), ...place });
  if (id === undefined) return;
  store.select(id);
  // Keyboard users land on the new component, ready to move or edit it.
  requestAnimationFrame(() => focusItem(id));
}

export function Palette(props: { store: EditorStore; catalog: Catalog | null }) {
  const { store, catalog } = props;
  if (catalog === null) {
    return (
      <section class="palette" aria-label="Components">
        <h2>Components</h2>
        <p aria-live="polite">Loading the component types…</p>
      </section>
    );
  }
  const known = new Set(GROUPS.map(([g]) => g));
  const groups = [...GROUPS, ...[...new Set(catalog.types.map((t) => t.group))].filter((g) => !known.has(g)).map((g) => [g, g] as [string, string])];
  return (
    <section class="palette" aria-label="Components">
      <h2>Components</h2>
      {groups.map(([group, title]) => {
        const types = catalog.types.filter((t) => t.group === group);
        if (types.length === 0) return null;
        return (
          <div class="palette-group" key={group}>
            <h3>{title}</h3>
            <ul>
              {types.map((t) => (
                <li key={t.type}>
                  <button
                    type="button"
                    class="palette-item"
                    draggable
                    aria-label={`Add ${t.label}`}
                    title={t.description}
                    onClick={() => addFromPalette(store, t)}
                    onDragStart={(e) => {
                      e.dataTransfer?.setData(NEW_TYPE, t.type);
                      if (e.dataTransfer) e.dataTransfer.effectAllowed = "copy";
                    }}
                  >
                    <span aria-hidden="true" class="plus">
                      +
                    </span>{" "}
                    {t.label}
                  </button>
                </li>
              ))}
            </ul>
          </div>
        );
      })}
    </section>
  );
}
