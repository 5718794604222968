// The editor page (/templates/{id}) as a person sees it, by the roles and
// names it promises:
//
//   - region "Components": the palette, buttons "Add <type label>";
//   - region "Canvas": one element per component, `data-component-id`,
//     showing its label; the selected one is aria-selected or aria-current
//     "true"; another person's selection carries `.remote-selection` with
//     their name;
//   - region "Properties": the field "Label" (sent as you type) and the
//     button "Move to…";
//   - role=status with `data-save-state`: "Saving…", "All changes saved",
//     "Offline — N changes pending";
//   - list "People here": an item for each other person, named after them
//     (or holding a button or image that is);
//   - buttons "Undo" and "Redo" (also Ctrl+Z, Ctrl+Shift+Z);
//   - Alt+ArrowUp / Alt+ArrowDown move the focused component.

import { expectAttached, expectText, signIn, waitUntil, WAIT_MS } from "./harness.js";

export const SAVED = "All changes saved";
/** "Offline — N changes pending" with at least one pending change. */
export const OFFLINE_PENDING = /^Offline — [1-9]\d* changes? pending$/;
/** "Offline — N changes pending", any N. */
export const OFFLINE = /^Offline — \d+ changes? pending$/;

export function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export class Designer {
  /**
   * @param {import("playwright-core").Page} page
   * @param {{ name: string }} person
   * @param {import("playwright-core").BrowserContext} context
   */
  constructor(page, person, context) {
    this.page = page;
    this.person = person;
    this.context = context;
  }

  /** Signs `person` in, in a context of their own, and opens the template. */
  static async open(h, person, templateId) {
    const { context, page } = await h.newPage();
    await signIn(page, person);
    const d = new Designer(page, person, context);
    await d.goto(templateId);
    return d;
  }

  get who() {
    return this.person.name;
  }

  get palette() {
    return this.page.getByRole("region", { name: "Components", exact: true });
  }

  get canvas() {
    return this.page.getByRole("region", { name: "Canvas", exact: true });
  }

  get properties() {
    return this.page.getByRole("region", { name: "Properties", exact: true });
  }

  get saveState() {
    return this.page.locator('[role="status"][data-save-state]');
  }

  get people() {
    return this.page.getByRole("list", { name: "People here", exact: true });
  }

  /** The Label field of the selected component. */
  get label() {
    return this.properties.getByLabel("Label", { exact: true });
  }

  get undo() {
    return this.page.getByRole("button", { name: "Undo", exact: true });
  }

  get redo() {
    return this.page.getByRole("button", { name: "Redo", exact: true });
  }

  addButton(typeLabel) {
    return this.palette.getByRole("button", { name: `Add ${typeLabel}`, exact: true });
  }

  /** The canvas element of component `id`. */
  component(id) {
    return this.canvas.locator(`[data-component-id="${id}"]`).first();
  }

  async goto(templateId) {
    await this.page.goto(`/templates/${templateId}`);
    await expectAttached(this.canvas, `${this.who}'s canvas`);
  }

  /** Component ids on the canvas, in page order. */
  ids() {
    return this.canvas
      .locator("[data-component-id]")
      .evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute("data-component-id")))]);
  }

  /** Waits until the canvas shows exactly `expected` (ids, in order). */
  async expectOrder(expected, what) {
    let last;
    await waitUntil(
      async () => {
        last = await this.ids();
        return JSON.stringify(last) === JSON.stringify(expected);
      },
      `${what}: ${this.who}'s canvas in the order ${JSON.stringify(expected)}`,
      { detail: () => last },
    );
  }

  /** Clicks "Add <typeLabel>" (or runs `act`) and returns the id of the component that appears. */
  async add(typeLabel, act = () => this.addButton(typeLabel).click()) {
    const before = new Set(await this.ids());
    await act();
    let last;
    return waitUntil(
      async () => {
        last = await this.ids();
        return last.find((id) => !before.has(id));
      },
      `a new ${typeLabel} on ${this.who}'s canvas`,
      { detail: () => last },
    );
  }

  /** Selects component `id` with the mouse. */
  async select(id) {
    await this.component(id).click();
    await this.expectSelected(id);
  }

  async expectSelected(id) {
    const el = this.component(id);
    await waitUntil(
      () =>
        el.evaluate((e) => e.getAttribute("aria-selected") === "true" || e.getAttribute("aria-current") === "true"),
      `component ${id} to be selected on ${this.who}'s canvas (aria-selected or aria-current "true")`,
      { detail: () => el.evaluate((e) => e.outerHTML.slice(0, 300)) },
    );
  }

  /** Waits until component `id` on the canvas shows `label`. */
  async expectLabel(id, label, timeoutMs = WAIT_MS) {
    await expectText(
      this.component(id),
      new RegExp(escapeRegExp(label)),
      `component ${id} labelled ${JSON.stringify(label)} on ${this.who}'s canvas`,
      timeoutMs,
    );
  }

  /** Waits until the save state says everything is stored. */
  async expectSaved(timeoutMs = WAIT_MS) {
    await expectText(this.saveState, SAVED, `${this.who}'s save state`, timeoutMs);
  }

  /**
   * Waits until `other` is in the "People here" list: an item named after
   * them, or holding a control or picture that is (an avatar button).
   */
  async expectPerson(other, timeoutMs = WAIT_MS) {
    const name = new RegExp(escapeRegExp(other.name));
    const named = this.people.getByRole("listitem", { name });
    const inside = this.page.getByRole("button", { name }).or(this.page.getByRole("img", { name }));
    const item = named.or(this.people.getByRole("listitem").filter({ has: inside }));
    await waitUntil(async () => (await item.count()) > 0, `${other.name} among the people here on ${this.who}'s page`, {
      timeoutMs,
      detail: () =>
        this.people.getByRole("listitem").evaluateAll((els) =>
          els.map((e) => ({
            label: e.getAttribute("aria-label"),
            inside: [...e.querySelectorAll("[aria-label]")].map((x) => x.getAttribute("aria-label")),
            text: e.textContent,
          })),
        ),
    });
  }

  /** Waits until component `id` shows `other`'s selection. */
  async expectRemoteSelection(id, other, timeoutMs = WAIT_MS) {
    await expectText(
      this.component(id).locator(".remote-selection"),
      new RegExp(escapeRegExp(other.name)),
      `${other.name}'s selection of ${id} on ${this.who}'s canvas`,
      timeoutMs,
    );
  }

  /** Is the page's focus on (or inside) `locator`'s element? */
  hasFocus(locator) {
    return locator.evaluate((el) => el === document.activeElement || el.contains(document.activeElement));
  }

  /**
   * Presses Tab (Shift+Tab with `backwards`) until `locator` has the focus,
   * at most `max` times: reaching a control by keyboard alone.
   */
  async tabTo(locator, what, { max = 120, backwards = false } = {}) {
    const seen = [];
    for (let i = 0; i < max; i++) {
      if (await locator.evaluate((el) => el === document.activeElement).catch(() => false)) return;
      await this.page.keyboard.press(backwards ? "Shift+Tab" : "Tab");
      seen.push(
        await this.page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return "(body)";
          const name = el.getAttribute("aria-label") ?? el.textContent?.trim().slice(0, 30) ?? "";
          return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} ${JSON.stringify(name)}`;
        }),
      );
    }
    throw new Error(
      `${what}: not reached with ${max} presses of ${backwards ? "Shift+Tab" : "Tab"} on ${this.who}'s page; ` +
        `focus went: ${seen.slice(0, 60).join(" → ")}`,
    );
  }
}

/** Waits until `label` is a disabled field or is not there at all. */
export async function expectNotEditable(label, what) {
  let last;
  await waitUntil(
    async () => {
      const n = await label.count();
      last = n === 0 ? "absent" : (await label.first().isDisabled()) ? "disabled" : "editable";
      return last !== "editable";
    },
    `${what}: disabled or absent`,
    { detail: () => last },
  );
}
