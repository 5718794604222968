#!/bin/sh
# Rebuild the designer into a temporary folder and fail if the result
# differs from the committed web/dist, or if the output breaks the rules
# the server's Content-Security-Policy relies on.
#
# Usage: sh web/scripts/check-dist.sh   (from anywhere; needs Node and npm)
set -eu

web=$(cd "$(dirname "$0")/.." && pwd)
cd "$web"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coform-web-dist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
  echo "check-dist: FAILED: $*" >&2
  exit 1
}

if [ ! -f dist/index.html ]; then
  fail "web/dist/index.html is missing; run 'npm ci && npm run build' in web/ and commit web/dist"
fi

echo "check-dist: installing the locked dependencies (npm ci)"
npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm-ci.log" 2>&1 || {
  cat "$tmp/npm-ci.log" >&2
  fail "npm ci failed"
}

echo "check-dist: building into a temporary folder"
npx --no-install tsc --noEmit || fail "type errors"
npx --no-install vite build --outDir "$tmp/dist" --emptyOutDir --logLevel warn ||
  fail "vite build failed"

# 1. The committed bundle is what the sources build to, byte for byte.
if ! diff -r "$tmp/dist" dist >"$tmp/diff.txt" 2>&1; then
  cat "$tmp/diff.txt" >&2
  fail "web/dist differs from a fresh build of web/src. Run 'npm run build' in web/ and commit web/dist (the server embeds it at compile time)."
fi

# 2. What is in the working tree is also what is committed.
if git -C "$web" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git -C "$web" diff --quiet HEAD -- dist ||
    [ -n "$(git -C "$web" ls-files --others --exclude-standard -- dist)" ]; then
    git -C "$web" status --short -- dist >&2
    fail "web/dist has uncommitted changes; commit the rebuilt web/dist"
  fi
fi

# 3. Nothing inline for the CSP to block, and no machine paths.
if grep -Ei '<script[^>]*>[^<[:space:]]' dist/index.html >/dev/null ||
  grep -Ei '<script' dist/index.html | grep -Eiv 'src=' >/dev/null; then
  fail "dist/index.html has an inline <script>; the CSP (script-src 'self') would block it"
fi
if grep -Ei '<style|[[:space:]]style=' dist/index.html >/dev/null; then
  fail "dist/index.html has an inline style; the CSP (style-src 'self') would block it"
fi
if grep -rF "$web" dist >/dev/null || grep -rF "$tmp" "$tmp/dist" >/dev/null; then
  fail "the build output contains an absolute path of this machine"
fi
if grep -rlE 'data:(text/javascript|application/javascript|text/css)' dist >/dev/null; then
  fail "the build output inlines a script or style as a data: URL"
fi

echo "check-dist: OK: web/dist matches a fresh build ($(find dist -type f | wc -l | tr -d ' ') files)"
