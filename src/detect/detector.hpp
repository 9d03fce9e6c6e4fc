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
  // Only inside `regions` (image pixels), each searched at the scale of a full pass over the image (no
  // tiles); regions covering most of the image become one full pass. The close-up pass runs when a
  // region shows what may be a piece of a plate too large for that scale. Thread-safe.
  std::vector<Detection> detect(const cv::Mat& bgr, const DetectorOptions& options,
                                const std::vector<cv::Rect>& regions) const;

  // `d` located again by a pass over a window around it, scaled so the plate is about `net_width`
  // network pixels wide: a plate found small (a few network pixels tall) gets its corners placed more
  // exactly, which is what the reader needs. `d` unchanged when that pass does not find it.
  Detection refine(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const;
  // `d` located again in a window turned about its centre so the plate lies level, scaled so it is about
  // `net_width` network pixels wide; its corners mapped back to the image. The detector places a level
  // plate's corners best (on a tilted one they turn less than the plate: most real training boxes are
  // axis-aligned), and the reader learned along such corners.
  // `d` unchanged when it is tilted less than `min_degrees` or that pass does not find it.
  Detection level(const cv::Mat& bgr, const Detection& d, float threshold, int net_width,
                  double min_degrees) const;

  float default_threshold() const { return threshold_; }
  float default_weak_threshold() const { return weak_threshold_; }
  float default_nms_iou() const { return nms_iou_; }
  int default_input_size() const { return input_size_; }

 private:
  // A region is searched over at least this many network input pixels on each side.
  static constexpr int kMinRegionNetPixels = 96;
  // Tiles are sized so a plate DetectorOptions::smallest_plate pixels wide is this many network pixels
  // wide: the detector finds plates from about 12 network pixels, surely from about 24.
  static constexpr int kTileNetPlate = 24;
  // A tile's detection overlapping a full pass's this much (IoU) is the same plate.
  static constexpr float kSamePlateIou = 0.5f;
  // The window of a refine() pass, network pixels on each side.
  static constexpr int kRefineWindowNet = 256;
  // Regions adding up to this share of the image are searched in one full pass instead.
  static constexpr double kFullPassAreaShare = 0.6;
  // Plates wider than this many network pixels of a full pass are beyond what training showed it: the
  // close-up pass finds them, in the image shrunk so its long side is half of a kRefineWindowNet square
  // (the shape of the refine() networks, so it borrows them without re-planning), zero all around.
  static constexpr int kFullPassMaxPlateNet = 224;
  // The pieces of such a plate that a full pass finds are at least this wide there (most are 190-300).
  static constexpr int kCloseUpPieceNet = 160;
  // A full pass's box inside a close-up plate is that plate found whole from this IoU, else a piece of it
  // (a group of characters: as tall, 55-80% as wide, IoU up to about 0.55 in the plate crops measured).
  static constexpr float kCloseUpSameIou = 0.6f;
  // A close-up plate's corners, found in the image shrunk to a long side of 128, are placed again by a
  // refine() pass with the plate this many network pixels wide (as small plates are): 80 read 3 more of
  // 196 plate crops, 64 and 112 no more.
  static constexpr int kCloseUpRefineNet = 80;
  // level() leaves plates steeper than this alone (a box on its side is no plate lying level).
  static constexpr double kLevelMaxDegrees = 50.0;
  // The window of a level() pass, network pixels, multiples of pad_multiple: around a plate 80 wide it
  // read as well as a 256 square in the sets measured, at a fifth of the cost.
  static constexpr int kLevelWindowNetWidth = 128, kLevelWindowNetHeight = 96;

  // A small image's second look (DetectorOptions::second_scale) enlarges it this much more than the full
  // pass: 2 found about as many plates (85.5% of the Spanish ones against 84.9%) at almost twice the cost.
  static constexpr double kSecondScale = 1.5;
  // A look is matched to the other's detection of the same plate from this IoU (the two looks' corners
  // of a plate a few network pixels tall differ by a pixel or two); a plate one look misses scores 0 there.
  static constexpr float kSecondScaleSameIou = 0.3f;
  // Added to the mean of two looks, which is surer than one score: chosen on the Spanish training
  // photos as the most plates found at no lower precision than one look at the threshold.
  static constexpr float kSecondScaleBonus = 0.02f;

  // Non-maximum suppression of raw detections, highest score first, at most options.max_plates.
  std::vector<Detection> suppress(std::vector<Detection> raw, const DetectorOptions& options) const;
  // Adds the close-up pass's plates at least `min_width` pixels wide to `merged`, each replacing the pieces
  // of it there; where `merged` holds the whole plate too, that detection gets its close-up corners.
  void add_close_up(const cv::Mat& bgr, float threshold, double min_width, std::vector<Detection>& merged) const;
  // The close-up pass's plates at least `min_width` pixels wide (see kFullPassMaxPlateNet), in image pixels.
  std::vector<Detection> close_up_pass(const cv::Mat& bgr, float threshold, double min_width) const;
  // The small image's second look (DetectorOptions::second_scale): `full` holds the full pass's raw
  // detections down to half of `threshold`; each gets the mean score of both looks, the second look's
  // plates the full pass missed are added, and those below `threshold` are dropped.
  void add_second_scale(const cv::Mat& bgr, int input_size, float threshold,
                        std::vector<Detection>& full) const;
  // Runs the network on `roi` of the image scaled so its long side is `input_size`; appends raw detections.
  void run_pass(const cv::Mat& bgr, const cv::Rect& roi, int input_size, float threshold,
                std::vector<Detection>& out) const;
  // Runs the network on `roi` of the image scaled by `scale`; appends raw detections. The input is padded
  // to at least min_side x min_side network pixels; `pool` is the network pool to borrow from.
  void run_pass_scaled(const cv::Mat& bgr, const cv::Rect& roi, double scale, float threshold,
                       std::vector<Detection>& out, NetPool* pool = nullptr, int min_side = 0) const;

  std::shared_ptr<NetPool> nets_;
  // refine() passes, all kRefineWindowNet square: OpenCV re-plans a network for every new input shape,
  // so they borrow networks of their own rather than reshaping those of the full passes.
  std::shared_ptr<NetPool> refine_nets_;
  std::shared_ptr<NetPool> level_nets_;  // level() passes, all kLevelWindowNetWidth x Height
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

// The angle of a plate's top and bottom edges, in degrees, clockwise on the screen.
double plate_tilt_degrees(const std::array<cv::Point2f, 4>& corners);

// Intersection over union of two boxes.
float box_iou(const cv::Rect2f& a, const cv::Rect2f& b);

// Non-maximum suppression, highest score first: a box is dropped when it overlaps a kept one by more than
// `nms_iou`, or lies mostly inside a kept one of about its height (a tile's partial view of that plate) or
// width (one line of a two-line plate). A box much smaller both ways inside a kept one stays: a small plate
// inside a false box over its car. At most `max_plates` are kept.
std::vector<Detection> suppress_overlaps(std::vector<Detection> raw, float nms_iou, int max_plates);

}  // namespace vigil
