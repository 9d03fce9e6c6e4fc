// Rectification geometry, model loading errors, and the committed models on the bundled samples.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detector.hpp"
#include "read/reader.hpp"
#include "recognize/passes.hpp"
#include "vigil/recognizer.hpp"
#include "vigil/video.hpp"

namespace fs = std::filesystem;

namespace vigil {
namespace {

std::array<cv::Point2f, 4> rect_quad(float x, float y, float w, float h) {
  return {cv::Point2f(x, y), cv::Point2f(x + w, y), cv::Point2f(x + w, y + h), cv::Point2f(x, y + h)};
}

TEST(Rectify, ExpandQuadAddsMarginsAlongThePlateAxes) {
  const auto q = expand_quad(rect_quad(100, 50, 200, 40), 0.1f, 0.25f);
  EXPECT_FLOAT_EQ(q[0].x, 80);
  EXPECT_FLOAT_EQ(q[0].y, 40);
  EXPECT_FLOAT_EQ(q[2].x, 320);
  EXPECT_FLOAT_EQ(q[2].y, 100);
}

TEST(Rectify, AspectOfAQuad) {
  EXPECT_NEAR(quad_aspect(rect_quad(0, 0, 520, 110)), 520.0 / 110, 1e-4);
  EXPECT_NEAR(quad_aspect(rect_quad(5, 5, 100, 100)), 1.0, 1e-4);
}

TEST(Rectify, OneLineWarpsToTheNetworkSize) {
  cv::Mat img(200, 400, CV_8UC1, cv::Scalar(0));
  cv::rectangle(img, cv::Rect(100, 80, 200, 40), cv::Scalar(255), -1);
  RectifyGeometry g;
  g.margin_x = g.margin_y = 0;
  const cv::Mat out = rectify_plate(img, rect_quad(100, 80, 200, 40), false, g);
  ASSERT_EQ(out.size(), cv::Size(g.width, g.height));
  EXPECT_GT(cv::mean(out)[0], 240);  // exactly the plate
}

TEST(Rectify, TwoLinePlatesPutTheirHalvesSideBySide) {
  cv::Mat img(200, 200, CV_8UC1, cv::Scalar(0));
  cv::rectangle(img, cv::Rect(50, 50, 100, 50), cv::Scalar(255), -1);  // top line bright, bottom dark
  RectifyGeometry g;
  g.margin_x = g.margin_y = 0;
  const cv::Mat out = rectify_plate(img, rect_quad(50, 50, 100, 100), true, g);
  ASSERT_EQ(out.size(), cv::Size(g.width, g.height));
  EXPECT_GT(cv::mean(out.colRange(0, g.width / 2 - 2))[0], 240);
  EXPECT_LT(cv::mean(out.colRange(g.width / 2 + 2, g.width))[0], 15);
}

Decoded read_of(const FormatSet& formats, const std::string& text, float confidence) {
  Decoded d;
  d.text = text;
  d.confidence = confidence;
  // The reported layout, as decode() picks it: the narrowest fitting one weighted by its prior.
  const PlateFormat* best = nullptr;
  for (const PlateFormat* f : formats.match(text))
    if (!best || (best->prior < 1.0f && f->prior >= 1.0f)) best = f;
  if (best) d.country = best->country, d.format = best->name, d.fits_format = true;
  return d;
}

TEST(SecondLook, WhenAndWhichReadIsKept) {
  auto formats = FormatSet::parse(R"({"formats":[
      {"country":"fr","name":"old","pattern":"[0-9]{1,4}[A-Z]{1,3}[0-9]{2}","example":"2348XR25"},
      {"country":"us","name":"generic","pattern":"[0-9A-Z]{2,8}","example":"ABC123","prior":0.2}]})");
  ASSERT_TRUE(formats.ok()) << formats.error();
  const auto read = [&](const std::string& text, float confidence) { return read_of(*formats, text, confidence); };
  using recognize::second_look_wins;
  using recognize::wants_second_look;
  EXPECT_EQ(recognize::fit_level(read("2348XR25", 0.9f), *formats), 2);
  EXPECT_EQ(recognize::fit_level(read("2348XR2", 0.9f), *formats), 1);
  EXPECT_EQ(recognize::fit_level(read("#", 0.9f), *formats), 0);

  // A sure read of a specific layout needs no second look; an unsure one, or one fitting only the
  // catch-all however sure, does.
  EXPECT_FALSE(wants_second_look(read("2348XR25", 0.95f), *formats));
  EXPECT_TRUE(wants_second_look(read("2348XR25", 0.6f), *formats));
  EXPECT_TRUE(wants_second_look(read("2348XR2", 0.98f), *formats));

  // Unsure first read: a fitting read beats a non-fitting one, then the more probable wins.
  EXPECT_TRUE(second_look_wins(read("2348XR25", 0.6f), read("2348XR26", 0.7f), *formats));
  EXPECT_FALSE(second_look_wins(read("2348XR25", 0.6f), read("2348XR26", 0.5f), *formats));
  EXPECT_TRUE(second_look_wins(read("#", 0.8f), read("2348XR26", 0.3f), *formats));

  // Sure catch-all read: replaced only by the same characters plus what the narrow crop cut off,
  // fitting a specific layout, reasonably sure.
  EXPECT_TRUE(second_look_wins(read("2348XR2", 0.98f), read("2348XR25", 0.94f), *formats));
  EXPECT_TRUE(second_look_wins(read("348XR25", 0.98f), read("2348XR25", 0.94f), *formats));
  EXPECT_FALSE(second_look_wins(read("2348XR2", 0.98f), read("2348XR25", 0.3f), *formats));
  EXPECT_FALSE(second_look_wins(read("2348XR2", 0.98f), read("2349XR25", 0.99f), *formats));  // not an extension
  EXPECT_FALSE(second_look_wins(read("KL3B8K", 0.98f), read("KL3B8K1", 0.99f), *formats));  // catch-all only
}

TEST(SecondLook, OneLineOrTwo) {
  auto formats = FormatSet::parse(R"({"formats":[
      {"country":"sk","name":"standard","pattern":"[A-Z]{2}[0-9]{3}[A-Z]{2}","example":"OC948SK"},
      {"country":"us","name":"generic","pattern":"[0-9][0-9A-Z]{1,7}|[A-Z]{1,7}[0-9][0-9A-Z]{0,6}","example":"ABC123","prior":0.2}]})");
  ASSERT_TRUE(formats.ok()) << formats.error();
  const auto read = [&](const std::string& text, float confidence) { return read_of(*formats, text, confidence); };
  using recognize::two_line_wins;
  // A fitting read beats one fitting nothing...
  EXPECT_TRUE(two_line_wins(read("NEILDMND", 0.4f), read("OC948SK", 0.1f)));
  EXPECT_FALSE(two_line_wins(read("OC948SK", 0.1f), read("NEILDMND", 0.9f)));
  // ...unless it is a guess against a sure read: a vanity plate read right on one line.
  EXPECT_FALSE(two_line_wins(read("NEILDMND", 0.68f), read("T0UC0MNU", 0.001f)));
  EXPECT_TRUE(two_line_wins(read("NEILDMND", 0.4f), read("T0UC0MNU", 0.001f)));
  // Squeezed into one line a two-line plate shows its taller line: a two-line read holding it and more wins.
  EXPECT_TRUE(two_line_wins(read("948SK", 0.93f), read("OC948SK", 0.86f)));
  EXPECT_FALSE(two_line_wins(read("948SK", 0.93f), read("OC948SK", 0.2f)));
  // Otherwise the more probable read.
  EXPECT_FALSE(two_line_wins(read("AB123CD", 0.9f), read("AB128CD", 0.8f)));
  EXPECT_TRUE(two_line_wins(read("AB123CD", 0.7f), read("AB128CD", 0.8f)));
}

TEST(SecondLook, CloseUpOrFullPass) {
  auto formats = FormatSet::parse(R"({"formats":[
      {"country":"ro","name":"bucharest","pattern":"B[0-9]{2,3}[A-Z]{3}","example":"B123ABC"},
      {"country":"us","name":"generic","pattern":"[0-9][0-9A-Z]{1,7}|[A-Z]{1,7}[0-9][0-9A-Z]{0,6}","example":"ABC123","prior":0.2}]})");
  ASSERT_TRUE(formats.ok()) << formats.error();
  const auto read = [&](const std::string& text, float confidence) { return read_of(*formats, text, confidence); };
  using recognize::close_up_wins;
  // The full pass boxes a piece of a plate too large for it and reads that surely: the whole read wins.
  EXPECT_TRUE(close_up_wins(read("K17965", 0.97f), read("K179658", 0.6f)));
  EXPECT_TRUE(close_up_wins(read("B07AA", 0.95f), read("B07AAC", 0.5f)));
  // A loose close-up box adds a stray character at under even odds: the full pass's sure read stays.
  EXPECT_FALSE(close_up_wins(read("5VCF203", 0.98f), read("5VCF2037", 0.44f)));
  // A fitting read beats one fitting nothing, unless it is a guess against a sure read.
  EXPECT_TRUE(close_up_wins(read("BQAAC", 0.6f), read("B07AAC", 0.3f)));
  EXPECT_FALSE(close_up_wins(read("B107AAC", 0.2f), read("BXQ", 0.9f)));
  EXPECT_FALSE(close_up_wins(read("QQQQ", 0.9f), read("B07AAC", 0.01f)));
  // Otherwise the more probable.
  EXPECT_TRUE(close_up_wins(read("B07AAG", 0.4f), read("B07AAC", 0.8f)));
  EXPECT_FALSE(close_up_wins(read("B07AAC", 0.8f), read("B07AAG", 0.4f)));
}

TEST(Detector, BoxIou) {
  EXPECT_FLOAT_EQ(box_iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0f);
  EXPECT_FLOAT_EQ(box_iou({0, 0, 10, 10}, {5, 0, 10, 10}), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(box_iou({0, 0, 10, 10}, {20, 20, 5, 5}), 0.0f);
}

Detection scored_box(cv::Rect box, float score) {
  Detection d;
  d.box = box;
  d.score = score;
  return d;
}

TEST(Detector, PlateTiltIsTheMeanSlopeOfTopAndBottom) {
  // corners top-left, top-right, bottom-right, bottom-left; y grows downwards
  EXPECT_NEAR(plate_tilt_degrees({{{0, 0}, {100, 0}, {100, 20}, {0, 20}}}), 0.0, 1e-6);
  const double c = std::cos(CV_PI / 6), s = std::sin(CV_PI / 6);
  // turned 30 degrees clockwise on the screen: the right end lower
  EXPECT_NEAR(plate_tilt_degrees({{{0, 0},
                                   {float(100 * c), float(100 * s)},
                                   {float(100 * c - 20 * s), float(100 * s + 20 * c)},
                                   {float(-20 * s), float(20 * c)}}}),
              30.0, 1e-3);
  // a perspective quad: top edge rising 10 px, bottom level, the mean of the two
  EXPECT_NEAR(plate_tilt_degrees({{{0, 10}, {100, 0}, {100, 20}, {0, 20}}}),
              std::atan2(-10.0, 200.0) * 180.0 / CV_PI, 1e-3);
}

TEST(Detector, SuppressionDropsOverlapsAndPartialViewsOnly) {
  // Highest score first; the weaker copy of the same plate goes.
  auto kept = suppress_overlaps({scored_box({100, 100, 80, 20}, 0.6f), scored_box({102, 101, 80, 20}, 0.9f)}, 0.4f, 32);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.9f);
  // A tile's partial view of a plate (its left half, same height) goes too, though its IoU is only 0.5.
  kept = suppress_overlaps({scored_box({100, 100, 40, 20}, 0.7f), scored_box({100, 100, 80, 20}, 0.9f)}, 0.6f, 32);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].box.width, 80);
  // One line of a two-line plate (the plate's width, 40% of its height; IoU 0.39) goes.
  kept = suppress_overlaps({scored_box({100, 100, 60, 40}, 0.9f), scored_box({101, 122, 58, 16}, 0.7f)}, 0.4f, 32);
  EXPECT_EQ(kept.size(), 1u);
  // A small plate inside a stronger false box over its car stays.
  kept = suppress_overlaps({scored_box({0, 0, 300, 200}, 0.8f), scored_box({120, 150, 40, 10}, 0.6f)}, 0.4f, 32);
  EXPECT_EQ(kept.size(), 2u);
  // Two plates side by side both stay; max_plates bounds the count.
  const std::vector<Detection> two{scored_box({0, 0, 80, 20}, 0.9f), scored_box({200, 0, 80, 20}, 0.8f)};
  EXPECT_EQ(suppress_overlaps(two, 0.4f, 32).size(), 2u);
  EXPECT_EQ(suppress_overlaps(two, 0.4f, 1).size(), 1u);
}

TEST(RecognizerLoad, MissingModelsFolderIsAClearError) {
  RecognizerOptions o;
  o.models_dir = "/nonexistent/models";
  o.formats_file = std::string(VIGIL_SOURCE_DIR) + "/data/plate_formats.json";
  auto r = Recognizer::load(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("/nonexistent/models/detector.json"), std::string::npos) << r.error();
}

TEST(RecognizerLoad, CorruptModelIsAClearError) {
  const fs::path dir = fs::temp_directory_path() / "vigil_corrupt_model";
  fs::create_directories(dir);
  const fs::path src = fs::path(VIGIL_SOURCE_DIR) / "models";
  for (const char* f : {"detector.json", "reader.json", "reader.onnx"})
    fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  std::ofstream(dir / "detector.onnx") << "this is not an onnx file";
  RecognizerOptions o;
  o.models_dir = dir.string();
  o.formats_file = std::string(VIGIL_SOURCE_DIR) + "/data/plate_formats.json";
  auto r = Recognizer::load(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("detector.onnx"), std::string::npos) << r.error();
  fs::remove_all(dir);
}

TEST(RecognizerLoad, UnknownPreferredCountryIsRefused) {
  RecognizerOptions o;
  o.decode.preferred_country = "xx";
  auto r = Recognizer::load(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("xx"), std::string::npos);
}

class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = Recognizer::load();
    ASSERT_TRUE(r.ok()) << r.error();
    rec_ = new Recognizer(std::move(*r));
  }
  static void TearDownTestSuite() {
    delete rec_;
    rec_ = nullptr;
  }
  static Recognizer* rec_;
};
Recognizer* ModelTest::rec_ = nullptr;

TEST_F(ModelTest, EmptyAndDegenerateImagesGiveNoPlates) {
  EXPECT_TRUE(rec_->recognize(cv::Mat()).plates.empty());
  EXPECT_TRUE(rec_->recognize(cv::Mat(1, 1, CV_8UC3, cv::Scalar(0))).plates.empty());
  EXPECT_TRUE(rec_->recognize(cv::Mat(480, 640, CV_8UC3, cv::Scalar(128, 128, 128))).plates.empty());
  EXPECT_NO_THROW(rec_->recognize(cv::Mat(3000, 20, CV_8UC3, cv::Scalar(0))));
  EXPECT_TRUE(rec_->recognize(cv::Mat(480, 640, CV_8UC3, cv::Scalar(128, 128, 128))).error.empty());
}

// recognize() never throws: what OpenCV cannot take (a two-channel image) comes back as an error.
TEST_F(ModelTest, RecognitionFailuresComeBackAsErrorsNotExceptions) {
  Recognition r;
  ASSERT_NO_THROW(r = rec_->recognize(cv::Mat(240, 320, CV_8UC2, cv::Scalar(10, 200))));
  EXPECT_TRUE(r.plates.empty());
  EXPECT_NE(r.error.find("recognition failed"), std::string::npos) << r.error;
}

TEST_F(ModelTest, ReadsNameTheirCountryAndReadsOutsideTheRegionAreLessSure) {
  const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg");
  ASSERT_FALSE(img.empty());
  const auto r = rec_->recognize(img);
  ASSERT_FALSE(r.plates.empty());
  EXPECT_EQ(r.plates[0].text, "BR07AAC");
  EXPECT_EQ(r.plates[0].country, "ro");
  EXPECT_GT(r.plates[0].country_confidence, 0.3f);
  EXPECT_LE(r.plates[0].country_confidence, 1.0f);
  EXPECT_TRUE(r.plates[0].fits_format);

  // A Czech-only deployment: the Romanian plate fits none of its formats. Still reported, flagged, at half
  // its probability, and named after the only country the region has.
  RecognizerOptions o;
  o.region = *parse_region("eu", "cz");
  auto czech = Recognizer::load(o);
  ASSERT_TRUE(czech.ok()) << czech.error();
  const auto c = czech->recognize(img);
  ASSERT_FALSE(c.plates.empty());
  EXPECT_FALSE(c.plates[0].fits_format);
  EXPECT_NEAR(c.plates[0].confidence, 0.5f * c.plates[0].candidates[0].confidence, 1e-5f);
  EXPECT_EQ(c.plates[0].country, "cz");
  EXPECT_EQ(c.plates[0].format, "");

  RecognizerOptions us;
  us.decode.preferred_country = "us";
  auto refused = Recognizer::load(us);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("--region"), std::string::npos) << refused.error();
}

TEST_F(ModelTest, GreyAndAlphaImagesAreAccepted) {
  const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg");
  ASSERT_FALSE(img.empty());
  cv::Mat grey, bgra;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  cv::cvtColor(img, bgra, cv::COLOR_BGR2BGRA);
  EXPECT_EQ(rec_->recognize(bgra).plates.size(), rec_->recognize(img).plates.size());
  EXPECT_NO_THROW(rec_->recognize(grey));
}

TEST_F(ModelTest, ReadsTheBundledSamples) {
  std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/samples/expected.json");
  const auto expected = nlohmann::json::parse(in);
  int want = 0, read = 0;
  for (const auto& [name, plates] : expected.items()) {
    if (name.starts_with("_")) continue;
    const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/" + name);
    ASSERT_FALSE(img.empty()) << name;
    const auto r = rec_->recognize(img);
    for (const auto& p : r.plates) {
      EXPECT_GE(p.confidence, 0.0f);
      EXPECT_LE(p.confidence, 1.0f);
      EXPECT_TRUE((cv::Rect(0, 0, img.cols, img.rows) & p.box) == p.box) << name;
      ASSERT_FALSE(p.candidates.empty());
      EXPECT_EQ(p.candidates[0].text, p.text);
    }
    for (const auto& want_text : plates) {
      ++want;
      bool exact = false;
      for (const auto& p : r.plates) {
        exact |= p.text == want_text.get<std::string>();
      }
      read += exact;
      if (!exact) std::cerr << name << ": " << want_text << " not read\n";
    }
  }
  // Floors set from the shipped models' measured reads (see models/MODEL_CARD.md), less a margin.
  constexpr int kSamplesReadFloor = 3;  // 4 of 6 read by the shipped models
  EXPECT_GE(read, kSamplesReadFloor) << read << " of " << want << " sample plates read exactly";
}

TEST_F(ModelTest, RegionsFindThePlatesInsideThemAsAFullPassDoes) {
  const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-720p.jpg");
  ASSERT_FALSE(img.empty());
  const auto full = rec_->recognize(img);
  ASSERT_FALSE(full.plates.empty()) << "the models find no plate in the sample";
  for (const auto& want : full.plates) {
    SCOPED_TRACE(want.text);
    // A region around one plate (its size in every direction) finds that plate: it is searched at the
    // full pass's scale.
    const cv::Rect b = want.box;
    const cv::Rect region(b.x - b.width, b.y - b.height, 3 * b.width, 3 * b.height);
    const auto r = rec_->recognize(img, {region});
    const Plate* same = nullptr;
    for (const auto& p : r.plates)
      if ((p.box & b).area() > 0.5 * b.area()) same = &p;
    ASSERT_NE(same, nullptr) << "not found inside " << region;
    // The network sees less context around the plate than in the full pass: the same place within a
    // few percent of the plate's width, and the same text for a confident read.
    if (want.confidence >= 0.5f) EXPECT_EQ(same->text, want.text);
    const double tolerance = std::max(4.0, 0.06 * b.width);
    EXPECT_LE(cv::norm(same->box.tl() - b.tl()), tolerance) << same->box << " vs " << b;
    EXPECT_LE(cv::norm(same->box.br() - b.br()), tolerance) << same->box << " vs " << b;
    for (const auto& p : r.plates) {
      const cv::Point c(p.box.x + p.box.width / 2, p.box.y + p.box.height / 2);
      EXPECT_TRUE(region.contains(c) || (p.box & region).area() > 0) << p.text << " outside the region";
    }
  }
  // No region: no detection at all; the whole frame as a region: the full pass.
  EXPECT_TRUE(rec_->recognize(img, std::vector<cv::Rect>{}).plates.empty());
  const auto whole = rec_->recognize(img, {cv::Rect(0, 0, img.cols, img.rows)});
  ASSERT_EQ(whole.plates.size(), full.plates.size());
  for (std::size_t i = 0; i < whole.plates.size(); ++i) EXPECT_EQ(whole.plates[i].text, full.plates[i].text);
  // A region with no plate (the sky) finds nothing, and costs less than the full pass's detector.
  const auto sky = rec_->recognize(img, {cv::Rect(0, 0, img.cols / 4, img.rows / 6)});
  EXPECT_TRUE(sky.plates.empty());
}

TEST_F(ModelTest, WeakDetectionsCountOnlyWhenTheReaderConfirmsAPlate) {
  const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg");
  ASSERT_FALSE(img.empty());
  const auto sure = rec_->recognize(img);
  ASSERT_FALSE(sure.plates.empty());
  const Plate& plate = sure.plates.front();
  ASSERT_TRUE(plate.fits_format && plate.confidence >= 0.5f) << plate.text << " " << plate.confidence;

  // A detector threshold above every score makes every detection weak.
  auto with = [&](float weak_threshold, float weak_min_confidence, int max_weak_reads) {
    RecognizerOptions o;
    o.detector.score_threshold = 0.999f;
    o.weak_threshold = weak_threshold;
    o.weak_min_confidence = weak_min_confidence;
    o.max_weak_reads = max_weak_reads;
    auto r = Recognizer::load(o);
    EXPECT_TRUE(r.ok()) << r.error();
    return r->recognize(img);
  };
  // Confirmed by its read: the same plate, and nothing that fits no format or reads weakly.
  const auto confirmed = with(0.05f, 0.5f, 32);
  bool found = false;
  for (const auto& p : confirmed.plates) {
    EXPECT_TRUE(p.fits_format) << p.text;
    EXPECT_GE(p.confidence, 0.5f) << p.text;
    EXPECT_LT(p.detection_confidence, 0.999f);
    found |= p.text == plate.text && (p.box & plate.box).area() > 0.5 * plate.box.area();
  }
  EXPECT_TRUE(found) << plate.text << " not kept as a confirmed weak detection";
  // A read that cannot be confident enough confirms nothing; no weak reads allowed keeps nothing.
  EXPECT_TRUE(with(0.05f, 1.01f, 32).plates.empty());
  EXPECT_TRUE(with(0.05f, 0.5f, 0).plates.empty());
  // Weak threshold at or above the detector's: off.
  EXPECT_TRUE(with(0.999f, 0.0f, 32).plates.empty());
  // A plain grey image has no weak detection the reader would confirm.
  RecognizerOptions o;
  o.weak_threshold = 0.01f;
  auto low = Recognizer::load(o);
  ASSERT_TRUE(low.ok()) << low.error();
  EXPECT_TRUE(low->recognize(cv::Mat(480, 640, CV_8UC3, cv::Scalar(128, 128, 128))).plates.empty());
  // The detector alone flags weak detections only when asked for them.
  for (const auto& d : low->detect(img)) EXPECT_FALSE(d.weak);
  const auto all = low->detect(img, true);
  const auto weak = std::count_if(all.begin(), all.end(), [](const Detection& d) { return d.weak; });
  EXPECT_LE(weak, o.max_weak_reads);
}

TEST_F(ModelTest, SecondLookKeepsTheBetterOfTheTwoReads) {
  RecognizerOptions off;
  off.skip = {"wider-crop"};
  auto once = Recognizer::load(off);
  ASSERT_TRUE(once.ok()) << once.error();
  const fs::path samples = fs::path(VIGIL_SOURCE_DIR) / "samples";
  int compared = 0;
  for (const auto& e : fs::directory_iterator(samples)) {
    if (e.path().extension() != ".jpg") continue;
    const cv::Mat img = cv::imread(e.path().string());
    ASSERT_FALSE(img.empty()) << e.path();
    // The same detections read with and without the second look.
    for (const auto& d : rec_->detect(img)) {
      const Plate twice = rec_->read(img, d.corners), first = once->read(img, d.corners);
      const bool sure = first.fits_format && first.confidence >= recognize::kSureRead;
      const bool extends = twice.text.size() > first.text.size() &&
                           (twice.text.starts_with(first.text) || twice.text.ends_with(first.text));
      // An uncertain read is replaced only by a better one; a sure one only by an extension of it.
      if (!sure)
        EXPECT_GE(std::pair(twice.fits_format, twice.confidence), std::pair(first.fits_format, first.confidence))
            << e.path().filename() << ": " << twice.text << " vs " << first.text;
      else
        EXPECT_TRUE(twice.text == first.text || extends) << twice.text << " vs " << first.text;
      ++compared;
    }
  }
  EXPECT_GT(compared, 0);
}

// The close-up sample and where its plate (BR07AAC) is.
struct CloseUp {
  cv::Mat img;
  cv::Rect plate;
};

CloseUp close_up(const Recognizer& rec) {
  CloseUp c;
  c.img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg");
  if (c.img.empty()) return c;
  for (const auto& p : rec.recognize(c.img).plates)
    if (p.text == "BR07AAC") c.plate = p.box;
  return c;
}

TEST_F(ModelTest, TiltedPlatesAreRead) {
  const CloseUp c = close_up(*rec_);
  ASSERT_FALSE(c.img.empty());
  ASSERT_GT(c.plate.area(), 0) << "the upright sample is not read";
  const cv::Point2f centre(c.plate.x + c.plate.width / 2.0f, c.plate.y + c.plate.height / 2.0f);
  for (const double angle : {-30.0, -20.0, -10.0, 10.0, 20.0, 30.0}) {
    SCOPED_TRACE(angle);
    cv::Mat turned;
    cv::warpAffine(c.img, turned, cv::getRotationMatrix2D(centre, angle, 1.0), c.img.size(), cv::INTER_LINEAR,
                   cv::BORDER_REPLICATE);
    bool read = false;
    for (const auto& p : rec_->recognize(turned).plates) {
      if (!p.box.contains(cv::Point(centre))) continue;
      read |= p.text == "BR07AAC";
      // The corners follow the tilt: the top edge rises or falls like the image was turned. The full
      // pass's turn less than the plate (most real training boxes are axis-aligned), hence the wide
      // tolerance for plates it sees tilted less than level_above (see the next test).
      const double slope = std::atan2(p.corners[1].y - p.corners[0].y, p.corners[1].x - p.corners[0].x);
      EXPECT_NEAR(slope * 180.0 / CV_PI, -angle, 0.6 * std::abs(angle)) << p.text;
    }
    EXPECT_TRUE(read);
  }
}

// A plate tilted beyond RecognizerOptions::level_above is located again turned level: its corners then
// follow the tilt closely, where the full pass's turn less than the plate.
TEST_F(ModelTest, TiltedPlatesAreLevelledBeforeReading) {
  const CloseUp c = close_up(*rec_);
  ASSERT_GT(c.plate.area(), 0) << "the upright sample is not read";
  RecognizerOptions no_level;
  no_level.skip = {"level"};
  auto unlevelled = Recognizer::load(no_level);
  ASSERT_TRUE(unlevelled.ok()) << unlevelled.error();
  const cv::Point2f centre(c.plate.x + c.plate.width / 2.0f, c.plate.y + c.plate.height / 2.0f);
  // How far the read plate's top and bottom edges are from the turned plate's, in degrees; 90 unread.
  auto slope_error = [&](const Recognizer& rec, const cv::Mat& turned, double angle) {
    double error = 90;
    for (const auto& p : rec.recognize(turned).plates) {
      if (!p.box.contains(cv::Point(centre)) || p.text != "BR07AAC") continue;
      const cv::Point2f along = (p.corners[1] - p.corners[0]) + (p.corners[2] - p.corners[3]);
      error = std::abs(std::atan2(along.y, along.x) * 180.0 / CV_PI + angle);
    }
    return error;
  };
  for (const double angle : {-35.0, -25.0, 25.0, 35.0}) {
    SCOPED_TRACE(angle);
    cv::Mat turned;
    cv::warpAffine(c.img, turned, cv::getRotationMatrix2D(centre, angle, 1.0), c.img.size(), cv::INTER_LINEAR,
                   cv::BORDER_REPLICATE);
    const double levelled = slope_error(*rec_, turned, angle);
    const double full_pass = slope_error(*unlevelled, turned, angle);
    // measured: within 1.1 degrees levelled, 1.9-10 without
    EXPECT_LT(levelled, 2.5);
    EXPECT_LT(levelled, full_pass);
  }
}

// The close-up scene shrunk until its plate is `plate_width` px wide, at `at` in a grey canvas.
struct SmallScene {
  cv::Mat photo;
  cv::Rect plate;
  // Whether `rec` reads the plate there.
  bool read_by(const Recognizer& rec) const {
    for (const auto& p : rec.recognize(photo).plates)
      if ((p.box & plate).area() > 0.3 * plate.area() && p.text == "BR07AAC") return true;
    return false;
  }
};

SmallScene small_scene(const CloseUp& c, double plate_width, cv::Size canvas, cv::Point at) {
  const double f = plate_width / c.plate.width;
  cv::Mat small;
  cv::resize(c.img, small, cv::Size(), f, f, cv::INTER_AREA);
  SmallScene s{cv::Mat(canvas, CV_8UC3, cv::Scalar(90, 90, 90)),
               cv::Rect(at.x + int(c.plate.x * f), at.y + int(c.plate.y * f), int(c.plate.width * f),
                        int(c.plate.height * f))};
  small.copyTo(s.photo(cv::Rect(at, small.size())));
  return s;
}

Recognizer load_with(const RecognizerOptions& options) {
  auto rec = Recognizer::load(options);
  EXPECT_TRUE(rec.ok()) << rec.error();
  return std::move(*rec);
}

TEST_F(ModelTest, SmallPlateInALargePhotoIsFoundByTheTilePass) {
  const CloseUp c = close_up(*rec_);
  ASSERT_FALSE(c.img.empty());
  ASSERT_GT(c.plate.area(), 0) << "the upright sample is not read";
  // The plate 40 px wide (10 px tall) in a 4000x3000 photo, at two places.
  RecognizerOptions no_tiles, coarse_tiles;
  no_tiles.skip = {"tiles"};
  coarse_tiles.detector.smallest_plate = 120;
  const Recognizer untiled = load_with(no_tiles), coarse = load_with(coarse_tiles);
  for (const cv::Point at : {cv::Point(1500, 1200), cv::Point(3000, 2200)}) {
    SCOPED_TRACE(testing::Message() << at);
    const SmallScene s = small_scene(c, 40.0, cv::Size(4000, 3000), at);
    EXPECT_TRUE(s.read_by(*rec_));
    // One pass over the whole photo sees the plate 5 network pixels wide: too small. Tiles sized for
    // plates 120 px wide see it 8 px wide: too small too. Tiles sized for 40 px plates are what find it.
    EXPECT_FALSE(s.read_by(untiled));
    EXPECT_FALSE(s.read_by(coarse));
  }
}

TEST_F(ModelTest, PlateFillingThePictureIsFoundByTheCloseUpPass) {
  const CloseUp c = close_up(*rec_);
  ASSERT_FALSE(c.img.empty());
  ASSERT_GT(c.plate.area(), 0) << "the upright sample is not read";
  RecognizerOptions no_close_up;
  no_close_up.skip = {"close-up"};
  const Recognizer full_pass_only = load_with(no_close_up);
  // Crops of the plate with a margin of 5% and 30% of its size on each side, as users send them: the
  // plate fills 91% and 63% of the picture's width.
  for (const double margin : {0.05, 0.3}) {
    SCOPED_TRACE(margin);
    const int mx = int(c.plate.width * margin), my = int(c.plate.height * margin);
    const cv::Rect crop =
        cv::Rect(c.plate.x - mx, c.plate.y - my, c.plate.width + 2 * mx, c.plate.height + 2 * my) &
        cv::Rect(0, 0, c.img.cols, c.img.rows);
    const cv::Mat picture = c.img(crop).clone();
    const auto plates = rec_->recognize(picture).plates;
    ASSERT_EQ(plates.size(), 1u);  // the plate, not its pieces
    EXPECT_EQ(plates[0].text, "BR07AAC");
    EXPECT_GT(plates[0].box.width, 0.8 * c.plate.width);
    // Alone, the full pass sees the tighter crop's plate wider than any it was trained on.
    if (margin < 0.1)
      for (const auto& p : full_pass_only.recognize(picture).plates) EXPECT_NE(p.text, "BR07AAC");
  }
}

// A small image (long side up to the detector's input size) is looked at twice, the second time 1.5 times
// larger; each plate's score is the mean of both looks' (plus a small bonus: two looks agreeing are surer
// than one), and the full pass's corners are kept. Larger images get one look.
TEST_F(ModelTest, SmallImagesAreLookedAtTwice) {
  const cv::Mat sample = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-close.jpg");
  ASSERT_FALSE(sample.empty());
  auto options = [](bool second_scale, int input_size, float threshold) {
    RecognizerOptions o;
    o.skip = {"refine", "level", "close-up"};  // the detector's own corners and scores
    if (!second_scale) o.skip.push_back("second-scale");
    o.detector.input_size = input_size;
    o.detector.score_threshold = threshold;
    return o;
  };
  const Recognizer twice = load_with(options(true, 0, -1.0f));
  const Recognizer first = load_with(options(false, 0, 0.05f));     // the first look alone, all its scores
  const Recognizer second = load_with(options(false, 768, 0.05f));  // the second look: 1.5 x 512
  for (const int long_side : {400, 512}) {
    SCOPED_TRACE(long_side);
    cv::Mat img;
    const double f = double(long_side) / std::max(sample.cols, sample.rows);
    cv::resize(sample, img, cv::Size(), f, f, cv::INTER_AREA);
    const auto found = twice.detect(img), first_look = first.detect(img), second_look = second.detect(img);
    ASSERT_FALSE(found.empty());
    for (const auto& d : found) {
      auto best = [&](const std::vector<Detection>& looks) {
        const Detection* m = nullptr;
        for (const auto& l : looks)
          if (box_iou(l.box, d.box) >= 0.3f && (!m || box_iou(l.box, d.box) > box_iou(m->box, d.box))) m = &l;
        return m;
      };
      const Detection* a = best(first_look);
      const Detection* b = best(second_look);
      ASSERT_NE(a, nullptr);
      ASSERT_NE(b, nullptr);
      EXPECT_NEAR(d.score, std::min(1.0f, (a->score + b->score) / 2 + 0.02f), 1e-4f);
      for (int k = 0; k < 4; ++k) EXPECT_EQ(d.corners[k], a->corners[k]);
    }
  }
  // Larger than the input size: one look, its scores unchanged.
  cv::Mat large;
  cv::resize(sample, large, cv::Size(), 0.75, 0.75, cv::INTER_AREA);
  ASSERT_GT(std::max(large.cols, large.rows), 512);
  const auto one = load_with(options(false, 0, -1.0f)).detect(large), two = twice.detect(large);
  ASSERT_EQ(one.size(), two.size());
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i].score, two[i].score);
}

// In video with motion gating the detector searches only where the frame changed: a plate close to the
// camera (a barrier, a car park's gate) is found whole there too, not as its pieces.
TEST_F(ModelTest, PlateFillingTheFrameIsFoundWholeInAMovingRegion) {
  const CloseUp c = close_up(*rec_);
  ASSERT_GT(c.plate.area(), 0) << "the upright sample is not read";
  for (const double margin : {0.05, 0.3, 0.6}) {
    SCOPED_TRACE(margin);
    const int mx = int(c.plate.width * margin), my = int(c.plate.height * margin);
    const cv::Rect crop =
        cv::Rect(c.plate.x - mx, c.plate.y - my * 4, c.plate.width + 2 * mx, c.plate.height + 8 * my) &
        cv::Rect(0, 0, c.img.cols, c.img.rows);
    const cv::Mat frame = c.img(crop).clone();
    // the car moved in the lower two thirds of the frame
    const std::vector<cv::Rect> moved{cv::Rect(0, frame.rows / 3, frame.cols, frame.rows - frame.rows / 3)};
    const auto plates = rec_->recognize(frame, moved).plates;
    ASSERT_EQ(plates.size(), 1u);
    EXPECT_EQ(plates[0].text, "BR07AAC");
  }
}

TEST_F(ModelTest, SmallPlateIsLocatedAgainBeforeItIsRead) {
  const CloseUp c = close_up(*rec_);
  ASSERT_FALSE(c.img.empty());
  ASSERT_GT(c.plate.area(), 0) << "the upright sample is not read";
  // The plate 52 px wide (13 px tall) in a 1280 px square photo: the full pass sees it 21 network pixels
  // wide, and its corners are too coarse to read it from.
  RecognizerOptions coarse;
  coarse.skip = {"refine"};
  const Recognizer unrefined = load_with(coarse);
  int refined_reads = 0, unrefined_reads = 0;
  for (const cv::Point at : {cv::Point(340, 380), cv::Point(300, 300), cv::Point(500, 200)}) {
    SCOPED_TRACE(testing::Message() << at);
    const SmallScene s = small_scene(c, 52.0, cv::Size(1280, 1280), at);
    refined_reads += s.read_by(*rec_);
    unrefined_reads += s.read_by(unrefined);
  }
  EXPECT_EQ(refined_reads, 3);
  EXPECT_LT(unrefined_reads, refined_reads);
}

TEST(Profiles, ParseApplyAndName) {
  EXPECT_EQ(parse_profile("edge").value(), Profile::kEdge);
  EXPECT_EQ(parse_profile("default").value(), Profile::kDefault);
  const auto bad = parse_profile("fast");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("default, edge"), std::string::npos) << bad.error();
  EXPECT_STREQ(to_string(Profile::kEdge), "edge");
  RecognizerOptions o;
  apply_profile(Profile::kDefault, o);
  EXPECT_TRUE(o.skip.empty());
  EXPECT_EQ(profile_passes(Profile::kDefault), recognition_passes());
  o.skip = {"tiles"};
  apply_profile(Profile::kEdge, o);
  // The edge profile runs its own list: every other pass is skipped, once.
  const std::vector<std::string> edge_skips{"second-scale", "tiles", "close-up", "refine", "wider-crop", "weak"};
  EXPECT_EQ(std::set<std::string>(o.skip.begin(), o.skip.end()),
            std::set<std::string>(edge_skips.begin(), edge_skips.end()));
  EXPECT_EQ(o.skip.size(), edge_skips.size());
  StreamOptions s;
  s.motion.enabled = false;
  apply_profile(Profile::kEdge, s);
  EXPECT_TRUE(s.motion.enabled);
  EXPECT_TRUE(s.motion_regions);
}

TEST_F(ModelTest, ConcurrentCallsGiveTheSameResults) {
  const cv::Mat img = cv::imread(std::string(VIGIL_SOURCE_DIR) + "/samples/ro-dashcam-720p.jpg");
  ASSERT_FALSE(img.empty());
  const auto ref = rec_->recognize(img);
  std::vector<std::vector<std::string>> got(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        for (const auto& p : rec_->recognize(img).plates) got[t].push_back(p.text);
      }
    });
  for (auto& th : threads) th.join();
  std::vector<std::string> ref_texts;
  for (int i = 0; i < 3; ++i)
    for (const auto& p : ref.plates) ref_texts.push_back(p.text);
  EXPECT_EQ(got[0], ref_texts);
  EXPECT_EQ(got[1], ref_texts);
}

}  // namespace
}  // namespace vigil
