// Sender: the test's side of the sender API, over the real HTTP client.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "herald_server.h"
#include "http/http_client.h"

namespace herald::testing {

struct PushOutcome {
  int status = 0;           // HTTP status; 0 when no answer came (unknown outcome)
  boost::json::value body;  // the parsed JSON answer, if any
  [[nodiscard]] bool accepted() const { return status == 200; }
  // The sequence number the first target got.
  [[nodiscard]] std::uint64_t seq() const;
  [[nodiscard]] std::string id() const;
};

class Sender {
 public:
  // Plaintext HTTP to 127.0.0.1:http_port.
  explicit Sender(std::uint16_t http_port);
  // HTTPS to 127.0.0.1:https_port with `tls` (a client context from tls::make_client_context),
  // verifying the server's certificate for `server_name` (also the SNI).
  Sender(std::uint16_t https_port, std::shared_ptr<boost::asio::ssl::context> tls,
         std::string server_name);

  // Registers `device` for `app` and returns its token (throws on failure).
  std::string register_device(const TestApp& app, const std::string& device);
  PushOutcome push(const TestApp& app, const std::vector<std::string>& devices,
                   const std::string& json_data, std::optional<std::int64_t> ttl_s = {});
  // Posts a message `body` to `app` as a careful sender does: with its idempotency key, and again
  // with backoff (from `first_backoff`, doubling to 1 s, while the next attempt would start within
  // `give_up`) while heraldd answers 503 (overloaded), 429 or nothing (the outcome unknown: the
  // key makes a second copy impossible). Returns the last answer; `retries`, when given, counts
  // the attempts after the first.
  PushOutcome post_message_until_answered(const TestApp& app, const std::string& body,
                                          const std::string& idempotency_key,
                                          std::chrono::milliseconds first_backoff,
                                          std::chrono::milliseconds give_up,
                                          std::atomic<std::int64_t>* retries = nullptr);
  // A raw request, for error cases.
  PushOutcome post(const std::string& target, const std::string& key, const std::string& body);
  // Any request with a bearer credential (an API key or the admin token) and optional headers.
  PushOutcome call(boost::beast::http::verb method, const std::string& target,
                   const std::string& credential, const std::string& body = "",
                   const std::vector<std::pair<std::string, std::string>>& headers = {});

  // The client underneath (connection state, TLS session resumption).
  [[nodiscard]] const http::HttpClient& client() const { return client_; }

 private:
  http::HttpClient client_;
};

}  // namespace herald::testing
