#!/usr/bin/env bash
# make demo: start driftwatchd on its embedded default (one SQLite file),
# register a model, stream a synthetic workload in which only the
# platform=android slice drifts, print the drift report and the slice
# ranking (android on top), then stop the server cleanly. Loopback only;
# every wait is bounded.
set -euo pipefail
BUILD_DIR=${1:-build}
DRIFTWATCHD="$BUILD_DIR/service/driftwatchd"
DRIFTCTL="$BUILD_DIR/cli/driftctl"
OUT=out/demo
rm -rf "$OUT/live"
mkdir -p "$OUT/live"
PORTS="$OUT/live/ports"

"$DRIFTWATCHD" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --data-dir "$OUT/live/data" --port-file "$PORTS" --log-format text \
  >"$OUT/live/driftwatchd.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 100); do [ -s "$PORTS" ] && break; sleep 0.1; done
[ -s "$PORTS" ] || { echo "driftwatchd did not start:"; cat "$OUT/live/driftwatchd.log"; exit 1; }
GRPC_PORT=$(sed -E 's/.*grpc=([0-9]+).*/\1/' "$PORTS")
METRICS_PORT=$(sed -E 's/.*metrics=([0-9]+).*/\1/' "$PORTS")
SERVER="127.0.0.1:$GRPC_PORT"
echo "== driftwatchd (pid $PID) serving gRPC on $SERVER, /metrics on 127.0.0.1:$METRICS_PORT, data in $OUT/live/data"

NOW_MS=$(($(date +%s) * 1000))
/usr/bin/python3 scripts/gen_demo_stream.py "$OUT/live" "$NOW_MS"

echo
echo "== driftctl register: loan-default@v1 (3 numeric, 1 categorical, binary score, slice keys platform, app_version)"
"$DRIFTCTL" register --server "$SERVER" --schema "$OUT/live/schema.json"

echo
echo "== driftctl push: 60k baseline events (50-30 min ago) and 60k current events (last 20 min; android drifts)"
"$DRIFTCTL" push "$OUT/live/events.csv" --server "$SERVER" --model loan-default --batch 2000

echo
echo "== driftctl push again: nothing is counted twice (every event is a duplicate, its bucket open or closed)"
"$DRIFTCTL" push "$OUT/live/events.csv" --server "$SERVER" --model loan-default --batch 2000

echo
echo "== driftctl baseline create: pinned to the first period"
"$DRIFTCTL" baseline create --server "$SERVER" --model loan-default --name default \
  --range "$((NOW_MS - 50 * 60000))..$((NOW_MS - 30 * 60000))"

echo
echo "== driftctl report --slice platform=android --window 20m"
"$DRIFTCTL" report --server "$SERVER" --model loan-default --slice platform=android --window 20m

echo
echo "== driftctl report --slice platform=ios --window 20m"
"$DRIFTCTL" report --server "$SERVER" --model loan-default --slice platform=ios --window 20m

echo
echo "== driftctl rank: slices by PSI over the last 20 minutes"
"$DRIFTCTL" rank --server "$SERVER" --model loan-default --window 20m --top 5

echo
echo "== /metrics (a few series)"
/usr/bin/python3 - "$METRICS_PORT" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(("driftwatch_ingest_events_total", "driftwatch_open_buckets", "driftwatch_flushes_total")):
        print(line)
PY

echo
echo "== stopping driftwatchd (SIGTERM: flush and exit)"
kill -TERM "$PID"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then echo "driftwatchd did not stop"; exit 1; fi
wait "$PID" && echo "driftwatchd exited cleanly" || { echo "driftwatchd exited with $?"; exit 1; }
trap - EXIT

echo
echo "(The offline statistics demo: scripts/demo_offline.sh $BUILD_DIR)"
