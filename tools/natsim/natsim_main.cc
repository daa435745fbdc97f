// herald-natsim: a TCP proxy that behaves like a bad mobile network (a carrier NAT that forgets
// idle mappings, a blackholed endpoint, a slow route), for trying heartbeats and connection racing
// by hand and from tests. See docs/natsim.md.
//
//   herald-natsim --listen=127.0.0.1:0 --target=127.0.0.1:7700 --idle-timeout-ms=30000
//
// One thread: the proxy runs on one io_context; SIGINT/SIGTERM print the counters and stop it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/system_error.hpp>

#include "common/flag_reader.h"
#include "natsim/nat_proxy.h"

namespace {

namespace asio = boost::asio;
using herald::natsim::NatMode;
using herald::natsim::NatProxy;
using herald::natsim::NatProxyOptions;
using herald::tools::FlagReader;
using herald::tools::parse_number;
using herald::tools::UsageError;

constexpr int kExitOk = 0;
constexpr int kExitStartFailed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage =
    R"(usage: herald-natsim --listen=HOST:PORT [--target=HOST:PORT]
                     [--mode=forward|blackhole|delay] [--delay-ms=D] [--idle-timeout-ms=T]
                     [--max-connections=N] [--buffer-bytes=N] [--ready-file=PATH]

A TCP proxy that behaves like a bad mobile network. HOST is an IP address (no DNS).
Flags take their value after '=' or as the next argument.

  --listen=HOST:PORT     where to accept connections; port 0 picks a free port. The first
                         line on stdout is "listening HOST:PORT" with the bound port.
  --target=HOST:PORT     where to forward them (required except with --mode=blackhole)
  --mode=forward         forward both ways (default)
  --mode=blackhole       accept and never forward or answer anything (a dead endpoint)
  --mode=delay           forward every chunk D ms after it arrived (a slow route)
  --delay-ms=D           the delay of --mode=delay (default 0)
  --idle-timeout-ms=T    like a carrier NAT: a connection that carried nothing either way for
                         more than T ms is dropped silently: bytes either way are discarded,
                         and neither end gets a FIN or RST (default 0: never)
  --max-connections=N    connections at once, dropped and blackholed ones included; more are
                         closed as soon as accepted (default 1024)
  --buffer-bytes=N       the most one direction of a connection holds (default 65536)
  --ready-file=PATH      once listening, write {"port":P,"pid":N} to PATH (atomically)

SIGINT/SIGTERM: prints "counters accepted=.. rejected=.. connect_failures=.. dropped_idle=..
bytes_forwarded=.. bytes_discarded=.. open_mappings=.. dead_sockets=.." on stdout and exits 0.
Exit status 1: cannot listen; 2: bad arguments.
)";

// A bad command line; main prints it above the usage and exits kExitUsage.
// "127.0.0.1:7700" or "[::1]:7700".
asio::ip::tcp::endpoint parse_endpoint(std::string_view flag, std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw UsageError(std::string(flag) + ": expected HOST:PORT");
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (ec)
    throw UsageError(std::string(flag) + ": not an IP address: \"" + std::string(host) + "\"");
  return {address, parse_number<std::uint16_t>(flag, text.substr(colon + 1), 0, 65535)};
}

struct Args {
  NatProxyOptions proxy;
  bool has_target = false;
  std::string ready_file;
};

Args parse_args(int argc, char** argv) {
  Args a;
  bool has_listen = false;
  FlagReader flags(argc, argv);
  while (flags.next()) {
    const std::string_view flag = flags.flag();
    auto value = [&] { return flags.value(); };
    auto& o = a.proxy;
    if (flag == "--help" || flag == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      std::exit(kExitOk);
    } else if (flag == "--listen") {
      o.listen = parse_endpoint(flag, value());
      has_listen = true;
    } else if (flag == "--target") {
      o.target = parse_endpoint(flag, value());
      a.has_target = true;
    } else if (flag == "--mode") {
      const std::string_view mode = value();
      if (mode == "forward") {
        o.mode = NatMode::kForward;
      } else if (mode == "blackhole") {
        o.mode = NatMode::kBlackhole;
      } else if (mode == "delay") {
        o.mode = NatMode::kDelay;
      } else {
        throw UsageError("--mode: expected forward, blackhole or delay, got \"" +
                         std::string(mode) + "\"");
      }
    } else if (flag == "--delay-ms") {
      o.delay = std::chrono::milliseconds(parse_number<std::uint32_t>(flag, value(), 0, 3'600'000));
    } else if (flag == "--idle-timeout-ms") {
      o.idle_timeout =
          std::chrono::milliseconds(parse_number<std::uint32_t>(flag, value(), 0, 86'400'000));
    } else if (flag == "--max-connections") {
      o.max_connections = parse_number<std::size_t>(flag, value(), 1, 1'000'000);
    } else if (flag == "--buffer-bytes") {
      o.buffer_bytes = parse_number<std::size_t>(flag, value(), 1, 64 << 20);
    } else if (flag == "--ready-file") {
      a.ready_file = value();
    } else {
      throw UsageError("unknown argument \"" + std::string(flags.argument()) + "\"");
    }
  }
  if (!has_listen) throw UsageError("--listen is required");
  if (!a.has_target && a.proxy.mode != NatMode::kBlackhole) {
    throw UsageError("--target is required (except with --mode=blackhole)");
  }
  return a;
}

// Written atomically (rename), so a watcher never reads half of it.
void write_ready_file(const std::string& path, std::uint16_t port) {
  const auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << "{\"port\":" << port << ",\"pid\":" << ::getpid() << "}\n";
    if (!out) throw std::runtime_error("--ready-file: cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "herald-natsim: %s\n\n%.*s", e.what(), static_cast<int>(kUsage.size()),
                 kUsage.data());
    return kExitUsage;
  }
  asio::io_context io(1);
  std::optional<NatProxy> bound;
  try {
    bound.emplace(io, args.proxy);
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "herald-natsim: cannot listen on %s:%u: %s\n",
                 args.proxy.listen.address().to_string().c_str(), args.proxy.listen.port(),
                 e.code().message().c_str());
    return kExitStartFailed;
  }
  try {
    NatProxy& proxy = *bound;
    std::printf("listening %s:%u\n", args.proxy.listen.address().to_string().c_str(), proxy.port());
    std::fflush(stdout);
    if (!args.ready_file.empty()) write_ready_file(args.ready_file, proxy.port());

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&proxy, &io](const boost::system::error_code& ec, int) {
      if (ec) return;
      std::printf("counters %s\n", herald::natsim::to_string(proxy.counters()).c_str());
      std::fflush(stdout);
      proxy.stop();
      io.stop();
    });
    proxy.start();
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herald-natsim: %s\n", e.what());
    return kExitStartFailed;
  }
  return kExitOk;
}
