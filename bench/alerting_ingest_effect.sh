#!/usr/bin/env bash
# The rules engine's effect on ingest: driftwatchd fed by the load generator
# (row batches, 2 streams, a baseline after 5 s, android drifting after
# 10 s) in four modes, a fresh server and data dir per run, TRIALS times:
#   off      the evaluator every hour (it never runs within the run)
#   signals  the evaluator and the signal history every second, no rules
#   rules    the same plus the default rules (deploy/rules.yaml)
#   default  the default rules at the default evaluator.interval (15 s)
# "rules vs signals" is the rules engine's own effect. Prints events/s of each run, the
# on/off ratio per trial, how many evaluations ran, the mean evaluator run
# (signals + history + rules) and the latest rules evaluation, and the
# alerts pending or firing at the end.
#   bench/alerting_ingest_effect.sh [BUILD_DIR] [SECONDS] [TRIALS]
set -euo pipefail
B=${1:-build}; D=${2:-20}; T=${3:-3}
LG=$B/bench/driftwatch_loadgen; SRV=$B/service/driftwatchd
[ -x "$LG" ] && [ -x "$SRV" ] || { echo "build first: $LG and $SRV are needed" >&2; exit 2; }
W=$(mktemp -d); SP=""
trap '[ -n "$SP" ] && kill "$SP" 2>/dev/null; rm -rf "$W"' EXIT
run() {  # run MODE(off|on) -> "events_per_s rule_evaluations evaluation_seconds_sum"
  rm -rf "$W/data" "$W/ports"
  local extra=(--evaluator-interval 1h)
  [ "$1" = signals ] && extra=(--evaluator-interval 1s)
  [ "$1" = rules ] && extra=(--evaluator-interval 1s --rules-file deploy/rules.yaml)
  [ "$1" = default ] && extra=(--evaluator-interval 15s --rules-file deploy/rules.yaml)
  "$SRV" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$W/data" \
    --port-file "$W/ports" "${extra[@]}" >"$W/log" 2>&1 & SP=$!
  for _ in $(seq 100); do [ -s "$W/ports" ] && break; sleep 0.1; done
  local port metrics eps
  port=$(grep -o 'grpc=[0-9]*' "$W/ports" | cut -d= -f2)
  metrics=$(grep -o 'metrics=[0-9]*' "$W/ports" | cut -d= -f2)
  eps=$("$LG" --target "127.0.0.1:$port" --model m --version v1 --register --mode row \
    --batch 1000 --streams 2 --messages-per-stream 200 --duration "$D" --baseline \
    --baseline-after 5 --drift-after 10 --json 2>/dev/null | tail -1 |
    /usr/bin/python3 -c 'import sys,json; print(int(json.load(sys.stdin)["events_per_s"]))')
  local m
  m=$(/usr/bin/python3 - "$metrics" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
get = lambda name: next((l.split()[-1] for l in body.splitlines() if l.startswith(name + " ")), "0")
alerts = sum(float(l.split()[-1]) for l in body.splitlines()
             if l.startswith("driftwatch_alerts{") and 'state="resolved"' not in l)
print(get("driftwatch_evaluation_duration_seconds_count"), get("driftwatch_evaluation_duration_seconds_sum"),
      get("driftwatch_rule_evaluation_seconds"), int(alerts))
PY
)
  kill "$SP"; wait "$SP" 2>/dev/null || true; SP=""
  echo "$eps $m"
}
echo "trial  mode     events/s  vs off  vs signals  evaluations  evaluator s/run  rules s (last)  pending+firing"
for t in $(seq 1 "$T"); do
  read -r off _ _ _ _ < <(run off)
  read -r sig sevals ssecs _ _ < <(run signals)
  read -r on evals secs rules active < <(run rules)
  read -r dflt devals dsecs drules dactive < <(run default)
  /usr/bin/python3 -c "
def row(mode, eps, evals, secs, rules, active):
    e = max(1, int(float(evals)))
    print(f'{$t:5d}  {mode:7s}  {eps:9,d}  {eps/$off:6.3f}  {eps/$sig:10.3f}  {int(float(evals)):11d}  {float(secs)/e:15.3f}  {float(rules):14.4f}  {active:14d}')
row('off', $off, 0, 0, 0, 0)
row('signals', $sig, $sevals, $ssecs, 0, 0)
row('rules', $on, $evals, $secs, $rules, $active)
row('default', $dflt, $devals, $dsecs, $drules, $dactive)"
done
