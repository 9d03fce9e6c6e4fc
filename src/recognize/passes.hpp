// The recognition passes, as data (internal). A picture goes through three ordered lists:
//
//   proposal passes   full, second-scale, tiles, close-up       where plates may be; merged by NMS
//   corner refiners   refine, level                              where exactly a plate's corners lie
//   read variants     two-line, wider-crop, close-up-corners,    which read of a plate is kept: each
//                     weak                                       proposes another read and its own rule
//                                                                says whether it replaces the current one
//
// Each pass lives in its own file here with its constants and why it exists; it has a `wanted` test (is it
// worth running on this picture, plate or read?) and a `run`. RecognizerOptions::skip names passes not to
// run; profiles are lists of passes. The passes reach the networks only through Locator and ReadEngine, so
// their logic is tested with fakes (tests/passes_test.cpp), no models.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/formats.hpp"
#include "vigil/recognizer.hpp"

namespace vigil::recognize {

using Corners = std::array<cv::Point2f, 4>;

// The detector network, as the passes use it. Thread-safe.
class Locator {
 public:
  // Network instances are planned for one input shape each; passes of a fixed shape borrow their own.
  enum class Nets { kFull, kSecondScale, kRefine, kLevel };
  virtual ~Locator() = default;
  // Raw detections (peaks at or above `threshold`, before NMS) of one network pass over `roi` of `bgr`
  // scaled by `scale`, the input padded to at least min_side x min_side network pixels; image pixels.
  virtual std::vector<Detection> look(const cv::Mat& bgr, const cv::Rect& roi, double scale, float threshold,
                                      Nets nets = Nets::kFull, int min_side = 0) const = 0;
  // The close-up look: the image shrunk into a wider square frame; its plates at least `min_width` pixels
  // wide, in image pixels.
  virtual std::vector<Detection> close_up_look(const cv::Mat& bgr, float threshold,
                                               double min_width) const = 0;
  // `d` located again with the plate about `net_width` network pixels wide (unchanged when not found).
  virtual Detection refine(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const = 0;
  // `d` located again in a window turned so it lies level, its corners mapped back (unchanged when not
  // found).
  virtual Detection level(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const = 0;
  virtual float threshold() const = 0;       // the model's recommended score threshold
  virtual float weak_threshold() const = 0;  // from here up to threshold(): weak detections
  virtual float nms_iou() const = 0;
  virtual int input_size() const = 0;    // long side of a full pass, network pixels
  virtual int pad_multiple() const = 0;  // the network's coarsest feature grid, network pixels
};

// The reader network and the format-aware decoding, as the passes use them. Thread-safe.
class ReadEngine {
 public:
  virtual ~ReadEngine() = default;
  // The plate along `corners`, decoded (text, confidence, format fields, candidates): as one line or as
  // two lines side by side; `wide`: from a crop with the wider second-look margins.
  virtual Plate read(const cv::Mat& bgr, const Corners& corners, bool two_line, bool wide) const = 0;
  virtual bool reads_two_line() const = 0;  // the model learned two-line plates
  virtual bool reads_wide() const = 0;      // wider crops are worth a second look (not Tesseract)
};

// What each pass cost and did, added up over one picture (or a dataset).
class PassLog {
 public:
  using Clock = std::chrono::steady_clock;
  // One run of `pass`, from `since` until now.
  void add(std::string_view pass, Clock::time_point since);
  std::vector<PassTime> times;  // in the order the passes first ran
};

// Adds `pass` to a plate's or detection's list of the passes that produced or changed it (once).
void mark(std::vector<std::string>& passes, std::string_view pass);

template <class Context>
struct Pass {
  std::string_view name;
  bool (*wanted)(const Context&);
  void (*run)(Context&);
};

// ---- proposal passes -------------------------------------------------------------------------------
struct Proposals {
  const cv::Mat& image;
  const std::vector<cv::Rect>* regions;  // video: search only inside these (nullptr: the whole image)
  const Locator& locator;
  const DetectorOptions& options;
  float threshold;  // search threshold (the weak threshold when weak detections are wanted)
  float strong;     // the detector's own threshold (>= threshold)
  int input_size;   // long side of a full pass, network pixels
  int long_side;    // of the image, pixels
  // The full pass's peaks, raster order, down to half the threshold on small images (the second scale
  // pass averages their scores with its own look's).
  std::vector<Detection> full_candidates;
  std::vector<Detection> found;  // the proposals so far, each listing the passes that produced or changed it
  // Network pixels per image pixel in a full pass.
  double full_scale() const { return double(input_size) / long_side; }
};
using ProposalPass = Pass<Proposals>;
extern const ProposalPass kFullPass;         // full_pass.cpp
extern const ProposalPass kSecondScalePass;  // second_scale.cpp
extern const ProposalPass kTilesPass;        // tiles.cpp
extern const ProposalPass kCloseUpPass;      // close_up.cpp

// ---- corner refiners ------------------------------------------------------------------------------
struct CornerWork {
  const cv::Mat& image;
  const Locator& locator;
  const RecognizerOptions& options;
  float threshold;    // the search threshold the plate was proposed at
  double full_scale;  // network pixels per image pixel in a full pass
  Detection detection;
};
using CornerPass = Pass<CornerWork>;
// `moved` (the detection as a refiner placed it again) becomes the one worked on; when its corners moved,
// `pass` is added to its list of the passes that changed it.
void take_corners(CornerWork& w, Detection moved, std::string_view pass);
extern const CornerPass kRefinePass;  // refine.cpp
extern const CornerPass kLevelPass;   // level.cpp

// ---- read variants --------------------------------------------------------------------------------
struct ReadWork {
  const cv::Mat& image;
  const ReadEngine& reader;
  const FormatSet& formats;
  const RecognizerOptions& options;
  const Detection& detection;
  Corners corners;   // the corners being read
  Plate plate;       // the read kept so far (its passes list the variants that changed it)
  bool keep = true;  // false: no plate here (an unconfirmed weak detection)
  // The plate read along other corners with the variants listed before the caller (close-up corners).
  std::function<Plate(const Corners&)> read_along;
};
using ReadPass = Pass<ReadWork>;
extern const ReadPass kTwoLinePass;         // two_line.cpp
extern const ReadPass kWiderCropPass;       // wider_crop.cpp
extern const ReadPass kCloseUpCornersPass;  // close_up_corners.cpp
extern const ReadPass kWeakPass;            // weak.cpp

// Every pass, in the order they run, and the names RecognizerOptions::skip accepts.
const std::vector<const ProposalPass*>& proposal_passes();
const std::vector<const CornerPass*>& corner_passes();
const std::vector<const ReadPass*>& read_passes();

// ---- the pipeline ----------------------------------------------------------------------------------
struct Pipeline {
  const Locator& locator;
  const ReadEngine& reader;
  const FormatSet& formats;
  const RecognizerOptions& options;

  bool runs(std::string_view pass) const;  // not in options.skip
  // Proposals (NMS applied), then weak ones flagged and at most options.max_weak_reads of them, then
  // each one's corners refined. `with_weak`: detections from the weak threshold (when "weak" runs).
  // `known` (may be null): boxes of plates read in earlier frames; each claims the detection overlapping
  // it most (IoU >= kKnownPlateIou), whose corners are not refined, and `claimed` (when given) gets, per
  // detection returned, the index of the known box claiming it or -1.
  std::vector<Detection> detect(const cv::Mat& bgr, const std::vector<cv::Rect>* regions, bool with_weak,
                                PassLog& log, const std::vector<cv::Rect>* known = nullptr,
                                std::vector<int>* claimed = nullptr) const;
  // The plate at `d`, by the read variants; keep false when it is no plate.
  Plate read(const cv::Mat& bgr, const Detection& d, bool& keep, PassLog& log) const;
  // One read along `corners` (box from them) with the variants before list position `upto`.
  Plate read_along(const cv::Mat& bgr, const Detection& d, const Corners& corners, std::size_t upto,
                   PassLog& log) const;

 private:
  Plate run_reads(const cv::Mat& bgr, const Detection& d, const Corners& corners, std::size_t upto,
                  bool& keep, PassLog& log) const;
};

// `better` becomes the read kept, along the current read's corners and box, with `pass` added to its
// list of the passes that changed it.
void replace_read(Plate& current, Plate better, std::string_view pass);

// Plates wider than this many network pixels of a look are beyond what training showed the detector: the
// close-up pass finds them (close_up.cpp), and the second scale leaves them to the other passes.
inline constexpr int kFullPassMaxPlateNet = 224;
// The pieces of such a plate that a full pass finds are at least this wide there (most are 190-300): a
// picture showing one is a close-up.
inline constexpr int kCloseUpPieceNet = 160;

// A detection overlapping a plate known from earlier frames this much is that plate (consecutive video
// frames move a plate a few pixels).
inline constexpr float kKnownPlateIou = 0.3f;

// ---- arbitration rules shared by the read variants --------------------------------------------------
// Reads fitting a specific format at least this sure get no second look.
inline constexpr float kSureRead = 0.9f;
// A sure read fitting only a catch-all layout is replaced by a second look that extends it and fits a
// specific layout at least this sure.
inline constexpr float kCatchAllReplacement = 0.5f;
// A read below this is a guess: fitting a format does not make it beat a sure read that fits none.
inline constexpr float kGuess = 0.02f;
// A two-line read that holds the whole one-line read and more wins from this sure.
inline constexpr float kTwoLineExtends = 0.3f;
// A close-up read that holds the full pass's read and more wins from this sure.
inline constexpr float kCloseUpExtends = 0.5f;

// How well a read fits the known layouts: 2 a specific one, 1 only a catch-all (a layout with a prior
// below 1, such as the generic US one, which also admits most misreads of other countries' plates:
// French "2348 XR 25" cut to "2348XR2"), 0 none. `Read` is Decoded or Plate.
template <class Read>
int fit_level(const Read& read, const FormatSet& formats) {
  if (!read.fits_format) return 0;
  for (const auto& f : formats.formats())
    if (f.country == read.country && f.name == read.format) return f.prior >= 1.0f ? 2 : 1;
  return 1;
}

// Whether `second` replaces `first`, two reads of one plate where `second` may show all of what `first`
// shows a piece of. A read fitting a format beats one fitting none, unless it is a guess against a sure
// read. `second` holding `first` and more wins from `extends_from`. Otherwise the more probable wins.
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

// Whether `first` deserves a second look from a wider crop.
template <class Read>
bool wants_second_look(const Read& first, const FormatSet& formats) {
  return !(fit_level(first, formats) == 2 && first.confidence >= kSureRead);
}

// Whether the wider crop's read replaces the first: for an uncertain first read, the one fitting a
// format and then the more probable wins; a sure read fitting only a catch-all is replaced only when
// the wider crop shows what the first cut off (the same characters and more at one end) and fits a
// specific layout.
template <class Read>
bool second_look_wins(const Read& first, const Read& wide, const FormatSet& formats) {
  if (first.fits_format && first.confidence >= kSureRead) {
    const bool extends = wide.text.size() > first.text.size() &&
                         (wide.text.starts_with(first.text) || wide.text.ends_with(first.text));
    return extends && fit_level(wide, formats) == 2 && wide.confidence >= kCatchAllReplacement;
  }
  return std::pair(wide.fits_format, wide.confidence) > std::pair(first.fits_format, first.confidence);
}

// Whether a squarish plate's two-line read (its halves side by side) replaces its one-line read, by
// fuller_read_wins from kTwoLineExtends: a fitting guess loses to a vanity plate read right as one line
// (whose two halves make some fitting string at 0.1%), and squeezed into one line a two-line plate shows
// its taller line, which the reader reads surely, and loses the other.
template <class Read>
bool two_line_wins(const Read& one, const Read& two) {
  return fuller_read_wins(one, two, kTwoLineExtends);
}

// Whether the read along the close-up pass's corners of a plate filling much of the picture replaces the
// read along the full pass's (see Detection::other_corners), by fuller_read_wins from kCloseUpExtends.
// The full pass sees such a plate beyond the sizes it was trained on and often boxes only a part of it,
// which it reads surely ("K17965" of "K179658"); from even odds, not a loose box's read of the same
// characters and a stray one from the frame ("5VCF2037" at 44% against "5VCF203" at 98%).
template <class Read>
bool close_up_wins(const Read& full, const Read& close_up) {
  return fuller_read_wins(full, close_up, kCloseUpExtends);
}

}  // namespace vigil::recognize
