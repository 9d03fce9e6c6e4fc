// The registry's HTTP API spoken over loopback: a server started in-process on a free 127.0.0.1 port for
// the endpoint tests, and the `vigil serve` binary as a user runs it.
#include "vigil/server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/base64.hpp"
#include "test_databases.hpp"
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

// A raw TCP connection to the server on loopback, for requests no well-behaved client sends.
struct RawConnection {
  int fd = -1;
  explicit RawConnection(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~RawConnection() {
    if (fd >= 0) ::close(fd);
  }
  bool send(const std::string& bytes) const {
    return fd >= 0 &&
           ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // What the server answers within `timeout_ms` (until it closes the connection or stops sending).
  std::string receive(int timeout_ms) const {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (fd >= 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
};

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

// A server on a fresh database: every ServerTest runs on SQLite and on PostgreSQL (names end in /Sqlite and
// /Postgres; the PostgreSQL runs need VIGIL_TEST_POSTGRES_URL, see test_databases.hpp).
class ServerTest : public ::testing::TestWithParam<testdb::Backend> {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / ("vigil_server_test_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A TEST_F on this fixture (no parameter) runs on SQLite.
    std::string url = (dir_ / "v.db").string();
    if (info->value_param() && GetParam() == testdb::Backend::kPostgres) {
      pg_ = std::make_unique<testdb::TestDatabase>(testdb::Backend::kPostgres);
      if (!pg_->skip().empty()) GTEST_SKIP() << pg_->skip();
      ASSERT_TRUE(pg_->error().empty()) << pg_->error();
      url = pg_->url();
    }
    RegistryOptions o;
    // Before the vignettes' validity in these tests, so a refund (made "now") cancels them from the start.
    o.clock = [] { return *parse_timestamp("2024-03-20T10:00:00Z"); };
    auto formats = FormatSet::load(std::string(VIGIL_SOURCE_DIR) + "/data/plate_formats.json");
    ASSERT_TRUE(formats.ok()) << formats.error();
    o.formats = std::make_shared<const FormatSet>(std::move(*formats));
    auto reg = Registry::open(url, o);
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
    so.sightings_max_bytes = 256 * 1024;
    so.image_max_bytes = 64 * 1024;
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
    pg_.reset();
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
  std::unique_ptr<testdb::TestDatabase> pg_;  // the PostgreSQL variant's database
  std::shared_ptr<Registry> reg_;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> tokens_;
  int port_ = 0;
};

INSTANTIATE_TEST_SUITE_P(, ServerTest,
                         ::testing::Values(testdb::Backend::kSqlite, testdb::Backend::kPostgres),
                         testdb::backend_name);

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
      {"GET", "/api/sightings", "", "", {"operator", "admin"}},
      {"GET", "/api/sightings/1", "", "", {"operator", "admin"}},
      {"GET", "/api/sightings/1/plate.jpg", "", "", {"operator", "admin"}},
      {"GET", "/api/sightings/1/frame.jpg", "", "", {"operator", "admin"}},
      {"GET", "/api/me", "", "", {"camera", "shop", "operator", "admin"}},
      {"GET", "/api/vignettes?plate=1AB2345", "", "", {"shop", "operator", "admin"}},
      {"GET", "/api/products", "", "", {"shop", "operator", "admin"}},
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

TEST_P(ServerTest, HealthIsPublic) {
  auto r = as("", "GET", "/health");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.j["status"], "ok");
  EXPECT_EQ(r.j["schema_version"], Registry::latest_schema_version());
}

TEST_P(ServerTest, EveryEndpointRefusesRequestsWithoutAToken) {
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

TEST_P(ServerTest, EveryEndpointRefusesTheWrongRoles) {
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

TEST_P(ServerTest, EveryEndpointServesItsRoles) {
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

TEST_P(ServerTest, SightingBatchesAreDecidedAndIdempotent) {
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

TEST_P(ServerTest, CamerasMayPostOnlyForThemselves) {
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

TEST_P(ServerTest, MalformedSightingsAreRefusedNamingTheProblem) {
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
  json bad_country_confidence = json::parse(good);
  bad_country_confidence["country_confidence"] = "sure";
  const std::string big(260 * 1024, ' ');  // over the fixture's sightings_max_bytes
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
           {batch({bad_country_confidence.dump()}), "application/json", 400,
            "sightings[0].country_confidence: expected a number"},
           {batch({good}), "text/plain", 415, "application/json"},
           {batch({good}) + big, "application/json", 413, "over the limit"},
           {batch(many), "application/json", 413, "at most 50"},
       }) {
    auto r = as("camera", "POST", "/api/sightings", c.body, c.type);
    EXPECT_EQ(r.status, c.status) << c.expect << ": " << r;
    EXPECT_NE(r.j.value("error", "").find(c.expect), std::string::npos) << r;
  }
  EXPECT_EQ(stored_sightings(), 0u);
  // The server is still fine, and takes a `vigil watch` event line as it is (country_confidence included).
  json with_country = json::parse(good);
  with_country["country_confidence"] = 0.93;
  EXPECT_EQ(as("camera", "POST", "/api/sightings", batch({with_country.dump()})).status, 200);
}

// Hostile and careless bodies (issue "Hardening"): refused with 400/409/415 naming the problem, nothing
// stored, and above all no sighting whose text was rewritten into a plate nobody read (and then fined).
TEST_P(ServerTest, HostileBodiesAreRefusedAndNoUnreadPlateIsFined) {
  const std::string good = event("h1", "A1", "5XY6789");
  auto with = [&](const std::string& key, const json& value) {
    json j = json::parse(good);
    j[key] = value;
    return j.dump();
  };
  std::string deep = "1";
  for (int i = 0; i < 100000; ++i) deep = "[" + deep;  // closed below
  deep += std::string(100000, ']');
  std::string forty = "1";
  for (int i = 0; i < 40; ++i) forty = "[" + forty + "]";
  std::string overflow = good;
  overflow.replace(overflow.find("0.95"), 4, "1e400");
  struct Case {
    std::string body, type;
    int status;
    std::string expect;
  };
  for (const auto& c : std::vector<Case>{
           {batch({with("text", "\u0158\u017d\u010c123")}), "application/json", 400, "sightings[0].text"},
           {batch({good, with("text", "' OR '1'='1")}), "application/json", 400, "sightings[1].text"},
           {batch({with("candidates", json::array({"5XY6789", "\u0158\u017d"}))}), "application/json", 400,
            "sightings[0].candidates[1]"},
           {batch({good}).replace(batch({good}).find("\"h1\""), 4, "\"h1\", \"box\": " + deep),
            "application/json", 400, "nested deeper than 32"},
           {batch({with("box", json::parse(forty))}), "application/json", 400, "nested deeper than 32"},
           {batch({with("box", json::array({1, 2, 3}))}), "application/json", 400, "sightings[0].box"},
           {batch({with("box", json::array({json::array({1}), 2, 3, 4}))}), "application/json", 400,
            "sightings[0].box"},
           {batch({with("direction", std::string(100, 'x'))}), "application/json", 400,
            "sightings[0].direction"},
           {batch({with("frames", "many")}), "application/json", 400, "sightings[0].frames"},
           {batch({with("evidence", json{{"plate", json::array()}})}), "application/json", 400,
            "sightings[0].evidence.plate"},
           {batch({overflow}), "application/json", 400, "malformed JSON"},
           {batch({good}), "application/jsonx", 415, "application/json"},
           {"sightings=1", "application/x-www-form-urlencoded", 415, "application/json"},
       }) {
    auto r = as("camera", "POST", "/api/sightings", c.body, c.type);
    EXPECT_EQ(r.status, c.status) << c.expect << ": " << r;
    EXPECT_NE(r.j.value("error", "").find(c.expect), std::string::npos) << c.expect << ": " << r;
  }
  EXPECT_EQ(stored_sightings(), 0u);
  // The same refusals on the other bodies the server parses.
  EXPECT_EQ(as("admin", "POST", "/api/vignettes", forty, "application/json").status, 400);
  EXPECT_EQ(as("admin", "POST", "/api/vignettes", "{}", "application/jsonx").status, 415);
  // A parameter on the media type is fine; the server is unharmed.
  EXPECT_EQ(as("camera", "POST", "/api/sightings", batch({good}), "application/json; charset=utf-8").status,
            200);
  EXPECT_EQ(stored_sightings(), 1u);

  // One event id, two contents: refused naming the item, inside a batch or across batches; the same event
  // sent again (a retry) is a duplicate, as before.
  const std::string other = event("h1", "A1", "5XY6788");
  auto twice = as("camera", "POST", "/api/sightings",
                  batch({event("h2", "A1", "1AB2345"), event("h2", "A1", "1AB2346")}));
  EXPECT_EQ(twice.status, 409) << twice;
  EXPECT_NE(twice.j.value("error", "").find("sightings[1].id"), std::string::npos) << twice;
  auto later = as("camera", "POST", "/api/sightings", batch({other}));
  EXPECT_EQ(later.status, 409) << later;
  EXPECT_NE(later.j.value("error", "").find("other content"), std::string::npos) << later;
  auto retry = as("camera", "POST", "/api/sightings", batch({good}));
  EXPECT_EQ(retry.status, 200) << retry;
  EXPECT_EQ(stored_sightings(), 1u);
}

// A body is read only from a client with a valid token, of a size its route takes, with a Content-Length:
// each refusal comes as soon as the headers are in (the body never sent here), and the connection closes.
TEST_P(ServerTest, BodiesAreCheckedBeforeTheyAreRead) {
  struct Case {
    std::string headers;
    std::string status;
  };
  const std::string camera = "Authorization: Bearer " + tokens_.at("camera") + "\r\n";
  for (const auto& c : std::vector<Case>{
           {"Content-Type: application/json\r\nContent-Length: 100\r\n", "401"},
           {"Content-Type: application/json\r\nAuthorization: Bearer vgl_wrong\r\nContent-Length: 100\r\n",
            "401"},
           {"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", "411"},
           {camera + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", "411"},
           {"Content-Type: application/json\r\nContent-Length: 300000000\r\n", "413"},
           {"Content-Type: application/json\r\nContent-Length: lots\r\n", "400"},
       }) {
    RawConnection conn(port_);
    ASSERT_TRUE(conn.send("POST /api/sightings HTTP/1.1\r\nHost: x\r\n" + c.headers + "\r\n")) << c.headers;
    const auto t0 = std::chrono::steady_clock::now();
    const std::string answer = conn.receive(3000);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 " + c.status) << c.headers << "\n" << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_LT(waited, std::chrono::seconds(2)) << "the server waited for the body: " << c.headers;
  }
  // With a token and a length the body is read and answered as before.
  auto ok = as("camera", "POST", "/api/sightings", batch({event("c1", "A1", "5XY6789")}));
  EXPECT_EQ(ok.status, 200) << ok;
  EXPECT_EQ(as("", "GET", "/health").status, 200);
}

// A JPEG of w x h pixels: flat grey, or noise (which compresses badly: large files).
std::string jpeg_bytes(int w, int h, bool noise = false) {
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(90, 120, 150));
  if (noise) cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<uchar> buf;
  cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, 95});
  return std::string(buf.begin(), buf.end());
}

TEST_P(ServerTest, EvidenceImagesAreStoredAndShownToOperatorsOnly) {
  const std::string plate = jpeg_bytes(200, 50), frame = jpeg_bytes(160, 90, true);
  ASSERT_GT(frame.size() + plate.size(), 2000u);
  json with = json::parse(event("i1", "A1", "5XY6789"));
  with["images"] = {{"plate", base64_encode(plate)}, {"frame", base64_encode(frame)}};
  json plate_only = json::parse(event("i2", "A1", "5XY6780"));
  plate_only["images"] = {{"plate", base64_encode(plate)}, {"frame", nullptr}};
  const std::string none = event("i3", "A1", "5XY6781");
  auto posted = as("camera", "POST", "/api/sightings", batch({with.dump(), plate_only.dump(), none}));
  ASSERT_EQ(posted.status, 200) << posted;
  const std::int64_t id1 = posted.j["results"][0]["sighting_id"], id2 = posted.j["results"][1]["sighting_id"],
                     id3 = posted.j["results"][2]["sighting_id"];

  auto one = as("operator", "GET", "/api/sightings/" + std::to_string(id1));
  ASSERT_EQ(one.status, 200) << one;
  EXPECT_EQ(one.j["images"], json({{"plate", true}, {"frame", true}}));
  EXPECT_EQ(as("admin", "GET", "/api/sightings/" + std::to_string(id2)).j["images"],
            json({{"plate", true}, {"frame", false}}));
  EXPECT_EQ(as("operator", "GET", "/api/sightings/" + std::to_string(id3)).j["images"],
            json({{"plate", false}, {"frame", false}}));
  // Lists carry the flags too, and the audit copy of the event does not carry the images.
  auto violations = as("operator", "GET", "/api/violations?camera=A1");
  ASSERT_EQ(violations.status, 200) << violations;
  ASSERT_FALSE(violations.j["violations"].empty());
  EXPECT_TRUE(violations.j["violations"][0]["images"]["plate"].get<bool>());
  auto stored = reg_->sighting(id1);
  ASSERT_TRUE(stored.ok()) << stored.error();
  EXPECT_EQ(stored->sighting.event_json.find("images"), std::string::npos);
  EXPECT_TRUE(stored->plate_image && stored->frame_image);

  for (const std::string who : {"operator", "admin"}) {
    auto p = as(who, "GET", "/api/sightings/" + std::to_string(id1) + "/plate.jpg");
    ASSERT_EQ(p.status, 200) << who;
    EXPECT_EQ(p.header("Content-Type"), "image/jpeg");
    EXPECT_EQ(p.body, plate);
    auto f = as(who, "GET", "/api/sightings/" + std::to_string(id1) + "/frame.jpg");
    ASSERT_EQ(f.status, 200) << who;
    EXPECT_EQ(f.body, frame);
  }
  auto missing = as("operator", "GET", "/api/sightings/" + std::to_string(id2) + "/frame.jpg");
  EXPECT_EQ(missing.status, 404) << missing;
  EXPECT_NE(missing.j.value("error", "").find("no frame image"), std::string::npos) << missing;
  EXPECT_EQ(as("operator", "GET", "/api/sightings/99999/plate.jpg").status, 404);
  EXPECT_EQ(as("operator", "GET", "/api/sightings/abc/plate.jpg").status, 404);
  // Evidence is personal data: cameras and shops may not read it, nor anyone without a token.
  for (const std::string who : {"camera", "camera_b", "shop"}) {
    auto r = as(who, "GET", "/api/sightings/" + std::to_string(id1) + "/plate.jpg");
    EXPECT_EQ(r.status, 403) << who << ": " << r;
    EXPECT_EQ(r.body.find(plate.substr(0, 64)), std::string::npos);
  }
  auto anonymous = as("", "GET", "/api/sightings/" + std::to_string(id1) + "/frame.jpg");
  EXPECT_EQ(anonymous.status, 401) << anonymous;
  EXPECT_EQ(call(port_, "GET", "/api/sightings/" + std::to_string(id1) + "/plate.jpg", "vgl_made-up").status,
            401);

  // A resent event (after a lost answer) changes nothing, images included.
  json again = json::parse(event("i3", "A1", "5XY6781"));
  again["images"] = {{"plate", base64_encode(plate)}};
  auto dup = as("camera", "POST", "/api/sightings", batch({again.dump()}));
  ASSERT_EQ(dup.status, 200) << dup;
  EXPECT_TRUE(dup.j["results"][0]["duplicate"].get<bool>());
  EXPECT_EQ(as("operator", "GET", "/api/sightings/" + std::to_string(id3) + "/plate.jpg").status, 404);
}

TEST_P(ServerTest, ARefusedBatchNamesTheItemThatCausedIt) {
  const std::string good = event("g1", "A1", "5XY6789");
  json not_base64 = json::parse(event("n1", "A1", "5XY6789"));
  not_base64["images"] = {{"plate", "not base64!"}};
  json not_jpeg = json::parse(event("n2", "A1", "5XY6789"));
  not_jpeg["images"] = {{"frame", base64_encode("\x89PNG\r\n\x1a\n0000")}};
  json too_big = json::parse(event("n3", "A1", "5XY6789"));
  too_big["images"] = {{"frame", base64_encode(jpeg_bytes(320, 240, true))}};  // about 90 KB: over 64 KiB
  json unknown_kind = json::parse(event("n4", "A1", "5XY6789"));
  unknown_kind["images"] = {{"car", base64_encode(jpeg_bytes(20, 10))}};
  json bad_text = json::parse(event("n5", "A1", "5XY6789"));
  bad_text["text"] = "--";  // refused by the registry, not the parser
  struct Case {
    std::string item;
    int status;
    std::string expect;
  };
  for (const auto& c : std::vector<Case>{
           {not_base64.dump(), 400, "sightings[1].images.plate: not base64"},
           {not_jpeg.dump(), 400, "sightings[1].images.frame: not a JPEG"},
           {too_big.dump(), 400, "sightings[1].images.frame: "},
           {unknown_kind.dump(), 400, "sightings[1].images.car: unknown field"},
           {bad_text.dump(), 400, "sightings[1].text"},
           {event("n6", "B2", "5XY6789"), 403, "sightings[1].camera_id"},
       }) {
    auto r = as("camera", "POST", "/api/sightings", batch({good, c.item, event("g2", "A1", "5XY6780")}));
    EXPECT_EQ(r.status, c.status) << r;
    EXPECT_NE(r.j.value("error", "").find(c.expect), std::string::npos) << r;
    EXPECT_EQ(r.j["index"], 1) << r;
    EXPECT_EQ(r.j["id"], json::parse(c.item)["id"]) << r;
  }
  EXPECT_EQ(stored_sightings(), 0u);
  // An id another camera owns: a conflict, named too.
  ASSERT_EQ(as("camera_b", "POST", "/api/sightings", batch({event("x1", "B2", "5XY6789")})).status, 200);
  auto r = as("camera", "POST", "/api/sightings",
              batch({good, event("g2", "A1", "5XY6780"), event("x1", "A1", "5XY6789")}));
  EXPECT_EQ(r.status, 409) << r;
  EXPECT_EQ(r.j["index"], 2) << r;
  EXPECT_EQ(r.j["id"], "x1") << r;
  // Whole-request problems name no item.
  r = as("camera", "POST", "/api/sightings", R"({"sightings": 5})");
  EXPECT_EQ(r.status, 400);
  EXPECT_FALSE(r.j.contains("index")) << r;
  EXPECT_EQ(stored_sightings(), 1u);
  // Without the bad item the rest goes through.
  EXPECT_EQ(as("camera", "POST", "/api/sightings", batch({good, event("g2", "A1", "5XY6780")})).status, 200);
  EXPECT_EQ(stored_sightings(), 3u);
}

TEST_P(ServerTest, VignettesFromTheShop) {
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

TEST_P(ServerTest, CsvImportAllOrNothingOrTheValidRows) {
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

TEST_P(ServerTest, ReviewQueueAndResolutions) {
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

TEST_P(ServerTest, ExemptionsAndTokensThroughTheApi) {
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

TEST_P(ServerTest, MetricsCountSightingsDecisionsAndLatency) {
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

TEST_P(ServerTest, UnknownEndpointsAnswerJson) {
  auto r = as("admin", "GET", "/api/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.j.value("error", "").find("no endpoint GET /api/nothing"), std::string::npos) << r;
}

// ---------------------------------------------------------------------------------------------------------
// What the dashboard needs

TEST_P(ServerTest, SightingListIsNewestFirstOrSinceAnId) {
  ASSERT_EQ(as("shop", "POST", "/api/vignettes",
               R"({"plate": "1AB2345", "country": "cz", "product": "cz-10d", "start": "2024-06-01"})")
                .status,
            201);
  ASSERT_EQ(as("camera", "POST", "/api/sightings",
               batch({event("s1", "A1", "1AB2345"), event("s2", "A1", "5XY6789"),
                      event("s3", "A1", "7KL1234", "2024-06-05T12:00:00Z", 0.3)}))
                .status,
            200);
  ASSERT_EQ(as("camera_b", "POST", "/api/sightings", batch({event("s4", "B2", "5XY6789")})).status, 200);

  auto all = as("operator", "GET", "/api/sightings");
  ASSERT_EQ(all.status, 200) << all;
  ASSERT_EQ(all.j["sightings"].size(), 4u) << all;
  std::vector<std::string> order, decisions;
  for (const auto& s : all.j["sightings"]) {
    order.push_back(s["id"]);
    decisions.push_back(s["decision"]);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"s4", "s3", "s2", "s1"}));
  EXPECT_EQ(decisions, (std::vector<std::string>{"unpaid", "review", "unpaid", "paid"}));
  EXPECT_TRUE(all.j["next_before_id"].is_null());
  const auto id_of = [&](int i) { return all.j["sightings"][i]["sighting_id"].get<std::int64_t>(); };

  // Paging back from the newest, then forward from an id (what the live view polls).
  auto newest = as("admin", "GET", "/api/sightings?limit=2");
  ASSERT_EQ(newest.j["sightings"].size(), 2u);
  EXPECT_EQ(newest.j["sightings"][0]["id"], "s4");
  ASSERT_EQ(newest.j["next_before_id"], id_of(1)) << newest;
  auto older = as("admin", "GET", "/api/sightings?limit=2&before_id=" + std::to_string(id_of(1)));
  ASSERT_EQ(older.j["sightings"].size(), 2u) << older;
  EXPECT_EQ(older.j["sightings"][0]["id"], "s2");
  EXPECT_EQ(older.j["sightings"][1]["id"], "s1");
  auto since = as("operator", "GET", "/api/sightings?after_id=" + std::to_string(id_of(3)));
  ASSERT_EQ(since.j["sightings"].size(), 3u) << since;
  EXPECT_EQ(since.j["sightings"][0]["id"], "s2");
  EXPECT_EQ(since.j["sightings"][2]["id"], "s4");
  auto page = as("operator", "GET", "/api/sightings?limit=1&after_id=" + std::to_string(id_of(3)));
  EXPECT_EQ(page.j["next_after_id"], id_of(2)) << page;
  EXPECT_EQ(
      as("operator", "GET", "/api/sightings?after_id=" + std::to_string(id_of(0))).j["sightings"].size(), 0u);

  auto b2 = as("operator", "GET", "/api/sightings?camera=B2");
  ASSERT_EQ(b2.j["sightings"].size(), 1u);
  EXPECT_EQ(b2.j["sightings"][0]["camera_id"], "B2");
  EXPECT_EQ(as("operator", "GET", "/api/sightings?order=oldest").j["sightings"][0]["id"], "s1");
  // The other lists take the order too.
  auto violations = as("operator", "GET", "/api/violations?order=newest");
  ASSERT_EQ(violations.j["violations"].size(), 2u) << violations;
  EXPECT_EQ(violations.j["violations"][0]["id"], "s4");
  EXPECT_EQ(as("operator", "GET", "/api/plates/5XY6789/history?order=newest").j["sightings"][0]["id"], "s4");

  for (const std::string bad :
       {"order=random", "before_id=0", "before_id=x", "after_id=-1", "limit=1001", "plate=1AB2345"}) {
    auto r = as("operator", "GET", "/api/sightings?" + bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r;
    EXPECT_NE(r.j.value("error", "").find(bad.substr(0, bad.find('='))), std::string::npos) << r;
  }
}

TEST_P(ServerTest, MeNamesTheCallingToken) {
  for (const std::string who : {"camera", "shop", "operator", "admin"}) {
    auto r = as(who, "GET", "/api/me");
    ASSERT_EQ(r.status, 200) << who << ": " << r;
    EXPECT_EQ(r.j["role"], who);
    EXPECT_EQ(r.j["note"], who);
    EXPECT_FALSE(r.j.contains("token")) << r;
    EXPECT_EQ(r.body.find(tokens_.at(who).substr(4)), std::string::npos) << "the secret must not come back";
  }
  EXPECT_EQ(as("camera_b", "GET", "/api/me").j["camera"], "B2");
  EXPECT_TRUE(as("admin", "GET", "/api/me").j["camera"].is_null());
}

TEST_P(ServerTest, VignettesOfAPlateAndProducts) {
  ASSERT_EQ(as("shop", "POST", "/api/vignettes",
               R"({"plate": "1AB2345", "country": "cz", "product": "cz-10d", "start": "2024-06-01"})")
                .status,
            201);
  ASSERT_EQ(as("admin", "POST", "/api/exemptions",
               R"({"plate": "1AB2345", "country": "cz", "reason": "emergency"})")
                .status,
            201);
  auto r = as("shop", "GET", "/api/vignettes?plate=1ab%202345");
  ASSERT_EQ(r.status, 200) << r;
  EXPECT_EQ(r.j["plate"], "1AB2345");
  ASSERT_EQ(r.j["vignettes"].size(), 1u) << "exemptions are not vignettes: " << r;
  EXPECT_EQ(r.j["vignettes"][0]["product"], "cz-10d");
  EXPECT_EQ(r.j["vignettes"][0]["last_day"], "2024-06-10");
  EXPECT_EQ(as("operator", "GET", "/api/vignettes?plate=9ZZ9999").j["vignettes"].size(), 0u);
  auto missing = as("shop", "GET", "/api/vignettes");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.j.value("error", "").find("plate: required"), std::string::npos) << missing;
  auto bad = as("shop", "GET", "/api/vignettes?plate=1AB%402345");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.j.value("error", "").find("'@'"), std::string::npos) << bad;
  EXPECT_EQ(as("shop", "GET", "/api/vignettes?plate=1AB2345&all=1").status, 400);

  auto p = as("shop", "GET", "/api/products");
  ASSERT_EQ(p.status, 200) << p;
  EXPECT_EQ(p.j["time_zone"], "Europe/Prague");
  EXPECT_EQ(p.j["today"], "2024-03-20");  // the registry's clock, in its zone
  std::vector<std::string> ids;
  for (const auto& x : p.j["products"]) ids.push_back(x["id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"cz-1d", "cz-10d", "cz-30d", "cz-annual"}));
  EXPECT_EQ(p.j["products"][1]["days"], 10);
}

// A server with a web folder, and requests that try to leave it.
TEST_P(ServerTest, DashboardFilesAreServedSafely) {
  const fs::path web = dir_ / "web";
  fs::create_directories(web / "sub");
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
  write(web / "index.html", "<!doctype html><title>t</title>");
  write(web / "app.js", "'use strict';");
  write(web / "style.css", "body{}");
  write(web / "notes.md", "# not served");
  write(web / ".hidden.js", "secret");
  write(web / "sub" / "deep.js", "deep");
  write(dir_ / "outside.js", "OUTSIDE-CONTENT");
  fs::create_symlink(dir_ / "outside.js", web / "link.js");
  ServerOptions so;
  so.port = 0;
  so.web_dir = web.string();
  Server server(reg_, so);
  auto port = server.start();
  ASSERT_TRUE(port.ok()) << port.error();

  auto index = call(*port, "GET", "/", "");
  ASSERT_EQ(index.status, 200) << index;
  EXPECT_EQ(index.body, "<!doctype html><title>t</title>");
  EXPECT_EQ(index.header("Content-Type"), "text/html; charset=utf-8");
  const std::string csp = index.header("Content-Security-Policy");
  for (const std::string part : {"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"})
    EXPECT_NE(csp.find(part), std::string::npos) << part << " in " << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(index.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(call(*port, "GET", "/ui/index.html", "").body, index.body);
  auto js = call(*port, "GET", "/ui/app.js", "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(call(*port, "GET", "/ui/style.css", "").header("Content-Type"), "text/css; charset=utf-8");

  for (const std::string path :
       {"/ui/notes.md", "/ui/.hidden.js", "/ui/link.js", "/ui/missing.js", "/ui/sub/deep.js", "/ui/..%2Fv.db",
        "/ui/%2E%2E%2Foutside.js", "/ui/..", "/ui/sub", "/ui/app.js%00.png", "/../outside.js"}) {
    auto r = call(*port, "GET", path, "");
    EXPECT_EQ(r.status, 404) << path << ": " << r;
    EXPECT_EQ(r.body.find("OUTSIDE-CONTENT"), std::string::npos) << path;
    EXPECT_EQ(r.header("Content-Type"), "application/json") << path;
  }
  // The API needs its token as before, and is not sniffed either.
  auto api = call(*port, "GET", "/api/review", "");
  EXPECT_EQ(api.status, 401);
  EXPECT_EQ(api.header("X-Content-Type-Options"), "nosniff");
  server.stop();

  // Without a web folder, / says what to do.
  auto none = as("", "GET", "/");
  EXPECT_EQ(none.status, 404);
  EXPECT_NE(none.j.value("error", "").find("--web-dir"), std::string::npos) << none;
}

// The shipped dashboard: its scripts come from files only (the CSP allows nothing else) and it never
// turns data into HTML.
TEST(Dashboard, ShippedFilesKeepToTheContentSecurityPolicy) {
  const fs::path web = fs::path(VIGIL_SOURCE_DIR) / "web";
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string html = read(web / "index.html");
  ASSERT_FALSE(html.empty());
  std::smatch m;
  for (auto it = html.cbegin(); std::regex_search(it, html.cend(), m, std::regex(R"(<script\b[^>]*>)"));
       it = m.suffix().first)
    EXPECT_NE(m.str().find("src=\"/ui/"), std::string::npos) << "inline script: " << m.str();
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(\son[a-z]+\s*=)", std::regex::icase)))
      << "inline event handlers are blocked by the CSP";
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(<style|style=)", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(html, std::regex(R"((src|href)="(https?:)?//)")))
      << "everything comes from this server";
  for (const auto& entry : fs::directory_iterator(web)) {
    if (entry.path().extension() != ".js") continue;
    const std::string js = read(entry.path());
    for (const std::string sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("})
      EXPECT_EQ(js.find(sink), std::string::npos) << entry.path() << " uses " << sink;
  }
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
  // The dashboard is found next to the models (the source tree here) and its address printed.
  const std::string dashboard = server.line();
  ASSERT_TRUE(
      std::regex_search(dashboard, m, std::regex(R"(dashboard (http://\S+/) \(sign in .*files from (.*)\))")))
      << dashboard;
  EXPECT_EQ(m[1].str(), "http://127.0.0.1:" + std::to_string(port) + "/");
  EXPECT_TRUE(fs::exists(fs::path(m[2].str()) / "index.html")) << dashboard;
  EXPECT_NE(server.line().find("no admin token"), std::string::npos);
  EXPECT_NE(server.line().find("vigil serve token create --role admin --db " + db), std::string::npos);
  EXPECT_NE(server.line().find("then sign in at http://127.0.0.1:" + std::to_string(port) + "/ with it"),
            std::string::npos);
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
  // The database holds sightings, evidence and token hashes: its files are its owner's alone.
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    if (!fs::exists(db + suffix)) continue;
    const auto perms = fs::status(db + suffix).permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << db + suffix;
  }
  EXPECT_TRUE(fs::exists(db + "-wal"));

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

// `vigil serve --db postgresql://...` as a fleet server runs it; the URL's password is never printed.
TEST(ServeBinary, ServesAPostgresDatabase) {
  testdb::TestDatabase db(testdb::Backend::kPostgres);
  if (!db.skip().empty()) GTEST_SKIP() << db.skip();
  ASSERT_TRUE(db.error().empty()) << db.error();
  // A password the test server (trust authentication) never asks for, added when the URL names a user.
  std::string url = db.url();
  const std::size_t user = url.find("://") + 3, at = url.find('@', user);
  if (at != std::string::npos && url.find(':', user) > at) url.insert(at, ":s3cret-pw");
  const fs::path dir = fs::temp_directory_path() / ("vigil_serve_pg_" + std::to_string(::getpid()));
  fs::create_directories(dir);

  Child server({"serve", "--db", url, "--port", "0", "--data-dir", dir.string()});
  const std::string first = server.line();
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(first, m, std::regex(R"(serving http://127\.0\.0\.1:(\d+) \(postgresql (.*)\))")))
      << first;
  const int port = std::stoi(m[1]);
  EXPECT_NE(m[2].str().find("/" + db.name()), std::string::npos) << first;
  std::string printed = first + "\n";
  for (int i = 0; i < 4 && printed.find("token create") == std::string::npos; ++i)
    printed += server.line() + "\n";
  EXPECT_NE(printed.find("--db " + redact_database_url(url)), std::string::npos) << printed;
  EXPECT_EQ(call(port, "GET", "/health", "").status, 200);

  Child create({"serve", "token", "create", "--role", "camera", "--camera", "A1", "--db", url});
  const std::string token = create.line();
  std::string err;
  EXPECT_EQ(create.wait(&err), 0) << err;
  EXPECT_EQ(err.find("s3cret-pw"), std::string::npos) << err;
  auto posted = call(port, "POST", "/api/sightings", token, batch({event("pg1", "A1", "5XY6789")}));
  EXPECT_EQ(posted.status, 200) << posted;
  EXPECT_EQ(db.count("sightings"), 1);

  server.signal(SIGTERM);
  err.clear();
  EXPECT_EQ(server.wait(&err), 0) << err;
  printed += server.rest();
  EXPECT_EQ((printed + err).find("s3cret-pw"), std::string::npos) << printed << err;
  fs::remove_all(dir);

  // A server that cannot be reached: the exit status and message say so, without the password.
  Child down({"serve", "--db", "postgresql://vigil:s3cret-pw@127.0.0.1:1/vigil", "--port", "0"});
  err.clear();
  EXPECT_EQ(down.wait(&err), 1);
  EXPECT_NE(err.find("cannot connect to PostgreSQL postgresql://vigil:***@127.0.0.1:1/vigil"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("s3cret-pw"), std::string::npos) << err;
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

// Slow and idle clients (slowloris) must not starve the workers: with 200 connections that connect and
// send nothing (re-opened as the server drops them) and 50 that send a request head one header a second,
// /health keeps answering; the p99 of 100 requests is printed and must stay under 100 ms.
TEST(ServeBinary, SlowAndIdleClientsDoNotStarveTheServer) {
  const fs::path dir = fs::temp_directory_path() / ("vigil_serve_slow_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Child server({"serve", "--data-dir", (dir / "data").string(), "--port", "0"});
  std::smatch m;
  const std::string first = server.line();
  ASSERT_TRUE(std::regex_search(first, m, std::regex(R"(serving http://127\.0\.0\.1:(\d+))"))) << first;
  const int port = std::stoi(m[1]);
  ASSERT_EQ(call(port, "GET", "/health", "").status, 200);

  std::atomic<bool> done{false};
  std::thread idle([&] {
    std::vector<std::unique_ptr<RawConnection>> conns;
    for (int i = 0; i < 200; ++i) conns.push_back(std::make_unique<RawConnection>(port));
    while (!done) {
      for (auto& c : conns) {
        pollfd p{c->fd, POLLIN, 0};
        if (c->fd < 0 || (::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP)))) {
          char b[256];
          if (c->fd < 0 || ::recv(c->fd, b, sizeof b, MSG_DONTWAIT) <= 0)
            c = std::make_unique<RawConnection>(port);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::thread slow([&] {
    std::vector<std::unique_ptr<RawConnection>> conns;
    for (int i = 0; i < 50; ++i) {
      conns.push_back(std::make_unique<RawConnection>(port));
      conns.back()->send("POST /api/sightings HTTP/1.1\r\nHost: x\r\n");
    }
    for (int k = 0; !done; ++k) {
      for (auto& c : conns) c->send("X-Slow-" + std::to_string(k) + ": 1\r\n");
      for (int t = 0; t < 20 && !done; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // both groups connected and holding on
  std::vector<double> ms;
  for (int i = 0; i < 100; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = call(port, "GET", "/health", "");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_EQ(r.status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  done = true;
  idle.join();
  slow.join();
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[49], p99 = ms[98];
  std::printf("/health with 200 idle and 50 slow connections: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", p50,
              p99, ms.back());
  EXPECT_LT(p99, 100.0);
  server.signal(SIGTERM);
  server.wait();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vigil
