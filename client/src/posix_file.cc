#include "posix_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace herald::detail {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

void throw_errno(std::string_view what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::generic_category(),
                          "herald: " + std::string(what) + " " + path.string());
}

bool read_whole_file(const std::filesystem::path& path, std::string& out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    throw_errno("cannot open", path);
  }
  out.clear();
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

void write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void fsync_parent_dir(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) throw_errno("cannot open directory", dir);
  if (::fsync(fd.get()) != 0) throw_errno("cannot fsync directory", dir);
}

void replace_file_atomically(const std::filesystem::path& path,
                             const std::filesystem::path& tmp_path, std::string_view contents) {
  {
    UniqueFd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) throw_errno("cannot create", tmp_path);
    write_all(fd.get(), contents, tmp_path);
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync", tmp_path);
  }
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) throw_errno("cannot rename onto", path);
  fsync_parent_dir(path);
}

}  // namespace herald::detail
