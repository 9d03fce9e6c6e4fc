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

#include "camera_config.hpp"
#include "cli.hpp"
#include "vigil/video.hpp"
#if VIGIL_HAVE_SERVER
#include "vigil/outbox.hpp"
#endif

namespace fs = std::filesystem;

namespace vigil::cli {
namespace {

struct WatchFlags {
  std::vector<std::string> sources, more_sources;  // positional, --source
  std::string config, events = "-", evidence_dir, annotate;
  std::vector<std::string> camera_ids;
  bool show = false, no_motion = false, bench = false, check = false;
  int reread_every = StreamOptions{}.reread_every;
  int stride = 1, min_plate_width = 0, min_frames = 2, queue = 0, reconnect_max = 0;
  double max_gap_s = 1.0, images_fps = 10.0;
  float min_confidence = 0.10f;
  RecognizerFlags rec;
  // Upload to a registry (vigil serve) through an outbox file per camera.
  std::string server, token, outbox;
  double drain_s = 5.0, upload_retry_min_s = 1.0, upload_retry_max_s = 60.0;
  int upload_batch = 100;
};

// Video frames are searched in one pass up to 1920x1080: tile passes on every frame would cost ten times
// the work (photos are tiled from 1280 pixels); 4K frames are still tiled.
constexpr int kVideoTileMinLongSide = 1920;
// A plate grows as it comes closer, so video looks for plates from 60 px wide rather than a photo's 40: a 4K
// frame takes about a third of the tile passes (unless --smallest-plate says otherwise).
constexpr int kVideoSmallestPlate = 60;

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

// ---------------------------------------------------------------------------------------------------------
// Upload to a registry

// The outbox file of a camera that uploads: its own "outbox", else --outbox (the camera id added to the
// name when several cameras upload), else <id>.outbox next to the events file or in the current folder.
std::string outbox_path(const Camera& cam, const WatchFlags& f, bool several) {
  if (!cam.outbox.empty()) return cam.outbox;
  if (!f.outbox.empty()) return annotate_path(f.outbox, cam.id, several);
  std::string name;
  for (const char ch : cam.id)
    name += std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.' ? ch : '_';
  const fs::path dir = f.events.empty() || f.events == "-" ? fs::path() : fs::path(f.events).parent_path();
  return (dir / (name + ".outbox")).string();
}

#if VIGIL_HAVE_SERVER
std::string events_count(std::int64_t n) { return count(n, "event", "events"); }

struct Upload {
  std::string camera_id, server;
  std::shared_ptr<Outbox> outbox;
};

Result<std::shared_ptr<Outbox>> open_outbox(const Camera& cam, const WatchFlags& f, const std::string& path,
                                            EventClock clock) {
  OutboxOptions o;
  o.server = cam.server;
  o.token = cam.token;
  o.name = cam.id;
  o.clock = clock;
  o.batch_max = std::size_t(f.upload_batch);
  o.retry_min_s = f.upload_retry_min_s;
  o.retry_max_s = std::max(f.upload_retry_min_s, f.upload_retry_max_s);
  auto outbox = Outbox::open(path, o);
  if (!outbox) return Error{cam.id + ": " + outbox.error()};
  (*outbox)->start();  // what earlier runs left goes out now, too
  return outbox;
}

// Gives the uploads up to drain_s seconds to send what is pending (a signal ends the wait), stops them and
// reports each. Returns how many were refused by their server (wrong token or camera id).
int finish_uploads(std::vector<Upload>& uploads, double drain_s, const sigset_t& signals) {
  auto pending = [&] {
    std::int64_t n = 0;
    for (const auto& u : uploads)
      if (const auto st = u.outbox->stats(); !st.refused) n += st.pending;
    return n;
  };
  if (const std::int64_t n = pending(); n > 0 && drain_s > 0) {
    std::cerr << "vigil watch: sending the " << events_count(n) << " still pending (up to "
              << fmt("%g", drain_s) << " s, --drain-seconds)\n";
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                               std::chrono::duration<double>(drain_s));
    while (std::chrono::steady_clock::now() < deadline && pending() > 0) {
      timespec wait{0, 50 * 1000 * 1000};
      const int sig = sigtimedwait(&signals, nullptr, &wait);
      if (sig == SIGINT || sig == SIGTERM) {
        std::cerr << "vigil watch: signal: not waiting for the uploads\n";
        break;
      }
    }
  }
  int refused = 0;
  for (auto& u : uploads) {
    u.outbox->stop();
    const OutboxStats st = u.outbox->stats();
    std::string line =
        "vigil watch: " + u.camera_id + ": " + events_count(st.delivered) + " delivered to " + u.server;
    if (st.duplicates) line += " (" + std::to_string(st.duplicates) + " of them already there)";
    if (st.pending)
      line += "; " + events_count(st.pending) + " still pending in " + u.outbox->path() +
              ", sent at the next start";
    else
      line += "; none pending";
    if (st.rejected)
      line += "; " + events_count(st.rejected) +
              " refused by the server for good (see the dead_letter table of " + u.outbox->path() + ")";
    if (st.refused) {
      line += "; the server refused the token (" + st.last_error + "): check --token and the camera id";
      ++refused;
    } else if (st.pending && !st.last_error.empty()) {
      line += " (last error: " + st.last_error + ")";
    }
    std::cerr << line << "\n";
  }
  return refused;
}
#endif

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
  defaults.server = f.server;
  defaults.token = f.token;
  if (defaults.token.empty() && std::getenv("VIGIL_TOKEN")) defaults.token = std::getenv("VIGIL_TOKEN");
  std::vector<Camera> cameras;
  if (!f.config.empty()) {
    auto parsed = parse_camera_config(f.config, defaults);
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
  // No source but a server: send what the outboxes of the --camera-id cameras hold, then exit.
  const bool drain_only = cameras.empty() && !f.server.empty();
  if (drain_only)
    for (const auto& id : f.camera_ids.empty() ? std::vector<std::string>{"cam1"} : f.camera_ids) {
      Camera cam = defaults;
      cam.id = id;
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
  std::map<std::string, std::string> outboxes;  // camera id -> outbox file, for the cameras that upload
  {
    int uploading = 0;
    for (const auto& c : cameras) uploading += !c.server.empty();
    std::map<std::string, std::string> owner;  // outbox file -> camera id
    for (const auto& c : cameras) {
      if (c.server.empty()) continue;
#if !VIGIL_HAVE_SERVER
      std::cerr << "vigil watch: " << c.id << ": uploading to " << c.server
                << " needs a vigil built with SQLite, OpenSSL and cpp-httplib (this one is not)\n";
      return 2;
#endif
      if (c.token.empty()) {
        std::cerr << "vigil watch: " << c.id << ": " << c.server
                  << " needs a token: give --token (or VIGIL_TOKEN, or \"token\" in the config); make one "
                     "with: vigil serve token create --role camera --camera "
                  << c.id << "\n";
        return 2;
      }
      const std::string path = outbox_path(c, f, uploading > 1);
      if (const auto [it, fresh] = owner.emplace(fs::absolute(path).lexically_normal().string(), c.id);
          !fresh) {
        std::cerr << "vigil watch: cameras " << it->second << " and " << c.id << " would share the outbox "
                  << path << ": give each its own \"outbox\"\n";
        return 2;
      }
      outboxes[c.id] = path;
    }
  }

  auto opts = f.rec.to_options();
  if (!opts) {
    std::cerr << "vigil watch: " << opts.error() << "\n";
    return 2;
  }
  if (!cameras.empty() && (!cameras[0].region.empty() || !cameras[0].countries.empty())) {
    for (const auto& c : cameras) {
      if (c.region != cameras[0].region || c.countries != cameras[0].countries) {
        std::cerr << "vigil watch: " << c.origin << ": camera " << c.id
                  << " has another region or countries than camera " << cameras[0].id
                  << ": the cameras of one config share one recogniser; set \"region\"/\"countries\" once, beside "
                     "\"cameras\", or run a config per region\n";
        return 2;
      }
    }
    auto region = parse_region(cameras[0].region.empty() ? f.rec.region : cameras[0].region,
                               cameras[0].countries.empty() ? f.rec.countries : cameras[0].countries);
    if (!region) {
      std::cerr << "vigil watch: " << cameras[0].origin << ": " << region.error() << "\n";
      return 2;
    }
    opts->region = std::move(*region);
  }
  opts->min_confidence = f.min_confidence;
  opts->detector.tile_min_long_side = std::max(opts->detector.tile_min_long_side, kVideoTileMinLongSide);
  if (f.rec.smallest_plate == 0) opts->detector.smallest_plate = kVideoSmallestPlate;
  if (f.check) {
    // Validation only, for a camera box's config before (re)starting its unit: no source is opened.
    std::cout << (f.config.empty() ? "command line" : f.config) << ": OK, "
              << (cameras.size() == 1 ? "1 camera" : std::to_string(cameras.size()) + " cameras") << "\n";
    for (const auto& c : cameras)
      std::cout << "  " << c.id << (c.name.empty() ? "" : " \"" + c.name + "\"") << ": "
                << source_for_display(c.source)
                << (c.roi.empty() ? "" : ", roi " + std::to_string(c.roi.size()) + " points")
                << (c.server.empty() ? "" : ", events to " + c.server) << "\n";
    return 0;
  }
#if VIGIL_HAVE_SERVER
  if (drain_only) {
    std::vector<Upload> uploads;
    for (const auto& c : cameras) {
      auto outbox = open_outbox(c, f, outboxes.at(c.id), EventClock::kWall);
      if (!outbox) {
        std::cerr << "vigil watch: " << outbox.error() << "\n";
        return 2;
      }
      uploads.push_back({c.id, c.server, *outbox});
    }
    const int refused = finish_uploads(uploads, f.drain_s, signals);
    bool left = false;
    for (const auto& u : uploads) left = left || u.outbox->stats().pending > 0;
    return refused || left ? 1 : 0;
  }
#endif
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
#if VIGIL_HAVE_SERVER
  std::vector<Upload> uploads;
#endif
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
    so.tracker.preferred_country =
        cam.country.empty() ? opts->decode.preferred_country : canonical_country(cam.country);
    so.motion.enabled = cam.motion;
    so.motion_regions = cam.motion && f.rec.profile_value() == Profile::kEdge;
    if (cam.motion_threshold > 0) so.motion.pixel_threshold = cam.motion_threshold;
    if (cam.motion_area >= 0) so.motion.area_min = cam.motion_area;
    so.roi = cam.roi;
    so.roi_crop = cam.roi_crop;
    so.plate_width_min = cam.min_plate_width;
    so.queue_size = cam.queue;
    so.timings = f.bench;
    so.reread_every = f.reread_every;
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
    // The outbox first: an event in the events file is always in the outbox, too.
    std::vector<std::shared_ptr<EventSink>> sinks;
#if VIGIL_HAVE_SERVER
    if (!cam.server.empty()) {
      auto outbox = open_outbox(cam, f, outboxes.at(cam.id), jo.clock);
      if (!outbox) {
        std::cerr << "vigil watch: " << outbox.error() << "\n";
        return 2;
      }
      uploads.push_back({cam.id, cam.server, *outbox});
      sinks.push_back(*outbox);
    }
#endif
    sinks.push_back(std::make_shared<JsonLinesSink>(*out, jo));
    auto stream = Stream::open(*rec, std::move(*source), so, std::move(sinks));
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
#if VIGIL_HAVE_SERVER
  failed += finish_uploads(uploads, f.drain_s, signals);
#endif
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
  std::string keys;
  for (const auto& k : camera_config_keys()) keys += (keys.empty() ? "" : ", ") + k;
  sub->add_option("--config", f->config,
                  "Camera config (JSON, // comments allowed): one camera {\"source\", \"id\", \"name\", "
                  "\"roi\": [[x,y],...], \"min_plate_width\", ...} or {\"cameras\": [{...}, ...]}; keys: " +
                      keys + ". See /etc/vigil/cameras/example.json");
  sub->add_flag("--check", f->check,
                "Validate the config and flags, print the cameras and exit (0: valid, 2: not) without opening "
                "any source");
  sub->add_option("--events", f->events, "Write events to this JSON Lines file (default: standard output)");
  sub->add_option(
      "--server", f->server,
      "Also send every event, with its plate crop and frame, to this registry (vigil serve's URL, "
      "http(s)://HOST[:PORT]) through an outbox file that keeps them until the server has them; "
      "with no source, only send what the outbox of --camera-id holds");
  sub->add_option("--token", f->token,
                  "The camera's token for --server (default: $VIGIL_TOKEN; make one with vigil serve token "
                  "create --role camera --camera ID)");
  sub->add_option("--outbox", f->outbox,
                  "Outbox file (SQLite; default: ID.outbox next to --events, or in the current folder); with "
                  "several cameras, one file each (NAME-ID.outbox)");
  sub->add_option("--drain-seconds", f->drain_s,
                  "At the end (end of file, SIGINT/SIGTERM), wait up to this long for the outbox to empty; "
                  "what is left is sent at the next start")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  sub->add_option("--upload-batch", f->upload_batch, "Events per upload request")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("--upload-retry-min", f->upload_retry_min_s,
                  "Wait after a failed upload (seconds); doubles, with jitter, per failure in a row")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  sub->add_option("--upload-retry-max", f->upload_retry_max_s,
                  "Longest wait between upload attempts (seconds)")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
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
  sub->add_option("--reread-every", f->reread_every,
                  "A tracked plate read surely is read again only every N-th frame; in the others it is only "
                  "located (busy traffic costs less). 1: read every plate in every frame")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
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
