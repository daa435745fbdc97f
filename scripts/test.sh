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
# The racing scenario, tiny (a 300 ms handshake deadline instead of 10 s): it exits non-zero if a
# client did not connect.
echo "== herald-load racing (smoke run)"
"$build_dir"/bench/herald-load racing --rounds=1 --response-timeout-ms=300 >/dev/null
# herald-bench against every peer, tiny, every scenario: it exits non-zero if a system broke its
# delivery promise (Herald: exactly once) or a run could not be made.
echo "== herald-bench (smoke run)"
"$build_dir"/bench/herald-bench storm,idle,unicast,broadcast,churn --systems=all --devices=60 \
  --processes=2 --rate=100 --duration-s=1 --messages=3 --churn-per-s=20 --away-ms=200 \
  --settle-s=2 >/dev/null
# The heartbeat convergence simulation (simulated time, under a second): it exits non-zero if a
# simulated device did not converge.
echo "== herald-heartbeat-convergence (smoke run)"
"$build_dir"/bench/herald-heartbeat-convergence --learners=5 --newcomers=10 >/dev/null
# The heartbeat simulator (docs/heartbeat.md), a simulated day behind a 5-minute NAT, adaptive and
# fixed; the adaptive heartbeat must settle one step below the NAT's timeout.
echo "== herald-hbsim (smoke run)"
"$build_dir"/bin/herald-hbsim --idle-timeout-s=300 --json | grep '"interval_s":240,' >/dev/null
"$build_dir"/bin/herald-hbsim --idle-timeout-s=300 --fixed --heartbeat-s=60 >/dev/null
# The crash loop (docs/crash-testing.md), four kill -9 cycles: it exits non-zero if the delivery
# checker found a message lost, duplicated or out of place, or a device did not drain.
echo "== herald-crashloop (smoke run)"
"$build_dir"/bench/herald-crashloop --cycles=4 --devices=3 --senders=2 --rate=100 >/dev/null
echo "benchmarks: all ran"
