// Base64 for the sender API's binary payloads: the one implementation is protocol/base64.h
// (shared with the signed endpoint list and the client library); these names keep the HTTP
// layer's spelling.
#pragma once

#include "protocol/base64.h"

namespace herald::http::detail {

using protocol::base64_decode;
using protocol::base64_encode;

}  // namespace herald::http::detail
