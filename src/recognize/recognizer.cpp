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
#include "read/country.hpp"
#include "read/reader.hpp"
#include "recognize/passes.hpp"
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

// The neural reader and the format-aware decoding, as the read variants use them.
class NeuralEngine final : public recognize::ReadEngine {
 public:
  NeuralEngine(NeuralReader reader, const FormatSet& formats, const DecodeOptions& options)
      : reader_(std::move(reader)), formats_(formats), options_(options) {}
  Plate read(const cv::Mat& bgr, const recognize::Corners& corners, bool two_line, bool wide) const override {
    Decoded d = decode(
        reader_.read(bgr, corners, two_line, wide ? reader_.second_look_geometry() : reader_.geometry()),
        formats_, options_);
    Plate p;
    p.text = std::move(d.text);
    p.confidence = d.confidence;
    p.country = std::move(d.country);
    p.format = std::move(d.format);
    p.fits_format = d.fits_format;
    p.two_line = two_line;
    p.char_confidences = std::move(d.char_confidences);
    p.candidates = std::move(d.candidates);
    return p;
  }
  bool reads_two_line() const override { return reader_.supports_two_line(); }
  bool reads_wide() const override { return true; }
  const NeuralReader& reader() const { return reader_; }

 private:
  NeuralReader reader_;
  const FormatSet& formats_;
  const DecodeOptions& options_;
};

#ifdef VIGIL_HAVE_TESSERACT
// Tesseract reads one line as it is given: no two-line or wider-crop variants.
class TesseractEngine final : public recognize::ReadEngine {
 public:
  TesseractEngine(std::unique_ptr<TesseractReader> tesseract, const NeuralReader* neural,
                  const FormatSet& formats, const DecodeOptions& options)
      : tesseract_(std::move(tesseract)), neural_(neural), formats_(formats), options_(options) {}
  Plate read(const cv::Mat& bgr, const recognize::Corners& corners, bool, bool) const override {
    // Tesseract wants larger glyphs than our network: 64 px high, the plate's own aspect.
    RectifyGeometry g;
    g.height = 64;
    g.width = std::clamp(int(64 * quad_aspect(corners)), 64, 512);
    g.margin_x = neural_ ? neural_->geometry().margin_x : 0.04f;
    g.margin_y = neural_ ? neural_->geometry().margin_y : 0.10f;
    cv::Mat plate = rectify_plate(bgr, corners, false, g);
    Plate p;
    std::lock_guard lock(mutex_);
    auto r = tesseract_->read(plate);
    if (!r) {
      log(LogLevel::kWarn, "tesseract: " + r.error());
      return p;
    }
    p.text = r->text;
    p.confidence = r->confidence;
    if (const PlateFormat* f = formats_.likeliest(p.text, options_.preferred_country)) {
      p.country = f->country;
      p.format = f->name;
      p.fits_format = true;
    }
    p.candidates.push_back({p.text, p.confidence, p.country, p.format});
    return p;
  }
  bool reads_two_line() const override { return false; }
  bool reads_wide() const override { return false; }

 private:
  mutable std::mutex mutex_;
  std::unique_ptr<TesseractReader> tesseract_;
  const NeuralReader* neural_;
  const FormatSet& formats_;
  const DecodeOptions& options_;
};
#endif

const std::vector<std::string>& all_pass_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto* p : recognize::proposal_passes()) v.emplace_back(p->name);
    for (const auto* p : recognize::corner_passes()) v.emplace_back(p->name);
    for (const auto* p : recognize::read_passes()) v.emplace_back(p->name);
    return v;
  }();
  return names;
}

}  // namespace

const std::vector<std::string>& recognition_passes() { return all_pass_names(); }

const char* to_string(Profile profile) { return profile == Profile::kEdge ? "edge" : "default"; }

Result<Profile> parse_profile(std::string_view name) {
  if (name == "default") return Profile::kDefault;
  if (name == "edge") return Profile::kEdge;
  return Error{"unknown profile '" + std::string(name) + "' (default, edge)"};
}

std::vector<std::string> profile_passes(Profile profile) {
  if (profile == Profile::kEdge)
    // What a small CPU can afford on every frame; in video a plate crosses the detector threshold and is
    // read surely as it comes closer, so weak detections and second looks are not needed.
    return {"full", "level", "two-line", "close-up-corners"};
  return recognition_passes();
}

void apply_profile(Profile profile, RecognizerOptions& options) {
  const auto runs = profile_passes(profile);
  for (const auto& name : recognition_passes())
    if (std::find(runs.begin(), runs.end(), name) == runs.end() &&
        std::find(options.skip.begin(), options.skip.end(), name) == options.skip.end())
      options.skip.push_back(name);
}

std::string find_data_dir() {
  if (const char* env = std::getenv("VIGIL_DATA_DIR"); env && *env && has_models(env)) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& d :
         {exe.parent_path().parent_path() / VIGIL_INSTALL_DATADIR, exe.parent_path() / "share" / "vigil"})
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
  std::unique_ptr<NeuralEngine> neural;
  std::unique_ptr<recognize::ReadEngine> other;  // Tesseract, when chosen
  std::optional<CountryClassifier> country;      // none: the formats alone name the country

  recognize::Pipeline pipeline() const {
    return {*detector, other ? *other : static_cast<const recognize::ReadEngine&>(*neural), formats, options};
  }

  // Once the reads of a plate are in (the arbitration between reads compares probabilities and texts):
  // its looks (the country classifier along its corners) choose between its candidate reads and name its
  // country, then a discount when it fits no format of the region.
  void finish_read(const cv::Mat& bgr, Plate& p, recognize::PassLog& log) const {
    const auto t0 = recognize::PassLog::Clock::now();
    const std::vector<float> probs = country ? country->classify(bgr, p.corners) : std::vector<float>{};
    const std::vector<std::string> none;
    const auto& classes = country ? country->classes() : none;
    if (const std::size_t k =
            detail::choose_read(classes, probs, formats, p.candidates, options.decode.preferred_country,
                                options.decode.country_prior, options.decode.unfit_country_factor);
        k > 0 && k < p.candidates.size()) {
      // another candidate, read less surely, fits the country the plate looks like
      const Candidate chosen = p.candidates[k];
      p.candidates.erase(p.candidates.begin() + std::ptrdiff_t(k));
      p.candidates.insert(p.candidates.begin(), chosen);
      p.text = chosen.text;
      p.confidence = chosen.confidence;
      p.fits_format = !formats.match(chosen.text).empty();
      p.char_confidences.clear();  // known for the decoder's read only
      recognize::mark(p.passes, "country");
    }
    const auto choice = detail::choose_country(
        classes, probs, formats, p.text, options.decode.preferred_country, options.decode.country_prior);
    p.country = choice.country;
    p.country_confidence = choice.confidence;
    p.format = choice.format ? choice.format->name : "";
    log.add("country", t0);
    if (!p.fits_format && !formats.formats().empty())
      p.confidence *= std::clamp(options.decode.no_format_factor, 0.0f, 1.0f);
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
      return Error{
          "cannot find the models (detector.onnx, reader.onnx): set VIGIL_DATA_DIR, pass --models DIR, "
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
  if (!options.decode.preferred_country.empty() &&
      !impl->formats.has_country(options.decode.preferred_country))
    return Error{"country '" + options.decode.preferred_country + "' is outside the region '" +
                 to_string(options.region) + "': pass --region all, or list it in --countries"};
  for (const auto& name : options.skip)
    if (std::find(recognition_passes().begin(), recognition_passes().end(), name) ==
        recognition_passes().end()) {
      std::string known;
      for (const auto& n : recognition_passes()) known += (known.empty() ? "" : ", ") + n;
      return Error{"unknown recognition pass '" + name + "' to skip (the passes: " + known + ")"};
    }
  if (options.threads > 0) cv::setNumThreads(options.threads);

  auto detector = PlateDetector::load(impl->models_dir);
  if (!detector) return Error{detector.error()};
  impl->detector.emplace(std::move(*detector));
  auto reader = NeuralReader::load(impl->models_dir);
  if (!reader) return Error{reader.error()};
  impl->neural = std::make_unique<NeuralEngine>(std::move(*reader), impl->formats, impl->options.decode);
  if (std::error_code ec; fs::exists(fs::path(impl->models_dir) / "country.onnx", ec)) {
    auto country = CountryClassifier::load(impl->models_dir);
    if (!country) return Error{country.error()};
    impl->country.emplace(std::move(*country));
  } else {
    log(LogLevel::kInfo,
        "no country.onnx in " + impl->models_dir + ": countries from the plate formats alone");
  }
  if (options.reader == ReaderKind::kTesseract) {
#ifdef VIGIL_HAVE_TESSERACT
    auto t = TesseractReader::create();
    if (!t) return Error{t.error()};
    impl->other = std::make_unique<TesseractEngine>(std::move(*t), &impl->neural->reader(), impl->formats,
                                                    impl->options.decode);
#else
    return Error{"this build has no Tesseract reader: install libtesseract-dev and rebuild"};
#endif
  }
  log(LogLevel::kDebug, "models from " + impl->models_dir + ", formats from " + formats_file);
  return Recognizer(std::move(impl));
}

std::vector<Detection> Recognizer::detect(const cv::Mat& bgr, bool with_weak) const {
  recognize::PassLog log;
  return impl_->pipeline().detect(bgr, nullptr, with_weak, log);
}

Plate Recognizer::read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& corners) const {
  Detection d;
  d.corners = corners;
  d.box = corner_box(corners, cv::Size(bgr.cols, bgr.rows));
  recognize::PassLog log;
  bool keep = true;
  Plate p = impl_->pipeline().read(bgr, d, keep, log);
  if (!p.text.empty()) impl_->finish_read(bgr, p, log);
  return p;
}

Recognition Recognizer::recognize(const cv::Mat& bgr) const { return recognize_impl(bgr, nullptr, nullptr); }

Recognition Recognizer::recognize(const cv::Mat& bgr, const std::vector<cv::Rect>& regions) const {
  return recognize_impl(bgr, &regions, nullptr);
}

Recognition Recognizer::recognize(const cv::Mat& bgr, const FrameHints& hints) const {
  return recognize_impl(bgr, hints.regions ? &*hints.regions : nullptr, &hints.known);
}

Recognition Recognizer::recognize_impl(const cv::Mat& bgr, const std::vector<cv::Rect>* regions,
                                       const std::vector<KnownPlate>* known) const {
  // No exception crosses the API: OpenCV throws on inputs it cannot take, allocation may fail.
  try {
    return recognize_or_throw(bgr, regions, known);
  } catch (const cv::Exception& e) {
    Recognition r;
    r.error = "recognition failed: " + e.msg;
    return r;
  } catch (const std::exception& e) {
    Recognition r;
    r.error = std::string("recognition failed: ") + e.what();
    return r;
  }
}

Recognition Recognizer::recognize_or_throw(const cv::Mat& bgr, const std::vector<cv::Rect>* regions,
                                           const std::vector<KnownPlate>* known) const {
  Recognition r;
  if (bgr.empty()) return r;
  const auto t0 = Clock::now();
  cv::Mat image = bgr;
  if (bgr.channels() == 1) cv::cvtColor(bgr, image, cv::COLOR_GRAY2BGR);
  if (bgr.channels() == 4) cv::cvtColor(bgr, image, cv::COLOR_BGRA2BGR);
  recognize::PassLog log;
  const auto pipeline = impl_->pipeline();
  std::vector<cv::Rect> known_boxes;
  if (known)
    for (const auto& k : *known) known_boxes.push_back(k.box);
  std::vector<int> claimed;
  const auto detections = pipeline.detect(image, regions, true, log, &known_boxes, &claimed);
  r.ms.detect_ms = ms_since(t0);
  const auto t1 = Clock::now();
  for (std::size_t i = 0; i < detections.size(); ++i) {
    const Detection& d = detections[i];
    if (claimed[i] >= 0) {
      const KnownPlate& k = (*known)[std::size_t(claimed[i])];
      Plate p;
      p.text = k.text;
      p.confidence = k.confidence;
      p.country = k.country;
      p.country_confidence = k.country_confidence;
      if (const PlateFormat* f = impl_->formats.likeliest(k.text, impl_->options.decode.preferred_country)) {
        p.fits_format = true;
        p.format = f->name;
      }
      p.box = d.box;
      p.corners = d.corners;
      p.detection_confidence = d.score;
      p.passes = d.passes;
      p.reused = true;
      r.plates.push_back(std::move(p));
      continue;
    }
    bool keep = true;
    Plate p = pipeline.read(image, d, keep, log);
    if (!keep || p.text.empty()) continue;
    impl_->finish_read(image, p, log);
    if (p.confidence < impl_->options.min_confidence) continue;
    p.detection_confidence = d.score;
    r.plates.push_back(std::move(p));
  }
  std::stable_sort(r.plates.begin(), r.plates.end(),
                   [](const Plate& a, const Plate& b) { return a.confidence > b.confidence; });
  r.ms.read_ms = ms_since(t1);
  r.ms.total_ms = ms_since(t0);
  r.passes = std::move(log.times);
  return r;
}

const RecognizerOptions& Recognizer::options() const { return impl_->options; }
const FormatSet& Recognizer::formats() const { return impl_->formats; }
const std::string& Recognizer::models_dir() const { return impl_->models_dir; }

}  // namespace vigil
