// Speed of the recognizer's stages on the bundled 1280x720 sample (one plate in view), and on it shrunk
// to 320x180 (small images are looked at twice).
//   build/bench/vigil_benchmarks --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <algorithm>
#include <benchmark/benchmark.h>

#include <cstring>
#include <optional>

#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "read/reader.hpp"
#include "vigil/vigil.hpp"

namespace {

// The recognizer loaded with `change` applied to the default options; throws when it does not load.
vigil::Recognizer load_changed(void (*change)(vigil::RecognizerOptions&)) {
  vigil::RecognizerOptions o;
  change(o);
  auto rec = vigil::Recognizer::load(o);
  if (!rec) throw std::runtime_error(rec.error());
  return std::move(*rec);
}

const vigil::Recognizer& recognizer() {
  static const auto rec = load_changed([](vigil::RecognizerOptions&) {});
  return rec;
}

// The same without the close-up pass: what that pass costs.
const vigil::Recognizer& recognizer_without_close_up() {
  static const auto rec = load_changed([](vigil::RecognizerOptions& o) { o.skip = {"close-up"}; });
  return rec;
}

// The same without levelling tilted plates: what that pass costs.
const vigil::Recognizer& recognizer_without_level() {
  static const auto rec = load_changed([](vigil::RecognizerOptions& o) { o.skip = {"level"}; });
  return rec;
}

// The same without the second look at small images: what that pass costs.
const vigil::Recognizer& recognizer_without_second_scale() {
  static const auto rec = load_changed([](vigil::RecognizerOptions& o) { o.skip = {"second-scale"}; });
  return rec;
}

const cv::Mat& frame_720p() {
  static cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-720p.jpg");
  if (img.empty()) throw std::runtime_error("samples/ro-dashcam-720p.jpg missing");
  return img;
}

// The sample turned 25 degrees about its plate, as a camera beside the road sees plates.
const cv::Mat& tilted_720p() {
  static cv::Mat img = [] {
    const auto dets = recognizer().detect(frame_720p());
    if (dets.empty()) throw std::runtime_error("no plate detected in samples/ro-dashcam-720p.jpg");
    const cv::Rect& b = dets[0].box;
    const cv::Point2f centre(b.x + b.width / 2.0f, b.y + b.height / 2.0f);
    cv::Mat turned;
    cv::warpAffine(frame_720p(), turned, cv::getRotationMatrix2D(centre, 25.0, 1.0), frame_720p().size(),
                   cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    return turned;
  }();
  return img;
}

// The sample shrunk to 320x180, as small street photos and webcams give: looked at twice.
const cv::Mat& small_frame() {
  static cv::Mat img = [] {
    cv::Mat small;
    cv::resize(frame_720p(), small, cv::Size(320, 180), 0, 0, cv::INTER_AREA);
    return small;
  }();
  return img;
}

// An ordinary car photo: 576x432 around the sample's plate (the 4:3 part of the frame centred on it, shrunk).
const cv::Mat& photo_576() {
  static cv::Mat img = [] {
    const auto dets = recognizer().detect(frame_720p());
    if (dets.empty()) throw std::runtime_error("no plate detected in samples/ro-dashcam-720p.jpg");
    const cv::Rect& b = dets[0].box;
    const int x = std::clamp(b.x + b.width / 2 - 480, 0, frame_720p().cols - 960);
    cv::Mat photo;
    cv::resize(frame_720p()(cv::Rect(x, 0, 960, 720)), photo, cv::Size(576, 432), 0, 0, cv::INTER_AREA);
    return photo;
  }();
  return img;
}

void recognize(benchmark::State& state, const vigil::Recognizer& rec, const cv::Mat& img) {
  cv::setNumThreads(int(state.range(0)));
  std::size_t plates = 0;
  for (auto _ : state) plates += rec.recognize(img).plates.size();
  state.counters["plates/frame"] = double(plates) / state.iterations();
}

void BM_Recognize720p(benchmark::State& state) { recognize(state, recognizer(), frame_720p()); }
BENCHMARK(BM_Recognize720p)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RecognizePhoto576(benchmark::State& state) { recognize(state, recognizer(), photo_576()); }
BENCHMARK(BM_RecognizePhoto576)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Recognize720pNoCloseUp(benchmark::State& state) {
  recognize(state, recognizer_without_close_up(), frame_720p());
}
BENCHMARK(BM_Recognize720pNoCloseUp)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Recognize720pTilted(benchmark::State& state) { recognize(state, recognizer(), tilted_720p()); }
BENCHMARK(BM_Recognize720pTilted)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Recognize720pTiltedNoLevel(benchmark::State& state) {
  recognize(state, recognizer_without_level(), tilted_720p());
}
BENCHMARK(BM_Recognize720pTiltedNoLevel)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RecognizeSmall(benchmark::State& state) { recognize(state, recognizer(), small_frame()); }
BENCHMARK(BM_RecognizeSmall)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RecognizeSmallNoSecondScale(benchmark::State& state) {
  recognize(state, recognizer_without_second_scale(), small_frame());
}
BENCHMARK(BM_RecognizeSmallNoSecondScale)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Detect720p(benchmark::State& state) {
  cv::setNumThreads(int(state.range(0)));
  const auto& rec = recognizer();
  const auto& img = frame_720p();
  for (auto _ : state) benchmark::DoNotOptimize(rec.detect(img));
}
BENCHMARK(BM_Detect720p)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The sample's most confident detection; marks the benchmark failed when there is none.
std::optional<vigil::Detection> first_plate(benchmark::State& state) {
  const auto dets = recognizer().detect(frame_720p());
  if (dets.empty()) {
    state.SkipWithError("no plate detected in the sample");
    return std::nullopt;
  }
  return dets[0];
}

void BM_ReadOnePlate(benchmark::State& state) {
  cv::setNumThreads(2);
  const auto plate = first_plate(state);
  if (!plate) return;
  for (auto _ : state) benchmark::DoNotOptimize(recognizer().read(frame_720p(), plate->corners));
}
BENCHMARK(BM_ReadOnePlate)->Unit(benchmark::kMillisecond)->UseRealTime();

// The edge profile's detector work on a frame with one car moving: only a region around the plate (its
// size on every side), at the full frame's scale.
void BM_DetectRegion720p(benchmark::State& state) {
  cv::setNumThreads(int(state.range(0)));
  const auto& rec = recognizer();
  const auto& img = frame_720p();
  const auto plate = first_plate(state);
  if (!plate) return;
  const cv::Rect b = plate->box;
  const std::vector<cv::Rect> region = {cv::Rect(b.x - b.width, b.y - b.height, 3 * b.width, 3 * b.height)};
  std::size_t plates = 0;
  for (auto _ : state) plates += rec.recognize(img, region).plates.size();
  state.counters["plates/frame"] = double(plates) / state.iterations();
}
BENCHMARK(BM_DetectRegion720p)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The detector network alone on the 720p sample's 512x288 input: float32 as shipped, and int8 as OpenCV
// DNN 4.6 quantizes it (Net::quantize, calibrated on the bundled samples). Arg: 0 float32, 1 int8.
// Counter MMAC: the network's multiply-accumulates per frame (OpenCV's FLOP count / 2).
void BM_DetectorNetwork(benchmark::State& state) {
  cv::setNumThreads(1);
  const std::string onnx = recognizer().models_dir() + "/detector.onnx";
  cv::dnn::Net net = cv::dnn::readNet(onnx);
  auto blob_of = [](const cv::Mat& bgr) {
    cv::Mat small;
    cv::resize(bgr, small, cv::Size(512, 288), 0, 0, cv::INTER_AREA);
    return cv::dnn::blobFromImage(small, 1.0 / 255, cv::Size(), cv::Scalar(), true, false);
  };
  const cv::Mat blob = blob_of(frame_720p());
  const std::vector<int> shape = {1, 3, 288, 512};
  state.counters["MMAC"] = double(net.getFLOPS(shape)) / 2e6;
  if (state.range(0) == 1) {
    std::vector<cv::Mat> calib;
    for (const char* name : {"ro-dashcam-720p.jpg", "ro-dashcam-glare.jpg", "ro-dashcam-dusk.jpg",
                             "ro-dashcam-close.jpg"}) {
      const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/" + name);
      if (!img.empty()) calib.push_back(blob_of(img));
    }
    // N blobs of 1x3x288x512 as one Nx3x288x512 calibration batch.
    cv::Mat batch(std::vector<int>{int(calib.size()), 3, 288, 512}, CV_32F);
    const std::size_t one = calib[0].total() * sizeof(float);
    for (std::size_t i = 0; i < calib.size(); ++i) std::memcpy(batch.ptr<float>(int(i)), calib[i].ptr<float>(), one);
    try {
      net = net.quantize(batch, CV_32F, CV_32F);
    } catch (const cv::Exception& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
  for (auto _ : state) {
    net.setInput(blob);
    benchmark::DoNotOptimize(net.forward());
  }
}
BENCHMARK(BM_DetectorNetwork)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The reader network alone on one 32x128 plate; MMAC per plate.
void BM_ReaderNetwork(benchmark::State& state) {
  cv::setNumThreads(1);
  cv::dnn::Net net = cv::dnn::readNet(recognizer().models_dir() + "/reader.onnx");
  const std::vector<int> shape = {1, 1, 32, 128};
  state.counters["MMAC"] = double(net.getFLOPS(shape)) / 2e6;
  const cv::Mat blob(shape, CV_32F, cv::Scalar(0.5));
  for (auto _ : state) {
    net.setInput(blob);
    benchmark::DoNotOptimize(net.forward());
  }
}
BENCHMARK(BM_ReaderNetwork)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodeFormats(benchmark::State& state) {
  const auto& rec = recognizer();
  // A confident 7-character read over 32 steps.
  vigil::CtcOutput out;
  out.steps = 32;
  out.alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const int c = int(out.alphabet.size()) + 1;
  out.probs.assign(size_t(out.steps) * c, 0.001f);
  const std::string text = "1AB2345";
  for (int t = 0; t < out.steps; ++t) {
    const int k = t / 4;
    const int cls = (t % 4 == 1 && k < int(text.size())) ? int(out.alphabet.find(text[k])) + 1 : 0;
    out.probs[size_t(t) * c + cls] = 1.0f - 0.001f * (c - 1);
  }
  for (auto _ : state) benchmark::DoNotOptimize(vigil::decode(out, rec.formats()));
}
BENCHMARK(BM_DecodeFormats)->Unit(benchmark::kMicrosecond);

}  // namespace

// As the vigil command does: OpenCV's per-run buffers kept for reuse (vigil::keep_freed_memory).
int main(int argc, char** argv) {
  vigil::keep_freed_memory();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
