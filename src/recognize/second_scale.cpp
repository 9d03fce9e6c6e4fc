// The second scale: a small image (long side at most the network input, which the full pass enlarges) is
// looked at a second time, enlarged kSecondScale times more, and each plate's score is the mean of its two
// looks: looks that agree are surer than one, so the faint plates of a 320x240 street photo one look
// leaves below the threshold are found, without the false boxes a lower threshold brings.
#include <algorithm>

#include "detect/boxes.hpp"
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

// 2 found about as many plates (85.5% of the Spanish ones against 84.9%) at almost twice the cost.
constexpr double kSecondScale = 1.5;
// A look is matched to the other's detection of the same plate from this IoU (the two looks' corners of a
// plate a few network pixels tall differ by a pixel or two); a plate one look misses scores 0 there.
constexpr float kSameIou = 0.3f;
// Added to the mean of two looks, which is surer than one score: chosen on the Spanish training photos as
// the most plates found at no lower precision than one look at the threshold.
constexpr float kBonus = 0.02f;
// A picture whose full pass shows a piece of a close-up plate (a plate crop, a car at the kerb) needs no
// second look for faint small plates: on the 292 European plate crops it changed no read and cost more
// than the full pass (7.8 against 3.7 ms a crop).
bool wanted(const Proposals& p) {
  if (p.regions || p.long_side > p.input_size) return false;
  const double piece_width = double(kCloseUpPieceNet) * p.long_side / p.input_size;
  return std::none_of(p.full_candidates.begin(), p.full_candidates.end(),
                      [&](const Detection& d) { return d.box.width >= piece_width; });
}

void run(Proposals& p) {
  const double scale = kSecondScale * p.input_size / p.long_side;
  auto second = p.locator.look(p.image, cv::Rect(0, 0, p.image.cols, p.image.rows), scale, p.threshold / 2,
                               Locator::Nets::kSecondScale);
  // Plates wider than training showed the network at that scale are no look at all: the full pass (or the
  // close-up pass) alone judges them.
  const double widest = kFullPassMaxPlateNet / scale;
  std::erase_if(second, [&](const Detection& d) { return d.box.width > widest; });
  std::vector<bool> matched(second.size(), false);
  auto mean = [](float a, float b) { return std::min(1.0f, (a + b) / 2 + kBonus); };
  std::vector<Detection> full = p.full_candidates;
  for (auto& d : full) {
    if (d.box.width > widest) continue;
    // the full pass keeps its corners: the reader learned along them
    int best = -1;
    float best_iou = kSameIou;
    for (std::size_t j = 0; j < second.size(); ++j) {
      const float iou = box_iou(d.box, second[j].box);
      if (iou >= best_iou) best = int(j), best_iou = iou;
    }
    d.score = mean(d.score, best >= 0 ? second[best].score : 0.0f);
    mark(d.passes, kSecondScalePass.name);
    if (best >= 0) matched[best] = true;
  }
  for (std::size_t j = 0; j < second.size(); ++j) {
    if (matched[j]) continue;
    second[j].score = mean(0.0f, second[j].score);
    mark(second[j].passes, kSecondScalePass.name);
    full.push_back(second[j]);
  }
  std::erase_if(full, [&](const Detection& d) { return d.score < p.threshold; });
  p.found = std::move(full);
}

}  // namespace

const ProposalPass kSecondScalePass{"second-scale", wanted, run};

}  // namespace vigil::recognize
