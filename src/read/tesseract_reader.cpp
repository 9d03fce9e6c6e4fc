#include "read/tesseract_reader.hpp"

#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <system_error>
#include <vector>

namespace vigil {

namespace {

constexpr const char* kWhitelist = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
// Plate crops carry no resolution; telling Tesseract one avoids its guess (and the warning it prints).
constexpr int kAssumedDpi = 300;

std::string normalize(const char* text) {
  std::string out;
  for (const char* p = text; p && *p; ++p) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out.push_back(c);
  }
  return out;
}

}  // namespace

struct TesseractReader::Impl {
  tesseract::TessBaseAPI api;
  cv::Mat grey, blurred;
};

TesseractReader::TesseractReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TesseractReader::~TesseractReader() {
  if (impl_) impl_->api.End();
}
TesseractReader::TesseractReader(TesseractReader&&) noexcept = default;
TesseractReader& TesseractReader::operator=(TesseractReader&&) noexcept = default;

Result<std::unique_ptr<TesseractReader>> TesseractReader::create(const std::string& tessdata_dir) {
  const std::string where = tessdata_dir.empty() ? "Tesseract's default tessdata folder (or TESSDATA_PREFIX)"
                                                 : "'" + tessdata_dir + "'";
  if (!tessdata_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(std::filesystem::path(tessdata_dir) / "eng.traineddata", ec)) {
      return Error{"tesseract reader: no eng.traineddata in " + where +
                   "; install the English model (Debian: tesseract-ocr-eng) or pass its tessdata folder"};
    }
  }
  try {
    auto impl = std::make_unique<Impl>();
    // Tesseract writes its diagnostics to stderr unless debug_file redirects them; the library must not
    // print. The parameter is process-wide in Tesseract, so this also quiets other Tesseract users.
    impl->api.SetVariable("debug_file", "/dev/null");
    // Dictionaries push reads towards English words, which plates are not.
    const std::vector<std::string> names = {"load_system_dawg", "load_freq_dawg"};
    const std::vector<std::string> values = {"0", "0"};
    if (impl->api.Init(tessdata_dir.empty() ? nullptr : tessdata_dir.c_str(), "eng", tesseract::OEM_LSTM_ONLY,
                       nullptr, 0, &names, &values, false) != 0) {
      return Error{"tesseract reader: cannot load the English LSTM model (eng.traineddata) from " + where +
                   "; install tesseract-ocr-eng or pass the folder holding eng.traineddata"};
    }
    impl->api.SetPageSegMode(tesseract::PSM_SINGLE_LINE);
    if (!impl->api.SetVariable("tessedit_char_whitelist", kWhitelist)) {
      return Error{"tesseract reader: this Tesseract does not accept a character whitelist"};
    }
    return std::unique_ptr<TesseractReader>(new TesseractReader(std::move(impl)));
  } catch (const std::exception& e) {
    return Error{std::string("tesseract reader: initialisation failed: ") + e.what()};
  }
}

Result<TesseractRead> TesseractReader::read(const cv::Mat& plate_bgr) {
  if (!impl_) return Error{"tesseract reader: used after being moved from"};
  if (plate_bgr.empty()) return Error{"tesseract reader: empty plate image"};
  if (plate_bgr.depth() != CV_8U) {
    return Error{"tesseract reader: plate image must be 8-bit (got OpenCV depth " +
                 std::to_string(plate_bgr.depth()) + ")"};
  }
  try {
    Impl& d = *impl_;
    switch (plate_bgr.channels()) {
      case 1:
        d.grey = plate_bgr;
        break;
      case 3:
        cv::cvtColor(plate_bgr, d.grey, cv::COLOR_BGR2GRAY);
        break;
      case 4:
        cv::cvtColor(plate_bgr, d.grey, cv::COLOR_BGRA2GRAY);
        break;
      default:
        return Error{"tesseract reader: plate image must have 1, 3 or 4 channels (got " +
                     std::to_string(plate_bgr.channels()) + ")"};
    }
    cv::GaussianBlur(d.grey, d.blurred, cv::Size(3, 3), 0);
    d.api.SetImage(d.blurred.data, d.blurred.cols, d.blurred.rows, 1, static_cast<int>(d.blurred.step));
    d.api.SetSourceResolution(kAssumedDpi);
    if (d.api.Recognize(nullptr) != 0) {
      d.api.Clear();
      return Error{"tesseract reader: recognition failed"};
    }
    // Walked symbol by symbol: with a whitelist, Tesseract's LSTM path reports 0 as the word confidence
    // (tesseract-ocr/tesseract#3856) while the symbol confidences stay right, so a word's confidence
    // falls back to its weakest symbol, which is how Tesseract itself rates a word.
    struct Word {
      std::string text;
      float confidence = 0.f;
      float weakest_symbol = 100.f;
    };
    std::vector<Word> words;
    if (std::unique_ptr<tesseract::ResultIterator> it(d.api.GetIterator());
        it && !it->Empty(tesseract::RIL_SYMBOL)) {
      do {
        if (words.empty() || it->IsAtBeginningOf(tesseract::RIL_WORD)) {
          words.push_back({"", it->Confidence(tesseract::RIL_WORD), 100.f});
        }
        const std::unique_ptr<char[]> symbol(it->GetUTF8Text(tesseract::RIL_SYMBOL));
        const std::string text = normalize(symbol.get());
        if (text.empty()) continue;
        words.back().text += text;
        words.back().weakest_symbol =
            std::min(words.back().weakest_symbol, it->Confidence(tesseract::RIL_SYMBOL));
      } while (it->Next(tesseract::RIL_SYMBOL));
    }
    d.api.Clear();
    TesseractRead result;
    float confidence_sum = 0.f;
    int counted = 0;
    for (const Word& word : words) {
      if (word.text.empty()) continue;
      result.text += word.text;
      confidence_sum += word.confidence > 0.f ? word.confidence : word.weakest_symbol;
      ++counted;
    }
    if (counted > 0)
      result.confidence = std::clamp(confidence_sum / static_cast<float>(counted) / 100.f, 0.f, 1.f);
    return result;
  } catch (const std::exception& e) {
    impl_->api.Clear();
    return Error{std::string("tesseract reader: ") + e.what()};
  }
}

}  // namespace vigil
