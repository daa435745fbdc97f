#include "protocol/endpoint_list_format.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "protocol/base64.h"

namespace herald::protocol {

namespace json = boost::json;

namespace {

constexpr std::string_view kMagic = "herald-endpoints-v1";
constexpr std::size_t kPublicKeyBytes = 32;
constexpr std::size_t kSignatureBytes = 64;
// The longest IP literal: an IPv6 address with an embedded IPv4 one is 45 characters.
constexpr std::size_t kMaxHostBytes = 64;

class EndpointListCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.endpoint_list"; }

  std::string message(int ev) const override {
    switch (static_cast<EndpointListError>(ev)) {
      case EndpointListError::kMalformed:
        return "endpoint list malformed (not JSON, or a field missing, of the wrong type or out "
               "of range)";
      case EndpointListError::kBadPublicKey:
        return "the trusted endpoint list key is not base64 of a 32-byte Ed25519 public key";
      case EndpointListError::kUnknownKey:
        return "endpoint list signed with another key than the trusted one";
      case EndpointListError::kBadSignature:
        return "endpoint list signature does not match its contents";
      case EndpointListError::kExpired:
        return "endpoint list expired";
    }
    return "unknown endpoint list error " + std::to_string(ev);
  }
};

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool verify(std::string_view public_key, std::string_view bytes, std::string_view signature) {
  if (public_key.size() != kPublicKeyBytes || signature.size() != kSignatureBytes) return false;
  EVP_PKEY* key =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(public_key), kPublicKeyBytes);
  if (key == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, bytes_of(signature), signature.size(), bytes_of(bytes), bytes.size()) ==
          1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

bool valid_host(std::string_view host) {
  return !host.empty() && host.size() <= kMaxHostBytes &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
         });
}

bool no_control_characters(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

json::object to_json(const Endpoint& e) {
  return {{"host", e.host}, {"port", e.port}, {"node", e.node}, {"load", e.load}};
}

std::optional<std::int64_t> integer_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64() && v->as_uint64() <= std::numeric_limits<std::int64_t>::max()) {
    return static_cast<std::int64_t>(v->as_uint64());
  }
  if (!v->is_int64()) return std::nullopt;
  return v->as_int64();
}

std::optional<std::uint32_t> uint32_field(const json::object& o, std::string_view name) {
  const auto v = integer_field(o, name);
  if (!v || *v < 0 || *v > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::string> string_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

std::optional<Endpoint> endpoint_from_json(const json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  auto host = string_field(o, "host");
  auto node = string_field(o, "node");
  const auto port = integer_field(o, "port");
  const auto load = integer_field(o, "load");
  if (!host || !valid_host(*host) || !node || !valid_node_name(*node) || !port || *port < 1 ||
      *port > 65535 || !load || *load < 0 || *load > kFullLoad) {
    return std::nullopt;
  }
  return Endpoint{std::move(*host), static_cast<std::uint16_t>(*port), std::move(*node),
                  static_cast<LoadPermille>(*load)};
}

std::optional<HeartbeatHint> heartbeat_from_json(const json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  auto network = string_field(o, "network");
  const auto start_s = uint32_field(o, "start_s");
  const auto reports = uint32_field(o, "reports");
  if (!network || !valid_heartbeat_network(*network) || !start_s || !reports) return std::nullopt;
  return HeartbeatHint{std::move(*network), *start_s, *reports};
}

}  // namespace

const boost::system::error_category& endpoint_list_category() noexcept {
  static const EndpointListCategory category;
  return category;
}

boost::system::error_code make_error_code(EndpointListError e) noexcept {
  return {static_cast<int>(e), endpoint_list_category()};
}

bool valid_node_name(std::string_view text) { return !text.empty() && no_control_characters(text); }

bool valid_heartbeat_network(std::string_view text) { return valid_network_id(text); }

std::string canonical_bytes(const EndpointList& list) {
  std::string out(kMagic);
  out += "\nissued_at_ms=" + std::to_string(list.issued_at_ms);
  out += "\nexpires_at_ms=" + std::to_string(list.expires_at_ms);
  out += "\nkey_id=" + list.key_id + "\n";
  if (list.heartbeat) {
    const auto& h = *list.heartbeat;
    out += "heartbeat=" + std::to_string(h.start_s) + " " + std::to_string(h.reports) + " " +
           h.network + "\n";
  }
  for (const auto& e : list.endpoints) {
    out +=
        e.host + " " + std::to_string(e.port) + " " + std::to_string(e.load) + " " + e.node + "\n";
  }
  return out;
}

std::string endpoint_key_id(std::string_view public_key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(public_key.data(), public_key.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (std::size_t i = 0; i < 8 && i < size; ++i) {
    id.push_back(kHex[digest[i] >> 4]);
    id.push_back(kHex[digest[i] & 15]);
  }
  return id;
}

std::optional<std::string> decode_endpoint_public_key(std::string_view text) {
  auto key = base64_decode(text);
  if (!key || key->size() != kPublicKeyBytes) return std::nullopt;
  return key;
}

json::object endpoint_list_fields(const EndpointList& list) {
  json::array endpoints;
  for (const auto& e : list.endpoints) endpoints.push_back(to_json(e));
  json::object o{{"endpoints", std::move(endpoints)},
                 {"issued_at_ms", list.issued_at_ms},
                 {"expires_at_ms", list.expires_at_ms},
                 {"key_id", list.key_id}};
  if (list.heartbeat) {
    o["heartbeat"] = json::object{{"network", list.heartbeat->network},
                                  {"start_s", list.heartbeat->start_s},
                                  {"reports", list.heartbeat->reports}};
  }
  return o;
}

boost::system::result<EndpointList> check_signed_list(const json::value& document,
                                                      std::string_view public_key_base64,
                                                      std::int64_t now_ms) {
  const auto public_key = decode_endpoint_public_key(public_key_base64);
  if (!public_key) return EndpointListError::kBadPublicKey;
  if (!document.is_object()) return EndpointListError::kMalformed;
  const auto& o = document.as_object();
  const auto issued = integer_field(o, "issued_at_ms");
  const auto expires = integer_field(o, "expires_at_ms");
  auto key_id = string_field(o, "key_id");
  const auto signature_text = string_field(o, "signature");
  const auto* endpoints = o.if_contains("endpoints");
  if (!issued || *issued < 0 || !expires || *expires < 0 || !key_id || !signature_text ||
      endpoints == nullptr || !endpoints->is_array()) {
    return EndpointListError::kMalformed;
  }
  EndpointList list{{}, *issued, *expires, std::move(*key_id)};
  if (const auto* heartbeat = o.if_contains("heartbeat")) {
    list.heartbeat = heartbeat_from_json(*heartbeat);
    if (!list.heartbeat) return EndpointListError::kMalformed;
  }
  for (const auto& v : endpoints->as_array()) {
    auto endpoint = endpoint_from_json(v);
    if (!endpoint) return EndpointListError::kMalformed;
    list.endpoints.push_back(std::move(*endpoint));
  }
  if (list.key_id != endpoint_key_id(*public_key)) return EndpointListError::kUnknownKey;
  const auto signature = base64_decode(*signature_text);
  if (!signature || !verify(*public_key, canonical_bytes(list), *signature)) {
    return EndpointListError::kBadSignature;
  }
  if (now_ms >= list.expires_at_ms) return EndpointListError::kExpired;
  return list;
}

boost::system::result<EndpointList> check_signed_list(std::string_view body,
                                                      std::string_view public_key_base64,
                                                      std::int64_t now_ms) {
  boost::system::error_code ec;
  const json::value document = json::parse(body, ec);
  if (ec) return EndpointListError::kMalformed;
  return check_signed_list(document, public_key_base64, now_ms);
}

std::optional<EndpointList> verify_signed_list(const json::value& document,
                                               std::string_view public_key_base64,
                                               std::int64_t now_ms) {
  auto checked = check_signed_list(document, public_key_base64, now_ms);
  if (!checked) return std::nullopt;
  return std::move(*checked);
}

}  // namespace herald::protocol
