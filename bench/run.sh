#!/usr/bin/env bash
# make bench: the Google Benchmark micro benchmarks, with machine facts, so
# every figure in a note carries its settings.
set -euo pipefail
BUILD_DIR=${1:-build}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== build: $(grep CMAKE_BUILD_TYPE: "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
"$BUILD_DIR/bench/detectors_bench" --benchmark_min_time=0.3 "${@:2}"
