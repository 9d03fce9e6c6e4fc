#include "recognize/second_look.hpp"

#include <utility>

namespace vigil::detail {

int fit_level(const Decoded& read, const FormatSet& formats) {
  if (!read.fits_format) return 0;
  for (const auto& f : formats.formats())
    if (f.country == read.country && f.name == read.format) return f.prior >= 1.0f ? 2 : 1;
  return 1;
}

bool wants_second_look(const Decoded& first, const FormatSet& formats) {
  return !(fit_level(first, formats) == 2 && first.confidence >= kSureRead);
}

bool second_look_wins(const Decoded& first, const Decoded& wide, const FormatSet& formats) {
  if (first.fits_format && first.confidence >= kSureRead) {
    const bool extends = wide.text.size() > first.text.size() &&
                         (wide.text.starts_with(first.text) || wide.text.ends_with(first.text));
    return extends && fit_level(wide, formats) == 2 && wide.confidence >= kCatchAllReplacement;
  }
  return std::pair(wide.fits_format, wide.confidence) > std::pair(first.fits_format, first.confidence);
}

bool two_line_wins(const Decoded& one, const Decoded& two) {
  return fuller_read_wins(one, two, kTwoLineExtends);
}

}  // namespace vigil::detail
