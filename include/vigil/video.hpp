// Video: frames from files, image folders, cameras and network streams, and a per-camera pipeline that turns
// them into plate events, one per vehicle pass.
//
//   auto rec = vigil::Recognizer::load();                 // once, shared by every stream
//   auto out = vigil::LineOutput::open("events.jsonl");  // "" or "-": standard output
//   vigil::StreamOptions opt;
//   opt.camera_id = "gate-1";
//   opt.source = "rtsp://10.0.0.5/stream1";              // or a file, a folder, "/dev/video0", "0", ...
//   vigil::JsonLinesOptions jo;
//   jo.clock = vigil::EventClock::kWall;                  // a camera: ISO 8601 times
//   auto stream = vigil::Stream::open(*rec, opt, {std::make_shared<vigil::JsonLinesSink>(*out, jo)});
//   if (!stream) { std::cerr << stream.error() << "\n"; return 1; }
//   stream->start();
//   ...                                                   // events arrive at the sink
//   stream->stop();                                       // e.g. on SIGINT: open tracks are flushed
//   stream->wait();
//
// Thread-safety: a Stream runs two threads of its own (decoding, recognition); its public calls are
// thread-safe. Several streams may share one Recognizer (recognize() is thread-safe) and one sink (sinks
// must then be thread-safe; the ones here are). A FrameSource is used from one thread, except interrupt()
// and stats().
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "vigil/common.hpp"
#include "vigil/recognizer.hpp"
#include "vigil/tracker.hpp"

namespace vigil {

// ---------------------------------------------------------------------------------------------------------
// Frame sources

// One decoded frame.
struct Frame {
  cv::Mat image;           // BGR, owned by the frame (a source never reuses it)
  double t = 0.0;          // seconds: from the stream's start for files and image sequences (the container's
                           // clock), Unix time (wall clock) for live sources; non-decreasing per source
  std::int64_t index = 0;  // 0-based position in the source, counting frames skipped by stride
  std::chrono::steady_clock::time_point decoded_at;  // when the source produced it (for latency figures)
};

enum class SourceKind {
  kFile,      // a video file (mp4, mkv, avi, mov, ... through FFmpeg)
  kImages,    // an image folder, a glob ("frames/*.jpg") or a single image, in natural sort order
  kDevice,    // a V4L2 device path ("/dev/video0") or index ("0")
  kNetwork,   // rtsp://, rtmp://, http(s):// (MJPEG or other FFmpeg-readable streams), udp://, tcp://
  kPipeline,  // a GStreamer pipeline ("... ! appsink"), when OpenCV was built with GStreamer
};
const char* to_string(SourceKind kind);

struct SourceOptions {
  int stride = 1;            // files and image sequences: keep every Nth frame (1: all); live sources
                             // ignore it (they drop frames when recognition falls behind instead)
  double images_fps = 10.0;  // image sequences: frame rate that gives their timestamps (frames/second)
  enum class Live { kAuto, kYes, kNo };
  Live live = Live::kAuto;         // kAuto: devices, network streams and pipelines are live, files are not;
                                   // kYes makes a file behave like a camera (wall clock, reconnects)
  double reconnect_delay_s = 0.5;  // live: first wait after a failed open or read (seconds)
  double reconnect_delay_max_s = 10.0;  // live: the wait doubles after each failure up to this (seconds)
  int reconnect_attempts_max = 0;       // live: consecutive failed attempts before giving up; 0: never
  int open_timeout_ms = 10000;          // network sources: connection timeout (milliseconds)
  int read_timeout_ms = 10000;          // network sources: a read blocked this long fails (milliseconds)
  bool drop_repeated = true;  // live: a frame identical to the previous one (a frozen feed, a backend
                              // returning its last buffer again) is counted as stale and not returned
};

enum class ReadStatus {
  kFrame,    // `frame` holds the next frame
  kEnd,      // the source ended normally (end of a file or image sequence)
  kStopped,  // interrupt() was called
  kError,    // the source failed: error() says why (a truncated file, a live source that gave up)
};

// Counters of a source; all counts since it was opened.
struct SourceStats {
  std::int64_t frames_read = 0;        // frames taken from the source, including those skipped by stride
  std::int64_t frames_returned = 0;    // frames returned by read()
  std::int64_t frames_stale = 0;       // live: repeated frames not returned (see drop_repeated)
  std::int64_t frames_unreadable = 0;  // image sequences: files that could not be decoded (skipped)
  std::int64_t frames_expected = -1;   // files: the container's frame count; -1 when unknown
  std::int64_t outages = 0;            // live: times the source was lost or could not be opened
  std::int64_t reconnects = 0;         // live: times it came back after an outage
  double outage_s = 0.0;               // live: total seconds without a source
  double fps = 0.0;                    // nominal frames/second of the source; 0 when unknown
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Blocks until the next frame (live sources: reconnecting with back-off while the source is down,
  // logging each outage). Never throws.
  virtual ReadStatus read(Frame& frame) = 0;
  // Makes a blocked or later read() return kStopped; a network read in progress may take up to
  // read_timeout_ms to notice. Thread-safe.
  virtual void interrupt() = 0;
  virtual bool live() const = 0;
  virtual SourceKind kind() const = 0;
  // The spec as given, with a password in a URL replaced by "***" (safe to log).
  virtual const std::string& description() const = 0;
  // Why read() returned kError; "" otherwise.
  virtual std::string error() const = 0;
  virtual SourceStats stats() const = 0;  // thread-safe
};

// Opens a source from a spec: a video file, an image file, folder or glob, a device path or index, a
// URL, or a GStreamer pipeline (contains " ! "). Files are opened now, and fail with a message a user can
// act on: "no such file", "not a video (starts with "%PDF-1.4")", "damaged or truncated video (the MP4
// index is missing)". Live sources connect on the first read() and never fail here for a connection
// problem (they reconnect); a malformed spec does fail ("GStreamer pipelines need OpenCV built with
// GStreamer").
Result<std::unique_ptr<FrameSource>> open_source(const std::string& spec, const SourceOptions& options = {});

// ---------------------------------------------------------------------------------------------------------
// Events

// Receives the plate events of one or more streams. The seam for outputs: a JSON Lines file, an upload to
// a server, a database.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Called once per event, on the recognition thread of the stream that produced it; must be thread-safe
  // when the sink is shared between streams, and should not block for long (the stream waits for it).
  // Exceptions thrown here are caught and logged by the stream.
  virtual void on_event(const PlateEvent& event) = 0;
};

// A file or standard output that threads append whole lines to, flushed after every line.
class LineOutput {
 public:
  // path "" or "-": standard output. A file is truncated unless `append`. Fails with a message naming
  // the file when it cannot be opened.
  static Result<std::shared_ptr<LineOutput>> open(const std::string& path, bool append = false);
  ~LineOutput();
  LineOutput(const LineOutput&) = delete;
  LineOutput& operator=(const LineOutput&) = delete;
  // Writes `line` and a newline, then flushes. Thread-safe. False when the write failed (logged once).
  bool write_line(const std::string& line);
  const std::string& path() const { return path_; }

 private:
  LineOutput(std::FILE* file, bool owned, std::string path);
  std::mutex mutex_;
  std::FILE* file_;
  bool owned_;
  bool failed_ = false;
  std::string path_;
};

// Which clock an event's first_seen/last_seen are on.
enum class EventClock {
  kStream,  // seconds from the stream's start (files, image sequences)
  kWall,    // Unix time (live sources); written as ISO 8601 UTC
};

struct EvidencePaths {
  std::string plate;  // <dir>/<id>-plate.jpg: the best read's plate crop
  std::string frame;  // <dir>/<id>-frame.jpg: the best read's frame, long side <= 640 pixels
};

// Writes the event's best crop and thumbnail as JPEG files into `dir` (created when missing). Fails with
// a message naming the file when the event has no images or a file cannot be written.
Result<EvidencePaths> write_evidence(const PlateEvent& event, const std::string& dir, int jpeg_quality = 90);

// One event as a single-line JSON object (no newline):
//   {"id","camera_id","text","confidence","country" (null when none),"country_confidence","fits_format",
//    "candidates":[{"text","confidence","country"}],"first_seen","last_seen","first_seen_s","last_seen_s",
//    "frames","direction" (null when unknown),"box":[x,y,w,h],"evidence":{"plate","frame"}|null}
// first_seen/last_seen are numbers (seconds) on the stream clock and ISO 8601 UTC strings
// ("2024-05-01T12:34:56.789Z") on the wall clock; first_seen_s/last_seen_s are always numbers.
std::string event_to_json(const PlateEvent& event, EventClock clock, const EvidencePaths* evidence = nullptr);

// "2024-05-01T12:34:56.789Z" from Unix seconds.
std::string iso8601_utc(double unix_seconds);

struct JsonLinesOptions {
  EventClock clock = EventClock::kStream;
  std::string evidence_dir;  // "" : no evidence images; else written there and named in the event
  int jpeg_quality = 90;     // evidence JPEG quality 0..100
};

// Writes each event as a JSON line to a LineOutput (which several sinks may share, e.g. one per camera,
// each with its own clock). Thread-safe.
class JsonLinesSink : public EventSink {
 public:
  JsonLinesSink(std::shared_ptr<LineOutput> out, JsonLinesOptions options = {});
  void on_event(const PlateEvent& event) override;

 private:
  std::shared_ptr<LineOutput> out_;
  JsonLinesOptions options_;
};

// ---------------------------------------------------------------------------------------------------------
// Per-camera pipeline

// Motion gating: a frame is recognised only when it differs enough from the last recognised frame.
struct MotionOptions {
  bool enabled = true;
  int width = 160;           // frames are compared downscaled to this width, in grey (pixels)
  int pixel_threshold = 24;  // a pixel changed when its grey level moved by more than this (0..255)
  int dilate = 1;            // 3x3 dilations of the changed-pixel mask (joins a car's fragments)
  double area_min = 0.002;   // fraction (0..1) of the compared pixels (the ROI's, when set) that must
                             // change for a frame to be recognised
  double keepalive_s = 0.5;  // while tracks are open, recognise at least this often even without motion
                             // (seconds), so a stopped car's track does not end; capped at half the
                             // tracker's max_gap_s
};

struct StreamFrame;

struct StreamOptions {
  std::string camera_id = "cam";  // names the stream in events and log messages
  std::string source;             // a spec for open_source()
  SourceOptions source_options;
  TrackerOptions tracker;  // its camera_id is replaced by camera_id
  MotionOptions motion;
  std::vector<cv::Point2f> roi;  // region of interest: a polygon (>= 3 points) in frame pixels; plates
                                 // whose box centre is outside are ignored; empty: the whole frame
  bool roi_crop = true;          // recognise only the ROI's bounding rectangle (faster)
  // Run the detector only where the frame changed since the last recognised frame and around the open
  // tracks (each at the full frame's scale) instead of over the whole frame; needs motion gating.
  // Cuts the detector's work to the moving cars' share of the frame.
  bool motion_regions = false;
  // A tracked plate read surely (in at least 3 frames, its best text fitting a format, a read of it at
  // least 0.9 sure) is read again only in every reread_every-th frame; in the others its detection is
  // matched to it and not read (FrameHints::known, Plate::reused). Bounds a busy frame's cost, which is
  // mostly reading the plates in view. 1: every plate is read in every frame.
  int reread_every = 5;
  int plate_width_min = 0;       // plates narrower than this are ignored (pixels)
  int queue_size = 0;            // frames between decoding and recognition; 0: 2 for live sources, 4 for
                                 // files. Full queue: live sources drop the oldest frame, files wait.
  bool timings = false;          // keep latency samples (Stream::timings(), for benchmarks)
  // Called on the recognition thread for every frame taken from the queue (after the tracker saw it),
  // e.g. to draw and write an annotated video. Keep it short: the pipeline waits for it.
  std::function<void(const StreamFrame&)> on_frame;
};

// What the recognition thread did with one frame; the references are valid during on_frame only.
// The profile's stream settings (see Profile in recognizer.hpp): kEdge turns motion gating and
// motion_regions on.
void apply_profile(Profile profile, StreamOptions& options);

struct StreamFrame {
  const Frame& frame;
  bool recognized;                       // false: skipped by motion gating (the tracker was only aged)
  const std::vector<Plate>& plates;      // reads kept (inside the ROI, wide enough), boxes in frame pixels
  const std::vector<TrackView>& tracks;  // tracks open after this frame
  const std::vector<cv::Point2f>& roi;   // the stream's ROI polygon (empty: whole frame)
};

struct StreamStats {
  SourceStats source;
  std::int64_t frames_decoded = 0;         // frames the decoding thread queued (after stride)
  std::int64_t frames_processed = 0;       // frames the recognition thread took from the queue
  std::int64_t frames_recognized = 0;      // frames the recognizer ran on
  std::int64_t frames_skipped_motion = 0;  // frames skipped by motion gating
  std::int64_t frames_dropped = 0;         // live: frames dropped, oldest first, as recognition fell behind
  std::int64_t recognition_errors = 0;     // recognize() threw (logged; the frame counts as skipped)
  std::int64_t plates_kept = 0;            // reads given to the tracker
  std::int64_t plates_ignored = 0;         // reads outside the ROI or narrower than plate_width_min
  std::int64_t events = 0;                 // events delivered to the sinks
  double wall_s = 0.0;                     // seconds since start() (until the stream finished)
  double recognize_s = 0.0;                // seconds spent in recognize()
};

// Latency samples of a stream, kept only with StreamOptions::timings (milliseconds).
struct StreamTimings {
  std::vector<double> recognize_ms;          // per recognised frame: recognize() time
  std::vector<double> frame_latency_ms;      // per processed frame: decoded -> done (queue wait included)
  std::vector<double> event_latency_ms;      // per event: decoding of the frame that ended its track -> event
                                             // delivered (tracks ended by the final flush excluded)
  std::vector<double> last_seen_latency_ms;  // per event: decoding of the frame in which its plate was last
                                             // seen -> event delivered (includes the max_gap_s wait)
};

class Stream {
 public:
  // Opens the stream's source (see open_source() for what fails now and what reconnects later) and
  // creates its tracker. `recognizer` must outlive the stream. Does not start any thread.
  static Result<Stream> open(const Recognizer& recognizer, StreamOptions options,
                             std::vector<std::shared_ptr<EventSink>> sinks);
  // As above with a source opened by the caller (options.source and source_options are then unused):
  // for custom sources, or to look at the source (live()?) before choosing the sinks.
  static Result<Stream> open(const Recognizer& recognizer, std::unique_ptr<FrameSource> source,
                             StreamOptions options, std::vector<std::shared_ptr<EventSink>> sinks);
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();  // stops and waits

  // Starts the decoding and recognition threads; a second call does nothing.
  void start();
  // Asks the stream to end: the source is interrupted, frames still queued are discarded, open tracks are
  // flushed to the sinks. Returns at once; wait() for the end.
  void stop();
  // Blocks until both threads have ended (end of the source, its failure, or stop()) and the last events
  // have been delivered. Returns at once when the stream was never started.
  void wait();
  // True once the threads have ended (wait() would not block).
  bool finished() const;

  const std::string& camera_id() const;
  bool live() const;
  SourceKind source_kind() const;
  const std::string& description() const;
  // Why the source failed ("" when it ended normally or was stopped).
  std::string error() const;
  StreamStats stats() const;
  // Latency samples so far (empty unless StreamOptions::timings).
  StreamTimings timings() const;

 private:
  struct Impl;
  explicit Stream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
