# Front door. Every target installs what it needs first (idempotent).
MAKEFLAGS += --no-print-directory
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps configure build test crosscheck bench micro-bench load demo demo-offline \
        clean format asan thread-safety ci

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

# driftctl against scipy / scikit-learn on fresh random seeds (printed, so a
# failure reproduces with --seeds SEED). make test runs a fixed list instead.
CROSSCHECK_ITERATIONS ?= 200
crosscheck: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target driftctl
	@/usr/bin/python3 tests/cli/crosscheck_scipy.py --driftctl $(BUILD_DIR)/cli/driftctl \
	  --iterations $(CROSSCHECK_ITERATIONS)

bench: build
	@./bench/run.sh $(BUILD_DIR)

micro-bench: build
	@SKIP_LOAD=1 ./bench/run.sh $(BUILD_DIR)

load: build
	@./bench/load.sh $(BUILD_DIR)

# The demos build only what they run: no tests, no benchmarks.
demo: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target driftwatchd driftctl
	@./scripts/demo.sh $(BUILD_DIR)

demo-offline: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target driftctl
	@./scripts/demo_offline.sh $(BUILD_DIR)

# Every test under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	@$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DDRIFTWATCH_SANITIZE=ON"

# Clang's -Wthread-safety -Werror over every target of ours: the
# ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations are checked
# by the compiler. A compile-only build (nothing runs).
thread-safety: deps
	@CC=clang CXX=clang++ cmake -S . -B build-tsa -DCMAKE_BUILD_TYPE=Debug \
	  -DDRIFTWATCH_THREAD_SAFETY=ON >/dev/null
	@cmake --build build-tsa -j $(JOBS)

# What .ci/run runs.
ci: test asan thread-safety

format:
	@find base detectors storage alerting service cli tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) build-asan build-tsa
