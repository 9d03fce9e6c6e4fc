#include "cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "vigil/image.hpp"

namespace fs = std::filesystem;

namespace vigil::cli {

void RecognizerFlags::add_to(CLI::App& app) {
  app.add_option("--models", models_dir, "Folder with detector.onnx and reader.onnx (default: found next to the binary)");
  app.add_option("--formats", formats_file, "Plate formats file (default: plate_formats.json next to the models)");
  app.add_option("--region", region,
                 "Where the camera is: eu (every European plate format; the default), americas (US and "
                 "Brazilian layouts) or all. Reads fitting no format of the region are kept, flagged, at "
                 "half confidence")
      ->check(CLI::IsMember({"eu", "americas", "all"}))
      ->capture_default_str();
  app.add_option("--countries", countries,
                 "Only these countries' plate formats, with optional weights for their share of the "
                 "traffic, e.g. cz:4,sk:2,pl,de,at (overrides --region)");
  app.add_option("--country", country, "Prefer this country's plate formats (e.g. cz, de, gb)");
  app.add_option("--country-weight", country_weight,
                 "How strongly --country is preferred: a read fitting its formats wins unless another "
                 "country's read is this many times more probable (default " +
                     std::to_string(static_cast<int>(DecodeOptions{}.country_prior)) + ")")
      ->check(CLI::Range(1.0, 1e6));
  app.add_option("--reader", reader, "Plate reader: neural (default) or tesseract")
      ->check(CLI::IsMember({"neural", "tesseract"}));
  app.add_option("--top", top, "Number of candidate reads kept per plate")->check(CLI::Range(1, 50));
  app.add_option("--threads", threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 256));
  app.add_option("--detect-threshold", detect_threshold, "Detector score threshold 0..1 (default: the model's)");
  app.add_option("--weak-threshold", weak_threshold,
                 "Detector scores from here up to --detect-threshold count only when the read fits a plate "
                 "format with confidence >= 0.5 (default: the model's; >= --detect-threshold: off)");
  app.add_option("--input-size", input_size, "Detector input long side in pixels (default: the model's)");
  std::string passes;
  for (const auto& n : recognition_passes()) passes += (passes.empty() ? "" : ", ") + n;
  app.add_option("--skip", skip,
                 "Recognition passes not to run, comma-separated (faster, fewer plates found or read right; "
                 "docs/recognition.md says what each costs and gains): " + passes);
  app.add_option("--smallest-plate", smallest_plate,
                 "Width in pixels of the smallest plate to find in large images: sizes the tiles they are "
                 "searched in (smaller finds smaller plates, slower; default " +
                     std::to_string(DetectorOptions{}.smallest_plate) + ")")
      ->check(CLI::Range(8, 4000));
  app.add_option("--profile", profile,
                 "Speed/accuracy profile: default (every pass), or edge for small CPUs (only the full, level, "
                 "two-line and close-up-corners passes; in video, motion gating and detection only where "
                 "something moved or a track is open)")
      ->check(CLI::IsMember({"default", "edge"}))
      ->capture_default_str();
}

Result<RecognizerOptions> RecognizerFlags::to_options() const {
  RecognizerOptions o;
  apply_profile(profile_value(), o);
  o.models_dir = models_dir;
  o.formats_file = formats_file;
  o.reader = reader == "tesseract" ? ReaderKind::kTesseract : ReaderKind::kNeural;
  o.decode.preferred_country = canonical_country(country);
  auto region_value = parse_region(this->region, countries);
  if (!region_value) return Error{region_value.error()};
  o.region = std::move(*region_value);
  o.decode.top_n = top;
  if (country_weight >= 1.0f) o.decode.country_prior = country_weight;
  o.threads = threads;
  o.detector.score_threshold = detect_threshold;
  o.detector.input_size = input_size;
  o.weak_threshold = weak_threshold;
  if (smallest_plate > 0) o.detector.smallest_plate = smallest_plate;
  std::stringstream names(skip);
  for (std::string name; std::getline(names, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (name.empty()) continue;
    const auto& known = recognition_passes();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      return Error{"--skip: unknown pass '" + name + "' (the passes: " + list + ")"};
    }
    if (std::find(o.skip.begin(), o.skip.end(), name) == o.skip.end()) o.skip.push_back(name);
  }
  return o;
}

bool is_image_path(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
    if (ext == e) return true;
  return false;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    if (a == "-") {
      std::string line;
      while (std::getline(std::cin, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) out.push_back(line);
      }
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(a, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_regular_file(ec) && is_image_path(it->path().string())) found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) found.push_back(a);  // reported as a folder with no images, in its place
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(a);
    }
  }
  return out;
}

LoadedImage load_image(const std::string& path, std::size_t max_pixels) {
  LoadedImage r;
  ImageLimits limits;
  limits.max_pixels = max_pixels;
  auto image = load_image_file(path, limits);
  if (image)
    r.image = std::move(*image);
  else
    r.error = image.error();
  return r;
}

Progress::Progress(std::size_t total, std::string unit)
    : total_(total), unit_(std::move(unit)), enabled_(isatty(STDERR_FILENO) && total > 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::tick(std::size_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? done / secs : 0;
  const int width = 30;
  const int filled = total_ ? int(width * done / total_) : width;
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  std::fprintf(stderr, "\r[%s] %zu/%zu %s  %.1f %s/s  ETA %.0fs ", bar.c_str(), done, total_, unit_.c_str(), rate,
               unit_.c_str(), eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  std::fprintf(stderr, "\r%*s\r", 90, "");
  std::fflush(stderr);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double idx = p * (v.size() - 1);
  const size_t lo = size_t(idx), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - lo);
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

}  // namespace vigil::cli
