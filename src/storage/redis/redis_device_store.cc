#include "storage/redis/redis_device_store.h"

#include <algorithm>

#include "common/log.h"
#include "storage/redis/detail/value_codec.h"
#include "storage/redis/redis_error.h"
#include "storage/redis/redis_stream_store.h"

namespace herald::storage {
namespace {

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= RedisStreamStore::kMaxNameBytes;
}

bool valid_stream(std::string_view stream) {
  return !stream.empty() && stream.size() <= RedisStreamStore::kMaxStreamKeyBytes;
}

// result<bool> cannot be built implicitly from an error_code (error_code converts to bool).
boost::system::result<bool> bool_error(const boost::system::error_code& ec) {
  return {boost::system::in_place_error, ec};
}

boost::system::error_code unexpected(std::string_view what) {
  log::error("redis_unexpected_reply", {{"what", what}});
  return make_error_code(RedisError::kUnexpectedReply);
}

// The members of a sorted-set reply.
boost::system::result<std::vector<std::string>> members(const RedisValue& reply,
                                                        std::string_view what) {
  if (reply.is_error()) return redis_detail::reply_error(reply);
  if (reply.type != RedisValue::Type::kArray) return unexpected(what);
  std::vector<std::string> out;
  out.reserve(reply.elements.size());
  for (const auto& member : reply.elements) out.push_back(member.text);
  return out;
}

}  // namespace

RedisDeviceStore::RedisDeviceStore(const RedisStorageOptions& options,
                                   const redis_detail::Scripts& scripts,
                                   redis_detail::ClientPool& pool)
    : keys_(options.keyspace),
      replicas_to_wait_(options.replicas_to_wait),
      replica_wait_timeout_(std::min(options.replica_wait_timeout, options.command_timeout / 2)),
      scripts_(scripts),
      pool_(pool) {}

boost::system::result<RedisValue> RedisDeviceStore::call(const RedisCommand& command) {
  auto reply =
      pool_.run([&](RedisClusterClient& client) { return client.call(keys_.prefix(), command); });
  if (!reply) return reply.error();
  if (reply->is_error()) return redis_detail::reply_error(*reply);
  return reply;
}

boost::system::result<bool> RedisDeviceStore::change_registration(
    const redis_detail::Script& script, std::vector<std::string> args) {
  // Both scripts are idempotent, so the pool's retry after a lost connection is safe: a retry of
  // a registration that landed answers 0 ("not new"), as a second call would.
  auto reply = pool_.run([&](RedisClusterClient& client) -> boost::system::result<RedisValue> {
    auto changed = redis_detail::run_script(client, script, keys_.prefix(), args);
    if (!changed || replicas_to_wait_ <= 0) return changed;
    // The same client, so the same connection to the master: WAIT covers the script's write.
    auto waited = client.call(keys_.prefix(), {"WAIT", std::to_string(replicas_to_wait_),
                                               std::to_string(replica_wait_timeout_.count())});
    if (!waited) return waited.error();
    if (waited->type != RedisValue::Type::kInteger || waited->integer < replicas_to_wait_) {
      log::error("redis_too_few_replicas", {{"wanted", replicas_to_wait_}});
      return make_error_code(RedisError::kTooFewReplicas);
    }
    return changed;
  });
  if (!reply) return bool_error(reply.error());
  if (reply->type != RedisValue::Type::kInteger) return bool_error(unexpected(script.name));
  return reply->integer == 1;
}

boost::system::result<bool> RedisDeviceStore::register_device(std::string_view app,
                                                              std::string_view device,
                                                              std::int64_t now_ms) {
  if (!valid_name(app) || !valid_name(device)) return RedisError::kBadKey;
  return change_registration(scripts_.register_device,
                             {std::string(app), std::string(device), std::to_string(now_ms)});
}

boost::system::result<bool> RedisDeviceStore::unregister_device(std::string_view app,
                                                                std::string_view device) {
  if (!valid_name(app) || !valid_name(device)) return RedisError::kBadKey;
  return change_registration(scripts_.unregister_device, {std::string(app), std::string(device)});
}

boost::system::result<std::optional<std::int64_t>> RedisDeviceStore::registered_at(
    std::string_view app, std::string_view device) {
  if (!valid_name(app) || !valid_name(device)) return RedisError::kBadKey;
  auto reply = call({"HGET", keys_.registered_at(app), std::string(device)});
  if (!reply) return reply.error();
  if (reply->is_nil()) return std::optional<std::int64_t>();
  auto at = redis_detail::parse_i64(reply->text);
  if (!at) {
    log::error("storage_corrupt_meta", {{"what", "registration"}, {"app", app}});
    return make_error_code(RedisError::kCorruptMeta);
  }
  return std::optional<std::int64_t>(*at);
}

boost::system::result<bool> RedisDeviceStore::is_registered(std::string_view app,
                                                            std::string_view device) {
  auto registered = registered_at(app, device);
  if (!registered) return bool_error(registered.error());
  return registered->has_value();
}

boost::system::result<std::vector<std::string>> RedisDeviceStore::apps_of(std::string_view device) {
  if (!valid_name(device)) return RedisError::kBadKey;
  auto reply = call({"ZRANGE", keys_.device_apps(device), "0", "-1"});
  if (!reply) return reply.error();
  return members(*reply, "apps_of");
}

boost::system::result<std::vector<std::string>> RedisDeviceStore::devices_of(std::string_view app,
                                                                             std::string_view after,
                                                                             std::size_t limit) {
  if (!valid_name(app)) return RedisError::kBadKey;
  if (limit == 0) return std::vector<std::string>();
  auto reply = call({"ZRANGEBYLEX", keys_.app_devices(app),
                     after.empty() ? std::string("-") : "(" + std::string(after), "+", "LIMIT", "0",
                     std::to_string(limit)});
  if (!reply) return reply.error();
  return members(*reply, "devices_of");
}

boost::system::result<void> RedisDeviceStore::save_ack(std::string_view device,
                                                       std::string_view stream,
                                                       const AckedCursor& cursor) {
  if (!valid_name(device) || !valid_stream(stream)) return RedisError::kBadKey;
  std::vector<std::string> args{std::string(device), std::string(stream),
                                std::to_string(cursor.epoch), std::to_string(cursor.seq),
                                std::to_string(cursor.acked_at_ms)};
  auto reply = pool_.run([&](RedisClusterClient& client) {
    return redis_detail::run_script(client, scripts_.save_ack, keys_.prefix(), args);
  });
  if (!reply) return reply.error();
  return {};
}

boost::system::result<std::optional<AckedCursor>> RedisDeviceStore::acked(std::string_view device,
                                                                          std::string_view stream) {
  if (!valid_name(device) || !valid_stream(stream)) return RedisError::kBadKey;
  auto reply = call({"HGET", keys_.cursors(device), std::string(stream)});
  if (!reply) return reply.error();
  if (reply->is_nil()) return std::optional<AckedCursor>();
  auto cursor = redis_detail::decode_cursor(reply->text);
  if (!cursor) {
    log::error("storage_corrupt_meta", {{"what", "acked cursor"}, {"device", device}});
    return make_error_code(RedisError::kCorruptMeta);
  }
  return std::optional<AckedCursor>(*cursor);
}

}  // namespace herald::storage
