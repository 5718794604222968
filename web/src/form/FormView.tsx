// A whole form: every component in its section and in display order.
import type { Component } from "@coform/sdk";
import { useSignal } from "@preact/signals";
import { useMemo } from "preact/hooks";
import { typeInfo, type Catalog } from "../schema";
import { Control } from "./Control";
import { anyRequired, buildTree, childrenOf, type FormTree } from "./tree";
import "./form.css";

export interface FormViewProps {
  components: Component[];
  catalog: Catalog | null;
  /** True for the preview (a form one can fill in), false for the canvas. */
  interactive: boolean;
  idPrefix: string;
}

function Node(props: { c: Component; tree: FormTree } & Omit<FormViewProps, "components">) {
  const { c, tree, catalog, interactive, idPrefix } = props;
  const inside = childrenOf(tree, c.id);
  return (
    <Control component={c} info={typeInfo(catalog, c.type)} interactive={interactive} idPrefix={idPrefix}>
      {inside.map((child) => (
        <Node key={child.id} c={child} tree={tree} catalog={catalog} interactive={interactive} idPrefix={idPrefix} />
      ))}
    </Control>
  );
}

export function FormView(props: FormViewProps) {
  const { components, catalog, interactive, idPrefix } = props;
  const tree = useMemo(() => buildTree(components), [components]);
  const sent = useSignal("");
  const nodes = tree.roots.map((c) => (
    <Node key={c.id} c={c} tree={tree} catalog={catalog} interactive={interactive} idPrefix={idPrefix} />
  ));
  const empty = components.length === 0 && <p class="form-help">This form has no components yet.</p>;
  if (!interactive) {
    return (
      <div class="form-view">
        {empty}
        {nodes}
      </div>
    );
  }
  function onSubmit(e: Event) {
    // A preview collects nothing; the browser's own checks of required
    // fields and formats have already run when this fires.
    e.preventDefault();
    sent.value = "All answers are valid. This is a preview, so nothing was sent.";
  }
  // Once an answer changes, "all answers are valid" may no longer hold.
  const clear = () => (sent.value = "");
  return (
    <form class="form-view" onSubmit={onSubmit} onInput={clear} onReset={clear}>
      {empty}
      {anyRequired(tree) && (
        <p class="form-help">
          Fields marked <span class="form-required">*</span> are required.
        </p>
      )}
      {nodes}
      <p role="status" class="status form-sent">
        {sent.value}
      </p>
    </form>
  );
}
