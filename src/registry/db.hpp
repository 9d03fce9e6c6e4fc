// The SQL the registry needs from a database, so that SQLite and PostgreSQL share the registry code, the
// schema and the migrations: statements are written once with $1..$n parameters (SQLite reads "$1" as a
// named parameter, PostgreSQL as positional), values are NULL/int64/double/text, and each backend only
// implements Connection and opens its connections into a ConnectionPool.
// Errors map the same on both: a constraint -> kConflict; a lock not granted in time, a deadlock or a
// serialization failure -> kBusy; anything else (disk, lost connection) -> kStorage.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "vigil/registry.hpp"

namespace vigil::db {

using Value = std::variant<std::monostate, std::int64_t, double, std::string>;
using Row = std::vector<Value>;
using Rows = std::vector<Row>;
using Ok = RegistryResult<bool>;

enum class Dialect { kSqlite, kPostgres };

inline std::int64_t as_int(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<std::int64_t>(*d);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  return 0;
}
inline double as_double(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtod(s->c_str(), nullptr);
  return 0.0;
}
inline std::string as_text(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return "";
}
inline bool is_null(const Value& v) { return std::holds_alternative<std::monostate>(v); }
inline Value null_if_empty(const std::string& s) { return s.empty() ? Value{} : Value{s}; }

// One database session. Used by one thread at a time (the pool hands it out).
class Connection {
 public:
  virtual ~Connection() = default;
  // Runs one statement (prepared once per connection and cached) and returns its rows. Busy/locked after
  // the busy timeout -> Failure::kBusy; a unique or check constraint -> Failure::kConflict.
  virtual RegistryResult<Rows> query(const std::string& sql, const std::vector<Value>& params = {}) = 0;
  // Runs several statements without parameters (migrations).
  virtual Ok script(const std::string& sql) = 0;
  // A write transaction takes the write lock at once (SQLite BEGIN IMMEDIATE), so a transaction never
  // fails half-way for a lock it could not upgrade. PostgreSQL runs READ COMMITTED with row locks, so
  // writers of different rows proceed in parallel: the registry's statements must be safe under that
  // (INSERT ... ON CONFLICT, UPDATE ... WHERE <expected state> RETURNING).
  virtual Ok begin(bool write) = 0;
  virtual Ok commit() = 0;
  virtual void rollback() = 0;
};

using Lease = std::unique_ptr<Connection, std::function<void(Connection*)>>;

// Up to `size` connections, opened on first need and reused; acquire() waits for a free one.
class ConnectionPool {
 public:
  using Factory = std::function<RegistryResult<std::unique_ptr<Connection>>()>;
  ConnectionPool(Factory factory, int size) : factory_(std::move(factory)), size_(size < 1 ? 1 : size) {}

  RegistryResult<Lease> acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    std::unique_ptr<Connection> c;
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    } else {
      ++open_;
      lock.unlock();
      auto made = factory_();
      lock.lock();
      if (!made) {
        --open_;
        cv_.notify_one();
        return made.error_detail();
      }
      c = std::move(*made);
    }
    return Lease(c.release(), [this](Connection* p) { give_back(p); });
  }

  // Adds a connection opened by the caller (counted against the size).
  void adopt(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mutex_);
    ++open_;
    idle_.push_back(std::move(c));
    cv_.notify_one();
  }

  ~ConnectionPool() {
    std::lock_guard lock(mutex_);
    idle_.clear();
  }

 private:
  void give_back(Connection* p) {
    std::lock_guard lock(mutex_);
    idle_.emplace_back(p);
    cv_.notify_one();
  }

  Factory factory_;
  int size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;
};

class Database {
 public:
  virtual ~Database() = default;
  virtual Dialect dialect() const = 0;
  virtual std::string describe() const = 0;  // "sqlite /path/vigil.db"
  virtual RegistryResult<Lease> acquire() = 0;
};

struct SqliteOptions {
  std::string path;
  int busy_timeout_ms = 5000;
  int connections = 4;
};
// Opens (creating) the file in WAL mode and checks that it is a SQLite database.
RegistryResult<std::unique_ptr<Database>> open_sqlite(const SqliteOptions& options);

struct PostgresOptions {
  std::string url;             // postgresql://user[:password]@host[:port]/dbname[?param=value&...]
  int busy_timeout_ms = 5000;  // lock_timeout: how long a statement waits for a row or table lock
  int connections = 4;
};
// Connects once now (so a bad URL, an unreachable server or a missing database fail here) and then
// opens up to `connections` sessions on demand. Built only with libpq (VIGIL_HAVE_POSTGRES).
RegistryResult<std::unique_ptr<Database>> open_postgres(const PostgresOptions& options);

// Whether the text is a PostgreSQL URL (postgresql://... or postgres://...).
bool is_postgres_url(const std::string& url);
// The URL with its password (in the user part or a password= parameter) replaced by "***"; other
// text is returned unchanged. For every message and log line that shows a database URL.
std::string redact_url(const std::string& url);
// A PostgreSQL URL, or a SQLite file path with an optional "sqlite:" prefix.
RegistryResult<std::unique_ptr<Database>> open_database(const std::string& url, int busy_timeout_ms,
                                                        int connections);

// Runs f inside a transaction on c: committed when f succeeds, rolled back when it fails.
template <typename F>
auto transaction(Connection& c, bool write, F&& f) -> decltype(f()) {
  if (auto b = c.begin(write); !b) return b.error_detail();
  auto r = f();
  if (!r) {
    c.rollback();
    return r;
  }
  if (auto done = c.commit(); !done) {
    c.rollback();
    return done.error_detail();
  }
  return r;
}

// The schema as numbered migrations, in dialect-neutral SQL with {{id}} for an auto-assigned primary key.
struct Migration {
  int version;
  const char* description;
  const char* sql;
};
const std::vector<Migration>& migrations();
// Applies the migrations above the database's version, up to `up_to` (all when < 0), each in its own
// transaction. Fails when the database is newer than this build.
RegistryResult<int> migrate(Connection& c, Dialect dialect, int up_to = -1);
RegistryResult<int> schema_version(Connection& c);

}  // namespace vigil::db
