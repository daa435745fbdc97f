// herald_storage_crash_writer: a test helper that appends to a RocksDbStorage until it is
// killed, or until it has appended a given number of entries and then exits without any
// shutdown (std::_Exit), so that tests can crash a real process at a real point.
//
// usage: herald_storage_crash_writer <db path> <sync|fast> <boot id> <ack fd> <appends>
//                                    [plain|batch]
//
// Each acknowledged append is written to <ack fd> as one 24-byte record, three host-order
// uint64: stream index (0 = "crash/a", 1 = "crash/b"), epoch, seq. One write(2) per record,
// below PIPE_BUF, so records are never torn. <appends> = 0: append until killed.
//
// plain (the default) appends one entry at a time. batch makes each append the AppendBatch of an
// idempotent send: the entry (message_id N, counting from 1; on "crash/b" with collapse key
// "latest", so each one tombstones the one before), the record "crash/N" = stream index, and
// unless_record_exists "crash/N". After each acknowledged batch it also puts "seen/N" with
// sync = false, acknowledged as the record {2, 0, N}.
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "storage/rocksdb/rocksdb_storage.h"

namespace {

using herald::storage::AppendBatch;
using herald::storage::AppendOutcome;
using herald::storage::AppendRequest;
using herald::storage::AppendResult;

constexpr int kAppenders = 8;
constexpr std::array<const char*, 2> kStreams = {"crash/a", "crash/b"};

struct Writer {
  herald::storage::StreamStore& store;
  boost::asio::io_context& io;
  int ack_fd;
  std::uint64_t limit;  // 0 = none
  bool batches;
  std::uint64_t started = 0;
  std::uint64_t acked = 0;

  void ack(const std::array<std::uint64_t, 3>& record) const {
    if (write(ack_fd, record.data(), sizeof(record)) != sizeof(record)) std::_Exit(4);
  }

  void start(std::size_t stream_index) {
    if (limit != 0 && started >= limit) return;
    ++started;
    AppendRequest request;
    request.stream = kStreams[stream_index];
    request.entry.app = "crash";
    request.entry.message_id = std::to_string(started);
    request.entry.data = "payload-" + std::to_string(started);
    request.entry.sent_at_ms = 1'000;
    request.entry.expires_at_ms = 4'000'000'000'000;
    if (batches) {
      start_batch(stream_index, std::move(request));
      return;
    }
    std::vector<AppendRequest> batch;
    batch.push_back(std::move(request));
    store.async_append(
        std::move(batch),
        boost::asio::bind_executor(io, [this, stream_index](boost::system::error_code ec,
                                                            std::vector<AppendResult> results) {
          if (ec) {
            std::fprintf(stderr, "append failed: %s\n", ec.message().c_str());
            std::_Exit(3);
          }
          acknowledged(stream_index, results[0]);
        }));
  }

  void start_batch(std::size_t stream_index, AppendRequest request) {
    const std::string n = request.entry.message_id;
    if (stream_index == 1) request.collapse_key = "latest";
    AppendBatch batch;
    batch.entries.push_back(std::move(request));
    batch.put_records.push_back({"crash/" + n, std::to_string(stream_index), 0});
    batch.unless_record_exists = "crash/" + n;
    batch.now_ms = 1'000;
    store.async_append(
        std::move(batch),
        boost::asio::bind_executor(io, [this, stream_index, n](boost::system::error_code ec,
                                                               AppendOutcome outcome) {
          if (ec || outcome.existing) {
            std::fprintf(stderr, "batch failed: %s\n", ec ? ec.message().c_str() : "existing");
            std::_Exit(3);
          }
          AppendBatch seen;
          seen.put_records.push_back({"seen/" + n, "x", 0});
          seen.sync = false;
          store.async_append(std::move(seen),
                             boost::asio::bind_executor(
                                 io, [this, n](boost::system::error_code seen_ec, AppendOutcome) {
                                   if (seen_ec) std::_Exit(5);
                                   ack({2, 0, std::stoull(n)});
                                 }));
          acknowledged(stream_index, outcome.results[0]);
        }));
  }

  void acknowledged(std::size_t stream_index, const AppendResult& result) {
    ack({stream_index, result.epoch, result.seq});
    ++acked;
    // No shutdown at all: the database never records a clean close.
    if (limit != 0 && acked == limit) std::_Exit(0);
    start(1 - stream_index);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) {
    std::fprintf(stderr,
                 "usage: %s <db path> <sync|fast> <boot id> <ack fd> <appends> [plain|batch]\n",
                 argv[0]);
    return 2;
  }
  herald::storage::RocksDbOptions options;
  options.path = argv[1];
  options.durability = std::strcmp(argv[2], "fast") == 0 ? herald::storage::Durability::kFast
                                                         : herald::storage::Durability::kSync;
  options.boot_id = argv[3];
  const int ack_fd = std::atoi(argv[4]);
  const auto limit = std::strtoull(argv[5], nullptr, 10);
  const bool batches = argc == 7 && std::strcmp(argv[6], "batch") == 0;

  auto storage = herald::storage::RocksDbStorage::open(options);
  if (!storage) {
    std::fprintf(stderr, "%s\n", storage.error().message.c_str());
    return 1;
  }
  boost::asio::io_context io;
  Writer writer{(*storage)->streams(), io, ack_fd, limit, batches};
  for (int i = 0; i < kAppenders; ++i) writer.start(static_cast<std::size_t>(i % 2));
  io.run();
  std::_Exit(0);
}
