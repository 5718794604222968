#!/usr/bin/env bash
# Runs every benchmark scenario against Coform, Hocuspocus, the y-websocket
# server and the null relay, REPEAT runs each (default 3), then prints
# side-by-side tables of the medians. Each server gets a fresh process per
# run, pinned to core 0; the generator runs on core 1. Takes up to about 30
# minutes on 2 cores (about half of it in the sustained steps). Needs Rust
# and Node.js 20+.
#
#   bench/run-side-by-side.sh                 # everything, 3 runs each
#   REPEAT=1 bench/run-side-by-side.sh        # a quicker, noisier pass
#   SERVERS="coform null" bench/run-side-by-side.sh
#   DURATION=3 REPEAT=1 bench/run-side-by-side.sh   # a smoke test of the script
#   OUT=results.jsonl bench/run-side-by-side.sh
#   SUSTAINED_DURATION=10 bench/run-side-by-side.sh   # longer sustained steps
#
# Every run's JSON line is appended to $OUT; `coform-bench report $OUT`
# prints the tables again.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT="${REPEAT:-3}"
DURATION="${DURATION:-10}"
# Seconds per sustained step: 5, or DURATION when that is shorter.
SUSTAINED_DURATION="${SUSTAINED_DURATION:-$(awk -v d="$DURATION" 'BEGIN { print (d < 5 ? d : 5) }')}"
SERVERS="${SERVERS:-coform hocuspocus ywebsocket null}"
OUT="${OUT:-bench-results-$(date +%Y%m%d-%H%M%S).jsonl}"
# Clients per document of the sustained steps (10 documents, one edit per
# client every 100 ms) until latency p99 exceeds 50 ms or a check fails.
SUSTAINED=(sustained --docs 10 --interval-ms 100 --clients 5,10,15,20,30,40,50,60,70,80,100
  --p99-limit-ms 50 --duration "$SUSTAINED_DURATION" --drain-timeout 20)

# shellcheck source=bench/prepare.sh
. bench/prepare.sh

started=$(date +%s)
for server in $SERVERS; do
  # 50 documents × 10 clients, one edit per client every 100 ms.
  run fanout --server "$server" --docs 50 --clients 10 --interval-ms 100 --duration "$DURATION"
  # 10 documents × 50 clients: the same edit rate, five times the fan-out.
  run fanout --server "$server" --docs 10 --clients 50 --interval-ms 100 --duration "$DURATION" \
    --drain-timeout 20
  # The sustained-load knee.
  run "${SUSTAINED[@]}" --server "$server"
  if [ "$server" = coform ]; then
    # The same steps with no store, as the other three run: the relay's
    # own cost (the store's cost is what durability-cost shows).
    run "${SUSTAINED[@]}" --server coform --server-arg=--store --server-arg=memory
  fi
  run connections --server "$server" --connections 10000 --docs 1000
  if [ "$server" != null ]; then
    run coldload --server "$server"
  fi
done
case " $SERVERS " in
  *" coform "*)
    run durability-cost --docs 50 --clients 10 --interval-ms 100 --duration "$DURATION"
    # Two replicas joined by Redis: what the hop adds.
    if command -v redis-server >/dev/null 2>&1; then
      run replicas --docs 20 --clients 10 --interval-ms 100 --duration "$DURATION"
    else
      echo "==> skipping replicas: redis-server is not installed (apt-get install redis-server)" >&2
    fi
    ;;
esac

"$BENCH" report "$OUT"
echo
echo "results: $OUT ($(( $(date +%s) - started )) s, $failures configuration(s) not valid or not passing)"
