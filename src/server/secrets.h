// Secrets heraldd generates on first start when the configuration names none, kept in the data
// directory with mode 0600 so that tokens and keys stay valid across restarts.
#pragma once

#include <filesystem>
#include <string>

namespace herald::server {

// The contents of `path`, or — when it does not exist — `bytes` random bytes as hex, written
// there first (0600, fsynced). Throws std::runtime_error naming the path on failure.
std::string load_or_create_secret(const std::filesystem::path& path, std::size_t bytes);

}  // namespace herald::server
