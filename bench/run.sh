#!/usr/bin/env bash
# make bench: the Google Benchmark micro benchmarks, then the end-to-end
# gRPC load test (bench/load.sh; DURATION=60 per phase by default) and
# the rules engine's effect on ingest (bench/alerting_ingest_effect.sh), with
# machine facts so every figure in a note carries its settings.
set -euo pipefail
BUILD_DIR=${1:-build}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== build: $(grep CMAKE_BUILD_TYPE: "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
"$BUILD_DIR/bench/detectors_bench" --benchmark_min_time=0.3
"$BUILD_DIR/bench/service_bench"
if [ "${SKIP_LOAD:-0}" != "1" ]; then
  ./bench/load.sh "$BUILD_DIR"
  echo "== the rules engine's effect on ingest (bench/alerting_ingest_effect.sh)"
  ./bench/alerting_ingest_effect.sh "$BUILD_DIR" 20 3
  echo "== alert latency: the ack of the batch that fires a rule -> the webhook (bench/alert_latency.py)"
  /usr/bin/python3 bench/alert_latency.py "$BUILD_DIR" 50
fi
