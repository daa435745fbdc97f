// Reading a heraldd's GET /metrics in tests (docs/operations.md, "Monitoring"): the response, and
// its samples by series.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace herald::testing {

struct Scrape {
  int status = 0;  // 0: no answer
  std::string content_type;
  std::string body;
};

// GET /metrics on 127.0.0.1:`http_port` with `credential` as the bearer token (none if empty).
[[nodiscard]] Scrape scrape(std::uint16_t http_port, const std::string& credential);

// The samples of an exposition, by their whole series text ("name" or "name{a=\"b\"}"), parsed
// as doubles.
[[nodiscard]] std::map<std::string, double> samples_of(const std::string& exposition);

// The value of `series`, or -1 when the exposition has no such series.
[[nodiscard]] double value_of(const std::map<std::string, double>& samples,
                              const std::string& series);

}  // namespace herald::testing
