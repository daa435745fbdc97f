#include "http/endpoint_list.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "protocol/base64.h"

namespace herald::http {

namespace json = boost::json;

namespace {

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

std::string EndpointSigner::public_key_base64() const {
  return protocol::base64_encode(public_key_);
}

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

json::object signed_list_json(const EndpointList& list, const EndpointSigner& signer) {
  json::object o = protocol::endpoint_list_fields(list);
  o["signature"] = protocol::base64_encode(signer.sign(canonical_bytes(list)));
  return o;
}

}  // namespace herald::http
