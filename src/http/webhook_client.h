// WebhookClient: the HTTP implementation of distribution::WebhookTransport, one keep-alive
// connection to one app's webhook, on the event loop of that app's dispatcher.
//
// Plain http:// only. https:// is refused when the configuration is read (parse_webhook_url):
// TLS would need certificate verification, SNI, and a TLS server in every test to be worth
// shipping; until then put a TLS-terminating proxy next to Herald (stunnel, Envoy, nginx) and
// point the webhook at it.
//
// Threads: constructed anywhere, then used only from coroutines on `executor` (the dispatcher's).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "distribution/webhook_transport.h"
#include "http/http_client.h"

namespace herald::http {

struct WebhookUrl {
  std::string host;  // a name or an address (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string target = "/";  // path and query, as sent in the request line
};

// Parses "http://HOST[:PORT][/PATH][?QUERY]". Throws std::invalid_argument saying what is wrong:
// not an absolute URL, a scheme other than http (https is named: not supported), no host,
// user info, a fragment, port 0. For configuration loading only.
[[nodiscard]] WebhookUrl parse_webhook_url(std::string_view text);

class WebhookClient final : public distribution::WebhookTransport {
 public:
  // Every POST must be answered within `timeout` (connecting, sending and reading included).
  WebhookClient(boost::asio::any_io_executor executor, WebhookUrl url,
                std::chrono::milliseconds timeout);

  // POSTs the body (Content-Type: application/json) with the extra headers; completes with the
  // answer's status, or HttpClient's transport error.
  boost::asio::awaitable<boost::system::result<unsigned>> async_post(
      distribution::WebhookPost post) override;

 private:
  HttpClient client_;
  std::string target_;
};

}  // namespace herald::http
