#!/usr/bin/env bash
# Fuzzes every libFuzzer target for a set time: configures a clang build with the fuzzers on (in
# build-fuzz, or $HERALD_FUZZ_BUILD_DIR), builds them, and runs each for SECONDS (default 60) on a
# fresh copy of its checked-in corpus, printing libFuzzer's final stats (executions, coverage).
# Exits non-zero if any target crashed, tripped an invariant, leaked or timed out; the reproducer
# is left in <build dir>/fuzz-work/<target>/artifacts/ (docs/fuzzing.md: add it to the corpus once
# fixed). The checked-in corpora are never written to.
#
# Usage: scripts/fuzz.sh [SECONDS]        e.g. scripts/fuzz.sh 600
#        HERALD_FUZZ_TARGETS="herald_request_body_fuzz" scripts/fuzz.sh 60   (a subset)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a whole number of seconds per target, default 60)" >&2
  exit 2
fi
build_dir=${HERALD_FUZZ_BUILD_DIR:-build-fuzz}

# target name -> checked-in corpus (the same directories the replay tests read).
declare -A corpus=(
  [herald_protocol_fuzz]=src/protocol/fuzz_corpus/frame_codec
  [herald_endpoint_list_fuzz]=src/protocol/fuzz_corpus/endpoint_list
  [herald_request_body_fuzz]=src/http/fuzz_corpus/request_body
  [herald_stored_record_fuzz]=src/storage/rocksdb/fuzz_corpus/stored_record
  [herald_redis_stored_value_fuzz]=src/storage/redis/fuzz_corpus/stored_value
  [herald_cluster_message_fuzz]=src/distribution/redis/fuzz_corpus/cluster_message
)
read -r -a targets <<<"${HERALD_FUZZ_TARGETS:-${!corpus[*]}}"
for t in "${targets[@]}"; do
  [ -n "${corpus[$t]:-}" ] || { echo "fuzz: unknown target $t" >&2; exit 2; }
done
mapfile -t targets < <(printf '%s\n' "${targets[@]}" | sort)

# Tests and benchmarks off: this build holds the fuzzers only (the replay tests run in every
# ordinary build). The compiler is chosen once, when the build directory is made ($CC/$CXX, else
# clang): naming another later would make CMake start the directory over.
compilers=()
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  compilers=(-DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}")
fi
cmake -S . -B "$build_dir" -G Ninja "${compilers[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHERALD_BUILD_FUZZERS=ON -DHERALD_BUILD_TESTS=OFF -DHERALD_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  work="$build_dir/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "${corpus[$t]}"/* "$work/corpus/"
  echo "== $t: ${seconds} s on a copy of ${corpus[$t]} ($(ls "$work/corpus" | wc -l) seeds)"
  rc=0
  "$build_dir/bin/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 ||
    rc=$?
  # The last status line (#N DONE cov: ... ft: ... corp: ...) and the final stats.
  grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$work/log" | tail -n 1 || true
  grep -E '^(Done [0-9]+ runs|stat::)' "$work/log" || true
  crashes=$(find "$work/artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "!! $t failed (exit $rc); log: $work/log; reproducers:"
    find "$work/artifacts" -type f -printf '   %p\n'
    grep -E 'ERROR: |check failed|runtime error' "$work/log" | head -n 5 | sed 's/^/   /' || true
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds} s each without a finding"
