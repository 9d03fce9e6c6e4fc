// The outbox: events committed to a local SQLite file, sent to vigil serve by one thread, deleted after a
// 2xx. The protocol with the server (POST /api/sightings) is all or nothing per request; a request refused
// because of one item names it ({"error", "index", "id"}), and only that item leaves the queue.
#include "vigil/outbox.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <thread>
#include <vector>

#include "common/base64.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vigil {

std::string encode_jpeg_within(const cv::Mat& image, std::size_t max_bytes, int quality) {
  if (image.empty() || max_bytes == 0) return "";
  cv::Mat scaled = image;
  std::vector<uchar> buf;
  for (int halvings = 0; halvings <= 5; ++halvings) {
    std::vector<int> qualities = {std::clamp(quality, 0, 100)};
    for (const int q : {75, 60, 45, 30})
      if (q < qualities.front()) qualities.push_back(q);
    for (const int q : qualities) {
      try {
        if (!cv::imencode(".jpg", scaled, buf, {cv::IMWRITE_JPEG_QUALITY, q})) return "";
      } catch (const cv::Exception&) {
        return "";
      }
      if (buf.size() <= max_bytes) return std::string(buf.begin(), buf.end());
    }
    if (scaled.cols < 32 || scaled.rows < 32) break;
    cv::Mat half;
    cv::resize(scaled, half, cv::Size(std::max(1, scaled.cols / 2), std::max(1, scaled.rows / 2)), 0, 0,
               cv::INTER_AREA);
    scaled = half;
  }
  return "";
}

std::string event_to_sighting_json(const PlateEvent& event, EventClock clock, double produced,
                                   std::size_t image_max_bytes, int jpeg_quality) {
  json j = json::parse(event_to_json(event, clock));
  j.erase("evidence");  // local file paths mean nothing to the server; the images travel inline
  // Servers before this field refuse unknown fields for good: a camera box updated first must not lose
  // its events to them, and the registry does not use it.
  j.erase("country_confidence");
  j["time"] = iso8601_utc(clock == EventClock::kWall ? event.last_seen : produced);
  if (image_max_bytes > 0) {
    json images = json::object();
    if (auto jpg = encode_jpeg_within(event.best_crop, image_max_bytes, jpeg_quality); !jpg.empty())
      images["plate"] = base64_encode(jpg);
    if (auto jpg = encode_jpeg_within(event.thumbnail, image_max_bytes, jpeg_quality); !jpg.empty())
      images["frame"] = base64_encode(jpg);
    if (!images.empty()) j["images"] = std::move(images);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

using Clock = std::chrono::steady_clock;

// 'VGOB': marks a SQLite file as an outbox, so that pointing --outbox at another database fails.
constexpr int kApplicationId = 0x56474f42;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
  return buf;
}

std::string events_text(std::int64_t n) { return std::to_string(n) + (n == 1 ? " event" : " events"); }

// The server URL split for cpp-httplib: "https://host:port" and a path prefix ("" or "/prefix").
struct ServerUrl {
  std::string origin, prefix;
};

Result<ServerUrl> parse_server_url(const std::string& url) {
  const bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
  if (!http && !https)
    return Error{"server: expected a URL starting with http:// or https://, got '" + url + "'"};
  const std::size_t start = http ? 7 : 8;
  const std::size_t slash = url.find('/', start);
  ServerUrl u;
  u.origin = url.substr(0, slash);
  if (u.origin.size() == start) return Error{"server: no host in '" + url + "'"};
  if (url.find_first_of("?#@", start) != std::string::npos)
    return Error{"server: '" + url + "' has a query, fragment or user part; give only the base URL"};
  if (slash != std::string::npos) {
    u.prefix = url.substr(slash);
    while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  }
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (https) return Error{"server: https:// needs cpp-httplib built with OpenSSL, which this build lacks"};
#endif
  return u;
}

std::string describe_http_error(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "cannot connect (refused, or the host is unreachable)";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "no answer (timed out, or the connection was closed)";
    case httplib::Error::Write:
      return "the connection broke while sending";
    case httplib::Error::Canceled:
      return "canceled";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLLoadingCerts:
      return "cannot load the CA certificates";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate did not verify";
    case httplib::Error::BindIPAddress:
      return "cannot bind the local address";
    default:
      return "request failed (" + httplib::to_string(e) + ")";
  }
}

// A prepared statement, finalized on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
  ~Stmt() { sqlite3_finalize(s); }
  explicit operator bool() const { return s != nullptr; }
};

// One pending row of a batch.
struct Item {
  std::int64_t seq = 0;
  std::string event_id;
  std::int64_t bytes = 0;
};

}  // namespace

struct Outbox::Impl {
  std::string path, name;
  OutboxOptions opt;
  ServerUrl url;
  int lock_fd = -1;
  sqlite3* db = nullptr;
  std::mutex db_mutex;  // the connection is used by on_event() callers and the uploader

  mutable std::mutex mutex;  // everything below
  std::condition_variable cv;
  OutboxStats st;
  bool started = false, stopping = false;
  Clock::time_point next_attempt{};
  int failures_in_row = 0;
  Clock::time_point last_warning{};
  // After a refusal that names no item (or a 413 for the whole request), the events up to narrow_until
  // go in smaller requests: one by one, or halves.
  std::int64_t narrow_until = 0;
  std::size_t narrow_limit = 0;
  std::thread thread;
  std::unique_ptr<httplib::Client> client;  // used by the uploader; stop() may abort it
  std::mt19937_64 rng{std::random_device{}()};
  std::atomic<bool> finished{false};  // run() returned

  ~Impl() {
    if (db) sqlite3_close(db);
    if (lock_fd >= 0) ::close(lock_fd);  // after SQLite: closing a descriptor drops the process's locks
  }

  std::string who() const { return "outbox " + name; }

  std::string db_error() const { return db ? sqlite3_errmsg(db) : "out of memory"; }

  Result<bool> exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : db_error();
      sqlite3_free(err);
      return Error{m};
    }
    return true;
  }

  Result<bool> init() {
    std::error_code ec;
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      return Error{"cannot open outbox " + path + ": folder " + parent.string() +
                   " does not exist (create it, or give another --outbox)"};
    lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) return Error{"cannot open outbox " + path + ": " + std::strerror(errno)};
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
      return Error{"outbox " + path +
                   " is in use by another process (another vigil watch for this camera?); give each "
                   "camera its own outbox file"};
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
      return Error{"cannot open outbox " + path + ": " + db_error()};
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* s = nullptr;
    int app_id = 0, tables = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &s, nullptr) != SQLITE_OK)
      return Error{"outbox " + path + " is not an outbox (" + db_error() + ")"};
    if (sqlite3_step(s) == SQLITE_ROW) app_id = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      tables = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (app_id != kApplicationId && (app_id != 0 || tables != 0))
      return Error{"outbox " + path +
                   " is another kind of database, not a vigil outbox; give another --outbox"};
    for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"})
      if (auto r = exec(sql); !r) return Error{"cannot open outbox " + path + ": " + r.error()};
    if (auto r = exec(R"sql(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS pending (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  camera_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL,
  camera_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  failed_at INTEGER NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  body TEXT NOT NULL
);
PRAGMA application_id = 1447513922;
PRAGMA user_version = 1;
COMMIT;
)sql");
        !r) {
      exec("ROLLBACK");
      return Error{"cannot create the outbox tables in " + path + ": " + r.error()};
    }
    std::int64_t pending = 0, dead = 0;
    if (count("SELECT COUNT(*) FROM pending", pending) && count("SELECT COUNT(*) FROM dead_letter", dead)) {
      st.pending = pending;
      st.dead = dead;
      return true;
    }
    return Error{"cannot read outbox " + path + ": " + db_error()};
  }

  bool count(const char* sql, std::int64_t& out) {
    Stmt s(db, sql);
    if (!s || sqlite3_step(s.s) != SQLITE_ROW) return false;
    out = sqlite3_column_int64(s.s, 0);
    return true;
  }

  Result<bool> insert(const std::string& event_id, const std::string& camera_id, const std::string& body) {
    std::lock_guard lock(db_mutex);
    Stmt s(db,
           "INSERT OR IGNORE INTO pending (event_id, camera_id, created_at, bytes, body) VALUES (?, ?, ?, ?, "
           "?)");
    if (!s) return Error{db_error()};
    sqlite3_bind_text(s.s, 1, event_id.data(), int(event_id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(s.s, 2, camera_id.data(), int(camera_id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(s.s, 3, now_ms());
    sqlite3_bind_int64(s.s, 4, std::int64_t(body.size()));
    sqlite3_bind_text(s.s, 5, body.data(), int(body.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(s.s) != SQLITE_DONE) return Error{db_error()};
    return sqlite3_changes(db) > 0;
  }

  // The oldest pending events within the limits (at least one when any is pending), with their bodies.
  Result<std::vector<Item>> load(std::string& body) {
    std::lock_guard lock(db_mutex);
    std::size_t limit = std::max<std::size_t>(1, opt.batch_max);
    std::vector<Item> items;
    {
      Stmt s(db, "SELECT seq, event_id, bytes FROM pending ORDER BY seq LIMIT ?");
      if (!s) return Error{db_error()};
      sqlite3_bind_int64(s.s, 1, std::int64_t(limit));
      std::int64_t total = 0;
      int rc;
      while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
        Item it;
        it.seq = sqlite3_column_int64(s.s, 0);
        it.event_id = reinterpret_cast<const char*>(sqlite3_column_text(s.s, 1));
        it.bytes = sqlite3_column_int64(s.s, 2);
        if (items.empty()) {
          std::lock_guard state(mutex);
          if (it.seq <= narrow_until) limit = std::max<std::size_t>(1, std::min(limit, narrow_limit));
        }
        if (!items.empty() && (items.size() >= limit || std::size_t(total + it.bytes) > opt.batch_bytes_max))
          break;
        total += it.bytes;
        items.push_back(std::move(it));
      }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{db_error()};
    }
    body = "{\"sightings\":[";
    if (!items.empty()) {
      Stmt s(db, "SELECT body FROM pending WHERE seq >= ? AND seq <= ? ORDER BY seq");
      if (!s) return Error{db_error()};
      sqlite3_bind_int64(s.s, 1, items.front().seq);
      sqlite3_bind_int64(s.s, 2, items.back().seq);
      std::size_t n = 0;
      while (sqlite3_step(s.s) == SQLITE_ROW) {
        if (n++) body += ',';
        body.append(reinterpret_cast<const char*>(sqlite3_column_text(s.s, 0)),
                    std::size_t(sqlite3_column_bytes(s.s, 0)));
      }
      if (n != items.size()) return Error{"the pending events changed while being read"};
    }
    body += "]}";
    return items;
  }

  Result<bool> remove(const std::vector<Item>& items) {
    std::lock_guard lock(db_mutex);
    Stmt s(db, "DELETE FROM pending WHERE seq >= ? AND seq <= ?");
    if (!s) return Error{db_error()};
    sqlite3_bind_int64(s.s, 1, items.front().seq);
    sqlite3_bind_int64(s.s, 2, items.back().seq);
    if (sqlite3_step(s.s) != SQLITE_DONE) return Error{db_error()};
    return true;
  }

  Result<bool> bury(const Item& item, int status, const std::string& error) {
    std::lock_guard lock(db_mutex);
    if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
    Stmt ins(
        db,
        "INSERT OR REPLACE INTO dead_letter (seq, event_id, camera_id, created_at, failed_at, status, "
        "error, body) SELECT seq, event_id, camera_id, created_at, ?, ?, ?, body FROM pending WHERE seq = ?");
    Stmt del(db, "DELETE FROM pending WHERE seq = ?");
    bool ok = ins && del;
    if (ok) {
      sqlite3_bind_int64(ins.s, 1, now_ms());
      sqlite3_bind_int(ins.s, 2, status);
      sqlite3_bind_text(ins.s, 3, error.data(), int(error.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins.s, 4, item.seq);
      sqlite3_bind_int64(del.s, 1, item.seq);
      ok = sqlite3_step(ins.s) == SQLITE_DONE && sqlite3_step(del.s) == SQLITE_DONE;
    }
    if (!ok) {
      const std::string m = db_error();
      exec("ROLLBACK");
      return Error{m};
    }
    return exec("COMMIT");
  }

  // ---------------------------------------------------------------------------------------------------
  // Uploading

  // What one request came to.
  struct Answer {
    enum Kind { kDelivered, kRetry, kRefused, kRejectItem, kNarrow } kind = kRetry;
    std::string message;
    int status = 0;
    std::size_t index = 0;        // kRejectItem
    double retry_after_s = -1;    // kRetry: the server's Retry-After, < 0 none
    std::int64_t duplicates = 0;  // kDelivered
  };

  std::string server_error(const httplib::Response& res) {
    json j = json::parse(res.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
    std::string body = res.body.substr(0, 200);
    std::replace_if(
        body.begin(), body.end(), [](char ch) { return ch == '\n' || ch == '\r'; }, ' ');
    return body.empty() ? "no message" : body;
  }

  Answer post(const std::vector<Item>& items, const std::string& body) {
    Answer a;
    httplib::Client* cli;
    {
      std::lock_guard lock(mutex);
      if (stopping) {
        a.message = "stopping";
        return a;
      }
      if (!client) {
        client = std::make_unique<httplib::Client>(url.origin);
        const auto whole = time_t(opt.timeout_s);
        const auto usec = time_t((opt.timeout_s - double(whole)) * 1e6);
        client->set_connection_timeout(whole, usec);
        client->set_read_timeout(whole, usec);
        client->set_write_timeout(whole, usec);
        client->set_keep_alive(true);
        // Without it the body waits for the server's delayed ACK of the headers (40 ms a batch).
        client->set_tcp_nodelay(true);
        client->set_bearer_token_auth(opt.token);
      }
      cli = client.get();
    }
    auto res = cli->Post(url.prefix + "/api/sightings", body, "application/json");
    if (!res) {
      a.message = describe_http_error(res.error());
      return a;
    }
    a.status = res->status;
    const int status = res->status;
    if (status >= 200 && status < 300) {
      // A 2xx from something that is not vigil serve (a proxy's page, a wrong URL) must not delete events.
      json j = json::parse(res->body, nullptr, false);
      if (!j.is_object() || !j.contains("results") || !j["results"].is_array() ||
          j["results"].size() != items.size()) {
        a.message = "answered " + std::to_string(status) +
                    " but not as vigil serve does (no results for the events); is the server URL right?";
        return a;
      }
      for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& r = j["results"][i];
        if (!r.is_object() || r.value("id", std::string()) != items[i].event_id) {
          a.message =
              "answered " + std::to_string(status) + " with results that do not match the events sent";
          return a;
        }
        if (r.value("duplicate", false)) ++a.duplicates;
      }
      a.kind = Answer::kDelivered;
      return a;
    }
    a.message = std::to_string(status) + ": " + server_error(*res);
    if (status == 401 || status == 403) {
      a.kind = Answer::kRefused;
      return a;
    }
    if (status == 400 || status == 409 || status == 413 || status == 422) {
      // The server names the item it refused; a refusal naming none is narrowed down by sending fewer.
      json j = json::parse(res->body, nullptr, false);
      if (j.is_object() && j.contains("index") && j["index"].is_number_unsigned() &&
          j["index"].get<std::size_t>() < items.size() &&
          (!j.contains("id") || !j["id"].is_string() ||
           j["id"].get<std::string>() == items[j["index"].get<std::size_t>()].event_id)) {
        a.kind = Answer::kRejectItem;
        a.index = j["index"].get<std::size_t>();
        return a;
      }
      if (items.size() == 1 && status != 409) {
        a.kind = Answer::kRejectItem;
        return a;
      }
      if (items.size() > 1) {
        a.kind = Answer::kNarrow;
        return a;
      }
    }
    if (status == 429 || status == 503) {
      const std::string ra = res->get_header_value("Retry-After");
      char* end = nullptr;
      const double v = std::strtod(ra.c_str(), &end);
      if (!ra.empty() && end && *end == '\0' && std::isfinite(v) && v >= 0)
        a.retry_after_s = std::min(v, 3600.0);
    }
    if (status == 404 || status == 405 || status == 415)
      a.message += " (is " + opt.server + " the URL of vigil serve?)";
    return a;  // 408, 429, 5xx and anything unexpected: retried
  }

  // One round: send the oldest pending events and act on the answer.
  void round() {
    std::string body;
    auto items = load(body);
    if (!items) {
      failed("cannot read the outbox: " + items.error(), -1);
      return;
    }
    if (items->empty()) return;
    const Answer a = post(*items, body);
    {
      std::lock_guard lock(mutex);
      if (stopping && a.kind == Answer::kRetry) return;  // aborted by stop(): not a failure
    }
    switch (a.kind) {
      case Answer::kDelivered: {
        if (auto r = remove(*items); !r) {
          // They were delivered; sending them again later is harmless (duplicates).
          failed("delivered, but cannot delete them from the outbox: " + r.error(), -1);
          return;
        }
        std::lock_guard lock(mutex);
        st.pending -= std::int64_t(items->size());
        st.delivered += std::int64_t(items->size());
        st.duplicates += a.duplicates;
        if (failures_in_row > 0)
          vigil::log(LogLevel::kInfo, who() + ": delivering again after " + std::to_string(failures_in_row) +
                                          " failed attempts");
        failures_in_row = 0;
        if (items->back().seq >= narrow_until) narrow_until = 0;
        cv.notify_all();
        return;
      }
      case Answer::kRefused: {
        std::lock_guard lock(mutex);
        st.refused = true;
        st.last_error = a.message;
        vigil::log(LogLevel::kError,
                   who() + ": " + opt.server + " refused the events (" + a.message +
                       "); check the token (it must be a live camera token for this camera id). Uploading "
                       "stopped; " +
                       events_text(st.pending) + " kept in " + path + " for the next start");
        cv.notify_all();
        return;
      }
      case Answer::kRejectItem: {
        const Item& bad = (*items)[a.index];
        if (auto r = bury(bad, a.status, a.message); !r) {
          failed("cannot move event " + bad.event_id + " to the dead letters: " + r.error(), -1);
          return;
        }
        std::lock_guard lock(mutex);
        st.pending -= 1;
        st.dead += 1;
        st.rejected += 1;
        vigil::log(LogLevel::kWarn, who() + ": the server refused event " + bad.event_id + " for good (" +
                                        a.message + "); kept in the dead_letter table of " + path);
        cv.notify_all();
        return;
      }
      case Answer::kNarrow: {
        std::lock_guard lock(mutex);
        narrow_until = std::max(narrow_until, items->back().seq);
        narrow_limit = a.status == 413 ? std::max<std::size_t>(1, items->size() / 2) : 1;
        vigil::log(LogLevel::kDebug, who() + ": " + a.message + "; sending " + std::to_string(narrow_limit) +
                                         " at a time to find the cause");
        return;
      }
      case Answer::kRetry:
        failed(a.message, a.retry_after_s);
        return;
    }
  }

  // Schedules the next attempt after a failure: exponential back-off with jitter, or the server's wish.
  void failed(const std::string& message, double retry_after_s) {
    std::lock_guard lock(mutex);
    ++failures_in_row;
    ++st.failures;
    st.last_error = message;
    const double base =
        std::min(opt.retry_max_s, opt.retry_min_s * std::pow(2.0, std::min(failures_in_row - 1, 40)));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    double wait = base * jitter(rng);
    if (retry_after_s >= 0)
      wait = std::max(retry_after_s, opt.retry_min_s) * std::uniform_real_distribution<double>(1.0, 1.1)(rng);
    next_attempt =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
    const auto now = Clock::now();
    const bool first = failures_in_row == 1;
    if (first || now - last_warning >= std::chrono::seconds(60)) {
      last_warning = now;
      vigil::log(LogLevel::kWarn, who() + ": " + (first ? "cannot deliver to " : "still cannot deliver to ") +
                                      opt.server + ": " + message + "; retrying in " + seconds_text(wait) +
                                      " (" + events_text(st.pending) + " kept in " + path + ")");
    } else {
      vigil::log(LogLevel::kDebug, who() + ": " + message + "; retrying in " + seconds_text(wait));
    }
  }

  void run() {
    std::unique_lock lock(mutex);
    while (!stopping) {
      if (st.refused) {
        cv.wait(lock, [&] { return stopping; });
        break;
      }
      if (st.pending <= 0) {
        cv.wait(lock, [&] { return stopping || st.pending > 0; });
        continue;
      }
      if (Clock::now() < next_attempt) {
        const auto until = next_attempt;
        cv.wait_until(lock, until, [&] { return stopping; });
        continue;
      }
      lock.unlock();
      round();
      lock.lock();
    }
    finished = true;
  }
};

Outbox::Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Outbox::~Outbox() { stop(); }

Result<std::shared_ptr<Outbox>> Outbox::open(const std::string& path, OutboxOptions options) {
  if (path.empty()) return Error{"outbox: no file given"};
  auto url = parse_server_url(options.server);
  if (!url) return Error{url.error()};
  if (options.token.empty()) return Error{"token: required to send events to " + options.server};
  if (options.token.find_first_of("\r\n") != std::string::npos) return Error{"token: contains a line break"};
  if (!(options.retry_min_s > 0) || !(options.retry_max_s >= options.retry_min_s))
    return Error{"retry: the first wait must be > 0 and at most the longest"};
  if (!(options.timeout_s > 0)) return Error{"timeout: must be > 0 seconds"};
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->name = options.name.empty() ? fs::path(path).filename().string() : options.name;
  impl->url = *url;
  impl->opt = std::move(options);
  impl->opt.batch_max = std::max<std::size_t>(1, impl->opt.batch_max);
  if (auto r = impl->init(); !r) return Error{r.error()};
  return std::shared_ptr<Outbox>(new Outbox(std::move(impl)));
}

Result<bool> Outbox::store(const PlateEvent& event) {
  auto& m = *impl_;
  std::string body;
  try {
    body = event_to_sighting_json(event, m.opt.clock, now_s(), m.opt.image_max_bytes, m.opt.jpeg_quality);
  } catch (const std::exception& e) {
    return Error{"cannot encode event " + event.id + ": " + e.what()};
  }
  auto added = m.insert(event.id, event.camera_id, body);
  if (!added) return Error{"cannot store event " + event.id + " in outbox " + m.path + ": " + added.error()};
  std::lock_guard lock(m.mutex);
  if (*added) {
    ++m.st.pending;
    ++m.st.stored;
  }
  m.cv.notify_all();
  return true;
}

void Outbox::on_event(const PlateEvent& event) {
  if (auto r = store(event); !r) vigil::log(LogLevel::kError, r.error() + " (it is not sent to the server)");
}

void Outbox::start() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);
  if (m.started) return;
  m.started = true;
  m.thread = std::thread([&m] { m.run(); });
}

std::int64_t Outbox::drain(double timeout_s) {
  auto& m = *impl_;
  std::unique_lock lock(m.mutex);
  if (!m.started) return m.st.pending;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(std::max(0.0, timeout_s)));
  m.cv.wait_until(lock, deadline, [&] { return m.st.pending <= 0 || m.st.refused || m.stopping; });
  return m.st.pending;
}

void Outbox::stop() {
  auto& m = *impl_;
  {
    std::lock_guard lock(m.mutex);
    m.stopping = true;
    m.cv.notify_all();
  }
  if (!m.thread.joinable()) return;
  // A request may be connecting (not abortable yet) or in flight: shut its socket down until the thread
  // notices; its events stay pending.
  while (!m.finished) {
    {
      std::lock_guard lock(m.mutex);
      if (m.client) m.client->stop();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  m.thread.join();
}

OutboxStats Outbox::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->st;
}

const std::string& Outbox::path() const { return impl_->path; }

}  // namespace vigil
