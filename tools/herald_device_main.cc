// herald-device: acts as one device or thousands, through the real client library, and prints or
// counts what arrives. Used by people trying Herald out, by the end-to-end tests and for load.
//
//   herald-device --server 127.0.0.1:7700 --device phone-1 --token T --print
//   herald-device --server 127.0.0.1:7700 --devices-file devices.txt --threads 2 --count
//   herald-device --server 127.0.0.1:7700 --device phone-1 --token T --out phone-1.jsonl
//   herald-device --server 127.0.0.1:7700 --device phone-1 --token T --subscribe news:sport
//   herald-device --server 10.0.0.7:7700 --tls --tls-ca-file=ca.pem --tls-server-name=push.example
//                 --device phone-1 --token T
//
// Threads: the clients run on an EventLoop of --threads threads; the main thread only handles
// signals, the once-a-second summary, staggered start-up and shutdown.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log.h"
#include "herald/client.h"
#include "herald/journal_cursor_store.h"

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kSpareFiles = 64;  // stdio, journal, cursor files, resolver
constexpr int kLoggedErrorsInManyMode = 10;

constexpr std::string_view kUsage =
    R"(usage: herald-device (--server HOST:PORT ... | --endpoint-list URL ... --endpoint-key KEY)
                     (--device ID --token TOKEN | --devices-file FILE)
                     [--print | --count] [--exit-after N] [--duration S]
                     [--cursor-dir DIR | --out FILE] [--threads N] [--heartbeat S]
                     [--connect-rate N] [--subscribe APP:TOPIC ...] [--verbose]
                     [--endpoint-cache FILE] [--network ID] [--source ADDRESS ...]
                     [--tls [--tls-ca-file PATH] (--tls-server-name NAME | --tls-insecure)]

Connects as one device (--device/--token) or as every device of FILE (one "device_id token"
per line; blank lines and lines starting with # are skipped) and reports what arrives.
A flag's value may follow it as the next argument or after '=' (--tls-ca-file=ca.pem).

  --server HOST:PORT  access endpoint; repeat for several (raced best first, see the
                      client library's README); with --endpoint-list, the embedded fallback
  --endpoint-list URL where the deployment serves its signed endpoint list
                      (http://HOST:PORT/v1/endpoints or https://..., docs/endpoints.md);
                      repeat for several. The devices connect where the list says, least
                      loaded first. https:// is verified with --tls-ca-file against the
                      URL's host (--tls-server-name when the host is an IP address), with
                      or without --tls
  --endpoint-key KEY  the deployment's public key, as `heraldd --print-endpoint-public-key`
                      prints it; required with --endpoint-list
  --endpoint-cache FILE
                      single device only: keep the latest verified list in FILE, used when
                      DNS or the list server fails on a later start
  --network ID        the network the device is on (a carrier, a Wi-Fi id; 1..64 bytes): the
                      adaptive heartbeat learns per network, and the list may hint a start
  --source ADDRESS    the local IP address the connections come from (default: the
                      system's choice); repeat for several, the devices take them in turn.
                      One address has about 28k ports per server: above that many devices,
                      give several (127.0.0.2, 127.0.0.3, ... on loopback)
  --tls               connect over TLS (the access nodes run with access.tls); needs
                      --tls-server-name, or --tls-insecure. A session the server hands out
                      is resumed by each reconnect
  --tls-ca-file PATH  PEM file of the CAs that sign the servers' certificates (default: the
                      system's store)
  --tls-server-name NAME
                      the name the servers' certificate must carry, also sent as SNI (the
                      endpoints are IP addresses, so the name comes from here)
  --tls-insecure      FOR TESTS ONLY: do not verify the servers' certificates at all (anyone
                      on the path can then read and forge the connection)
  --print             one JSON line per message on stdout, keys in this order:
                        device, app, stream, epoch, seq, id, sent_at_ms, data
                      (data is the message's JSON value; binary data is base64 with
                      "binary":true; a recall has "recall":"<message id>" instead of
                      data). A message of a topic has "topic":"<name>" before data, one
                      sent to all the app's devices "broadcast":true; inbox messages
                      have neither. Default with a single device.
  --count             one summary line per second on stdout
                        elapsed_s=.. devices=.. connected=.. received=.. per_s=..
                      and at exit "total received=.. devices=.. elapsed_s=..".
                      Default with --devices-file.
  --exit-after N      exit 0 once N messages in total arrived
  --duration S        stop after S seconds (exit 1 if --exit-after N was not reached)
  --cursor-dir DIR    keep each device's cursors in DIR/<device>.cursor (default: memory,
                      so a restart receives every retained message again)
  --out FILE          single device only: exactly-once journal mode (below)
  --threads N         event loop threads (default 1)
  --heartbeat S       heartbeat interval announced to the server (default 60)
  --connect-rate N    devices started per second (default 5000), so that a start-up storm
                      does not overflow the server's accept backlog
  --subscribe APP:TOPIC
                      join TOPIC of APP once connected (every device, with --devices-file);
                      repeat for several. A refused join is logged on stderr
                      ("subscribe_failed") and the device runs on. Joins are kept by the
                      server: a later run without the flag still reads the topic.
  --verbose           log every connection state change on stderr

Exactly-once journal (--out FILE): every message is appended to FILE as its --print line,
and FILE is also the device's cursor store. The lines of a batch are written and
fdatasync'ed before the client acknowledges the batch, and on start the cursor of each
stream is rebuilt from the last complete line of that stream; a torn last line (no trailing
newline, left by a crash mid-write) is cut off first and its message comes again. So a
kill -9 at any moment neither loses nor repeats a message in FILE: after a restart with the
same FILE, it holds each delivered message exactly once, in order per stream.

Exit status: 0 on SIGINT/SIGTERM, --exit-after reached or --duration over; 1 when a client
stopped on a delivery failure (e.g. the journal could not be written) or --exit-after was
not reached within --duration; 2 on bad arguments or a bad devices file.
)";

struct Options {
  std::vector<herald::Endpoint> servers;
  std::vector<std::string> endpoint_lists;
  std::string endpoint_key;
  std::string endpoint_cache;
  std::string network;
  std::vector<std::string> sources;  // --source: ClientOptions::local_address, in turn
  std::string device;
  std::string token;
  std::string devices_file;
  bool print = false;
  bool count = false;
  std::uint64_t exit_after = 0;
  std::uint64_t duration_s = 0;
  std::string cursor_dir;
  std::string out;
  int threads = 1;
  std::uint32_t heartbeat_s = 60;
  std::uint32_t connect_rate = 5000;
  std::vector<std::pair<std::string, std::string>> subscribe;  // --subscribe: (app, topic)
  bool verbose = false;
  herald::TlsOptions tls;  // --tls, --tls-ca-file, --tls-server-name, --tls-insecure
};

struct DeviceSpec {
  std::string id;
  std::string token;
};

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "herald-device: %s\n\n%.*s", what.c_str(), static_cast<int>(kUsage.size()),
               kUsage.data());
  std::exit(kExitUsage);
}

template <class N>
N parse_number(std::string_view flag, std::string_view text, N min, N max) {
  N value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    usage_error(std::string(flag) + ": expected a number in " + std::to_string(min) + ".." +
                std::to_string(max) + ", got \"" + std::string(text) + "\"");
  }
  return value;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    // --flag=VALUE as well as --flag VALUE. (A flag and a string_view rather than a
    // std::optional<std::string_view>, which GCC 12 reports maybe-uninitialized once inlined.)
    bool has_inline_value = false;
    std::string_view inline_value;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string_view::npos) {
      has_inline_value = true;
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    bool value_taken = false;
    auto value = [&]() -> std::string_view {
      value_taken = true;
      if (has_inline_value) return inline_value;
      if (i + 1 >= argc) usage_error(std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      std::exit(kExitOk);
    } else if (flag == "--server") {
      const std::string_view text = value();
      auto ep = herald::parse_endpoint(text);
      if (!ep) usage_error("--server: expected HOST:PORT, got \"" + std::string(text) + "\"");
      o.servers.push_back(*ep);
    } else if (flag == "--endpoint-list") {
      o.endpoint_lists.emplace_back(value());
    } else if (flag == "--endpoint-key") {
      o.endpoint_key = value();
    } else if (flag == "--endpoint-cache") {
      o.endpoint_cache = value();
    } else if (flag == "--network") {
      o.network = value();
      if (o.network.empty() || o.network.size() > 64) usage_error("--network: 1..64 bytes");
    } else if (flag == "--source") {
      const std::string_view text = value();
      boost::system::error_code ec;
      (void)asio::ip::make_address(text, ec);
      if (ec) usage_error("--source: expected an IP address, got \"" + std::string(text) + "\"");
      o.sources.emplace_back(text);
    } else if (flag == "--device") {
      o.device = value();
    } else if (flag == "--token") {
      o.token = value();
    } else if (flag == "--devices-file") {
      o.devices_file = value();
    } else if (flag == "--print") {
      o.print = true;
    } else if (flag == "--count") {
      o.count = true;
    } else if (flag == "--exit-after") {
      o.exit_after = parse_number<std::uint64_t>(flag, value(), 1, UINT64_MAX);
    } else if (flag == "--duration") {
      o.duration_s = parse_number<std::uint64_t>(flag, value(), 1, 365ull * 24 * 3600);
    } else if (flag == "--cursor-dir") {
      o.cursor_dir = value();
    } else if (flag == "--out") {
      o.out = value();
    } else if (flag == "--threads") {
      o.threads = parse_number<int>(flag, value(), 1, 256);
    } else if (flag == "--heartbeat") {
      o.heartbeat_s = parse_number<std::uint32_t>(flag, value(), 0, 86400);
    } else if (flag == "--connect-rate") {
      o.connect_rate = parse_number<std::uint32_t>(flag, value(), 1, 1'000'000);
    } else if (flag == "--subscribe") {
      const std::string_view text = value();
      const auto colon = text.find(':');
      if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
        usage_error("--subscribe: expected APP:TOPIC, got \"" + std::string(text) + "\"");
      }
      o.subscribe.emplace_back(text.substr(0, colon), text.substr(colon + 1));
    } else if (flag == "--verbose") {
      o.verbose = true;
    } else if (flag == "--tls") {
      o.tls.enabled = true;
    } else if (flag == "--tls-ca-file") {
      o.tls.ca_file = value();
      if (o.tls.ca_file.empty()) usage_error("--tls-ca-file: expected a file");
    } else if (flag == "--tls-server-name") {
      o.tls.server_name = value();
      if (o.tls.server_name.empty()) usage_error("--tls-server-name: expected a name");
    } else if (flag == "--tls-insecure") {
      o.tls.verify_peer = false;
    } else {
      usage_error("unknown argument \"" + std::string(flag) + "\"");
    }
    if (has_inline_value && !value_taken) usage_error(std::string(flag) + " takes no value");
  }
  if (o.servers.empty() && o.endpoint_lists.empty()) {
    usage_error("--server or --endpoint-list is required");
  }
  if (!o.endpoint_lists.empty() && o.endpoint_key.empty()) {
    usage_error("--endpoint-list needs --endpoint-key");
  }
  if (o.endpoint_lists.empty() && (!o.endpoint_key.empty() || !o.endpoint_cache.empty())) {
    usage_error("--endpoint-key and --endpoint-cache go with --endpoint-list");
  }
  if (o.tls.enabled && o.tls.verify_peer && o.tls.server_name.empty()) {
    usage_error("--tls needs --tls-server-name (or, for tests only, --tls-insecure)");
  }
  const bool https_list =
      std::any_of(o.endpoint_lists.begin(), o.endpoint_lists.end(),
                  [](const std::string& url) { return url.starts_with("https://"); });
  if (!o.tls.enabled && !https_list &&
      (!o.tls.ca_file.empty() || !o.tls.server_name.empty() || !o.tls.verify_peer)) {
    usage_error(
        "--tls-ca-file, --tls-server-name and --tls-insecure go with --tls or an "
        "https:// --endpoint-list");
  }
  const bool single = !o.device.empty();
  if (single == !o.devices_file.empty()) {
    usage_error("give either --device ID --token TOKEN or --devices-file FILE");
  }
  if (single && o.token.empty()) usage_error("--device needs --token");
  if (!single && !o.token.empty()) usage_error("--token goes with --device");
  if (o.print && o.count) usage_error("--print and --count exclude each other");
  if (!o.out.empty() && !single) usage_error("--out works with a single --device only");
  if (!o.endpoint_cache.empty() && !single) {
    usage_error("--endpoint-cache works with a single --device only");
  }
  if (!o.out.empty() && !o.cursor_dir.empty()) {
    usage_error("--out is the cursor store itself: drop --cursor-dir");
  }
  if (!o.print && !o.count) (single ? o.print : o.count) = true;
  return o;
}

std::vector<DeviceSpec> read_devices(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage_error("cannot open --devices-file " + path);
  std::vector<DeviceSpec> devices;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream fields(line);
    DeviceSpec d;
    if (!(fields >> d.id) || d.id.starts_with('#')) continue;
    std::string extra;
    if (!(fields >> d.token) || (fields >> extra)) {
      usage_error(path + ":" + std::to_string(line_no) + ": expected \"device_id token\"");
    }
    devices.push_back(std::move(d));
  }
  if (devices.empty()) usage_error(path + ": no devices");
  return devices;
}

// One socket per device: make sure the process may open that many files.
void ensure_file_limit(std::size_t devices) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t wanted = static_cast<rlim_t>(devices + kSpareFiles);
  if (lim.rlim_cur < wanted && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = std::min(lim.rlim_max, std::max(wanted, lim.rlim_cur));
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur < wanted) {
    std::fprintf(stderr,
                 "herald-device: %zu devices need %llu open files, the limit is %llu "
                 "(raise it with ulimit -n, or split the devices over several processes)\n",
                 devices, static_cast<unsigned long long>(wanted),
                 static_cast<unsigned long long>(lim.rlim_cur));
    std::exit(kExitUsage);
  }
}

// What every client's handlers share with the main thread.
struct Shared {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> connected{0};
  std::atomic<int> logged_errors{0};
  std::mutex stdout_mu;
  asio::io_context* control = nullptr;  // the main thread's: told when it is time to exit
  std::atomic<int> exit_reason{0};      // the first ExitReason wins
  std::atomic<bool> stopping{false};    // main() is stopping the clients
};

enum ExitReason : int { kRunning = 0, kSignal, kExitAfterReached, kDurationOver, kClientFailed };

struct Device {
  DeviceSpec spec;
  std::shared_ptr<herald::JournalCursorStore> journal;
  std::unique_ptr<herald::Client> client;
  bool connected = false;  // the client's strand only
};

const char* state_name(herald::ConnectionState s) {
  switch (s) {
    case herald::ConnectionState::kConnecting:
      return "connecting";
    case herald::ConnectionState::kConnected:
      return "connected";
    case herald::ConnectionState::kDisconnected:
      return "disconnected";
    case herald::ConnectionState::kStopped:
      return "stopped";
  }
  return "?";
}

const char* status_name(herald::SubscribeStatus s) {
  switch (s) {
    case herald::SubscribeStatus::kDone:
      return "done";
    case herald::SubscribeStatus::kRejected:
      return "rejected";
    case herald::SubscribeStatus::kQueueFull:
      return "queue_full";
    case herald::SubscribeStatus::kInvalid:
      return "invalid";
    case herald::SubscribeStatus::kStopped:
      return "stopped";
  }
  return "?";
}

// Joins the topics of --subscribe, one request per flag: a Subscribe is all or nothing, so a bad
// topic fails alone. The client sends them once connected, one after the other.
void subscribe_all(Device& d, const Options& opt, Shared& shared, bool single) {
  for (const auto& [app, topic] : opt.subscribe) {
    d.client->subscribe(
        app, {topic}, [&d, &shared, &opt, single, app, topic](const herald::SubscribeResult& r) {
          if (r.status == herald::SubscribeStatus::kDone) {
            if (opt.verbose || single) {
              herald::log::info("subscribed",
                                {{"device", d.spec.id}, {"app", app}, {"topic", topic}});
            }
          } else if (r.status != herald::SubscribeStatus::kStopped || !shared.stopping) {
            herald::log::error("subscribe_failed", {{"device", d.spec.id},
                                                    {"app", app},
                                                    {"topic", topic},
                                                    {"status", status_name(r.status)},
                                                    {"error_code", r.error_code},
                                                    {"reason", r.reason}});
          }
        });
  }
}

void request_exit(Shared& shared, ExitReason reason) {
  int running = kRunning;
  if (shared.exit_reason.compare_exchange_strong(running, reason)) {
    asio::post(*shared.control, [control = shared.control] { control->stop(); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  std::vector<DeviceSpec> specs = opt.devices_file.empty()
                                      ? std::vector<DeviceSpec>{{opt.device, opt.token}}
                                      : read_devices(opt.devices_file);
  const bool single = specs.size() == 1 && opt.devices_file.empty();
  ensure_file_limit(specs.size());
  if (!opt.cursor_dir.empty()) std::filesystem::create_directories(opt.cursor_dir);
  std::setvbuf(stdout, nullptr, _IOLBF, 64 * 1024);  // each line as soon as it is complete

  Shared shared;
  asio::io_context control;
  shared.control = &control;
  herald::EventLoop loop(opt.threads);

  std::vector<std::unique_ptr<Device>> devices;
  devices.reserve(specs.size());
  for (auto& spec : specs) {
    auto d = std::make_unique<Device>();
    d->spec = std::move(spec);
    herald::ClientOptions co;
    co.endpoints = opt.servers;
    co.endpoint_list_urls = opt.endpoint_lists;
    co.endpoint_list_public_key = opt.endpoint_key;
    co.endpoint_list_cache_file = opt.endpoint_cache;
    co.device_id = d->spec.id;
    co.token = d->spec.token;
    co.heartbeat_s = opt.heartbeat_s;
    if (!opt.sources.empty()) co.local_address = opt.sources[devices.size() % opt.sources.size()];
    co.client_name = "herald-device/0.1";
    co.tls = opt.tls;
    std::shared_ptr<herald::CursorStore> cursors;
    try {
      if (!opt.out.empty()) {
        d->journal = std::make_shared<herald::JournalCursorStore>(opt.out, d->spec.id);
        if (d->journal->truncated_bytes() > 0) {
          herald::log::warn("journal_torn_tail_cut",
                            {{"file", opt.out}, {"bytes", d->journal->truncated_bytes()}});
        }
        cursors = d->journal;
      } else if (!opt.cursor_dir.empty()) {
        cursors = herald::make_file_cursor_store(std::filesystem::path(opt.cursor_dir) /
                                                 (d->spec.id + ".cursor"));
      } else {
        cursors = herald::make_memory_cursor_store();
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herald-device: %s\n", e.what());
      return kExitFailed;
    }
    try {
      d->client = std::make_unique<herald::Client>(loop, std::move(co), std::move(cursors));
    } catch (const std::invalid_argument& e) {  // a bad --endpoint-list URL or key, TLS file
      std::fprintf(stderr, "herald-device: %s\n", e.what());
      return kExitUsage;
    }
    if (!opt.network.empty()) d->client->set_network(opt.network);

    Device* dev = d.get();
    d->client->on_other_message([dev, &shared, &opt](const herald::Message& m) {
      if (dev->journal) dev->journal->append(m);
      if (opt.print) {
        std::string line = herald::JournalCursorStore::format_line(dev->spec.id, m);
        line.push_back('\n');
        std::lock_guard lock(shared.stdout_mu);
        std::fwrite(line.data(), 1, line.size(), stdout);
      }
      const std::uint64_t total = shared.received.fetch_add(1, std::memory_order_relaxed) + 1;
      if (opt.exit_after != 0 && total >= opt.exit_after) request_exit(shared, kExitAfterReached);
    });
    // A recall (the sender revoked a message this device may have had) is journaled and printed
    // like a message, so --out stays exactly-once for both.
    d->client->on_other_recall([dev, &shared, &opt](const herald::Recall& r) {
      if (dev->journal) dev->journal->append(r);
      if (opt.print) {
        std::string line = herald::JournalCursorStore::format_line(dev->spec.id, r);
        line.push_back('\n');
        std::lock_guard lock(shared.stdout_mu);
        std::fwrite(line.data(), 1, line.size(), stdout);
      }
    });
    if (opt.verbose) {
      d->client->on_streams([dev](const std::vector<herald::StreamInfo>& list) {
        std::string streams;
        for (const auto& info : list) {
          streams += (streams.empty() ? "" : " ") + info.app + "/" +
                     (info.broadcast ? std::string("(broadcast)") : info.topic);
        }
        herald::log::info("streams", {{"device", dev->spec.id}, {"streams", streams}});
      });
    }
    subscribe_all(*d, opt, shared, single);
    d->client->on_state([dev, &shared, &opt, single](const herald::StateChange& s) {
      const bool now_connected = s.state == herald::ConnectionState::kConnected;
      if (now_connected != dev->connected) {
        dev->connected = now_connected;
        if (now_connected) {
          shared.connected.fetch_add(1, std::memory_order_relaxed);
        } else {
          shared.connected.fetch_sub(1, std::memory_order_relaxed);
        }
      }
      // A client stops by itself only when delivery failed (the journal could not be written):
      // exit rather than keep running without it.
      if (s.state == herald::ConnectionState::kStopped && !shared.stopping) {
        herald::log::error("client_stopped", {{"device", dev->spec.id}, {"reason", s.reason}});
        request_exit(shared, kClientFailed);
        return;
      }
      const bool log_it =
          opt.verbose || single ||
          (s.error_code != 0 && shared.logged_errors.fetch_add(1) < kLoggedErrorsInManyMode);
      if (!log_it || s.state == herald::ConnectionState::kStopped) return;
      if (s.state == herald::ConnectionState::kDisconnected) {
        herald::log::warn("state", {{"device", dev->spec.id},
                                    {"state", state_name(s.state)},
                                    {"error_code", s.error_code},
                                    {"reason", s.reason}});
      } else {
        herald::log::info("state", {{"device", dev->spec.id}, {"state", state_name(s.state)}});
      }
    });
    devices.push_back(std::move(d));
  }

  // Start in slices every 10 ms at --connect-rate devices per second.
  const auto start_time = Clock::now();
  const std::size_t per_slice = std::max<std::size_t>(1, opt.connect_rate / 100);
  std::size_t started = 0;
  asio::steady_timer starter(control);
  std::function<void()> start_slice = [&] {
    for (std::size_t i = 0; i < per_slice && started < devices.size(); ++i) {
      devices[started++]->client->start();
    }
    if (started < devices.size()) {
      starter.expires_after(std::chrono::milliseconds(10));
      starter.async_wait([&](boost::system::error_code ec) {
        if (!ec) start_slice();
      });
    }
  };
  start_slice();

  // The summary line once per second (--count).
  asio::steady_timer ticker(control);
  std::uint64_t last_received = 0;
  std::uint64_t ticks = 0;
  std::function<void()> tick = [&] {
    ticker.expires_at(start_time + std::chrono::seconds(++ticks));
    ticker.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      const std::uint64_t received = shared.received.load();
      if (opt.count) {
        std::lock_guard lock(shared.stdout_mu);
        std::printf("elapsed_s=%llu devices=%zu connected=%llu received=%llu per_s=%llu\n",
                    static_cast<unsigned long long>(ticks), devices.size(),
                    static_cast<unsigned long long>(shared.connected.load()),
                    static_cast<unsigned long long>(received),
                    static_cast<unsigned long long>(received - last_received));
      }
      last_received = received;
      if (opt.duration_s != 0 && ticks >= opt.duration_s) {
        request_exit(shared, kDurationOver);
        return;
      }
      tick();
    });
  };
  tick();

  asio::signal_set signals(control, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) request_exit(shared, kSignal);
  });

  control.run();

  // Stop every client: each stop() waits until its current batch was handled and its cursor
  // saved (for --out: the journal written and fdatasync'ed).
  shared.stopping = true;
  for (auto& d : devices) d->client->stop();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start_time).count();
  const std::uint64_t total = shared.received.load();
  {
    std::lock_guard lock(shared.stdout_mu);
    std::FILE* summary = opt.count ? stdout : stderr;
    std::fprintf(summary, "total received=%llu devices=%zu elapsed_s=%.3f\n",
                 static_cast<unsigned long long>(total), devices.size(), elapsed_s);
    std::fflush(stdout);
  }
  devices.clear();  // clients and journals, before the loop they run on
  switch (shared.exit_reason.load()) {
    case kClientFailed:
      return kExitFailed;
    case kDurationOver:
      return opt.exit_after != 0 && total < opt.exit_after ? kExitFailed : kExitOk;
    default:
      return kExitOk;
  }
}
