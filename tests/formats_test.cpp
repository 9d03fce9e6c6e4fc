#include "vigil/formats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace vigil {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr char kShippedFormats[] = VIGIL_SOURCE_DIR "/data/plate_formats.json";

const FormatSet& shipped() {
  static const FormatSet formats = [] {
    auto loaded = FormatSet::load(kShippedFormats);
    if (!loaded) {
      ADD_FAILURE() << loaded.error();
      return FormatSet{};
    }
    return std::move(loaded).value();
  }();
  return formats;
}

std::string one_entry(const std::string& country, const std::string& pattern, const std::string& example) {
  nlohmann::json doc;
  doc["formats"] = nlohmann::json::array(
      {{{"country", "cz"},
        {"name", "standard"},
        {"pattern", "[1-9][A-Z]{2}[0-9]{4}"},
        {"example", "1AB2345"}},
       {{"country", country}, {"name", "test"}, {"pattern", pattern}, {"example", example}}});
  return doc.dump();
}

// The expansions of the second entry of one_entry(), or the parse error.
std::vector<std::vector<std::string>> expansions_of(const std::string& pattern, const std::string& example) {
  auto parsed = FormatSet::parse(one_entry("de", pattern, example));
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error());
  if (!parsed) return {};
  EXPECT_EQ(parsed->formats().size(), 2u);
  return parsed->formats()[1].expansions;
}

std::set<std::string> countries_of(const FormatSet& formats, const std::string& text) {
  std::set<std::string> out;
  for (const PlateFormat* f : formats.match(text)) out.insert(f->country);
  return out;
}

// A reader output from a step script: tokens separated by spaces; "_" is a confident blank, "X" a
// confident character, "O:.55,0:.4" explicit probabilities ('_' for the blank). The rest of each step's
// probability is spread evenly over the classes not named.
CtcOutput make_output(const std::string& script, const std::string& alphabet = kAlphabet,
                      float confident = 0.9f) {
  const int classes = static_cast<int>(alphabet.size()) + 1;
  const auto class_of = [&](char c) {
    if (c == '_') return 0;
    const auto pos = alphabet.find(c);
    EXPECT_NE(pos, std::string::npos) << "'" << c << "' not in alphabet";
    return static_cast<int>(pos) + 1;
  };
  CtcOutput out;
  out.alphabet = alphabet;
  std::istringstream tokens(script);
  std::string token;
  while (tokens >> token) {
    std::map<int, float> named;
    if (token.size() == 1) {
      named[class_of(token[0])] = confident;
    } else {
      std::istringstream parts(token);
      std::string part;
      while (std::getline(parts, part, ',')) named[class_of(part[0])] = std::stof(part.substr(2));
    }
    float sum = 0.0f;
    for (const auto& [k, p] : named) sum += p;
    EXPECT_LE(sum, 1.0f + 1e-6f) << token;
    const int others = classes - static_cast<int>(named.size());
    for (int k = 0; k < classes; ++k) {
      const auto it = named.find(k);
      out.probs.push_back(it != named.end() ? it->second : (1.0f - sum) / static_cast<float>(others));
    }
    ++out.steps;
  }
  return out;
}

// "_ c1 _ c2 _ ... _" for a confidently read text.
std::string plate_script(const std::string& text) {
  std::string s = "_";
  for (const char c : text) s += std::string(" ") + c + " _";
  return s;
}

// (GCC warns about designated initializers that skip the first member.)
DecodeOptions with_top_n(int n) {
  DecodeOptions options;
  options.top_n = n;
  return options;
}

DecodeOptions with_min_ratio(float ratio) {
  DecodeOptions options;
  options.format_min_ratio = ratio;
  return options;
}

std::vector<std::string> candidate_texts(const Decoded& d) {
  std::vector<std::string> out;
  for (const auto& c : d.candidates) out.push_back(c.text);
  return out;
}

bool has_candidate(const Decoded& d, const std::string& text) {
  const auto texts = candidate_texts(d);
  return std::find(texts.begin(), texts.end(), text) != texts.end();
}

// Collapses a CTC path: merge repeats, drop blanks (class 0).
std::string collapse(const std::vector<int>& path, const std::string& alphabet) {
  std::string out;
  int previous = 0;
  for (const int k : path) {
    if (k != 0 && k != previous) out += alphabet[k - 1];
    previous = k;
  }
  return out;
}

// Every path of a small output with its probability.
template <typename Fn>
void for_each_path(const CtcOutput& out, Fn fn) {
  const int classes = static_cast<int>(out.alphabet.size()) + 1;
  std::vector<int> path(out.steps, 0);
  while (true) {
    double p = 1.0;
    for (int t = 0; t < out.steps; ++t) p *= out.probs[t * classes + path[t]];
    fn(path, p);
    int t = out.steps - 1;
    while (t >= 0 && path[t] == classes - 1) path[t--] = 0;
    if (t < 0) break;
    ++path[t];
  }
}

CtcOutput random_output(std::mt19937& rng, int steps, const std::string& alphabet) {
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  const int classes = static_cast<int>(alphabet.size()) + 1;
  CtcOutput out{steps, alphabet, {}};
  for (int t = 0; t < steps; ++t) {
    std::vector<float> row(classes);
    float sum = 0.0f;
    for (float& v : row) {
      v = std::pow(uniform(rng), 3.0f) + 1e-3f;  // peaked, like a trained reader
      sum += v;
    }
    for (const float v : row) out.probs.push_back(v / sum);
  }
  return out;
}

// --- normalize_plate ------------------------------------------------------------------------------------

TEST(NormalizePlate, UpperCasesAndDropsSeparators) {
  EXPECT_EQ(normalize_plate("ap-666 tq"), "AP666TQ");
  EXPECT_EQ(normalize_plate("1AB 23.45"), "1AB2345");
  EXPECT_EQ(normalize_plate(" b-mw_1234\t"), "BMW1234");
  EXPECT_EQ(normalize_plate(""), "");
  EXPECT_EQ(normalize_plate("-- .."), "");
  EXPECT_EQ(normalize_plate("M\xC3\x9C-AB 12"), "MAB12");  // non-ASCII bytes (here "Ü") are dropped
}

// --- pattern parser -------------------------------------------------------------------------------------

TEST(FormatParse, ClassesRangesAndNegation) {
  using E = std::vector<std::vector<std::string>>;
  EXPECT_EQ(expansions_of("[A-C][0-2]", "B1"), (E{{"ABC", "012"}}));
  EXPECT_EQ(expansions_of("[CA-B7]", "C"), (E{{"7ABC"}}));
  EXPECT_EQ(expansions_of("[^A-Y0-8]", "Z"), (E{{"9Z"}}));
  EXPECT_EQ(expansions_of("[^A-Z]", "5"), (E{{"0123456789"}}));
  EXPECT_EQ(expansions_of("\\d", "5"), (E{{"0123456789"}}));
  EXPECT_EQ(expansions_of("\\w.", "A1"), (E{{kAlphabet, kAlphabet}}));
  EXPECT_EQ(expansions_of("[\\dX]", "X"), (E{{"0123456789X"}}));
  EXPECT_EQ(expansions_of("AB1", "AB1"), (E{{"A", "B", "1"}}));
}

TEST(FormatParse, Quantifiers) {
  using E = std::vector<std::vector<std::string>>;
  EXPECT_EQ(expansions_of("A{3}", "AAA"), (E{{"A", "A", "A"}}));
  EXPECT_EQ(expansions_of("A{1,3}", "AA"), (E{{"A"}, {"A", "A"}, {"A", "A", "A"}}));
  EXPECT_EQ(expansions_of("A?B", "B"), (E{{"B"}, {"A", "B"}}));
  EXPECT_EQ(expansions_of("[0-9]{0,1}X", "X"), (E{{"X"}, {"0123456789", "X"}}));
  // Expansions that coincide are kept once.
  EXPECT_EQ(expansions_of("A?A?B", "AB"), (E{{"B"}, {"A", "B"}, {"A", "A", "B"}}));
}

TEST(FormatParse, TopLevelAlternation) {
  using E = std::vector<std::vector<std::string>>;
  EXPECT_EQ(expansions_of("A|B1", "B1"), (E{{"A"}, {"B", "1"}}));
  EXPECT_EQ(expansions_of("[AB]|[BA]", "A"), (E{{"AB"}}));
}

TEST(FormatParse, BadPatternsNameEntryCountryAndProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[A-Z", "unbalanced '['"},
      {"A]", "unbalanced ']'"},
      {"A{2", "unbalanced '{'"},
      {"A}", "unbalanced '}'"},
      {"[Z-A]", "bad range"},
      {"[0-Z]", "bad range"},
      {"[]", "empty character class"},
      {"[^A-Z0-9]", "matches no character"},
      {"A{3,2}", "minimum above maximum"},
      {"A{2,}", "bad quantifier"},
      {"A{x}", "bad quantifier"},
      {"{2}A", "nothing to repeat"},
      {"A??", "nothing to repeat"},
      {"A*", "unbounded quantifier"},
      {"A+", "unbounded quantifier"},
      {"(AB)", "groups"},
      {"\\s", "unsupported escape"},
      {"A\\", "ends with"},
      {"ab", "not allowed"},
      {"A-B", "not allowed"},
      {"|A", "empty alternative"},
      {"A|", "empty alternative"},
      {"A?", "empty text"},
      {"[A-Z]{9}[0-9]{8}", "more than the 16"},
      {"[A-Z]{1,9}[0-9]{1,9}[A-Z]{1,9}", "more than 256"},
  };
  for (const auto& [pattern, problem] : cases) {
    auto parsed = FormatSet::parse(one_entry("de", pattern, "A"));
    ASSERT_FALSE(parsed.ok()) << pattern;
    EXPECT_NE(parsed.error().find("formats.json entry 1 (de): pattern '" + pattern + "': "),
              std::string::npos)
        << parsed.error();
    EXPECT_NE(parsed.error().find(problem), std::string::npos) << pattern << " -> " << parsed.error();
  }
}

TEST(FormatParse, ExampleMustMatchItsPattern) {
  auto parsed = FormatSet::parse(one_entry("sk", "[A-Z]{2}[0-9]{3}[A-Z]{2}", "BA1234B"));
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("entry 1 (sk)"), std::string::npos) << parsed.error();
  EXPECT_NE(parsed.error().find("example 'BA1234B' does not match"), std::string::npos) << parsed.error();
  // The example is normalised before matching.
  EXPECT_TRUE(FormatSet::parse(one_entry("sk", "[A-Z]{2}[0-9]{3}[A-Z]{2}", "ba-123 ab")).ok());
}

TEST(FormatParse, BadDocuments) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "invalid JSON"},
      {"[]", "\"formats\" array"},
      {R"({"formats": {}})", "\"formats\" array"},
      {R"({"formats": [3]})", "entry 0: expected an object"},
      {R"({"formats": [{"name": "x", "pattern": "A", "example": "A"}]})",
       "entry 0: missing or empty string field 'country'"},
      {R"({"formats": [{"country": "cz", "pattern": "A", "example": "A"}]})",
       "entry 0 (cz): missing or empty string field 'name'"},
      {R"({"formats": [{"country": "cz", "name": "x", "pattern": 5, "example": "A"}]})", "field 'pattern'"},
      {R"({"formats": [{"country": "cz", "name": "x", "pattern": "A"}]})", "field 'example'"},
      {R"({"formats": [{"country": "CZ", "name": "x", "pattern": "A", "example": "A"}]})",
       "two lower-case letters"},
      {R"({"formats": [{"country": "cze", "name": "x", "pattern": "A", "example": "A"}]})",
       "two lower-case letters"},
  };
  for (const auto& [text, problem] : cases) {
    auto parsed = FormatSet::parse(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().rfind("formats.json", 0), 0u) << parsed.error();
    EXPECT_NE(parsed.error().find(problem), std::string::npos) << text << " -> " << parsed.error();
  }
  auto empty = FormatSet::parse(R"({"formats": []})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->formats().empty());
  EXPECT_TRUE(empty->countries().empty());
}

TEST(FormatLoad, MissingFileSaysWhy) {
  auto loaded = FormatSet::load("/nonexistent/vigil/formats.json");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(),
            "cannot open formats file /nonexistent/vigil/formats.json: No such file or directory");
}

TEST(FormatLoad, UnreadableFileSaysWhy) {
  const std::string dir = ::testing::TempDir();
  auto loaded = FormatSet::load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), "cannot read formats file " + dir + ": Is a directory");
}

TEST(FormatLoad, ErrorsNameTheFile) {
  const std::string path = ::testing::TempDir() + "vigil_formats_test_bad.json";
  {
    std::ofstream file(path);
    file << one_entry("de", "[A-Z", "A");
  }
  auto loaded = FormatSet::load(path);
  std::remove(path.c_str());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), path + " entry 1 (de): pattern '[A-Z': unbalanced '['");
}

// --- the shipped data -----------------------------------------------------------------------------------

TEST(ShippedFormats, LoadsAndCoversCountries) {
  auto loaded = FormatSet::load(kShippedFormats);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  for (const char* c : {"cz", "sk", "pl", "de", "at", "hu", "gb", "ie", "fr", "es", "it", "nl", "be", "hr",
                        "si", "ro", "us", "br"}) {
    EXPECT_TRUE(loaded->has_country(c)) << c;
  }
  EXPECT_FALSE(loaded->has_country("xx"));
  EXPECT_EQ(loaded->countries().front(), "cz");
  const auto countries = loaded->countries();
  EXPECT_EQ(std::set<std::string>(countries.begin(), countries.end()).size(), countries.size());
  for (const auto& f : loaded->formats()) {
    EXPECT_FALSE(f.expansions.empty()) << f.country << " " << f.name;
    for (const auto& e : f.expansions) EXPECT_LE(e.size(), 11u) << f.country << " " << f.name;
  }
}

TEST(ShippedFormats, CoverTheEuropeanCountriesOfTheRealCrops) {
  for (const char* c : {"no", "ch", "se", "dk", "fi", "pt", "gr", "bg", "lt", "lv", "ee", "lu", "mt", "cy", "tr",
                        "ua", "rs"})
    EXPECT_TRUE(shipped().has_country(c)) << c;
  for (const auto& f : shipped().formats())
    EXPECT_EQ(f.region, f.country == "us" || f.country == "br" ? "americas" : "eu") << f.country << " " << f.name;
}

TEST(Region, ParsesNamesAndWeightedCountryLists) {
  auto eu = parse_region("");
  ASSERT_TRUE(eu) << eu.error();
  EXPECT_EQ(eu->name, "eu");
  EXPECT_TRUE(eu->countries.empty());
  auto list = parse_region("eu", " CZ:4, sk ,uk:0.5,");
  ASSERT_TRUE(list) << list.error();
  ASSERT_EQ(list->countries.size(), 3u);
  EXPECT_EQ(list->countries[0].country, "cz");
  EXPECT_FLOAT_EQ(list->countries[0].weight, 4.0f);
  EXPECT_EQ(list->countries[2].country, "gb") << "uk is written gb";
  EXPECT_EQ(to_string(*list), "cz:4,sk,gb:0.5");
  EXPECT_EQ(to_string(*parse_region("Americas")), "americas");
  for (const auto& [name, countries, says] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"asia", "", "not a region"},
                                                                     {"eu", "cz:0", "weight"},
                                                                     {"eu", "cz:x", "weight"},
                                                                     {"eu", "czech", "country code"},
                                                                     {"eu", "cz,CZ", "twice"}}) {
    auto r = parse_region(name, countries);
    ASSERT_FALSE(r) << name << " " << countries;
    EXPECT_NE(r.error().find(says), std::string::npos) << r.error();
  }
}

TEST(Region, KeepsOnlyItsCountriesFormatsWeighted) {
  auto eu = shipped().for_region(*parse_region("eu"));
  ASSERT_TRUE(eu) << eu.error();
  EXPECT_FALSE(eu->has_country("us"));
  EXPECT_FALSE(eu->has_country("br"));
  EXPECT_TRUE(eu->has_country("sk"));
  auto americas = shipped().for_region(*parse_region("americas"));
  ASSERT_TRUE(americas) << americas.error();
  EXPECT_EQ(americas->countries(), (std::vector<std::string>{"us", "br"}));
  EXPECT_EQ(shipped().for_region(*parse_region("all"))->formats().size(), shipped().formats().size());
  auto cz_sk = shipped().for_region(*parse_region("eu", "cz:4,sk:2"));
  ASSERT_TRUE(cz_sk) << cz_sk.error();
  EXPECT_EQ(cz_sk->countries(), (std::vector<std::string>{"cz", "sk"}));
  for (const auto& f : cz_sk->formats()) {
    const PlateFormat* original = nullptr;
    for (const auto& g : shipped().formats())
      if (g.country == f.country && g.name == f.name) original = &g;
    ASSERT_NE(original, nullptr);
    EXPECT_FLOAT_EQ(f.prior, original->prior * (f.country == "cz" ? 1.0f : 0.5f)) << f.country << " " << f.name;
  }
  auto unknown = shipped().for_region(*parse_region("eu", "cz,xx"));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("unknown country 'xx'"), std::string::npos) << unknown.error();
}

TEST(Region, CatchAllNeverOutranksAEuropeanFormatInEurope) {
  // PP587AO: the reader is surer of a final 0, which only the generic US layout accepts; in
  // Europe the Slovak layout's O wins, and a read fitting nothing in the region is flagged.
  const CtcOutput out = make_output("_ P _ P _ 5 _ 8 _ 7 _ A _ 0:.8,O:.15 _");
  const auto eu = *shipped().for_region(*parse_region("eu"));
  const Decoded d = decode(out, eu);
  EXPECT_EQ(d.text, "PP587AO");
  EXPECT_TRUE(d.fits_format);
  EXPECT_EQ(decode(out, eu, {.preferred_country = "sk"}).country, "sk");
  EXPECT_EQ(decode(out, shipped()).text, "PP587A0") << "with the US layout in play, the catch-all wins";
  const Decoded nothing = decode(make_output("_ Q _ Q _ Q _"), eu);
  EXPECT_FALSE(nothing.fits_format);
  EXPECT_FLOAT_EQ(nothing.confidence, nothing.candidates[0].confidence) << "decode reports probabilities";
}

TEST(ShippedFormats, EveryExampleMatchesItsOwnFormat) {
  std::ifstream file(kShippedFormats);
  ASSERT_TRUE(file.good());
  const auto doc = nlohmann::json::parse(file);
  const auto& formats = shipped();
  ASSERT_EQ(doc["formats"].size(), formats.formats().size());
  for (const auto& entry : doc["formats"]) {
    const std::string example = entry["example"], country = entry["country"], name = entry["name"];
    EXPECT_EQ(normalize_plate(example), example) << "examples are written normalised";
    bool own = false;
    for (const PlateFormat* f : formats.match(example)) {
      own = own || (f->country == country && f->name == name);
    }
    EXPECT_TRUE(own) << entry.dump();
  }
}

TEST(ShippedFormats, MatchesKnownPlatesOfEachCountry) {
  const std::vector<std::pair<std::string, std::string>> plates = {
      {"cz", "1AB2345"}, {"cz", "5T81234"},  {"cz", "EL012AB"}, {"sk", "BA123AB"},  {"sk", "KE987XY"},
      {"pl", "WA12345"}, {"pl", "KR1234C"},  {"pl", "WPR12CE"}, {"pl", "GD123AC"},  {"de", "BMW1234"},
      {"de", "MAB123"},  {"de", "BXY1234"},  {"de", "MAB123E"}, {"de", "HHAB12H"},  {"at", "W12345A"},
      {"at", "W1234AB"}, {"at", "FK1ABC"},   {"at", "GU123AB"}, {"hu", "ABC123"},   {"hu", "AABC123"},
      {"gb", "AB12CDE"}, {"gb", "A123BCD"},  {"gb", "ABC123D"}, {"gb", "ABZ1234"},  {"ie", "191D12345"},
      {"ie", "231KY7"},  {"ie", "06D12345"}, {"fr", "AB123CD"}, {"fr", "1234AB56"}, {"fr", "12ABC75"},
      {"es", "1234BCD"}, {"es", "M1234AB"},  {"it", "AB123CD"}, {"it", "AB12345"},  {"nl", "12GBD3"},
      {"nl", "GB123D"},  {"nl", "GBDF12"},   {"be", "1ABC123"}, {"be", "ABC123"},   {"hr", "ZG1234AB"},
      {"hr", "ST123A"},  {"si", "LJA123"},   {"si", "MBAB123"}, {"ro", "B123ABC"},  {"ro", "B12ABC"},
      {"ro", "CJ12ABC"}, {"us", "7ABC123"},  {"us", "ABC1234"}, {"us", "8ABC"},     {"br", "ABC1234"},
      {"br", "ABC1D23"},
  };
  const auto& formats = shipped();
  for (const auto& [country, plate] : plates) {
    EXPECT_EQ(countries_of(formats, plate).count(country), 1u) << country << " " << plate;
  }
}

TEST(ShippedFormats, RejectsOtherLayouts) {
  const std::vector<std::pair<std::string, std::string>> plates = {
      {"cz", "AB12CDE"},  {"cz", "0AB2345"}, {"cz", "1AO2345"},  {"cz", "1AB234"},  {"sk", "BA1234B"},
      {"pl", "WA1234B"},  {"pl", "AA12345"}, {"de", "BMW12345"}, {"de", "BMW0123"}, {"de", "1234"},
      {"gb", "AB12CDEF"}, {"gb", "IB12CDE"}, {"es", "1234ABC"},  {"es", "123BCD"},  {"fr", "AB123CO"},
      {"it", "AI123CD"},  {"nl", "12AEB3"},  {"be", "0ABC123"},  {"hu", "AB123"},   {"ie", "191D1234567"},
      {"ro", "B1ABC"},    {"us", "ABCDEF"},  {"us", "O12345"},   {"us", "A"},       {"us", "123456789"},
      {"br", "ABC12345"}, {"br", "AB1D23"},
  };
  const auto& formats = shipped();
  for (const auto& [country, plate] : plates) {
    EXPECT_EQ(countries_of(formats, plate).count(country), 0u) << country << " " << plate;
  }
}

TEST(ShippedFormats, MatchReturnsFormatsInFileOrder) {
  const auto matches = shipped().match("AB123CD");
  ASSERT_GE(matches.size(), 2u);
  std::vector<std::string> countries;
  for (const PlateFormat* f : matches) countries.push_back(f->country);
  const auto fr = std::find(countries.begin(), countries.end(), "fr");
  const auto it = std::find(countries.begin(), countries.end(), "it");
  ASSERT_NE(fr, countries.end());
  ASSERT_NE(it, countries.end());
  EXPECT_LT(fr, it);
  EXPECT_TRUE(shipped().match("").empty());
  EXPECT_TRUE(shipped().match("1ab2345").empty()) << "match() expects normalised text";
}

// --- ctc_probability ------------------------------------------------------------------------------------

TEST(CtcProbability, EqualsBruteForceSumOverAlignments) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const CtcOutput out = random_output(rng, 1 + trial % 6, "AB");
    std::map<std::string, double> brute;
    double total = 0.0;
    for_each_path(out, [&](const std::vector<int>& path, double p) {
      brute[collapse(path, out.alphabet)] += p;
      total += p;
    });
    EXPECT_NEAR(total, 1.0, 1e-5);
    for (const auto& [text, p] : brute) {
      EXPECT_NEAR(ctc_probability(out, text), p, 1e-6 + 1e-4 * p) << "T=" << out.steps << " '" << text << "'";
    }
    // Strings no alignment can produce.
    EXPECT_EQ(ctc_probability(out, std::string(out.steps + 1, 'A')), 0.0f);
    EXPECT_EQ(ctc_probability(out, "AA" + std::string(out.steps - 1, 'B')), 0.0f);
  }
}

TEST(CtcProbability, EdgeCases) {
  const CtcOutput out = make_output("_ A _ A _");
  // The one confident alignment plus many unlikely ones.
  EXPECT_GT(ctc_probability(out, "AA"), std::pow(0.9f, 5.0f));
  EXPECT_LT(ctc_probability(out, "AA"), std::pow(0.9f, 5.0f) + 0.01f);
  EXPECT_EQ(ctc_probability(out, "a"), 0.0f) << "not in the alphabet";
  EXPECT_EQ(ctc_probability(out, "A-"), 0.0f);
  const CtcOutput blanks = make_output("_ _ _");
  EXPECT_NEAR(ctc_probability(blanks, ""), std::pow(0.9, 3), 1e-5);
  CtcOutput broken = out;
  broken.probs.pop_back();
  EXPECT_EQ(ctc_probability(broken, "AA"), 0.0f);
  const CtcOutput none{0, kAlphabet, {}};
  EXPECT_EQ(ctc_probability(none, ""), 1.0f);
  EXPECT_EQ(ctc_probability(none, "A"), 0.0f);
}

TEST(CtcProbability, LongOutputsDoNotUnderflow) {
  // 120 steps at 0.5 each: the path probabilities are ~1e-36, below float's normal range when multiplied
  // naively but the scaled forward pass keeps them.
  std::string script;
  for (int i = 0; i < 60; ++i) script += "_:.5,A:.5 _:.5,B:.5 ";
  const CtcOutput out = make_output(script);
  const float p = ctc_probability(out, "AB");
  EXPECT_GT(p, 0.0f);
  EXPECT_LT(p, 1.0f);
}

// --- decode ---------------------------------------------------------------------------------------------

TEST(Decode, ConfidentPlate) {
  const CtcOutput out = make_output(plate_script("1AB2345"));
  const Decoded d = decode(out, shipped());
  EXPECT_EQ(d.text, "1AB2345");
  EXPECT_EQ(d.country, "cz");
  EXPECT_EQ(d.format, "standard");
  EXPECT_TRUE(d.fits_format);
  EXPECT_FLOAT_EQ(d.confidence, ctc_probability(out, "1AB2345"));
  EXPECT_GT(d.confidence, 0.15f);
  EXPECT_LE(d.confidence, 1.0f);
  ASSERT_EQ(d.char_confidences.size(), 7u);
  for (const float c : d.char_confidences) EXPECT_NEAR(c, 0.9f, 1e-6);
  ASSERT_FALSE(d.candidates.empty());
  EXPECT_EQ(d.candidates[0].text, d.text);
  EXPECT_EQ(d.candidates[0].country, "cz");
  EXPECT_FLOAT_EQ(d.candidates[0].confidence, d.confidence);
}

TEST(Decode, EveryShippedExampleReadConfidently) {
  std::ifstream file(kShippedFormats);
  const auto doc = nlohmann::json::parse(file);
  for (const auto& entry : doc["formats"]) {
    const std::string example = entry["example"], country = entry["country"];
    const CtcOutput out = make_output(plate_script(example));
    const Decoded plain = decode(out, shipped());
    EXPECT_EQ(plain.text, example);
    EXPECT_TRUE(plain.fits_format) << example;
    ASSERT_FALSE(shipped().match(example).empty());
    // With no preference, one of the fitting layouts names the country (which one: see
    // CountryOfSharedTextIsTheNarrowestFittingLayout).
    bool named_fits = false;
    for (const PlateFormat* f : shipped().match(example))
      named_fits |= f->country == plain.country && f->name == plain.format;
    EXPECT_TRUE(named_fits) << example << " reported as " << plain.country << " " << plain.format;
    const Decoded preferred = decode(out, shipped(), {.preferred_country = country});
    EXPECT_EQ(preferred.text, example);
    EXPECT_EQ(preferred.country, country) << example;
  }
}

TEST(Decode, SpecificLayoutBeatsTheGenericCatchAll) {
  // "QU09034" fits only the loose US layout (prior 0.2); "QUO9034" fits the Brazilian one. The reader
  // prefers the digit, but not by enough to beat the specific layout.
  const CtcOutput out = make_output("_ Q _ U _ 0:.6,O:.35 _ 9 _ 0 _ 3 _ 4 _");
  const Decoded d = decode(out, shipped());
  EXPECT_EQ(d.text, "QUO9034");
  EXPECT_NE(d.country, "us");  // br or de: both specific layouts fit
  // A clear digit still wins: the prior only breaks near ties.
  const Decoded clear = decode(make_output("_ Q _ U _ 0:.95,O:.03 _ 9 _ 0 _ 3 _ 4 _"), shipped());
  EXPECT_EQ(clear.text, "QU09034");
  EXPECT_EQ(clear.country, "us");
}

TEST(Formats, PriorMustBeInRange) {
  auto bad = FormatSet::parse(R"({"formats":[{"country":"us","name":"g","pattern":"[0-9]{3}","example":"123","prior":0}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("prior"), std::string::npos);
  auto good = FormatSet::parse(R"({"formats":[{"country":"us","name":"g","pattern":"[0-9]{3}","example":"123","prior":0.5}]})");
  ASSERT_TRUE(good.ok()) << good.error();
  EXPECT_FLOAT_EQ(good->formats()[0].prior, 0.5f);
}

TEST(Decode, ResolvesOAndZeroByPosition) {
  // The reader prefers 'O' at a digit position of a Czech plate; no format takes 'O' there.
  const CtcOutput out = make_output("_ 1 _ A _ B _ 2 _ O:.55,0:.4 _ 4 _ 5 _");
  const Decoded d = decode(out, shipped());
  EXPECT_EQ(d.text, "1AB2045");
  EXPECT_EQ(d.country, "cz");
  EXPECT_TRUE(d.fits_format);
  EXPECT_NEAR(d.confidence, ctc_probability(out, "1AB2045"), 1e-7);
  EXPECT_LT(d.confidence, ctc_probability(out, "1AB2O45"));
  ASSERT_TRUE(has_candidate(d, "1AB2O45"));
  const auto& greedy = d.candidates[1];
  EXPECT_EQ(greedy.text, "1AB2O45");
  EXPECT_EQ(greedy.country, "");
  ASSERT_EQ(d.char_confidences.size(), 7u);
  EXPECT_NEAR(d.char_confidences[4], 0.4f, 1e-6) << "confidence of the '0' actually chosen";
  EXPECT_NEAR(d.char_confidences[0], 0.9f, 1e-6);
}

TEST(Decode, ResolvesIAndOneByPosition) {
  // "1AB23I5" fits the loose generic US format (US plates do use I), so the camera's country decides.
  const Decoded d =
      decode(make_output("_ 1 _ A _ B _ 2 _ 3 _ I:.6,1:.35 _ 5 _"), shipped(), {.preferred_country = "cz"});
  EXPECT_EQ(d.text, "1AB2315");
  EXPECT_EQ(d.country, "cz");
}

TEST(Decode, ResolvesB8S5Z2ByPositionForThePreferredCountry) {
  struct Case {
    std::string country, script, expected;
  };
  const std::vector<Case> cases = {
      {"gb", "_ A _ B _ 1 _ 2 _ 8:.55,B:.4 _ D _ E _", "AB12BDE"},  // letter position: B
      {"cz", "_ 1 _ A _ B _ 2 _ B:.55,8:.4 _ 4 _ 5 _", "1AB2845"},  // digit position: 8
      {"cz", "_ 1 _ A _ B _ 2 _ 3 _ 4 _ S:.55,5:.4 _", "1AB2345"},  // digit position: 5
      {"gb", "_ A _ B _ 1 _ 2 _ C _ D _ 5:.55,S:.4 _", "AB12CDS"},  // letter position: S
      {"pl", "_ W _ A _ 1 _ Z:.55,2:.4 _ 3 _ 4 _ 5 _", "WA12345"},  // digit position: 2
      {"ro", "_ B _ 1 _ 2 _ 3 _ A _ B _ 2:.55,Z:.4 _", "B123ABZ"},  // letter position: Z
      {"hu", "_ A _ B _ C _ 1 _ 2 _ Z:.55,2:.4 _", "ABC122"},       // digit position: 2
  };
  for (const auto& c : cases) {
    const Decoded d = decode(make_output(c.script), shipped(), {.preferred_country = c.country});
    EXPECT_EQ(d.text, c.expected) << c.script;
    EXPECT_EQ(d.country, c.country) << c.script;
    EXPECT_TRUE(d.fits_format) << c.script;
  }
}

TEST(Decode, PreferredCountryChangesTheWinner) {
  // '5' and 'S' are equally likely: "5AB2345" fits cz, "SAB2345" fits br.
  const CtcOutput out = make_output("_ 5:.45,S:.45 _ A _ B _ 2 _ 3 _ 4 _ 5 _");
  EXPECT_NEAR(ctc_probability(out, "5AB2345"), ctc_probability(out, "SAB2345"), 1e-9);
  const Decoded cz = decode(out, shipped(), {.preferred_country = "cz"});
  EXPECT_EQ(cz.text, "5AB2345");
  EXPECT_EQ(cz.country, "cz");
  const Decoded br = decode(out, shipped(), {.preferred_country = "br"});
  EXPECT_EQ(br.text, "SAB2345");
  EXPECT_EQ(br.country, "br");
  EXPECT_EQ(br.format, "old");
  // The prior ranks, it does not change the reported probability.
  EXPECT_NEAR(cz.confidence, br.confidence, 1e-7);
  // A somewhat more probable other country's read loses to the preferred country's (O/0, S/5 and B/8 look
  // alike: the layout knows better than the network)...
  const CtcOutput skewed = make_output("_ 5:.15,S:.8 _ A _ B _ 2 _ 3 _ 4 _ 5 _");
  EXPECT_EQ(decode(skewed, shipped(), {.preferred_country = "cz"}).text, "5AB2345");
  // ...a much more probable one (30x here) wins, unless the preference is made stronger.
  const CtcOutput sure = make_output("_ 5:.03,S:.9 _ A _ B _ 2 _ 3 _ 4 _ 5 _");
  EXPECT_EQ(decode(sure, shipped(), {.preferred_country = "cz"}).text, "SAB2345");
  EXPECT_EQ(decode(sure, shipped(), {.preferred_country = "cz", .country_prior = 100.0f}).text, "5AB2345");
  EXPECT_EQ(decode(sure, shipped(), {.preferred_country = "cz", .country_prior = 4.0f}).text, "SAB2345");
}

TEST(Decode, CountryOfSharedTextIsTheNarrowestFittingLayout) {
  // Text fitting several countries' layouts is reported as the layout admitting the fewest strings,
  // weighted by its prior: the likeliest to have produced it.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"B68SPK", "ro"},    // Bucharest "B 68 SPK": also Austrian and British prefix layouts
      {"BR07AAC", "ro"},   // county BR (Braila); also the British layout
      {"XY07AAC", "gb"},   // XY is no Romanian county
      {"GU123AB", "at"},   // Austria's serials start 1-9; Slovak "GU 123AB" allows any digit
      {"1AB2345", "cz"},
      {"ABC1D23", "br"}};  // Mercosul, not the generic US catch-all (prior 0.2)
  for (const auto& [text, country] : cases)
    EXPECT_EQ(decode(make_output(plate_script(text)), shipped()).country, country) << text;
}

TEST(Decode, PreferredCountryPicksReportedFormatOfSharedText) {
  const CtcOutput out = make_output(plate_script("AB123CD"));
  EXPECT_FALSE(decode(out, shipped()).country.empty());  // Slovak, Italian and French layouts all fit
  EXPECT_EQ(decode(out, shipped(), {.preferred_country = "fr"}).country, "fr");
  const Decoded it = decode(out, shipped(), {.preferred_country = "it"});
  EXPECT_EQ(it.text, "AB123CD");
  EXPECT_EQ(it.country, "it");
  EXPECT_EQ(it.candidates[0].country, "it");
}

TEST(Decode, KeepsAStringThatFitsNoFormat) {
  for (const std::string preferred : {"", "cz"}) {
    const Decoded d = decode(make_output(plate_script("XYZ")), shipped(), {.preferred_country = preferred});
    EXPECT_EQ(d.text, "XYZ");
    EXPECT_FALSE(d.fits_format);
    EXPECT_EQ(d.country, "");
    EXPECT_EQ(d.format, "");
    ASSERT_FALSE(d.candidates.empty());
    EXPECT_EQ(d.candidates[0].text, "XYZ");
    EXPECT_EQ(d.candidates[0].country, "");
    EXPECT_EQ(d.char_confidences.size(), 3u);
  }
}

TEST(Decode, FormatMinRatioDecidesBetweenFittingAndUnconstrained) {
  // '0' is 200 times less likely than 'O' here.
  const CtcOutput out = make_output("_ 1 _ A _ B _ 2 _ O:.985,0:.005 _ 4 _ 5 _");
  const Decoded kept = decode(out, shipped());
  EXPECT_EQ(kept.text, "1AB2O45");
  EXPECT_FALSE(kept.fits_format);
  EXPECT_EQ(kept.country, "");
  EXPECT_TRUE(has_candidate(kept, "1AB2045"));
  const Decoded fitted = decode(out, shipped(), with_min_ratio(0.001f));
  EXPECT_EQ(fitted.text, "1AB2045");
  EXPECT_TRUE(fitted.fits_format);
  EXPECT_EQ(fitted.country, "cz");
}

TEST(Decode, TopNIsRespectedAndSorted) {
  const CtcOutput out = make_output("_ 1:.5,7:.44 _ A _ B:.5,8:.45 _ 2 _ 3 _ 4 _ 5:.6,6:.35 _");
  for (const int n : {1, 3, 5, 50}) {
    const Decoded d = decode(out, shipped(), with_top_n(n));
    ASSERT_FALSE(d.candidates.empty());
    EXPECT_LE(d.candidates.size(), static_cast<std::size_t>(n));
    if (n <= 5) {
      EXPECT_EQ(d.candidates.size(), static_cast<std::size_t>(n));
    }
    EXPECT_EQ(d.candidates[0].text, d.text);
    EXPECT_EQ(d.text, "1AB2345");
    std::set<std::string> distinct;
    for (std::size_t i = 0; i < d.candidates.size(); ++i) {
      distinct.insert(d.candidates[i].text);
      EXPECT_GE(d.candidates[i].confidence, 0.0f);
      EXPECT_LE(d.candidates[i].confidence, 1.0f);
      if (i > 0) {
        EXPECT_GE(d.candidates[i - 1].confidence, d.candidates[i].confidence) << i;
      }
    }
    EXPECT_EQ(distinct.size(), d.candidates.size());
  }
  const Decoded three = decode(out, shipped(), with_top_n(3));
  EXPECT_EQ(candidate_texts(three), (std::vector<std::string>{"1AB2345", "1A82345", "7AB2345"}));
  EXPECT_EQ(decode(out, shipped(), with_top_n(0)).candidates.size(), 1u);
}

TEST(Decode, DoubledLettersNeedABlank) {
  // With a blank between the A's the Hungarian layout "AABC123" is readable.
  const Decoded apart = decode(make_output("A _ A B C 1 2 3"), shipped(), {.preferred_country = "hu"});
  EXPECT_EQ(apart.text, "AABC123");
  EXPECT_EQ(apart.country, "hu");
  EXPECT_EQ(apart.format, "standard");
  // Without one, two A steps are a single A, and 7 steps cannot hold "AABC123" at all.
  const CtcOutput merged = make_output("A A B C 1 2 3");
  EXPECT_EQ(ctc_probability(merged, "AABC123"), 0.0f);
  const Decoded d = decode(merged, shipped(), {.preferred_country = "hu", .top_n = 100});
  EXPECT_EQ(d.text, "ABC123");
  EXPECT_EQ(d.country, "hu");
  EXPECT_EQ(d.format, "old");
  EXPECT_FALSE(has_candidate(d, "AABC123"));
  for (const auto& c : d.candidates) EXPECT_GT(c.confidence, 0.0f) << c.text;
}

TEST(Decode, GreedyVariantsGiveRealAlternatives) {
  // No format fits any of these, so only the greedy variants can propose them.
  const Decoded subst = decode(make_output("_ X _ Y:.5,V:.4 _ Z _"), shipped());
  EXPECT_EQ(subst.text, "XYZ");
  EXPECT_TRUE(has_candidate(subst, "XVZ"));
  const Decoded doubled = decode(make_output("_ X _ X:.6,_:.3 _ Y _"), shipped());
  EXPECT_EQ(doubled.text, "XXY");
  EXPECT_TRUE(has_candidate(doubled, "XY"));
}

TEST(Decode, ConfidencesAreProbabilities) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    const CtcOutput out = random_output(rng, 24, kAlphabet);
    const Decoded d = decode(out, shipped(), {.preferred_country = trial % 2 ? "de" : ""});
    ASSERT_FALSE(d.candidates.empty());
    EXPECT_EQ(d.candidates[0].text, d.text);
    EXPECT_GE(d.confidence, 0.0f);
    EXPECT_LE(d.confidence, 1.0f);
    EXPECT_EQ(d.char_confidences.size(), d.text.size());
    for (const float c : d.char_confidences) {
      EXPECT_GE(c, 0.0f);
      EXPECT_LE(c, 1.0f);
    }
    for (const auto& c : d.candidates) {
      EXPECT_NEAR(c.confidence, ctc_probability(out, c.text), 1e-6f + 1e-4f * c.confidence) << c.text;
      EXPECT_EQ(c.country.empty(), shipped().match(c.text).empty()) << c.text;
    }
  }
}

TEST(Decode, ConstrainedSearchFindsTheBestAlignmentOfEveryLayout) {
  // Brute force over all paths of small outputs: for each layout, the string of its most probable
  // fitting path must be among the candidates.
  auto formats = FormatSet::parse(R"({"formats": [
      {"country": "xa", "name": "a", "pattern": "[AB]1[AB]", "example": "A1B"},
      {"country": "xb", "name": "b", "pattern": "A[AB1]{1,2}", "example": "AB"},
      {"country": "xc", "name": "c", "pattern": "AA1?|11", "example": "AA1"},
      {"country": "xd", "name": "d", "pattern": "[AB]{3,4}", "example": "ABBA"},
      {"country": "xe", "name": "e", "pattern": "[1C]B", "example": "CB"}]})");
  ASSERT_TRUE(formats.ok()) << formats.error();
  std::mt19937 rng(3);
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const CtcOutput out = random_output(rng, 3 + trial % 4, "AB1");
    std::map<const std::vector<std::string>*, std::pair<double, std::string>> best, runner_up;
    for_each_path(out, [&](const std::vector<int>& path, double p) {
      const std::string text = collapse(path, out.alphabet);
      for (const auto& f : formats->formats()) {
        for (const auto& e : f.expansions) {
          bool fits = e.size() == text.size();
          for (std::size_t i = 0; fits && i < text.size(); ++i)
            fits = e[i].find(text[i]) != std::string::npos;
          if (!fits) continue;
          auto& b = best[&e];
          if (p > b.first) {
            if (b.second != text) runner_up[&e] = b;
            b = {p, text};
          } else if (text != b.second && p > runner_up[&e].first) {
            runner_up[&e] = {p, text};
          }
        }
      }
    });
    const Decoded d = decode(out, *formats, with_top_n(1000));
    for (const auto& [layout, b] : best) {
      if (b.first - runner_up[layout].first < 1e-9 * b.first) continue;  // a tie: either string is right
      EXPECT_TRUE(has_candidate(d, b.second)) << "trial " << trial << " best path string " << b.second;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(Decode, WithoutFormatsReturnsTheGreedyRead) {
  const CtcOutput out = make_output("_ 1 _ A _ B _ 2 _ O:.55,0:.4 _ 4 _ 5 _");
  for (const FormatSet& formats : {FormatSet{}, FormatSet::parse(R"({"formats": []})").value()}) {
    const Decoded d = decode(out, formats);
    EXPECT_EQ(d.text, "1AB2O45");
    EXPECT_FALSE(d.fits_format);
    EXPECT_TRUE(has_candidate(d, "1AB2045"));
  }
}

TEST(Decode, DegenerateOutputs) {
  const Decoded blank = decode(make_output("_ _ _ _"), shipped());
  EXPECT_EQ(blank.text, "");
  EXPECT_FALSE(blank.fits_format);
  ASSERT_FALSE(blank.candidates.empty());
  EXPECT_EQ(blank.candidates[0].text, "");
  EXPECT_TRUE(blank.char_confidences.empty());

  CtcOutput broken = make_output(plate_script("1AB2345"));
  broken.steps += 1;
  const Decoded d = decode(broken, shipped());
  EXPECT_EQ(d.text, "");
  EXPECT_EQ(d.confidence, 0.0f);
  EXPECT_TRUE(d.candidates.empty());

  const Decoded none = decode(CtcOutput{0, kAlphabet, {}}, shipped());
  EXPECT_EQ(none.text, "");
  EXPECT_EQ(none.confidence, 1.0f);

  // Layouts longer than the output can emit are skipped, not half-filled.
  const Decoded shorter = decode(make_output("1 A B"), shipped(), with_top_n(100));
  for (const auto& c : shorter.candidates) EXPECT_LE(c.text.size(), 3u) << c.text;
}

TEST(Decode, AlphabetWithoutSomeFormatCharacters) {
  // A reader that only knows digits and A-F: formats needing other letters cannot fit.
  const std::string alphabet = "0123456789ABCDEF";
  const Decoded d = decode(make_output(plate_script("1AB2345"), alphabet), shipped());
  EXPECT_EQ(d.text, "1AB2345");
  EXPECT_EQ(d.country, "cz");
}

TEST(Decode, FastEnoughOnTheShippedFormats) {
  // A realistic reader output: T = 32, 37 classes, a plate spread over the steps with noise.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> noise(0.0f, 1.0f);
  const std::string plate = "1AB2345";
  CtcOutput out{32, kAlphabet, {}};
  for (int t = 0; t < out.steps; ++t) {
    std::vector<float> row(37);
    for (float& v : row) v = 0.02f * std::pow(noise(rng), 4.0f);
    const int slot = t * static_cast<int>(plate.size()) * 2 / out.steps;  // char, blank, char, ...
    const int cls = slot % 2 == 0 ? static_cast<int>(std::string(kAlphabet).find(plate[slot / 2])) + 1 : 0;
    row[cls] += 1.0f;
    row[1 + static_cast<int>(noise(rng) * 36)] += 0.2f;  // a plausible confusion
    float sum = 0.0f;
    for (const float v : row) sum += v;
    for (const float v : row) out.probs.push_back(v / sum);
  }
  const int runs = 100;
  Decoded d;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) d = decode(out, shipped(), {.preferred_country = i % 2 ? "cz" : ""});
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / runs;
  std::cout << "[          ] decode: " << ms << " ms per call (T=32, 37 classes, "
            << shipped().countries().size() << " countries, " << shipped().formats().size() << " formats)\n";
  EXPECT_EQ(d.text, "1AB2345");
  EXPECT_LT(ms, 25.0) << "a debug build on a busy machine stays well below this";
}

}  // namespace
}  // namespace vigil
