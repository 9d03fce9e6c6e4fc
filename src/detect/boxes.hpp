// Box and corner geometry shared by the detector and the recognition passes.
#pragma once

#include <array>
#include <opencv2/core.hpp>
#include <vector>

#include "vigil/recognizer.hpp"

namespace vigil {

// Intersection over union of two boxes.
float box_iou(const cv::Rect2f& a, const cv::Rect2f& b);

// The angle of a plate's top and bottom edges, in degrees, clockwise on the screen.
double plate_tilt_degrees(const std::array<cv::Point2f, 4>& corners);

// The whole-pixel box around four corners, inside an image of `size`.
cv::Rect corner_box(const std::array<cv::Point2f, 4>& corners, cv::Size size);

// Non-maximum suppression, highest score first: a box is dropped when it overlaps a kept one by more than
// `nms_iou`, or lies mostly inside a kept one of about its height (a tile's partial view of that plate) or
// width (one line of a two-line plate). A box much smaller both ways inside a kept one stays: a small plate
// inside a false box over its car. At most `max_plates` are kept.
std::vector<Detection> suppress_overlaps(std::vector<Detection> raw, float nms_iou, int max_plates);

}  // namespace vigil
