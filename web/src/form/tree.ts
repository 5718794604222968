// Where each component of a form is shown, and in which order. Pure
// functions over the SDK's components, so the canvas, the preview and the
// tests all lay a form out the same way.
import { compareSiblings, effectiveParents, type Component } from "@coform/sdk";

/** A form laid out as the person filling it sees it. */
export interface FormTree {
  /** Top-level components, in display order. */
  roots: Component[];
  /** The components inside each section (by section id), in display order. */
  children: Map<string, Component[]>;
}

/** Siblings in display order (a sorted copy). */
export function ordered(components: Iterable<Component>): Component[] {
  return [...components].sort(compareSiblings);
}

/**
 * Groups components under the section they are displayed in. A component
 * whose parent is missing, is not a section, or sits in a loop of
 * sections is shown at the top level (as the server does), so nothing of
 * a damaged or concurrently edited document disappears from view.
 */
export function buildTree(components: Iterable<Component>): FormTree {
  const list = [...components];
  const parents = effectiveParents(list);
  const roots: Component[] = [];
  const children = new Map<string, Component[]>();
  for (const c of list) {
    const parent = parents.get(c.id) ?? null;
    if (parent === null) {
      roots.push(c);
    } else {
      const siblings = children.get(parent);
      if (siblings) siblings.push(c);
      else children.set(parent, [c]);
    }
  }
  roots.sort(compareSiblings);
  for (const siblings of children.values()) siblings.sort(compareSiblings);
  return { roots, children };
}

/** The components shown inside `id` (none for anything but a section). */
export function childrenOf(tree: FormTree, id: string): Component[] {
  return tree.children.get(id) ?? [];
}

/** Whether the person filling the form never sees the component. */
export function isHidden(c: Component): boolean {
  return c.properties.hidden === true;
}

/**
 * The components a person filling the form sees, in reading order: hidden
 * components are left out together with everything inside them.
 */
export function visibleInOrder(tree: FormTree): Component[] {
  const out: Component[] = [];
  const walk = (list: Component[]) => {
    for (const c of list) {
      if (isHidden(c)) continue;
      out.push(c);
      walk(childrenOf(tree, c.id));
    }
  };
  walk(tree.roots);
  return out;
}

/** Whether any component the person sees must be answered. */
export function anyRequired(tree: FormTree): boolean {
  return visibleInOrder(tree).some((c) => c.validation.required === true);
}
