#include "read/country.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <opencv2/dnn.hpp>

#include "common/json_file.hpp"

namespace vigil {
namespace {

// A country the classifier gives (almost) nothing still wins where its format is the only one the read fits.
constexpr float kClassifierFloor = 0.02f;
// A country whose formats the read does not fit, while others' do: the read's layout is strong evidence
// (a misread character moves a read out of its format more often than into another country's).
constexpr float kNoFitPenalty = 0.15f;

}  // namespace

Result<CountryClassifier> CountryClassifier::load(const std::string& models_dir) {
  const std::string side = models_dir + "/country.json";
  auto meta = read_json_file(side);
  if (!meta) return Error{"country model: " + meta.error()};
  CountryClassifier c;
  try {
    const auto& j = *meta;
    c.geometry_.width = j.at("input_width");
    c.geometry_.height = j.at("input_height");
    c.geometry_.margin_x = j.value("margin_x", 0.04f);
    c.geometry_.margin_y = j.value("margin_y", 0.10f);
    c.classes_ = j.at("classes").get<std::vector<std::string>>();
    c.scale_ = j.value("scale", 1.0 / 255.0);
    c.mean_ = j.value("mean", 0.5);
    c.std_ = j.value("std", 0.5);
    if (j.value("channels", std::string("bgr")) != "bgr") return Error{side + ": channels must be \"bgr\""};
  } catch (const nlohmann::json::exception& e) {
    return Error{side + ": missing or bad field (" + e.what() + ")"};
  }
  if (c.classes_.empty() || c.geometry_.width < 8 || c.geometry_.height < 8)
    return Error{side + ": no classes, or input size out of range"};
  auto nets = NetPool::load(models_dir + "/country.onnx");
  if (!nets) return Error{"country model: " + nets.error()};
  c.nets_ = *nets;
  return c;
}

std::vector<float> CountryClassifier::classify(const cv::Mat& bgr,
                                               const std::array<cv::Point2f, 4>& quad) const {
  if (bgr.empty() || bgr.channels() != 3) return {};
  cv::Mat plate = rectify_plate(bgr, quad, false, geometry_);
  const cv::Mat blob = cv::dnn::blobFromImage(plate, scale_ / std_, cv::Size(),
                                              cv::Scalar::all(mean_ / scale_), false, false, CV_32F);
  cv::Mat logits;
  {
    auto net = nets_->acquire();
    net->setInput(blob);
    logits = net->forward().clone();
  }
  if (logits.total() != classes_.size()) return {};
  const float* l = logits.ptr<float>();
  const float top = *std::max_element(l, l + classes_.size());
  std::vector<float> p(classes_.size());
  float sum = 0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(l[i] - top);
  for (float& v : p) v /= sum;
  return p;
}

namespace detail {

CountryChoice choose_country(const std::vector<std::string>& classes, const std::vector<float>& probs,
                             const FormatSet& formats, const std::string& text, const std::string& preferred,
                             float preferred_prior) {
  CountryChoice out;
  const auto fitting = formats.match(text);
  const PlateFormat* by_format = formats.likeliest(text, preferred);
  if (probs.empty() || probs.size() != classes.size()) {
    if (by_format) out = {by_format->country, 1.0f, by_format};
    return out;
  }
  std::map<std::string, float> score;
  for (std::size_t i = 0; i < classes.size(); ++i)
    if (formats.has_country(classes[i])) score[classes[i]] = probs[i] + kClassifierFloor;
  for (const PlateFormat* f : fitting) score.emplace(f->country, kClassifierFloor);
  float total = 0;
  for (auto& [country, s] : score) {
    const bool fits =
        std::any_of(fitting.begin(), fitting.end(), [&](const auto* f) { return f->country == country; });
    if (!fitting.empty() && !fits) s *= kNoFitPenalty;
    if (!preferred.empty() && country == preferred) s *= std::max(preferred_prior, 1.0f);
    total += s;
  }
  if (score.empty() || total <= 0) return out;
  const auto best = std::max_element(score.begin(), score.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  out.country = best->first;
  out.confidence = best->second / total;
  out.format = formats.likeliest(text, out.country);
  if (out.format && out.format->country != out.country) out.format = nullptr;
  return out;
}

std::size_t choose_read(const std::vector<std::string>& classes, const std::vector<float>& probs,
                        const FormatSet& formats, const std::vector<Candidate>& candidates,
                        const std::string& preferred, float preferred_prior, float unfit_factor) {
  if (probs.empty() || probs.size() != classes.size() || candidates.size() < 2) return 0;
  std::size_t best = 0;
  double best_score = -1;
  for (std::size_t k = 0; k < candidates.size(); ++k) {
    const auto fitting = formats.match(candidates[k].text);
    double look = 0;
    for (std::size_t i = 0; i < classes.size(); ++i) {
      if (!formats.has_country(classes[i])) continue;
      const bool fits = std::any_of(fitting.begin(), fitting.end(),
                                    [&](const auto* f) { return f->country == classes[i]; });
      double s = (probs[i] + kClassifierFloor) * (fits ? 1.0 : unfit_factor);
      if (!preferred.empty() && classes[i] == preferred) s *= std::max(preferred_prior, 1.0f);
      look = std::max(look, s);
    }
    const double score = double(candidates[k].confidence) * look;
    if (score > best_score) best = k, best_score = score;
  }
  return best;
}

}  // namespace detail
}  // namespace vigil
