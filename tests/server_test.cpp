// The registry's HTTP API spoken over loopback: a server started in-process on a free 127.0.0.1 port for
// the endpoint tests, and the `vigil serve` binary as a user runs it.
#include "vigil/server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "vigil/registry.hpp"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace vigil {
namespace {

struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  json j;  // the body parsed, or null

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

std::ostream& operator<<(std::ostream& os, const Reply& r) { return os << r.status << " " << r.body; }

Reply call(int port, const std::string& method, const std::string& path, const std::string& token,
           const std::string& body = "", const std::string& type = "application/json") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  auto send = [&]() -> httplib::Result {
    if (method == "GET") return cli.Get(path, headers);
    if (method == "DELETE") return cli.Delete(path, headers);
    return cli.Post(path, headers, body, type);
  };
  auto res = send();
  Reply r;
  if (!res) {
    ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = res->body;
  r.headers = res->headers;
  r.j = json::parse(r.body, nullptr, false);
  if (r.j.is_discarded()) r.j = nullptr;
  return r;
}

std::string event(const std::string& id, const std::string& camera, const std::string& text,
                  const std::string& time = "2024-06-05T12:00:00Z", double confidence = 0.95) {
  return json{{"id", id},        {"camera_id", camera}, {"text", text}, {"confidence", confidence},
              {"country", "cz"}, {"fits_format", true}, {"time", time}}
      .dump();
}

std::string batch(const std::vector<std::string>& events) {
  std::string s = "{\"sightings\": [";
  for (std::size_t i = 0; i < events.size(); ++i) s += (i ? "," : "") + events[i];
  return s + "]}";
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vigil_server_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    RegistryOptions o;
    // Before the vignettes' validity in these tests, so a refund (made "now") cancels them from the start.
    o.clock = [] { return *parse_timestamp("2024-03-20T10:00:00Z"); };
    auto formats = FormatSet::load(std::string(VIGIL_SOURCE_DIR) + "/data/plate_formats.json");
    ASSERT_TRUE(formats.ok()) << formats.error();
    o.formats = std::make_shared<const FormatSet>(std::move(*formats));
    auto reg = Registry::open((dir_ / "v.db").string(), o);
    ASSERT_TRUE(reg.ok()) << reg.error();
    reg_ = std::make_shared<Registry>(std::move(*reg));
    for (const auto& [name, role, camera] :
         std::vector<std::tuple<std::string, Role, std::string>>{{"camera", Role::kCamera, "A1"},
                                                                 {"camera_b", Role::kCamera, "B2"},
                                                                 {"shop", Role::kShop, ""},
                                                                 {"operator", Role::kOperator, ""},
                                                                 {"admin", Role::kAdmin, ""}}) {
      auto t = reg_->create_token(role, camera, name);
      ASSERT_TRUE(t.ok()) << t.error();
      tokens_[name] = t->token;
    }
    ServerOptions so;
    so.port = 0;
    so.threads = 4;
    so.body_max_bytes = 64 * 1024;
    so.batch_max = 50;
    server_ = std::make_unique<Server>(reg_, so);
    auto port = server_->start();
    ASSERT_TRUE(port.ok()) << port.error();
    port_ = *port;
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    reg_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Reply as(const std::string& who, const std::string& method, const std::string& path,
           const std::string& body = "", const std::string& type = "application/json") {
    return call(port_, method, path, who.empty() ? "" : tokens_.at(who), body, type);
  }

  std::size_t stored_sightings() {
    SightingQuery q;
    q.limit = 1000;
    auto s = reg_->sightings(q);
    EXPECT_TRUE(s.ok());
    return s ? s->size() : 0;
  }

  fs::path dir_;
  std::shared_ptr<Registry> reg_;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> tokens_;
  int port_ = 0;
};

// Every endpoint, who may call it, and a request that would succeed for them.
struct Endpoint {
  std::string method, path, body, type;
  std::set<std::string> allowed;
};

std::vector<Endpoint> endpoints() {
  const std::string vignette =
      R"({"plate": "1AB2345", "country": "cz", "product": "cz-10d", "start": "2024-06-01"})";
  return {
      {"GET", "/metrics", "", "", {"operator", "admin"}},
      {"POST", "/api/sightings", batch({event("e1", "A1", "1AB2345")}), "application/json", {"camera"}},
      {"GET", "/api/sightings/1", "", "", {"operator", "admin"}},
      {"GET", "/api/plates/1AB2345/status", "", "", {"operator", "admin"}},
      {"GET", "/api/plates/1AB2345/history", "", "", {"operator", "admin"}},
      {"POST", "/api/vignettes", vignette, "application/json", {"shop", "admin"}},
      {"GET", "/api/vignettes/1", "", "", {"shop", "operator", "admin"}},
      {"DELETE", "/api/vignettes/1", "", "", {"shop", "admin"}},
      {"POST",
       "/api/vignettes/import",
       "plate,country,product,start\n1AB2345,cz,cz-1d,2024-06-01\n",
       "text/csv",
       {"shop", "admin"}},
      {"POST",
       "/api/exemptions",
       R"({"plate": "EL012AB", "country": "cz", "reason": "electric"})",
       "application/json",
       {"admin"}},
      {"DELETE", "/api/exemptions/1", "", "", {"admin"}},
      {"GET", "/api/violations", "", "", {"operator", "admin"}},
      {"GET", "/api/review", "", "", {"operator", "admin"}},
      {"POST",
       "/api/review/1/resolve",
       R"({"action": "dismiss"})",
       "application/json",
       {"operator", "admin"}},
      {"GET", "/api/tokens", "", "", {"admin"}},
      {"POST", "/api/tokens", R"({"role": "shop"})", "application/json", {"admin"}},
      {"DELETE", "/api/tokens/999", "", "", {"admin"}},
      {"GET", "/api/cameras", "", "", {"operator", "admin"}},
      {"POST", "/api/cameras", R"({"id": "C3", "name": "gate"})", "application/json", {"admin"}},
  };
}

TEST_F(ServerTest, HealthIsPublic) {
  auto r = as("", "GET", "/health");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.j["status"], "ok");
  EXPECT_EQ(r.j["schema_version"], Registry::latest_schema_version());
}

TEST_F(ServerTest, EveryEndpointRefusesRequestsWithoutAToken) {
  for (const auto& e : endpoints()) {
    auto r = as("", e.method, e.path, e.body, e.type);
    EXPECT_EQ(r.status, 401) << e.method << " " << e.path << ": " << r;
    EXPECT_NE(r.j.value("error", "").find("missing token"), std::string::npos) << r;
    EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer realm=\"vigil\"");
    auto bad = call(port_, e.method, e.path, "vgl_not-a-real-token-at-all-0123456789abcdefg", e.body, e.type);
    EXPECT_EQ(bad.status, 401) << e.method << " " << e.path << ": " << bad;
  }
  EXPECT_EQ(stored_sightings(), 0u);
  EXPECT_TRUE(reg_->records_for_plate("1AB2345")->empty());
}

TEST_F(ServerTest, EveryEndpointRefusesTheWrongRoles) {
  for (const auto& e : endpoints()) {
    for (const std::string who : {"camera", "shop", "operator", "admin"}) {
      if (e.allowed.count(who)) continue;
      auto r = as(who, e.method, e.path, e.body, e.type);
      EXPECT_EQ(r.status, 403) << who << " " << e.method << " " << e.path << ": " << r;
      EXPECT_NE(r.j.value("error", "").find("may not call"), std::string::npos) << r;
    }
  }
  EXPECT_EQ(stored_sightings(), 0u);
  EXPECT_TRUE(reg_->records_for_plate("1AB2345")->empty());
  EXPECT_EQ(reg_->tokens()->size(), 5u);
}

TEST_F(ServerTest, EveryEndpointServesItsRoles) {
  // The same requests from an allowed role get past the auth check (they may still find no such id, or a
  // sighting that is not in review).
  for (const auto& e : endpoints()) {
    for (const auto& who : e.allowed) {
      auto r = as(who, e.method, e.path, e.body, e.type);
      EXPECT_TRUE(r.status != 401 && r.status != 403 && r.status < 500)
          << who << " " << e.method << " " << e.path << ": " << r;
    }
  }
}

TEST_F(ServerTest, SightingBatchesAreDecidedAndIdempotent) {
  ASSERT_EQ(as("shop", "POST", "/api/vignettes",
               R"({"plate": "1AB 2345", "country": "cz", "product": "cz-10d", "start": "2024-06-01"})")
                .status,
            201);
  const std::string body =
      batch({event("e1", "A1", "1AB2345"), event("e2", "A1", "5XY6789"), event("e3", "A1", "1A82345"),
             event("e4", "A1", "5XY6780", "2024-06-05T12:00:00Z", 0.2)});
  auto first = as("camera", "POST", "/api/sightings", body);
  ASSERT_EQ(first.status, 200) << first;
  EXPECT_EQ(first.j["stored"], 4);
  EXPECT_EQ(first.j["duplicates"], 0);
  std::vector<std::string> decisions;
  for (const auto& r : first.j["results"]) decisions.push_back(r["decision"]);
  EXPECT_EQ(decisions, (std::vector<std::string>{"paid", "unpaid", "review", "review"}));

  auto again = as("camera", "POST", "/api/sightings", body);
  ASSERT_EQ(again.status, 200) << again;
  EXPECT_EQ(again.j["stored"], 0);
  EXPECT_EQ(again.j["duplicates"], 4);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(again.j["results"][i]["sighting_id"], first.j["results"][i]["sighting_id"]);
    EXPECT_EQ(again.j["results"][i]["decision"], first.j["results"][i]["decision"]);
    EXPECT_TRUE(again.j["results"][i]["duplicate"].get<bool>());
  }
  EXPECT_EQ(stored_sightings(), 4u);

  // A vigil watch event is accepted as it is (wall clock).
  const std::string watch_event =
      R"({"id":"w1","camera_id":"A1","text":"5XY6789","confidence":0.9,"country":"cz","fits_format":true,)"
      R"("candidates":[{"text":"5XY6789","confidence":0.9,"country":"cz"},{"text":"5XY6780","confidence":0.05,"country":"cz"}],)"
      R"("first_seen":"2024-06-05T12:00:01.000Z","last_seen":"2024-06-05T12:00:02.500Z","first_seen_s":1.0,)"
      R"("last_seen_s":2.5,"frames":7,"direction":"left","box":[1,2,3,4],"evidence":null})";
  auto w = as("camera", "POST", "/api/sightings", batch({watch_event}));
  ASSERT_EQ(w.status, 200) << w;
  auto stored = reg_->sighting(w.j["results"][0]["sighting_id"].get<std::int64_t>());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->sighting.time, *parse_timestamp("2024-06-05T12:00:02.500Z"));
  EXPECT_EQ(stored->sighting.read.alternatives, std::vector<std::string>{"5XY6780"});

  auto violations = as("operator", "GET", "/api/violations?camera=A1");
  ASSERT_EQ(violations.status, 200) << violations;
  ASSERT_EQ(violations.j["violations"].size(), 2u);
  EXPECT_EQ(violations.j["violations"][0]["id"], "e2");
  auto review = as("operator", "GET", "/api/review");
  ASSERT_EQ(review.status, 200);
  EXPECT_EQ(review.j["review"].size(), 2u);
}

TEST_F(ServerTest, CamerasMayPostOnlyForThemselves) {
  auto r = as("camera", "POST", "/api/sightings",
              batch({event("e1", "A1", "5XY6789"), event("e2", "B2", "5XY6789")}));
  EXPECT_EQ(r.status, 403) << r;
  EXPECT_NE(r.j.value("error", "").find("sightings[1].camera_id"), std::string::npos) << r;
  EXPECT_EQ(stored_sightings(), 0u);
  // An event id already used by another camera: refused, nothing of the batch stored.
  ASSERT_EQ(as("camera_b", "POST", "/api/sightings", batch({event("x1", "B2", "5XY6789")})).status, 200);
  r = as("camera", "POST", "/api/sightings",
         batch({event("e3", "A1", "5XY6789"), event("x1", "A1", "5XY6789")}));
  EXPECT_EQ(r.status, 409) << r;
  EXPECT_EQ(stored_sightings(), 1u);
}

TEST_F(ServerTest, MalformedSightingsAreRefusedNamingTheProblem) {
  const std::string good = event("e1", "A1", "5XY6789");
  json no_time = json::parse(good);
  no_time.erase("time");
  json stream_clock = no_time;
  stream_clock["last_seen"] = 12.5;
  json wrong_type = json::parse(good);
  wrong_type["confidence"] = "high";
  json id_number = json::parse(good);
  id_number["id"] = 5;
  json extra = json::parse(good);
  extra["colour"] = "red";
  json bad_time = json::parse(good);
  bad_time["time"] = "2024-06-05 noon";
  json bad_text = json::parse(good);
  bad_text["text"] = "--";
  json bad_confidence = json::parse(good);
  bad_confidence["confidence"] = 2;
  json bad_candidates = json::parse(good);
  bad_candidates["candidates"] = {{{"text", "X"}, {"score", 1}}};
  const std::string big(70 * 1024, ' ');
  std::vector<std::string> many;
  for (int i = 0; i < 51; ++i) many.push_back(event("m" + std::to_string(i), "A1", "5XY6789"));

  struct Case {
    std::string body, type;
    int status;
    std::string expect;
  };
  for (const auto& c : std::vector<Case>{
           {"{", "application/json", 400, "malformed JSON"},
           {"[]", "application/json", 400, "body: expected an object"},
           {R"({"sightings": {}})", "application/json", 400, "sightings: expected an array"},
           {R"({"events": []})", "application/json", 400, "events: unknown field"},
           {"{}", "application/json", 400, "sightings: required"},
           {batch({no_time.dump()}), "application/json", 400, "sightings[0].time: required"},
           {batch({stream_clock.dump()}), "application/json", 400, "stream clock"},
           {batch({good, wrong_type.dump()}), "application/json", 400,
            "sightings[1].confidence: expected a number"},
           {batch({id_number.dump()}), "application/json", 400, "sightings[0].id: expected a string"},
           {batch({extra.dump()}), "application/json", 400, "sightings[0].colour: unknown field"},
           {batch({bad_time.dump()}), "application/json", 400, "sightings[0].time"},
           {batch({good, bad_text.dump()}), "application/json", 400, "sightings[1].text"},
           {batch({bad_confidence.dump()}), "application/json", 400, "sightings[0].confidence"},
           {batch({bad_candidates.dump()}), "application/json", 400, "candidates[0].score: unknown field"},
           {batch({good}), "text/plain", 415, "application/json"},
           {batch({good}) + big, "application/json", 413, "over the limit"},
           {batch(many), "application/json", 413, "at most 50"},
       }) {
    auto r = as("camera", "POST", "/api/sightings", c.body, c.type);
    EXPECT_EQ(r.status, c.status) << c.expect << ": " << r;
    EXPECT_NE(r.j.value("error", "").find(c.expect), std::string::npos) << r;
  }
  EXPECT_EQ(stored_sightings(), 0u);
  // The server is still fine.
  EXPECT_EQ(as("camera", "POST", "/api/sightings", batch({good})).status, 200);
}

TEST_F(ServerTest, VignettesFromTheShop) {
  const std::string order =
      R"({"plate": "1ab-2345", "country": "cz", "product": "cz-10d", "start": "2024-03-25", "order_id": "S-1"})";
  auto created = as("shop", "POST", "/api/vignettes", order);
  ASSERT_EQ(created.status, 201) << created;
  EXPECT_EQ(created.j["plate"], "1AB2345");
  EXPECT_EQ(created.j["valid_from"], "2024-03-25T00:00:00+01:00");
  EXPECT_EQ(created.j["valid_to"], "2024-04-04T00:00:00+02:00");
  EXPECT_EQ(created.j["last_day"], "2024-04-03");
  const auto id = created.j["id"].get<std::int64_t>();
  auto repeat = as("shop", "POST", "/api/vignettes", order);
  EXPECT_EQ(repeat.status, 200) << repeat;
  EXPECT_EQ(repeat.j["id"], id);
  auto clash = as(
      "shop", "POST", "/api/vignettes",
      R"({"plate": "2AB2345", "country": "cz", "product": "cz-10d", "start": "2024-03-25", "order_id": "S-1"})");
  EXPECT_EQ(clash.status, 409) << clash;

  for (
      const auto& [body, expect] : std::vector<std::pair<std::string, std::string>>{
          {R"({"plate": "1AB@2345", "country": "cz", "product": "cz-10d", "start": "2024-03-25"})", "'@'"},
          {R"({"plate": "QQQQ", "country": "cz", "product": "cz-10d", "start": "2024-03-25"})",
           "fits no cz plate format"},
          {R"({"plate": "1AB2345", "country": "cz", "product": "cz-7d", "start": "2024-03-25"})", "cz-7d"},
          {R"({"plate": "1AB2345", "country": "cz", "product": "cz-10d"})", "start: required"},
          {R"({"plate": "1AB2345", "country": "cz", "product": "cz-10d", "start": "25.3.2024"})", "start"},
          {R"({"plate": 12345, "country": "cz", "product": "cz-10d", "start": "2024-03-25"})",
           "plate: expected a string"},
          {R"({"plate": "1AB2345", "country": "cz", "product": "cz-10d", "start": "2024-03-25", "price": 1})",
           "price: unknown field"}}) {
    auto r = as("shop", "POST", "/api/vignettes", body);
    EXPECT_EQ(r.status, 400) << body << ": " << r;
    EXPECT_NE(r.j.value("error", "").find(expect), std::string::npos) << r;
  }
  EXPECT_EQ(reg_->records_for_plate("1AB2345")->size(), 1u);

  auto status = [&](const std::string& when) {
    auto r = as("operator", "GET", "/api/plates/1AB%202345/status?at=" + when);
    EXPECT_EQ(r.status, 200) << r;
    return r.j.value("decision", "");
  };
  EXPECT_EQ(status("2024-03-24T22:59:59Z"), "unpaid");
  EXPECT_EQ(status("2024-03-24T23:00:00Z"), "paid");
  EXPECT_EQ(status("2024-04-03T21:59:59Z"), "paid");
  EXPECT_EQ(status("2024-04-03T22:00:00Z"), "unpaid");
  EXPECT_EQ(as("operator", "GET", "/api/plates/1AB2345/status?at=tomorrow").status, 400);
  EXPECT_EQ(as("operator", "GET", "/api/plates/1AB2345/status?when=now").status, 400);
  EXPECT_EQ(as("operator", "GET", "/api/plates/1AB@2345/status").status, 400);

  EXPECT_EQ(as("operator", "GET", "/api/vignettes/" + std::to_string(id)).status, 200);
  EXPECT_EQ(as("operator", "GET", "/api/vignettes/abc").status, 404);
  auto refund = as("shop", "DELETE", "/api/vignettes/" + std::to_string(id));
  ASSERT_EQ(refund.status, 200) << refund;
  EXPECT_FALSE(refund.j["refunded"].is_null());
  EXPECT_EQ(status("2024-03-30T12:00:00Z"), "unpaid");
  EXPECT_EQ(as("shop", "DELETE", "/api/vignettes/4242").status, 404);

  auto history = as("operator", "GET", "/api/plates/1AB2345/history");
  ASSERT_EQ(history.status, 200) << history;
  EXPECT_EQ(history.j["records"].size(), 1u);
}

TEST_F(ServerTest, CsvImportAllOrNothingOrTheValidRows) {
  const std::string csv =
      "plate,country,product,start,order_id\n"
      "1AB2345,cz,cz-10d,2024-06-01,I-1\n"
      "1AB@2346,cz,cz-10d,2024-06-01,I-2\n"
      "1AB2347,cz,cz-10d,2024-06-01,I-3\n";
  auto all = as("shop", "POST", "/api/vignettes/import", csv, "text/csv");
  ASSERT_EQ(all.status, 422) << all;
  EXPECT_FALSE(all.j["committed"].get<bool>());
  ASSERT_EQ(all.j["errors"].size(), 1u);
  EXPECT_EQ(all.j["errors"][0]["line"], 3);
  EXPECT_TRUE(reg_->records_for_plate("1AB2345")->empty());
  auto valid = as("shop", "POST", "/api/vignettes/import?mode=valid", csv, "text/csv");
  ASSERT_EQ(valid.status, 200) << valid;
  EXPECT_EQ(valid.j["imported"], 2);
  EXPECT_EQ(valid.j["errors"].size(), 1u);
  EXPECT_EQ(reg_->records_for_plate("1AB2347")->size(), 1u);
  EXPECT_EQ(as("shop", "POST", "/api/vignettes/import?mode=some", csv, "text/csv").status, 400);
  EXPECT_EQ(as("shop", "POST", "/api/vignettes/import", csv, "application/json").status, 415);
  auto header = as("shop", "POST", "/api/vignettes/import", "plate,colour\n", "text/csv");
  EXPECT_EQ(header.status, 400) << header;
  EXPECT_NE(header.j.value("error", "").find("colour"), std::string::npos);
}

TEST_F(ServerTest, ReviewQueueAndResolutions) {
  ASSERT_EQ(as("shop", "POST", "/api/vignettes",
               R"({"plate": "1AB2345", "country": "cz", "product": "cz-30d", "start": "2024-06-01"})")
                .status,
            201);
  auto posted =
      as("camera", "POST", "/api/sightings",
         batch({event("r1", "A1", "1A82345"), event("r2", "A1", "5XY6789", "2024-06-05T12:00:00Z", 0.3)}));
  ASSERT_EQ(posted.status, 200) << posted;
  auto review = as("operator", "GET", "/api/review");
  ASSERT_EQ(review.j["review"].size(), 2u);
  const auto id1 = review.j["review"][0]["sighting_id"].get<std::int64_t>();
  const auto id2 = review.j["review"][1]["sighting_id"].get<std::int64_t>();
  auto fixed = as("operator", "POST", "/api/review/" + std::to_string(id1) + "/resolve",
                  R"({"action": "correct", "plate": "1AB2345", "note": "B, not 8"})");
  ASSERT_EQ(fixed.status, 200) << fixed;
  EXPECT_EQ(fixed.j["outcome"], "paid");
  EXPECT_EQ(fixed.j["resolution"]["action"], "correct");
  EXPECT_EQ(
      as("operator", "POST", "/api/review/" + std::to_string(id1) + "/resolve", R"({"action": "dismiss"})")
          .status,
      409);
  EXPECT_EQ(as("operator", "POST", "/api/review/" + std::to_string(id2) + "/resolve", R"({"action": "fine"})")
                .status,
            400);
  EXPECT_EQ(
      as("operator", "POST", "/api/review/" + std::to_string(id2) + "/resolve", R"({"action": 1})").status,
      400);
  EXPECT_EQ(as("operator", "POST", "/api/review/777/resolve", R"({"action": "dismiss"})").status, 404);
  auto confirmed = as("admin", "POST", "/api/review/" + std::to_string(id2) + "/resolve",
                      R"({"action": "confirm_unpaid"})");
  ASSERT_EQ(confirmed.status, 200) << confirmed;
  EXPECT_EQ(as("operator", "GET", "/api/review").j["review"].size(), 0u);
  auto violations =
      as("operator", "GET", "/api/violations?from=2024-06-05T00:00:00Z&to=2024-06-06T00:00:00Z");
  ASSERT_EQ(violations.status, 200) << violations;
  ASSERT_EQ(violations.j["violations"].size(), 1u);
  EXPECT_EQ(violations.j["violations"][0]["id"], "r2");
  EXPECT_EQ(as("operator", "GET", "/api/violations?from=2024-06-06T00:00:00Z").j["violations"].size(), 0u);
  EXPECT_EQ(as("operator", "GET", "/api/violations?camera=B2").j["violations"].size(), 0u);
  EXPECT_EQ(as("operator", "GET", "/api/violations?from=yesterday").status, 400);
  EXPECT_EQ(as("operator", "GET", "/api/violations?limit=0").status, 400);
  EXPECT_EQ(as("operator", "GET", "/api/violations?plate=X").status, 400);
}

TEST_F(ServerTest, ExemptionsAndTokensThroughTheApi) {
  auto ex = as("admin", "POST", "/api/exemptions",
               R"({"plate": "EL012AB", "country": "cz", "reason": "electric", "from": "2024-01-01"})");
  ASSERT_EQ(ex.status, 201) << ex;
  EXPECT_TRUE(ex.j["valid_to"].is_null());
  auto status = as("operator", "GET", "/api/plates/EL012AB/status?at=2024-06-01T00:00:00Z");
  EXPECT_EQ(status.j["decision"], "exempt") << status;
  EXPECT_EQ(status.j["record"]["reason"], "electric");

  auto made = as("admin", "POST", "/api/tokens", R"({"role": "camera", "camera": "C3", "note": "new gate"})");
  ASSERT_EQ(made.status, 201) << made;
  const std::string token = made.j["token"];
  EXPECT_EQ(call(port_, "POST", "/api/sightings", token, batch({event("c1", "C3", "5XY6789")})).status, 200);
  auto listed = as("admin", "GET", "/api/tokens");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find(token), std::string::npos);  // secrets are never listed
  EXPECT_EQ(as("admin", "POST", "/api/tokens", R"({"role": "camera"})").status, 400);
  EXPECT_EQ(as("admin", "POST", "/api/tokens", R"({"role": "root"})").status, 400);
  EXPECT_EQ(as("admin", "DELETE", "/api/tokens/" + std::to_string(made.j["id"].get<int>())).status, 200);
  EXPECT_EQ(call(port_, "POST", "/api/sightings", token, batch({event("c2", "C3", "5XY6789")})).status, 401);
  auto cams = as("operator", "GET", "/api/cameras");
  ASSERT_EQ(cams.status, 200);
  EXPECT_EQ(cams.j["cameras"].size(), 3u);  // A1, B2, C3
}

TEST_F(ServerTest, MetricsCountSightingsDecisionsAndLatency) {
  ASSERT_EQ(
      as("camera", "POST", "/api/sightings", batch({event("e1", "A1", "5XY6789"), event("e2", "A1", "QQ")}))
          .status,
      200);
  ASSERT_EQ(as("camera", "POST", "/api/sightings", batch({event("e1", "A1", "5XY6789")})).status, 200);
  ASSERT_EQ(as("camera", "POST", "/api/sightings", "{").status, 400);
  auto m = as("operator", "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.header("Content-Type").find("text/plain"), std::string::npos);
  for (const char* line :
       {"vigil_sightings_total{result=\"stored\"} 2", "vigil_sightings_total{result=\"duplicate\"} 1",
        "vigil_decisions_total{decision=\"unpaid\"} 1", "vigil_decisions_total{decision=\"review\"} 1",
        "vigil_sighting_batches_rejected_total 1",
        "vigil_http_request_duration_seconds_count{route=\"POST /api/sightings\"} 3",
        "vigil_http_responses_total{route=\"POST /api/sightings\",status=\"400\"} 1"})
    EXPECT_NE(m.body.find(line), std::string::npos) << line << "\n" << m.body;
  EXPECT_TRUE(std::regex_search(m.body, std::regex(R"(route="POST /api/sightings",le="\+Inf"\} 3)")))
      << m.body;
}

TEST_F(ServerTest, UnknownEndpointsAnswerJson) {
  auto r = as("admin", "GET", "/api/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.j.value("error", "").find("no endpoint GET /api/nothing"), std::string::npos) << r;
}

// ---------------------------------------------------------------------------------------------------------
// The binary

// A running `vigil ...` with its stdout readable line by line.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    std::vector<std::string> strings = {VIGIL_BINARY};
    strings.insert(strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    if (posix_spawn(&pid_, VIGIL_BINARY, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }

  // The next stdout line, or "" after timeout_s / at the end.
  std::string line(int timeout_s = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char b[4096];
      const auto n = ::read(out_, b, sizeof b);
      if (n <= 0) return "";
      buf_.append(b, static_cast<std::size_t>(n));
    }
  }

  // Waits for the exit (killing it after timeout_s); the status, and stderr.
  int wait(std::string* err = nullptr, int timeout_s = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    if (err) {
      char b[4096];
      ::fcntl(err_, F_SETFL, O_NONBLOCK);
      for (ssize_t n; (n = ::read(err_, b, sizeof b)) > 0;) err->append(b, static_cast<std::size_t>(n));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void signal(int sig) { ::kill(pid_, sig); }
  std::string rest() {
    std::string all;
    for (std::string l; !(l = line(5)).empty();) all += l + "\n";
    return all;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  std::string buf_;
};

TEST(ServeBinary, StartsTokensWorkAndStopsOnSigterm) {
  const fs::path dir = fs::temp_directory_path() / ("vigil_serve_bin_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string db = (dir / "data" / "vigil.db").string();

  Child server({"serve", "--data-dir", (dir / "data").string(), "--port", "0"});
  const std::string first = server.line();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first, m, std::regex(R"(serving http://127\.0\.0\.1:(\d+) \(sqlite (.*)\))")))
      << first;
  const int port = std::stoi(m[1]);
  EXPECT_EQ(m[2].str(), db);
  EXPECT_NE(server.line().find("no admin token"), std::string::npos);
  EXPECT_NE(server.line().find("vigil serve token create --role admin --db " + db), std::string::npos);
  auto health = call(port, "GET", "/health", "");
  EXPECT_EQ(health.status, 200) << health;

  // Tokens are made by the CLI against the same file while the server runs.
  Child create({"serve", "token", "create", "--role", "camera", "--camera", "A1", "--db", db});
  const std::string token = create.line();
  std::string err;
  EXPECT_EQ(create.wait(&err), 0) << err;
  EXPECT_EQ(token.size(), 47u) << token;
  EXPECT_NE(err.find("only time it is shown"), std::string::npos) << err;
  auto posted = call(port, "POST", "/api/sightings", token, batch({event("b1", "A1", "5XY6789")}));
  EXPECT_EQ(posted.status, 200) << posted;
  EXPECT_EQ(call(port, "POST", "/api/sightings", token, batch({event("b2", "B2", "5XY6789")})).status, 403);

  Child bad({"serve", "token", "create", "--role", "camera", "--db", db});
  err.clear();
  EXPECT_EQ(bad.wait(&err), 2);
  EXPECT_NE(err.find("camera id"), std::string::npos) << err;
  Child list({"serve", "token", "list", "--db", db});
  const std::string listed = list.rest();
  EXPECT_EQ(list.wait(), 0);
  EXPECT_NE(listed.find("camera\tA1"), std::string::npos) << listed;
  EXPECT_EQ(listed.find(token.substr(4)), std::string::npos);

  server.signal(SIGTERM);
  err.clear();
  EXPECT_EQ(server.wait(&err), 0) << err;
  EXPECT_NE(err.find("stopping"), std::string::npos) << err;
  fs::remove_all(dir);
}

TEST(ServeBinary, ReportsAPortInUse) {
  httplib::Server blocker;
  const int port = blocker.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  const fs::path dir = fs::temp_directory_path() / ("vigil_serve_busy_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Child server({"serve", "--db", (dir / "v.db").string(), "--port", std::to_string(port)});
  std::string err;
  EXPECT_EQ(server.wait(&err), 1);
  EXPECT_NE(err.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vigil
