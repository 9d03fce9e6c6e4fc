// The PostgreSQL backend (libpq): several vigil servers may share one database. Statements are prepared
// once per session (PQprepare) and run with text parameters; results are converted by column type.
#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <unordered_map>

#include "registry/db.hpp"

namespace vigil::db {
namespace {

// Type OIDs of pg_type (stable across releases).
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26, kFloat4Oid = 700,
              kFloat8Oid = 701, kNumericOid = 1700;
// More distinct statements than the registry makes; past it the session's statements are dropped.
constexpr std::size_t kStatementCacheMax = 512;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// One line: libpq's messages end in a newline and may span lines ("...failed: Connection refused\n\tIs
// the server running...").
std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto pos = s.find('\n'); pos != std::string::npos; pos = s.find('\n', pos)) {
    const auto end = s.find_first_not_of("\n\t ", pos);
    s.replace(pos, (end == std::string::npos ? s.size() : end) - pos, "; ");
  }
  return s;
}

// Removes the password from a message when libpq echoed a piece of the connection string.
std::string scrub(std::string message, const std::string& password) {
  if (password.empty()) return message;
  for (auto pos = message.find(password); pos != std::string::npos; pos = message.find(password, pos + 3))
    message.replace(pos, password.size(), "***");
  return message;
}

std::string password_of(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  PQfreemem(err);
  std::string password;
  if (options) {
    for (auto* o = options; o->keyword; ++o)
      if (std::strcmp(o->keyword, "password") == 0 && o->val) password = o->val;
    PQconninfoFree(options);
  }
  return password;
}

class PostgresConnection : public Connection {
 public:
  PostgresConnection(PGconn* conn, std::string where, const PostgresOptions& options)
      : conn_(conn), where_(std::move(where)), busy_timeout_ms_(options.busy_timeout_ms) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  // Session settings, again after every reconnection.
  Ok setup() {
    // Notices ("relation ... already exists, skipping") would go to stderr; the library never prints.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    return exec("SET lock_timeout = " + std::to_string(busy_timeout_ms_ < 1 ? 1 : busy_timeout_ms_));
  }

  RegistryResult<Rows> query(const std::string& sql, const std::vector<Value>& params = {}) override {
    if (auto ok = usable(); !ok) return ok.error_detail();
    auto st = statement(sql);
    if (!st) return st.error_detail();
    const int n = (*st)->params;
    if (static_cast<std::size_t>(n) > params.size())
      return RegistryError{Failure::kStorage, "internal: statement needs " + std::to_string(n) +
                                                  " parameters but got " + std::to_string(params.size()) +
                                                  ": " + sql};
    std::vector<std::string> text(static_cast<std::size_t>(n));
    std::vector<const char*> values(static_cast<std::size_t>(n), nullptr);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      const Value& v = params[i];
      if (const auto* iv = std::get_if<std::int64_t>(&v)) {
        text[i] = std::to_string(*iv);
      } else if (const auto* dv = std::get_if<double>(&v)) {
        char buf[32];
        const auto end = std::to_chars(buf, buf + sizeof buf, *dv).ptr;  // shortest exact form
        text[i].assign(buf, end);
      } else if (const auto* sv = std::get_if<std::string>(&v)) {
        text[i] = *sv;
      } else {
        continue;  // NULL
      }
      values[i] = text[i].c_str();
    }
    PgResult res(PQexecPrepared(conn_, (*st)->name.c_str(), n, values.data(), nullptr, nullptr, 0));
    const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return fail(res.get(), sql);
    return rows(res.get());
  }

  Ok script(const std::string& sql) override {
    if (auto ok = usable(); !ok) return ok;
    return exec(sql);
  }

  Ok begin(bool write) override {
    if (auto ok = usable(); !ok) return ok;
    if (auto r = exec(write ? "BEGIN" : "BEGIN READ ONLY"); !r) return r;
    in_transaction_ = true;
    return true;
  }

  Ok commit() override {
    PgResult res(PQexec(conn_, "COMMIT"));
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) return fail(res.get(), "COMMIT");
    in_transaction_ = false;
    // A transaction that had failed answers COMMIT with ROLLBACK: nothing was stored.
    if (std::strcmp(PQcmdStatus(res.get()), "ROLLBACK") == 0)
      return RegistryError{Failure::kStorage,
                           "database " + where_ + ": the transaction failed earlier and was rolled back"};
    return true;
  }

  void rollback() override {
    in_transaction_ = false;
    if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE)
      PgResult(PQexec(conn_, "ROLLBACK"));
  }

 private:
  struct Prepared {
    std::string name;
    int params = 0;
  };

  // A session lost earlier is re-opened here, outside transactions; inside one the transaction is gone.
  Ok usable() {
    if (PQstatus(conn_) == CONNECTION_OK) return true;
    if (in_transaction_)
      return RegistryError{Failure::kStorage, "lost the connection to PostgreSQL " + where_ +
                                                  " during a transaction; nothing of it was stored"};
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      return RegistryError{Failure::kStorage, "cannot reconnect to PostgreSQL " + where_ + ": " +
                                                  trimmed(PQerrorMessage(conn_))};
    cache_.clear();  // prepared statements belong to the old session
    return setup();
  }

  Ok exec(const std::string& sql) {
    PgResult res(PQexec(conn_, sql.c_str()));
    const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY)
      return fail(res.get(), sql);
    return true;
  }

  RegistryResult<Prepared*> statement(const std::string& sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) return &it->second;
    if (cache_.size() >= kStatementCacheMax) {
      if (auto r = exec("DEALLOCATE ALL"); !r) return r.error_detail();
      cache_.clear();
    }
    Prepared p;
    p.name = "vigil_" + std::to_string(++statements_);
    PgResult made(PQprepare(conn_, p.name.c_str(), sql.c_str(), 0, nullptr));
    if (!made || PQresultStatus(made.get()) != PGRES_COMMAND_OK) return fail(made.get(), sql);
    // The server infers the parameters' types and count; only that many may be sent.
    PgResult described(PQdescribePrepared(conn_, p.name.c_str()));
    if (!described || PQresultStatus(described.get()) != PGRES_COMMAND_OK) return fail(described.get(), sql);
    p.params = PQnparams(described.get());
    return &cache_.emplace(sql, std::move(p)).first->second;
  }

  static Rows rows(PGresult* res) {
    Rows out;
    const int n = PQntuples(res), columns = PQnfields(res);
    out.reserve(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
      Row row;
      row.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.emplace_back(std::monostate{});
          continue;
        }
        const char* v = PQgetvalue(res, r, c);
        switch (PQftype(res, c)) {
          case kInt2Oid:
          case kInt4Oid:
          case kInt8Oid:
          case kOidOid:
            row.emplace_back(static_cast<std::int64_t>(std::strtoll(v, nullptr, 10)));
            break;
          case kFloat4Oid:
          case kFloat8Oid:
          case kNumericOid:
            row.emplace_back(std::strtod(v, nullptr));
            break;
          case kBoolOid:
            row.emplace_back(std::int64_t{v[0] == 't'});
            break;
          default:
            row.emplace_back(std::string(v, static_cast<std::size_t>(PQgetlength(res, r, c))));
        }
      }
      out.push_back(std::move(row));
    }
    return out;
  }

  RegistryError fail(PGresult* res, const std::string& what) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const std::string code = state ? state : "";
    std::string message = res ? trimmed(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) : "";
    if (message.empty()) message = trimmed(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK || code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0)
      return {Failure::kStorage, "lost the connection to PostgreSQL " + where_ + " (" + message +
                                     "); it is re-opened on the next call"};
    if (code.rfind("23", 0) == 0) {
      const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
      return {Failure::kConflict,
              "database " + where_ + ": " + message + (detail ? " (" + trimmed(detail) + ")" : "")};
    }
    if (code == "55P03")
      return {Failure::kBusy, "database " + where_ + " is locked by another writer (waited " +
                                  std::to_string(busy_timeout_ms_) + " ms); try again"};
    if (code == "40001" || code == "40P01")
      return {Failure::kBusy, "database " + where_ + ": " + message + " (concurrent writes); try again"};
    if (what.size() < 400) message += " (in: " + what + ")";
    return {Failure::kStorage, "database " + where_ + ": " + message};
  }

  PGconn* conn_;
  std::string where_;
  int busy_timeout_ms_;
  bool in_transaction_ = false;
  std::uint64_t statements_ = 0;
  std::unordered_map<std::string, Prepared> cache_;
};

RegistryResult<std::unique_ptr<Connection>> connect(const PostgresOptions& o, std::string* where) {
  const std::string redacted = redact_url(o.url);
  // Earlier keywords are defaults: the URL's own parameters (expanded from dbname) override them.
  const char* keywords[] = {"application_name", "connect_timeout", "client_encoding", "dbname", nullptr};
  const char* values[] = {"vigil", "10", "UTF8", o.url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, 1);
  if (!conn)
    return RegistryError{Failure::kStorage, "cannot connect to PostgreSQL " + redacted + ": out of memory"};
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = scrub(trimmed(PQerrorMessage(conn)), password_of(o.url));
    PQfinish(conn);
    if (why.find("does not exist") != std::string::npos)
      why += " (create it first: createdb, or CREATE DATABASE as a superuser)";
    return RegistryError{Failure::kStorage, "cannot connect to PostgreSQL " + redacted + ": " + why};
  }
  const char* host = PQhost(conn);
  const std::string place =
      std::string(PQuser(conn)) + "@" + (host ? host : "") + ":" + PQport(conn) + "/" + PQdb(conn);
  if (where) *where = place;
  auto c = std::make_unique<PostgresConnection>(conn, place, o);
  if (auto r = c->setup(); !r) return r.error_detail();
  return std::unique_ptr<Connection>(std::move(c));
}

class PostgresDatabase : public Database {
 public:
  explicit PostgresDatabase(PostgresOptions o)
      : options_(std::move(o)), pool_([this] { return connect(options_, nullptr); }, options_.connections) {}
  // The first session, opened before the database is shared: it names the server for describe().
  Ok start() {
    auto c = connect(options_, &where_);
    if (!c) return c.error_detail();
    pool_.adopt(std::move(*c));
    return true;
  }
  Dialect dialect() const override { return Dialect::kPostgres; }
  std::string describe() const override { return "postgresql " + where_; }
  RegistryResult<Lease> acquire() override { return pool_.acquire(); }

 private:
  PostgresOptions options_;
  std::string where_;
  ConnectionPool pool_;
};

}  // namespace

RegistryResult<std::unique_ptr<Database>> open_postgres(const PostgresOptions& options) {
  auto db = std::make_unique<PostgresDatabase>(options);
  if (auto ok = db->start(); !ok) return ok.error_detail();
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace vigil::db
