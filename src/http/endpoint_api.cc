#include "http/endpoint_api.h"

#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "common/log.h"
#include "http/detail/api_support.h"
#include "http/http_client.h"
#include "http/json_response.h"
#include "protocol/network_id.h"

namespace herald::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

// A network id the advisor learns from is one a signed list can carry.
static_assert(protocol::kMaxNetworkIdBytes == protocol::kMaxHeartbeatNetworkBytes);

std::optional<std::int64_t> non_negative(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_int64() || v->as_int64() < 0) return std::nullopt;
  return v->as_int64();
}

// "host:port" or "[v6]:port" of an endpoint list entry.
std::optional<HostPort> host_port(const json::value& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string_view text = v.as_string();
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  for (const char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

}  // namespace

std::string host_port_text(const HostPort& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

json::object to_json(const NodeLoad& load) {
  json::array endpoints;
  for (const auto& e : load.endpoints) endpoints.emplace_back(host_port_text(e));
  return {{"node", load.node},
          {"endpoints", std::move(endpoints)},
          {"connections", load.connections},
          {"capacity", load.capacity},
          {"cpu", load.cpu},
          {"load", load_permille(load.connections, load.capacity, load.cpu)},
          {"draining", load.draining},
          {"at_ms", load.at_ms}};
}

std::optional<NodeLoad> node_load_from_json(const json::value& value) {
  if (!value.is_object()) return std::nullopt;
  const auto& o = value.as_object();
  const auto* node = o.if_contains("node");
  const auto* endpoints = o.if_contains("endpoints");
  const auto* cpu = o.if_contains("cpu");
  const auto* draining = o.if_contains("draining");
  const auto connections = non_negative(o, "connections");
  const auto capacity = non_negative(o, "capacity");
  const auto at_ms = non_negative(o, "at_ms");
  if (node == nullptr || !node->is_string() || !valid_node_name(node->as_string()) ||
      endpoints == nullptr || !endpoints->is_array() || cpu == nullptr || !cpu->is_number() ||
      draining == nullptr || !draining->is_bool() || !connections || !capacity || !at_ms) {
    return std::nullopt;
  }
  NodeLoad load{std::string(node->as_string()),
                {},
                *connections,
                *capacity,
                cpu->to_number<double>(),
                draining->as_bool(),
                *at_ms};
  if (!(load.cpu >= 0 && load.cpu <= 1)) return std::nullopt;
  for (const auto& e : endpoints->as_array()) {
    auto endpoint = host_port(e);
    if (!endpoint) return std::nullopt;
    load.endpoints.push_back(std::move(*endpoint));
  }
  return load;
}

EndpointDirectory::EndpointDirectory(std::function<NodeLoad()> self,
                                     std::chrono::milliseconds stale_after)
    : self_(std::move(self)), stale_after_(stale_after) {}

void EndpointDirectory::peer_answered(const std::string& peer, NodeLoad load,
                                      SteadyClock::time_point now) {
  const std::lock_guard lock(mutex_);
  peers_.insert_or_assign(peer, Heard{std::move(load), now});
}

std::vector<Endpoint> EndpointDirectory::endpoints(SteadyClock::time_point now) const {
  std::vector<NodeLoad> nodes{self_()};
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [peer, heard] : peers_) {
      if (now - heard.at <= stale_after_) nodes.push_back(heard.load);
    }
  }
  std::vector<Endpoint> out;
  for (const auto& node : nodes) {
    if (node.draining) continue;
    const auto load = load_permille(node.connections, node.capacity, node.cpu);
    for (const auto& e : node.endpoints) out.push_back({e.host, e.port, node.node, load});
  }
  sort_by_load(out);
  return out;
}

std::optional<HostPort> EndpointDirectory::pick_peer(SteadyClock::time_point now, bool need_room) {
  const std::string self_name = self_().node;
  const std::lock_guard lock(mutex_);
  Heard* best = nullptr;
  LoadPermille best_load = 0;
  for (auto& [peer, heard] : peers_) {
    const auto& load = heard.load;
    if (now - heard.at > stale_after_ || load.draining || load.endpoints.empty() ||
        load.node == self_name) {
      continue;
    }
    const LoadPermille projected =
        load_permille(load.connections + heard.sent, load.capacity, load.cpu);
    if (need_room && projected >= kFullLoad) continue;
    // Ties go to the first peer in address order: every node picks alike.
    if (best == nullptr || projected < best_load) {
      best = &heard;
      best_load = projected;
    }
  }
  if (best == nullptr) return std::nullopt;
  const auto turn = static_cast<std::size_t>(best->sent) % best->load.endpoints.size();
  ++best->sent;
  return best->load.endpoints[turn];
}

EndpointApi::EndpointApi(EndpointApiDeps deps) : d_(std::move(deps)) {}

bool EndpointApi::serves(const Request& request) {
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/v1/endpoints" || path == "/v1/node/load";
}

asio::awaitable<Response> EndpointApi::handle(Request request) {
  const auto path = detail::path_segments(request, 3);
  if (!path || path->size() < 2) co_return detail::not_found();
  if (request.method() != bhttp::verb::get) co_return detail::method_not_allowed("GET");
  if (path->size() == 3) {  // /v1/node/load
    NodeLoad load = d_.directory.self();
    co_return json_response(bhttp::status::ok, to_json(load));
  }
  // ?network=<id>: the network the device is on, for a heartbeat hint. Empty is "not said", as in
  // Hello.network; an id that could never be reported is a client bug, answered 400.
  const auto network = detail::query_param(request, "network");
  if (network && !network->empty() && !protocol::valid_network_id(*network)) {
    co_return detail::bad_request("network: 1..64 bytes without control characters");
  }
  const std::int64_t now_ms = d_.clock();
  EndpointList list{d_.directory.endpoints(EndpointDirectory::SteadyClock::now()), now_ms,
                    now_ms + std::chrono::milliseconds(d_.validity).count(), d_.signer.key_id()};
  if (network && !network->empty() && d_.heartbeat_hint) {
    list.heartbeat = d_.heartbeat_hint(*network);
  }
  auto response = json_response(bhttp::status::ok, signed_list_json(list, d_.signer));
  // Every fetch should see the current loads; a cache between would hand out stale ones.
  response.set(bhttp::field::cache_control, "no-store");
  co_return response;
}

asio::awaitable<void> async_poll_peer(EndpointDirectory* directory, HostPort peer,
                                      std::chrono::milliseconds interval,
                                      std::chrono::milliseconds timeout,
                                      HttpClient::TlsSettings tls) {
  const auto executor = co_await asio::this_coro::executor;
  HttpClient client(executor, peer.host, peer.port, timeout, std::move(tls));
  const std::string name = host_port_text(peer);
  asio::steady_timer timer(executor);
  for (;;) {
    const auto started = EndpointDirectory::SteadyClock::now();
    auto response = co_await client.async_request(bhttp::verb::get, "/v1/node/load");
    std::optional<NodeLoad> load;
    if (response && response->result() == bhttp::status::ok) {
      boost::system::error_code ec;
      const json::value body = json::parse(response->body(), ec);
      if (!ec) load = node_load_from_json(body);
    }
    if (load) {
      directory->peer_answered(name, std::move(*load), EndpointDirectory::SteadyClock::now());
    } else {
      log::debug("peer_load_unavailable", {{"peer", name}});
    }
    timer.expires_at(started + interval);
    const auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

}  // namespace herald::http
