// Designer benchmarks, recorded in BENCHMARKS.md (not a test: it prints
// figures and asserts nothing about time).
//
//   cd web && npm ci && npm run build
//   COFORM_BIN=../target/release/coform node bench/designer.mjs [--samples 200] [--runs 7]
//
// 1. The editor route's JavaScript, gzipped (every script the editor page
//    loads, from dist/).
// 2. A 500-component template: from navigation to the first editable
//    canvas (all 500 items drawn and the palette usable), in a fresh
//    browser context each run (nothing cached, no local copy).
// 3. While it is open, remote label edits: which canvas items render
//    again for each (it should be the edited one only), counted through
//    a hook the canvas calls when the page defines it.
// 4. A label typed in one browser until it shows on the other's canvas,
//    over loopback: p50 and p95.
//
// It starts its own coform server and Chromium, like the browser tests.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { Harness, signIn, WEB_ROOT } from "../e2e/harness.js";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SAMPLES = arg("samples", 200);
const RUNS = arg("runs", 7);
const COMPONENTS = 500;

const median = (xs) => quantile(xs, 0.5);
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}
const ms = (x) => `${x.toFixed(1)} ms`;

// ------------------------------------------------------------ 1. bundle

function bundleSize() {
  const dist = path.join(WEB_ROOT, "dist");
  const index = fs.readFileSync(path.join(dist, "index.html"), "utf8");
  const entry = [...index.matchAll(/src="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
  // The entry and every chunk it may import (the editor imports them all).
  const scripts = fs
    .readdirSync(path.join(dist, "assets"))
    .filter((f) => f.endsWith(".js"))
    .map((f) => `assets/${f}`);
  let raw = 0;
  let gz = 0;
  for (const f of scripts) {
    const bytes = fs.readFileSync(path.join(dist, f));
    raw += bytes.length;
    gz += zlib.gzipSync(bytes, { level: 9 }).length;
  }
  return { entry, scripts, raw, gz };
}

// ------------------------------------------------------------ a big form

/** 500 components: 20 sections of 20 fields each, and 80 more at the top level. */
function bigForm() {
  const types = ["text", "email", "number", "date", "textarea", "select", "radio", "checkbox", "phone", "paragraph"];
  const components = {};
  const key = (i) => `V${String(i + 1).padStart(3, "1")}`;
  let n = 0;
  const add = (id, type, parent, i) => {
    const c = { id, type, label: `${type} ${id}`, parent, index: key(i) };
    if (type === "select" || type === "radio" || type === "checkbox") {
      c.properties = { options: [{ value: "a", label: "A" }, { value: "b", label: "B" }] };
    }
    if (type === "paragraph") c.properties = { text: `Paragraph ${id}` };
    components[id] = c;
    n += 1;
  };
  for (let s = 0; s < 20; s++) {
    add(`s${s}`, "section", null, s);
    for (let f = 0; f < 20; f++) add(`s${s}f${f}`, types[(s + f) % types.length], `s${s}`, f);
  }
  for (let t = 0; n < COMPONENTS; t++) add(`t${t}`, types[t % types.length], null, 20 + t);
  return { meta: { name: "Big form" }, components };
}

// ------------------------------------------------------------ run

const h = await Harness.start();
try {
  const size = bundleSize();
  console.log(`editor route JavaScript: ${(size.gz / 1024).toFixed(1)} kB gzipped (${(size.raw / 1024).toFixed(1)} kB raw), ${size.scripts.length} files`);

  const owner = await h.user("Bench Owner");
  const other = await h.user("Bench Other");
  const ws = await h.workspace(owner, "Bench");
  await h.addMember(owner, ws.id, other, "editor");
  const tpl = await h.api(owner, "POST", "/api/templates", { workspaceId: ws.id, name: "Big form", content: bigForm() }, 201);
  const url = `/templates/${tpl.id}`;

  // 2. First editable canvas, cold, RUNS times.
  const firstCanvas = [];
  for (let run = 0; run < RUNS; run++) {
    const ctx = await h.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    await signIn(page, owner);
    await page.goto(url);
    const t = await page.waitForFunction(
      (count) => {
        const items = document.querySelectorAll("[data-component-id]").length;
        const palette = document.querySelector('section[aria-label="Components"] button.palette-item');
        return items === count && palette !== null && !palette.disabled ? performance.now() : null;
      },
      COMPONENTS,
      { polling: "raf", timeout: 60_000 },
    );
    firstCanvas.push(await t.jsonValue());
    await ctx.close();
  }
  console.log(`first editable canvas, ${COMPONENTS} components: median ${ms(median(firstCanvas))}, ` +
    `min ${ms(Math.min(...firstCanvas))}, max ${ms(Math.max(...firstCanvas))} (${RUNS} cold runs)`);

  // 3 and 4: two people on the big form.
  const ctxA = await h.newContext({ viewport: { width: 1400, height: 900 } });
  const ctxB = await h.newContext({ viewport: { width: 1400, height: 900 } });
  await ctxA.addInitScript(() => {
    window.__renders = [];
    window.__coformCanvasRender = (id) => window.__renders.push(id);
  });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  await signIn(a, owner);
  await signIn(b, other);
  await a.goto(url);
  await b.goto(url);
  for (const p of [a, b]) {
    await p.waitForFunction((count) => document.querySelectorAll("[data-component-id]").length === count, COMPONENTS, {
      timeout: 60_000,
    });
  }
  const target = "s7f3";
  await b.locator(`[data-component-id="${target}"]`).click();
  await b.getByLabel("Label", { exact: true }).waitFor();

  // A watches its canvas: when each label shows, and which items changed.
  await a.evaluate(() => {
    const canvas = document.querySelector('section[aria-label="Canvas"]');
    const w = (window.__bench = { seen: new Map(), touched: [] });
    new MutationObserver((records) => {
      const items = new Set();
      for (const r of records) {
        const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        const item = node?.closest(".canvas-item");
        const body = item?.querySelector(":scope > [data-component-id]");
        if (body && !body.closest(".pointer")) items.add(body.getAttribute("data-component-id"));
        if (r.type === "characterData" || r.type === "childList") {
          const text = node?.textContent ?? "";
          const m = /bench-(\d+)/.exec(text);
          if (m && !w.seen.has(m[1])) w.seen.set(m[1], Date.now());
        }
      }
      w.touched.push([...items]);
    }).observe(canvas, { subtree: true, childList: true, characterData: true, attributes: true });
  });

  const latencies = [];
  const touchedPerEdit = [];
  const rendersPerEdit = [];
  for (let i = 0; i < SAMPLES + 10; i++) {
    await a.evaluate(() => {
      window.__bench.touched = [];
      window.__renders = [];
    });
    const sent = await b.evaluate((value) => {
      const el = document.getElementById("prop-label");
      const t = Date.now();
      el.value = value;
      el.dispatchEvent(new Event("input", { bubbles: true }));
      return t;
    }, `Field bench-${i}`);
    const seen = await (
      await a.waitForFunction((n) => window.__bench.seen.get(String(n)) ?? null, i, { polling: "raf", timeout: 10_000 })
    ).jsonValue();
    if (i >= 10) {
      latencies.push(seen - sent);
      const { touched, renders } = await a.evaluate(() => ({ touched: window.__bench.touched, renders: window.__renders }));
      touchedPerEdit.push([...new Set(touched.flat())]);
      rendersPerEdit.push([...new Set(renders)]);
    }
  }
  const onlyTarget = touchedPerEdit.filter((t) => t.length === 1 && t[0] === target).length;
  console.log(`remote label edit: p50 ${ms(quantile(latencies, 0.5))}, p95 ${ms(quantile(latencies, 0.95))}, ` +
    `max ${ms(Math.max(...latencies))} (${latencies.length} samples after 10 warm-up)`);
  const onlyRendered = rendersPerEdit.filter((t) => t.length === 1 && t[0] === target).length;
  console.log(`canvas items rendered again per remote edit: only the edited one in ${onlyRendered} of ${rendersPerEdit.length}` +
    (onlyRendered === rendersPerEdit.length ? "" : `; e.g. ${JSON.stringify(rendersPerEdit.find((t) => t.length !== 1 || t[0] !== target))}`));
  console.log(`canvas items whose DOM changed per remote edit: only the edited one in ${onlyTarget} of ${touchedPerEdit.length}` +
    (onlyTarget === touchedPerEdit.length ? "" : `; e.g. ${JSON.stringify(touchedPerEdit.find((t) => t.length !== 1 || t[0] !== target))}`));
} finally {
  await h.close();
}
