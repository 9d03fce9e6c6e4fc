// Speed of the recognizer's stages on the bundled 1280x720 sample (one plate in view).
//   build/bench/vigil_benchmarks --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>

#include "read/reader.hpp"
#include "vigil/vigil.hpp"

namespace {

const vigil::Recognizer& recognizer() {
  static auto rec = vigil::Recognizer::load();
  if (!rec) throw std::runtime_error(rec.error());
  return *rec;
}

const cv::Mat& frame_720p() {
  static cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-720p.jpg");
  if (img.empty()) throw std::runtime_error("samples/ro-dashcam-720p.jpg missing");
  return img;
}

void BM_Recognize720p(benchmark::State& state) {
  cv::setNumThreads(int(state.range(0)));
  const auto& rec = recognizer();
  const auto& img = frame_720p();
  std::size_t plates = 0;
  for (auto _ : state) plates += rec.recognize(img).plates.size();
  state.counters["plates/frame"] = double(plates) / state.iterations();
}
BENCHMARK(BM_Recognize720p)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Detect720p(benchmark::State& state) {
  cv::setNumThreads(int(state.range(0)));
  const auto& rec = recognizer();
  const auto& img = frame_720p();
  for (auto _ : state) benchmark::DoNotOptimize(rec.detect(img));
}
BENCHMARK(BM_Detect720p)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReadOnePlate(benchmark::State& state) {
  cv::setNumThreads(2);
  const auto& rec = recognizer();
  const auto& img = frame_720p();
  const auto dets = rec.detect(img);
  if (dets.empty()) {
    state.SkipWithError("no plate detected in the sample");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(rec.read(img, dets[0].corners));
}
BENCHMARK(BM_ReadOnePlate)->Unit(benchmark::kMillisecond)->UseRealTime();

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

BENCHMARK_MAIN();
