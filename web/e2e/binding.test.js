// Options and default values bound to data sources: a REST API written
// for the test answers on 127.0.0.1, the server is started allowing calls
// to 127.0.0.1 only, the source is created over REST, and a designer binds
// a drop-down's options to it in the properties panel. The canvas, the
// preview (also a viewer's) and the server's stored document must show
// it; a source that fails leaves the saved options with a note.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { axe, expectText, expectVisible, Harness, screenshot, signIn, waitUntil } from "./harness.js";
import { Designer } from "./designer.js";

const COUNTRIES = [
  { code: "fr", name: "France", region: "europe" },
  { code: "de", name: "Germany", region: "europe" },
  { code: "jp", name: "Japan", region: "asia" },
];

/**
 * The upstream API: `/countries[?region=]`, `/me`, and `/broken` (500).
 * Counts the calls of each path.
 */
function startUpstream() {
  const calls = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    calls.set(url.pathname, (calls.get(url.pathname) ?? 0) + 1);
    const send = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/countries") {
      const region = url.searchParams.get("region");
      send(200, region ? COUNTRIES.filter((c) => c.region === region) : COUNTRIES);
    } else if (url.pathname === "/me") {
      send(200, { user: { email: "ada@example.test" } });
    } else if (url.pathname === "/broken") {
      send(500, { error: "down for the test" });
    } else {
      send(404, { error: "no such path" });
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port, calls }));
  });
}

describe("data-source bindings", () => {
  /** @type {Harness} */
  let h;
  let upstream;
  let alice;
  let bob;
  let workspace;
  const sources = {};

  before(async () => {
    upstream = await startUpstream();
    h = await Harness.start({ serverArgs: ["--data-source-allow", "127.0.0.1/32"] });
    alice = await h.user("Alice Binder");
    bob = await h.user("Bob Viewer");
    workspace = await h.workspace(alice, "Bindings");
    await h.addMember(alice, workspace.id, bob, "viewer");
    const base = `http://127.0.0.1:${upstream.port}`;
    const create = (name, config) =>
      h.api(alice, "POST", "/api/data-sources", { workspaceId: workspace.id, name, type: "rest", config }, 201);
    sources.countries = await create("Countries", {
      url: `${base}/countries`,
      method: "GET",
      queryParams: { region: "{{region}}" },
    });
    sources.me = await create("Me", { url: `${base}/me`, method: "GET" });
    sources.broken = await create("Broken", { url: `${base}/broken`, method: "GET" });
  });
  after(async () => {
    await h?.close();
    await new Promise((resolve) => upstream?.server.close(resolve));
  });

  /** A template holding `components` (`{id: {type, label, properties}}`), in that order. */
  function template(name, components) {
    const map = {};
    Object.entries(components).forEach(([id, c], i) => {
      map[id] = { id, parent: null, index: `V${i + 1}`, ...c };
    });
    return h.api(alice, "POST", "/api/templates", { workspaceId: workspace.id, name, content: { meta: {}, components: map } }, 201);
  }

  /** The option texts of a <select>. */
  const optionTexts = (select) => select.locator("option").evaluateAll((os) => os.map((o) => o.textContent.trim()));

  async function expectOptions(select, expected, what) {
    let last;
    await waitUntil(
      async () => {
        last = await optionTexts(select);
        return expected.every((e) => last.includes(e)) && !last.includes("Saved fallback");
      },
      `${what}: options ${JSON.stringify(expected)} instead of the saved ones`,
      { detail: () => last },
    );
    return last;
  }

  test("a drop-down's options bound in the properties panel show on the canvas and in the preview", (t) =>
    h.diagnose(t, async () => {
      const tpl = await template("Where from", {
        country: { type: "select", label: "Country", properties: { options: [{ value: "xx", label: "Saved fallback" }] } },
      });
      const d = await Designer.open(h, alice, tpl.id);
      await d.select("country");
      const group = d.properties.getByRole("group", { name: "Options from a data source", exact: true });
      await group.getByLabel("Data source", { exact: true }).selectOption({ label: "Countries (rest)" });
      // The source's placeholder is offered as a parameter.
      await group.getByRole("button", { name: "Add {{region}}", exact: true }).click();
      await group.getByLabel("Parameter 1 value", { exact: true }).fill("europe");
      await group.getByLabel("Label key", { exact: true }).fill("name");
      await group.getByLabel("Value key", { exact: true }).fill("code");
      const preview = group.getByRole("status", { name: "Preview of the binding" });
      await expectText(preview, /^2 options:\s*France \(fr\)\s*Germany \(de\)$/, "the panel's preview of the mapped options");
      await d.expectSaved();
      await screenshot(d.page, "binding-panel");

      // Stored in the document, as the model says.
      let stored;
      await waitUntil(
        async () => {
          stored = (await h.components(alice, tpl.id)).country?.properties?.optionsSource;
          return stored?.valueKey === "code" && stored?.params?.region === "europe";
        },
        "the binding in the server's copy of the template",
        { detail: () => stored },
      );
      assert.deepEqual(stored, {
        dataSourceId: sources.countries.id,
        params: { region: "europe" },
        labelKey: "name",
        valueKey: "code",
      });
      const problems = await h.api(alice, "GET", `/api/templates/${tpl.id}/problems`, undefined, 200);
      assert.deepEqual(problems.problems, [], "the bound template is valid");

      // The canvas draws the source's options.
      const canvasSelect = d.component("country").locator("select");
      const shown = await expectOptions(canvasSelect, ["France", "Germany"], "the canvas");
      assert.ok(!shown.includes("Japan"), `the region parameter was not applied: ${JSON.stringify(shown)}`);

      // The preview too, and its options can be chosen.
      await d.page.goto(`/templates/${tpl.id}/preview`);
      const select = d.page.getByLabel("Country", { exact: true });
      await expectOptions(select, ["France", "Germany"], "the preview");
      await select.selectOption("de");
      await screenshot(d.page, "binding-preview");
      await axe(d.page, "the preview of a bound form");

      // Clearing the binding brings the saved options back.
      await d.goto(tpl.id);
      await d.select("country");
      await group.getByRole("button", { name: "Clear binding", exact: true }).click();
      await waitUntil(
        async () => (await optionTexts(d.component("country").locator("select"))).includes("Saved fallback"),
        "the saved options on the canvas after clearing the binding",
      );
      await d.expectSaved();
      const after = await h.components(alice, tpl.id);
      assert.equal(after.country.properties.optionsSource, undefined);
    }));

  test("a viewer's preview shows bound options and defaults; a failing source leaves the saved options with a note", (t) =>
    h.diagnose(t, async () => {
      const tpl = await template("Viewer's form", {
        country: {
          type: "select",
          label: "Country",
          properties: {
            options: [{ value: "xx", label: "Saved fallback" }],
            optionsSource: { dataSourceId: sources.countries.id, labelKey: "name", valueKey: "code" },
          },
        },
        mail: {
          type: "email",
          label: "E-mail",
          properties: { defaultSource: { dataSourceId: sources.me.id, path: "user.email" } },
        },
        size: {
          type: "radio",
          label: "Size",
          properties: {
            options: [{ value: "m", label: "Medium" }],
            optionsSource: { dataSourceId: sources.broken.id },
          },
        },
      });
      const { page } = await h.newPage();
      await signIn(page, bob);
      await page.goto(`/templates/${tpl.id}/preview`);
      await expectOptions(page.getByLabel("Country", { exact: true }), ["France", "Germany", "Japan"], "the viewer's preview");
      const mail = page.getByLabel("E-mail", { exact: true });
      await waitUntil(async () => (await mail.inputValue()) === "ada@example.test", "the e-mail default read from the source", {
        detail: () => mail.inputValue(),
      });
      const size = page.getByRole("radiogroup", { name: "Size" });
      await expectVisible(size.getByLabel("Medium", { exact: true }), "the saved option of the failing source");
      await expectVisible(size.getByText(/Options could not be loaded from the data source \([a-z_]+\)/), "the note");
      await screenshot(page, "binding-viewer-preview");
      assert.ok((upstream.calls.get("/broken") ?? 0) >= 1, "the broken source was called");
    }));
});
