#!/usr/bin/env bash
# The whole test suite again on an ASan+UBSan build (in build-asan, or $HERALD_ASAN_BUILD_DIR):
# memory errors and undefined behaviour fail the run. Part of .ci/run (docs/reliability.md,
# "Sanitizers"). -O1 and line tables only (-g1): a sanitizer build's usual trade, it compiles
# faster than -O2 -g and its reports still name every file and line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir=${HERALD_ASAN_BUILD_DIR:-build-asan}
# Warnings are errors in the normal build (scripts/test.sh); not here: with -fsanitize GCC 12
# reports maybe-uninitialized inside Boost.Beast's parser, a false positive of the instrumentation.
HERALD_BUILD_DIR="$build_dir" bash scripts/build.sh -DHERALD_SANITIZE=ON -DHERALD_BUILD_BENCHMARKS=OFF \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build_dir" --output-on-failure -j 2 --timeout 600
