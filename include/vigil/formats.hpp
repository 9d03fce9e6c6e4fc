// Country plate formats (data, loaded from data/plate_formats.json) and format-aware decoding of the
// neural reader's per-step character probabilities (CTC).
//
//   auto formats = vigil::FormatSet::load("data/plate_formats.json");
//   vigil::CtcOutput out{steps, alphabet, probs};           // from the reader
//   vigil::Decoded d = vigil::decode(out, *formats, {.preferred_country = "cz", .top_n = 5});
//   // d.text == "1AB2345", d.country == "cz", d.fits_format == true
//
// Thread-safety: a FormatSet is immutable after loading; decode() is a pure function.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common.hpp"

namespace vigil {

namespace detail {
struct FormatTrie;  // decoding index over all expansions (src/formats/decode.cpp)
}  // namespace detail

struct CtcOutput;
struct DecodeOptions;
struct Decoded;

// Where a deployment reads plates: decoding considers only the formats of these countries, so a loose
// layout of another continent (the generic US one accepts almost any string) never outranks a European
// format in Europe. Reads that fit none of them are still reported, flagged (Decoded::fits_format false).
struct CountryWeight {
  std::string country;  // ISO 3166-1 alpha-2, lower case
  float weight = 1.0f;  // relative share of the traffic (> 0): multiplies the country's format priors
};
struct Region {
  std::string name = "eu";               // "eu" (every European format), "americas", or "all"
  std::vector<CountryWeight> countries;  // non-empty: exactly these countries, weighted (overrides name)
};
// "eu" / "americas" / "all" and an optional country list "cz,sk:2,pl" (weights after ':', default 1).
// Fails naming the bad part: "--countries: 'xx:0' weight must be a number > 0".
Result<Region> parse_region(const std::string& name, const std::string& countries = "");
// "eu", "americas", "all" or the country list as given ("cz,sk:2").
std::string to_string(const Region& region);

// A country code as the formats file writes it: lower case, and "uk" (a common misnomer) as "gb".
std::string canonical_country(std::string code);

// Upper case, spaces, dashes, dots and other separators removed: "ap-666 tq" -> "AP666TQ".
std::string normalize_plate(const std::string& text);

// Number of single-character insertions, deletions and substitutions between a and b (Levenshtein).
int edit_distance(std::string_view a, std::string_view b);

// One layout of one country, e.g. Czech "1AB 2345".
struct PlateFormat {
  std::string country;  // ISO 3166-1 alpha-2, lower case ("cz"); "us" and "br" are generic
  std::string name;     // short layout name ("standard", "motorcycle", "old", ...)
  std::string pattern;  // the pattern as written in the data file (regex subset, see FormatSet)
  // Ranking weight of this layout when decoding (0..1, default 1): loose catch-alls such as the
  // generic US layout get less, so a read that also fits a specific layout is not won by them.
  float prior = 1.0f;
  // Where the layout is issued: "eu" (Europe, the default) or "americas" (the data file's "region").
  std::string region = "eu";
  // Each fixed-length expansion of the pattern: for each position the string of allowed characters.
  std::vector<std::vector<std::string>> expansions;
};

// The set of known formats. Pattern syntax (a regex subset, matched against normalised text):
// literal characters, classes "[A-Z0-9]" with ranges and "[^...]" negation over A-Z0-9, "\d" (digit),
// "\w"/"." (A-Z0-9), the quantifiers "{n}", "{m,n}", "?", and top-level alternation "a|b" (no groups).
// A pattern must not match empty text, may expand to at most 256 fixed-length layouts, each at most
// 16 characters long.
class FormatSet {
 public:
  // Parses the JSON document: {"formats": [{"country": "cz", "name": "standard",
  //   "pattern": "[0-9][A-Z][A-Z0-9][0-9]{4}", "example": "1AB2345"}, ...]}.
  // Other fields of an entry (e.g. "note") are ignored. Fails with a message naming the bad entry
  // (index counted from 0, country, pattern) when a field is missing, the country is not two lower-case
  // letters, a pattern cannot be parsed, or the example (normalised) does not match its pattern:
  //   "formats.json entry 12 (de): pattern '[A-Z': unbalanced '['".
  static Result<FormatSet> parse(const std::string& json_text);
  // As parse(), reading the file; messages name the file instead of "formats.json". A file that cannot
  // be read fails with "cannot open formats file PATH: <reason>".
  static Result<FormatSet> load(const std::string& path);

  const std::vector<PlateFormat>& formats() const { return formats_; }
  // Countries in file order, without repetition.
  std::vector<std::string> countries() const;
  // Formats that the normalised text fits, in file order.
  std::vector<const PlateFormat*> match(const std::string& normalized_text) const;
  // The format a text is reported under, nullptr when it fits none: the preferred country's first fitting
  // format when there is one; else the fitting layout most likely to have produced the text, its prior
  // times 1 / the number of strings it admits (Bucharest's "B 12 ABC" over the Austrian and British
  // layouts that also fit), file order among equals.
  const PlateFormat* likeliest(const std::string& normalized_text, const std::string& preferred = "") const;
  bool has_country(const std::string& country) const;
  // The formats a deployment in `region` decodes with: its countries' formats only, each country's priors
  // multiplied by its weight over the largest weight. Fails when a listed country has no formats here
  // ("unknown country 'xx': the formats file has none for it; known: cz, sk, ...") or nothing is left.
  Result<FormatSet> for_region(const Region& region) const;

 private:
  friend Decoded decode(const CtcOutput& out, const FormatSet& formats, const DecodeOptions& options);
  static std::shared_ptr<const detail::FormatTrie> build_trie(const std::vector<PlateFormat>& formats);

  std::vector<PlateFormat> formats_;
  std::shared_ptr<const detail::FormatTrie> trie_;  // built by parse(); shared by copies, never mutated
};

// The reader's output for one plate: for each time step, a probability distribution over
// [blank] + alphabet (class 0 is the CTC blank; class i > 0 is alphabet[i - 1]).
struct CtcOutput {
  int steps = 0;             // number of time steps T
  std::string alphabet;      // e.g. "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  std::vector<float> probs;  // T * (alphabet.size() + 1) values, row-major by step, each row sums to 1
};

struct DecodeOptions {
  std::string preferred_country;  // "" for none; else its formats win over other countries' formats
                                  // unless those are much more probable (see country_prior)
  float country_prior = 20.0f;    // probability multiplier given to the preferred country's formats: a
                                  // camera's own country's plates are the great majority of its traffic
  int top_n = 5;                  // number of candidates kept (>= 1)
  // A format-fitting string is chosen over the unconstrained best read only when its probability is at
  // least this fraction of the unconstrained best's; below it the read is reported as fitting no format.
  float format_min_ratio = 0.01f;
  // A plate whose read fits no format of the deployment's region is reported by the Recognizer with its
  // confidence multiplied by this (decode() itself reports probabilities): it may be a foreign plate or a
  // fragment, and must not look as sure as a fitting read.
  float no_format_factor = 0.5f;
  // With the country classifier, the Recognizer keeps the candidate read whose probability times its
  // likeliest country's look is highest; a country whose formats the text does not fit counts this
  // much (so a Belgian-looking plate read "1ET0293" at 89%, a Czech layout, keeps "1ETO293" at 10%, the
  // Belgian one). 1: the looks never change a read. 0.05 (plates-eu-crops train split: 0.15, 0.05 and 0.02
  // read the same 94.3%, 1 reads 93.7%).
  float unfit_country_factor = 0.05f;
};

struct Candidate {
  std::string text;         // normalised plate text
  float confidence = 0.0f;  // P(text | image) under the CTC model, 0..1
  std::string country;      // country of FormatSet::likeliest(text, preferred country); "" when it
                            // fits no format
  std::string format;       // name of that format, "" when it fits none
};

struct Decoded {
  std::string text;          // the chosen read
  float confidence = 0.0f;   // its probability (0..1)
  std::string country;       // "" when it fits no format
  std::string format;        // format name, "" when none
  bool fits_format = false;  // false: kept, but flagged as fitting no known format
  // Per character of text: its highest probability at the steps that text's most probable alignment
  // spends on that character.
  std::vector<float> char_confidences;
  // Top-N distinct reads: the chosen one first (candidates[0].text == text), then the others by
  // probability, preferred-country fits multiplied by country_prior for this ordering only.
  std::vector<Candidate> candidates;
};

// CTC probability of `text` (sum over all alignments, forward algorithm). 0 if a character is not
// in the alphabet or `out` is malformed (probs.size() != steps * (alphabet.size() + 1)).
float ctc_probability(const CtcOutput& out, const std::string& text);

// Format-aware decoding: the most probable string that fits a format (resolving O/0, I/1, B/8, S/5,
// Z/2 by position), its country, and the top-N candidates with their probabilities. Candidates are the
// greedy (best path) read, a few variants of it, and for each format layout the string of its most
// probable fitting alignment; each is scored by ctc_probability(). A malformed `out` decodes to an
// empty Decoded (no candidates).
Decoded decode(const CtcOutput& out, const FormatSet& formats, const DecodeOptions& options = {});

}  // namespace vigil
