#include "http/endpoint_list.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <tuple>

#include <boost/json/array.hpp>

#include "http/detail/base64.h"

namespace herald::http {

namespace json = boost::json;

namespace {

constexpr std::string_view kMagic = "herald-endpoints-v1";
constexpr std::size_t kPublicKeyBytes = 32;
constexpr std::size_t kSignatureBytes = 64;

EVP_PKEY* pkey(const std::shared_ptr<void>& key) { return static_cast<EVP_PKEY*>(key.get()); }

std::shared_ptr<void> own(EVP_PKEY* key) {
  if (key == nullptr) throw std::runtime_error("endpoint signing key: OpenSSL refused the key");
  return {key, [](void* k) { EVP_PKEY_free(static_cast<EVP_PKEY*>(k)); }};
}

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
  return !host.empty() && host.size() <= 64 && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
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

}  // namespace

LoadPermille load_permille(std::int64_t connections, std::int64_t capacity, double cpu) {
  const double by_connections =
      capacity <= 0 ? 1.0 : static_cast<double>(connections) / static_cast<double>(capacity);
  const double load = std::clamp(std::max(by_connections, cpu), 0.0, 1.0);
  return static_cast<LoadPermille>(std::lround(load * kFullLoad));
}

void sort_by_load(std::vector<Endpoint>& endpoints) {
  std::sort(endpoints.begin(), endpoints.end(), [](const Endpoint& a, const Endpoint& b) {
    return std::tie(a.load, a.node, a.host, a.port) < std::tie(b.load, b.node, b.host, b.port);
  });
}

bool valid_node_name(std::string_view text) {
  return !text.empty() && std::none_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string canonical_bytes(const EndpointList& list) {
  std::string out(kMagic);
  out += "\nissued_at_ms=" + std::to_string(list.issued_at_ms);
  out += "\nexpires_at_ms=" + std::to_string(list.expires_at_ms);
  out += "\nkey_id=" + list.key_id + "\n";
  for (const auto& e : list.endpoints) {
    out +=
        e.host + " " + std::to_string(e.port) + " " + std::to_string(e.load) + " " + e.node + "\n";
  }
  return out;
}

EndpointSigner::EndpointSigner(std::shared_ptr<void> key) : key_(std::move(key)) {
  unsigned char raw[kPublicKeyBytes];
  std::size_t size = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(pkey(key_), raw, &size) != 1 || size != kPublicKeyBytes) {
    throw std::runtime_error("endpoint signing key: no Ed25519 public key");
  }
  public_key_.assign(reinterpret_cast<const char*>(raw), size);
  key_id_ = endpoint_key_id(public_key_);
}

EndpointSigner EndpointSigner::generate() {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  EVP_PKEY* key = nullptr;
  const bool ok =
      ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &key) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) throw std::runtime_error("endpoint signing key: cannot generate one");
  return EndpointSigner(own(key));
}

EndpointSigner EndpointSigner::from_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key =
      bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) throw std::runtime_error("endpoint signing key: not a PEM private key");
  auto owned = own(key);
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    throw std::runtime_error("endpoint signing key: not an Ed25519 key");
  }
  return EndpointSigner(std::move(owned));
}

std::string EndpointSigner::private_key_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string pem;
  if (bio != nullptr &&
      PEM_write_bio_PrivateKey(bio, pkey(key_), nullptr, nullptr, 0, nullptr, nullptr) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    pem.assign(data, static_cast<std::size_t>(size));
  }
  BIO_free(bio);
  if (pem.empty()) throw std::runtime_error("endpoint signing key: cannot write it as PEM");
  return pem;
}

std::string EndpointSigner::public_key_base64() const { return detail::base64_encode(public_key_); }

std::string EndpointSigner::sign(std::string_view bytes) const {
  unsigned char signature[kSignatureBytes];
  std::size_t size = sizeof signature;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr &&
                  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey(key_)) == 1 &&
                  EVP_DigestSign(ctx, signature, &size, bytes_of(bytes), bytes.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("endpoint signing key: signing failed");
  return {reinterpret_cast<const char*>(signature), size};
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

json::object signed_list_json(const EndpointList& list, const EndpointSigner& signer) {
  json::array endpoints;
  for (const auto& e : list.endpoints) endpoints.push_back(to_json(e));
  return {{"endpoints", std::move(endpoints)},
          {"issued_at_ms", list.issued_at_ms},
          {"expires_at_ms", list.expires_at_ms},
          {"key_id", list.key_id},
          {"signature", detail::base64_encode(signer.sign(canonical_bytes(list)))}};
}

std::optional<EndpointList> verify_signed_list(const json::value& document,
                                               std::string_view public_key_base64,
                                               std::int64_t now_ms) {
  if (!document.is_object()) return std::nullopt;
  const auto& o = document.as_object();
  const auto issued = integer_field(o, "issued_at_ms");
  const auto expires = integer_field(o, "expires_at_ms");
  auto key_id = string_field(o, "key_id");
  const auto signature_text = string_field(o, "signature");
  const auto* endpoints = o.if_contains("endpoints");
  const auto public_key = detail::base64_decode(public_key_base64);
  if (!issued || *issued < 0 || !expires || *expires < 0 || !key_id || !signature_text ||
      endpoints == nullptr || !endpoints->is_array() || !public_key ||
      *key_id != endpoint_key_id(*public_key)) {
    return std::nullopt;
  }
  EndpointList list{{}, *issued, *expires, std::move(*key_id)};
  for (const auto& v : endpoints->as_array()) {
    auto endpoint = endpoint_from_json(v);
    if (!endpoint) return std::nullopt;
    list.endpoints.push_back(std::move(*endpoint));
  }
  const auto signature = detail::base64_decode(*signature_text);
  if (!signature || !verify(*public_key, canonical_bytes(list), *signature)) return std::nullopt;
  if (now_ms >= list.expires_at_ms) return std::nullopt;
  return list;
}

}  // namespace herald::http
