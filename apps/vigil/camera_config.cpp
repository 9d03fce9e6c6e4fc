// Camera config files: values come from nlohmann::json; line numbers from a second scan of the same text,
// because nlohmann::json keeps no positions (and silently drops a repeated key, which the scan catches).
#include "camera_config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace fs = std::filesystem;

namespace vigil::cli {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------------------
// Line numbers

// The line of every object key and array element, by path ("/cameras/0/roi", "/roi/2"; the root is "").
struct LineIndex {
  std::map<std::string, int> lines;
  // The first key given twice in one object: its path, and the lines of both.
  std::string repeated_path;
  int repeated_line = 0, repeated_first_line = 0;

  int line(std::string path) const {
    while (true) {
      const auto it = lines.find(path);
      if (it != lines.end()) return it->second;
      if (path.empty()) return 1;
      path.erase(path.rfind('/'));
    }
  }
};

// Scans text that nlohmann::json already accepted (comments allowed), so it can be lenient: on anything
// unexpected it stops, and the missing lines fall back to the enclosing value's.
class LineScanner {
 public:
  explicit LineScanner(const std::string& text) : s_(text) {}

  LineIndex run() {
    if (s_.compare(0, 3, "\xEF\xBB\xBF") == 0) i_ = 3;
    space();
    index_.lines[""] = line_;
    value("", 0);
    return std::move(index_);
  }

 private:
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }

  void space() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '\n') {
        ++line_;
        ++i_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++i_;
      } else if (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '/') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '*') {
        for (i_ += 2; i_ < s_.size() && !(s_[i_] == '*' && i_ + 1 < s_.size() && s_[i_ + 1] == '/'); ++i_)
          if (s_[i_] == '\n') ++line_;
        i_ += 2;
      } else {
        break;
      }
    }
  }

  // At the opening quote; returns the string with simple escapes decoded (\uXXXX kept as written).
  std::string string() {
    std::string out;
    for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
        const char e = s_[++i_];
        if (e == 'u') out += '\\';
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
      } else {
        out += s_[i_];
      }
    }
    ++i_;
    return out;
  }

  void value(const std::string& path, int depth) {
    if (depth > 64) {  // no camera key nests this deep: its lines do not matter
      i_ = s_.size();
      return;
    }
    space();
    if (at('{')) {
      ++i_;
      std::map<std::string, int> seen;
      space();
      if (at('}')) {
        ++i_;
        return;
      }
      while (at('"')) {
        const int line = line_;
        const std::string key = string();
        const std::string p = path + "/" + key;
        if (const auto [it, fresh] = seen.emplace(key, line); !fresh && index_.repeated_path.empty()) {
          index_.repeated_path = p;
          index_.repeated_line = line;
          index_.repeated_first_line = it->second;
        }
        index_.lines.emplace(p, line);
        space();
        if (!at(':')) return;
        ++i_;
        value(p, depth + 1);
        space();
        if (!at(',')) break;
        ++i_;
        space();
      }
      if (at('}')) ++i_;
    } else if (at('[')) {
      ++i_;
      space();
      if (at(']')) {
        ++i_;
        return;
      }
      for (int k = 0; i_ < s_.size(); ++k) {
        space();
        const std::string p = path + "/" + std::to_string(k);
        index_.lines.emplace(p, line_);
        value(p, depth + 1);
        space();
        if (!at(',')) break;
        ++i_;
      }
      if (at(']')) ++i_;
    } else if (at('"')) {
      string();
    } else {
      while (i_ < s_.size() && !std::strchr(",]} \t\r\n/", s_[i_])) ++i_;
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
  int line_ = 1;
  LineIndex index_;
};

// The same text with each comma that ends a list or an object (before ']' or '}', comments between
// allowed) blanked, so that hand-edited files may keep them; lines and columns do not move.
std::string blank_trailing_commas(std::string s) {
  const std::size_t n = s.size();
  auto after_comment = [&](std::size_t i) -> std::size_t {  // i itself when no comment starts at i
    if (s[i] != '/' || i + 1 >= n) return i;
    if (s[i + 1] == '/') return std::min(n, s.find('\n', i));
    if (s[i + 1] == '*') {
      const std::size_t end = s.find("*/", i + 2);
      return end == std::string::npos ? n : end + 2;
    }
    return i;
  };
  for (std::size_t i = 0; i < n;) {
    const char c = s[i];
    if (c == '"') {
      for (++i; i < n && s[i] != '"'; ++i)
        if (s[i] == '\\') ++i;
      ++i;
    } else if (after_comment(i) != i) {
      i = after_comment(i);
    } else if (c == ',') {
      std::size_t j = i + 1;
      while (j < n) {
        if (std::isspace(static_cast<unsigned char>(s[j]))) {
          ++j;
        } else if (after_comment(j) != j) {
          j = after_comment(j);
        } else {
          break;
        }
      }
      if (j < n && (s[j] == '}' || s[j] == ']')) s[i] = ' ';
      ++i;
    } else {
      ++i;
    }
  }
  return s;
}

// "/cameras/0/roi" -> "cameras[0].roi"
std::string label(const std::string& path) {
  std::string out;
  std::size_t start = 1;
  while (start <= path.size() && !path.empty()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string seg = path.substr(start, end - start);
    if (!seg.empty() && std::all_of(seg.begin(), seg.end(), [](unsigned char c) { return std::isdigit(c); }))
      out += "[" + seg + "]";
    else
      out += (out.empty() ? "" : ".") + seg;
    start = end + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Keys

// Optimal string alignment distance: edits, a swap of neighbours counting as one ("rio" -> "roi": 1).
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string unknown_key_message(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& k : known) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  // A close name, or one that contains what was typed ("threshold" -> "motion_threshold").
  if (best_d <= std::max<std::size_t>(1, std::min<std::size_t>(2, key.size() / 3)))
    return "unknown key '" + key + "' (did you mean '" + best + "'?)";
  for (const auto& k : known)
    if (key.size() >= 4 && k.find(key) != std::string::npos)
      return "unknown key '" + key + "' (did you mean '" + k + "'?)";
  return "unknown key '" + key + "' (known keys: " + join(known) + ")";
}

std::string got(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return " (got " + s + ")";
}

// What is wrong with a value, and where inside it ("/2": the third roi point; "": the value itself).
struct Problem {
  Problem(std::string m, std::string a = "") : message(std::move(m)), at(std::move(a)) {}
  std::string message;
  std::string at;
};
using Setter = std::function<std::optional<Problem>(const json&, Camera&)>;

Setter string_key(std::string Camera::*member) {
  return [member](const json& v, Camera& c) -> std::optional<Problem> {
    if (!v.is_string() || v.get<std::string>().empty()) return Problem{"must be a non-empty string" + got(v)};
    c.*member = v.get<std::string>();
    return std::nullopt;
  };
}

Setter int_key(int Camera::*member, int lo, int hi) {
  return [=](const json& v, Camera& c) -> std::optional<Problem> {
    if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
      return Problem{(hi == 1000000
                          ? "must be an integer >= " + std::to_string(lo)
                          : "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi)) +
                     got(v)};
    c.*member = v.get<int>();
    return std::nullopt;
  };
}

Setter number_key(double Camera::*member, double lo, double hi) {
  return [=](const json& v, Camera& c) -> std::optional<Problem> {
    if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
      char want[96];
      std::snprintf(want, sizeof want, "must be a number from %g to %g", lo, hi);
      return Problem{want + got(v)};
    }
    c.*member = v.get<double>();
    return std::nullopt;
  };
}

Setter bool_key(bool Camera::*member) {
  return [member](const json& v, Camera& c) -> std::optional<Problem> {
    if (!v.is_boolean()) return Problem{"must be true or false" + got(v)};
    c.*member = v.get<bool>();
    return std::nullopt;
  };
}

std::optional<Problem> set_id(const json& v, Camera& c) {
  if (!v.is_string() || v.get<std::string>().empty()) return Problem{"must be a non-empty string" + got(v)};
  const std::string id = v.get<std::string>();
  const bool plain = id.size() <= 64 && std::all_of(id.begin(), id.end(), [](unsigned char ch) {
                       return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
                     });
  if (!plain)
    return Problem{"must be at most 64 letters, digits, '-', '_' or '.' (it names files and units)" + got(v)};
  c.id = id;
  return std::nullopt;
}

std::optional<Problem> set_roi(const json& v, Camera& c) {
  if (!v.is_array()) return Problem{"expected a list of at least 3 [x, y] points in frame pixels" + got(v)};
  if (v.size() < 3)
    return Problem{"expected at least 3 [x, y] points, got " + std::to_string(v.size()) +
                   " (a polygon around the road, in frame pixels)"};
  std::vector<cv::Point2f> roi;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json& p = v[i];
    if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number() || p[0].get<double>() < 0 ||
        p[1].get<double>() < 0)
      return Problem{
          "point " + std::to_string(i + 1) + " must be [x, y] with x, y >= 0 in frame pixels" + got(p),
          "/" + std::to_string(i)};
    roi.emplace_back(p[0].get<float>(), p[1].get<float>());
  }
  c.roi = std::move(roi);
  return std::nullopt;
}

std::optional<Problem> set_live(const json& v, Camera& c) {
  if (!v.is_string() || (v != "auto" && v != "yes" && v != "no"))
    return Problem{"must be \"auto\", \"yes\" or \"no\"" + got(v)};
  c.live = v.get<std::string>();
  return std::nullopt;
}

std::optional<Problem> set_server(const json& v, Camera& c) {
  const std::string want = "expected the registry's base URL, http://HOST[:PORT] or https://HOST[:PORT]";
  if (!v.is_string()) return Problem{want + got(v)};
  const std::string url = v.get<std::string>();
  const std::size_t scheme = url.find("://");
  const std::string name = scheme == std::string::npos ? "" : url.substr(0, scheme);
  if ((name != "http" && name != "https") || url.size() == scheme + 3 || url[scheme + 3] == '/' ||
      url.find_first_of(" \t\r\n") != std::string::npos)
    return Problem{want + got(v)};
  c.server = url;
  return std::nullopt;
}

std::optional<Problem> set_token(const json& v, Camera& c) {
  if (!v.is_string() || v.get<std::string>().empty()) return Problem{"must be a non-empty string" + got(v)};
  const std::string t = v.get<std::string>();
  // It travels in an HTTP header: no spaces or control characters (a pasted newline is the usual cause).
  if (std::any_of(t.begin(), t.end(), [](unsigned char ch) { return ch <= ' ' || ch == 0x7f; }))
    return Problem{"must not contain spaces or control characters (check for a pasted line break)"};
  c.token = t;
  return std::nullopt;
}

std::optional<Problem> set_outbox(const json& v, Camera& c) {
  if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().front() != '/')
    return Problem{"expected an absolute file path, e.g. \"/var/lib/vigil/cam1.outbox\"" + got(v)};
  c.outbox = v.get<std::string>();
  return std::nullopt;
}

struct Key {
  const char* name;
  Setter set;
  bool per_camera;  // not allowed as a default beside "cameras"
};

const std::vector<Key>& keys() {
  static const std::vector<Key> k = {
      {"id", set_id, true},
      {"name", string_key(&Camera::name), true},
      {"source", string_key(&Camera::source), true},
      {"roi", set_roi, false},
      {"roi_crop", bool_key(&Camera::roi_crop), false},
      {"min_plate_width", int_key(&Camera::min_plate_width, 0, 1000000), false},
      {"stride", int_key(&Camera::stride, 1, 1000000), false},
      {"motion", bool_key(&Camera::motion), false},
      {"motion_threshold", int_key(&Camera::motion_threshold, 1, 255), false},
      {"motion_area", number_key(&Camera::motion_area, 0.0, 1.0), false},
      {"max_gap_s", number_key(&Camera::max_gap_s, 0.01, 3600), false},
      {"min_frames", int_key(&Camera::min_frames, 1, 1000000), false},
      {"images_fps", number_key(&Camera::images_fps, 0.01, 1000), false},
      {"country", string_key(&Camera::country), false},
      {"region", string_key(&Camera::region), false},
      {"countries", string_key(&Camera::countries), false},
      {"live", set_live, false},
      {"queue", int_key(&Camera::queue, 1, 1000000), false},
      {"reconnect_max", int_key(&Camera::reconnect_max, 0, 1000000), false},
      {"server", set_server, false},
      {"token", set_token, false},
      {"outbox", set_outbox, false},
  };
  return k;
}

const Key* find_key(const std::string& name) {
  for (const auto& k : keys())
    if (name == k.name) return &k;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------------
// Files

class ConfigParser {
 public:
  ConfigParser(const std::string& path, const LineIndex& index) : path_(path), index_(index) {}

  // "path:LINE: NAME: message": NAME names the value at `at`, LINE is that of `line_at` (default `at`).
  Error error(const std::string& at, const std::string& message,
              const std::optional<std::string>& line_at = std::nullopt) const {
    const std::string name = label(at);
    return Error{path_ + ":" + std::to_string(index_.line(line_at.value_or(at))) + ": " +
                 (name.empty() ? "" : name + ": ") + message};
  }

  // Applies the keys of the object at `at` over `cam`, in the order they appear in the file so that the
  // first mistake is the one reported. `defaults_only`: the object beside "cameras".
  std::optional<Error> apply(const json& obj, const std::string& at, bool defaults_only, Camera& cam) const {
    std::vector<std::pair<int, std::string>> ordered;
    for (const auto& [key, value] : obj.items()) ordered.emplace_back(index_.line(at + "/" + key), key);
    std::sort(ordered.begin(), ordered.end());
    for (const auto& [line, key] : ordered) {
      if (defaults_only && key == "cameras") continue;
      const Key* k = find_key(key);
      if (!k) {
        std::vector<std::string> known;
        for (const auto& kk : keys())
          if (!defaults_only || !kk.per_camera) known.push_back(kk.name);
        if (at.empty() && !defaults_only) known.push_back("cameras");
        return error(at, unknown_key_message(key, known), at + "/" + key);
      }
      if (defaults_only && k->per_camera)
        return error(at + "/" + key, "belongs in each entry of \"cameras\", not beside it");
      if (auto problem = k->set(obj[key], cam))
        return error(at + "/" + key, problem->message, at + "/" + key + problem->at);
    }
    return std::nullopt;
  }

  // The checks that need the whole camera (its defaults included). `shared`: the object beside "cameras"
  // (nullptr for a one-camera file). A token or outbox without a server is a mistake only when the file
  // gives it: one from the command line or the environment may be meant for other cameras.
  std::optional<Error> finish(const json& obj, const std::string& at, const json* shared, Camera& cam) const {
    if (cam.source.empty())
      return error(at,
                   "missing key 'source' (a video file, image folder, device such as /dev/video0, "
                   "URL such as rtsp://HOST/stream, or GStreamer pipeline)");
    const std::string add_server =
        "add \"server\": \"https://HOST\" (the registry the events are uploaded to)";
    if (cam.server.empty())
      for (const char* key : {"token", "outbox"}) {
        if (obj.contains(key)) return error(at + "/" + key, "set but 'server' is not: " + add_server);
        if (shared && shared->contains(key))
          return error(at, "'" + std::string(key) + "' is set (line " +
                               std::to_string(index_.line(std::string("/") + key)) +
                               ") but this camera has no 'server': " + add_server);
      }
    cam.origin = path_ + ":" + std::to_string(index_.line(at));
    return std::nullopt;
  }

  Result<std::vector<Camera>> parse(const json& doc, const Camera& defaults) const {
    if (!doc.is_object())
      return error(
          "", "expected an object: {\"source\": ...} for one camera, or {\"cameras\": [...]}" + got(doc));
    if (!doc.contains("cameras")) {
      Camera cam = defaults;
      const std::string stem = fs::path(path_).stem().string();
      cam.id = stem.empty() ? "cam1" : stem;
      if (auto e = apply(doc, "", false, cam)) return *e;
      if (Camera probe; !doc.contains("id") && set_id(json(cam.id), probe))
        return error("",
                     "the file name '" + stem +
                         "' cannot be the camera id (use letters, digits, '-', '_', '.'): add an \"id\" key");
      if (auto e = finish(doc, "", nullptr, cam)) return *e;
      return std::vector<Camera>{std::move(cam)};
    }
    Camera shared = defaults;
    if (auto e = apply(doc, "", true, shared)) return *e;
    const json& list = doc["cameras"];
    if (!list.is_array() || list.empty())
      return error("/cameras", "must be a non-empty list of cameras" + got(list));
    std::vector<Camera> cameras;
    std::map<std::string, std::string> ids;  // id -> where
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = "/cameras/" + std::to_string(i);
      if (!list[i].is_object()) return error(at, "expected an object {\"source\": ...}" + got(list[i]));
      Camera cam = shared;
      cam.id = "cam" + std::to_string(i + 1);
      if (auto e = apply(list[i], at, false, cam)) return *e;
      if (auto e = finish(list[i], at, &doc, cam)) return *e;
      const std::string here = list[i].contains("id") ? at + "/id" : at;
      if (const auto [it, fresh] = ids.emplace(cam.id, here); !fresh)
        return error(here, "duplicate camera id '" + cam.id + "' (also on line " +
                               std::to_string(index_.line(it->second)) + "); give each camera its own id");
      cameras.push_back(std::move(cam));
    }
    return cameras;
  }

 private:
  const std::string& path_;
  const LineIndex& index_;
};

}  // namespace

std::string source_for_display(const std::string& source) {
  const std::size_t scheme = source.find("://");
  if (scheme == std::string::npos || source.find(' ') != std::string::npos) return source;
  const std::size_t host_end = source.find('/', scheme + 3);
  const std::size_t at = source.rfind('@', host_end == std::string::npos ? std::string::npos : host_end);
  if (at == std::string::npos || at < scheme + 3) return source;
  const std::size_t colon = source.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return source;
  return source.substr(0, colon + 1) + "***" + source.substr(at);
}

const std::vector<std::string>& camera_config_keys() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& k : keys()) v.push_back(k.name);
    return v;
  }();
  return names;
}

Result<std::vector<Camera>> parse_camera_config_text(const std::string& text, const std::string& path,
                                                     const Camera& defaults) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    return Error{path +
                 ": the file is empty: write a camera as {\"source\": \"/dev/video0\"} (see "
                 "/etc/vigil/cameras/example.json)"};
  const std::string json_text = blank_trailing_commas(text);
  json doc;
  try {
    doc = json::parse(json_text, nullptr, /*allow_exceptions=*/true,
                      /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // nlohmann says "parse error at line 3, column 5: <what>": make it "path:3:5: not valid JSON: <what>".
    std::string what = e.what();
    int line = 0, column = 0;
    const std::size_t at = what.find(" at line ");
    if (at != std::string::npos &&
        std::sscanf(what.c_str() + at, " at line %d, column %d", &line, &column) == 2) {
      const std::size_t colon = what.find(": ", at);
      if (colon != std::string::npos) what = what.substr(colon + 2);
      // Two values in a row: the usual cause is a comma left out at the end of the line before.
      if (what.find("unexpected") != std::string::npos &&
          (what.find("expected '}'") != std::string::npos || what.find("expected ']'") != std::string::npos))
        what += " (a missing comma?)";
      return Error{path + ":" + std::to_string(line) + ":" + std::to_string(column) +
                   ": not valid JSON: " + what};
    }
    return Error{path + ": not valid JSON: " + what};
  } catch (const json::exception& e) {
    return Error{path + ": not valid JSON: " + e.what()};
  }
  const LineIndex index = LineScanner(json_text).run();
  const ConfigParser parser(path, index);
  if (!index.repeated_path.empty())
    return Error{path + ":" + std::to_string(index.repeated_line) + ": " + label(index.repeated_path) +
                 ": given twice (first on line " + std::to_string(index.repeated_first_line) + "); keep one"};
  return parser.parse(doc, defaults);
}

Result<std::vector<Camera>> parse_camera_config(const std::string& path, const Camera& defaults) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return Error{path + " is a folder: give one camera config file, e.g. " + path + "/cam1.json"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot open camera config " + path + ": " + std::strerror(errno)};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{"cannot read camera config " + path + ": " + std::strerror(errno)};
  return parse_camera_config_text(text.str(), path, defaults);
}

}  // namespace vigil::cli
