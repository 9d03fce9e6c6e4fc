// The line-based formats: YOLO labels, the OpenALPR benchmark files and the xml_to_csv CSV.
#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>

#include "dataset/dataset_internal.hpp"

namespace vigil::dataset_detail {
namespace {

bool has_content(const std::vector<Line>& lines) {
  return std::any_of(lines.begin(), lines.end(), [](const Line& l) { return !trim(l.text).empty(); });
}

// ---- YOLO ----

// labels/<split>/NAME.txt pairs with images/<split>/NAME.*: the last "labels" folder of the path is
// swapped for the images folder, as the YOLO tools do; a label next to its image works too.
std::vector<fs::path> yolo_image_dirs(const fs::path& label) {
  std::vector<fs::path> dirs;
  const fs::path dir = label.parent_path();
  std::vector<fs::path> parts(dir.begin(), dir.end());
  for (std::size_t i = parts.size(); i-- > 0;) {
    if (to_lower(parts[i].string()) != "labels") continue;
    for (const char* images : {"images", "Images", "JPEGImages"}) {
      fs::path candidate;
      for (std::size_t j = 0; j < parts.size(); ++j) candidate /= (j == i ? fs::path(images) : parts[j]);
      dirs.push_back(candidate);
    }
    break;
  }
  dirs.push_back(dir);
  return dirs;
}

// Parses "class cx cy w h" into a top-left box in 0..1, or returns the problem.
std::optional<std::string> parse_yolo_line(std::string_view line, GroundTruthPlate& plate) {
  // Exporters round to a few decimals, so values a hair outside 0..1 are clamped rather than refused.
  constexpr double kSlack = 0.01;
  const auto tokens = split_whitespace(line);
  if (tokens.size() != 5) {
    return "expected 'class cx cy w h', got " + std::to_string(tokens.size()) + " fields";
  }
  const auto cls = parse_int(tokens[0]);
  if (!cls || *cls < 0) return "class '" + std::string(tokens[0]) + "' is not a non-negative integer";
  std::array<double, 4> v{};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto value = parse_double(tokens[i + 1]);
    if (!value) return "'" + std::string(tokens[i + 1]) + "' is not a number";
    if (*value < -kSlack || *value > 1 + kSlack) {
      return "'" + std::string(tokens[i + 1]) + "' is outside 0..1 (YOLO boxes are normalised)";
    }
    v[i] = *value;
  }
  const double x0 = std::max(0.0, v[0] - v[2] / 2), y0 = std::max(0.0, v[1] - v[3] / 2);
  const double x1 = std::min(1.0, v[0] + v[2] / 2), y1 = std::min(1.0, v[1] + v[3] / 2);
  if (v[2] <= 0 || v[3] <= 0 || x1 <= x0 || y1 <= y0) return std::string("empty box");
  plate.x = static_cast<float>(x0);
  plate.y = static_cast<float>(y0);
  plate.w = static_cast<float>(x1 - x0);
  plate.h = static_cast<float>(y1 - y0);
  return std::nullopt;
}

void load_yolo_file(const fs::path& file, LoadContext& ctx) {
  const std::optional<std::string> content = read_text_file(file, ctx);
  if (!content) return;
  const std::vector<Line> lines = split_lines(*content);
  std::optional<fs::path> image_path;
  for (const fs::path& dir : yolo_image_dirs(file)) {
    if ((image_path = find_image_by_stem(dir, file.stem().string()))) break;
  }
  if (!image_path) {
    // An empty .txt without an image is not a label file at all (notes, placeholders): no warning.
    if (has_content(lines))
      ctx.warn(file, 1, "no image " + file.stem().string() + ".* for this label file; skipped");
    return;
  }
  DatasetImage image;
  image.path = image_path->lexically_normal().string();
  image.boxes_normalized = true;
  for (const Line& line : lines) {
    if (trim(line.text).empty()) continue;
    GroundTruthPlate plate;
    if (auto problem = parse_yolo_line(line.text, plate)) {
      ctx.warn(file, line.number, *problem + "; line skipped");
      continue;
    }
    image.plates.push_back(std::move(plate));
  }
  // A label file whose every line was bad says nothing reliable about the image; an empty one means
  // "no plates" and keeps the image as a negative.
  if (image.plates.empty() && has_content(lines)) return;
  ctx.add(std::move(image), file, 1);
}

// ---- OpenALPR ----

// Splits "NAME.jpg<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE"; hand-edited files sometimes use spaces instead.
std::vector<std::string_view> openalpr_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  if (line.find('\t') == std::string_view::npos) return split_whitespace(line);
  std::size_t start = 0;
  for (;;) {
    const std::size_t tab = line.find('\t', start);
    fields.push_back(trim(line.substr(start, tab - start)));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  while (!fields.empty() && fields.back().empty()) fields.pop_back();
  return fields;
}

std::optional<fs::path> find_openalpr_image(const fs::path& file, const std::string& name) {
  const fs::path dir = file.parent_path();
  if (!name.empty()) {
    const fs::path given = dir / fs::path(name).filename();
    if (file_exists(given)) return given;
    // The benchmark has entries naming NAME.png for a NAME.jpg on disk; the stem still identifies it.
    if (auto found = find_image_by_stem(dir, fs::path(name).stem().string())) return found;
  }
  return find_image_by_stem(dir, file.stem().string());
}

void load_openalpr_file(const fs::path& file, LoadContext& ctx) {
  const std::optional<std::string> content = read_text_file(file, ctx);
  if (!content) return;
  const std::vector<Line> lines = split_lines(*content);
  std::map<std::string, std::pair<DatasetImage, int>> images;  // by path, with the first line naming it
  for (const Line& line : lines) {
    if (trim(line.text).empty()) continue;
    const auto fields = openalpr_fields(line.text);
    if (fields.size() < 5) {
      ctx.warn(file, line.number,
               "expected 'NAME.jpg<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE', got " + std::to_string(fields.size()) +
                   " fields; line skipped");
      continue;
    }
    std::array<double, 4> v{};
    bool numeric = true;
    for (std::size_t i = 0; i < 4; ++i) {
      const auto value = parse_double(fields[i + 1]);
      numeric = numeric && value.has_value();
      if (value) v[i] = *value;
    }
    if (!numeric) {
      ctx.warn(file, line.number, "x, y, w and h must be numbers; line skipped");
      continue;
    }
    if (v[2] <= 0 || v[3] <= 0) {
      ctx.warn(file, line.number, "empty box (w or h <= 0); line skipped");
      continue;
    }
    const std::string name(fields[0]);
    const std::optional<fs::path> image_path = find_openalpr_image(file, name);
    if (!image_path) {
      ctx.warn(file, line.number, "image '" + name + "' not found; line skipped");
      continue;
    }
    GroundTruthPlate plate;
    plate.x = static_cast<float>(v[0]);
    plate.y = static_cast<float>(v[1]);
    plate.w = static_cast<float>(v[2]);
    plate.h = static_cast<float>(v[3]);
    if (fields.size() > 5) plate.text = normalize_plate_text(fields[5]);
    const std::string path = image_path->lexically_normal().string();
    auto [it, inserted] = images.try_emplace(path);
    if (inserted) {
      it->second.first.path = path;
      it->second.second = line.number;
    }
    it->second.first.plates.push_back(std::move(plate));
  }
  if (!has_content(lines)) {
    // An empty NAME.txt beside NAME.jpg annotates an image without plates.
    if (auto image_path = find_image_by_stem(file.parent_path(), file.stem().string())) {
      DatasetImage image;
      image.path = image_path->lexically_normal().string();
      ctx.add(std::move(image), file, 1);
    }
    return;
  }
  for (auto& [path, entry] : images) ctx.add(std::move(entry.first), file, entry.second);
}

// ---- CSV ----

// One CSV record; quoted fields may hold the separator and doubled quotes.
std::vector<std::string> csv_fields(std::string_view line, char separator) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == separator) {
      fields.emplace_back();
    } else {
      fields.back().push_back(c);
    }
  }
  for (std::string& f : fields) f = std::string(trim(f));
  return fields;
}

char csv_separator(std::string_view header) {
  return header.find(',') == std::string_view::npos && header.find(';') != std::string_view::npos ? ';' : ',';
}

// Column positions; -1 when absent.
struct CsvColumns {
  int filename = -1, width = -1, height = -1, xmin = -1, ymin = -1, xmax = -1, ymax = -1, text = -1;
  int country = -1, lines = -1, split = -1, flags = -1;  // plate-crop sets
  bool complete() const { return filename >= 0 && xmin >= 0 && ymin >= 0 && xmax >= 0 && ymax >= 0; }
  // A plate-crop set: one tight plate per image, a text and no box.
  bool crops() const { return filename >= 0 && text >= 0 && xmin < 0 && ymin < 0 && xmax < 0 && ymax < 0; }
  int needed() const { return std::max({filename, xmin, ymin, xmax, ymax}) + 1; }
};

CsvColumns csv_columns_from_header(const std::vector<std::string>& header) {
  CsvColumns c;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    const std::string name = to_lower(header[static_cast<std::size_t>(i)]);
    int* slot = nullptr;
    if (name == "filename" || name == "file" || name == "image" || name == "image_name" || name == "path") {
      slot = &c.filename;
    } else if (name == "width") {
      slot = &c.width;
    } else if (name == "height") {
      slot = &c.height;
    } else if (name == "xmin") {
      slot = &c.xmin;
    } else if (name == "ymin") {
      slot = &c.ymin;
    } else if (name == "xmax") {
      slot = &c.xmax;
    } else if (name == "ymax") {
      slot = &c.ymax;
    } else if (name == "text" || name == "plate" || name == "plate_text") {
      slot = &c.text;
    } else if (name == "country") {
      slot = &c.country;
    } else if (name == "lines") {
      slot = &c.lines;
    } else if (name == "split") {
      slot = &c.split;
    } else if (name == "flags") {
      slot = &c.flags;
    }
    if (slot && *slot < 0) *slot = i;
  }
  return c;
}

std::optional<fs::path> find_csv_image(const fs::path& csv, const std::string& filename) {
  const fs::path given(filename);
  if (given.is_absolute()) return file_exists(given) ? std::optional<fs::path>(given) : std::nullopt;
  const fs::path dir = csv.parent_path();
  for (const fs::path& candidate : {dir / given, dir / "images" / given, dir / "Images" / given}) {
    if (file_exists(candidate)) return candidate;
  }
  return std::nullopt;
}

// Letters with diacritics as the plain letter, decoded from UTF-8: U+00C0..U+017F by the tables below ('?'
// where Unicode gives no plain letter: Ø, Ł, Đ, Æ, ...). Other non-ASCII characters become '?', which marks
// a row as not clean (a Greek or Korean glyph).
std::string plain_letters(std::string_view utf8) {
  static constexpr std::string_view kLatin1 = "AAAAAA?CEEEEIIII?NOOOOO??UUUUY??";           // U+00C0..
  static constexpr std::string_view kExtendedA =                                           // U+0100..
      "AAAAAACCCCCCCCDD??EEEEEEEEEEGGGG"
      "GGGGHH??IIIIIIIII???JJKK?LLLLLL?"
      "???NNNNNN???OOOOOO??RRRRRRSSSSSS"
      "SSTTTT??UUUUUUUUUUUUWWYYYZZZZZZ?";
  std::string out;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    int cp = -1, extra = 0;
    if ((c & 0xE0) == 0xC0) cp = c & 0x1F, extra = 1;
    else if ((c & 0xF0) == 0xE0) cp = c & 0x0F, extra = 2;
    else if ((c & 0xF8) == 0xF0) cp = c & 0x07, extra = 3;
    for (int k = 0; k < extra && cp >= 0; ++k) {
      if (i + 1 >= utf8.size() || (static_cast<unsigned char>(utf8[i + 1]) & 0xC0) != 0x80) {
        cp = -1;
        break;
      }
      cp = (cp << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F);
    }
    char plain = '?';
    if (cp >= 0xC0 && cp < 0xE0) plain = kLatin1[static_cast<std::size_t>(cp - 0xC0)];
    else if (cp >= 0xE0 && cp < 0x100) plain = kLatin1[static_cast<std::size_t>(cp - 0xE0)];
    else if (cp >= 0x100 && cp < 0x180) plain = kExtendedA[static_cast<std::size_t>(cp - 0x100)];
    out.push_back(plain);
  }
  return out;
}

// Plate crops (see dataset.hpp): the plate is the whole image, a normalised box (0, 0, 1, 1).
void load_crop_rows(const fs::path& file, const CsvColumns& columns, const std::vector<Line>& lines,
                    std::vector<Line>::const_iterator data_begin, char separator, LoadContext& ctx) {
  const auto field = [](const std::vector<std::string>& f, int i) {
    return i >= 0 && i < static_cast<int>(f.size()) ? f[static_cast<std::size_t>(i)] : std::string();
  };
  for (auto it = data_begin; it != lines.end(); ++it) {
    if (trim(it->text).empty()) continue;
    const auto fields = csv_fields(it->text, separator);
    const std::string filename = field(fields, columns.filename);
    if (filename.empty()) {
      ctx.warn(file, it->number, "empty file name; row skipped");
      continue;
    }
    std::string text = normalize_plate_text(plain_letters(field(fields, columns.text)));
    const std::string part = to_lower(field(fields, columns.split));
    const bool clean = field(fields, columns.flags).empty() && !text.empty() &&
                       std::all_of(text.begin(), text.end(),
                                   [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
    DatasetImage image;
    image.part = columns.split < 0 ? "" : (part == "dev" || part == "test") ? "test" : "train";
    // The test part is what accuracy is reported on: clean rows only. Elsewhere an unclean text is kept
    // out of reading scores (no text), the plate still counts for detection.
    if (image.part == "test" && !clean) continue;
    const std::optional<fs::path> image_path = find_csv_image(file, filename);
    if (!image_path) {
      ctx.warn(file, it->number, "image '" + filename + "' not found; row skipped");
      continue;
    }
    image.path = image_path->lexically_normal().string();
    image.boxes_normalized = true;
    GroundTruthPlate plate;
    plate.w = plate.h = 1.0f;
    plate.whole_image = true;
    plate.text = clean ? text : "";
    plate.country = to_lower(field(fields, columns.country));
    if (plate.country == "uk") plate.country = "gb";
    const std::string n = field(fields, columns.lines);
    plate.lines = n == "1" ? 1 : n == "2" ? 2 : 0;
    image.plates.push_back(std::move(plate));
    ctx.add(std::move(image), file, it->number);
  }
}

void load_csv_file(const fs::path& file, LoadContext& ctx) {
  const std::optional<std::string> content = read_text_file(file, ctx);
  if (!content) return;
  const std::vector<Line> lines = split_lines(*content);
  auto first = std::find_if(lines.begin(), lines.end(), [](const Line& l) { return !trim(l.text).empty(); });
  if (first == lines.end()) {
    ctx.warn(file, 1, "empty CSV file");
    return;
  }
  const char separator = csv_separator(first->text);
  CsvColumns columns = csv_columns_from_header(csv_fields(first->text, separator));
  auto data_begin = std::next(first);
  if (columns.crops()) {
    load_crop_rows(file, columns, lines, data_begin, separator, ctx);
    return;
  }
  if (!columns.complete()) {
    // Without a header the xml_to_csv column order is assumed, if the first row fits it.
    const auto fields = csv_fields(first->text, separator);
    const bool positional = fields.size() >= 8 && parse_double(fields[4]) && parse_double(fields[5]) &&
                            parse_double(fields[6]) && parse_double(fields[7]);
    if (!positional) {
      ctx.warn(file, first->number,
               "not a CSV annotation: the header must name filename, xmin, ymin, xmax and ymax");
      return;
    }
    columns = {.filename = 0, .width = 1, .height = 2, .xmin = 4, .ymin = 5, .xmax = 6, .ymax = 7, .text = 8};
    data_begin = first;
  }

  struct Group {
    DatasetImage image;
    int line = 0;
  };
  std::map<std::string, Group> groups;  // by filename as written
  std::vector<std::string> order;
  const auto field_or_empty = [](const std::vector<std::string>& f, int i) {
    return i >= 0 && i < static_cast<int>(f.size()) ? f[static_cast<std::size_t>(i)] : std::string();
  };
  for (auto it = data_begin; it != lines.end(); ++it) {
    if (trim(it->text).empty()) continue;
    const auto fields = csv_fields(it->text, separator);
    if (static_cast<int>(fields.size()) < columns.needed()) {
      ctx.warn(file, it->number,
               "expected at least " + std::to_string(columns.needed()) + " fields, got " +
                   std::to_string(fields.size()) + "; row skipped");
      continue;
    }
    const std::string filename = field_or_empty(fields, columns.filename);
    const auto xmin = parse_double(field_or_empty(fields, columns.xmin));
    const auto ymin = parse_double(field_or_empty(fields, columns.ymin));
    const auto xmax = parse_double(field_or_empty(fields, columns.xmax));
    const auto ymax = parse_double(field_or_empty(fields, columns.ymax));
    if (filename.empty()) {
      ctx.warn(file, it->number, "empty filename; row skipped");
      continue;
    }
    if (!xmin || !ymin || !xmax || !ymax) {
      ctx.warn(file, it->number, "xmin, ymin, xmax and ymax must be numbers; row skipped");
      continue;
    }
    if (*xmax <= *xmin || *ymax <= *ymin) {
      ctx.warn(file, it->number, "empty box (xmax <= xmin or ymax <= ymin); row skipped");
      continue;
    }
    auto [group, inserted] = groups.try_emplace(filename);
    if (inserted) {
      group->second.line = it->number;
      order.push_back(filename);
      const auto width = parse_double(field_or_empty(fields, columns.width));
      const auto height = parse_double(field_or_empty(fields, columns.height));
      if (width && height && *width > 0 && *height > 0) {
        group->second.image.width = static_cast<int>(*width + 0.5);
        group->second.image.height = static_cast<int>(*height + 0.5);
      }
    }
    GroundTruthPlate plate;
    plate.x = static_cast<float>(*xmin);
    plate.y = static_cast<float>(*ymin);
    plate.w = static_cast<float>(*xmax - *xmin);
    plate.h = static_cast<float>(*ymax - *ymin);
    plate.text = normalize_plate_text(field_or_empty(fields, columns.text));
    group->second.image.plates.push_back(std::move(plate));
  }
  for (const std::string& filename : order) {
    Group& group = groups[filename];
    const std::optional<fs::path> image_path = find_csv_image(file, filename);
    if (!image_path) {
      ctx.warn(file, group.line, "image '" + filename + "' not found; its rows are skipped");
      continue;
    }
    group.image.path = image_path->lexically_normal().string();
    ctx.add(std::move(group.image), file, group.line);
  }
}

}  // namespace

std::size_t count_csv_images(std::string_view head) {
  const std::vector<Line> lines = split_lines(head);
  auto first = std::find_if(lines.begin(), lines.end(), [](const Line& l) { return !trim(l.text).empty(); });
  if (first == lines.end()) return 0;
  const char separator = csv_separator(first->text);
  const CsvColumns columns = csv_columns_from_header(csv_fields(first->text, separator));
  if (!columns.complete() && !columns.crops()) return 0;
  std::set<std::string> names;
  for (auto it = std::next(first); it != lines.end(); ++it) {
    const auto fields = csv_fields(it->text, separator);
    if (columns.filename < static_cast<int>(fields.size())) {
      names.insert(fields[static_cast<std::size_t>(columns.filename)]);
    }
  }
  names.erase("");
  return std::max<std::size_t>(names.size(), 1);
}

void load_yolo(const std::vector<fs::path>& files, LoadContext& ctx) {
  for (const fs::path& file : files) load_yolo_file(file, ctx);
}

void load_openalpr(const std::vector<fs::path>& files, LoadContext& ctx) {
  for (const fs::path& file : files) load_openalpr_file(file, ctx);
}

void load_csv(const std::vector<fs::path>& files, LoadContext& ctx) {
  for (const fs::path& file : files) load_csv_file(file, ctx);
}

}  // namespace vigil::dataset_detail
