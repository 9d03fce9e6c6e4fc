// The neural plate detector (CenterNet-style ONNX model, see models/detector.json and
// training/train_detector.py): plate centres on a stride-4 heatmap plus the four corners.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "common/net_pool.hpp"
#include "vigil/recognizer.hpp"

namespace vigil {

class PlateDetector {
 public:
  // Reads detector.onnx and its sidecar detector.json from `models_dir`.
  static Result<PlateDetector> load(const std::string& models_dir);

  // Every plate in the BGR image, in image pixels, NMS applied, highest score first. Thread-safe.
  std::vector<Detection> detect(const cv::Mat& bgr, const DetectorOptions& options) const;

  float default_threshold() const { return threshold_; }
  float default_nms_iou() const { return nms_iou_; }
  int default_input_size() const { return input_size_; }

 private:
  // Runs the network on `roi` of the image scaled by `scale`; appends raw detections.
  void run_pass(const cv::Mat& bgr, const cv::Rect& roi, int input_size, float threshold,
                std::vector<Detection>& out) const;

  std::shared_ptr<NetPool> nets_;
  int input_size_ = 512;
  int pad_multiple_ = 32;
  int stride_ = 4;
  float corner_scale_ = 16.0f;
  float threshold_ = 0.3f;
  float nms_iou_ = 0.4f;
  bool rgb_ = true;
  double scale_ = 1.0 / 255.0;
  cv::Scalar mean_{0, 0, 0};
  cv::Scalar std_{1, 1, 1};
  std::string output_ = "out";
};

// Intersection over union of two boxes.
float box_iou(const cv::Rect2f& a, const cv::Rect2f& b);

}  // namespace vigil
