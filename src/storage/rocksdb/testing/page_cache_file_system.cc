#include "storage/rocksdb/testing/page_cache_file_system.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

namespace herald::storage::testing {
namespace {

namespace fs = std::filesystem;

::rocksdb::IOStatus power_lost() {
  return ::rocksdb::IOStatus::IOError("simulated machine crash: the disk is gone");
}

// A directory's path as the key of its pending changes: normalised, no trailing separator.
std::string directory_key(const std::string& path) {
  auto normal = fs::path(path).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();
  return normal.string();
}

std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// A file opened for writing: every byte goes to the real file, and the file system learns how
// far it was written and how far it was synced.
class PageCacheWritableFile final : public ::rocksdb::FSWritableFileOwnerWrapper {
 public:
  PageCacheWritableFile(std::unique_ptr<::rocksdb::FSWritableFile> file, std::string path,
                        PageCacheFileSystem& file_system)
      : FSWritableFileOwnerWrapper(std::move(file)),
        path_(std::move(path)),
        file_system_(file_system) {}

  ::rocksdb::IOStatus Append(const ::rocksdb::Slice& data, const ::rocksdb::IOOptions& options,
                             ::rocksdb::IODebugContext* dbg) override {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    const auto end = target()->GetFileSize(options, dbg) + data.size();
    auto status = target()->Append(data, options, dbg);
    if (status.ok()) file_system_.note_written(path_, end);
    return status;
  }
  ::rocksdb::IOStatus Append(const ::rocksdb::Slice& data, const ::rocksdb::IOOptions& options,
                             const ::rocksdb::DataVerificationInfo& /*verification*/,
                             ::rocksdb::IODebugContext* dbg) override {
    return Append(data, options, dbg);
  }
  ::rocksdb::IOStatus PositionedAppend(const ::rocksdb::Slice& data, std::uint64_t offset,
                                       const ::rocksdb::IOOptions& options,
                                       ::rocksdb::IODebugContext* dbg) override {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    auto status = target()->PositionedAppend(data, offset, options, dbg);
    if (status.ok()) file_system_.note_written(path_, offset + data.size());
    return status;
  }
  ::rocksdb::IOStatus PositionedAppend(const ::rocksdb::Slice& data, std::uint64_t offset,
                                       const ::rocksdb::IOOptions& options,
                                       const ::rocksdb::DataVerificationInfo& /*verification*/,
                                       ::rocksdb::IODebugContext* dbg) override {
    return PositionedAppend(data, offset, options, dbg);
  }
  ::rocksdb::IOStatus Truncate(std::uint64_t size, const ::rocksdb::IOOptions& options,
                               ::rocksdb::IODebugContext* dbg) override {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    auto status = target()->Truncate(size, options, dbg);
    if (status.ok()) file_system_.note_truncated(path_, size);
    return status;
  }
  ::rocksdb::IOStatus Flush(const ::rocksdb::IOOptions& options,
                            ::rocksdb::IODebugContext* dbg) override {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    return target()->Flush(options, dbg);
  }
  ::rocksdb::IOStatus Sync(const ::rocksdb::IOOptions& options,
                           ::rocksdb::IODebugContext* dbg) override {
    return sync(options, dbg, /*full=*/false);
  }
  ::rocksdb::IOStatus Fsync(const ::rocksdb::IOOptions& options,
                            ::rocksdb::IODebugContext* dbg) override {
    return sync(options, dbg, /*full=*/true);
  }
  ::rocksdb::IOStatus RangeSync(std::uint64_t offset, std::uint64_t nbytes,
                                const ::rocksdb::IOOptions& options,
                                ::rocksdb::IODebugContext* dbg) override {
    // Not a durability point (see the header): forwarded, never counted as synced.
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    return target()->RangeSync(offset, nbytes, options, dbg);
  }

 private:
  ::rocksdb::IOStatus sync(const ::rocksdb::IOOptions& options, ::rocksdb::IODebugContext* dbg,
                           bool full) {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    // What the sync covers is what was written when it began; a concurrent append (the WAL is
    // appended to while another thread syncs it) is not covered.
    const auto covered = file_system_.written(path_);
    auto status = full ? target()->Fsync(options, dbg) : target()->Sync(options, dbg);
    if (!status.ok()) return status;
    // A crash while the fsync ran: the power went before it finished, so it did not happen.
    return covered ? file_system_.note_synced(path_, *covered) : file_system_.check_alive();
  }

  std::string path_;
  PageCacheFileSystem& file_system_;
};

class PageCacheDirectory final : public ::rocksdb::FSDirectoryWrapper {
 public:
  PageCacheDirectory(std::unique_ptr<::rocksdb::FSDirectory> directory, std::string path,
                     PageCacheFileSystem& file_system)
      : FSDirectoryWrapper(std::move(directory)),
        path_(std::move(path)),
        file_system_(file_system) {}

  ::rocksdb::IOStatus Fsync(const ::rocksdb::IOOptions& options,
                            ::rocksdb::IODebugContext* dbg) override {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    const auto pending = file_system_.pending_in(path_);
    auto status = FSDirectoryWrapper::Fsync(options, dbg);
    if (!status.ok()) return status;
    return file_system_.note_directory_synced(path_, pending);
  }
  ::rocksdb::IOStatus FsyncWithDirOptions(
      const ::rocksdb::IOOptions& options, ::rocksdb::IODebugContext* dbg,
      const ::rocksdb::DirFsyncOptions& dir_fsync_options) override {
    if (auto alive = file_system_.check_alive(); !alive.ok()) return alive;
    const auto pending = file_system_.pending_in(path_);
    auto status = FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_fsync_options);
    if (!status.ok()) return status;
    return file_system_.note_directory_synced(path_, pending);
  }

 private:
  std::string path_;
  PageCacheFileSystem& file_system_;
};

}  // namespace

PageCacheFileSystem::PageCacheFileSystem() : FileSystemWrapper(::rocksdb::FileSystem::Default()) {}

std::string PageCacheFileSystem::directory_of(const std::string& path) {
  return directory_key(fs::path(path).lexically_normal().parent_path().string());
}

void PageCacheFileSystem::crash() {
  std::lock_guard lock(mutex_);
  crashed_.store(true);
}

::rocksdb::IOStatus PageCacheFileSystem::check_alive() const {
  return crashed_.load() ? power_lost() : ::rocksdb::IOStatus::OK();
}

void PageCacheFileSystem::note_written(const std::string& path, std::uint64_t end) {
  std::lock_guard lock(mutex_);
  auto& file = files_[path];
  file.written = std::max(file.written, end);
}

void PageCacheFileSystem::note_truncated(const std::string& path, std::uint64_t size) {
  std::lock_guard lock(mutex_);
  auto& file = files_[path];
  file.written = size;
  file.synced = std::min(file.synced, size);
}

std::optional<std::uint64_t> PageCacheFileSystem::written(const std::string& path) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  return it->second.written;
}

::rocksdb::IOStatus PageCacheFileSystem::note_synced(const std::string& path,
                                                     std::uint64_t length) {
  std::lock_guard lock(mutex_);
  if (crashed_.load()) return power_lost();
  auto it = files_.find(path);
  // Renamed while open: the new name's entry took the state, and the sync covers it too.
  if (it != files_.end()) it->second.synced = std::max(it->second.synced, length);
  return ::rocksdb::IOStatus::OK();
}

std::size_t PageCacheFileSystem::pending_in(const std::string& directory) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(directory_key(directory));
  return it == pending_.end() ? 0 : it->second.size();
}

::rocksdb::IOStatus PageCacheFileSystem::note_directory_synced(const std::string& directory,
                                                               std::size_t pending) {
  std::lock_guard lock(mutex_);
  if (crashed_.load()) return power_lost();
  auto it = pending_.find(directory_key(directory));
  if (it != pending_.end()) {
    // Only what was pending when the fsync began is now durable.
    auto& ops = it->second;
    ops.erase(ops.begin(),
              ops.begin() + static_cast<std::ptrdiff_t>(std::min(pending, ops.size())));
  }
  return ::rocksdb::IOStatus::OK();
}

::rocksdb::IOStatus PageCacheFileSystem::track_new_file(const std::string& name, bool existed) {
  std::lock_guard lock(mutex_);
  if (crashed_.load()) return power_lost();
  auto& file = files_[name];
  if (!existed) {
    file = {};
    PendingOp created;
    created.path = name;
    pending_[directory_of(name)].push_back(std::move(created));
  }
  return ::rocksdb::IOStatus::OK();
}

::rocksdb::IOStatus PageCacheFileSystem::NewWritableFile(
    const std::string& name, const ::rocksdb::FileOptions& options,
    std::unique_ptr<::rocksdb::FSWritableFile>* result, ::rocksdb::IODebugContext* dbg) {
  if (auto alive = check_alive(); !alive.ok()) return alive;
  auto status = target()->NewWritableFile(name, options, result, dbg);
  if (!status.ok()) return status;
  // A new (or emptied) file: its name is durable only after a directory fsync.
  status = track_new_file(name, /*existed=*/false);
  if (!status.ok()) return status;
  *result = std::make_unique<PageCacheWritableFile>(std::move(*result), name, *this);
  return status;
}

::rocksdb::IOStatus PageCacheFileSystem::ReopenWritableFile(
    const std::string& name, const ::rocksdb::FileOptions& options,
    std::unique_ptr<::rocksdb::FSWritableFile>* result, ::rocksdb::IODebugContext* dbg) {
  if (auto alive = check_alive(); !alive.ok()) return alive;
  std::error_code ec;
  const bool existed = fs::exists(name, ec);
  const auto size = existed ? fs::file_size(name, ec) : 0;
  auto status = target()->ReopenWritableFile(name, options, result, dbg);
  if (!status.ok()) return status;
  {
    std::lock_guard lock(mutex_);
    if (existed && !files_.contains(name)) files_[name] = {.written = size, .synced = size};
  }
  status = track_new_file(name, existed);
  if (!status.ok()) return status;
  *result = std::make_unique<PageCacheWritableFile>(std::move(*result), name, *this);
  return status;
}

::rocksdb::IOStatus PageCacheFileSystem::ReuseWritableFile(
    const std::string& name, const std::string& old_name, const ::rocksdb::FileOptions& options,
    std::unique_ptr<::rocksdb::FSWritableFile>* result, ::rocksdb::IODebugContext* dbg) {
  // Recycled WAL files (recycle_log_file_num) are not modelled; Herald does not use them.
  (void)name, (void)old_name, (void)options, (void)result, (void)dbg;
  return ::rocksdb::IOStatus::NotSupported("PageCacheFileSystem: ReuseWritableFile");
}

::rocksdb::IOStatus PageCacheFileSystem::NewRandomRWFile(
    const std::string& name, const ::rocksdb::FileOptions& options,
    std::unique_ptr<::rocksdb::FSRandomRWFile>* result, ::rocksdb::IODebugContext* dbg) {
  (void)name, (void)options, (void)result, (void)dbg;
  return ::rocksdb::IOStatus::NotSupported("PageCacheFileSystem: NewRandomRWFile");
}

::rocksdb::IOStatus PageCacheFileSystem::NewDirectory(
    const std::string& name, const ::rocksdb::IOOptions& options,
    std::unique_ptr<::rocksdb::FSDirectory>* result, ::rocksdb::IODebugContext* dbg) {
  auto status = target()->NewDirectory(name, options, result, dbg);
  if (!status.ok()) return status;
  *result = std::make_unique<PageCacheDirectory>(std::move(*result), directory_key(name), *this);
  return status;
}

::rocksdb::IOStatus PageCacheFileSystem::RenameFile(const std::string& source,
                                                    const std::string& target_name,
                                                    const ::rocksdb::IOOptions& options,
                                                    ::rocksdb::IODebugContext* dbg) {
  if (auto alive = check_alive(); !alive.ok()) return alive;
  PendingOp op;
  op.rename = true;
  op.path = target_name;
  op.source = source;
  {
    // The target's durable content, to put back if the rename is undone (CURRENT is tiny).
    std::lock_guard lock(mutex_);
    auto tracked = files_.find(target_name);
    if (tracked == files_.end()) {
      op.replaced = read_whole_file(target_name);
    } else if (auto content = read_whole_file(target_name)) {
      content->resize(std::min<std::uint64_t>(content->size(), tracked->second.synced));
      op.replaced = std::move(content);
    }
  }
  auto status = target()->RenameFile(source, target_name, options, dbg);
  if (!status.ok()) return status;
  std::lock_guard lock(mutex_);
  if (crashed_.load()) return power_lost();
  auto tracked = files_.find(source);
  if (tracked != files_.end()) {
    files_[target_name] = tracked->second;
    files_.erase(source);
  } else {
    files_.erase(target_name);  // the source was durable as it was: so is the target's content
  }
  pending_[directory_of(target_name)].push_back(std::move(op));
  return ::rocksdb::IOStatus::OK();
}

::rocksdb::IOStatus PageCacheFileSystem::LinkFile(const std::string& source,
                                                  const std::string& target_name,
                                                  const ::rocksdb::IOOptions& options,
                                                  ::rocksdb::IODebugContext* dbg) {
  (void)source, (void)target_name, (void)options, (void)dbg;
  return ::rocksdb::IOStatus::NotSupported("PageCacheFileSystem: LinkFile");
}

::rocksdb::IOStatus PageCacheFileSystem::DeleteFile(const std::string& name,
                                                    const ::rocksdb::IOOptions& options,
                                                    ::rocksdb::IODebugContext* dbg) {
  if (auto alive = check_alive(); !alive.ok()) return alive;
  auto status = target()->DeleteFile(name, options, dbg);
  if (status.ok()) {
    std::lock_guard lock(mutex_);
    files_.erase(name);
  }
  return status;
}

::rocksdb::IOStatus PageCacheFileSystem::Truncate(const std::string& name, size_t size,
                                                  const ::rocksdb::IOOptions& options,
                                                  ::rocksdb::IODebugContext* dbg) {
  if (auto alive = check_alive(); !alive.ok()) return alive;
  auto status = target()->Truncate(name, size, options, dbg);
  if (status.ok()) note_truncated(name, size);
  return status;
}

PageCacheFileSystem::Dropped PageCacheFileSystem::drop_unsynced_data() {
  std::lock_guard lock(mutex_);
  Dropped dropped;
  dropped.files_tracked = files_.size();
  std::error_code ec;
  // Directory entries first, newest change first, so that a file created and then renamed
  // goes back to its first name before its creation is undone.
  for (auto& [directory, ops] : pending_) {
    for (auto op = ops.rbegin(); op != ops.rend(); ++op) {
      if (!op->rename) {
        if (fs::remove(op->path, ec)) ++dropped.files;
        files_.erase(op->path);
        continue;
      }
      ++dropped.renames;
      if (fs::exists(op->path, ec)) fs::rename(op->path, op->source, ec);
      auto tracked = files_.find(op->path);
      if (tracked != files_.end()) {
        files_[op->source] = tracked->second;
        files_.erase(tracked);
      }
      if (op->replaced) {
        std::ofstream out(op->path, std::ios::binary | std::ios::trunc);
        out << *op->replaced;
      }
    }
  }
  pending_.clear();
  for (const auto& [path, file] : files_) {
    const auto size = fs::file_size(path, ec);
    if (ec) continue;  // deleted
    if (size > file.synced) {
      dropped.bytes += size - file.synced;
      fs::resize_file(path, file.synced, ec);
    }
  }
  files_.clear();
  crashed_.store(false);
  return dropped;
}

}  // namespace herald::storage::testing
