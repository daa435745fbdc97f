#include "logic/device_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <stdexcept>

namespace herald::logic {
namespace {

constexpr std::string_view kPrefix = "v1.";
constexpr std::size_t kMacBytes = 32;  // SHA-256

std::string base64url(const unsigned char* data, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8) | data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (n - i == 1) {
    const unsigned v = unsigned{data[i]} << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::string mac(const std::string& secret, std::string_view device, std::int64_t issued_s) {
  std::string input = "v1|";
  input.append(device);
  input.push_back('|');
  input.append(std::to_string(issued_s));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &out_len);
  return base64url(out, out_len);
}

}  // namespace

DeviceTokenAuthority::DeviceTokenAuthority(std::string secret, std::int64_t max_age_s)
    : secret_(std::move(secret)), max_age_s_(max_age_s) {
  if (secret_.size() < 32) {
    throw std::invalid_argument("auth.token_secret: must be at least 32 bytes");
  }
}

std::string DeviceTokenAuthority::mint(std::string_view device, std::int64_t now_s) const {
  std::string token(kPrefix);
  token.append(std::to_string(now_s));
  token.push_back('.');
  token.append(mac(secret_, device, now_s));
  return token;
}

bool DeviceTokenAuthority::verify(std::string_view device, std::string_view token,
                                  std::int64_t now_s) const {
  if (!valid_device_id(device) || token.size() > 128 || !token.starts_with(kPrefix)) return false;
  const std::string_view rest = token.substr(kPrefix.size());
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 19) return false;
  std::int64_t issued_s = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + dot, issued_s);
  if (ec != std::errc{} || end != rest.data() + dot || issued_s < 0) return false;
  if (max_age_s_ > 0 && (now_s - issued_s > max_age_s_ || issued_s - now_s > 300)) return false;
  const std::string expected = mac(secret_, device, issued_s);
  const std::string_view presented = rest.substr(dot + 1);
  static_assert(kMacBytes == 32);
  return presented.size() == expected.size() &&
         CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

bool DeviceTokenAuthority::valid_device_id(std::string_view device) {
  if (device.empty() || device.size() > 128) return false;
  for (char c : device) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace herald::logic
