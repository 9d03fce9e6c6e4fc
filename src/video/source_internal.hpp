// Helpers of the frame sources, exposed for tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
// The element names of a GStreamer pipeline spec, in order, without caps and references to named
// elements: "v4l2src device=/dev/video0 ! video/x-raw,width=640 ! appsink" -> {v4l2src, appsink}.
std::vector<std::string> pipeline_elements(const std::string& spec);
// What stops a pipeline spec before it is tried: no appsink, or elements that GStreamer does not have
// (with the package to install). nullopt when nothing is found; GStreamer's registry is consulted only
// when OpenCV has already loaded GStreamer.
std::optional<std::string> check_pipeline(const std::string& spec);

}  // namespace vigil::detail
