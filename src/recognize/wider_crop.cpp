// Wider crop: detector corners sometimes cut into the first or last character. An uncertain read (below
// kSureRead, or fitting no specific format) is read again from a crop with wider margins (reader.json
// "second_look_margins"), and the better read kept (second_look_wins).
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

bool wanted(const ReadWork& w) { return w.reader.reads_wide() && wants_second_look(w.plate, w.formats); }

void run(ReadWork& w) {
  Plate wide = w.reader.read(w.image, w.corners, w.plate.two_line, true);
  if (second_look_wins(w.plate, wide, w.formats)) replace_read(w.plate, std::move(wide), kWiderCropPass.name);
}

}  // namespace

const ReadPass kWiderCropPass{"wider-crop", wanted, run};

}  // namespace vigil::recognize
