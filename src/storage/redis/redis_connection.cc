#include "storage/redis/redis_connection.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>

#include "common/log.h"
#include "storage/redis/redis_error.h"

namespace herald::storage {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return {.tv_sec = static_cast<time_t>(ms.count() / 1000),
          .tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

RedisValue copy_reply(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      value.type = RedisValue::Type::kString;
      value.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      value.type = RedisValue::Type::kStatus;
      value.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      value.type = RedisValue::Type::kError;
      value.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::kArray;
      value.elements.reserve(reply.elements);
      for (std::size_t i = 0; i < reply.elements; ++i) {
        value.elements.push_back(copy_reply(*reply.element[i]));
      }
      break;
    default:  // REDIS_REPLY_NIL
      break;
  }
  return value;
}

}  // namespace

boost::system::result<std::vector<RedisEndpoint>> parse_redis_endpoints(std::string_view list) {
  std::vector<RedisEndpoint> endpoints;
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const auto colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return make_error_code(RedisError::kBadAddress);
    unsigned port = 0;
    const auto digits = item.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      return make_error_code(RedisError::kBadAddress);
    }
    endpoints.push_back({std::string(item.substr(0, colon)), static_cast<std::uint16_t>(port)});
  }
  if (endpoints.empty()) return make_error_code(RedisError::kBadAddress);
  return endpoints;
}

boost::system::result<std::unique_ptr<RedisConnection>> RedisConnection::connect(
    const RedisEndpoint& endpoint, std::chrono::milliseconds connect_timeout,
    std::chrono::milliseconds command_timeout) {
  redisContext* context =
      redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, to_timeval(connect_timeout));
  if (context == nullptr || context->err != 0 ||
      redisSetTimeout(context, to_timeval(command_timeout)) != REDIS_OK) {
    if (context != nullptr) {
      log::debug("redis_connect_failed", {{"addr", endpoint.text()}, {"error", context->errstr}});
      redisFree(context);
    }
    return make_error_code(RedisError::kConnectFailed);
  }
  return std::unique_ptr<RedisConnection>(new RedisConnection(context, endpoint));
}

RedisConnection::RedisConnection(redisContext* context, RedisEndpoint endpoint)
    : context_(context), endpoint_(std::move(endpoint)) {}

RedisConnection::~RedisConnection() { redisFree(context_); }

boost::system::error_code RedisConnection::fail() {
  broken_ = true;
  switch (context_->err) {
    case REDIS_ERR_PROTOCOL:
    case REDIS_ERR_OOM:
      return make_error_code(RedisError::kProtocolError);
    case REDIS_ERR_IO:
      if (errno == EAGAIN || errno == EWOULDBLOCK) return make_error_code(RedisError::kTimedOut);
      return make_error_code(RedisError::kConnectionLost);
    default:
      return make_error_code(RedisError::kConnectionLost);
  }
}

boost::system::result<void> RedisConnection::append(const RedisCommand& command) {
  if (broken_) return make_error_code(RedisError::kConnectionLost);
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(command.size());
  lengths.reserve(command.size());
  for (const auto& argument : command) {
    argv.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                             lengths.data()) != REDIS_OK) {
    return fail();
  }
  return {};
}

boost::system::result<RedisValue> RedisConnection::next_reply() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return fail();
  const std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(static_cast<redisReply*>(raw),
                                                                      &freeReplyObject);
  return copy_reply(*reply);
}

boost::system::result<std::vector<RedisValue>> RedisConnection::run(
    std::span<const RedisCommand> commands) {
  for (const auto& command : commands) {
    if (auto appended = append(command); !appended) return appended.error();
  }
  std::vector<RedisValue> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    auto reply = next_reply();
    if (!reply) return reply.error();
    replies.push_back(std::move(*reply));
  }
  return replies;
}

boost::system::result<RedisValue> RedisConnection::run(const RedisCommand& command) {
  if (auto appended = append(command); !appended) return appended.error();
  return next_reply();
}

boost::system::result<void> RedisConnection::send(const RedisCommand& command) {
  if (auto appended = append(command); !appended) return appended.error();
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) return fail();
  }
  return {};
}

boost::system::result<std::optional<RedisValue>> RedisConnection::read(
    std::chrono::milliseconds wait) {
  if (broken_) return make_error_code(RedisError::kConnectionLost);
  void* raw = nullptr;
  // A reply already read into hiredis's buffer is returned without touching the socket.
  if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) return fail();
  if (raw == nullptr) {
    pollfd p{.fd = context_->fd, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (ready == 0 || (ready < 0 && errno == EINTR)) return std::optional<RedisValue>();
    if (ready < 0) return fail();
    // The rest of a reply that started arriving is awaited for at most the command timeout.
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return fail();
  }
  const std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(static_cast<redisReply*>(raw),
                                                                      &freeReplyObject);
  return std::optional<RedisValue>(copy_reply(*reply));
}

}  // namespace herald::storage
