#include "storage/redis/redis_cluster_client.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <thread>

#include "common/log.h"
#include "storage/redis/redis_error.h"

namespace herald::storage {
namespace {

using namespace std::chrono_literals;

// What a reply asks the client to do instead of taking it as the answer.
enum class Redirect : std::uint8_t { kNone, kMoved, kAsk, kRetry };

struct RedirectReply {
  Redirect kind = Redirect::kNone;
  std::uint16_t slot = 0;
  RedisEndpoint target;
};

// "MOVED <slot> <host>:<port>", "ASK <slot> <host>:<port>" (an empty host means the host of the
// node that answered), "TRYAGAIN ...", "CLUSTERDOWN ...", "LOADING ...".
RedirectReply classify(const RedisValue& reply, const RedisEndpoint& from) {
  if (!reply.is_error()) return {};
  const std::string_view text = reply.text;
  const bool moved = text.starts_with("MOVED ");
  if (moved || text.starts_with("ASK ")) {
    const auto rest = text.substr(moved ? 6 : 4);
    const auto space = rest.find(' ');
    unsigned slot = 0;
    std::from_chars(rest.data(), rest.data() + std::min(space, rest.size()), slot);
    auto parsed =
        parse_redis_endpoints(space == std::string_view::npos ? "" : rest.substr(space + 1));
    if (!parsed && space != std::string_view::npos && rest.substr(space + 1).starts_with(":")) {
      parsed = parse_redis_endpoints(from.host + std::string(rest.substr(space + 1)));
    }
    if (!parsed || slot >= kClusterSlots) return {};  // unreadable: let the caller see it
    return {moved ? Redirect::kMoved : Redirect::kAsk, static_cast<std::uint16_t>(slot),
            parsed->front()};
  }
  if (text.starts_with("TRYAGAIN") || text.starts_with("CLUSTERDOWN") ||
      text.starts_with("LOADING")) {
    return {Redirect::kRetry, 0, {}};
  }
  return {};
}

}  // namespace

RedisClusterClient::RedisClusterClient(RedisClusterOptions options)
    : options_(std::move(options)) {}

RedisClusterClient::~RedisClusterClient() = default;

boost::system::result<RedisConnection*> RedisClusterClient::connection(const RedisEndpoint& node) {
  auto& slot = connections_[node.text()];
  if (slot && slot->broken()) slot.reset();
  if (!slot) {
    auto connected =
        RedisConnection::connect(node, options_.connect_timeout, options_.command_timeout);
    if (!connected) {
      connections_.erase(node.text());
      return connected.error();
    }
    slot = std::move(*connected);
  }
  return slot.get();
}

boost::system::result<void> RedisClusterClient::refresh_slots() {
  // Ask the masters already known first, then the seeds.
  std::vector<RedisEndpoint> candidates = masters_;
  for (const auto& seed : options_.seeds) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) {
      candidates.push_back(seed);
    }
  }
  boost::system::error_code last = make_error_code(RedisError::kConnectFailed);
  for (const auto& node : candidates) {
    auto conn = connection(node);
    if (!conn) continue;
    auto reply = (*conn)->run(RedisCommand{"CLUSTER", "SLOTS"});
    if (!reply) {
      last = reply.error();
      continue;
    }
    if (reply->is_error() && reply->text.find("cluster support disabled") != std::string::npos) {
      standalone_ = true;
      masters_ = {node};
      slots_.fill(1);
      return {};
    }
    if (reply->type != RedisValue::Type::kArray) {
      last = make_error_code(RedisError::kUnexpectedReply);
      continue;
    }
    std::vector<RedisEndpoint> masters;
    std::array<std::uint16_t, kClusterSlots> slots{};
    bool readable = true;
    for (const auto& range : reply->elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) {
        readable = false;
        break;
      }
      const auto& master = range.elements[2];
      RedisEndpoint endpoint{master.elements[0].text.empty() ? node.host : master.elements[0].text,
                             static_cast<std::uint16_t>(master.elements[1].integer)};
      auto it = std::find(masters.begin(), masters.end(), endpoint);
      if (it == masters.end()) it = masters.insert(masters.end(), endpoint);
      const auto index = static_cast<std::uint16_t>(it - masters.begin() + 1);
      const auto first = std::clamp<std::int64_t>(range.elements[0].integer, 0, kClusterSlots - 1);
      const auto last_slot =
          std::clamp<std::int64_t>(range.elements[1].integer, 0, kClusterSlots - 1);
      for (auto s = first; s <= last_slot; ++s) slots[static_cast<std::size_t>(s)] = index;
    }
    if (!readable) {
      last = make_error_code(RedisError::kUnexpectedReply);
      continue;
    }
    masters_ = std::move(masters);
    slots_ = slots;
    standalone_ = false;
    return {};
  }
  return last;
}

boost::system::result<RedisEndpoint> RedisClusterClient::owner_of(std::uint16_t slot) {
  if (slots_[slot] == 0) {
    if (auto refreshed = refresh_slots(); !refreshed) return refreshed.error();
    if (slots_[slot] == 0) return make_error_code(RedisError::kNoSlotOwner);
  }
  return masters_[slots_[slot] - 1U];
}

boost::system::result<RedisEndpoint> RedisClusterClient::owner(std::string_view key) {
  return owner_of(key_slot(key));
}

boost::system::result<std::vector<RedisEndpoint>> RedisClusterClient::masters() {
  if (auto refreshed = refresh_slots(); !refreshed) return refreshed.error();
  return masters_;
}

boost::system::result<std::vector<RedisValue>> RedisClusterClient::run_on(
    const RedisEndpoint& node, std::span<const RedisCommand> commands, bool asking) {
  auto conn = connection(node);
  if (!conn) return conn.error();
  if (!asking) return (*conn)->run(commands);
  std::vector<RedisCommand> with_asking;
  with_asking.reserve(commands.size() * 2);
  for (const auto& command : commands) {
    with_asking.push_back({"ASKING"});
    with_asking.push_back(command);
  }
  auto replies = (*conn)->run(with_asking);
  if (!replies) return replies.error();
  std::vector<RedisValue> answers;
  answers.reserve(commands.size());
  for (std::size_t i = 1; i < replies->size(); i += 2) answers.push_back(std::move((*replies)[i]));
  return answers;
}

boost::system::result<std::vector<RedisValue>> RedisClusterClient::pipeline(
    std::string_view key, std::span<const RedisCommand> commands) {
  const auto slot = key_slot(key);
  const auto deadline = Clock::now() + options_.command_timeout;
  auto backoff = 5ms;
  std::vector<RedisValue> replies(commands.size());
  std::vector<std::size_t> pending(commands.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  std::optional<RedisEndpoint> ask_target;
  boost::system::error_code last = make_error_code(RedisError::kTooManyRedirects);

  for (int round = 0; round <= options_.max_redirects && !pending.empty(); ++round) {
    RedisEndpoint node;
    if (ask_target) {
      node = *ask_target;
    } else {
      auto owner = owner_of(slot);
      if (!owner) return owner.error();
      node = *owner;
    }
    std::vector<RedisCommand> round_commands;
    round_commands.reserve(pending.size());
    for (const auto i : pending) round_commands.push_back(commands[i]);
    auto answers = run_on(node, round_commands, ask_target.has_value());
    const bool asked = ask_target.has_value();
    ask_target.reset();
    if (!answers) {
      // A node that cannot be reached may have failed over: relearn the map and try again
      // while time is left. Nothing was sent to it, so nothing can have been applied.
      if (answers.error() != make_error_code(RedisError::kConnectFailed)) return answers.error();
      last = answers.error();
      (void)refresh_slots();
      if (Clock::now() + backoff >= deadline) return last;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
      continue;
    }
    std::vector<std::size_t> again;
    bool moved = false;
    bool retry = false;
    for (std::size_t j = 0; j < pending.size(); ++j) {
      const auto redirect = classify((*answers)[j], node);
      switch (redirect.kind) {
        case Redirect::kNone:
          replies[pending[j]] = std::move((*answers)[j]);
          continue;
        case Redirect::kMoved: {
          // The cluster says who owns the slot now; the full map is relearned below.
          auto it = std::find(masters_.begin(), masters_.end(), redirect.target);
          if (it == masters_.end()) it = masters_.insert(masters_.end(), redirect.target);
          slots_[redirect.slot] = static_cast<std::uint16_t>(it - masters_.begin() + 1);
          moved = true;
          break;
        }
        case Redirect::kAsk:
          ask_target = redirect.target;
          break;
        case Redirect::kRetry:
          retry = true;
          last = make_error_code(RedisError::kClusterDown);
          break;
      }
      again.push_back(pending[j]);
    }
    pending = std::move(again);
    if (pending.empty()) break;
    if (moved && !asked) {
      log::debug("redis_moved", {{"slot", slot}, {"from", node.text()}});
      (void)refresh_slots();  // on failure the slot learned from MOVED still routes the retry
    }
    if (retry) {
      if (Clock::now() + backoff >= deadline) return last;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
    }
  }
  if (!pending.empty()) return last;
  return replies;
}

boost::system::result<RedisValue> RedisClusterClient::call(std::string_view key,
                                                           const RedisCommand& command) {
  auto replies = pipeline(key, std::span<const RedisCommand>(&command, 1));
  if (!replies) return replies.error();
  return std::move(replies->front());
}

boost::system::result<RedisValue> RedisClusterClient::call_at(const RedisEndpoint& node,
                                                              const RedisCommand& command) {
  auto conn = connection(node);
  if (!conn) return conn.error();
  return (*conn)->run(command);
}

}  // namespace herald::storage
