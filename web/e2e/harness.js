// Browser end-to-end fixtures: a real `coform serve` (auth on) on a free
// port of 127.0.0.1 with a temporary data directory, Debian's Chromium
// driven by playwright-core, and helpers to set up accounts, workspaces
// and templates over REST and to act in the designer like a person.
//
// Nothing here waits a fixed time: every wait is for an event or for a
// condition, polled until a deadline, and a missed deadline fails with a
// message that says what was awaited and what was seen last.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);

export const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = path.resolve(WEB_ROOT, "..");
/** Screenshots land here (created on demand, ignored by git). */
export const ARTIFACTS = path.join(WEB_ROOT, "e2e", "artifacts");

/** How long one condition may take before a test fails. */
export const WAIT_MS = 15_000;
const STARTUP_MS = 30_000;
const STOP_MS = 10_000;
const LISTENING = /^coform listening on http:\/\/127\.0\.0\.1:(\d+)\s*$/;
export const PASSWORD = "correct horse battery 9";

// ------------------------------------------------------------ waiting

/**
 * Polls `condition` until it returns a truthy value (which is returned)
 * or `timeoutMs` passes; then fails naming `what`, with the last error and
 * what `detail()` reports.
 */
export async function waitUntil(condition, what, { timeoutMs = WAIT_MS, detail } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await condition();
      if (v) return v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      let msg = `timed out after ${timeoutMs} ms waiting for ${what}`;
      if (lastError) msg += `\n  last error: ${lastError.message ?? lastError}`;
      if (detail) {
        try {
          msg += `\n  last seen: ${JSON.stringify(await detail())}`;
        } catch {
          // The detail is a courtesy; the timeout is the failure.
        }
      }
      throw new Error(msg);
    }
    // A poll interval, not a synchronisation: the loop ends on the condition.
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Waits until `locator`'s text (trimmed) satisfies `expected` (a string or RegExp). */
export async function expectText(locator, expected, what, timeoutMs = WAIT_MS) {
  const ok = (t) => (expected instanceof RegExp ? expected.test(t) : t === expected);
  let last;
  return waitUntil(
    async () => {
      last = ((await locator.first().textContent({ timeout: 1000 })) ?? "").trim();
      return ok(last) ? last : false;
    },
    `${what}: text ${expected instanceof RegExp ? expected : JSON.stringify(expected)}`,
    { timeoutMs, detail: () => last },
  );
}

/** Waits until an input's value is `expected`. */
export async function expectValue(locator, expected, what, timeoutMs = WAIT_MS) {
  let last;
  await waitUntil(
    async () => {
      last = await locator.inputValue({ timeout: 1000 });
      return last === expected;
    },
    `${what}: value ${JSON.stringify(expected)}`,
    { timeoutMs, detail: () => last },
  );
}

/** Waits until `locator` matches `count` elements. */
export async function expectCount(locator, count, what, timeoutMs = WAIT_MS) {
  let last;
  await waitUntil(
    async () => {
      last = await locator.count();
      return last === count;
    },
    `${what}: ${count} element(s)`,
    { timeoutMs, detail: () => last },
  );
}

/** Waits until `locator` is visible (the first match). */
export async function expectVisible(locator, what, timeoutMs = WAIT_MS) {
  try {
    await locator.first().waitFor({ state: "visible", timeout: timeoutMs });
  } catch (e) {
    throw new Error(`${what} did not appear within ${timeoutMs} ms (${locator}): ${e.message.split("\n")[0]}`);
  }
}

/** Waits until `locator` is in the page (the first match), visible or not (an empty region has no size). */
export async function expectAttached(locator, what, timeoutMs = WAIT_MS) {
  try {
    await locator.first().waitFor({ state: "attached", timeout: timeoutMs });
  } catch (e) {
    throw new Error(`${what} is not on the page after ${timeoutMs} ms (${locator}): ${e.message.split("\n")[0]}`);
  }
}

// ------------------------------------------------------------ tools

let announced = false;

/** Debian's Chromium: `CHROMIUM`, or `chromium` on PATH. Fails (never skips) without it. */
export function findChromium() {
  const named = process.env.CHROMIUM;
  let found;
  if (named) {
    found = named.includes(path.sep) ? path.resolve(named) : onPath(named);
    if (!found || !isExecutable(found)) {
      throw new Error(`CHROMIUM is set to ${JSON.stringify(named)}, which is not an executable file.`);
    }
  } else {
    found = onPath("chromium");
    if (!found) {
      throw new Error(
        "Chromium is needed for the browser tests and was not found on PATH.\n" +
          "Install Debian's package (apt-get install chromium) or set CHROMIUM to a Chromium executable.",
      );
    }
  }
  return found;
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The coform binary: `COFORM_BIN`, or the repository's debug build. Fails clearly when missing. */
export function coformBin() {
  const bin = process.env.COFORM_BIN
    ? path.resolve(process.env.COFORM_BIN)
    : path.join(REPO_ROOT, "target", "debug", process.platform === "win32" ? "coform.exe" : "coform");
  if (!isExecutable(bin)) {
    throw new Error(
      `The coform server binary was not found (or is not executable) at ${bin}.\n` +
        "Build it with `cargo build -p coform --bin coform` in the repository root, or set COFORM_BIN.",
    );
  }
  return bin;
}

/** The tools' versions, as one line each. */
export function versions() {
  const exe = findChromium();
  let browser;
  try {
    browser = execFileSync(exe, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 }).trim();
  } catch (e) {
    throw new Error(`${exe} --version failed: ${e.message}`);
  }
  const pw = require("playwright-core/package.json").version;
  return { exe, browser, playwright: pw };
}

/**
 * Prints the versions, once: the runner (e2e/run.js) prints them before
 * all files and tells the files so; a file run on its own prints them.
 */
export function announceVersions() {
  if (announced || process.env.E2E_VERSIONS_SHOWN) return;
  announced = true;
  const v = versions();
  console.log(`# browser: ${v.browser} (${v.exe})`);
  console.log(`# playwright-core: ${v.playwright}`);
}

// ------------------------------------------------------------ server

/** Processes this test file started, and their data; killed and removed if it ends abruptly. */
const children = new Set();
const dataDirs = new Set();
function killChildren() {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
}
process.once("exit", killChildren);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    killChildren();
    process.kill(process.pid, signal);
  });
}

/**
 * A `coform serve` process on its own port and data directory; `args` are
 * added to its command line (e.g. `--data-source-allow 127.0.0.1/32`).
 */
export class Server {
  constructor(args = []) {
    this.args = args;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "coform-e2e-"));
    dataDirs.add(this.dataDir);
    this.port = 0;
    this.child = null;
    this.log = "";
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const bin = coformBin();
    // Settings come from the arguments only: none of the caller's COFORM_*
    // (but the log level) leak in.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("COFORM_") || k.startsWith("COFORM_LOG")),
    );
    const args = ["serve", "--auth", "on", "--bind", "127.0.0.1:0", "--data-dir", this.dataDir, ...this.args];
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env });
    this.child = child;
    children.add(child);
    child.once("exit", () => children.delete(child));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      this.log = (this.log + chunk).slice(-100_000);
    });
    const lines = readline.createInterface({ input: child.stdout });
    this.port = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`coform did not start within ${STARTUP_MS} ms\n${this.log.slice(-3000)}`)),
        STARTUP_MS,
      );
      lines.on("line", (line) => {
        const m = LISTENING.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`coform exited while starting (code ${code}, signal ${signal})\n${this.log.slice(-3000)}`));
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    return this;
  }

  /** Stops the process (SIGTERM, then SIGKILL after a while). */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_MS);
    await exited;
    clearTimeout(timer);
  }

  async dispose() {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    dataDirs.delete(this.dataDir);
  }

  /** The token of the newest mail to `to` about `subject` (mails go to `<data-dir>/outbox`). */
  mailedToken(to, subject) {
    const outbox = path.join(this.dataDir, "outbox");
    if (!fs.existsSync(outbox)) return undefined;
    const mails = fs
      .readdirSync(outbox)
      .filter((f) => f.endsWith(".eml"))
      .sort()
      .map((f) => fs.readFileSync(path.join(outbox, f), "utf8"))
      .filter((m) => m.split(/\r?\n/).includes(`To: ${to}`) && m.includes(`Subject: ${subject}`));
    return /token=([A-Za-z0-9_-]+)/.exec(mails.at(-1) ?? "")?.[1];
  }
}

// ------------------------------------------------------------ the network

/**
 * One person's network: a TCP relay on its own port of 127.0.0.1 in front
 * of the server. Taking it down cuts every open connection at once (the
 * page sees its WebSocket drop, as when a laptop leaves the Wi-Fi) and
 * refuses new ones until it is brought back. The browser's own offline
 * switch (`context.setOffline`) blocks new requests but leaves an open
 * WebSocket looking alive, so tests use both.
 */
export class Network {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.up = true;
    this.sockets = new Set();
    this.server = net.createServer((down) => {
      if (!this.up) {
        down.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      for (const s of [down, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {
          down.destroy();
          upstream.destroy();
        });
      }
      down.pipe(upstream);
      upstream.pipe(down);
    });
    this.port = 0;
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  /** Cuts every connection and refuses new ones (`false`), or lets them through again (`true`). */
  setUp(up) {
    this.up = up;
    if (!up) for (const s of this.sockets) s.destroy();
  }

  async close() {
    this.setUp(false);
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------ the harness

let emails = 0;

/**
 * One server and one browser for a test file. Tests make what they need
 * with its helpers and open one browser context per person.
 */
export class Harness {
  /** `serverArgs`: more arguments for `coform serve` (see `Server`). */
  static async start({ serverArgs = [] } = {}) {
    announceVersions();
    const h = new Harness();
    h.server = await new Server(serverArgs).start();
    try {
      h.browser = await chromium.launch({
        executablePath: findChromium(),
        // Containers often run as root, where Chromium's sandbox cannot start.
        args: [
          "--no-sandbox",
          // Any host but 127.0.0.1 is unresolvable: the tests never reach out.
          "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ],
        timeout: STARTUP_MS,
      });
    } catch (e) {
      await h.server.dispose();
      throw e;
    }
    return h;
  }

  constructor() {
    this.server = null;
    this.browser = null;
    this.contexts = [];
    /** Each context's network (see `Network`). */
    this.networks = new Map();
    /** Console errors, failed requests and off-site requests, for failure messages. */
    this.events = [];
    this.offsite = [];
  }

  get baseUrl() {
    return this.server.baseUrl;
  }

  async close() {
    for (const c of this.contexts) await c.close().catch(() => {});
    await this.browser?.close().catch(() => {});
    for (const n of this.networks.values()) await n.close();
    this.networks.clear();
    await this.server?.dispose();
    if (this.offsite.length > 0) {
      throw new Error(`the browser asked for addresses other than 127.0.0.1: ${this.offsite.join(", ")}`);
    }
  }

  /**
   * A new browser context: one person, with their own storage, reaching
   * the server through their own `Network` (so the app's origin is that
   * relay's address). Options go to playwright's `browser.newContext`.
   */
  async newContext(options = {}) {
    const network = await new Network(this.server.port).start();
    const context = await this.browser.newContext({ baseURL: network.baseUrl, ...options });
    this.networks.set(context, network);
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS * 2);
    this.contexts.push(context);
    const note = (what) => {
      this.events.push(what);
      if (this.events.length > 500) this.events.splice(0, 100);
    };
    context.on("request", (r) => {
      const url = new URL(r.url());
      if (/^(https?|wss?):$/.test(url.protocol) && url.hostname !== "127.0.0.1") this.offsite.push(r.url());
    });
    context.on("page", (page) => {
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") note(`console.${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => note(`page error: ${e.message}`));
    });
    context.on("requestfailed", (r) => {
      // Requests a navigation cut short are no news.
      const error = r.failure()?.errorText ?? "";
      if (error !== "net::ERR_ABORTED") note(`request failed: ${r.method()} ${r.url()} (${error})`);
    });
    return context;
  }

  /**
   * Takes a person offline (`false`) or back online (`true`): the browser's
   * offline mode, plus their network cut, so that open connections drop
   * too. Service workers are offline with their page.
   */
  async setOnline(context, online) {
    const network = this.networks.get(context);
    if (!network) throw new Error("not a context of this harness");
    if (online) {
      network.setUp(true);
      await context.setOffline(false);
    } else {
      await context.setOffline(true);
      network.setUp(false);
    }
  }

  /** A new context with one page. */
  async newPage(options = {}) {
    const context = await this.newContext(options);
    return { context, page: await context.newPage() };
  }

  /**
   * Runs a test body (`t`: its node:test context). A failure carries what
   * the browser reported and the server's log, and leaves a screenshot of
   * every page the test opened. The test's browser contexts are closed
   * afterwards either way, so nothing of it runs on into the next test.
   */
  async diagnose(t, body) {
    this.events = [];
    const offsite = this.offsite.length;
    const contexts = this.contexts.length;
    try {
      await body();
      if (this.offsite.length > offsite) {
        throw new Error(`the browser asked for addresses other than 127.0.0.1: ${this.offsite.slice(offsite).join(", ")}`);
      }
    } catch (e) {
      if (e instanceof Error) {
        const shots = [];
        for (const [i, context] of this.contexts.slice(contexts).entries()) {
          for (const [j, page] of context.pages().entries()) {
            const name = `failed-${t.name}-${i + 1}${j > 0 ? `-${j + 1}` : ""}`;
            await screenshot(page, name).then((f) => shots.push(f), () => {});
          }
        }
        const seen = this.events.slice(-30);
        if (seen.length > 0) e.message += `\n--- browser (last ${seen.length}) ---\n${seen.join("\n")}`;
        if (shots.length > 0) e.message += `\n--- screenshots ---\n${shots.join("\n")}`;
        e.message += `\n--- coform stderr (tail) ---\n${this.server.log.slice(-4000)}\n--- end ---`;
      }
      throw e;
    } finally {
      for (const context of this.contexts.splice(contexts)) {
        await context.close().catch(() => {});
        const network = this.networks.get(context);
        this.networks.delete(context);
        await network?.close();
      }
    }
  }

  // ---------------------------------------------------------- REST

  /** A REST call as `user` (or nobody); returns `{ status, body }`. */
  async request(user, method, urlPath, body) {
    const send = () =>
      fetch(this.baseUrl + urlPath, {
        method,
        headers: {
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(user ? { authorization: `Bearer ${user.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(WAIT_MS),
      });
    let res = await send();
    if (res.status === 401 && user) {
      // The access token ran out: a fresh one, once.
      await this.logIn(user);
      res = await send();
    }
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: kept as text.
    }
    return { status: res.status, body: parsed };
  }

  /** A REST call that must answer `expected` (a status or a list); returns the body. */
  async api(user, method, urlPath, body, expected = [200, 201, 204]) {
    const want = Array.isArray(expected) ? expected : [expected];
    const r = await this.request(user, method, urlPath, body);
    if (!want.includes(r.status)) {
      throw new Error(`${method} ${urlPath} answered ${r.status} (expected ${want.join(" or ")}): ${JSON.stringify(r.body)}`);
    }
    return r.body;
  }

  async logIn(user) {
    const r = await this.request(null, "POST", "/api/auth/login", { email: user.email, password: user.password });
    if (r.status !== 200) throw new Error(`login of ${user.email} answered ${r.status}: ${JSON.stringify(r.body)}`);
    user.token = r.body.accessToken;
  }

  /** A fresh e-mail address. */
  email(name) {
    emails += 1;
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "") || "user";
    return `${slug}-${process.pid}-${emails}@example.com`;
  }

  /**
   * A new account (`POST /api/auth/register`) with its address verified
   * through the mailed link, so that it can be added to workspaces, and
   * `color` as its colour if given (the server picks one at random).
   * Returns `{ id, name, email, password, token, color }`.
   */
  async user(name, { color } = {}) {
    const email = this.email(name);
    const body = await this.api(null, "POST", "/api/auth/register", { email, password: PASSWORD, name }, 201);
    const user = { id: body.user.id, name, email, password: PASSWORD, token: body.accessToken, color: body.user.color };
    if (color) {
      await this.api(user, "PUT", "/api/auth/me", { color }, 200);
      user.color = color;
    }
    const subject = "Verify your Coform e-mail address";
    const token = await waitUntil(() => this.server.mailedToken(email, subject), `the verification mail to ${email}`);
    await this.api(null, "GET", `/api/auth/verify-email?token=${encodeURIComponent(token)}`, undefined, 200);
    return user;
  }

  /** A workspace owned by `owner`. */
  async workspace(owner, name = "E2E workspace") {
    return this.api(owner, "POST", "/api/workspaces", { name }, 201);
  }

  /** Makes `user` a member of the workspace with `role` (viewer, editor, admin, owner). */
  async addMember(admin, workspaceId, user, role) {
    return this.api(admin, "POST", `/api/workspaces/${workspaceId}/members`, { email: user.email, role }, 201);
  }

  async setRole(admin, workspaceId, user, role) {
    await this.api(admin, "PUT", `/api/workspaces/${workspaceId}/members/${user.id}`, { role }, 204);
  }

  async removeMember(admin, workspaceId, user) {
    await this.api(admin, "DELETE", `/api/workspaces/${workspaceId}/members/${user.id}`, undefined, 204);
  }

  /**
   * A template in the workspace; `components` (optional) is a list of
   * `{ id, type, label }` placed in that order at the top level.
   */
  async template(owner, workspaceId, name = "E2E form", components = []) {
    const map = {};
    components.forEach((c, i) => {
      // Fractional indices in list order (base-62 digits, never ending in 0).
      map[c.id] = { id: c.id, type: c.type ?? "text", label: c.label ?? "", parent: c.parent ?? null, index: `V${i + 1}` };
      if (c.properties) map[c.id].properties = c.properties;
    });
    return this.api(owner, "POST", "/api/templates", { workspaceId, name, content: { meta: {}, components: map } }, 201);
  }

  /** What the server stored of a template: `content.components` as a map. */
  async components(user, templateId) {
    const t = await this.api(user, "GET", `/api/templates/${templateId}`, undefined, 200);
    return t.content?.components ?? {};
  }

  /** Top-level component ids as the server orders them (index, then id). */
  async order(user, templateId) {
    const all = Object.values(await this.components(user, templateId));
    return all
      .filter((c) => c.parent == null)
      .sort((a, b) => (a.index === b.index ? cmp(a.id, b.id) : cmp(a.index, b.index)))
      .map((c) => c.id);
  }

  /** The component catalog (`GET /api/schema/components`). */
  async catalog() {
    return this.api(null, "GET", "/api/schema/components", undefined, 200);
  }
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ------------------------------------------------------------ in the page

/** Path and query of the page's current address. */
export function here(page) {
  const u = new URL(page.url());
  return u.pathname + u.search;
}

/** Waits until the page's address (path and query) satisfies `test`. */
export async function expectPath(page, test, what) {
  const ok = typeof test === "string" ? (p) => p === test : (p) => test.test(p);
  await waitUntil(() => ok(here(page)), `${what} (address ${test})`, { detail: () => here(page) });
}

/**
 * Signs in through the page's form (opening /signin first unless the page
 * is already on it) and waits until the app has left the sign-in page.
 */
export async function signIn(page, user) {
  if (new URL(page.url()).pathname !== "/signin") await page.goto("/signin");
  await page.getByLabel("Email", { exact: true }).fill(user.email);
  await page.getByLabel("Password", { exact: true }).fill(user.password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await waitUntil(() => new URL(page.url()).pathname !== "/signin", `${user.name} to be signed in`, {
    detail: async () => ({ url: page.url(), alert: await page.getByRole("alert").allTextContents() }),
  });
}

/** Waits until a service worker controls the page (installed, shell stored, activated). */
export async function expectServiceWorker(page, timeoutMs = 20_000) {
  try {
    await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: timeoutMs });
  } catch {
    throw new Error(`no service worker took control of ${page.url()} within ${timeoutMs} ms (is /sw.js served?)`);
  }
}

/** Saves a full-page PNG to e2e/artifacts/<name>.png; returns its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, "-")}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

let axeSource;

/**
 * Runs axe-core (WCAG 2 A and AA rules) on the page and fails listing every
 * violation: rule, help, and the elements concerned.
 *
 * Injection: the page's CSP (`script-src 'self'`) blocks a <script> added
 * by the test (`page.addScriptTag`), so the source is evaluated through
 * `page.evaluate` instead, which the DevTools protocol runs outside the
 * page's CSP. The page itself keeps its real policy (no `bypassCSP`), so
 * what is audited is what people get.
 */
export async function axe(page, what = "the page") {
  axeSource ??= fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  const loaded = await page.evaluate(`${axeSource}\n;typeof window.axe === "object"`);
  if (!loaded) throw new Error("axe-core did not load into the page");
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
    }));
  });
  if (result.length > 0) {
    // (No line starts with "at ": test reporters would take it for a stack frame.)
    const lines = result.map(
      (v) =>
        `- ${v.id} (${v.impact}): ${v.help}\n    ${v.helpUrl}\n` +
        v.nodes.map((n) => `    element ${n.target}:\n      ${(n.summary ?? "").replace(/\n/g, "\n      ")}`).join("\n"),
    );
    throw new Error(`axe found ${result.length} accessibility violation(s) on ${what} (${page.url()}):\n${lines.join("\n")}`);
  }
}
