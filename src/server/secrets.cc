#include "server/secrets.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace herald::server {

namespace {

// Writes `content` to `path` readable by the owner only, atomically (fsync, then rename).
void write_private_file(const std::filesystem::path& path, const std::string& content) {
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp);
  const bool ok =
      ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

}  // namespace

std::string load_or_create_secret(const std::filesystem::path& path, std::size_t bytes) {
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string secret;
    std::getline(in, secret);
    if (secret.empty()) throw std::runtime_error(path.string() + ": empty secret file");
    return secret;
  }
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness for " + path.string());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string secret;
  for (unsigned char c : raw) {
    secret.push_back(kHex[c >> 4]);
    secret.push_back(kHex[c & 15]);
  }
  write_private_file(path, secret + "\n");
  return secret;
}

http::EndpointSigner load_or_create_signing_key(const std::filesystem::path& path) {
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::stringstream pem;
    pem << in.rdbuf();
    try {
      return http::EndpointSigner::from_pem(pem.str());
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path.string() + ": " + e.what());
    }
  }
  auto signer = http::EndpointSigner::generate();
  write_private_file(path, signer.private_key_pem());
  return signer;
}

}  // namespace herald::server
