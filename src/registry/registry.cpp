// The registry over any SQL backend (see db.hpp): validation, records, decisions, sightings, tokens.
#include "vigil/registry.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "common/base64.hpp"
#include "registry/db.hpp"
#include "registry/internal.hpp"

namespace vigil {

using db::as_double;
using db::as_int;
using db::as_text;
using db::is_null;
using db::Value;

namespace {

constexpr std::size_t kBatchMax = 10000;
constexpr std::size_t kAlternativesMax = 10;
constexpr std::size_t kImageMax = 16 << 20;  // per evidence JPEG; the server's own limit is lower

RegistryError invalid(std::string m) { return {Failure::kInvalid, std::move(m)}; }

std::int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp from_ms(std::int64_t v) { return Timestamp{std::chrono::milliseconds{v}}; }
std::optional<Timestamp> opt_time(const Value& v) {
  if (is_null(v)) return std::nullopt;
  return from_ms(as_int(v));
}

// Printable ASCII without control characters, at most max_len bytes; "" allowed.
std::optional<std::string> check_text(const std::string& what, const std::string& s, std::size_t max_len) {
  if (s.size() > max_len) return what + ": longer than " + std::to_string(max_len) + " characters";
  // Notes are free text and may have several lines; identifiers may not.
  const bool multiline = what == "note";
  for (const char c : s) {
    const bool line_break = c == '\n' || c == '\t' || c == '\r';
    if ((static_cast<unsigned char>(c) < 0x20 && !(multiline && line_break)) || c == 0x7f)
      return what + ": control characters are not allowed";
  }
  return std::nullopt;
}

bool valid_camera_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") ==
             std::string::npos;
}

RegistryResult<std::string> check_country(const std::string& country) {
  std::string c = country;
  for (auto& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (c.size() != 2 || !std::isalpha(static_cast<unsigned char>(c[0])) ||
      !std::isalpha(static_cast<unsigned char>(c[1])))
    return invalid("country '" + country.substr(0, 20) + "': expected a two-letter ISO code like cz");
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Rows

const char* kRecordColumns =
    "id, kind, plate, country, product, reason, vehicle_category, order_id, note, valid_from, valid_to, "
    "created_at, refunded_at";

Record to_record(const db::Row& r) {
  Record x;
  x.id = as_int(r[0]);
  x.kind = as_text(r[1]) == "exemption" ? RecordKind::kExemption : RecordKind::kVignette;
  x.plate = as_text(r[2]);
  x.country = as_text(r[3]);
  x.product = as_text(r[4]);
  x.reason = as_text(r[5]);
  x.vehicle_category = as_text(r[6]);
  x.order_id = as_text(r[7]);
  x.note = as_text(r[8]);
  x.valid_from = from_ms(as_int(r[9]));
  x.valid_to = from_ms(as_int(r[10]));
  x.created = from_ms(as_int(r[11]));
  x.refunded = opt_time(r[12]);
  return x;
}

const char* kSightingColumns =
    "id, event_id, camera_id, seen_at, plate, country, confidence, fits_format, alternatives, decision, "
    "reason, "
    "record_id, matched_plate, outcome, received_at, event, resolved_at, resolved_by, resolution, "
    "resolved_plate, resolution_note, images";

Verdict parse_verdict(const std::string& s) {
  for (const Verdict v : {Verdict::kPaid, Verdict::kExempt, Verdict::kUnpaid, Verdict::kReview})
    if (s == to_string(v)) return v;
  return Verdict::kReview;
}

Outcome to_outcome(Verdict v) {
  switch (v) {
    case Verdict::kPaid:
      return Outcome::kPaid;
    case Verdict::kExempt:
      return Outcome::kExempt;
    case Verdict::kUnpaid:
      return Outcome::kUnpaid;
    case Verdict::kReview:
      return Outcome::kReview;
  }
  return Outcome::kReview;
}

std::optional<Outcome> parse_outcome(const std::string& s) {
  for (const Outcome o :
       {Outcome::kPaid, Outcome::kExempt, Outcome::kUnpaid, Outcome::kReview, Outcome::kDismissed})
    if (s == to_string(o)) return o;
  return std::nullopt;
}

std::string join_plates(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

std::vector<std::string> split_plates(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

StoredSighting to_sighting(const db::Row& r) {
  StoredSighting x;
  x.id = as_int(r[0]);
  x.sighting.event_id = as_text(r[1]);
  x.sighting.camera_id = as_text(r[2]);
  x.sighting.time = from_ms(as_int(r[3]));
  x.sighting.read.text = as_text(r[4]);
  x.sighting.read.country = as_text(r[5]);
  x.sighting.read.confidence = static_cast<float>(as_double(r[6]));
  if (!is_null(r[7])) x.sighting.read.fits_format = as_int(r[7]) != 0;
  x.sighting.read.alternatives = split_plates(as_text(r[8]));
  x.decision.verdict = parse_verdict(as_text(r[9]));
  x.decision.reason = as_text(r[10]);
  x.decision.record_id = as_int(r[11]);
  x.decision.matched_plate = as_text(r[12]);
  x.outcome = parse_outcome(as_text(r[13])).value_or(Outcome::kReview);
  x.received = from_ms(as_int(r[14]));
  x.sighting.event_json = as_text(r[15]);
  x.resolved = opt_time(r[16]);
  x.resolved_by = as_int(r[17]);
  x.resolution = as_text(r[18]);
  x.resolved_plate = as_text(r[19]);
  x.resolution_note = as_text(r[20]);
  const std::string images = " " + as_text(r[21]) + " ";
  x.plate_image = images.find(" plate ") != std::string::npos;
  x.frame_image = images.find(" frame ") != std::string::npos;
  return x;
}

TokenInfo to_token(const db::Row& r) {
  TokenInfo t;
  t.id = as_int(r[0]);
  t.role = parse_role(as_text(r[1])).value_or(Role::kOperator);
  t.camera_id = as_text(r[2]);
  t.note = as_text(r[3]);
  t.created = from_ms(as_int(r[4]));
  t.revoked = opt_time(r[5]);
  return t;
}

// "$1, $2, ..." for n parameters starting at first.
std::string placeholders(std::size_t first, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += (i ? ", $" : "$") + std::to_string(first + i);
  return s;
}

// Whether two records describe the same order (a repeated request), ignoring id and times of storage.
bool same_order(const Record& a, const Record& b) {
  return a.kind == b.kind && a.plate == b.plate && a.country == b.country && a.product == b.product &&
         a.reason == b.reason && a.vehicle_category == b.vehicle_category && a.valid_from == b.valid_from &&
         a.valid_to == b.valid_to;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

struct Registry::Impl {
  RegistryOptions options;
  std::unique_ptr<db::Database> db;

  Timestamp now() const {
    if (options.clock) return options.clock();
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  }

  // Checks a plate typed for a record: characters, length, and its country's formats when known.
  RegistryResult<std::string> record_plate(const std::string& text, const std::string& country) const {
    auto plate = clean_plate(text);
    if (!plate) return invalid(plate.error());
    if (const auto& f = options.formats; f && f->has_country(country)) {
      bool fits = false;
      for (const auto* m : f->match(*plate)) fits = fits || m->country == country;
      if (!fits) return invalid("plate '" + *plate + "' fits no " + country + " plate format");
    }
    return *plate;
  }

  RegistryResult<Record> vignette_record(const VignetteOrder& o) const {
    auto country = check_country(o.country);
    if (!country) return country.error_detail();
    auto plate = record_plate(o.plate, *country);
    if (!plate) return plate.error_detail();
    const Product* p = options.catalog.find(o.product);
    if (!p)
      return invalid("product '" + o.product.substr(0, 40) + "' unknown (known: " + options.catalog.ids() +
                     ")");
    if (!o.start.ok()) return invalid("start: not a valid day");
    for (const auto& [what, text, max] :
         {std::tuple{"vehicle_category", &o.vehicle_category, 32}, std::tuple{"order_id", &o.order_id, 128},
          std::tuple{"note", &o.note, 1000}})
      if (auto bad = check_text(what, *text, static_cast<std::size_t>(max))) return invalid(*bad);
    Record r;
    r.kind = RecordKind::kVignette;
    r.plate = *plate;
    r.country = *country;
    r.product = p->id;
    r.vehicle_category = o.vehicle_category;
    r.order_id = o.order_id;
    r.note = o.note;
    std::tie(r.valid_from, r.valid_to) = options.catalog.validity(*p, o.start);
    return r;
  }

  // Stores r (inside the caller's write transaction) unless its order id is already stored: then the
  // stored record is returned when it is the same order, else kConflict.
  RegistryResult<Added> insert_record(db::Connection& c, Record r) const {
    // The record stored with r's order id: the same order again, or a conflict; nullopt when none.
    auto stored = [&]() -> RegistryResult<std::optional<Added>> {
      auto rows = c.query(std::string("SELECT ") + kRecordColumns + " FROM records WHERE order_id = $1",
                          {r.order_id});
      if (!rows) return rows.error_detail();
      if (rows->empty()) return std::optional<Added>{};
      Record old = to_record(rows->front());
      if (same_order(old, r)) return std::optional<Added>{Added{old, false}};
      return RegistryError{Failure::kConflict, "order id '" + r.order_id + "' is already " +
                                                   to_string(old.kind) + " #" + std::to_string(old.id) +
                                                   " for plate " + old.plate + " with other details"};
    };
    if (!r.order_id.empty()) {
      auto old = stored();
      if (!old) return old.error_detail();
      if (*old) return **old;
    }
    r.created = now();
    auto ins = c.query(
        "INSERT INTO records (kind, plate, country, product, reason, vehicle_category, order_id, note, "
        "valid_from, "
        "valid_to, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (order_id) "
        "DO NOTHING RETURNING id",
        {std::string(to_string(r.kind)), r.plate, r.country, r.product, r.reason, r.vehicle_category,
         db::null_if_empty(r.order_id), r.note, ms(r.valid_from), ms(r.valid_to), ms(r.created)});
    if (!ins) return ins.error_detail();
    if (ins->empty()) {
      // Another server stored the same order id since the check above (PostgreSQL: writers run in
      // parallel, and the insert waited for theirs to commit).
      auto old = stored();
      if (!old) return old.error_detail();
      if (*old) return **old;
      return RegistryError{Failure::kBusy,
                           "order id '" + r.order_id + "' is being stored by another call; try again"};
    }
    r.id = as_int(ins->front().front());
    for (const auto& k : plate_keys(r.plate)) {
      auto key = c.query("INSERT INTO plate_keys (key, record_id) VALUES ($1, $2)", {k, r.id});
      if (!key) return key.error_detail();
    }
    return Added{r, true};
  }

  RegistryResult<Added> add(const Record& r) {
    auto c = db->acquire();
    if (!c) return c.error_detail();
    return db::transaction(**c, true, [&] { return insert_record(**c, r); });
  }

  // Records active at t that could concern the read: its plate, plates one edit away, its alternatives.
  RegistryResult<std::vector<Record>> candidates(db::Connection& c, const PlateRead& read,
                                                 Timestamp t) const {
    const std::string plate = normalize_plate(read.text);
    std::vector<std::string> keys = plate.empty() ? std::vector<std::string>{} : plate_keys(plate);
    for (std::size_t i = 0; i < read.alternatives.size() && i < kAlternativesMax; ++i) {
      const std::string a = normalize_plate(read.alternatives[i]);
      if (!a.empty() && std::find(keys.begin(), keys.end(), a) == keys.end()) keys.push_back(a);
    }
    if (keys.empty()) return std::vector<Record>{};
    std::string sql = "SELECT ";
    for (std::string_view col : {"id", "kind", "plate", "country", "product", "reason", "vehicle_category",
                                 "order_id", "note", "valid_from", "valid_to", "created_at", "refunded_at"})
      sql += (sql.size() > 7 ? ", r." : "r.") + std::string(col);
    sql +=
        " FROM records r WHERE r.valid_from <= $1 AND r.valid_to > $1 AND "
        "(r.refunded_at IS NULL OR r.refunded_at > $1) AND r.id IN (SELECT record_id FROM plate_keys WHERE "
        "key IN (" +
        placeholders(2, keys.size()) + "))";
    std::vector<Value> params = {ms(t)};
    for (auto& k : keys) params.emplace_back(k);
    auto rows = c.query(sql, params);
    if (!rows) return rows.error_detail();
    std::vector<Record> out;
    for (const auto& r : *rows) out.push_back(to_record(r));
    return out;
  }

  RegistryResult<Decision> decide_on(db::Connection& c, const PlateRead& read, Timestamp t) const {
    auto recs = candidates(c, read, t);
    if (!recs) return recs.error_detail();
    return vigil::decide(read, t, *recs, options.formats.get(), options.decision);
  }

  // The decisions for a batch, with a few queries for all of it instead of one per read: the records
  // under any of the batch's keys, valid at some time of the batch, are a superset of each read's
  // candidates, which is all decide() needs. One statement shape (kKeysPerQuery keys, the last repeated
  // to fill it), so each connection prepares it once.
  RegistryResult<std::vector<Decision>> decide_batch(db::Connection& c,
                                                     const std::vector<Sighting>& batch) const {
    constexpr std::size_t kKeysPerQuery = 32;
    std::set<std::string> keys;
    Timestamp first = Timestamp::max(), last = Timestamp::min();
    for (const auto& s : batch) {
      const std::string plate = normalize_plate(s.read.text);
      if (!plate.empty())
        for (auto& k : plate_keys(plate)) keys.insert(std::move(k));
      for (std::size_t i = 0; i < s.read.alternatives.size() && i < kAlternativesMax; ++i)
        if (auto a = normalize_plate(s.read.alternatives[i]); !a.empty()) keys.insert(std::move(a));
      first = std::min(first, s.time);
      last = std::max(last, s.time);
    }
    static const std::string sql = [] {
      std::string q = "SELECT ";
      for (std::string_view col : {"id", "kind", "plate", "country", "product", "reason", "vehicle_category",
                                   "order_id", "note", "valid_from", "valid_to", "created_at", "refunded_at"})
        q += (q.size() > 7 ? ", r." : "r.") + std::string(col);
      return q +
             " FROM records r WHERE r.valid_from <= $1 AND r.valid_to > $2 AND (r.refunded_at IS NULL OR "
             "r.refunded_at > $2) AND r.id IN (SELECT record_id FROM plate_keys WHERE key IN (" +
             placeholders(3, kKeysPerQuery) + "))";
    }();
    std::vector<Record> records;
    std::set<std::int64_t> seen;
    for (auto it = keys.begin(); it != keys.end();) {
      std::vector<Value> params = {ms(last), ms(first)};
      for (std::size_t n = 0; n < kKeysPerQuery; ++n) {
        params.emplace_back(*it);
        if (std::next(it) != keys.end() && n + 1 < kKeysPerQuery) ++it;
      }
      ++it;
      auto rows = c.query(sql, params);
      if (!rows) return rows.error_detail();
      for (const auto& r : *rows)
        if (seen.insert(as_int(r[0])).second) records.push_back(to_record(r));
    }
    std::vector<Decision> out;
    out.reserve(batch.size());
    for (const auto& s : batch)
      out.push_back(vigil::decide(s.read, s.time, records, options.formats.get(), options.decision));
    return out;
  }

  RegistryResult<StoredSighting> load_sighting(db::Connection& c, std::int64_t id) const {
    auto rows = c.query(std::string("SELECT ") + kSightingColumns + " FROM sightings WHERE id = $1", {id});
    if (!rows) return rows.error_detail();
    if (rows->empty()) return RegistryError{Failure::kNotFound, "no sighting #" + std::to_string(id)};
    return to_sighting(rows->front());
  }

  // INSERT of n sightings that skips event ids already stored and returns the new rows' id, event_id.
  static const std::string& insert_sightings_sql(std::size_t n) {
    static const auto make = [](std::size_t rows) {
      std::string q =
          "INSERT INTO sightings (event_id, camera_id, seen_at, plate, country, confidence, fits_format, "
          "alternatives, decision, reason, record_id, matched_plate, outcome, received_at, event) VALUES ";
      for (std::size_t k = 0; k < rows; ++k) q += (k ? ", (" : "(") + placeholders(k * 15 + 1, 15) + ")";
      return q + " ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id";
    };
    static const std::string one = make(1), four = make(4), sixteen = make(16);
    return n >= 16 ? sixteen : n >= 4 ? four : one;
  }

  // Stores a validated, decided batch inside the caller's write transaction. Idempotent by event id; an
  // id stored for another camera fails the batch (kConflict) and the caller must roll it back.
  RegistryResult<std::vector<IngestResult>> store_batch(db::Connection& c, const std::vector<Sighting>& clean,
                                                        const std::vector<Decision>& decisions,
                                                        Timestamp received) const {
    // Rows are inserted in event id order: two batches sharing ids then lock them in the same order and
    // never deadlock (PostgreSQL). A repeated id keeps its first occurrence first.
    std::vector<std::size_t> order(clean.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return clean[a].event_id < clean[b].event_id; });
    // Several rows per statement (16, 4 or 1: a few statement shapes to prepare), in that order.
    std::map<std::string, std::int64_t> inserted;  // event id -> new row id
    for (std::size_t pos = 0; pos < order.size();) {
      const std::size_t left = order.size() - pos, n = left >= 16 ? 16 : left >= 4 ? 4 : 1;
      std::vector<Value> params;
      params.reserve(n * 15);
      for (std::size_t k = 0; k < n; ++k) {
        const auto& s = clean[order[pos + k]];
        const auto& d = decisions[order[pos + k]];
        for (Value v :
             {Value{s.event_id}, Value{s.camera_id}, Value{ms(s.time)}, Value{s.read.text},
              Value{s.read.country}, Value{static_cast<double>(s.read.confidence)},
              s.read.fits_format ? Value{std::int64_t{*s.read.fits_format}} : Value{},
              Value{join_plates(s.read.alternatives)}, Value{std::string(to_string(d.verdict))},
              Value{d.reason}, d.record_id ? Value{d.record_id} : Value{}, Value{d.matched_plate},
              Value{std::string(to_string(to_outcome(d.verdict)))}, Value{ms(received)}, Value{s.event_json}})
          params.push_back(std::move(v));
      }
      auto ins = c.query(insert_sightings_sql(n), params);
      if (!ins) return ins.error_detail();
      for (const auto& row : *ins) inserted.emplace(as_text(row[1]), as_int(row[0]));
      pos += n;
    }
    std::vector<IngestResult> out(clean.size());
    for (const std::size_t i : order) {
      const auto& s = clean[i];
      const auto& d = decisions[i];
      IngestResult r;
      // The first occurrence of an id took the new row; a repeat inside the batch is a duplicate of it.
      if (auto it = inserted.find(s.event_id); it != inserted.end() && it->second != 0) {
        r.stored.id = it->second;
        it->second = 0;
        r.stored.sighting = s;
        r.stored.decision = d;
        r.stored.outcome = to_outcome(d.verdict);
        r.stored.received = received;
        if (auto stored = store_images(c, r.stored.id, s); !stored) return stored.error_detail();
        r.stored.plate_image = !s.plate_jpeg.empty();
        r.stored.frame_image = !s.frame_jpeg.empty();
        r.stored.sighting.plate_jpeg.clear();
        r.stored.sighting.frame_jpeg.clear();
      } else {
        auto rows = c.query(std::string("SELECT ") + kSightingColumns + " FROM sightings WHERE event_id = $1",
                            {s.event_id});
        if (!rows) return rows.error_detail();
        if (rows->empty()) return RegistryError{Failure::kStorage, "sighting " + s.event_id + " vanished"};
        r.stored = to_sighting(rows->front());
        r.duplicate = true;
        if (r.stored.sighting.camera_id != s.camera_id)
          return RegistryError{Failure::kConflict, "sightings[" + std::to_string(i) + "].id: event id '" +
                                                       s.event_id + "' is already stored for another camera"};
        // A retry sends the same event again; the same id with other content is a client's bug, and
        // answering "duplicate" would drop that content silently.
        if (r.stored.sighting.event_json != s.event_json)
          return RegistryError{Failure::kConflict, "sightings[" + std::to_string(i) + "].id: event id '" +
                                                       s.event_id + "' is already stored with other content"};
      }
      out[i] = std::move(r);
    }
    return out;
  }

  // Group commit (SQLite): one transaction at a time may write and each commit waits for the disk
  // (synchronous=FULL), so batches that arrive while another is being committed are stored together in
  // the next transaction, with one commit for all. Each batch keeps its own outcome (a savepoint each).
  struct PendingBatch {
    const std::vector<Sighting>* clean;
    const std::vector<Decision>* decisions;
    Timestamp received;
    std::optional<RegistryResult<std::vector<IngestResult>>> result;
  };
  static constexpr std::size_t kGroupRowsMax = 5000;  // sightings per grouped transaction
  std::mutex group_mutex;
  std::condition_variable group_cv;
  std::deque<PendingBatch*> group_pending;
  bool group_writing = false;

  RegistryResult<std::vector<IngestResult>> store_grouped(PendingBatch& mine) {
    std::unique_lock lock(group_mutex);
    group_pending.push_back(&mine);
    for (;;) {
      group_cv.wait(lock, [&] { return mine.result.has_value() || !group_writing; });
      if (mine.result) return std::move(*mine.result);
      // No transaction is being written: this thread writes the next one with what is waiting.
      group_writing = true;
      std::vector<PendingBatch*> round;
      std::size_t rows = 0;
      while (!group_pending.empty() &&
             (round.empty() || rows + group_pending.front()->clean->size() <= kGroupRowsMax)) {
        rows += group_pending.front()->clean->size();
        round.push_back(group_pending.front());
        group_pending.pop_front();
      }
      lock.unlock();
      store_round(round);
      lock.lock();
      group_writing = false;
      group_cv.notify_all();
    }
  }

  void store_round(const std::vector<PendingBatch*>& round) {
    auto fail_all = [&](const RegistryError& e) {
      for (auto* b : round)
        if (!b->result) b->result = e;
    };
    auto c = db->acquire();
    if (!c) return fail_all(c.error_detail());
    if (round.size() == 1) {
      auto* b = round.front();
      b->result =
          db::transaction(**c, true, [&] { return store_batch(**c, *b->clean, *b->decisions, b->received); });
      return;
    }
    if (auto begun = (*c)->begin(true); !begun) return fail_all(begun.error_detail());
    std::vector<std::optional<std::vector<IngestResult>>> stored(round.size());
    for (std::size_t k = 0; k < round.size(); ++k) {
      auto* b = round[k];
      if (auto sp = (*c)->query("SAVEPOINT vigil_batch"); !sp) {
        (*c)->rollback();
        return fail_all(sp.error_detail());
      }
      auto r = store_batch(**c, *b->clean, *b->decisions, b->received);
      if (r) {
        stored[k] = std::move(*r);
      } else {
        b->result = std::move(r);  // final: nothing of this batch stays
        if (auto undo = (*c)->query("ROLLBACK TO vigil_batch"); !undo) {
          (*c)->rollback();
          return fail_all(undo.error_detail());
        }
      }
      if (auto released = (*c)->query("RELEASE vigil_batch"); !released) {
        (*c)->rollback();
        return fail_all(released.error_detail());
      }
    }
    if (auto done = (*c)->commit(); !done) {
      (*c)->rollback();
      return fail_all(done.error_detail());
    }
    for (std::size_t k = 0; k < round.size(); ++k)
      if (stored[k]) round[k]->result = std::move(*stored[k]);
  }

  // The evidence of a sighting just inserted, in the caller's transaction.
  RegistryResult<bool> store_images(db::Connection& c, std::int64_t id, const Sighting& s) const {
    std::string kinds;
    for (const auto& [kind, jpeg] : {std::pair{"plate", &s.plate_jpeg}, std::pair{"frame", &s.frame_jpeg}}) {
      if (jpeg->empty()) continue;
      auto ins = c.query("INSERT INTO sighting_images (sighting_id, kind, jpeg_base64) VALUES ($1, $2, $3)",
                         {id, std::string(kind), base64_encode(*jpeg)});
      if (!ins) return ins.error_detail();
      kinds += (kinds.empty() ? "" : " ") + std::string(kind);
    }
    if (!kinds.empty())
      if (auto up = c.query("UPDATE sightings SET images = $1 WHERE id = $2", {kinds, id}); !up)
        return up.error_detail();
    return true;
  }
};

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;
Registry::~Registry() = default;

Result<Registry> Registry::open(const std::string& url, RegistryOptions options) {
  auto db = db::open_database(url, options.busy_timeout_ms, options.connections);
  if (!db) return Error{db.error()};
  {
    auto c = (*db)->acquire();
    if (!c) return Error{c.error()};
    auto v = db::migrate(**c, (*db)->dialect());
    if (!v) return Error{v.error()};
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->db = std::move(*db);
  return Registry(std::move(impl));
}

const RegistryOptions& Registry::options() const { return impl_->options; }
Timestamp Registry::now() const { return impl_->now(); }
int Registry::latest_schema_version() { return db::migrations().back().version; }
std::string Registry::describe() const { return impl_->db->describe(); }

RegistryResult<int> Registry::schema_version() const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return db::schema_version(**c);
}

RegistryResult<Added> Registry::add_vignette(const VignetteOrder& order) {
  auto r = impl_->vignette_record(order);
  if (!r) return r.error_detail();
  return impl_->add(*r);
}

RegistryResult<Added> Registry::add_exemption(const ExemptionRequest& q) {
  auto country = check_country(q.country);
  if (!country) return country.error_detail();
  auto plate = impl_->record_plate(q.plate, *country);
  if (!plate) return plate.error_detail();
  if (q.reason.empty()) return invalid("reason: required (emergency, electric, ...)");
  for (const auto& [what, text, max] :
       {std::tuple{"reason", &q.reason, 64}, std::tuple{"order_id", &q.order_id, 128},
        std::tuple{"note", &q.note, 1000}})
    if (auto bad = check_text(what, *text, static_cast<std::size_t>(max))) return invalid(*bad);
  if (!q.from.ok()) return invalid("from: not a valid day");
  if (q.until && (!q.until->ok() || *q.until < q.from))
    return invalid("until: must be a day on or after from (" + format_day(q.from) + ")");
  Record r;
  r.kind = RecordKind::kExemption;
  r.plate = *plate;
  r.country = *country;
  r.reason = q.reason;
  r.order_id = q.order_id;
  r.note = q.note;
  const auto& zone = impl_->options.catalog.zone;
  r.valid_from = zone.start_of_day(q.from);
  r.valid_to =
      q.until ? zone.start_of_day(Day{std::chrono::sys_days{*q.until} + std::chrono::days{1}}) : kForever;
  return impl_->add(r);
}

RegistryResult<Record> Registry::refund(std::int64_t id, RecordKind kind) {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return db::transaction(**c, true, [&]() -> RegistryResult<Record> {
    auto rows = (*c)->query(std::string("SELECT ") + kRecordColumns + " FROM records WHERE id = $1", {id});
    if (!rows) return rows.error_detail();
    if (rows->empty() || to_record(rows->front()).kind != kind)
      return RegistryError{Failure::kNotFound,
                           std::string("no ") + to_string(kind) + " #" + std::to_string(id)};
    Record r = to_record(rows->front());
    if (r.refunded) return r;
    r.refunded = impl_->now();
    auto up =
        (*c)->query("UPDATE records SET refunded_at = $1 WHERE id = $2 AND refunded_at IS NULL RETURNING id",
                    {ms(*r.refunded), id});
    if (!up) return up.error_detail();
    if (up->empty()) {  // refunded meanwhile by another server: that refund stands
      auto now = (*c)->query(std::string("SELECT ") + kRecordColumns + " FROM records WHERE id = $1", {id});
      if (!now) return now.error_detail();
      return to_record(now->front());
    }
    return r;
  });
}

RegistryResult<Record> Registry::record(std::int64_t id) const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query(std::string("SELECT ") + kRecordColumns + " FROM records WHERE id = $1", {id});
  if (!rows) return rows.error_detail();
  if (rows->empty()) return RegistryError{Failure::kNotFound, "no record #" + std::to_string(id)};
  return to_record(rows->front());
}

RegistryResult<std::vector<Record>> Registry::records_for_plate(const std::string& plate) const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query(std::string("SELECT ") + kRecordColumns +
                              " FROM records WHERE plate = $1 ORDER BY valid_to DESC, id DESC",
                          {normalize_plate(plate)});
  if (!rows) return rows.error_detail();
  std::vector<Record> out;
  for (const auto& r : *rows) out.push_back(to_record(r));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// CSV import

namespace {

struct CsvRow {
  int line = 0;
  std::vector<std::string> fields;
};

// RFC 4180 with either line ending; a record's line is where it starts.
Result<std::vector<CsvRow>> parse_csv(std::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  std::vector<CsvRow> rows;
  CsvRow row{1, {}};
  std::string field;
  bool quoted = false, field_started = false;
  int line = 1;
  auto end_row = [&] {
    row.fields.push_back(std::move(field));
    field.clear();
    field_started = false;
    const bool blank = row.fields.size() == 1 && row.fields[0].empty();
    if (!blank) rows.push_back(std::move(row));
    row = CsvRow{line, {}};
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (quoted) {
      if (ch == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++line;
        field += ch;
      }
      continue;
    }
    if (ch == '"' && !field_started && field.empty()) {
      quoted = field_started = true;
    } else if (ch == ',') {
      row.fields.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      ++line;
      end_row();
    } else {
      field += ch;
      field_started = true;
    }
  }
  if (quoted) return Error{"line " + std::to_string(row.line) + ": quoted field not closed"};
  if (!field.empty() || !row.fields.empty()) end_row();
  return rows;
}

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

}  // namespace

RegistryResult<ImportReport> Registry::import_csv(std::string_view csv, ImportMode mode) {
  auto rows = parse_csv(csv);
  if (!rows) return invalid(rows.error());
  if (rows->empty()) return invalid("CSV is empty: expected a header line (plate,country,product,start,...)");
  if (rows->size() > 100001) return invalid("CSV has more than 100000 rows; split it");
  const std::vector<std::string> known = {"plate",    "country", "product", "start", "vehicle_category",
                                          "order_id", "note"};
  std::vector<int> column(known.size(), -1);
  const auto& header = rows->front().fields;
  for (std::size_t i = 0; i < header.size(); ++i) {
    std::string name = trim(header[i]);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto it = std::find(known.begin(), known.end(), name);
    if (it == known.end())
      return invalid("line 1: unknown column '" + name.substr(0, 40) +
                     "' (columns: plate, country, product, start, vehicle_category, order_id, note)");
    auto& slot = column[static_cast<std::size_t>(it - known.begin())];
    if (slot >= 0) return invalid("line 1: column '" + name + "' appears twice");
    slot = static_cast<int>(i);
  }
  for (std::size_t k = 0; k < 4; ++k)
    if (column[k] < 0) return invalid("line 1: missing column '" + known[k] + "'");

  ImportReport report;
  std::vector<std::pair<int, Record>> good;
  for (std::size_t i = 1; i < rows->size(); ++i) {
    const auto& row = (*rows)[i];
    if (row.fields.size() != header.size()) {
      report.errors.push_back({row.line, "expected " + std::to_string(header.size()) + " fields, found " +
                                             std::to_string(row.fields.size())});
      continue;
    }
    auto field = [&](std::size_t k) {
      return column[k] < 0 ? std::string() : trim(row.fields[static_cast<std::size_t>(column[k])]);
    };
    VignetteOrder o;
    o.plate = field(0);
    o.country = field(1);
    o.product = field(2);
    auto start = parse_day(field(3));
    if (!start) {
      report.errors.push_back({row.line, "start: " + start.error()});
      continue;
    }
    o.start = *start;
    o.vehicle_category = field(4);
    o.order_id = field(5);
    o.note = field(6);
    auto r = impl_->vignette_record(o);
    if (!r) {
      report.errors.push_back({row.line, r.error()});
      continue;
    }
    good.emplace_back(row.line, std::move(*r));
  }

  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  if (auto b = (*c)->begin(true); !b) return b.error_detail();
  for (const auto& [line, r] : good) {
    auto added = impl_->insert_record(**c, r);
    if (!added) {
      if (added.failure() != Failure::kConflict && added.failure() != Failure::kInvalid) {
        (*c)->rollback();
        return added.error_detail();
      }
      report.errors.push_back({line, added.error()});
      continue;
    }
    (added->created ? report.imported : report.existing) += 1;
  }
  std::sort(report.errors.begin(), report.errors.end(),
            [](const ImportRowError& a, const ImportRowError& b) { return a.line < b.line; });
  if (mode == ImportMode::kAllOrNothing && !report.errors.empty()) {
    (*c)->rollback();
    report.imported = report.existing = 0;
    return report;
  }
  if (auto done = (*c)->commit(); !done) {
    (*c)->rollback();
    return done.error_detail();
  }
  report.committed = true;
  return report;
}

// ---------------------------------------------------------------------------------------------------------
// Decisions and sightings

RegistryResult<Decision> Registry::decide(const PlateRead& read, Timestamp t) const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return impl_->decide_on(**c, read, t);
}

RegistryResult<std::vector<IngestResult>> Registry::ingest(const std::vector<Sighting>& batch) {
  if (batch.size() > kBatchMax)
    return invalid("batch of " + std::to_string(batch.size()) + " sightings; at most " +
                   std::to_string(kBatchMax));
  std::vector<Sighting> clean = batch;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    auto& s = clean[i];
    const std::string at = "sightings[" + std::to_string(i) + "]";
    if (s.event_id.empty()) return invalid(at + ".id: required");
    if (auto bad = check_text(at + ".id", s.event_id, 128)) return invalid(*bad);
    if (!valid_camera_id(s.camera_id))
      return invalid(at + ".camera_id: '" + s.camera_id.substr(0, 64) +
                     "' must be 1..64 of A-Z a-z 0-9 _ . : -");
    if (auto bad = check_text(at + ".text", s.read.text, 64)) return invalid(*bad);
    // A read is a plate's letters and digits (spaces, '-' and '.' between groups): anything else is refused,
    // never rewritten, since a plate Vigil did not read must never be fined ("ŘŽČ123" is not "123").
    auto plate = clean_plate(s.read.text, kReadMaxLength);
    if (!plate) return invalid(at + ".text: " + plate.error());
    s.read.text = *plate;
    if (!std::isfinite(s.read.confidence) || s.read.confidence < 0.0f || s.read.confidence > 1.0f)
      return invalid(at + ".confidence: must be a number from 0 to 1");
    if (!s.read.country.empty()) {
      auto country = check_country(s.read.country);
      if (!country) return invalid(at + "." + country.error());
      s.read.country = *country;
    }
    if (s.read.alternatives.size() > kAlternativesMax) s.read.alternatives.resize(kAlternativesMax);
    for (std::size_t k = 0; k < s.read.alternatives.size(); ++k) {
      auto& a = s.read.alternatives[k];
      const std::string where = at + ".candidates[" + std::to_string(k) + "]";
      if (auto bad = check_text(where, a, 64)) return invalid(*bad);
      auto candidate = clean_plate(a, kReadMaxLength);
      if (!candidate) return invalid(where + ": " + candidate.error());
      a = *candidate;
    }
    s.read.alternatives.erase(
        std::remove_if(s.read.alternatives.begin(), s.read.alternatives.end(),
                       [&](const std::string& a) { return a.empty() || a == s.read.text; }),
        s.read.alternatives.end());
    const auto year =
        static_cast<int>(std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(s.time)}.year());
    if (year < 2000 || year > 2999)
      return invalid(at + ".time: " + format_timestamp(s.time) + " is out of range");
    if (s.event_json.size() > 65536) return invalid(at + ": event larger than 64 KiB");
    for (const auto& [name, jpeg] : {std::pair{"plate", &s.plate_jpeg}, std::pair{"frame", &s.frame_jpeg}}) {
      if (jpeg->empty()) continue;
      if (jpeg->size() < 4 || jpeg->compare(0, 3, "\xFF\xD8\xFF") != 0)
        return invalid(at + ".images." + name + ": not a JPEG image");
      if (jpeg->size() > kImageMax)
        return invalid(at + ".images." + name + ": " + std::to_string(jpeg->size()) +
                       " bytes, over the limit of " + std::to_string(kImageMax));
    }
  }
  std::vector<Decision> decisions;
  {
    auto c = impl_->db->acquire();
    if (!c) return c.error_detail();
    auto decided = impl_->decide_batch(**c, clean);
    if (!decided) return decided.error_detail();
    decisions = std::move(*decided);
    if (impl_->db->dialect() != db::Dialect::kSqlite) {
      // PostgreSQL commits concurrent transactions in parallel (and flushes its log for them together).
      const Timestamp received = impl_->now();
      return db::transaction(**c, true, [&] { return impl_->store_batch(**c, clean, decisions, received); });
    }
  }
  Impl::PendingBatch mine{&clean, &decisions, impl_->now(), std::nullopt};
  return impl_->store_grouped(mine);
}

RegistryResult<std::vector<StoredSighting>> Registry::sightings(const SightingQuery& q) const {
  if (q.limit < 1 || q.limit > 1000) return invalid("limit: must be 1..1000");
  std::string sql = std::string("SELECT ") + kSightingColumns + " FROM sightings WHERE id > $1";
  std::vector<Value> params = {q.after_id};
  auto add = [&](const std::string& cond, Value v) {
    params.push_back(std::move(v));
    sql += " AND " + cond + " $" + std::to_string(params.size());
  };
  if (q.outcome) add("outcome =", std::string(to_string(*q.outcome)));
  if (!q.camera_id.empty()) add("camera_id =", q.camera_id);
  if (!q.plate.empty()) add("plate =", normalize_plate(q.plate));
  if (q.from) add("seen_at >=", ms(*q.from));
  if (q.to) add("seen_at <", ms(*q.to));
  if (q.before_id > 0) add("id <", q.before_id);
  params.emplace_back(std::int64_t{q.limit});
  sql += std::string(" ORDER BY id") + (q.newest_first ? " DESC" : "") + " LIMIT $" +
         std::to_string(params.size());
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query(sql, params);
  if (!rows) return rows.error_detail();
  std::vector<StoredSighting> out;
  for (const auto& r : *rows) out.push_back(to_sighting(r));
  return out;
}

RegistryResult<StoredSighting> Registry::sighting(std::int64_t id) const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return impl_->load_sighting(**c, id);
}

RegistryResult<std::string> Registry::sighting_image(std::int64_t id, const std::string& kind) const {
  if (kind != "plate" && kind != "frame")
    return invalid("image kind '" + kind + "' unknown (plate or frame)");
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows =
      (*c)->query("SELECT jpeg_base64 FROM sighting_images WHERE sighting_id = $1 AND kind = $2", {id, kind});
  if (!rows) return rows.error_detail();
  if (rows->empty()) {
    auto s = impl_->load_sighting(**c, id);
    if (!s) return s.error_detail();
    return RegistryError{Failure::kNotFound,
                         "sighting #" + std::to_string(id) + " has no " + kind + " image"};
  }
  auto jpeg = base64_decode(as_text(rows->front().front()));
  if (!jpeg)
    return RegistryError{Failure::kStorage, "the stored " + kind + " image of sighting #" +
                                                std::to_string(id) + " is damaged (not base64)"};
  return std::move(*jpeg);
}

RegistryResult<StoredSighting> Registry::resolve(std::int64_t id, const Resolution& res) {
  std::string plate;
  if (res.action == "correct") {
    auto p = clean_plate(res.plate);
    if (!p) return invalid(p.error());
    plate = *p;
  } else if (res.action != "confirm_unpaid" && res.action != "dismiss") {
    return invalid("action '" + res.action.substr(0, 40) + "': expected confirm_unpaid, dismiss or correct");
  } else if (!res.plate.empty()) {
    return invalid("plate: only the action 'correct' takes a plate");
  }
  if (auto bad = check_text("note", res.note, 1000)) return invalid(*bad);
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return db::transaction(**c, true, [&]() -> RegistryResult<StoredSighting> {
    auto s = impl_->load_sighting(**c, id);
    if (!s) return s;
    if (s->outcome != Outcome::kReview)
      return RegistryError{Failure::kConflict, "sighting #" + std::to_string(id) +
                                                   " is not in review (it is " + to_string(s->outcome) + ")"};
    Outcome outcome = res.action == "dismiss" ? Outcome::kDismissed : Outcome::kUnpaid;
    if (res.action == "correct") {
      // The operator's reading is trusted: no confidence or format doubt, only the records decide.
      auto recs = impl_->candidates(**c, {plate, 1.0f, s->sighting.read.country, true, {}}, s->sighting.time);
      if (!recs) return recs.error_detail();
      const Decision d = vigil::decide({plate, 1.0f, "", true, {}}, s->sighting.time, *recs, nullptr, {});
      outcome = d.verdict == Verdict::kPaid     ? Outcome::kPaid
                : d.verdict == Verdict::kExempt ? Outcome::kExempt
                                                : Outcome::kUnpaid;
    }
    const Timestamp now = impl_->now();
    auto up = (*c)->query(
        "UPDATE sightings SET outcome = $1, resolved_at = $2, resolved_by = $3, resolution = $4, "
        "resolved_plate = $5, "
        "resolution_note = $6 WHERE id = $7 AND outcome = 'review' RETURNING id",
        {std::string(to_string(outcome)), ms(now), res.by ? Value{res.by} : Value{}, res.action, plate,
         res.note, id});
    if (!up) return up.error_detail();
    if (up->empty()) {  // resolved meanwhile by another server
      auto other = impl_->load_sighting(**c, id);
      if (!other) return other;
      return RegistryError{
          Failure::kConflict,
          "sighting #" + std::to_string(id) + " is not in review (it is " + to_string(other->outcome) + ")"};
    }
    return impl_->load_sighting(**c, id);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Tokens and cameras

RegistryResult<NewToken> Registry::create_token(Role role, const std::string& camera_id,
                                                const std::string& note) {
  if (role == Role::kCamera && !valid_camera_id(camera_id))
    return invalid("camera: a camera token needs a camera id of 1..64 of A-Z a-z 0-9 _ . : - (got '" +
                   camera_id.substr(0, 64) + "')");
  if (role != Role::kCamera && !camera_id.empty())
    return invalid(std::string("camera: only camera tokens have a camera id (role ") + to_string(role) + ")");
  if (auto bad = check_text("note", note, 200)) return invalid(*bad);
  NewToken t;
  try {
    t.token = new_token();
  } catch (const std::exception& e) {
    return RegistryError{Failure::kStorage, std::string("cannot make a token: ") + e.what()};
  }
  t.info.role = role;
  t.info.camera_id = camera_id;
  t.info.note = note;
  t.info.created = impl_->now();
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return db::transaction(**c, true, [&]() -> RegistryResult<NewToken> {
    auto ins = (*c)->query(
        "INSERT INTO tokens (hash, role, camera_id, note, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING "
        "id",
        {sha256_hex(t.token), std::string(to_string(role)), db::null_if_empty(camera_id), note,
         ms(t.info.created)});
    if (!ins) return ins.error_detail();
    t.info.id = as_int(ins->front().front());
    if (role == Role::kCamera) {
      auto cam = (*c)->query(
          "INSERT INTO cameras (id, name, created_at) VALUES ($1, '', $2) ON CONFLICT (id) DO NOTHING",
          {camera_id, ms(t.info.created)});
      if (!cam) return cam.error_detail();
    }
    return t;
  });
}

RegistryResult<std::optional<TokenInfo>> Registry::authenticate(const std::string& token) const {
  if (token.size() != 47 || token.rfind("vgl_", 0) != 0) return std::optional<TokenInfo>{};
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query(
      "SELECT id, role, camera_id, note, created_at, revoked_at FROM tokens WHERE hash = $1 AND revoked_at "
      "IS NULL",
      {sha256_hex(token)});
  if (!rows) return rows.error_detail();
  if (rows->empty()) return std::optional<TokenInfo>{};
  return std::optional<TokenInfo>{to_token(rows->front())};
}

RegistryResult<std::vector<TokenInfo>> Registry::tokens() const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query("SELECT id, role, camera_id, note, created_at, revoked_at FROM tokens ORDER BY id");
  if (!rows) return rows.error_detail();
  std::vector<TokenInfo> out;
  for (const auto& r : *rows) out.push_back(to_token(r));
  return out;
}

RegistryResult<TokenInfo> Registry::revoke_token(std::int64_t id) {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  return db::transaction(**c, true, [&]() -> RegistryResult<TokenInfo> {
    auto up = (*c)->query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                          {ms(impl_->now()), id});
    if (!up) return up.error_detail();
    auto rows = (*c)->query(
        "SELECT id, role, camera_id, note, created_at, revoked_at FROM tokens WHERE id = $1", {id});
    if (!rows) return rows.error_detail();
    if (rows->empty()) return RegistryError{Failure::kNotFound, "no token #" + std::to_string(id)};
    return to_token(rows->front());
  });
}

RegistryResult<Camera> Registry::add_camera(const std::string& id, const std::string& name) {
  if (!valid_camera_id(id))
    return invalid("id: '" + id.substr(0, 64) + "' must be 1..64 of A-Z a-z 0-9 _ . : -");
  if (auto bad = check_text("name", name, 200)) return invalid(*bad);
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query(
      "INSERT INTO cameras (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = "
      "excluded.name RETURNING id, name, created_at",
      {id, name, ms(impl_->now())});
  if (!rows) return rows.error_detail();
  return Camera{as_text(rows->front()[0]), as_text(rows->front()[1]), from_ms(as_int(rows->front()[2]))};
}

RegistryResult<std::vector<Camera>> Registry::cameras() const {
  auto c = impl_->db->acquire();
  if (!c) return c.error_detail();
  auto rows = (*c)->query("SELECT id, name, created_at FROM cameras ORDER BY id");
  if (!rows) return rows.error_detail();
  std::vector<Camera> out;
  for (const auto& r : *rows) out.push_back({as_text(r[0]), as_text(r[1]), from_ms(as_int(r[2]))});
  return out;
}

}  // namespace vigil
