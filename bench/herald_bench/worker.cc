// The conversation, one line each way (coordinator -> worker: worker's answer):
//   (start)          -> "init"                          tokens read, nothing connected yet
//   "connect"        -> "ready <held> <failed> <last_ns>" every subscriber connected and
//                                                        subscribed (or failed, peers only);
//                                                        last_ns: steady_clock of the last one
//   "count"          -> "count <delivered> <connected> <reconnects> <lost_connections>"
//   "churn <per_s> <away_ms>" -> "ok"  disconnects random subscribers at that rate until "calm",
//                                       each reconnecting after away_ms
//   "calm"           -> "ok"   the churn has stopped and every subscriber still away is
//                              reconnecting (its reconnection may still be under way)
//   "dump <path>"    -> "dumped <n> <overflow>"  every delivery so far, as Delivery records
//   "quit"           -> "bye"  every subscriber stopped
// End of input (the coordinator died) ends the worker too.
#include "worker.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/flag_reader.h"
#include "delivery_check.h"
#include "herald/client.h"
#include "herald_server.h"
#include "peers.h"

namespace herald::bench {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct WorkerOptions {
  std::string system;  // "herald" or a peer's name
  std::uint16_t port = 0;
  int first = 0;  // global index of this worker's first subscriber
  int count = 0;
  std::vector<std::string> sources;  // source addresses, subscriber i uses sources[i % size]
  int window = 500;                  // connection attempts in flight at most
  std::string tokens_file;           // Herald: one device token per line, from subscriber 0
  int heartbeat_s = 600;
};

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "herald-bench worker: " << why << "\n";
  std::exit(2);
}

// The flags the coordinator wrote (argv[0] is "--worker").
WorkerOptions parse(int argc, char** argv) {
  WorkerOptions o;
  try {
    tools::FlagReader flags(argc, argv);
    while (flags.next()) {
      const auto flag = flags.flag();
      if (flag == "--system") {
        o.system = flags.value();
      } else if (flag == "--port") {
        o.port = tools::parse_number<std::uint16_t>(flag, flags.value(), 1, 65535);
      } else if (flag == "--first") {
        o.first = tools::parse_number(flag, flags.value(), 0, 100'000'000);
      } else if (flag == "--count") {
        o.count = tools::parse_number(flag, flags.value(), 0, 100'000'000);
      } else if (flag == "--window") {
        o.window = tools::parse_number(flag, flags.value(), 1, 1'000'000);
      } else if (flag == "--heartbeat-s") {
        o.heartbeat_s = tools::parse_number(flag, flags.value(), 1, 86'400);
      } else if (flag == "--tokens") {
        o.tokens_file = flags.value();
      } else if (flag == "--sources") {
        std::stringstream in{std::string(flags.value())};
        for (std::string s; std::getline(in, s, ',');) o.sources.push_back(s);
      } else {
        fail("unknown argument " + std::string(flags.argument()));
      }
    }
  } catch (const tools::UsageError& e) {
    fail(e.what());
  }
  if (o.sources.empty()) o.sources.emplace_back();
  return o;
}

// Every delivery of this worker's subscribers, bounded: past kMaxRecords they are only counted
// (and the coordinator's check then fails, since it cannot see them).
class Recorder {
 public:
  static constexpr std::size_t kMaxRecords = 16 * 1024 * 1024;

  void record(int subscriber, std::string_view payload) {
    const auto at = now_ns();
    Delivery d{.subscriber = subscriber, .k = -1, .sent_ns = at, .recv_ns = at};
    parse_payload(payload, d.k, d.sent_ns);  // a stranger payload stays k = -1: unexpected
    std::lock_guard lock(mu_);
    ++delivered_;
    if (records_.size() < kMaxRecords) {
      records_.push_back(d);
    } else {
      ++overflow_;
    }
  }
  std::int64_t delivered() {
    std::lock_guard lock(mu_);
    return delivered_;
  }
  // Writes every record to `path`; returns how many, and how many did not fit.
  std::pair<std::size_t, std::int64_t> dump(const std::string& path) {
    std::lock_guard lock(mu_);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(records_.data()),
              static_cast<std::streamsize>(records_.size() * sizeof(Delivery)));
    if (!out) fail("cannot write " + path);
    return {records_.size(), overflow_};
  }

 private:
  std::mutex mu_;
  std::vector<Delivery> records_;
  std::int64_t delivered_ = 0;
  std::int64_t overflow_ = 0;
};

// Connection bookkeeping shared by both kinds of fleet: how many subscribers are connected now,
// how many ever were, and the window of attempts in flight.
class Presence {
 public:
  explicit Presence(int count)
      : connected_(static_cast<std::size_t>(count)), ever_(static_cast<std::size_t>(count)) {}

  void up(int i) {
    if (connected_[static_cast<std::size_t>(i)].exchange(true)) return;
    std::lock_guard lock(mu_);
    ++now_;
    if (!ever_[static_cast<std::size_t>(i)]) {
      ever_[static_cast<std::size_t>(i)] = true;
      ++ever_count_;
      last_ready_ns_ = now_ns();
    }
    changed_.notify_all();
  }
  void down(int i) {
    if (!connected_[static_cast<std::size_t>(i)].exchange(false)) return;
    std::lock_guard lock(mu_);
    --now_;
  }
  void failed() {
    std::lock_guard lock(mu_);
    ++failed_;
    changed_.notify_all();
  }
  // Blocks while `started` attempts leave `window` or more still in flight.
  void wait_room(int started, int window) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return started - ever_count_ - failed_ < window; });
  }
  // Blocks until `n` subscribers were connected once or failed.
  void wait_settled(int n) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return ever_count_ + failed_ >= n; });
  }
  std::string ready_line() {
    std::lock_guard lock(mu_);
    return "ready " + std::to_string(ever_count_) + " " + std::to_string(failed_) + " " +
           std::to_string(last_ready_ns_);
  }
  int connected() {
    std::lock_guard lock(mu_);
    return now_;
  }

 private:
  std::vector<std::atomic<bool>> connected_;
  std::mutex mu_;
  std::condition_variable changed_;
  int now_ = 0;
  int failed_ = 0;
  std::vector<bool> ever_;  // connected at least once
  int ever_count_ = 0;
  std::int64_t last_ready_ns_ = 0;
};

// The subscribers of one system in this process, indexed 0..count-1 (global index first + i).
class Fleet {
 public:
  virtual ~Fleet() = default;
  // Connects subscriber i, the first time or again after disconnect(i).
  virtual void start(int i) = 0;
  // Disconnects subscriber i, as a device that loses its network or closes its app.
  virtual void disconnect(int i) = 0;
  virtual void stop_all() = 0;
  std::atomic<std::int64_t> lost_connections{0};
};

// Herald devices through the real client library, on one event-loop thread. Each device keeps
// its cursor store across reconnects, as an app keeps its cursor file.
class HeraldFleet final : public Fleet {
 public:
  HeraldFleet(const WorkerOptions& o, Recorder& recorder, Presence& presence)
      : o_(o),
        recorder_(recorder),
        presence_(presence),
        devices_(static_cast<std::size_t>(o.count)) {
    std::ifstream in(o.tokens_file);
    std::string token;
    for (int line = 0; std::getline(in, token); ++line) {
      if (line >= o.first && line < o.first + o.count) tokens_.push_back(token);
    }
    if (static_cast<int>(tokens_.size()) != o.count) fail("too few tokens in " + o.tokens_file);
    for (auto& d : devices_) d.cursors = make_memory_cursor_store();
  }

  void start(int i) override {
    auto& d = devices_[static_cast<std::size_t>(i)];
    ClientOptions co;
    co.endpoints = {{"127.0.0.1", o_.port}};
    co.local_address = o_.sources[static_cast<std::size_t>(i) % o_.sources.size()];
    co.device_id = "bench-" + std::to_string(o_.first + i);
    co.token = tokens_[static_cast<std::size_t>(i)];
    co.heartbeat_s = static_cast<std::uint32_t>(o_.heartbeat_s);
    co.adaptive_heartbeat = false;  // a load run holds idle connections; no probing
    d.client = std::make_unique<Client>(loop_, co, d.cursors);
    const int global = o_.first + i;
    d.client->on_message(testing::kNewsApp.id,
                         [this, global](const Message& m) { recorder_.record(global, m.data); });
    // A stopped client's last state changes are the churn's doing, not a lost connection.
    const int generation = ++d.generation;
    d.client->on_state([this, i, generation](const StateChange& s) {
      if (devices_[static_cast<std::size_t>(i)].generation != generation) return;
      if (s.state == ConnectionState::kConnected) {
        presence_.up(i);
      } else if (s.state == ConnectionState::kDisconnected) {
        presence_.down(i);
        lost_connections++;
      }
    });
    d.client->start();
  }

  void disconnect(int i) override {
    auto& d = devices_[static_cast<std::size_t>(i)];
    ++d.generation;
    d.client->stop();
    presence_.down(i);
  }

  void stop_all() override {
    for (auto& d : devices_) {
      if (d.client) d.client->stop();
    }
  }

 private:
  struct Device {
    std::shared_ptr<CursorStore> cursors;
    std::unique_ptr<Client> client;
    std::atomic<int> generation{0};
  };
  const WorkerOptions& o_;
  Recorder& recorder_;
  Presence& presence_;
  EventLoop loop_{1};
  std::vector<std::string> tokens_;
  std::vector<Device> devices_;
};

// A peer's subscribers through its protocol driver, on one io_context thread. A subscriber
// whose connection the peer ends reconnects at once, as Herald's client does by itself.
class PeerFleet final : public Fleet {
 public:
  PeerFleet(const WorkerOptions& o, PeerKind kind, Recorder& recorder, Presence& presence)
      : o_(o),
        kind_(kind),
        recorder_(recorder),
        presence_(presence),
        subscribers_(static_cast<std::size_t>(o.count)) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~PeerFleet() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  void start(int i) override {
    boost::asio::post(io_, [this, i] {
      auto& s = subscribers_[static_cast<std::size_t>(i)];
      if (!s) s = make(i);
      connect(i);
    });
  }

  void disconnect(int i) override {
    boost::asio::post(io_, [this, i] {
      subscribers_[static_cast<std::size_t>(i)]->close();
      presence_.down(i);
    });
  }

  void stop_all() override {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      for (auto& s : subscribers_) {
        if (s) s->close();
      }
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  std::unique_ptr<PeerSubscriber> make(int i) {
    SubscriberOptions so;
    so.kind = kind_;
    so.port = o_.port;
    so.source_address = o_.sources[static_cast<std::size_t>(i) % o_.sources.size()];
    so.index = o_.first + i;
    so.persistent_session = kind_ == PeerKind::kMqttQos1;
    const int global = so.index;
    return PeerSubscriber::make(
        io_, so, [this, global](std::string_view payload) { recorder_.record(global, payload); },
        [this, i](boost::system::error_code) {
          presence_.down(i);
          lost_connections++;
          connect(i);
        });
  }

  void connect(int i) {
    subscribers_[static_cast<std::size_t>(i)]->start([this, i](boost::system::error_code ec) {
      if (ec) {
        std::cerr << "herald-bench worker: subscriber " << o_.first + i << ": " << ec.message()
                  << "\n";
        presence_.failed();
      } else {
        presence_.up(i);
      }
    });
  }

  const WorkerOptions& o_;
  PeerKind kind_;
  Recorder& recorder_;
  Presence& presence_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::vector<std::unique_ptr<PeerSubscriber>> subscribers_;
  std::thread thread_;
};

// Disconnects random subscribers at `per_s` (over the whole worker), each for `away`, until
// destroyed; then reconnects every subscriber still away.
class Churn {
 public:
  Churn(Fleet& fleet, int count, double per_s, std::chrono::milliseconds away,
        std::atomic<std::int64_t>& reconnects)
      : fleet_(fleet), away_(static_cast<std::size_t>(count)) {
    thread_ = std::jthread([this, count, per_s, away, &reconnects](std::stop_token stop) {
      std::mt19937 random(std::random_device{}());
      std::uniform_int_distribution<int> pick(0, count - 1);
      const auto every =
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / per_s));
      for (auto next = Clock::now() + every; !stop.stop_requested(); next += every) {
        std::this_thread::sleep_until(next);  // pacing, not synchronisation
        while (!returning_.empty() && returning_.front().first <= Clock::now()) {
          back(returning_.front().second);
          returning_.pop_front();
          reconnects++;
        }
        const int i = pick(random);
        if (away_[static_cast<std::size_t>(i)]) continue;  // already away: skip this turn
        away_[static_cast<std::size_t>(i)] = true;
        fleet_.disconnect(i);
        returning_.emplace_back(Clock::now() + away, i);
      }
    });
  }
  ~Churn() {
    thread_.request_stop();
    thread_.join();
    for (const auto& r : returning_) back(r.second);
  }
  Churn(const Churn&) = delete;
  Churn& operator=(const Churn&) = delete;

 private:
  void back(int i) {
    away_[static_cast<std::size_t>(i)] = false;
    fleet_.start(i);
  }

  Fleet& fleet_;
  std::vector<bool> away_;  // touched by the churn's thread only, then by the destructor
  std::deque<std::pair<Clock::time_point, int>> returning_;  // in the order they are due
  std::jthread thread_;
};

}  // namespace

int worker_main(int argc, char** argv) {
  const WorkerOptions o = parse(argc, argv);
  Recorder recorder;
  Presence presence(o.count);
  std::unique_ptr<Fleet> fleet;
  if (o.system == "herald") {
    fleet = std::make_unique<HeraldFleet>(o, recorder, presence);
  } else {
    PeerKind kind{};
    if (!parse_peer(o.system, kind)) fail("unknown system " + o.system);
    fleet = std::make_unique<PeerFleet>(o, kind, recorder, presence);
  }
  std::atomic<std::int64_t> reconnects{0};
  std::unique_ptr<Churn> churn;
  std::cout << "init" << std::endl;

  for (std::string line; std::getline(std::cin, line);) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "connect") {
      for (int i = 0; i < o.count; ++i) {
        presence.wait_room(i, o.window);
        fleet->start(i);
      }
      presence.wait_settled(o.count);
      std::cout << presence.ready_line() << std::endl;
    } else if (command == "count") {
      std::cout << "count " << recorder.delivered() << " " << presence.connected() << " "
                << reconnects << " " << fleet->lost_connections << std::endl;
    } else if (command == "churn") {
      double per_s = 0;
      int away_ms = 0;
      in >> per_s >> away_ms;
      if (per_s > 0 && o.count > 0) {
        churn = std::make_unique<Churn>(*fleet, o.count, per_s, std::chrono::milliseconds(away_ms),
                                        reconnects);
      }
      std::cout << "ok" << std::endl;
    } else if (command == "calm") {
      churn.reset();
      std::cout << "ok" << std::endl;
    } else if (command == "dump") {
      std::string path;
      in >> path;
      const auto [n, overflow] = recorder.dump(path);
      std::cout << "dumped " << n << " " << overflow << std::endl;
    } else if (command == "quit") {
      break;
    } else {
      fail("unknown command " + line);
    }
  }
  churn.reset();
  fleet->stop_all();
  std::cout << "bye" << std::endl;
  return 0;
}

}  // namespace herald::bench
