// Shared vocabulary of libvigil: results with user-facing error messages and the log sink.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vigil {

// An error a user can act on: says what failed and, where possible, what to do next.
struct Error {
  std::string message;
};

// A value or an error (Error by default). Library calls return this instead of throwing across the API
// boundary. An error type with a `failure` field (RegistryError) also gets failure().
template <typename T, typename E = Error>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(E error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return std::get<T>(v_); }
  const T& operator*() const& { return std::get<T>(v_); }
  const std::string& error() const { return std::get<E>(v_).message; }
  const E& error_detail() const { return std::get<E>(v_); }
  auto failure() const
    requires requires(const E& e) { e.failure; }
  {
    return std::get<E>(v_).failure;
  }

 private:
  std::variant<T, E> v_;
};

// Log levels of the library's messages.
enum class LogLevel { kDebug, kInfo, kWarn, kError };

// The library never prints: it hands messages to this sink. The default sink forwards to spdlog's
// default logger (stderr). Thread-safe to call; set it once at start-up before using the library.
using LogSink = std::function<void(LogLevel, const std::string&)>;
void set_log_sink(LogSink sink);
void log(LogLevel level, const std::string& message);

// Tells the C library's allocator (glibc; elsewhere a no-op) to keep freed memory for reuse instead of
// handing it back to the system after each call. OpenCV DNN allocates and frees large buffers on every
// network run; when runs of different input sizes alternate (a small image's two looks), glibc returns
// them and the next run faults every page in again: a 320x180 image took 59 ms instead of 30
// (BM_RecognizeSmall, 2 threads). Peak memory rises a little, freed memory being kept (165 MiB for
// `vigil read` over 244 photos, 134 before). Call once at start-up, before loading models; the vigil
// command and the benchmarks do.
void keep_freed_memory();

// Version string of the library, e.g. "0.1.0".
const char* version();

}  // namespace vigil
