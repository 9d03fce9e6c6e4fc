// Reading the JSON sidecars that travel with each model.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "vigil/common.hpp"

namespace vigil {

// Parses a JSON file; the error names the file and the parse problem.
Result<nlohmann::json> read_json_file(const std::string& path);
// Reads a whole file into memory.
Result<std::string> read_file_bytes(const std::string& path);

}  // namespace vigil
