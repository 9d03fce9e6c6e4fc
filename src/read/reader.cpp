#include "read/reader.hpp"

#include <cmath>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "common/json_file.hpp"

namespace vigil {

std::array<cv::Point2f, 4> expand_quad(const std::array<cv::Point2f, 4>& q, float margin_x, float margin_y) {
  const cv::Point2f ux = ((q[1] - q[0]) + (q[2] - q[3])) * 0.5f;
  const cv::Point2f uy = ((q[3] - q[0]) + (q[2] - q[1])) * 0.5f;
  const float sx[4] = {-1, 1, 1, -1}, sy[4] = {-1, -1, 1, 1};
  std::array<cv::Point2f, 4> out;
  for (int i = 0; i < 4; ++i) out[i] = q[i] + ux * (sx[i] * margin_x) + uy * (sy[i] * margin_y);
  return out;
}

float quad_aspect(const std::array<cv::Point2f, 4>& q) {
  const float w = 0.5f * float(cv::norm(q[1] - q[0]) + cv::norm(q[2] - q[3]));
  const float h = 0.5f * float(cv::norm(q[3] - q[0]) + cv::norm(q[2] - q[1]));
  return h > 0 ? w / h : 0.0f;
}

cv::Mat rectify_plate(const cv::Mat& image, const std::array<cv::Point2f, 4>& quad, bool two_line,
                      const RectifyGeometry& g) {
  const auto q = expand_quad(quad, g.margin_x, g.margin_y);
  const cv::Point2f src[4] = {q[0], q[1], q[2], q[3]};
  if (!two_line) {
    const cv::Point2f dst[4] = {{0, 0}, {float(g.width), 0}, {float(g.width), float(g.height)}, {0, float(g.height)}};
    cv::Mat out;
    cv::warpPerspective(image, out, cv::getPerspectiveTransform(src, dst), cv::Size(g.width, g.height),
                        cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    return out;
  }
  const int side = g.width / 2;
  const cv::Point2f dst[4] = {{0, 0}, {float(side), 0}, {float(side), float(2 * g.height)}, {0, float(2 * g.height)}};
  cv::Mat square;
  cv::warpPerspective(image, square, cv::getPerspectiveTransform(src, dst), cv::Size(side, 2 * g.height),
                      cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  cv::Mat out;
  cv::hconcat(square.rowRange(0, g.height), square.rowRange(g.height, 2 * g.height), out);
  return out;
}

Result<NeuralReader> NeuralReader::load(const std::string& models_dir) {
  const std::string side = models_dir + "/reader.json";
  auto meta = read_json_file(side);
  if (!meta) return Error{"reader model: " + meta.error()};
  NeuralReader r;
  try {
    const auto& j = *meta;
    r.geometry_.width = j.at("input_width");
    r.geometry_.height = j.at("input_height");
    r.geometry_.margin_x = j.value("margin_x", 0.04f);
    r.geometry_.margin_y = j.value("margin_y", 0.10f);
    r.second_look_ = r.geometry_;
    r.second_look_.margin_x = 2.0f * r.geometry_.margin_x;
    r.second_look_.margin_y = 1.6f * r.geometry_.margin_y;
    if (j.contains("second_look_margins")) {
      r.second_look_.margin_x = j["second_look_margins"].at(0).get<float>();
      r.second_look_.margin_y = j["second_look_margins"].at(1).get<float>();
    }
    r.alphabet_ = j.at("alphabet");
    r.scale_ = j.value("scale", 1.0 / 255.0);
    r.mean_ = j.value("mean", 0.5);
    r.std_ = j.value("std", 0.5);
    r.output_ = j.value("output", std::string("logits"));
    r.two_line_ = j.contains("two_line");
  } catch (const nlohmann::json::exception& e) {
    return Error{side + ": missing or bad field (" + e.what() + ")"};
  }
  if (r.alphabet_.empty() || r.geometry_.width < 8 || r.geometry_.height < 8)
    return Error{side + ": empty alphabet or input size out of range"};
  auto nets = NetPool::load(models_dir + "/reader.onnx");
  if (!nets) return Error{"reader model: " + nets.error()};
  r.nets_ = *nets;
  return r;
}

CtcOutput NeuralReader::read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& quad, bool two_line) const {
  return read(bgr, quad, two_line, geometry_);
}

CtcOutput NeuralReader::read(const cv::Mat& bgr, const std::array<cv::Point2f, 4>& quad, bool two_line,
                             const RectifyGeometry& geometry) const {
  cv::Mat plate = rectify_plate(bgr, quad, two_line, geometry);
  cv::Mat grey;
  if (plate.channels() == 3)
    cv::cvtColor(plate, grey, cv::COLOR_BGR2GRAY);
  else
    grey = plate;
  return read_rectified(grey);
}

CtcOutput NeuralReader::read_rectified(const cv::Mat& grey) const {
  cv::Mat input;
  grey.convertTo(input, CV_32F, scale_ / std_, -mean_ / std_);
  const int shape[4] = {1, 1, geometry_.height, geometry_.width};
  cv::Mat blob(4, shape, CV_32F, input.data);
  cv::Mat logits;
  {
    auto net = nets_->acquire();
    net->setInput(blob, "image");
    logits = net->forward(output_).clone();
  }
  CtcOutput out;
  out.alphabet = alphabet_;
  const int classes = int(alphabet_.size()) + 1;
  if (logits.dims != 4 || logits.size[1] != classes) return out;
  const int steps = logits.size[3];
  out.steps = steps;
  out.probs.resize(size_t(steps) * classes);
  for (int t = 0; t < steps; ++t) {
    float mx = -1e30f;
    for (int c = 0; c < classes; ++c) mx = std::max(mx, logits.ptr<float>(0, c)[t]);
    float sum = 0;
    for (int c = 0; c < classes; ++c) {
      const float e = std::exp(logits.ptr<float>(0, c)[t] - mx);
      out.probs[size_t(t) * classes + c] = e;
      sum += e;
    }
    for (int c = 0; c < classes; ++c) out.probs[size_t(t) * classes + c] /= sum;
  }
  return out;
}

}  // namespace vigil
