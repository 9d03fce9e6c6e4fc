#include "recognize/passes.hpp"

#include <algorithm>

#include "detect/boxes.hpp"

namespace vigil::recognize {

void PassLog::add(std::string_view pass, Clock::time_point since) {
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - since).count();
  for (auto& t : times)
    if (t.name == pass) {
      t.ms += ms;
      ++t.runs;
      return;
    }
  times.push_back({std::string(pass), ms, 1});
}

void mark(std::vector<std::string>& passes, std::string_view pass) {
  if (std::find(passes.begin(), passes.end(), pass) == passes.end()) passes.emplace_back(pass);
}

const std::vector<const ProposalPass*>& proposal_passes() {
  static const std::vector<const ProposalPass*> passes{&kFullPass, &kSecondScalePass, &kTilesPass,
                                                       &kCloseUpPass};
  return passes;
}

const std::vector<const CornerPass*>& corner_passes() {
  static const std::vector<const CornerPass*> passes{&kRefinePass, &kLevelPass};
  return passes;
}

const std::vector<const ReadPass*>& read_passes() {
  static const std::vector<const ReadPass*> passes{&kTwoLinePass, &kWiderCropPass, &kCloseUpCornersPass,
                                                   &kWeakPass};
  return passes;
}

bool Pipeline::runs(std::string_view pass) const {
  return std::find(options.skip.begin(), options.skip.end(), pass) == options.skip.end();
}

std::vector<Detection> Pipeline::detect(const cv::Mat& bgr, const std::vector<cv::Rect>* regions,
                                        bool with_weak, PassLog& log, const std::vector<cv::Rect>* known,
                                        std::vector<int>* claimed) const {
  if (claimed) claimed->clear();
  if (bgr.empty()) return {};
  const DetectorOptions& o = options.detector;
  const float strong = o.score_threshold >= 0 ? o.score_threshold : locator.threshold();
  const float weak = options.weak_threshold >= 0 ? options.weak_threshold : locator.weak_threshold();
  const bool any_weak = with_weak && runs(kWeakPass.name) && weak < strong && options.max_weak_reads > 0;
  const float threshold = any_weak ? weak : strong;
  Proposals p{bgr,
              regions,
              locator,
              o,
              threshold,
              std::max(threshold, locator.threshold()),
              o.input_size > 0 ? o.input_size : locator.input_size(),
              std::max(bgr.cols, bgr.rows),
              {},
              {}};
  for (const ProposalPass* pass : proposal_passes()) {
    if (!runs(pass->name) || !pass->wanted(p)) continue;
    const auto t0 = PassLog::Clock::now();
    pass->run(p);
    log.add(pass->name, t0);
  }
  // The merge rule of the proposals: the highest scores first, and a box overlapping a kept one (or a
  // piece of it) is that plate. NMS keeps the highest scores first, so a weak box never displaces a plate
  // the detector is sure of.
  auto found =
      suppress_overlaps(std::move(p.found), o.nms_iou >= 0 ? o.nms_iou : locator.nms_iou(), o.max_plates);
  std::vector<Detection> out;
  int weak_kept = 0;
  for (auto& d : found) {
    d.weak = d.score < strong;
    if (d.weak && weak_kept++ >= options.max_weak_reads) continue;
    out.push_back(std::move(d));
  }
  std::vector<int> owner(out.size(), -1);
  if (known)
    for (std::size_t k = 0; k < known->size(); ++k) {
      int best = -1;
      float best_iou = kKnownPlateIou;
      for (std::size_t i = 0; i < out.size(); ++i) {
        const float iou = box_iou(cv::Rect2f((*known)[k]), cv::Rect2f(out[i].box));
        if (owner[i] < 0 && iou >= best_iou) best = int(i), best_iou = iou;
      }
      if (best >= 0) owner[best] = int(k);
    }
  if (claimed) *claimed = owner;
  CornerWork w{bgr, locator, options, threshold, p.full_scale(), {}};
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (owner[i] >= 0) continue;
    auto& d = out[i];
    w.detection = std::move(d);
    for (const CornerPass* pass : corner_passes()) {
      if (!runs(pass->name) || !pass->wanted(w)) continue;
      const auto t0 = PassLog::Clock::now();
      pass->run(w);
      log.add(pass->name, t0);
    }
    d = std::move(w.detection);
  }
  return out;
}

Plate Pipeline::read_along(const cv::Mat& bgr, const Detection& d, const Corners& corners, std::size_t upto,
                           PassLog& log) const {
  bool keep = true;
  return run_reads(bgr, d, corners, upto, keep, log);
}

Plate Pipeline::read(const cv::Mat& bgr, const Detection& d, bool& keep, PassLog& log) const {
  return run_reads(bgr, d, d.corners, read_passes().size(), keep, log);
}

Plate Pipeline::run_reads(const cv::Mat& bgr, const Detection& d, const Corners& corners, std::size_t upto,
                          bool& keep, PassLog& log) const {
  const bool own_corners = &corners == &d.corners;
  ReadWork w{bgr, reader, formats, options, d, corners, {}, true, {}};
  const auto t0 = PassLog::Clock::now();
  w.plate = reader.read(bgr, corners, false, false);
  log.add("read", t0);
  w.plate.corners = corners;
  w.plate.box = own_corners ? d.box : corner_box(corners, cv::Size(bgr.cols, bgr.rows));
  w.plate.passes = d.passes;
  const auto& variants = read_passes();
  std::size_t i = 0;
  w.read_along = [&](const Corners& other) { return read_along(bgr, d, other, i, log); };
  for (; i < std::min(upto, variants.size()); ++i) {
    const ReadPass* pass = variants[i];
    if (!runs(pass->name) || !pass->wanted(w)) continue;
    const auto t = PassLog::Clock::now();
    pass->run(w);
    log.add(pass->name, t);
    if (!w.keep) break;
  }
  keep = w.keep;
  return std::move(w.plate);
}

void take_corners(CornerWork& w, Detection moved, std::string_view pass) {
  if (moved.corners != w.detection.corners) mark(moved.passes, pass);
  w.detection = std::move(moved);
}

void replace_read(Plate& current, Plate better, std::string_view pass) {
  better.corners = current.corners;
  better.box = current.box;
  better.passes = std::move(current.passes);
  mark(better.passes, pass);
  current = std::move(better);
}

}  // namespace vigil::recognize
