import { describe, expect, it } from "vitest";
import type { Component } from "@coform/sdk";
import { anyRequired, buildTree, childrenOf, ordered, visibleInOrder } from "./tree";

function comp(id: string, fields: Partial<Component> = {}): Component {
  return {
    id,
    type: "text",
    label: id,
    parent: null,
    index: "a0",
    properties: {},
    position: {},
    validation: {},
    styling: {},
    ...fields,
  };
}

const ids = (list: Component[]) => list.map((c) => c.id);

describe("ordered", () => {
  it("sorts by index, then by id, without touching the input", () => {
    const input = [comp("b", { index: "a1" }), comp("c", { index: "a0" }), comp("a", { index: "a1" })];
    expect(ids(ordered(input))).toEqual(["c", "a", "b"]);
    expect(ids(input)).toEqual(["b", "c", "a"]);
  });

  it("compares indexes byte by byte (upper case before lower case)", () => {
    expect(ids(ordered([comp("x", { index: "a" }), comp("y", { index: "Z" })]))).toEqual(["y", "x"]);
  });
});

describe("buildTree", () => {
  it("nests components in their sections, each level in display order", () => {
    const tree = buildTree([
      comp("name", { parent: "s1", index: "a1" }),
      comp("s1", { type: "section", index: "a0" }),
      comp("send", { type: "button", index: "a2" }),
      comp("email", { parent: "s1", index: "a0" }),
      comp("inner", { type: "section", parent: "s1", index: "a2" }),
      comp("deep", { parent: "inner", index: "a0" }),
    ]);
    expect(ids(tree.roots)).toEqual(["s1", "send"]);
    expect(ids(childrenOf(tree, "s1"))).toEqual(["email", "name", "inner"]);
    expect(ids(childrenOf(tree, "inner"))).toEqual(["deep"]);
    expect(childrenOf(tree, "send")).toEqual([]);
  });

  it("shows components with a missing parent at the top level", () => {
    const tree = buildTree([comp("a", { index: "a1" }), comp("orphan", { parent: "gone", index: "a0" })]);
    expect(ids(tree.roots)).toEqual(["orphan", "a"]);
    expect(tree.children.size).toBe(0);
  });

  it("shows components whose parent is not a section at the top level", () => {
    const tree = buildTree([comp("a", { index: "a0" }), comp("b", { parent: "a", index: "a1" })]);
    expect(ids(tree.roots)).toEqual(["a", "b"]);
  });

  it("never loses sections that contain each other", () => {
    const tree = buildTree([
      comp("s1", { type: "section", parent: "s2", index: "a0" }),
      comp("s2", { type: "section", parent: "s1", index: "a1" }),
      comp("x", { parent: "s1", index: "a0" }),
    ]);
    // Every component appears exactly once, and walking the tree ends.
    const seen = visibleInOrder(tree).map((c) => c.id);
    expect(seen.sort()).toEqual(["s1", "s2", "x"]);
  });

  it("is empty for no components", () => {
    const tree = buildTree([]);
    expect(tree.roots).toEqual([]);
    expect(visibleInOrder(tree)).toEqual([]);
  });
});

describe("visibleInOrder and anyRequired", () => {
  const form = [
    comp("s", { type: "section", index: "a0", properties: { hidden: true } }),
    comp("inside", { parent: "s", index: "a0", validation: { required: true } }),
    comp("top", { index: "a1" }),
    comp("gone", { index: "a2", properties: { hidden: true }, validation: { required: true } }),
  ];

  it("leaves out hidden components and what they contain", () => {
    expect(ids(visibleInOrder(buildTree(form)))).toEqual(["top"]);
  });

  it("counts only required components a person sees", () => {
    expect(anyRequired(buildTree(form))).toBe(false);
    expect(anyRequired(buildTree([...form, comp("must", { index: "a3", validation: { required: true } })]))).toBe(true);
  });

  it("reads a section's children depth first", () => {
    const tree = buildTree([
      comp("s", { type: "section", index: "a0" }),
      comp("b", { parent: "s", index: "a1" }),
      comp("a", { parent: "s", index: "a0" }),
      comp("z", { index: "a1" }),
    ]);
    expect(ids(visibleInOrder(tree))).toEqual(["s", "a", "b", "z"]);
  });
});
