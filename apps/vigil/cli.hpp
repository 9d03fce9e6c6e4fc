// Shared pieces of the vigil subcommands: recognizer flags, image input handling, terminal progress.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>

#include "vigil/recognizer.hpp"

namespace vigil::cli {

// Flags every subcommand that runs the recognizer shares.
struct RecognizerFlags {
  std::string models_dir, formats_file, country, reader = "neural", profile = "default";
  std::string region = "eu", countries;  // --region, --countries
  int top = 5, threads = 0, input_size = 0;
  float detect_threshold = -1.0f;
  float weak_threshold = -1.0f;
  float country_weight = -1.0f;  // < 0: the library's default
  std::string skip;  // --skip: comma-separated pass names
  int smallest_plate = 0;
  void add_to(CLI::App& app);
  Result<RecognizerOptions> to_options() const;
  Profile profile_value() const { return profile == "edge" ? Profile::kEdge : Profile::kDefault; }
};

// A decoded input image, or why it could not be used.
struct LoadedImage {
  cv::Mat image;
  std::string error;  // "" when image is usable
};

// Reads and decodes one image file (vigil::load_image_file: checked before reading and decoding).
LoadedImage load_image(const std::string& path, std::size_t max_pixels);

// Expands files, directories (recursively, image extensions only, sorted) and "-" (paths on stdin).
// Paths that do not exist, and folders holding no image, are kept, so the caller reports them in order.
std::vector<std::string> expand_inputs(const std::vector<std::string>& args);

bool is_image_path(const std::string& path);

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  Progress(std::size_t total, std::string unit);
  void tick(std::size_t done);
  void finish();

 private:
  std::size_t total_;
  std::string unit_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

double median(std::vector<double> v);
double percentile(std::vector<double> v, double p);

// Each subcommand adds itself to the app; its callback stores the exit status.
void register_read(CLI::App& app, int& exit_code);
void register_bench(CLI::App& app, int& exit_code);
void register_watch(CLI::App& app, int& exit_code);
void register_serve(CLI::App& app, int& exit_code);

}  // namespace vigil::cli
