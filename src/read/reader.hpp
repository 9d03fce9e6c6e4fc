// The neural plate reader (conv CTC ONNX model, see models/reader.json and training/train_reader.py)
// and the rectification that cuts a plate out of the image from its four corners.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "common/net_pool.hpp"
#include "vigil/formats.hpp"

namespace vigil {

struct RectifyGeometry {
  int width = 128, height = 32;    // network input
  float margin_x = 0.04f;          // quad expansion per side, fraction of the plate's width
  float margin_y = 0.10f;          // ... and height
};

// Expands the quad (TL, TR, BR, BL) along the plate's own axes by the margins.
std::array<cv::Point2f, 4> expand_quad(const std::array<cv::Point2f, 4>& quad, float margin_x, float margin_y);

// Warps the plate to width x height (one line) or, for a two-line plate, to (width/2) x (2*height) and
// puts the two halves side by side, so both layouts become one width x height line. Output has the
// input's type (grey or BGR).
cv::Mat rectify_plate(const cv::Mat& image, const std::array<cv::Point2f, 4>& quad, bool two_line,
                      const RectifyGeometry& geometry);

// Width / height of the quad, from the mean lengths of its opposite sides.
float quad_aspect(const std::array<cv::Point2f, 4>& quad);

class NeuralReader {
 public:
  // Reads reader.onnx and reader.json from `models_dir`.
  static Result<NeuralReader> load(const std::string& models_dir);

  // Per-step character probabilities for the plate with the given corners. Thread-safe.
  CtcOutput read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& quad, bool two_line) const;
  // The same with other margins around the quad.
  CtcOutput read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& quad, bool two_line,
                 const RectifyGeometry& geometry) const;
  // The same on an already rectified grey width x height image.
  CtcOutput read_rectified(const cv::Mat& grey) const;

  const RectifyGeometry& geometry() const { return geometry_; }
  // Wider margins for a second look at an uncertain read (a detector quad cutting into the characters).
  const RectifyGeometry& second_look_geometry() const { return second_look_; }
  bool supports_two_line() const { return two_line_; }

 private:
  std::shared_ptr<NetPool> nets_;
  RectifyGeometry geometry_;
  RectifyGeometry second_look_;
  std::string alphabet_;
  double scale_ = 1.0 / 255.0;
  double mean_ = 0.5, std_ = 0.5;
  std::string output_ = "logits";
  bool two_line_ = true;
};

}  // namespace vigil
