// RedisConnection: one blocking connection to one Redis server, through hiredis (its protocol
// writer and reader; the socket is hiredis's). RedisValue: a reply, copied out of hiredis's tree.
//
// Not thread-safe: a connection belongs to one thread at a time. The cluster client
// (redis_cluster_client.h) owns one per master; a subscriber owns its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

struct redisContext;

namespace herald::storage {

struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 0;

  [[nodiscard]] std::string text() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const RedisEndpoint&, const RedisEndpoint&) = default;
};

// "host:port[,host:port...]" (spaces around commas allowed). Errors: RedisError::kBadAddress.
[[nodiscard]] boost::system::result<std::vector<RedisEndpoint>> parse_redis_endpoints(
    std::string_view list);

// A Redis reply. Error replies are values too (type kError, the message in `text`): what an
// error means depends on the command, so the caller decides.
struct RedisValue {
  enum class Type : std::uint8_t { kNil, kString, kStatus, kError, kInteger, kArray };

  Type type = Type::kNil;
  std::string text;  // kString, kStatus, kError
  std::int64_t integer = 0;
  std::vector<RedisValue> elements;  // kArray

  [[nodiscard]] bool is_error() const { return type == Type::kError; }
  [[nodiscard]] bool is_nil() const { return type == Type::kNil; }
};

// One command: its arguments, the name first. Arguments are binary-safe.
using RedisCommand = std::vector<std::string>;

class RedisConnection {
 public:
  // Connects within `connect_timeout`; every later read or write waits at most
  // `command_timeout`. Errors: RedisError::kConnectFailed.
  [[nodiscard]] static boost::system::result<std::unique_ptr<RedisConnection>> connect(
      const RedisEndpoint& endpoint, std::chrono::milliseconds connect_timeout,
      std::chrono::milliseconds command_timeout);

  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends `commands` in one write and reads their replies, in order: one round trip. Errors
  // (the connection is then broken, see broken()): kConnectionLost, kTimedOut, kProtocolError.
  // After an error the commands may or may not have been applied.
  [[nodiscard]] boost::system::result<std::vector<RedisValue>> run(
      std::span<const RedisCommand> commands);
  [[nodiscard]] boost::system::result<RedisValue> run(const RedisCommand& command);

  // For a subscriber: sends a command without reading its reply...
  [[nodiscard]] boost::system::result<void> send(const RedisCommand& command);
  // ...and reads the next reply or pushed message, waiting at most `wait` for one to start
  // arriving (nullopt if none did; the connection stays usable). Same errors as run().
  [[nodiscard]] boost::system::result<std::optional<RedisValue>> read(
      std::chrono::milliseconds wait);

  // A transport or protocol error happened: the connection must be dropped.
  [[nodiscard]] bool broken() const { return broken_; }
  [[nodiscard]] const RedisEndpoint& endpoint() const { return endpoint_; }

 private:
  RedisConnection(redisContext* context, RedisEndpoint endpoint);

  [[nodiscard]] boost::system::result<void> append(const RedisCommand& command);
  [[nodiscard]] boost::system::result<RedisValue> next_reply();
  [[nodiscard]] boost::system::error_code fail();

  redisContext* context_;
  RedisEndpoint endpoint_;
  bool broken_ = false;
};

}  // namespace herald::storage
