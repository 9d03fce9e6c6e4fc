// The per-camera pipeline: a decoding thread feeds a bounded queue; a recognition thread gates frames on
// motion, recognises, tracks and hands events to the sinks.
#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "video/frame_queue.hpp"
#include "video/motion.hpp"
#include "vigil/video.hpp"

namespace vigil {

struct Stream::Impl {
  Impl(const Recognizer& r, StreamOptions o, std::vector<std::shared_ptr<EventSink>> s,
       std::unique_ptr<FrameSource> src)
      : recognizer(r),
        options(std::move(o)),
        sinks(std::move(s)),
        source(std::move(src)),
        tracker(recognizer.formats(), tracker_options(options)),
        queue(queue_capacity(options, source->live()),
              source->live() ? QueueFull::kDropOldest : QueueFull::kBlock) {}

  static TrackerOptions tracker_options(const StreamOptions& o) {
    TrackerOptions t = o.tracker;
    t.camera_id = o.camera_id;
    return t;
  }
  static std::size_t queue_capacity(const StreamOptions& o, bool live) {
    return o.queue_size > 0 ? std::size_t(o.queue_size) : live ? 2 : 4;
  }

  void decode_loop();
  void recognize_loop();
  void process(const Frame& frame, MotionGate& gate, double& last_recognized_t, cv::Rect roi_rect);
  std::vector<cv::Rect> detection_regions(const MotionGate& gate, const cv::Rect& area) const;
  // The open tracks read surely enough not to be read again in this frame (StreamOptions::reread_every),
  // in the coordinates of the image recognised (the frame, or its ROI crop at `origin`).
  std::vector<KnownPlate> known_plates(std::int64_t frame_index, cv::Point origin) const;
  // What makes a track's read sure (see StreamOptions::reread_every).
  static constexpr int kSettledReads = 3;
  static constexpr float kSettledConfidence = 0.9f;
  void deliver(const std::vector<PlateEvent>& events, const Frame* trigger);

  const Recognizer& recognizer;
  StreamOptions options;
  std::vector<std::shared_ptr<EventSink>> sinks;
  std::unique_ptr<FrameSource> source;
  PlateTracker tracker;
  BoundedQueue<Frame> queue;

  std::thread decoder, worker;
  std::mutex join_mutex;
  std::atomic<bool> started{false}, stop_requested{false}, decode_done{false}, work_done{false};
  std::chrono::steady_clock::time_point start_time, end_time;

  // With timings: (t, decoded_at) of the recent frames, to find when an event's last sighting was decoded.
  std::deque<std::pair<double, std::chrono::steady_clock::time_point>> recent;

  mutable std::mutex mutex;  // guards stats, timings and error
  StreamStats stats;
  StreamTimings timings;
  std::string error;
};

void apply_profile(Profile profile, StreamOptions& options) {
  if (profile == Profile::kEdge) {
    options.motion.enabled = true;
    options.motion_regions = true;
  }
}

void Stream::Impl::decode_loop() {
  while (true) {
    Frame frame;
    const ReadStatus status = source->read(frame);
    if (status == ReadStatus::kFrame) {
      {
        std::lock_guard lock(mutex);
        ++stats.frames_decoded;
      }
      if (!queue.push(std::move(frame))) break;
      continue;
    }
    if (status == ReadStatus::kError) {
      std::lock_guard lock(mutex);
      error = source->error();
    }
    break;
  }
  queue.close();
  decode_done = true;
}

void Stream::Impl::deliver(const std::vector<PlateEvent>& events, const Frame* trigger) {
  for (const auto& event : events) {
    for (const auto& sink : sinks) {
      try {
        sink->on_event(event);
      } catch (const std::exception& e) {
        vigil::log(LogLevel::kError, options.camera_id + ": event sink failed: " + e.what());
      } catch (...) {
        vigil::log(LogLevel::kError, options.camera_id + ": event sink failed");
      }
    }
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex);
    ++stats.events;
    if (!options.timings) continue;
    if (trigger)
      timings.event_latency_ms.push_back(
          std::chrono::duration<double, std::milli>(now - trigger->decoded_at).count());
    for (auto it = recent.rbegin(); it != recent.rend(); ++it)
      if (it->first <= event.last_seen) {
        timings.last_seen_latency_ms.push_back(
            std::chrono::duration<double, std::milli>(now - it->second).count());
        break;
      }
  }
}

std::vector<KnownPlate> Stream::Impl::known_plates(std::int64_t frame_index, cv::Point origin) const {
  std::vector<KnownPlate> known;
  if (options.reread_every <= 1) return known;
  for (const auto& t : tracker.open_tracks()) {
    const bool settled = t.frames >= kSettledReads && t.best_confidence >= kSettledConfidence &&
                         recognizer.formats().likeliest(t.best_text, options.tracker.preferred_country);
    // staggered by track, so the plates in view are not all read again in the same frame
    if (!settled || (frame_index + t.id) % options.reread_every == 0) continue;
    known.push_back({t.box - origin, t.best_text, t.best_confidence, "", 0.0f});
  }
  return known;
}

std::vector<cv::Rect> Stream::Impl::detection_regions(const MotionGate& gate, const cv::Rect& area) const {
  std::vector<cv::Rect> regions;
  const cv::Rect changed = gate.changed_area();
  if (!changed.empty()) {
    // A margin for a plate at the edge of the changed pixels (a car's front moving into view).
    const int margin = std::max(area.width, area.height) / 32;
    regions.push_back(cv::Rect(changed.x - margin, changed.y - margin, changed.width + 2 * margin,
                               changed.height + 2 * margin) &
                      area);
  }
  for (const auto& t : tracker.open_tracks()) {
    // Where the plate can be by now: its last box grown by its own size on every side.
    const cv::Rect& b = t.box;
    regions.push_back(cv::Rect(b.x - b.width, b.y - b.height, 3 * b.width, 3 * b.height) & area);
  }
  // Overlapping regions become their union, so no part of the frame is searched twice.
  for (bool merged = true; merged;) {
    merged = false;
    for (std::size_t i = 0; i < regions.size() && !merged; ++i)
      for (std::size_t j = i + 1; j < regions.size(); ++j)
        if ((regions[i] & regions[j]).area() > 0) {
          regions[i] |= regions[j];
          regions.erase(regions.begin() + std::ptrdiff_t(j));
          merged = true;
          break;
        }
  }
  std::erase_if(regions, [](const cv::Rect& r) { return r.empty(); });
  return regions;
}

void Stream::Impl::process(const Frame& frame, MotionGate& gate, double& last_recognized_t,
                           cv::Rect roi_rect) {
  if (options.timings) {
    recent.emplace_back(frame.t, frame.decoded_at);
    if (recent.size() > 4096) recent.pop_front();
  }
  bool recognize = true;
  if (options.motion.enabled) {
    const double changed = gate.changed_fraction(frame.image);
    double keepalive = options.motion.keepalive_s;
    if (options.tracker.max_gap_s > 0) keepalive = std::min(keepalive, options.tracker.max_gap_s / 2);
    // A stopped car makes no motion, yet its track must see reads or it ends after max_gap_s.
    recognize =
        gate.moving(changed) || (!tracker.open_tracks().empty() && frame.t - last_recognized_t >= keepalive);
  }
  std::vector<Plate> kept;
  std::vector<PlateEvent> events;
  double recognize_ms = -1;
  std::int64_t ignored = 0;
  bool failed = false;
  if (recognize) {
    const cv::Rect full(0, 0, frame.image.cols, frame.image.rows);
    const cv::Rect area = roi_rect.area() > 0 ? (roi_rect & full) : full;
    Recognition r;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      FrameHints hints;
      const bool regions = options.motion_regions && options.motion.enabled;
      if (regions) hints.regions = detection_regions(gate, area);
      hints.known = known_plates(frame.index, regions ? cv::Point() : area.tl());
      r = recognizer.recognize(regions || area == full ? frame.image : frame.image(area), hints);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    if (!r.error.empty()) {
      failed = true;
      vigil::log(LogLevel::kWarn,
                 options.camera_id + ": frame " + std::to_string(frame.index) + ": " + r.error);
    }
    recognize_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!failed) {
      const cv::Point offset = options.motion_regions && options.motion.enabled ? cv::Point() : area.tl();
      for (auto& p : r.plates) {
        p.box.x += offset.x;
        p.box.y += offset.y;
        for (auto& c : p.corners) c += cv::Point2f(float(offset.x), float(offset.y));
        const cv::Point2f centre(p.box.x + p.box.width * 0.5f, p.box.y + p.box.height * 0.5f);
        const bool inside = options.roi.size() < 3 || cv::pointPolygonTest(options.roi, centre, false) >= 0;
        if (!inside || p.box.width < options.plate_width_min) {
          ++ignored;
          continue;
        }
        kept.push_back(std::move(p));
      }
      events = tracker.update(kept, frame.t, frame.image);
      gate.accept();
      last_recognized_t = frame.t;
    }
  }
  if (!recognize || failed) events = tracker.tick(frame.t);
  {
    std::lock_guard lock(mutex);
    ++stats.frames_processed;
    if (recognize && !failed) {
      ++stats.frames_recognized;
      stats.recognize_s += recognize_ms / 1000.0;
      if (options.timings) timings.recognize_ms.push_back(recognize_ms);
    } else {
      ++stats.frames_skipped_motion;
    }
    if (failed) ++stats.recognition_errors;
    stats.plates_kept += std::int64_t(kept.size());
    stats.plates_ignored += ignored;
  }
  deliver(events, &frame);
  if (options.on_frame) {
    const std::vector<TrackView> tracks = tracker.open_tracks();
    try {
      options.on_frame(StreamFrame{frame, recognize && !failed, kept, tracks, options.roi});
    } catch (const std::exception& e) {
      vigil::log(LogLevel::kError, options.camera_id + ": frame callback failed: " + e.what());
    }
  }
  if (options.timings) {
    std::lock_guard lock(mutex);
    timings.frame_latency_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - frame.decoded_at)
            .count());
  }
}

void Stream::Impl::recognize_loop() {
  MotionGate gate(options.motion, options.roi);
  cv::Rect roi_rect;
  if (options.roi.size() >= 3 && options.roi_crop) roi_rect = cv::boundingRect(options.roi);
  double last_recognized_t = -std::numeric_limits<double>::infinity();
  while (auto frame = queue.pop()) {
    if (stop_requested) break;
    process(*frame, gate, last_recognized_t, roi_rect);
  }
  deliver(tracker.flush(), nullptr);
  {
    std::lock_guard lock(mutex);
    end_time = std::chrono::steady_clock::now();
  }
  work_done = true;
}

Result<Stream> Stream::open(const Recognizer& recognizer, StreamOptions options,
                            std::vector<std::shared_ptr<EventSink>> sinks) {
  auto source = open_source(options.source, options.source_options);
  if (!source) return Error{source.error()};
  return open(recognizer, std::move(*source), std::move(options), std::move(sinks));
}

Result<Stream> Stream::open(const Recognizer& recognizer, std::unique_ptr<FrameSource> source,
                            StreamOptions options, std::vector<std::shared_ptr<EventSink>> sinks) {
  if (!source) return Error{"a stream needs a source"};
  if (options.camera_id.empty()) return Error{"a stream needs a camera id"};
  if (!options.roi.empty() && options.roi.size() < 3)
    return Error{options.camera_id + ": the region of interest needs at least 3 points"};
  for (const auto& s : sinks)
    if (!s) return Error{options.camera_id + ": null event sink"};
  auto impl = std::make_unique<Impl>(recognizer, std::move(options), std::move(sinks), std::move(source));
  return Stream(std::move(impl));
}

Stream::Stream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      stop();
      wait();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Stream::~Stream() {
  if (!impl_) return;
  stop();
  wait();
}

void Stream::start() {
  Impl& s = *impl_;
  if (s.started.exchange(true)) return;
  s.start_time = std::chrono::steady_clock::now();
  s.worker = std::thread([&s] { s.recognize_loop(); });
  s.decoder = std::thread([&s] { s.decode_loop(); });
}

void Stream::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  s.stop_requested = true;
  s.source->interrupt();
  s.queue.close_and_clear();
}

void Stream::wait() {
  if (!impl_) return;
  Impl& s = *impl_;
  std::lock_guard lock(s.join_mutex);
  if (s.decoder.joinable()) s.decoder.join();
  if (s.worker.joinable()) s.worker.join();
}

bool Stream::finished() const { return impl_->started && impl_->decode_done && impl_->work_done; }

const std::string& Stream::camera_id() const { return impl_->options.camera_id; }
bool Stream::live() const { return impl_->source->live(); }
SourceKind Stream::source_kind() const { return impl_->source->kind(); }
const std::string& Stream::description() const { return impl_->source->description(); }

StreamTimings Stream::timings() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->timings;
}

std::string Stream::error() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->error;
}

StreamStats Stream::stats() const {
  const Impl& s = *impl_;
  StreamStats out;
  {
    std::lock_guard lock(s.mutex);
    out = s.stats;
    if (s.started) {
      const auto end = s.work_done ? s.end_time : std::chrono::steady_clock::now();
      out.wall_s = std::chrono::duration<double>(end - s.start_time).count();
    }
  }
  out.source = s.source->stats();
  out.frames_dropped = s.queue.dropped();
  return out;
}

}  // namespace vigil
