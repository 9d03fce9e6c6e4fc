// Refine: a plate found narrower than RecognizerOptions::refine_below network pixels in the full pass
// has its corners placed to a pixel or two of a plate a few network pixels tall, too coarse for the
// reader. It is located again in a window around it scaled so it is refine_width network pixels wide.
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

bool wanted(const CornerWork& w) {
  return w.options.refine_below > 0 && w.detection.box.width * w.full_scale < w.options.refine_below;
}

void run(CornerWork& w) {
  take_corners(w, w.locator.refine(w.image, w.detection, w.threshold, w.options.refine_width),
               kRefinePass.name);
}

}  // namespace

const CornerPass kRefinePass{"refine", wanted, run};

}  // namespace vigil::recognize
