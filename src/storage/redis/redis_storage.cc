#include "storage/redis/redis_storage.h"

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

#include "common/log.h"

namespace herald::storage {
namespace {

using OpenResult = boost::system::result<std::unique_ptr<RedisStorage>, RedisOpenError>;

RedisOpenError open_error(boost::system::error_code code, std::string message) {
  return {code, std::move(message) + ": " + code.message()};
}

std::string nodes_text(const std::vector<RedisEndpoint>& nodes) {
  std::string text;
  for (const auto& node : nodes) text += (text.empty() ? "" : ",") + node.text();
  return text;
}

// The value of one CONFIG GET parameter on `master`, or an error message.
boost::system::result<std::string, RedisOpenError> config_get(RedisClusterClient& client,
                                                              const RedisEndpoint& master,
                                                              const std::string& name) {
  auto reply = client.call_at(master, {"CONFIG", "GET", name});
  if (!reply) {
    return open_error(reply.error(), "cannot read " + name + " of Redis master " + master.text());
  }
  if (reply->is_error() || reply->elements.size() != 2) {
    return RedisOpenError{make_error_code(RedisError::kUnexpectedReply),
                          "cannot read " + name + " of Redis master " + master.text() + ": " +
                              (reply->is_error() ? reply->text : "unexpected answer")};
  }
  return reply->elements[1].text;
}

}  // namespace

void throw_exception_from_error(const RedisOpenError& error,
                                const boost::source_location& location) {
  boost::throw_exception(boost::system::system_error(error.code, error.message), location);
}

OpenResult RedisStorage::open(const RedisStorageOptions& options) {
  if (options.keyspace.empty() || options.keyspace.find_first_of("{}") != std::string::npos) {
    return RedisOpenError{
        make_error_code(RedisError::kBadKeyspace),
        "bad Redis keyspace '" + options.keyspace + "': it must be non-empty, without '{' or '}'"};
  }
  if (options.nodes.empty()) {
    return RedisOpenError{make_error_code(RedisError::kBadAddress), "no Redis nodes configured"};
  }
  RedisClusterOptions client_options;
  client_options.seeds = options.nodes;
  client_options.connect_timeout = options.connect_timeout;
  client_options.command_timeout = options.command_timeout;

  RedisClusterClient client(client_options);
  auto masters = client.masters();
  if (!masters) {
    return open_error(masters.error(), "cannot reach Redis at " + nodes_text(options.nodes));
  }
  auto scripts = std::make_unique<redis_detail::Scripts>();
  for (const auto& master : *masters) {
    auto appendonly = config_get(client, master, "appendonly");
    if (!appendonly) return appendonly.error();
    auto appendfsync = config_get(client, master, "appendfsync");
    if (!appendfsync) return appendfsync.error();
    if (*appendonly != "yes" || *appendfsync != "always") {
      const std::string what = "Redis master " + master.text() + " runs with appendonly " +
                               *appendonly + " and appendfsync " + *appendfsync;
      if (options.require_fsync_always) {
        return RedisOpenError{make_error_code(RedisError::kNotDurable),
                              what +
                                  "; Herald acknowledges a message only once it is stored, which "
                                  "needs appendonly yes and appendfsync always on every master"};
      }
      log::warn(
          "redis_not_durable",
          {{"addr", master.text()}, {"appendonly", *appendonly}, {"appendfsync", *appendfsync}});
    }
    if (auto ec = redis_detail::load_scripts(client, master, *scripts)) {
      return open_error(ec, "cannot load Herald's scripts on Redis master " + master.text());
    }
  }
  auto owner = client.owner(redis_detail::KeyLayout(options.keyspace).prefix());
  log::info("redis_storage_opened", {{"keyspace", options.keyspace},
                                     {"masters", masters->size()},
                                     {"owner", owner ? owner->text() : std::string("unknown")}});
  return std::unique_ptr<RedisStorage>(
      new RedisStorage(options, std::move(client_options), std::move(scripts)));
}

RedisStorage::RedisStorage(const RedisStorageOptions& options, RedisClusterOptions client_options,
                           std::unique_ptr<redis_detail::Scripts> scripts)
    : scripts_(std::move(scripts)),
      pool_(client_options),
      records_(std::make_unique<RedisRecordStore>(options.keyspace, *scripts_, pool_)),
      devices_(std::make_unique<RedisDeviceStore>(options, *scripts_, pool_)),
      streams_(std::make_unique<RedisStreamStore>(options, client_options, *scripts_, pool_)) {}

RedisStorage::~RedisStorage() {
  streams_.reset();  // drains the writer while everything it uses is still there
}

}  // namespace herald::storage
