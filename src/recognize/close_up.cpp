// The close-up pass: a plate filling much of the picture (a close-up, a plate crop, a car at the kerb)
// is wider than the full pass's plates in training. There it shows as its pieces (a group of characters
// read as a plate) or not at all. This pass finds it whole in the image shrunk into a wider frame.
#include <algorithm>

#include "detect/boxes.hpp"
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

// A full pass's box inside a close-up plate is that plate found whole from this IoU, else a piece of it (a
// group of characters: as tall, 55-80% as wide, IoU up to about 0.55 in the plate crops measured).
constexpr float kCloseUpSameIou = 0.6f;
// From this IoU the full pass found the close-up plate whole: both corners are read.
constexpr float kSamePlateIou = 0.5f;
// A close-up plate's corners, found in the image shrunk to a long side of 128, are placed again by a
// refine pass with the plate this many network pixels wide (as small plates are): 80 read 3 more of 196
// plate crops, 64 and 112 no more.
constexpr int kCloseUpRefineNet = 80;

// A picture whose earlier passes found a sure plate and only plates narrower than any such piece needs no
// close-up pass: most photos and frames. In video most regions searched hold no sure plate (whatever
// moved was no car), so there only a possible piece calls for it.
bool wanted(const Proposals& p) {
  const double piece_width = double(kCloseUpPieceNet) * p.long_side / p.input_size;
  const bool piece = std::any_of(p.found.begin(), p.found.end(),
                                 [&](const Detection& d) { return d.box.width >= piece_width; });
  if (p.regions) return piece;
  return piece || std::none_of(p.found.begin(), p.found.end(),
                               [&](const Detection& d) { return d.score >= p.strong; });
}

// Each close-up plate replaces the pieces lying inside it; where the earlier passes found it whole as
// well, both corners are read (Detection::other_corners, the close-up-corners read variant).
void run(Proposals& p) {
  const double min_width = double(kFullPassMaxPlateNet) * p.long_side / p.input_size;
  for (auto c : p.locator.close_up_look(p.image, p.strong, min_width)) {
    c = p.locator.refine(p.image, c, p.strong, kCloseUpRefineNet);
    mark(c.passes, kCloseUpPass.name);
    const cv::Rect2f cb(c.box);
    bool found_whole = false;
    std::erase_if(p.found, [&](Detection& d) {
      const cv::Rect2f db(d.box);
      const float iou = box_iou(db, cb);
      // a piece: mostly inside, about its height, and not close to all of it (a box much smaller both ways
      // is a plate inside a false close-up box over its car, and stays)
      if (iou < kCloseUpSameIou && (db & cb).area() > 0.7f * db.area() && db.height > 0.5f * cb.height)
        return true;
      if (iou >= kSamePlateIou) {
        found_whole = true;
        d.score = std::max(d.score, c.score);
        d.other_corners = c.corners;
        mark(d.passes, kCloseUpPass.name);
      }
      return false;
    });
    if (!found_whole) p.found.push_back(c);
  }
}

}  // namespace

const ProposalPass kCloseUpPass{"close-up", wanted, run};

}  // namespace vigil::recognize
