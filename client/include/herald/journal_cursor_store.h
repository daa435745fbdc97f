// JournalCursorStore: exactly-once delivery into an append-only file.
//
// The journal is at once the application's output and its cursor store. The message handler
// appends one line per message; save() writes the lines of the batch and fdatasyncs them; at
// start-up the cursor of each stream is rebuilt from the last complete line of that stream:
//
//   {"device":"d1","app":"news","stream":0,"epoch":1,"seq":7,"id":"m1","sent_at_ms":…,"data":{…}}\n
//   {"device":"d1","app":"news","stream":0,"epoch":1,"seq":8,"id":"m2","sent_at_ms":…,"data":[…]}\n
//   {"device":"d1","app":"news","stream":0,"epoch":1,"seq":9,"id":"m3","sent_a         <- torn
//
// Because the cursor is read back from the very lines that record the messages, a message whose
// line is in the file is never delivered again, and a message whose line is not (still buffered,
// or torn by a crash and cut at the next start) is delivered again: a kill -9 at any moment
// neither loses nor repeats a line. fdatasync in save() extends this to a machine crash for every
// batch the client has acked. Recalls are journaled the same way, by the recall handler calling
// append(recall), so a recall is neither lost nor repeated either. Cursor moves without a line (a
// new epoch, a truncation, a tombstone, a message or recall the client skips, a topic stream's
// cursor moved to its start_seq) are not written: after a restart the server reports them again
// (the list of streams repeats the start), and they again reach no handler.
//
// Line format: one JSON object per line, keys in this order: device, app, stream, epoch, seq,
// id, sent_at_ms, then for a topic stream `topic` (its name) or for an app's broadcast stream
// `broadcast` (true), neither for the inbox, then for a message `data`, for a recall `recall`:
//
//   {"device":"d1","app":"news","stream":0,"epoch":1,"seq":8,"id":"m2","sent_at_ms":…,"data":[…]}
//   {"device":"d1","app":"news","stream":0,"epoch":1,"seq":9,"id":"r","sent_at_ms":…,"recall":"m2"}
//   {"device":"d1","app":"news","stream":3,"epoch":1,"seq":41,"id":"m7","sent_at_ms":…,
//    "topic":"sport","data":{…}}                                       (one line in the file)
//   {"device":"d1","app":"news","stream":4,"epoch":1,"seq":2,"id":"m8","sent_at_ms":…,
//    "broadcast":true,"data":{…}}
//
// A message's `data` is its JSON value (re-serialised on one line if the text had line breaks); a
// binary message (or, defensively, JSON text that does not parse) carries "binary":true and
// `data` as a base64 string instead. A recall's `recall` is the id of the message recalled (a
// JSON string) and its `id` the recall entry's own id.
//
// Not thread-safe: use it from the client's handlers and CursorStore calls only (its strand).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "herald/client.h"

namespace herald {

class JournalCursorStore final : public CursorStore {
 public:
  // Opens `path`, creating it if missing. Each complete line must be a journal line of
  // `device_id`; otherwise throws std::runtime_error naming the path and line. Bytes after the
  // last newline (a line torn by a crash) are truncated away. Throws std::system_error on I/O
  // errors.
  JournalCursorStore(std::filesystem::path path, std::string device_id);
  ~JournalCursorStore() override;  // writes lines still buffered, best effort
  JournalCursorStore(const JournalCursorStore&) = delete;
  JournalCursorStore& operator=(const JournalCursorStore&) = delete;

  // Buffers the line of `m`; it reaches the file with the next save(). Call it from the message
  // handler, once per message.
  void append(const Message& m);
  // Buffers the line of `r`, likewise. Call it from the recall handler, once per recall.
  void append(const Recall& r);

  Cursor load(std::uint64_t stream) override;
  // Writes the buffered lines and fdatasyncs the file; durable when it returns.
  void save(std::uint64_t stream, Cursor cursor) override;

  // Complete lines found at start-up, and how many bytes of a torn last line were cut.
  [[nodiscard]] std::uint64_t recovered_lines() const { return recovered_lines_; }
  [[nodiscard]] std::uint64_t truncated_bytes() const { return truncated_bytes_; }

  // The journal line of `m` (without the newline). herald-device --print writes the same lines.
  static std::string format_line(std::string_view device_id, const Message& m);
  // The journal line of `r` (without the newline): the same keys, with "recall" for "data".
  static std::string format_line(std::string_view device_id, const Recall& r);

 private:
  void recover();
  void flush();

  std::filesystem::path path_;
  std::string device_id_;
  int fd_ = -1;
  std::string pending_;  // lines appended since the last save
  std::map<std::uint64_t, Cursor> cursors_;
  std::uint64_t recovered_lines_ = 0;
  std::uint64_t truncated_bytes_ = 0;
};

}  // namespace herald
