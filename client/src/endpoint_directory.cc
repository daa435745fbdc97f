#include "endpoint_directory.h"

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <utility>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "posix_file.h"

namespace herald::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kDefaultPath = "/v1/endpoints";
constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
constexpr std::size_t kMaxDnsNameBytes = 253;
constexpr std::size_t kMaxDnsLabelBytes = 63;
constexpr auto kUseAwaitable = asio::as_tuple(asio::use_awaitable);

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw std::invalid_argument("endpoint list URL \"" + std::string(url) +
                              "\": " + std::string(why));
}

// ASCII only, whatever the process's locale says.
bool ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxDnsNameBytes) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > kMaxDnsLabelBytes || label.front() == '-' ||
        label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      if (!ascii_alnum(c) && c != '-') return false;
    }
    start = dot + 1;
  }
  return true;
}

// An IP literal in its canonical spelling (so "::0001" and "::1" are one endpoint); a name as is.
std::string canonical_host(const std::string& host) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return ec ? host : address.to_string();
}

// RFC 3986 unreserved characters pass; every other byte becomes %XX.
std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (ascii_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string ms_text(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// One fetch's outcome: the body of a 200 answer, or why there is none.
struct Fetched {
  std::string body;
  std::string error;  // empty on success
};

// A name resolution whose completion may come after its waiter gave up: the resolver runs
// getaddrinfo on a background thread that cannot be interrupted, so the waiter waits on `wake`
// (until the deadline) and the completion handler, which owns this state, cancels it. A late
// completion then lands here harmlessly.
struct PendingResolve {
  explicit PendingResolve(const asio::any_io_executor& executor)
      : resolver(executor), wake(executor) {}
  tcp::resolver resolver;
  asio::steady_timer wake;
  bool done = false;
  boost::system::error_code ec;
  std::vector<tcp::endpoint> endpoints;
};

std::string failure(const boost::system::error_code& ec, std::chrono::milliseconds timeout) {
  return ec == beast::error::timeout ? "no answer within " + ms_text(timeout) : ec.message();
}

// Sends `request` on `stream` (connected; with https, past its handshake) and reads the answer
// within the stream's deadline. Owns the stream: it is closed on return.
template <class Stream>
asio::awaitable<Fetched> exchange(std::unique_ptr<Stream> stream, std::string where,
                                  bhttp::request<bhttp::empty_body> request,
                                  std::chrono::milliseconds timeout, std::size_t max_body_bytes) {
  Fetched out;
  const auto written = co_await bhttp::async_write(*stream, request, kUseAwaitable);
  if (const auto& wec = std::get<0>(written); wec) {
    out.error = where + ": send: " + failure(wec, timeout);
    co_return out;
  }

  // Bounded: the header by kMaxHeaderBytes, the body by max_body_bytes (checked against
  // Content-Length before any of it is read, and again as chunks arrive).
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(max_body_bytes);
  beast::flat_buffer buffer;
  const auto read = co_await bhttp::async_read(*stream, buffer, parser, kUseAwaitable);
  beast::error_code ignored;
  beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  // A TLS server that closes without close_notify after a complete answer lost nothing.
  const auto& rec = std::get<0>(read);
  if (rec && !(rec == asio::ssl::error::stream_truncated && parser.is_done())) {
    if (rec == bhttp::error::body_limit) {
      out.error =
          where + ": response body above " + std::to_string(max_body_bytes) + " bytes; refused";
    } else if (rec == bhttp::error::header_limit) {
      out.error =
          where + ": response header above " + std::to_string(kMaxHeaderBytes) + " bytes; refused";
    } else if (rec == beast::error::timeout) {
      out.error = where + ": no complete answer within " + ms_text(timeout);
    } else {
      out.error = where + ": read: " + rec.message();
    }
    co_return out;
  }
  auto response = parser.release();
  if (response.result() != bhttp::status::ok) {
    out.error = where + ": HTTP " + std::to_string(response.result_int());
    co_return out;
  }
  out.body = std::move(response.body());
  co_return out;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

// The context of https:// fetches: TLS 1.2+, the CA file (or the system's store). Its own, not
// tls::make_client_context's: that one keeps session tickets through the SSL's app data, which
// Asio's ssl::stream uses for itself; one short fetch now and then needs no resumption.
std::shared_ptr<asio::ssl::context> list_tls_context(const EndpointDirectorySettings& s) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  if (!s.tls_verify_peer) {
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  boost::system::error_code ec;
  if (s.tls_ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(s.tls_ca_file, ec);
  }
  if (ec) {
    throw std::invalid_argument("endpoint list: tls ca file \"" + s.tls_ca_file +
                                "\": " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

asio::awaitable<Fetched> fetch(ListUrl url, std::string target, std::chrono::milliseconds timeout,
                               std::size_t max_body_bytes,
                               std::shared_ptr<asio::ssl::context> tls_context,
                               std::string tls_name) {
  Fetched out;
  const auto deadline = SteadyClock::now() + timeout;
  const auto executor = co_await asio::this_coro::executor;
  const std::string where = "GET " + url.text;

  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(address, url.port);
  } else {
    auto pending = std::make_shared<PendingResolve>(executor);
    pending->wake.expires_at(deadline);
    pending->resolver.async_resolve(
        url.host, std::to_string(url.port),
        [pending](const boost::system::error_code& rec, const tcp::resolver::results_type& r) {
          pending->done = true;
          pending->ec = rec;
          for (const auto& entry : r) pending->endpoints.push_back(entry.endpoint());
          pending->wake.cancel();
        });
    const auto waited = co_await pending->wake.async_wait(kUseAwaitable);
    if (!pending->done) {
      pending->resolver.cancel();
      out.error =
          where + ": resolve " + url.host + ": " +
          (std::get<0>(waited) ? std::string("cancelled") : "no answer within " + ms_text(timeout));
      co_return out;
    }
    if (pending->ec || pending->endpoints.empty()) {
      out.error = where + ": resolve " + url.host + ": " +
                  (pending->ec ? pending->ec.message() : std::string("no address"));
      co_return out;
    }
    endpoints = std::move(pending->endpoints);
  }

  // One deadline for everything that follows: connect, TLS handshake, request, answer.
  auto stream = std::make_unique<beast::tcp_stream>(executor);
  stream->expires_at(deadline);
  const auto connected = co_await stream->async_connect(endpoints, kUseAwaitable);
  if (const auto& cec = std::get<0>(connected); cec) {
    out.error = where + ": connect: " + failure(cec, timeout);
    co_return out;
  }

  bhttp::request<bhttp::empty_body> request(bhttp::verb::get, target, 11);
  const bool v6 = url.host.find(':') != std::string::npos;
  const std::uint16_t default_port = url.https ? 443 : 80;
  request.set(bhttp::field::host,
              (v6 ? "[" + url.host + "]" : url.host) +
                  (url.port == default_port ? "" : ":" + std::to_string(url.port)));
  request.set(bhttp::field::user_agent, "herald-client");
  request.set(bhttp::field::accept, "application/json");
  request.keep_alive(false);
  if (!url.https) {
    co_return co_await exchange(std::move(stream), where, std::move(request), timeout,
                                max_body_bytes);
  }

  auto tls =
      std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), *tls_context);
  SSL* ssl = tls->native_handle();
  // SNI carries names only (RFC 6066). (SSL_set_tlsext_host_name, without its C cast.)
  if (!is_ip_literal(url.host)) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(url.host.c_str()));
  }
  if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) SSL_set1_host(ssl, tls_name.c_str());
  const auto shaken = co_await tls->async_handshake(asio::ssl::stream_base::client, kUseAwaitable);
  if (const auto& hec = std::get<0>(shaken); hec) {
    // A certificate that does not verify says why better than OpenSSL's last error does.
    const long verified = SSL_get_verify_result(ssl);
    out.error = where + ": tls handshake: " +
                (verified != X509_V_OK
                     ? std::string("certificate: ") + X509_verify_cert_error_string(verified)
                     : failure(hec, timeout));
    co_return out;
  }
  co_return co_await exchange(std::move(tls), where, std::move(request), timeout, max_body_bytes);
}

}  // namespace

ListUrl parse_list_url(std::string_view url) {
  const auto starts_with = [&](std::string_view scheme) {
    return url.size() >= scheme.size() &&
           std::equal(scheme.begin(), scheme.end(), url.begin(), [](char a, char b) {
             return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
           });
  };
  const bool https = starts_with("https://");
  if (!https && !starts_with("http://")) bad_url(url, "must start with http:// or https://");
  const std::string_view scheme = https ? "https://" : "http://";
  for (const char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) bad_url(url, "holds a space, control or non-ASCII character");
  }
  if (url.find('#') != std::string_view::npos) bad_url(url, "holds a fragment ('#')");
  ListUrl out;
  out.text = std::string(url);
  out.https = https;
  out.port = https ? 443 : 80;
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (!path.empty() && path.front() != '/') bad_url(url, "the path must start with '/'");
  if (authority.find('@') != std::string_view::npos) bad_url(url, "user info is not supported");

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "'[' without ']'");
    out.host = std::string(authority.substr(1, close - 1));
    boost::system::error_code ec;
    (void)asio::ip::make_address_v6(out.host, ec);
    if (ec) bad_url(url, "not an IPv6 address between '[' and ']'");
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, "unexpected text after ']'");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const std::size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
      if (port_text.find(':') != std::string_view::npos) {
        bad_url(url, "an IPv6 host must be written in brackets");
      }
    }
    boost::system::error_code ec;
    (void)asio::ip::make_address_v4(out.host, ec);
    if (ec && !valid_dns_name(out.host)) {
      bad_url(url, "the host is neither an IP literal nor a DNS name");
    }
  }
  if (has_port) {
    unsigned port = 0;
    for (const char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) bad_url(url, "the port is not a number in 1..65535");
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port_text.empty() || port == 0 || port > 65535) {
      bad_url(url, "the port is not a number in 1..65535");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  out.target = path.empty() ? std::string(kDefaultPath) : std::string(path);
  if (out.target.front() == '?') out.target = std::string(kDefaultPath) + out.target;
  return out;
}

EndpointDirectory::EndpointDirectory(EndpointDirectorySettings settings)
    : settings_(std::move(settings)), rng_(settings_.seed) {
  for (const auto& url : settings_.list_urls) urls_.push_back(parse_list_url(url));
  for (const auto& url : urls_) {
    if (!url.https) continue;
    if (settings_.tls_verify_peer && is_ip_literal(url.host) && settings_.tls_server_name.empty()) {
      bad_url(url.text, "an IP literal host needs a TLS server name to verify the certificate");
    }
    if (!tls_context_) tls_context_ = list_tls_context(settings_);
  }
  if (!protocol::decode_endpoint_public_key(settings_.public_key_base64)) {
    throw std::invalid_argument(
        "endpoint list public key: not base64 of a 32-byte Ed25519 public key (what heraldd "
        "--print-endpoint-public-key prints)");
  }
  if (settings_.fetch_timeout.count() <= 0) {
    throw std::invalid_argument("endpoint list fetch timeout must be positive");
  }
  if (settings_.max_response_bytes == 0) {
    throw std::invalid_argument("endpoint list max_response_bytes must be positive");
  }
  if (settings_.retry_initial.count() <= 0 || settings_.retry_max < settings_.retry_initial) {
    throw std::invalid_argument("endpoint list retry delays: need 0 < retry_initial <= retry_max");
  }
  for (const auto& e : settings_.embedded) {
    if (e.host.empty() || e.port == 0) {
      throw std::invalid_argument("embedded endpoint \"" + e.host + ":" + std::to_string(e.port) +
                                  "\": empty host or port 0");
    }
    embedded_.push_back(Endpoint{canonical_host(e.host), e.port});
  }
  if (!settings_.clock_ms) {
    settings_.clock_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  load_cache();
}

std::int64_t EndpointDirectory::now_ms() const { return settings_.clock_ms(); }

void EndpointDirectory::load_cache() {
  const auto& path = settings_.cache_file;
  if (path.empty()) return;
  const std::string what = "endpoint list cache " + path.string() + ": ";
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec == std::errc::no_such_file_or_directory) return;
  if (ec) {
    last_error_ = what + ec.message() + "; ignored";
    return;
  }
  if (size > settings_.max_response_bytes) {
    last_error_ =
        what + "larger than " + std::to_string(settings_.max_response_bytes) + " bytes; ignored";
    return;
  }
  std::string body;
  try {
    if (!read_whole_file(path, body)) return;
  } catch (const std::system_error& e) {
    last_error_ = std::string(e.what()) + "; cached endpoint list ignored";
    return;
  }
  auto checked =
      protocol::check_signed_list(std::string_view(body), settings_.public_key_base64, now_ms());
  if (!checked) {
    last_error_ = what + checked.error().message() + "; ignored";
    return;
  }
  install(std::move(*checked));
}

void EndpointDirectory::install(protocol::EndpointList list) {
  // Invariant: `list` verified and was unexpired when it arrived; its order is the server's
  // (least loaded first). Endpoints within kSpreadPermille of the least loaded are shuffled with
  // this directory's own generator; the rest keep the server's order.
  protocol::LoadPermille best = protocol::kFullLoad;
  for (const auto& e : list.endpoints) best = std::min(best, e.load);
  std::vector<Endpoint> near;
  std::vector<Endpoint> rest;
  for (const auto& e : list.endpoints) {
    auto& into = e.load <= best + kSpreadPermille ? near : rest;
    into.push_back(Endpoint{canonical_host(e.host), e.port});
  }
  std::shuffle(near.begin(), near.end(), rng_);
  near.insert(near.end(), rest.begin(), rest.end());
  list_order_ = std::move(near);
  list_ = std::move(list);
}

void EndpointDirectory::save_cache(const std::string& body) {
  const auto& path = settings_.cache_file;
  if (path.empty()) return;
  try {
    auto tmp = path;
    tmp += ".tmp";
    replace_file_atomically(path, tmp, body);
  } catch (const std::system_error& e) {
    if (!last_error_.empty()) last_error_ += "; ";
    last_error_ += std::string(e.what()) + " (endpoint list cache; the list is used anyway)";
  }
}

void EndpointDirectory::schedule_retry(std::int64_t now) {
  // The ceiling doubles per failed refresh, from retry_initial up to retry_max; the delay is
  // drawn from its upper half, so clients that failed together do not retry together.
  std::int64_t ceiling = settings_.retry_initial.count();
  for (int i = 1; i < failed_refreshes_ && ceiling < settings_.retry_max.count(); ++i) {
    ceiling *= 2;
  }
  ceiling = std::min<std::int64_t>(ceiling, settings_.retry_max.count());
  std::uniform_int_distribution<std::int64_t> delay(ceiling / 2, ceiling);
  retry_at_ms_ = now + delay(rng_);
}

asio::awaitable<void> EndpointDirectory::refresh(std::string network) {
  if (refreshing_ || urls_.empty()) co_return;
  refreshing_ = true;
  struct Clear {
    bool& flag;
    ~Clear() { flag = false; }
  } clear_refreshing{refreshing_};
  std::string errors;
  bool ok = false;
  for (const auto& url : urls_) {
    std::string target = url.target;
    // The server refuses (400) a network it could not name in a hint; such a network is left
    // out rather than cost every fetch.
    if (protocol::valid_heartbeat_network(network)) {
      target += url.target.find('?') == std::string::npos ? '?' : '&';
      target += "network=" + percent_encode(network);
    }
    // The certificate names the URL's host; an IP literal's name comes from the settings.
    std::string tls_name = is_ip_literal(url.host) ? settings_.tls_server_name : url.host;
    Fetched fetched =
        co_await fetch(url, std::move(target), settings_.fetch_timeout,
                       settings_.max_response_bytes, tls_context_, std::move(tls_name));
    if (fetched.error.empty()) {
      auto checked = protocol::check_signed_list(std::string_view(fetched.body),
                                                 settings_.public_key_base64, now_ms());
      if (checked) {
        last_error_ = std::move(errors);
        install(std::move(*checked));
        save_cache(fetched.body);
        ok = true;
        break;
      }
      fetched.error = "GET " + url.text + ": " + checked.error().message() + "; refused";
    }
    if (!errors.empty()) errors += "; ";
    errors += fetched.error;
  }
  if (ok) {
    fetched_ = true;
    failed_refreshes_ = 0;
    retry_at_ms_ = 0;
    co_return;
  }
  last_error_ = std::move(errors);
  ++failed_refreshes_;
  schedule_retry(now_ms());
}

std::vector<Endpoint> EndpointDirectory::candidates(std::int64_t now_ms) const {
  std::vector<Endpoint> out;
  std::set<std::pair<std::string, std::uint16_t>> seen;
  const auto add = [&](const Endpoint& e) {
    if (seen.emplace(e.host, e.port).second) out.push_back(e);
  };
  if (list_ && now_ms < list_->expires_at_ms) {
    for (const auto& e : list_order_) add(e);
  }
  for (const auto& e : embedded_) add(e);
  return out;
}

bool EndpointDirectory::due(std::int64_t now_ms) const {
  if (urls_.empty() || refreshing_) return false;
  if (now_ms < retry_at_ms_) return false;
  if (!fetched_ || !list_) return true;
  const std::int64_t refresh_at =
      list_->issued_at_ms + (list_->expires_at_ms - list_->issued_at_ms) / 2;
  return now_ms >= refresh_at;
}

bool EndpointDirectory::has_list(std::int64_t now_ms) const {
  return list_ && now_ms < list_->expires_at_ms;
}

std::optional<protocol::HeartbeatHint> EndpointDirectory::heartbeat_hint(
    std::string_view network) const {
  if (!list_ || !list_->heartbeat || list_->heartbeat->network != network) return std::nullopt;
  return list_->heartbeat;
}

}  // namespace herald::detail
