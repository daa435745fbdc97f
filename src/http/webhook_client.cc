#include "http/webhook_client.h"

#include <stdexcept>
#include <utility>

#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace herald::http {

WebhookUrl parse_webhook_url(std::string_view text) {
  auto parsed = boost::urls::parse_absolute_uri(text);
  if (!parsed) throw std::invalid_argument("not an absolute URL: " + std::string(text));
  const boost::urls::url_view url = *parsed;
  if (url.scheme_id() == boost::urls::scheme::https) {
    throw std::invalid_argument(
        "https is not supported; use http:// to a TLS-terminating proxy next to Herald");
  }
  if (url.scheme_id() != boost::urls::scheme::http) {
    throw std::invalid_argument("the scheme must be http, got " + std::string(url.scheme()));
  }
  if (!url.has_authority() || url.encoded_host().empty()) {
    throw std::invalid_argument("no host in " + std::string(text));
  }
  if (url.has_userinfo()) throw std::invalid_argument("user info is not supported in the URL");
  if (url.has_fragment()) throw std::invalid_argument("a fragment has no meaning in the URL");

  WebhookUrl out;
  out.host = url.host_address();
  if (url.has_port()) {
    if (url.port_number() == 0) throw std::invalid_argument("port must be 1..65535");
    out.port = url.port_number();
  }
  out.target = url.encoded_path().empty() ? "/" : std::string(url.encoded_path());
  if (url.has_query()) out.target += "?" + std::string(url.encoded_query());
  return out;
}

WebhookClient::WebhookClient(boost::asio::any_io_executor executor, WebhookUrl url,
                             std::chrono::milliseconds timeout)
    : client_(std::move(executor), std::move(url.host), url.port, timeout),
      target_(std::move(url.target)) {}

boost::asio::awaitable<boost::system::result<unsigned>> WebhookClient::async_post(
    distribution::WebhookPost post) {
  // Named values into the co_await (see README.md: GCC 12 and temporaries in co_await).
  std::string body = std::move(post.body);
  HttpClient::Headers headers = std::move(post.headers);
  auto response = co_await client_.async_request(boost::beast::http::verb::post, target_,
                                                 std::move(body), std::move(headers));
  if (!response) co_return response.error();
  co_return response->result_int();
}

}  // namespace herald::http
