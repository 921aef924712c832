#!/usr/bin/env bash
# The offline demo (no server): generate a reference and a drifted current
# window, then show driftctl's table, JSON, HTML report and a change-point run.
set -euo pipefail
BUILD_DIR=${1:-build}
DRIFTCTL="$BUILD_DIR/cli/driftctl"
OUT=out/demo
mkdir -p "$OUT"
/usr/bin/python3 scripts/gen_demo_data.py "$OUT"

echo "== driftctl stats: reference (20k rows) vs current (5k rows)"
"$DRIFTCTL" stats --reference "$OUT/reference.csv" --current "$OUT/current.csv"

echo
echo "== driftctl report -> $OUT/report.html"
"$DRIFTCTL" report --reference "$OUT/reference.csv" --current "$OUT/current.csv" --out "$OUT/report.html"
ls -l "$OUT/report.html"

echo
echo "== driftctl changepoint --method cusum (textbook h = 5) on an hourly PSI series, step at index 120"
"$DRIFTCTL" changepoint --method cusum --json < "$OUT/psi_series.txt"
echo
echo "== driftctl calibrate: CUSUM h for ARL0 = 10000 points (warm-up 60) on the stable part"
calibration=$(head -120 "$OUT/psi_series.txt" | "$DRIFTCTL" calibrate --method cusum --warmup 60 --target-arl 10000 --json)
echo "$calibration"
h=$(echo "$calibration" | sed -E 's/.*"threshold":([0-9.eE+-]+).*/\1/')
echo
echo "== driftctl changepoint --method cusum --warmup 60 --h $h: no false alarm, the step at 120 is caught"
"$DRIFTCTL" changepoint --method cusum --warmup 60 --h "$h" --json < "$OUT/psi_series.txt"
echo
echo "Open $OUT/report.html in a browser for the per-feature histograms."
