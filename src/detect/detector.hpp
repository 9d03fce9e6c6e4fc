// The neural plate detector (CenterNet-style ONNX model, see models/detector.json and
// training/train_detector.py): plate centres on a stride-4 heatmap plus the four corners. It runs the
// network; which passes run where, and how their plates merge, is src/recognize/.
#pragma once

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "common/net_pool.hpp"
#include "detect/boxes.hpp"
#include "recognize/passes.hpp"
#include "vigil/recognizer.hpp"

namespace vigil {

class PlateDetector final : public recognize::Locator {
 public:
  // Reads detector.onnx and its sidecar detector.json from `models_dir`.
  static Result<PlateDetector> load(const std::string& models_dir);

  // recognize::Locator (see there); thread-safe.
  std::vector<Detection> look(const cv::Mat& bgr, const cv::Rect& roi, double scale, float threshold,
                              Nets nets = Nets::kFull, int min_side = 0) const override;
  // The image shrunk so its long side is half of a kRefineWindowNet square (the shape of the refine
  // networks, so it borrows them without re-planning), zero all around.
  std::vector<Detection> close_up_look(const cv::Mat& bgr, float threshold, double min_width) const override;
  // `d` located again by a pass over a window around it, scaled so the plate is about `net_width`
  // network pixels wide: a plate found small (a few network pixels tall) gets its corners placed more
  // exactly, which is what the reader needs. `d` unchanged when that pass does not find it.
  Detection refine(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const override;
  // `d` located again in a window turned about its centre so the plate lies level, scaled so it is about
  // `net_width` network pixels wide; its corners mapped back to the image, its box kept. `d` unchanged when
  // that pass does not find it.
  Detection level(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const override;

  float threshold() const override { return threshold_; }
  float weak_threshold() const override { return weak_threshold_; }
  float nms_iou() const override { return nms_iou_; }
  int input_size() const override { return input_size_; }
  int pad_multiple() const override { return pad_multiple_; }

 private:
  // The window of a refine() pass, network pixels on each side.
  static constexpr int kRefineWindowNet = 256;
  // The window of a level() pass, network pixels, multiples of pad_multiple: around a plate 80 wide it
  // read as well as a 256 square in the sets measured, at a fifth of the cost.
  static constexpr int kLevelWindowNetWidth = 128, kLevelWindowNetHeight = 96;

  NetPool* pool(Nets nets) const;

  std::shared_ptr<NetPool> nets_;
  // refine() passes, all kRefineWindowNet square: OpenCV re-plans a network for every new input shape,
  // so they borrow networks of their own rather than reshaping those of the full passes.
  std::shared_ptr<NetPool> refine_nets_;
  std::shared_ptr<NetPool> level_nets_;   // level() passes, all kLevelWindowNetWidth x Height
  std::shared_ptr<NetPool> second_nets_;  // second looks at small images
  int input_size_ = 512;
  int pad_multiple_ = 32;
  int stride_ = 4;
  float corner_scale_ = 16.0f;
  float threshold_ = 0.3f;
  float weak_threshold_ = 0.3f;  // = threshold_ when the sidecar has none: no weak detections
  float nms_iou_ = 0.4f;
  bool rgb_ = true;
  double scale_ = 1.0 / 255.0;
  cv::Scalar mean_{0, 0, 0};
  cv::Scalar std_{1, 1, 1};
  std::string output_ = "out";
};

}  // namespace vigil
