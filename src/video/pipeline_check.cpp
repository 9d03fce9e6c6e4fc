// GStreamer pipeline sources checked before they start: OpenCV only says that a pipeline did not open
// (its reason goes to a log that is silent by default), and a live source would retry it for ever. A
// missing appsink or an element whose plugin is not installed cannot get better by retrying.
//
// GStreamer is reached through the symbols OpenCV's videoio already loaded (dlsym), so libvigil does not
// link GStreamer itself; where OpenCV loads it later, as a plugin, only the static checks run.
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "video/source_internal.hpp"

namespace vigil::detail {
namespace {

// The package that has each common element, on Debian and Raspberry Pi OS.
const std::map<std::string, std::string>& element_packages() {
  // clang-format off
  static const std::map<std::string, std::string> m = {
      {"libcamerasrc", "gstreamer1.0-libcamera"},
      {"appsink", "gstreamer1.0-plugins-base"},
      {"videoconvert", "gstreamer1.0-plugins-base"},
      {"videoscale", "gstreamer1.0-plugins-base"},
      {"videorate", "gstreamer1.0-plugins-base"},
      {"decodebin", "gstreamer1.0-plugins-base"},
      {"uridecodebin", "gstreamer1.0-plugins-base"},
      {"videotestsrc", "gstreamer1.0-plugins-base"},
      {"v4l2src", "gstreamer1.0-plugins-good"},
      {"v4l2h264dec", "gstreamer1.0-plugins-good"},
      {"v4l2jpegdec", "gstreamer1.0-plugins-good"},
      {"rtspsrc", "gstreamer1.0-plugins-good"},
      {"souphttpsrc", "gstreamer1.0-plugins-good"},
      {"rtph264depay", "gstreamer1.0-plugins-good"},
      {"rtph265depay", "gstreamer1.0-plugins-good"},
      {"jpegdec", "gstreamer1.0-plugins-good"},
      {"udpsrc", "gstreamer1.0-plugins-good"},
      {"h264parse", "gstreamer1.0-plugins-bad"},
      {"h265parse", "gstreamer1.0-plugins-bad"},
      {"avdec_h264", "gstreamer1.0-libav"},
      {"avdec_h265", "gstreamer1.0-libav"},
  };
  // clang-format on
  return m;
}

// GStreamer's element registry, when the library is loaded in this process.
class GstRegistry {
 public:
  GstRegistry() {
    init_ = reinterpret_cast<InitCheck>(dlsym(RTLD_DEFAULT, "gst_init_check"));
    find_ = reinterpret_cast<Find>(dlsym(RTLD_DEFAULT, "gst_element_factory_find"));
    unref_ = reinterpret_cast<Unref>(dlsym(RTLD_DEFAULT, "gst_object_unref"));
    // gst_init_check is safe to call again after OpenCV initialised GStreamer, and vice versa.
    usable_ = init_ && find_ && unref_ && init_(nullptr, nullptr, nullptr);
  }
  bool usable() const { return usable_; }
  bool has(const std::string& element) const {
    void* factory = find_(element.c_str());
    if (factory) unref_(factory);
    return factory != nullptr;
  }

 private:
  using InitCheck = int (*)(int*, char***, void**);
  using Find = void* (*)(const char*);
  using Unref = void (*)(void*);
  InitCheck init_ = nullptr;
  Find find_ = nullptr;
  Unref unref_ = nullptr;
  bool usable_ = false;
};

}  // namespace

std::vector<std::string> pipeline_elements(const std::string& spec) {
  // Split at '!' outside quotes; each part starts with an element name, caps ("video/x-raw,width=640")
  // or a reference to a named element ("t."), which are not elements.
  std::vector<std::string> parts(1);
  char quote = 0;
  for (const char c : spec) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '!') {
      parts.emplace_back();
      continue;
    }
    parts.back() += c;
  }
  std::vector<std::string> names;
  for (const auto& part : parts) {
    const std::size_t start = part.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) continue;
    const std::string token = part.substr(start, part.find_first_of(" \t\r\n", start) - start);
    const bool name = std::isalpha(static_cast<unsigned char>(token[0])) &&
                      std::all_of(token.begin(), token.end(),
                                  [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
    if (name) names.push_back(token);
  }
  return names;
}

std::optional<std::string> check_pipeline(const std::string& spec) {
  const std::vector<std::string> elements = pipeline_elements(spec);
  if (std::find(elements.begin(), elements.end(), "appsink") == elements.end())
    return "a GStreamer pipeline must end in appsink, where vigil takes the frames (e.g. \"libcamerasrc ! "
           "video/x-raw,width=1280,height=720 ! videoconvert ! appsink\")";
  static const GstRegistry registry;
  if (!registry.usable()) return std::nullopt;
  std::vector<std::string> missing, packages, unknown;
  for (const auto& e : elements) {
    if (registry.has(e) || std::find(missing.begin(), missing.end(), e) != missing.end()) continue;
    missing.push_back(e);
    const auto it = element_packages().find(e);
    if (it == element_packages().end())
      unknown.push_back(e);
    else if (std::find(packages.begin(), packages.end(), it->second) == packages.end())
      packages.push_back(it->second);
  }
  if (missing.empty()) return std::nullopt;
  auto join = [](const std::vector<std::string>& v, const char* sep) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
  };
  std::string msg = std::string(missing.size() == 1 ? "GStreamer element " : "GStreamer elements ") +
                    join(missing, ", ") + (missing.size() == 1 ? " is" : " are") + " not installed";
  if (!packages.empty()) msg += ": apt-get install " + join(packages, " ");
  if (!unknown.empty())
    msg += std::string(packages.empty() ? ": " : "; ") + "check the name" +
           (unknown.size() == 1 ? " " : "s ") + join(unknown, ", ") +
           " with gst-inspect-1.0, or install the plugin that provides " +
           (unknown.size() == 1 ? "it" : "them");
  return msg;
}

}  // namespace vigil::detail
