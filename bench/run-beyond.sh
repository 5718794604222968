#!/usr/bin/env bash
# The runs behind BENCHMARKS.md's sections on the schema check, presence at
# cursor rate and the replica hop: REPEAT runs each (default 3), medians
# reported by the generator. About 25 minutes on 2 cores. Needs Rust and
# Node.js 20+ (Hocuspocus), redis-server for the replica runs, and
# SecantusDB for the heal run (`python3 -m venv .venv && .venv/bin/pip
# install secantusdb==0.7.0b3`, or COFORM_SECANTUSD naming its binary).
#
#   bench/run-beyond.sh                     # everything
#   ONLY="guard presence" bench/run-beyond.sh
#   OUT=results.jsonl bench/run-beyond.sh
#
# Every run's JSON line is appended to $OUT (one line per step of a stepped
# run); `coform-bench report $OUT` prints them as tables.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT="${REPEAT:-3}"
ONLY="${ONLY:-guard presence documents replicas heal}"
OUT="${OUT:-bench-beyond-$(date +%Y%m%d-%H%M%S).jsonl}"

# shellcheck source=bench/prepare.sh
. bench/prepare.sh
wants() { [[ " $ONLY " == *" $1 "* ]]; }

if wants guard; then
  # Form edits (every edit changes a component's label, so the schema
  # check runs on each), with the check on and off; no store, so that the
  # check's share of the server's work is as large as it can be. First
  # the cost: single runs with the check on and off in alternation, 5
  # pairs per step, so that a drift of the machine falls on both alike.
  for clients in 10 20 40; do
    for pair in 1 2 3 4 5; do
      for check in on off; do
        echo "==> pair $pair, check $check" >&2
        "$BENCH" fanout --server coform --docs 10 --clients "$clients" --interval-ms 100 \
          --duration 5 --edits component --server-arg=--store --server-arg=memory \
          --server-arg=--schema-check --server-arg="$check" >>"$OUT" \
          || failures=$((failures + 1))
      done
    done
  done
  # Then the knee with the check on and off.
  for check in on off; do
    run sustained --server coform --docs 10 --interval-ms 100 --clients 10,20,40,60,80 \
      --edits component --p99-limit-ms 50 --duration 5 --drain-timeout 20 \
      --server-arg=--store --server-arg=memory --server-arg=--schema-check --server-arg="$check"
  done
fi

if wants presence; then
  # 100 documents × 10 designers × 30 moves/s: Coform (with and without
  # its presence window) and Hocuspocus.
  run presence --server coform --docs 100 --clients 10 --hz 30 --duration 5
  run presence --server coform --docs 100 --clients 10 --hz 30 --duration 5 \
    --server-arg=--presence-window --server-arg=0ms
  run presence --server coform --docs 100 --clients 10 --hz 30 --duration 5 \
    --server-arg=--presence-window --server-arg=20ms
  run presence --server hocuspocus --docs 100 --clients 10 --hz 30 --duration 5
  # Document updates in the same shape (100 documents × 10 clients, 30
  # edits/s each), for CPU per delivery of presence against updates'.
  run fanout --server coform --docs 100 --clients 10 --interval-ms 33.333 --duration 5 \
    --drain-timeout 20 --server-arg=--store --server-arg=memory
  run fanout --server coform --docs 100 --clients 10 --interval-ms 33.333 --duration 5 \
    --drain-timeout 20
  # What the window costs where presence is light: 20 × 10 × 30 Hz without it.
  run presence --server coform --docs 20 --clients 10 --hz 30 --duration 5 \
    --server-arg=--presence-window --server-arg=0ms
  # Where each exceeds p99 50 ms: 20 documents at 30 Hz, more designers.
  run presence --server coform --docs 20 --clients 10,20,30,40,60,80 --hz 30 --duration 5
  run presence --server hocuspocus --docs 20 --clients 10,20,30,40,60,80 --hz 30 --duration 5
fi

if wants documents; then
  # The document step the relay keeps at p99 ≤ 25 ms with full
  # durability: 10 documents × 100 clients, an edit per client per 100 ms.
  run fanout --server coform --docs 10 --clients 100 --interval-ms 100 --duration 5 \
    --drain-timeout 20
  # The same with form edits (the schema check on every edit), and with
  # the presence window and the schema check both off.
  run fanout --server coform --docs 10 --clients 100 --interval-ms 100 --duration 5 \
    --drain-timeout 20 --edits component
  run fanout --server coform --docs 10 --clients 100 --interval-ms 100 --duration 5 \
    --drain-timeout 20 --server-arg=--presence-window --server-arg=0ms \
    --server-arg=--schema-check --server-arg=off
fi

if wants replicas; then
  need redis-server "Install Redis (apt install redis-server)."
  # 20 documents × 20 clients, an edit per client per 100 ms (76,000
  # deliveries/s): one replica (no Redis) as the baseline, then two and
  # three replicas with document affinity and with every document
  # spanning every replica. All processes share the server core.
  run replicas --replicas 1 --docs 20 --clients 20 --interval-ms 100 --duration 5
  # One replica at half that load: what splitting the load costs by itself.
  run replicas --replicas 1 --docs 10 --clients 20 --interval-ms 100 --duration 5
  for n in 2 3; do
    for spread in affinity span; do
      run replicas --replicas "$n" --spread "$spread" --docs 20 --clients 20 \
        --interval-ms 100 --duration 5
    done
  done
fi

if wants heal; then
  need redis-server "Install Redis (apt install redis-server)."
  # A 20 MB document on replicas sharing SecantusDB: healing one lost
  # publish by asking its replica, against reloading from the store.
  # Three rounds on one document (building it takes most of the run).
  "$BENCH" heal --size-mb 20 --rounds 3 >>"$OUT" || failures=$((failures + 1))
fi
echo "==> done: $failures configuration(s) failed their checks; results in $OUT" >&2
"$BENCH" report "$OUT" >&2 || true
