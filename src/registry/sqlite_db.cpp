// The SQLite backend: one file, WAL journal (readers never block the writer), a busy timeout for the
// write lock, statements prepared once per connection.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "registry/db.hpp"

namespace vigil::db {
namespace {

class SqliteConnection : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::string path, int busy_timeout_ms, std::timed_mutex* writer)
      : db_(db), path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms), writer_(writer) {}

  ~SqliteConnection() override {
    release_writer();
    for (auto& [sql, st] : cache_) sqlite3_finalize(st.stmt);
    sqlite3_close(db_);
  }

  RegistryResult<Rows> query(const std::string& sql, const std::vector<Value>& params = {}) override {
    auto st = statement(sql);
    if (!st) return st.error_detail();
    sqlite3_stmt* s = (*st)->stmt;
    // Always leave the statement reset so it holds no read snapshot or lock between calls.
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{s};
    const auto& slots = (*st)->slots;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const int n = slots[i];
      if (n < 1 || static_cast<std::size_t>(n) > params.size())
        return RegistryError{Failure::kStorage, "internal: statement needs parameter $" + std::to_string(n) +
                                                    " but got " + std::to_string(params.size()) + ": " + sql};
      const Value& v = params[static_cast<std::size_t>(n - 1)];
      const int idx = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      if (const auto* iv = std::get_if<std::int64_t>(&v)) {
        rc = sqlite3_bind_int64(s, idx, *iv);
      } else if (const auto* dv = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(s, idx, *dv);
      } else if (const auto* sv = std::get_if<std::string>(&v)) {
        rc = sqlite3_bind_text(s, idx, sv->data(), static_cast<int>(sv->size()), SQLITE_TRANSIENT);
      } else {
        rc = sqlite3_bind_null(s, idx);
      }
      if (rc != SQLITE_OK) return fail(rc, "bind");
    }
    Rows rows;
    const int columns = sqlite3_column_count(s);
    for (;;) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return fail(rc, sql);
      Row row;
      row.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        switch (sqlite3_column_type(s, c)) {
          case SQLITE_INTEGER:
            row.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(s, c)));
            break;
          case SQLITE_FLOAT:
            row.emplace_back(sqlite3_column_double(s, c));
            break;
          case SQLITE_NULL:
            row.emplace_back(std::monostate{});
            break;
          default: {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
            row.emplace_back(std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, c))));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  Ok script(const std::string& sql) override {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
    if (rc != SQLITE_OK) {
      const std::string m = msg ? msg : sqlite3_errstr(rc);
      sqlite3_free(msg);
      return RegistryError{kind(rc), "database " + path_ + ": " + m};
    }
    return true;
  }

  Ok begin(bool write) override {
    // Writers of this process queue on a mutex, which wakes the next one at once; SQLite's busy handler
    // polls with sleeps of up to 100 ms and is left for writers in other processes.
    if (write) {
      if (!writer_->try_lock_for(std::chrono::milliseconds(busy_timeout_ms_)))
        return RegistryError{Failure::kBusy, "database " + path_ + " is busy with other writes (waited " +
                                                 std::to_string(busy_timeout_ms_) + " ms); try again"};
      holding_writer_ = true;
    }
    auto r = query(write ? "BEGIN IMMEDIATE" : "BEGIN");
    if (!r) {
      release_writer();
      return r.error_detail();
    }
    return true;
  }

  Ok commit() override {
    auto r = query("COMMIT");
    if (!r) return r.error_detail();  // still in the transaction: the caller rolls back
    release_writer();
    return true;
  }

  void rollback() override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    release_writer();
  }

 private:
  struct Prepared {
    sqlite3_stmt* stmt = nullptr;
    std::vector<int> slots;  // for each SQLite parameter index - 1: the $n it stands for
  };

  static Failure kind(int rc) {
    switch (rc & 0xff) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Failure::kBusy;
      case SQLITE_CONSTRAINT:
        return Failure::kConflict;
      default:
        return Failure::kStorage;
    }
  }

  RegistryError fail(int rc, const std::string& what) {
    const Failure f = kind(rc);
    if (f == Failure::kBusy)
      return {f, "database " + path_ + " is locked by another writer (waited " +
                     std::to_string(busy_timeout_ms_) + " ms); try again"};
    std::string m = "database " + path_ + ": " + sqlite3_errmsg(db_);
    if ((rc & 0xff) == SQLITE_NOTADB) m = "database " + path_ + " is not a SQLite database";
    if ((rc & 0xff) == SQLITE_FULL) m = "database " + path_ + ": disk full";
    if (f == Failure::kStorage && what.size() < 400) m += " (in: " + what + ")";
    return {f, m};
  }

  RegistryResult<Prepared*> statement(const std::string& sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return &it->second;
    Prepared p;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &p.stmt, nullptr);
    if (rc != SQLITE_OK) return fail(rc, sql);
    const int n = sqlite3_bind_parameter_count(p.stmt);
    for (int i = 1; i <= n; ++i) {
      const char* name = sqlite3_bind_parameter_name(p.stmt, i);
      p.slots.push_back(name && name[0] == '$' ? std::atoi(name + 1) : 0);
    }
    return &cache_.emplace(sql, p).first->second;
  }

  void release_writer() {
    if (holding_writer_) {
      holding_writer_ = false;
      writer_->unlock();
    }
  }

  sqlite3* db_;
  std::string path_;
  int busy_timeout_ms_;
  std::timed_mutex* writer_;  // shared by the connections of one database
  bool holding_writer_ = false;
  std::unordered_map<std::string, Prepared> cache_;
};

// The database holds sightings, evidence images and token hashes: only its owner may read it. SQLite
// creates the -wal and -shm files with the database file's mode, so the file is made 0600 before SQLite
// opens it, and a file others could read is narrowed to its owner (a copy restored from a backup).
void keep_private(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;  // SQLite's own open says why
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
    ::fchmod(fd, st.st_mode & 0700);
  ::close(fd);
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    const std::string side = path + suffix;
    if (::stat(side.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
      ::chmod(side.c_str(), st.st_mode & 0700);
  }
}

RegistryResult<std::unique_ptr<Connection>> connect(const SqliteOptions& o, std::timed_mutex* writer) {
  keep_private(o.path);
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(o.path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    const auto dir = std::filesystem::path(o.path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      why = "folder " + dir.string() + " does not exist";
    return RegistryError{Failure::kStorage, "cannot open database " + o.path + ": " + why};
  }
  sqlite3_busy_timeout(db, o.busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  auto c = std::make_unique<SqliteConnection>(db, o.path, o.busy_timeout_ms, writer);
  // WAL: readers and the writer do not block each other; FULL: a sighting acknowledged to a camera
  // survives a power cut.
  // Switching a new file to WAL while another process does the same can answer SQLITE_BUSY at once,
  // without the busy handler: retry until the busy timeout.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.busy_timeout_ms);
  auto mode = c->query("PRAGMA journal_mode=WAL");
  while (!mode && mode.failure() == Failure::kBusy && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    mode = c->query("PRAGMA journal_mode=WAL");
  }
  if (!mode) return mode.error_detail();
  if (mode->empty() || as_text(mode->front().front()) != "wal")
    return RegistryError{Failure::kStorage, "database " + o.path +
                                                ": cannot switch to WAL journal mode (got '" +
                                                (mode->empty() ? "" : as_text(mode->front().front())) + "')"};
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"})
    if (auto r = c->query(pragma); !r) return r.error_detail();
  return std::unique_ptr<Connection>(std::move(c));
}

class SqliteDatabase : public Database {
 public:
  explicit SqliteDatabase(SqliteOptions o)
      : options_(std::move(o)), pool_([this] { return connect(options_, &writer_); }, options_.connections) {}
  Dialect dialect() const override { return Dialect::kSqlite; }
  std::string describe() const override { return "sqlite " + options_.path; }
  RegistryResult<Lease> acquire() override { return pool_.acquire(); }

 private:
  SqliteOptions options_;
  std::timed_mutex writer_;  // declared before pool_: connections unlock it when they close
  ConnectionPool pool_;
};

}  // namespace

RegistryResult<std::unique_ptr<Database>> open_sqlite(const SqliteOptions& options) {
  auto db = std::make_unique<SqliteDatabase>(options);
  // Open one connection now, so a bad path or a file that is not a database fails here.
  auto c = db->acquire();
  if (!c) return c.error_detail();
  c->reset();
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace vigil::db
