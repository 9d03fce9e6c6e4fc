// Standard base64 (RFC 4648 section 4, with padding) for evidence images in JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vigil {

std::string base64_encode(std::string_view bytes);
// Strict: only the standard alphabet, correct padding, no whitespace; nullopt otherwise.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace vigil
