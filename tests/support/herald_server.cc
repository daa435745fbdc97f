#include "herald_server.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

namespace herald::testing {

namespace asio = boost::asio;

std::filesystem::path bin_path(const std::string& name) {
  if (const char* dir = std::getenv("HERALD_BIN_DIR")) return std::filesystem::path(dir) / name;
  // Not under CTest: the binaries sit in <build>/bin, beside this program's <build>/<kind>.
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  return self.parent_path().parent_path() / "bin" / name;
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

HeraldServer::HeraldServer(std::vector<std::string> extra_args)
    : HeraldServer(std::move(extra_args), {}) {}

HeraldServer::HeraldServer(std::vector<std::string> extra_args,
                           std::vector<std::string> environment)
    : HeraldServer(std::move(extra_args), std::move(environment), {}) {}

HeraldServer::HeraldServer(std::vector<std::string> extra_args,
                           std::vector<std::string> environment,
                           std::vector<std::string> command_prefix)
    : extra_args_(std::move(extra_args)),
      environment_(std::move(environment)),
      command_prefix_(std::move(command_prefix)) {
  dir_ = make_temp_dir("herald-it");
  data_dir_ = dir_ / "data";
  ready_file_ = dir_ / "ready.json";
  // heraldd picks free ports itself the first time (port 0) and names them in its ready file:
  // ports chosen here and released before heraldd binds them could be taken meanwhile by a test
  // running beside this one. restart() comes back on the same ports, where clients expect it.
  spawn();
}

HeraldServer::~HeraldServer() {
  process_.reset();  // SIGTERM, then SIGKILL if it does not exit in time
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void HeraldServer::spawn() {
  std::filesystem::remove(ready_file_);
  std::vector<std::string> args = {
      bin_path("heraldd").string(),
      "--data_dir=" + data_dir_.string(),
      "--ready_file=" + ready_file_.string(),
      "--access.listen=127.0.0.1:" + std::to_string(device_port_),
      "--http.listen=127.0.0.1:" + std::to_string(http_port_),
      "--threads=2",
      "--log_level=warn",
      "--app=" + kNewsApp.id + ":" + kNewsApp.key,
      "--app=" + kChatApp.id + ":" + kChatApp.key,
  };
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  if (!environment_.empty()) {
    // env(1) sets the variables and execs heraldd in the same process: same pid, same signals.
    std::vector<std::string> with_env = {"/usr/bin/env"};
    with_env.insert(with_env.end(), environment_.begin(), environment_.end());
    with_env.insert(with_env.end(), args.begin(), args.end());
    args = std::move(with_env);
  }
  args.insert(args.begin(), command_prefix_.begin(), command_prefix_.end());
  process_ = std::make_unique<Process>(std::move(args));
  wait_ready();
}

void HeraldServer::wait_ready() {
  // heraldd writes the ready file (atomically, by rename) once both listeners are up.
  if (!process_->wait_for_file(ready_file_, std::chrono::seconds(30))) {
    throw std::runtime_error(process_->running() ? "heraldd not ready after 30 s"
                                                 : "heraldd exited during start-up");
  }
  std::ifstream in(ready_file_);
  std::stringstream text;
  text << in.rdbuf();
  const auto ready = boost::json::parse(text.str()).as_object();
  const auto device_port = static_cast<std::uint16_t>(ready.at("device_port").as_int64());
  const auto http_port = static_cast<std::uint16_t>(ready.at("http_port").as_int64());
  if ((device_port_ != 0 && device_port != device_port_) ||
      (http_port_ != 0 && http_port != http_port_)) {
    throw std::runtime_error("heraldd listens on unexpected ports");
  }
  device_port_ = device_port;
  http_port_ = http_port;
}

void HeraldServer::kill9() {
  if (process_) process_->kill9();
}

int HeraldServer::terminate() {
  if (!running()) return -1;
  return process_->terminate().value_or(-1);
}

std::optional<int> HeraldServer::wait_exit(std::chrono::milliseconds timeout) {
  if (!process_) return std::nullopt;
  return process_->wait(timeout);
}

void HeraldServer::restart() {
  if (running()) throw std::logic_error("restart of a running server");
  spawn();
}

std::string HeraldServer::admin_token() const {
  std::ifstream in(data_dir_ / "admin_token");
  std::string token;
  if (!std::getline(in, token) || token.empty()) {
    throw std::runtime_error("no admin token in " + data_dir_.string());
  }
  return token;
}

std::int64_t HeraldServer::rss_kib() const { return testing::rss_kib(pid()); }

}  // namespace herald::testing
