#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "vigil/formats.hpp"

namespace vigil {
namespace {

int symbol_bit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return 10 + (c - 'A');
  return -1;
}

}  // namespace

namespace detail {

// All expansions of all formats merged into a prefix tree of position sets. The constrained Viterbi
// for a prefix does not depend on what follows it, so expansions sharing a prefix (most of them: DE's
// letter runs, the US alternatives, PL's district letters) share its work.
struct FormatTrie {
  struct Node {
    int parent = -1;
    int depth = 0;       // characters emitted on reaching this node; the root has 0
    int first = 0;       // its first state in `chars`
    int count = 0;       // allowed characters at this position
    int min_to_end = 0;  // fewest further characters to reach a terminal node
    bool terminal = false;
    std::uint64_t mask = 0;                  // allowed characters as bits (0-9 -> 0..9, A-Z -> 10..35)
    int child_first = 0, child_count = 0;    // its children in `children`
    int format_first = 0, format_count = 0;  // formats ending here, in `formats`, file order
  };
  std::vector<Node> nodes;  // nodes[0] is the root; a parent precedes its children
  std::string chars;        // allowed character of each state, grouped by node
  std::vector<int> children;
  std::vector<int> formats;  // indices into FormatSet::formats()
};

}  // namespace detail

std::shared_ptr<const detail::FormatTrie> FormatSet::build_trie(const std::vector<PlateFormat>& formats) {
  auto trie = std::make_shared<detail::FormatTrie>();
  trie->nodes.emplace_back();
  std::vector<std::string> sets(1);
  std::map<std::pair<int, std::string>, int> children;
  std::vector<std::vector<int>> ending(1);
  for (std::size_t f = 0; f < formats.size(); ++f) {
    for (const auto& expansion : formats[f].expansions) {
      int node = 0;
      for (const auto& set : expansion) {
        const auto [it, added] = children.try_emplace({node, set}, static_cast<int>(trie->nodes.size()));
        if (added) {
          detail::FormatTrie::Node child;
          child.parent = node;
          child.depth = trie->nodes[node].depth + 1;
          trie->nodes.push_back(child);
          sets.push_back(set);
          ending.emplace_back();
        }
        node = it->second;
      }
      trie->nodes[node].terminal = true;
      if (ending[node].empty() || ending[node].back() != static_cast<int>(f)) ending[node].push_back(int(f));
    }
  }
  constexpr int kUnreachable = std::numeric_limits<int>::max() / 2;
  for (std::size_t n = 0; n < trie->nodes.size(); ++n) {
    auto& node = trie->nodes[n];
    node.first = static_cast<int>(trie->chars.size());
    node.count = static_cast<int>(sets[n].size());
    trie->chars += sets[n];
    node.min_to_end = node.terminal ? 0 : kUnreachable;
    for (const char c : sets[n]) node.mask |= std::uint64_t{1} << symbol_bit(c);
    node.format_first = static_cast<int>(trie->formats.size());
    node.format_count = static_cast<int>(ending[n].size());
    trie->formats.insert(trie->formats.end(), ending[n].begin(), ending[n].end());
    // Backpointers store a state's index within its node in a byte, with 254 and 255 reserved.
    assert(node.count < 254);
  }
  std::vector<std::vector<int>> kids(trie->nodes.size());
  for (std::size_t n = 1; n < trie->nodes.size(); ++n) kids[trie->nodes[n].parent].push_back(int(n));
  for (std::size_t n = 0; n < trie->nodes.size(); ++n) {
    trie->nodes[n].child_first = static_cast<int>(trie->children.size());
    trie->nodes[n].child_count = static_cast<int>(kids[n].size());
    trie->children.insert(trie->children.end(), kids[n].begin(), kids[n].end());
  }
  for (std::size_t n = trie->nodes.size(); n-- > 1;) {
    auto& parent = trie->nodes[trie->nodes[n].parent];
    parent.min_to_end = std::min(parent.min_to_end, trie->nodes[n].min_to_end + 1);
  }
  return trie;
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kNegInfD = -std::numeric_limits<double>::infinity();
constexpr std::uint8_t kStay = 255;       // backpointer: same state at the previous step
constexpr std::uint8_t kFromBlank = 254;  // backpointer: the parent node's blank state
constexpr int kVariantPositions = 3;      // least-confident greedy characters given a substitute

bool well_formed(const CtcOutput& out) {
  const std::size_t classes = out.alphabet.size() + 1;
  return out.steps >= 0 && out.probs.size() == static_cast<std::size_t>(out.steps) * classes;
}

std::array<int, 256> class_table(const std::string& alphabet) {
  std::array<int, 256> table;
  table.fill(-1);
  for (std::size_t i = alphabet.size(); i-- > 0;) table[static_cast<unsigned char>(alphabet[i])] = int(i) + 1;
  return table;
}

// Label classes of `text`; false when a character is not in the alphabet.
bool to_labels(const std::string& text, const std::array<int, 256>& table, std::vector<int>& labels) {
  labels.clear();
  for (const char c : text) {
    const int k = table[static_cast<unsigned char>(c)];
    if (k < 0) return false;
    labels.push_back(k);
  }
  return true;
}

// Forward algorithm over the blank-extended label sequence. Doubles hold any plate-length product of
// step probabilities down to ~1e-300, so the values are only rescaled when they get that small
// (keeps one log per call instead of one per step). `alpha` and `next` are scratch buffers.
double ctc_log_prob(const float* probs, int steps, int classes, const std::vector<int>& labels,
                    std::vector<double>& alpha, std::vector<double>& next) {
  const int length = static_cast<int>(labels.size());
  if (steps == 0) return length == 0 ? 0.0 : kNegInfD;
  if (length > steps) return kNegInfD;
  const int states = 2 * length + 1;
  alpha.assign(states, 0.0);
  next.assign(states, 0.0);
  alpha[0] = probs[0];
  if (length > 0) alpha[1] = probs[labels[0]];
  double log_scale = 0.0;
  for (int t = 1; t < steps; ++t) {
    const float* row = probs + static_cast<std::size_t>(t) * classes;
    double sum = 0.0;
    next[0] = alpha[0] * row[0];
    sum += next[0];
    for (int s = 1; s < states; ++s) {
      double v = alpha[s] + alpha[s - 1];
      if ((s & 1) != 0) {
        if (s > 1 && labels[s / 2] != labels[s / 2 - 1]) v += alpha[s - 2];
        v *= row[labels[s / 2]];
      } else {
        v *= row[0];
      }
      next[s] = v;
      sum += v;
    }
    std::swap(alpha, next);
    if (sum == 0.0) return kNegInfD;
    if (sum < 1e-250) {
      for (double& x : alpha) x /= sum;
      log_scale += std::log(sum);
    }
  }
  const double end = alpha[states - 1] + (states > 1 ? alpha[states - 2] : 0.0);
  if (!(end > 0.0)) return kNegInfD;
  return std::log(end) + log_scale;
}

// Most probable alignment of `labels` (Viterbi over the extended sequence); for each label the highest
// probability of that label at a step the alignment spends on it.
std::vector<float> aligned_confidences(const float* probs, int steps, int classes,
                                       const std::vector<int>& labels) {
  const int length = static_cast<int>(labels.size());
  std::vector<float> conf(length, 0.0f);
  if (length == 0 || steps == 0) return conf;
  const int states = 2 * length + 1;
  std::vector<double> score(states, kNegInfD), next(states);
  std::vector<std::int8_t> back(static_cast<std::size_t>(steps) * states, 0);  // how many states back
  const auto label_of = [&](int s) { return (s & 1) ? labels[s / 2] : 0; };
  const auto lg = [](float p) { return p > 0.0f ? std::log(double(p)) : kNegInfD; };
  score[0] = lg(probs[0]);
  score[1] = lg(probs[labels[0]]);
  for (int t = 1; t < steps; ++t) {
    const float* row = probs + static_cast<std::size_t>(t) * classes;
    for (int s = 0; s < states; ++s) {
      double best = score[s];
      std::int8_t from = 0;
      if (s > 0 && score[s - 1] > best) best = score[s - 1], from = 1;
      if (s > 1 && (s & 1) && labels[s / 2] != labels[s / 2 - 1] && score[s - 2] > best) {
        best = score[s - 2], from = 2;
      }
      next[s] = best + lg(row[label_of(s)]);
      back[static_cast<std::size_t>(t) * states + s] = from;
    }
    std::swap(score, next);
  }
  int s = states - 1;
  if (states > 1 && score[states - 2] > score[s]) s = states - 2;
  if (score[s] == kNegInfD) return conf;
  for (int t = steps - 1; t >= 0; --t) {
    if (s & 1) {
      conf[s / 2] = std::max(conf[s / 2], probs[static_cast<std::size_t>(t) * classes + labels[s / 2]]);
    }
    if (t > 0) s -= back[static_cast<std::size_t>(t) * states + s];
  }
  return conf;
}

struct GreedyChar {
  int label = 0;
  float confidence = 0.0f;  // highest probability of the label over the steps that emitted it
  int alternative = -1;     // most probable other non-blank class at those steps, -1 if none
};

std::vector<GreedyChar> greedy_path(const float* probs, int steps, int classes) {
  std::vector<GreedyChar> out;
  std::vector<float> alternative_prob;
  int previous = 0;
  for (int t = 0; t < steps; ++t) {
    const float* row = probs + static_cast<std::size_t>(t) * classes;
    const int best = static_cast<int>(std::max_element(row, row + classes) - row);
    if (best != 0) {
      if (best != previous) {
        out.push_back({best, 0.0f, -1});
        alternative_prob.push_back(-1.0f);
      }
      GreedyChar& g = out.back();
      g.confidence = std::max(g.confidence, row[best]);
      for (int k = 1; k < classes; ++k) {
        if (k != best && row[k] > alternative_prob.back()) {
          alternative_prob.back() = row[k];
          g.alternative = k;
        }
      }
    }
    previous = best;
  }
  return out;
}

// Exact max-product search over the CTC lattice restricted to the trie: state (node, character) is
// "the last emitted label is this node's position, with this character", plus one blank state per node
// (after a blank, the next label may be anything, so the character there does not matter for the
// future). Entering a child from the parent's non-blank state needs a different character; the
// parent's best and second-best states make that O(1) per child state. Returns, for each terminal
// node, the characters of its best path.
//
// Scores are updated in place, children before parents, so a child still sees its parent's values of
// the previous step. A node is only updated inside its band (it has had time to emit its characters
// and still has time to reach a terminal node); outside it its values are never read again.
std::vector<std::string> constrained_viterbi(const detail::FormatTrie& trie, const float* probs, int steps,
                                             int classes, const std::array<int, 256>& table) {
  using Node = detail::FormatTrie::Node;
  const int node_count = static_cast<int>(trie.nodes.size());
  const int state_count = static_cast<int>(trie.chars.size());
  std::vector<std::string> out;
  if (steps == 0 || node_count <= 1) return out;

  // Characters missing from the alphabet read the extra column `classes`, which is always -inf.
  const int row_size = classes + 1;
  std::vector<float> lp(static_cast<std::size_t>(steps) * row_size);
  for (int t = 0; t < steps; ++t) {
    for (int k = 0; k < classes; ++k) {
      const float p = probs[static_cast<std::size_t>(t) * classes + k];
      lp[static_cast<std::size_t>(t) * row_size + k] = p > 0.0f ? std::log(p) : kNegInf;
    }
    lp[static_cast<std::size_t>(t) * row_size + classes] = kNegInf;
  }
  std::vector<int> state_class(state_count);
  for (int s = 0; s < state_count; ++s) {
    const int k = table[static_cast<unsigned char>(trie.chars[s])];
    state_class[s] = k < 0 ? classes : k;
  }

  struct Summary {  // best and second-best non-blank states of a node at the last step it was updated
    float best1 = kNegInf, best2 = kNegInf;
    int index1 = -1, index2 = -1;
    char char1 = '\0';
  };
  std::vector<Summary> summary(node_count);
  std::vector<float> nb(state_count, kNegInf);
  std::vector<float> bl(node_count, kNegInf);
  std::vector<std::uint8_t> back_nb(static_cast<std::size_t>(steps) * state_count, kStay);
  std::vector<std::uint8_t> back_bl(static_cast<std::size_t>(steps) * node_count, kStay);
  bl[0] = 0.0f;  // before the first step: nothing emitted

  for (int t = 0; t < steps; ++t) {
    const float* row = lp.data() + static_cast<std::size_t>(t) * row_size;
    const float lp_blank = row[0];
    std::uint8_t* bnb = back_nb.data() + static_cast<std::size_t>(t) * state_count;
    std::uint8_t* bbl = back_bl.data() + static_cast<std::size_t>(t) * node_count;
    for (int n = node_count - 1; n >= 0; --n) {
      const Node& node = trie.nodes[n];
      if (t < node.depth - 1 || t > steps - 1 - node.min_to_end) continue;
      Summary& own = summary[n];
      if (bl[n] >= own.best1) {
        bl[n] += lp_blank;
      } else {
        bl[n] = own.best1 + lp_blank;
        bbl[n] = static_cast<std::uint8_t>(own.index1);
      }
      if (n == 0) continue;

      const Summary& up = summary[node.parent];
      const float from_blank = bl[node.parent];
      float enter1 = from_blank, enter2 = from_blank;
      std::uint8_t code1 = kFromBlank, code2 = kFromBlank;
      if (up.best1 > from_blank) enter1 = up.best1, code1 = static_cast<std::uint8_t>(up.index1);
      if (up.best2 > from_blank) enter2 = up.best2, code2 = static_cast<std::uint8_t>(up.index2);
      // Selects and separate max passes rather than if/else: the comparisons are data-dependent and
      // mispredict badly, and this loop is most of decode()'s time.
      float* v = nb.data() + node.first;
      std::uint8_t* back = bnb + node.first;
      const char* chars = trie.chars.data() + node.first;
      const int* cls = state_class.data() + node.first;
      const int count = node.count;
      float m1 = kNegInf;
      for (int k = 0; k < count; ++k) {
        const bool same = chars[k] == up.char1;  // may not follow the parent's best without a blank
        const float enter = same ? enter2 : enter1;
        const std::uint8_t code = same ? code2 : code1;
        const float stay = v[k];
        const bool keep = stay >= enter;
        back[k] = keep ? kStay : code;
        const float value = (keep ? stay : enter) + row[cls[k]];
        v[k] = value;
        m1 = value > m1 ? value : m1;
      }
      Summary next;
      if (m1 > kNegInf) {
        int i1 = 0;
        while (v[i1] != m1) ++i1;
        float m2 = kNegInf;
        for (int k = 0; k < count; ++k) {
          const float x = k == i1 ? kNegInf : v[k];
          m2 = x > m2 ? x : m2;
        }
        next.best1 = m1, next.index1 = i1, next.char1 = chars[i1];
        if (m2 > kNegInf) {
          int i2 = 0;
          while (i2 == i1 || v[i2] != m2) ++i2;
          next.best2 = m2, next.index2 = i2;
        }
      }
      own = next;
    }
  }

  for (int n = 1; n < node_count; ++n) {
    const Node& node = trie.nodes[n];
    if (!node.terminal) continue;
    int k_best = -1;
    float best = bl[n];
    for (int k = 0; k < node.count; ++k) {
      if (nb[node.first + k] > best) best = nb[node.first + k], k_best = k;
    }
    if (best == kNegInf) continue;
    std::string text(node.depth, '?');
    int at = n, k = k_best;  // k < 0: the node's blank state
    for (int t = steps - 1; t >= 0; --t) {
      const Node& cur = trie.nodes[at];
      if (k >= 0) {
        const int s = cur.first + k;
        text[cur.depth - 1] = trie.chars[s];
        const std::uint8_t b = back_nb[static_cast<std::size_t>(t) * state_count + s];
        if (b == kFromBlank) {
          at = cur.parent, k = -1;
        } else if (b != kStay) {
          at = cur.parent, k = b;
        }
      } else {
        const std::uint8_t b = back_bl[static_cast<std::size_t>(t) * node_count + at];
        if (b != kStay) k = b;
      }
    }
    assert(at == 0 && k < 0);
    out.push_back(std::move(text));
  }
  return out;
}

// Indices of the formats `text` fits, in file order: FormatSet::match() through the trie, which
// checks each position once for all layouts sharing it.
void match_formats(const detail::FormatTrie& trie, const std::string& text, std::vector<int>& out) {
  out.clear();
  std::vector<std::pair<int, int>> stack{{0, 0}};  // (node, characters consumed)
  while (!stack.empty()) {
    const auto [n, depth] = stack.back();
    stack.pop_back();
    const auto& node = trie.nodes[n];
    if (depth == static_cast<int>(text.size())) {
      out.insert(out.end(), trie.formats.begin() + node.format_first,
                 trie.formats.begin() + node.format_first + node.format_count);
      continue;
    }
    const int bit = symbol_bit(text[depth]);
    if (bit < 0) continue;
    for (int c = 0; c < node.child_count; ++c) {
      const int child = trie.children[node.child_first + c];
      if ((trie.nodes[child].mask >> bit) & 1) stack.emplace_back(child, depth + 1);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

struct Hypothesis {
  std::string text;
  double log_prob = kNegInfD;
  double rank = kNegInfD;    // log_prob plus log(country_prior) when a preferred-country format fits
  std::vector<int> matches;  // fitting formats, file order
};

// log of the number of strings the narrowest of `format`'s layouts fitting `text` admits (+inf if none).
double log_layout_size(const PlateFormat& format, const std::string& text) {
  double best = std::numeric_limits<double>::infinity();
  for (const auto& e : format.expansions) {
    if (e.size() != text.size()) continue;
    double size = 0;
    for (std::size_t i = 0; i < e.size() && size < best; ++i) {
      if (e[i].find(text[i]) == std::string::npos) {
        size = best;
        break;
      }
      size += std::log(double(e[i].size()));
    }
    best = std::min(best, size);
  }
  return best;
}

// The most likely of `matches` to have produced `text` (see FormatSet::likeliest).
const PlateFormat* likeliest_of(const std::vector<const PlateFormat*>& matches, const std::string& preferred,
                                const std::string& text) {
  for (const PlateFormat* f : matches)
    if (!preferred.empty() && f->country == preferred) return f;
  const PlateFormat* best = nullptr;
  double best_score = -std::numeric_limits<double>::infinity();
  for (const PlateFormat* f : matches) {
    const double score = std::log(std::max(double(f->prior), 1e-30)) - log_layout_size(*f, text);
    if (!best || score > best_score) best = f, best_score = score;
  }
  return best;
}

}  // namespace

const PlateFormat* FormatSet::likeliest(const std::string& normalized_text, const std::string& preferred) const {
  return likeliest_of(match(normalized_text), preferred, normalized_text);
}

float ctc_probability(const CtcOutput& out, const std::string& text) {
  if (!well_formed(out)) return 0.0f;
  std::vector<int> labels;
  if (!to_labels(text, class_table(out.alphabet), labels)) return 0.0f;
  const int classes = static_cast<int>(out.alphabet.size()) + 1;
  std::vector<double> alpha, next;
  return static_cast<float>(
      std::exp(ctc_log_prob(out.probs.data(), out.steps, classes, labels, alpha, next)));
}

Decoded decode(const CtcOutput& out, const FormatSet& formats, const DecodeOptions& options) {
  Decoded result;
  if (!well_formed(out)) return result;
  const int steps = out.steps;
  const int classes = static_cast<int>(out.alphabet.size()) + 1;
  const float* probs = out.probs.data();
  const auto table = class_table(out.alphabet);
  const auto symbol = [&](int cls) { return out.alphabet[cls - 1]; };

  // Candidate texts: the greedy read, its variants, and the best fitting string of each layout.
  std::vector<std::string> texts;
  const auto greedy = greedy_path(probs, steps, classes);
  std::string greedy_text;
  for (const auto& g : greedy) greedy_text += symbol(g.label);
  texts.push_back(greedy_text);

  std::vector<int> order(greedy.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return greedy[a].confidence < greedy[b].confidence; });
  std::vector<int> substituted;
  for (int i : order) {
    if (static_cast<int>(substituted.size()) == kVariantPositions) break;
    if (greedy[i].alternative < 0) continue;
    std::string variant = greedy_text;
    variant[i] = symbol(greedy[i].alternative);
    texts.push_back(variant);
    substituted.push_back(i);
  }
  if (substituted.size() >= 2) {
    std::string variant = greedy_text;
    for (int j = 0; j < 2; ++j) variant[substituted[j]] = symbol(greedy[substituted[j]].alternative);
    texts.push_back(variant);
  }
  for (std::size_t i = 0; i + 1 < greedy_text.size(); ++i) {
    if (greedy_text[i] == greedy_text[i + 1])
      texts.push_back(greedy_text.substr(0, i) + greedy_text.substr(i + 1));
  }

  if (formats.trie_) {
    auto fitting = constrained_viterbi(*formats.trie_, probs, steps, classes, table);
    texts.insert(texts.end(), std::make_move_iterator(fitting.begin()),
                 std::make_move_iterator(fitting.end()));
  }

  // Score each distinct text once, keeping first-seen order for ties.
  std::vector<Hypothesis> hyps;
  std::unordered_set<std::string> seen;
  const double log_prior = std::log(std::max(double(options.country_prior), 1e-30));
  std::vector<int> labels;
  std::vector<double> alpha, next;
  for (auto& text : texts) {
    if (!seen.insert(text).second) continue;
    if (!to_labels(text, table, labels)) continue;
    Hypothesis h;
    h.log_prob = ctc_log_prob(probs, steps, classes, labels, alpha, next);
    if (h.log_prob == kNegInfD && !hyps.empty()) continue;  // the greedy read is always kept
    h.text = text;
    if (formats.trie_) match_formats(*formats.trie_, text, h.matches);
    h.rank = h.log_prob;
    float prior = 0.0f;
    for (const int f : h.matches) prior = std::max(prior, formats.formats()[f].prior);
    if (prior > 0.0f) h.rank += std::log(double(prior));
    if (!options.preferred_country.empty()) {
      for (const int f : h.matches) {
        if (formats.formats()[f].country == options.preferred_country) {
          h.rank += log_prior;
          break;
        }
      }
    }
    hyps.push_back(std::move(h));
  }
  if (hyps.empty()) return result;

  int unconstrained = 0, fitting = -1;
  for (int i = 0; i < static_cast<int>(hyps.size()); ++i) {
    if (hyps[i].log_prob > hyps[unconstrained].log_prob) unconstrained = i;
    if (!hyps[i].matches.empty() && (fitting < 0 || hyps[i].rank > hyps[fitting].rank)) fitting = i;
  }
  const double log_ratio = std::log(std::max(double(options.format_min_ratio), 0.0));
  const int chosen = (fitting >= 0 && hyps[fitting].log_prob >= hyps[unconstrained].log_prob + log_ratio)
                         ? fitting
                         : unconstrained;

  std::vector<int> ranked;
  for (int i = 0; i < static_cast<int>(hyps.size()); ++i)
    if (i != chosen && !hyps[i].text.empty()) ranked.push_back(i);  // "" is no alternative
  // Alternatives by true probability: the priors decide the chosen read, not how sure each is.
  std::stable_sort(ranked.begin(), ranked.end(), [&](int a, int b) { return hyps[a].log_prob > hyps[b].log_prob; });
  ranked.insert(ranked.begin(), chosen);
  ranked.resize(std::min<std::size_t>(ranked.size(), std::max(options.top_n, 1)));
  for (int i : ranked) {
    Candidate c;
    c.text = hyps[i].text;
    c.confidence = static_cast<float>(std::exp(hyps[i].log_prob));
    std::vector<const PlateFormat*> fits;
    for (const int f : hyps[i].matches) fits.push_back(&formats.formats()[f]);
    if (const PlateFormat* f = likeliest_of(fits, options.preferred_country, hyps[i].text)) {
      c.country = f->country;
      c.format = f->name;
    }
    result.candidates.push_back(std::move(c));
  }

  const Candidate& top = result.candidates.front();
  result.text = top.text;
  result.confidence = top.confidence;
  result.country = top.country;
  result.format = top.format;
  result.fits_format = !top.country.empty();
  // Per-character confidence from the single most probable alignment of the chosen text. For the
  // greedy read that alignment is the greedy path; for a layout's constrained-Viterbi string it is the
  // constrained path itself (a better alignment of the same string would have been a better path), so
  // recomputing it here gives the same steps without carrying paths out of the search.
  to_labels(result.text, table, labels);
  result.char_confidences = aligned_confidences(probs, steps, classes, labels);
  return result;
}

}  // namespace vigil
