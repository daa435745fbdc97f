#include "logic/topic_condition.h"

#include <algorithm>
#include <cctype>

#include "logic/topic_service.h"

namespace herald::logic {
namespace {

using Op = distribution::StreamFilter::Op;
using Step = distribution::StreamFilter::Step;

// Recursive descent over the text; nesting is bounded so a hostile condition cannot exhaust the
// stack.
class Parser {
 public:
  static constexpr int kMaxDepth = 16;

  explicit Parser(std::string_view text) : text_(text) {}

  bool parse(std::vector<std::string>& topics, std::vector<Step>& program, std::string& why) {
    topics_ = &topics;
    program_ = &program;
    if (!expr(0)) {
      why = why_;
      return false;
    }
    skip_space();
    if (pos_ != text_.size()) {
      why = "unexpected '" + std::string(1, text_[pos_]) + "' at offset " + std::to_string(pos_);
      return false;
    }
    return true;
  }

 private:
  bool expr(int depth) {
    if (!term(depth)) return false;
    while (eat("||")) {
      if (!term(depth)) return false;
      program_->push_back({Op::kOr, 0});
    }
    return true;
  }

  bool term(int depth) {
    if (!factor(depth)) return false;
    while (eat("&&")) {
      if (!factor(depth)) return false;
      program_->push_back({Op::kAnd, 0});
    }
    return true;
  }

  bool factor(int depth) {
    if (depth > kMaxDepth) return fail("nested more than 16 deep");
    skip_space();
    if (eat("!")) {
      if (!factor(depth + 1)) return false;
      program_->push_back({Op::kNot, 0});
      return true;
    }
    if (eat("(")) {
      if (!expr(depth + 1)) return false;
      if (!eat(")")) return fail("a ')' is missing");
      return true;
    }
    return topic();
  }

  bool topic() {
    skip_space();
    if (pos_ == text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return fail("expected a quoted topic, '(' or '!' at offset " + std::to_string(pos_));
    }
    const char quote = text_[pos_++];
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return fail("a topic's closing quote is missing");
    const std::string_view name = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    if (!TopicService::valid_topic(name)) {
      return fail("'" + std::string(name) +
                  "' is not a topic name: " + std::string(TopicService::kTopicRule));
    }
    if (!eat_word("in") || !eat_word("topics")) return fail("expected 'in topics' after a topic");
    auto it = std::find(topics_->begin(), topics_->end(), name);
    if (it == topics_->end()) {
      if (topics_->size() == TopicCondition::kMaxTopics) {
        return fail("at most " + std::to_string(TopicCondition::kMaxTopics) + " topics");
      }
      topics_->emplace_back(name);
      it = topics_->end() - 1;
    }
    program_->push_back({Op::kHas, static_cast<std::uint64_t>(it - topics_->begin())});
    return true;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool eat(std::string_view token) {
    skip_space();
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }
  // A keyword, which must not run on into a name ("intopics").
  bool eat_word(std::string_view word) {
    skip_space();
    if (text_.substr(pos_, word.size()) != word) return false;
    const std::size_t after = pos_ + word.size();
    if (after < text_.size() && std::isalnum(static_cast<unsigned char>(text_[after]))) {
      return false;
    }
    pos_ = after;
    return true;
  }
  bool fail(std::string why) {
    if (why_.empty()) why_ = std::move(why);
    return false;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::vector<std::string>* topics_ = nullptr;
  std::vector<Step>* program_ = nullptr;
  std::string why_;
};

}  // namespace

std::optional<TopicCondition> TopicCondition::parse(std::string_view text, std::string& why) {
  if (text.size() > kMaxChars) {
    why = "a condition is at most " + std::to_string(kMaxChars) + " characters";
    return std::nullopt;
  }
  TopicCondition condition;
  std::vector<Step> program;
  if (!Parser(text).parse(condition.topics_, program, why)) return std::nullopt;
  condition.program_ = distribution::StreamFilter(std::move(program));
  if (!condition.program_.valid()) {  // more operators than StreamFilter::kMaxSteps allows
    why = "the condition is too long";
    return std::nullopt;
  }
  return condition;
}

bool TopicCondition::matches(const std::vector<bool>& joined) const {
  return program_.matches([&](std::uint64_t i) { return i < joined.size() && joined[i]; });
}

bool TopicCondition::satisfiable() const {
  // At most 2^5 assignments: try them all.
  const std::size_t n = topics_.size();
  std::vector<bool> joined(n);
  for (std::uint32_t bits = 0; bits < (1u << n); ++bits) {
    for (std::size_t i = 0; i < n; ++i) joined[i] = (bits >> i) & 1u;
    if (matches(joined)) return true;
  }
  return false;
}

std::vector<std::size_t> TopicCondition::required() const {
  // Topic t is required when no matching assignment leaves it out.
  const std::size_t n = topics_.size();
  std::vector<bool> needed(n, true);
  std::vector<bool> joined(n);
  for (std::uint32_t bits = 0; bits < (1u << n); ++bits) {
    for (std::size_t i = 0; i < n; ++i) joined[i] = (bits >> i) & 1u;
    if (!matches(joined)) continue;
    for (std::size_t i = 0; i < n; ++i) {
      if (!joined[i]) needed[i] = false;
    }
  }
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (needed[i]) out.push_back(i);
  }
  return out;
}

distribution::StreamFilter TopicCondition::compile(std::span<const std::uint64_t> stream_of) const {
  std::vector<Step> program = program_.program();
  for (auto& step : program) {
    if (step.op == Op::kHas) step.stream = stream_of[step.stream];
  }
  return distribution::StreamFilter(std::move(program));
}

}  // namespace herald::logic
