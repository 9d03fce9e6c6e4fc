// Helpers shared by the tracker and the vote (src/track), exposed to tests/tracker_test.cpp.
#pragma once

#include <opencv2/core.hpp>
#include <string>

namespace vigil::track {

// 1 - Levenshtein(a, b) / max(|a|, |b|): 1 for equal texts, 0 for texts sharing nothing. Two empty
// texts are equal (1).
float text_similarity(const std::string& a, const std::string& b);

// Intersection over union of two boxes; 0 when either is empty.
double iou(const cv::Rect2d& a, const cv::Rect2d& b);

// Direction of travel from the first to the last box of a pass: "approaching" (|dy| dominant and the
// box grows), "leaving" (it shrinks), "left"/"right" (|dx| dominant), "" when the centre moved less
// than half a plate width. With |dy| dominant and a size change under 10 %, moving down the image
// counts as approaching (a camera looking along the road).
std::string direction_of(const cv::Rect& first, const cv::Rect& last);

}  // namespace vigil::track
