#include "logic/topic_condition.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald::logic {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Op = distribution::StreamFilter::Op;

// The condition `text`, which must parse.
TopicCondition parsed(const std::string& text) {
  std::string why;
  auto condition = TopicCondition::parse(text, why);
  EXPECT_TRUE(condition) << text << ": " << why;
  if (!condition) return *TopicCondition::parse("'unparsed' in topics", why);
  return std::move(*condition);
}

// Why `text` is refused; fails the test when it parses.
std::string refusal(const std::string& text) {
  std::string why;
  auto condition = TopicCondition::parse(text, why);
  EXPECT_FALSE(condition) << text;
  EXPECT_FALSE(why.empty()) << text;
  return why;
}

// Each of `texts` is refused, and why says `why`.
void expect_refused(const std::string& why, const std::vector<std::string>& texts) {
  for (const auto& text : texts) EXPECT_THAT(refusal(text), HasSubstr(why)) << text;
}

std::string nested(int parentheses, const std::string& inner) {
  return std::string(static_cast<std::size_t>(parentheses), '(') + inner +
         std::string(static_cast<std::size_t>(parentheses), ')');
}

// `text` over topics a, b, c (in that order of appearance), checked on every set of them against
// `expected`: directly, and compiled to streams 30, 10 and 20 as a device's sorted stream list
// (which also holds streams of other topics, 5 and 25) and as a lookup.
void expect_semantics(const std::string& text,
                      const std::function<bool(bool a, bool b, bool c)>& expected) {
  const TopicCondition condition = parsed(text);
  ASSERT_THAT(condition.topics(), ElementsAre("a", "b", "c"));
  const std::vector<std::uint64_t> stream_of = {30, 10, 20};
  const distribution::StreamFilter filter = condition.compile(stream_of);
  ASSERT_TRUE(filter.valid());
  for (unsigned bits = 0; bits < 8; ++bits) {
    const std::vector<bool> joined = {(bits & 1u) != 0, (bits & 2u) != 0, (bits & 4u) != 0};
    std::vector<std::uint64_t> streams = {5, 25};
    for (std::size_t i = 0; i < 3; ++i) {
      if (joined[i]) streams.push_back(stream_of[i]);
    }
    std::sort(streams.begin(), streams.end());
    const bool want = expected(joined[0], joined[1], joined[2]);
    SCOPED_TRACE(text + " with a=" + std::to_string(joined[0]) + " b=" + std::to_string(joined[1]) +
                 " c=" + std::to_string(joined[2]));
    EXPECT_EQ(condition.matches(joined), want);
    EXPECT_EQ(filter.matches_sorted(streams), want);
    EXPECT_EQ(filter.matches([&](std::uint64_t s) {
      return std::binary_search(streams.begin(), streams.end(), s);
    }),
              want);
  }
}

TEST(TopicCondition, ParsesASingleTopicInEitherQuote) {
  EXPECT_THAT(parsed("'news' in topics").topics(), ElementsAre("news"));
  EXPECT_THAT(parsed("\"news\" in topics").topics(), ElementsAre("news"));
}

TEST(TopicCondition, ListsDistinctTopicsInOrderOfFirstAppearance) {
  const TopicCondition condition =
      parsed("'z' in topics && ('a' in topics || 'z' in topics) && !('m' in topics)");
  EXPECT_THAT(condition.topics(), ElementsAre("z", "a", "m"));
}

TEST(TopicCondition, AcceptsAnyWhitespaceBetweenTokensAndNone) {
  EXPECT_THAT(parsed("'a'in topics&&!('b'in topics)||'c'in topics").topics(),
              ElementsAre("a", "b", "c"));
  EXPECT_THAT(parsed(" \t( 'a' \n in\ttopics )\r\n&& ! 'b' in topics ").topics(),
              ElementsAre("a", "b"));
}

TEST(TopicCondition, AcceptsEveryCharacterOfTheTopicRule) {
  const std::string all = "AZaz09_.~%-";
  EXPECT_THAT(parsed("'" + all + "' in topics").topics(), ElementsAre(all));
  const std::string longest(64, 'x');
  EXPECT_THAT(parsed("'" + longest + "' in topics").topics(), ElementsAre(longest));
}

TEST(TopicCondition, AcceptsFiveTopicsAndRepeatsOfThem) {
  const TopicCondition condition = parsed(
      "'a' in topics && 'b' in topics && 'c' in topics && 'd' in topics && 'e' in topics && "
      "('a' in topics || 'e' in topics)");
  EXPECT_EQ(condition.topics().size(), TopicCondition::kMaxTopics);
}

TEST(TopicCondition, RefusesASixthTopic) {
  EXPECT_THAT(refusal("'a' in topics && 'b' in topics && 'c' in topics && 'd' in topics && "
                      "'e' in topics && 'f' in topics"),
              HasSubstr("at most 5 topics"));
}

// A topic inside 16 parentheses or negations (each one a level): the most the parser takes.
TEST(TopicCondition, AcceptsSixteenLevelsOfNesting) {
  EXPECT_TRUE(parsed(nested(16, "'a' in topics")).matches({true}));
  EXPECT_TRUE(parsed(std::string(16, '!') + "'a' in topics").matches({true}));
  EXPECT_TRUE(parsed(nested(7, "!(" + nested(7, "'a' in topics") + ")")).matches({false}));
}

TEST(TopicCondition, RefusesNestingDeeperThanSixteenLevels) {
  expect_refused("nested more than 16 deep",
                 {nested(17, "'a' in topics"), std::string(17, '!') + "'a' in topics",
                  nested(8, "!" + nested(8, "'a' in topics")),
                  // Far deeper than the stack would take unbounded.
                  nested(500, "'a' in topics")});
}

TEST(TopicCondition, RefusesBrokenSyntaxSayingWhere) {
  expect_refused(
      "expected a quoted topic, '(' or '!' at offset ",
      {"", "   ", "news in topics", "'a' in topics &&", "'a' in topics || || 'b' in topics"});
  expect_refused("at offset 0", {"&& 'a' in topics"});
  expect_refused("a ')' is missing", {"('a' in topics", "('a' in topics || ('b' in topics)"});
  expect_refused("unexpected ')' at offset 13", {"'a' in topics)"});
  expect_refused("unexpected ''' at offset 14", {"'a' in topics 'b' in topics"});
  expect_refused("unexpected '&'", {"'a' in topics & 'b' in topics"});
  expect_refused("unexpected '|'", {"'a' in topics | 'b' in topics"});
  expect_refused("closing quote is missing", {"'a in topics", "'a\" in topics"});
}

TEST(TopicCondition, RefusesAnythingButTheWordsInTopics) {
  expect_refused("expected 'in topics'", {"'a'", "'a' in", "'a' in topic", "'a' intopics",
                                          "'a' in topicsx", "'a' IN TOPICS", "'a' not in topics"});
}

TEST(TopicCondition, RefusesTopicNamesThatBreakTheRule) {
  expect_refused("is not a topic name: 1..64 bytes of [A-Za-z0-9_.~%-]",
                 {"'' in topics", "'a/b' in topics", "'news*' in topics", "\"it's\" in topics",
                  "'caf\xc3\xa9' in topics", "'" + std::string(65, 'x') + "' in topics"});
  expect_refused("'a b' is not a topic name", {"'a b' in topics"});
  // A bad name after good ones is refused as well.
  expect_refused("'b!' is not a topic name", {"'a' in topics && 'b!' in topics"});
}

TEST(TopicCondition, RefusesTextLongerThanItsMaximum) {
  const std::string condition = "'a' in topics";
  const std::string padded =
      condition + std::string(TopicCondition::kMaxChars - condition.size(), ' ');
  EXPECT_THAT(parsed(padded).topics(), ElementsAre("a"));
  EXPECT_THAT(refusal(padded + " "), HasSubstr("at most 1024 characters"));
}

// Repeating a topic keeps under five topics but not under StreamFilter::kMaxSteps operations.
TEST(TopicCondition, RefusesAConditionWhoseFilterWouldBeTooLong) {
  std::string text = "'a' in topics";
  for (int i = 1; i < 32; ++i) text += "||'a' in topics";  // 32 kHas and 31 kOr: 63 steps
  EXPECT_TRUE(parsed(text).matches({true}));
  EXPECT_FALSE(parsed("!(" + text + ")").matches({true}));  // 64 steps
  EXPECT_THAT(refusal(text + "||'a' in topics"), HasSubstr("too long"));
}

TEST(TopicCondition, EvaluatesTheDocumentedExample) {
  expect_semantics("'a' in topics && ('b' in topics || !('c' in topics))",
                   [](bool a, bool b, bool c) { return a && (b || !c); });
}

TEST(TopicCondition, AndBindsTighterThanOr) {
  expect_semantics("'a' in topics || 'b' in topics && 'c' in topics",
                   [](bool a, bool b, bool c) { return a || (b && c); });
  expect_semantics("'a' in topics && 'b' in topics || 'c' in topics",
                   [](bool a, bool b, bool c) { return (a && b) || c; });
}

TEST(TopicCondition, NotBindsTighterThanAndAndParenthesesOverrideBoth) {
  expect_semantics("!'a' in topics && 'b' in topics || 'c' in topics",
                   [](bool a, bool b, bool c) { return (!a && b) || c; });
  expect_semantics("!('a' in topics && ('b' in topics || 'c' in topics))",
                   [](bool a, bool b, bool c) { return !(a && (b || c)); });
  expect_semantics("!!'a' in topics && !'b' in topics && !!!'c' in topics",
                   [](bool a, bool b, bool c) { return a && !b && !c; });
}

TEST(TopicCondition, CompilesToAPostfixFilterOverStreamIds) {
  const TopicCondition condition = parsed("'a' in topics && ('b' in topics || !('c' in topics))");
  const std::vector<std::uint64_t> stream_of = {30, 10, 20};
  const distribution::StreamFilter filter = condition.compile(stream_of);
  EXPECT_EQ(filter.program(), (std::vector<distribution::StreamFilter::Step>{{Op::kHas, 30},
                                                                             {Op::kHas, 10},
                                                                             {Op::kHas, 20},
                                                                             {Op::kNot, 0},
                                                                             {Op::kOr, 0},
                                                                             {Op::kAnd, 0}}));
  // What travels with the entry decodes to the same filter.
  EXPECT_EQ(distribution::StreamFilter::decode(filter.encode()), filter);
}

TEST(TopicCondition, CompilingARepeatedTopicUsesItsOneStream) {
  const TopicCondition condition = parsed("'a' in topics && !('b' in topics && 'a' in topics)");
  const std::vector<std::uint64_t> stream_of = {7, 8};
  const distribution::StreamFilter filter = condition.compile(stream_of);
  EXPECT_TRUE(filter.matches_sorted(std::vector<std::uint64_t>{7}));
  EXPECT_FALSE(filter.matches_sorted(std::vector<std::uint64_t>{7, 8}));
  EXPECT_FALSE(filter.matches_sorted(std::vector<std::uint64_t>{8}));
}

TEST(TopicCondition, TopicsMissingFromTheJoinedListAreNotJoined) {
  const TopicCondition condition = parsed("'a' in topics && !('b' in topics)");
  EXPECT_TRUE(condition.matches({true}));
  EXPECT_FALSE(condition.matches({}));
}

TEST(TopicCondition, ASatisfiableConditionHoldsForSomeSetOfTopics) {
  EXPECT_TRUE(parsed("'a' in topics").satisfiable());
  EXPECT_TRUE(parsed("!('a' in topics)").satisfiable());  // a device with no topics
  EXPECT_TRUE(parsed("'a' in topics || !('a' in topics)").satisfiable());
  // Holds only when all five are joined: one of 32 sets.
  EXPECT_TRUE(parsed("'a' in topics && 'b' in topics && 'c' in topics && 'd' in topics && "
                     "'e' in topics")
                  .satisfiable());
}

TEST(TopicCondition, AContradictionIsNotSatisfiable) {
  EXPECT_FALSE(parsed("'a' in topics && !('a' in topics)").satisfiable());
  EXPECT_FALSE(parsed("('a' in topics || 'b' in topics) && !('a' in topics) && !('b' in topics)")
                   .satisfiable());
  EXPECT_FALSE(parsed("'e' in topics && 'a' in topics && 'b' in topics && 'c' in topics && "
                      "'d' in topics && !'e' in topics")
                   .satisfiable());
}

TEST(TopicCondition, RequiresTheTopicsEveryMatchingDeviceJoined) {
  EXPECT_THAT(parsed("'a' in topics && ('b' in topics || !('c' in topics))").required(),
              ElementsAre(0u));
  EXPECT_THAT(parsed("'a' in topics && 'b' in topics").required(), ElementsAre(0u, 1u));
  EXPECT_THAT(parsed("!('a' in topics) && 'b' in topics").required(), ElementsAre(1u));
  // Required by meaning, though no single clause names it alone.
  EXPECT_THAT(
      parsed("('a' in topics && 'b' in topics) || ('c' in topics && 'b' in topics)").required(),
      ElementsAre(1u));
  EXPECT_THAT(parsed("!!('a' in topics)").required(), ElementsAre(0u));
}

TEST(TopicCondition, RequiresNothingWhenADeviceMayMatchWithoutAnyOneTopic) {
  EXPECT_TRUE(parsed("'a' in topics || 'b' in topics").required().empty());
  EXPECT_TRUE(parsed("!('a' in topics)").required().empty());
  EXPECT_TRUE(parsed("'a' in topics || !('b' in topics)").required().empty());
}

}  // namespace
}  // namespace herald::logic
