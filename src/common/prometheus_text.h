// PrometheusText: writes the Prometheus text exposition format (version 0.0.4), what a scrape of
// GET /metrics returns. LatencyHistogram: a fixed-bucket histogram of durations that any thread
// may observe into, written as one histogram family.
//
//   # HELP herald_access_connections Open device sockets, authenticated or not.
//   # TYPE herald_access_connections gauge
//   herald_access_connections 12
//   # HELP herald_http_requests_total HTTP requests answered, by API and status code.
//   # TYPE herald_http_requests_total counter
//   herald_http_requests_total{api="sender",code="200"} 4711
//
// Each family is started once (its HELP and TYPE lines), then its samples follow, as the format
// requires. Label values and help texts are escaped; metric and label names are the writer's
// constants and are checked (assert) against the format's name rule. Integer values are written
// exactly; other values in the shortest form that reads back to the same double, with +Inf, -Inf
// and NaN as the format spells them.
//
// Hand-written rather than prometheus-cpp (not packaged by Debian, docs/dependencies.md): the
// format is a page long, and the counters it exports already live in the components as atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace herald::metrics {

using Label = std::pair<std::string_view, std::string_view>;

class PrometheusText {
 public:
  // Starts a family: `type` is counter, gauge or histogram. Names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's name ends in _total.
  void family(std::string_view name, std::string_view type, std::string_view help);

  // One sample of the current family (or of its _bucket, _sum, _count series).
  void sample(std::string_view name, std::uint64_t value, std::initializer_list<Label> labels = {});
  void sample(std::string_view name, std::int64_t value, std::initializer_list<Label> labels = {});
  void sample(std::string_view name, double value, std::initializer_list<Label> labels = {});
  // The same with labels built at run time.
  void sample_labelled(std::string_view name, std::uint64_t value, std::span<const Label> labels);
  void sample_labelled(std::string_view name, double value, std::span<const Label> labels);

  // A family with one unlabelled sample.
  void counter(std::string_view name, std::string_view help, std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, std::int64_t value);
  void gauge(std::string_view name, std::string_view help, double value);

  [[nodiscard]] const std::string& text() const { return out_; }
  [[nodiscard]] std::string take() { return std::move(out_); }

  // The format's content type, for the response.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void begin_sample(std::string_view name, std::span<const Label> labels);
  void append_label_value(std::string_view value);

  std::string out_;
};

// Durations in fixed buckets (upper bounds in seconds, from 100 µs to a day: fine below a second
// for request and push latencies, coarse above for messages that waited for an offline device),
// counted with relaxed atomics: observe() from any thread, write() while others observe. _count
// is the sum of the buckets as read, so it always equals the +Inf bucket; _sum may include or
// miss an observation in flight.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 18> kBounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                  1.0,    10.0,    60.0,   600.0, 3600.0, 86400.0};

  void observe(std::chrono::nanoseconds elapsed);

  // The _bucket, _sum and _count samples, each with `labels` (the family must be started).
  void write(PrometheusText& out, std::string_view name,
             std::initializer_list<Label> labels = {}) const;

  // Observations so far.
  [[nodiscard]] std::uint64_t count() const;

 private:
  // One more than the bounds: the last counts what exceeds every bound.
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace herald::metrics
