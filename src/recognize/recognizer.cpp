#include "vigil/recognizer.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detector.hpp"
#include "recognize/second_look.hpp"
#include "read/country.hpp"
#include "read/reader.hpp"
#ifdef VIGIL_HAVE_TESSERACT
#include "read/tesseract_reader.hpp"
#endif

namespace fs = std::filesystem;

namespace vigil {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

bool has_models(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "models" / "detector.onnx", ec) && fs::exists(dir / "models" / "reader.onnx", ec);
}

std::string formats_in(const fs::path& dir) {
  std::error_code ec;
  for (const auto& p : {dir / "plate_formats.json", dir / "data" / "plate_formats.json"})
    if (fs::exists(p, ec)) return p.string();
  return "";
}

// Plates whose reads are better as two lines are squarish; a one-line EU plate is ~4.7:1.
constexpr float kTwoLineMaxAspect = 3.0f;

}  // namespace

const char* to_string(Profile profile) { return profile == Profile::kEdge ? "edge" : "default"; }

Result<Profile> parse_profile(std::string_view name) {
  if (name == "default") return Profile::kDefault;
  if (name == "edge") return Profile::kEdge;
  return Error{"unknown profile '" + std::string(name) + "' (default, edge)"};
}

void apply_profile(Profile profile, RecognizerOptions& options) {
  if (profile == Profile::kEdge) {
    options.detector.tiles = false;
    options.detector.close_up = false;
    options.detector.second_scale = false;
    // In video a plate crosses the detector threshold and is read surely as it comes closer.
    options.max_weak_reads = 0;
    options.second_look = false;
    options.refine_below = 0;
  }
}

std::string find_data_dir() {
  if (const char* env = std::getenv("VIGIL_DATA_DIR"); env && *env && has_models(env)) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& d : {exe.parent_path().parent_path() / VIGIL_INSTALL_DATADIR,
                          exe.parent_path() / "share" / "vigil"})
      if (has_models(d)) return d.lexically_normal().string();
  }
  if (has_models(VIGIL_SOURCE_DIR)) return VIGIL_SOURCE_DIR;
  return "";
}

struct Recognizer::Impl {
  RecognizerOptions options;
  std::string models_dir;
  FormatSet formats;
  std::optional<PlateDetector> detector;
  std::optional<NeuralReader> reader;
  std::optional<CountryClassifier> country;  // none: the formats alone name the country
#ifdef VIGIL_HAVE_TESSERACT
  mutable std::mutex tesseract_mutex;
  mutable std::unique_ptr<TesseractReader> tesseract;
#endif

  Plate read_neural(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const {
    const bool try_two = reader->supports_two_line() && quad_aspect(corners) < kTwoLineMaxAspect;
    Decoded best = decode(reader->read(bgr, corners, false), formats, options.decode);
    bool two_line = false;
    if (try_two) {
      Decoded two = decode(reader->read(bgr, corners, true), formats, options.decode);
      if (detail::two_line_wins(best, two)) {
        best = std::move(two);
        two_line = true;
      }
    }
    if (options.second_look && detail::wants_second_look(best, formats)) {
      // Detector corners sometimes cut into the first or last character: a wider crop, kept when better.
      Decoded wide = decode(reader->read(bgr, corners, two_line, reader->second_look_geometry()), formats,
                            options.decode);
      if (detail::second_look_wins(best, wide, formats)) best = std::move(wide);
    }
    Plate p;
    p.text = best.text;
    p.confidence = best.confidence;
    p.country = best.country;
    p.format = best.format;
    p.fits_format = best.fits_format;
    p.two_line = two_line;
    p.char_confidences = std::move(best.char_confidences);
    p.candidates = std::move(best.candidates);
    return p;
  }

#ifdef VIGIL_HAVE_TESSERACT
  Plate read_tesseract(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const {
    // Tesseract wants larger glyphs than our network: 64 px high, the plate's own aspect.
    RectifyGeometry g;
    g.height = 64;
    g.width = std::clamp(int(64 * quad_aspect(corners)), 64, 512);
    g.margin_x = reader ? reader->geometry().margin_x : 0.04f;
    g.margin_y = reader ? reader->geometry().margin_y : 0.10f;
    cv::Mat plate = rectify_plate(bgr, corners, false, g);
    Plate p;
    std::lock_guard lock(tesseract_mutex);
    auto r = tesseract->read(plate);
    if (!r) {
      log(LogLevel::kWarn, "tesseract: " + r.error());
      return p;
    }
    p.text = r->text;
    p.confidence = r->confidence;
    if (const PlateFormat* f = formats.likeliest(p.text, options.decode.preferred_country)) {
      p.country = f->country;
      p.format = f->name;
      p.fits_format = true;
    }
    p.candidates.push_back({p.text, p.confidence, p.country, p.format});
    return p;
  }
#endif

  // Detections at or above the detector threshold, then at most max_weak_reads weak ones (flagged).
  std::vector<Detection> detect(const cv::Mat& bgr, const std::vector<cv::Rect>* regions, bool with_weak) const {
    DetectorOptions o = options.detector;
    const float strong = o.score_threshold >= 0 ? o.score_threshold : detector->default_threshold();
    const float weak = options.weak_threshold >= 0 ? options.weak_threshold : detector->default_weak_threshold();
    const bool any_weak = with_weak && weak < strong && options.max_weak_reads > 0;
    o.score_threshold = any_weak ? weak : strong;
    auto found = regions ? detector->detect(bgr, o, *regions) : detector->detect(bgr, o);
    // NMS kept the highest scores first, so a weak box never displaces a plate the detector is sure of.
    std::vector<Detection> out;
    int weak_kept = 0;
    for (auto& d : found) {
      d.weak = d.score < strong;
      if (d.weak && weak_kept++ >= options.max_weak_reads) continue;
      out.push_back(d);
    }
    if (options.refine_below > 0 && !bgr.empty()) {
      const int input = o.input_size > 0 ? o.input_size : detector->default_input_size();
      const double full_scale = double(input) / std::max(bgr.cols, bgr.rows);
      for (auto& d : out)
        if (d.box.width * full_scale < options.refine_below)
          d = detector->refine(bgr, d, o.score_threshold, options.refine_width);
    }
    if (options.level_above > 0 && !bgr.empty())
      for (auto& d : out)
        d = detector->level(bgr, d, o.score_threshold, options.refine_width, options.level_above);
    return out;
  }

  // Whether the read of a weak detection shows a plate: a known format, read with confidence.
  bool confirms(const Plate& p) const {
    return p.fits_format && p.confidence >= options.weak_min_confidence;
  }

  Plate read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const {
#ifdef VIGIL_HAVE_TESSERACT
    Plate p = options.reader == ReaderKind::kTesseract ? read_tesseract(bgr, corners) : read_neural(bgr, corners);
#else
    Plate p = read_neural(bgr, corners);
#endif
    return p;
  }

  // Once the read of a plate is chosen (the arbitration between reads compares probabilities and texts):
  // its country, from its looks along its corners, and a discount when it fits no format of the region.
  void finish_read(const cv::Mat& bgr, Plate& p) const {
    if (p.text.empty()) return;
    name_country(bgr, p.corners, p);
    if (!p.fits_format && !formats.formats().empty())
      p.confidence *= std::clamp(options.decode.no_format_factor, 0.0f, 1.0f);
  }

  // The country from the plate's looks and the formats its text fits (detail::choose_country).
  void name_country(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners, Plate& p) const {
    const std::vector<float> probs = country ? country->classify(bgr, corners) : std::vector<float>{};
    const auto choice = detail::choose_country(country ? country->classes() : std::vector<std::string>{}, probs,
                                               formats, p.text, options.decode.preferred_country,
                                               options.decode.country_prior);
    p.country = choice.country;
    p.country_confidence = choice.confidence;
    p.format = choice.format ? choice.format->name : "";
  }
};

Recognizer::Recognizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Recognizer::Recognizer(Recognizer&&) noexcept = default;
Recognizer& Recognizer::operator=(Recognizer&&) noexcept = default;
Recognizer::~Recognizer() = default;

Result<Recognizer> Recognizer::load(const RecognizerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::string data_dir;
  if (options.models_dir.empty()) {
    data_dir = find_data_dir();
    if (data_dir.empty())
      return Error{"cannot find the models (detector.onnx, reader.onnx): set VIGIL_DATA_DIR, pass --models DIR, "
                   "or run `cmake --install` so they are in <prefix>/share/vigil/models"};
    impl->models_dir = (fs::path(data_dir) / "models").string();
  } else {
    impl->models_dir = options.models_dir;
    data_dir = fs::path(options.models_dir).parent_path().string();
  }
  std::string formats_file = options.formats_file;
  if (formats_file.empty()) {
    formats_file = formats_in(impl->models_dir);
    if (formats_file.empty()) formats_file = formats_in(data_dir);
    if (formats_file.empty()) formats_file = formats_in(find_data_dir());
    if (formats_file.empty())
      return Error{"cannot find plate_formats.json next to the models in " + impl->models_dir +
                   ": pass --formats FILE"};
  }
  auto formats = FormatSet::load(formats_file);
  if (!formats) return Error{formats.error()};
  if (!options.decode.preferred_country.empty() && !formats->has_country(options.decode.preferred_country))
    return Error{"unknown country '" + options.decode.preferred_country + "': " + formats_file +
                 " has no formats for it"};
  auto regional = formats->for_region(options.region);
  if (!regional) return Error{formats_file + ": " + regional.error()};
  impl->formats = std::move(*regional);
  if (!options.decode.preferred_country.empty() && !impl->formats.has_country(options.decode.preferred_country))
    return Error{"country '" + options.decode.preferred_country + "' is outside the region '" +
                 to_string(options.region) + "': pass --region all, or list it in --countries"};
  if (options.threads > 0) cv::setNumThreads(options.threads);

  auto detector = PlateDetector::load(impl->models_dir);
  if (!detector) return Error{detector.error()};
  impl->detector.emplace(std::move(*detector));
  auto reader = NeuralReader::load(impl->models_dir);
  if (!reader) return Error{reader.error()};
  impl->reader.emplace(std::move(*reader));
  if (std::error_code ec; fs::exists(fs::path(impl->models_dir) / "country.onnx", ec)) {
    auto country = CountryClassifier::load(impl->models_dir);
    if (!country) return Error{country.error()};
    impl->country.emplace(std::move(*country));
  } else {
    log(LogLevel::kInfo, "no country.onnx in " + impl->models_dir + ": countries from the plate formats alone");
  }
  if (options.reader == ReaderKind::kTesseract) {
#ifdef VIGIL_HAVE_TESSERACT
    auto t = TesseractReader::create();
    if (!t) return Error{t.error()};
    impl->tesseract = std::move(*t);
#else
    return Error{"this build has no Tesseract reader: install libtesseract-dev and rebuild"};
#endif
  }
  log(LogLevel::kDebug, "models from " + impl->models_dir + ", formats from " + formats_file);
  return Recognizer(std::move(impl));
}

std::vector<Detection> Recognizer::detect(const cv::Mat& bgr, bool with_weak) const {
  return impl_->detect(bgr, nullptr, with_weak);
}

Plate Recognizer::read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const {
  Plate p = read_plate(bgr, corners);
  impl_->finish_read(bgr, p);
  return p;
}

Plate Recognizer::read_plate(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const {
  Plate p = impl_->read(bgr, corners);
  p.corners = corners;
  float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
  for (const auto& c : corners) x0 = std::min(x0, c.x), y0 = std::min(y0, c.y), x1 = std::max(x1, c.x), y1 = std::max(y1, c.y);
  p.box = cv::Rect(cv::Point(int(x0), int(y0)), cv::Point(int(std::ceil(x1)), int(std::ceil(y1)))) &
          cv::Rect(0, 0, bgr.cols, bgr.rows);
  return p;
}

Recognition Recognizer::recognize(const cv::Mat& bgr) const { return recognize_impl(bgr, nullptr); }

Recognition Recognizer::recognize(const cv::Mat& bgr, const std::vector<cv::Rect>& regions) const {
  return recognize_impl(bgr, &regions);
}

Recognition Recognizer::recognize_impl(const cv::Mat& bgr, const std::vector<cv::Rect>* regions) const {
  Recognition r;
  if (bgr.empty()) return r;
  const auto t0 = Clock::now();
  cv::Mat image = bgr;
  if (bgr.channels() == 1) cv::cvtColor(bgr, image, cv::COLOR_GRAY2BGR);
  if (bgr.channels() == 4) cv::cvtColor(bgr, image, cv::COLOR_BGRA2BGR);
  const auto detections = impl_->detect(image, regions, true);
  r.ms.detect_ms = ms_since(t0);
  const auto t1 = Clock::now();
  for (const auto& d : detections) {
    Plate p = read_plate(image, d.corners);
    p.box = d.box;
    if (d.other_corners) {
      Plate close_up = read_plate(image, *d.other_corners);
      if (detail::close_up_wins(p, close_up))
        p = std::move(close_up);  // its box from its own corners
    }
    impl_->finish_read(image, p);
    p.detection_confidence = d.score;
    if (p.text.empty() || p.confidence < impl_->options.min_confidence) continue;
    if (d.weak && !impl_->confirms(p)) continue;
    r.plates.push_back(std::move(p));
  }
  std::stable_sort(r.plates.begin(), r.plates.end(),
                   [](const Plate& a, const Plate& b) { return a.confidence > b.confidence; });
  r.ms.read_ms = ms_since(t1);
  r.ms.total_ms = ms_since(t0);
  return r;
}

const RecognizerOptions& Recognizer::options() const { return impl_->options; }
const FormatSet& Recognizer::formats() const { return impl_->formats; }
const std::string& Recognizer::models_dir() const { return impl_->models_dir; }

}  // namespace vigil
