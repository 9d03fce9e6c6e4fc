// Level: a plate whose corners lie tilted by at least RecognizerOptions::level_above degrees is located
// again in a window turned so it lies level, and read from those corners turned back. The detector places
// a level plate's corners best (on a tilted one they turn less than the plate: most real training boxes
// are axis-aligned), and the reader learned along such corners.
#include <cmath>

#include "detect/boxes.hpp"
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

// Plates steeper than this are left alone: a box on its side is no plate lying level.
constexpr double kLevelMaxDegrees = 50.0;

bool wanted(const CornerWork& w) {
  const double tilt = std::abs(plate_tilt_degrees(w.detection.corners));
  return tilt >= w.options.level_above && tilt <= kLevelMaxDegrees;
}

void run(CornerWork& w) {
  take_corners(w, w.locator.level(w.image, w.detection, w.threshold, w.options.refine_width),
               kLevelPass.name);
}

}  // namespace

const CornerPass kLevelPass{"level", wanted, run};

}  // namespace vigil::recognize
