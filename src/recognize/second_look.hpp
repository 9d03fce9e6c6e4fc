// Which of several reads of one plate is kept: a second, wider look; one line or two (internal).
#pragma once

#include <string>

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

// A read below this is a guess: fitting a format does not make it beat a sure read that fits none.
inline constexpr float kGuess = 0.02f;
// A two-line read that holds the whole one-line read and more wins from this sure.
inline constexpr float kTwoLineExtends = 0.3f;
// A close-up read that holds the full pass's read and more wins from this sure.
inline constexpr float kCloseUpExtends = 0.5f;

// Whether `second` replaces `first`, two reads of one plate where `second` may show all of what `first`
// shows a piece of. A read fitting a format beats one fitting none, unless it is a guess against a sure
// read. `second` holding `first` and more wins from `extends_from`. Otherwise the more probable wins.
// `Read` is Decoded or Plate.
template <class Read>
bool fuller_read_wins(const Read& first, const Read& second, float extends_from) {
  if (first.fits_format != second.fits_format) {
    const Read& fitting = second.fits_format ? second : first;
    const Read& other = second.fits_format ? first : second;
    return (fitting.confidence >= kGuess || other.confidence <= 0.5f) == second.fits_format;
  }
  if (second.text.size() > first.text.size() && second.text.find(first.text) != std::string::npos &&
      second.confidence >= extends_from)
    return true;
  return second.confidence > first.confidence;
}

// Whether a squarish plate's two-line read (its halves side by side) replaces its one-line read, by
// fuller_read_wins from kTwoLineExtends: a fitting guess loses to a vanity plate read right as one line
// (whose two halves make some fitting string at 0.1%), and squeezed into one line a two-line plate shows
// its taller line, which the reader reads surely, and loses the other.
bool two_line_wins(const Decoded& one, const Decoded& two);

// Whether the read along the close-up pass's corners of a plate filling much of the picture replaces the
// read along the full pass's (see Detection::other_corners), by fuller_read_wins from kCloseUpExtends.
// The full pass sees such a plate beyond the sizes it was trained on and often boxes only a part of it,
// which it reads surely ("K17965" of "K179658"); from even odds, not a loose box's read of the same
// characters and a stray one from the frame ("5VCF2037" at 44% against "5VCF203" at 98%).
template <class Read>
bool close_up_wins(const Read& full, const Read& close_up) {
  return fuller_read_wins(full, close_up, kCloseUpExtends);
}

}  // namespace vigil::detail
