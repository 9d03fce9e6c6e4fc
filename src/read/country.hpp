// The plate's country: a small classifier on the colour plate (models/country.onnx, see
// training/train_country.py) combined with the plate formats its read fits.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "common/net_pool.hpp"
#include "read/reader.hpp"
#include "vigil/formats.hpp"

namespace vigil {

class CountryClassifier {
 public:
  // Reads country.onnx and country.json from `models_dir`. Fails naming the file; the recognizer runs on
  // the formats alone without it.
  static Result<CountryClassifier> load(const std::string& models_dir);

  // Probability of each of classes() for the plate with these corners (TL, TR, BR, BL). Thread-safe.
  std::vector<float> classify(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& quad) const;
  const std::vector<std::string>& classes() const { return classes_; }

 private:
  std::shared_ptr<NetPool> nets_;
  RectifyGeometry geometry_;
  std::vector<std::string> classes_;
  double scale_ = 1.0 / 255.0, mean_ = 0.5, std_ = 0.5;
};

namespace detail {

struct CountryChoice {
  std::string country;      // "" when neither the classifier nor a format names one
  float confidence = 0.0f;  // its share of all countries' scores, 0..1
  const PlateFormat* format = nullptr;  // the country's likeliest format the text fits; nullptr: none
};

// The country of a read: each country of the region scores (its classifier probability + a small floor)
// times a penalty when the text fits formats but none of that country's, times `preferred_prior` for the
// preferred country. Without classifier probabilities (empty `probs`) only formats decide, as before.
// `classes` and `probs` are parallel; countries outside `formats` (the region) are not considered.
CountryChoice choose_country(const std::vector<std::string>& classes, const std::vector<float>& probs,
                             const FormatSet& formats, const std::string& text, const std::string& preferred,
                             float preferred_prior);

// Which of a plate's candidate reads to keep once its looks are known: each candidate scores its
// probability times its likeliest country's look, (classifier probability + a small floor) x
// `unfit_factor` when the text fits none of that country's formats (x `preferred_prior` for the
// preferred country). A Belgian-looking plate read "1ET0293" (89%, a Czech layout) and "1ETO293" (10%,
// the Belgian one) keeps the Belgian read. Returns the index of the candidate to keep; 0 (the decoder's
// choice) without classifier probabilities or candidates.
std::size_t choose_read(const std::vector<std::string>& classes, const std::vector<float>& probs,
                        const FormatSet& formats, const std::vector<Candidate>& candidates,
                        const std::string& preferred, float preferred_prior, float unfit_factor);

}  // namespace detail
}  // namespace vigil
