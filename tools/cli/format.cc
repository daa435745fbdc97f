#include "cli/format.h"

#include <time.h>

#include <array>
#include <charconv>
#include <cstdio>

#include <boost/json/serialize.hpp>

namespace herald::cli {

namespace json = boost::json;

const json::value* field(const json::value& v, std::string_view key) {
  const json::object* o = v.if_object();
  return o == nullptr ? nullptr : o->if_contains(key);
}

std::string text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "yes" : "no";
  if (v->is_double()) {
    // The shortest form that reads back the same: 2.5, where JSON serialization says 2.5E0.
    std::array<char, 32> buf{};
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v->get_double());
    if (ec == std::errc{}) return std::string(buf.data(), end);
  }
  return json::serialize(*v);
}

std::string time_text(const json::value* v) {
  if (v != nullptr && v->is_int64()) return format_time_ms(v->get_int64());
  if (v != nullptr && v->is_uint64())
    return format_time_ms(static_cast<std::int64_t>(v->get_uint64()));
  return text(v);
}

std::string offset_text(const json::value* v, std::int64_t since_ms) {
  if (v != nullptr && v->is_int64()) return "+" + format_duration_ms(v->get_int64() - since_ms);
  return text(v);
}

std::string format_time_ms(std::int64_t unix_ms) {
  // Floor division, so that -1 ms is 23:59:59.999 of the day before.
  std::int64_t seconds = unix_ms / 1000;
  std::int64_t ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --seconds;
  }
  const auto t = static_cast<time_t>(seconds);
  tm utc{};
  if (gmtime_r(&t, &utc) == nullptr) return std::to_string(unix_ms);
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                              utc.tm_min, utc.tm_sec, static_cast<int>(ms));
  if (n <= 0 || static_cast<std::size_t>(n) >= buf.size()) return std::to_string(unix_ms);
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

std::string format_duration_ms(std::int64_t ms) {
  if (ms < 0) return "-" + format_duration_ms(-ms);
  constexpr std::int64_t kS = 1000, kM = 60 * kS, kH = 60 * kM, kD = 24 * kH;
  const auto two = [](std::int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  if (ms < kS) return std::to_string(ms) + "ms";
  if (ms < kM) return std::to_string(ms / kS) + "." + std::to_string(ms % kS / 100) + "s";
  if (ms < kH) return std::to_string(ms / kM) + "m" + two(ms % kM / kS) + "s";
  if (ms < kD) return std::to_string(ms / kH) + "h" + two(ms % kH / kM) + "m";
  return std::to_string(ms / kD) + "d" + two(ms % kD / kH) + "h";
}

}  // namespace herald::cli
