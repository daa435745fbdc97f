#include "sender.h"

#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>

namespace herald::testing {

namespace beast = boost::beast;

std::uint64_t PushOutcome::seq() const {
  return static_cast<std::uint64_t>(body.at("targets").at(0).at("seq").as_int64());
}

std::string PushOutcome::id() const { return std::string(body.at("id").as_string()); }

Sender::Sender(std::uint16_t http_port)
    : client_("127.0.0.1", http_port, std::chrono::seconds(10)) {}

Sender::Sender(std::uint16_t https_port, std::shared_ptr<boost::asio::ssl::context> tls,
               std::string server_name)
    : client_("127.0.0.1", https_port, std::chrono::seconds(10),
              {std::move(tls), std::move(server_name)}) {}

PushOutcome Sender::post(const std::string& target, const std::string& key,
                         const std::string& body) {
  return call(beast::http::verb::post, target, key, body);
}

PushOutcome Sender::call(beast::http::verb method, const std::string& target,
                         const std::string& credential, const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  PushOutcome outcome;
  std::vector<std::pair<std::string, std::string>> all{{"Authorization", "Bearer " + credential},
                                                       {"Content-Type", "application/json"}};
  all.insert(all.end(), headers.begin(), headers.end());
  auto r = client_.request(method, target, body, all);
  if (!r) return outcome;  // no answer: unknown outcome
  outcome.status = static_cast<int>(r->result_int());
  boost::system::error_code ec;
  outcome.body = boost::json::parse(r->body(), ec);
  return outcome;
}

PushOutcome Sender::post_message_until_answered(const TestApp& app, const std::string& body,
                                                const std::string& idempotency_key,
                                                std::chrono::milliseconds first_backoff,
                                                std::chrono::milliseconds give_up,
                                                std::atomic<std::int64_t>* retries) {
  using Clock = std::chrono::steady_clock;
  const auto target = "/v1/apps/" + app.id + "/messages";
  const auto deadline = Clock::now() + give_up;
  for (auto backoff = first_backoff;;
       backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(1))) {
    auto answer = call(beast::http::verb::post, target, app.key, body,
                       {{"Idempotency-Key", idempotency_key}});
    const bool transient = answer.status == 0 || answer.status == 429 || answer.status == 503;
    if (answer.accepted() || !transient || Clock::now() + backoff > deadline) return answer;
    if (retries) ++*retries;
    std::this_thread::sleep_for(backoff);  // the retry backoff a sender owes the server
  }
}

std::string Sender::register_device(const TestApp& app, const std::string& device) {
  boost::json::object body{{"device", device}};
  auto r = post("/v1/apps/" + app.id + "/devices", app.key, boost::json::serialize(body));
  if (r.status != 200 && r.status != 201) {
    throw std::runtime_error("register failed with status " + std::to_string(r.status));
  }
  return std::string(r.body.at("token").as_string());
}

PushOutcome Sender::push(const TestApp& app, const std::vector<std::string>& devices,
                         const std::string& json_data, std::optional<std::int64_t> ttl_s) {
  boost::json::object body;
  boost::json::array to;
  for (const auto& d : devices) to.emplace_back(d);
  body["to"] = boost::json::object{{"devices", to}};
  body["data"] = boost::json::parse(json_data);
  if (ttl_s) body["ttl_s"] = *ttl_s;
  return post("/v1/apps/" + app.id + "/messages", app.key, boost::json::serialize(body));
}

}  // namespace herald::testing
