#include "distribution/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

namespace herald::distribution {

std::string webhook_mac_hex(std::string_view secret, std::int64_t unix_s, std::string_view body) {
  // One copy of the body per signature (a batch is at most about a megabyte): the one-shot HMAC()
  // is the interface OpenSSL 3 does not deprecate, unlike HMAC_CTX.
  std::string input = std::to_string(unix_s);
  input.push_back('.');
  input.append(body);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_bytes = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(),
           &mac_bytes) == nullptr) {
    return {};  // only on allocation failure; an empty MAC never verifies
  }

  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * mac_bytes);
  for (unsigned int i = 0; i < mac_bytes; ++i) {
    hex.push_back(kHex[mac[i] >> 4]);
    hex.push_back(kHex[mac[i] & 15]);
  }
  return hex;
}

std::string webhook_signature(std::string_view secret, std::int64_t unix_s, std::string_view body) {
  return "t=" + std::to_string(unix_s) + ",v1=" + webhook_mac_hex(secret, unix_s, body);
}

}  // namespace herald::distribution
