/** Moves the keyboard focus to component `id` on the canvas, if it is drawn. */
export function focusItem(id: string): void {
  document.querySelector<HTMLElement>(`[data-component-id="${CSS.escape(id)}"]`)?.focus();
}
