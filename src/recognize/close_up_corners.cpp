// Close-up corners: a plate filling much of the picture that both the full pass and the close-up pass
// found whole (Detection::other_corners) is read along both passes' corners, and the better read kept
// (close_up_wins): the full pass often boxes only a part of such a plate.
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

bool wanted(const ReadWork& w) { return w.detection.other_corners.has_value(); }

void run(ReadWork& w) {
  Plate close_up = w.read_along(*w.detection.other_corners);  // its box from its own corners
  if (close_up_wins(w.plate, close_up)) {
    mark(close_up.passes, kCloseUpCornersPass.name);
    w.plate = std::move(close_up);
  }
}

}  // namespace

const ReadPass kCloseUpCornersPass{"close-up-corners", wanted, run};

}  // namespace vigil::recognize
