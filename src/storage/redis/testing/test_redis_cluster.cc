#include "storage/redis/testing/test_redis_cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "process.h"
#include "storage/redis/key_slot.h"

namespace herald::storage::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kStartTimeout = 10s;

// A port the kernel just gave out and took back: free unless another process races for it
// (start_node retries with new ports when redis-server cannot bind).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot pick a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// redis-server: $HERALD_REDIS_SERVER, else the first on $PATH.
std::string redis_server_path() {
  if (const char* chosen = std::getenv("HERALD_REDIS_SERVER"); chosen != nullptr && *chosen != 0) {
    return chosen;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const std::filesystem::path candidate =
        std::filesystem::path(dirs.substr(0, colon)) / "redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
  }
  throw std::runtime_error("redis-server is not installed (scripts/setup.sh installs it)");
}

std::string tail_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

// The value of `field` in an INFO-style "field:value\r\n" text; empty when absent.
std::string info_field(const std::string& text, std::string_view field) {
  const auto at = text.find(std::string(field) + ":");
  if (at == std::string::npos) return {};
  const auto begin = at + field.size() + 1;
  return text.substr(begin, text.find_first_of("\r\n", begin) - begin);
}

}  // namespace

struct TestRedisCluster::Node {
  RedisEndpoint endpoint;
  std::uint16_t bus_port = 0;
  std::filesystem::path dir;
  std::unique_ptr<herald::testing::Process> process;
  std::unique_ptr<RedisConnection> admin;

  RedisValue run(const RedisCommand& command) {
    auto reply = admin->run(command);
    if (!reply) {
      throw std::runtime_error("redis " + endpoint.text() + " " + command.front() + ": " +
                               reply.error().message());
    }
    if (reply->is_error()) {
      throw std::runtime_error("redis " + endpoint.text() + " " + command.front() + ": " +
                               reply->text);
    }
    return std::move(*reply);
  }
};

TestRedisCluster::TestRedisCluster() : TestRedisCluster(Options{}) {}

TestRedisCluster::TestRedisCluster(Options options) : options_(options) {
  if (options_.masters == 0) throw std::invalid_argument("a cluster needs a master");
  if (!options_.cluster && (options_.masters != 1 || options_.replicas_per_master != 0)) {
    throw std::invalid_argument("a server that is not a cluster is one master");
  }
  char pattern[] = "/tmp/herald-redis-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  root_ = pattern;
  const auto total = options_.masters * (1 + options_.replicas_per_master);
  try {
    for (std::size_t i = 0; i < total; ++i) start_node(i);
    if (options_.cluster) {
      form();
    } else {
      masters_.push_back(nodes_.front()->endpoint);
    }
  } catch (...) {
    nodes_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
    throw;
  }
}

TestRedisCluster::~TestRedisCluster() {
  nodes_.clear();  // each Process stops its server
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

void TestRedisCluster::start_node(std::size_t index) {
  auto node = std::make_unique<Node>();
  node->dir = root_ / ("node-" + std::to_string(index));
  std::filesystem::create_directories(node->dir);
  std::string failure;
  for (int attempt = 0; attempt < 3; ++attempt) {
    node->endpoint = {"127.0.0.1", free_port()};
    node->bus_port = free_port();
    std::vector<std::string> argv = {redis_server_path(),
                                     "--port",
                                     std::to_string(node->endpoint.port),
                                     "--bind",
                                     "127.0.0.1",
                                     "--protected-mode",
                                     "no",
                                     "--dir",
                                     node->dir.string(),
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--save",
                                     "",
                                     "--logfile",
                                     (node->dir / "log").string(),
                                     "--daemonize",
                                     "no"};
    if (options_.cluster) {
      argv.insert(argv.end(),
                  {"--cluster-enabled", "yes", "--cluster-port", std::to_string(node->bus_port),
                   "--cluster-config-file", (node->dir / "nodes.conf").string(),
                   "--cluster-node-timeout", "2000"});
    }
    node->process = std::make_unique<herald::testing::Process>(std::move(argv));
    const auto deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline && !node->process->exited()) {
      if (auto conn = RedisConnection::connect(node->endpoint, 200ms, 2000ms)) {
        auto pong = (*conn)->run(RedisCommand{"PING"});
        if (pong && pong->text == "PONG") {
          node->admin = std::move(*conn);
          nodes_.push_back(std::move(node));
          return;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    failure = tail_of(node->dir / "log");
    node->process.reset();
  }
  throw std::runtime_error("redis-server did not start: " + failure);
}

void TestRedisCluster::form() {
  const auto masters = options_.masters;
  for (std::size_t i = 0; i < masters; ++i) {
    const auto first = i * kClusterSlots / masters;
    const auto last = (i + 1) * kClusterSlots / masters - 1;
    nodes_[i]->run({"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
    masters_.push_back(nodes_[i]->endpoint);
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i]->run({"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(i + 1)});
  }
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    nodes_[0]->run({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i]->endpoint.port),
                    std::to_string(nodes_[i]->bus_port)});
  }
  const auto deadline = Clock::now() + kStartTimeout;
  const auto known = std::to_string(nodes_.size());
  auto all_ok = [&] {
    for (const auto& node : nodes_) {
      const auto info = node->run({"CLUSTER", "INFO"}).text;
      if (info_field(info, "cluster_state") != "ok" ||
          info_field(info, "cluster_known_nodes") != known) {
        return false;
      }
    }
    return true;
  };
  while (!all_ok()) {
    if (Clock::now() > deadline) {
      throw std::runtime_error("redis cluster did not form: " + tail_of(nodes_[0]->dir / "log"));
    }
    std::this_thread::sleep_for(10ms);
  }
  // Replicas: replica r of master m is node masters + m * replicas + r.
  for (std::size_t m = 0; m < masters; ++m) {
    const auto master_id = nodes_[m]->run({"CLUSTER", "MYID"}).text;
    for (std::size_t r = 0; r < options_.replicas_per_master; ++r) {
      auto& replica = *nodes_[masters + m * options_.replicas_per_master + r];
      replica.run({"CLUSTER", "REPLICATE", master_id});
    }
  }
  for (std::size_t i = masters; i < nodes_.size(); ++i) {
    while (info_field(nodes_[i]->run({"INFO", "replication"}).text, "master_link_status") != "up") {
      if (Clock::now() > deadline) {
        throw std::runtime_error("redis replica did not sync: " + tail_of(nodes_[i]->dir / "log"));
      }
      std::this_thread::sleep_for(10ms);
    }
  }
}

std::vector<RedisEndpoint> TestRedisCluster::nodes() const {
  std::vector<RedisEndpoint> all;
  for (const auto& node : nodes_) all.push_back(node->endpoint);
  return all;
}

std::string TestRedisCluster::seeds_text() const {
  std::string text;
  for (const auto& master : masters_) text += (text.empty() ? "" : ",") + master.text();
  return text;
}

void TestRedisCluster::kill_node(std::size_t index) {
  nodes_.at(index)->admin.reset();
  nodes_.at(index)->process->kill9();
}

}  // namespace herald::storage::testing
