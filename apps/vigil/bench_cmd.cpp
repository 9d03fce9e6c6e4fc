// vigil bench: detection and end-to-end reading accuracy, and speed, on annotated datasets.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "vigil/dataset.hpp"

namespace vigil::cli {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct BenchFlags {
  std::vector<std::string> datasets;
  std::string split = "all";
  double test_fraction = 0.2;
  std::uint64_t seed = 0;
  bool json = false, gt_crops = false, passes = false;
  int limit = 0;
  double iou = 0.5;  // overlap a detection needs with a ground-truth box to count as finding it
  double min_plate_width = 0;  // ground-truth plates narrower (pixels) are left out of every figure
  RecognizerFlags rec;
};

struct SetResult {
  std::string name;
  std::size_t images = 0, gt_plates = 0, gt_texts = 0, detections = 0, true_pos = 0, exact = 0, topn = 0,
              bad_images = 0;
  // Missed plates whose text a detection the IoU rule did not match reads exactly: a label box drawn in
  // the wrong place, or a detection box much looser than the label (they still count as missed).
  std::size_t read_elsewhere = 0;
  // Ground-truth plates narrower than --min-plate-width: neither missed nor found, and a detection of
  // one is no false detection.
  std::size_t ignored_plates = 0;
  // Plates labelled two-line, and those read exactly; plates with a labelled country (and a text), and
  // those whose read reports that country.
  std::size_t two_line = 0, two_line_exact = 0, country_labelled = 0, country_right = 0;
  std::vector<double> detect_ms, read_ms, total_ms;
  double seconds = 0;
  // (confidence, correct) of every read matched to a plate with a text, to choose a min-confidence.
  std::vector<std::pair<float, bool>> reads;
  std::vector<std::string> errors;  // "<image>: want X got Y"
  // Per recognition pass, in the order passes first ran: its time over the set, and the reported plates it
  // produced or changed (Plate::passes), with how many of those matched a labelled plate and read it right.
  struct PassStat {
    std::string name;
    double ms = 0;
    std::size_t runs = 0, images = 0, plates = 0, labelled = 0, exact = 0;
  };
  std::vector<PassStat> passes;
  PassStat& pass(const std::string& name) {
    for (auto& p : passes)
      if (p.name == name) return p;
    passes.push_back({name});
    return passes.back();
  }
};

// A detection overlapping a ground-truth plate left out (--min-plate-width) by this much is on that plate.
constexpr float kOnIgnoredPlateIou = 0.1f;

float iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float u = a.area() + b.area() - inter;
  return u > 0 ? inter / u : 0;
}

SetResult bench_set(const Recognizer& rec, const std::string& spec, const BenchFlags& f, std::string& error) {
  SetResult s;
  s.name = spec;
  std::string path = spec, split = f.split;
  if (auto pos = spec.rfind(':'); pos != std::string::npos) {
    const std::string suffix = spec.substr(pos + 1);
    if (suffix == "all" || suffix == "train" || suffix == "test" || suffix == "dev")
      path = spec.substr(0, pos), split = suffix == "dev" ? "test" : suffix;
  }
  DatasetOptions o;
  o.split = split == "test" ? Split::kTest : split == "train" ? Split::kTrain : Split::kAll;
  o.test_fraction = f.test_fraction;
  o.seed = f.seed;
  auto ds = load_dataset(path, o);
  if (!ds) {
    error = ds.error();
    return s;
  }
  if (s.name == path && split != "all") s.name += ":" + split;
  for (const auto& w : ds->warnings) log(LogLevel::kWarn, w);
  auto images = ds->images;
  if (f.limit > 0 && int(images.size()) > f.limit) images.resize(f.limit);
  Progress progress(images.size(), "images");
  const auto t_set = Clock::now();
  for (const auto& item : images) {
    LoadedImage img = load_image(item.path, rec.options().max_pixels);
    progress.tick(++s.images);
    if (!img.error.empty()) {
      ++s.bad_images;
      log(LogLevel::kWarn, item.path + ": " + img.error);
      continue;
    }
    std::vector<cv::Rect2f> gt;
    for (const auto& p : item.plates) {
      cv::Rect2f b(p.x, p.y, p.w, p.h);
      if (item.boxes_normalized) b = {b.x * img.image.cols, b.y * img.image.rows, b.width * img.image.cols,
                                      b.height * img.image.rows};
      gt.push_back(b);
    }
    std::vector<bool> ignored(gt.size(), false);
    for (std::size_t g = 0; g < gt.size(); ++g) ignored[g] = gt[g].width < f.min_plate_width;
    const auto n_ignored = std::size_t(std::count(ignored.begin(), ignored.end(), true));
    s.gt_plates += gt.size() - n_ignored;
    s.ignored_plates += n_ignored;
    // Boxes and reads: the ground-truth boxes read one by one, or the whole recognizer (detector, reads,
    // and weak detections kept only where the reader confirms a plate).
    std::vector<Plate> reads;
    double det_ms = 0, read_ms = 0;
    if (f.gt_crops) {
      const auto t1 = Clock::now();
      for (const auto& b : gt) {
        Plate p = rec.read(img.image, {cv::Point2f(b.x, b.y), cv::Point2f(b.x + b.width, b.y),
                                       cv::Point2f(b.x + b.width, b.y + b.height), cv::Point2f(b.x, b.y + b.height)});
        p.box = cv::Rect(b);
        reads.push_back(std::move(p));
      }
      read_ms = ms_since(t1);
    } else {
      Recognition r = rec.recognize(img.image);
      if (!r.error.empty()) log(LogLevel::kWarn, item.path + ": " + r.error);
      det_ms = r.ms.detect_ms;
      read_ms = r.ms.read_ms;
      reads = std::move(r.plates);
      for (const auto& t : r.passes) {
        auto& stat = s.pass(t.name);
        stat.ms += t.ms;
        stat.runs += t.runs;
        ++stat.images;
      }
      for (const auto& p : reads)
        for (const auto& name : p.passes) ++s.pass(name).plates;
    }
    std::vector<cv::Rect> dets;
    for (const auto& p : reads) dets.push_back(p.box);
    s.detect_ms.push_back(det_ms);
    s.read_ms.push_back(read_ms);
    s.total_ms.push_back(det_ms + read_ms);
    s.detections += dets.size();
    // Greedy one-to-one matching by IoU >= 0.5.
    std::vector<bool> used(dets.size(), false);
    std::vector<std::size_t> missed;
    for (size_t g = 0; g < gt.size(); ++g) {
      if (ignored[g]) continue;
      int best = -1;
      float best_iou = float(f.iou);
      for (size_t d = 0; d < dets.size(); ++d) {
        const float v = iou(gt[g], cv::Rect2f(dets[d]));
        if (!used[d] && v >= best_iou) best = int(d), best_iou = v;
      }
      // A plate crop is the picture: its plate is the surest read (reads come most confident first),
      // wherever its box lies.
      if (item.plates[g].whole_image && best < 0)
        for (size_t d = 0; d < dets.size() && best < 0; ++d)
          if (!used[d]) best = int(d);
      const std::string& want = item.plates[g].text;
      if (!want.empty()) ++s.gt_texts;
      if (best < 0) {
        if (!want.empty()) missed.push_back(g);
        continue;
      }
      used[best] = true;
      ++s.true_pos;
      if (want.empty()) continue;
      const Plate& p = reads[best];
      const bool ok = p.text == want;
      s.exact += ok;
      if (item.plates[g].lines == 2) ++s.two_line, s.two_line_exact += ok;
      if (!item.plates[g].country.empty()) {
        ++s.country_labelled;
        s.country_right += p.country == item.plates[g].country;
      }
      bool in_top = false;
      for (const auto& c : p.candidates) in_top |= c.text == want;
      s.topn += in_top || ok;
      s.reads.emplace_back(p.confidence, ok);
      for (const auto& name : p.passes) {
        auto& stat = s.pass(name);
        ++stat.labelled;
        stat.exact += ok;
      }
      if (!ok) s.errors.push_back(item.path + ": want " + want + " got " + p.text);
    }
    // Detections no kept plate claimed are left out too when they are narrower than the plates counted or
    // lie on a plate left out (as in COCO's evaluation by size range): a tiny plate found is no error.
    if (n_ignored > 0 || f.min_plate_width > 0) {
      for (size_t d = 0; d < dets.size(); ++d) {
        if (used[d]) continue;
        bool leave_out = dets[d].width < f.min_plate_width;
        for (size_t g = 0; g < gt.size() && !leave_out; ++g)
          leave_out = ignored[g] && iou(gt[g], cv::Rect2f(dets[d])) >= kOnIgnoredPlateIou;
        if (!leave_out) continue;
        used[d] = true;
        --s.detections;
      }
    }
    for (const std::size_t g : missed) {
      const std::string& want = item.plates[g].text;
      std::string error = item.path + ": want " + want + " got (not detected)";
      for (std::size_t d = 0; d < dets.size(); ++d) {
        if (used[d] || reads[d].text != want) continue;
        used[d] = true;
        ++s.read_elsewhere;
        const cv::Rect2f b(dets[d]);
        const float label_inside = (gt[g] & b).area() / std::max(1.0f, gt[g].area());
        char note[160];
        std::snprintf(note, sizeof note, "; read right by a detection at [%.0f, %.0f, %.0f, %.0f], IoU %.2f: %s", b.x,
                      b.y, b.width, b.height, iou(gt[g], b),
                      label_inside >= 0.7f ? "its box is loose" : "is the label box misplaced?");
        error += note;
        break;
      }
      s.errors.push_back(std::move(error));
    }
  }
  progress.finish();
  s.seconds = std::chrono::duration<double>(Clock::now() - t_set).count();
  return s;
}

double pct(std::size_t a, std::size_t b) { return b ? 100.0 * a / b : 0.0; }

nlohmann::json passes_json(const SetResult& s) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : s.passes)
    out.push_back({{"pass", p.name},
                   {"ms_per_image", s.images ? p.ms / s.images : 0.0},
                   {"images", p.images},
                   {"runs", p.runs},
                   {"plates", p.plates},
                   {"plates_labelled", p.labelled},
                   {"plates_exact", p.exact}});
  return out;
}

nlohmann::json to_json(const SetResult& s, double match_iou) {
  nlohmann::json sweep = nlohmann::json::array();
  for (float t : {0.0f, 0.05f, 0.1f, 0.2f, 0.3f, 0.5f, 0.7f, 0.9f}) {
    std::size_t kept = 0, right = 0;
    for (const auto& [c, ok] : s.reads)
      if (c >= t) ++kept, right += ok;
    sweep.push_back({{"min_confidence", std::round(t * 100.0) / 100}, {"reported", kept}, {"correct", right},
                     {"precision", kept ? double(right) / kept : 0.0}, {"recall", pct(right, s.gt_texts) / 100}});
  }
  return {{"dataset", s.name},
          {"images", s.images},
          {"bad_images", s.bad_images},
          {"plates", s.gt_plates},
          {"plates_with_text", s.gt_texts},
          {"detections", s.detections},
          {"iou", match_iou},
          {"detection_recall", pct(s.true_pos, s.gt_plates) / 100},
          {"detection_precision", pct(s.true_pos, s.detections) / 100},
          {"exact", pct(s.exact, s.gt_texts) / 100},
          {"top_n", pct(s.topn, s.gt_texts) / 100},
          {"two_line_plates", s.two_line},
          {"two_line_exact", pct(s.two_line_exact, s.two_line) / 100},
          {"country_labelled", s.country_labelled},
          {"country_right", pct(s.country_right, s.country_labelled) / 100},
          {"read_elsewhere", s.read_elsewhere},
          {"ignored_plates", s.ignored_plates},
          {"ms",
           {{"detect_median", median(s.detect_ms)}, {"detect_p95", percentile(s.detect_ms, 0.95)},
            {"read_median", median(s.read_ms)}, {"read_p95", percentile(s.read_ms, 0.95)},
            {"total_median", median(s.total_ms)}, {"total_p95", percentile(s.total_ms, 0.95)}}},
          {"images_per_s", s.seconds > 0 ? s.images / s.seconds : 0.0},
          {"confidence_sweep", sweep},
          {"passes", passes_json(s)},
          {"errors", s.errors}};
}

int run(const BenchFlags& f) {
  auto opts = f.rec.to_options();
  if (!opts) {
    std::cerr << "vigil bench: " << opts.error() << "\n";
    return 2;
  }
  auto rec = Recognizer::load(*opts);
  if (!rec) {
    std::cerr << "vigil bench: " << rec.error() << "\n";
    return 2;
  }
  int status = 0;
  nlohmann::json all = nlohmann::json::array();
  if (!f.json)
    std::printf("%-34s %6s %6s %8s %8s %7s %7s %15s %15s %8s\n", "dataset", "images", "plates", "det.rec", "det.prec",
                "exact", "top-N", "detect ms p50/95", "read ms p50/95", "img/s");
  for (const auto& spec : f.datasets) {
    std::string error;
    SetResult s = bench_set(*rec, spec, f, error);
    if (!error.empty()) {
      std::cerr << "vigil bench: " << error << "\n";
      status = 1;
      continue;
    }
    if (f.json) {
      all.push_back(to_json(s, f.iou));
    } else {
      const bool has_text = s.gt_texts > 0;
      char exact[16] = "-", topn[16] = "-";
      if (has_text) {
        std::snprintf(exact, sizeof exact, "%.1f%%", pct(s.exact, s.gt_texts));
        std::snprintf(topn, sizeof topn, "%.1f%%", pct(s.topn, s.gt_texts));
      }
      std::printf("%-34s %6zu %6zu %7.1f%% %7.1f%% %7s %7s %7.1f/%-7.1f %7.1f/%-7.1f %8.1f\n", s.name.c_str(), s.images,
                  s.gt_plates, pct(s.true_pos, s.gt_plates), pct(s.true_pos, s.detections), exact, topn,
                  median(s.detect_ms), percentile(s.detect_ms, 0.95), median(s.read_ms), percentile(s.read_ms, 0.95),
                  s.seconds > 0 ? s.images / s.seconds : 0.0);
      if (s.two_line)
        std::printf("  two-line plates: %zu, %.1f%% exact\n", s.two_line, pct(s.two_line_exact, s.two_line));
      if (s.country_labelled)
        std::printf("  country right: %.1f%% of %zu plates with a labelled country\n",
                    pct(s.country_right, s.country_labelled), s.country_labelled);
      if (f.passes && !s.passes.empty()) {
        std::printf("  %-18s %10s %8s %8s %8s %14s\n", "pass", "ms/image", "images", "runs", "plates",
                    "labelled/exact");
        for (const auto& p : s.passes)
          std::printf("  %-18s %10.2f %8zu %8zu %8zu %7zu/%-6zu\n", p.name.c_str(), s.images ? p.ms / s.images : 0.0,
                      p.images, p.runs, p.plates, p.labelled, p.exact);
      }
      if (s.ignored_plates)
        std::printf("  %zu plate(s) narrower than %g px left out\n", s.ignored_plates, f.min_plate_width);
      if (s.read_elsewhere)
        std::printf("  %zu missed plate(s) read right by a detection off their label box: a loose detection or a "
                    "misplaced label (--json lists them)\n",
                    s.read_elsewhere);
      std::fflush(stdout);
    }
    if (s.bad_images) status = 1;
  }
  if (f.json) std::cout << all.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return status;
}

}  // namespace

void register_bench(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<BenchFlags>();
  auto* sub = app.add_subcommand(
      "bench", "Accuracy and speed on annotated datasets (Pascal VOC, YOLO, OpenALPR txt, CSV); PATH[:all|train|test]");
  sub->add_option("datasets", f->datasets, "Dataset folders or CSV files; a :test suffix picks the held-out part")
      ->required();
  sub->add_option("--split", f->split, "Part of each dataset's seeded split: all, train or test (a plate-crop set uses its own split column; DATASET:dev is its test part)")
      ->check(CLI::IsMember({"all", "train", "test"}))
      ->capture_default_str();
  sub->add_option("--test-fraction", f->test_fraction, "Share of the seeded test part")->capture_default_str();
  sub->add_option("--seed", f->seed, "Split seed")->capture_default_str();
  sub->add_option("--limit", f->limit, "At most this many images per dataset (0: all)");
  sub->add_flag("--gt-crops", f->gt_crops, "Read the ground-truth boxes instead of detections (reader only)");
  sub->add_option("--iou", f->iou,
                  "Box overlap (intersection over union) a detection needs to count as finding a plate; datasets "
                  "whose boxes are drawn loosely around the plate need less")
      ->check(CLI::Range(0.05, 1.0))
      ->capture_default_str();
  sub->add_option("--min-plate-width", f->min_plate_width,
                  "Leave out ground-truth plates narrower than this many pixels (and detections of them): "
                  "recall over the plate sizes a camera is set up for")
      ->check(CLI::Range(0.0, 10000.0));
  sub->add_flag("--json", f->json, "Results as JSON (with per-plate errors, a confidence sweep and per-pass costs)");
  sub->add_flag("--passes", f->passes,
                "Also print what each recognition pass cost (ms per image, runs) and the plates it produced or "
                "changed (of them matched to a labelled plate / read exactly)");
  f->rec.add_to(*sub);
  sub->callback([f, &exit_code] { exit_code = run(*f); });
}

}  // namespace vigil::cli
