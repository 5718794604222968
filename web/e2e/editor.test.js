// Editing a template together, in real browsers against a real server:
// two people see each other's work and each other; simultaneous typing
// converges; offline edits survive a reload and merge; undo is personal;
// viewers and removed members cannot edit; everything works from the
// keyboard; and what the page says is saved is what the server has.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  axe,
  expectAttached,
  expectCount,
  expectServiceWorker,
  expectText,
  expectValue,
  expectVisible,
  Harness,
  screenshot,
  signIn,
  waitUntil,
} from "./harness.js";
import { Designer, expectNotEditable, OFFLINE, OFFLINE_PENDING, SAVED } from "./designer.js";

/** Waits until `locator`'s attribute `name` is `value`. */
async function expectAttribute(locator, name, value, what) {
  await waitUntil(async () => (await locator.getAttribute(name)) === value, `${what} (${name}="${value}")`, {
    detail: () => locator.getAttribute(name),
  });
}

/** After reconnecting, backoff may delay the next attempt by up to 10 s. */
const RECONNECT_MS = 40_000;

describe("editing a template together", () => {
  /** @type {Harness} */
  let h;
  let alice, bob, carol;
  let workspace;
  /** Palette labels by component type, from the server's catalog. */
  const typeLabel = {};

  before(async () => {
    h = await Harness.start();
    for (const t of (await h.catalog()).types) typeLabel[t.type] = t.label;
    assert.ok(typeLabel.text && typeLabel.email, `the catalog lacks text or email: ${JSON.stringify(typeLabel)}`);
    // Colours the server gives people (it picks one at random), fixed so
    // that every run shows the same ones; each must be readable.
    alice = await h.user("Alice Lindqvist", { color: "#ea580c" });
    bob = await h.user("Bob Okafor", { color: "#0891b2" });
    carol = await h.user("Carol Viewer");
    workspace = await h.workspace(alice, "Forms together");
    await h.addMember(alice, workspace.id, bob, "editor");
    await h.addMember(alice, workspace.id, carol, "viewer");
  });
  after(() => h?.close());

  /** Asserts the server stored these labels (`{ id: label }`). */
  async function expectStored(templateId, labels, what) {
    const stored = await h.components(alice, templateId);
    for (const [id, label] of Object.entries(labels)) {
      assert.ok(stored[id], `${what}: component ${id} is not on the server: ${JSON.stringify(stored)}`);
      assert.equal(stored[id].label, label, `${what}: the server's label of ${id}`);
    }
    return stored;
  }

  test("two editors see each other's components, labels, selections and presence", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Together");
      const a = await Designer.open(h, alice, tpl.id);
      const b = await Designer.open(h, bob, tpl.id);
      await a.expectPerson(bob);
      await b.expectPerson(alice);

      // Alice adds a field; Bob sees it appear.
      const first = await a.add(typeLabel.text);
      await expectVisible(b.component(first), "Alice's new component on Bob's canvas");
      // She types its label; Bob sees the text while she is still typing.
      await a.select(first);
      await a.label.selectText();
      await a.label.pressSequentially("Full");
      await b.expectLabel(first, "Full");
      assert.ok(await a.hasFocus(a.label), "Alice's focus left the Label field: changes must go out as she types");
      await a.label.pressSequentially(" name");
      await b.expectLabel(first, "Full name");
      await b.expectRemoteSelection(first, alice);

      // Bob adds one of his own and names it; Alice sees both, and his selection.
      const second = await b.add(typeLabel.email);
      await expectVisible(a.component(second), "Bob's new component on Alice's canvas");
      await b.select(second);
      await b.label.fill("Work e-mail");
      await a.expectLabel(second, "Work e-mail");
      await a.expectRemoteSelection(second, bob);

      // "All changes saved" means the server has it all, at that moment.
      for (const d of [a, b]) {
        await d.expectSaved();
        const stored = await expectStored(tpl.id, { [first]: "Full name", [second]: "Work e-mail" }, `when ${d.who}'s page said saved`);
        assert.equal(stored[first].type, "text");
        assert.equal(stored[second].type, "email");
      }
      await screenshot(a.page, "editor-together-alice");
      await screenshot(b.page, "editor-together-bob");
    }));

  test("the editor passes axe (WCAG 2 A and AA) with two people and their selections", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Accessible", [
        { id: "who", type: "text", label: "Your name" },
        { id: "box", type: "section", label: "Address" },
        { id: "how", type: "radio", label: "Contact by", properties: { options: [{ value: "mail", label: "E-mail" }] } },
      ]);
      const a = await Designer.open(h, alice, tpl.id);
      const b = await Designer.open(h, bob, tpl.id);
      await a.select("who");
      await b.select("how");
      await a.expectPerson(bob);
      await b.expectPerson(alice);
      await a.expectRemoteSelection("how", bob);
      await b.expectRemoteSelection("who", alice);
      await a.expectSaved();
      await axe(a.page, "Alice's editor, Bob here");
      await axe(b.page, "Bob's editor, Alice here");
    }));

  test("typing into the same label at the same time converges", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Same label", [{ id: "shared", type: "text", label: "Shared" }]);
      const a = await Designer.open(h, alice, tpl.id);
      const b = await Designer.open(h, bob, tpl.id);
      await a.select("shared");
      await b.select("shared");
      for (const d of [a, b]) {
        await d.label.focus();
        await d.label.press("End");
      }
      // The typing speed of a person, both at once.
      await Promise.all([
        a.label.pressSequentially(" alpha", { delay: 40 }),
        b.label.pressSequentially(" beta", { delay: 40 }),
      ]);

      let last;
      const final = await waitUntil(
        async () => {
          const [sa, sb, va, vb] = await Promise.all([
            a.saveState.textContent(),
            b.saveState.textContent(),
            a.label.inputValue(),
            b.label.inputValue(),
          ]);
          const stored = (await h.components(alice, tpl.id)).shared?.label;
          last = { alice: [sa, va], bob: [sb, vb], server: stored };
          return sa?.trim() === SAVED && sb?.trim() === SAVED && va === vb && vb === stored ? va : false;
        },
        "both Label fields and the server to hold the same text, everything saved",
        { detail: () => last },
      );
      assert.notEqual(final, "Shared", "both people's typing was lost");
      const typed = new Set("Shared alpha beta");
      assert.ok(
        [...final].every((c) => typed.has(c)),
        `the converged label has characters nobody typed: ${JSON.stringify(final)}`,
      );
      await a.expectLabel("shared", final);
      await b.expectLabel("shared", final);
      await screenshot(a.page, "editor-same-label");
    }));

  test("offline edits survive a reload and merge when back online, nothing lost", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Offline", [
        { id: "name", type: "text", label: "Name" },
        { id: "mail", type: "email", label: "Mail" },
      ]);
      const a = await Designer.open(h, alice, tpl.id);
      const b = await Designer.open(h, bob, tpl.id);
      await a.expectSaved();
      // The page must open without a network: its shell is stored first.
      await expectServiceWorker(a.page);

      await h.setOnline(a.context, false);
      await expectText(a.saveState, OFFLINE, "Alice's save state once her network is gone");

      // Alice edits offline…
      await a.select("name");
      await a.label.fill("Name (typed offline)");
      const added = await a.add(typeLabel.text);
      await a.select(added);
      await a.label.fill("Added offline");
      await expectText(a.saveState, OFFLINE_PENDING, "Alice's save state with offline edits");
      // …while Bob edits online, and does not see hers: she is really offline.
      await b.select("mail");
      await b.label.fill("Mail (typed online)");
      await b.expectSaved();
      // (Bob's edit went to the server and back: hers would have come along.)
      assert.doesNotMatch(await b.component("name").textContent(), /typed offline/, "Bob sees Alice's offline edit");
      assert.equal(await b.component(added).count(), 0, "Bob sees a component Alice added offline");

      // Alice reloads while still offline: her page and her edits come back.
      await a.page.reload();
      await expectAttached(a.canvas, "Alice's canvas, reloaded offline");
      await a.expectLabel("name", "Name (typed offline)");
      await a.expectLabel(added, "Added offline");
      // The local copy remembers that they are not stored yet.
      await expectText(a.saveState, OFFLINE_PENDING, "Alice's save state after the offline reload");
      await screenshot(a.page, "editor-offline-reloaded");

      // Back online: both converge, with everyone's edits.
      await h.setOnline(a.context, true);
      await a.expectLabel("mail", "Mail (typed online)", RECONNECT_MS);
      await b.expectLabel("name", "Name (typed offline)", RECONNECT_MS);
      await b.expectLabel(added, "Added offline", RECONNECT_MS);
      await a.expectSaved(RECONNECT_MS);
      await b.expectSaved();
      await expectStored(
        tpl.id,
        { name: "Name (typed offline)", mail: "Mail (typed online)", [added]: "Added offline" },
        "after Alice came back online",
      );
      await a.expectOrder(await b.ids(), "the same components on both canvases");
    }));

  test("undo and redo take back only your own edits", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Undo", [
        { id: "one", type: "text", label: "One" },
        { id: "two", type: "text", label: "Two" },
      ]);
      const a = await Designer.open(h, alice, tpl.id);
      const b = await Designer.open(h, bob, tpl.id);
      await a.select("one");
      await a.label.fill("One by Alice");
      await b.expectLabel("one", "One by Alice");
      await b.select("two");
      await b.label.fill("Two by Bob");
      await a.expectLabel("two", "Two by Bob");
      await a.expectSaved();
      await b.expectSaved();

      // Alice's Undo takes back her edit, not Bob's later one.
      await a.undo.click();
      await expectValue(a.label, "One", "Alice's Label field after her Undo");
      await b.select("one");
      await expectValue(b.label, "One", "Bob's Label field after Alice's Undo");
      // Nothing left of hers to undo: more Undo must not touch Bob's edit.
      for (let i = 0; i < 3 && (await a.undo.isEnabled()); i++) await a.undo.click();
      await a.expectLabel("two", "Two by Bob");
      await a.expectSaved();
      await b.expectSaved();
      await expectStored(tpl.id, { one: "One", two: "Two by Bob" }, "after Alice's undo");

      // Redo brings hers back.
      await a.redo.click();
      await a.expectLabel("one", "One by Alice");
      await b.expectLabel("one", "One by Alice");

      // Bob, from the keyboard on the canvas: Ctrl+Z, Ctrl+Shift+Z.
      await b.component("two").focus();
      await b.page.keyboard.press("Control+z");
      await b.select("two");
      await expectValue(b.label, "Two", "Bob's Label field after his Ctrl+Z");
      await a.expectLabel("one", "One by Alice");
      await b.component("two").focus();
      await b.page.keyboard.press("Control+Shift+z");
      await a.expectLabel("two", "Two by Bob");
      await a.expectSaved();
      await b.expectSaved();
      await expectStored(tpl.id, { one: "One by Alice", two: "Two by Bob" }, "after redo on both sides");
    }));

  test("a viewer sees the form but cannot edit it", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Read only", [{ id: "q", type: "text", label: "Question" }]);
      const c = await Designer.open(h, carol, tpl.id);
      await c.expectLabel("q", "Question");
      await expectVisible(c.page.getByText(/view only/i), "a notice that the template is view only");
      await expectCount(c.palette, 0, "the palette for a viewer");
      await expectCount(c.page.getByRole("button", { name: /^Add / }).filter({ visible: true }), 0, "Add buttons for a viewer");
      await c.component("q").click();
      await expectNotEditable(c.label, "the viewer's Label field");
      // Keys that edit for an editor change nothing.
      await c.component("q").focus();
      for (const key of ["Alt+ArrowDown", "Delete", "Control+z"]) await c.page.keyboard.press(key);
      await c.expectLabel("q", "Question");
      await expectStored(tpl.id, { q: "Question" }, "after the viewer's attempts");
      assert.equal(Object.keys(await h.components(alice, tpl.id)).length, 1, "the viewer changed the components");
      await screenshot(c.page, "editor-viewer");
      await axe(c.page, "the editor of a viewer");
    }));

  test("a member removed while editing is told and can no longer edit", (t) =>
    h.diagnose(t, async () => {
      const dave = await h.user("Dave Removed");
      await h.addMember(alice, workspace.id, dave, "editor");
      const tpl = await h.template(alice, workspace.id, "Removal", [{ id: "f", type: "text", label: "Field" }]);
      const a = await Designer.open(h, alice, tpl.id);
      const d = await Designer.open(h, dave, tpl.id);
      await d.select("f");
      await d.label.fill("Dave's edit");
      await d.expectSaved();
      await a.expectLabel("f", "Dave's edit");

      await h.removeMember(alice, workspace.id, dave);
      const alert = d.page.getByRole("alert").filter({ hasText: /no longer have access/i });
      await expectVisible(alert, "Dave's alert that he no longer has access");
      await expectNotEditable(d.label, "Dave's Label field after his removal");
      const adds = d.page.getByRole("button", { name: /^Add / });
      await waitUntil(
        async () => {
          for (const button of await adds.all()) if (await button.isEnabled()) return false;
          return true;
        },
        "every Add button on Dave's page to be disabled or gone",
      );
      await screenshot(d.page, "editor-removed-member");

      // The others go on; his saved edit stays.
      await a.select("f");
      await a.label.fill("Alice after Dave");
      await a.expectSaved();
      await expectStored(tpl.id, { f: "Alice after Dave" }, "after Dave's removal");
      const r = await h.request(dave, "GET", `/api/templates/${tpl.id}`);
      assert.ok(r.status === 403 || r.status === 404, `a removed member still reads the template: ${r.status}`);
    }));

  test("a value the model refuses is put back by the server, and the form stays valid", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Repairs", [{ id: "bio", type: "textarea", label: "Bio" }]);
      const a = await Designer.open(h, alice, tpl.id);
      await a.select("bio");
      const rows = a.properties.getByLabel("Rows", { exact: true });
      await rows.fill("6");
      await a.expectSaved();
      // The model allows 1 to 100 rows; the page does not check, the
      // server repairs: the value before the edit comes back.
      await rows.fill("0");
      await a.expectSaved();
      await waitUntil(async () => (await rows.inputValue()) === "6", "the Rows field put back to 6", {
        detail: () => rows.evaluate((e) => e.outerHTML),
      });
      // She is told why, in the polite live region (read out without
      // moving her focus, which stays in the field).
      const notice = a.page.locator(".toast-region[aria-live=polite]");
      await expectText(notice, /Rows of “Bio” was put back \(.+\)\./, "the notice of the repair");
      assert.doesNotMatch(await notice.innerText(), /components\.bio/, "the notice shows no internal path");
      assert.equal(await rows.evaluate((e) => e === document.activeElement), true, "focus stays in Rows");
      const stored = await h.api(alice, "GET", `/api/templates/${tpl.id}`);
      assert.equal(stored.content.components.bio.properties.rows, 6);
      const r = await h.api(alice, "GET", `/api/templates/${tpl.id}/problems`);
      assert.deepEqual(r.problems, [], "the live form has no problems");
      await screenshot(a.page, "editor-server-repair");
      await axe(a.page, "the editor after a repair");
    }));

  test("a session ended elsewhere asks to sign in again and keeps the edits made meanwhile", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Session ends", [{ id: "q", type: "text", label: "Question" }]);
      const a = await Designer.open(h, alice, tpl.id);
      await a.expectSaved();
      await expectServiceWorker(a.page);
      // An edit the server cannot have yet…
      await h.setOnline(a.context, false);
      await a.select("q");
      await a.label.fill("Typed before signing in again");
      await expectText(a.saveState, OFFLINE_PENDING, "Alice's save state with an edit pending");
      // …then every session of Alice's account is ended (as a password
      // change or "sign out everywhere" does).
      await h.api(alice, "DELETE", "/api/auth/sessions", undefined, 200);
      await h.setOnline(a.context, true);
      await waitUntil(() => new URL(a.page.url()).pathname === "/signin", "Alice's page to ask her to sign in", {
        timeoutMs: RECONNECT_MS,
        detail: () => a.page.url(),
      });
      await expectText(a.page.getByRole("alert"), /session has ended/, "why she has to sign in again");
      await screenshot(a.page, "editor-session-ended");
      await signIn(a.page, alice);
      assert.equal(new URL(a.page.url()).pathname, `/templates/${tpl.id}`, "back on the template after signing in");
      await a.expectLabel("q", "Typed before signing in again");
      await a.expectSaved(RECONNECT_MS);
      await expectStored(tpl.id, { q: "Typed before signing in again" }, "after signing in again");
    }));

  test("following someone: your selection goes where theirs goes, until you act", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Follow me", [
        { id: "f1", type: "text", label: "One" },
        { id: "f2", type: "text", label: "Two" },
        { id: "f3", type: "text", label: "Three" },
      ]);
      const a = await Designer.open(h, alice, tpl.id);
      const b = await Designer.open(h, bob, tpl.id);
      await b.expectPerson(alice);
      const follow = b.people.getByRole("button", { name: `Follow ${alice.name}` });
      await follow.click();
      await expectAttribute(follow, "aria-pressed", "true", "Bob's follow button pressed");
      await expectVisible(b.page.getByText(`Following ${alice.name}.`), "Bob told whom he follows");
      await a.select("f2");
      await b.expectSelected("f2");
      await a.select("f3");
      await b.expectSelected("f3");
      // Bob acts: following stops, and Alice's next move leaves him alone.
      await b.select("f1");
      await expectAttribute(follow, "aria-pressed", "false", "Bob's follow button released");
      await a.select("f2");
      await b.expectRemoteSelection("f2", alice);
      assert.equal(await b.component("f1").getAttribute("aria-current"), "true", "Bob's own selection kept");
      assert.notEqual(await b.component("f2").getAttribute("aria-current"), "true", "Bob still follows Alice");
    }));

  test("a template that does not exist, or is another workspace's, says so", (t) =>
    h.diagnose(t, async () => {
      const elsewhere = await h.workspace(bob, "Bob's own");
      const hidden = await h.template(bob, elsewhere.id, "Not Alice's");
      const { page } = await h.newPage();
      await signIn(page, alice);
      for (const id of ["no-such-template", hidden.id]) {
        await page.goto(`/templates/${id}`);
        await expectVisible(page.getByRole("heading", { name: "Template not found", level: 1 }), `the page of ${id}`);
        assert.equal(await page.getByRole("region", { name: "Canvas" }).count(), 0, `a canvas for ${id}`);
        assert.doesNotMatch(await page.locator("main").innerText(), /Not Alice's/, "the other workspace's template name");
      }
      await axe(page, "the template-not-found page");
    }));

  test("add, reorder and edit a component with the keyboard alone", (t) =>
    h.diagnose(t, async () => {
      const tpl = await h.template(alice, workspace.id, "Keyboard", [
        { id: "sec", type: "section", label: "Contact details" },
        { id: "k1", type: "text", label: "First" },
        { id: "k2", type: "text", label: "Second" },
      ]);
      const a = await Designer.open(h, alice, tpl.id);
      const page = a.page;
      await a.expectLabel("k2", "Second");

      // Add: Tab to the palette button, Enter.
      const add = a.addButton(typeLabel.text);
      await a.tabTo(add, `the "Add ${typeLabel.text}" button`);
      const added = await a.add(typeLabel.text, () => page.keyboard.press("Enter"));
      await a.expectSaved();

      // Select it: Tab to it on the canvas, Enter; the focus stays on it.
      const el = a.component(added);
      await a.tabTo(el, "the new component on the canvas");
      await page.keyboard.press("Enter");
      await a.expectSelected(added);
      assert.ok(await a.hasFocus(el), "Enter took the focus away from the selected component");

      // Reorder: Alt+ArrowUp / Alt+ArrowDown, focus staying on the component.
      const start = await a.ids();
      const at = start.indexOf(added);
      // Between the two fields (stepping past a section may enter it).
      const field = (id) => id === "k1" || id === "k2";
      const moves = field(start[at - 1]) ? ["Alt+ArrowUp", "Alt+ArrowDown"] : ["Alt+ArrowDown", "Alt+ArrowUp"];
      assert.ok(field(start[at - 1]) || field(start[at + 1]), `the new component is not next to a field: ${start}`);
      let order = start;
      for (const key of moves) {
        const i = order.indexOf(added);
        const j = key.endsWith("Up") ? i - 1 : i + 1;
        const expected = [...order];
        expected.splice(i, 1);
        expected.splice(j, 0, added);
        assert.ok(await a.hasFocus(el), `the focus left the component before ${key}`);
        await page.keyboard.press(key);
        await a.expectOrder(expected, `after ${key}`);
        await a.expectSaved();
        assert.deepEqual(await h.order(alice, tpl.id), expected, `the server's order after ${key}`);
        order = expected;
      }

      // Edit: Tab to the Label field, type.
      await a.tabTo(a.label, "the Label field");
      await page.keyboard.press("Control+a");
      await page.keyboard.type("Typed by keyboard");
      await a.expectLabel(added, "Typed by keyboard");
      await a.expectSaved();
      await expectStored(tpl.id, { [added]: "Typed by keyboard" }, "after editing from the keyboard");

      // "Move to…" offers the places it can go (a menu, a dialog, or the
      // list the button discloses); into the section, by keyboard.
      const moveTo = a.properties.getByRole("button", { name: "Move to…" });
      await a.tabTo(moveTo, 'the "Move to…" button');
      await page.keyboard.press("Enter");
      const controlled = await moveTo.getAttribute("aria-controls");
      let chooser = page.getByRole("menu").or(page.getByRole("dialog"));
      if (controlled) chooser = chooser.or(page.locator(`[id="${controlled}"]`));
      chooser = chooser.filter({ visible: true }).first();
      await expectVisible(chooser, 'the places "Move to…" offers');
      const target = chooser
        .getByRole("menuitem", { name: /Contact details/ })
        .or(chooser.getByRole("menuitemradio", { name: /Contact details/ }))
        .or(chooser.getByRole("option", { name: /Contact details/ }))
        .or(chooser.getByRole("button", { name: /Contact details/ }))
        .first();
      await expectVisible(target, 'the section "Contact details" among the places to move to');
      await screenshot(page, "editor-keyboard-move-to");
      // Arrow keys inside a menu or list box, Tab elsewhere.
      const seen = [];
      for (let i = 0; i < 30 && !(await a.hasFocus(target)); i++) {
        const inList = await page.evaluate(() => document.activeElement?.closest('[role="menu"], [role="listbox"]') != null);
        await page.keyboard.press(inList ? "ArrowDown" : "Tab");
        seen.push(await page.evaluate(() => document.activeElement?.textContent?.trim().slice(0, 30)));
      }
      assert.ok(await a.hasFocus(target), `the "Contact details" place is not reachable by keyboard; focus went: ${seen.join(" → ")}`);
      await page.keyboard.press("Enter");
      let parent;
      await waitUntil(
        async () => {
          parent = (await h.components(alice, tpl.id))[added]?.parent;
          return parent === "sec";
        },
        "the component to be in the section on the server",
        { detail: () => parent },
      );
      await expectCount(chooser, 0, 'the places of "Move to…" once one is chosen');
      await a.expectLabel(added, "Typed by keyboard");
      await screenshot(page, "editor-keyboard");
      await axe(page, "the editor after keyboard editing");
    }));
});
