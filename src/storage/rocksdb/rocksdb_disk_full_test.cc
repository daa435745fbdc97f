// A full disk and failed writes (docs/storage.md, "Disk full and failed writes"): the free-space
// reserve refuses new entries before RocksDB meets ENOSPC, and a write that failed anyway is
// resumed from without a restart when RocksDB can, with no sequence number reused or skipped.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/system/errc.hpp>

#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

using testing::append_and_wait;
using testing::gated_env;
using testing::make_append;
using testing::TempDir;
using testing::WalSyncGate;
using testing::write_and_wait;

constexpr std::uint64_t kReserve = 64u << 20;
constexpr auto kSafetyTimeout = std::chrono::seconds(30);

// A disk whose free space the test sets.
struct FakeDisk {
  std::shared_ptr<std::atomic<std::uint64_t>> free_bytes =
      std::make_shared<std::atomic<std::uint64_t>>(1u << 30);

  RocksDbOptions options_for(const TempDir& dir) const {
    RocksDbOptions options;
    options.path = dir.db_path();
    options.boot_id = "boot-a";
    options.min_free_bytes = kReserve;
    options.free_space_check_interval_ms = 3'600'000;  // the test checks when it wants to
    options.free_space_probe = [free = free_bytes](const std::string&) {
      return std::optional<std::uint64_t>(free->load());
    };
    return options;
  }
};

std::unique_ptr<RocksDbStorage> open_or_die(const RocksDbOptions& options) {
  auto storage = RocksDbStorage::open(options);
  if (!storage) {
    ADD_FAILURE() << storage.error().message;
    return nullptr;
  }
  return std::move(*storage);
}

std::vector<std::uint64_t> stored_seqs(StreamStore& store, std::string_view stream) {
  auto read = store.read({.stream = stream, .max_entries = 1'000'000, .max_bytes = 1u << 30});
  EXPECT_TRUE(read);
  std::vector<std::uint64_t> seqs;
  if (read) {
    for (const auto& e : read->entries) seqs.push_back(e.seq);
  }
  return seqs;
}

std::vector<std::uint64_t> one_to(std::uint64_t n) {
  std::vector<std::uint64_t> seqs(n);
  std::iota(seqs.begin(), seqs.end(), 1u);
  return seqs;
}

TEST(RocksDbDiskFull, RefusesNewEntriesBelowTheReserveAndAcceptsAgainOnceSpaceReturns) {
  TempDir dir;
  FakeDisk disk;
  auto storage = open_or_die(disk.options_for(dir));
  ASSERT_TRUE(storage);
  ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("s", "before")}).ec);

  disk.free_bytes->store(kReserve - 1);
  storage->database().check_free_space_now();
  EXPECT_TRUE(storage->database().free_space().below_reserve());
  auto refused = append_and_wait(storage->streams(), {make_append("s", "refused")});
  ASSERT_TRUE(refused.completed);
  EXPECT_EQ(refused.ec, RocksDbError::kStorageFull);
  EXPECT_EQ(refused.ec, boost::system::errc::no_space_on_device);
  EXPECT_EQ(storage->streams().head("s")->head_seq, 1u) << "a refused append took a number";
  EXPECT_TRUE(storage->database().healthy()) << "a refusal is not a failure";

  disk.free_bytes->store(kReserve);
  storage->database().check_free_space_now();
  auto accepted = append_and_wait(storage->streams(), {make_append("s", "after")});
  ASSERT_FALSE(accepted.ec) << accepted.ec.message();
  EXPECT_EQ(accepted.results.at(0).seq, 2u);
  EXPECT_EQ(stored_seqs(storage->streams(), "s"), one_to(2));
}

TEST(RocksDbDiskFull, LetsWhatFinishesOrFreesAcceptedMessagesUseTheReserve) {
  TempDir dir;
  FakeDisk disk;
  auto storage = open_or_die(disk.options_for(dir));
  ASSERT_TRUE(storage);
  auto first = append_and_wait(storage->streams(), {make_append("s", "accepted")});
  ASSERT_FALSE(first.ec);

  disk.free_bytes->store(0);
  storage->database().check_free_space_now();

  // Records, deletions, tombstones and acked cursors add no entry: they pass.
  AppendBatch bookkeeping;
  bookkeeping.now_ms = 1'000;
  bookkeeping.put_records.push_back({"msg/app/1", "{\"state\":\"delivered\"}", 0});
  bookkeeping.delete_records.push_back("sched/app/1");
  bookkeeping.tombstones.push_back({"s", 1, "m"});
  bookkeeping.acked_cursors.push_back({"device", "s", {first.results[0].epoch, 1, 1'000}});
  auto passed = write_and_wait(storage->streams(), std::move(bookkeeping));
  ASSERT_FALSE(passed.ec) << passed.ec.message();
  EXPECT_EQ(passed.outcome.tombstoned, std::vector<bool>{true});

  // An entry that delivers what was accepted earlier (a scheduled send firing) passes too.
  AppendBatch fire;
  fire.now_ms = 1'000;
  fire.entries.push_back(make_append("s", "scheduled earlier"));
  fire.may_use_reserve = true;
  auto fired = write_and_wait(storage->streams(), std::move(fire));
  ASSERT_FALSE(fired.ec) << fired.ec.message();
  EXPECT_EQ(fired.outcome.results.at(0).seq, 2u);

  // A new message does not.
  AppendBatch fresh;
  fresh.now_ms = 1'000;
  fresh.entries.push_back(make_append("s", "new"));
  fresh.put_records.push_back({"msg/app/2", "{}", 0});
  auto refused = write_and_wait(storage->streams(), std::move(fresh));
  EXPECT_EQ(refused.ec, RocksDbError::kStorageFull);
  auto record = storage->records().get("msg/app/2", 0);
  ASSERT_TRUE(record);
  EXPECT_FALSE(record->has_value()) << "a refused batch wrote its record";
}

TEST(RocksDbDiskFull, WatchesTheFreeSpaceByItselfWithoutAnAppendAsking) {
  TempDir dir;
  FakeDisk disk;
  auto options = disk.options_for(dir);
  options.free_space_check_interval_ms = 1;
  disk.free_bytes->store(0);
  auto storage = open_or_die(options);
  ASSERT_TRUE(storage);
  EXPECT_TRUE(storage->database().free_space().below_reserve()) << "checked at open";
  EXPECT_EQ(append_and_wait(storage->streams(), {make_append("s", "x")}).ec,
            RocksDbError::kStorageFull);
  disk.free_bytes->store(kReserve * 2);
  // The maintenance thread reads it again within a millisecond: wait for two more readings (the
  // first may have begun before the store).
  auto& guard = storage->database().free_space();
  const auto seen = guard.checks();
  ASSERT_GT(guard.wait_for_check_after(seen + 1, kSafetyTimeout), seen + 1);
  EXPECT_FALSE(storage->database().free_space().below_reserve());
  EXPECT_EQ(storage->database().free_space().free_bytes(), kReserve * 2);
  EXPECT_FALSE(append_and_wait(storage->streams(), {make_append("s", "x")}).ec);
}

TEST(RocksDbDiskFull, ResumesByItselfAfterAWalWriteFailedForLackOfSpace) {
  TempDir dir;
  WalSyncGate gate;
  RocksDbOptions options;
  options.path = dir.db_path();
  options.boot_id = "boot-a";
  options.env = gated_env(gate);
  std::uint64_t head = 0;
  {
    auto storage = open_or_die(options);
    ASSERT_TRUE(storage);
    for (int i = 0; i < 3; ++i) {
      ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("s", "ok")}).ec);
    }
    gate.fail_next_syncs(1, /*no_space=*/true);
    auto failed = append_and_wait(storage->streams(), {make_append("s", "unknown")});
    EXPECT_EQ(failed.ec, RocksDbError::kIoError) << "not acknowledged: its outcome is unknown";
    EXPECT_FALSE(storage->database().healthy());

    ASSERT_TRUE(storage->database().wait_until_recovered(kSafetyTimeout))
        << "no resume after ENOSPC; needs_restart=" << storage->database().needs_restart();
    EXPECT_FALSE(storage->database().needs_restart());
    auto next = append_and_wait(storage->streams(), {make_append("s", "after")});
    ASSERT_FALSE(next.ec) << next.ec.message();
    // The failed append's number was not kept: the next one follows the last acknowledged one.
    EXPECT_EQ(next.results.at(0).seq, 4u);
    head = storage->streams().head("s")->head_seq;
    EXPECT_EQ(stored_seqs(storage->streams(), "s"), one_to(head));
  }
  // Reopened: the numbering is whole, and the acknowledged "after" holds seq 4.
  options.env = nullptr;
  auto storage = open_or_die(options);
  ASSERT_TRUE(storage);
  auto read = storage->streams().read({.stream = "s", .max_entries = 100});
  ASSERT_TRUE(read);
  EXPECT_EQ(read->head_seq, head);
  EXPECT_EQ(stored_seqs(storage->streams(), "s"), one_to(read->head_seq));
  ASSERT_GE(read->entries.size(), 4u);
  EXPECT_EQ(read->entries[3].data, "after");
}

TEST(RocksDbDiskFull, SaysARestartIsNeededWhenTheEngineCannotResume) {
  TempDir dir;
  WalSyncGate gate;
  RocksDbOptions options;
  options.path = dir.db_path();
  options.boot_id = "boot-a";
  options.env = gated_env(gate);
  auto storage = open_or_die(options);
  ASSERT_TRUE(storage);
  ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("s", "ok")}).ec);
  gate.fail_next_syncs(1);  // EIO: RocksDB treats a failed WAL sync as fatal
  EXPECT_TRUE(append_and_wait(storage->streams(), {make_append("s", "unknown")}).ec);
  EXPECT_FALSE(storage->database().wait_until_recovered(kSafetyTimeout));
  EXPECT_TRUE(storage->database().needs_restart());
  EXPECT_TRUE(append_and_wait(storage->streams(), {make_append("s", "refused")}).ec);
  EXPECT_EQ(storage->streams().head("s")->head_seq, 1u);
}

}  // namespace
}  // namespace herald::storage
