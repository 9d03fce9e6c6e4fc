// Pascal VOC annotations as labelImg and most exporters write them, read with a small XML parser that
// covers what those files use: elements, attributes, text, entities, comments, CDATA and a prolog.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <map>

#include "dataset/dataset_internal.hpp"

namespace vigil::dataset_detail {
namespace {

struct XmlNode {
  std::string name;
  std::string text;  // the element's own character data, entities decoded
  std::vector<XmlNode> children;
  int line = 0;
};

struct XmlDocument {
  std::optional<XmlNode> root;
  std::string error;
  int error_line = 0;
};

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_decoded(std::string& out, std::string_view raw) {
  static constexpr std::array<std::pair<std::string_view, char>, 5> kNamed = {
      {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}}};
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t amp = raw.find('&', i);
    out.append(raw.substr(i, amp - i));
    if (amp == std::string_view::npos) return;
    const std::size_t semi = raw.find(';', amp);
    // Stray '&' is an error in strict XML; hand-edited files have them, so they stay literal.
    bool decoded = false;
    if (semi != std::string_view::npos && semi - amp <= 10) {
      const std::string_view entity = raw.substr(amp + 1, semi - amp - 1);
      for (const auto& [name, c] : kNamed) {
        if (entity == name) {
          out.push_back(c);
          decoded = true;
        }
      }
      if (!decoded && entity.size() > 1 && entity[0] == '#') {
        const bool hex = entity[1] == 'x' || entity[1] == 'X';
        const std::string digits(entity.substr(hex ? 2 : 1));
        char* end = nullptr;
        const unsigned long cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
        if (!digits.empty() && end == digits.c_str() + digits.size() && cp > 0 && cp <= 0x10FFFF) {
          append_utf8(out, cp);
          decoded = true;
        }
      }
    }
    if (decoded) {
      i = semi + 1;
    } else {
      out.push_back('&');
      i = amp + 1;
    }
  }
}

class XmlParser {
 public:
  explicit XmlParser(std::string_view text) : s_(text) {}

  XmlDocument parse() {
    XmlDocument doc;
    if (s_.starts_with("\xFF\xFE") || s_.starts_with("\xFE\xFF")) {
      doc.error = "UTF-16 encoded; save it as UTF-8";
      doc.error_line = 1;
      return doc;
    }
    if (s_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
    if (skip_misc() && at("<") && !at("</")) {
      XmlNode root;
      if (parse_element(root, 0)) doc.root = std::move(root);
    } else if (error_.empty()) {
      fail(pos_ < s_.size() ? "expected the root element" : "no root element");
    }
    if (!doc.root) {
      doc.error = error_;
      doc.error_line = error_line_;
    }
    return doc;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool at(std::string_view token) const { return s_.substr(pos_).starts_with(token); }

  int line_at(std::size_t pos) {
    // Positions are asked for in increasing order, so lines are counted once over the file.
    for (; line_pos_ < pos && line_pos_ < s_.size(); ++line_pos_) {
      if (s_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }

  bool fail(const std::string& message) {
    if (error_.empty()) {
      error_ = message;
      error_line_ = line_at(pos_);
    }
    return false;
  }

  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  bool skip_past(std::string_view terminator, const char* what) {
    const std::size_t end = s_.find(terminator, pos_);
    if (end == std::string_view::npos) return fail(std::string("unterminated ") + what);
    pos_ = end + terminator.size();
    return true;
  }

  // Skips whitespace, comments, processing instructions and a DOCTYPE before or between elements.
  bool skip_misc() {
    for (;;) {
      skip_space();
      if (at("<?")) {
        if (!skip_past("?>", "processing instruction")) return false;
      } else if (at("<!--")) {
        if (!skip_past("-->", "comment")) return false;
      } else if (at("<!DOCTYPE") || at("<!doctype")) {
        const std::size_t bracket = s_.find('[', pos_), close = s_.find('>', pos_);
        if (bracket != std::string_view::npos && bracket < close) {
          pos_ = bracket;
          if (!skip_past("]", "DOCTYPE")) return false;
        }
        if (!skip_past(">", "DOCTYPE")) return false;
      } else {
        return true;
      }
    }
  }

  std::string_view read_name() {
    const std::size_t start = pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '>' || c == '=' || c == '<') break;
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  // Attributes are checked for well-formedness and dropped: the VOC subset keeps its data in elements.
  bool skip_attributes(bool& self_closing) {
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) return fail("unexpected end of file inside a tag");
      if (at("/>")) {
        pos_ += 2;
        self_closing = true;
        return true;
      }
      if (at(">")) {
        ++pos_;
        self_closing = false;
        return true;
      }
      if (read_name().empty()) return fail("malformed attribute");
      skip_space();
      if (!at("=")) continue;
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
        return fail("attribute value without quotes");
      const char quote = s_[pos_++];
      const std::size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos) return fail("unterminated attribute value");
      pos_ = end + 1;
    }
  }

  // Called with pos_ at '<' of a start tag.
  bool parse_element(XmlNode& node, int depth) {
    if (depth > kMaxDepth) return fail("elements nested too deeply");
    node.line = line_at(pos_);
    ++pos_;
    node.name = std::string(read_name());
    if (node.name.empty()) return fail("malformed start tag");
    bool self_closing = false;
    if (!skip_attributes(self_closing)) return false;
    if (self_closing) return true;
    for (;;) {
      const std::size_t lt = s_.find('<', pos_);
      if (lt == std::string_view::npos) {
        pos_ = s_.size();
        return fail("unexpected end of file: <" + node.name + "> is not closed");
      }
      append_decoded(node.text, s_.substr(pos_, lt - pos_));
      pos_ = lt;
      if (at("</")) {
        pos_ += 2;
        const std::string_view name = read_name();
        skip_space();
        if (name != node.name)
          return fail("expected </" + node.name + "> but found </" + std::string(name) + ">");
        if (!at(">")) return fail("malformed end tag </" + node.name);
        ++pos_;
        return true;
      }
      if (at("<!--")) {
        if (!skip_past("-->", "comment")) return false;
      } else if (at("<![CDATA[")) {
        pos_ += 9;
        const std::size_t end = s_.find("]]>", pos_);
        if (end == std::string_view::npos) return fail("unterminated CDATA section");
        node.text.append(s_.substr(pos_, end - pos_));
        pos_ = end + 3;
      } else if (at("<?")) {
        if (!skip_past("?>", "processing instruction")) return false;
      } else if (at("<!")) {
        return fail("unexpected declaration inside <" + node.name + ">");
      } else {
        node.children.emplace_back();
        if (!parse_element(node.children.back(), depth + 1)) return false;
      }
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::size_t line_pos_ = 0;
  int line_ = 1;
  std::string error_;
  int error_line_ = 0;
};

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

const XmlNode* child(const XmlNode& node, std::string_view name) {
  for (const XmlNode& c : node.children) {
    if (same_name(c.name, name)) return &c;
  }
  return nullptr;
}

std::string child_text(const XmlNode& node, std::string_view name) {
  const XmlNode* c = child(node, name);
  return c ? std::string(trim(c->text)) : std::string();
}

// Folders next to the annotation folder that hold the images in the layouts seen in the wild:
// X/Annotations + X/Images (plates-fr), X/annots + X/images, X/Annotations + X/JPEGImages (VOC itself).
class ImageFolders {
 public:
  const std::vector<fs::path>& for_annotation_dir(const fs::path& dir) {
    auto it = cache_.find(dir);
    if (it != cache_.end()) return it->second;
    std::vector<fs::path> folders;
    std::error_code ec;
    const fs::path parent = dir.parent_path();
    if (!parent.empty() && parent != dir) {
      for (fs::directory_iterator d(parent, ec), end; !ec && d != end; d.increment(ec)) {
        static constexpr std::array<std::string_view, 6> kNames = {"images", "image", "jpegimages",
                                                                   "imgs",   "img",   "pictures"};
        const std::string name = to_lower(d->path().filename().string());
        std::error_code type_ec;
        if (d->path() != dir && d->is_directory(type_ec) &&
            std::find(kNames.begin(), kNames.end(), name) != kNames.end()) {
          folders.push_back(d->path());
        }
      }
    }
    std::sort(folders.begin(), folders.end());
    folders.push_back(dir);
    return cache_.emplace(dir, std::move(folders)).first->second;
  }

 private:
  std::map<fs::path, std::vector<fs::path>> cache_;
};

std::optional<fs::path> find_voc_image(const fs::path& xml, const std::string& filename_field,
                                       ImageFolders& folders) {
  // <filename> may hold a Windows or Unix path; only its last component is portable.
  std::string name = filename_field;
  if (const std::size_t slash = name.find_last_of("/\\"); slash != std::string::npos)
    name.erase(0, slash + 1);
  const std::vector<fs::path>& dirs = folders.for_annotation_dir(xml.parent_path());
  if (!name.empty()) {
    for (const fs::path& dir : dirs) {
      if (file_exists(dir / name)) return dir / name;
    }
  }
  std::vector<std::string> stems;
  if (!name.empty()) {
    stems.push_back(name);
    stems.push_back(fs::path(name).stem().string());
  }
  stems.push_back(xml.stem().string());
  for (const fs::path& dir : dirs) {
    for (const std::string& stem : stems) {
      if (auto found = find_image_by_stem(dir, stem)) return found;
    }
  }
  return std::nullopt;
}

void load_voc_file(const fs::path& file, ImageFolders& folders, LoadContext& ctx) {
  const std::optional<std::string> content = read_text_file(file, ctx);
  if (!content) return;
  const XmlDocument doc = XmlParser(*content).parse();
  if (!doc.root) {
    ctx.warn(file, doc.error_line, "malformed XML: " + doc.error);
    return;
  }
  const XmlNode& root = *doc.root;
  if (!same_name(root.name, "annotation")) {
    ctx.warn(file, root.line, "not a Pascal VOC annotation (root element <" + root.name + ">)");
    return;
  }
  const XmlNode* filename = child(root, "filename");
  const int filename_line = filename ? filename->line : root.line;
  const std::string filename_text = filename ? std::string(trim(filename->text)) : "";
  const std::optional<fs::path> image_path = find_voc_image(file, filename_text, folders);
  if (!image_path) {
    ctx.warn(file, filename_line,
             "image " + (filename_text.empty() ? file.stem().string() + ".*" : "'" + filename_text + "'") +
                 " not found next to the annotation or in a sibling images folder; skipped");
    return;
  }

  DatasetImage image;
  image.path = image_path->lexically_normal().string();
  if (const XmlNode* size = child(root, "size")) {
    const auto width = parse_double(child_text(*size, "width"));
    const auto height = parse_double(child_text(*size, "height"));
    if (width && height && *width > 0 && *height > 0) {
      image.width = static_cast<int>(*width + 0.5);
      image.height = static_cast<int>(*height + 0.5);
    }
  }

  int objects = 0;
  bool any_text = false;
  for (const XmlNode& object : root.children) {
    if (!same_name(object.name, "object")) continue;
    ++objects;
    const XmlNode* box = child(object, "bndbox");
    if (!box) {
      ctx.warn(file, object.line, "<object> without <bndbox>; skipped");
      continue;
    }
    const auto xmin = parse_double(child_text(*box, "xmin"));
    const auto ymin = parse_double(child_text(*box, "ymin"));
    const auto xmax = parse_double(child_text(*box, "xmax"));
    const auto ymax = parse_double(child_text(*box, "ymax"));
    if (!xmin || !ymin || !xmax || !ymax) {
      ctx.warn(file, box->line, "<bndbox> needs numeric xmin, ymin, xmax and ymax; object skipped");
      continue;
    }
    if (*xmax <= *xmin || *ymax <= *ymin) {
      ctx.warn(file, box->line, "empty box (xmax <= xmin or ymax <= ymin); object skipped");
      continue;
    }
    GroundTruthPlate plate;
    plate.x = static_cast<float>(*xmin);
    plate.y = static_cast<float>(*ymin);
    plate.w = static_cast<float>(*xmax - *xmin);
    plate.h = static_cast<float>(*ymax - *ymin);
    const XmlNode* text = child(object, "text");
    if (!text) text = child(object, "plate");
    if (text) plate.text = normalize_plate_text(text->text);
    any_text = any_text || !plate.text.empty();
    image.plates.push_back(std::move(plate));
  }
  if (objects > 0 && image.plates.empty()) {
    ctx.warn(file, root.line, "no usable <object>; image skipped");
    return;
  }
  if (!any_text && image.plates.size() == 1) {
    image.plates[0].text = plate_text_from_stem(image_path->stem().string());
  }
  ctx.add(std::move(image), file, filename_line);
}

}  // namespace

void load_voc(const std::vector<fs::path>& files, LoadContext& ctx) {
  ImageFolders folders;
  for (const fs::path& file : files) load_voc_file(file, folders, ctx);
}

}  // namespace vigil::dataset_detail
