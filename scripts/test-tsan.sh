#!/usr/bin/env bash
# The core's threaded code under ThreadSanitizer, in build-tsan (or $HERALD_TSAN_BUILD_DIR): the
# storage writer (group commit, its relay and maintenance threads), the access layer's shared
# structures (timing wheel, drain pacer, per-source rate limiter, pending connections), the
# client's event loop (its TLS connections included), and cluster mode's threads (the Redis
# stores' writer and read pool, the cluster router's route writer, forwarder and subscriber,
# against a real Redis Cluster). A data race fails the run. Part of .ci/run (docs/reliability.md,
# "Sanitizers").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir=${HERALD_TSAN_BUILD_DIR:-build-tsan}
targets=(herald_access_test herald_drain_pacer_test herald_storage_rocksdb_stream_store_test
  herald_storage_rocksdb_append_batch_test herald_client_test herald_storage_redis_test
  herald_distribution_cluster_router_test)
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHERALD_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for t in "${targets[@]}"; do
  echo "== $t"
  "$build_dir/tests/$t" --gtest_brief=1
done
echo "tsan: no data race reported"
