#ifdef VIGIL_HAVE_TESSERACT

#include "read/tesseract_reader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[b.size()];
}

// Big black text on white with a dark frame, roughly what a cropped plate looks like.
cv::Mat render_plate(const std::string& text) {
  cv::Mat plate(140, 560, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::rectangle(plate, {4, 4}, {555, 135}, cv::Scalar(0, 0, 0), 3);
  cv::putText(plate, text, {40, 105}, cv::FONT_HERSHEY_SIMPLEX, 3.0, cv::Scalar(0, 0, 0), 8, cv::LINE_AA);
  return plate;
}

TEST(TesseractReader, ReadsARenderedPlate) {
  auto reader = vigil::TesseractReader::create();
  ASSERT_TRUE(reader) << reader.error();
  const auto read = (*reader)->read(render_plate("AB 123"));
  ASSERT_TRUE(read) << read.error();
  EXPECT_LE(edit_distance(read->text, "AB123"), 2u) << read->text;
  EXPECT_EQ(read->text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), std::string::npos);
  EXPECT_GT(read->confidence, 0.3f);
  EXPECT_LE(read->confidence, 1.0f);

  // Grey input and a second read on the same reader work too.
  cv::Mat grey;
  cv::cvtColor(render_plate("XY 789"), grey, cv::COLOR_BGR2GRAY);
  const auto second = (*reader)->read(grey);
  ASSERT_TRUE(second) << second.error();
  EXPECT_LE(edit_distance(second->text, "XY789"), 2u) << second->text;
}

TEST(TesseractReader, BlankImageReadsNothing) {
  auto reader = vigil::TesseractReader::create();
  ASSERT_TRUE(reader) << reader.error();
  const auto read = (*reader)->read(cv::Mat(60, 200, CV_8UC3, cv::Scalar(255, 255, 255)));
  ASSERT_TRUE(read) << read.error();
  EXPECT_EQ(read->text, "");
  EXPECT_EQ(read->confidence, 0.f);
}

TEST(TesseractReader, BadInputsAreErrors) {
  auto reader = vigil::TesseractReader::create();
  ASSERT_TRUE(reader) << reader.error();
  const auto empty = (*reader)->read(cv::Mat());
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().find("empty"), std::string::npos) << empty.error();
  EXPECT_FALSE((*reader)->read(cv::Mat(20, 20, CV_32FC1, cv::Scalar(0))));
}

TEST(TesseractReader, MissingModelFolderIsAClearError) {
  const auto reader = vigil::TesseractReader::create("/nonexistent/tessdata");
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("eng.traineddata"), std::string::npos) << reader.error();
  EXPECT_NE(reader.error().find("/nonexistent/tessdata"), std::string::npos) << reader.error();
}

}  // namespace

#endif  // VIGIL_HAVE_TESSERACT
