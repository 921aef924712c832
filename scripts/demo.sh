#!/usr/bin/env bash
# make demo: start driftwatchd on its embedded default (one SQLite file),
# register a model, stream a synthetic workload in which only the
# platform=android slice drifts, print the drift report and the slice
# ranking (android on top); then send its delayed labels (baseline first,
# the current period in two waves) and print the quality reports: the
# CBPE estimate before any current label, then the realised AUC / ECE as
# coverage rises (android worse). The default alerting rules
# (deploy/rules.yaml, their `for` waits shortened for the demo) run all the
# while: the alerts are printed as they fire (rule, slice, feature, value,
# runbook), then the traffic returns to the baseline and the drift alerts
# resolve. Then stop the server cleanly. Loopback only; every wait is
# bounded.
set -euo pipefail
BUILD_DIR=${1:-build}
DRIFTWATCHD="$BUILD_DIR/service/driftwatchd"
DRIFTCTL="$BUILD_DIR/cli/driftctl"
OUT=out/demo
rm -rf "$OUT/live"
mkdir -p "$OUT/live"
PORTS="$OUT/live/ports"

# The default rules as shipped, but firing at once: a demo cannot wait the
# 15-60 minutes of their `for` (processing time).
sed -E 's/^( +)(for|keep_firing_for): .*/\1\2: 0s/' deploy/rules.yaml >"$OUT/live/rules.yaml"
# A local webhook receiver: on-call's pager for the demo. Notifications
# group by model and slice, so android's alerts arrive as one.
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
/usr/bin/python3 scripts/demo_webhook_receiver.py "$OUT/live/hook.port" "$OUT/live/hook.log" "$SECRET" &
HOOK_PID=$!
for _ in $(seq 1 50); do [ -s "$OUT/live/hook.port" ] && break; sleep 0.1; done
HOOK_PORT=$(cat "$OUT/live/hook.port")
: >"$OUT/live/hook.log"
cat >"$OUT/live/config.yaml" <<YAML
notifications:
  runbook_base_url: file://$PWD
  receivers:
    - {name: oncall, type: webhook, url: 'http://127.0.0.1:$HOOK_PORT/hook', secret: $SECRET}
  route:
    receiver: oncall
    group_by: [model, slice]
    group_wait: 10s
    group_interval: 20s
YAML
# A 2 s evaluation, over the last 3 minutes of event time (the drift
# report below reads 20 minutes).
"$DRIFTWATCHD" --config "$OUT/live/config.yaml" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --data-dir "$OUT/live/data" --port-file "$PORTS" --log-format text \
  --rules-file "$OUT/live/rules.yaml" --evaluator-interval 2s --evaluator-window 3m \
  >"$OUT/live/driftwatchd.log" 2>&1 &
PID=$!
WATCH_PID=
cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
  kill "$HOOK_PID" 2>/dev/null
  kill "$PID" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 100); do [ -s "$PORTS" ] && break; sleep 0.1; done
[ -s "$PORTS" ] || { echo "driftwatchd did not start:"; cat "$OUT/live/driftwatchd.log"; exit 1; }
GRPC_PORT=$(sed -E 's/.*grpc=([0-9]+).*/\1/' "$PORTS")
METRICS_PORT=$(sed -E 's/.*metrics=([0-9]+).*/\1/' "$PORTS")
SERVER="127.0.0.1:$GRPC_PORT"
echo "== driftwatchd (pid $PID) serving gRPC on $SERVER, /metrics on 127.0.0.1:$METRICS_PORT, data in $OUT/live/data"

# Every alert state change, as driftctl alerts --watch prints it.
"$DRIFTCTL" alerts --watch --skip-current --server "$SERVER" >"$OUT/live/alerts.log" 2>&1 &
WATCH_PID=$!
# Waits (at most $2 s) until the watch log has a line matching $1.
wait_alerts() {
  for _ in $(seq 1 $(($2 * 10))); do grep -qE "$1" "$OUT/live/alerts.log" && return 0; sleep 0.1; done
  echo "(no alert matching '$1' within $2 s)"
}
# The watch log's lines matching $1 not yet printed, as a table.
PRINTED=0
print_alerts() {
  sleep 3  # two more evaluations: the other rules' alerts of the same step
  echo "  state  rule  model  slice  feature  severity  since  value  runbook"
  tail -n +$((PRINTED + 1)) "$OUT/live/alerts.log" | grep -E "$1" | sed 's/^/  /' || true
  PRINTED=$(wc -l <"$OUT/live/alerts.log")
}

NOW_MS=$(($(date +%s) * 1000))
/usr/bin/python3 scripts/gen_demo_stream.py "$OUT/live" "$NOW_MS"
# BASELINE_START_MS, BASELINE_END_MS, CURRENT_START_MS, label counts
. "$OUT/live/layout.env"
ago() { echo "$(((NOW_MS - $1 + 30000) / 60000)) min ago"; }

echo
echo "== driftctl register: loan-default@v1 (3 numeric, 1 categorical, binary score, binary labels, slice keys platform, app_version)"
"$DRIFTCTL" register --server "$SERVER" --schema "$OUT/live/schema.json"

echo
echo "== driftctl push: 60k baseline events ($(ago "$BASELINE_START_MS") .. $(ago "$BASELINE_END_MS"), in the hour before the current one: quality is kept per hour) and 60k current events (the 20 min ending 5 min ago; android drifts)"
"$DRIFTCTL" push "$OUT/live/events.csv" --server "$SERVER" --model loan-default --batch 2000

echo
echo "== driftctl push again (a client's retry of the first 5000 events): nothing is counted twice (every event is a duplicate, its bucket closed)"
head -n 5001 "$OUT/live/events.csv" >"$OUT/live/events_retry.csv"
"$DRIFTCTL" push "$OUT/live/events_retry.csv" --server "$SERVER" --model loan-default --batch 2000

echo
echo "== driftctl labels push: the baseline period's $BASELINE_LABELS labels (delay lognormal, median 2 min; they follow the scores, so the baseline calibrates the estimate)"
"$DRIFTCTL" labels push "$OUT/live/labels_baseline.csv" --server "$SERVER" --model loan-default --batch 5000

echo
echo "== driftctl baseline create: pinned to the first period"
"$DRIFTCTL" baseline create --server "$SERVER" --model loan-default --name default \
  --range "$BASELINE_START_MS..$BASELINE_END_MS"

echo
echo "== alerts firing (the default rules; driftctl alerts --watch): android's drift, its score drift, and its estimated AUC drop before any current label, each with its runbook; beside them app_version=8.0's null-rate spike (kind data_quality: its client stopped sending tenure_months) with its runbook; ios and web raise no drift"
wait_alerts '^firing' 30
print_alerts '^firing'

echo
echo "== driftctl report --slice platform=android --window 20m"
"$DRIFTCTL" report --server "$SERVER" --model loan-default --slice platform=android --window 20m

echo
echo "== driftctl report --slice platform=ios --window 20m"
"$DRIFTCTL" report --server "$SERVER" --model loan-default --slice platform=ios --window 20m

echo
echo "== driftctl rank --metric null_rate: the release whose field went null is named first (a logging failure: one app version, not one platform)"
"$DRIFTCTL" rank --server "$SERVER" --model loan-default --metric null_rate --window 20m --top 4

echo
echo "== driftctl quality-data --slice app_version=8.0 --window 20m: tenure_months null in every event of the release, its other fields and the score healthy"
"$DRIFTCTL" quality-data --server "$SERVER" --model loan-default --slice app_version=8.0 --window 20m

echo
echo "== driftctl rank: slices by PSI over the last 20 minutes"
"$DRIFTCTL" rank --server "$SERVER" --model loan-default --window 20m --top 5

# Quality is kept per event-time hour: --window 20m widens to the whole
# hour(s) the current period lies in, which hold no baseline event.
quality() {
  "$DRIFTCTL" quality --server "$SERVER" --model loan-default --window 20m "$@"
}

echo
echo "== driftctl quality --slice platform=android --window 20m (widened to whole hours): no current label yet (coverage 0); the CBPE estimate from the scores alone, calibrated on the baseline's labels"
quality --slice platform=android

echo
echo "== driftctl quality --slice platform=ios --window 20m: no current label yet; the estimate is higher than android's (android's scores crowd towards 0.5)"
quality --slice platform=ios

echo
echo "== driftctl labels push: current labels, wave 1 ($CURRENT_LABELS_1 labels, those known by $(ago "$WAVE_1_UNTIL_MS"))"
"$DRIFTCTL" labels push "$OUT/live/labels_current_1.csv" --server "$SERVER" --model loan-default --batch 5000

echo
echo "== driftctl quality --slice platform=android --window 20m: after wave 1, the realised AUC / ECE are far worse than the baseline's, and worse than the estimate (CBPE cannot see that labels stopped following the scores)"
quality --slice platform=android

echo
echo "== driftctl labels push: current labels, wave 2 (the other $CURRENT_LABELS_2 known by now; labels due after now are not known yet)"
"$DRIFTCTL" labels push "$OUT/live/labels_current_2.csv" --server "$SERVER" --model loan-default --batch 5000

echo
echo "== driftctl quality --slice platform=android --window 20m: after wave 2, coverage up, android's AUC and ECE still bad"
quality --slice platform=android

echo
echo "== driftctl quality --slice platform=ios --window 20m: after wave 2, ios stays as good as its baseline"
quality --slice platform=ios

echo
echo "== alerts firing once the labels came: the realised AUC drop and the calibration drift (android)"
wait_alerts '^firing +(auc_drop|calibration_drift)' 30
print_alerts '^firing'

echo
echo "== driftctl rank --metric auc_drop: slices by baseline AUC - current AUC over the last 20 minutes"
"$DRIFTCTL" rank --server "$SERVER" --model loan-default --metric auc_drop --window 20m --top 5

echo
echo "== the webhook receiver (on-call's pager): app_version=8.0's data-quality page and android's drift alerts as separate grouped, signed notifications, each with its runbook; ios and web paged nothing"
for _ in $(seq 1 300); do grep -q '^notification' "$OUT/live/hook.log" && break; sleep 0.1; done
sed 's/^/  /' "$OUT/live/hook.log"
HOOK_PRINTED=$(wc -l <"$OUT/live/hook.log")
"$DRIFTCTL" notifications list --server "$SERVER" | sed 's/^/  /'

echo
echo "== driftctl push: the traffic returns to the baseline (15k events over the last 4.5 minutes, android as before the drift)"
"$DRIFTCTL" push "$OUT/live/events_recovered.csv" --server "$SERVER" --model loan-default --batch 2000

echo
echo "== alerts resolved: the 3-minute evaluation window now holds only the recovered traffic, so the drift alerts resolve; the label-based ones read the day's labels and stay until those recover"
wait_alerts '^resolved' 30
print_alerts '^resolved'

echo
echo "== the webhook receiver: the resolution, in the same group (the label-based alerts still fire)"
for _ in $(seq 1 300); do
  [ "$(tail -n +$((HOOK_PRINTED + 1)) "$OUT/live/hook.log" | grep -c '^notification')" -gt 0 ] && break
  sleep 0.1
done
tail -n +$((HOOK_PRINTED + 1)) "$OUT/live/hook.log" | sed 's/^/  /'

echo
echo "== driftctl alerts: what is still firing"
"$DRIFTCTL" alerts --server "$SERVER"

echo
echo "== driftctl signals: android's income PSI as the rules saw it, one sample per evaluation"
"$DRIFTCTL" signals --server "$SERVER" --model loan-default --signal psi --feature income \
  --slice platform=android --range 10m | tail -n 6

echo
echo "== /metrics (a few series)"
/usr/bin/python3 - "$METRICS_PORT" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(("driftwatch_ingest_events_total", "driftwatch_open_buckets", "driftwatch_flushes_total",
                           "driftwatch_labels_total", "driftwatch_alerts{")):
        print(line)
PY

kill "$WATCH_PID" 2>/dev/null || true
WATCH_PID=

echo
echo "== stopping driftwatchd (SIGTERM: flush and exit)"
kill -TERM "$PID"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then echo "driftwatchd did not stop"; exit 1; fi
wait "$PID" && echo "driftwatchd exited cleanly" || { echo "driftwatchd exited with $?"; exit 1; }
trap - EXIT

echo
echo "(The offline statistics demo: scripts/demo_offline.sh $BUILD_DIR)"
