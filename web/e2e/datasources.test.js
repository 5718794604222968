// The data sources page in a real browser against a real server, whose
// sources call a small JSON API this file runs on 127.0.0.1 (the server
// is started with `--data-source-allow 127.0.0.1/32`, so that it may).
// A REST source is created through the page, tested with parameters,
// browsed, edited (its secrets kept, then given again when its origin
// changes) and deleted; a viewer sees the list and nothing to change it
// with. What the page shows is checked against the server's REST answers,
// and what the source sends is checked where it arrives.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import {
  axe,
  expectAttached,
  expectCount,
  expectPath,
  expectText,
  expectVisible,
  Harness,
  screenshot,
  signIn,
  waitUntil,
} from "./harness.js";

const MASK = "••••••";

/**
 * A JSON API on a free port of 127.0.0.1: `GET /customers?city=` answers
 * two customers of that city (500 for the city "nowhere"); everything it
 * is asked is kept in `requests`.
 */
async function upstream() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers });
    res.setHeader("content-type", "application/json");
    if (url.pathname !== "/customers") {
      res.statusCode = 404;
      res.end(JSON.stringify({ error: "not here" }));
      return;
    }
    const city = url.searchParams.get("city") ?? "";
    if (city === "nowhere") {
      res.statusCode = 500;
      res.end(JSON.stringify({ error: "no such city" }));
      return;
    }
    res.end(
      JSON.stringify([
        { id: 1, name: "Ada Lovelace", city, vip: true },
        { id: 2, name: "Grace Hopper", city, vip: false },
      ]),
    );
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    requests,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("the data sources page", () => {
  /** @type {Harness} */
  let h;
  let api, other;
  // Three accounts: the server limits sign-ups per address per hour.
  let olivia, ed, vic;

  before(async () => {
    api = await upstream();
    other = await upstream();
    h = await Harness.start({ serverArgs: ["--data-source-allow", "127.0.0.1/32"] });
    olivia = await h.user("Olivia Owner");
    ed = await h.user("Ed Editor");
    vic = await h.user("Vic Viewer");
  });
  after(async () => {
    await h?.close();
    await api?.close();
    await other?.close();
  });

  /** A workspace of Olivia's with Ed as editor and Vic as viewer. */
  async function team(name) {
    const ws = await h.workspace(olivia, name);
    await h.addMember(olivia, ws.id, ed, "editor");
    await h.addMember(olivia, ws.id, vic, "viewer");
    return ws;
  }

  async function open(person, path) {
    const { context, page } = await h.newPage();
    await signIn(page, person);
    await page.goto(path);
    return { context, page };
  }

  /** The sources REST lists for the workspace. */
  async function restSources(person, workspaceId) {
    const r = await h.api(person, "GET", `/api/data-sources?workspaceId=${encodeURIComponent(workspaceId)}`, undefined, 200);
    return r.items;
  }

  /** The card of a source, by its name. */
  function card(page, name) {
    return page.getByRole("listitem").filter({ has: page.getByRole("heading", { name, level: 3, exact: true }) });
  }

  /** Waits until the element with `id` has the focus. */
  async function expectFocus(page, id, what) {
    await waitUntil(() => page.evaluate((id) => document.activeElement?.id === id, id), `${what} to have the focus`, {
      detail: () => page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200)),
    });
  }

  /** Waits until the focused element's accessible text is `name` (a button's text). */
  async function expectFocusedButton(page, name, what) {
    await waitUntil(
      () => page.evaluate((name) => document.activeElement?.tagName === "BUTTON" && document.activeElement.textContent.trim() === name, name),
      `${what}: the button “${name}” to have the focus`,
      { detail: () => page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200)) },
    );
  }

  /** Requests the upstream received after `from`. */
  const since = (server, from) => server.requests.slice(from);

  test("an editor creates a REST source, tests it with parameters and sees the answer or the failure", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Sales");
      const { page } = await open(ed, `/workspaces/${ws.id}`);
      await page.getByRole("link", { name: "Data sources", exact: true }).click();
      await expectPath(page, `/workspaces/${ws.id}/data-sources`, "the workspace page's link");
      await expectVisible(page.getByRole("heading", { name: "Data sources of Sales", level: 1 }), "the page's heading");
      await expectText(page.getByRole("status").filter({ hasText: /data sources/ }), "No data sources yet.", "the empty list");

      // Keyboard: the button opens the form with the focus on its first field.
      const opener = page.getByRole("button", { name: "New data source", exact: true });
      await opener.focus();
      await page.keyboard.press("Enter");
      await expectFocus(page, "ds-new-name", "the new source's Name field");
      await page.keyboard.type("Customers");
      const form = page.getByRole("form", { name: "New data source" });

      // Each type asks for its own fields.
      const type = form.getByLabel("Type", { exact: true });
      await type.selectOption("database");
      for (const label of ["Host", "Port", "Database", "User", "Database password", "TLS (sslmode)", "SQL query"]) {
        await expectVisible(form.getByLabel(label, { exact: true }), `the PostgreSQL field ${label}`);
      }
      assert.equal(await form.getByLabel("URL", { exact: true }).count(), 0, "a database source is asked for a URL");
      await type.selectOption("graphql");
      await expectVisible(form.getByLabel("GraphQL query", { exact: true }), "the GraphQL query field");
      assert.equal(await form.getByLabel("Method", { exact: true }).count(), 0, "a GraphQL source is asked for a method");
      await screenshot(page, "datasources-form-graphql");
      await axe(page, "the new data source form (GraphQL)");
      await type.selectOption("rest");

      await form.getByLabel("URL", { exact: true }).fill(`${api.url}/customers`);
      await form.getByRole("button", { name: "Add query parameter", exact: true }).click();
      await expectFocus(page, "ds-new-queryParams-0-name", "the new query parameter's name");
      await page.keyboard.type("city");
      await form.getByLabel("Value of query parameter 1", { exact: true }).fill("{{city}}");
      await form.getByRole("button", { name: "Add header", exact: true }).click();
      await form.getByLabel("Name of header 1", { exact: true }).fill("X-Api-Key");
      await form.getByLabel("Value of header 1", { exact: true }).fill("key-s3cret");
      await form.getByLabel("Secret header 1", { exact: true }).check();
      await form.getByLabel("Authentication type", { exact: true }).selectOption("bearer");
      await form.getByLabel("Bearer token", { exact: true }).fill("tok-one");

      // A body that is not JSON is refused here, at its field.
      await form.getByLabel("Body (JSON)", { exact: true }).fill("{not json");
      await form.getByRole("button", { name: "Create data source", exact: true }).click();
      await expectText(form.getByRole("alert"), /The body is not valid JSON\./, "the refusal of the body");
      await expectFocus(page, "ds-new-body", "the body field after its refusal");
      assert.equal(await page.locator("#ds-new-body").getAttribute("aria-invalid"), "true", "the body is marked invalid");
      assert.equal((await restSources(ed, ws.id)).length, 0, "a source was created with a bad body");
      await form.getByLabel("Body (JSON)", { exact: true }).fill("");
      await screenshot(page, "datasources-form-rest");
      await axe(page, "the new data source form (REST)");

      await form.getByRole("button", { name: "Create data source", exact: true }).click();
      await expectText(page.getByRole("status").filter({ hasText: /created/ }), "Data source “Customers” created.", "the creation's status");
      await expectFocusedButton(page, "New data source", "after creating");
      const customers = card(page, "Customers");
      await expectVisible(customers, "the new source's card");
      await expectVisible(customers.getByText("REST API", { exact: true }), "the card's type");

      const [stored] = await restSources(ed, ws.id);
      assert.equal(stored.name, "Customers");
      assert.equal(stored.type, "rest");
      assert.equal(stored.config.url, `${api.url}/customers`);
      assert.deepEqual(stored.config.queryParams, { city: "{{city}}" });
      assert.equal(stored.config.headers["X-Api-Key"], MASK, "the secret header as the server shows it");
      assert.equal(stored.config.authentication.type, "bearer");
      assert.equal(stored.credentialsSet, true);
      const html = await page.content();
      assert.ok(!html.includes("key-s3cret") && !html.includes("tok-one"), "a secret is still in the page");

      // Test: the parameter row is there for the placeholder; the answer is shown.
      const before = api.requests.length;
      await customers.getByRole("button", { name: "Test Customers", exact: true }).click();
      const testPanel = page.getByRole("form", { name: "Test Customers" });
      await expectVisible(testPanel, "the test panel");
      await waitUntil(
        () => page.evaluate(() => document.activeElement?.tagName === "H4"),
        "the test panel's heading to have the focus",
      );
      assert.equal(await testPanel.getByLabel("Name of parameter 1", { exact: true }).inputValue(), "city", "the placeholder's row");
      await testPanel.getByLabel("Value of parameter 1", { exact: true }).fill("Oslo");
      await testPanel.getByRole("button", { name: "Run test", exact: true }).click();
      await expectText(testPanel.getByRole("status"), /^The test passed in \d+ ms\.$/, "the test's outcome");
      const sample = testPanel.getByRole("region", { name: "Sample answer of Customers" });
      await expectText(sample, /"name": "Ada Lovelace",\s*"city": "Oslo"/, "the sample, as formatted JSON");
      const got = since(api, before);
      assert.equal(got.length, 1, `the upstream was asked ${got.length} times`);
      assert.equal(got[0].path, "/customers");
      assert.deepEqual(got[0].query, { city: "Oslo" });
      assert.equal(got[0].headers.authorization, "Bearer tok-one");
      assert.equal(got[0].headers["x-api-key"], "key-s3cret");
      await screenshot(page, "datasources-test-passed");
      await axe(page, "the test panel with a sample");

      // A failure: its code and message in an alert.
      await testPanel.getByLabel("Value of parameter 1", { exact: true }).fill("nowhere");
      await testPanel.getByRole("button", { name: "Run test", exact: true }).click();
      const failed = testPanel.getByRole("alert");
      await expectText(failed, /^The test failed\.\s*upstream_error: /, "the failed test's alert");
      assert.equal(await sample.count(), 0, "the sample of the passed test is still shown");

      // Tests are not counted; calls are. Two calls (one fails), then the
      // health check: the card shows the figures the server keeps.
      await h.api(ed, "POST", `/api/data-sources/${stored.id}/execute`, { params: { city: "Bergen" } }, 200);
      const refused = await h.request(ed, "POST", `/api/data-sources/${stored.id}/execute`, { params: { city: "nowhere" } });
      assert.equal(refused.body?.error?.code, "upstream_error", `a failing call: ${JSON.stringify(refused)}`);
      await customers.getByRole("button", { name: "Check health of Customers", exact: true }).click();
      await expectText(customers.getByRole("status"), /^Customers is healthy: it answered in \d+ ms\.$/, "the health check");
      await expectVisible(customers.getByText("Healthy", { exact: true }), "the health badge");
      const [figures] = await restSources(ed, ws.id);
      assert.equal(figures.errorCount, 1, `the server's error count: ${JSON.stringify(figures)}`);
      assert.equal(figures.performance.successRate, 0.5);
      assert.notEqual(figures.lastUsed, null);
      const figure = (term) => customers.locator("dt", { hasText: term }).locator("xpath=following-sibling::dd");
      await expectText(figure("Errors"), "1", "the card's error count");
      await expectText(figure("Success rate"), "50%", "the card's success rate");
      await expectText(figure("Average response"), `${Math.round(figures.performance.responseTime)} ms`, "the card's response time");
      await expectText(figure("Last used"), /\d/, "the card's last use");
      await expectText(customers.getByText(/^Status: \w/), new RegExp(`^Status: ${figures.status}$`, "i"), "the status badge");

      // The panel is still open: Escape closes it and gives the focus back to its button.
      await testPanel.getByLabel("Value of parameter 1", { exact: true }).focus();
      await page.keyboard.press("Escape");
      await expectCount(testPanel, 0, "the test panel after Escape");
      await expectFocusedButton(page, "Test Customers", "after closing the test panel");

      await customers.getByRole("button", { name: "Clear cache of Customers", exact: true }).click();
      await expectText(customers.getByRole("status"), "The cached answers of Customers were cleared.", "clearing the cache");
      await screenshot(page, "datasources-list");
      await axe(page, "the data sources page");
    }));

  test("the schema browser, editing with secrets kept or given again, and deleting", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Support");
      const created = await h.api(
        ed,
        "POST",
        "/api/data-sources",
        {
          workspaceId: ws.id,
          name: "People",
          type: "rest",
          config: {
            url: `${api.url}/customers`,
            method: "GET",
            queryParams: { city: "Bergen" },
            authentication: { type: "bearer", token: "tok-kept" },
          },
        },
        201,
      );
      const { page } = await open(ed, `/workspaces/${ws.id}/data-sources`);
      const people = card(page, "People");
      await expectVisible(people, "the source's card");

      // The schema of a REST source: the shape of its answer.
      await people.getByRole("button", { name: "Schema People", exact: true }).click();
      const schema = page.getByRole("region", { name: "Schema of People" });
      await expectVisible(schema, "the schema panel");
      for (const field of ["name", "city", "vip"]) {
        await expectVisible(schema.locator("code", { hasText: new RegExp(`^${field}$`) }), `the field ${field} in the schema`);
      }
      await screenshot(page, "datasources-schema");
      await axe(page, "the schema panel");
      await schema.getByRole("button", { name: "Close schema of People", exact: true }).click();
      await expectFocusedButton(page, "Schema People", "after closing the schema");

      // Edit: secrets start empty and are kept when left so.
      await people.getByRole("button", { name: "Edit People", exact: true }).click();
      const form = page.getByRole("form", { name: "Edit People" });
      await expectFocus(page, `ds-edit-${created.id}-name`, "the edit form's Name field");
      const token = form.getByLabel("Bearer token", { exact: true });
      assert.equal(await token.inputValue(), "", "the stored token is in its field");
      await expectVisible(form.getByText("Set — leave blank to keep it.", { exact: true }), "the kept-secret hint");
      await form.getByLabel("Name", { exact: true }).fill("People of Bergen");
      await form.getByLabel("Time limit (ms)", { exact: true }).fill("5000");
      await form.getByRole("button", { name: "Save changes", exact: true }).click();
      const renamed = card(page, "People of Bergen");
      await expectText(renamed.getByRole("status"), "Changes to People of Bergen saved.", "the edit's status");
      await expectFocusedButton(page, "Edit People of Bergen", "after saving");
      let stored = await h.api(ed, "GET", `/api/data-sources/${created.id}`, undefined, 200);
      assert.equal(stored.name, "People of Bergen");
      assert.equal(stored.config.timeoutMs, 5000);
      assert.equal(stored.config.authentication.token, MASK);
      // The token is still the one given at first.
      let from = api.requests.length;
      await h.api(ed, "POST", `/api/data-sources/${created.id}/execute`, {}, 200);
      assert.equal(since(api, from).at(-1)?.headers.authorization, "Bearer tok-kept", "the kept token");

      // A new origin needs the token again: the page says which field.
      await renamed.getByRole("button", { name: "Edit People of Bergen", exact: true }).click();
      const edit = page.getByRole("form", { name: "Edit People of Bergen" });
      await edit.getByLabel("URL", { exact: true }).fill(`${other.url}/customers`);
      await edit.getByRole("button", { name: "Save changes", exact: true }).click();
      const alert = edit.getByRole("alert");
      await expectText(alert, /^Enter these secrets again to save:\s*Bearer token/, "the secrets the server asks for");
      await expectFocus(page, `ds-edit-${created.id}-token`, "the token field the server asks for");
      assert.equal(await edit.getByLabel("Bearer token", { exact: true }).getAttribute("aria-invalid"), "true");
      await screenshot(page, "datasources-secrets-required");
      await axe(page, "the edit form asking for secrets");
      stored = await h.api(ed, "GET", `/api/data-sources/${created.id}`, undefined, 200);
      assert.equal(stored.config.url, `${api.url}/customers`, "the origin changed without its secret");

      await edit.getByLabel("Bearer token", { exact: true }).fill("tok-new");
      await edit.getByRole("button", { name: "Save changes", exact: true }).click();
      await expectText(renamed.getByRole("status"), "Changes to People of Bergen saved.", "the saved new origin");
      from = other.requests.length;
      await h.api(ed, "POST", `/api/data-sources/${created.id}/execute`, {}, 200);
      const got = since(other, from);
      assert.equal(got.length, 1, "the new origin was not called");
      assert.equal(got[0].headers.authorization, "Bearer tok-new");

      // Delete: asked first; Cancel keeps it.
      await renamed.getByRole("button", { name: "Delete People of Bergen", exact: true }).click();
      const question = renamed.getByRole("group").filter({ hasText: "Delete the data source “People of Bergen”?" });
      await expectVisible(question, "the question before deleting");
      await question.getByRole("button", { name: "Cancel", exact: true }).click();
      await expectFocusedButton(page, "Delete People of Bergen", "after cancelling");
      assert.equal((await restSources(ed, ws.id)).length, 1);
      await renamed.getByRole("button", { name: "Delete People of Bergen", exact: true }).click();
      await renamed.getByRole("button", { name: "Yes, delete", exact: true }).click();
      await expectCount(renamed, 0, "the deleted source's card");
      await expectText(page.getByRole("status").filter({ hasText: /deleted/ }), "Data source “People of Bergen” deleted.", "the status");
      await waitUntil(
        () => page.evaluate(() => document.activeElement?.id === "ds-heading"),
        "the list's heading to have the focus after the deletion",
      );
      assert.deepEqual(await restSources(ed, ws.id), []);
    }));

  test("a viewer sees the sources and their figures, and nothing to change them with", (t) =>
    h.diagnose(t, async () => {
      const ws = await team("Reading");
      for (const [name, type, config] of [
        ["Orders API", "rest", { url: `${api.url}/customers` }],
        ["Catalog", "graphql", { url: `${api.url}/graphql`, query: "{ items { id } }" }],
      ]) {
        await h.api(olivia, "POST", "/api/data-sources", { workspaceId: ws.id, name, type, config }, 201);
      }
      const { page } = await open(vic, `/workspaces/${ws.id}/data-sources`);
      await expectVisible(card(page, "Orders API"), "the REST source's card");
      await expectVisible(card(page, "Catalog"), "the GraphQL source's card");
      await expectVisible(card(page, "Catalog").getByText("GraphQL", { exact: true }), "the GraphQL source's type");
      await expectText(page.getByRole("status").filter({ hasText: /data sources/ }), "2 data sources.", "the count");
      await expectVisible(page.getByText(/You can see which ones this workspace has\./), "the viewer's note");
      for (const [what, locator] of [
        ["New data source", page.getByRole("button", { name: "New data source" })],
        ["Edit", page.getByRole("button", { name: /^Edit/ })],
        ["Test", page.getByRole("button", { name: /^Test/ })],
        ["Schema", page.getByRole("button", { name: /^Schema/ })],
        ["Check health", page.getByRole("button", { name: /^Check health/ })],
        ["Clear cache", page.getByRole("button", { name: /^Clear cache/ })],
        ["Delete", page.getByRole("button", { name: /^Delete/ })],
      ]) {
        assert.equal(await locator.count(), 0, `a viewer is offered ${what}`);
      }

      // The type filter asks the server.
      await page.getByLabel("Type", { exact: true }).selectOption("graphql");
      await expectCount(page.getByRole("heading", { level: 3 }), 1, "sources listed for GraphQL");
      await expectVisible(card(page, "Catalog"), "the GraphQL source, filtered");
      await page.getByLabel("Type", { exact: true }).selectOption("");
      await page.getByLabel("Search data sources", { exact: true }).fill("orders");
      await expectCount(page.getByRole("heading", { level: 3 }), 1, "sources found for “orders”");
      await expectAttached(card(page, "Orders API"), "the found source");
      await screenshot(page, "datasources-viewer");
      await axe(page, "the data sources page of a viewer");
    }));
});
