// The designer's service worker: the app shell, available offline.
//
// At install it fetches `/`, stores that page, then the files under
// /assets/ it loads (its <script src> and <link href>) and, following
// their `import`s, the chunks those load later; plus the component
// catalog. Afterwards:
//
//   - page loads (navigations) go to the network first, and get the
//     stored page when the network fails; a newer page from the network
//     replaces the stored one and its files are stored with it;
//   - /assets/* (content-hashed, so never changing under a name) come
//     from the store first, and are stored when first fetched;
//   - GET /api/schema/components: network first, the stored copy offline;
//   - nothing else is touched: the rest of /api/* and /collab/* always go
//     to the network and are never stored.
//
// The cache name carries VERSION: change it whenever what is stored, or
// how, changes; a new worker then deletes the caches of older ones when it
// activates. Served as /sw.js, so its scope is the whole origin.

const VERSION = "1";
const PREFIX = "coform-shell-";
const CACHE = PREFIX + VERSION;
const PAGE = "/";
const CATALOG = "/api/schema/components";
/** At most this many files are stored for one page (a runaway guard). */
const MAX_FILES = 200;
/** Stored responses match requests whatever their `Vary` (Origin) and query. */
const MATCH = { ignoreVary: true };

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const page = await fetch(PAGE, { cache: "no-cache" });
      if (!page.ok) throw new Error(`the page answered HTTP ${page.status}`);
      await storeShell(cache, page);
      await cache.add(new Request(CATALOG, { cache: "no-cache" })).catch(() => {});
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === CATALOG) {
    event.respondWith(catalog(request));
    return;
  }
  if (isNetworkOnly(url.pathname)) return;
  if (request.mode === "navigate") {
    event.respondWith(navigation(event, request));
  } else if (url.pathname.startsWith("/assets/")) {
    event.respondWith(asset(request));
  }
});

/** Paths that are never the app: the API, the documents, the server's own. */
function isNetworkOnly(path) {
  return ["/api", "/collab", "/healthz", "/readyz", "/metrics"].some(
    (p) => path === p || path.startsWith(p + "/"),
  );
}

/** Stores `page` (a response for `/`) and every file it needs; drops older files. */
async function storeShell(cache, page) {
  const html = await page.clone().text();
  const files = await storeFiles(cache, referencedFiles(html, self.location.origin + PAGE));
  await cache.put(PAGE, page);
  // Files of an older page are of no more use.
  for (const request of await cache.keys()) {
    const path = new URL(request.url).pathname;
    if (path.startsWith("/assets/") && !files.has(path)) await cache.delete(request);
  }
}

/** Fetches and stores `/assets/` files, then the ones they import; returns their paths. */
async function storeFiles(cache, first) {
  const done = new Set();
  let todo = [...first];
  while (todo.length > 0 && done.size < MAX_FILES) {
    const next = [];
    for (const path of todo) {
      if (done.has(path) || done.size >= MAX_FILES) continue;
      done.add(path);
      let response = await cache.match(path, MATCH);
      if (!response) {
        response = await fetch(path);
        if (!response.ok) throw new Error(`${path} answered HTTP ${response.status}`);
        await cache.put(path, response.clone());
      }
      if (path.endsWith(".js") || path.endsWith(".css")) {
        next.push(...referencedFiles(await response.text(), self.location.origin + path));
      }
    }
    todo = next;
  }
  return done;
}

/**
 * Same-origin `/assets/` files named in `text`: an HTML page's `src` and
 * `href` attributes, or the quoted relative or absolute paths of a built
 * script or style sheet (its imports and `url()`s).
 */
function referencedFiles(text, base) {
  const out = new Set();
  const patterns = [
    /\s(?:src|href)\s*=\s*["']([^"']+)["']/g,
    /["'`(]((?:\.\.?\/|\/assets\/)[\w./-]+\.(?:js|css|svg|png|woff2))["'`)]/g,
  ];
  for (const pattern of patterns) {
    for (const m of text.matchAll(pattern)) {
      let url;
      try {
        url = new URL(m[1], base);
      } catch {
        continue;
      }
      if (url.origin === self.location.origin && url.pathname.startsWith("/assets/")) {
        out.add(url.pathname);
      }
    }
  }
  return out;
}

/** A page: the network's, or the stored one when the network fails. */
async function navigation(event, request) {
  try {
    const response = await fetch(request);
    if (response.ok && (response.headers.get("content-type") || "").startsWith("text/html")) {
      event.waitUntil(refresh(response.clone()));
    }
    return response;
  } catch (error) {
    const cache = await caches.open(CACHE);
    const stored = await cache.match(PAGE, MATCH);
    if (stored) return stored;
    throw error;
  }
}

/** Keeps the stored page (and its files) that of the newest build seen. */
async function refresh(response) {
  const cache = await caches.open(CACHE);
  const stored = await cache.match(PAGE, MATCH);
  const html = await response.clone().text();
  if (stored && (await stored.text()) === html) return;
  try {
    await storeShell(cache, response);
  } catch {
    // Offline again half way: the older shell stays until the next load.
  }
}

/** A hashed file: stored copy first, else the network (and store it). */
async function asset(request) {
  const cache = await caches.open(CACHE);
  const stored = await cache.match(request, MATCH);
  if (stored) return stored;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") {
    await cache.put(new URL(request.url).pathname, response.clone());
  }
  return response;
}

/** The component catalog: the network's, the stored one offline. */
async function catalog(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(CATALOG, response.clone());
    return response;
  } catch (error) {
    const stored = await cache.match(CATALOG, MATCH);
    if (stored) return stored;
    throw error;
  }
}
