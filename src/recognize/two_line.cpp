// Two lines: a squarish plate (square European and motorcycle plates) is read again as two lines, its
// halves side by side, and the better read kept (two_line_wins).
#include "read/reader.hpp"
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

// Plates whose reads are better as two lines are squarish; a one-line EU plate is ~4.7:1.
constexpr float kTwoLineMaxAspect = 3.0f;

bool wanted(const ReadWork& w) {
  return w.reader.reads_two_line() && quad_aspect(w.corners) < kTwoLineMaxAspect;
}

void run(ReadWork& w) {
  Plate two = w.reader.read(w.image, w.corners, true, false);
  if (two_line_wins(w.plate, two)) replace_read(w.plate, std::move(two), kTwoLinePass.name);
}

}  // namespace

const ReadPass kTwoLinePass{"two-line", wanted, run};

}  // namespace vigil::recognize
