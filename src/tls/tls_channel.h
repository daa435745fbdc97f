// TlsChannel: one TLS connection as a byte transformer, with no socket and no buffer of its own
// beyond what OpenSSL holds — for connections that must stay small while idle (a device session
// on an access node, a client's connection), where Asio's ssl::stream would keep two 17 KiB
// buffers per connection for its whole life.
//
//   socket ──cipher──▶ feed() ──▶ OpenSSL ──▶ read(out) ──plain──▶ frames
//   frames ──plain──▶ write() ──▶ OpenSSL ──cipher──▶ output() ──▶ socket
//                                 (handshake, tickets and alerts land in output() too)
//
// Input is handed over as a span valid for one call (the event loop's scratch buffer); OpenSSL
// keeps only a partial record between calls, and with SSL_MODE_RELEASE_BUFFERS frees its record
// buffers whenever they are empty, so an idle channel holds the SSL object and its keys only.
// What OpenSSL wants to send is appended to output(); the caller moves it to the socket. Nothing
// here blocks, suspends or touches a socket.
//
// A channel is used by one thread at a time (its connection's loop). It is not copyable or
// movable: OpenSSL holds its address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <openssl/ssl.h>

namespace herald::tls {

// A resumable session, as a client keeps it between connections (OpenSSL's SSL_SESSION,
// reference-counted: copies share it).
using Session = std::shared_ptr<SSL_SESSION>;

class TlsChannel {
 public:
  enum class Role : std::uint8_t { kClient, kServer };

  // `ctx` (from make_server_context or make_client_context) must outlive the channel. A client
  // verifies the certificate against `server_name` when the context verifies peers, sends it as
  // SNI, and offers `resume` (may be null) for an abbreviated handshake.
  TlsChannel(SSL_CTX* ctx, Role role, const std::string& server_name = {},
             const Session& resume = nullptr);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  enum class Status : std::uint8_t {
    kOk,      // read: `bytes` of plaintext; 0 means OpenSSL needs more input
    kClosed,  // the peer sent close_notify: no more plaintext will come
    kFailed,  // handshake or record failure; error() says why; output() may hold an alert
  };
  struct ReadResult {
    Status status = Status::kOk;
    std::size_t bytes = 0;
  };

  // Bytes a peer may send before the handshake completes; past it the channel fails. A real
  // ClientHello is under 2 KiB, a client's whole side of a handshake under 4 KiB; OpenSSL alone
  // would buffer a claimed ClientHello of up to 128 KiB for a peer that never finishes it.
  static constexpr std::size_t kMaxHandshakeInputBytes = 16 * 1024;

  // A client starts its handshake: the ClientHello lands in output(). A server waits for it.
  void start();
  // Hands `cipher` (bytes read from the socket) to the channel; the next read() calls consume
  // them. All of it is taken: a partial record stays inside OpenSSL. The span must stay valid
  // until read() returned 0 bytes or a status other than kOk. Before the handshake completes at
  // most kMaxHandshakeInputBytes are taken in all; the next read() fails past it.
  void feed(std::span<const std::uint8_t> cipher);
  // Decrypts into `out`. Call until it returns 0 bytes or another status. Handshake messages,
  // tickets and alerts the input provokes are appended to output().
  ReadResult read(std::span<std::uint8_t> out);
  // Encrypts `plain` into output(). False (error() says why) when the handshake is not complete
  // or the channel failed; nothing is written then.
  bool write(std::string_view plain);
  // Appends a close_notify to output() (once established). The channel takes no more writes.
  void close();

  // Ciphertext waiting for the socket; the caller takes it (swap or clear after writing).
  std::string& output() { return output_; }

  // The handshake completed.
  [[nodiscard]] bool established() const;
  // This connection resumed an earlier session (an abbreviated handshake).
  [[nodiscard]] bool resumed() const;
  // A client: the newest session the server gave for resumption (TLS 1.3 sends it after the
  // handshake), null until one came.
  [[nodiscard]] const Session& session() const { return session_; }
  // Why the channel failed, for logs; empty otherwise.
  [[nodiscard]] const std::string& error() const { return error_; }
  // The negotiated protocol version, e.g. "TLSv1.3".
  [[nodiscard]] std::string_view version() const;

 private:
  friend struct ChannelBio;
  // Records OpenSSL's reason for a failure of `what` and returns kFailed.
  Status fail(std::string_view what);

  SSL* ssl_ = nullptr;
  std::span<const std::uint8_t> input_;  // fed and not yet taken by OpenSSL
  std::string output_;
  std::string error_;
  Session session_;
  std::size_t handshake_input_bytes_ = 0;  // fed before the handshake completed
  bool closing_ = false;
};

// A client context captures the sessions its servers hand out into each channel's session().
// make_client_context installs it; exposed for contexts built elsewhere.
void capture_sessions(SSL_CTX* ctx);

}  // namespace herald::tls
