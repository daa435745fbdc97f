// WebhookReceiver: a business backend for upstream tests. A real HTTP server (http::HttpServer on
// its own thread) that can be down (nothing listening on its port) or up, answers webhook POSTs
// with a status the test chooses, checks every request's Herald-Signature by recomputing the
// HMAC itself (not through Herald's signing code), and records the messages it accepted. Tests
// wait on it with deadlines (condition variable), never by sleeping.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include "http/http_server.h"

namespace herald::testing {

class WebhookReceiver {
 public:
  struct Message {
    std::string id;  // "<device>:<upstream id>"
    std::string device;
    std::int64_t received_at_ms = 0;
    bool base64 = false;  // "encoding": "base64"
    std::string data;     // the JSON value serialised, or the base64 text
  };

  // Does not listen yet: the backend starts down. `port` 0 picks a free one now.
  WebhookReceiver(std::string secret, std::uint16_t port = 0)
      : secret_(std::move(secret)), port_(port != 0 ? port : pick_port()) {}
  ~WebhookReceiver() { down(); }
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/herald";
  }

  // Starts listening (the backend comes up).
  void up() {
    if (server_) return;
    io_ = std::make_unique<boost::asio::io_context>(1);
    server_ = std::make_unique<http::HttpServer>(
        std::vector<boost::asio::io_context*>{io_.get()},
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_),
        [this](http::Request request) { return handle(std::move(request)); });
    server_->start();
    thread_ = std::thread([io = io_.get()] { io->run(); });
  }

  // Stops listening and closes every connection (the backend goes down).
  void down() {
    if (!server_) return;
    server_->stop();
    io_->stop();
    thread_.join();
    server_.reset();
    io_.reset();
  }

  // The status of the answers from now on (200 by default). A non-2xx answer records nothing.
  void answer_with(unsigned status) {
    std::lock_guard lock(mu_);
    status_ = status;
  }
  // Answers the next `n` requests with `status`, then with the status set before.
  void fail_next(std::size_t n, unsigned status) {
    std::lock_guard lock(mu_);
    fail_next_ = n;
    fail_status_ = status;
  }

  // Waits until messages with `n` distinct ids were accepted, or `timeout` passed; returns the
  // number of distinct ids.
  std::size_t wait_for_distinct(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return ids_.size() >= n; });
    return ids_.size();
  }
  // Waits until at least `n` requests arrived (answered anything), or `timeout` passed.
  std::size_t wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return requests_ >= n; });
    return requests_;
  }

  // Accepted messages in arrival order, repeats (at-least-once delivery) included.
  std::vector<Message> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  // Messages in each accepted request, in arrival order.
  std::vector<std::size_t> batch_sizes() {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }
  std::size_t requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Requests whose signature did not verify, or whose body was not the expected JSON.
  std::vector<std::string> rejected() {
    std::lock_guard lock(mu_);
    return rejected_;
  }

  // The lowercase hex HMAC-SHA256 of "<t>.<body>", computed here independently of Herald.
  static std::string expected_mac(const std::string& secret, const std::string& t,
                                  const std::string& body) {
    const std::string input = t + "." + body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &n);
    std::string hex;
    for (unsigned int i = 0; i < n; ++i) {
      static constexpr char kHex[] = "0123456789abcdef";
      hex.push_back(kHex[mac[i] >> 4]);
      hex.push_back(kHex[mac[i] & 15]);
    }
    return hex;
  }

  static std::uint16_t pick_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
  }

 private:
  // "t=<digits>,v1=<hex>" -> whether v1 is the MAC of the body under t.
  bool signature_ok(const std::string& header, const std::string& body) const {
    const auto comma = header.find(",v1=");
    if (!header.starts_with("t=") || comma == std::string::npos) return false;
    const std::string t = header.substr(2, comma - 2);
    const std::string v1 = header.substr(comma + 4);
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) return false;
    const std::string expected = expected_mac(secret_, t, body);
    // The timestamp is the signing time: it must be close to now (replay protection).
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    if (std::llabs(now_s - std::stoll(t)) > 300) return false;
    return v1.size() == expected.size() &&
           CRYPTO_memcmp(v1.data(), expected.data(), expected.size()) == 0;
  }

  boost::asio::awaitable<http::Response> handle(http::Request request) {
    http::Response response{boost::beast::http::status::ok, 11};
    const std::string body = request.body();
    const std::string signature(request["Herald-Signature"]);
    std::vector<Message> batch;
    std::string problem;
    if (request.method() != boost::beast::http::verb::post) problem = "not a POST";
    if (problem.empty() && !signature_ok(signature, body)) problem = "bad signature: " + signature;
    if (problem.empty()) problem = parse(body, batch);

    std::lock_guard lock(mu_);
    ++requests_;
    unsigned status = status_;
    if (!problem.empty()) {
      rejected_.push_back(problem);
      status = 400;
    } else if (fail_next_ > 0) {
      --fail_next_;
      status = fail_status_;
    }
    if (status >= 200 && status < 300) {
      batch_sizes_.push_back(batch.size());
      for (auto& m : batch) {
        ids_.insert(m.id);
        messages_.push_back(std::move(m));
      }
    }
    cv_.notify_all();
    response.result(status);
    co_return response;
  }

  // Parses a webhook body; returns what is wrong with it, or "" with `out` filled.
  static std::string parse(const std::string& body, std::vector<Message>& out) {
    boost::system::error_code ec;
    const auto json = boost::json::parse(body, ec);
    if (ec || !json.is_object()) return "body is not a JSON object";
    const auto* messages = json.as_object().if_contains("messages");
    if (!json.as_object().if_contains("app") || !messages || !messages->is_array()) {
      return "no app or messages";
    }
    for (const auto& v : messages->as_array()) {
      const auto& m = v.as_object();
      Message message;
      message.id = std::string(m.at("id").as_string());
      message.device = std::string(m.at("device").as_string());
      message.received_at_ms = m.at("received_at_ms").as_int64();
      message.base64 = m.contains("encoding");
      message.data = message.base64 ? std::string(m.at("data").as_string())
                                    : boost::json::serialize(m.at("data"));
      if (message.id.rfind(message.device + ":", 0) != 0) return "id does not name the device";
      out.push_back(std::move(message));
    }
    return "";
  }

  const std::string secret_;
  const std::uint16_t port_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<http::HttpServer> server_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  unsigned status_ = 200;
  std::size_t fail_next_ = 0;
  unsigned fail_status_ = 503;
  std::size_t requests_ = 0;
  std::vector<Message> messages_;
  std::vector<std::size_t> batch_sizes_;
  std::set<std::string> ids_;
  std::vector<std::string> rejected_;
};

}  // namespace herald::testing
