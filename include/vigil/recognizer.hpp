// The plate recognizer: detection -> rectification -> reading -> format-aware decoding.
//
//   vigil::RecognizerOptions opt;                 // models and formats found next to the binary
//   opt.decode.preferred_country = "cz";
//   auto rec = vigil::Recognizer::load(opt);
//   if (!rec) { std::cerr << rec.error() << "\n"; return 1; }
//   vigil::Recognition r = rec->recognize(cv::imread("car.jpg"));
//   for (const auto& p : r.plates) std::cout << p.text << " " << p.confidence << " " << p.country << "\n";
//
// Thread-safety: a Recognizer is loaded once and may be shared; recognize() is thread-safe (each call
// takes an internal network instance from a small pool, so concurrent calls do not serialise).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

#include "vigil/common.hpp"
#include "vigil/formats.hpp"

namespace vigil {

struct DetectorOptions {
  float score_threshold = -1.0f;  // plate-centre score 0..1; < 0: the model's recommended default
  float nms_iou = -1.0f;          // boxes overlapping more than this (IoU) are merged; < 0: model default
  int input_size = 0;             // long side of the network input in pixels; 0: model default (512)
  // Large images are also searched in overlapping tiles at a higher resolution so small plates are
  // found (the "tiles" pass): tiles sized so a plate smallest_plate pixels wide is big enough for the
  // network, searched when the image's long side exceeds tile_min_long_side pixels and the full pass would
  // see such a plate too small.
  int tile_min_long_side = 1280;  // pixels: 1280x720 video frames run one pass; larger photos are tiled
  int smallest_plate = 40;        // pixels wide, in the image
  int max_plates = 32;            // per image
};

enum class ReaderKind { kNeural, kTesseract };

struct RecognizerOptions {
  std::string models_dir;    // folder with detector.onnx/.json and reader.onnx/.json; "" = find it
  std::string formats_file;  // plate_formats.json; "" = find it next to the models
  ReaderKind reader = ReaderKind::kNeural;
  DetectorOptions detector;
  DecodeOptions decode;
  // Where the deployment is: only its countries' formats are decoded with (default: every European
  // format; the US and Brazilian layouts are Region{"americas"}). decode.preferred_country must be in it.
  Region region;
  float min_confidence = 0.0f;  // plates whose read confidence is below this are dropped (0..1)
  // Recognition passes not to run, by name (see recognition_passes() and docs/recognition.md): proposal
  // passes "full", "second-scale", "tiles", "close-up"; corner refiners "refine", "level"; read variants
  // "two-line", "wider-crop", "close-up-corners", "weak". Unknown names fail Recognizer::load.
  std::vector<std::string> skip;
  // The "weak" pass: detector scores from weak_threshold up to the detector's threshold are read too, and
  // kept only when the reader confirms a plate (a read fitting a known format with at least
  // weak_min_confidence). weak_threshold < 0: the model's recommendation (detector.json
  // "weak_threshold"); at or above the detector threshold: no weak detections.
  float weak_threshold = -1.0f;
  float weak_min_confidence = 0.5f;
  // The "refine" pass: a plate found narrower than refine_below network pixels in the image's full pass
  // (its corners placed to a pixel or two, too coarse for the reader) is located again in a window around
  // it scaled so it is refine_width network pixels wide, and read from those corners.
  int refine_below = 64;
  int refine_width = 80;
  // The "level" pass: a plate whose corners lie tilted by at least level_above degrees (up to 50) is
  // located again in a window around it turned so it lies level, refine_width network pixels wide, and read
  // from those corners turned back.
  double level_above = 8.0;
  int max_weak_reads = 2;  // per image (or frame), highest detector scores first: bounds the extra reads
  int threads = 0;              // OpenCV threads; 0 = OpenCV's default (all cores)
  std::size_t max_pixels = 50'000'000;  // larger images are refused with a message (memory bound)
};

// Every recognition pass, in the order they run (the names RecognizerOptions::skip takes).
const std::vector<std::string>& recognition_passes();

// Named speed/accuracy trade-offs: each is the list of passes it runs (profile_passes), applied over the
// defaults before explicit options by setting RecognizerOptions::skip to the others.
//   kDefault: every pass.
//   kEdge:    small CPUs (Raspberry Pi class): full, level, two-line and close-up-corners only; in video
//             (see apply_profile(Profile, StreamOptions&)) motion gating on and the detector run only
//             where something moved or a track is open.
enum class Profile { kDefault, kEdge };
const char* to_string(Profile profile);            // "default", "edge"
Result<Profile> parse_profile(std::string_view name);  // fails naming the known profiles
std::vector<std::string> profile_passes(Profile profile);
void apply_profile(Profile profile, RecognizerOptions& options);

struct Plate {
  std::string text;                       // normalised: upper case, no spaces or dashes
  float confidence = 0.0f;                // read confidence 0..1 (the decoded string's probability)
  float detection_confidence = 0.0f;      // detector score 0..1
  // ISO 3166-1 alpha-2, lower case ("gb" for the UK): from the plate's looks (the country classifier,
  // models/country.onnx) and the formats of the region its text fits; "" when neither names one.
  std::string country;
  float country_confidence = 0.0f;        // 0..1, the country's share of all countries' scores
  std::string format;                     // name of the country's format the text fits, "" when none
  bool fits_format = false;               // the text fits a format of the region (some country's)
  bool two_line = false;                  // read as a two-line (square/motorcycle) plate
  cv::Rect box;                           // pixels of the original image
  std::array<cv::Point2f, 4> corners{};   // TL, TR, BR, BL in pixels of the original image
  std::vector<float> char_confidences;    // per character of text
  std::vector<Candidate> candidates;      // top-N, most probable first
  // The passes that produced or changed this plate, in the order they did ("full", "refine", "two-line"):
  // the proposal pass that found it, those that moved its corners or score, the read variants whose read
  // was kept.
  std::vector<std::string> passes;
  // Video: a detection of a plate already read surely in earlier frames (FrameHints::known), not read
  // again: text, confidence and country are the known plate's, corners the detector's.
  bool reused = false;
};

// A plate read surely in earlier frames of a video (a tracked plate), and where it was last seen.
struct KnownPlate {
  cv::Rect box;  // pixels of the frame
  std::string text;
  float confidence = 0.0f;
  std::string country;
  float country_confidence = 0.0f;
};

// What a video pipeline knows about a frame before recognising it.
struct FrameHints {
  // Search only inside these (pixels; the parts that moved and the open tracks), each at the scale the
  // whole frame would be searched at; regions adding up to most of the frame are one full pass. Unset:
  // the whole frame.
  std::optional<std::vector<cv::Rect>> regions;
  // Plates read surely in earlier frames: a detection overlapping one's box (IoU >= 0.3; each known plate
  // claims its best-overlapping detection) is reported as that plate (Plate::reused) without its corner
  // refiners, reads or country classifier: in busy traffic those are most of a frame's cost.
  std::vector<KnownPlate> known;
};

struct Timings {
  double detect_ms = 0, read_ms = 0, total_ms = 0;
};

// What one pass cost over a picture: its name as in RecognizerOptions::skip, or "read" (the first read
// of each plate) and "country" (the country classifier), which always run.
struct PassTime {
  std::string name;
  double ms = 0;  // wall time, all its runs together (a read variant's includes the reads it asked for)
  int runs = 0;
};

struct Recognition {
  std::vector<Plate> plates;  // sorted by confidence, highest first
  Timings ms;
  std::vector<PassTime> passes;  // in the order the passes first ran
  // "" on success; else why recognition failed (an OpenCV error on an odd input, memory), with no plates.
  // recognize() never throws.
  std::string error;
};

// A detected plate before reading (for benchmarks and tools).
struct Detection {
  cv::Rect box;
  std::array<cv::Point2f, 4> corners{};
  float score = 0.0f;
  bool weak = false;  // below the detector threshold: a plate only if the reader confirms it
  // The same plate's corners as the close-up pass placed them (a plate filling much of the picture,
  // found whole by the full pass too): both are read and the better read is kept.
  std::optional<std::array<cv::Point2f, 4>> other_corners;
  std::vector<std::string> passes;  // that produced or changed it (see Plate::passes)
};

class Recognizer {
 public:
  // Loads the models, their JSON sidecars and the formats. Fails with a message naming the missing or
  // bad file and what to do ("run cmake --install, or pass --models DIR").
  static Result<Recognizer> load(const RecognizerOptions& options = {});

  Recognizer(Recognizer&&) noexcept;
  Recognizer& operator=(Recognizer&&) noexcept;
  Recognizer(const Recognizer&) = delete;
  Recognizer& operator=(const Recognizer&) = delete;
  ~Recognizer();

  // Detects and reads every plate in a BGR (or grey, or BGRA) image. An empty image gives no plates.
  // Never throws: a failure comes back in Recognition::error.
  Recognition recognize(const cv::Mat& bgr) const;
  // Like recognize(), but the detector searches only inside `regions` (pixels of `bgr`; for video: the
  // parts that moved and the open tracks), each at the scale the whole image would be searched at, so
  // plates inside them are found as in a full pass for a fraction of the work. Regions adding up to most
  // of the image are searched in one full pass; no regions: no plates.
  Recognition recognize(const cv::Mat& bgr, const std::vector<cv::Rect>& regions) const;
  // Like recognize() with what a video pipeline knows about the frame (see FrameHints).
  Recognition recognize(const cv::Mat& bgr, const FrameHints& hints) const;
  // Only the detector: detections at or above its threshold, then weak ones (see
  // RecognizerOptions::weak_threshold) when `with_weak`, each flagged.
  std::vector<Detection> detect(const cv::Mat& bgr, bool with_weak = false) const;
  // Reads one plate given its four corners (TL, TR, BR, BL) in image pixels.
  Plate read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const;

  const RecognizerOptions& options() const;
  const FormatSet& formats() const;
  // Where the models were found.
  const std::string& models_dir() const;

 private:
  struct Impl;
  explicit Recognizer(std::unique_ptr<Impl> impl);
  Recognition recognize_impl(const cv::Mat& bgr, const std::vector<cv::Rect>* regions,
                             const std::vector<KnownPlate>* known) const;
  Recognition recognize_or_throw(const cv::Mat& bgr, const std::vector<cv::Rect>* regions,
                                 const std::vector<KnownPlate>* known) const;
  std::unique_ptr<Impl> impl_;
};

// The data folder holding models/ and plate_formats.json: $VIGIL_DATA_DIR, then <exe>/../share/vigil,
// then the source tree the binary was built from. "" when none has them.
std::string find_data_dir();

}  // namespace vigil
