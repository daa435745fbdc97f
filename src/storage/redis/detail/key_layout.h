// Where the Redis stores keep what, for one keyspace. Every key starts with the hash tag
// "{<keyspace>}", so that all of one deployment's storage lives in ONE cluster slot: an append
// batch touching several streams and records is then one Lua script, atomic on one master
// (docs/storage.md, "Redis Cluster"). The scripts (detail/scripts.cc) build the same names from
// the prefix they are given as KEYS[1]; keep the two in step.
//
//   {ks}m:<stream>   hash   e = epoch, h = head seq, l = low watermark (lower seqs are trimmed),
//                           x = latest expires_at_ms of its entries, r = replication id of
//                           the master that last appended (detail/scripts.cc)
//   {ks}e:<stream>   hash   <seq> -> entry (value_codec.h)
//   {ks}c:<stream>   hash   <collapse key> -> seq of the latest entry appended with it
//                   (the three expire together, expiry_grace_ms after x)
//   {ks}r:<key>      string record (value_codec.h), PEXPIREAT expires_at_ms + grace
//   {ks}ri           zset   every record key, score 0 (lexicographic order for prefix scans)
//   {ks}rx           zset   every expiring record key, scored by when Redis drops it: appends
//                           remove the members of dropped records from ri and rx
//   {ks}ad:<app>     zset   devices registered for the app, score 0
//   {ks}da:<device>  zset   apps the device is registered for, score 0
//   {ks}rt:<app>     hash   <device> -> first registration time (ms)
//   {ks}k:<device>   hash   <stream> -> acked cursor "<epoch> <seq> <acked_at_ms>"
#pragma once

#include <string>
#include <string_view>

namespace herald::storage::redis_detail {

class KeyLayout {
 public:
  explicit KeyLayout(std::string_view keyspace) : prefix_("{" + std::string(keyspace) + "}") {}

  // The hash tag itself: the routing key of every command and KEYS[1] of every script.
  [[nodiscard]] const std::string& prefix() const { return prefix_; }

  [[nodiscard]] std::string meta(std::string_view stream) const { return key("m:", stream); }
  [[nodiscard]] std::string entries(std::string_view stream) const { return key("e:", stream); }
  [[nodiscard]] std::string collapse(std::string_view stream) const { return key("c:", stream); }
  [[nodiscard]] std::string record(std::string_view k) const { return key("r:", k); }
  [[nodiscard]] std::string record_index() const { return prefix_ + "ri"; }
  [[nodiscard]] std::string record_expiry_index() const { return prefix_ + "rx"; }
  [[nodiscard]] std::string app_devices(std::string_view app) const { return key("ad:", app); }
  [[nodiscard]] std::string device_apps(std::string_view device) const {
    return key("da:", device);
  }
  [[nodiscard]] std::string registered_at(std::string_view app) const { return key("rt:", app); }
  [[nodiscard]] std::string cursors(std::string_view device) const { return key("k:", device); }

 private:
  [[nodiscard]] std::string key(std::string_view kind, std::string_view name) const {
    std::string k;
    k.reserve(prefix_.size() + kind.size() + name.size());
    k.append(prefix_).append(kind).append(name);
    return k;
  }

  std::string prefix_;
};

}  // namespace herald::storage::redis_detail
