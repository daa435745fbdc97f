// WebhookSupervisor with the real UpstreamService, dispatchers and RocksDB store; the webhooks are
// in-memory transports that record what they were sent (the HTTP side has its own tests), on a
// real event loop thread. Waits have deadlines (condition variables), never sleeps.
#include "logic/webhook_supervisor.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "distribution/webhook_signature.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::logic {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kWait = 20s;
constexpr std::int64_t kNowMs = 1'700'000'000'000;
const std::string kSecretA(40, 'a');
const std::string kSecretB(40, 'b');

// What the backends were sent, by URL. Each URL answers the status set for it (200 unless set),
// or 401 when a secret is expected for it and the signature does not verify with that secret.
class Backends {
 public:
  struct Post {
    std::string url;
    std::vector<std::string> ids;  // the message ids of the batch
    bool signature_ok = false;     // Herald-Signature verifies with the secret expected for url
    unsigned status = 0;           // the answer
  };

  void answer(const std::string& url, unsigned status) {
    std::lock_guard lock(mu_);
    status_[url] = status;
  }
  void expect_secret(const std::string& url, const std::string& secret) {
    std::lock_guard lock(mu_);
    secret_[url] = secret;
  }

  unsigned record(const std::string& url, const distribution::WebhookPost& post) {
    Post p;
    p.url = url;
    const auto body = boost::json::parse(post.body);
    for (const auto& m : body.at("messages").as_array()) {
      p.ids.emplace_back(m.at("id").as_string());
    }
    std::lock_guard lock(mu_);
    const auto secret = secret_.find(url);
    for (const auto& [name, value] : post.headers) {
      if (name != distribution::kWebhookSignatureHeader || secret == secret_.end()) continue;
      const auto comma = value.find(',');
      const std::int64_t t = std::stoll(value.substr(2, comma - 2));
      p.signature_ok = value == distribution::webhook_signature(secret->second, t, post.body);
    }
    const auto status = status_.find(url);
    p.status = status == status_.end() ? 200 : status->second;
    if (secret != secret_.end() && !p.signature_ok) p.status = 401;
    const unsigned answer = p.status;
    posts_.push_back(std::move(p));
    cv_.notify_all();
    return answer;
  }

  // Waits until `url` answered 2xx for messages with `n` distinct ids (or the deadline passed);
  // returns the distinct ids delivered there.
  std::vector<std::string> wait_delivered(const std::string& url, std::size_t n) {
    std::unique_lock lock(mu_);
    std::vector<std::string> ids;
    cv_.wait_for(lock, kWait, [&] {
      ids = delivered_locked(url);
      return ids.size() >= n;
    });
    return ids;
  }
  // Waits until `url` got at least `n` POSTs; returns how many it got.
  std::size_t wait_posts(const std::string& url, std::size_t n) {
    std::unique_lock lock(mu_);
    std::size_t count = 0;
    cv_.wait_for(lock, kWait, [&] {
      count = 0;
      for (const auto& p : posts_) count += p.url == url ? 1 : 0;
      return count >= n;
    });
    return count;
  }
  std::vector<Post> posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }

 private:
  std::vector<std::string> delivered_locked(const std::string& url) {
    std::vector<std::string> ids;
    for (const auto& p : posts_) {
      if (p.url != url || p.status < 200 || p.status >= 300) continue;
      for (const auto& id : p.ids) {
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      }
    }
    return ids;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, unsigned> status_;
  std::map<std::string, std::string> secret_;
  std::vector<Post> posts_;
};

class RecordingTransport final : public distribution::WebhookTransport {
 public:
  RecordingTransport(std::string url, Backends& backends)
      : url_(std::move(url)), backends_(backends) {}
  asio::awaitable<boost::system::result<unsigned>> async_post(
      distribution::WebhookPost post) override {
    co_return backends_.record(url_, post);
  }

 private:
  std::string url_;
  Backends& backends_;
};

App app_with(const std::string& url, const std::string& secret, bool disabled = false) {
  App app;
  app.id = "news";
  app.disabled = disabled;
  if (!url.empty()) app.webhook = Webhook{url, secret};
  return app;
}

class WebhookSupervisorTest : public ::testing::Test {
 protected:
  WebhookSupervisorTest() {
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    storage_ = storage::RocksDbStorage::open(options).value();
    for (const char* device : {"d1", "d2"}) {
      EXPECT_TRUE(storage_->devices().register_device("news", device, kNowMs).has_value());
    }
    upstream_ = std::make_unique<UpstreamService>(
        std::vector<UpstreamAppSettings>{}, 1024, storage_->streams(), storage_->devices(),
        [] { return kNowMs; }, [this](const std::string& app) { supervisor_->wake(app); });
    WebhookSupervisorOptions supervisor_options;
    supervisor_options.per_app["news"] = {"news", 3, 3600};
    supervisor_options.retry_initial = 5ms;
    supervisor_options.retry_max = 20ms;
    supervisor_ = std::make_unique<WebhookSupervisor>(
        std::vector<asio::any_io_executor>{io_.get_executor()}, supervisor_options, *upstream_,
        storage_->streams(), storage_->devices(),
        [this](asio::any_io_executor,
               const std::string& url) -> std::unique_ptr<distribution::WebhookTransport> {
          ++transports_built_;
          if (!url.starts_with("http://")) throw std::invalid_argument("not http");
          return std::make_unique<RecordingTransport>(url, backends_);
        },
        [] { return kNowMs; });
    loop_ = std::thread([this] { io_.run(); });
  }

  ~WebhookSupervisorTest() override {
    supervisor_->stop();
    work_.reset();
    loop_.join();  // the dispatchers' coroutines end, then the loop runs out of work
  }

  // Stores one upstream message of d1 through the UpstreamService; returns its outcome.
  boost::system::error_code store(std::uint64_t id) {
    std::promise<boost::system::error_code> done;
    auto outcome = done.get_future();
    upstream_->async_store(
        UpstreamMessage{"d1", id, "news", "{}", storage::DataKind::kJson},
        asio::bind_executor(
            io_, [&done](boost::system::error_code ec, UpstreamStored) { done.set_value(ec); }));
    if (outcome.wait_for(kWait) != std::future_status::ready) {
      ADD_FAILURE() << "the store did not complete";
      return make_error_code(LogicError::kStorageFailed);
    }
    return outcome.get();
  }

  storage::testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  Backends backends_;
  std::size_t transports_built_ = 0;  // only apply() builds them, on this test's thread
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<UpstreamService> upstream_;
  std::unique_ptr<WebhookSupervisor> supervisor_;
  std::thread loop_;
};

TEST_F(WebhookSupervisorTest, AnAppWithAWebhookAcceptsAndItsMessagesArriveSigned) {
  EXPECT_FALSE(upstream_->accepts("news"));
  EXPECT_EQ(store(1), LogicError::kUnknownApp);

  backends_.expect_secret("http://a/in", kSecretA);
  supervisor_->apply(app_with("http://a/in", kSecretA));
  EXPECT_TRUE(upstream_->accepts("news"));
  EXPECT_TRUE(supervisor_->delivering("news"));
  ASSERT_FALSE(store(1));
  ASSERT_FALSE(store(2));
  EXPECT_EQ(backends_.wait_delivered("http://a/in", 2), (std::vector<std::string>{"d1:1", "d1:2"}));
  for (const auto& post : backends_.posts()) EXPECT_TRUE(post.signature_ok);
}

TEST_F(WebhookSupervisorTest, ANewUrlRetargetsTheDispatcherAndTheBacklogGoesThere) {
  backends_.answer("http://a/in", 503);  // the old backend refuses everything
  backends_.expect_secret("http://b/in", kSecretA);
  supervisor_->apply(app_with("http://a/in", kSecretA));
  const auto dispatcher = supervisor_->dispatcher("news");
  ASSERT_FALSE(store(1));
  ASSERT_FALSE(store(2));
  ASSERT_GE(backends_.wait_posts("http://a/in", 2), 2u);

  supervisor_->apply(app_with("http://b/in", kSecretA));
  EXPECT_EQ(backends_.wait_delivered("http://b/in", 2), (std::vector<std::string>{"d1:1", "d1:2"}));
  EXPECT_EQ(supervisor_->dispatcher("news"), dispatcher);  // the same one: one loop per stream
  ASSERT_FALSE(store(3));  // the next message goes to the new URL too
  EXPECT_EQ(backends_.wait_delivered("http://b/in", 3).size(), 3u);
  for (const auto& post : backends_.posts()) {
    if (post.url == "http://b/in") {
      EXPECT_TRUE(post.signature_ok);
    }
  }
}

TEST_F(WebhookSupervisorTest, ANewSecretSignsFromTheNextRequestOn) {
  backends_.expect_secret("http://a/in", kSecretB);  // the backend already has the new one
  supervisor_->apply(app_with("http://a/in", kSecretA));
  ASSERT_FALSE(store(1));
  ASSERT_GE(backends_.wait_posts("http://a/in", 1), 1u);  // refused: signed with the old one
  supervisor_->apply(app_with("http://a/in", kSecretB));
  EXPECT_EQ(backends_.wait_delivered("http://a/in", 1), (std::vector<std::string>{"d1:1"}));
  EXPECT_TRUE(backends_.posts().back().signature_ok);
}

TEST_F(WebhookSupervisorTest, ClearingTheWebhookRefusesNewMessagesAndKeepsTheStoredOnes) {
  backends_.answer("http://a/in", 503);
  supervisor_->apply(app_with("http://a/in", kSecretA));
  ASSERT_FALSE(store(1));
  ASSERT_FALSE(store(2));
  ASSERT_GE(backends_.wait_posts("http://a/in", 1), 1u);

  supervisor_->apply(app_with("", ""));
  EXPECT_FALSE(upstream_->accepts("news"));
  EXPECT_FALSE(supervisor_->delivering("news"));
  EXPECT_EQ(store(3), LogicError::kUnknownApp);
  EXPECT_EQ(upstream_->pending("news").value(), 2u);

  backends_.expect_secret("http://b/in", kSecretB);
  supervisor_->apply(app_with("http://b/in", kSecretB));
  EXPECT_EQ(backends_.wait_delivered("http://b/in", 2), (std::vector<std::string>{"d1:1", "d1:2"}));
  ASSERT_FALSE(store(3));
  EXPECT_EQ(backends_.wait_delivered("http://b/in", 3).size(), 3u);
}

TEST_F(WebhookSupervisorTest, ADisabledAppStopsUntilEnabledAgain) {
  backends_.answer("http://a/in", 503);
  supervisor_->apply(app_with("http://a/in", kSecretA));
  ASSERT_FALSE(store(1));
  ASSERT_GE(backends_.wait_posts("http://a/in", 1), 1u);

  supervisor_->apply(app_with("http://a/in", kSecretA, /*disabled=*/true));
  EXPECT_FALSE(upstream_->accepts("news"));
  EXPECT_EQ(store(2), LogicError::kUnknownApp);

  backends_.answer("http://a/in", 200);
  supervisor_->apply(app_with("http://a/in", kSecretA));
  EXPECT_TRUE(upstream_->accepts("news"));
  EXPECT_EQ(backends_.wait_delivered("http://a/in", 1), (std::vector<std::string>{"d1:1"}));
}

TEST_F(WebhookSupervisorTest, AChangeThatLeavesTheWebhookAloneLeavesTheDispatcherAlone) {
  App app = app_with("http://a/in", kSecretA);
  supervisor_->apply(app);
  EXPECT_EQ(transports_built_, 1u);
  app.limits.requests.per_s = 5;  // a rate limit change: nothing for upstream
  app.webhook->configured = true;
  supervisor_->apply(app);
  EXPECT_EQ(transports_built_, 1u);
  EXPECT_TRUE(supervisor_->delivering("news"));
}

TEST_F(WebhookSupervisorTest, TheAppsBoundComesFromItsSettings) {
  backends_.answer("http://a/in", 503);  // nothing is delivered, so everything stays pending
  supervisor_->apply(app_with("http://a/in", kSecretA));
  for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_FALSE(store(id));
  EXPECT_EQ(store(4), LogicError::kBusy);  // per_app["news"].max_pending = 3
}

TEST_F(WebhookSupervisorTest, AnUnusableUrlCountsAsNoWebhook) {
  supervisor_->apply(app_with("ftp://a/in", kSecretA));
  EXPECT_FALSE(upstream_->accepts("news"));
  EXPECT_FALSE(supervisor_->dispatcher("news"));
  supervisor_->apply(app_with("http://a/in", kSecretA));
  EXPECT_TRUE(upstream_->accepts("news"));
  supervisor_->apply(app_with("ftp://a/in", kSecretA));  // a running one pauses
  EXPECT_FALSE(upstream_->accepts("news"));
  EXPECT_FALSE(supervisor_->delivering("news"));
}

TEST_F(WebhookSupervisorTest, AfterStopNothingStarts) {
  supervisor_->stop();
  supervisor_->apply(app_with("http://a/in", kSecretA));
  EXPECT_FALSE(upstream_->accepts("news"));
  EXPECT_FALSE(supervisor_->dispatcher("news"));
}

}  // namespace
}  // namespace herald::logic
