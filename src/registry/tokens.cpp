// Bearer tokens: 256 random bits each, so a plain SHA-256 is enough to store them (nothing to guess
// offline, unlike passwords).
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "registry/internal.hpp"

namespace vigil {

std::string new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("OpenSSL RAND_bytes failed");
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "vgl_";
  unsigned bits = 0;
  int n = 0;
  for (const unsigned char b : bytes) {
    bits = (bits << 8) | b;
    n += 8;
    while (n >= 6) {
      out += kAlphabet[(bits >> (n - 6)) & 63];
      n -= 6;
    }
  }
  if (n > 0) out += kAlphabet[(bits << (6 - n)) & 63];
  return out;
}

std::string sha256_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL SHA-256 failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace vigil
