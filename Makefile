# Front door. Every target installs what it needs first (idempotent).
MAKEFLAGS += --no-print-directory
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps configure build test crosscheck bench micro-bench load demo demo-offline clean format asan

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

micro-# driftctl against scipy / scikit-learn on fresh random seeds (printed, so a
# failure reproduces with --seeds SEED). make test runs a fixed list instead.
CROSSCHECK_ITERATIONS ?= 200
crosscheck: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target driftctl
	@/usr/bin/python3 tests/cli/crosscheck_scipy.py --driftctl $(BUILD_DIR)/cli/driftctl \
	  --iterations $(CROSSCHECK_ITERATIONS)

bench: build
	@SKIP_LOAD=1 ./bench/run.sh $(BUILD_DIR)

load: build
	@./bench/load.sh $(BUILD_DIR)

demo: build
	@./scripts/demo.sh $(BUILD_DIR)

demo-offline: build
	@./scripts/demo_offline.sh $(BUILD_DIR)

asan:
	@$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DDRIFTWATCH_SANITIZE=ON"

format:
	@find detectors storage alerting service cli tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) build-asan
