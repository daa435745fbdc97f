// Micro-benchmarks of TLS as device connections use it (TlsChannel, both ends in memory, one
// thread):
//   - a full handshake against one resumed with a ticket: CPU per connection, and the bytes both
//     ways (counter wire_bytes) — what a reconnect costs a phone and a server;
//   - a Notify (6 bytes of frame) sent as one record: CPU and bytes on the wire;
//   - the memory one idle established server channel holds (counter idle_bytes, from glibc's
//     mallinfo2 around 1,000 channels): what TLS adds to an idle device connection; and the
//     peer, Asio's ssl::stream (the usual way to TLS on Asio), measured the same way over
//     socket pairs.
//
// Usage: bench/herald_tls_bench [--benchmark_filter=Handshake] [--benchmark_min_time=0.01]

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "tls/testing/test_certificates.h"
#include "tls/tls_channel.h"
#include "tls/tls_context.h"

namespace herald::tls {
namespace {

struct Fixture {
  Fixture() {
    const auto dir =
        std::filesystem::temp_directory_path() / ("herald_tls_bench_" + std::to_string(::getpid()));
    const auto certs = testing::make_test_certificates(dir);
    server = make_server_context(
        {certs.cert_file.string(), certs.key_file.string(), "a benchmark's ticket secret", 3600});
    client = make_client_context({certs.ca_file.string(), certs.server_name, true});
    name = certs.server_name;
    std::filesystem::remove_all(dir);
  }
  std::shared_ptr<boost::asio::ssl::context> server;
  std::shared_ptr<boost::asio::ssl::context> client;
  std::string name;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Moves what `from` wants to send into `to`, reading everything `to` can; returns the bytes moved.
std::size_t transfer(TlsChannel& from, TlsChannel& to, std::vector<std::uint8_t>& scratch) {
  std::string cipher;
  cipher.swap(from.output());
  to.feed({reinterpret_cast<const std::uint8_t*>(cipher.data()), cipher.size()});
  for (;;) {
    const auto r = to.read(scratch);
    if (r.status != TlsChannel::Status::kOk || r.bytes == 0) break;
  }
  return cipher.size();
}

std::size_t handshake(TlsChannel& client, TlsChannel& server, std::vector<std::uint8_t>& scratch) {
  std::size_t bytes = 0;
  client.start();
  while (!client.output().empty() || !server.output().empty()) {
    bytes += transfer(client, server, scratch);
    bytes += transfer(server, client, scratch);
  }
  return bytes;
}

void run_handshakes(benchmark::State& state, bool resume) {
  auto& f = fixture();
  std::vector<std::uint8_t> scratch(16 * 1024);
  Session ticket;
  {
    TlsChannel client(f.client->native_handle(), TlsChannel::Role::kClient, f.name);
    TlsChannel server(f.server->native_handle(), TlsChannel::Role::kServer);
    handshake(client, server, scratch);
    ticket = client.session();
  }
  std::size_t bytes = 0;
  bool resumed = false;
  for (auto _ : state) {
    TlsChannel client(f.client->native_handle(), TlsChannel::Role::kClient, f.name,
                      resume ? ticket : nullptr);
    TlsChannel server(f.server->native_handle(), TlsChannel::Role::kServer);
    bytes = handshake(client, server, scratch);
    resumed = client.resumed();
    if (!client.established()) state.SkipWithError(client.error().c_str());
  }
  if (resumed != resume) state.SkipWithError("resumption not as asked");
  state.counters["wire_bytes"] = static_cast<double>(bytes);
}

void BM_FullHandshake(benchmark::State& state) { run_handshakes(state, false); }
BENCHMARK(BM_FullHandshake);

void BM_ResumedHandshake(benchmark::State& state) { run_handshakes(state, true); }
BENCHMARK(BM_ResumedHandshake);

void BM_NotifyRecord(benchmark::State& state) {
  auto& f = fixture();
  std::vector<std::uint8_t> scratch(16 * 1024);
  TlsChannel client(f.client->native_handle(), TlsChannel::Role::kClient, f.name);
  TlsChannel server(f.server->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server, scratch);
  const std::string notify(6, '\x07');  // a Notify frame's size (docs/protocol.md)
  std::size_t bytes = 0;
  for (auto _ : state) {
    server.write(notify);
    bytes = transfer(server, client, scratch);
  }
  state.counters["wire_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_NotifyRecord);

void BM_IdleServerChannelMemory(benchmark::State& state) {
  auto& f = fixture();
  constexpr int kChannels = 1000;
  std::vector<std::uint8_t> scratch(16 * 1024);
  double per_channel = 0;
  for (auto _ : state) {
    std::vector<std::unique_ptr<TlsChannel>> servers;
    servers.reserve(kChannels);
    const std::size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kChannels; ++i) {
      // The client end goes away after the handshake: what stays is the server's.
      TlsChannel client(f.client->native_handle(), TlsChannel::Role::kClient, f.name);
      servers.push_back(
          std::make_unique<TlsChannel>(f.server->native_handle(), TlsChannel::Role::kServer));
      handshake(client, *servers.back(), scratch);
      if (!servers.back()->established()) state.SkipWithError("handshake failed");
    }
    per_channel = static_cast<double>(mallinfo2().uordblks - before) / kChannels;
  }
  state.counters["idle_bytes"] = per_channel;
}
BENCHMARK(BM_IdleServerChannelMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

// The peer: Asio's ssl::stream, server end kept idle after a handshake over a socket pair.
void BM_IdleAsioSslStreamMemory(benchmark::State& state) {
  namespace asio = boost::asio;
  using Stream = asio::ssl::stream<asio::local::stream_protocol::socket>;
  auto& f = fixture();
  constexpr int kStreams = 1000;
  double per_stream = 0;
  for (auto _ : state) {
    asio::io_context io;
    std::vector<std::unique_ptr<Stream>> servers;
    servers.reserve(kStreams);
    const std::size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kStreams; ++i) {
      Stream client(io, *f.client);
      servers.push_back(std::make_unique<Stream>(io, *f.server));
      asio::local::connect_pair(client.next_layer(), servers.back()->next_layer());
      boost::system::error_code client_ec;
      boost::system::error_code server_ec;
      client.async_handshake(asio::ssl::stream_base::client,
                             [&](const boost::system::error_code& ec) { client_ec = ec; });
      servers.back()->async_handshake(asio::ssl::stream_base::server,
                                      [&](const boost::system::error_code& ec) { server_ec = ec; });
      io.run();
      io.restart();
      if (client_ec || server_ec) state.SkipWithError("handshake failed");
    }
    per_stream = static_cast<double>(mallinfo2().uordblks - before) / kStreams;
  }
  state.counters["idle_bytes"] = per_stream;
}
BENCHMARK(BM_IdleAsioSslStreamMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace herald::tls

BENCHMARK_MAIN();
