// The two stock CursorStores: in memory, and one small text file replaced atomically.
//
// File format (text, one stream per line, the header names the format version):
//
//   herald-cursors 1\n
//   <stream> <epoch> <seq>\n        decimal, one line per stream, any order
//   ...
//
// A save writes the whole file to "<path>.tmp", fsyncs it, renames it over <path> and fsyncs the
// directory, so after a crash the file holds either the old or the new cursors, never a mix. A
// leftover "<path>.tmp" from a crash is ignored and overwritten.

#include <charconv>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "herald/client.h"
#include "posix_file.h"

namespace herald {
namespace {

constexpr std::string_view kHeader = "herald-cursors 1";

class MemoryCursorStore final : public CursorStore {
 public:
  Cursor load(std::uint64_t stream) override {
    auto it = cursors_.find(stream);
    return it == cursors_.end() ? Cursor{} : it->second;
  }
  void save(std::uint64_t stream, Cursor cursor) override { cursors_[stream] = cursor; }

 private:
  std::map<std::uint64_t, Cursor> cursors_;
};

bool parse_u64(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

class FileCursorStore final : public CursorStore {
 public:
  explicit FileCursorStore(std::filesystem::path path)
      : path_(std::move(path)), tmp_path_(path_.string() + ".tmp") {
    read_file();
  }

  Cursor load(std::uint64_t stream) override {
    auto it = cursors_.find(stream);
    return it == cursors_.end() ? Cursor{} : it->second;
  }

  void save(std::uint64_t stream, Cursor cursor) override {
    cursors_[stream] = cursor;
    std::string text(kHeader);
    text.push_back('\n');
    for (const auto& [s, c] : cursors_) {
      text += std::to_string(s) + ' ' + std::to_string(c.epoch) + ' ' + std::to_string(c.seq);
      text.push_back('\n');
    }
    detail::replace_file_atomically(path_, tmp_path_, text);
  }

 private:
  [[noreturn]] void corrupt(std::size_t line_no, std::string_view what) const {
    throw std::runtime_error("herald: corrupt cursor file " + path_.string() + " (line " +
                             std::to_string(line_no) + "): " + std::string(what));
  }

  void read_file() {
    std::string text;
    if (!detail::read_whole_file(path_, text)) return;  // no file yet: no cursors
    if (text.empty() || text.back() != '\n') corrupt(1, "empty or not ending in a newline");
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t eol = text.find('\n', pos);
      const std::string_view line(text.data() + pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      if (line_no == 1) {
        if (line != kHeader) corrupt(line_no, "unknown header");
        continue;
      }
      std::uint64_t fields[3] = {};
      std::size_t field = 0;
      std::size_t start = 0;
      while (start <= line.size()) {
        std::size_t sp = line.find(' ', start);
        if (sp == std::string_view::npos) sp = line.size();
        if (field == 3 || !parse_u64(line.substr(start, sp - start), fields[field])) {
          corrupt(line_no, "expected \"<stream> <epoch> <seq>\"");
        }
        ++field;
        start = sp + 1;
      }
      if (field != 3) corrupt(line_no, "expected \"<stream> <epoch> <seq>\"");
      if (!cursors_.emplace(fields[0], Cursor{fields[1], fields[2]}).second) {
        corrupt(line_no, "stream listed twice");
      }
    }
  }

  std::filesystem::path path_;
  std::filesystem::path tmp_path_;
  std::map<std::uint64_t, Cursor> cursors_;
};

}  // namespace

std::shared_ptr<CursorStore> make_file_cursor_store(std::filesystem::path path) {
  return std::make_shared<FileCursorStore>(std::move(path));
}

std::shared_ptr<CursorStore> make_memory_cursor_store() {
  return std::make_shared<MemoryCursorStore>();
}

}  // namespace herald
