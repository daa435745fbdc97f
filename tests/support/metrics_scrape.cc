#include "metrics_scrape.h"

#include <chrono>
#include <sstream>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "http/http_client.h"

namespace herald::testing {

namespace bhttp = boost::beast::http;

Scrape scrape(std::uint16_t http_port, const std::string& credential) {
  http::HttpClient client("127.0.0.1", http_port, std::chrono::seconds(5));
  std::vector<std::pair<std::string, std::string>> headers;
  if (!credential.empty()) headers.emplace_back("Authorization", "Bearer " + credential);
  const auto response = client.request(bhttp::verb::get, "/metrics", "", headers);
  if (!response) return {};
  return {static_cast<int>(response->result_int()),
          std::string(response->base()[bhttp::field::content_type]), response->body()};
}

std::map<std::string, double> samples_of(const std::string& exposition) {
  std::map<std::string, double> out;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

double value_of(const std::map<std::string, double>& samples, const std::string& series) {
  const auto it = samples.find(series);
  return it == samples.end() ? -1 : it->second;
}

}  // namespace herald::testing
