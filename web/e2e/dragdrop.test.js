// Drag and drop in the editor with the mouse, as HTML5 drag and drop
// (playwright's dragTo drives the browser's own drag events in Chromium):
// from the palette onto the canvas, before another component, and into a
// section. What lands is checked on the server.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { axe, expectVisible, Harness, screenshot, waitUntil } from "./harness.js";
import { Designer } from "./designer.js";

describe("drag and drop in the editor", () => {
  /** @type {Harness} */
  let h;
  let alice;
  let workspace;
  /** Palette labels by component type, from the server's catalog. */
  const typeLabel = {};

  before(async () => {
    h = await Harness.start();
    for (const t of (await h.catalog()).types) typeLabel[t.type] = t.label;
    assert.ok(typeLabel.email, `the catalog lacks email: ${JSON.stringify(typeLabel)}`);
    alice = await h.user("Alice Dragger");
    workspace = await h.workspace(alice, "Dragging");
  });
  after(() => h?.close());

  /**
   * Drags `source` and drops it on `target` at `fraction` of the target's
   * height (0 top, 1 bottom), horizontally in its middle: where on an item
   * a drop lands decides before, after or inside.
   */
  async function dragOnto(source, target, fraction) {
    await target.scrollIntoViewIfNeeded();
    const box = await target.boundingBox();
    assert.ok(box, `the drop target ${target} has no box`);
    await source.dragTo(target, { targetPosition: { x: box.width / 2, y: box.height * fraction } });
  }

  /** Waits until the server's top-level order is `expected`. */
  async function expectStoredOrder(templateId, expected, what) {
    let last;
    await waitUntil(
      async () => {
        last = await h.order(alice, templateId);
        return JSON.stringify(last) === JSON.stringify(expected);
      },
      `${what}: the server's top-level order ${JSON.stringify(expected)}`,
      { detail: () => last },
    );
  }

  test("a palette item dragged onto an empty canvas becomes a component", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Empty");
      const d = await Designer.open(h, alice, tpl.id);
      await expectVisible(d.canvas.getByText(/drag one here/), "the empty canvas's invitation to drag");
      const added = await d.add(typeLabel.email, () => dragOnto(d.addButton(typeLabel.email), d.canvas, 0.5));
      await d.expectSaved();
      const stored = await h.components(alice, tpl.id);
      assert.deepEqual(Object.keys(stored), [added], "the server's components after the drop");
      assert.equal(stored[added].type, "email", "the dropped component's type");
      assert.equal(stored[added].parent ?? null, null, "the dropped component's parent");
    }));

  test("a palette item dropped on the lower half of a component lands after it", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Palette drop", [
        { id: "first", type: "text", label: "First" },
        { id: "second", type: "text", label: "Second" },
      ]);
      const d = await Designer.open(h, alice, tpl.id);
      await d.expectLabel("second", "Second");
      const added = await d.add(typeLabel.email, () => dragOnto(d.addButton(typeLabel.email), d.component("first"), 0.8));
      await d.expectOrder(["first", added, "second"], "after dropping a new e-mail field after First");
      await d.expectSaved();
      await expectStoredOrder(tpl.id, ["first", added, "second"], "after the palette drop");
      assert.equal((await h.components(alice, tpl.id))[added].type, "email");
    }));

  test("a component dragged onto the top of another moves before it", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Reorder", [
        { id: "one", type: "text", label: "One" },
        { id: "two", type: "text", label: "Two" },
        { id: "three", type: "text", label: "Three" },
      ]);
      const d = await Designer.open(h, alice, tpl.id);
      await d.expectOrder(["one", "two", "three"], "at first");
      await dragOnto(d.component("three"), d.component("one"), 0.2);
      await d.expectOrder(["three", "one", "two"], "after dragging Three onto the top of One");
      await d.expectSaved();
      await expectStoredOrder(tpl.id, ["three", "one", "two"], "after the drag");

      // And back down: onto the lower half of the last one.
      await dragOnto(d.component("three"), d.component("two"), 0.8);
      await d.expectOrder(["one", "two", "three"], "after dragging Three onto the bottom of Two");
      await d.expectSaved();
      await expectStoredOrder(tpl.id, ["one", "two", "three"], "after the second drag");
    }));

  test("a component dropped on the middle of a section goes into it", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Into a section", [
        { id: "box", type: "section", label: "Address" },
        { id: "street", type: "text", label: "Street" },
        { id: "city", type: "text", label: "City" },
      ]);
      const d = await Designer.open(h, alice, tpl.id);
      await d.expectLabel("city", "City");
      await dragOnto(d.component("street"), d.component("box"), 0.5);
      let stored;
      await waitUntil(
        async () => {
          stored = await h.components(alice, tpl.id);
          return stored.street?.parent === "box";
        },
        "Street to be inside the section on the server",
        { detail: () => stored },
      );
      // On the canvas it is drawn inside the section's item.
      const section = d.canvas.getByRole("listitem").filter({ has: d.page.locator('[data-component-id="box"]') }).first();
      await expectVisible(section.locator('[data-component-id="street"]'), "Street inside the section's item");
      assert.equal(stored.city.parent ?? null, null, "City moved too");
      assert.deepEqual(await h.order(alice, tpl.id), ["box", "city"], "the top level after the move");

      // A second one goes in at the section's end, after the first.
      await dragOnto(d.component("city"), d.component("box"), 0.5);
      await waitUntil(
        async () => {
          stored = await h.components(alice, tpl.id);
          return stored.city?.parent === "box";
        },
        "City to be inside the section on the server",
        { detail: () => stored },
      );
      assert.equal(stored.street.parent, "box", "Street left the section");
      assert.ok(stored.street.index < stored.city.index, `the section's order: ${JSON.stringify(stored)}`);
      await d.expectOrder(["box", "street", "city"], "the canvas after both moves");
      await d.expectSaved();
      await screenshot(d.page, "dragdrop-into-section");
      await axe(d.page, "the editor after dragging into a section");
    }));
});
