// The server half of the signed endpoint list a device fetches before it connects
// (GET /v1/endpoints): the load formula, the order, and the Ed25519 key that signs lists.
// The list's fields, canonical bytes and verification live in protocol/endpoint_list_format.h,
// shared with the client library; they are re-exported here under herald::http so that server
// code names one vocabulary. docs/endpoints.md is the contract for clients.
//
// Everything here is a plain function or an immutable object: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "protocol/endpoint_list_format.h"

namespace herald::http {

using protocol::canonical_bytes;
using protocol::check_signed_list;
using protocol::Endpoint;
using protocol::endpoint_key_id;
using protocol::EndpointList;
using protocol::EndpointListError;
using protocol::HeartbeatHint;
using protocol::kFullLoad;
using protocol::LoadPermille;
using protocol::valid_heartbeat_network;
using protocol::valid_node_name;
using protocol::verify_signed_list;

// The load of a node: the larger of its connections against capacity and its CPU share (0..1),
// in thousandths. A capacity of 0 counts as full.
[[nodiscard]] LoadPermille load_permille(std::int64_t connections, std::int64_t capacity,
                                         double cpu);

// Least loaded first; ties by node, host, then port, so every node orders a list alike.
void sort_by_load(std::vector<Endpoint>& endpoints);

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

// The list as served: its fields (protocol::endpoint_list_fields) plus "signature", base64 of
// the signature of canonical_bytes(list). Throws std::runtime_error when signing fails.
[[nodiscard]] boost::json::object signed_list_json(const EndpointList& list,
                                                   const EndpointSigner& signer);

}  // namespace herald::http
