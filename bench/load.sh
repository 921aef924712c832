#!/usr/bin/env bash
# One measured end-to-end scenario against a fresh driftwatchd on
# loopback. Builds nothing: pass the build dir (default "build").
#
#   bench/load.sh [BUILD_DIR]
#   DURATION=60     seconds per phase (row, then columnar)
#   STREAMS=2 BATCH=1000 MESSAGES=200 REPORT_QPS=20   loadgen settings
#   REPORT_SLICES=10   reports pick from the population + 9 slices (0: every slice value)
#   PERF=1          also `perf record` driftwatchd for 10 s in each phase
#   PHASES="row columnar backfill labels"   which phases run
#   LABEL_EVENTS=1000000   labels phase: predictions (then labels) per stream
#
# Phase 1 sends row batches, phase 2 columnar batches with a pinned baseline
# after a warm-up and GetDriftReport at REPORT_QPS over the last 24 h. Each
# phase uses its own model, so its synthetic event clock starts fresh.
# Phase 3 (backfill) sends a few seconds of current traffic 10 minutes old
# (its buckets close at the next flush), then row batches of history from
# 6 h back, every one of them into a closed bucket: the merge-a-delta path,
# at full speed.
# Phase 4 (labels) sends exactly LABEL_EVENTS row predictions per stream
# to model load-labels with a fixed run id, then (driftwatch_loadgen
# --labels) a label for each of those event ids over StreamLabels: labels/s
# and the acks by result, every label expected to join.
# driftwatchd's RSS is sampled every 5 s. Everything is bounded in time.
set -euo pipefail

BUILD_DIR=${1:-build}
DURATION=${DURATION:-60}
STREAMS=${STREAMS:-2}
BATCH=${BATCH:-1000}
MESSAGES=${MESSAGES:-200}
REPORT_QPS=${REPORT_QPS:-20}
REPORT_SLICES=${REPORT_SLICES:-10}
PERF=${PERF:-0}
PHASES=${PHASES:-row columnar backfill labels}
LABEL_EVENTS=${LABEL_EVENTS:-1000000}
SERVER="$BUILD_DIR/service/driftwatchd"
LOADGEN="$BUILD_DIR/bench/driftwatch_loadgen"

for bin in "$SERVER" "$LOADGEN"; do
  [[ -x "$bin" ]] || { echo "load.sh: $bin not built (cmake --build $BUILD_DIR)" >&2; exit 2; }
done

WORK=$(mktemp -d -t driftwatch-load.XXXXXX)
DATA_DIR="$WORK/data"
PORT_FILE="$WORK/ports"
SERVER_LOG="$WORK/driftwatchd.log"
RESULTS="$WORK/results.jsonl"
mkdir -p "$DATA_DIR"
SERVER_PID=""
SAMPLER_PID=""
PERF_PID=""

cleanup() {
  if [[ -n "$SAMPLER_PID" ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== build: $(grep CMAKE_BUILD_TYPE: "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
echo "== work dir: $WORK"
echo "== settings: DURATION=$DURATION STREAMS=$STREAMS BATCH=$BATCH MESSAGES=$MESSAGES REPORT_QPS=$REPORT_QPS REPORT_SLICES=$REPORT_SLICES LABEL_EVENTS=$LABEL_EVENTS"

"$SERVER" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$DATA_DIR" \
  --port-file "$PORT_FILE" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 300); do  # 30 s
  [[ -s "$PORT_FILE" ]] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "load.sh: driftwatchd exited during startup:" >&2
    tail -20 "$SERVER_LOG" >&2
    exit 1
  fi
  sleep 0.1
done
[[ -s "$PORT_FILE" ]] || { echo "load.sh: no port file after 30 s" >&2; exit 1; }
sleep 0.1  # the file is written once; let the writer finish the line
GRPC_PORT=$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$PORT_FILE")
METRICS_PORT=$(sed -n 's/.*metrics=\([0-9]*\).*/\1/p' "$PORT_FILE")
[[ -n "$GRPC_PORT" ]] || { echo "load.sh: cannot read the port file: $(cat "$PORT_FILE")" >&2; exit 1; }
TARGET="127.0.0.1:$GRPC_PORT"
echo "== driftwatchd pid $SERVER_PID, gRPC $TARGET, metrics 127.0.0.1:$METRICS_PORT, RSS $(rss_kb "$SERVER_PID") kB"

START_S=$(date +%s)
(
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "   rss t=$(( $(date +%s) - START_S ))s VmRSS=$(rss_kb "$SERVER_PID") kB"
    sleep 5
  done
) &
SAMPLER_PID=$!

status=0
# run_phase NAME MODE EXTRA_ARGS...
run_phase() {
  local name=$1 mode=$2
  shift 2
  echo "== phase $name: $mode, ${DURATION}s, batch $BATCH, $STREAMS streams"
  PERF_PID=""
  if [[ "$PERF" == 1 ]] && command -v perf >/dev/null; then
    ( sleep $(( DURATION / 2 > 5 ? DURATION / 2 - 5 : 1 ))
      timeout 30 perf record -g -p "$SERVER_PID" -o "$WORK/perf-$name.data" -- sleep 10 \
        >/dev/null 2>&1 || true ) &
    PERF_PID=$!
  fi
  local out rc=0
  out=$(timeout $(( DURATION + 180 )) "$LOADGEN" --target "$TARGET" --model "load-$name" \
    --version v1 --register --mode "$mode" --batch "$BATCH" --streams "$STREAMS" \
    --messages-per-stream "$MESSAGES" --duration "$DURATION" --json "$@") || rc=$?
  if [[ $rc != 0 ]]; then
    echo "   loadgen FAILED (exit $rc)"
    status=1
  fi
  echo "$out" | tee -a "$RESULTS"
  wait_perf "$name"
}

wait_perf() {
  [[ -n "$PERF_PID" ]] || return 0
  wait "$PERF_PID" 2>/dev/null || true
  if [[ -s "$WORK/perf-$1.data" ]]; then
    echo "   perf top symbols, phase $1:"
    timeout 60 perf report -i "$WORK/perf-$1.data" --no-children --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -15 | sed 's/^/   /' || true
  fi
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
for phase in $PHASES; do
  case $phase in
    row) run_phase row row ;;
    columnar)
      run_phase columnar columnar --baseline --baseline-after $(( DURATION / 4 > 5 ? DURATION / 4 : 5 )) \
        --report-qps "$REPORT_QPS" --report-slices "$REPORT_SLICES" --report-window 24h ;;
    backfill)
      echo "== phase backfill: current traffic 10 min old, then a day of history"
      timeout 60 "$LOADGEN" --target "$TARGET" --model load-backfill --version v1 --register \
        --mode row --batch "$BATCH" --streams 1 --messages-per-stream 20 --duration 2 \
        --event-time-start $(( $(now_ms) - 600000 )) --json >/dev/null || status=1
      sleep 3  # a flush closes those buckets
      # History from 6 h back at the live phases' density (20k events per
      # simulated second): minutes of history per second of wall time.
      run_phase backfill row --event-time-start $(( $(now_ms) - 6 * 3600000 ))
      curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
        grep -E '^driftwatch_ingest_(events_total|backfill|dedup)' | sed 's/^/   /' || true ;;
    labels)
      # The same --run-id, --streams, --batch and --events-per-stream make
      # the label run's ids those of the prediction run; --duration only
      # bounds the time, the counts end both runs.
      run_id="lbl$(date +%s)"
      bound=$(( DURATION > 60 ? DURATION : 60 ))
      id_args=(--target "$TARGET" --model load-labels --version v1 --run-id "$run_id"
               --batch "$BATCH" --streams "$STREAMS" --messages-per-stream "$MESSAGES"
               --events-per-stream "$LABEL_EVENTS" --duration "$bound" --json)
      echo "== phase labels: $LABEL_EVENTS row predictions per stream, then a label for each"
      out="" rc=0
      out=$(timeout $(( bound + 180 )) "$LOADGEN" "${id_args[@]}" --register --mode row) || rc=$?
      echo "$out" | tee -a "$RESULTS"
      if [[ $rc != 0 ]]; then echo "   loadgen FAILED (exit $rc)"; status=1; fi
      PERF_PID=""
      if [[ "$PERF" == 1 ]] && command -v perf >/dev/null; then
        ( timeout 30 perf record -g -p "$SERVER_PID" -o "$WORK/perf-labels.data" -- sleep 10 \
            >/dev/null 2>&1 || true ) &
        PERF_PID=$!
      fi
      rc=0
      out=$(timeout $(( bound + 180 )) "$LOADGEN" "${id_args[@]}" --labels) || rc=$?
      echo "$out" | tee -a "$RESULTS"
      if [[ $rc != 0 ]]; then echo "   loadgen --labels FAILED (exit $rc)"; status=1; fi
      if [[ "$out" == *'"labels_sent"'* ]] &&
         ! grep -q "\"joined\":$(( LABEL_EVENTS * STREAMS )),\"pending\":0" <<<"$out"; then
        echo "   not every label joined (the prediction run may have hit --duration $bound s)"
        status=1
      fi
      wait_perf labels ;;
    *) echo "load.sh: unknown phase $phase" >&2; exit 2 ;;
  esac
done

echo "== stopping driftwatchd (SIGTERM), RSS $(rss_kb "$SERVER_PID") kB"
kill -TERM "$SERVER_PID"
for _ in $(seq 1 300); do  # 30 s
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "load.sh: driftwatchd did not exit 30 s after SIGTERM; killing it" >&2
  kill -KILL "$SERVER_PID"
  status=1
fi
server_rc=0
wait "$SERVER_PID" || server_rc=$?
SERVER_PID=""
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
echo "== driftwatchd exit code $server_rc; data dir $(du -sh "$DATA_DIR" | cut -f1)"
[[ $server_rc == 0 ]] || status=1

echo "== summary"
if command -v python3 >/dev/null; then
  python3 - "$RESULTS" <<'EOF'
import json, sys
print(f"{'mode':9} {'events/s':>10} {'MB/s':>7} {'B/ev':>6} {'cli ns/ev':>9} "
      f"{'dup':>4} {'rej':>4} {'rep p50':>8} {'p99':>7} {'max ms':>7} ok")
labels = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith('{'):
        continue
    r = json.loads(line)
    if r['mode'] == 'labels':
        labels.append(r)
        continue
    rep = r['reports']
    lat = (f"{rep['p50_ms']:8.2f} {rep['p99_ms']:7.2f} {rep['max_ms']:7.2f}"
           if rep['ok'] else f"{'-':>8} {'-':>7} {'-':>7}")
    print(f"{r['mode']:9} {r['events_per_s']:10.0f} {r['wire_mb_per_s']:7.1f} "
          f"{r['wire_bytes_per_event']:6.1f} {r['client_cpu_ns_per_event']:9.1f} "
          f"{r['duplicates']:4d} {r['rejected']:4d} {lat} {r['ok']}")
if labels:
    print(f"\n{'labels':9} {'labels/s':>10} {'MB/s':>7} {'B/lb':>6} {'cli ns/lb':>9} "
          f"{'joined':>9} {'pending':>8} {'dup':>5} {'confl':>5} {'orphan':>6} {'rej':>4} ok")
    for r in labels:
        print(f"{'labels':9} {r['labels_per_s']:10.0f} {r['wire_mb_per_s']:7.1f} "
              f"{r['wire_bytes_per_label']:6.1f} {r['client_cpu_ns_per_label']:9.1f} "
              f"{r['joined']:9d} {r['pending']:8d} {r['duplicates']:5d} {r['conflicting']:5d} "
              f"{r['orphan']:6d} {r['rejected']:4d} {r['ok']}")
EOF
else
  cat "$RESULTS"
fi
echo "== logs and results in $WORK"
exit $status
