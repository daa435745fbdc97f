// PageCacheFileSystem: a RocksDB FileSystem for tests that remembers what the OS would still have
// after a machine crash (power loss, kernel panic), and can simulate one.
//
//   every write ──▶ the real file (the "page cache": a live process sees it at once)
//   Sync/Fsync  ──▶ the file's synced length := what was written when the sync began
//   create, rename in a directory ──▶ pending in that directory until it is fsynced
//
//   crash()              from now on every write, sync, create, rename and delete fails, as if
//                        the machine had stopped (the process goes on, as RocksDB would see it)
//   drop_unsynced_data() after the database is closed: undo every pending rename and creation
//                        (newest first), then truncate every file written through this file
//                        system to its synced length
//
// The model, and where it is kinder or harsher than a real disk:
// - Only data fsynced with Sync or Fsync survives. RangeSync (sync_file_range) does not count:
//   it writes pages back but does not persist the file's size, so it promises nothing after a
//   crash. (RocksDB only calls it with bytes_per_sync, which Herald leaves at 0.)
// - A file's creation or a rename survives only once its directory was fsynced afterwards
//   (FSDirectory::Fsync or FsyncWithDirOptions); undoing a rename moves the file back and
//   restores the durable content the target had before (CURRENT, say).
// - Deletions take effect at once. A real disk may resurrect a file whose deletion was not
//   made durable; RocksDB deletes only files it no longer needs and ignores strays at open, so
//   this is the harsher side and loses nothing the database still refers to.
// - Files that existed before this file system was created, and files never opened for
//   writing through it, count as durable.
// - The info log ("LOG") goes through NewLogger, which is not wrapped: it is not data.
//
// Thread-safe. Must outlive every database opened with it (wrap it in an Env with
// rocksdb::NewCompositeEnv and keep that Env alive).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <rocksdb/file_system.h>

namespace herald::storage::testing {

class PageCacheFileSystem final : public ::rocksdb::FileSystemWrapper {
 public:
  // What drop_unsynced_data() threw away, so that a test can tell "nothing was lost because
  // nothing was unsynced" from "the wrapper did nothing".
  struct Dropped {
    std::uint64_t bytes = 0;          // cut from the ends of files
    std::uint64_t files = 0;          // created and never made durable: removed
    std::uint64_t renames = 0;        // undone
    std::uint64_t files_tracked = 0;  // files written through this file system
  };

  PageCacheFileSystem();

  const char* Name() const override { return "PageCacheFileSystem"; }

  // The machine stops: every later mutating call fails with an I/O error. A sync that was in
  // progress when this is called fails too and counts as not done (power lost mid-fsync).
  void crash();
  [[nodiscard]] bool crashed() const { return crashed_.load(); }

  // Call after crash() and after the database using this file system is destroyed: leaves on
  // disk exactly what survived the simulated power loss. Files are then durable as they are,
  // and the file system accepts writes again (as after a reboot).
  Dropped drop_unsynced_data();

  ::rocksdb::IOStatus NewWritableFile(const std::string& name,
                                      const ::rocksdb::FileOptions& options,
                                      std::unique_ptr<::rocksdb::FSWritableFile>* result,
                                      ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus ReopenWritableFile(const std::string& name,
                                         const ::rocksdb::FileOptions& options,
                                         std::unique_ptr<::rocksdb::FSWritableFile>* result,
                                         ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                        const ::rocksdb::FileOptions& options,
                                        std::unique_ptr<::rocksdb::FSWritableFile>* result,
                                        ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus NewRandomRWFile(const std::string& name,
                                      const ::rocksdb::FileOptions& options,
                                      std::unique_ptr<::rocksdb::FSRandomRWFile>* result,
                                      ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus NewDirectory(const std::string& name, const ::rocksdb::IOOptions& options,
                                   std::unique_ptr<::rocksdb::FSDirectory>* result,
                                   ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus RenameFile(const std::string& source, const std::string& target,
                                 const ::rocksdb::IOOptions& options,
                                 ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus LinkFile(const std::string& source, const std::string& target,
                               const ::rocksdb::IOOptions& options,
                               ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus DeleteFile(const std::string& name, const ::rocksdb::IOOptions& options,
                                 ::rocksdb::IODebugContext* dbg) override;
  ::rocksdb::IOStatus Truncate(const std::string& name, size_t size,
                               const ::rocksdb::IOOptions& options,
                               ::rocksdb::IODebugContext* dbg) override;

  // Called by the wrapped files and directories (page_cache_file_system.cc).
  ::rocksdb::IOStatus check_alive() const;
  void note_written(const std::string& path, std::uint64_t end);
  void note_truncated(const std::string& path, std::uint64_t size);
  [[nodiscard]] std::optional<std::uint64_t> written(const std::string& path);
  ::rocksdb::IOStatus note_synced(const std::string& path, std::uint64_t length);
  [[nodiscard]] std::size_t pending_in(const std::string& directory);
  ::rocksdb::IOStatus note_directory_synced(const std::string& directory, std::size_t pending);

 private:
  struct FileState {
    std::uint64_t written = 0;
    std::uint64_t synced = 0;
  };
  // A change to a directory entry that is not durable until the directory is fsynced.
  struct PendingOp {
    bool rename = false;                  // false: `path` was created
    std::string path;                     // created, or the rename's target
    std::string source;                   // rename only
    std::optional<std::string> replaced;  // rename only: the target's durable content before
  };

  static std::string directory_of(const std::string& path);
  ::rocksdb::IOStatus track_new_file(const std::string& name, bool existed);

  std::atomic<bool> crashed_{false};
  std::mutex mutex_;
  std::map<std::string, FileState> files_;                 // guarded by mutex_
  std::map<std::string, std::vector<PendingOp>> pending_;  // by directory; guarded by mutex_
};

}  // namespace herald::storage::testing
