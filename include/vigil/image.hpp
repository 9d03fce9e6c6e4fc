// Reading image files that may be anything: checked before they are read and before they are decoded.
#pragma once

#include <cstddef>
#include <opencv2/core.hpp>
#include <string>

#include "vigil/common.hpp"

namespace vigil {

struct ImageLimits {
  std::size_t max_pixels = 50'000'000;  // width x height, from the file's header (before decoding)
  std::size_t max_bytes = 100u << 20;   // file size (before reading)
};

// Reads and decodes one image file (JPEG, PNG, BMP, WebP, TIFF) as BGR. Before reading it: a regular file
// (not a folder, FIFO or device), not empty, at most max_bytes; before decoding it: a known image type
// whose header declares at most max_pixels; a JPEG or PNG cut short is refused too. Fails with what is
// wrong and what to do ("image too large (16000x16000 pixels; the limit is 50 megapixels): downscale it
// first"). Peak memory: the file plus the decoded image. Thread-safe.
Result<cv::Mat> load_image_file(const std::string& path, const ImageLimits& limits = {});

}  // namespace vigil
