// TopicCondition: a push to the devices whose topics satisfy a boolean expression, in the syntax
// FCM uses for conditions:
//
//   'news' in topics && ('sports' in topics || !('weather' in topics))
//
//   expr   := term { "||" term }
//   term   := factor { "&&" factor }
//   factor := "!" factor | "(" expr ")" | QUOTED_TOPIC "in" "topics"
//
// A topic is quoted with ' or " and follows the topic name rule (TopicService::valid_topic). At
// most kMaxTopics distinct topics and kMaxChars characters; whitespace between tokens is free.
// Immutable once parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "distribution/stream_filter.h"

namespace herald::logic {

class TopicCondition {
 public:
  static constexpr std::size_t kMaxTopics = 5;
  static constexpr std::size_t kMaxChars = 1024;

  // Parses `text`; on failure nullopt and `why` says what is wrong, for the sender.
  [[nodiscard]] static std::optional<TopicCondition> parse(std::string_view text, std::string& why);

  // The distinct topics, in order of first appearance.
  [[nodiscard]] const std::vector<std::string>& topics() const { return topics_; }
  // Whether a device whose joined topics are given by `joined[i]` (for topics()[i]) matches.
  [[nodiscard]] bool matches(const std::vector<bool>& joined) const;
  // Whether any set of topics matches; a condition that none does is refused by the API.
  [[nodiscard]] bool satisfiable() const;
  // The indices of topics every matching device has joined: the message can sit in one of
  // their streams. Empty when none is required (it then sits in the app's broadcast stream).
  [[nodiscard]] std::vector<std::size_t> required() const;
  // The condition over stream ids: `stream_of[i]` is the stream of topics()[i].
  [[nodiscard]] distribution::StreamFilter compile(std::span<const std::uint64_t> stream_of) const;

 private:
  TopicCondition() = default;
  std::vector<std::string> topics_;
  // Postfix program whose kHas steps name topic indices, not streams.
  distribution::StreamFilter program_;
};

}  // namespace herald::logic
