// libFuzzer target for the signed endpoint list a client fetches (docs/endpoints.md): arbitrary
// bytes, read as EndpointDirectory reads a response body or its cache file.
//
// Invariants (a violation aborts, which libFuzzer reports as a crash and the corpus replay test
// as a failure):
//   - check_signed_list never throws, whatever the bytes;
//   - a list it accepts, served again from its parsed fields with the same signature, is accepted
//     again with the same canonical bytes (parsing loses nothing the signature covers);
//   - base64: whatever decodes encodes back to the same text, padded.
//
// The corpus's lists are signed, by an implementation independent of this one (openssl and a
// few lines of Python), with the key below; endpoint_list_fuzz_replay_test.cc checks them as
// golden vectors too.
//
// Build with -DHERALD_BUILD_FUZZERS=ON and clang; run as
//   build/bin/herald_endpoint_list_fuzz src/protocol/fuzz_corpus/endpoint_list

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>

#include "protocol/base64.h"
#include "protocol/endpoint_list_format.h"
#include "protocol/fuzz_check.h"

namespace herald::protocol {
namespace {

// The corpus's signing key (public half) and a time inside its lists' validity.
constexpr std::string_view kPublicKey = "MmHb9+q+lA+pNmIjtmXSk+rIgFZ+hZ253wWl6bQBVxY=";
constexpr std::int64_t kNowMs = 1'700'000'000'000;

void check_list(std::string_view body) {
  const auto checked = check_signed_list(body, kPublicKey, kNowMs);
  if (!checked) return;
  boost::json::object again = endpoint_list_fields(*checked);
  again["signature"] = boost::json::parse(body).at("signature");
  const auto reparsed = check_signed_list(boost::json::value(again), kPublicKey, kNowMs);
  HERALD_FUZZ_CHECK(reparsed.has_value());
  HERALD_FUZZ_CHECK(canonical_bytes(*reparsed) == canonical_bytes(*checked));
}

void check_base64(std::string_view text) {
  const auto decoded = base64_decode(text);
  if (!decoded) return;
  const std::string encoded = base64_encode(*decoded);
  HERALD_FUZZ_CHECK(encoded.size() >= text.size() && encoded.size() - text.size() <= 2);
  HERALD_FUZZ_CHECK(std::string_view(encoded).substr(0, text.size()) == text);
  HERALD_FUZZ_CHECK(encoded.find_first_not_of('=', text.size()) == std::string::npos);
}

}  // namespace
}  // namespace herald::protocol

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  herald::protocol::check_list(bytes);
  herald::protocol::check_base64(bytes);
  return 0;
}
