// The full pass: the whole image at the scale that fits its long side into the network input (in video,
// only the regions that moved and the open tracks, at that same scale). Every picture gets it; the other
// proposal passes add what it cannot see.
#include <algorithm>
#include <cmath>

#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

// A region is searched over at least this many network input pixels on each side (the network's
// receptive field).
constexpr int kMinRegionNetPixels = 96;
// Regions adding up to this share of the image are searched in one full pass: it costs less than
// overlapping ones.
constexpr double kFullPassAreaShare = 0.6;

bool wanted(const Proposals&) { return true; }

// The regions snapped outwards to the full pass's coarsest feature grid (pad_multiple network pixels), so
// the network sees a region's pixels exactly as in a full pass.
std::vector<cv::Rect> region_passes(const Proposals& p) {
  const cv::Rect whole(0, 0, p.image.cols, p.image.rows);
  const double scale = p.full_scale();
  const double grid = p.locator.pad_multiple() / scale;
  const int min_side = int(std::ceil(kMinRegionNetPixels / scale));
  auto snap_down = [&](int v) { return int(std::floor(std::floor(v / grid) * grid)); };
  auto snap_up = [&](int v) { return int(std::ceil(std::ceil(v / grid) * grid)); };
  double area = 0;
  std::vector<cv::Rect> passes;
  for (cv::Rect r : *p.regions) {
    r &= whole;
    if (r.empty()) continue;
    // Grow regions too small for the network's receptive field around their centre.
    if (r.width < min_side) r = cv::Rect(r.x + r.width / 2 - min_side / 2, r.y, min_side, r.height) & whole;
    if (r.height < min_side) r = cv::Rect(r.x, r.y + r.height / 2 - min_side / 2, r.width, min_side) & whole;
    r = cv::Rect(cv::Point(snap_down(r.x), snap_down(r.y)), cv::Point(snap_up(r.br().x), snap_up(r.br().y))) &
        whole;
    passes.push_back(r);
    area += r.area();
  }
  if (area >= kFullPassAreaShare * whole.area()) passes.assign(1, whole);
  return passes;
}

void run(Proposals& p) {
  const cv::Rect whole(0, 0, p.image.cols, p.image.rows);
  if (p.regions) {
    for (const auto& r : region_passes(p)) {
      auto raw = p.locator.look(p.image, r, p.full_scale(), p.threshold);
      for (auto& d : raw) {
        mark(d.passes, kFullPass.name);
        p.found.push_back(std::move(d));
      }
    }
    return;
  }
  // Small images (the network enlarges them) keep their candidates down to half the threshold: the second
  // scale pass averages their scores with its own look's. A peak is a peak whatever the threshold, so
  // those at or above it are what a pass at the threshold finds.
  const bool small = p.long_side <= p.input_size;
  p.full_candidates = p.locator.look(p.image, whole, p.full_scale(), small ? p.threshold / 2 : p.threshold);
  for (auto& d : p.full_candidates) {
    mark(d.passes, kFullPass.name);
    if (d.score >= p.threshold) p.found.push_back(d);
  }
}

}  // namespace

const ProposalPass kFullPass{"full", wanted, run};

}  // namespace vigil::recognize
