#include "common/json_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vigil {

Result<std::string> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot open " + path + ": " + std::strerror(errno)};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<nlohmann::json> read_json_file(const std::string& path) {
  auto bytes = read_file_bytes(path);
  if (!bytes) return Error{bytes.error()};
  try {
    return nlohmann::json::parse(*bytes);
  } catch (const nlohmann::json::exception& e) {
    return Error{path + ": not valid JSON (" + e.what() + ")"};
  }
}

}  // namespace vigil
