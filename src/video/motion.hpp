// Motion gating: is a frame different enough from the last recognised one to be worth recognising?
#pragma once

#include <opencv2/core.hpp>
#include <vector>

#include "vigil/video.hpp"

namespace vigil {

// Compares downscaled grey frames with a reference frame (the last one accepted). Not thread-safe.
class MotionGate {
 public:
  // `roi`: polygon in frame pixels; only pixels inside it are compared (empty: the whole frame).
  MotionGate(const MotionOptions& options, std::vector<cv::Point2f> roi);

  // Fraction (0..1) of the compared pixels that changed between `bgr` and the reference, after the
  // threshold and the dilation. 1 when there is no reference yet or the frame size changed.
  double changed_fraction(const cv::Mat& bgr);
  // True when a changed fraction is enough motion to recognise the frame.
  bool moving(double fraction) const { return fraction >= options_.area_min; }
  // Where the frame last passed to changed_fraction() changed (frame pixels, widened by one compared
  // pixel): the whole frame when there was no reference, empty when nothing changed.
  cv::Rect changed_area() const { return changed_area_; }
  // The frame last passed to changed_fraction() becomes the reference.
  void accept();
  // Forgets the reference: the next frame counts as moving.
  void reset() { reference_.release(); }

 private:
  MotionOptions options_;
  std::vector<cv::Point2f> roi_;
  cv::Size frame_size_;
  cv::Mat mask_;  // ROI mask at the downscaled size; empty: whole frame
  int mask_area_ = 0;
  cv::Mat current_, reference_, diff_;
  cv::Rect changed_area_;
};

}  // namespace vigil
