// WebhookTransport: the webhook dispatcher's view of its connection to one app's backend.
//
// The distribution layer carries upstream messages to the business backend, but it sits below the
// HTTP layer (`common <- protocol <- storage <- distribution <- logic <- http`), so it defines what
// it needs here and the HTTP layer implements it (http/webhook_client.h), the way access sessions
// implement distribution::DeviceLink. Tests may drive the dispatcher through any implementation.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

namespace herald::distribution {

struct WebhookPost {
  std::string body;                                          // JSON
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type: JSON
};

class WebhookTransport {
 public:
  virtual ~WebhookTransport() = default;

  // POSTs `post` to the app's webhook URL and completes with the HTTP status of the answer,
  // whatever it is (the dispatcher decides what counts as delivered). An error is a transport
  // failure: nothing listening, a reset, a malformed answer, or the request deadline passing; the
  // backend may or may not have processed the request. One call at a time, from coroutines on the
  // executor the implementation was built for.
  virtual boost::asio::awaitable<boost::system::result<unsigned>> async_post(WebhookPost post) = 0;
};

}  // namespace herald::distribution
