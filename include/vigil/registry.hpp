// The vignette registry: which plates may use the highway when, and what a camera's sighting means.
//
//   vigil::RegistryOptions opt;                                   // Czech products, Europe/Prague
//   auto reg = vigil::Registry::open("vigil.db", opt);           // SQLite file, created and migrated
//   if (!reg) { std::cerr << reg.error() << "\n"; return 1; }
//   auto v = reg->add_vignette({.plate = "1AB 2345", .country = "cz", .product = "cz-10d",
//                               .start = 2024y / 3 / 25d, .order_id = "ESHOP-1"});
//   auto d = reg->decide({.text = "1AB2345", .confidence = 0.97f}, vigil::parse_timestamp(
//                            "2024-04-03T21:59:59Z").value());   // d->verdict == Verdict::kPaid
//
// Times are Unix milliseconds (UTC); days are calendar days in the registry's time zone.
// Thread-safety: a Registry may be shared by any number of threads (it holds a pool of database
// connections); TimeZone, ProductCatalog and decide() are immutable/pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vigil/common.hpp"
#include "vigil/formats.hpp"

namespace vigil {

// ---------------------------------------------------------------------------------------------------------
// Time

using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;  // UTC, millisecond resolution
using Day = std::chrono::year_month_day;                             // a calendar day (local)

// The end of "open" validity (exemptions without an end): 9999-12-31T00:00:00Z.
extern const Timestamp kForever;

// Parses RFC 3339 / ISO 8601 with an explicit zone: "2024-03-31T01:59:59Z", "2024-03-31T03:00:00.250+02:00"
// ('t', 'z' and a space instead of 'T' accepted). Fails naming the problem ("expected 'Z' or an offset
// like +02:00 after the time").
Result<Timestamp> parse_timestamp(std::string_view text);
// "2024-05-01T12:34:56.789Z" (milliseconds only when non-zero: "2024-05-01T12:34:56Z").
std::string format_timestamp(Timestamp t);
// "2024-03-25" -> a valid calendar day, else an error naming the text.
Result<Day> parse_day(std::string_view text);
std::string format_day(Day day);

// A time zone from the tz database (TZif files) with the POSIX rule of the file's footer for times after
// its table, so future years are right too. Copies share the immutable data.
class TimeZone {
 public:
  // Loads zoneinfo_dir/name ("" : $TZDIR, else /usr/share/zoneinfo). When the file is missing,
  // "Europe/Prague" and "UTC" fall back to built-in rules (CET-1CEST,M3.5.0,M10.5.0/3 and UTC0); other
  // names fail with "time zone 'X' not found in /usr/share/zoneinfo (install tzdata)".
  static Result<TimeZone> load(const std::string& name, const std::string& zoneinfo_dir = "");
  // A zone from a POSIX TZ rule only, e.g. from_posix("Europe/Prague", "CET-1CEST,M3.5.0,M10.5.0/3").
  static Result<TimeZone> from_posix(const std::string& name, const std::string& rule);
  // UTC.
  TimeZone();

  const std::string& name() const;
  // Offset of local time from UTC at t (east positive: +3600 s for CET, +7200 s for CEST).
  std::chrono::seconds utc_offset(Timestamp t) const;
  // The calendar day t falls on in this zone.
  Day local_day(Timestamp t) const;
  // The first instant of the local day (00:00, or the end of a DST gap when 00:00 does not exist).
  Timestamp start_of_day(Day day) const;
  // "2024-03-31T03:00:00+02:00": local time with its offset (milliseconds only when non-zero).
  std::string format(Timestamp t) const;

  struct Data;

 private:
  explicit TimeZone(std::shared_ptr<const Data> data);
  std::shared_ptr<const Data> data_;
};

// ---------------------------------------------------------------------------------------------------------
// Products and records

// A vignette product: valid from the chosen start day at 00:00 through the end of the day
// start + days - 1, in the catalogue's time zone.
struct Product {
  std::string id;    // "cz-10d"; [a-z0-9_-], 1..32 characters
  std::string name;  // for people: "10-day"
  int days = 1;      // number of calendar days of validity (>= 1)
};

// The products on sale and the time zone their days are counted in. Configuration: the defaults are the
// Czech vignettes (cz-1d, cz-10d, cz-30d, cz-annual = 365 days; Europe/Prague).
struct ProductCatalog {
  std::vector<Product> products;
  TimeZone zone;

  static ProductCatalog czech();
  // {"time_zone": "Europe/Prague", "products": [{"id": "cz-10d", "name": "10-day", "days": 10}, ...]}.
  // Fails naming the bad entry (unknown key, duplicate id, days < 1, unknown zone).
  static Result<ProductCatalog> parse(const std::string& json_text, const std::string& zoneinfo_dir = "");

  const Product* find(const std::string& id) const;  // nullptr when unknown
  std::string ids() const;                           // "cz-1d, cz-10d, ..." for messages
  // [start of `start`, start of `start + days`) in the zone.
  std::pair<Timestamp, Timestamp> validity(const Product& product, Day start) const;
};

enum class RecordKind { kVignette, kExemption };
const char* to_string(RecordKind kind);  // "vignette", "exemption"

// A paid vignette or an exemption (emergency vehicle, electric car, ...) for one plate.
struct Record {
  std::int64_t id = 0;  // assigned by the registry
  RecordKind kind = RecordKind::kVignette;
  std::string plate;             // normalised ("1AB2345")
  std::string country;           // registration country, ISO 3166-1 alpha-2 lower case ("cz")
  std::string product;           // vignette: product id; exemption: ""
  std::string reason;            // exemption: "emergency", "electric", ...; vignette: ""
  std::string vehicle_category;  // free text from the seller ("M1", "N1"), may be ""
  std::string order_id;          // source order id (e-shop); unique among records when not ""
  std::string note;              // free text
  Timestamp valid_from{};        // first instant of validity (inclusive)
  Timestamp valid_to{};          // end of validity (exclusive); kForever when open
  Timestamp created{};
  std::optional<Timestamp> refunded;  // set: cancelled at that time; counts only before it

  // Whether the record makes a pass at t legal.
  bool active_at(Timestamp t) const {
    return valid_from <= t && t < valid_to && (!refunded || t < *refunded);
  }
};

// ---------------------------------------------------------------------------------------------------------
// Decisions

enum class Verdict { kPaid, kExempt, kUnpaid, kReview };
const char* to_string(Verdict verdict);  // "paid", "exempt", "unpaid", "review"

// One plate read to decide on.
struct PlateRead {
  std::string text;                       // as read; normalised by the registry
  float confidence = 1.0f;                // 0..1
  std::string country;                    // read country, "" unknown
  std::optional<bool> fits_format;        // the reader's opinion; used when the registry has no formats
  std::vector<std::string> alternatives;  // other candidate reads, most probable first
};

struct DecisionOptions {
  // Reads below this confidence (0..1) are never unpaid: they go to review.
  float review_confidence_min = 0.6f;
};

struct Decision {
  Verdict verdict = Verdict::kReview;
  std::string reason;          // for people: "vignette #12 (cz-10d) valid until 2024-04-04T00:00:00+02:00"
  std::int64_t record_id = 0;  // the record that made it paid/exempt, or the near-miss; 0 none
  std::string matched_plate;   // that record's plate, "" none
};

// The decision for a read at time t, given the records that could concern it (any superset of those with
// the read's plate, its alternatives' plates and plates one edit away; inactive ones are ignored).
// Order: an active vignette on the exact plate -> paid; an exemption -> exempt; then, never unpaid
// straight away, review for an empty read, confidence below the minimum, a read fitting no format
// (`formats` non-null: checked against them; else the read's fits_format, unknown counting as fitting),
// a plate one edit from an active record's plate (O/0, a dropped character), or an alternative read that
// has an active record; otherwise unpaid. Pure function.
Decision decide(const PlateRead& read, Timestamp t, const std::vector<Record>& records,
                const FormatSet* formats, const DecisionOptions& options = {});

// ---------------------------------------------------------------------------------------------------------
// Registry (storage + rules)

// Why a registry call failed, for callers that map failures onto a protocol (HTTP status codes).
enum class Failure {
  kInvalid,   // the input is wrong; the message names the field and the problem
  kNotFound,  // the id does not exist
  kConflict,  // clashes with what is stored (an order id reused with other content, ...)
  kBusy,      // the database stayed locked past the busy timeout; retry later
  kStorage,   // the database failed (disk full, corrupt, connection lost)
};

struct RegistryError {
  Failure failure = Failure::kStorage;
  std::string message;
};

// A value or a RegistryError: Result with failure().
template <typename T>
using RegistryResult = Result<T, RegistryError>;

struct RegistryOptions {
  ProductCatalog catalog = ProductCatalog::czech();
  DecisionOptions decision;
  // Plate formats: sightings are checked against them and new records' plates must fit one of their
  // country's formats when the country has any. Null: no format checks (readers' fits_format is used).
  std::shared_ptr<const FormatSet> formats;
  int busy_timeout_ms = 5000;  // how long a call waits for a database lock before failing with kBusy
  int connections = 4;         // database connections in the pool (>= 1)
  // The registry's clock (creation and receipt times, "now"); tests pass a fixed one.
  std::function<Timestamp()> clock;  // empty: the system clock
};

// An order from the e-shop.
struct VignetteOrder {
  std::string plate;             // as typed; normalised and checked
  std::string country;           // ISO alpha-2, lower or upper case
  std::string product;           // a catalogue product id
  Day start{};                   // first day of validity (local)
  std::string vehicle_category;  // optional
  std::string order_id;          // optional; makes the call idempotent
  std::string note;
};

struct ExemptionRequest {
  std::string plate, country;
  std::string reason;          // required: "emergency", "electric", ...
  Day from{};                  // first day (local)
  std::optional<Day> until;    // last day, inclusive; none = open-ended
  std::string order_id, note;  // optional; order_id makes the call idempotent
};

// What adding a record did.
struct Added {
  Record record;
  bool created = true;  // false: the order id was already stored with the same content (nothing changed)
};

enum class ImportMode {
  kAllOrNothing,  // any bad row: nothing is imported
  kValidRows,     // the good rows are imported in one transaction, the bad ones reported
};

struct ImportRowError {
  int line = 0;  // 1-based line in the file; the header is line 1
  std::string message;
};

struct ImportReport {
  int imported = 0;  // rows stored now
  int existing = 0;  // rows whose order id was already stored with the same content
  std::vector<ImportRowError> errors;
  bool committed = false;  // false: nothing was stored (all-or-nothing with errors)
};

// A camera's sighting of a plate, as posted.
struct Sighting {
  std::string event_id;   // unique per pass (UUID from vigil watch); the idempotency key
  std::string camera_id;  // [A-Za-z0-9_.:-], 1..64 characters
  Timestamp time{};       // when the vehicle passed
  PlateRead read;
  std::string event_json;  // the posted event, kept for audit ("" : none)
  // Evidence JPEGs (the bytes; "" none): the best read's plate crop and its frame. Stored beside the
  // sighting, not in event_json; a duplicate's images are ignored. Loaded sightings leave them empty (see
  // StoredSighting::plate_image and Registry::sighting_image()).
  std::string plate_jpeg, frame_jpeg;
};

// Outcome of a sighting as it stands now.
enum class Outcome { kPaid, kExempt, kUnpaid, kReview, kDismissed };
const char* to_string(Outcome outcome);  // "paid", ..., "dismissed"

struct StoredSighting {
  std::int64_t id = 0;
  Sighting sighting;                   // text normalised
  Decision decision;                   // made when the sighting arrived
  Outcome outcome = Outcome::kReview;  // the decision's verdict, or the review's resolution
  Timestamp received{};
  // Review resolution (when resolved):
  std::optional<Timestamp> resolved;
  std::int64_t resolved_by = 0;  // token id, 0 unknown
  std::string resolution;        // "confirm_unpaid", "dismiss", "correct"
  std::string resolved_plate;    // "correct": the plate the operator read
  std::string resolution_note;
  bool plate_image = false;  // evidence stored: the plate crop
  bool frame_image = false;  // ... the frame
};

struct IngestResult {
  StoredSighting stored;   // the sighting as stored (for a duplicate: as first stored)
  bool duplicate = false;  // the event id was already stored; nothing changed
};

struct SightingQuery {
  std::optional<Outcome> outcome;  // only this outcome
  std::string camera_id;           // "" any
  std::string plate;               // "" any (normalised before use)
  std::optional<Timestamp> from;   // seen at or after
  std::optional<Timestamp> to;     // seen before
  std::int64_t after_id = 0;       // paging: ids greater than this
  std::int64_t before_id = 0;      // paging back: ids less than this (0: no bound)
  bool newest_first = false;       // order by id descending (default ascending)
  int limit = 100;                 // 1..1000
};

// How an operator resolves a sighting in review.
struct Resolution {
  std::string action;  // "confirm_unpaid", "dismiss", or "correct" (with plate)
  std::string plate;   // "correct": the plate as read by the operator; decided again at the time seen
  std::string note;
  std::int64_t by = 0;  // token id of the operator
};

enum class Role { kCamera, kShop, kOperator, kAdmin };
const char* to_string(Role role);  // "camera", "shop", "operator", "admin"
std::optional<Role> parse_role(std::string_view text);

struct TokenInfo {
  std::int64_t id = 0;
  Role role = Role::kOperator;
  std::string camera_id;  // camera tokens: the only camera they may post for
  std::string note;
  Timestamp created{};
  std::optional<Timestamp> revoked;
};

struct Camera {
  std::string id;    // [A-Za-z0-9_.:-], 1..64 characters
  std::string name;  // for people, may be ""
  Timestamp created{};
};

struct NewToken {
  TokenInfo info;
  std::string token;  // "vgl_" + 43 base64url characters; shown once, only its SHA-256 is stored
};

class Registry {
 public:
  // Opens (creating and migrating) the database: "path/to/file.db" or "sqlite:path" for SQLite (one
  // file, WAL journal); "postgresql://user[:password]@host[:port]/dbname[?sslmode=...]" (or postgres://)
  // for an existing PostgreSQL database, which several servers may share (built with libpq; the password
  // may also come from PGPASSWORD or ~/.pgpass). Fails naming the file or server (never the password) and
  // the reason (cannot create, not a database, unreachable, schema newer than this build).
  static Result<Registry> open(const std::string& url, RegistryOptions options = {});

  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  const RegistryOptions& options() const;
  Timestamp now() const;
  // The schema version the database is at (the number of migrations applied).
  RegistryResult<int> schema_version() const;
  // The newest schema version this build knows.
  static int latest_schema_version();
  // "sqlite /var/lib/vigil/vigil.db"
  std::string describe() const;

  // Records. Plates are normalised; a plate must be 1..12 of A-Z0-9 after removing spaces, dashes and
  // dots, and fit a format of its country when the formats know the country.
  RegistryResult<Added> add_vignette(const VignetteOrder& order);
  RegistryResult<Added> add_exemption(const ExemptionRequest& request);
  // Marks the record refunded now (kind must match; refunding twice returns the first refund).
  RegistryResult<Record> refund(std::int64_t id, RecordKind kind);
  RegistryResult<Record> record(std::int64_t id) const;
  // All records of a plate (refunded ones too), newest validity first.
  RegistryResult<std::vector<Record>> records_for_plate(const std::string& plate) const;
  // CSV with a header naming the columns: plate, country, product, start (YYYY-MM-DD) required;
  // vehicle_category, order_id, note optional. RFC 4180 quoting. One transaction.
  RegistryResult<ImportReport> import_csv(std::string_view csv, ImportMode mode);

  // The decision for a read at t against what is stored now.
  RegistryResult<Decision> decide(const PlateRead& read, Timestamp t) const;
  // Decides and stores a batch in one transaction. Idempotent by event id: a stored id is reported as a
  // duplicate with its first decision; an id stored for another camera fails with kConflict and nothing
  // of the batch is stored. The whole batch is validated first (kInvalid names the item and field).
  RegistryResult<std::vector<IngestResult>> ingest(const std::vector<Sighting>& batch);
  RegistryResult<std::vector<StoredSighting>> sightings(const SightingQuery& query) const;
  RegistryResult<StoredSighting> sighting(std::int64_t id) const;
  // A sighting's evidence JPEG (the bytes); kind "plate" or "frame". kNotFound when the sighting or that
  // image does not exist, kInvalid for another kind.
  RegistryResult<std::string> sighting_image(std::int64_t id, const std::string& kind) const;
  // Resolves a sighting whose outcome is review (kConflict when it is not in review).
  RegistryResult<StoredSighting> resolve(std::int64_t sighting_id, const Resolution& resolution);

  // Tokens: random 32 bytes, stored as SHA-256. Camera tokens need a camera id; others must not have one.
  RegistryResult<NewToken> create_token(Role role, const std::string& camera_id, const std::string& note);
  // The live token matching `token`, or nullopt (unknown, revoked or malformed).
  RegistryResult<std::optional<TokenInfo>> authenticate(const std::string& token) const;
  RegistryResult<std::vector<TokenInfo>> tokens() const;
  RegistryResult<TokenInfo> revoke_token(std::int64_t id);

  // Cameras: registered by an admin, or implicitly when a camera token is created.
  RegistryResult<Camera> add_camera(const std::string& id, const std::string& name);
  RegistryResult<std::vector<Camera>> cameras() const;

  struct Impl;

 private:
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A database URL as it may be shown: its password replaced by "***" (other text unchanged).
std::string redact_database_url(const std::string& url);

// Normalises a plate typed by a person or a shop (or read by a camera) and checks it: letters, digits,
// spaces, '-' and '.' only, at least one letter or digit, at most `max_length` (0: the registry's 12) once
// normalised. Returns the normalised plate or an error naming the problem ("plate '1AB@2345': unexpected
// character '@'"); never drops a character it does not know.
Result<std::string> clean_plate(const std::string& text, std::size_t max_length = 0);

}  // namespace vigil
