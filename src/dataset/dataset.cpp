#include "vigil/dataset.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <fstream>
#include <system_error>

#include "dataset/dataset_internal.hpp"

namespace vigil {
namespace dataset_detail {

void LoadContext::warn(const fs::path& file, int line, const std::string& problem) {
  warnings.push_back(file.string() + ":" + std::to_string(line) + ": " + problem);
}

void LoadContext::add(DatasetImage image, const fs::path& file, int line) {
  auto [it, inserted] = index.emplace(image.path, images.size());
  if (!inserted) {
    warn(file, line, "image " + image.path + " is already annotated elsewhere; this annotation is ignored");
    return;
  }
  images.push_back(std::move(image));
}

std::vector<Line> split_lines(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<Line> lines;
  int number = 1;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back({number++, text.substr(start, i - start)});
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back({number, text.substr(start)});
  return lines;
}

std::optional<std::string> read_text_file(const fs::path& file, LoadContext& ctx, std::uintmax_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) {
    ctx.warn(file, 1, "cannot read: " + ec.message());
    return std::nullopt;
  }
  if (size > max_bytes) {
    ctx.warn(file, 1, "skipped: " + std::to_string(size) + " bytes is too large for an annotation file");
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  std::string content(static_cast<std::size_t>(size), '\0');
  if (!in || !in.read(content.data(), static_cast<std::streamsize>(size))) {
    ctx.warn(file, 1, "cannot read the file");
    return std::nullopt;
  }
  return content;
}

std::string read_file_head(const fs::path& file, std::size_t max_bytes) {
  std::ifstream in(file, std::ios::binary);
  std::string head(max_bytes, '\0');
  in.read(head.data(), static_cast<std::streamsize>(max_bytes));
  head.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return head;
}

std::string normalize_plate_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '-' || c == '.' || c == '\r' || c == '\n') continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string plate_text_from_stem(std::string_view stem) {
  std::string text = normalize_plate_text(stem);
  if (text.size() < 4 || text.size() > 10) return "";
  bool has_digit = false, has_letter = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      has_digit = true;
    } else if (c >= 'A' && c <= 'Z') {
      has_letter = true;
    } else {
      return "";
    }
  }
  return has_digit && has_letter ? text : "";
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<double> parse_double(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<long long> parse_int(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  long long value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

namespace {

constexpr std::array<const char*, 8> kImageExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",
                                                         ".webp", ".tif",  ".tiff", ".jfif"};

}  // namespace

bool has_image_extension(const fs::path& file) {
  const std::string ext = to_lower(file.extension().string());
  return std::find(kImageExtensions.begin(), kImageExtensions.end(), ext) != kImageExtensions.end();
}

bool file_exists(const fs::path& file) {
  std::error_code ec;
  return fs::is_regular_file(file, ec);
}

std::optional<fs::path> find_image_by_stem(const fs::path& dir, const std::string& stem) {
  for (const char* ext : kImageExtensions) {
    std::string upper(ext);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (const std::string& e : {std::string(ext), upper}) {
      fs::path candidate = dir / (stem + e);
      if (file_exists(candidate)) return candidate;
    }
  }
  return std::nullopt;
}

std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

bool is_yolo_line(std::string_view line) {
  const auto tokens = split_whitespace(line);
  if (tokens.size() != 5) return false;
  const auto cls = parse_int(tokens[0]);
  if (!cls || *cls < 0) return false;
  for (std::size_t i = 1; i < 5; ++i) {
    const auto v = parse_double(tokens[i]);
    if (!v || *v < -0.01 || *v > 1.01) return false;
  }
  return true;
}

bool is_openalpr_line(std::string_view line) {
  const std::size_t tab = line.find('\t');
  if (tab == std::string_view::npos) return false;
  return has_image_extension(fs::path(std::string(trim(line.substr(0, tab)))));
}

TxtKind classify_txt(std::string_view head) {
  bool any = false;
  for (const Line& line : split_lines(head)) {
    if (trim(line.text).empty()) continue;
    any = true;
    if (is_yolo_line(line.text)) return TxtKind::kYolo;
    if (is_openalpr_line(line.text)) return TxtKind::kOpenAlpr;
  }
  return any ? TxtKind::kUnknown : TxtKind::kEmpty;
}

bool looks_like_voc(std::string_view head) {
  for (std::size_t pos = head.find("<annotation"); pos != std::string_view::npos;
       pos = head.find("<annotation", pos + 1)) {
    const std::size_t after = pos + 11;
    if (after >= head.size()) return false;
    const char c = head[after];
    if (c == '>' || c == '/' || std::isspace(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

}  // namespace dataset_detail

namespace {

namespace fs = std::filesystem;
using namespace dataset_detail;

constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

// Annotation files found under the dataset path, already sorted into their likely format.
struct Candidates {
  std::vector<fs::path> voc, yolo, openalpr, csv, empty_txt;
  std::size_t csv_images = 0;  // a CSV file counts for the images it annotates, not as one
};

void classify(const fs::path& file, Candidates& c) {
  const std::string ext = to_lower(file.extension().string());
  if (ext != ".xml" && ext != ".txt" && ext != ".csv") return;
  const std::string head = read_file_head(file);
  if (ext == ".xml") {
    if (looks_like_voc(head)) c.voc.push_back(file);
  } else if (ext == ".csv") {
    if (const std::size_t images = count_csv_images(head); images > 0) {
      c.csv.push_back(file);
      c.csv_images += images;
    }
  } else {
    switch (classify_txt(head)) {
      case TxtKind::kYolo:
        c.yolo.push_back(file);
        break;
      case TxtKind::kOpenAlpr:
        c.openalpr.push_back(file);
        break;
      case TxtKind::kEmpty:
        c.empty_txt.push_back(file);
        break;
      case TxtKind::kUnknown:
        break;
    }
  }
}

// Walks a folder recursively; returns an error message when the walk itself fails.
std::optional<std::string> scan(const fs::path& root, Candidates& c) {
  // Following links lets users point a dataset at symlinked image folders; the depth cap stops loops.
  constexpr int kMaxDepth = 24;
  std::error_code ec;
  fs::recursive_directory_iterator it(
      root, fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied,
      ec);
  if (ec) return ec.message();
  std::vector<fs::path> files;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return ec.message();
    if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) files.push_back(it->path());
  }
  if (ec) return ec.message();
  // Directory order is unspecified; sorting keeps warnings and duplicate resolution reproducible.
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) classify(f, c);
  return std::nullopt;
}

const char* looked_for(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::kVoc:
      return "Pascal VOC .xml";
    case DatasetFormat::kYolo:
      return "YOLO labels/*.txt";
    case DatasetFormat::kOpenAlpr:
      return "OpenALPR NAME.txt";
    case DatasetFormat::kCsv:
      return "CSV";
    case DatasetFormat::kAuto:
      break;
  }
  return "Pascal VOC .xml, YOLO labels/*.txt, OpenALPR NAME.txt, CSV";
}

DatasetFormat choose_format(const Candidates& c) {
  // The format annotating the most images wins; ties go to the earlier one, so a VOC folder with the
  // CSV xml_to_csv derived from it stays VOC.
  const std::array<std::pair<DatasetFormat, std::size_t>, 4> counts = {{
      {DatasetFormat::kVoc, c.voc.size()},
      {DatasetFormat::kYolo, c.yolo.size()},
      {DatasetFormat::kOpenAlpr, c.openalpr.size()},
      {DatasetFormat::kCsv, c.csv_images},
  }};
  DatasetFormat best = DatasetFormat::kAuto;
  std::size_t best_count = 0;
  for (const auto& [format, count] : counts) {
    if (count > best_count) {
      best = format;
      best_count = count;
    }
  }
  return best;
}

bool has_candidates(const Candidates& c, DatasetFormat format) {
  switch (format) {
    case DatasetFormat::kVoc:
      return !c.voc.empty();
    case DatasetFormat::kYolo:
      return !c.yolo.empty();
    case DatasetFormat::kOpenAlpr:
      return !c.openalpr.empty();
    case DatasetFormat::kCsv:
      return !c.csv.empty();
    case DatasetFormat::kAuto:
      break;
  }
  return false;
}

void load_format(DatasetFormat format, Candidates& c, LoadContext& ctx) {
  auto with_empty = [&c](std::vector<fs::path> files) {
    files.insert(files.end(), c.empty_txt.begin(), c.empty_txt.end());
    std::sort(files.begin(), files.end());
    return files;
  };
  switch (format) {
    case DatasetFormat::kVoc:
      load_voc(c.voc, ctx);
      break;
    case DatasetFormat::kYolo:
      load_yolo(with_empty(c.yolo), ctx);
      break;
    case DatasetFormat::kOpenAlpr:
      load_openalpr(with_empty(c.openalpr), ctx);
      break;
    case DatasetFormat::kCsv:
      load_csv(c.csv, ctx);
      break;
    case DatasetFormat::kAuto:
      break;
  }
}

Result<Dataset> load_dataset_unchecked(const std::string& path, const DatasetOptions& options) {
  const std::string prefix = "dataset " + path + ": ";
  if (!(options.test_fraction >= 0.0 && options.test_fraction <= 1.0)) {
    return Error{prefix + "test_fraction must be within 0..1 (got " + std::to_string(options.test_fraction) +
                 ")"};
  }
  const fs::path root(path);
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (path.empty() || !fs::exists(status)) return Error{prefix + "no such file or directory"};

  Candidates candidates;
  if (fs::is_directory(status)) {
    if (auto failure = scan(root, candidates)) return Error{prefix + "cannot read the folder: " + *failure};
  } else {
    classify(root, candidates);
    // A file named explicitly is taken as an annotation file even when its content is not recognised,
    // so the user gets the reader's warning instead of "nothing found".
    const bool recognised = !candidates.voc.empty() || !candidates.yolo.empty() ||
                            !candidates.openalpr.empty() || !candidates.csv.empty();
    const std::string ext = to_lower(root.extension().string());
    if (!recognised && ext == ".xml") candidates.voc.push_back(root);
    if (!recognised && ext == ".csv") candidates.csv.push_back(root);
    if (!recognised && ext == ".txt" && options.format == DatasetFormat::kYolo)
      candidates.yolo.push_back(root);
    if (!recognised && ext == ".txt" && options.format == DatasetFormat::kOpenAlpr) {
      candidates.openalpr.push_back(root);
    }
    if (!candidates.csv.empty()) candidates.csv_images = std::max<std::size_t>(candidates.csv_images, 1);
  }

  DatasetFormat format = options.format;
  if (format == DatasetFormat::kAuto) format = choose_format(candidates);
  if (format == DatasetFormat::kAuto || !has_candidates(candidates, format)) {
    return Error{prefix + "no annotations found (looked for " + looked_for(options.format) + ")"};
  }

  LoadContext ctx;
  load_format(format, candidates, ctx);
  if (ctx.images.empty()) {
    std::string message = prefix + "no usable annotations in the " + to_string(format) + " files found";
    if (!ctx.warnings.empty()) {
      message +=
          " (" + std::to_string(ctx.warnings.size()) + " problems, first: " + ctx.warnings.front() + ")";
    }
    return Error{message};
  }

  Dataset dataset;
  dataset.root = path;
  dataset.format = format;
  dataset.warnings = std::move(ctx.warnings);
  for (DatasetImage& image : ctx.images) {
    if (options.split != Split::kAll) {
      const bool test = image.part.empty() ? in_test_split(fs::path(image.path).filename().string(),
                                                           options.test_fraction, options.seed)
                                           : image.part == "test";
      if (test != (options.split == Split::kTest)) continue;
    }
    dataset.images.push_back(std::move(image));
  }
  std::sort(dataset.images.begin(), dataset.images.end(),
            [](const DatasetImage& a, const DatasetImage& b) { return a.path < b.path; });
  return dataset;
}

}  // namespace

const char* to_string(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::kAuto:
      return "auto";
    case DatasetFormat::kVoc:
      return "voc";
    case DatasetFormat::kYolo:
      return "yolo";
    case DatasetFormat::kOpenAlpr:
      return "openalpr";
    case DatasetFormat::kCsv:
      return "csv";
  }
  return "unknown";
}

std::uint64_t split_hash(std::uint64_t seed, const std::string& file_name) {
  std::uint64_t hash = kFnvOffset;
  const std::string key = std::to_string(seed) + ":" + file_name;
  for (unsigned char byte : key) {
    hash ^= byte;
    hash *= kFnvPrime;
  }
  return hash;
}

bool in_test_split(const std::string& file_name, double test_fraction, std::uint64_t seed) {
  return static_cast<double>(split_hash(seed, file_name) % 10000) < test_fraction * 10000.0;
}

Result<Dataset> load_dataset(const std::string& path, const DatasetOptions& options) {
  // Filesystem and allocation failures must not escape the library as exceptions.
  try {
    return load_dataset_unchecked(path, options);
  } catch (const std::exception& e) {
    return Error{"dataset " + path + ": " + e.what()};
  }
}

}  // namespace vigil
