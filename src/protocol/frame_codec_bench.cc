// Micro-benchmarks of the frame codec: encode and decode of each frame type with representative
// values (the golden vectors of frame_codec_test.cc, plus a full Messages frame). The counter
// wire_bytes_per_frame says how many bytes one frame costs on the wire.
//
// Usage: bench/herald_protocol_bench [--benchmark_filter=Notify] [--benchmark_min_time=0.01]

#include <benchmark/benchmark.h>

#include <string>

#include "protocol/frame_codec.h"

namespace herald::protocol {
namespace {

std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void set_wire_bytes(benchmark::State& state, std::size_t frame_bytes) {
  state.counters["wire_bytes_per_frame"] = static_cast<double>(frame_bytes);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame_bytes));
}

template <class T>
void encode(benchmark::State& state, FrameType type, const T& msg) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_frame(type, msg, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_wire_bytes(state, out.size());
}

template <class T>
void decode(benchmark::State& state, FrameType type, const T& msg) {
  std::string frame;
  append_frame(type, msg, frame);
  for (auto _ : state) {
    const ParseResult r = parse_frame(as_bytes(frame), kDefaultMaxBodyBytes);
    auto decoded = decode_body<T>(r.frame.body);
    benchmark::DoNotOptimize(decoded);
  }
  set_wire_bytes(state, frame.size());
}

template <class T>
void register_pair(const std::string& name, FrameType type, T msg) {
  benchmark::RegisterBenchmark(("Encode/" + name).c_str(),
                               [type, msg](benchmark::State& s) { encode(s, type, msg); });
  benchmark::RegisterBenchmark(("Decode/" + name).c_str(),
                               [type, msg](benchmark::State& s) { decode(s, type, msg); });
}

void encode_notify_fast(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_notify(7, 300, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_wire_bytes(state, out.size());
}

void encode_error_fast(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_error(ErrorCode::kHeartbeatTimeout, "heartbeat timeout", out);
    benchmark::DoNotOptimize(out.data());
  }
  set_wire_bytes(state, out.size());
}

void encode_ping_fast(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_empty_frame(FrameType::kPing, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_wire_bytes(state, out.size());
}

wire::Messages messages(int entries, std::size_t data_bytes) {
  wire::Messages m;
  m.set_stream(7);
  m.set_epoch(1);
  m.set_head_seq(1000 + static_cast<std::uint64_t>(entries));
  for (int i = 1; i <= entries; ++i) {
    wire::Entry* e = m.add_entries();
    e->set_seq(1000 + static_cast<std::uint64_t>(i));
    e->set_app("com.example.chat");
    e->set_message_id("01HF8Z3K9Q2V7N4M6P8R0T2W4Y");
    e->set_data(std::string(data_bytes, 'j'));
    e->set_sent_at_ms(1'700'000'000'000);
    e->set_expires_at_ms(1'700'604'800'000);
  }
  return m;
}

const bool kRegistered = [] {
  wire::Hello hello;
  hello.set_protocol_version(1);
  hello.set_device_id("a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
  hello.set_token(std::string(96, 't'));
  hello.set_heartbeat_s(300);
  hello.set_client("herald-android/1.0.0");
  register_pair("Hello", FrameType::kHello, hello);

  wire::HelloOk ok;
  ok.set_server_time_ms(1'700'000'000'000);
  ok.set_heartbeat_s(300);
  ok.set_heartbeat_min_s(60);
  ok.set_heartbeat_max_s(1800);
  ok.set_max_frame_bytes(kDefaultMaxBodyBytes);
  register_pair("HelloOk", FrameType::kHelloOk, ok);

  register_pair("Ping", FrameType::kPing, wire::Ping{});
  wire::Ping ping;
  ping.set_heartbeat_s(270);
  register_pair("PingWithNewInterval", FrameType::kPing, ping);

  register_pair("Pong", FrameType::kPong, wire::Pong{});

  wire::Notify notify;
  notify.set_stream(7);
  notify.set_head_seq(300);
  register_pair("Notify", FrameType::kNotify, notify);

  wire::Pull pull;
  pull.set_stream(7);
  pull.set_epoch(1);
  pull.set_after_seq(41);
  pull.set_limit(100);
  register_pair("Pull", FrameType::kPull, pull);

  register_pair("Messages/1x200B", FrameType::kMessages, messages(1, 200));
  register_pair("Messages/100x200B", FrameType::kMessages, messages(100, 200));

  wire::Ack ack;
  ack.set_epoch(1);
  ack.set_seq(42);
  register_pair("Ack", FrameType::kAck, ack);

  wire::Reconnect reconnect;
  reconnect.set_reason(wire::RECONNECT_REASON_DRAIN);
  reconnect.set_endpoint("10.0.0.2:7000");
  reconnect.set_delay_ms(500);
  register_pair("Reconnect", FrameType::kReconnect, reconnect);

  wire::Error error;
  error.set_code(static_cast<std::uint32_t>(ErrorCode::kHeartbeatTimeout));
  error.set_message("heartbeat timeout");
  register_pair("Error", FrameType::kError, error);

  wire::Upstream upstream;
  upstream.set_id(0x9e37'79b9'7f4a'7c15);  // random ids mostly take the ten-byte varint
  upstream.set_app("com.example.chat");
  upstream.set_data(std::string(200, 'j'));
  register_pair("Upstream/200B", FrameType::kUpstream, upstream);

  wire::UpstreamAck upstream_ack;
  upstream_ack.set_id(0x9e37'79b9'7f4a'7c15);
  register_pair("UpstreamAck", FrameType::kUpstreamAck, upstream_ack);

  wire::Subscribe subscribe;
  subscribe.set_id(0x9e37'79b9'7f4a'7c15);
  subscribe.set_app("com.example.news");
  subscribe.add_topics("sports.football");
  register_pair("Subscribe", FrameType::kSubscribe, subscribe);

  wire::Streams streams;  // a device with 3 apps and 10 topics
  for (int i = 0; i < 13; ++i) {
    wire::StreamInfo* s = streams.add_streams();
    s->set_stream(static_cast<std::uint64_t>(1000 + i));
    s->set_app("com.example.app" + std::to_string(i % 3));
    if (i >= 3) s->set_topic("topic." + std::to_string(i));
    s->set_epoch(1);
    s->set_head_seq(123'456);
    s->set_start_seq(120'000);
  }
  register_pair("Streams/13", FrameType::kStreams, streams);

  benchmark::RegisterBenchmark("EncodeFast/Ping", encode_ping_fast);
  benchmark::RegisterBenchmark("EncodeFast/Notify", encode_notify_fast);
  benchmark::RegisterBenchmark("EncodeFast/Error", encode_error_fast);
  return true;
}();

}  // namespace
}  // namespace herald::protocol

BENCHMARK_MAIN();
