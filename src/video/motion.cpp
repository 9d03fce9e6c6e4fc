#include "video/motion.hpp"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace vigil {

MotionGate::MotionGate(const MotionOptions& options, std::vector<cv::Point2f> roi)
    : options_(options), roi_(std::move(roi)) {
  options_.width = std::max(8, options_.width);
}

double MotionGate::changed_fraction(const cv::Mat& bgr) {
  if (bgr.empty()) return 0.0;
  const double scale = std::min(1.0, double(options_.width) / bgr.cols);
  const cv::Size small(std::max(1, int(std::lround(bgr.cols * scale))),
                       std::max(1, int(std::lround(bgr.rows * scale))));
  if (bgr.size() != frame_size_) {
    frame_size_ = bgr.size();
    reference_.release();
    mask_.release();
    mask_area_ = small.area();
    if (roi_.size() >= 3) {
      std::vector<cv::Point> poly;
      for (const auto& p : roi_)
        poly.emplace_back(int(std::lround(p.x * scale)), int(std::lround(p.y * scale)));
      mask_ = cv::Mat::zeros(small, CV_8U);
      cv::fillPoly(mask_, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(255));
      mask_area_ = cv::countNonZero(mask_);
      if (mask_area_ == 0) {  // an ROI thinner than a downscaled pixel: compare the whole frame
        mask_.release();
        mask_area_ = small.area();
      }
    }
  }
  cv::Mat resized;
  cv::resize(bgr, resized, small, 0, 0, cv::INTER_AREA);
  if (resized.channels() == 3) {
    cv::cvtColor(resized, current_, cv::COLOR_BGR2GRAY);
  } else if (resized.channels() == 4) {
    cv::cvtColor(resized, current_, cv::COLOR_BGRA2GRAY);
  } else {
    current_ = resized;
  }
  // Averaging over the downscale already removes most sensor noise; the blur takes compression speckle.
  cv::GaussianBlur(current_, current_, cv::Size(3, 3), 0);
  changed_area_ = cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (reference_.empty()) return 1.0;
  cv::absdiff(current_, reference_, diff_);
  cv::threshold(diff_, diff_, options_.pixel_threshold, 255, cv::THRESH_BINARY);
  if (options_.dilate > 0) cv::dilate(diff_, diff_, cv::Mat(), cv::Point(-1, -1), options_.dilate);
  if (!mask_.empty()) cv::bitwise_and(diff_, mask_, diff_);
  const cv::Rect changed = cv::boundingRect(diff_);
  if (changed.empty()) {
    changed_area_ = cv::Rect();
  } else {
    const double fx = double(bgr.cols) / diff_.cols, fy = double(bgr.rows) / diff_.rows;
    changed_area_ = cv::Rect(cv::Point(int((changed.x - 1) * fx), int((changed.y - 1) * fy)),
                             cv::Point(int(std::ceil((changed.br().x + 1) * fx)),
                                       int(std::ceil((changed.br().y + 1) * fy)))) &
                    cv::Rect(0, 0, bgr.cols, bgr.rows);
  }
  return mask_area_ > 0 ? double(cv::countNonZero(diff_)) / mask_area_ : 0.0;
}

void MotionGate::accept() {
  if (!current_.empty()) current_.copyTo(reference_);
}

}  // namespace vigil
