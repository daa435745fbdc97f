// EndpointApi: the access node's HTTP routes for load-sorted, signed endpoint lists (All-IP
// access; docs/endpoints.md is the contract). A plain function from request to response like
// SenderApi; neither route needs a credential (a device fetches the list before it has any).
//
//   GET /v1/endpoints    the deployment's access endpoints, least loaded first, signed;
//                        with ?network=<id>, the node's heartbeat hint for that network
//   GET /v1/node/load    this node's own load, which its peers poll
//
// Deployment membership is static for now: each node is configured with its peers' HTTP
// addresses and polls their /v1/node/load (async_poll_peer); a peer that has not answered for
// `stale_after` drops out of the list until it answers again.
//
// Thread-safe: EndpointDirectory is guarded by a mutex; handle() may run on any loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "http/endpoint_list.h"
#include "http/http_client.h"
#include "http/message.h"
#include "logic/clock.h"

namespace herald::http {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// What GET /v1/node/load reports.
struct NodeLoad {
  std::string node;
  std::vector<HostPort> endpoints;  // where devices connect to this node
  std::int64_t connections = 0;
  std::int64_t capacity = 0;
  double cpu = 0;  // share of the machine's cores used by the process, 0..1
  bool draining = false;
  std::int64_t at_ms = 0;  // when it was measured (Unix ms)
};

[[nodiscard]] boost::json::object to_json(const NodeLoad& load);
// "host:port", or "[v6]:port" when the host is an IPv6 literal.
[[nodiscard]] std::string host_port_text(const HostPort& endpoint);
// Nullopt when a field is missing, of the wrong type or out of range, or the node name or an
// endpoint could not stand in a signed list. Never throws.
[[nodiscard]] std::optional<NodeLoad> node_load_from_json(const boost::json::value& value);

// This node's load and the last load heard from each peer. Thread-safe.
class EndpointDirectory {
 public:
  using SteadyClock = std::chrono::steady_clock;

  // `self` measures this node now (called on every request, any thread).
  EndpointDirectory(std::function<NodeLoad()> self, std::chrono::milliseconds stale_after);

  [[nodiscard]] NodeLoad self() const { return self_(); }
  // Records what peer `peer` (its configured address) answered at `now`.
  void peer_answered(const std::string& peer, NodeLoad load, SteadyClock::time_point now);
  // This node's endpoints and those of every peer heard from within stale_after of `now`,
  // sorted by load; draining nodes are left out.
  [[nodiscard]] std::vector<Endpoint> endpoints(SteadyClock::time_point now) const;
  // Where to send a device this node will not keep (a drain, an overload redirect): an endpoint
  // of the non-draining peer heard within stale_after of `now` whose load is lowest once the
  // devices already sent to it since its last answer are counted in, so that a drain spreads
  // over the peers instead of piling onto the one that was least loaded when it began. A peer's
  // endpoints take turns. With `need_room`, only a peer below full load. Nullopt when no peer
  // qualifies; a peer with this node's own name never does.
  [[nodiscard]] std::optional<HostPort> pick_peer(SteadyClock::time_point now, bool need_room);

 private:
  struct Heard {
    NodeLoad load;
    SteadyClock::time_point at;
    std::int64_t sent = 0;  // devices pick_peer() sent there since `at`
  };

  std::function<NodeLoad()> self_;
  std::chrono::milliseconds stale_after_;
  mutable std::mutex mutex_;
  std::map<std::string, Heard> peers_;  // guarded by mutex_
};

// The heartbeat hint for devices on `network` (a valid network id, protocol/network_id.h), when
// the node has one (the access layer's HeartbeatAdvisor). Called on any loop: thread-safe.
using HeartbeatHintSource = std::function<std::optional<HeartbeatHint>(const std::string& network)>;

struct EndpointApiDeps {
  const EndpointDirectory& directory;
  EndpointSigner signer;
  std::chrono::seconds validity;  // expires_at_ms - issued_at_ms
  logic::Clock clock;
  HeartbeatHintSource heartbeat_hint = {};  // empty: lists never carry a hint
};

class EndpointApi {
 public:
  explicit EndpointApi(EndpointApiDeps deps);

  // True for the paths this API answers (route them here).
  [[nodiscard]] static bool serves(const Request& request);
  // Answers a request for which serves() is true. Never throws for any request content.
  boost::asio::awaitable<Response> handle(Request request);

 private:
  EndpointApiDeps d_;
};

// Polls http://host:port/v1/node/load (https:// with `tls`) every `interval` (each request
// bounded by `timeout`) and records each valid answer in `directory` under `host:port`; a failed
// or malformed answer (a certificate that does not verify included) is logged at debug level and
// skipped. Runs until its io_context stops; `directory` must outlive that.
boost::asio::awaitable<void> async_poll_peer(EndpointDirectory* directory, HostPort peer,
                                             std::chrono::milliseconds interval,
                                             std::chrono::milliseconds timeout,
                                             HttpClient::TlsSettings tls = {});

}  // namespace herald::http
