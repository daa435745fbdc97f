// herald_storage_crash_writer: a test helper that appends to a RocksDbStorage until it is
// killed, or until it has appended a given number of entries and then exits without any
// shutdown (std::_Exit), so that tests can crash a real process at a real point.
//
// usage: herald_storage_crash_writer <db path> <sync|fast> <boot id> <ack fd> <appends>
//
// Each acknowledged append is written to <ack fd> as one 24-byte record, three host-order
// uint64: stream index (0 = "crash/a", 1 = "crash/b"), epoch, seq. One write(2) per record,
// below PIPE_BUF, so records are never torn. <appends> = 0: append until killed.
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

using herald::storage::AppendRequest;
using herald::storage::AppendResult;

constexpr int kAppenders = 8;
constexpr std::array<const char*, 2> kStreams = {"crash/a", "crash/b"};

struct Writer {
  herald::storage::StreamStore& store;
  boost::asio::io_context& io;
  int ack_fd;
  std::uint64_t limit;  // 0 = none
  std::uint64_t started = 0;
  std::uint64_t acked = 0;

  void start(std::size_t stream_index) {
    if (limit != 0 && started >= limit) return;
    ++started;
    AppendRequest request;
    request.stream = kStreams[stream_index];
    request.entry.app = "crash";
    request.entry.message_id = std::to_string(started);
    request.entry.data = "payload-" + std::to_string(started);
    request.entry.expires_at_ms = 4'000'000'000'000;
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
          const std::array<std::uint64_t, 3> record = {stream_index, results[0].epoch,
                                                       results[0].seq};
          if (write(ack_fd, record.data(), sizeof(record)) != sizeof(record)) std::_Exit(4);
          ++acked;
          // No shutdown at all: the database never records a clean close.
          if (limit != 0 && acked == limit) std::_Exit(0);
          start(1 - stream_index);
        }));
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s <db path> <sync|fast> <boot id> <ack fd> <appends>\n", argv[0]);
    return 2;
  }
  herald::storage::RocksDbOptions options;
  options.path = argv[1];
  options.durability = std::strcmp(argv[2], "fast") == 0 ? herald::storage::Durability::kFast
                                                         : herald::storage::Durability::kSync;
  options.boot_id = argv[3];
  const int ack_fd = std::atoi(argv[4]);
  const auto limit = std::strtoull(argv[5], nullptr, 10);

  auto storage = herald::storage::RocksDbStorage::open(options);
  if (!storage) {
    std::fprintf(stderr, "%s\n", storage.error().message.c_str());
    return 1;
  }
  boost::asio::io_context io;
  Writer writer{(*storage)->streams(), io, ack_fd, limit};
  for (int i = 0; i < kAppenders; ++i) writer.start(static_cast<std::size_t>(i % 2));
  io.run();
  std::_Exit(0);
}
