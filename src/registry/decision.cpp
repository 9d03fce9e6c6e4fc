// What a sighting means: paid, exempt, unpaid or review. A wrong "unpaid" fines an honest driver, so
// anything doubtful goes to a person.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "registry/internal.hpp"
#include "vigil/registry.hpp"

namespace vigil {

Result<std::string> clean_plate(const std::string& text, std::size_t max_length) {
  if (max_length == 0) max_length = kPlateMaxLength;
  const std::string shown = "plate '" + text.substr(0, 40) + "'";
  for (const char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ' ||
                    c == '-' || c == '.';
    if (!ok) {
      char b[64];
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        std::snprintf(b, sizeof b, "byte 0x%02x", static_cast<unsigned char>(c));
      } else {
        std::snprintf(b, sizeof b, "'%c'", c);
      }
      return Error{shown + ": unexpected character " + b + " (letters, digits, spaces, '-' and '.' only)"};
    }
  }
  std::string plate = normalize_plate(text);
  if (plate.empty()) return Error{shown + ": no letters or digits"};
  if (plate.size() > max_length)
    return Error{shown + ": longer than " + std::to_string(max_length) + " characters"};
  return plate;
}

std::vector<std::string> plate_keys(const std::string& plate) {
  std::vector<std::string> keys = {plate};
  for (std::size_t i = 0; i < plate.size(); ++i) {
    std::string k = plate.substr(0, i) + plate.substr(i + 1);
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
  }
  return keys;
}

namespace {

std::string describe(const Record& r) {
  std::string s = std::string(to_string(r.kind)) + " #" + std::to_string(r.id);
  s += r.kind == RecordKind::kVignette ? " (" + r.product + ")" : " (" + r.reason + ")";
  return s;
}

}  // namespace

Decision decide(const PlateRead& read, Timestamp t, const std::vector<Record>& records,
                const FormatSet* formats, const DecisionOptions& options) {
  const std::string plate = normalize_plate(read.text);
  std::vector<const Record*> active;
  for (const auto& r : records)
    if (r.active_at(t)) active.push_back(&r);
  // Several records may cover t; the one valid longest explains the decision best.
  std::sort(active.begin(), active.end(), [](const Record* a, const Record* b) {
    return a->valid_to != b->valid_to ? a->valid_to > b->valid_to : a->id < b->id;
  });
  auto found = [&](const Record& r, Verdict v) {
    Decision d{v, describe(r), r.id, r.plate};
    if (r.valid_to != kForever) d.reason += " valid until " + format_timestamp(r.valid_to);
    return d;
  };
  if (!plate.empty()) {
    for (const Record* r : active)
      if (r->plate == plate && r->kind == RecordKind::kVignette) return found(*r, Verdict::kPaid);
    for (const Record* r : active)
      if (r->plate == plate && r->kind == RecordKind::kExemption) return found(*r, Verdict::kExempt);
  }
  if (plate.empty()) return {Verdict::kReview, "empty read", 0, ""};
  if (!(read.confidence >= options.review_confidence_min)) {
    char b[96];
    std::snprintf(b, sizeof b, "low confidence %.2f (below %.2f)", read.confidence,
                  options.review_confidence_min);
    return {Verdict::kReview, b, 0, ""};
  }
  const bool fits = formats ? !formats->match(plate).empty() : read.fits_format.value_or(true);
  if (!fits) return {Verdict::kReview, "read '" + plate + "' fits no plate format", 0, ""};
  for (const Record* r : active) {
    if (edit_distance(r->plate, plate) == 1)
      return {Verdict::kReview, "one character from " + r->plate + ", which has " + describe(*r), r->id,
              r->plate};
  }
  for (const auto& alt : read.alternatives) {
    const std::string a = normalize_plate(alt);
    if (a.empty() || a == plate) continue;
    for (const Record* r : active)
      if (r->plate == a)
        return {Verdict::kReview, "alternative read " + a + " has " + describe(*r), r->id, r->plate};
  }
  return {Verdict::kUnpaid, "no vignette or exemption valid at " + format_timestamp(t), 0, ""};
}

}  // namespace vigil
