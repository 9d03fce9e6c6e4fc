// The classic reader: Tesseract's LSTM engine on a plate crop. Kept to compare our neural reader with
// the usual open-source baseline (`vigil bench --reader tesseract`); only built when Tesseract is found
// (VIGIL_HAVE_TESSERACT).
#pragma once

#include <memory>
#include <opencv2/core.hpp>
#include <string>

#include "vigil/common.hpp"

namespace vigil {

struct TesseractRead {
  std::string text;        // normalised: upper case A-Z0-9, no spaces or dashes; "" when nothing was read
  float confidence = 0.f;  // mean word confidence in 0..1; 0 when nothing was read
};

// Reads one plate crop per call: grey, 3x3 Gaussian blur, Tesseract LSTM in single-line mode restricted
// to A-Z0-9. Not thread-safe: use one reader per thread. Movable, not copyable.
class TesseractReader {
 public:
  // tessdata_dir: folder holding eng.traineddata; "" uses TESSDATA_PREFIX or Tesseract's built-in path.
  // Fails with a message naming the folder when the English model cannot be loaded.
  static Result<std::unique_ptr<TesseractReader>> create(const std::string& tessdata_dir = "");
  ~TesseractReader();
  TesseractReader(TesseractReader&&) noexcept;
  TesseractReader& operator=(TesseractReader&&) noexcept;
  TesseractReader(const TesseractReader&) = delete;
  TesseractReader& operator=(const TesseractReader&) = delete;

  // plate_bgr: an 8-bit BGR, BGRA or grey crop of one plate. Errors on an empty or non-8-bit image or when
  // Tesseract fails; a crop with no readable text is not an error (empty text, confidence 0).
  Result<TesseractRead> read(const cv::Mat& plate_bgr);

 private:
  struct Impl;
  explicit TesseractReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
