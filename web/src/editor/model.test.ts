import { describe, expect, it } from "vitest";
import type { Component, Person } from "@coform/sdk";
import {
  buildRows,
  dropTarget,
  followedSelection,
  initials,
  moveChoices,
  newComponent,
  peers,
  placeNew,
  problemsOf,
  repairMessage,
  selectionsByComponent,
  stepMove,
  subtree,
  textOn,
  visiblePeers,
} from "./model";

function comp(id: string, fields: Partial<Component> = {}): Component {
  return {
    id,
    type: "text",
    label: id.toUpperCase(),
    parent: null,
    index: "V",
    properties: {},
    position: {},
    validation: {},
    styling: {},
    ...fields,
  };
}

function doc(...list: Component[]): Map<string, Component> {
  return new Map(list.map((c) => [c.id, c]));
}

// a, s (section: b, t (section: c)), d
const form = doc(
  comp("a", { index: "1" }),
  comp("s", { index: "2", type: "section" }),
  comp("b", { index: "1", parent: "s" }),
  comp("t", { index: "2", parent: "s", type: "section" }),
  comp("c", { index: "1", parent: "t" }),
  comp("d", { index: "3" }),
);
const rows = buildRows(form);

function person(clientId: number, name: string, fields: Partial<Person> = {}): Person {
  return { clientId, userId: `u-${name}`, name, color: "#2563eb", selection: null, cursor: null, self: false, ...fields };
}

describe("buildRows", () => {
  it("lists components depth first in sibling order, with depth and siblings", () => {
    expect(rows.map((r) => `${r.id}:${r.depth}`)).toEqual(["a:0", "s:0", "b:1", "t:1", "c:2", "d:0"]);
    expect(rows.find((r) => r.id === "b")?.siblings).toEqual(["b", "t"]);
    expect(rows.find((r) => r.id === "d")?.parent).toBeNull();
  });

  it("shows components of a missing or non-section parent, and loops, at the top level", () => {
    const odd = buildRows(
      doc(
        comp("x", { index: "1", parent: "gone" }),
        comp("y", { index: "2", parent: "x" }),
        comp("p", { index: "3", type: "section", parent: "q" }),
        comp("q", { index: "4", type: "section", parent: "p" }),
      ),
    );
    expect(odd.map((r) => r.id).sort()).toEqual(["p", "q", "x", "y"]);
    expect(odd.filter((r) => r.depth === 0).map((r) => r.id)).toEqual(expect.arrayContaining(["x", "y"]));
  });
});

describe("moving", () => {
  it("steps among siblings, and out of a section at its ends", () => {
    expect(stepMove(rows, "t", "up")).toEqual({ parent: "s", before: "b" });
    expect(stepMove(rows, "b", "down")).toEqual({ parent: "s", after: "t" });
    expect(stepMove(rows, "b", "up")).toEqual({ parent: null, before: "s" });
    expect(stepMove(rows, "c", "down")).toEqual({ parent: "s", after: "t" });
    expect(stepMove(rows, "a", "up")).toBeNull();
    expect(stepMove(rows, "d", "down")).toBeNull();
    expect(stepMove(rows, "nope", "up")).toBeNull();
  });

  it("offers every place but the current parent, itself and what is inside it", () => {
    expect(moveChoices(rows, form, "a").map((c) => c.parent)).toEqual(["s", "t"]);
    expect(moveChoices(rows, form, "c").map((c) => c.parent)).toEqual([null, "s"]);
    // A section cannot go into itself or its own subsection.
    expect(moveChoices(rows, form, "s").map((c) => c.parent)).toEqual([]);
    expect(moveChoices(rows, form, "t").map((c) => c.parent)).toEqual([null]);
    expect(moveChoices(rows, form, "a")[0]?.label).toBe("Section “S”");
  });

  it("drops before, after or inside, never into what is being dragged", () => {
    expect(dropTarget(rows, form, "b", "before", "d")).toEqual({ parent: "s", before: "b" });
    expect(dropTarget(rows, form, "d", "after", "a")).toEqual({ parent: null, after: "d" });
    expect(dropTarget(rows, form, "t", "inside", "a")).toEqual({ parent: "t" });
    expect(dropTarget(rows, form, "b", "inside", "a")).toBeNull();
    expect(dropTarget(rows, form, "c", "after", "s")).toBeNull();
    expect(dropTarget(rows, form, "t", "inside", "t")).toBeNull();
  });

  it("knows what is inside a section", () => {
    expect([...subtree(rows, "s")].sort()).toEqual(["b", "c", "s", "t"]);
    expect([...subtree(rows, "a")]).toEqual(["a"]);
  });
});

describe("adding", () => {
  it("puts a new component into a selected section, after another selection, else at the end", () => {
    expect(placeNew(form, rows, "s")).toEqual({ parent: "s" });
    expect(placeNew(form, rows, "b")).toEqual({ parent: "s", after: "b" });
    expect(placeNew(form, rows, null)).toEqual({ parent: null });
    expect(placeNew(form, rows, "gone")).toEqual({ parent: null });
  });

  it("makes new components the model accepts: required option lists filled, text content set", () => {
    const select = newComponent({
      type: "select",
      label: "Drop-down",
      properties: [
        { name: "options", kind: "options", required: true },
        { name: "placeholder", kind: "text", required: false },
      ],
    });
    expect(select.label).toBe("Drop-down");
    expect(select.properties.options).toHaveLength(2);
    expect(select.properties.placeholder).toBeUndefined();
    const button = newComponent({ type: "button", label: "Button", properties: [{ name: "text", kind: "text", required: false }] });
    expect(button.properties.text).toBe("Submit");
  });
});

describe("presence", () => {
  it("shows other people once per account, sorted, idle only when every session is", () => {
    const list = peers(
      [
        person(1, "Zoe"),
        person(2, "Ann", { selection: "a" }),
        person(3, "Ann", { userId: "u-Ann" }),
        person(4, "Me", { self: true }),
      ],
      (id) => ({ idle: id === 1 || id === 2 }),
    );
    expect(list.map((p) => [p.name, p.clientIds, p.idle, p.selection])).toEqual([
      ["Ann", [2, 3], false, "a"],
      ["Zoe", [1], true, null],
    ]);
    expect(list[0]?.initials).toBe("A");
    expect(initials("  ada  lovelace ")).toBe("AL");
    expect(initials("")).toBe("?");
  });

  it("draws at most a few avatars and counts the rest", () => {
    const many = peers(
      Array.from({ length: 7 }, (_, i) => person(i + 1, `P${i}`)),
      () => undefined,
    );
    const { shown, more } = visiblePeers(many, 5);
    expect(shown).toHaveLength(4);
    expect(more).toBe(3);
    expect(visiblePeers(many.slice(0, 5), 5).more).toBe(0);
  });

  it("groups selections by component", () => {
    const list = peers([person(1, "A", { selection: "x" }), person(2, "B", { selection: "x" })], () => undefined);
    expect(selectionsByComponent(list).get("x")?.map((p) => p.name)).toEqual(["A", "B"]);
  });

  it("follows the followed person's selection while it exists", () => {
    const list = peers([person(1, "A", { selection: "x" }), person(2, "B", { selection: "gone" })], () => undefined);
    const exists = (id: string) => id === "x";
    expect(followedSelection(null, list, exists)).toBeUndefined();
    expect(followedSelection("u-A", list, exists)).toBe("x");
    expect(followedSelection("u-B", list, exists)).toBeUndefined();
    expect(followedSelection("u-C", list, exists)).toBeUndefined();
    const none = peers([person(1, "A")], () => undefined);
    expect(followedSelection("u-A", none, exists)).toBeNull();
  });
});

describe("problems", () => {
  it("files each finding under the field it concerns, ids with dots included", () => {
    const found = problemsOf(
      [
        { path: "components.a.b.label", message: "too long" },
        { path: "components.a.b.properties.options[1].value", message: "duplicate" },
        { path: "components.a.b.validation.minLength", message: "negative" },
        { path: "components.a.bc.label", message: "other component" },
        { path: "meta.name", message: "meta" },
      ],
      "a.b",
    );
    expect(Object.fromEntries(found)).toEqual({
      label: ["too long"],
      "properties.options": ["duplicate"],
      "validation.minLength": ["negative"],
    });
  });
});

describe("colours", () => {
  it("writes on a person's colour in black or white, whichever contrasts more", () => {
    expect(textOn("#2563eb")).toBe("#ffffff");
    expect(textOn("#65a30d")).toBe("#000000");
    expect(textOn("#ffff00")).toBe("#000000");
    expect(textOn("#000000")).toBe("#ffffff");
    expect(textOn("not a colour")).toBe("#ffffff");
  });
});

describe("repairMessage", () => {
  const labels = new Map([["bio", "Bio"], ["tel", "Phone"]]);
  const labelOf = (id: string) => labels.get(id);

  it("says which field of which component came back, and why, without the path", () => {
    const msg = repairMessage(
      [{ component: "bio", field: "properties.rows", action: "restored", reason: "components.bio.properties.rows: must be 1 to 100" }],
      labelOf,
    );
    expect(msg).toBe("The server kept the form valid: Rows of “Bio” was put back (must be 1 to 100).");
  });

  it("words every action, names unknown components by id and meta entries as the form's", () => {
    const msg = repairMessage(
      [
        { component: "tel", field: "properties.minLength", action: "defaulted", reason: "components.tel.properties.minLength: must be a number" },
        { field: "meta.name", action: "removed", reason: "meta.name: must be a string" },
        { component: "x9", field: "", action: "dropped", reason: "components.x9.type: unknown component type" },
      ],
      labelOf,
    );
    expect(msg).toBe(
      "The server kept the form valid: Min length of “Phone” was reset to its default (must be a number). " +
        "Name of the form was removed (must be a string). “x9” was removed (unknown component type).",
    );
    expect(repairMessage([{ component: "bio", field: "parent", action: "reparented", reason: "orphan" }], labelOf)).toBe(
      "The server kept the form valid: “Bio” was moved to the top level (orphan).",
    );
  });

  it("spells out the first three repairs and counts the rest", () => {
    const one = { component: "bio", field: "label", action: "restored" as const, reason: "components.bio.label: too long" };
    const msg = repairMessage([one, one, one, one, one], labelOf);
    expect(msg.match(/was put back/g)?.length).toBe(3);
    expect(msg.endsWith("2 more changes were put right.")).toBe(true);
    expect(repairMessage([one, one, one, one], labelOf).endsWith("1 more change was put right.")).toBe(true);
  });
});
