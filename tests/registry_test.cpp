// The vignette registry: time zones and validity (DST included), decisions at the boundaries, near-misses,
// and the SQLite store (migrations, idempotency, import, review, tokens, busy handling).
#include "vigil/registry.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "registry/db.hpp"
#include "registry/internal.hpp"
#include "test_databases.hpp"

namespace fs = std::filesystem;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace vigil {
namespace {

Timestamp at(const std::string& text) {
  auto t = parse_timestamp(text);
  EXPECT_TRUE(t.ok()) << text << ": " << (t ? "" : t.error());
  return t ? *t : Timestamp{};
}

Day day(int y, unsigned m, unsigned d) { return Day{year{y}, month{m}, std::chrono::day{d}}; }

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("vigil_registry_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::shared_ptr<const FormatSet> formats() {
  static auto f = [] {
    auto set = FormatSet::load(std::string(VIGIL_SOURCE_DIR) + "/data/plate_formats.json");
    EXPECT_TRUE(set.ok()) << (set ? "" : set.error());
    return std::make_shared<const FormatSet>(std::move(*set));
  }();
  return f;
}

// ---------------------------------------------------------------------------------------------------------
// Time

TEST(Time, ParsesAndFormatsRfc3339) {
  EXPECT_EQ(format_timestamp(at("2024-05-01T12:34:56Z")), "2024-05-01T12:34:56Z");
  EXPECT_EQ(format_timestamp(at("2024-05-01T12:34:56.5Z")), "2024-05-01T12:34:56.500Z");
  EXPECT_EQ(at("2024-05-01T14:34:56+02:00"), at("2024-05-01T12:34:56Z"));
  EXPECT_EQ(at("2024-05-01 10:04:56-02:30"), at("2024-05-01T12:34:56z"));
  for (const char* bad :
       {"2024-05-01", "2024-05-01T12:34:56", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
        "2024-05-01T24:00:00Z", "2024-05-01T12:34:56+0200", "2024-05-01T12:34:56Zx", "yesterday"}) {
    auto t = parse_timestamp(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t) EXPECT_NE(t.error().find(std::string(bad).substr(0, 10)), std::string::npos) << t.error();
  }
  EXPECT_FALSE(parse_day("2023-02-29").ok());
  EXPECT_TRUE(parse_day("2024-02-29").ok());
  EXPECT_EQ(format_day(*parse_day("2024-02-29")), "2024-02-29");
}

TEST(TimeZone, PragueOffsetsAroundDstChanges) {
  auto zone = TimeZone::load("Europe/Prague");
  ASSERT_TRUE(zone.ok()) << zone.error();
  EXPECT_EQ(zone->utc_offset(at("2024-03-31T00:59:59Z")), 1h);
  EXPECT_EQ(zone->utc_offset(at("2024-03-31T01:00:00Z")), 2h);
  EXPECT_EQ(zone->utc_offset(at("2024-10-27T00:59:59Z")), 2h);
  EXPECT_EQ(zone->utc_offset(at("2024-10-27T01:00:00Z")), 1h);
  // Past the TZif table: the footer's POSIX rule.
  EXPECT_EQ(zone->utc_offset(at("2100-07-01T12:00:00Z")), 2h);
  EXPECT_EQ(zone->utc_offset(at("2100-12-01T12:00:00Z")), 1h);
  EXPECT_EQ(zone->format(at("2024-03-31T01:00:00Z")), "2024-03-31T03:00:00+02:00");
  EXPECT_EQ(zone->format(at("2024-03-31T00:59:59.250Z")), "2024-03-31T01:59:59.250+01:00");
}

TEST(TimeZone, BuiltInRuleAgreesWithTheTzDatabase) {
  if (!fs::exists("/usr/share/zoneinfo/Europe/Prague")) GTEST_SKIP() << "tzdata not installed";
  auto file = TimeZone::load("Europe/Prague");
  auto rule = TimeZone::from_posix("Europe/Prague", "CET-1CEST,M3.5.0,M10.5.0/3");
  ASSERT_TRUE(file.ok() && rule.ok());
  int compared = 0;
  for (auto t = at("1997-01-01T00:00:00Z"); t < at("2045-01-01T00:00:00Z"); t += 59min + 7s, ++compared)
    ASSERT_EQ(file->utc_offset(t), rule->utc_offset(t)) << format_timestamp(t);
  EXPECT_GT(compared, 400000);
}

TEST(TimeZone, StartOfDayIsLocalMidnightEvenAcrossDst) {
  auto zone = TimeZone::load("Europe/Prague");
  ASSERT_TRUE(zone.ok());
  EXPECT_EQ(zone->start_of_day(day(2024, 3, 31)), at("2024-03-30T23:00:00Z"));  // 23-hour day
  EXPECT_EQ(zone->start_of_day(day(2024, 4, 1)), at("2024-03-31T22:00:00Z"));
  EXPECT_EQ(zone->start_of_day(day(2024, 10, 27)), at("2024-10-26T22:00:00Z"));  // 25-hour day
  EXPECT_EQ(zone->start_of_day(day(2024, 10, 28)), at("2024-10-27T23:00:00Z"));
  EXPECT_EQ(zone->local_day(at("2024-03-30T22:59:59Z")), day(2024, 3, 30));
  EXPECT_EQ(zone->local_day(at("2024-03-30T23:00:00Z")), day(2024, 3, 31));
  EXPECT_FALSE(TimeZone::load("Mars/Olympus_Mons").ok());
  EXPECT_FALSE(TimeZone::load("../../etc/passwd").ok());
  EXPECT_TRUE(TimeZone::load("Europe/Prague", "/nonexistent").ok());  // built-in fallback
}

TEST(TimeZone, DayStartingInsideADstGapBeginsAtTheJump) {
  // UTC-3, summer UTC-2 from local midnight on the last Sunday of March: 00:00 does not exist that day.
  auto zone = TimeZone::from_posix("Test/Gap", "<-03>3<-02>,M3.5.0/0,M10.5.0/0");
  ASSERT_TRUE(zone.ok()) << zone.error();
  const Timestamp start = zone->start_of_day(day(2024, 3, 31));
  EXPECT_EQ(start, at("2024-03-31T03:00:00Z"));
  EXPECT_EQ(zone->utc_offset(start), -2h);
  EXPECT_EQ(zone->local_day(start), day(2024, 3, 31));
  EXPECT_EQ(zone->local_day(start - 1s), day(2024, 3, 30));
}

// ---------------------------------------------------------------------------------------------------------
// Products and decisions

TEST(Products, CzechDefaultsAndValidityAcrossDst) {
  const auto c = ProductCatalog::czech();
  EXPECT_EQ(c.zone.name(), "Europe/Prague");
  ASSERT_NE(c.find("cz-10d"), nullptr);
  EXPECT_EQ(c.find("cz-1d")->days, 1);
  EXPECT_EQ(c.find("cz-30d")->days, 30);
  EXPECT_EQ(c.find("cz-annual")->days, 365);
  EXPECT_EQ(c.find("cz-7d"), nullptr);
  // 10 days from Monday 25 March 2024 through Wednesday 3 April, with the spring change inside.
  const auto [from, to] = c.validity(*c.find("cz-10d"), day(2024, 3, 25));
  EXPECT_EQ(from, at("2024-03-25T00:00:00+01:00"));
  EXPECT_EQ(to, at("2024-04-04T00:00:00+02:00"));
  EXPECT_EQ(duration_cast<hours>(to - from), 239h);
  const auto [a_from, a_to] = c.validity(*c.find("cz-annual"), day(2024, 2, 29));
  EXPECT_EQ(a_from, at("2024-02-29T00:00:00+01:00"));
  EXPECT_EQ(a_to, at("2025-02-28T00:00:00+01:00"));
}

TEST(Products, ParseChecksEntries) {
  auto ok =
      ProductCatalog::parse(R"({"time_zone": "Europe/Vienna", "products": [{"id": "at-10d", "days": 10}]})");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->products.size(), 1u);
  EXPECT_EQ(ok->zone.name(), "Europe/Vienna");
  for (const auto& [json, expect] : std::vector<std::pair<std::string, std::string>>{
           {R"({"time_zone": "Europe/Prague", "products": [{"id": "x", "days": 0}]})",
            "products[0]: \"days\""},
           {R"({"time_zone": "Europe/Prague", "products": [{"id": "x", "days": 1, "price": 3}]})",
            "unknown key 'price'"},
           {R"({"time_zone": "Europe/Prague", "products": [{"id": "x", "days": 1}, {"id": "x", "days": 2}]})",
            "duplicate id 'x'"},
           {R"({"time_zone": "Nowhere/City", "products": [{"id": "x", "days": 1}]})", "Nowhere/City"},
           {R"({"products": []})", "time_zone"},
           {"{", "not JSON"}}) {
    auto r = ProductCatalog::parse(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_NE(r.error().find(expect), std::string::npos) << r.error();
  }
}

Record vignette(std::int64_t id, const std::string& plate, Timestamp from, Timestamp to) {
  Record r;
  r.id = id;
  r.plate = plate;
  r.country = "cz";
  r.product = "cz-10d";
  r.valid_from = from;
  r.valid_to = to;
  return r;
}

PlateRead read(const std::string& text, float confidence = 0.95f) {
  return {text, confidence, "cz", true, {}};
}

TEST(Decide, TenDayVignetteFirstAndLastSecond) {
  const auto c = ProductCatalog::czech();
  const auto [from, to] = c.validity(*c.find("cz-10d"), day(2024, 3, 25));
  const std::vector<Record> records = {vignette(1, "1AB2345", from, to)};
  auto verdict = [&](Timestamp t) { return decide(read("1AB2345"), t, records, formats().get()).verdict; };
  EXPECT_EQ(verdict(from - 1s), Verdict::kUnpaid);
  EXPECT_EQ(verdict(from - 1ms), Verdict::kUnpaid);
  EXPECT_EQ(verdict(from), Verdict::kPaid);
  EXPECT_EQ(verdict(to - 1s), Verdict::kPaid);  // 2024-04-03 23:59:59 CEST
  EXPECT_EQ(verdict(to - 1ms), Verdict::kPaid);
  EXPECT_EQ(verdict(to), Verdict::kUnpaid);  // 2024-04-04 00:00:00 CEST
  // Across the spring change: 02:30 local does not exist, the UTC instants around it are all covered.
  EXPECT_EQ(verdict(at("2024-03-31T00:59:59Z")), Verdict::kPaid);
  EXPECT_EQ(verdict(at("2024-03-31T01:00:00Z")), Verdict::kPaid);
  const Decision d = decide(read("1AB2345"), from, records, formats().get());
  EXPECT_EQ(d.record_id, 1);
  EXPECT_NE(d.reason.find("vignette #1"), std::string::npos) << d.reason;
}

TEST(Decide, OneDayVignetteOnTheAutumnChangeLastsTwentyFiveHours) {
  const auto c = ProductCatalog::czech();
  const auto [from, to] = c.validity(*c.find("cz-1d"), day(2024, 10, 27));
  EXPECT_EQ(duration_cast<hours>(to - from), 25h);
  const std::vector<Record> records = {vignette(1, "1AB2345", from, to)};
  EXPECT_EQ(decide(read("1AB2345"), at("2024-10-27T22:59:59Z"), records, nullptr).verdict, Verdict::kPaid);
  EXPECT_EQ(decide(read("1AB2345"), at("2024-10-27T23:00:00Z"), records, nullptr).verdict, Verdict::kUnpaid);
}

TEST(Decide, ExemptionsRefundsAndOpenEnds) {
  const Timestamp t = at("2024-06-01T12:00:00Z");
  Record ex = vignette(7, "EL012AB", at("2024-01-01T00:00:00Z"), kForever);
  ex.kind = RecordKind::kExemption;
  ex.reason = "electric";
  EXPECT_EQ(decide(read("EL012AB"), t, {ex}, formats().get()).verdict, Verdict::kExempt);
  EXPECT_EQ(decide(read("EL012AB"), at("2023-12-31T23:59:59Z"), {ex}, formats().get()).verdict,
            Verdict::kUnpaid);
  // A vignette wins over an exemption; a refunded vignette counts only before its refund.
  Record v = vignette(8, "EL012AB", at("2024-05-01T00:00:00Z"), at("2024-07-01T00:00:00Z"));
  EXPECT_EQ(decide(read("EL012AB"), t, {ex, v}, formats().get()).verdict, Verdict::kPaid);
  v.refunded = at("2024-05-15T00:00:00Z");
  EXPECT_EQ(decide(read("EL012AB"), t, {v}, formats().get()).verdict, Verdict::kUnpaid);
  EXPECT_EQ(decide(read("EL012AB"), at("2024-05-14T00:00:00Z"), {v}, formats().get()).verdict,
            Verdict::kPaid);
}

TEST(Decide, DoubtGoesToReviewNeverUnpaid) {
  const Timestamp t = at("2024-06-01T12:00:00Z");
  const std::vector<Record> recs = {
      vignette(3, "1AB2345", at("2024-05-01T00:00:00Z"), at("2024-07-01T00:00:00Z"))};
  const auto* f = formats().get();
  // An exact paid plate is paid whatever the confidence.
  EXPECT_EQ(decide(read("1AB2345", 0.1f), t, recs, f).verdict, Verdict::kPaid);
  // Low confidence.
  Decision d = decide(read("5XY6789", 0.3f), t, recs, f);
  EXPECT_EQ(d.verdict, Verdict::kReview);
  EXPECT_NE(d.reason.find("low confidence"), std::string::npos) << d.reason;
  EXPECT_EQ(decide(read("5XY6789", std::nanf("")), t, recs, f).verdict, Verdict::kReview);
  // Fits no format (checked against the formats, or the reader's opinion without them).
  d = decide(read("QQQQ"), t, recs, f);
  EXPECT_EQ(d.verdict, Verdict::kReview);
  EXPECT_NE(d.reason.find("fits no plate format"), std::string::npos) << d.reason;
  EXPECT_EQ(decide({"QQQQ", 0.9f, "", false, {}}, t, recs, nullptr).verdict, Verdict::kReview);
  EXPECT_EQ(decide({"QQQQ", 0.9f, "", std::nullopt, {}}, t, recs, nullptr).verdict, Verdict::kUnpaid);
  // Near-misses: B/8 substitution (fits the format too), a dropped and an extra character.
  for (const char* near : {"1A82345", "1AB234", "1AB23455", "11AB2345"}) {
    d = decide({near, 0.99f, "cz", true, {}}, t, recs, nullptr);
    EXPECT_EQ(d.verdict, Verdict::kReview) << near;
    EXPECT_EQ(d.record_id, 3) << near;
    EXPECT_EQ(d.matched_plate, "1AB2345") << near;
  }
  EXPECT_EQ(decide(read("1A82345"), t, recs, f).verdict, Verdict::kReview);
  // Two edits away, or near a vignette that is not valid now: unpaid.
  EXPECT_EQ(decide(read("1A82346"), t, recs, f).verdict, Verdict::kUnpaid);
  EXPECT_EQ(decide(read("1A82345"), at("2024-08-01T00:00:00Z"), recs, f).verdict, Verdict::kUnpaid);
  // An alternative read with a vignette.
  d = decide({"5XY6789", 0.9f, "cz", true, {"1AB2345"}}, t, recs, f);
  EXPECT_EQ(d.verdict, Verdict::kReview);
  EXPECT_NE(d.reason.find("alternative"), std::string::npos) << d.reason;
  // Empty read.
  EXPECT_EQ(decide(read(""), t, recs, f).verdict, Verdict::kReview);
  // And a confident, well-formed read with nothing near it.
  d = decide(read("5XY6789"), t, recs, f);
  EXPECT_EQ(d.verdict, Verdict::kUnpaid);
  EXPECT_EQ(d.record_id, 0);
}

TEST(Decide, EditDistanceAndNearMissKeys) {
  EXPECT_EQ(edit_distance("1AB2345", "1AB2345"), 0);
  EXPECT_EQ(edit_distance("1AB2345", "1A82345"), 1);
  EXPECT_EQ(edit_distance("1AB2345", "1AB245"), 1);
  EXPECT_EQ(edit_distance("AB", "BA"), 2);
  EXPECT_EQ(edit_distance("", "ABC"), 3);
  // Any two plates at most one edit apart share a key (the index finds every near-miss).
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  auto pick = [&] { return alphabet[rng() % alphabet.size()]; };
  for (int i = 0; i < 2000; ++i) {
    std::string p;
    for (std::size_t n = 2 + rng() % 8; p.size() < n;) p += pick();
    std::string q = p;
    const std::size_t pos = rng() % q.size();
    switch (rng() % 3) {
      case 0:
        q[pos] = pick();
        break;
      case 1:
        q.erase(pos, 1);
        break;
      default:
        q.insert(pos, 1, pick());
    }
    ASSERT_LE(edit_distance(p, q), 1);
    const auto kp = plate_keys(p), kq = plate_keys(q);
    const std::set<std::string> sp(kp.begin(), kp.end());
    bool shared = false;
    for (const auto& k : kq) shared = shared || sp.count(k);
    ASSERT_TRUE(shared) << p << " " << q;
  }
}

TEST(Plates, CleanPlateNormalisesAndRejects) {
  EXPECT_EQ(*clean_plate("1ab-234 5"), "1AB2345");
  EXPECT_EQ(*clean_plate("AP.666.TQ"), "AP666TQ");
  auto bad = clean_plate("1AB@2345");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("'@'"), std::string::npos) << bad.error();
  EXPECT_FALSE(clean_plate("").ok());
  EXPECT_FALSE(clean_plate(" - ").ok());
  EXPECT_FALSE(clean_plate("ABCDEFGHIJKLM").ok());
  EXPECT_FALSE(clean_plate("1AB\xC3\x96").ok());
}

// ---------------------------------------------------------------------------------------------------------
// The store. Store.* and Fleet.* run on SQLite and on PostgreSQL (names end in /Sqlite and /Postgres; the
// PostgreSQL runs need VIGIL_TEST_POSTGRES_URL, see test_databases.hpp); SqliteStore.* and PostgresStore.*
// cover what only one backend has.

using testdb::Backend;
using testdb::TestDatabase;

RegistryOptions test_options(Timestamp now = Timestamp{}) {
  RegistryOptions o;
  o.formats = formats();
  if (now != Timestamp{}) o.clock = [now] { return now; };
  return o;
}

Registry open_or_die(const std::string& path, RegistryOptions o = test_options()) {
  auto r = Registry::open(path, std::move(o));
  // gtest reports an exception thrown in a test body as that test's failure.
  if (!r) throw std::runtime_error("cannot open " + db::redact_url(path) + ": " + r.error());
  return std::move(*r);
}

Sighting sighting(const std::string& id, const std::string& camera, const std::string& text, Timestamp t,
                  float confidence = 0.95f) {
  Sighting s;
  s.event_id = id;
  s.camera_id = camera;
  s.time = t;
  s.read = {text, confidence, "cz", true, {}};
  return s;
}

// Rows of a table read straight from a SQLite file.
long long count_rows(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  long long n = -1;
  if (sqlite3_prepare_v2(db, ("SELECT COUNT(*) FROM " + table).c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

// A fresh database of the test's backend.
class Store : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(GetParam());
    if (!db_->skip().empty()) GTEST_SKIP() << db_->skip();
    ASSERT_TRUE(db_->error().empty()) << db_->error();
  }
  void TearDown() override { db_.reset(); }

  const std::string& url() const { return db_->url(); }
  long long count(const std::string& table) { return db_->count(table); }

  std::unique_ptr<TestDatabase> db_;
};
INSTANTIATE_TEST_SUITE_P(, Store, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testdb::backend_name);

// Several registries (servers) on one database.
class Fleet : public Store {};
INSTANTIATE_TEST_SUITE_P(, Fleet, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testdb::backend_name);

// Lets threads start their work at the same moment.
class StartLine {
 public:
  explicit StartLine(int n) : waiting_(n) {}
  void arrive_and_wait() {
    --waiting_;
    while (waiting_.load() > 0) std::this_thread::yield();
  }

 private:
  std::atomic<int> waiting_;
};

TEST_P(Store, OpensAndMigratesOnce) {
  {
    auto reg = open_or_die(url());
    EXPECT_EQ(*reg.schema_version(), Registry::latest_schema_version());
    EXPECT_GE(Registry::latest_schema_version(), 2);
    if (GetParam() == Backend::kSqlite) {
      EXPECT_EQ(reg.describe(), "sqlite " + url());
    } else {
      EXPECT_EQ(reg.describe().rfind("postgresql ", 0), 0u) << reg.describe();
      EXPECT_NE(reg.describe().find("/" + db_->name()), std::string::npos) << reg.describe();
    }
  }
  // Opening again changes nothing.
  auto again = open_or_die(url());
  EXPECT_EQ(*again.schema_version(), Registry::latest_schema_version());
  EXPECT_EQ(count("schema_migrations"), Registry::latest_schema_version());
}

TEST(SqliteStore, CreatesWalDatabase) {
  TempDir dir;
  const auto path = dir.file("v.db");
  { open_or_die(path); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_P(Store, MigratesAnOlderDatabaseKeepingItsData) {
  {
    auto db = db::open_database(url(), 1000, 1);
    ASSERT_TRUE(db.ok()) << db.error();
    auto c = (*db)->acquire();
    ASSERT_TRUE(c.ok());
    auto v = db::migrate(**c, (*db)->dialect(), 1);
    ASSERT_TRUE(v.ok()) << v.error();
    EXPECT_EQ(*v, 1);
    ASSERT_TRUE(
        (*c)->query(
                "INSERT INTO tokens (hash, role, camera_id, note, created_at) VALUES "
                "('h1', 'camera', 'A1', '', 5), ('h2', 'camera', 'A1', '', 3), ('h3', 'admin', NULL, '', 1)")
            .ok());
  }
  auto reg = open_or_die(url());
  EXPECT_EQ(*reg.schema_version(), Registry::latest_schema_version());
  auto cams = reg.cameras();
  ASSERT_TRUE(cams.ok()) << cams.error();
  ASSERT_EQ(cams->size(), 1u);
  EXPECT_EQ(cams->front().id, "A1");
  EXPECT_EQ(cams->front().created.time_since_epoch().count(), 3);
}

TEST_P(Store, RefusesNewerSchemas) {
  { open_or_die(url()); }
  db_->sql("INSERT INTO schema_migrations VALUES (99, 'future', 0)");
  auto newer = Registry::open(url(), test_options());
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.error().find("newer"), std::string::npos) << newer.error();
}

TEST(SqliteStore, RefusesFilesThatAreNotDatabases) {
  TempDir dir;
  const auto junk = dir.file("junk.db");
  std::ofstream(junk)
      << "this is not a database, just a text file that is long enough to have a header....\n";
  auto r = Registry::open(junk, test_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("not a SQLite database"), std::string::npos) << r.error();

  auto missing = Registry::open(dir.file("no/such/folder/x.db"), test_options());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("does not exist"), std::string::npos) << missing.error();
  auto prefixed = Registry::open("sqlite:" + dir.file("p.db"), test_options());
  ASSERT_TRUE(prefixed.ok()) << prefixed.error();
  EXPECT_TRUE(fs::exists(dir.file("p.db")));
}

TEST(DatabaseUrl, PasswordsAreRedactedAndUnknownSchemesRefused) {
  EXPECT_EQ(db::redact_url("postgresql://vigil:s3cret@db.example:5432/vigil?sslmode=require"),
            "postgresql://vigil:***@db.example:5432/vigil?sslmode=require");
  EXPECT_EQ(db::redact_url("postgres://vigil@db/vigil?password=s3cret&sslmode=require"),
            "postgres://vigil@db/vigil?password=***&sslmode=require");
  EXPECT_EQ(db::redact_url("postgresql://vigil:p@ss@db/vigil"), "postgresql://vigil:***@db/vigil");
  EXPECT_EQ(db::redact_url("postgresql://db:5432/vigil"), "postgresql://db:5432/vigil");
  EXPECT_EQ(db::redact_url("postgresql://vigil@db:5432"), "postgresql://vigil@db:5432");
  EXPECT_EQ(db::redact_url("/var/lib/vigil/vigil.db"), "/var/lib/vigil/vigil.db");
  EXPECT_EQ(redact_database_url("postgresql://vigil:s3cret@db/vigil"), "postgresql://vigil:***@db/vigil");
  EXPECT_EQ(testdb::with_database("postgresql://u@h:5/postgres?sslmode=disable", "x"),
            "postgresql://u@h:5/x?sslmode=disable");
  EXPECT_EQ(testdb::with_database("postgresql://u@h:5", "x"), "postgresql://u@h:5/x");

  auto r = Registry::open("mysql://vigil:s3cret@db/vigil", test_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("unknown URL scheme 'mysql'"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find("s3cret"), std::string::npos) << r.error();
}

TEST(PostgresStore, ConnectionFailuresNameTheServerButNotThePassword) {
  // Port 1 on loopback: nothing listens there.
  for (const std::string scheme : {"postgresql", "postgres"}) {
    auto r = Registry::open(scheme + "://vigil:s3cret@127.0.0.1:1/vigil?connect_timeout=5", test_options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().find("s3cret"), std::string::npos) << r.error();
    EXPECT_NE(r.error().find(scheme + "://vigil:***@127.0.0.1:1/vigil"), std::string::npos) << r.error();
#if VIGIL_HAVE_POSTGRES
    EXPECT_NE(r.error().find("cannot connect to PostgreSQL"), std::string::npos) << r.error();
    EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
#else
    EXPECT_NE(r.error().find("built without PostgreSQL"), std::string::npos) << r.error();
#endif
  }
}

TEST(PostgresStore, AMissingDatabaseIsNamed) {
  TestDatabase server(Backend::kPostgres);
  if (!server.skip().empty()) GTEST_SKIP() << server.skip();
  ASSERT_TRUE(server.error().empty()) << server.error();
  auto r =
      Registry::open(testdb::with_database(server.server_url(), "vigil_no_such_database"), test_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("vigil_no_such_database\" does not exist"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("createdb"), std::string::npos) << r.error();
}

TEST(PostgresStore, ALostConnectionFailsOneCallAndIsReopened) {
  TestDatabase db(Backend::kPostgres);
  if (!db.skip().empty()) GTEST_SKIP() << db.skip();
  ASSERT_TRUE(db.error().empty()) << db.error();
  RegistryOptions o = test_options();
  o.connections = 1;
  auto reg = open_or_die(db.url(), o);
  ASSERT_TRUE(reg.add_vignette({"1AB2345", "cz", "cz-10d", day(2024, 6, 1), "", "", ""}).ok());
  const Timestamp t = at("2024-06-05T12:00:00Z");
  ASSERT_EQ(reg.decide(read("1AB2345"), t)->verdict, Verdict::kPaid);

  // The server ends the registry's session (a restart, a fail-over, an administrator).
  auto admin = db.admin()->acquire();
  ASSERT_TRUE(admin.ok());
  auto killed = (*admin)->query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                                {db.name()});
  ASSERT_TRUE(killed.ok()) << killed.error();
  ASSERT_EQ(killed->size(), 1u);
  for (int i = 0; i < 1000; ++i) {  // it ends asynchronously
    auto left = (*admin)->query("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1", {db.name()});
    ASSERT_TRUE(left.ok());
    if (db::as_int(left->front().front()) == 0) break;
    std::this_thread::sleep_for(10ms);
  }

  auto lost = reg.decide(read("1AB2345"), t);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.failure(), Failure::kStorage);
  EXPECT_NE(lost.error().find("lost the connection"), std::string::npos) << lost.error();
  // The next calls run on a new session, their statements prepared again.
  auto again = reg.decide(read("1AB2345"), t);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->verdict, Verdict::kPaid);
  auto stored = reg.add_vignette({"2AB2345", "cz", "cz-10d", day(2024, 6, 1), "", "", ""});
  EXPECT_TRUE(stored.ok()) << stored.error();
  EXPECT_EQ(db.count("records"), 2);
}

TEST(PostgresStore, WaitsForALockAndReportsBusyAfterTheTimeout) {
  TestDatabase db(Backend::kPostgres);
  if (!db.skip().empty()) GTEST_SKIP() << db.skip();
  ASSERT_TRUE(db.error().empty()) << db.error();
  RegistryOptions o = test_options();
  o.busy_timeout_ms = 200;
  auto reg = open_or_die(db.url(), o);
  auto other_db = db::open_database(db.url(), 5000, 1);
  ASSERT_TRUE(other_db.ok()) << other_db.error();
  auto other = (*other_db)->acquire();
  ASSERT_TRUE(other.ok());
  // Another session blocks writes to records (reads stay allowed).
  ASSERT_TRUE((*other)->begin(true).ok());
  ASSERT_TRUE((*other)->script("LOCK TABLE records IN EXCLUSIVE MODE").ok());
  const auto t0 = steady_clock::now();
  auto r = reg.add_vignette({"1AB2345", "cz", "cz-1d", day(2024, 6, 1), "", "", ""});
  const auto waited = steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure(), Failure::kBusy);
  EXPECT_NE(r.error().find("locked"), std::string::npos) << r.error();
  EXPECT_GE(waited, 150ms);
  EXPECT_TRUE(reg.decide(read("1AB2345"), at("2024-06-01T12:00:00Z")).ok());
  ASSERT_TRUE((*other)->commit().ok());
  // A lock released within the timeout is waited for.
  RegistryOptions patient = test_options();
  patient.busy_timeout_ms = 5000;
  auto reg2 = open_or_die(db.url(), patient);
  ASSERT_TRUE((*other)->begin(true).ok());
  ASSERT_TRUE((*other)->script("LOCK TABLE records IN EXCLUSIVE MODE").ok());
  std::thread release([&] {
    std::this_thread::sleep_for(150ms);
    EXPECT_TRUE((*other)->commit().ok());
  });
  auto ok = reg2.add_vignette({"1AB2345", "cz", "cz-1d", day(2024, 6, 1), "", "", ""});
  release.join();
  EXPECT_TRUE(ok.ok()) << ok.error();
  // The failed attempt stored nothing half-way.
  EXPECT_EQ(db.count("records"), 1);
  EXPECT_EQ(db.count("plate_keys"), 8);
}

TEST_P(Store, VignettesAreIdempotentByOrderIdAndRefundable) {
  auto reg = open_or_die(url(), test_options(at("2024-03-20T10:00:00Z")));
  const VignetteOrder order{"1ab 2345", "CZ", "cz-10d", day(2024, 3, 25), "M1", "ESHOP-1", ""};
  auto a = reg.add_vignette(order);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->record.plate, "1AB2345");
  EXPECT_EQ(a->record.country, "cz");
  EXPECT_EQ(a->record.valid_from, at("2024-03-24T23:00:00Z"));
  EXPECT_EQ(a->record.valid_to, at("2024-04-03T22:00:00Z"));
  auto again = reg.add_vignette(order);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->record.id, a->record.id);
  VignetteOrder other = order;
  other.plate = "2AB2345";
  auto clash = reg.add_vignette(other);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.failure(), Failure::kConflict);
  EXPECT_NE(clash.error().find("ESHOP-1"), std::string::npos) << clash.error();

  // Checks name the field.
  for (const auto& [o, expect] : std::vector<std::pair<VignetteOrder, std::string>>{
           {{"1AB2345", "cz", "cz-7d", day(2024, 3, 25), "", "", ""}, "product 'cz-7d' unknown"},
           {{"1AB@2345", "cz", "cz-10d", day(2024, 3, 25), "", "", ""}, "unexpected character '@'"},
           {{"QQQQ", "cz", "cz-10d", day(2024, 3, 25), "", "", ""}, "fits no cz plate format"},
           {{"1AB2345", "czech", "cz-10d", day(2024, 3, 25), "", "", ""}, "country 'czech'"},
           {{"1AB2345", "cz", "cz-10d", Day{year{2024}, month{2}, std::chrono::day{30}}, "", "", ""},
            "start"}}) {
    auto r = reg.add_vignette(o);
    ASSERT_FALSE(r.ok()) << expect;
    EXPECT_EQ(r.failure(), Failure::kInvalid);
    EXPECT_NE(r.error().find(expect), std::string::npos) << r.error();
  }
  // A plate of a country without formats is only checked for its characters.
  EXPECT_TRUE(reg.add_vignette({"QQQQ", "zz", "cz-1d", day(2024, 3, 25), "", "", ""}).ok());

  const Timestamp t = at("2024-03-28T08:00:00Z");
  EXPECT_EQ(reg.decide(read("1AB2345"), t)->verdict, Verdict::kPaid);
  auto refunded = reg.refund(a->record.id, RecordKind::kVignette);
  ASSERT_TRUE(refunded.ok()) << refunded.error();
  EXPECT_EQ(refunded->refunded, at("2024-03-20T10:00:00Z"));
  EXPECT_EQ(reg.decide(read("1AB2345"), t)->verdict, Verdict::kUnpaid);
  EXPECT_EQ(reg.refund(a->record.id, RecordKind::kExemption).failure(), Failure::kNotFound);
  EXPECT_EQ(reg.refund(9999, RecordKind::kVignette).failure(), Failure::kNotFound);
  EXPECT_EQ(reg.records_for_plate("1AB 2345")->size(), 1u);
}

TEST_P(Store, DecisionsFindNearMissesThroughTheIndex) {
  auto reg = open_or_die(url());
  ASSERT_TRUE(reg.add_vignette({"1AB2345", "cz", "cz-30d", day(2024, 6, 1), "", "", ""}).ok());
  ASSERT_TRUE(reg.add_exemption({"EL012AB", "cz", "electric", day(2024, 1, 1), std::nullopt, "", ""}).ok());
  const Timestamp t = at("2024-06-10T12:00:00Z");
  EXPECT_EQ(reg.decide(read("1AB2345"), t)->verdict, Verdict::kPaid);
  EXPECT_EQ(reg.decide(read("EL012AB"), at("2030-01-01T00:00:00Z"))->verdict, Verdict::kExempt);
  auto near = reg.decide(read("1A82345"), t);
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(near->verdict, Verdict::kReview);
  EXPECT_EQ(near->matched_plate, "1AB2345");
  EXPECT_EQ(reg.decide(read("ELO12AB"), t)->verdict, Verdict::kReview);  // O for 0 (fits no format either)
  EXPECT_EQ(reg.decide(read("5XY6789"), t)->verdict, Verdict::kUnpaid);
  EXPECT_EQ(reg.decide(read("1A82345"), at("2024-07-02T00:00:00Z"))->verdict, Verdict::kUnpaid);
}

TEST_P(Store, IngestIsIdempotentByEventIdAndAllOrNothing) {
  auto reg = open_or_die(url());
  ASSERT_TRUE(reg.add_vignette({"1AB2345", "cz", "cz-10d", day(2024, 6, 1), "", "", ""}).ok());
  const Timestamp t = at("2024-06-05T12:00:00Z");
  const std::vector<Sighting> batch = {sighting("e1", "A1", "1AB2345", t), sighting("e2", "A1", "5XY6789", t),
                                       sighting("e3", "A1", "1A82345", t),
                                       sighting("e4", "A1", "5XY6789", t, 0.2f)};
  auto first = reg.ingest(batch);
  ASSERT_TRUE(first.ok()) << first.error();
  ASSERT_EQ(first->size(), 4u);
  EXPECT_EQ((*first)[0].stored.decision.verdict, Verdict::kPaid);
  EXPECT_EQ((*first)[1].stored.decision.verdict, Verdict::kUnpaid);
  EXPECT_EQ((*first)[2].stored.decision.verdict, Verdict::kReview);
  EXPECT_EQ((*first)[3].stored.decision.verdict, Verdict::kReview);
  for (const auto& r : *first) EXPECT_FALSE(r.duplicate);

  // The same batch again (a camera retrying after a lost reply): nothing new, same answers.
  auto second = reg.ingest(batch);
  ASSERT_TRUE(second.ok()) << second.error();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_TRUE((*second)[i].duplicate);
    EXPECT_EQ((*second)[i].stored.id, (*first)[i].stored.id);
    EXPECT_EQ((*second)[i].stored.decision.verdict, (*first)[i].stored.decision.verdict);
  }
  EXPECT_EQ(count("sightings"), 4);

  // A repeated id inside one batch is stored once.
  auto inner = reg.ingest({sighting("e5", "A1", "5XY6789", t), sighting("e5", "A1", "5XY6789", t)});
  ASSERT_TRUE(inner.ok());
  EXPECT_FALSE((*inner)[0].duplicate);
  EXPECT_TRUE((*inner)[1].duplicate);
  EXPECT_EQ(count("sightings"), 5);

  // Another camera reusing an id: the whole batch is refused, its new sighting included.
  auto clash = reg.ingest({sighting("e6", "B2", "5XY6789", t), sighting("e1", "B2", "1AB2345", t)});
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.failure(), Failure::kConflict);
  EXPECT_EQ(count("sightings"), 5);

  // One bad item: nothing stored, the message names it.
  for (const auto& [bad, expect] : std::vector<std::pair<Sighting, std::string>>{
           {sighting("", "A1", "1AB2345", t), "sightings[1].id"},
           {sighting("e7", "A 1", "1AB2345", t), "sightings[1].camera_id"},
           {sighting("e7", "A1", "--", t), "sightings[1].text"},
           {sighting("e7", "A1", "1AB2345", t, 1.5f), "sightings[1].confidence"},
           {sighting("e7", "A1", "1AB2345", at("1970-01-01T00:00:00Z")), "sightings[1].time"}}) {
    auto r = reg.ingest({sighting("e8", "A1", "5XY6789", t), bad});
    ASSERT_FALSE(r.ok()) << expect;
    EXPECT_EQ(r.failure(), Failure::kInvalid);
    EXPECT_NE(r.error().find(expect), std::string::npos) << r.error();
  }
  EXPECT_EQ(count("sightings"), 5);
}

TEST_P(Store, ConcurrentIngestStoresEachEventOnce) {
  auto reg = open_or_die(url());
  const Timestamp t = at("2024-06-05T12:00:00Z");
  std::atomic<int> stored{0}, failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int b = 0; b < 10; ++b) {
        std::vector<Sighting> batch;
        // Every worker sends the same 20 events per round plus 5 of its own.
        for (int i = 0; i < 20; ++i)
          batch.push_back(sighting("shared-" + std::to_string(b * 20 + i), "A1", "5XY6789", t));
        for (int i = 0; i < 5; ++i)
          batch.push_back(
              sighting("own-" + std::to_string(w) + "-" + std::to_string(b * 5 + i), "A1", "5XY6789", t));
        auto r = reg.ingest(batch);
        if (!r) {
          ++failures;
          continue;
        }
        for (const auto& x : *r) stored += x.duplicate ? 0 : 1;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stored.load(), 200 + 4 * 50);
  EXPECT_EQ(count("sightings"), 200 + 4 * 50);
}

TEST(SqliteStore, WaitsForAnotherWritersLockAndReportsBusyAfterTheTimeout) {
  TempDir dir;
  const auto path = dir.file("v.db");
  RegistryOptions o = test_options();
  o.busy_timeout_ms = 200;
  auto reg = open_or_die(path, o);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto t0 = steady_clock::now();
  auto r = reg.add_vignette({"1AB2345", "cz", "cz-1d", day(2024, 6, 1), "", "", ""});
  const auto waited = steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure(), Failure::kBusy);
  EXPECT_NE(r.error().find("locked"), std::string::npos) << r.error();
  EXPECT_GE(waited, 150ms);
  // Readers are not blocked by the writer (WAL).
  EXPECT_TRUE(reg.decide(read("1AB2345"), at("2024-06-01T12:00:00Z")).ok());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  // A lock released within the timeout is waited for.
  RegistryOptions patient = test_options();
  patient.busy_timeout_ms = 5000;
  auto reg2 = open_or_die(path, patient);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::thread release([&] {
    std::this_thread::sleep_for(150ms);
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  auto ok = reg2.add_vignette({"1AB2345", "cz", "cz-1d", day(2024, 6, 1), "", "", ""});
  release.join();
  EXPECT_TRUE(ok.ok()) << ok.error();
  sqlite3_close(other);
  // The failed attempt stored nothing half-way.
  EXPECT_EQ(count_rows(path, "records"), 1);
  EXPECT_EQ(count_rows(path, "plate_keys"), 8);
}

TEST_P(Store, CsvImportReportsBadRowsByLine) {
  auto reg = open_or_die(url());
  const std::string csv =
      "plate,country,product,start,order_id,note\n"    // line 1
      "1AB2345,cz,cz-10d,2024-06-01,O-1,\n"            // 2 good
      "\"1AB 2346\",cz,cz-30d,2024-06-01,O-2,\"two\n"  // 3 good, note spans lines 3-4
      "lines\"\n"
      "1AB@2347,cz,cz-10d,2024-06-01,O-3,\n"  // 5 bad plate
      "\n"                                    // 6 blank
      "1AB2348,cz,cz-9d,2024-06-01,O-4,\n"    // 7 unknown product
      "1AB2349,cz,cz-10d,2024-06-31,O-5,\n"   // 8 bad day
      "1AB2350,cz,cz-10d\n"                   // 9 short row
      "2AB2345,cz,cz-10d,2024-06-01,O-1,\n";  // 10 order id clash with line 2
  auto all = reg.import_csv(csv, ImportMode::kAllOrNothing);
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_FALSE(all->committed);
  EXPECT_EQ(all->imported, 0);
  std::vector<int> lines;
  for (const auto& e : all->errors) lines.push_back(e.line);
  EXPECT_EQ(lines, (std::vector<int>{5, 7, 8, 9, 10}));
  EXPECT_NE(all->errors[0].message.find("'@'"), std::string::npos) << all->errors[0].message;
  EXPECT_NE(all->errors[1].message.find("cz-9d"), std::string::npos) << all->errors[1].message;
  EXPECT_NE(all->errors[4].message.find("O-1"), std::string::npos) << all->errors[4].message;
  EXPECT_EQ(count("records"), 0);

  auto valid = reg.import_csv(csv, ImportMode::kValidRows);
  ASSERT_TRUE(valid.ok()) << valid.error();
  EXPECT_TRUE(valid->committed);
  EXPECT_EQ(valid->imported, 2);
  EXPECT_EQ(valid->errors.size(), 5u);  // lines 5, 7, 8, 9, and 10 (its order id is line 2's)
  EXPECT_EQ(count("records"), 2);
  EXPECT_EQ(reg.records_for_plate("1AB2346")->front().note, "two\nlines");
  // Importing the same file again: the stored orders are recognised, not doubled.
  auto repeat = reg.import_csv(csv, ImportMode::kValidRows);
  ASSERT_TRUE(repeat.ok());
  EXPECT_EQ(repeat->imported, 0);
  EXPECT_EQ(repeat->existing, 2);
  EXPECT_EQ(count("records"), 2);

  for (const auto& [text, expect] : std::vector<std::pair<std::string, std::string>>{
           {"", "empty"},
           {"plate,country,product\n", "missing column 'start'"},
           {"plate,country,product,start,colour\n", "unknown column 'colour'"},
           {"plate,country,product,start\n\"1AB2345,cz\n", "not closed"}}) {
    auto r = reg.import_csv(text, ImportMode::kValidRows);
    ASSERT_FALSE(r.ok()) << expect;
    EXPECT_EQ(r.failure(), Failure::kInvalid);
    EXPECT_NE(r.error().find(expect), std::string::npos) << r.error();
  }
}

TEST_P(Store, ReviewResolutions) {
  auto reg = open_or_die(url());
  ASSERT_TRUE(reg.add_vignette({"1AB2345", "cz", "cz-10d", day(2024, 6, 1), "", "", ""}).ok());
  const Timestamp t = at("2024-06-05T12:00:00Z");
  auto in = reg.ingest({sighting("r1", "A1", "1A82345", t), sighting("r2", "A1", "5XY6789", t, 0.3f),
                        sighting("r3", "A2", "5XY6780", t, 0.3f), sighting("p1", "A1", "1AB2345", t)});
  ASSERT_TRUE(in.ok()) << in.error();
  SightingQuery q;
  q.outcome = Outcome::kReview;
  EXPECT_EQ(reg.sightings(q)->size(), 3u);
  q.camera_id = "A2";
  EXPECT_EQ(reg.sightings(q)->size(), 1u);

  const auto id = [&](int i) { return (*in)[static_cast<std::size_t>(i)].stored.id; };
  auto corrected = reg.resolve(id(0), {"correct", "1AB 2345", "B read as 8", 42});
  ASSERT_TRUE(corrected.ok()) << corrected.error();
  EXPECT_EQ(corrected->outcome, Outcome::kPaid);
  EXPECT_EQ(corrected->resolved_plate, "1AB2345");
  EXPECT_EQ(corrected->resolved_by, 42);
  auto confirmed = reg.resolve(id(1), {"confirm_unpaid", "", "", 42});
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(confirmed->outcome, Outcome::kUnpaid);
  auto dismissed = reg.resolve(id(2), {"dismiss", "", "no plate visible", 42});
  ASSERT_TRUE(dismissed.ok());
  EXPECT_EQ(dismissed->outcome, Outcome::kDismissed);

  EXPECT_EQ(reg.resolve(id(0), {"dismiss", "", "", 42}).failure(), Failure::kConflict);
  EXPECT_EQ(reg.resolve(id(3), {"dismiss", "", "", 42}).failure(),
            Failure::kConflict);  // paid, not in review
  EXPECT_EQ(reg.resolve(99999, {"dismiss", "", "", 42}).failure(), Failure::kNotFound);
  EXPECT_EQ(reg.resolve(id(1), {"fine", "", "", 42}).failure(), Failure::kInvalid);
  EXPECT_EQ(reg.resolve(id(1), {"correct", "", "", 42}).failure(), Failure::kInvalid);

  SightingQuery unpaid;
  unpaid.outcome = Outcome::kUnpaid;
  auto v = reg.sightings(unpaid);
  ASSERT_EQ(v->size(), 1u);
  EXPECT_EQ(v->front().sighting.event_id, "r2");
  unpaid.from = t + 1s;
  EXPECT_TRUE(reg.sightings(unpaid)->empty());
  q.camera_id.clear();
  EXPECT_TRUE(reg.sightings(q)->empty());
}

TEST_P(Store, TokensAreStoredHashedAndRevocable) {
  auto reg = open_or_die(url());
  auto cam = reg.create_token(Role::kCamera, "A1", "gate 1");
  ASSERT_TRUE(cam.ok()) << cam.error();
  EXPECT_EQ(cam->token.size(), 47u);
  EXPECT_EQ(cam->token.rfind("vgl_", 0), 0u);
  auto admin = reg.create_token(Role::kAdmin, "", "");
  ASSERT_TRUE(admin.ok());
  EXPECT_NE(admin->token, cam->token);
  EXPECT_EQ(reg.create_token(Role::kCamera, "", "").failure(), Failure::kInvalid);
  EXPECT_EQ(reg.create_token(Role::kShop, "A1", "").failure(), Failure::kInvalid);

  auto who = reg.authenticate(cam->token);
  ASSERT_TRUE(who.ok() && who->has_value());
  EXPECT_EQ((*who)->role, Role::kCamera);
  EXPECT_EQ((*who)->camera_id, "A1");
  EXPECT_FALSE(reg.authenticate(cam->token.substr(0, 46) + "x")->has_value());
  EXPECT_FALSE(reg.authenticate("")->has_value());
  EXPECT_EQ(reg.cameras()->size(), 1u);

  // The database holds only hashes.
  const std::string hash = sha256_hex(cam->token);
  std::string stored;
  for (const auto& row : db_->sql("SELECT hash, role, camera_id, note FROM tokens"))
    for (const auto& v : row) stored += db::as_text(v) + "\n";
  EXPECT_EQ(stored.find(cam->token.substr(4)), std::string::npos) << stored;
  EXPECT_NE(stored.find(hash), std::string::npos) << stored;
  if (GetParam() == Backend::kSqlite) {
    std::ifstream in(url(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ifstream wal(url() + "-wal", std::ios::binary);
    const std::string wal_bytes((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(cam->token.substr(4)), std::string::npos);
    EXPECT_EQ(wal_bytes.find(cam->token.substr(4)), std::string::npos);
    EXPECT_TRUE(bytes.find(hash) != std::string::npos || wal_bytes.find(hash) != std::string::npos);
  }

  ASSERT_TRUE(reg.revoke_token(cam->info.id).ok());
  EXPECT_FALSE(reg.authenticate(cam->token)->has_value());
  EXPECT_TRUE(reg.authenticate(admin->token)->has_value());
  EXPECT_EQ(reg.revoke_token(12345).failure(), Failure::kNotFound);
}

// ---------------------------------------------------------------------------------------------------------
// Fleets: several servers on one database

TEST_P(Fleet, ServersStartingTogetherMigrateOnce) {
  constexpr int kServers = 4;
  StartLine start(kServers);
  std::vector<std::string> errors(kServers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kServers; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto reg = Registry::open(url(), test_options());
      if (!reg) {
        errors[static_cast<std::size_t>(i)] = reg.error();
        return;
      }
      auto v = reg->schema_version();
      if (!v || *v != Registry::latest_schema_version())
        errors[static_cast<std::size_t>(i)] = "schema version " + (v ? std::to_string(*v) : v.error());
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(count("schema_migrations"), Registry::latest_schema_version());
  EXPECT_EQ(count("records"), 0);
}

TEST_P(Fleet, ServersPostingTheSameEventsStoreEachOnce) {
  auto first = open_or_die(url());
  auto second = open_or_die(url());
  Registry* servers[] = {&first, &second};
  const Timestamp t = at("2024-06-05T12:00:00Z");
  constexpr int kThreadsPerServer = 3, kRounds = 8, kShared = 20, kOwn = 5;
  constexpr int kThreads = 2 * kThreadsPerServer;
  std::barrier round_start(kThreads);
  std::mutex mutex;
  std::map<std::string, std::set<std::int64_t>> ids;  // event id -> sighting ids answered
  std::atomic<int> stored{0};
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      Registry& reg = *servers[w % 2];
      std::mt19937 rng(static_cast<unsigned>(w) + 1);
      for (int b = 0; b < kRounds; ++b) {
        // Each round every camera thread sends the same shared events, each in its own order, and a few of
        // its own: overlapping batches in different orders (PostgreSQL would deadlock on naive inserts).
        std::vector<Sighting> batch;
        for (int i = 0; i < kShared; ++i)
          batch.push_back(
              sighting("shared-" + std::to_string(b) + "-" + std::to_string(i), "A1", "5XY6789", t));
        for (int i = 0; i < kOwn; ++i)
          batch.push_back(
              sighting("own-" + std::to_string(w) + "-" + std::to_string(b) + "-" + std::to_string(i), "A1",
                       "5XY6789", t));
        std::shuffle(batch.begin(), batch.end(), rng);
        round_start.arrive_and_wait();  // all at once, every round
        auto r = reg.ingest(batch);
        std::lock_guard lock(mutex);
        if (!r) {
          failures.push_back(r.error());
          continue;
        }
        for (std::size_t i = 0; i < r->size(); ++i) {
          stored += (*r)[i].duplicate ? 0 : 1;
          ids[batch[i].event_id].insert((*r)[i].stored.id);
          EXPECT_EQ((*r)[i].stored.sighting.event_id, batch[i].event_id);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " batches failed, first: " << failures.front();
  constexpr int kUnique = kRounds * kShared + kThreads * kRounds * kOwn;
  EXPECT_EQ(stored.load(), kUnique);
  EXPECT_EQ(count("sightings"), kUnique);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kUnique));
  for (const auto& [event, answered] : ids) EXPECT_EQ(answered.size(), 1u) << event << " stored twice";
}

TEST_P(Fleet, ConcurrentOrdersRefundsAndReviewsActOnce) {
  auto first = open_or_die(url());
  auto second = open_or_die(url());
  Registry* servers[] = {&first, &second};
  constexpr int kThreads = 4;
  // The same e-shop order sent through two servers at once (a retry racing the original).
  {
    StartLine start(kThreads);
    std::atomic<int> created{0};
    std::vector<RegistryResult<Added>> results(kThreads, RegistryError{});
    std::vector<std::thread> threads;
    for (int w = 0; w < kThreads; ++w)
      threads.emplace_back([&, w] {
        start.arrive_and_wait();
        auto r = servers[w % 2]->add_vignette({"1AB2345", "cz", "cz-10d", day(2024, 6, 1), "", "RACE-1", ""});
        if (r && r->created) ++created;
        results[static_cast<std::size_t>(w)] = std::move(r);
      });
    for (auto& th : threads) th.join();
    for (const auto& r : results) {
      EXPECT_TRUE(r.ok()) << r.error();
      if (r && results.front()) EXPECT_EQ(r->record.id, results.front()->record.id);
    }
    EXPECT_EQ(created.load(), 1);
    EXPECT_EQ(count("records"), 1);
    EXPECT_EQ(count("plate_keys"), 8);
  }
  const auto records = first.records_for_plate("1AB2345");
  ASSERT_TRUE(records.ok() && !records->empty());
  const std::int64_t record = records->front().id;
  // Refunded through both at once: the first refund stands, every caller sees it.
  {
    StartLine start(kThreads);
    std::vector<RegistryResult<Record>> results(kThreads, RegistryError{});
    std::vector<std::thread> threads;
    for (int w = 0; w < kThreads; ++w)
      threads.emplace_back([&, w] {
        start.arrive_and_wait();
        results[static_cast<std::size_t>(w)] = servers[w % 2]->refund(record, RecordKind::kVignette);
      });
    for (auto& th : threads) th.join();
    const auto stored = first.record(record);
    ASSERT_TRUE(stored.ok() && stored->refunded);
    for (const auto& r : results) {
      EXPECT_TRUE(r.ok()) << r.error();
      if (r) EXPECT_EQ(r->refunded, stored->refunded) << "a later refund overwrote the first";
    }
  }
  // Two operators resolve the same sighting: one wins, the other is told it is no longer in review.
  auto in = first.ingest({sighting("rv", "A1", "5XY6789", at("2024-06-05T12:00:00Z"), 0.3f)});
  ASSERT_TRUE(in.ok()) << in.error();
  const std::int64_t id = in->front().stored.id;
  {
    StartLine start(kThreads);
    std::vector<RegistryResult<StoredSighting>> results(kThreads, RegistryError{});
    std::vector<std::thread> threads;
    for (int w = 0; w < kThreads; ++w)
      threads.emplace_back([&, w] {
        start.arrive_and_wait();
        results[static_cast<std::size_t>(w)] =
            servers[w % 2]->resolve(id, {w % 2 ? "dismiss" : "confirm_unpaid", "", "", w + 1});
      });
    for (auto& th : threads) th.join();
    int won = 0;
    for (const auto& r : results) {
      if (r) {
        ++won;
        continue;
      }
      EXPECT_EQ(r.failure(), Failure::kConflict) << r.error();
      EXPECT_NE(r.error().find("not in review"), std::string::npos) << r.error();
    }
    EXPECT_EQ(won, 1);
  }
}

}  // namespace
}  // namespace vigil
