// Test and benchmark helpers for the RocksDB storage; not part of the library.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include "storage/stream_store.h"

namespace herald::storage::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/herald-storage-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::string db_path() const { return (path_ / "db").string(); }

 private:
  std::filesystem::path path_;
};

struct AppendOutcome {
  boost::system::error_code ec;
  std::vector<AppendResult> results;
  bool completed = false;
};

// Runs one async_append to completion on a private io_context. The io_context only stays
// busy while the store tracks the operation as outstanding work, so `completed` also checks
// that the store keeps the handler's executor busy until it completes.
inline AppendOutcome append_and_wait(StreamStore& store, std::vector<AppendRequest> batch) {
  boost::asio::io_context io;
  AppendOutcome outcome;
  store.async_append(std::move(batch),
                     boost::asio::bind_executor(io, [&outcome](boost::system::error_code ec,
                                                               std::vector<AppendResult> results) {
                       outcome.ec = ec;
                       outcome.results = std::move(results);
                       outcome.completed = true;
                     }));
  io.run();
  return outcome;
}

inline AppendRequest make_append(std::string stream, std::string data,
                                 std::int64_t expires_at_ms = 4'000'000'000'000) {
  AppendRequest request;
  request.stream = std::move(stream);
  request.entry.app = "app";
  request.entry.message_id = "m";
  request.entry.data = std::move(data);
  request.entry.sent_at_ms = 1'000;
  request.entry.expires_at_ms = expires_at_ms;
  return request;
}

}  // namespace herald::storage::testing
