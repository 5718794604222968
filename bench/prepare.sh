# Sourced by the benchmark scripts (bash): checks the tools, builds the
# server and the generator (release), installs the Node servers, and
# defines `need` and `run`. Expects REPEAT and OUT to be set; `run`
# appends each configuration's JSON line to $OUT and counts in `failures`
# the configurations that did not pass their checks.

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required. $2" >&2; exit 1; }
}
need cargo "Install Rust (1.87 or newer) with rustup."
need node "Install Node.js 20 or newer."
need npm "Install npm (it comes with Node.js)."

echo "==> building (release)"
cargo build --release -p coform -p coform-bench
echo "==> installing the Node servers"
(cd bench/node && npm ci --no-audit --no-fund --loglevel=error)

BENCH=target/release/coform-bench
failures=0
run() {
  echo "==> coform-bench $*" >&2
  if ! "$BENCH" "$@" --repeat "$REPEAT" >>"$OUT"; then
    echo "    (did not pass its checks or was invalid: see $OUT)" >&2
    failures=$((failures + 1))
  fi
}
