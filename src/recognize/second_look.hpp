// When a plate gets a second, wider look, and which of the two reads is kept (internal).
#pragma once

#include "vigil/formats.hpp"

namespace vigil::detail {

// Reads fitting a specific format at least this sure get no second look.
inline constexpr float kSureRead = 0.9f;
// A sure read fitting only a catch-all layout is replaced by a second look that extends it and fits a
// specific layout at least this sure.
inline constexpr float kCatchAllReplacement = 0.5f;

// How well a read fits the known layouts: 2 a specific one, 1 only a catch-all (a layout with a prior
// below 1, such as the generic US one, which also admits most misreads of other countries' plates:
// French "2348 XR 25" cut to "2348XR2"), 0 none.
int fit_level(const Decoded& read, const FormatSet& formats);

// Whether `first` deserves a second look from a wider crop.
bool wants_second_look(const Decoded& first, const FormatSet& formats);

// Whether the wider crop's read replaces the first: for an uncertain first read, the one fitting a
// format and then the more probable wins; a sure read fitting only a catch-all is replaced only when
// the wider crop shows what the first cut off (the same characters and more at one end) and fits a
// specific layout.
bool second_look_wins(const Decoded& first, const Decoded& wide, const FormatSet& formats);

}  // namespace vigil::detail
