// What integration tests with several heraldd nodes ask of a node over its HTTP API: its load,
// its device connections, whether its endpoint list names another node; and `eventually`, to
// wait for what a node reports to change.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "herald_server.h"
#include "http/http_client.h"

namespace herald::testing {

// Polls `done` every 20 ms until it holds or `timeout` passes; true when it held. For states a
// test can only observe by asking (a node's load, its endpoint list), not be told of.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// GET /v1/node/load of a node; an empty object when it does not answer.
inline boost::json::object load_of(const HeraldServer& node) {
  http::HttpClient client("127.0.0.1", node.http_port(), std::chrono::seconds(2));
  const auto response = client.request(boost::beast::http::verb::get, "/v1/node/load");
  if (!response || response->result() != boost::beast::http::status::ok) return {};
  return boost::json::parse(response->body()).as_object();
}

// The node's device connections; -1 when it does not answer.
inline std::int64_t connections_of(const HeraldServer& node) {
  const auto load = load_of(node);
  return load.contains("connections") ? load.at("connections").as_int64() : -1;
}

// `a` lists `b`'s device endpoint: it heard from `b` and would send devices there.
inline bool knows(const HeraldServer& a, const HeraldServer& b) {
  http::HttpClient client("127.0.0.1", a.http_port(), std::chrono::seconds(2));
  const auto response = client.request(boost::beast::http::verb::get, "/v1/endpoints");
  if (!response || response->result() != boost::beast::http::status::ok) return false;
  const boost::json::value list = boost::json::parse(response->body());  // outlives the loop
  for (const auto& e : list.at("endpoints").as_array()) {
    if (e.at("port").as_int64() == b.device_port()) return true;
  }
  return false;
}

}  // namespace herald::testing
