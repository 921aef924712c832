#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need.
# Idempotent: packages already installed are skipped, and apt is not touched
# at all when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache make pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libeigen3-dev libboost-math-dev libsqlite3-dev sqlite3 prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libcurl4-openssl-dev libssl-dev
  python3 python3-numpy python3-scipy python3-sklearn
  prometheus-alertmanager
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
