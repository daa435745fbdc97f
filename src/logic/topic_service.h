// TopicService: topics of apps, the broadcast stream of each app, and which devices read them —
// the logic layer's half of fan-out on read (docs/protocol.md section 11).
//
// A topic (or an app's broadcast stream, the topic with the empty name) is one stream, stored
// once, with a wire stream id that every device reading it shares, so one Notify serves them all.
// A device reads a topic from its own cursor, starting at the head the stream had when it joined.
//
// Records (RecordStore keys; app ids, topic names and device ids never contain '/'):
//   topic/<app>/<topic>          {"stream": id, "created_at_ms": t}: created on first use (a
//                                join or a push), never removed; <topic> empty = broadcast.
//   sub/<device>/<stream:016x>   {"app", "topic", "epoch", "start", "since_ms"}: the device reads
//                                this stream from (epoch, start); joined at since_ms.
//   subr/<app>/<topic>/<device>  "": the topic's subscribers, for counts and listings (not for
//                                the broadcast stream: every registered device reads it).
// Stream keys: "t/<app>/<topic>" for a topic, "b/<app>" for the broadcast stream.
//
// Thread-safe; owns nothing it is given.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "distribution/router.h"
#include "logic/app_registry.h"
#include "logic/clock.h"
#include "logic/logic_error.h"
#include "storage/device_store.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

struct TopicInfo {
  std::uint64_t stream = 0;  // the wire stream id
  std::string app;
  std::string topic;  // empty: the app's broadcast stream
  std::int64_t created_at_ms = 0;
};

// One shared stream a device reads.
struct Subscription {
  std::uint64_t stream = 0;
  std::string app;
  std::string topic;  // empty: the app's broadcast stream
  // The device reads the stream after (epoch, start_seq): the head when it joined, less the
  // history it asked for.
  std::uint64_t epoch = 0;
  std::uint64_t start_seq = 0;
  std::int64_t since_ms = 0;  // when it joined (registered, for the broadcast stream)
};

class TopicService {
 public:
  static constexpr std::size_t kMaxTopicBytes = 64;
  static constexpr std::string_view kTopicRule = "1..64 bytes of [A-Za-z0-9_.~%-]";
  static constexpr std::size_t kMaxTopicsPerRequest = 32;
  static constexpr std::size_t kMaxTopicsPerDevice = 256;
  static constexpr std::uint32_t kMaxHistory = 100;
  static constexpr std::size_t kMaxDevicesPerJoin = 1000;
  // Topics one app may create (a push to a topic or a join creates it; topics are kept).
  static constexpr std::size_t kMaxTopicsPerApp = 1'000'000;
  // Topic ids kept in memory; past it the others are read from storage at each use.
  static constexpr std::size_t kMaxCachedTopics = 65'536;

  TopicService(storage::StreamStore& streams, storage::RecordStore& records,
               storage::DeviceStore& devices, const AppRegistry& apps, distribution::Router& router,
               Clock clock, std::size_t max_topics_per_app = kMaxTopicsPerApp);

  // Finds the highest stream id in use, so new topics get fresh ones, and counts each app's
  // topics. Once, before serving. Errors: kStorageFailed.
  [[nodiscard]] boost::system::result<void> open();

  [[nodiscard]] static bool valid_topic(std::string_view topic);
  // The storage key of a topic's stream; an empty topic names the app's broadcast stream.
  [[nodiscard]] static std::string stream_key(std::string_view app, std::string_view topic);

  // The topic, created (with a new stream id, one synced write) if it does not exist. Errors:
  // kTooManyTopics (the app has max_topics_per_app; two creations racing may both pass the
  // check), kBusy, kStorageFailed. The caller has checked the app and the name.
  boost::asio::awaitable<boost::system::result<TopicInfo>> async_topic(std::string app,
                                                                       std::string topic);
  // The topic if it exists. Errors: kStorageFailed.
  [[nodiscard]] boost::system::result<std::optional<TopicInfo>> find_topic(std::string_view app,
                                                                           std::string_view topic);

  // Joins `topics` of `app` for `device`, all or nothing, in one synced write. Joining a topic
  // already joined keeps its start. `history`: start that many entries before the head. When
  // the write is done the device's connection, if any, is told (Router::streams_changed) unless
  // `from_device` (the session answers its own Subscribe). Errors: kUnknownApp, kUnknownDevice
  // (not registered for the app), kBadRequest (no topic, more than kMaxTopicsPerRequest, a bad
  // name, history above kMaxHistory), kTooManyTopics (past kMaxTopicsPerDevice), kBusy,
  // kStorageFailed.
  boost::asio::awaitable<boost::system::result<void>> async_subscribe(
      std::string device, std::string app, std::vector<std::string> topics, std::uint32_t history,
      bool from_device);
  // Joins `devices` (at most kMaxDevicesPerJoin) to `topic` of `app`, all or nothing, in one
  // synced write, and tells the connections of those that joined (the sender API's join).
  // Errors: as async_subscribe (kUnknownDevice for any device not registered for the app).
  boost::asio::awaitable<boost::system::result<void>> async_join(std::string app, std::string topic,
                                                                 std::vector<std::string> devices,
                                                                 std::uint32_t history);
  // Leaves `topics` (leaving one not joined is no error). Same errors but kTooManyTopics.
  boost::asio::awaitable<boost::system::result<void>> async_unsubscribe(
      std::string device, std::string app, std::vector<std::string> topics, bool from_device);

  // `device` was registered for `app`: it reads the app's broadcast stream from its head now (a
  // registration repeated keeps the first start). Errors: kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<void>> async_registered(std::string app,
                                                                       std::string device);
  // `device` left `app`: its topics of the app and the broadcast stream are forgotten.
  boost::asio::awaitable<boost::system::result<void>> async_unregistered(std::string app,
                                                                         std::string device);

  // Every shared stream `device` reads, sorted by stream id: its topics, and the broadcast
  // stream of each app it is registered for (a registration older than topics gets its
  // broadcast start now). Errors: kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::vector<Subscription>>> async_subscriptions(
      std::string device);
  // The subscription of `device` to `stream`, if it reads it. Errors: kStorageFailed.
  [[nodiscard]] boost::system::result<std::optional<Subscription>> subscription(
      std::string_view device, std::uint64_t stream);
  // The current epoch and head of a subscription's stream. Errors: kStorageFailed.
  [[nodiscard]] boost::system::result<storage::StreamHead> head(const Subscription& s);
  // The topics `device` joined (not the broadcast streams), by app then name.
  [[nodiscard]] boost::system::result<std::vector<Subscription>> joined(std::string_view device);

  // Devices that joined the topic (an empty topic: the devices registered for the app, which
  // read its broadcast stream), in id order, after `after` (exclusive), at most `limit`.
  [[nodiscard]] boost::system::result<std::vector<std::string>> subscribers(std::string_view app,
                                                                            std::string_view topic,
                                                                            std::string_view after,
                                                                            std::size_t limit);
  // How many devices joined the topic (an empty topic: how many are registered for the app),
  // at most `limit`, counted by scanning a page at a time, with the loop's other work in between.
  // Errors: kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::uint64_t>> async_count_subscribers(
      std::string app, std::string topic, std::uint64_t limit);

 private:
  [[nodiscard]] static std::string topic_key(std::string_view app, std::string_view topic);
  [[nodiscard]] static std::string sub_key(std::string_view device, std::uint64_t stream);
  [[nodiscard]] static std::string subr_key(std::string_view app, std::string_view topic,
                                            std::string_view device);
  [[nodiscard]] boost::system::result<std::vector<Subscription>> scan_subscriptions(
      std::string_view device);
  [[nodiscard]] storage::Record subscription_record(std::string_view device,
                                                    const Subscription& s) const;
  // Adds to `batch` the records that join `device` to those of `topics` it has not joined, each
  // starting `history` entries before its head; returns how many. kTooManyTopics past
  // kMaxTopicsPerDevice, kStorageFailed.
  [[nodiscard]] boost::system::result<std::size_t> add_joins(const std::string& device,
                                                             const std::vector<TopicInfo>& topics,
                                                             std::uint32_t history,
                                                             std::int64_t now_ms,
                                                             storage::AppendBatch& batch);
  // A stream id for a new topic that no other process sharing the storage took (a claim record
  // "topicid/<id>" per id). kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::uint64_t>> async_claim_stream_id(
      std::string app, std::string topic);
  // Keeps the topic's id in memory while there is room. Holds cache_mu_.
  void remember(const std::string& key, const TopicInfo& info);
  // async_registered without telling the device's connection.
  boost::asio::awaitable<boost::system::result<void>> async_start_broadcast(std::string app,
                                                                            std::string device);

  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  storage::DeviceStore& devices_;
  const AppRegistry& apps_;
  distribution::Router& router_;
  Clock clock_;
  const std::size_t max_topics_per_app_;
  std::atomic<std::uint64_t> next_stream_{1};
  std::mutex cache_mu_;
  std::unordered_map<std::string, TopicInfo> cache_;  // by topic_key; at most kMaxCachedTopics
  std::unordered_map<std::string, std::size_t> topics_of_app_;  // under cache_mu_
};

}  // namespace herald::logic
