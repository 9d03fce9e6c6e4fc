#include <mutex>

#include <spdlog/spdlog.h>

#include "vigil/common.hpp"

namespace vigil {
namespace {

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

LogSink& sink() {
  static LogSink s = [](LogLevel level, const std::string& message) {
    switch (level) {
      case LogLevel::kDebug: spdlog::debug(message); break;
      case LogLevel::kInfo: spdlog::info(message); break;
      case LogLevel::kWarn: spdlog::warn(message); break;
      case LogLevel::kError: spdlog::error(message); break;
    }
  };
  return s;
}

}  // namespace

void set_log_sink(LogSink s) {
  std::lock_guard lock(sink_mutex());
  sink() = std::move(s);
}

void log(LogLevel level, const std::string& message) {
  std::lock_guard lock(sink_mutex());
  if (sink()) sink()(level, message);
}

const char* version() { return VIGIL_VERSION; }

}  // namespace vigil
