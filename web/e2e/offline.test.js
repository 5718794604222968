// The offline app shell (public/sw.js): what it stores, what it never
// stores, and pages that open without a network.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { expectPath, expectServiceWorker, expectVisible, Harness, screenshot, signIn, waitUntil } from "./harness.js";

/** Every stored request, as `{ cache: [paths] }`. */
function storedPaths(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      out[name] = (await cache.keys()).map((r) => {
        const u = new URL(r.url);
        return u.pathname + u.search;
      });
    }
    return out;
  });
}

/** `/assets/` files named in a page or a built file (its src/href and imports). */
function assetsIn(text, base) {
  const out = new Set();
  for (const m of text.matchAll(/(?:src|href)="([^"]+)"|["'`](\.\.?\/[\w.-]+\.(?:js|css))["'`]/g)) {
    const u = new URL(m[1] ?? m[2], base);
    if (u.pathname.startsWith("/assets/")) out.add(u.pathname);
  }
  return out;
}

describe("offline app shell", () => {
  /** @type {Harness} */
  let h;
  let alice;

  before(async () => {
    h = await Harness.start();
    alice = await h.user("Alice Offline");
  });
  after(() => h?.close());

  test("the page, every file it loads and the catalog are stored; the API never", (t) =>
    h.diagnose(t, async () => {
      const { page } = await h.newPage();
      await signIn(page, alice);
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspaces page");
      await expectServiceWorker(page);

      // What the page needs, as the server has it now.
      const html = await (await fetch(h.baseUrl + "/")).text();
      const needed = new Set(assetsIn(html, h.baseUrl + "/"));
      assert.ok(needed.size > 0, `the page loads no /assets/ file: ${html}`);
      for (const file of [...needed]) {
        if (!file.endsWith(".js")) continue;
        const js = await (await fetch(h.baseUrl + file)).text();
        for (const chunk of assetsIn(js, h.baseUrl + file)) needed.add(chunk);
      }

      const stored = await waitUntil(
        async () => {
          const s = await storedPaths(page);
          const all = Object.values(s).flat();
          return [...needed, "/", "/api/schema/components"].every((p) => all.includes(p)) ? s : false;
        },
        "the shell's files in the cache",
        { detail: () => storedPaths(page) },
      );
      const names = Object.keys(stored);
      assert.ok(
        names.length === 1 && /^coform-shell-\w+$/.test(names[0]),
        `one versioned cache: ${JSON.stringify(names)}`,
      );
      // Signed in, the page called the API; none of that was stored.
      const paths = Object.values(stored).flat();
      const leaked = paths.filter((p) => (p.startsWith("/api/") && p !== "/api/schema/components") || p.startsWith("/collab"));
      assert.deepEqual(leaked, [], "API answers in the offline cache");
    }));

  test("pages open from the stored shell while offline; the API does not pretend", (t) =>
    h.diagnose(t, async () => {
      const { context, page } = await h.newPage();
      await signIn(page, alice);
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspaces page");
      await expectServiceWorker(page);

      await h.setOnline(context, false);
      await page.reload();
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspaces page, reloaded offline");
      await expectVisible(page.getByRole("banner").getByText(alice.name), "the signed-in name, reloaded offline");
      await screenshot(page, "offline-workspaces-reloaded");

      // A deep link opened offline starts the app too, under its own address.
      await page.goto("/templates/not-fetched-yet");
      await expectPath(page, "/templates/not-fetched-yet", "a deep link opened offline");
      await expectVisible(page.getByRole("banner").getByRole("link", { name: "Coform" }), "the app's header, offline");

      const answers = await page.evaluate(async () => {
        const get = (url) =>
          fetch(url).then(
            async (r) => ({ status: r.status, types: r.ok ? ((await r.json()).types?.length ?? 0) : 0 }),
            () => "network error",
          );
        return { catalog: await get("/api/schema/components"), workspaces: await get("/api/workspaces") };
      });
      assert.ok(
        answers.catalog.status === 200 && answers.catalog.types > 0,
        `the stored catalog, offline: ${JSON.stringify(answers.catalog)}`,
      );
      assert.equal(answers.workspaces, "network error", "the API must fail offline, not answer from a cache");

      await h.setOnline(context, true);
      await page.goto("/");
      await expectVisible(page.getByRole("heading", { name: "Workspaces", level: 1 }), "the workspaces page, back online");
    }));

  test("the server unreachable (network up): the stored page still opens", (t) =>
    h.diagnose(t, async () => {
      const { context, page } = await h.newPage();
      await page.goto("/signin");
      await expectVisible(page.getByRole("button", { name: "Sign in", exact: true }), "the sign-in form");
      await expectServiceWorker(page);
      // Not the browser's offline mode: the connection to the server fails.
      h.networks.get(context).setUp(false);
      await page.reload();
      await expectVisible(page.getByRole("button", { name: "Sign in", exact: true }), "the sign-in form, server unreachable");
      assert.equal(await page.evaluate(() => navigator.onLine), true, "the browser itself is online");
      h.networks.get(context).setUp(true);
    }));

  test("a newly installed worker deletes older shell caches, and only those", (t) =>
    h.diagnose(t, async () => {
      const { page } = await h.newPage();
      await page.goto("/signin");
      await expectServiceWorker(page);
      await page.evaluate(async () => {
        for (const r of await navigator.serviceWorker.getRegistrations()) await r.unregister();
        await (await caches.open("coform-shell-0-older")).put("/older", new Response("old"));
        await (await caches.open("not-the-shell")).put("/mine", new Response("mine"));
      });
      // The next load registers the worker again: it installs and activates.
      await page.reload();
      await expectServiceWorker(page);
      const names = await waitUntil(
        async () => {
          const n = await page.evaluate(() => caches.keys());
          return n.includes("coform-shell-0-older") ? false : n;
        },
        "the older shell cache to be deleted",
        { detail: () => page.evaluate(() => caches.keys()) },
      );
      assert.ok(names.includes("not-the-shell"), `a cache of someone else was deleted: ${JSON.stringify(names)}`);
      assert.ok(names.some((n) => /^coform-shell-\w+$/.test(n)), `no shell cache: ${JSON.stringify(names)}`);
    }));
});
