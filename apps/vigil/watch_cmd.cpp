// vigil watch: plate events, one per vehicle pass, from videos, image folders, cameras and streams.
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <set>
#if __has_include(<opencv2/highgui.hpp>)
#include <opencv2/highgui.hpp>
#define VIGIL_WATCH_HAVE_HIGHGUI 1
#endif

#include "cli.hpp"
#include "vigil/video.hpp"

namespace fs = std::filesystem;

namespace vigil::cli {
namespace {

struct WatchFlags {
  std::vector<std::string> sources, more_sources;  // positional, --source
  std::string config, events = "-", evidence_dir, annotate;
  std::vector<std::string> camera_ids;
  bool show = false, no_motion = false, bench = false;
  int stride = 1, min_plate_width = 0, min_frames = 2, queue = 0, reconnect_max = 0;
  double max_gap_s = 1.0, images_fps = 10.0;
  float min_confidence = 0.10f;
  RecognizerFlags rec;
};

constexpr int kVideoTileMinLongSide = 1920;

// One camera: from the command line or a config file entry.
struct Camera {
  std::string id, name, source;
  std::vector<cv::Point2f> roi;
  bool roi_crop = true;
  int min_plate_width = 0, stride = 1, queue = 0, reconnect_max = 0, min_frames = 2;
  bool motion = true;
  int motion_threshold = 0;  // 0: library default
  double motion_area = -1;   // < 0: library default
  double max_gap_s = 1.0, images_fps = 10.0;
  std::string country;
  std::string live = "auto";  // "auto", "yes", "no"
};

// ---------------------------------------------------------------------------------------------------------
// Config file

const std::vector<std::string> kCameraKeys = {"id",          "name",         "source",
                                              "roi",         "roi_crop",     "min_plate_width",
                                              "stride",      "motion",       "motion_threshold",
                                              "motion_area", "max_gap_s",    "min_frames",
                                              "images_fps",  "country",      "live",
                                              "queue",       "reconnect_max"};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Parses {"cameras": [{...}, ...]} into cameras; `defaults` gives what an entry leaves out. The error
// names the file and the bad key.
Result<std::vector<Camera>> parse_config(const std::string& path, const Camera& defaults) {
  std::ifstream in(path);
  if (!in) return Error{"cannot open config " + path + ": " + std::strerror(errno)};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Error{path + ": not valid JSON: " + e.what()};
  }
  if (!doc.is_object()) return Error{path + ": expected an object {\"cameras\": [...]}"};
  for (const auto& [key, value] : doc.items())
    if (key != "cameras") return Error{path + ": unknown key '" + key + "' (expected \"cameras\")"};
  if (!doc.contains("cameras")) return Error{path + ": missing key 'cameras' (a list of cameras)"};
  const auto& list = doc["cameras"];
  if (!list.is_array() || list.empty()) return Error{path + ": 'cameras' must be a non-empty list"};
  std::vector<Camera> cameras;
  std::set<std::string> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& c = list[i];
    const std::string where = path + ": cameras[" + std::to_string(i) + "]";
    if (!c.is_object()) return Error{where + ": expected an object"};
    for (const auto& [key, value] : c.items())
      if (std::find(kCameraKeys.begin(), kCameraKeys.end(), key) == kCameraKeys.end())
        return Error{where + ": unknown key '" + key + "' (known: " + join(kCameraKeys) + ")"};
    Camera cam = defaults;
    cam.id = "cam" + std::to_string(i + 1);
    auto bad = [&](const std::string& key, const std::string& want) {
      return Error{where + "." + key + ": " + want + " (got " + c[key].dump() + ")"};
    };
    auto get_string = [&](const char* key, std::string& out) -> std::optional<Error> {
      if (!c.contains(key)) return std::nullopt;
      if (!c[key].is_string() || c[key].get<std::string>().empty())
        return bad(key, "must be a non-empty string");
      out = c[key].get<std::string>();
      return std::nullopt;
    };
    auto get_int = [&](const char* key, int& out, int lo) -> std::optional<Error> {
      if (!c.contains(key)) return std::nullopt;
      if (!c[key].is_number_integer() || c[key].get<long long>() < lo || c[key].get<long long>() > 1000000)
        return bad(key, "must be an integer >= " + std::to_string(lo));
      out = c[key].get<int>();
      return std::nullopt;
    };
    auto get_number = [&](const char* key, double& out, double lo, double hi) -> std::optional<Error> {
      if (!c.contains(key)) return std::nullopt;
      if (!c[key].is_number() || c[key].get<double>() < lo || c[key].get<double>() > hi) {
        char want[96];
        std::snprintf(want, sizeof want, "must be a number from %g to %g", lo, hi);
        return bad(key, want);
      }
      out = c[key].get<double>();
      return std::nullopt;
    };
    auto get_bool = [&](const char* key, bool& out) -> std::optional<Error> {
      if (!c.contains(key)) return std::nullopt;
      if (!c[key].is_boolean()) return bad(key, "must be true or false");
      out = c[key].get<bool>();
      return std::nullopt;
    };
    if (!c.contains("source")) return Error{where + ": missing key 'source' (a file, folder, device or URL)"};
    std::optional<Error> err;
    if ((err = get_string("source", cam.source)) || (err = get_string("id", cam.id)) ||
        (err = get_string("name", cam.name)) || (err = get_string("country", cam.country)) ||
        (err = get_int("min_plate_width", cam.min_plate_width, 0)) ||
        (err = get_int("stride", cam.stride, 1)) || (err = get_int("min_frames", cam.min_frames, 1)) ||
        (err = get_int("queue", cam.queue, 1)) || (err = get_int("reconnect_max", cam.reconnect_max, 0)) ||
        (err = get_int("motion_threshold", cam.motion_threshold, 1)) ||
        (err = get_number("motion_area", cam.motion_area, 0.0, 1.0)) ||
        (err = get_number("max_gap_s", cam.max_gap_s, 0.01, 3600)) ||
        (err = get_number("images_fps", cam.images_fps, 0.01, 1000)) ||
        (err = get_bool("motion", cam.motion)) || (err = get_bool("roi_crop", cam.roi_crop)) ||
        (err = get_string("live", cam.live)))
      return *err;
    if (cam.motion_threshold > 255) return bad("motion_threshold", "must be an integer from 1 to 255");
    if (cam.live != "auto" && cam.live != "yes" && cam.live != "no")
      return bad("live", "must be \"auto\", \"yes\" or \"no\"");
    if (c.contains("roi")) {
      const auto& r = c["roi"];
      if (!r.is_array() || r.size() < 3) return bad("roi", "must be a list of at least 3 [x, y] points");
      for (const auto& p : r) {
        if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number() ||
            p[0].get<double>() < 0 || p[1].get<double>() < 0)
          return bad("roi", "each point must be [x, y] with x, y >= 0 in frame pixels");
        cam.roi.emplace_back(p[0].get<float>(), p[1].get<float>());
      }
    }
    if (!ids.insert(cam.id).second) return Error{where + ".id: duplicate camera id '" + cam.id + "'"};
    cameras.push_back(std::move(cam));
  }
  return cameras;
}

// ---------------------------------------------------------------------------------------------------------
// Drawing: annotated video and --show

void draw_overlay(cv::Mat& img, const StreamFrame& f, const std::string& camera_id) {
  const double s = std::max(1.0, std::max(img.cols, img.rows) / 1000.0);
  const int thin = std::max(1, int(s)), thick = std::max(2, int(2 * s));
  if (f.roi.size() >= 3) {
    std::vector<cv::Point> poly;
    for (const auto& p : f.roi) poly.emplace_back(int(p.x), int(p.y));
    cv::polylines(img, poly, true, cv::Scalar(0, 220, 255), thin, cv::LINE_AA);
  }
  for (const auto& p : f.plates) cv::rectangle(img, p.box, cv::Scalar(255, 160, 0), thin);
  for (const auto& t : f.tracks) {
    cv::rectangle(img, t.box, cv::Scalar(60, 220, 60), thick);
    char label[128];
    std::snprintf(label, sizeof label, "#%d %s %.0f%% (%d)", t.id, t.best_text.c_str(),
                  t.best_confidence * 100, t.frames);
    int base = 0;
    const double fs_ = 0.6 * s;
    const cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, fs_, thin, &base);
    const cv::Point org(t.box.x, std::max(ts.height + 4, t.box.y - 6));
    cv::rectangle(img, org + cv::Point(-2, base), org + cv::Point(ts.width + 2, -ts.height - 4),
                  cv::Scalar(0, 0, 0), cv::FILLED);
    cv::putText(img, label, org, cv::FONT_HERSHEY_SIMPLEX, fs_, cv::Scalar(60, 220, 60), thin, cv::LINE_AA);
  }
  char status[160];
  std::snprintf(status, sizeof status, "%s  frame %lld  t=%.2f%s", camera_id.c_str(),
                (long long)f.frame.index, f.frame.t, f.recognized ? "" : "  (no motion)");
  cv::putText(img, status, cv::Point(int(8 * s), int(24 * s)), cv::FONT_HERSHEY_SIMPLEX, 0.6 * s,
              cv::Scalar(0, 0, 0), thick + 1, cv::LINE_AA);
  cv::putText(img, status, cv::Point(int(8 * s), int(24 * s)), cv::FONT_HERSHEY_SIMPLEX, 0.6 * s,
              cv::Scalar(255, 255, 255), thin, cv::LINE_AA);
}

// Latest annotated frame of each stream, for the main thread to show (highgui wants one thread).
struct ShowBoard {
  std::mutex mutex;
  std::map<std::string, cv::Mat> latest;
};

// Per-stream frame callback state: the annotated video writer and the --show hand-off.
struct Annotator {
  std::string camera_id, path;
  double fps = 10;
  ShowBoard* board = nullptr;
  cv::VideoWriter writer;
  bool failed = false;

  void on_frame(const StreamFrame& f) {
    cv::Mat img = f.frame.image.clone();
    draw_overlay(img, f, camera_id);
    if (!path.empty() && !failed) write(img);
    if (board) {
      std::lock_guard lock(board->mutex);
      board->latest[camera_id] = std::move(img);
    }
  }

 private:
  void write(const cv::Mat& img) {
    if (!writer.isOpened()) {
      size_ = img.size();
      writer.open(path, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), fps, size_);
      if (!writer.isOpened()) {
        failed = true;
        vigil::log(LogLevel::kError, "cannot write the annotated video " + path);
        return;
      }
    }
    // A source whose frame size changes (an image folder of mixed sizes) is scaled to the first size.
    if (img.size() == size_) {
      writer.write(img);
    } else {
      cv::Mat scaled;
      cv::resize(img, scaled, size_);
      writer.write(scaled);
    }
  }

  cv::Size size_;
};

// ---------------------------------------------------------------------------------------------------------

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string annotate_path(const std::string& path, const std::string& camera_id, bool several) {
  if (!several) return path;
  const fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + camera_id + p.extension().string())).string();
}

std::string count(std::int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string summary_line(const std::string& who, const StreamStats& s) {
  const double fps = s.wall_s > 0 ? s.frames_processed / s.wall_s : 0.0;
  std::string line = who + ": " + std::to_string(s.source.frames_read) + " frames, " +
                     std::to_string(s.frames_decoded) + " decoded, " + std::to_string(s.frames_recognized) +
                     " recognised, " + std::to_string(s.frames_skipped_motion) + " skipped by motion";
  if (s.frames_processed > 0)
    line += " (" + fmt("%.0f", 100.0 * s.frames_skipped_motion / s.frames_processed) + "%)";
  line += ", " + std::to_string(s.frames_dropped) + " dropped, " + count(s.events, "event", "events") + ", " +
          count(s.source.reconnects, "reconnect", "reconnects");
  if (s.source.frames_stale) line += ", " + std::to_string(s.source.frames_stale) + " stale";
  if (s.recognition_errors) line += ", " + std::to_string(s.recognition_errors) + " recognition errors";
  line += "; " + fmt("%.1f", fps) + " frames/s in " + fmt("%.1f", s.wall_s) + " s";
  if (s.frames_recognized > 0)
    line += " (recognition " + fmt("%.0f", 1000.0 * s.recognize_s / s.frames_recognized) + " ms/frame)";
  return line;
}

std::string latency_line(const char* what, const std::vector<double>& ms) {
  if (ms.empty()) return std::string(what) + ": no samples";
  return std::string(what) + ": median " + fmt("%.1f", median(ms)) + " ms, p95 " +
         fmt("%.1f", percentile(ms, 0.95)) + " ms (" + std::to_string(ms.size()) + ")";
}

int run(const WatchFlags& f) {
  // Signals are taken synchronously by the main loop (sigtimedwait); every thread started from here on,
  // OpenCV's included, inherits the blocked mask, so SIGINT cannot kill the process mid-write.
  sigset_t signals, old_mask;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, &old_mask);
  struct RestoreMask {
    sigset_t mask;
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{old_mask};

  const bool verbose = spdlog::get_level() <= spdlog::level::debug;
  if (!verbose) {
    // Our own messages say what failed; FFmpeg's and OpenCV's console chatter would only repeat it.
    setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0);
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  }
  // Events may go to standard output: messages go to standard error. Outages and reconnections are logged
  // at info level: show them.
  auto logger = spdlog::stderr_color_mt("vigil-watch");
  logger->set_pattern("vigil: %l: %v");
  logger->set_level(std::min(spdlog::get_level(), spdlog::level::info));
  spdlog::set_default_logger(logger);

  Camera defaults;
  defaults.stride = f.stride;
  defaults.min_plate_width = f.min_plate_width;
  defaults.min_frames = f.min_frames;
  defaults.max_gap_s = f.max_gap_s;
  defaults.queue = f.queue;
  defaults.reconnect_max = f.reconnect_max;
  defaults.images_fps = f.images_fps;
  defaults.motion = !f.no_motion;
  std::vector<Camera> cameras;
  if (!f.config.empty()) {
    auto parsed = parse_config(f.config, defaults);
    if (!parsed) {
      std::cerr << "vigil watch: " << parsed.error() << "\n";
      return 2;
    }
    cameras = std::move(*parsed);
  }
  if (!f.camera_ids.empty() && f.camera_ids.size() != 1 && f.camera_ids.size() != f.sources.size()) {
    std::cerr << "vigil watch: give one --camera-id, or one per source (" << f.sources.size() << " sources, "
              << f.camera_ids.size() << " ids)\n";
    return 2;
  }
  for (size_t i = 0; i < f.sources.size(); ++i) {
    Camera cam = defaults;
    cam.source = f.sources[i];
    if (f.camera_ids.size() == f.sources.size())
      cam.id = f.camera_ids[i];
    else if (f.camera_ids.size() == 1)
      cam.id = f.sources.size() == 1 ? f.camera_ids[0] : f.camera_ids[0] + "-" + std::to_string(i + 1);
    else
      cam.id = "cam" + std::to_string(cameras.size() + 1);
    cameras.push_back(std::move(cam));
  }
  if (cameras.empty()) {
    std::cerr << "vigil watch: no source: give a video file, image folder, device or URL, or --config FILE\n";
    return 2;
  }
  if (f.no_motion)
    for (auto& c : cameras) c.motion = false;
  std::set<std::string> ids;
  for (const auto& c : cameras)
    if (!ids.insert(c.id).second) {
      std::cerr << "vigil watch: two cameras have the id '" << c.id << "': give each its own --camera-id\n";
      return 2;
    }

  auto opts = f.rec.to_options();
  if (!opts) {
    std::cerr << "vigil watch: " << opts.error() << "\n";
    return 2;
  }
  opts->min_confidence = f.min_confidence;
  // Video frames are searched in one pass up to 1920x1080: tile passes on every frame would cost ten
  // times the work (photos are tiled from 1280 pixels); 4K frames are still tiled.
  opts->detector.tile_min_long_side = std::max(opts->detector.tile_min_long_side, kVideoTileMinLongSide);
  auto out = LineOutput::open(f.events);
  if (!out) {
    std::cerr << "vigil watch: " << out.error() << "\n";
    return 2;
  }
  if (!f.evidence_dir.empty()) {
    std::error_code ec;
    fs::create_directories(f.evidence_dir, ec);
    if (ec) {
      std::cerr << "vigil watch: cannot create " << f.evidence_dir << ": " << ec.message() << "\n";
      return 2;
    }
  }
  bool show = f.show;
#ifdef VIGIL_WATCH_HAVE_HIGHGUI
  if (show && !std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY")) {
    std::cerr << "vigil watch: warning: --show needs a display (DISPLAY is not set); not showing\n";
    show = false;
  }
#else
  if (show) {
    std::cerr << "vigil watch: warning: --show needs OpenCV's highgui, which this build lacks; not showing\n";
    show = false;
  }
#endif
  auto rec = Recognizer::load(*opts);
  if (!rec) {
    std::cerr << "vigil watch: " << rec.error() << "\n";
    return 2;
  }

  ShowBoard board;
  std::vector<std::unique_ptr<Annotator>> annotators;
  std::vector<Stream> streams;
  std::map<std::string, std::string> names;  // camera id -> name from the config
  int failed = 0;
  for (const auto& cam : cameras) {
    StreamOptions so;
    so.camera_id = cam.id;
    so.source = cam.source;
    so.source_options.stride = cam.stride;
    so.source_options.images_fps = cam.images_fps;
    so.source_options.reconnect_attempts_max = cam.reconnect_max;
    so.source_options.live = cam.live == "yes"  ? SourceOptions::Live::kYes
                             : cam.live == "no" ? SourceOptions::Live::kNo
                                                : SourceOptions::Live::kAuto;
    so.tracker.max_gap_s = cam.max_gap_s;
    so.tracker.min_frames = cam.min_frames;
    so.tracker.top_n = f.rec.top;
    so.tracker.preferred_country = cam.country.empty() ? opts->decode.preferred_country : cam.country;
    so.motion.enabled = cam.motion;
    so.motion_regions = cam.motion && f.rec.profile_value() == Profile::kEdge;
    if (cam.motion_threshold > 0) so.motion.pixel_threshold = cam.motion_threshold;
    if (cam.motion_area >= 0) so.motion.area_min = cam.motion_area;
    so.roi = cam.roi;
    so.roi_crop = cam.roi_crop;
    so.plate_width_min = cam.min_plate_width;
    so.queue_size = cam.queue;
    so.timings = f.bench;
    // The events' clock depends on the source: open it first.
    auto source = open_source(cam.source, so.source_options);
    if (!source) {
      std::cerr << "vigil watch: " << cam.id << ": " << source.error() << "\n";
      ++failed;
      continue;
    }
    JsonLinesOptions jo;
    jo.clock = (*source)->live() ? EventClock::kWall : EventClock::kStream;
    jo.evidence_dir = f.evidence_dir;
    if (!f.annotate.empty() || show) {
      annotators.push_back(std::make_unique<Annotator>());
      Annotator* annotator = annotators.back().get();
      annotator->camera_id = cam.id;
      annotator->path = f.annotate.empty() ? "" : annotate_path(f.annotate, cam.id, cameras.size() > 1);
      annotator->board = show ? &board : nullptr;
      const double fps = (*source)->stats().fps;
      annotator->fps = (*source)->live() ? (fps > 0 ? fps : 10.0) : (fps > 0 ? fps / cam.stride : 10.0);
      so.on_frame = [annotator](const StreamFrame& sf) { annotator->on_frame(sf); };
    }
    auto stream = Stream::open(*rec, std::move(*source), so, {std::make_shared<JsonLinesSink>(*out, jo)});
    if (!stream) {
      std::cerr << "vigil watch: " << cam.id << ": " << stream.error() << "\n";
      ++failed;
      continue;
    }
    streams.push_back(std::move(*stream));
    names[cam.id] = cam.name;
  }
  if (streams.empty()) return 1;

  std::size_t expected = 0;
  bool all_files = true;
  for (auto& s : streams) {
    const auto st = s.stats().source;
    if (s.live() || st.frames_expected <= 0) all_files = false;
    expected += std::size_t(std::max<std::int64_t>(0, st.frames_expected));
  }
  Progress progress(all_files ? expected : 0, "frames");
  for (auto& s : streams) s.start();

  bool stopping = false;
  while (true) {
    timespec wait{0, 100 * 1000 * 1000};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      if (stopping) {
        progress.finish();
        std::cerr << "vigil watch: second signal; exiting without waiting\n";
        std::fflush(nullptr);
        std::_Exit(130);
      }
      stopping = true;
      progress.finish();
      std::cerr << "vigil watch: " << (sig == SIGINT ? "interrupted" : "terminated")
                << "; finishing open tracks (signal again to exit at once)\n";
      for (auto& s : streams) s.stop();
    }
    bool done = true;
    std::size_t frames = 0;
    for (auto& s : streams) {
      done = done && s.finished();
      frames += std::size_t(s.stats().source.frames_read);
    }
    if (!stopping) progress.tick(std::min(frames, expected));
#ifdef VIGIL_WATCH_HAVE_HIGHGUI
    if (show) {
      std::map<std::string, cv::Mat> latest;
      {
        std::lock_guard lock(board.mutex);
        latest.swap(board.latest);
      }
      for (auto& [id, img] : latest) cv::imshow("vigil watch: " + id, img);
      const int key = cv::waitKey(1);
      if ((key == 'q' || key == 27) && !stopping) {
        stopping = true;
        for (auto& s : streams) s.stop();
      }
    }
#endif
    if (done) break;
  }
  for (auto& s : streams) s.wait();
  progress.finish();
  annotators.clear();  // closes the annotated videos

  StreamStats total;
  StreamTimings timings;
  for (auto& s : streams) {
    const StreamStats st = s.stats();
    if (streams.size() > 1)
      std::cerr << summary_line(
                       "vigil watch: " + s.camera_id() +
                           (names[s.camera_id()].empty() ? "" : " \"" + names[s.camera_id()] + "\"") + " (" +
                           s.description() + ")",
                       st)
                << "\n";
    total.source.frames_read += st.source.frames_read;
    total.source.reconnects += st.source.reconnects;
    total.source.frames_stale += st.source.frames_stale;
    total.frames_decoded += st.frames_decoded;
    total.frames_processed += st.frames_processed;
    total.frames_recognized += st.frames_recognized;
    total.frames_skipped_motion += st.frames_skipped_motion;
    total.frames_dropped += st.frames_dropped;
    total.recognition_errors += st.recognition_errors;
    total.events += st.events;
    total.recognize_s += st.recognize_s;
    total.wall_s = std::max(total.wall_s, st.wall_s);
    const StreamTimings tm = s.timings();
    auto append = [](std::vector<double>& to, const std::vector<double>& from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    append(timings.recognize_ms, tm.recognize_ms);
    append(timings.frame_latency_ms, tm.frame_latency_ms);
    append(timings.event_latency_ms, tm.event_latency_ms);
    append(timings.last_seen_latency_ms, tm.last_seen_latency_ms);
    const std::string err = s.error();
    if (!err.empty()) {
      std::cerr << "vigil watch: " << s.camera_id() << ": " << err
                << (st.events ? " (the events up to there were written)" : "") << "\n";
      ++failed;
    }
  }
  std::cerr << summary_line("vigil watch", total) << "\n";
  if (f.bench) {
    const std::string b = "vigil watch: bench: ";
    std::cerr << b << latency_line("recognize() per frame", timings.recognize_ms) << "\n"
              << b
              << latency_line("frame decoded -> processed (queue wait included)", timings.frame_latency_ms)
              << "\n"
              << b
              << latency_line("frame decoded -> event written (the frame that ended the track)",
                              timings.event_latency_ms)
              << "\n"
              << b
              << latency_line("plate last seen -> event written (max-gap wait included)",
                              timings.last_seen_latency_ms)
              << "\n";
  }
  return failed ? 1 : 0;
}

}  // namespace

void register_watch(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<WatchFlags>();
  auto* sub = app.add_subcommand(
      "watch",
      "Plate events (JSON Lines, one per vehicle pass) from video files, image folders, cameras and "
      "streams.\n"
      "SIGINT/SIGTERM finish the open tracks, write their events and exit with status 0; the status is 1\n"
      "when a source failed (not a video, truncated, gave up reconnecting), 2 for bad flags or config.");
  sub->add_option("sources", f->sources,
                  "Video files, image folders or globs, devices (/dev/video0, 0), URLs (rtsp://, http://), "
                  "GStreamer pipelines");
  sub->add_option("--source", f->more_sources, "A source (repeatable), as the positional arguments")
      ->allow_extra_args(false);
  sub->add_option("--config", f->config,
                  "JSON file: {\"cameras\": [{\"id\", \"source\", \"roi\": [[x,y],...], \"min_plate_width\", "
                  "\"stride\", \"motion\", ...}]}");
  sub->add_option("--events", f->events, "Write events to this JSON Lines file (default: standard output)");
  sub->add_option("--evidence", f->evidence_dir,
                  "Write each event's plate crop and frame (JPEG) into this folder");
  sub->add_option(
      "--annotate", f->annotate,
      "Write a video with tracks drawn (mp4v); with several cameras, one file each (NAME-ID.mp4)");
  sub->add_flag("--show", f->show, "Show the annotated frames in a window (needs a display)");
  sub->add_option("--camera-id", f->camera_ids, "Camera id in the events: one, or one per source (repeat it)")
      ->allow_extra_args(false);
  sub->add_option("--stride", f->stride, "Files and image folders: process every Nth frame")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  sub->add_flag("--no-motion", f->no_motion, "Recognise every frame (no motion gating)");
  sub->add_option("--min-plate-width", f->min_plate_width, "Ignore plates narrower than this (pixels)")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--min-confidence", f->min_confidence, "Ignore reads with less confidence (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--min-frames", f->min_frames, "Tracks read in fewer frames are noise, not events")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--max-gap", f->max_gap_s, "A track unseen this long ends (seconds)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  sub->add_option("--images-fps", f->images_fps, "Image folders: frames per second for timestamps")
      ->check(CLI::Range(0.01, 1000.0))
      ->capture_default_str();
  sub->add_option("--queue", f->queue, "Frames queued between decoding and recognition (0: 2 live, 4 files)")
      ->check(CLI::Range(0, 1000));
  sub->add_option("--reconnect-max", f->reconnect_max,
                  "Live sources: give up after this many failed reconnection attempts in a row (0: never)")
      ->check(CLI::Range(0, 1000000));
  sub->add_flag("--bench", f->bench, "Report per-frame and frame-to-event latency (median, p95)");
  f->rec.add_to(*sub);
  sub->callback([f, &exit_code] {
    f->sources.insert(f->sources.end(), f->more_sources.begin(), f->more_sources.end());
    exit_code = run(*f);
  });
}

}  // namespace vigil::cli
