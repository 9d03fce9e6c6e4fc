// The recognition passes' logic with a fake detector and reader (no models): which passes run where, how
// their plates merge, which read is kept, and what each pass is recorded as having done.
#include "recognize/passes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace vigil::recognize {
namespace {

Corners corners_of(const cv::Rect2f& b) {
  return {cv::Point2f(b.x, b.y), cv::Point2f(b.x + b.width, b.y), cv::Point2f(b.x + b.width, b.y + b.height),
          cv::Point2f(b.x, b.y + b.height)};
}

Detection det(cv::Rect box, float score) {
  Detection d;
  d.box = box;
  d.score = score;
  d.corners = corners_of(cv::Rect2f(box));
  return d;
}

// A detector that finds what it is told: each kind of look returns its plates lying (centre) inside the
// region looked at, at or above the threshold, and at least 12 network pixels wide (as the real one finds
// them); every call is counted.
class FakeLocator : public Locator {
 public:
  std::map<Nets, std::vector<Detection>> plates;
  std::vector<Detection> close_up_plates;
  mutable std::map<Nets, int> looks;
  mutable int close_up_looks = 0, refines = 0, levels = 0;
  Corners refined_corners{};  // what refine() and level() move a plate's corners to (all zero: unchanged)

  std::vector<Detection> look(const cv::Mat&, const cv::Rect& roi, double scale, float threshold, Nets nets,
                              int) const override {
    ++looks[nets];
    std::vector<Detection> out;
    if (auto it = plates.find(nets); it != plates.end())
      for (const auto& d : it->second) {
        const cv::Point c(d.box.x + d.box.width / 2, d.box.y + d.box.height / 2);
        if (roi.contains(c) && d.score >= threshold && d.box.width * scale >= 12) out.push_back(d);
      }
    return out;
  }
  std::vector<Detection> close_up_look(const cv::Mat&, float threshold, double min_width) const override {
    ++close_up_looks;
    std::vector<Detection> out;
    for (const auto& d : close_up_plates)
      if (d.score >= threshold && d.box.width >= min_width) out.push_back(d);
    return out;
  }
  Detection refine(const cv::Mat&, const Detection& d, float, int) const override {
    ++refines;
    return moved(d);
  }
  Detection level(const cv::Mat&, const Detection& d, float, int) const override {
    ++levels;
    return moved(d);
  }
  float threshold() const override { return 0.5f; }
  float weak_threshold() const override { return 0.2f; }
  float nms_iou() const override { return 0.4f; }
  int input_size() const override { return 512; }
  int pad_multiple() const override { return 32; }

 private:
  Detection moved(const Detection& d) const {
    if (refined_corners[1].x == 0) return d;
    Detection out = d;
    out.corners = refined_corners;
    return out;
  }
};

// A reader that reads what it is told for each kind of read (one line, two lines, wider crop), decoded
// against the formats; every read is counted.
class FakeReader : public ReadEngine {
 public:
  explicit FakeReader(const FormatSet& formats) : formats_(formats) {}
  struct Script {
    std::string text;
    float confidence = 0;
  };
  Script one{"AB123CD", 0.97f}, two{"", 0}, wide{"", 0};
  mutable int reads = 0, two_line_reads = 0, wide_reads = 0;

  Plate read(const cv::Mat&, const Corners&, bool two_line, bool wide_crop) const override {
    ++reads;
    two_line_reads += two_line;
    wide_reads += wide_crop;
    const Script& s = wide_crop && !wide.text.empty() ? wide : two_line ? two : one;
    Plate p;
    p.text = s.text;
    p.confidence = s.confidence;
    p.two_line = two_line;
    const PlateFormat* best = nullptr;
    for (const PlateFormat* f : formats_.match(s.text))
      if (!best || (best->prior < 1.0f && f->prior >= 1.0f)) best = f;
    if (best) p.country = best->country, p.format = best->name, p.fits_format = true;
    return p;
  }
  bool reads_two_line() const override { return true; }
  bool reads_wide() const override { return true; }

 private:
  const FormatSet& formats_;
};

FormatSet test_formats() {
  auto f = FormatSet::parse(R"({"formats":[
      {"country":"sk","name":"standard","pattern":"[A-Z]{2}[0-9]{3}[A-Z]{2}","example":"AB123CD"},
      {"country":"us","name":"generic","pattern":"[0-9A-Z]{2,8}","example":"ABC123","prior":0.2}]})");
  EXPECT_TRUE(f.ok()) << f.error();
  return std::move(*f);
}

struct Outcome {
  std::vector<Plate> plates;
  PassLog log;
  bool ran(const std::string& pass) const {
    return std::any_of(log.times.begin(), log.times.end(), [&](const PassTime& t) { return t.name == pass; });
  }
};

class PassesTest : public testing::Test {
 protected:
  FormatSet formats_ = test_formats();
  FakeLocator locator_;
  FakeReader reader_{formats_};
  RecognizerOptions options_;

  Outcome recognize(cv::Size size, const std::vector<cv::Rect>* regions = nullptr) {
    const cv::Mat image(size, CV_8UC3, cv::Scalar::all(0));
    Pipeline pipeline{locator_, reader_, formats_, options_};
    Outcome r;
    for (const auto& d : pipeline.detect(image, regions, true, r.log)) {
      bool keep = true;
      Plate p = pipeline.read(image, d, keep, r.log);
      if (keep) r.plates.push_back(std::move(p));
    }
    return r;
  }
};

// A one-line plate, level, 120 px wide in a 576x432 photo: 107 network pixels in the full pass.
const cv::Rect kPlainPlate(200, 300, 120, 26);

TEST_F(PassesTest, AnOrdinaryPlateCostsOneDetectorPassAndOneRead) {
  locator_.plates[Locator::Nets::kFull] = {det(kPlainPlate, 0.9f)};
  const Outcome r = recognize({576, 432});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(r.plates[0].text, "AB123CD");
  EXPECT_EQ(r.plates[0].box, kPlainPlate);
  EXPECT_EQ(r.plates[0].passes, std::vector<std::string>{"full"});
  EXPECT_EQ(locator_.looks[Locator::Nets::kFull], 1);
  EXPECT_EQ(locator_.looks[Locator::Nets::kSecondScale], 0);
  EXPECT_EQ(locator_.close_up_looks + locator_.refines + locator_.levels, 0);
  EXPECT_EQ(reader_.reads, 1);
  // What ran is timed; what did not is absent.
  EXPECT_TRUE(r.ran("full"));
  EXPECT_TRUE(r.ran("read"));
  for (const char* pass : {"second-scale", "tiles", "close-up", "refine", "level", "two-line", "wider-crop"})
    EXPECT_FALSE(r.ran(pass)) << pass;
}

TEST_F(PassesTest, TheCloseUpPassRunsWithoutASurePlateOrWithAPieceOfALargeOne) {
  // nothing sure: the plate may be too large for the full pass
  locator_.plates[Locator::Nets::kFull] = {det(kPlainPlate, 0.3f)};
  recognize({576, 432});
  EXPECT_EQ(locator_.close_up_looks, 1);
  // a sure plate wider than any piece of a close-up (160 network pixels: 180 px here) is such a piece
  locator_.close_up_looks = 0;
  locator_.plates[Locator::Nets::kFull] = {det(cv::Rect(100, 200, 200, 44), 0.9f)};
  recognize({576, 432});
  EXPECT_EQ(locator_.close_up_looks, 1);
  // ...and the close-up plate replaces its piece
  locator_.close_up_plates = {det(cv::Rect(60, 190, 330, 70), 0.8f)};
  const Outcome r = recognize({576, 432});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(r.plates[0].box, cv::Rect(60, 190, 330, 70));
  EXPECT_EQ(r.plates[0].passes, std::vector<std::string>{"close-up"});
  EXPECT_EQ(locator_.refines, 1);  // its corners from a thumbnail are placed again
  // skipped, it never runs
  locator_.close_up_looks = 0;
  options_.skip = {"close-up"};
  recognize({576, 432});
  EXPECT_EQ(locator_.close_up_looks, 0);
}

TEST_F(PassesTest, APlateFoundWholeByBothPassesIsReadAlongBothCorners) {
  const cv::Rect whole(60, 190, 330, 70);
  locator_.plates[Locator::Nets::kFull] = {det(whole, 0.9f)};
  locator_.close_up_plates = {det(cv::Rect(58, 188, 334, 74), 0.8f)};
  reader_.one = {"AB123C", 0.97f};  // the full pass's corners cut a character off
  reader_.wide = {"AB123C", 0.97f};
  Outcome r = recognize({576, 432});
  ASSERT_EQ(r.plates.size(), 1u);
  // The fake reads the same along both, so the first read stays; the close-up corners were read.
  EXPECT_TRUE(r.ran("close-up-corners"));
  EXPECT_EQ(r.plates[0].corners, corners_of(cv::Rect2f(whole)));
  EXPECT_EQ(r.plates[0].passes, (std::vector<std::string>{"full", "close-up"}));
}

TEST_F(PassesTest, SmallImagesAreLookedAtTwiceAndScoredByBothLooks) {
  // 320x240: the full pass enlarges it. A faint plate (0.3, below the 0.5 threshold) that the second look
  // sees at 0.8 scores (0.3 + 0.8) / 2 + 0.02 = 0.57: found.
  const cv::Rect plate(100, 120, 60, 14);
  locator_.plates[Locator::Nets::kFull] = {det(plate, 0.3f)};
  locator_.plates[Locator::Nets::kSecondScale] = {det(plate, 0.8f)};
  options_.skip = {"weak", "close-up"};
  Outcome r = recognize({320, 240});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(r.plates[0].passes, (std::vector<std::string>{"full", "second-scale"}));
  // One look alone leaves it below the threshold.
  options_.skip.push_back("second-scale");
  EXPECT_TRUE(recognize({320, 240}).plates.empty());
  // Larger images get one look.
  locator_.looks.clear();
  options_.skip = {};
  recognize({640, 480});
  EXPECT_EQ(locator_.looks[Locator::Nets::kSecondScale], 0);
}

TEST_F(PassesTest, LargePhotosAreSearchedInTilesThatAddWhatTheFullPassMissed) {
  // 4000x3000: the full pass sees a plate 40 px wide 5 network pixels wide, too small; tiles sized for it
  // (40 * 512 / 24 = 853 px, stepping 639 px: 6 columns, 5 rows) see it 24 wide.
  const cv::Rect small(3000, 2200, 40, 10), big(1000, 1000, 400, 90);
  locator_.plates[Locator::Nets::kFull] = {det(big, 0.9f), det(small, 0.6f)};
  options_.skip = {"close-up"};
  const Outcome r = recognize({4000, 3000});
  EXPECT_EQ(locator_.looks[Locator::Nets::kFull], 1 + 30);
  ASSERT_EQ(r.plates.size(), 2u);
  // The full pass's plate keeps its corners (a tile's view of it only lends its score); the plate only
  // a tile saw is added.
  EXPECT_EQ(r.plates[0].passes, std::vector<std::string>{"full"});
  EXPECT_EQ(r.plates[1].box, small);
  EXPECT_EQ(r.plates[1].passes, std::vector<std::string>{"tiles"});
  options_.skip.push_back("tiles");
  locator_.looks.clear();
  EXPECT_EQ(recognize({4000, 3000}).plates.size(), 1u);
  EXPECT_EQ(locator_.looks[Locator::Nets::kFull], 1);
  // 1280x720 frames are not tiled.
  locator_.looks.clear();
  options_.skip = {};
  recognize({1280, 720});
  EXPECT_EQ(locator_.looks[Locator::Nets::kFull], 1);
}

TEST_F(PassesTest, AWeakDetectionIsAPlateOnlyWhenItsReadConfirmsOne) {
  locator_.plates[Locator::Nets::kFull] = {det(kPlainPlate, 0.3f)};  // between 0.2 (weak) and 0.5
  options_.skip = {"close-up"};
  Outcome r = recognize({576, 432});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(r.plates[0].passes, (std::vector<std::string>{"full", "weak"}));
  reader_.one = {"#", 0.97f};  // fits no format
  reader_.wide = {"#", 0.97f};
  EXPECT_TRUE(recognize({576, 432}).plates.empty());
  reader_.one = {"AB123CD", 0.4f};  // fits, but unsure
  reader_.wide = {"AB123CD", 0.4f};
  EXPECT_TRUE(recognize({576, 432}).plates.empty());
  // At most max_weak_reads are read, highest scores first.
  reader_.one = {"AB123CD", 0.97f};
  locator_.plates[Locator::Nets::kFull] = {det(kPlainPlate, 0.3f), det(cv::Rect(20, 20, 120, 26), 0.35f)};
  options_.max_weak_reads = 1;
  Outcome one = recognize({576, 432});
  ASSERT_EQ(one.plates.size(), 1u);
  EXPECT_EQ(one.plates[0].box, cv::Rect(20, 20, 120, 26));
  // Skipped, none is.
  options_.skip = {"close-up", "weak"};
  EXPECT_TRUE(recognize({576, 432}).plates.empty());
}

TEST_F(PassesTest, AnUncertainReadGetsAWiderCropAndTheBetterReadIsKept) {
  locator_.plates[Locator::Nets::kFull] = {det(kPlainPlate, 0.9f)};
  reader_.one = {"AB123C", 0.7f};
  reader_.wide = {"AB123CD", 0.8f};
  Outcome r = recognize({576, 432});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(r.plates[0].text, "AB123CD");
  EXPECT_EQ(r.plates[0].box, kPlainPlate);
  EXPECT_EQ(r.plates[0].passes, (std::vector<std::string>{"full", "wider-crop"}));
  EXPECT_EQ(reader_.wide_reads, 1);
  // A worse wider crop leaves the first read.
  reader_.wide = {"AB123CD", 0.1f};
  reader_.one = {"AB123CD", 0.7f};
  r = recognize({576, 432});
  EXPECT_EQ(r.plates[0].confidence, 0.7f);
  EXPECT_EQ(r.plates[0].passes, std::vector<std::string>{"full"});
  // A sure read of a specific format gets none.
  reader_.wide_reads = 0;
  reader_.one = {"AB123CD", 0.95f};
  recognize({576, 432});
  EXPECT_EQ(reader_.wide_reads, 0);
}

TEST_F(PassesTest, ASquarishPlateIsAlsoReadAsTwoLines) {
  const cv::Rect square(200, 200, 80, 50);  // aspect 1.6
  locator_.plates[Locator::Nets::kFull] = {det(square, 0.9f)};
  reader_.one = {"123CD", 0.9f};  // squeezed into one line: the taller line
  reader_.two = {"AB123CD", 0.8f};
  Outcome r = recognize({576, 432});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(r.plates[0].text, "AB123CD");
  EXPECT_TRUE(r.plates[0].two_line);
  EXPECT_EQ(r.plates[0].passes, (std::vector<std::string>{"full", "two-line"}));
  // A one-line plate is not.
  reader_.two_line_reads = 0;
  locator_.plates[Locator::Nets::kFull] = {det(kPlainPlate, 0.9f)};
  reader_.one = {"AB123CD", 0.97f};
  recognize({576, 432});
  EXPECT_EQ(reader_.two_line_reads, 0);
}

TEST_F(PassesTest, SmallAndTiltedPlatesHaveTheirCornersPlacedAgain) {
  // 60 px in a 1280x720 frame: 24 network pixels in the full pass, under refine_below (64).
  locator_.plates[Locator::Nets::kFull] = {det(cv::Rect(600, 400, 60, 14), 0.9f)};
  locator_.refined_corners = corners_of(cv::Rect2f(599.5f, 400.5f, 61, 13));
  Outcome r = recognize({1280, 720});
  ASSERT_EQ(r.plates.size(), 1u);
  EXPECT_EQ(locator_.refines, 1);
  EXPECT_EQ(r.plates[0].corners, locator_.refined_corners);
  EXPECT_EQ(r.plates[0].passes, (std::vector<std::string>{"full", "refine"}));
  // A plate tilted 15 degrees is levelled; one tilted 5 is not.
  auto tilted = [](double degrees) {
    Detection d = det(kPlainPlate, 0.9f);
    const cv::Point2f c(260, 313);
    const double a = degrees * CV_PI / 180;
    for (auto& p : d.corners) {
      const cv::Point2f v = p - c;
      p = c + cv::Point2f(float(v.x * std::cos(a) - v.y * std::sin(a)),
                          float(v.x * std::sin(a) + v.y * std::cos(a)));
    }
    return d;
  };
  locator_.refined_corners = {};
  locator_.plates[Locator::Nets::kFull] = {tilted(15)};
  recognize({576, 432});
  EXPECT_EQ(locator_.levels, 1);
  locator_.plates[Locator::Nets::kFull] = {tilted(5)};
  recognize({576, 432});
  EXPECT_EQ(locator_.levels, 1);
  options_.skip = {"level"};
  locator_.plates[Locator::Nets::kFull] = {tilted(15)};
  recognize({576, 432});
  EXPECT_EQ(locator_.levels, 1);
}

TEST_F(PassesTest, VideoRegionsAreSearchedAtTheFullPassScaleWithoutTilesOrSecondLooks) {
  const cv::Rect plate(600, 400, 130, 30);
  locator_.plates[Locator::Nets::kFull] = {det(plate, 0.9f), det(cv::Rect(100, 100, 130, 30), 0.9f)};
  const std::vector<cv::Rect> regions{cv::Rect(550, 350, 250, 120)};
  Outcome r = recognize({1280, 720}, &regions);
  ASSERT_EQ(r.plates.size(), 1u);  // only the plate inside the region
  EXPECT_EQ(r.plates[0].box, plate);
  EXPECT_EQ(locator_.looks[Locator::Nets::kFull], 1);
  EXPECT_EQ(locator_.looks[Locator::Nets::kSecondScale], 0);
  // A region with no sure plate needs no close-up look in video: whatever moved was no car.
  const std::vector<cv::Rect> empty_region{cv::Rect(900, 100, 200, 100)};
  recognize({1280, 720}, &empty_region);
  EXPECT_EQ(locator_.close_up_looks, 0);
}

TEST(PassLog, AddsUpEachPassesRuns) {
  PassLog log;
  const auto t0 = PassLog::Clock::now();
  log.add("full", t0);
  log.add("read", t0);
  log.add("read", t0);
  ASSERT_EQ(log.times.size(), 2u);
  EXPECT_EQ(log.times[0].name, "full");
  EXPECT_EQ(log.times[1].runs, 2);
  EXPECT_GE(log.times[1].ms, 0.0);
}

TEST(PassLists, EveryPassHasOneNameInRunningOrder) {
  const auto& names = recognition_passes();
  EXPECT_EQ(names, (std::vector<std::string>{"full", "second-scale", "tiles", "close-up", "refine", "level",
                                             "two-line", "wider-crop", "close-up-corners", "weak"}));
}

}  // namespace
}  // namespace vigil::recognize

namespace vigil::recognize {
namespace {

// Video: a plate read surely in earlier frames claims the detection overlapping it most; that detection's
// corners are not refined (nor is it read: see Recognizer::recognize with FrameHints).
TEST_F(PassesTest, APlateKnownFromEarlierFramesClaimsItsDetectionAndSkipsTheRefiners) {
  const cv::Rect plate(600, 400, 60, 14), other(200, 300, 60, 14);
  locator_.plates[Locator::Nets::kFull] = {det(plate, 0.9f), det(other, 0.8f)};
  const cv::Mat image(720, 1280, CV_8UC3, cv::Scalar::all(0));
  Pipeline pipeline{locator_, reader_, formats_, options_};
  PassLog log;
  const std::vector<cv::Rect> known{cv::Rect(604, 401, 60, 14), cv::Rect(1000, 100, 60, 14)};
  std::vector<int> claimed;
  const auto found = pipeline.detect(image, nullptr, true, log, &known, &claimed);
  ASSERT_EQ(found.size(), 2u);
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0], 0);        // the plate where it was last seen
  EXPECT_EQ(claimed[1], -1);       // no known plate near the other one
  EXPECT_EQ(locator_.refines, 1);  // only the other one (both are small enough to be refined)
}

}  // namespace
}  // namespace vigil::recognize
