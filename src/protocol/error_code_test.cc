#include "protocol/error_code.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace herald::protocol {
namespace {

const std::vector<ErrorCode> kAllCodes{
    ErrorCode::kOk,
    ErrorCode::kMalformedFrame,
    ErrorCode::kFrameTooLarge,
    ErrorCode::kUnknownFrameType,
    ErrorCode::kUnexpectedFrame,
    ErrorCode::kUnsupportedVersion,
    ErrorCode::kBadCredentials,
    ErrorCode::kHandshakeTimeout,
    ErrorCode::kRaceLost,
    ErrorCode::kHeartbeatTimeout,
    ErrorCode::kSlowConsumer,
    ErrorCode::kUnknownStream,
    ErrorCode::kBadRequest,
    ErrorCode::kServerBusy,
    ErrorCode::kInternal,
    ErrorCode::kUnknownApp,
};

TEST(ErrorCode, ToStringGivesTheStableSnakeCaseNames) {
  EXPECT_EQ(to_string(ErrorCode::kOk), "ok");
  EXPECT_EQ(to_string(ErrorCode::kMalformedFrame), "malformed_frame");
  EXPECT_EQ(to_string(ErrorCode::kFrameTooLarge), "frame_too_large");
  EXPECT_EQ(to_string(ErrorCode::kUnknownFrameType), "unknown_frame_type");
  EXPECT_EQ(to_string(ErrorCode::kUnexpectedFrame), "unexpected_frame");
  EXPECT_EQ(to_string(ErrorCode::kUnsupportedVersion), "unsupported_version");
  EXPECT_EQ(to_string(ErrorCode::kBadCredentials), "bad_credentials");
  EXPECT_EQ(to_string(ErrorCode::kHandshakeTimeout), "handshake_timeout");
  EXPECT_EQ(to_string(ErrorCode::kRaceLost), "race_lost");
  EXPECT_EQ(to_string(ErrorCode::kHeartbeatTimeout), "heartbeat_timeout");
  EXPECT_EQ(to_string(ErrorCode::kSlowConsumer), "slow_consumer");
  EXPECT_EQ(to_string(ErrorCode::kUnknownStream), "unknown_stream");
  EXPECT_EQ(to_string(ErrorCode::kBadRequest), "bad_request");
  EXPECT_EQ(to_string(ErrorCode::kServerBusy), "server_busy");
  EXPECT_EQ(to_string(ErrorCode::kInternal), "internal");
  EXPECT_EQ(to_string(ErrorCode::kUnknownApp), "unknown_app");
}

TEST(ErrorCode, ToStringNamesAnUndefinedValueUnknown) {
  EXPECT_EQ(to_string(static_cast<ErrorCode>(999)), "unknown");
}

TEST(ErrorCode, EveryDefinedCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (const ErrorCode c : kAllCodes) names.insert(to_string(c));
  EXPECT_EQ(names.size(), kAllCodes.size());
}

TEST(ErrorCode, FatalCodesAreExactlyThoseBelowThirty) {
  for (const ErrorCode c : kAllCodes) {
    const auto v = static_cast<std::uint32_t>(c);
    EXPECT_EQ(is_fatal(c), v >= 1 && v <= 21) << to_string(c);
  }
}

TEST(ErrorCode, MakesAnErrorCodeOfTheProtocolCategory) {
  const boost::system::error_code ec = ErrorCode::kFrameTooLarge;
  EXPECT_EQ(ec.value(), 2);
  EXPECT_EQ(&ec.category(), &protocol_category());
  EXPECT_STREQ(ec.category().name(), "herald.protocol");
  EXPECT_FALSE(ec.message().empty());
}

TEST(ErrorCode, OkIsNotAFailure) {
  const boost::system::error_code ec = ErrorCode::kOk;
  EXPECT_FALSE(ec.failed());
}

TEST(ErrorCode, MessageOfAnUndefinedValueNamesItsNumber) {
  EXPECT_NE(protocol_category().message(999).find("999"), std::string::npos);
}

TEST(ErrorCode, CodesCompareEqualToTheirCondition) {
  EXPECT_EQ(make_error_code(ErrorCode::kUnknownFrameType), ErrorCondition::kProtocolViolation);
  EXPECT_EQ(make_error_code(ErrorCode::kBadCredentials), ErrorCondition::kHandshakeFailed);
  EXPECT_EQ(make_error_code(ErrorCode::kRaceLost), ErrorCondition::kHandshakeFailed);
  EXPECT_EQ(make_error_code(ErrorCode::kSlowConsumer), ErrorCondition::kConnectionLost);
  EXPECT_EQ(make_error_code(ErrorCode::kServerBusy), ErrorCondition::kRequestRejected);
  EXPECT_EQ(make_error_code(ErrorCode::kUnknownApp), ErrorCondition::kRequestRejected);
}

TEST(ErrorCode, CodesDoNotMatchAnotherGroupsCondition) {
  EXPECT_NE(make_error_code(ErrorCode::kServerBusy), ErrorCondition::kProtocolViolation);
  EXPECT_NE(make_error_code(ErrorCode::kOk), ErrorCondition::kRequestRejected);
}

TEST(ErrorCode, EveryFatalCodeBelongsToAClosingCondition) {
  for (const ErrorCode c : kAllCodes) {
    const boost::system::error_code ec = c;
    const bool closing = ec == ErrorCondition::kProtocolViolation ||
                         ec == ErrorCondition::kHandshakeFailed ||
                         ec == ErrorCondition::kConnectionLost;
    EXPECT_EQ(closing, is_fatal(c)) << to_string(c);
  }
}

}  // namespace
}  // namespace herald::protocol
