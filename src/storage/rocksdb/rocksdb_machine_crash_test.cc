// Machine crashes (power loss, kernel panic), simulated with PageCacheFileSystem: the OS loses
// every write that was not fsynced. Several appenders append concurrently; the test cuts the
// power after its chosen number of acknowledgements, while other appends are queued or inside a
// group commit, then reopens the database as after a reboot (another boot id) and checks what
// each durability mode promises (docs/storage.md, "Durability modes"):
//   kSync: every acknowledged append is there, with its seq and epoch; no seq reused or skipped.
//   kFast: acknowledged appends may be lost, but only as an announced loss: the generation goes
//          up, so every epoch changes and an old reader gets epoch_changed.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"
#include "storage/rocksdb/testing/page_cache_file_system.h"

namespace herald::storage {
namespace {

using testing::append_and_wait;
using testing::make_append;
using testing::PageCacheFileSystem;
using testing::TempDir;

constexpr int kAppenders = 8;
constexpr int kStreams = 3;  // fewer streams than appenders: groups mix appenders of a stream

std::string stream_name(int s) { return "crash/" + std::to_string(s); }

struct Acked {
  int stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::string data;
};

struct CrashRun {
  std::vector<Acked> acks;
  std::size_t failed = 0;  // appends completed with an error (in flight at the crash)
  std::uint32_t generation = 0;
  PageCacheFileSystem::Dropped dropped;
};

RocksDbOptions options_for(const TempDir& dir, Durability durability, std::string boot_id) {
  RocksDbOptions options;
  options.path = dir.db_path();
  options.durability = durability;
  options.boot_id = std::move(boot_id);
  return options;
}

// kAppenders appenders, each appending its next entry as soon as the last one completed, until
// `crash_after_acks` appends were acknowledged; then the power goes (every later write fails),
// the storage is destroyed as the dying process would leave it, and what the OS had not synced
// is dropped.
class Appenders {
 public:
  Appenders(RocksDbStorage& storage, PageCacheFileSystem& file_system, std::size_t crash_after)
      : storage_(storage), file_system_(file_system), crash_after_(crash_after) {}

  void run(CrashRun& out) {
    out_ = &out;
    for (int a = 0; a < kAppenders; ++a) append(a, 0);
    io_.run();  // until every append started has completed: the store keeps io_ busy until then
  }

 private:
  void append(int appender, int n) {
    const int stream = appender % kStreams;
    std::string data = std::to_string(appender) + "/" + std::to_string(n);
    storage_.streams().async_append(
        {make_append(stream_name(stream), data)},
        boost::asio::bind_executor(
            io_, [this, appender, n, stream, data](boost::system::error_code ec,
                                                   std::vector<AppendResult> results) {
              if (ec) {
                ++out_->failed;
                return;
              }
              out_->acks.push_back({stream, results.at(0).epoch, results.at(0).seq, data});
              if (out_->acks.size() == crash_after_) file_system_.crash();
              if (!file_system_.crashed()) append(appender, n + 1);
            }));
  }

  RocksDbStorage& storage_;
  PageCacheFileSystem& file_system_;
  const std::size_t crash_after_;
  boost::asio::io_context io_;
  CrashRun* out_ = nullptr;
};

CrashRun append_until_machine_crash(RocksDbOptions options, std::size_t crash_after_acks) {
  auto file_system = std::make_shared<PageCacheFileSystem>();
  options.env = ::rocksdb::NewCompositeEnv(file_system);
  CrashRun run;
  {
    auto storage = RocksDbStorage::open(options);
    if (!storage) {
      ADD_FAILURE() << storage.error().message;
      return run;
    }
    run.generation = (*storage)->database().generation();
    Appenders(**storage, *file_system, crash_after_acks).run(run);
  }
  // The process died with the machine; what it left in the page cache is gone.
  run.dropped = file_system->drop_unsynced_data();
  return run;
}

// Everything stored in `stream`, 1..head, as seq -> data; fails the test on a gap.
std::map<std::uint64_t, std::string> read_all(StreamStore& store, const std::string& stream,
                                              std::uint64_t* epoch) {
  std::map<std::uint64_t, std::string> stored;
  auto read = store.read({.stream = stream, .max_entries = 1'000'000, .max_bytes = 1u << 30});
  if (!read) {
    ADD_FAILURE() << read.error().message();
    return stored;
  }
  *epoch = read->epoch;
  std::uint64_t expected = 1;
  for (const auto& entry : read->entries) {
    EXPECT_EQ(entry.seq, expected) << stream << ": a seq skipped";
    expected = entry.seq + 1;
    stored[entry.seq] = entry.data;
  }
  EXPECT_EQ(expected, read->head_seq + 1) << stream << ": entries missing below the head";
  return stored;
}

// The crash moments: the first ack, a few inside the first groups, and later ones, so that the
// power goes while groups of every size are queued or being written.
const std::vector<std::size_t> kCrashAfterAcks = {1, 2, 5, 9, 17, 40, 97, 250};

TEST(RocksDbMachineCrash, KeepsEveryAcknowledgedSyncAppendWithItsSeqAndEpoch) {
  std::size_t acked = 0;
  std::size_t checked = 0;
  std::size_t in_flight = 0;
  for (const auto crash_after : kCrashAfterAcks) {
    SCOPED_TRACE("crash after " + std::to_string(crash_after) + " acks");
    TempDir dir;
    const auto run =
        append_until_machine_crash(options_for(dir, Durability::kSync, "boot-a"), crash_after);
    // Appends completed by the write that made the crash_after-th ack count too: that write
    // succeeded before the power went.
    ASSERT_GE(run.acks.size(), crash_after);
    in_flight += run.failed;
    acked += run.acks.size();

    auto storage = RocksDbStorage::open(options_for(dir, Durability::kSync, "boot-b"));
    ASSERT_TRUE(storage) << storage.error().message;
    auto& streams = (*storage)->streams();
    EXPECT_EQ((*storage)->database().generation(), run.generation);
    for (int s = 0; s < kStreams; ++s) {
      std::uint64_t epoch = 0;
      const auto stored = read_all(streams, stream_name(s), &epoch);
      std::set<std::uint64_t> acked_seqs;
      std::set<std::string> seen;
      for (const auto& [seq, data] : stored) {
        EXPECT_TRUE(seen.insert(data).second) << data << " stored twice";
      }
      for (const auto& ack : run.acks) {
        if (ack.stream != s) continue;
        EXPECT_TRUE(acked_seqs.insert(ack.seq).second) << "seq " << ack.seq << " acked twice";
        EXPECT_EQ(ack.epoch, epoch) << "the epoch changed in kSync";
        auto it = stored.find(ack.seq);
        ASSERT_NE(it, stored.end()) << "acknowledged seq " << ack.seq << " lost";
        EXPECT_EQ(it->second, ack.data) << "seq " << ack.seq << " holds another append";
        ++checked;
      }
      // The numbering goes on after everything that survived: no seq reused.
      auto next = append_and_wait(streams, {make_append(stream_name(s), "after")});
      ASSERT_FALSE(next.ec) << next.ec.message();
      EXPECT_EQ(next.results.at(0).seq, stored.size() + 1);
      if (epoch != 0) {
        EXPECT_EQ(next.results.at(0).epoch, epoch);
      }
    }
  }
  std::cout << "kSync machine crashes: " << kCrashAfterAcks.size() << " runs, " << checked
            << " acknowledged appends checked, " << in_flight
            << " appends in flight at the crash (failed, never acknowledged)\n";
  EXPECT_EQ(checked, acked);
}

// Checks the kFast promise on one crashed run: a loss is announced. Returns how many acknowledged
// appends were lost.
std::size_t expect_no_silent_loss(const TempDir& dir, const CrashRun& run) {
  auto storage = RocksDbStorage::open(options_for(dir, Durability::kFast, "boot-b"));
  if (!storage) {
    ADD_FAILURE() << storage.error().message;
    return 0;
  }
  auto& streams = (*storage)->streams();
  // Unclean shutdown of a kFast run, then another boot: the generation goes up.
  EXPECT_EQ((*storage)->database().generation(), run.generation + 1);
  std::size_t lost = 0;
  for (int s = 0; s < kStreams; ++s) {
    std::uint64_t epoch = 0;
    const auto stored = read_all(streams, stream_name(s), &epoch);
    std::set<std::uint64_t> acked_seqs;
    for (const auto& ack : run.acks) {
      if (ack.stream != s) continue;
      EXPECT_TRUE(acked_seqs.insert(ack.seq).second) << "seq " << ack.seq << " acked twice";
      auto it = stored.find(ack.seq);
      if (it == stored.end()) {
        ++lost;
        // Lost, so the epoch must have changed (it did: the stream may even be gone, epoch 0).
        EXPECT_NE(epoch, ack.epoch) << "seq " << ack.seq << " lost silently";
        continue;
      }
      // What survived is the acknowledged append itself: a loss is a tail, never a hole or a
      // different entry at an acknowledged seq.
      EXPECT_EQ(it->second, ack.data) << "seq " << ack.seq << " holds another append";
      EXPECT_NE(epoch, ack.epoch) << "the generation bump changes every epoch";
    }
    // Every reader of the old epoch, of a surviving or a lost entry, is told to resynchronise.
    for (const auto& ack : run.acks) {
      if (ack.stream != s) continue;
      auto read =
          streams.read({.stream = stream_name(s), .epoch = ack.epoch, .after_seq = ack.seq});
      if (!read) {
        ADD_FAILURE() << read.error().message();
        continue;
      }
      EXPECT_TRUE(read->epoch_changed) << "stream " << s << " seq " << ack.seq;
    }
    // New appends continue under the new epoch, never under an old one with a reused seq.
    auto next = append_and_wait(streams, {make_append(stream_name(s), "after")});
    EXPECT_FALSE(next.ec);
    if (!next.ec) {
      EXPECT_EQ(next.results.at(0).seq, stored.size() + 1);
      for (const auto& ack : run.acks) {
        if (ack.stream == s) {
          EXPECT_NE(next.results.at(0).epoch, ack.epoch);
        }
      }
    }
  }
  return lost;
}

TEST(RocksDbMachineCrash, AnnouncesEveryFastAppendLostBeforeItsBackgroundSync) {
  std::size_t acked = 0;
  std::size_t lost = 0;
  std::uint64_t dropped_bytes = 0;
  for (const auto crash_after : kCrashAfterAcks) {
    SCOPED_TRACE("crash after " + std::to_string(crash_after) + " acks");
    TempDir dir;
    auto options = options_for(dir, Durability::kFast, "boot-a");
    options.fast_sync_interval_ms = 3'600'000;  // no background fsync during the test
    const auto run = append_until_machine_crash(options, crash_after);
    ASSERT_GE(run.acks.size(), crash_after);
    EXPECT_GT(run.dropped.bytes, 0u) << "the simulated crash dropped nothing";
    const auto lost_here = expect_no_silent_loss(dir, run);
    // Nothing was fsynced after the open: the crash takes every acknowledged append with it.
    EXPECT_EQ(lost_here, run.acks.size());
    acked += run.acks.size();
    lost += lost_here;
    dropped_bytes += run.dropped.bytes;
  }
  std::cout << "kFast machine crashes without a background sync: " << acked
            << " acknowledged appends, " << lost << " lost and announced, " << dropped_bytes
            << " unsynced bytes dropped\n";
}

TEST(RocksDbMachineCrash, AnnouncesWhateverAFastCrashLosesWithTheBackgroundSyncRunning) {
  std::size_t acked = 0;
  std::size_t lost = 0;
  for (const auto crash_after : kCrashAfterAcks) {
    SCOPED_TRACE("crash after " + std::to_string(crash_after) + " acks");
    TempDir dir;
    auto options = options_for(dir, Durability::kFast, "boot-a");
    options.fast_sync_interval_ms = 1;  // syncs race the appends and the crash
    const auto run = append_until_machine_crash(options, crash_after);
    ASSERT_GE(run.acks.size(), crash_after);
    lost += expect_no_silent_loss(dir, run);
    acked += run.acks.size();
  }
  std::cout << "kFast machine crashes with a 1 ms background sync: " << acked
            << " acknowledged appends, " << lost << " lost and announced\n";
}

TEST(RocksDbMachineCrash, LosesNothingAfterACleanFastShutdown) {
  TempDir dir;
  auto file_system = std::make_shared<PageCacheFileSystem>();
  auto options = options_for(dir, Durability::kFast, "boot-a");
  options.fast_sync_interval_ms = 3'600'000;
  options.env = ::rocksdb::NewCompositeEnv(file_system);
  std::vector<Acked> acks;
  {
    auto storage = RocksDbStorage::open(options);
    ASSERT_TRUE(storage) << storage.error().message;
    boost::asio::io_context io;
    for (int i = 0; i < 200; ++i) {
      const int s = i % kStreams;
      std::string data = "clean/" + std::to_string(i);
      (*storage)->streams().async_append(
          {make_append(stream_name(s), data)},
          boost::asio::bind_executor(io, [&acks, s, data](boost::system::error_code ec,
                                                          std::vector<AppendResult> results) {
            ASSERT_FALSE(ec) << ec.message();
            acks.push_back({s, results.at(0).epoch, results.at(0).seq, data});
          }));
    }
    io.run();
  }                      // a clean shutdown: the WAL is fsynced and the clean state recorded
  file_system->crash();  // the machine then goes down with nothing in flight
  const auto dropped = file_system->drop_unsynced_data();
  EXPECT_GT(dropped.files_tracked, 0u) << "the wrapper saw no file";
  ASSERT_EQ(acks.size(), 200u);

  auto storage = RocksDbStorage::open(options_for(dir, Durability::kFast, "boot-b"));
  ASSERT_TRUE(storage) << storage.error().message;
  for (int s = 0; s < kStreams; ++s) {
    std::uint64_t epoch = 0;
    const auto stored = read_all((*storage)->streams(), stream_name(s), &epoch);
    for (const auto& ack : acks) {
      if (ack.stream != s) continue;
      EXPECT_EQ(ack.epoch, epoch) << "a clean shutdown keeps the epoch";
      auto it = stored.find(ack.seq);
      ASSERT_NE(it, stored.end()) << "seq " << ack.seq << " lost after a clean shutdown";
      EXPECT_EQ(it->second, ack.data);
    }
  }
}

TEST(PageCacheFileSystem, DropsWritesThatWereNeverSyncedAndFilesNeverMadeDurable) {
  TempDir dir;
  PageCacheFileSystem file_system;
  const ::rocksdb::FileOptions file_options;
  const ::rocksdb::IOOptions io;
  std::unique_ptr<::rocksdb::FSDirectory> directory;
  ASSERT_TRUE(file_system.NewDirectory(dir.path().string(), io, &directory, nullptr).ok());

  const std::string durable = (dir.path() / "durable").string();
  const std::string fresh = (dir.path() / "fresh").string();
  std::unique_ptr<::rocksdb::FSWritableFile> file;
  ASSERT_TRUE(file_system.NewWritableFile(durable, file_options, &file, nullptr).ok());
  ASSERT_TRUE(file->Append("synced", io, nullptr).ok());
  ASSERT_TRUE(file->Sync(io, nullptr).ok());
  ASSERT_TRUE(directory->Fsync(io, nullptr).ok());
  ASSERT_TRUE(file->Append("+page-cache", io, nullptr).ok());
  std::unique_ptr<::rocksdb::FSWritableFile> other;
  ASSERT_TRUE(file_system.NewWritableFile(fresh, file_options, &other, nullptr).ok());
  ASSERT_TRUE(other->Append("x", io, nullptr).ok());
  ASSERT_TRUE(other->Sync(io, nullptr).ok());  // its data, but not its name

  file_system.crash();
  EXPECT_FALSE(file->Append("after", io, nullptr).ok());
  EXPECT_FALSE(file->Sync(io, nullptr).ok());
  file.reset();
  other.reset();
  const auto dropped = file_system.drop_unsynced_data();
  EXPECT_EQ(dropped.files, 1u);
  EXPECT_EQ(dropped.bytes, std::string("+page-cache").size());
  EXPECT_EQ(std::filesystem::file_size(durable), 6u);
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

TEST(PageCacheFileSystem, UndoesARenameWhoseDirectoryWasNotSynced) {
  TempDir dir;
  PageCacheFileSystem file_system;
  const ::rocksdb::IOOptions io;
  std::unique_ptr<::rocksdb::FSDirectory> directory;
  ASSERT_TRUE(file_system.NewDirectory(dir.path().string(), io, &directory, nullptr).ok());
  const std::string current = (dir.path() / "CURRENT").string();
  const std::string temp = (dir.path() / "CURRENT.tmp").string();
  std::unique_ptr<::rocksdb::FSWritableFile> file;
  ASSERT_TRUE(file_system.NewWritableFile(current, {}, &file, nullptr).ok());
  ASSERT_TRUE(file->Append("old", io, nullptr).ok());
  ASSERT_TRUE(file->Sync(io, nullptr).ok());
  ASSERT_TRUE(directory->Fsync(io, nullptr).ok());
  ASSERT_TRUE(file_system.NewWritableFile(temp, {}, &file, nullptr).ok());
  ASSERT_TRUE(file->Append("new", io, nullptr).ok());
  ASSERT_TRUE(file->Sync(io, nullptr).ok());
  file.reset();
  ASSERT_TRUE(file_system.RenameFile(temp, current, io, nullptr).ok());

  file_system.crash();
  const auto dropped = file_system.drop_unsynced_data();
  EXPECT_EQ(dropped.renames, 1u);
  std::ifstream in(current);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "old");
  EXPECT_FALSE(std::filesystem::exists(temp)) << "its creation was not durable either";
}

}  // namespace
}  // namespace herald::storage
