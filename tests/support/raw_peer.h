// RawPeer: a device connection speaking the wire protocol by hand, for tests that must see
// individual frames (which the client library hides) or send frames it would never send.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "protocol/frame_codec.h"

namespace herald::testing {

using RawFrame = std::pair<protocol::FrameType, std::string>;  // type, body

class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  // With a kernel receive buffer (SO_RCVBUF) of about `receive_buffer_bytes`, set before the
  // connection is made: a peer that stops reading then fills its buffers after a few KiB.
  RawPeer(std::uint16_t port, int receive_buffer_bytes) : socket_(io_) {
    socket_.open(boost::asio::ip::tcp::v4());
    socket_.set_option(boost::asio::socket_base::receive_buffer_size(receive_buffer_bytes));
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  void send(const std::string& bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }

  // The next frame, or nothing when the server closed or `timeout` passed first.
  std::optional<RawFrame> read_frame(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto frame = take_frame()) return frame;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(left)) return std::nullopt;
    }
  }

  // Reads frames until the server closes; returns them.
  std::vector<RawFrame> read_until_close() {
    std::vector<RawFrame> frames;
    for (;;) {
      while (auto frame = take_frame()) frames.push_back(std::move(*frame));
      if (!read_some(std::chrono::minutes(1))) return frames;
    }
  }

 private:
  std::optional<RawFrame> take_frame() {
    const auto r = protocol::parse_frame(
        {reinterpret_cast<const std::uint8_t*>(buf_.data()), buf_.size()}, 1 << 20);
    if (r.status != protocol::ParseStatus::kComplete) return std::nullopt;
    RawFrame frame{r.frame.type, std::string(reinterpret_cast<const char*>(r.frame.body.data()),
                                             r.frame.body.size())};
    buf_.erase(0, r.frame.frame_bytes);
    return frame;
  }

  // One read with a deadline; false on close, error or timeout.
  bool read_some(std::chrono::milliseconds timeout) {
    char chunk[4096];
    bool ok = false;
    socket_.async_read_some(boost::asio::buffer(chunk),
                            [&](const boost::system::error_code& ec, std::size_t n) {
                              if (!ec) {
                                buf_.append(chunk, n);
                                ok = true;
                              }
                            });
    io_.restart();
    io_.run_for(timeout);
    if (!io_.stopped()) {
      // Timed out: cancel the read and let its handler run.
      socket_.cancel();
      io_.restart();
      io_.run();
    }
    return ok;
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string buf_;
};

// One frame of `type` carrying `body`.
inline std::string frame_of(protocol::FrameType type, const google::protobuf::MessageLite& body) {
  std::string out;
  protocol::append_frame(type, body, out);
  return out;
}

inline std::string hello_frame(const std::string& device, const std::string& token) {
  protocol::wire::Hello hello;
  hello.set_protocol_version(protocol::kProtocolVersion);
  hello.set_device_id(device);
  hello.set_token(token);
  std::string out;
  protocol::append_frame(protocol::FrameType::kHello, hello, out);
  return out;
}

}  // namespace herald::testing
