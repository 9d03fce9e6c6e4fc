// The outbox (durable upload of plate events) against the real server in-process on loopback, and against
// a scripted HTTP server for the failures a real one gives only by accident (503 with Retry-After, a 2xx
// that is not vigil serve's, a refusal that names no item, a hung request).
#include <gtest/gtest.h>

#if VIGIL_HAVE_SERVER

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/base64.hpp"
#include "vigil/outbox.hpp"
#include "vigil/registry.hpp"
#include "vigil/server.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace vigil {
namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("vigil_outbox_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// An event as the tracker makes it, with evidence images.
PlateEvent make_event(const std::string& text = "5XY6789", const std::string& camera = "A1") {
  PlateEvent e;
  e.id = make_uuid();
  e.camera_id = camera;
  e.text = text;
  e.confidence = 0.93f;
  e.country = "cz";
  e.fits_format = true;
  e.candidates = {{text, 0.93f, "cz"}};
  e.first_seen = 1.5;
  e.last_seen = 3.25;
  e.frames = 12;
  e.direction = "right";
  e.box = {100, 200, 160, 40};
  e.best_crop = cv::Mat(48, 200, CV_8UC3, cv::Scalar(30, 200, 220));
  cv::putText(e.best_crop, text, {8, 38}, cv::FONT_HERSHEY_SIMPLEX, 1.2, cv::Scalar(0, 0, 0), 2);
  e.thumbnail = cv::Mat(360, 640, CV_8UC3, cv::Scalar(90, 90, 90));
  return e;
}

// Captures the library's log messages for the duration of a test.
struct LogCapture {
  std::mutex mutex;
  std::vector<std::string> lines;
  LogCapture() {
    set_log_sink([this](LogLevel, const std::string& m) {
      std::lock_guard lock(mutex);
      lines.push_back(m);
    });
  }
  ~LogCapture() { set_log_sink(nullptr); }
  bool has(const std::string& needle) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  std::string all() {
    std::lock_guard lock(mutex);
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

// Rows of a table of an outbox file (read with SQLite directly, as a person would).
std::vector<std::vector<std::string>> rows(const std::string& file, const std::string& sql) {
  std::vector<std::vector<std::string>> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << file;
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) ADD_FAILURE() << sqlite3_errmsg(db);
  while (s && sqlite3_step(s) == SQLITE_ROW) {
    std::vector<std::string> r;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      const auto* t = sqlite3_column_text(s, i);
      r.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    out.push_back(std::move(r));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// A registry and its HTTP server on loopback, with a camera token for A1.
struct RealServer {
  TempDir dir;
  std::shared_ptr<Registry> reg;
  std::unique_ptr<Server> server;
  std::string camera_token;
  int port = 0;

  explicit RealServer(int fixed_port = 0, bool start_now = true) {
    auto r = Registry::open(dir / "registry.db");
    if (!r) {
      ADD_FAILURE() << r.error();
      return;
    }
    reg = std::make_shared<Registry>(std::move(*r));
    camera_token = reg->create_token(Role::kCamera, "A1", "test")->token;
    port = fixed_port;
    if (start_now) start();
  }
  void start() {
    ServerOptions so;
    so.port = port;
    so.threads = 2;
    server = std::make_unique<Server>(reg, so);
    auto p = server->start();
    ASSERT_TRUE(p.ok()) << p.error();
    port = *p;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  std::vector<StoredSighting> sightings() {
    SightingQuery q;
    q.limit = 1000;
    auto s = reg->sightings(q);
    EXPECT_TRUE(s.ok());
    return s ? *s : std::vector<StoredSighting>{};
  }
};

// An HTTP server whose answers to POST /api/sightings the test writes; it records each request.
class ScriptedServer {
 public:
  struct Request {
    json body;
    std::chrono::steady_clock::time_point at;
    std::size_t bytes = 0;
  };
  // n: 0-based number of the request.
  using Script = std::function<void(const json& body, httplib::Response& res, int n)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    http_.Post("/api/sightings", [this](const httplib::Request& req, httplib::Response& res) {
      json body = json::parse(req.body, nullptr, false);
      int n;
      {
        std::lock_guard lock(mutex_);
        n = int(requests_.size());
        requests_.push_back({body, std::chrono::steady_clock::now(), req.body.size()});
      }
      script_(body, res, n);
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~ScriptedServer() {
    http_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  // The answer vigil serve gives to a batch it stores.
  static void accept(const json& body, httplib::Response& res) {
    json out = {{"results", json::array()}};
    for (const auto& s : body["sightings"]) out["results"].push_back({{"id", s["id"]}, {"duplicate", false}});
    res.set_content(out.dump(), "application/json");
  }

 private:
  Script script_;
  httplib::Server http_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Request> requests_;
  int port_ = 0;
};

OutboxOptions fast(const std::string& server, const std::string& token = "vgl_test") {
  OutboxOptions o;
  o.server = server;
  o.token = token;
  o.name = "A1";
  o.retry_min_s = 0.01;
  o.retry_max_s = 0.05;
  o.timeout_s = 5;
  return o;
}

std::shared_ptr<Outbox> open_or_die(const std::string& path, const OutboxOptions& o) {
  auto r = Outbox::open(path, o);
  EXPECT_TRUE(r.ok()) << r.error();
  return r ? *r : nullptr;
}

// A port nothing listens on (yet).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// ---------------------------------------------------------------------------------------------------------

TEST(Base64, RoundTripsAndRefusesWhatIsNotCanonical) {
  for (const std::string s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                              std::string("foob"), std::string("\xff\xd8\xff\x00\x01", 5)}) {
    const std::string e = base64_encode(s);
    EXPECT_EQ(e.size() % 4, 0u);
    auto d = base64_decode(e);
    ASSERT_TRUE(d.has_value()) << e;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  for (const char* bad : {"Zm8", "Zm9v\n", "Zm=v", "Zm9=", "Zn==", "Z===", "Zm9v YmFy", "Zm8_"})
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

TEST(Outbox, SightingJsonHasAWallClockTimeAndBoundedImages) {
  const PlateEvent e = make_event();
  const double produced = 1717588800.25;  // 2024-06-05T12:00:00.250Z
  json j = json::parse(event_to_sighting_json(e, EventClock::kStream, produced));
  EXPECT_EQ(j["time"], "2024-06-05T12:00:00.250Z");
  EXPECT_EQ(j["first_seen"], 1.5);  // the stream clock stays as it was
  EXPECT_EQ(j["id"], e.id);
  EXPECT_FALSE(j.contains("evidence"));
  ASSERT_TRUE(j["images"].is_object());
  for (const char* kind : {"plate", "frame"}) {
    auto bytes = base64_decode(j["images"][kind].get<std::string>());
    ASSERT_TRUE(bytes.has_value()) << kind;
    const cv::Mat img = cv::imdecode(std::vector<uchar>(bytes->begin(), bytes->end()), cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty()) << kind;
    EXPECT_EQ(img.size(), std::string(kind) == "plate" ? e.best_crop.size() : e.thumbnail.size());
  }
  PlateEvent live = e;
  live.first_seen = 1717588790.0;
  live.last_seen = 1717588795.5;
  EXPECT_EQ(json::parse(event_to_sighting_json(live, EventClock::kWall, produced))["time"],
            "2024-06-05T11:59:55.500Z");
  PlateEvent bare = e;
  bare.thumbnail = cv::Mat();
  j = json::parse(event_to_sighting_json(bare, EventClock::kStream, produced));
  EXPECT_TRUE(j["images"].contains("plate"));
  EXPECT_FALSE(j["images"].contains("frame"));
  EXPECT_FALSE(json::parse(event_to_sighting_json(e, EventClock::kStream, produced, 0)).contains("images"));

  // Noise compresses badly: a large noisy frame is re-encoded, then shrunk, until it fits.
  cv::Mat noise(1080, 1920, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  for (const std::size_t limit : {std::size_t(512 * 1024), std::size_t(100 * 1024), std::size_t(20 * 1024)}) {
    const std::string jpg = encode_jpeg_within(noise, limit);
    ASSERT_FALSE(jpg.empty()) << limit;
    EXPECT_LE(jpg.size(), limit);
    EXPECT_FALSE(cv::imdecode(std::vector<uchar>(jpg.begin(), jpg.end()), cv::IMREAD_COLOR).empty());
  }
  EXPECT_EQ(encode_jpeg_within(noise, 100), "");  // cannot fit: no image rather than a broken one
}

TEST(Outbox, DeliversEventsWithTheirImagesToTheServer) {
  RealServer srv;
  TempDir dir;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url(), srv.camera_token));
  ASSERT_TRUE(outbox);
  std::vector<PlateEvent> events;
  for (const char* text : {"5XY6789", "1AB2345", "7ZZ0001"}) events.push_back(make_event(text));
  for (const auto& e : events) outbox->on_event(e);
  EXPECT_EQ(outbox->stats().pending, 3);
  EXPECT_EQ(rows(dir / "A1.outbox", "SELECT COUNT(*) FROM pending")[0][0], "3");  // on disk before sending
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 0);
  const OutboxStats st = outbox->stats();
  EXPECT_EQ(st.delivered, 3);
  EXPECT_EQ(st.duplicates, 0);
  EXPECT_EQ(st.failures, 0) << st.last_error;
  EXPECT_EQ(rows(dir / "A1.outbox", "SELECT COUNT(*) FROM pending")[0][0], "0");

  auto stored = srv.sightings();
  ASSERT_EQ(stored.size(), 3u);
  // (The registry numbers a batch's rows in its own order; match them by event id.)
  std::sort(stored.begin(), stored.end(), [&](const StoredSighting& a, const StoredSighting& b) {
    auto rank = [&](const std::string& id) {
      return std::find_if(events.begin(), events.end(), [&](const PlateEvent& e) { return e.id == id; }) -
             events.begin();
    };
    return rank(a.sighting.event_id) < rank(b.sighting.event_id);
  });
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(stored[i].sighting.event_id, events[i].id);
    EXPECT_EQ(stored[i].sighting.read.text, events[i].text);
    EXPECT_TRUE(stored[i].plate_image && stored[i].frame_image);
    // A file's events carry the time they were produced (now), not the stream clock.
    const auto age = std::chrono::system_clock::now() - stored[i].sighting.time;
    EXPECT_LT(std::chrono::abs(age), std::chrono::minutes(5));
    auto plate = srv.reg->sighting_image(stored[i].id, "plate");
    ASSERT_TRUE(plate.ok()) << plate.error();
    const cv::Mat img = cv::imdecode(std::vector<uchar>(plate->begin(), plate->end()), cv::IMREAD_COLOR);
    EXPECT_EQ(img.size(), events[i].best_crop.size());
  }
  // Events stored later go out without a new start().
  outbox->on_event(make_event("8AA8888"));
  EXPECT_EQ(outbox->drain(60), 0);
  EXPECT_EQ(srv.sightings().size(), 4u);
  outbox->stop();
}

TEST(Outbox, KeepsEventsAcrossRestartsAndAResendIsADuplicate) {
  RealServer srv;
  TempDir dir;
  const std::string file = dir / "A1.outbox";
  {
    auto outbox = open_or_die(file, fast(srv.url(), srv.camera_token));  // never started
    for (int i = 0; i < 3; ++i) outbox->on_event(make_event());
  }
  // A copy of the file as it was before the upload: what a crash after the server's answer leaves.
  fs::copy_file(file, dir / "backup.outbox");
  {
    auto outbox = open_or_die(file, fast(srv.url(), srv.camera_token));
    EXPECT_EQ(outbox->stats().pending, 3);
    outbox->start();
    EXPECT_EQ(outbox->drain(60), 0);
    EXPECT_EQ(outbox->stats().duplicates, 0);
  }
  ASSERT_EQ(srv.sightings().size(), 3u);
  fs::copy_file(dir / "backup.outbox", file, fs::copy_options::overwrite_existing);
  auto outbox = open_or_die(file, fast(srv.url(), srv.camera_token));
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 0);
  EXPECT_EQ(outbox->stats().delivered, 3);
  EXPECT_EQ(outbox->stats().duplicates, 3);
  EXPECT_EQ(srv.sightings().size(), 3u);  // each event stored exactly once
}

TEST(Outbox, TheServerDownAtFirstThenUpGetsEverything) {
  const int port = free_port();
  ASSERT_GT(port, 0);
  RealServer srv(port, false);
  TempDir dir;
  LogCapture log;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url(), srv.camera_token));
  for (int i = 0; i < 4; ++i) outbox->on_event(make_event());
  outbox->start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (outbox->stats().failures < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_GE(outbox->stats().failures, 3) << "no retries while the server was down";
  EXPECT_EQ(outbox->stats().pending, 4);
  EXPECT_TRUE(log.has("cannot deliver to " + srv.url())) << log.all();
  EXPECT_TRUE(log.has("4 events kept in")) << log.all();
  srv.start();
  EXPECT_EQ(outbox->drain(60), 0) << outbox->stats().last_error;
  EXPECT_EQ(srv.sightings().size(), 4u);
  EXPECT_TRUE(log.has("delivering again after")) << log.all();
}

TEST(Outbox, AnEventTheServerRefusesGoesToTheDeadLettersAndTheRestArrive) {
  RealServer srv;
  TempDir dir;
  LogCapture log;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url(), srv.camera_token));
  const PlateEvent good1 = make_event("5XY6789"), bad = make_event("--"), good2 = make_event("1AB2345");
  for (const auto* e : {&good1, &bad, &good2}) outbox->on_event(*e);
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 0);
  const OutboxStats st = outbox->stats();
  EXPECT_EQ(st.rejected, 1);
  EXPECT_EQ(st.dead, 1);
  EXPECT_EQ(st.delivered, 2);
  ASSERT_EQ(srv.sightings().size(), 2u);
  const auto dead = rows(dir / "A1.outbox", "SELECT event_id, status, error FROM dead_letter");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0][0], bad.id);
  EXPECT_EQ(dead[0][1], "400");
  EXPECT_NE(dead[0][2].find(".text"), std::string::npos) << dead[0][2];
  EXPECT_TRUE(log.has("refused event " + bad.id + " for good")) << log.all();
  outbox.reset();
  // Dead letters stay dead: a restart does not send them again.
  auto again = open_or_die(dir / "A1.outbox", fast(srv.url(), srv.camera_token));
  EXPECT_EQ(again->stats().pending, 0);
  EXPECT_EQ(again->stats().dead, 1);
}

TEST(Outbox, ARefusalThatNamesNoItemIsNarrowedDownToIt) {
  std::string bad_id;
  ScriptedServer srv([&](const json& body, httplib::Response& res, int) {
    for (const auto& s : body["sightings"])
      if (s["id"] == bad_id) {
        res.status = 400;  // an older or foreign server: says what is wrong, not where
        res.set_content(R"({"error": "something in there is wrong"})", "application/json");
        return;
      }
    ScriptedServer::accept(body, res);
  });
  TempDir dir;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url()));
  std::vector<PlateEvent> events;
  for (int i = 0; i < 5; ++i) events.push_back(make_event());
  bad_id = events[2].id;
  for (const auto& e : events) outbox->on_event(e);
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 0);
  EXPECT_EQ(outbox->stats().rejected, 1);
  EXPECT_EQ(outbox->stats().delivered, 4);
  const auto dead = rows(dir / "A1.outbox", "SELECT event_id, error FROM dead_letter");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0][0], bad_id);
  EXPECT_NE(dead[0][1].find("something in there is wrong"), std::string::npos);
  // First the whole batch, then one at a time; each good event delivered once.
  std::map<std::string, int> delivered;
  for (const auto& r : srv.requests()) {
    if (r.body["sightings"].size() != 1) continue;
    ++delivered[r.body["sightings"][0]["id"].get<std::string>()];
  }
  EXPECT_EQ(srv.requests().front().body["sightings"].size(), 5u);
  for (const auto& e : events)
    if (e.id != bad_id) EXPECT_LE(delivered[e.id], 1) << e.id;
}

TEST(Outbox, AWrongTokenStopsUploadingAndKeepsTheEvents) {
  RealServer srv;
  TempDir dir;
  LogCapture log;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url(), "vgl_not-a-token-of-this-server"));
  for (int i = 0; i < 3; ++i) outbox->on_event(make_event());
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 3);  // returns at the refusal, not at the timeout
  const OutboxStats st = outbox->stats();
  EXPECT_TRUE(st.refused);
  EXPECT_EQ(st.failures, 0);
  EXPECT_NE(st.last_error.find("401"), std::string::npos) << st.last_error;
  EXPECT_TRUE(log.has("refused the events (401: unknown or revoked token); check the token")) << log.all();
  EXPECT_TRUE(log.has("3 events kept in " + dir / "A1.outbox")) << log.all();
  outbox->on_event(make_event());  // still stored
  outbox.reset();
  EXPECT_EQ(rows(dir / "A1.outbox", "SELECT COUNT(*) FROM pending")[0][0], "4");
  EXPECT_TRUE(srv.sightings().empty());
  // Another camera's token: 403, the same.
  const std::string other = srv.reg->create_token(Role::kCamera, "B2", "")->token;
  auto b2 = open_or_die(dir / "A1.outbox", fast(srv.url(), other));
  b2->start();
  EXPECT_EQ(b2->drain(60), 4);
  EXPECT_NE(b2->stats().last_error.find("403"), std::string::npos) << b2->stats().last_error;
  b2.reset();
  // The right token later sends them all.
  auto right = open_or_die(dir / "A1.outbox", fast(srv.url(), srv.camera_token));
  right->start();
  EXPECT_EQ(right->drain(60), 0);
  EXPECT_EQ(srv.sightings().size(), 4u);
}

TEST(Outbox, RetriesServerErrorsAndWaitsTheRetryAfterOfA503) {
  ScriptedServer srv([](const json& body, httplib::Response& res, int n) {
    if (n == 0) {
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(R"({"error": "database busy"})", "application/json");
    } else if (n == 1) {
      res.status = 500;
      res.set_content("oops", "text/plain");
    } else {
      ScriptedServer::accept(body, res);
    }
  });
  TempDir dir;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url()));  // back-off 0.01..0.05 s
  outbox->on_event(make_event());
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 0);
  const auto req = srv.requests();
  ASSERT_EQ(req.size(), 3u);
  EXPECT_GE(req[1].at - req[0].at, 1s);  // Retry-After honoured, not the short back-off
  EXPECT_EQ(outbox->stats().failures, 2);
  EXPECT_EQ(outbox->stats().delivered, 1);
}

TEST(Outbox, A2xxThatIsNotVigilServesAnswerDeletesNothing) {
  ScriptedServer srv([](const json&, httplib::Response& res, int) {
    res.set_content("<html>Welcome to nginx</html>", "text/html");
  });
  TempDir dir;
  auto outbox = open_or_die(dir / "A1.outbox", fast(srv.url()));
  outbox->on_event(make_event());
  outbox->start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (outbox->stats().failures < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  outbox->stop();
  EXPECT_GE(outbox->stats().failures, 2);
  EXPECT_EQ(outbox->stats().pending, 1);
  EXPECT_NE(outbox->stats().last_error.find("not as vigil serve does"), std::string::npos)
      << outbox->stats().last_error;
}

TEST(Outbox, BatchesStayWithinTheirCountAndBytes) {
  ScriptedServer srv(
      [](const json& body, httplib::Response& res, int) { ScriptedServer::accept(body, res); });
  TempDir dir;
  OutboxOptions o = fast(srv.url());
  o.batch_max = 4;
  o.batch_bytes_max = 60 * 1024;
  auto outbox = open_or_die(dir / "A1.outbox", o);
  std::vector<PlateEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(make_event());
  cv::Mat noise(360, 640, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  events[5].thumbnail = noise;  // one event larger than a whole batch may be: sent alone
  for (const auto& e : events) outbox->on_event(e);
  outbox->start();
  EXPECT_EQ(outbox->drain(60), 0);
  std::vector<std::string> order;
  for (const auto& r : srv.requests()) {
    EXPECT_LE(r.body["sightings"].size(), 4u);
    if (r.body["sightings"].size() > 1) EXPECT_LE(r.bytes, o.batch_bytes_max + 64);
    for (const auto& s : r.body["sightings"]) order.push_back(s["id"]);
  }
  ASSERT_EQ(order.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(order[i], events[i].id);  // oldest first
}

TEST(Outbox, StopAbortsAHungRequestAndKeepsItsEvents) {
  std::atomic<bool> release{false};
  ScriptedServer srv([&](const json& body, httplib::Response& res, int) {
    for (int i = 0; i < 3000 && !release; ++i) std::this_thread::sleep_for(10ms);
    ScriptedServer::accept(body, res);
  });
  TempDir dir;
  OutboxOptions o = fast(srv.url());
  o.timeout_s = 60;
  auto outbox = open_or_die(dir / "A1.outbox", o);
  outbox->on_event(make_event());
  outbox->start();
  while (srv.requests().empty()) std::this_thread::sleep_for(5ms);
  const auto t0 = std::chrono::steady_clock::now();
  outbox->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);  // not the 60 s timeout
  release = true;
  EXPECT_EQ(outbox->stats().pending, 1);
  EXPECT_EQ(outbox->stats().delivered, 0);
}

TEST(Outbox, RefusesBadOptionsAFileInUseAndOtherDatabases) {
  TempDir dir;
  auto bad_url = Outbox::open(dir / "x.outbox", fast("localhost:8080"));
  ASSERT_FALSE(bad_url.ok());
  EXPECT_NE(bad_url.error().find("http:// or https://"), std::string::npos) << bad_url.error();
  auto no_token = Outbox::open(dir / "x.outbox", fast("http://127.0.0.1:1", ""));
  ASSERT_FALSE(no_token.ok());
  EXPECT_NE(no_token.error().find("token"), std::string::npos);
  auto no_folder = Outbox::open(dir / "missing/x.outbox", fast("http://127.0.0.1:1"));
  ASSERT_FALSE(no_folder.ok());
  EXPECT_NE(no_folder.error().find("does not exist"), std::string::npos) << no_folder.error();

  auto first = open_or_die(dir / "x.outbox", fast("http://127.0.0.1:1"));
  auto second = Outbox::open(dir / "x.outbox", fast("http://127.0.0.1:1"));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();
  first.reset();
  EXPECT_TRUE(Outbox::open(dir / "x.outbox", fast("http://127.0.0.1:1")).ok());  // free again

  RealServer srv;  // its registry file is a SQLite database, but not an outbox
  auto registry = Outbox::open(srv.dir / "registry.db", fast("http://127.0.0.1:1"));
  ASSERT_FALSE(registry.ok());
  EXPECT_NE(registry.error().find("not a vigil outbox"), std::string::npos) << registry.error();
  std::ofstream(dir / "text.outbox") << "hello, this is not a database at all, just some text....";
  auto text = Outbox::open(dir / "text.outbox", fast("http://127.0.0.1:1"));
  ASSERT_FALSE(text.ok());
}

}  // namespace
}  // namespace vigil

#endif  // VIGIL_HAVE_SERVER
