#include "vigil/dataset.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <string>

namespace fs = std::filesystem;

namespace {

// Each test builds its own dataset folder under the system temp dir and removes it afterwards.
class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        fs::temp_directory_path() / ("vigil_dataset_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path write_file(const std::string& relative, const std::string& content) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  fs::path write_image(const std::string& relative, int width = 16, int height = 12) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    EXPECT_TRUE(cv::imwrite(path.string(), cv::Mat(height, width, CV_8UC3, cv::Scalar(40, 80, 120))));
    return path;
  }
  std::string path_of(const std::string& relative) const {
    return (root_ / relative).lexically_normal().string();
  }

  const vigil::DatasetImage* find(const vigil::Dataset& ds, const std::string& relative) const {
    const std::string path = path_of(relative);
    for (const auto& image : ds.images) {
      if (image.path == path) return &image;
    }
    return nullptr;
  }

  static bool has_warning(const vigil::Dataset& ds, const std::string& file_and_line,
                          const std::string& words) {
    return std::any_of(ds.warnings.begin(), ds.warnings.end(), [&](const std::string& w) {
      return w.find(file_and_line) != std::string::npos && w.find(words) != std::string::npos;
    });
  }

  static std::string voc_xml(const std::string& filename, const std::string& objects, int width = 16,
                             int height = 12) {
    return "<annotation>\n  <folder>x</folder>\n  <filename>" + filename +
           "</filename>\n  <size>\n    <width>" + std::to_string(width) + "</width>\n    <height>" +
           std::to_string(height) + "</height>\n    <depth>3</depth>\n  </size>\n" + objects +
           "</annotation>\n";
  }
  static std::string voc_object(const std::string& xmin, const std::string& ymin, const std::string& xmax,
                                const std::string& ymax, const std::string& extra = "") {
    return "  <object>\n    <name>licence plate</name>\n" + extra + "    <bndbox>\n      <xmin>" + xmin +
           "</xmin>\n      <ymin>" + ymin + "</ymin>\n      <xmax>" + xmax + "</xmax>\n      <ymax>" + ymax +
           "</ymax>\n    </bndbox>\n  </object>\n";
  }

  fs::path root_;
};

std::string crlf(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const std::string kBom = "\xEF\xBB\xBF";

// ---- split ----

TEST(DatasetSplit, HashIsPinnedFnv1a64) {
  // Values computed independently (Python: FNV-1a 64 over "<seed>:<name>"); training/vigil_data.py must
  // produce the same ones.
  EXPECT_EQ(vigil::split_hash(0, "AYO9034.jpg"), 1609725096428171723ull);
  EXPECT_EQ(vigil::split_hash(42, "car1.jpg"), 13909594344959146637ull);
  EXPECT_EQ(vigil::split_hash(0, ""), 11172336664755514185ull);
}

TEST(DatasetSplit, DeterministicAndCloseToTheFraction) {
  std::set<std::string> test0, test0_again, test7;
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "img_" + std::to_string(i) + ".jpg";
    if (vigil::in_test_split(name, 0.2, 0)) test0.insert(name);
    if (vigil::in_test_split(name, 0.2, 0)) test0_again.insert(name);
    if (vigil::in_test_split(name, 0.2, 7)) test7.insert(name);
    EXPECT_FALSE(vigil::in_test_split(name, 0.0, 0));
    EXPECT_TRUE(vigil::in_test_split(name, 1.0, 0));
  }
  EXPECT_EQ(test0, test0_again);
  EXPECT_GT(test0.size(), 160u);
  EXPECT_LT(test0.size(), 240u);
  EXPECT_GT(test7.size(), 160u);
  EXPECT_LT(test7.size(), 240u);
  EXPECT_NE(test0, test7);
}

TEST_F(DatasetTest, SplitOptionPartitionsTheImagesByFileName) {
  std::string lines;
  for (int i = 0; i < 60; ++i) {
    const std::string name = "car" + std::to_string(i);
    write_image(name + ".jpg");
    write_file(name + ".txt", name + ".jpg\t1\t2\t5\t3\tAB" + std::to_string(100 + i) + "\n");
  }
  const auto all = vigil::load_dataset(root_.string());
  const auto test = vigil::load_dataset(root_.string(), {.split = vigil::Split::kTest, .seed = 3});
  const auto train = vigil::load_dataset(root_.string(), {.split = vigil::Split::kTrain, .seed = 3});
  ASSERT_TRUE(all && test && train) << all.error();
  ASSERT_EQ(all->images.size(), 60u);
  EXPECT_EQ(test->images.size() + train->images.size(), 60u);
  EXPECT_GT(test->images.size(), 0u);
  for (const auto& image : test->images) {
    EXPECT_TRUE(vigil::in_test_split(fs::path(image.path).filename().string(), 0.2, 3)) << image.path;
  }
  for (const auto& image : train->images) {
    EXPECT_FALSE(vigil::in_test_split(fs::path(image.path).filename().string(), 0.2, 3)) << image.path;
  }
  EXPECT_TRUE(std::is_sorted(all->images.begin(), all->images.end(),
                             [](const auto& a, const auto& b) { return a.path < b.path; }));
}

// ---- errors ----

TEST_F(DatasetTest, MissingPathIsAnError) {
  const std::string path = (root_ / "nope").string();
  const auto ds = vigil::load_dataset(path);
  ASSERT_FALSE(ds);
  EXPECT_EQ(ds.error(), "dataset " + path + ": no such file or directory");
}

TEST_F(DatasetTest, FolderWithoutAnnotationsIsAnError) {
  write_image("a.jpg");
  write_file("README.txt", "just some notes\n");
  write_file("config.xml", "<config><x>1</x></config>\n");
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_FALSE(ds);
  EXPECT_EQ(ds.error(), "dataset " + root_.string() +
                            ": no annotations found (looked for Pascal VOC .xml, YOLO labels/*.txt, OpenALPR "
                            "NAME.txt, CSV)");
}

TEST_F(DatasetTest, BadTestFractionIsAnError) {
  write_image("a.jpg");
  write_file("a.txt", "a.jpg\t1\t1\t4\t4\tAB123\n");
  EXPECT_FALSE(vigil::load_dataset(root_.string(), {.test_fraction = 1.5}));
  EXPECT_FALSE(vigil::load_dataset(root_.string(), {.test_fraction = -0.1}));
}

TEST_F(DatasetTest, AnnotationsWhoseImagesAreAllMissingAreAnError) {
  write_file("a.txt", "a.jpg\t1\t1\t4\t4\tAB123\n");
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_FALSE(ds);
  EXPECT_NE(ds.error().find("not found"), std::string::npos) << ds.error();
}

// ---- Pascal VOC ----

TEST_F(DatasetTest, VocPlatesFrLayoutTakesTheTextFromTheImageName) {
  write_image("train/Images/AP-666-TQ.jpg");
  write_image("train/Images/1218 ZD 25.jpg");
  // BOM, CRLF, an XML declaration, attributes and a comment, as various labelImg versions write.
  write_file("train/Annotations/AP-666-TQ.xml",
             kBom + crlf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- labelImg -->\n"
                         "<annotation verified=\"yes\">\n\t<filename>AP-666-TQ.jpg</filename>\n"
                         "\t<size><width>1440</width><height>1080</height><depth>3</depth></size>\n"
                         "\t<segmented/>\n" +
                         voc_object("448", "296", "600", "333") + "</annotation>\n"));
  write_file("train/Annotations/1218 ZD 25.xml",
             voc_xml("1218 ZD 25.jpg", voc_object("10.5", "20.25", "110.5", "50.25")));
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  EXPECT_EQ(ds->format, vigil::DatasetFormat::kVoc);
  EXPECT_TRUE(ds->warnings.empty()) << ds->warnings.front();
  ASSERT_EQ(ds->images.size(), 2u);
  const auto* fr = find(*ds, "train/Images/AP-666-TQ.jpg");
  ASSERT_NE(fr, nullptr);
  EXPECT_EQ(fr->width, 1440);
  EXPECT_EQ(fr->height, 1080);
  EXPECT_FALSE(fr->boxes_normalized);
  ASSERT_EQ(fr->plates.size(), 1u);
  EXPECT_FLOAT_EQ(fr->plates[0].x, 448);
  EXPECT_FLOAT_EQ(fr->plates[0].y, 296);
  EXPECT_FLOAT_EQ(fr->plates[0].w, 152);
  EXPECT_FLOAT_EQ(fr->plates[0].h, 37);
  EXPECT_EQ(fr->plates[0].text, "AP666TQ");
  const auto* old = find(*ds, "train/Images/1218 ZD 25.jpg");
  ASSERT_NE(old, nullptr);
  ASSERT_EQ(old->plates.size(), 1u);
  EXPECT_FLOAT_EQ(old->plates[0].x, 10.5f);
  EXPECT_FLOAT_EQ(old->plates[0].w, 100.f);
  EXPECT_EQ(old->plates[0].text, "1218ZD25");
}

TEST_F(DatasetTest, VocDashcamLayoutWithSeveralPlatesAndNoText) {
  write_image("valid/images/dayride_type1_001.mp4_t55.jpg");
  write_file("valid/annots/dayride_type1_001.mp4_t55.xml",
             voc_xml("dayride_type1_001.mp4_t55.jpg",
                     voc_object("113.10026892047637", "399.8360655737705", "192.76219746446407", "420") +
                         voc_object("562.0591625048021", "413.6065573770491", "649.0971955436034",
                                    "436.22950819672116"),
                     1280, 720));
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  ASSERT_EQ(ds->images.size(), 1u);
  const auto& image = ds->images[0];
  EXPECT_EQ(image.path, path_of("valid/images/dayride_type1_001.mp4_t55.jpg"));
  ASSERT_EQ(image.plates.size(), 2u);
  EXPECT_NEAR(image.plates[0].x, 113.100f, 1e-3);
  EXPECT_NEAR(image.plates[1].h, 22.623f, 1e-3);
  EXPECT_EQ(image.plates[0].text, "");
  EXPECT_EQ(image.plates[1].text, "");
}

TEST_F(DatasetTest, VocTextElementsImageNextToXmlAndStemFallback) {
  write_image("car.png");
  write_file("car.xml", voc_xml("car.png", voc_object("1", "2", "9", "6", "    <text>ab-12 cd</text>\n") +
                                               voc_object("3", "3", "8", "8", "    <plate>x.y 9</plate>\n")));
  // <filename> names a file that is not there (renamed after labelling); the xml's stem finds it.
  write_image("other.jpg");
  write_file("other.xml", voc_xml("C:\\labelling\\IMG_0001.JPG", voc_object("1", "1", "5", "5")));
  // Entities and CDATA in text.
  write_image("a&b.jpg");
  write_file("a&b.xml",
             voc_xml("a&amp;b.jpg", voc_object("1", "1", "5", "5", "<text><![CDATA[K 1]]></text>")));
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  EXPECT_TRUE(ds->warnings.empty()) << ds->warnings.front();
  ASSERT_EQ(ds->images.size(), 3u);
  const auto* car = find(*ds, "car.png");
  ASSERT_NE(car, nullptr);
  ASSERT_EQ(car->plates.size(), 2u);
  EXPECT_EQ(car->plates[0].text, "AB12CD");
  EXPECT_EQ(car->plates[1].text, "XY9");
  const auto* other = find(*ds, "other.jpg");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->plates[0].text, "");  // "other" has no digit: not a plate text
  const auto* amp = find(*ds, "a&b.jpg");
  ASSERT_NE(amp, nullptr);
  EXPECT_EQ(amp->plates[0].text, "K1");
}

TEST_F(DatasetTest, VocMalformedFilesAreWarnedAboutAndSkipped) {
  write_image("Images/good.jpg");
  write_file("Annotations/good.xml", voc_xml("good.jpg", voc_object("1", "1", "5", "5")));
  write_image("Images/partly.jpg");
  write_file(
      "Annotations/partly.xml",
      voc_xml("partly.jpg", voc_object("1", "1", "5", "5") + voc_object("x", "1", "5", "5") +
                                voc_object("6", "1", "5", "5") + "  <object><name>plate</name></object>\n"));
  write_image("Images/unclosed.jpg");
  write_file("Annotations/unclosed.xml", "<annotation>\n<filename>unclosed.jpg</filename>\n<object>\n");
  write_image("Images/mismatch.jpg");
  write_file("Annotations/mismatch.xml",
             "<annotation>\n<filename>mismatch.jpg</filename>\n</size>\n</annotation>");
  write_file("Annotations/lost.xml", voc_xml("lost.jpg", voc_object("1", "1", "5", "5")));
  write_image("Images/allbad.jpg");
  write_file("Annotations/allbad.xml", voc_xml("allbad.jpg", voc_object("5", "5", "5", "5")));
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  ASSERT_EQ(ds->images.size(), 2u);
  const auto* partly = find(*ds, "Images/partly.jpg");
  ASSERT_NE(partly, nullptr);
  EXPECT_EQ(partly->plates.size(), 1u);
  const std::string a = (root_ / "Annotations").string() + "/";
  EXPECT_TRUE(has_warning(*ds, a + "partly.xml:20:", "numeric")) << ::testing::PrintToString(ds->warnings);
  EXPECT_TRUE(has_warning(*ds, a + "partly.xml:", "empty box"));
  EXPECT_TRUE(has_warning(*ds, a + "partly.xml:", "without <bndbox>"));
  EXPECT_TRUE(has_warning(*ds, a + "unclosed.xml:", "malformed XML"));
  EXPECT_TRUE(has_warning(*ds, a + "mismatch.xml:3:", "expected </annotation>"));
  EXPECT_TRUE(has_warning(*ds, a + "lost.xml:3:", "not found"));
  EXPECT_TRUE(has_warning(*ds, a + "allbad.xml:", "image skipped"));
}

// ---- YOLO ----

TEST_F(DatasetTest, YoloLabelsAndImagesFolders) {
  write_image("images/train/00001.jpg", 320, 240);
  write_file("labels/train/00001.txt", crlf("0 0.5 0.5 0.2 0.1\n0 0.1 0.2 0.1 0.1\n"));
  write_image("images/val/00002.png");
  write_file("labels/val/00002.txt", "");  // no plates: kept as a negative image
  write_image("images/val/00003.jpg");
  write_file("labels/val/00003.txt",
             "0 0.5 0.5 0.2 0.1\n0 0.5 0.5\nplate 0.1 0.1 0.1 0.1\n0 0.5 1.7 0.1 0.1\n");
  write_file("labels/val/00004.txt", "0 0.5 0.5 0.2 0.1\n");  // image missing
  write_file("classes.txt", "plate\n");
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  EXPECT_EQ(ds->format, vigil::DatasetFormat::kYolo);
  ASSERT_EQ(ds->images.size(), 3u);
  const auto* first = find(*ds, "images/train/00001.jpg");
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->boxes_normalized);
  EXPECT_EQ(first->width, 0);
  ASSERT_EQ(first->plates.size(), 2u);
  EXPECT_FLOAT_EQ(first->plates[0].x, 0.4f);
  EXPECT_FLOAT_EQ(first->plates[0].y, 0.45f);
  EXPECT_FLOAT_EQ(first->plates[0].w, 0.2f);
  EXPECT_FLOAT_EQ(first->plates[0].h, 0.1f);
  EXPECT_EQ(first->plates[0].text, "");
  const auto* empty = find(*ds, "images/val/00002.png");
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->plates.empty());
  const auto* third = find(*ds, "images/val/00003.jpg");
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->plates.size(), 1u);
  const std::string l = (root_ / "labels/val").string() + "/";
  EXPECT_TRUE(has_warning(*ds, l + "00003.txt:2:", "got 3 fields")) << ::testing::PrintToString(ds->warnings);
  EXPECT_TRUE(has_warning(*ds, l + "00003.txt:3:", "class"));
  EXPECT_TRUE(has_warning(*ds, l + "00003.txt:4:", "outside 0..1"));
  EXPECT_TRUE(has_warning(*ds, l + "00004.txt:1:", "no image"));
  EXPECT_EQ(ds->warnings.size(), 4u);
}

TEST_F(DatasetTest, YoloLabelNextToImage) {
  write_image("frames/a.jpg");
  write_file("frames/a.txt", "0 0.25 0.75 0.5 0.5\n");
  const auto ds = vigil::load_dataset(root_.string(), {.format = vigil::DatasetFormat::kYolo});
  ASSERT_TRUE(ds) << ds.error();
  ASSERT_EQ(ds->images.size(), 1u);
  EXPECT_FLOAT_EQ(ds->images[0].plates[0].x, 0.0f);
  EXPECT_FLOAT_EQ(ds->images[0].plates[0].y, 0.5f);
}

// ---- OpenALPR ----

TEST_F(DatasetTest, OpenAlprBenchmarkFiles) {
  write_image("us5.jpg");
  write_file("us5.txt", "us5.jpg\t841\t666\t227\t113\tNEILDMND\n");
  write_image("two.jpg");
  write_file("two.txt", crlf("two.jpg\t10\t20\t30\t15\tabc 123\ntwo.jpg\t50\t20\t30\t15\tXY-99\n"));
  // The benchmark has a line naming PAG5219.png for PAG5219.jpg.
  write_image("PAG5219.jpg");
  write_file("PAG5219.txt", kBom + "PAG5219.png\t528\t568\t228\t74\tPAG5219\n");
  write_image("bad.jpg");
  write_file(
      "bad.txt",
      "bad.jpg\t1\t2\t3\t4\tOK1\nbad.jpg\t1\tx\t3\t4\tAB1\nbad.jpg\t1\t2\n\nbad.jpg\t1\t2\t0\t4\tZZ\n");
  write_file("gone.txt", "gone.jpg\t1\t2\t3\t4\tAB12\n");
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  EXPECT_EQ(ds->format, vigil::DatasetFormat::kOpenAlpr);
  ASSERT_EQ(ds->images.size(), 4u);
  const auto* us5 = find(*ds, "us5.jpg");
  ASSERT_NE(us5, nullptr);
  ASSERT_EQ(us5->plates.size(), 1u);
  EXPECT_FLOAT_EQ(us5->plates[0].x, 841);
  EXPECT_FLOAT_EQ(us5->plates[0].y, 666);
  EXPECT_FLOAT_EQ(us5->plates[0].w, 227);
  EXPECT_FLOAT_EQ(us5->plates[0].h, 113);
  EXPECT_EQ(us5->plates[0].text, "NEILDMND");
  const auto* two = find(*ds, "two.jpg");
  ASSERT_NE(two, nullptr);
  ASSERT_EQ(two->plates.size(), 2u);
  EXPECT_EQ(two->plates[0].text, "ABC123");
  EXPECT_EQ(two->plates[1].text, "XY99");
  const auto* pag = find(*ds, "PAG5219.jpg");
  ASSERT_NE(pag, nullptr);
  EXPECT_EQ(pag->plates[0].text, "PAG5219");
  const auto* bad = find(*ds, "bad.jpg");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->plates.size(), 1u);
  const std::string r = root_.string() + "/";
  EXPECT_TRUE(has_warning(*ds, r + "bad.txt:2:", "numbers")) << ::testing::PrintToString(ds->warnings);
  EXPECT_TRUE(has_warning(*ds, r + "bad.txt:3:", "got 3 fields"));
  EXPECT_TRUE(has_warning(*ds, r + "bad.txt:5:", "empty box"));
  EXPECT_TRUE(has_warning(*ds, r + "gone.txt:1:", "not found"));
  EXPECT_EQ(ds->warnings.size(), 4u);
}

// ---- CSV ----

TEST_F(DatasetTest, CsvGroupsRowsByFileName) {
  write_image("images/a.jpg", 40, 30);
  write_image("b b.jpg");
  write_file("labels.csv", kBom + crlf("filename,width,height,class,xmin,ymin,xmax,ymax,text\n"
                                       "a.jpg,40,30,plate,1,2,11,7,ab-123\n"
                                       "\"b b.jpg\",16,12,plate,0,0,8,4,\n"
                                       "a.jpg,40,30,plate,20,2,30,7,CD 456\n"
                                       "a.jpg,40,30,plate,x,2,30,7,EF\n"
                                       "a.jpg,40\n"
                                       "missing.jpg,40,30,plate,1,2,11,7,ZZ1\n"));
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  EXPECT_EQ(ds->format, vigil::DatasetFormat::kCsv);
  ASSERT_EQ(ds->images.size(), 2u);
  const auto* a = find(*ds, "images/a.jpg");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->width, 40);
  EXPECT_EQ(a->height, 30);
  ASSERT_EQ(a->plates.size(), 2u);
  EXPECT_FLOAT_EQ(a->plates[0].x, 1);
  EXPECT_FLOAT_EQ(a->plates[0].w, 10);
  EXPECT_FLOAT_EQ(a->plates[0].h, 5);
  EXPECT_EQ(a->plates[0].text, "AB123");
  EXPECT_EQ(a->plates[1].text, "CD456");
  const auto* b = find(*ds, "b b.jpg");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->plates[0].text, "");
  const std::string c = (root_ / "labels.csv").string();
  EXPECT_TRUE(has_warning(*ds, c + ":5:", "numbers")) << ::testing::PrintToString(ds->warnings);
  EXPECT_TRUE(has_warning(*ds, c + ":6:", "fields"));
  EXPECT_TRUE(has_warning(*ds, c + ":7:", "not found"));
  EXPECT_EQ(ds->warnings.size(), 3u);

  // The same file named directly.
  const auto single = vigil::load_dataset(c);
  ASSERT_TRUE(single) << single.error();
  EXPECT_EQ(single->images.size(), 2u);
}

TEST_F(DatasetTest, PlateCropsUseTheirOwnSplitAndScoreCleanRowsOnly) {
  for (const char* name : {"p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg", "p5.jpg"})
    write_image(std::string("images/") + name, 60, 15);
  write_file("labels.csv", "file,text,country,lines,split,flags,source\n"
                           "p0.jpg,BA123AB,sk,1,train,,x\n"
                           "p1.jpg,M\xC3\x9CN4513,de,1,dev,,x\n"          // MÜN4513
                           "p2.jpg,AB1?3,cz,1,dev,,x\n"                    // not clean: '?'
                           "p3.jpg,1AB2345,UK,2,dev,,x\n"
                           "p4.jpg,XY99,de,1,dev,blurry,x\n"              // not clean: a flag
                           "p5.jpg,\xCE\x94OK5512,gr,1,train,,x\n");     // Greek delta: no plain letter
  const auto all = vigil::load_dataset(root_.string());
  ASSERT_TRUE(all) << all.error();
  EXPECT_EQ(all->format, vigil::DatasetFormat::kCsv);
  ASSERT_EQ(all->images.size(), 4u) << "the test part's rows that are not clean are left out";
  const auto* p5 = find(*all, "images/p5.jpg");
  ASSERT_NE(p5, nullptr);
  EXPECT_EQ(p5->plates[0].text, "") << "no plain-letter reading: a box without a text";
  EXPECT_TRUE(p5->boxes_normalized);
  EXPECT_TRUE(p5->plates[0].whole_image);
  EXPECT_FLOAT_EQ(p5->plates[0].w, 1.0f);

  const auto dev = vigil::load_dataset(root_.string(), {.split = vigil::Split::kTest});
  ASSERT_TRUE(dev) << dev.error();
  ASSERT_EQ(dev->images.size(), 2u);  // the file's own split, clean rows only; not the hash split
  EXPECT_EQ(dev->images[0].plates[0].text, "MUN4513");
  EXPECT_EQ(dev->images[0].plates[0].country, "de");
  EXPECT_EQ(dev->images[1].plates[0].text, "1AB2345");
  EXPECT_EQ(dev->images[1].plates[0].country, "gb");
  EXPECT_EQ(dev->images[1].plates[0].lines, 2);
  const auto train = vigil::load_dataset(root_.string(), {.split = vigil::Split::kTrain});
  ASSERT_TRUE(train) << train.error();
  EXPECT_EQ(train->images.size(), 2u);
}

TEST_F(DatasetTest, CsvNamedDirectlyWithABadHeaderSaysWhy) {
  const fs::path csv = write_file("boxes.csv", "name,a,b\nx.jpg,1,2\n");
  const auto ds = vigil::load_dataset(csv.string());
  ASSERT_FALSE(ds);
  EXPECT_NE(ds.error().find("header must name filename"), std::string::npos) << ds.error();
}

TEST_F(DatasetTest, AutoDetectionPrefersTheFormatWithMostAnnotations) {
  // A VOC folder with the CSV xml_to_csv made from it: both describe the same two images.
  write_image("images/a1.jpg");
  write_image("images/b2.jpg");
  write_file("annotations/a1.xml", voc_xml("a1.jpg", voc_object("1", "1", "5", "5")));
  write_file("annotations/b2.xml", voc_xml("b2.jpg", voc_object("1", "1", "5", "5")));
  write_file("labels.csv",
             "filename,width,height,class,xmin,ymin,xmax,ymax\na1.jpg,16,12,plate,1,1,5,5\n"
             "a1.jpg,16,12,plate,6,6,9,9\nb2.jpg,16,12,plate,1,1,5,5\n");
  const auto ds = vigil::load_dataset(root_.string());
  ASSERT_TRUE(ds) << ds.error();
  EXPECT_EQ(ds->format, vigil::DatasetFormat::kVoc);
  EXPECT_EQ(ds->images.size(), 2u);
  const auto csv = vigil::load_dataset(root_.string(), {.format = vigil::DatasetFormat::kCsv});
  ASSERT_TRUE(csv) << csv.error();
  EXPECT_EQ(csv->format, vigil::DatasetFormat::kCsv);
  EXPECT_EQ(csv->images.size(), 2u);
  const auto yolo = vigil::load_dataset(root_.string(), {.format = vigil::DatasetFormat::kYolo});
  ASSERT_FALSE(yolo);
  EXPECT_NE(yolo.error().find("looked for YOLO"), std::string::npos) << yolo.error();
}

TEST(DatasetFormatNames, ToString) {
  EXPECT_STREQ(vigil::to_string(vigil::DatasetFormat::kVoc), "voc");
  EXPECT_STREQ(vigil::to_string(vigil::DatasetFormat::kYolo), "yolo");
  EXPECT_STREQ(vigil::to_string(vigil::DatasetFormat::kOpenAlpr), "openalpr");
  EXPECT_STREQ(vigil::to_string(vigil::DatasetFormat::kCsv), "csv");
}

// ---- the real datasets, when this checkout sits next to them ----

TEST(SharedDataDataset, RealDatasetsLoadWithTheDocumentedCounts) {
#ifndef VIGIL_SHARED_DATA
  GTEST_SKIP() << "VIGIL_SHARED_DATA not defined";
#else
  const fs::path data(VIGIL_SHARED_DATA);
  if (!fs::is_directory(data)) GTEST_SKIP() << data << " not present";
  struct Expected {
    const char* folder;
    vigil::DatasetFormat format;
    std::size_t images, plates, texts;
  };
  const Expected expected[] = {
      {"openalpr-us", vigil::DatasetFormat::kOpenAlpr, 222, 222, 222},
      {"openalpr-br", vigil::DatasetFormat::kOpenAlpr, 114, 114, 114},
      {"plates-fr/train", vigil::DatasetFormat::kVoc, 189, 189, 189},
      {"plates-fr/test", vigil::DatasetFormat::kVoc, 22, 22, 22},
      {"detect-ro-dashcam", vigil::DatasetFormat::kVoc, 268, 328, 0},
      {"detect-es-uc3m", vigil::DatasetFormat::kYolo, 1975, 2547, 0},
  };
  for (const Expected& e : expected) {
    SCOPED_TRACE(e.folder);
    if (!fs::exists(data / e.folder)) continue;
    const auto ds = vigil::load_dataset((data / e.folder).string());
    ASSERT_TRUE(ds) << ds.error();
    EXPECT_EQ(ds->format, e.format);
    EXPECT_TRUE(ds->warnings.empty()) << ds->warnings.front();
    std::size_t plates = 0, texts = 0;
    for (const auto& image : ds->images) {
      plates += image.plates.size();
      for (const auto& plate : image.plates) texts += !plate.text.empty();
    }
    EXPECT_EQ(ds->images.size(), e.images);
    EXPECT_EQ(plates, e.plates);
    EXPECT_EQ(texts, e.texts);
  }
#endif
}

}  // namespace
