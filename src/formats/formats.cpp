#include "vigil/formats.hpp"

#include <algorithm>
#include <bitset>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace vigil {
namespace {

constexpr int kMaxExpansions = 256;
constexpr int kMaxPlateLength = 16;
constexpr char kSymbols[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr int kSymbolCount = 36;

using CharSet = std::bitset<kSymbolCount>;

int symbol_index(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return 10 + (c - 'A');
  return -1;
}

CharSet digits() {
  CharSet s;
  for (int i = 0; i < 10; ++i) s.set(i);
  return s;
}

std::string to_string(const CharSet& set) {
  std::string out;
  for (int i = 0; i < kSymbolCount; ++i)
    if (set.test(i)) out += kSymbols[i];
  return out;
}

// Thrown inside this file only; parse() turns it into an Error naming the entry.
struct PatternError {
  std::string message;
};

struct Atom {
  CharSet set;
  int min = 1;
  int max = 1;
};

class PatternParser {
 public:
  explicit PatternParser(const std::string& pattern) : p_(pattern) {}

  std::vector<std::vector<Atom>> parse() {
    if (p_.empty()) fail("empty pattern");
    std::vector<std::vector<Atom>> alternatives;
    while (true) {
      alternatives.push_back(parse_sequence());
      if (at_end()) break;
      ++i_;  // parse_sequence stops only at '|' or the end
      if (at_end()) fail("empty alternative after '|'");
    }
    return alternatives;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw PatternError{message}; }
  bool at_end() const { return i_ >= p_.size(); }

  std::vector<Atom> parse_sequence() {
    std::vector<Atom> atoms;
    while (!at_end() && p_[i_] != '|') {
      const char c = p_[i_];
      if (c == '?' || c == '{' || c == '*' || c == '+') {
        if (atoms.empty() || quantified_) fail(std::string("quantifier '") + c + "' has nothing to repeat");
        parse_quantifier(atoms.back());
        quantified_ = true;
        continue;
      }
      atoms.push_back(Atom{parse_atom(), 1, 1});
      quantified_ = false;
    }
    quantified_ = false;
    if (atoms.empty()) fail("empty alternative before '|'");
    return atoms;
  }

  CharSet parse_atom() {
    const char c = p_[i_];
    if (c == '[') return parse_class();
    if (c == ']') fail("unbalanced ']'");
    if (c == '(' || c == ')') fail("groups '(...)' are not supported; use '|' between whole layouts");
    if (c == '}') fail("unbalanced '}'");
    ++i_;
    if (c == '.') return CharSet().set();
    if (c == '\\') return parse_escape();
    const int index = symbol_index(c);
    if (index < 0) {
      fail(std::string("character '") + c +
           "' is not allowed: patterns match normalised text (A-Z, 0-9, upper case)");
    }
    return CharSet().set(index);
  }

  // Called with i_ just past the backslash.
  CharSet parse_escape() {
    if (at_end()) fail("pattern ends with '\\'");
    const char e = p_[i_++];
    if (e == 'd') return digits();
    if (e == 'w') return CharSet().set();
    fail(std::string("unsupported escape '\\") + e + "' (only \\d and \\w)");
  }

  CharSet parse_class() {
    ++i_;  // '['
    bool negate = false;
    if (!at_end() && p_[i_] == '^') {
      negate = true;
      ++i_;
    }
    CharSet set;
    bool empty = true;
    while (true) {
      if (at_end()) fail("unbalanced '['");
      const char c = p_[i_];
      if (c == ']') break;
      empty = false;
      if (c == '\\') {
        ++i_;
        set |= parse_escape();
        continue;
      }
      const int lo = symbol_index(c);
      if (lo < 0) {
        if (c == '[') fail("unbalanced '['");
        fail(std::string("character '") + c + "' in a class is not allowed (A-Z, 0-9, upper case)");
      }
      ++i_;
      if (i_ + 1 < p_.size() && p_[i_] == '-' && p_[i_ + 1] != ']') {
        const char hi_char = p_[i_ + 1];
        const int hi = symbol_index(hi_char);
        const bool same_kind = hi >= 0 && (lo < 10) == (hi < 10);
        if (!same_kind || hi < lo) {
          fail(std::string("bad range '") + c + "-" + hi_char + "' (ranges go upwards within A-Z or 0-9)");
        }
        for (int k = lo; k <= hi; ++k) set.set(k);
        i_ += 2;
      } else {
        set.set(lo);
      }
    }
    ++i_;  // ']'
    if (empty) fail("empty character class '[]'");
    if (negate) set.flip();
    if (set.none()) fail("character class matches no character");
    return set;
  }

  void parse_quantifier(Atom& atom) {
    const char c = p_[i_];
    if (c == '*' || c == '+') {
      fail(std::string("unbounded quantifier '") + c + "' is not supported; use {m,n}");
    }
    ++i_;
    if (c == '?') {
      atom.min = 0;
      atom.max = 1;
      return;
    }
    const std::size_t close = p_.find('}', i_);
    if (close == std::string::npos) fail("unbalanced '{'");
    const std::string body = p_.substr(i_, close - i_);
    const std::string shown = "{" + body + "}";
    i_ = close + 1;
    const std::size_t comma = body.find(',');
    const auto number = [&](const std::string& s) {
      if (s.empty() || s.size() > 3 ||
          !std::all_of(s.begin(), s.end(), [](char d) { return d >= '0' && d <= '9'; })) {
        fail("bad quantifier '" + shown + "': expected {n} or {m,n} with small numbers");
      }
      return std::stoi(s);
    };
    if (comma == std::string::npos) {
      atom.min = atom.max = number(body);
    } else {
      atom.min = number(body.substr(0, comma));
      atom.max = number(body.substr(comma + 1));
      if (atom.min > atom.max) fail("bad quantifier '" + shown + "': minimum above maximum");
    }
  }

  const std::string& p_;
  std::size_t i_ = 0;
  bool quantified_ = false;
};

// Expands each alternative into all repeat-count choices; duplicates (e.g. from "A?A?") are kept once.
std::vector<std::vector<std::string>> expand(const std::string& pattern) {
  const auto alternatives = PatternParser(pattern).parse();
  long long total = 0;
  for (const auto& atoms : alternatives) {
    long long count = 1;
    for (const Atom& a : atoms) {
      count *= a.max - a.min + 1;
      if (count > kMaxExpansions) break;
    }
    total += count;
    if (total > kMaxExpansions) {
      throw PatternError{"expands to more than " + std::to_string(kMaxExpansions) +
                         " fixed-length layouts; split it into several entries"};
    }
  }

  std::vector<std::vector<std::string>> out;
  for (const auto& atoms : alternatives) {
    std::vector<int> counts(atoms.size());
    for (std::size_t k = 0; k < atoms.size(); ++k) counts[k] = atoms[k].min;
    while (true) {
      std::vector<std::string> positions;
      for (std::size_t k = 0; k < atoms.size(); ++k) {
        const std::string set = to_string(atoms[k].set);
        for (int r = 0; r < counts[k]; ++r) positions.push_back(set);
      }
      if (positions.empty()) throw PatternError{"can match empty text"};
      if (positions.size() > static_cast<std::size_t>(kMaxPlateLength)) {
        throw PatternError{"allows " + std::to_string(positions.size()) + " characters, more than the " +
                           std::to_string(kMaxPlateLength) + " a plate can have"};
      }
      if (std::find(out.begin(), out.end(), positions) == out.end()) out.push_back(std::move(positions));
      // Odometer over the repeat counts, last atom fastest.
      int k = static_cast<int>(atoms.size()) - 1;
      while (k >= 0 && counts[k] == atoms[k].max) {
        counts[k] = atoms[k].min;
        --k;
      }
      if (k < 0) break;
      ++counts[k];
    }
  }
  return out;
}

bool fits(const std::vector<std::string>& expansion, const std::string& text) {
  if (expansion.size() != text.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (expansion[i].find(text[i]) == std::string::npos) return false;
  return true;
}

bool fits_any(const PlateFormat& format, const std::string& text) {
  return std::any_of(format.expansions.begin(), format.expansions.end(),
                     [&](const auto& e) { return fits(e, text); });
}

bool valid_country(const std::string& c) {
  return c.size() == 2 && std::all_of(c.begin(), c.end(), [](char ch) { return ch >= 'a' && ch <= 'z'; });
}

Result<std::vector<PlateFormat>> parse_formats(const std::string& json_text, const std::string& source) {
  using nlohmann::json;
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    return Error{source + ": invalid JSON: " + e.what()};
  }
  if (!doc.is_object() || !doc.contains("formats") || !doc["formats"].is_array()) {
    return Error{source + ": expected an object with a \"formats\" array"};
  }
  std::vector<PlateFormat> formats;
  const json& entries = doc["formats"];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const json& entry = entries[i];
    std::string where = source + " entry " + std::to_string(i);
    if (!entry.is_object()) return Error{where + ": expected an object"};
    std::string fields[4];
    const char* names[4] = {"country", "name", "pattern", "example"};
    for (int f = 0; f < 4; ++f) {
      const auto it = entry.find(names[f]);
      if (it == entry.end() || !it->is_string() || it->get<std::string>().empty()) {
        return Error{where + ": missing or empty string field '" + names[f] + "'"};
      }
      fields[f] = it->get<std::string>();
      if (f == 0) where += " (" + fields[0] + ")";
    }
    PlateFormat format{fields[0], fields[1], fields[2], 1.0f, "eu", {}};
    if (const auto it = entry.find("prior"); it != entry.end()) {
      if (!it->is_number() || it->get<double>() <= 0.0 || it->get<double>() > 1.0)
        return Error{where + ": 'prior' must be a number in (0, 1]"};
      format.prior = it->get<float>();
    }
    if (const auto it = entry.find("region"); it != entry.end()) {
      if (!it->is_string() || (it->get<std::string>() != "eu" && it->get<std::string>() != "americas"))
        return Error{where + ": 'region' must be \"eu\" or \"americas\""};
      format.region = it->get<std::string>();
    }
    if (!valid_country(format.country)) {
      return Error{where + ": country '" + format.country +
                   "' must be two lower-case letters (ISO 3166-1 alpha-2)"};
    }
    try {
      format.expansions = expand(format.pattern);
    } catch (const PatternError& e) {
      return Error{where + ": pattern '" + format.pattern + "': " + e.message};
    }
    if (!fits_any(format, normalize_plate(fields[3]))) {
      return Error{where + ": example '" + fields[3] + "' does not match pattern '" + format.pattern + "'"};
    }
    formats.push_back(std::move(format));
  }
  return formats;
}

}  // namespace

std::string normalize_plate(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else if (symbol_index(c) >= 0) {
      out += c;
    }
  }
  return out;
}

int edit_distance(std::string_view a, std::string_view b) {
  std::vector<int> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    int diag = row[0];
    row[0] = static_cast<int>(i);
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const int up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

Result<FormatSet> FormatSet::parse(const std::string& json_text) {
  auto formats = parse_formats(json_text, "formats.json");
  if (!formats) return Error{formats.error()};
  FormatSet set;
  set.formats_ = std::move(*formats);
  set.trie_ = build_trie(set.formats_);
  return set;
}

Result<FormatSet> FormatSet::load(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return Error{"cannot open formats file " + path + ": " + std::strerror(errno)};
  std::string text;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) return Error{"cannot read formats file " + path + ": " + std::strerror(error)};

  auto formats = parse_formats(text, path);
  if (!formats) return Error{formats.error()};
  FormatSet set;
  set.formats_ = std::move(*formats);
  set.trie_ = build_trie(set.formats_);
  return set;
}

std::vector<std::string> FormatSet::countries() const {
  std::vector<std::string> out;
  for (const auto& f : formats_)
    if (std::find(out.begin(), out.end(), f.country) == out.end()) out.push_back(f.country);
  return out;
}

std::vector<const PlateFormat*> FormatSet::match(const std::string& normalized_text) const {
  std::vector<const PlateFormat*> out;
  for (const auto& f : formats_)
    if (fits_any(f, normalized_text)) out.push_back(&f);
  return out;
}

bool FormatSet::has_country(const std::string& country) const {
  return std::any_of(formats_.begin(), formats_.end(), [&](const auto& f) { return f.country == country; });
}

}  // namespace vigil

namespace vigil {

std::string canonical_country(std::string code) {
  std::transform(code.begin(), code.end(), code.begin(), [](unsigned char c) { return std::tolower(c); });
  return code == "uk" ? "gb" : code;
}

Result<Region> parse_region(const std::string& name, const std::string& countries) {
  Region region;
  region.name = name.empty() ? "eu" : name;
  std::transform(region.name.begin(), region.name.end(), region.name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (region.name != "eu" && region.name != "americas" && region.name != "all")
    return Error{"--region: '" + name +
                 "' is not a region: use eu, americas or all (or --countries cz,sk,...)"};
  std::size_t start = 0;
  while (start <= countries.size() && !countries.empty()) {
    const std::size_t end = std::min(countries.find(',', start), countries.size());
    std::string item = countries.substr(start, end - start);
    item.erase(std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }),
               item.end());
    start = end + 1;
    if (item.empty()) continue;
    CountryWeight cw;
    const std::size_t colon = item.find(':');
    cw.country = canonical_country(item.substr(0, colon));
    if (colon != std::string::npos) {
      const std::string w = item.substr(colon + 1);
      char* rest = nullptr;
      cw.weight = std::strtof(w.c_str(), &rest);
      if (w.empty() || rest == nullptr || *rest != '\0' || !(cw.weight > 0.0f) || !std::isfinite(cw.weight))
        return Error{"--countries: '" + item + "' weight must be a number > 0 (e.g. cz:3)"};
    }
    if (!valid_country(cw.country))
      return Error{"--countries: '" + item + "' is not a country code: use two letters (cz, sk, de, ...)"};
    for (const auto& seen : region.countries)
      if (seen.country == cw.country) return Error{"--countries: '" + cw.country + "' is listed twice"};
    region.countries.push_back(std::move(cw));
  }
  return region;
}

std::string to_string(const Region& region) {
  if (region.countries.empty()) return region.name;
  std::string out;
  for (const auto& c : region.countries) {
    if (!out.empty()) out += ',';
    out += c.country;
    if (c.weight != 1.0f) {
      char w[32];
      std::snprintf(w, sizeof w, ":%g", double(c.weight));
      out += w;
    }
  }
  return out;
}

Result<FormatSet> FormatSet::for_region(const Region& region) const {
  FormatSet set;
  if (region.countries.empty()) {
    for (const auto& f : formats_)
      if (region.name == "all" || f.region == region.name) set.formats_.push_back(f);
  } else {
    float top = 0.0f;
    for (const auto& c : region.countries) {
      if (!has_country(c.country)) {
        std::string known;
        for (const auto& k : countries()) known += (known.empty() ? "" : ", ") + k;
        return Error{"unknown country '" + c.country +
                     "': the formats file has none for it; known: " + known};
      }
      top = std::max(top, c.weight);
    }
    for (const auto& f : formats_) {
      for (const auto& c : region.countries) {
        if (c.country != f.country) continue;
        set.formats_.push_back(f);
        set.formats_.back().prior *= c.weight / top;
      }
    }
  }
  if (set.formats_.empty())
    return Error{"region '" + to_string(region) + "' has no plate formats in the formats file"};
  set.trie_ = build_trie(set.formats_);
  return set;
}

}  // namespace vigil
