#!/usr/bin/env bash
# Installs what is missing, builds, and starts heraldd with the embedded default: all four layers
# in one process, RocksDB in ./herald-data, devices on :7700, the sender API on :7780.
# Extra arguments go to heraldd (heraldd --help lists every setting).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec "${HERALD_BUILD_DIR:-build}/bin/heraldd" "$@"
