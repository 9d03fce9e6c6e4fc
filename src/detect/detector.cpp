#include "detect/detector.hpp"

#include <algorithm>
#include <cmath>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "common/json_file.hpp"

namespace vigil {

float box_iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

Result<PlateDetector> PlateDetector::load(const std::string& models_dir) {
  const std::string onnx = models_dir + "/detector.onnx";
  const std::string side = models_dir + "/detector.json";
  auto meta = read_json_file(side);
  if (!meta) return Error{"detector model: " + meta.error()};
  PlateDetector d;
  try {
    const auto& j = *meta;
    d.input_size_ = j.value("input_size", 512);
    d.pad_multiple_ = j.value("pad_multiple", 32);
    d.stride_ = j.value("stride", 4);
    d.corner_scale_ = j.value("corner_scale", 16.0f);
    d.threshold_ = j.value("score_threshold", 0.3f);
    d.weak_threshold_ = std::min(d.threshold_, j.value("weak_threshold", d.threshold_));
    d.nms_iou_ = j.value("nms_iou", 0.4f);
    d.rgb_ = j.value("channels", std::string("RGB")) == "RGB";
    d.scale_ = j.value("scale", 1.0 / 255.0);
    d.output_ = j.value("output", std::string("out"));
    if (j.contains("mean")) d.mean_ = cv::Scalar(j["mean"][0], j["mean"][1], j["mean"][2]);
    if (j.contains("std")) d.std_ = cv::Scalar(j["std"][0], j["std"][1], j["std"][2]);
  } catch (const nlohmann::json::exception& e) {
    return Error{side + ": unexpected content (" + e.what() + ")"};
  }
  if (d.input_size_ < 64 || d.pad_multiple_ < 1 || d.stride_ < 1)
    return Error{side + ": input_size, pad_multiple or stride out of range"};
  auto nets = NetPool::load(onnx);
  if (!nets) return Error{"detector model: " + nets.error()};
  d.nets_ = *nets;
  auto refine_nets = NetPool::load(onnx);
  if (!refine_nets) return Error{"detector model: " + refine_nets.error()};
  d.refine_nets_ = *refine_nets;
  auto level_nets = NetPool::load(onnx);
  if (!level_nets) return Error{"detector model: " + level_nets.error()};
  d.level_nets_ = *level_nets;
  auto second_nets = NetPool::load(onnx);
  if (!second_nets) return Error{"detector model: " + second_nets.error()};
  d.second_nets_ = *second_nets;
  return d;
}

void PlateDetector::run_pass(const cv::Mat& bgr, const cv::Rect& roi, int input_size, float threshold,
                             std::vector<Detection>& out) const {
  run_pass_scaled(bgr, roi, double(input_size) / std::max(roi.width, roi.height), threshold, out);
}

void PlateDetector::run_pass_scaled(const cv::Mat& bgr, const cv::Rect& roi, double scale, float threshold,
                                    std::vector<Detection>& out, NetPool* pool, int min_side) const {
  const int w = std::max(1, int(std::lround(roi.width * scale)));
  const int h = std::max(1, int(std::lround(roi.height * scale)));
  const int pw = std::max(min_side, (w + pad_multiple_ - 1) / pad_multiple_ * pad_multiple_);
  const int ph = std::max(min_side, (h + pad_multiple_ - 1) / pad_multiple_ * pad_multiple_);

  cv::Mat canvas = cv::Mat::zeros(ph, pw, CV_8UC3);
  // Area averaging to shrink; to enlarge it would copy pixels like nearest-neighbour (blocky small images
  // and refine windows, which training enlarged bilinearly).
  cv::resize(bgr(roi), canvas(cv::Rect(0, 0, w, h)), cv::Size(w, h), 0, 0,
             scale > 1.0 ? cv::INTER_LINEAR : cv::INTER_AREA);
  cv::Mat blob = cv::dnn::blobFromImage(canvas, scale_, cv::Size(), mean_ * (1.0 / scale_), rgb_, false);
  if (std_ != cv::Scalar(1, 1, 1)) {
    // blobFromImage has no per-channel std; the sidecars here use 1, kept for other exports.
    for (int c = 0; c < 3; ++c) {
      cv::Mat plane(ph, pw, CV_32F, blob.ptr<float>(0, c));
      plane /= std_[c];
    }
  }
  cv::Mat result;
  {
    auto net = (pool ? pool : nets_.get())->acquire();
    net->setInput(blob, "image");
    result = net->forward(output_).clone();
  }
  if (result.dims != 4 || result.size[1] < 11) return;
  const int gh = result.size[2], gw = result.size[3];
  auto at = [&](int c, int y, int x) { return result.ptr<float>(0, c)[y * gw + x]; };
  const float* heat = result.ptr<float>(0, 0);
  const int valid_w = (w + stride_ - 1) / stride_, valid_h = (h + stride_ - 1) / stride_;
  for (int y = 0; y < std::min(gh, valid_h); ++y) {
    for (int x = 0; x < std::min(gw, valid_w); ++x) {
      const float s = heat[y * gw + x];
      if (s < threshold) continue;
      bool peak = true;
      for (int dy = -1; dy <= 1 && peak; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int yy = y + dy, xx = x + dx;
          if ((dy || dx) && yy >= 0 && yy < gh && xx >= 0 && xx < gw && heat[yy * gw + xx] > s) {
            peak = false;
            break;
          }
        }
      if (!peak) continue;
      const float cx = (x + at(1, y, x)) * stride_, cy = (y + at(2, y, x)) * stride_;
      Detection d;
      d.score = s;
      float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
      for (int k = 0; k < 4; ++k) {
        const float px = (cx + at(3 + 2 * k, y, x) * corner_scale_) / scale + roi.x;
        const float py = (cy + at(4 + 2 * k, y, x) * corner_scale_) / scale + roi.y;
        d.corners[k] = {px, py};
        x0 = std::min(x0, px), y0 = std::min(y0, py), x1 = std::max(x1, px), y1 = std::max(y1, py);
      }
      const cv::Rect2f box = cv::Rect2f(x0, y0, x1 - x0, y1 - y0) & cv::Rect2f(0, 0, bgr.cols, bgr.rows);
      if (box.width < 2 || box.height < 2) continue;
      d.box = cv::Rect(cv::Point(int(std::floor(box.x)), int(std::floor(box.y))),
                       cv::Point(int(std::ceil(box.br().x)), int(std::ceil(box.br().y))));
      out.push_back(d);
    }
  }
}

std::vector<Detection> suppress_overlaps(std::vector<Detection> raw, float nms_iou, int max_plates) {
  std::stable_sort(raw.begin(), raw.end(), [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (const auto& d : raw) {
    if (int(kept.size()) >= max_plates) break;
    bool suppressed = false;
    for (const auto& k : kept) {
      const cv::Rect2f a(d.box), b(k.box);
      // Also drop a box mostly inside a kept one of about its height (a tile's partial view of a plate) or
      // width (one line of a two-line plate); a box much smaller both ways is another object, e.g. a plate
      // inside a false box over its car.
      const float inside = (a & b).area() / std::max(1.0f, a.area());
      const bool part_of = inside > 0.7f && (a.height > 0.5f * b.height || a.width > 0.5f * b.width);
      if (box_iou(a, b) > nms_iou || part_of) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(d);
  }
  return kept;
}

std::vector<Detection> PlateDetector::suppress(std::vector<Detection> raw, const DetectorOptions& options) const {
  return suppress_overlaps(std::move(raw), options.nms_iou >= 0 ? options.nms_iou : nms_iou_, options.max_plates);
}

std::vector<Detection> PlateDetector::detect(const cv::Mat& bgr, const DetectorOptions& options) const {
  std::vector<Detection> raw;
  if (bgr.empty()) return raw;
  const float threshold = options.score_threshold >= 0 ? options.score_threshold : threshold_;
  const int input_size = options.input_size > 0 ? options.input_size : input_size_;
  const cv::Rect whole(0, 0, bgr.cols, bgr.rows);
  const int long_side = std::max(bgr.cols, bgr.rows);
  const bool second_scale = options.second_scale && long_side <= input_size;
  run_pass(bgr, whole, input_size, second_scale ? threshold / 2 : threshold, raw);
  if (second_scale) add_second_scale(bgr, input_size, threshold, raw);
  const std::size_t full_pass = raw.size();

  // Square tiles in which a plate options.smallest_plate pixels wide is kTileNetPlate network pixels,
  // overlapping by a quarter so a plate cut by one tile is whole in its neighbour.
  const int tile = std::max(input_size, options.smallest_plate * input_size / kTileNetPlate);
  if (options.tiles && long_side > options.tile_min_long_side && long_side > tile) {
    const int step = tile * 3 / 4;
    for (int ty = 0; ty < bgr.rows; ty += step) {
      for (int tx = 0; tx < bgr.cols; tx += step) {
        cv::Rect r(tx, ty, tile, tile);
        r &= whole;
        if (r.width < tile / 3 || r.height < tile / 3) continue;
        run_pass(bgr, r, input_size, threshold, raw);
        if (tx + tile >= bgr.cols) break;
      }
      if (ty + tile >= bgr.rows) break;
    }
  }
  // Tiles add the plates the full pass missed. A plate it found keeps its corners (the reader reads the
  // 1440x1080 photos better from them; refine() places small plates' again); a tile's view of it only
  // lends its score.
  std::vector<Detection> merged(raw.begin(), raw.begin() + full_pass);
  for (std::size_t i = full_pass; i < raw.size(); ++i) {
    Detection* same = nullptr;
    for (std::size_t j = 0; j < full_pass && !same; ++j)
      if (box_iou(raw[i].box, merged[j].box) >= kSamePlateIou) same = &merged[j];
    if (same)
      same->score = std::max(same->score, raw[i].score);
    else
      merged.push_back(raw[i]);
  }
  // A plate wider than the full pass's plates in training shows there as its pieces (a group of
  // characters read as a plate, itself wide) or not at all. A picture whose full pass found a sure plate
  // and only plates narrower than any such piece needs no close-up pass: most photos and frames.
  const double min_width = double(kFullPassMaxPlateNet) * long_side / input_size;
  const double piece_width = double(kCloseUpPieceNet) * long_side / input_size;
  const float strong = std::max(threshold, threshold_);
  const bool wants_close_up =
      std::none_of(merged.begin(), merged.end(), [&](const Detection& d) { return d.score >= strong; }) ||
      std::any_of(merged.begin(), merged.end(),
                  [&](const Detection& d) { return d.box.width >= piece_width; });
  if (options.close_up && wants_close_up) add_close_up(bgr, strong, min_width, merged);
  return suppress(std::move(merged), options);
}

void PlateDetector::add_second_scale(const cv::Mat& bgr, int input_size, float threshold,
                                     std::vector<Detection>& full) const {
  std::vector<Detection> second;
  const double scale = kSecondScale * input_size / std::max(bgr.cols, bgr.rows);
  run_pass_scaled(bgr, cv::Rect(0, 0, bgr.cols, bgr.rows), scale, threshold / 2, second, second_nets_.get());
  // Plates wider than training showed the network at that scale are no look at all: the full pass (or the
  // close-up pass) alone judges them.
  const double widest = kFullPassMaxPlateNet / scale;
  std::erase_if(second, [&](const Detection& d) { return d.box.width > widest; });
  std::vector<bool> matched(second.size(), false);
  auto mean = [](float a, float b) { return std::min(1.0f, (a + b) / 2 + kSecondScaleBonus); };
  for (auto& d : full) {
    if (d.box.width > widest) continue;
    // the full pass keeps its corners: the reader learned along them
    int best = -1;
    float best_iou = kSecondScaleSameIou;
    for (std::size_t j = 0; j < second.size(); ++j) {
      const float iou = box_iou(d.box, second[j].box);
      if (iou >= best_iou) best = int(j), best_iou = iou;
    }
    d.score = mean(d.score, best >= 0 ? second[best].score : 0.0f);
    if (best >= 0) matched[best] = true;
  }
  for (std::size_t j = 0; j < second.size(); ++j) {
    if (matched[j]) continue;
    second[j].score = mean(0.0f, second[j].score);
    full.push_back(second[j]);
  }
  std::erase_if(full, [&](const Detection& d) { return d.score < threshold; });
}

void PlateDetector::add_close_up(const cv::Mat& bgr, float threshold, double min_width,
                                 std::vector<Detection>& merged) const {
  // Each close-up plate replaces the pieces lying inside it; where the full pass found it whole as
  // well, both corners are read (Detection::other_corners).
  for (auto c : close_up_pass(bgr, threshold, min_width)) {
    // corners found in a thumbnail, placed again with the plate kCloseUpRefineNet network pixels wide
    c = refine(bgr, c, threshold, kCloseUpRefineNet);
    const cv::Rect2f cb(c.box);
    bool found_whole = false;
    std::erase_if(merged, [&](Detection& d) {
      const cv::Rect2f db(d.box);
      const float iou = box_iou(db, cb);
      // a piece: mostly inside, about its height, and not close to all of it (a box much smaller both
      // ways is a plate inside a false close-up box over its car, and stays)
      if (iou < kCloseUpSameIou && (db & cb).area() > 0.7f * db.area() && db.height > 0.5f * cb.height)
        return true;
      if (iou >= kSamePlateIou) {
        found_whole = true;
        d.score = std::max(d.score, c.score);
        d.other_corners = c.corners;
      }
      return false;
    });
    if (!found_whole) merged.push_back(c);
  }
}

std::vector<Detection> PlateDetector::close_up_pass(const cv::Mat& bgr, float threshold,
                                                    double min_width) const {
  const int side = kRefineWindowNet;
  const double scale = 0.5 * side / std::max(bgr.cols, bgr.rows);
  const int w = std::max(1, int(std::lround(bgr.cols * scale)));
  const int h = std::max(1, int(std::lround(bgr.rows * scale)));
  const cv::Point offset((side - w) / 2, (side - h) / 2);
  cv::Mat frame = cv::Mat::zeros(side, side, CV_8UC3);
  cv::resize(bgr, frame(cv::Rect(offset, cv::Size(w, h))), cv::Size(w, h), 0, 0,
             scale > 1.0 ? cv::INTER_LINEAR : cv::INTER_AREA);
  std::vector<Detection> raw;
  run_pass_scaled(frame, cv::Rect(0, 0, side, side), 1.0, threshold, raw, refine_nets_.get(), side);
  std::vector<Detection> out;
  const cv::Rect2f image(0, 0, bgr.cols, bgr.rows);
  for (auto d : raw) {
    float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
    for (auto& p : d.corners) {
      p = {float((p.x - offset.x) / scale), float((p.y - offset.y) / scale)};
      x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
    }
    if (x1 - x0 < min_width) continue;
    const cv::Rect2f box = cv::Rect2f(x0, y0, x1 - x0, y1 - y0) & image;
    if (box.width < 2 || box.height < 2) continue;
    d.box = cv::Rect(cv::Point(int(std::floor(box.x)), int(std::floor(box.y))),
                     cv::Point(int(std::ceil(box.br().x)), int(std::ceil(box.br().y))));
    out.push_back(d);
  }
  return out;
}

std::vector<Detection> PlateDetector::detect(const cv::Mat& bgr, const DetectorOptions& options,
                                             const std::vector<cv::Rect>& regions) const {
  std::vector<Detection> raw;
  if (bgr.empty()) return raw;
  const float threshold = options.score_threshold >= 0 ? options.score_threshold : threshold_;
  const int input_size = options.input_size > 0 ? options.input_size : input_size_;
  const cv::Rect whole(0, 0, bgr.cols, bgr.rows);
  // The whole image's scale, and regions snapped outwards to the full pass's coarsest feature grid
  // (pad_multiple network pixels), so the network sees a region's pixels exactly as in a full pass.
  const double scale = double(input_size) / std::max(bgr.cols, bgr.rows);
  const double grid = pad_multiple_ / scale;
  const int min_side = int(std::ceil(kMinRegionNetPixels / scale));
  auto snap_down = [&](int v) { return int(std::floor(std::floor(v / grid) * grid)); };
  auto snap_up = [&](int v) { return int(std::ceil(std::ceil(v / grid) * grid)); };
  double area = 0;
  std::vector<cv::Rect> passes;
  for (cv::Rect r : regions) {
    r &= whole;
    if (r.empty()) continue;
    // Grow regions too small for the network's receptive field around their centre.
    if (r.width < min_side) r = cv::Rect(r.x + r.width / 2 - min_side / 2, r.y, min_side, r.height) & whole;
    if (r.height < min_side) r = cv::Rect(r.x, r.y + r.height / 2 - min_side / 2, r.width, min_side) & whole;
    r = cv::Rect(cv::Point(snap_down(r.x), snap_down(r.y)), cv::Point(snap_up(r.br().x), snap_up(r.br().y))) &
        whole;
    passes.push_back(r);
    area += r.area();
  }
  if (area >= kFullPassAreaShare * whole.area()) {
    // Regions covering most of the image: one full pass costs less than overlapping ones.
    passes.assign(1, whole);
  }
  for (const auto& r : passes) run_pass_scaled(bgr, r, scale, threshold, raw);
  // A plate close to the camera shows here as its pieces too. Most frames searched hold no sure plate
  // (whatever moved was no car), so only a possible piece calls for the close-up pass.
  const int long_side = std::max(bgr.cols, bgr.rows);
  const double piece_width = double(kCloseUpPieceNet) * long_side / input_size;
  if (options.close_up &&
      std::any_of(raw.begin(), raw.end(), [&](const Detection& d) { return d.box.width >= piece_width; }))
    add_close_up(bgr, std::max(threshold, threshold_), double(kFullPassMaxPlateNet) * long_side / input_size,
                 raw);
  return suppress(std::move(raw), options);
}

Detection PlateDetector::refine(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const {
  if (bgr.empty() || d.box.width <= 0 || net_width <= 0) return d;
  const double scale = double(net_width) / d.box.width;
  const int side = int(kRefineWindowNet / scale);
  const cv::Point centre(d.box.x + d.box.width / 2, d.box.y + d.box.height / 2);
  const cv::Rect window =
      cv::Rect(centre.x - side / 2, centre.y - side / 2, side, side) & cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (window.width * scale < pad_multiple_ || window.height * scale < pad_multiple_) return d;
  std::vector<Detection> raw;
  run_pass_scaled(bgr, window, scale, threshold, raw, refine_nets_.get(), kRefineWindowNet);
  // The strongest peak on the same plate; the score stays the one the plate was found with.
  const Detection* best = nullptr;
  for (const auto& r : raw)
    if (box_iou(r.box, d.box) >= 0.3f && (!best || r.score > best->score)) best = &r;
  if (!best) return d;
  Detection out = d;
  out.box = best->box;
  out.corners = best->corners;
  return out;
}

double plate_tilt_degrees(const std::array<cv::Point2f, 4>& corners) {
  const cv::Point2f along = (corners[1] - corners[0]) + (corners[2] - corners[3]);
  return std::atan2(along.y, along.x) * 180.0 / CV_PI;
}

Detection PlateDetector::level(const cv::Mat& bgr, const Detection& d, float threshold, int net_width,
                               double min_degrees) const {
  const auto& c = d.corners;
  const double tilt = plate_tilt_degrees(c);
  if (bgr.empty() || net_width <= 0 || std::abs(tilt) < min_degrees || std::abs(tilt) > kLevelMaxDegrees)
    return d;
  const double width = 0.5 * (cv::norm(c[1] - c[0]) + cv::norm(c[2] - c[3]));
  if (width < 2) return d;
  const double scale = net_width / width;
  const cv::Size side(kLevelWindowNetWidth, kLevelWindowNetHeight);
  const cv::Point2f centre = (c[0] + c[1] + c[2] + c[3]) * 0.25f;
  // image -> window: shrunk first by area averaging where the plate is wider than net_width (a warp would
  // alias), then turned about the plate's centre and moved to the window's.
  cv::Mat source = bgr;
  cv::Matx23d to_source(1, 0, 0, 0, 1, 0);
  double turn_scale = scale;
  if (scale < 1.0) {
    const int r = int(std::ceil(0.75 * std::max(side.width, side.height) / scale));
    const cv::Rect roi =
        cv::Rect(int(centre.x) - r, int(centre.y) - r, 2 * r, 2 * r) & cv::Rect(0, 0, bgr.cols, bgr.rows);
    if (roi.empty()) return d;
    const cv::Size small(std::max(1, int(std::lround(roi.width * scale))),
                         std::max(1, int(std::lround(roi.height * scale))));
    cv::resize(bgr(roi), source, small, 0, 0, cv::INTER_AREA);
    const double sx = double(small.width) / roi.width, sy = double(small.height) / roi.height;
    to_source = cv::Matx23d(sx, 0, -roi.x * sx, 0, sy, -roi.y * sy);
    turn_scale = 1.0;
  }
  const cv::Point2d centre_in_source(to_source(0, 0) * centre.x + to_source(0, 2),
                                     to_source(1, 1) * centre.y + to_source(1, 2));
  cv::Mat turn = cv::getRotationMatrix2D(centre_in_source, tilt, turn_scale);
  turn.at<double>(0, 2) += side.width / 2.0 - centre_in_source.x;
  turn.at<double>(1, 2) += side.height / 2.0 - centre_in_source.y;
  cv::Mat window;
  cv::warpAffine(source, window, turn, side, cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  // image -> window in one affine map, and back
  const cv::Matx33d s3(to_source(0, 0), to_source(0, 1), to_source(0, 2), to_source(1, 0), to_source(1, 1),
                       to_source(1, 2), 0, 0, 1);
  const cv::Matx23d t(turn);
  const cv::Matx33d t3(t(0, 0), t(0, 1), t(0, 2), t(1, 0), t(1, 1), t(1, 2), 0, 0, 1);
  const cv::Matx33d forward = t3 * s3;
  const cv::Matx33d back = forward.inv();
  auto map = [](const cv::Matx33d& m, cv::Point2f p) {
    return cv::Point2f(float(m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2)),
                       float(m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2)));
  };
  float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
  for (const auto& p : c) {
    const auto q = map(forward, p);
    x0 = std::min(x0, q.x), y0 = std::min(y0, q.y), x1 = std::max(x1, q.x), y1 = std::max(y1, q.y);
  }
  const cv::Rect2f expected(x0, y0, x1 - x0, y1 - y0);
  std::vector<Detection> raw;
  run_pass_scaled(window, cv::Rect(cv::Point(), side), 1.0, threshold, raw, level_nets_.get());
  const Detection* best = nullptr;
  for (const auto& r : raw)
    if (box_iou(r.box, expected) >= 0.3f && (!best || r.score > best->score)) best = &r;
  if (!best) return d;
  // The box stays the one the plate was found with: the new corners are for reading.
  Detection out = d;
  for (int k = 0; k < 4; ++k) out.corners[k] = map(back, best->corners[k]);
  return out;
}

}  // namespace vigil
