// Pieces of the registry shared by its source files and tests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

constexpr std::size_t kPlateMaxLength = 12;  // characters of a normalised plate
constexpr std::size_t kReadMaxLength = 16;   // characters of a camera's normalised read and its candidates

// The plate and each string made by deleting one character from it. Two plates at most one edit apart
// always share a key, so a near-miss is found through an index instead of by scanning every record.
std::vector<std::string> plate_keys(const std::string& plate);

// "vgl_" + base64url(32 random bytes): 47 characters.
std::string new_token();
// Lower-case hex SHA-256 of the text.
std::string sha256_hex(std::string_view text);

}  // namespace vigil
