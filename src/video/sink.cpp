// Event outputs: JSON Lines and evidence images.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "vigil/video.hpp"

namespace fs = std::filesystem;

namespace vigil {

Result<std::shared_ptr<LineOutput>> LineOutput::open(const std::string& path, bool append) {
  if (path.empty() || path == "-") return std::shared_ptr<LineOutput>(new LineOutput(stdout, false, "-"));
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    return Error{"cannot write events to " + path + ": folder " + parent.string() + " does not exist"};
  std::FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
  if (!f) return Error{"cannot write events to " + path + ": " + std::strerror(errno)};
  return std::shared_ptr<LineOutput>(new LineOutput(f, true, path));
}

LineOutput::LineOutput(std::FILE* file, bool owned, std::string path)
    : file_(file), owned_(owned), path_(std::move(path)) {}

LineOutput::~LineOutput() {
  if (owned_ && file_) std::fclose(file_);
}

bool LineOutput::write_line(const std::string& line) {
  std::lock_guard lock(mutex_);
  const bool ok = std::fwrite(line.data(), 1, line.size(), file_) == line.size() &&
                  std::fputc('\n', file_) != EOF && std::fflush(file_) == 0;
  if (!ok && !failed_) {
    failed_ = true;
    vigil::log(LogLevel::kError, "cannot write events to " +
                                     (path_ == "-" ? std::string("standard output") : path_) + ": " +
                                     std::strerror(errno));
  }
  return ok;
}

Result<EvidencePaths> write_evidence(const PlateEvent& event, const std::string& dir, int jpeg_quality) {
  if (event.best_crop.empty() && event.thumbnail.empty())
    return Error{"event " + event.id + " has no images"};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{"cannot create evidence folder " + dir + ": " + ec.message()};
  const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, std::clamp(jpeg_quality, 0, 100)};
  EvidencePaths paths;
  auto write = [&](const cv::Mat& image, const std::string& name, std::string& out) -> std::string {
    if (image.empty()) return "";
    const std::string path = (fs::path(dir) / (event.id + "-" + name + ".jpg")).string();
    bool ok = false;
    try {
      ok = cv::imwrite(path, image, params);
    } catch (const cv::Exception& e) {
      return "cannot write " + path + ": " + e.what();
    }
    if (!ok) return "cannot write " + path;
    out = path;
    return "";
  };
  std::string err = write(event.best_crop, "plate", paths.plate);
  if (err.empty()) err = write(event.thumbnail, "frame", paths.frame);
  if (!err.empty()) return Error{err};
  return paths;
}

std::string iso8601_utc(double unix_seconds) {
  double whole = std::floor(unix_seconds);
  int ms = int(std::lround((unix_seconds - whole) * 1000.0));
  if (ms >= 1000) {
    whole += 1;
    ms -= 1000;
  }
  const std::time_t t = std::time_t(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

namespace {

// Dividing by the power of ten (not multiplying by its inverse) gives the double nearest the decimal.
double round_to(double v, double per_unit) { return std::round(v * per_unit) / per_unit; }

nlohmann::json nullable(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

std::string event_to_json(const PlateEvent& e, EventClock clock, const EvidencePaths* evidence) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const auto& c : e.candidates)
    candidates.push_back(
        {{"text", c.text}, {"confidence", round_to(c.confidence, 1e4)}, {"country", nullable(c.country)}});
  nlohmann::json j;
  j["id"] = e.id;
  j["camera_id"] = e.camera_id;
  j["text"] = e.text;
  j["confidence"] = round_to(e.confidence, 1e4);
  j["country"] = nullable(e.country);
  j["country_confidence"] = round_to(e.country_confidence, 1e4);
  j["fits_format"] = e.fits_format;
  j["candidates"] = candidates;
  if (clock == EventClock::kWall) {
    j["first_seen"] = iso8601_utc(e.first_seen);
    j["last_seen"] = iso8601_utc(e.last_seen);
  } else {
    j["first_seen"] = round_to(e.first_seen, 1e3);
    j["last_seen"] = round_to(e.last_seen, 1e3);
  }
  j["first_seen_s"] = round_to(e.first_seen, 1e3);
  j["last_seen_s"] = round_to(e.last_seen, 1e3);
  j["frames"] = e.frames;
  j["direction"] = nullable(e.direction);
  j["box"] = {e.box.x, e.box.y, e.box.width, e.box.height};
  if (evidence)
    j["evidence"] = {{"plate", nullable(evidence->plate)}, {"frame", nullable(evidence->frame)}};
  else
    j["evidence"] = nullptr;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

JsonLinesSink::JsonLinesSink(std::shared_ptr<LineOutput> out, JsonLinesOptions options)
    : out_(std::move(out)), options_(std::move(options)) {}

void JsonLinesSink::on_event(const PlateEvent& event) {
  EvidencePaths paths;
  bool have_evidence = false;
  if (!options_.evidence_dir.empty()) {
    auto written = write_evidence(event, options_.evidence_dir, options_.jpeg_quality);
    if (written) {
      paths = *written;
      have_evidence = true;
    } else {
      vigil::log(LogLevel::kWarn, "no evidence for event " + event.id + ": " + written.error());
    }
  }
  out_->write_line(event_to_json(event, options_.clock, have_evidence ? &paths : nullptr));
}

}  // namespace vigil
