#!/usr/bin/env bash
# Installs what is missing, builds everything (warnings are errors), runs every test, then runs
# every benchmark briefly so none rots (timings are not asserted).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Formatting is part of the test: .clang-format is the style, not a suggestion.
find src client tools tests bench \( -name '*.cc' -o -name '*.h' \) -print0 |
  xargs -0 clang-format --dry-run --Werror
bash scripts/build.sh -DHERALD_WERROR=ON
build_dir=${HERALD_BUILD_DIR:-build}
ctest --test-dir "$build_dir" --output-on-failure -j 2 --timeout 300
for b in "$build_dir"/bench/*_bench; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b") (smoke run)"
  "$b" --benchmark_min_time=0.01 >/dev/null
done
# The end-to-end load tool's broadcast scenario, tiny: it exits non-zero if a device missed a
# message or got one twice.
echo "== herald-load broadcast (smoke run)"
"$build_dir"/bench/herald-load broadcast --connections=50 --burst=3 >/dev/null
echo "benchmarks: all ran"
