#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "track/track_internal.hpp"
#include "vigil/tracker.hpp"

namespace vigil {

namespace track {

float text_similarity(const std::string& a, const std::string& b) {
  if (a.empty() && b.empty()) return 1.0f;
  return 1.0f - static_cast<float>(edit_distance(a, b)) / static_cast<float>(std::max(a.size(), b.size()));
}

}  // namespace track

namespace {

// A read with no confidence still counts, a little.
constexpr double kMinWeight = 1e-3;
// Single-character substitutions tried at the least certain positions of each length's voted text.
constexpr int kVariantPositions = 3;
// Rank multipliers: a text that fits a format, one that fits the preferred country's. They break
// near-ties only: a fitting text never beats one with more than twice its vote share.
constexpr double kFitsPrior = 1.5;
constexpr double kPreferredPrior = 2.0;

struct LengthGroup {
  double weight = 0.0;  // summed read confidences
  int reads = 0;
  std::vector<std::array<double, 256>> votes;  // per position, per character: summed char confidences
};

double weight_of(float confidence) {
  if (!std::isfinite(confidence)) return kMinWeight;
  return std::clamp(static_cast<double>(confidence), kMinWeight, 1.0);
}

std::size_t symbol(char c) { return static_cast<unsigned char>(c); }

struct Scored {
  std::string text;
  double share = 0.0;  // reported confidence: the weakest position's share
  double joint = 0.0;  // the product of position shares (tie-break)
  double rank = 0.0;   // share times the format prior
  std::vector<float> chars;
  const PlateFormat* format = nullptr;
};

}  // namespace

Decoded vote_reads(const std::vector<Plate>& reads, const FormatSet& formats,
                   const std::string& preferred_country, int top_n) {
  std::map<std::size_t, LengthGroup> groups;
  std::vector<std::string> raw_texts;
  for (const Plate& read : reads) {
    std::string text = normalize_plate(read.text);
    if (text.empty()) continue;
    const double w = weight_of(read.confidence);
    LengthGroup& g = groups[text.size()];
    if (g.votes.empty()) g.votes.assign(text.size(), std::array<double, 256>{});
    g.weight += w;
    ++g.reads;
    // Per-character confidences only line up with the text when normalising changed nothing but case.
    const bool aligned = read.char_confidences.size() == text.size();
    for (std::size_t i = 0; i < text.size(); ++i)
      g.votes[i][symbol(text[i])] += aligned ? weight_of(read.char_confidences[i]) : w;
    raw_texts.push_back(std::move(text));
  }
  if (groups.empty()) return {};
  const double read_count = static_cast<double>(raw_texts.size());

  std::vector<std::string> texts;
  std::unordered_set<std::string> seen;
  const auto add = [&](const std::string& text) {
    if (seen.insert(text).second) texts.push_back(text);
  };

  // Heaviest length first, so that on a full tie its voted text comes first.
  std::vector<const LengthGroup*> by_weight;
  for (const auto& [length, g] : groups) by_weight.push_back(&g);
  std::stable_sort(by_weight.begin(), by_weight.end(),
                   [](const LengthGroup* a, const LengthGroup* b) { return a->weight > b->weight; });
  for (const LengthGroup* g : by_weight) {
    const std::size_t length = g->votes.size();
    std::string voted(length, ' ');
    std::vector<std::pair<double, std::size_t>> margins;  // (second / best, position)
    std::string second(length, ' ');
    for (std::size_t i = 0; i < length; ++i) {
      const auto& v = g->votes[i];
      std::size_t best = 0, next = 0;
      for (std::size_t c = 1; c < v.size(); ++c) {
        if (v[c] > v[best]) {
          next = best;
          best = c;
        } else if (v[c] > v[next] || next == best) {
          next = c;
        }
      }
      voted[i] = static_cast<char>(best);
      if (next != best && v[next] > 0.0) {
        second[i] = static_cast<char>(next);
        margins.emplace_back(v[next] / v[best], i);
      }
    }
    add(voted);
    std::stable_sort(margins.begin(), margins.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    if (margins.size() > kVariantPositions) margins.resize(kVariantPositions);
    for (const auto& [ratio, i] : margins) {
      std::string variant = voted;
      variant[i] = second[i];
      add(variant);
    }
    if (margins.size() >= 2) {
      std::string variant = voted;
      variant[margins[0].second] = second[margins[0].second];
      variant[margins[1].second] = second[margins[1].second];
      add(variant);
    }
  }
  for (const std::string& text : raw_texts) add(text);

  std::vector<Scored> scored;
  scored.reserve(texts.size());
  for (const std::string& text : texts) {
    const LengthGroup& g = groups.at(text.size());
    Scored s;
    s.text = text;
    // Dividing by all reads, not those of this length, makes reads of another length count against it
    // just as in the length vote.
    double weakest = 1.0;
    s.joint = 1.0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const double share = g.votes[i][symbol(text[i])] / read_count;
      weakest = std::min(weakest, share);
      s.joint *= share;
      s.chars.push_back(static_cast<float>(share));
    }
    s.share = weakest;
    if (s.share <= 0.0) continue;
    s.format = formats.likeliest(text, preferred_country);
    s.rank = s.share;
    if (s.format)
      s.rank *= (!preferred_country.empty() && s.format->country == preferred_country) ? kPreferredPrior
                                                                                       : kFitsPrior;
    scored.push_back(std::move(s));
  }
  std::stable_sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    if (a.rank != b.rank) return a.rank > b.rank;
    if (a.share != b.share) return a.share > b.share;
    return a.joint > b.joint;
  });
  if (scored.empty()) return {};
  scored.resize(std::min<std::size_t>(scored.size(), static_cast<std::size_t>(std::max(top_n, 1))));

  Decoded out;
  for (const Scored& s : scored) {
    Candidate c;
    c.text = s.text;
    c.confidence = static_cast<float>(std::clamp(s.share, 0.0, 1.0));
    if (s.format) {
      c.country = s.format->country;
      c.format = s.format->name;
    }
    out.candidates.push_back(std::move(c));
  }
  const Candidate& top = out.candidates.front();
  out.text = top.text;
  out.confidence = top.confidence;
  out.country = top.country;
  out.format = top.format;
  out.fits_format = !top.country.empty();
  out.char_confidences = scored.front().chars;
  return out;
}

}  // namespace vigil
