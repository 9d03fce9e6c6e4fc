#include "detect/boxes.hpp"

#include <algorithm>
#include <cmath>

namespace vigil {

float box_iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

double plate_tilt_degrees(const std::array<cv::Point2f, 4>& corners) {
  const cv::Point2f along = (corners[1] - corners[0]) + (corners[2] - corners[3]);
  return std::atan2(along.y, along.x) * 180.0 / CV_PI;
}

cv::Rect corner_box(const std::array<cv::Point2f, 4>& corners, cv::Size size) {
  float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
  for (const auto& c : corners)
    x0 = std::min(x0, c.x), y0 = std::min(y0, c.y), x1 = std::max(x1, c.x), y1 = std::max(y1, c.y);
  return cv::Rect(cv::Point(int(x0), int(y0)), cv::Point(int(std::ceil(x1)), int(std::ceil(y1)))) &
         cv::Rect(cv::Point(), size);
}

std::vector<Detection> suppress_overlaps(std::vector<Detection> raw, float nms_iou, int max_plates) {
  std::stable_sort(raw.begin(), raw.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (auto& d : raw) {
    if (int(kept.size()) >= max_plates) break;
    bool suppressed = false;
    for (const auto& k : kept) {
      const cv::Rect2f a(d.box), b(k.box);
      const float inside = (a & b).area() / std::max(1.0f, a.area());
      const bool part_of = inside > 0.7f && (a.height > 0.5f * b.height || a.width > 0.5f * b.width);
      if (box_iou(a, b) > nms_iou || part_of) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(std::move(d));
  }
  return kept;
}

}  // namespace vigil
