// Annotated datasets in the formats users have, for `vigil bench`:
// Pascal VOC XML (labelImg), YOLO txt, the OpenALPR benchmark txt format, the "xml_to_csv" CSV, and plate
// crops: a labels.csv with file,text[,country,lines,split,flags] columns and no box, each image one tight
// plate (the plate is the whole picture). A crop set's own split column decides its parts ("train", and
// "dev" or "test" for the test part), and its test part keeps only the clean rows: no flags, no '?'.
// Letters with diacritics are read as the plain letter (Ä -> A, Š -> S).
//
//   auto ds = vigil::load_dataset("/data/openalpr-us", {.split = vigil::Split::kTest});
//   for (const auto& img : ds->images) { ... img.path, img.plates[i].box, img.plates[i].text ... }
//
// The train/test split is the same as the Python training tools' (training/vigil_data.py): an image is
// in the test part when fnv1a64("<seed>:<file name>") % 10000 < test_fraction * 10000.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/common.hpp"

namespace vigil {

enum class DatasetFormat { kAuto, kVoc, kYolo, kOpenAlpr, kCsv };
enum class Split { kAll, kTrain, kTest };

struct DatasetOptions {
  DatasetFormat format = DatasetFormat::kAuto;  // kAuto: detected from the files found
  Split split = Split::kAll;                    // which part of the seeded split to keep
  double test_fraction = 0.2;                   // share of images in the test part
  std::uint64_t seed = 0;                       // split seed
};

struct GroundTruthPlate {
  float x = 0, y = 0, w = 0, h = 0;  // box in pixels of the image; if the image's boxes_normalized is set,
                                     // in 0..1 units of width/height instead (YOLO), to be scaled on load
  std::string text;                  // normalised plate text, "" when the dataset has none
  std::string country;               // ISO code, lower case ("gb" for the UK), "" when not labelled
  int lines = 0;                     // 1 or 2 when labelled, else 0
  bool whole_image = false;          // a plate crop: the plate is the picture, whatever box is found
};

struct DatasetImage {
  std::string path;                  // absolute or as given, ready for cv::imread
  int width = 0, height = 0;         // from the annotation, 0 when unknown
  bool boxes_normalized = false;     // true for YOLO labels and plate crops
  std::string part;                  // "train" or "test" when the dataset has its own split, else ""
  std::vector<GroundTruthPlate> plates;
};

struct Dataset {
  std::string root;                  // the path it was loaded from
  DatasetFormat format = DatasetFormat::kAuto;  // the format found
  std::vector<DatasetImage> images;  // sorted by path
  std::vector<std::string> warnings; // bad annotation files etc.: "<file>:<line>: <problem>"
};

const char* to_string(DatasetFormat format);
// fnv1a64 over the bytes of "<seed>:<file_name>"; the split rule above uses it.
std::uint64_t split_hash(std::uint64_t seed, const std::string& file_name);
bool in_test_split(const std::string& file_name, double test_fraction, std::uint64_t seed);

// Loads a dataset folder (searched recursively) or a single CSV/annotation file. Fails when nothing
// usable is found, with a message saying which formats were looked for.
Result<Dataset> load_dataset(const std::string& path, const DatasetOptions& options = {});

}  // namespace vigil
