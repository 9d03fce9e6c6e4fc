// Tiles: a large photo (a 4000x3000 camera still) shrunk whole into the network input shows a distant
// plate a few network pixels wide, too small to find. It is searched again in overlapping square tiles,
// each at the network's input size.
#include <algorithm>

#include "detect/boxes.hpp"
#include "recognize/passes.hpp"

namespace vigil::recognize {
namespace {

// Tiles are sized so a plate DetectorOptions::smallest_plate pixels wide is this many network pixels wide:
// the detector finds plates from about 12 network pixels, surely from about 24.
constexpr int kTileNetPlate = 24;
// A tile's detection overlapping a full pass's this much (IoU) is the same plate.
constexpr float kSamePlateIou = 0.5f;

int tile_side(const Proposals& p) {
  return std::max(p.input_size, p.options.smallest_plate * p.input_size / kTileNetPlate);
}

// 1280x720 video frames run one pass (tile_min_long_side); larger photos whose full pass would see the
// smallest plate too small are tiled.
bool wanted(const Proposals& p) {
  return !p.regions && p.long_side > p.options.tile_min_long_side && p.long_side > tile_side(p);
}

void run(Proposals& p) {
  const cv::Rect whole(0, 0, p.image.cols, p.image.rows);
  const int tile = tile_side(p);
  // overlapping by a quarter, so a plate cut by one tile is whole in its neighbour
  const int step = tile * 3 / 4;
  std::vector<Detection> raw;
  for (int ty = 0; ty < p.image.rows; ty += step) {
    for (int tx = 0; tx < p.image.cols; tx += step) {
      const cv::Rect r = cv::Rect(tx, ty, tile, tile) & whole;
      if (r.width >= tile / 3 && r.height >= tile / 3) {
        auto found =
            p.locator.look(p.image, r, double(p.input_size) / std::max(r.width, r.height), p.threshold);
        raw.insert(raw.end(), found.begin(), found.end());
      }
      if (tx + tile >= p.image.cols) break;
    }
    if (ty + tile >= p.image.rows) break;
  }
  // Tiles add the plates the earlier passes missed. A plate they found keeps its corners (the reader reads
  // the 1440x1080 photos better from them; refine places small plates' again); a tile's view of it only
  // lends its score.
  const std::size_t earlier = p.found.size();
  for (auto& d : raw) {
    Detection* same = nullptr;
    for (std::size_t j = 0; j < earlier && !same; ++j)
      if (box_iou(d.box, p.found[j].box) >= kSamePlateIou) same = &p.found[j];
    if (same) {
      if (d.score > same->score) {
        same->score = d.score;
        mark(same->passes, kTilesPass.name);
      }
    } else {
      mark(d.passes, kTilesPass.name);
      p.found.push_back(std::move(d));
    }
  }
}

}  // namespace

const ProposalPass kTilesPass{"tiles", wanted, run};

}  // namespace vigil::recognize
