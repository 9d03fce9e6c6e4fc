// Tracking plates across video frames and voting over each track: one event per vehicle pass.
//
//   vigil::PlateTracker tracker(formats, {.camera_id = "gate-1"});
//   for each frame:  for (auto& ev : tracker.update(recognition.plates, t_seconds, frame)) sink(ev);
//   at the end:      for (auto& ev : tracker.flush()) sink(ev);
//
// Thread-safety: one tracker per stream; not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "vigil/formats.hpp"
#include "vigil/recognizer.hpp"

namespace vigil {

struct TrackerOptions {
  std::string camera_id = "cam";  // copied into every event
  double max_gap_s = 1.0;         // a track with no matching plate for this long ends (seconds)
  // A track is emitted after this long even if the car is still there (seconds). The track then goes
  // on with a fresh voting window and is reported again only when that window, too, reaches
  // max_track_s; the remainder of a window when the car finally leaves (or at flush()) is not
  // reported, so one stopped car gives one event per max_track_s, never one per frame.
  double max_track_s = 30.0;
  int min_frames = 2;             // tracks seen in fewer frames are dropped as noise
  // A track whose voted text fits no format of the region (a fragment such as "L1", a sign, a burned-in
  // clock) is an event only when read in at least this many frames: a real foreign plate stays in view.
  int unfit_min_frames = 6;
  // A track whose text lies inside the text of a plate reported here within fragment_window_s seconds,
  // no more than 3 plate widths away ("920KF" after "FL920KF"), is that plate seen in part: no event.
  double fragment_window_s = 3.0;
  // Minimum box overlap (after motion prediction) for a read whose text is too short (<= 3 characters)
  // or too unsure (confidence < 0.25) to be compared: such a read joins a track on position alone.
  // Other reads join a track when their text is similar enough (min_text_similarity) and their centre
  // is within max_center_jump; overlap then only ranks competing tracks.
  float min_iou = 0.05f;
  // Max centre displacement from the predicted position per frame, in plate widths, to associate; the
  // allowance grows with frames missed since the track's last read (up to 5x).
  float max_center_jump = 1.5f;
  float min_text_similarity = 0.5f;  // reads sharing less than this (1 - normalized edit distance) are
                                     // a different plate even when the boxes overlap
  float min_confidence = 0.0f;    // events whose voted confidence is below this are dropped (0..1)
  int top_n = 5;                  // candidates kept in an event
  std::string preferred_country{};   // for format-aware voting; "" none
};

struct PlateEvent {
  std::string id;             // UUID v4
  std::string camera_id;
  std::string text;           // voted, normalised
  float confidence = 0.0f;    // 0..1
  // Voted over the reads' countries (each weighted by its country confidence), those whose formats the
  // voted text fits first; "" when no read named one.
  std::string country;
  float country_confidence = 0.0f;  // the country's share of the votes, 0..1
  bool fits_format = false;
  std::vector<Candidate> candidates;  // voted alternatives, most probable first
  double first_seen = 0.0;    // timestamps in seconds, on the clock the caller passed to update()
  double last_seen = 0.0;
  int frames = 0;             // frames in which the plate was read
  // From the first to the last box of the window: "left"/"right" when |dx| dominates, else
  // "approaching" when the box grows and "leaving" when it shrinks (with a size change under 10 %,
  // moving down the image counts as approaching); "" when the centre moved < 0.5 plate widths.
  std::string direction;
  cv::Rect box;               // last box seen
  // Evidence from the frame of the window's most confident read among those given a non-empty frame;
  // both empty when every frame was empty. Owned by the event (copied out of the caller's frame).
  cv::Mat best_crop;          // BGR crop of that read's plate with a 20 % margin on each side
  cv::Mat thumbnail;          // BGR frame of that read, downscaled (INTER_AREA) to long side <= 640
};

// A track still open, for drawing.
struct TrackView {
  int id = 0;
  cv::Rect box;
  std::string best_text;         // the text with the largest summed read confidence so far
  float best_confidence = 0.0f;  // the highest confidence of a single read of best_text
  int frames = 0;                // reads in the current voting window
};

class PlateTracker {
 public:
  PlateTracker(const FormatSet& formats, TrackerOptions options = {});
  ~PlateTracker();
  PlateTracker(PlateTracker&&) noexcept;
  PlateTracker& operator=(PlateTracker&&) noexcept;

  // Feeds one frame's reads (boxes in frame pixels) at time t (seconds, non-decreasing). `frame` (BGR,
  // may be empty) is used for evidence crops and is not kept. Reads are matched one-to-one to open
  // tracks (minimum total cost over overlap with the predicted box, centre jump, size ratio and text
  // similarity); unmatched reads start tracks. Reads with an empty text or box are ignored. A reused read
  // (Plate::reused: seen, not read again) moves its track on without voting, and starts none. Returns the
  // events of tracks that ended (no read for more than max_gap_s) or reached max_track_s.
  std::vector<PlateEvent> update(const std::vector<Plate>& reads, double t, const cv::Mat& frame);
  // Like update() with no reads: ages tracks (for frames skipped by motion gating).
  std::vector<PlateEvent> tick(double t);
  // Ends every open track now and returns their events (end of stream, SIGINT).
  std::vector<PlateEvent> flush();
  std::vector<TrackView> open_tracks() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Per-character vote over several reads of one plate: reads are grouped by length (weighted by their
// confidence), then each position takes the character with the largest summed probability, preferring
// texts that fit a format. Exposed for tests.
//
// Scores: at each position of a text, the share of the vote for its character is the summed
// char_confidences (a read's own confidence when it has none) of the reads of that length with that
// character there, divided by the number of all reads. A text's confidence (0..1) is that share at its
// least certain position: 20 reads agreeing at 0.95 give 0.95, a lone read its weakest character, and
// reads of another length or with another character count against it. Decoded::char_confidences holds
// the per-position shares. Candidates: each length's voted text, second-best characters at its three
// least certain positions (and at the two least certain together), and every distinct read; ranked by
// share times 1.5 when the text fits a format and 2 when it fits preferred_country's, so a format
// decides only between texts whose shares are within a factor of 2. Reads with an empty text are
// ignored; none left gives an empty Decoded. Pure function, thread-safe.
Decoded vote_reads(const std::vector<Plate>& reads, const FormatSet& formats,
                   const std::string& preferred_country, int top_n);

// RFC 4122 version-4 UUID string from a random source, e.g. "3f0c2a9e-7b1d-4c55-9a0e-5d2b8c7e1f40":
// lower-case hex, version nibble 4, variant 8..b. Thread-safe.
std::string make_uuid();

}  // namespace vigil
