#include "server/secrets.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace herald::server {

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
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp);
  const std::string line = secret + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot write " + path.string());
  }
  return secret;
}

}  // namespace herald::server
