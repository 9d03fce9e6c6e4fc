// Helpers of the frame sources, exposed for tests.
#pragma once

#include <string>

#include "vigil/video.hpp"

namespace vigil::detail {

std::string lower(std::string s);
bool is_image_file_name(const std::string& path);
// "f2.jpg" < "f10.jpg": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b);
// "rtsp://user:secret@host/x" -> "rtsp://user:***@host/x"; other specs unchanged.
std::string redact_url(const std::string& spec);
// What kind of source a spec names (looks at the file system for folders and globs).
SourceKind classify(const std::string& spec);
// Why FFmpeg could not open a file that exists: empty, not a video (with its first bytes), an image, or a
// damaged/truncated container.
std::string diagnose_unopenable(const std::string& path);
// Unix time in seconds.
double unix_now();

}  // namespace vigil::detail
