#include "vigil/tracker.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <exception>
#include <limits>
#include <map>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "track/track_internal.hpp"

namespace vigil {

namespace track {

double iou(const cv::Rect2d& a, const cv::Rect2d& b) {
  if (a.width <= 0 || a.height <= 0 || b.width <= 0 || b.height <= 0) return 0.0;
  const double inter = (a & b).area();
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

std::string direction_of(const cv::Rect& first, const cv::Rect& last) {
  const double dx = (last.x + last.width / 2.0) - (first.x + first.width / 2.0);
  const double dy = (last.y + last.height / 2.0) - (first.y + first.height / 2.0);
  const double plate_width = 0.5 * (first.width + last.width);
  if (plate_width <= 0 || std::hypot(dx, dy) < 0.5 * plate_width) return "";
  if (std::abs(dx) > std::abs(dy)) return dx > 0 ? "right" : "left";
  const double growth = first.area() > 0 ? std::sqrt(static_cast<double>(last.area()) / first.area()) : 1.0;
  if (growth > 1.1) return "approaching";
  if (growth < 1.0 / 1.1) return "leaving";
  return dy > 0 ? "approaching" : "leaving";
}

}  // namespace track

namespace {

constexpr std::size_t kHistory = 5;        // boxes used for the velocity estimate
constexpr double kMaxSizeRatio = 2.5;      // predicted vs read plate size beyond this is another plate
constexpr double kMaxGateGrowth = 5.0;     // the centre gate widens with missed frames up to this factor
constexpr std::size_t kWeakReadChars = 3;  // reads this short carry too little text to veto a match
constexpr float kWeakReadConfidence = 0.25f;
constexpr double kEvidenceMargin = 0.2;  // of the plate's width/height, on each side of the crop
constexpr int kThumbnailSide = 640;
constexpr std::size_t kMaxVoteReads = 1000;  // a window keeps its most confident reads beyond this
constexpr std::size_t kMaxTexts = 256;       // distinct texts remembered per track for association
constexpr double kInfeasible = 1e9;

cv::Point2d centre(const cv::Rect2d& r) { return {r.x + r.width / 2.0, r.y + r.height / 2.0}; }

struct Observation {
  double t = 0.0;
  cv::Rect2d box;
};

struct TextStat {
  double weight = 0.0;  // summed read confidences
  float best_confidence = 0.0f;
};

struct Track {
  int id = 0;
  std::deque<Observation> history;  // most recent last, at most kHistory
  double last_seen = 0.0;
  cv::Rect last_box;
  // Association memory over the track's whole life (not reset with the voting window).
  std::map<std::string, TextStat> texts;
  std::string best_text;
  std::string last_text;
  // The current voting window.
  std::vector<Plate> reads;
  int frames = 0;
  double window_start = 0.0;
  cv::Rect first_box;
  float evidence_confidence = -1.0f;
  cv::Mat crop, thumbnail;
  bool emitted = false;  // a window of this track was already reported

  bool window_open() const { return frames > 0; }
};

// Minimum-cost one-to-one assignment (Hungarian, O(n^2 m)) of rows to columns, n <= m.
// Returns the column of each row.
std::vector<int> hungarian(const std::vector<std::vector<double>>& cost, int n, int m) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1), v(m + 1);
  std::vector<int> p(m + 1), way(m + 1);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(m + 1, inf);
    std::vector<char> used(m + 1, false);
    do {
      used[j0] = true;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> column(n, -1);
  for (int j = 1; j <= m; ++j)
    if (p[j] > 0) column[p[j] - 1] = j - 1;
  return column;
}

// For each row the matched column, or -1; pairs at kInfeasible are never matched.
std::vector<int> assign(const std::vector<std::vector<double>>& cost, int rows, int cols) {
  std::vector<int> match(rows, -1);
  if (rows == 0 || cols == 0) return match;
  if (rows <= cols) {
    match = hungarian(cost, rows, cols);
  } else {
    std::vector<std::vector<double>> transposed(cols, std::vector<double>(rows));
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) transposed[c][r] = cost[r][c];
    const auto row_of = hungarian(transposed, cols, rows);
    for (int c = 0; c < cols; ++c)
      if (row_of[c] >= 0) match[row_of[c]] = c;
  }
  for (int r = 0; r < rows; ++r)
    if (match[r] >= 0 && cost[r][match[r]] >= kInfeasible) match[r] = -1;
  return match;
}

}  // namespace

struct PlateTracker::Impl {
  FormatSet formats;
  TrackerOptions options;
  std::vector<Track> tracks;  // in creation order
  int next_id = 1;
  std::optional<double> last_t;
  double frame_dt = 0.0;  // running estimate of the interval between update()/tick() calls

  void advance(double t) {
    if (last_t && t > *last_t) {
      const double dt = t - *last_t;
      frame_dt = frame_dt > 0 ? 0.8 * frame_dt + 0.2 * dt : dt;
    }
    if (!last_t || t > *last_t) last_t = t;
  }

  static cv::Rect2d predict(const Track& tr, double t) {
    const Observation& last = tr.history.back();
    const Observation& first = tr.history.front();
    const double span = last.t - first.t;
    if (tr.history.size() < 2 || span <= 0) return last.box;
    const double ahead = std::max(0.0, t - last.t);
    const cv::Point2d c0 = centre(first.box), c1 = centre(last.box);
    const double w = std::clamp(last.box.width + (last.box.width - first.box.width) / span * ahead,
                                0.5 * last.box.width, 2.0 * last.box.width);
    const double h = std::clamp(last.box.height + (last.box.height - first.box.height) / span * ahead,
                                0.5 * last.box.height, 2.0 * last.box.height);
    const double cx = c1.x + (c1.x - c0.x) / span * ahead;
    const double cy = c1.y + (c1.y - c0.y) / span * ahead;
    return {cx - w / 2, cy - h / 2, w, h};
  }

  double cost(const Track& tr, const Plate& read, double t) const {
    const cv::Rect2d predicted = predict(tr, t);
    const cv::Rect2d box(read.box);
    const double plate_width = 0.5 * (predicted.width + box.width);
    if (plate_width <= 0 || predicted.area() <= 0) return kInfeasible;
    // Frames missed since the track was last read widen the gate: the prediction drifts with them.
    const double missed = frame_dt > 0 ? std::clamp((t - tr.last_seen) / frame_dt, 1.0, kMaxGateGrowth) : 1.0;
    const double gate = options.max_center_jump * plate_width * missed;
    const double jump = cv::norm(centre(predicted) - centre(box));
    if (jump > gate) return kInfeasible;
    const double size = std::sqrt(box.area() / predicted.area());
    const double size_ratio = std::max(size, 1.0 / size);
    if (size_ratio > kMaxSizeRatio) return kInfeasible;
    const double overlap = track::iou(predicted, box);
    const float similarity = std::max(track::text_similarity(read.text, tr.best_text),
                                      track::text_similarity(read.text, tr.last_text));
    // Text decides unless the read is too short or too unsure to say anything; such a read needs overlap.
    const bool weak = read.text.size() <= kWeakReadChars || read.confidence < kWeakReadConfidence;
    if (similarity < options.min_text_similarity && !(weak && overlap >= options.min_iou)) return kInfeasible;
    return (1.0 - overlap) + jump / gate + std::log(size_ratio) / std::log(kMaxSizeRatio) +
           (1.0 - similarity);
  }

  void remember_text(Track& tr, const Plate& read) {
    TextStat& stat = tr.texts[read.text];
    stat.weight += std::clamp(static_cast<double>(read.confidence), 1e-3, 1.0);
    stat.best_confidence = std::max(stat.best_confidence, read.confidence);
    if (tr.best_text.empty() || stat.weight > tr.texts[tr.best_text].weight) tr.best_text = read.text;
    tr.last_text = read.text;
    if (tr.texts.size() > kMaxTexts) {
      // Forget the lighter half; the best and last texts stay.
      std::vector<double> weights;
      for (const auto& [text, s] : tr.texts) weights.push_back(s.weight);
      std::nth_element(weights.begin(), weights.begin() + weights.size() / 2, weights.end());
      const double median = weights[weights.size() / 2];
      std::erase_if(tr.texts, [&](const auto& entry) {
        return entry.second.weight < median && entry.first != tr.best_text && entry.first != tr.last_text;
      });
    }
  }

  void capture_evidence(Track& tr, const Plate& read, const cv::Mat& frame) {
    if (frame.empty() || read.confidence <= tr.evidence_confidence) return;
    const int mx = static_cast<int>(std::lround(read.box.width * kEvidenceMargin));
    const int my = static_cast<int>(std::lround(read.box.height * kEvidenceMargin));
    const cv::Rect region =
        cv::Rect(read.box.x - mx, read.box.y - my, read.box.width + 2 * mx, read.box.height + 2 * my) &
        cv::Rect(0, 0, frame.cols, frame.rows);
    if (region.empty()) return;
    tr.evidence_confidence = read.confidence;
    tr.crop = frame(region).clone();
    const int long_side = std::max(frame.cols, frame.rows);
    if (long_side > kThumbnailSide) {
      const double scale = static_cast<double>(kThumbnailSide) / long_side;
      const cv::Size size(std::max(1, static_cast<int>(std::lround(frame.cols * scale))),
                          std::max(1, static_cast<int>(std::lround(frame.rows * scale))));
      cv::resize(frame, tr.thumbnail, size, 0, 0, cv::INTER_AREA);
    } else {
      tr.thumbnail = frame.clone();
    }
  }

  void add_read(Track& tr, Plate read, double t, const cv::Mat& frame) {
    tr.history.push_back({t, cv::Rect2d(read.box)});
    if (tr.history.size() > kHistory) tr.history.pop_front();
    tr.last_seen = t;
    tr.last_box = read.box;
    // A plate seen again but not read (Plate::reused) moves its track on; it is no vote.
    if (read.reused) return;
    remember_text(tr, read);
    if (!tr.window_open()) {
      tr.window_start = t;
      tr.first_box = read.box;
    }
    ++tr.frames;
    capture_evidence(tr, read, frame);
    read.corners = {};
    read.candidates.clear();
    if (tr.reads.size() < kMaxVoteReads) {
      tr.reads.push_back(std::move(read));
    } else {
      auto weakest = std::min_element(tr.reads.begin(), tr.reads.end(), [](const Plate& a, const Plate& b) {
        return a.confidence < b.confidence;
      });
      if (read.confidence > weakest->confidence) *weakest = std::move(read);
    }
  }

  // The country the reads saw (the plate's looks, frame after frame), each read's vote its country
  // confidence, cut to a sixth for countries whose formats the voted text does not fit while others' do.
  std::pair<std::string, float> vote_country(const std::vector<Plate>& reads, const std::string& text,
                                             std::string by_format) const {
    std::map<std::string, double> votes;
    for (const Plate& r : reads)
      if (!r.country.empty()) votes[r.country] += std::max(double(r.country_confidence), 0.01);
    if (votes.empty()) return {std::move(by_format), by_format.empty() ? 0.0f : 1.0f};
    const auto fitting = formats.match(text);
    double total = 0;
    for (auto& [country, v] : votes) {
      const bool fits =
          std::any_of(fitting.begin(), fitting.end(), [&](const auto* f) { return f->country == country; });
      if (!fitting.empty() && !fits) v /= 6.0;
      total += v;
    }
    const auto best = std::max_element(votes.begin(), votes.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    return {best->first, float(best->second / total)};
  }

  // The event of the track's current window, or nothing when it is too short or too unsure.
  std::optional<PlateEvent> window_event(const Track& tr) const {
    if (!tr.window_open() || tr.frames < options.min_frames) return std::nullopt;
    Decoded voted = vote_reads(tr.reads, formats, options.preferred_country, options.top_n);
    if (voted.text.empty() || voted.confidence < options.min_confidence) return std::nullopt;
    if (!voted.fits_format && tr.frames < options.unfit_min_frames) return std::nullopt;
    if (is_fragment(voted.text, tr.last_box, tr.last_seen)) return std::nullopt;
    PlateEvent ev;
    ev.id = make_uuid();
    ev.camera_id = options.camera_id;
    ev.text = std::move(voted.text);
    ev.confidence = voted.confidence;
    ev.fits_format = voted.fits_format;
    std::tie(ev.country, ev.country_confidence) = vote_country(tr.reads, ev.text, std::move(voted.country));
    ev.candidates = std::move(voted.candidates);
    ev.first_seen = tr.window_start;
    ev.last_seen = tr.last_seen;
    ev.frames = tr.frames;
    ev.direction = track::direction_of(tr.first_box, tr.last_box);
    ev.box = tr.last_box;
    ev.best_crop = tr.crop;
    ev.thumbnail = tr.thumbnail;
    return ev;
  }

  void reset_window(Track& tr) {
    tr.reads.clear();
    tr.frames = 0;
    tr.evidence_confidence = -1.0f;
    tr.crop = cv::Mat();
    tr.thumbnail = cv::Mat();
  }

  // Plates reported lately, for telling fragments of them from new plates.
  struct Reported {
    std::string text;
    cv::Rect box;
    double t = 0.0;
  };
  std::deque<Reported> reported;

  bool is_fragment(const std::string& text, const cv::Rect& box, double t) const {
    for (const Reported& r : reported) {
      if (t - r.t > options.fragment_window_s || r.text.size() <= text.size() ||
          r.text.find(text) == std::string::npos)
        continue;
      const cv::Point2d a = (box.tl() + box.br()) * 0.5, b = (r.box.tl() + r.box.br()) * 0.5;
      if (cv::norm(a - b) <= 3.0 * std::max(r.box.width, 1)) return true;
    }
    return false;
  }

  void remember(const PlateEvent& ev) {
    reported.push_back({ev.text, ev.box, ev.last_seen});
    while (!reported.empty() &&
           (reported.size() > 64 || ev.last_seen - reported.front().t > options.fragment_window_s))
      reported.pop_front();
  }

  // A track ends: its window is reported unless an earlier window of the same pass already was.
  void finish(Track& tr, std::vector<PlateEvent>& events) {
    if (tr.emitted) return;
    if (auto ev = window_event(tr)) {
      remember(*ev);
      events.push_back(std::move(*ev));
    }
  }

  std::vector<PlateEvent> expire(double t) {
    std::vector<PlateEvent> events;
    std::erase_if(tracks, [&](Track& tr) {
      if (t - tr.last_seen <= options.max_gap_s) return false;
      finish(tr, events);
      return true;
    });
    return events;
  }
};

PlateTracker::PlateTracker(const FormatSet& formats, TrackerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->formats = formats;
  impl_->options = std::move(options);
}

PlateTracker::~PlateTracker() = default;
PlateTracker::PlateTracker(PlateTracker&&) noexcept = default;
PlateTracker& PlateTracker::operator=(PlateTracker&&) noexcept = default;

std::vector<PlateEvent> PlateTracker::update(const std::vector<Plate>& reads, double t,
                                             const cv::Mat& frame) {
  if (!impl_) return {};
  Impl& im = *impl_;
  im.advance(t);
  std::vector<PlateEvent> events = im.expire(t);

  std::vector<Plate> usable;
  for (const Plate& read : reads) {
    if (read.box.width <= 0 || read.box.height <= 0) continue;
    Plate p = read;
    p.text = normalize_plate(read.text);
    if (p.text.empty()) continue;
    usable.push_back(std::move(p));
  }

  const int rows = static_cast<int>(usable.size());
  const int cols = static_cast<int>(im.tracks.size());
  std::vector<std::vector<double>> cost(rows, std::vector<double>(cols));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) cost[r][c] = im.cost(im.tracks[c], usable[r], t);
  const std::vector<int> match = assign(cost, rows, cols);

  // New tracks are appended after matching so that indices into tracks stay valid.
  std::vector<Track> started;
  for (int r = 0; r < rows; ++r) {
    if (match[r] >= 0) {
      im.add_read(im.tracks[match[r]], std::move(usable[r]), t, frame);
    } else if (!usable[r].reused) {  // a reused read belongs to a track, or to none
      Track tr;
      tr.id = im.next_id++;
      im.add_read(tr, std::move(usable[r]), t, frame);
      started.push_back(std::move(tr));
    }
  }
  for (Track& tr : started) im.tracks.push_back(std::move(tr));

  // A car that stays in view is reported once per max_track_s: the window closes, the track goes on.
  for (Track& tr : im.tracks) {
    if (!tr.window_open() || tr.last_seen - tr.window_start < im.options.max_track_s) continue;
    if (auto ev = im.window_event(tr)) {
      im.remember(*ev);
      events.push_back(std::move(*ev));
      tr.emitted = true;
    }
    im.reset_window(tr);
  }
  return events;
}

std::vector<PlateEvent> PlateTracker::tick(double t) {
  if (!impl_) return {};
  impl_->advance(t);
  return impl_->expire(t);
}

std::vector<PlateEvent> PlateTracker::flush() {
  if (!impl_) return {};
  std::vector<PlateEvent> events;
  for (Track& tr : impl_->tracks) impl_->finish(tr, events);
  impl_->tracks.clear();
  return events;
}

std::vector<TrackView> PlateTracker::open_tracks() const {
  std::vector<TrackView> views;
  if (!impl_) return views;
  for (const Track& tr : impl_->tracks) {
    TrackView v;
    v.id = tr.id;
    v.box = tr.last_box;
    v.best_text = tr.best_text;
    if (auto it = tr.texts.find(tr.best_text); it != tr.texts.end())
      v.best_confidence = it->second.best_confidence;
    v.frames = tr.frames;
    views.push_back(std::move(v));
  }
  return views;
}

std::string make_uuid() {
  std::uint64_t words[2];
  try {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    std::mt19937_64 rng(seed);
    words[0] = rng();
    words[1] = rng();
  } catch (const std::exception&) {
    // No entropy source: the clock and an address still make collisions unlikely within one process.
    const auto now =
        static_cast<std::uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    std::seed_seq seed{static_cast<std::uint32_t>(now), static_cast<std::uint32_t>(now >> 32),
                       static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(&words))};
    std::mt19937_64 rng(seed);
    words[0] = rng();
    words[1] = rng();
  }
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(words[0] >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(words[1] >> (56 - 8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // variant 10xx
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0x0f];
  }
  return out;
}

}  // namespace vigil
