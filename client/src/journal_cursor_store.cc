#include "herald/journal_cursor_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>

#include "posix_file.h"

namespace herald {
namespace {

namespace json = boost::json;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]) << 16 |
                                              static_cast<unsigned char>(in[i + 1]) << 8 |
                                              static_cast<unsigned char>(in[i + 2]));
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const std::size_t rest = in.size() - i; rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]) << 16);
    if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The data field: the JSON value itself when it is valid JSON, else base64 with "binary":true.
void append_data(std::string& out, const Message& m) {
  if (!m.binary) {
    boost::system::error_code ec;
    json::value v = json::parse(m.data, ec);
    if (!ec) {
      // Valid JSON can hold a raw line break only as whitespace, so re-serialising changes
      // nothing but the layout; otherwise keep the sender's exact bytes.
      if (m.data.find_first_of("\r\n") == std::string::npos) {
        out += ",\"data\":";
        out += m.data;
      } else {
        out += ",\"data\":";
        out += json::serialize(v);
      }
      return;
    }
  }
  out += ",\"binary\":true,\"data\":\"";
  out += base64(m.data);
  out += '"';
}

bool get_u64(const json::object& o, std::string_view key, std::uint64_t& out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return false;
  if (const auto* u = v->if_uint64()) {
    out = *u;
    return true;
  }
  if (const auto* i = v->if_int64(); i != nullptr && *i >= 0) {
    out = static_cast<std::uint64_t>(*i);
    return true;
  }
  return false;
}

// The keys every line starts with, up to sent_at_ms.
std::string line_head(std::string_view device_id, const std::string& app, std::uint64_t stream,
                      std::uint64_t epoch, std::uint64_t seq, const std::string& id,
                      std::int64_t sent_at_ms) {
  std::string out = "{\"device\":";
  out += json::serialize(json::string_view(device_id.data(), device_id.size()));
  out += ",\"app\":";
  out += json::serialize(json::string_view(app));
  out += ",\"stream\":" + std::to_string(stream);
  out += ",\"epoch\":" + std::to_string(epoch);
  out += ",\"seq\":" + std::to_string(seq);
  out += ",\"id\":";
  out += json::serialize(json::string_view(id));
  out += ",\"sent_at_ms\":" + std::to_string(sent_at_ms);
  return out;
}

// After the head, for a topic or broadcast stream only (inbox lines stay as they always were):
// "topic":"<name>", or "broadcast":true.
void append_topic(std::string& out, const std::string& topic, bool broadcast) {
  if (!topic.empty()) {
    out += ",\"topic\":";
    out += json::serialize(json::string_view(topic));
  } else if (broadcast) {
    out += ",\"broadcast\":true";
  }
}

}  // namespace

std::string JournalCursorStore::format_line(std::string_view device_id, const Message& m) {
  std::string out = line_head(device_id, m.app, m.stream, m.epoch, m.seq, m.id, m.sent_at_ms);
  append_topic(out, m.topic, m.broadcast);
  append_data(out, m);
  out += '}';
  return out;
}

std::string JournalCursorStore::format_line(std::string_view device_id, const Recall& r) {
  std::string out = line_head(device_id, r.app, r.stream, r.epoch, r.seq, r.id, r.sent_at_ms);
  append_topic(out, r.topic, r.broadcast);
  out += ",\"recall\":";
  out += json::serialize(json::string_view(r.recalled_id));
  out += '}';
  return out;
}

JournalCursorStore::JournalCursorStore(std::filesystem::path path, std::string device_id)
    : path_(std::move(path)), device_id_(std::move(device_id)) {
  struct stat st {};
  const bool existed = ::stat(path_.c_str(), &st) == 0;
  detail::UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) detail::throw_errno("cannot open journal", path_);
  if (!existed) {
    if (::fsync(fd.get()) != 0) detail::throw_errno("cannot fsync", path_);
    detail::fsync_parent_dir(path_);
  }
  fd_ = fd.release();
  try {
    recover();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

JournalCursorStore::~JournalCursorStore() {
  try {
    flush();
  } catch (...) {
    // Lines lost here were never saved, so the next start delivers those messages again.
  }
  ::close(fd_);
}

void JournalCursorStore::recover() {
  // Streams through the file: memory stays at one chunk plus one line.
  std::string carry;  // the start of a line not yet complete
  char buf[64 * 1024];
  std::uint64_t line_no = 0;
  off_t offset = 0;        // bytes read so far
  off_t complete_end = 0;  // end of the last complete line
  json::parse_options options;
  options.allow_invalid_utf8 = true;  // app names and ids are written as received
  for (;;) {
    const ssize_t n = ::pread(fd_, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      detail::throw_errno("cannot read journal", path_);
    }
    if (n == 0) break;
    offset += n;
    carry.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t eol; (eol = carry.find('\n', start)) != std::string::npos; start = eol + 1) {
      ++line_no;
      const std::string_view line(carry.data() + start, eol - start);
      auto bad = [&](std::string_view why) {
        return std::runtime_error("herald: corrupt journal " + path_.string() + " (line " +
                                  std::to_string(line_no) + "): " + std::string(why));
      };
      boost::system::error_code ec;
      json::value v = json::parse(line, ec, {}, options);
      if (ec || !v.is_object()) throw bad("not a JSON object");
      const json::object& o = v.get_object();
      const json::value* device = o.if_contains("device");
      if (device == nullptr || !device->is_string()) throw bad("no device");
      if (device->get_string() != device_id_) {
        throw bad("written for device \"" + std::string(device->get_string()) + "\", not \"" +
                  device_id_ + "\"");
      }
      Cursor c;
      std::uint64_t stream = 0;
      if (!get_u64(o, "stream", stream) || !get_u64(o, "epoch", c.epoch) ||
          !get_u64(o, "seq", c.seq)) {
        throw bad("no stream, epoch or seq");
      }
      cursors_[stream] = c;
      ++recovered_lines_;
      complete_end += static_cast<off_t>(eol - start + 1);
    }
    carry.erase(0, start);
  }
  if (!carry.empty()) {
    // A crash in the middle of a write: the line was never saved, so its message was never
    // acked and will be delivered again.
    truncated_bytes_ = carry.size();
    if (::ftruncate(fd_, complete_end) != 0) detail::throw_errno("cannot truncate", path_);
    if (::fsync(fd_) != 0) detail::throw_errno("cannot fsync", path_);
  }
}

void JournalCursorStore::append(const Message& m) {
  pending_ += format_line(device_id_, m);
  pending_ += '\n';
}

void JournalCursorStore::append(const Recall& r) {
  pending_ += format_line(device_id_, r);
  pending_ += '\n';
}

CursorStore::Cursor JournalCursorStore::load(std::uint64_t stream) {
  auto it = cursors_.find(stream);
  return it == cursors_.end() ? Cursor{} : it->second;
}

void JournalCursorStore::save(std::uint64_t stream, Cursor cursor) {
  flush();
  cursors_[stream] = cursor;
}

void JournalCursorStore::flush() {
  if (pending_.empty()) return;
  // One write per batch; O_APPEND puts it after the last complete line.
  detail::write_all(fd_, pending_, path_);
  pending_.clear();
  if (pending_.capacity() > 64 * 1024) pending_.shrink_to_fit();
  if (::fdatasync(fd_) != 0) detail::throw_errno("cannot fdatasync", path_);
}

}  // namespace herald
