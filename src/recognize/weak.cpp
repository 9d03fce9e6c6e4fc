// Weak detections: detector scores from RecognizerOptions::weak_threshold up to the detector's threshold
// are read too (at most max_weak_reads per picture), and kept only when the reader confirms a plate: a
// read fitting a known format with at least weak_min_confidence. This recovers plates the detector is
// unsure of (small, dirty, unusual) without the false boxes a lower detector threshold brings.
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

bool wanted(const ReadWork& w) { return w.detection.weak; }

void run(ReadWork& w) {
  w.keep = w.plate.fits_format && w.plate.confidence >= w.options.weak_min_confidence;
  if (w.keep) mark(w.plate.passes, kWeakPass.name);
}

}  // namespace

const ReadPass kWeakPass{"weak", wanted, run};

}  // namespace vigil::recognize
