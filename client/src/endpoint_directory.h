// EndpointDirectory: where the client connects (All-IP access; DESIGN.md "Connections: endpoints,
// racing, heartbeats", docs/endpoints.md). It fetches the deployment's signed endpoint list over
// HTTP or HTTPS, verifies it with the embedded Ed25519 public key, keeps it and caches it in a
// file; candidates() then names the endpoints to try, best first:
//
//   1. the latest verified list, while unexpired (fetched now, or loaded from the cache file),
//      its near-least-loaded endpoints shuffled so that a storm of new clients spreads out;
//   2. the embedded endpoints from the client's configuration;
//
// deduplicated. A client therefore never needs DNS to reconnect: list hosts are IP literals, and
// when a fetch fails (DNS, a dead list server, a captive portal's answer) the cached list, then
// the embedded endpoints still stand. A list that fails verification is never used or cached.
//
// Expired lists are never used, fetched or cached: expiry is what limits the replay of an old,
// genuinely signed list (pointing devices at nodes since given to someone else). A device whose
// clock is wrong by more than a list's validity therefore falls back to its embedded endpoints.
//
// Threading: not thread-safe. Every call, refresh() included, runs on one strand (the client's);
// refresh() runs its I/O on the executor of the coroutine that awaits it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "herald/client.h"
#include "protocol/endpoint_list_format.h"

namespace boost::asio::ssl {
class context;  // <boost/asio/ssl/context.hpp>, for https:// URLs; only the .cc needs it whole
}  // namespace boost::asio::ssl

namespace herald::detail {

struct EndpointDirectorySettings {
  // Where the list is served, tried in this order: `http://HOST[:PORT][/PATH]` or
  // `https://HOST[:PORT][/PATH]`, HOST a DNS name, an IPv4 literal or a bracketed IPv6 literal,
  // PORT 80 (http) or 443 (https) by default, PATH /v1/endpoints by default (it may carry a
  // query). The list is signed, so plain HTTP is enough for its integrity; HTTPS also hides it
  // and what the query says (the network) from the path. May be empty (then only the cache file
  // and the embedded endpoints are used).
  std::vector<std::string> list_urls;
  // For https:// URLs (ClientOptions::tls): the CAs to trust (PEM; empty = the system's store),
  // and the name the certificate must carry when the URL's host is an IP literal (a DNS name is
  // checked against itself, and sent as SNI). Without tls_verify_peer nothing is checked (tests
  // only). A certificate that does not verify fails the fetch like an unreachable server.
  std::string tls_ca_file;
  std::string tls_server_name;
  bool tls_verify_peer = true;
  // The deployment's public key, standard base64 of its 32 raw bytes (what
  // `heraldd --print-endpoint-public-key` prints).
  std::string public_key_base64;
  // Where the latest verified list is kept across restarts; empty = no cache.
  std::filesystem::path cache_file;
  // The endpoints from the client's configuration: tried after the list's, always.
  std::vector<Endpoint> embedded;
  // Per list URL: resolving, connecting, sending and reading the whole response.
  std::chrono::milliseconds fetch_timeout{5000};
  // A response body (and a cache file) above this is refused; bounds what a fetch allocates.
  std::size_t max_response_bytes = 64 * 1024;
  // Seeds the spread of equally loaded endpoints and the retry jitter (give each client its own,
  // e.g. from std::random_device; tests fix it).
  std::uint64_t seed = 0;
  // After a refresh found no valid list, the next is due after a delay drawn from
  // [ceiling/2, ceiling]; the ceiling starts at retry_initial and doubles up to retry_max.
  std::chrono::milliseconds retry_initial{5000};
  std::chrono::milliseconds retry_max{std::chrono::minutes(5)};
  // The wall clock in Unix ms, against which lists expire; empty = the system clock.
  std::function<std::int64_t()> clock_ms;
};

// A list URL taken apart.
struct ListUrl {
  std::string text;  // as configured, for messages
  std::string host;  // a DNS name or an IP literal (IPv6 without brackets)
  bool https = false;
  std::uint16_t port = 80;  // 443 by default with https
  std::string target;       // path and query, starting with '/'
};

// Parses `url` as described for EndpointDirectorySettings::list_urls. Throws
// std::invalid_argument naming the URL and what is wrong with it.
[[nodiscard]] ListUrl parse_list_url(std::string_view url);

class EndpointDirectory {
 public:
  // How far (in thousandths of load) from the least loaded endpoint an endpoint still counts as
  // equally loaded, and is shuffled with it.
  static constexpr protocol::LoadPermille kSpreadPermille = 50;

  // Validates the settings (std::invalid_argument naming the bad URL, key, embedded endpoint,
  // bound, or for https:// URLs the CA file that does not load, or an IP literal host without
  // tls_server_name to verify against) and loads the cache file: a missing file is "nothing
  // cached"; one that cannot be read, is larger than max_response_bytes, fails verification or has
  // expired is ignored (never trusted) and last_error() says why. Does no network I/O.
  explicit EndpointDirectory(EndpointDirectorySettings settings);

  EndpointDirectory(const EndpointDirectory&) = delete;
  EndpointDirectory& operator=(const EndpointDirectory&) = delete;

  // Fetches the list from each list URL in order, until one answers 200 with a body that
  // verifies and has not expired: GET <target>[?&]network=<percent-encoded network>, the query
  // added only when `network` could name a heartbeat hint (1..64 bytes, no control character;
  // the server refuses other values). That list replaces the current one and its exact body is
  // written to the cache file atomically (temp file, fsync, rename, fsync directory; the write
  // blocks the strand briefly), so loading it re-verifies it.
  //
  // Never throws for network, HTTP, verification or cache-file failures: they are recorded in
  // last_error() and what the directory had stays. Completes within fetch_timeout per URL, or
  // sooner when the awaiting coroutine is cancelled (the fetch in flight is then abandoned and
  // counts as failed). A call while another refresh() is in flight returns at once. The
  // directory must outlive the call.
  boost::asio::awaitable<void> refresh(std::string network);

  // The endpoints to try at `now_ms` (Unix ms), best first, deduplicated (IP literals compared
  // in their canonical spelling): the current list's while it is unexpired, in its spread order
  // (fixed per list: repeated calls agree), then the embedded ones.
  [[nodiscard]] std::vector<Endpoint> candidates(std::int64_t now_ms) const;

  // Whether refresh() should run at `now_ms`: no list URL means never. Otherwise when no refresh
  // succeeded yet in this directory's life (a cached list is a fallback, its loads are old), or
  // the current list is past the middle of its validity (or expired) — but after a refresh that
  // found no valid list, not before its retry delay passed.
  [[nodiscard]] bool due(std::int64_t now_ms) const;

  // Whether candidates(now_ms) starts with a list's endpoints (fetched or cached, unexpired)
  // rather than only the embedded ones.
  [[nodiscard]] bool has_list(std::int64_t now_ms) const;

  // The heartbeat hint of the latest verified list when it names `network`. Not checked against
  // expiry: a hint can only shape a heartbeat interval, never redirect a connection.
  [[nodiscard]] std::optional<protocol::HeartbeatHint> heartbeat_hint(
      std::string_view network) const;

  // What went wrong in the latest refresh() (every failed URL, "; "-separated, and a failed
  // cache write), or before the first refresh in loading the cache file; empty when nothing did.
  // Also set when a later URL then succeeded. For logs and state reasons.
  [[nodiscard]] const std::string& last_error() const { return last_error_; }

 private:
  [[nodiscard]] std::int64_t now_ms() const;
  void load_cache();
  // Makes `list` (verified, unexpired) the current one and draws its spread order.
  void install(protocol::EndpointList list);
  void save_cache(const std::string& body);
  void schedule_retry(std::int64_t now_ms);

  EndpointDirectorySettings settings_;
  std::vector<ListUrl> urls_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // with an https:// URL only
  std::vector<Endpoint> embedded_;                          // hosts canonical
  std::optional<protocol::EndpointList> list_;
  std::vector<Endpoint> list_order_;  // list_'s endpoints in spread order, hosts canonical
  bool fetched_ = false;              // a refresh() succeeded
  bool refreshing_ = false;
  int failed_refreshes_ = 0;  // since the last success
  std::int64_t retry_at_ms_ = 0;
  std::mt19937_64 rng_;
  std::string last_error_;
};

}  // namespace herald::detail
