// Secrets heraldd generates on first start when the configuration names none, kept in the data
// directory with mode 0600 so that tokens and keys stay valid across restarts.
#pragma once

#include <filesystem>
#include <string>

#include "http/endpoint_list.h"

namespace herald::server {

// The contents of `path`, or — when it does not exist — `bytes` random bytes as hex, written
// there first (0600, fsynced). Throws std::runtime_error naming the path on failure.
std::string load_or_create_secret(const std::filesystem::path& path, std::size_t bytes);

// The Ed25519 key that signs endpoint lists, read from the PEM file at `path`, or generated and
// written there (mode 0600) when the file does not exist. Throws std::runtime_error when the file
// cannot be read or written or holds no Ed25519 private key.
http::EndpointSigner load_or_create_signing_key(const std::filesystem::path& path);

}  // namespace herald::server
