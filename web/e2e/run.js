// Runs the browser end-to-end tests: `npm run test:e2e`.
//
// Checks the tools first (Chromium, the coform binary) and prints their
// versions once, then runs every e2e/*.test.js with node:test, one file
// at a time, and says where the screenshots are.
//
//   CHROMIUM=/path/to/chromium   another Chromium than `chromium` on PATH
//   COFORM_BIN=/path/to/coform   another server than <repo>/target/debug/coform
//   node e2e/run.js auth          only the files whose name contains "auth"

import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ARTIFACTS, coformBin, versions } from "./harness.js";

/** The whole run may take this long before it is stopped. */
const RUN_MS = 30 * 60_000;
/** One test may take this long. */
const TEST_MS = 180_000;

const dir = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".test.js"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => path.join(dir, f));

let v;
try {
  v = versions();
  console.log(`coform: ${coformBin()}`);
} catch (e) {
  console.error(`error: ${e.message}`);
  process.exit(1);
}
console.log(`browser: ${v.browser} (${v.exe})`);
console.log(`playwright-core: ${v.playwright}`);
if (files.length === 0) {
  console.error(`error: no test file matches ${only.join(", ")}`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  ["--test", "--test-concurrency=1", `--test-timeout=${TEST_MS}`, ...files],
  { stdio: "inherit", env: { ...process.env, E2E_VERSIONS_SHOWN: "1" } },
);
const timer = setTimeout(() => {
  console.error(`error: the browser tests did not finish within ${RUN_MS / 60_000} minutes; stopping them`);
  child.kill("SIGTERM");
}, RUN_MS);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => {
  clearTimeout(timer);
  if (fs.existsSync(ARTIFACTS)) console.log(`screenshots: ${ARTIFACTS}`);
  process.exit(code ?? (signal ? 1 : 0));
});
