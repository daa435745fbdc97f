#!/usr/bin/env bash
# Configures and builds Herald into ./build (or $HERALD_BUILD_DIR). Extra arguments go to CMake,
# e.g. scripts/build.sh -DHERALD_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${HERALD_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
