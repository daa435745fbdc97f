#include "common/prometheus_text.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <vector>

namespace herald::metrics {

namespace {

[[maybe_unused]] bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  const auto first_ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  };
  if (!first_ok(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return first_ok(c) || (c >= '0' && c <= '9'); });
}

template <typename Number>
void append_number(std::string& out, Number value) {
  std::array<char, 32> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  assert(ec == std::errc());
  out.append(buffer.data(), end);
}

void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    append_number(out, value);  // shortest round-trip form
  }
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  assert(valid_name(name));
  assert(type == "counter" || type == "gauge" || type == "histogram");
  assert(type != "counter" || name.ends_with("_total"));
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (const char c : help) {  // HELP escapes backslash and newline only
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::begin_sample(std::string_view name, std::span<const Label> labels) {
  assert(valid_name(name));
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, value] : labels) {
      assert(valid_name(label) && !label.starts_with("__"));
      if (!first) out_ += ',';
      first = false;
      out_ += label;
      out_ += "=\"";
      append_label_value(value);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
}

void PrometheusText::append_label_value(std::string_view value) {
  for (const char c : value) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '"') {
      out_ += "\\\"";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
}

void PrometheusText::sample(std::string_view name, std::uint64_t value,
                            std::initializer_list<Label> labels) {
  sample_labelled(name, value, {labels.begin(), labels.size()});
}

void PrometheusText::sample(std::string_view name, std::int64_t value,
                            std::initializer_list<Label> labels) {
  begin_sample(name, {labels.begin(), labels.size()});
  append_number(out_, value);
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, double value,
                            std::initializer_list<Label> labels) {
  sample_labelled(name, value, {labels.begin(), labels.size()});
}

void PrometheusText::sample_labelled(std::string_view name, std::uint64_t value,
                                     std::span<const Label> labels) {
  begin_sample(name, labels);
  append_number(out_, value);
  out_ += '\n';
}

void PrometheusText::sample_labelled(std::string_view name, double value,
                                     std::span<const Label> labels) {
  begin_sample(name, labels);
  append_double(out_, value);
  out_ += '\n';
}

void PrometheusText::counter(std::string_view name, std::string_view help, std::uint64_t value) {
  family(name, "counter", help);
  sample(name, value);
}

void PrometheusText::gauge(std::string_view name, std::string_view help, std::int64_t value) {
  family(name, "gauge", help);
  sample(name, value);
}

void PrometheusText::gauge(std::string_view name, std::string_view help, double value) {
  family(name, "gauge", help);
  sample(name, value);
}

void LatencyHistogram::observe(std::chrono::nanoseconds elapsed) {
  const auto ns = std::max<std::int64_t>(0, elapsed.count());
  const double seconds = static_cast<double>(ns) / 1e9;
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(kBounds.begin(), kBounds.end(), seconds) - kBounds.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

std::uint64_t LatencyHistogram::count() const {
  std::uint64_t total = 0;
  for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
  return total;
}

void LatencyHistogram::write(PrometheusText& out, std::string_view name,
                             std::initializer_list<Label> labels) const {
  // Every sample carries the caller's labels, the buckets le as well.
  const std::string bucket_name = std::string(name) + "_bucket";
  std::vector<Label> with_le(labels);
  with_le.emplace_back("le", "");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    std::string le = "+Inf";
    if (i < kBounds.size()) {
      // Fixed notation ("0.0001", not "1e-04"), as Prometheus's own clients write bounds.
      std::array<char, 32> buffer{};
      const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), kBounds[i],
                                           std::chars_format::fixed);
      assert(ec == std::errc());
      le.assign(buffer.data(), end);
    }
    with_le.back().second = le;
    out.sample_labelled(bucket_name, cumulative, with_le);
  }
  const std::span<const Label> plain(labels.begin(), labels.size());
  out.sample_labelled(std::string(name) + "_sum",
                      static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9, plain);
  out.sample_labelled(std::string(name) + "_count", cumulative, plain);
}

}  // namespace herald::metrics
