#include "detect/detector.hpp"

#include <algorithm>
#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "common/json_file.hpp"

namespace vigil {

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

NetPool* PlateDetector::pool(Nets nets) const {
  switch (nets) {
    case Nets::kSecondScale:
      return second_nets_.get();
    case Nets::kRefine:
      return refine_nets_.get();
    case Nets::kLevel:
      return level_nets_.get();
    case Nets::kFull:
      break;
  }
  return nets_.get();
}

std::vector<Detection> PlateDetector::look(const cv::Mat& bgr, const cv::Rect& roi, double scale,
                                           float threshold, Nets nets, int min_side) const {
  std::vector<Detection> out;
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
    auto net = pool(nets)->acquire();
    net->setInput(blob, "image");
    result = net->forward(output_).clone();
  }
  if (result.dims != 4 || result.size[1] < 11) return out;
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
  return out;
}

std::vector<Detection> PlateDetector::close_up_look(const cv::Mat& bgr, float threshold,
                                                    double min_width) const {
  const int side = kRefineWindowNet;
  const double scale = 0.5 * side / std::max(bgr.cols, bgr.rows);
  const int w = std::max(1, int(std::lround(bgr.cols * scale)));
  const int h = std::max(1, int(std::lround(bgr.rows * scale)));
  const cv::Point offset((side - w) / 2, (side - h) / 2);
  cv::Mat frame = cv::Mat::zeros(side, side, CV_8UC3);
  cv::resize(bgr, frame(cv::Rect(offset, cv::Size(w, h))), cv::Size(w, h), 0, 0,
             scale > 1.0 ? cv::INTER_LINEAR : cv::INTER_AREA);
  const auto raw = look(frame, cv::Rect(0, 0, side, side), 1.0, threshold, Nets::kRefine, side);
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

Detection PlateDetector::refine(const cv::Mat& bgr, const Detection& d, float threshold,
                                int net_width) const {
  if (bgr.empty() || d.box.width <= 0 || net_width <= 0) return d;
  const double scale = double(net_width) / d.box.width;
  const int side = int(kRefineWindowNet / scale);
  const cv::Point centre(d.box.x + d.box.width / 2, d.box.y + d.box.height / 2);
  const cv::Rect window =
      cv::Rect(centre.x - side / 2, centre.y - side / 2, side, side) & cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (window.width * scale < pad_multiple_ || window.height * scale < pad_multiple_) return d;
  const auto raw = look(bgr, window, scale, threshold, Nets::kRefine, kRefineWindowNet);
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

Detection PlateDetector::level(const cv::Mat& bgr, const Detection& d, float threshold, int net_width) const {
  const auto& c = d.corners;
  const double tilt = plate_tilt_degrees(c);
  if (bgr.empty() || net_width <= 0) return d;
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
  const auto raw = look(window, cv::Rect(cv::Point(), side), 1.0, threshold, Nets::kLevel);
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
