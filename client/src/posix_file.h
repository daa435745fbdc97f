// Small POSIX file helpers for the cursor stores: whole-file reads, atomic replacement, appends
// that survive a crash. Every failure throws std::system_error whose text names the path, since
// these run at the edges (start-up, CursorStore::save) where an exception is the contract.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace herald::detail {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// Throws std::system_error(errno) with "<what> <path>" in the message.
[[noreturn]] void throw_errno(std::string_view what, const std::filesystem::path& path);

// Reads the whole file into `out`. False when it does not exist; throws on any other error.
bool read_whole_file(const std::filesystem::path& path, std::string& out);

// Writes all of `data` at the file offset of `fd` (retrying short writes and EINTR).
void write_all(int fd, std::string_view data, const std::filesystem::path& path);

// fsyncs the directory that holds `path`, making a create or rename in it durable.
void fsync_parent_dir(const std::filesystem::path& path);

// Replaces `path` with `contents`: write `tmp_path`, fsync, rename over `path`, fsync the
// directory. After a crash `path` holds the old or the new contents, never a mix.
void replace_file_atomically(const std::filesystem::path& path,
                             const std::filesystem::path& tmp_path, std::string_view contents);

}  // namespace herald::detail
