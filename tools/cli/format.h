// How the values in the API's answers read for people: one table cell each. Each function takes
// the field (null when the answer lacks it) and answers "-" for a missing or null one, so that a
// field the server leaves out (an offline device has no node) reads as a dash rather than failing.
// Times are UTC, to the millisecond, in ISO 8601.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace herald::cli {

// The member `key` of `v`, or null when `v` is not an object or has no such member.
[[nodiscard]] const boost::json::value* field(const boost::json::value& v, std::string_view key);

// A string as it is, true/false as yes/no, anything else as JSON.
[[nodiscard]] std::string text(const boost::json::value* v);
// Unix milliseconds as 2024-05-01T12:00:00.123Z; anything else as text() does.
[[nodiscard]] std::string time_text(const boost::json::value* v);
// Unix milliseconds as the time since `since_ms`: +42ms, +3.1s, +2m05s, +4h10m, +3d02h.
[[nodiscard]] std::string offset_text(const boost::json::value* v, std::int64_t since_ms);

[[nodiscard]] std::string format_time_ms(std::int64_t unix_ms);
// A non-negative duration, coarser as it grows (see offset_text); a negative one gets a '-'.
[[nodiscard]] std::string format_duration_ms(std::int64_t ms);

}  // namespace herald::cli
