// The signed endpoint list a device fetches before it connects (GET /v1/endpoints): the access
// endpoints of the deployment, least loaded first, with an expiry and an Ed25519 signature over a
// canonical byte string, so that a device can tell a genuine list from one a hijacked network or
// DNS answer made up. docs/endpoints.md is the contract for clients; this file implements it.
//
// The signed bytes (ASCII, every line ends with LF, numbers in decimal without leading zeros or
// signs, endpoints in the order of the list):
//
//   herald-endpoints-v1\n
//   issued_at_ms=<issued_at_ms>\n
//   expires_at_ms=<expires_at_ms>\n
//   key_id=<key_id>\n
//   <host> <port> <load> <node>\n        one line per endpoint
//
// Hosts are IP literals (no brackets) and node names hold no control character, so neither can
// forge a line; the node name comes last on its line and may hold spaces.
//
// Everything here is a plain function or an immutable object: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace herald::http {

// Load in thousandths: 0 idle, 1000 full (capped there).
using LoadPermille = std::uint32_t;
inline constexpr LoadPermille kFullLoad = 1000;

// The load of a node: the larger of its connections against capacity and its CPU share (0..1),
// in thousandths. A capacity of 0 counts as full.
[[nodiscard]] LoadPermille load_permille(std::int64_t connections, std::int64_t capacity,
                                         double cpu);

struct Endpoint {
  std::string host;  // an IP literal
  std::uint16_t port = 0;
  std::string node;
  LoadPermille load = 0;
};

// Least loaded first; ties by node, host, then port, so every node orders a list alike.
void sort_by_load(std::vector<Endpoint>& endpoints);

struct EndpointList {
  std::vector<Endpoint> endpoints;
  std::int64_t issued_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::string key_id;
};

// True when `text` may stand in the signed bytes as a node name: no control character.
[[nodiscard]] bool valid_node_name(std::string_view text);

// The bytes the signature covers (see the top of this file).
[[nodiscard]] std::string canonical_bytes(const EndpointList& list);

// An Ed25519 signing key. Copies share the key.
class EndpointSigner {
 public:
  // A fresh random key.
  [[nodiscard]] static EndpointSigner generate();
  // The key of a PEM "PRIVATE KEY" (PKCS#8, as `openssl genpkey -algorithm ed25519` writes).
  // Throws std::runtime_error when it is not an Ed25519 private key.
  [[nodiscard]] static EndpointSigner from_pem(std::string_view pem);

  [[nodiscard]] std::string private_key_pem() const;
  // The raw 32-byte public key, and the same in standard base64 (what clients embed).
  [[nodiscard]] const std::string& public_key() const { return public_key_; }
  [[nodiscard]] std::string public_key_base64() const;
  // Names the key in lists: hex of the first 8 bytes of SHA-256(public key).
  [[nodiscard]] const std::string& key_id() const { return key_id_; }

  // The 64-byte Ed25519 signature of `bytes`.
  [[nodiscard]] std::string sign(std::string_view bytes) const;

 private:
  explicit EndpointSigner(std::shared_ptr<void> key);

  std::shared_ptr<void> key_;  // EVP_PKEY
  std::string public_key_;
  std::string key_id_;
};

// key_id of a raw public key.
[[nodiscard]] std::string endpoint_key_id(std::string_view public_key);

// The list as served: its fields plus "signature" (base64 of the signature of canonical_bytes).
[[nodiscard]] boost::json::object signed_list_json(const EndpointList& list,
                                                   const EndpointSigner& signer);

// What a client does with a served list: reads its fields, rebuilds the canonical bytes and checks
// the signature with `public_key_base64`. Nullopt when a field is missing or malformed, the key id
// or the signature does not match, or the list expired at `now_ms`. Never throws.
[[nodiscard]] std::optional<EndpointList> verify_signed_list(const boost::json::value& document,
                                                             std::string_view public_key_base64,
                                                             std::int64_t now_ms);

}  // namespace herald::http
