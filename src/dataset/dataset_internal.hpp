// Internal pieces of the dataset loader shared by the per-format readers (not installed).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/dataset.hpp"

namespace vigil::dataset_detail {

namespace fs = std::filesystem;

// What the readers hand back: images keyed by their path plus the warnings they collected. Warnings use
// the form "<file>:<line>: <problem>" (line 1 for whole-file problems).
struct LoadContext {
  std::vector<DatasetImage> images;
  std::vector<std::string> warnings;
  std::map<std::string, std::size_t> index;  // image path -> position in images

  void warn(const fs::path& file, int line, const std::string& problem);
  // Adds an image found through annotation file:line; a second annotation of the same image is
  // dropped with a warning (the first one wins).
  void add(DatasetImage image, const fs::path& file, int line);
};

// One line of a text file: its 1-based number and its content without the line terminator (LF, CRLF or
// CR). A leading UTF-8 BOM is dropped from the first line.
struct Line {
  int number = 0;
  std::string_view text;
};
std::vector<Line> split_lines(std::string_view text);

// Reads a whole file; nullopt (and a warning) when it cannot be read or is larger than max_bytes.
std::optional<std::string> read_text_file(const fs::path& file, LoadContext& ctx,
                                          std::uintmax_t max_bytes = 64u << 20);
// The first max_bytes of a file, "" when it cannot be read; used to classify files cheaply.
std::string read_file_head(const fs::path& file, std::size_t max_bytes = 64u << 10);

// Upper case (ASCII), spaces, tabs, dashes and dots removed: the form plate texts are compared in.
std::string normalize_plate_text(std::string_view text);
// The text a file name stem stands for when datasets name single-plate images by their plate
// ("AP-666-TQ", "1218 ZD 25"): 4..10 of A-Z0-9 after normalisation, with a letter and a digit; else "".
std::string plate_text_from_stem(std::string_view stem);

std::string_view trim(std::string_view s);
std::vector<std::string_view> split_whitespace(std::string_view line);
std::string to_lower(std::string_view s);
// Strict numeric parses of a whole (trimmed) field; nullopt for anything else, including inf/nan.
std::optional<double> parse_double(std::string_view s);
std::optional<long long> parse_int(std::string_view s);

bool has_image_extension(const fs::path& file);
bool file_exists(const fs::path& file);
// The first of dir/stem.<ext> that exists for the common image extensions (lower and upper case).
std::optional<fs::path> find_image_by_stem(const fs::path& dir, const std::string& stem);

// Classification of a .txt file by its first meaningful line.
enum class TxtKind { kUnknown, kEmpty, kYolo, kOpenAlpr };
TxtKind classify_txt(std::string_view head);
bool is_yolo_line(std::string_view line);
bool is_openalpr_line(std::string_view line);
// For a CSV whose first line is a header naming filename and the four box corners: how many distinct
// images the rows in head name (at least 1); 0 for any other file.
std::size_t count_csv_images(std::string_view head);
// True when an .xml file's head looks like a Pascal VOC annotation.
bool looks_like_voc(std::string_view head);

// The per-format readers: each adds the images of the given annotation files to ctx.
void load_voc(const std::vector<fs::path>& files, LoadContext& ctx);
void load_yolo(const std::vector<fs::path>& files, LoadContext& ctx);
void load_openalpr(const std::vector<fs::path>& files, LoadContext& ctx);
void load_csv(const std::vector<fs::path>& files, LoadContext& ctx);

}  // namespace vigil::dataset_detail
