#include "storage/redis/detail/append_writer.h"

#include <pthread.h>

#include <cassert>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/errc.hpp>

#include "common/log.h"
#include "storage/redis/detail/value_codec.h"
#include "storage/redis/redis_error.h"

namespace herald::storage::redis_detail {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

// The outcome of one batch from its script's answer (scripts.h, Scripts::append).
boost::system::result<AppendOutcome> parse_outcome(const EncodedBatch& batch,
                                                   const RedisValue& reply) {
  if (reply.is_error()) return reply_error(reply);
  const auto unexpected = [] {
    log::error("redis_unexpected_reply", {{"script", "append"}});
    return make_error_code(RedisError::kUnexpectedReply);
  };
  if (reply.type != RedisValue::Type::kArray || reply.elements.empty() ||
      reply.elements[0].type != RedisValue::Type::kInteger) {
    return unexpected();
  }
  const auto& e = reply.elements;
  AppendOutcome outcome;
  if (e[0].integer == 1) {
    if (e.size() != 2 || !batch.unless_record_exists) return unexpected();
    auto record = decode_record(*batch.unless_record_exists, e[1].text);
    if (!record) {
      log::error("storage_corrupt_meta", {{"what", "record"}});
      return make_error_code(RedisError::kCorruptMeta);
    }
    outcome.existing = std::move(*record);
    return outcome;
  }
  if (e.size() != 1 + 3 * batch.entries + batch.tombstones) return unexpected();
  outcome.results.reserve(batch.entries);
  for (std::size_t i = 0; i < batch.entries; ++i) {
    const auto& epoch_text = e[1 + 3 * i];
    const auto& seq = e[2 + 3 * i];
    const auto& collapsed = e[3 + 3 * i];
    auto epoch = parse_u64(epoch_text.text);
    if (!epoch || seq.type != RedisValue::Type::kInteger ||
        collapsed.type != RedisValue::Type::kInteger || seq.integer <= 0 || collapsed.integer < 0) {
      return unexpected();
    }
    outcome.results.push_back({*epoch, static_cast<std::uint64_t>(seq.integer),
                               static_cast<std::uint64_t>(collapsed.integer)});
  }
  outcome.tombstoned.reserve(batch.tombstones);
  for (std::size_t i = 0; i < batch.tombstones; ++i) {
    outcome.tombstoned.push_back(e[1 + 3 * batch.entries + i].integer == 1);
  }
  return outcome;
}

}  // namespace

void dispatch_completion(AppendHandler handler, boost::system::error_code ec,
                         AppendOutcome outcome) {
  // From a thread that does not run the handler's executor, dispatch amounts to a post (Boost
  // 1.81's any_completion_executor offers no blocking.never, so asio::post cannot be used).
  boost::asio::dispatch(boost::asio::append(std::move(handler), ec, std::move(outcome)));
}

AppendWriter::AppendWriter(RedisClusterOptions client_options, std::string routing_key,
                           const Scripts& scripts, std::size_t queue_entries, int replicas_to_wait,
                           std::chrono::milliseconds replica_wait_timeout)
    : client_(std::move(client_options)),
      routing_key_(std::move(routing_key)),
      scripts_(scripts),
      queue_entries_(queue_entries),
      replicas_to_wait_(replicas_to_wait),
      replica_wait_timeout_(replica_wait_timeout),
      thread_([this] { run(); }) {
  assert(queue_entries_ >= 1);
}

AppendWriter::~AppendWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  relay_.join();
}

void AppendWriter::complete_now(AppendHandler handler, boost::system::error_code ec) {
  auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                  boost::asio::execution::outstanding_work.tracked);
  boost::asio::post(relay_, [handler = std::move(handler), work = std::move(work), ec]() mutable {
    dispatch_completion(std::move(handler), ec);
  });
}

void AppendWriter::submit(EncodedBatch batch, AppendHandler handler) {
  const std::size_t weight = batch.weight;
  assert(weight >= 1 && weight <= queue_entries_);
  boost::system::error_code refused;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      refused = RedisError::kShuttingDown;
    } else if (weight > queue_entries_ - queued_entries_) {
      refused =
          boost::system::errc::make_error_code(boost::system::errc::resource_unavailable_try_again);
    } else {
      queued_entries_ += weight;
      auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                      boost::asio::execution::outstanding_work.tracked);
      queue_.push_back(Pending{std::move(batch), std::move(handler), std::move(work)});
    }
  }
  if (refused) {
    if (refused != RedisError::kShuttingDown) appends_refused_.fetch_add(1, kRelaxed);
    complete_now(std::move(handler), refused);
    return;
  }
  wake_.notify_one();
}

AppendWriterStats AppendWriter::stats() const {
  AppendWriterStats s;
  s.pipelines_written = pipelines_written_.load(kRelaxed);
  s.appends_written = appends_written_.load(kRelaxed);
  s.appends_skipped = appends_skipped_.load(kRelaxed);
  s.entries_written = entries_written_.load(kRelaxed);
  s.tombstones_written = tombstones_written_.load(kRelaxed);
  s.appends_refused = appends_refused_.load(kRelaxed);
  s.appends_failed = appends_failed_.load(kRelaxed);
  return s;
}

void AppendWriter::run() {
  pthread_setname_np(pthread_self(), "herald-rappend");
  for (;;) {
    std::deque<Pending> group;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything accepted has been written
      group.swap(queue_);
      queued_entries_ = 0;
    }
    write_group(group);
  }
}

void AppendWriter::count_written(const AppendOutcome& outcome) {
  appends_written_.fetch_add(1, kRelaxed);
  if (outcome.existing) appends_skipped_.fetch_add(1, kRelaxed);
  entries_written_.fetch_add(outcome.results.size(), kRelaxed);
  std::uint64_t tombstones = 0;
  for (const auto& result : outcome.results) tombstones += result.collapsed_seq != 0 ? 1 : 0;
  for (const bool replaced : outcome.tombstoned) tombstones += replaced ? 1 : 0;
  tombstones_written_.fetch_add(tombstones, kRelaxed);
}

void AppendWriter::write_group(std::deque<Pending>& group) {
  // The scripts of the group's non-empty batches, in queue order.
  std::vector<RedisCommand> commands;
  std::vector<std::size_t> sent;  // index in `group` of each command
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (group[i].batch.args.empty()) continue;
    commands.push_back(evalsha(scripts_.append, routing_key_, std::move(group[i].batch.args)));
    sent.push_back(i);
  }

  boost::system::error_code group_error;
  std::vector<RedisValue> replies;
  if (!commands.empty()) {
    auto answered = client_.pipeline(routing_key_, commands);
    if (answered) {
      replies = std::move(*answered);
      // A master that does not know the script (new, restarted, failed over, SCRIPT FLUSH)
      // answered NOSCRIPT without running it: send those again with the source, in order.
      // (Should the cache be flushed and reloaded between two commands of one pipeline, a
      // batch resent here lands after a later batch of the same pipeline; nothing else
      // reorders.)
      std::vector<RedisCommand> again;
      std::vector<std::size_t> where;
      for (std::size_t j = 0; j < replies.size(); ++j) {
        if (!is_noscript(replies[j])) continue;
        again.push_back(eval(scripts_.append, std::move(commands[j])));
        where.push_back(j);
      }
      if (!again.empty()) {
        auto resent = client_.pipeline(routing_key_, again);
        if (resent) {
          for (std::size_t k = 0; k < where.size(); ++k) replies[where[k]] = (*resent)[k];
        } else {
          group_error = resent.error();
        }
      }
    } else {
      group_error = answered.error();
    }
    if (!group_error && replicas_to_wait_ > 0) {
      // On the same connection as the scripts: WAIT covers every write sent on it before.
      auto waited = client_.call(routing_key_, {"WAIT", std::to_string(replicas_to_wait_),
                                                std::to_string(replica_wait_timeout_.count())});
      if (!waited) {
        group_error = waited.error();
      } else if (waited->type != RedisValue::Type::kInteger ||
                 waited->integer < replicas_to_wait_) {
        log::error("redis_too_few_replicas",
                   {{"wanted", replicas_to_wait_}, {"acked", waited->integer}});
        group_error = RedisError::kTooFewReplicas;
      }
    }
    if (group_error) {
      log::error("storage_append_failed",
                 {{"batches", commands.size()}, {"error", group_error.message()}});
      appends_failed_.fetch_add(commands.size(), kRelaxed);
    } else {
      pipelines_written_.fetch_add(1, kRelaxed);
    }
  }

  std::size_t next = 0;  // index into sent/replies
  for (std::size_t i = 0; i < group.size(); ++i) {
    Pending& pending = group[i];
    const bool was_sent = next < sent.size() && sent[next] == i;
    if (group_error) {
      dispatch_completion(std::move(pending.handler), group_error);
    } else if (!was_sent) {
      dispatch_completion(std::move(pending.handler), {}, AppendOutcome{});
    } else {
      auto outcome = parse_outcome(pending.batch, replies[next]);
      if (outcome) {
        count_written(*outcome);
        dispatch_completion(std::move(pending.handler), {}, std::move(*outcome));
      } else {
        appends_failed_.fetch_add(1, kRelaxed);
        dispatch_completion(std::move(pending.handler), outcome.error());
      }
    }
    if (was_sent) ++next;
  }
}

}  // namespace herald::storage::redis_detail
