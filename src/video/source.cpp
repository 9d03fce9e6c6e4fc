// Frame sources: video files and live captures through cv::VideoCapture, image sequences through imread.
#include <glob.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "video/source_internal.hpp"
#include "vigil/image.hpp"
#include "vigil/video.hpp"

namespace fs = std::filesystem;

namespace vigil {

const char* to_string(SourceKind kind) {
  switch (kind) {
    case SourceKind::kFile:
      return "file";
    case SourceKind::kImages:
      return "images";
    case SourceKind::kDevice:
      return "device";
    case SourceKind::kNetwork:
      return "network";
    case SourceKind::kPipeline:
      return "pipeline";
  }
  return "?";
}

namespace detail {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_image_file_name(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  for (const char* e : {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
    if (ext == e) return true;
  return false;
}

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit((unsigned char)a[i]) && std::isdigit((unsigned char)b[j])) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit((unsigned char)a[i2])) ++i2;
      while (j2 < b.size() && std::isdigit((unsigned char)b[j2])) ++j2;
      // Compare the digit runs as numbers without overflow: strip leading zeros, then by length.
      size_t ia = i, jb = j;
      while (ia + 1 < i2 && a[ia] == '0') ++ia;
      while (jb + 1 < j2 && b[jb] == '0') ++jb;
      if (i2 - ia != j2 - jb) return i2 - ia < j2 - jb;
      const int c = a.compare(ia, i2 - ia, b, jb, j2 - jb);
      if (c != 0) return c < 0;
      if (i2 - i != j2 - j) return i2 - i < j2 - j;  // "01" after "1"
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return (unsigned char)a[i] < (unsigned char)b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string redact_url(const std::string& spec) {
  const size_t scheme = spec.find("://");
  if (scheme == std::string::npos) return spec;
  const size_t host_start = scheme + 3;
  const size_t path = spec.find('/', host_start);
  const size_t at = spec.rfind('@', path == std::string::npos ? spec.size() : path);
  if (at == std::string::npos || at < host_start) return spec;
  const size_t colon = spec.find(':', host_start);
  if (colon == std::string::npos || colon > at) return spec;
  return spec.substr(0, colon + 1) + "***" + spec.substr(at);
}

SourceKind classify(const std::string& spec) {
  const std::string l = lower(spec);
  const size_t scheme = l.find("://");
  if (scheme != std::string::npos && scheme > 0) {
    const std::string s = l.substr(0, scheme);
    if (s == "file") return SourceKind::kFile;
    return SourceKind::kNetwork;
  }
  if (spec.find('!') != std::string::npos && spec.find(' ') != std::string::npos)
    return SourceKind::kPipeline;
  if (!spec.empty() && std::all_of(spec.begin(), spec.end(), [](unsigned char c) { return std::isdigit(c); }))
    return SourceKind::kDevice;
  if (l.rfind("/dev/", 0) == 0) return SourceKind::kDevice;
  std::error_code ec;
  if (fs::is_directory(spec, ec)) return SourceKind::kImages;
  if (!fs::exists(spec, ec) && spec.find_first_of("*?[") != std::string::npos) return SourceKind::kImages;
  if (is_image_file_name(spec)) return SourceKind::kImages;
  return SourceKind::kFile;
}

std::string describe_bytes(const std::string& bytes) {
  std::string s;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    const unsigned char c = bytes[i];
    if (c >= 32 && c < 127) {
      s += char(c);
    } else {
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    }
  }
  return s;
}

std::string diagnose_unopenable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string("cannot open: ") + std::strerror(errno);
  std::string head(64, '\0');
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  if (head.empty()) return "empty file (0 bytes)";
  auto at = [&](size_t off, const char* sig) {
    const size_t n = std::strlen(sig);
    return head.size() >= off + n && head.compare(off, n, sig) == 0;
  };
  const auto* u = reinterpret_cast<const unsigned char*>(head.data());
  std::string container;
  if (at(4, "ftyp") || at(4, "moov") || at(4, "mdat") || at(4, "wide") || at(4, "free")) {
    container = "MP4/MOV";
  } else if (at(0, "RIFF") && at(8, "AVI ")) {
    container = "AVI";
  } else if (head.size() >= 4 && u[0] == 0x1A && u[1] == 0x45 && u[2] == 0xDF && u[3] == 0xA3) {
    container = "Matroska/WebM";
  } else if (at(0, "FLV")) {
    container = "FLV";
  } else if (at(0, "OggS")) {
    container = "Ogg";
  } else if (head.size() >= 4 && u[0] == 0 && u[1] == 0 && u[2] == 1 && (u[3] == 0xBA || u[3] == 0xB3)) {
    container = "MPEG";
  } else if (u[0] == 0x47 && (head.size() < 189 || u[188] == 0x47)) {
    container = "MPEG-TS";
  }
  if (container.empty()) {
    if ((u[0] == 0xFF && head.size() > 2 && u[1] == 0xD8) || at(0, "\x89PNG") || at(0, "BM"))
      return "an image, not a video (give it an image extension, or a folder of images)";
    return "not a video (starts with \"" + describe_bytes(head) +
           "\"); supported: MP4, MKV, AVI, MOV and what "
           "else FFmpeg reads";
  }
  if (container == "MP4/MOV") {
    // The index ('moov') of a file written without faststart comes last: a cut file has none.
    std::ifstream all(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(all)), std::istreambuf_iterator<char>());
    if (bytes.find("moov") == std::string::npos)
      return "damaged or truncated MP4/MOV video: its index ('moov' atom) is missing, so the file was cut "
             "short "
             "or is still being written";
  }
  return "damaged or truncated " + container + " video: FFmpeg cannot open it";
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace detail

namespace {

using detail::unix_now;

// Sleeps that interrupt() cuts short.
class Interrupter {
 public:
  void interrupt() {
    std::lock_guard lock(mutex_);
    stop_ = true;
    cv_.notify_all();
  }
  bool stopped() const { return stop_.load(); }
  // False when interrupted.
  bool sleep(double seconds) {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_.load(); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
};

// Thread-safe counters behind SourceStats.
struct Counters {
  std::atomic<std::int64_t> frames_read{0}, frames_returned{0}, frames_stale{0}, frames_unreadable{0},
      frames_expected{-1}, outages{0}, reconnects{0};
  std::atomic<double> outage_s{0.0}, fps{0.0};
  SourceStats snapshot() const {
    SourceStats s;
    s.frames_read = frames_read;
    s.frames_returned = frames_returned;
    s.frames_stale = frames_stale;
    s.frames_unreadable = frames_unreadable;
    s.frames_expected = frames_expected;
    s.outages = outages;
    s.reconnects = reconnects;
    s.outage_s = outage_s;
    s.fps = fps;
    return s;
  }
};

class SourceBase : public FrameSource {
 public:
  SourceBase(std::string spec, SourceKind kind, const SourceOptions& options)
      : description_(detail::redact_url(spec)), spec_(std::move(spec)), kind_(kind), options_(options) {
    options_.stride = std::max(1, options_.stride);
  }
  void interrupt() override { interrupter_.interrupt(); }
  SourceKind kind() const override { return kind_; }
  const std::string& description() const override { return description_; }
  std::string error() const override {
    std::lock_guard lock(error_mutex_);
    return error_;
  }
  SourceStats stats() const override { return counters_.snapshot(); }

 protected:
  ReadStatus fail(std::string message) {
    std::lock_guard lock(error_mutex_);
    error_ = std::move(message);
    return ReadStatus::kError;
  }

  const std::string description_;
  const std::string spec_;
  const SourceKind kind_;
  SourceOptions options_;
  Interrupter interrupter_;
  Counters counters_;
  mutable std::mutex error_mutex_;
  std::string error_;
};

// A video file read through FFmpeg: every frame or every stride-th, on the container's clock.
class FileSource : public SourceBase {
 public:
  using SourceBase::SourceBase;

  Result<bool> open() {
    std::string path = spec_;
    if (detail::lower(path).rfind("file://", 0) == 0) path = path.substr(7);
    std::error_code ec;
    if (!fs::exists(path, ec)) return Error{description_ + ": no such file"};
    if (fs::is_directory(path, ec)) return Error{description_ + ": is a directory"};
    try {
      const auto api = cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG : cv::CAP_ANY;
      cap_.open(path, api);
    } catch (const cv::Exception& e) {
      return Error{description_ + ": cannot open: " + e.what()};
    }
    if (!cap_.isOpened()) return Error{description_ + ": " + detail::diagnose_unopenable(path)};
    const double count = cap_.get(cv::CAP_PROP_FRAME_COUNT);
    counters_.frames_expected = count > 0 ? std::int64_t(std::llround(count)) : -1;
    const double fps = cap_.get(cv::CAP_PROP_FPS);
    counters_.fps = (fps > 0 && fps < 1000) ? fps : 0.0;
    return true;
  }

  bool live() const override { return false; }

  ReadStatus read(Frame& frame) override {
    while (true) {
      if (interrupter_.stopped()) return ReadStatus::kStopped;
      if (done_) return ReadStatus::kEnd;
      const std::int64_t index = counters_.frames_read;
      const bool keep = index % options_.stride == 0;
      bool ok = false;
      try {
        ok = cap_.grab();
      } catch (const cv::Exception& e) {
        ok = false;
      }
      if (!ok) return end_of_file();
      ++counters_.frames_read;
      const double t = timestamp();
      if (!keep) continue;
      cv::Mat image;
      try {
        ok = cap_.retrieve(image) && !image.empty();
      } catch (const cv::Exception&) {
        ok = false;
      }
      if (!ok) return end_of_file();
      frame.image = std::move(image);
      frame.t = t;
      frame.index = index;
      frame.decoded_at = std::chrono::steady_clock::now();
      ++counters_.frames_returned;
      return ReadStatus::kFrame;
    }
  }

 private:
  // The container's clock; a frame whose timestamp is missing or goes backwards gets the previous one plus
  // a frame interval, so timestamps only increase.
  double timestamp() {
    const double pos = cap_.get(cv::CAP_PROP_POS_MSEC) / 1000.0;
    const double step = counters_.fps > 0 ? 1.0 / counters_.fps : 0.04;
    double t = pos;
    if (!std::isfinite(pos) || pos < 0 || (have_t_ && pos <= last_t_)) t = have_t_ ? last_t_ + step : 0.0;
    have_t_ = true;
    last_t_ = t;
    return t;
  }

  ReadStatus end_of_file() {
    done_ = true;
    const std::int64_t read = counters_.frames_read, expected = counters_.frames_expected;
    if (read == 0)
      return fail(description_ + ": no frame could be decoded (damaged file or unsupported codec)");
    // Frame counts from container headers can be estimates (duration x fps): allow a small shortfall.
    if (expected > 0 && read < expected - std::max<std::int64_t>(2, expected / 50))
      return fail(description_ + ": the video ended after " + std::to_string(read) + " of " +
                  std::to_string(expected) + " frames: the file is truncated or corrupt");
    return ReadStatus::kEnd;
  }

  cv::VideoCapture cap_;
  bool done_ = false, have_t_ = false;
  double last_t_ = 0.0;
};

// A camera or stream: wall-clock timestamps, reconnection with capped exponential back-off.
class LiveSource : public SourceBase {
 public:
  using SourceBase::SourceBase;

  bool live() const override { return true; }

  ReadStatus read(Frame& frame) override {
    while (!interrupter_.stopped()) {
      if (!cap_.isOpened()) {
        std::string why;
        if (!connect(why)) {
          lost(why.empty() ? "cannot open" : why);
          ++failures_;
          if (options_.reconnect_attempts_max > 0 && failures_ >= options_.reconnect_attempts_max)
            return fail(description_ + ": gave up after " + std::to_string(failures_) + " failed attempt" +
                        (failures_ == 1 ? "" : "s") + " to open it (" + (why.empty() ? "cannot open" : why) +
                        ")");
          if (!interrupter_.sleep(delay_)) break;
          delay_ = std::min(delay_ * 2, std::max(options_.reconnect_delay_s, options_.reconnect_delay_max_s));
          continue;
        }
        if (in_outage_) {
          const double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - outage_start_).count();
          counters_.outage_s = counters_.outage_s + secs;
          ++counters_.reconnects;
          in_outage_ = false;
          char msg[64];
          std::snprintf(msg, sizeof msg, "%.1f", secs);
          vigil::log(LogLevel::kInfo, description_ + ": reconnected after " + msg + " s");
        }
      }
      cv::Mat image;
      bool ok = false;
      try {
        ok = cap_.read(image) && !image.empty();
      } catch (const cv::Exception& e) {
        ok = false;
      }
      if (interrupter_.stopped()) break;
      if (!ok) {
        cap_.release();
        lost("no frame (the stream ended or stalled)");
        if (!interrupter_.sleep(delay_)) break;
        delay_ = std::min(delay_ * 2, std::max(options_.reconnect_delay_s, options_.reconnect_delay_max_s));
        continue;
      }
      const std::int64_t index = counters_.frames_read++;
      failures_ = 0;
      delay_ = options_.reconnect_delay_s;
      if (options_.drop_repeated && is_repeat(image)) {
        ++counters_.frames_stale;
        continue;
      }
      // The wall clock may step back (NTP); frame times must not.
      last_t_ = std::max(last_t_, unix_now());
      frame.t = last_t_;
      frame.index = index;
      frame.decoded_at = std::chrono::steady_clock::now();
      frame.image = std::move(image);
      ++counters_.frames_returned;
      return ReadStatus::kFrame;
    }
    return ReadStatus::kStopped;
  }

 private:
  bool connect(std::string& why) {
    try {
      bool ok = false;
      if (kind_ == SourceKind::kDevice) {
        const bool index =
            std::all_of(spec_.begin(), spec_.end(), [](unsigned char c) { return std::isdigit(c); });
        const int api = cv::videoio_registry::hasBackend(cv::CAP_V4L2) ? cv::CAP_V4L2 : cv::CAP_ANY;
        ok = index ? cap_.open(std::stoi(spec_), api) : cap_.open(spec_, api);
      } else if (kind_ == SourceKind::kPipeline) {
        ok = cap_.open(spec_, cv::CAP_GSTREAMER);
      } else {
        std::string path = spec_;
        if (detail::lower(path).rfind("file://", 0) == 0) path = path.substr(7);
        const int api = cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG : cv::CAP_ANY;
        const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, options_.open_timeout_ms,
                                         cv::CAP_PROP_READ_TIMEOUT_MSEC, options_.read_timeout_ms};
        ok = cap_.open(path, api, params);
      }
      if (!ok)
        why = kind_ == SourceKind::kDevice ? "cannot open the device (missing, busy or not permitted)"
              : kind_ == SourceKind::kPipeline
                  ? "GStreamer cannot start the pipeline (run with -v for its messages)"
              : kind_ == SourceKind::kNetwork ? "cannot connect, or the server sent no video"
                                              : "cannot open";
      if (ok) {
        const double fps = cap_.get(cv::CAP_PROP_FPS);
        if (fps > 0 && fps < 1000) counters_.fps = fps;
      }
      return ok;
    } catch (const std::exception& e) {
      why = std::string("cannot open: ") + e.what();
      cap_.release();
      return false;
    }
  }

  void lost(const std::string& why) {
    if (in_outage_) {
      char next[32];
      std::snprintf(next, sizeof next, "%.3g", delay_);
      vigil::log(LogLevel::kDebug, description_ + ": still down (" + why + "), next try in " + next + " s");
      return;
    }
    in_outage_ = true;
    outage_start_ = std::chrono::steady_clock::now();
    ++counters_.outages;
    char backoff[32];
    std::snprintf(backoff, sizeof backoff, "%.3g",
                  std::max(options_.reconnect_delay_s, options_.reconnect_delay_max_s));
    vigil::log(LogLevel::kWarn, description_ + ": " + why + "; reconnecting (waiting up to " + backoff +
                                    " s between attempts)");
  }

  bool is_repeat(const cv::Mat& image) {
    const bool same = !previous_.empty() && previous_.size() == image.size() &&
                      previous_.type() == image.type() && previous_.isContinuous() && image.isContinuous() &&
                      std::memcmp(previous_.data, image.data, image.total() * image.elemSize()) == 0;
    image.copyTo(previous_);
    return same;
  }

  cv::VideoCapture cap_;
  double delay_ = options_.reconnect_delay_s;
  int failures_ = 0;
  bool in_outage_ = false;
  std::chrono::steady_clock::time_point outage_start_;
  double last_t_ = 0.0;
  cv::Mat previous_;
};

// Image files in natural order ("f2.jpg" before "f10.jpg"), on a clock of images_fps.
class ImageSource : public SourceBase {
 public:
  ImageSource(std::string spec, const SourceOptions& options, std::vector<std::string> files)
      : SourceBase(std::move(spec), SourceKind::kImages, options), files_(std::move(files)) {
    counters_.frames_expected = std::int64_t(files_.size());
    counters_.fps = options_.images_fps > 0 ? options_.images_fps : 10.0;
  }

  bool live() const override { return false; }

  ReadStatus read(Frame& frame) override {
    while (next_ < files_.size()) {
      if (interrupter_.stopped()) return ReadStatus::kStopped;
      const size_t i = next_++;
      ++counters_.frames_read;
      if (i % size_t(options_.stride) != 0) continue;
      auto image = load_image_file(files_[i]);
      if (!image) {
        ++counters_.frames_unreadable;
        vigil::log(LogLevel::kWarn, files_[i] + ": " + image.error() + "; skipped");
        continue;
      }
      frame.image = std::move(*image);
      frame.t = double(i) / counters_.fps;
      frame.index = std::int64_t(i);
      frame.decoded_at = std::chrono::steady_clock::now();
      ++counters_.frames_returned;
      return ReadStatus::kFrame;
    }
    if (interrupter_.stopped()) return ReadStatus::kStopped;
    if (counters_.frames_returned == 0)
      return fail(description_ + ": none of the " + std::to_string(files_.size()) + " images could be read");
    return ReadStatus::kEnd;
  }

 private:
  std::vector<std::string> files_;
  size_t next_ = 0;
};

Result<std::vector<std::string>> list_images(const std::string& spec) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    for (const auto& e : fs::directory_iterator(spec, fs::directory_options::skip_permission_denied, ec))
      if (e.is_regular_file(ec) && detail::is_image_file_name(e.path().string()))
        files.push_back(e.path().string());
    if (ec) return Error{spec + ": cannot list the folder: " + ec.message()};
    if (files.empty()) return Error{spec + ": no images in this folder (looked for .jpg, .png, .bmp, ...)"};
  } else if (fs::exists(spec, ec)) {
    files.push_back(spec);
  } else {
    glob_t g{};
    const int rc = ::glob(spec.c_str(), GLOB_NOSORT, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (!fs::is_directory(g.gl_pathv[i], ec)) files.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (files.empty()) {
      if (spec.find_first_of("*?[") == std::string::npos) return Error{spec + ": no such file"};
      return Error{spec + ": no files match this pattern"};
    }
  }
  std::sort(files.begin(), files.end(), detail::natural_less);
  return files;
}

}  // namespace

Result<std::unique_ptr<FrameSource>> open_source(const std::string& spec, const SourceOptions& options) {
  if (spec.empty()) return Error{"empty source: give a video file, an image folder, a device or a URL"};
  const SourceKind kind = detail::classify(spec);
  const std::string shown = detail::redact_url(spec);
  if (options.stride < 1) return Error{shown + ": stride must be at least 1"};
  if (kind == SourceKind::kImages) {
    auto files = list_images(spec);
    if (!files) return Error{files.error()};
    return std::unique_ptr<FrameSource>(std::make_unique<ImageSource>(spec, options, std::move(*files)));
  }
  if (kind == SourceKind::kPipeline && !cv::videoio_registry::hasBackend(cv::CAP_GSTREAMER))
    return Error{shown + ": looks like a GStreamer pipeline, but this OpenCV was built without GStreamer"};
  if (kind == SourceKind::kPipeline)
    if (auto why = detail::check_pipeline(spec)) return Error{shown + ": " + *why};
  if (kind == SourceKind::kNetwork && !cv::videoio_registry::hasBackend(cv::CAP_FFMPEG))
    return Error{shown + ": network streams need OpenCV built with FFmpeg"};
  const bool live = options.live == SourceOptions::Live::kYes ||
                    (options.live == SourceOptions::Live::kAuto && kind != SourceKind::kFile);
  if (live) {
    if (kind == SourceKind::kFile) {
      std::error_code ec;
      std::string path = spec;
      if (detail::lower(path).rfind("file://", 0) == 0) path = path.substr(7);
      if (!fs::exists(path, ec)) return Error{shown + ": no such file"};
    }
    return std::unique_ptr<FrameSource>(std::make_unique<LiveSource>(spec, kind, options));
  }
  if (kind != SourceKind::kFile) return Error{shown + ": a " + to_string(kind) + " source is always live"};
  auto file = std::make_unique<FileSource>(spec, kind, options);
  auto opened = file->open();
  if (!opened) return Error{opened.error()};
  return std::unique_ptr<FrameSource>(std::move(file));
}

}  // namespace vigil
