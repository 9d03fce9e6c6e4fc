#include "vigil/tracker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <set>
#include <string>
#include <vector>

#include "track/track_internal.hpp"

namespace vigil {
namespace {

constexpr char kShippedFormats[] = VIGIL_SOURCE_DIR "/data/plate_formats.json";
constexpr double kDt = 0.1;  // 10 frames per second

const FormatSet& shipped() {
  static const FormatSet formats = [] {
    auto loaded = FormatSet::load(kShippedFormats);
    if (!loaded) {
      ADD_FAILURE() << loaded.error();
      return FormatSet{};
    }
    return std::move(loaded).value();
  }();
  return formats;
}

Plate plate(const std::string& text, cv::Rect box, float confidence = 0.9f) {
  Plate p;
  p.text = text;
  p.confidence = confidence;
  p.box = box;
  p.char_confidences.assign(text.size(), confidence);
  return p;
}

// A plate box of the given width (plates are about 4.5 times wider than tall) centred at (cx, cy).
cv::Rect box_at(double cx, double cy, double width) {
  const double height = width / 4.5;
  return {static_cast<int>(std::lround(cx - width / 2)), static_cast<int>(std::lround(cy - height / 2)),
          static_cast<int>(std::lround(width)), static_cast<int>(std::lround(height))};
}

// Feeds every frame's reads at 10 fps from t = 0, collecting the events; frame i is passed as given.
std::vector<PlateEvent> feed(PlateTracker& tracker, const std::vector<std::vector<Plate>>& frames,
                             const cv::Mat& image = {}) {
  std::vector<PlateEvent> events;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto ev = tracker.update(frames[i], static_cast<double>(i) * kDt, image);
    events.insert(events.end(), ev.begin(), ev.end());
  }
  return events;
}

std::vector<PlateEvent> concat(std::vector<PlateEvent> a, const std::vector<PlateEvent>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// 8-4-4-4-12 lower-case hex, version nibble 4, variant 8..b (std::regex draws GCC warnings under sanitizers).
bool is_uuid_v4(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (dash ? s[i] != '-' : !hex) return false;
  }
  return s[14] == '4' && std::string("89ab").find(s[19]) != std::string::npos;
}

TEST(MakeUuid, IsLowerCaseVersion4WithRfcVariantAndUnique) {
  std::set<std::string> seen;
  std::set<char> variants;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = make_uuid();
    ASSERT_TRUE(is_uuid_v4(id)) << id;
    variants.insert(id[19]);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2000u);
  EXPECT_GE(variants.size(), 3u) << "the variant nibble should take several of 8, 9, a, b";
}

TEST(TextSimilarity, IsOneMinusNormalisedEditDistance) {
  EXPECT_FLOAT_EQ(track::text_similarity("1AB2345", "1AB2345"), 1.0f);
  EXPECT_FLOAT_EQ(track::text_similarity("1AB2345", "1AB2346"), 1.0f - 1.0f / 7);
  EXPECT_FLOAT_EQ(track::text_similarity("1AB2345", "1AB234"), 1.0f - 1.0f / 7);
  EXPECT_FLOAT_EQ(track::text_similarity("ABC", "XYZ"), 0.0f);
  EXPECT_FLOAT_EQ(track::text_similarity("", ""), 1.0f);
  EXPECT_FLOAT_EQ(track::text_similarity("AB", ""), 0.0f);
}

TEST(VoteReads, MajorityPerCharacterWhenNoReadIsRight) {
  const std::string truth = "1AB2345";
  const std::vector<std::string> texts = {"7AB2345", "1AE2345", "1AB8345", "1AB2395", "1AB2341"};
  std::vector<Plate> reads;
  for (const auto& t : texts) {
    ASSERT_NE(t, truth);
    ASSERT_EQ(t.size(), truth.size());
    reads.push_back(plate(t, {0, 0, 100, 22}, 0.8f));
  }
  const Decoded d = vote_reads(reads, shipped(), "", 5);
  EXPECT_EQ(d.text, truth);
  EXPECT_EQ(d.country, "cz");
  EXPECT_TRUE(d.fits_format);
  EXPECT_GT(d.confidence, 0.5f);
  EXPECT_LE(d.confidence, 1.0f);
  ASSERT_FALSE(d.candidates.empty());
  EXPECT_LE(d.candidates.size(), 5u);
  EXPECT_EQ(d.candidates.front().text, truth);
  EXPECT_FLOAT_EQ(d.candidates.front().confidence, d.confidence);
  for (std::size_t i = 1; i < d.candidates.size(); ++i) EXPECT_LE(d.candidates[i].confidence, d.confidence);
  ASSERT_EQ(d.char_confidences.size(), truth.size());
  EXPECT_FLOAT_EQ(d.char_confidences[6], 0.8f * 4 / 5);
}

TEST(VoteReads, SumsCharConfidencesRatherThanCountingReads) {
  // Two reads say B at position 2 but are unsure of it; one sure read says 8.
  Plate unsure = plate("1AB2345", {0, 0, 100, 22}, 0.9f);
  unsure.char_confidences[2] = 0.2f;
  const Plate sure = plate("1A82345", {0, 0, 100, 22}, 0.9f);
  EXPECT_EQ(vote_reads({unsure, unsure, sure}, shipped(), "", 5).text, "1A82345");

  // Without char_confidences a read's confidence stands for each character.
  Plate weak = plate("1AB2345", {0, 0, 100, 22}, 0.3f);
  weak.char_confidences.clear();
  Plate strong = plate("1A82345", {0, 0, 100, 22}, 0.9f);
  strong.char_confidences.clear();
  EXPECT_EQ(vote_reads({weak, weak, strong}, shipped(), "", 5).text, "1A82345");
  EXPECT_EQ(vote_reads({weak, weak, weak, weak, strong}, shipped(), "", 5).text, "1AB2345");
}

TEST(VoteReads, LengthIsChosenByConfidenceWeightedVotes) {
  const Plate seven = plate("1AB2345", {0, 0, 100, 22}, 0.9f);
  const Plate six = plate("1AB235", {0, 0, 100, 22}, 0.3f);
  Decoded d = vote_reads({seven, six, six}, shipped(), "", 5);
  EXPECT_EQ(d.text, "1AB2345");  // 0.9 outweighs 2 x 0.3
  EXPECT_NEAR(d.confidence, 0.9 / 3, 1e-6);
  bool six_offered = false;
  for (const auto& c : d.candidates) six_offered |= c.text == "1AB235";
  EXPECT_TRUE(six_offered) << "the other length's text is an alternative";

  d = vote_reads({seven, six, six, six, six}, shipped(), "", 5);
  EXPECT_EQ(d.text, "1AB235");  // 4 x 0.3 outweighs 0.9
  EXPECT_NEAR(d.confidence, 1.2 / 5, 1e-6);
}

TEST(VoteReads, FormatsAndPreferredCountryBreakTies) {
  // "1AB234O" fits no format (O is never a digit); "1AB2340" is Czech: on a tie the format wins.
  const Decoded fits =
      vote_reads({plate("1AB234O", {0, 0, 100, 22}), plate("1AB2340", {0, 0, 100, 22})}, shipped(), "", 5);
  EXPECT_EQ(fits.text, "1AB2340");
  EXPECT_TRUE(fits.fits_format);
  // A clear majority is not overruled by a format.
  const Decoded majority = vote_reads({plate("1AB234O", {0, 0, 100, 22}), plate("1AB234O", {0, 0, 100, 22}),
                                       plate("1AB234O", {0, 0, 100, 22}), plate("1AB2340", {0, 0, 100, 22})},
                                      shipped(), "", 5);
  EXPECT_EQ(majority.text, "1AB234O");
  EXPECT_FALSE(majority.fits_format);
  EXPECT_EQ(majority.country, "");

  // Both fit some format; only "BA123AB" is Slovak.
  const std::vector<Plate> tie = {plate("8A123AB", {0, 0, 100, 22}), plate("BA123AB", {0, 0, 100, 22})};
  EXPECT_EQ(vote_reads(tie, shipped(), "sk", 5).text, "BA123AB");
  EXPECT_EQ(vote_reads(tie, shipped(), "sk", 5).country, "sk");
  EXPECT_EQ(vote_reads(tie, shipped(), "", 5).text, "8A123AB");
  EXPECT_EQ(vote_reads(tie, shipped(), "sk", 1).candidates.size(), 1u);
}

TEST(VoteReads, CountryIsTheOneDecodingReportsForTheText) {
  // Text fitting several countries' layouts: the event reports the layout one read alone reports (the
  // narrowest fitting one), not the first fitting country in file order.
  for (const char* text : {"B68SPK", "XY07AAC", "AB12CDE", "GU123AB", "1AB2345"}) {
    SCOPED_TRACE(text);
    const PlateFormat* expected = shipped().likeliest(text);
    ASSERT_NE(expected, nullptr);
    const Decoded d = vote_reads({plate(text, {0, 0, 100, 22}), plate(text, {0, 0, 100, 22})}, shipped(), "", 5);
    EXPECT_EQ(d.country, expected->country);
    EXPECT_EQ(d.format, expected->name);
  }
  EXPECT_EQ(shipped().likeliest("XY07AAC")->country, "gb");  // XY is no Romanian county; "at" fits too
  EXPECT_EQ(shipped().likeliest("B68SPK")->country, "ro");   // Bucharest; Austrian and British layouts fit
  // The preferred country's fitting format comes first.
  EXPECT_EQ(shipped().likeliest("B68SPK", "gb")->country, "gb");
  EXPECT_EQ(vote_reads({plate("B68SPK", {0, 0, 100, 22})}, shipped(), "gb", 5).country, "gb");
  EXPECT_EQ(shipped().likeliest("1AB234O"), nullptr);
}

TEST(VoteReads, NoReadsGiveAnEmptyResult) {
  EXPECT_TRUE(vote_reads({}, shipped(), "", 5).text.empty());
  EXPECT_TRUE(vote_reads({plate("-- ", {0, 0, 10, 3})}, shipped(), "", 5).candidates.empty());
}

TEST(PlateTracker, OneCarMovingAcrossTwentyFramesGivesOneEvent) {
  const std::string truth = "1AB2345";
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 20; ++i) {
    std::string text = truth;
    if (i % 4 == 1) text[i % 7] = text[i % 7] == '8' ? '9' : '8';  // every fourth read has one error
    frames.push_back({plate(text, box_at(640, 150 + 20.0 * i, 80 + 4.0 * i), 0.7f + 0.01f * i)});
  }
  PlateTracker tracker(shipped(), {.camera_id = "gate-1"});
  const cv::Mat image(720, 1280, CV_8UC3, cv::Scalar(40, 80, 120));
  auto events = feed(tracker, frames, image);
  EXPECT_TRUE(events.empty()) << "the car is still in view";
  ASSERT_EQ(tracker.open_tracks().size(), 1u);
  EXPECT_EQ(tracker.open_tracks()[0].best_text, truth);
  EXPECT_EQ(tracker.open_tracks()[0].frames, 20);

  events = concat(events, tracker.tick(1.9 + 0.5));
  EXPECT_TRUE(events.empty()) << "a gap under max_gap_s does not end the track";
  events = concat(events, tracker.tick(1.9 + 1.2));
  ASSERT_EQ(events.size(), 1u);
  const PlateEvent& ev = events[0];
  EXPECT_TRUE(is_uuid_v4(ev.id)) << ev.id;
  EXPECT_EQ(ev.camera_id, "gate-1");
  EXPECT_EQ(ev.text, truth);
  EXPECT_EQ(ev.country, "cz");
  EXPECT_TRUE(ev.fits_format);
  EXPECT_GT(ev.confidence, 0.0f);
  EXPECT_LE(ev.confidence, 1.0f);
  ASSERT_FALSE(ev.candidates.empty());
  EXPECT_EQ(ev.candidates[0].text, truth);
  EXPECT_EQ(ev.frames, 20);
  EXPECT_DOUBLE_EQ(ev.first_seen, 0.0);
  EXPECT_DOUBLE_EQ(ev.last_seen, 19 * kDt);
  EXPECT_EQ(ev.direction, "approaching");
  EXPECT_EQ(ev.box, frames.back()[0].box);
  EXPECT_TRUE(tracker.open_tracks().empty());
  EXPECT_TRUE(tracker.flush().empty());
}

// Video reuse (Plate::reused): a plate seen again but not read moves its track on (box, last seen, the
// gap that ends it) without voting; a reused read matching no track starts none.
TEST(PlateTracker, AReusedReadMovesItsTrackOnWithoutVoting) {
  const std::string truth = "1AB2345";
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 20; ++i) {
    Plate p = plate(i < 3 ? truth : "1AB2346", box_at(640, 150 + 20.0 * i, 80 + 4.0 * i), 0.95f);
    p.reused = i >= 3;  // read in 3 frames, then only located (with a text that would outvote the reads)
    frames.push_back({p});
  }
  PlateTracker tracker(shipped(), {.camera_id = "gate-1"});
  auto events = feed(tracker, frames);
  ASSERT_EQ(tracker.open_tracks().size(), 1u);
  EXPECT_EQ(tracker.open_tracks()[0].frames, 3);
  EXPECT_EQ(tracker.open_tracks()[0].box, frames.back()[0].box);
  // the track lives on from its last sighting, not its last read
  events = concat(events, tracker.tick(1.9 + 0.5));
  EXPECT_TRUE(events.empty());
  events = concat(events, tracker.tick(1.9 + 1.2));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, truth);
  EXPECT_EQ(events[0].frames, 3);
  EXPECT_DOUBLE_EQ(events[0].last_seen, 19 * kDt);
  // A reused read of a plate no track holds starts nothing.
  Plate stray = plate("5T78901", box_at(300, 300, 100), 0.95f);
  stray.reused = true;
  EXPECT_TRUE(tracker.update({stray}, 5.0, {}).empty());
  EXPECT_TRUE(tracker.open_tracks().empty());
}

TEST(PlateTracker, TwoCarsSideBySideStayTwoTracks) {
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 15; ++i) {
    const double y = 200 + 15.0 * i, w = 90 + 2.0 * i;
    frames.push_back({plate("1AB2345", box_at(400, y, w)), plate("1AB2346", box_at(760, y + 5, w))});
  }
  PlateTracker tracker(shipped());
  auto events = feed(tracker, frames);
  EXPECT_EQ(tracker.open_tracks().size(), 2u);
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 2u);
  std::set<std::string> texts;
  for (const auto& ev : events) {
    texts.insert(ev.text);
    EXPECT_EQ(ev.frames, 15);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"1AB2345", "1AB2346"}));
  EXPECT_NE(events[0].id, events[1].id);
}

TEST(PlateTracker, CrossingReadOrderDoesNotSwapTracks) {
  // The same two cars, with the reads listed in alternating order and a close neighbour: the assignment is
  // by cost, not by order.
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 12; ++i) {
    Plate a = plate("5XY1234", box_at(400 + 12.0 * i, 300, 100));
    Plate b = plate("5XY1284", box_at(530 + 12.0 * i, 305, 100));
    frames.push_back(i % 2 ? std::vector<Plate>{b, a} : std::vector<Plate>{a, b});
  }
  PlateTracker tracker(shipped());
  auto events = feed(tracker, frames);
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 2u);
  for (const auto& ev : events) {
    EXPECT_EQ(ev.frames, 12);
    EXPECT_EQ(ev.direction, "right");
  }
  EXPECT_NE(events[0].text, events[1].text);
}

TEST(PlateTracker, DifferentTextAtTheSamePlaceIsAnotherPlate) {
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 10; ++i) frames.push_back({plate("1AB2345", box_at(640, 400, 100))});
  for (int i = 0; i < 10; ++i) frames.push_back({plate("9ZK7781", box_at(640, 400, 100))});
  PlateTracker tracker(shipped());
  auto events = feed(tracker, frames);
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text, "1AB2345");
  EXPECT_EQ(events[1].text, "9ZK7781");
}

TEST(PlateTracker, PlateSeenInOneFrameIsNoise) {
  PlateTracker tracker(shipped(), {.min_frames = 2});
  EXPECT_TRUE(tracker.update({plate("1AB2345", box_at(640, 400, 100))}, 0.0, {}).empty());
  EXPECT_TRUE(tracker.tick(5.0).empty());
  EXPECT_TRUE(tracker.open_tracks().empty());

  EXPECT_TRUE(tracker.update({plate("1AB2345", box_at(640, 400, 100))}, 6.0, {}).empty());
  EXPECT_TRUE(tracker.flush().empty());

  PlateTracker lenient(shipped(), {.min_frames = 1});
  lenient.update({plate("1AB2345", box_at(640, 400, 100))}, 0.0, {});
  EXPECT_EQ(lenient.flush().size(), 1u);
}

TEST(PlateTracker, ShortTracksThatFitNoFormatAreNoEvents) {
  // "L1" and a burned-in clock "12:34" seen for a few frames: fragments, not cars. A foreign plate that fits no
  // format still counts when it stays in view, and a fitting plate seen briefly is kept.
  const FormatSet eu = *shipped().for_region(Region{});
  PlateTracker tracker(eu, {.min_frames = 2, .unfit_min_frames = 6});
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 3; ++i)
    frames.push_back({plate("L1", box_at(100, 100, 60)), plate("1234", box_at(900, 80, 120)),
                      plate("1AB2345", box_at(500, 400, 100))});
  auto events = feed(tracker, frames);
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "1AB2345");

  PlateTracker patient(eu, {.min_frames = 2, .unfit_min_frames = 6});
  frames.assign(8, std::vector<Plate>{plate("QQ", box_at(500, 400, 100))});
  events = feed(patient, frames);
  events = concat(events, patient.flush());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].fits_format);
}

TEST(PlateTracker, FragmentOfAReportedPlateMergesIntoIt) {
  PlateTracker tracker(shipped(), {.max_gap_s = 0.2});
  std::vector<Plate> reads;
  std::vector<PlateEvent> events;
  for (int i = 0; i < 5; ++i)
    events = concat(events, tracker.update({plate("BT920KF", box_at(500 + 10.0 * i, 400, 100))}, 0.1 * i, {}));
  // The plate's right part, read on its own once the car is half out of view, in the next frames.
  for (int i = 0; i < 4; ++i)
    events = concat(events, tracker.update({plate("920KF", box_at(700 + 10.0 * i, 400, 60))}, 1.0 + 0.1 * i, {}));
  // Much later and elsewhere, the same letters are a plate of their own.
  for (int i = 0; i < 8; ++i)
    events = concat(events, tracker.update({plate("920KF", box_at(100, 100, 60))}, 20.0 + 0.1 * i, {}));
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text, "BT920KF");
  EXPECT_EQ(events[1].text, "920KF");
  EXPECT_GE(events[1].first_seen, 20.0);
}

TEST(PlateTracker, OcclusionWithinMaxGapKeepsOneTrack) {
  std::vector<std::vector<Plate>> frames;
  for (int i = 0; i < 20; ++i) {
    if (i >= 8 && i < 12) {
      frames.push_back({});  // occluded by a truck for 4 frames
    } else {
      frames.push_back({plate("1AB2345", box_at(300 + 25.0 * i, 400, 100))});
    }
  }
  PlateTracker tracker(shipped(), {.max_gap_s = 1.0});
  auto events = feed(tracker, frames);
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].frames, 16);
  EXPECT_EQ(events[0].text, "1AB2345");
  EXPECT_EQ(events[0].direction, "right");
}

TEST(PlateTracker, GapLongerThanMaxGapSplitsTheTrack) {
  PlateTracker tracker(shipped(), {.max_gap_s = 1.0});
  std::vector<PlateEvent> events;
  for (int i = 0; i < 10; ++i)
    events = concat(events, tracker.update({plate("1AB2345", box_at(640, 400, 100))}, i * kDt, {}));
  EXPECT_TRUE(events.empty());
  // 1.5 s later, at the same place: the first pass ended, this is a second one.
  for (int i = 0; i < 10; ++i) {
    auto ev = tracker.update({plate("1AB2345", box_at(640, 400, 100))}, 2.4 + i * kDt, {});
    if (i == 0) {
      EXPECT_EQ(ev.size(), 1u) << "the first track ends when the gap is exceeded";
    }
    events = concat(events, ev);
  }
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].frames, 10);
  EXPECT_EQ(events[1].frames, 10);
  EXPECT_NEAR(events[0].last_seen, 0.9, 1e-9);
  EXPECT_NEAR(events[1].first_seen, 2.4, 1e-9);
  EXPECT_EQ(events[0].direction, "");
}

TEST(PlateTracker, StoppedCarIsReportedOncePerMaxTrackWindow) {
  PlateTracker tracker(shipped(), {.max_track_s = 10.0});
  std::vector<PlateEvent> events;
  int frames = 0;
  for (double t = 0.0; t <= 25.0 + 1e-9; t += kDt, ++frames) {
    const int jitter = frames % 3 - 1;
    events =
        concat(events, tracker.update({plate("1AB2345", box_at(640 + jitter, 400, 100 + jitter))}, t, {}));
  }
  events = concat(events, tracker.tick(30.0));
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 2u) << "25 s with max_track_s = 10: two full windows, the rest is the same pass";
  for (const auto& ev : events) {
    EXPECT_EQ(ev.text, "1AB2345");
    EXPECT_GE(ev.last_seen - ev.first_seen, 10.0 - 1e-6);
    EXPECT_NEAR(ev.frames, 101, 1);
    EXPECT_EQ(ev.direction, "");
  }
  EXPECT_GE(events[1].first_seen, events[0].last_seen);
  EXPECT_GE(events[1].last_seen - events[0].last_seen, 10.0 - 1e-6);
  EXPECT_NE(events[0].id, events[1].id);
}

TEST(PlateTracker, FlushEmitsOpenTracks) {
  PlateTracker tracker(shipped());
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(
        tracker.update({plate("1AB2345", box_at(640, 400 + 10.0 * i, 100), 0.5f + 0.1f * i)}, i * kDt, {})
            .empty());
  const auto open = tracker.open_tracks();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].best_text, "1AB2345");
  EXPECT_EQ(open[0].frames, 5);
  EXPECT_FLOAT_EQ(open[0].best_confidence, 0.9f);
  EXPECT_EQ(open[0].box, box_at(640, 440, 100));
  const auto events = tracker.flush();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].frames, 5);
  EXPECT_TRUE(tracker.open_tracks().empty());
  EXPECT_TRUE(tracker.flush().empty());
}

TEST(PlateTracker, TickEndsTracksAfterMaxGap) {
  PlateTracker tracker(shipped(), {.max_gap_s = 1.0});
  for (int i = 0; i < 5; ++i) tracker.update({plate("1AB2345", box_at(640, 400, 100))}, i * kDt, {});
  EXPECT_TRUE(tracker.tick(0.9).empty());
  EXPECT_EQ(tracker.open_tracks().size(), 1u);
  const auto events = tracker.tick(1.5);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].frames, 5);
  EXPECT_TRUE(tracker.open_tracks().empty());
}

TEST(PlateTracker, MinConfidenceDropsUnsureEvents) {
  PlateTracker tracker(shipped(), {.min_confidence = 0.6f});
  for (int i = 0; i < 5; ++i) tracker.update({plate("1AB2345", box_at(640, 400, 100), 0.4f)}, i * kDt, {});
  EXPECT_TRUE(tracker.flush().empty());
  for (int i = 0; i < 5; ++i) tracker.update({plate("1AB2345", box_at(640, 400, 100), 0.8f)}, i * kDt, {});
  EXPECT_EQ(tracker.flush().size(), 1u);
}

TEST(PlateTracker, EvidenceComesFromTheMostConfidentRead) {
  PlateTracker tracker(shipped());
  const cv::Rect box = box_at(640, 400, 100);
  for (int i = 0; i < 6; ++i) {
    // Each frame has its own grey level; the read of frame 3 is the most confident.
    cv::Mat frame(720, 1280, CV_8UC3, cv::Scalar::all(10 * (i + 1)));
    tracker.update({plate("1AB2345", box, i == 3 ? 0.95f : 0.6f)}, i * kDt, frame);
  }
  const auto events = tracker.flush();
  ASSERT_EQ(events.size(), 1u);
  const cv::Mat& crop = events[0].best_crop;
  ASSERT_FALSE(crop.empty());
  EXPECT_EQ(crop.cols, box.width + 2 * 20);
  EXPECT_EQ(crop.rows, box.height + 2 * static_cast<int>(std::lround(box.height * 0.2)));
  EXPECT_EQ(crop.at<cv::Vec3b>(0, 0)[0], 40);
  const cv::Mat& thumb = events[0].thumbnail;
  ASSERT_FALSE(thumb.empty());
  EXPECT_EQ(thumb.cols, 640);
  EXPECT_EQ(thumb.rows, 360);
  EXPECT_EQ(thumb.at<cv::Vec3b>(100, 100)[1], 40);
}

TEST(PlateTracker, EvidenceIsEmptyWithoutFramesAndClippedAtTheBorder) {
  PlateTracker tracker(shipped());
  for (int i = 0; i < 3; ++i) tracker.update({plate("1AB2345", {0, 0, 100, 22})}, i * kDt, {});
  auto events = tracker.flush();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].best_crop.empty());
  EXPECT_TRUE(events[0].thumbnail.empty());

  const cv::Mat small(240, 320, CV_8UC3, cv::Scalar::all(7));
  for (int i = 0; i < 3; ++i) tracker.update({plate("1AB2345", {0, 0, 100, 22})}, 1.0 + i * kDt, small);
  events = tracker.flush();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].best_crop.size(), cv::Size(120, 26));  // no margin beyond the image's corner
  EXPECT_EQ(events[0].thumbnail.size(), small.size());       // already small: kept as is
  EXPECT_NE(events[0].thumbnail.data, small.data) << "evidence is a copy";
}

struct DirectionCase {
  const char* name;
  double dx, dy, growth;  // per frame: centre motion in pixels, width factor
  const char* expected;
};

class Direction : public ::testing::TestWithParam<DirectionCase> {};

TEST_P(Direction, FollowsTheBoxFromFirstToLastRead) {
  const DirectionCase& c = GetParam();
  std::vector<std::vector<Plate>> frames;
  double width = 100;
  for (int i = 0; i < 10; ++i) {
    frames.push_back({plate("1AB2345", box_at(640 + c.dx * i, 360 + c.dy * i, width))});
    width *= c.growth;
  }
  PlateTracker tracker(shipped());
  auto events = feed(tracker, frames);
  events = concat(events, tracker.flush());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].direction, c.expected);
}

INSTANTIATE_TEST_SUITE_P(PlateTracker, Direction,
                         ::testing::Values(DirectionCase{"approaching", 0, 20, 1.05, "approaching"},
                                           DirectionCase{"leaving", 0, -20, 0.95, "leaving"},
                                           DirectionCase{"left", -30, 3, 1.0, "left"},
                                           DirectionCase{"right", 30, -3, 1.0, "right"},
                                           DirectionCase{"still", 2, 2, 1.0, ""}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PlateTracker, DirectionHelperFallsBackToVerticalMotion) {
  EXPECT_EQ(track::direction_of({600, 100, 100, 22}, {600, 300, 100, 22}), "approaching");
  EXPECT_EQ(track::direction_of({600, 300, 100, 22}, {600, 100, 100, 22}), "leaving");
  EXPECT_EQ(track::direction_of({600, 300, 100, 22}, {600, 320, 100, 22}), "");
}

TEST(PlateTracker, IsMovable) {
  PlateTracker a(shipped());
  a.update({plate("1AB2345", box_at(640, 400, 100))}, 0.0, {});
  a.update({plate("1AB2345", box_at(640, 400, 100))}, kDt, {});
  PlateTracker b = std::move(a);
  EXPECT_EQ(b.open_tracks().size(), 1u);
  PlateTracker c(shipped());
  c = std::move(b);
  EXPECT_EQ(c.flush().size(), 1u);
}

}  // namespace
}  // namespace vigil
