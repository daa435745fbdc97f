// Test and benchmark helpers for the RocksDB storage; not part of the library.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include "storage/stream_store.h"
#include "storage/testing/append_and_wait.h"

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

// A file system that can hold or fail the WAL's fsyncs, to make the writer's timing
// deterministic: tests wait for the writer to be inside a write instead of sleeping.
class WalSyncGate {
 public:
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    changed_.notify_all();
  }
  // no_space: fail as a full disk does (ENOSPC, which RocksDB can resume from) rather than with
  // a plain I/O error (EIO, which it cannot).
  void fail_next_syncs(int count, bool no_space = false) {
    std::lock_guard lock(mutex_);
    fail_ = count;
    no_space_ = no_space;
  }
  // Returns true once a WAL sync is waiting on the gate; false if none came within the safety
  // timeout (the test then fails instead of hanging).
  [[nodiscard]] bool wait_until_blocked() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [this] { return blocked_ > 0; });
  }

  ::rocksdb::IOStatus on_sync() {
    std::unique_lock lock(mutex_);
    if (fail_ > 0) {
      --fail_;
      if (no_space_) return ::rocksdb::IOStatus::NoSpace("injected WAL sync failure: disk full");
      return ::rocksdb::IOStatus::IOError("injected WAL sync failure");
    }
    if (held_) {
      ++blocked_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return !held_; });
      --blocked_;
    }
    return ::rocksdb::IOStatus::OK();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  int fail_ = 0;
  bool no_space_ = false;
  int blocked_ = 0;
};

class GatedWalFile final : public ::rocksdb::FSWritableFileOwnerWrapper {
 public:
  GatedWalFile(std::unique_ptr<::rocksdb::FSWritableFile> file, WalSyncGate& gate)
      : FSWritableFileOwnerWrapper(std::move(file)), gate_(gate) {}

  ::rocksdb::IOStatus Sync(const ::rocksdb::IOOptions& options,
                           ::rocksdb::IODebugContext* dbg) override {
    auto status = gate_.on_sync();
    return status.ok() ? target()->Sync(options, dbg) : status;
  }
  ::rocksdb::IOStatus Fsync(const ::rocksdb::IOOptions& options,
                            ::rocksdb::IODebugContext* dbg) override {
    auto status = gate_.on_sync();
    return status.ok() ? target()->Fsync(options, dbg) : status;
  }

 private:
  WalSyncGate& gate_;
};

class GatedFileSystem final : public ::rocksdb::FileSystemWrapper {
 public:
  explicit GatedFileSystem(WalSyncGate& gate)
      : FileSystemWrapper(::rocksdb::FileSystem::Default()), gate_(gate) {}

  const char* Name() const override { return "GatedFileSystem"; }

  ::rocksdb::IOStatus NewWritableFile(const std::string& name,
                                      const ::rocksdb::FileOptions& options,
                                      std::unique_ptr<::rocksdb::FSWritableFile>* result,
                                      ::rocksdb::IODebugContext* dbg) override {
    auto status = target()->NewWritableFile(name, options, result, dbg);
    // WAL files are "<number>.log"; the info log is "LOG".
    if (status.ok() && name.ends_with(".log")) {
      *result = std::make_unique<GatedWalFile>(std::move(*result), gate_);
    }
    return status;
  }

 private:
  WalSyncGate& gate_;
};

inline std::shared_ptr<::rocksdb::Env> gated_env(WalSyncGate& gate) {
  return ::rocksdb::NewCompositeEnv(std::make_shared<GatedFileSystem>(gate));
}

}  // namespace herald::storage::testing
