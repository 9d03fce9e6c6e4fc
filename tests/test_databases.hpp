// A scratch database for tests that run on both registry backends: a SQLite file in a fresh temporary
// folder, or a fresh PostgreSQL database (CREATE DATABASE with a unique name, dropped afterwards) on the
// server that VIGIL_TEST_POSTGRES_URL names, e.g. postgresql://vigil@127.0.0.1:5433/postgres.
// Without that variable the PostgreSQL variants skip; `ctest -R postgres_suite` starts a server and sets it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "registry/db.hpp"

namespace vigil::testdb {

enum class Backend { kSqlite, kPostgres };

// Test name suffixes: "Sqlite", "Postgres" (so --gtest_filter='*Postgres*' selects the PostgreSQL runs).
inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// url with its database name (the path) replaced by name; the query string is kept.
inline std::string with_database(const std::string& url, const std::string& name) {
  const auto scheme = url.find("://");
  const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const std::size_t query = url.find('?', start);
  const std::size_t slash = url.find('/', start);
  if (slash == std::string::npos || (query != std::string::npos && slash > query))
    return url.substr(0, query) + "/" + name + (query == std::string::npos ? "" : url.substr(query));
  return url.substr(0, slash + 1) + name + (query == std::string::npos ? "" : url.substr(query));
}

class TestDatabase {
 public:
  explicit TestDatabase(Backend backend) : backend_(backend) {
    static std::atomic<int> counter{0};
    std::random_device rd;
    const std::string unique =
        std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
    if (backend == Backend::kSqlite) {
      dir_ = std::filesystem::temp_directory_path() / ("vigil_db_test_" + unique);
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
      url_ = (dir_ / "v.db").string();
      return;
    }
#if VIGIL_HAVE_POSTGRES
    const char* server = std::getenv("VIGIL_TEST_POSTGRES_URL");
    if (!server || !*server) {
      skip_ =
          "PostgreSQL variant skipped: set VIGIL_TEST_POSTGRES_URL to a scratch server "
          "(postgresql://USER@127.0.0.1:PORT/postgres), or run `ctest -R postgres_suite`, which starts one";
      return;
    }
    server_url_ = server;
    auto admin = db::open_postgres({server_url_, 5000, 1});
    if (!admin) {
      error_ = "VIGIL_TEST_POSTGRES_URL: " + admin.error();
      return;
    }
    admin_ = std::move(*admin);
    name_ = "vigil_test_" + unique;
    auto c = admin_->acquire();
    if (!c) {
      error_ = c.error();
      return;
    }
    if (auto r = (*c)->script("CREATE DATABASE " + name_); !r) {
      error_ = "cannot create the test database: " + r.error();
      return;
    }
    url_ = with_database(server_url_, name_);
#else
    skip_ = "PostgreSQL variant skipped: this vigil was built without libpq";
#endif
  }

  ~TestDatabase() {
    direct_.reset();
    if (admin_ && !name_.empty()) {
      if (auto c = admin_->acquire()) (*c)->script("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  Backend backend() const { return backend_; }
  // Non-empty: this backend cannot run here (GTEST_SKIP with it).
  const std::string& skip() const { return skip_; }
  // Non-empty: it should run but could not be prepared (a failure).
  const std::string& error() const { return error_; }
  // What Registry::open takes: the SQLite file, or the PostgreSQL URL of the fresh database.
  const std::string& url() const { return url_; }
  // The scratch folder (SQLite) or "" (PostgreSQL).
  const std::filesystem::path& dir() const { return dir_; }
  // The server's URL and a session on it, outside the test database (PostgreSQL only).
  const std::string& server_url() const { return server_url_; }
  const std::string& name() const { return name_; }  // the PostgreSQL database's name
  db::Database* admin() { return admin_.get(); }

  // A statement on the test database, on a connection of its own.
  db::Rows sql(const std::string& statement, const std::vector<db::Value>& params = {}) {
    if (!direct_) {
      auto d = db::open_database(url_, 5000, 1);
      if (!d) {
        ADD_FAILURE() << d.error();
        return {};
      }
      direct_ = std::move(*d);
    }
    auto c = direct_->acquire();
    if (!c) {
      ADD_FAILURE() << c.error();
      return {};
    }
    auto rows = (*c)->query(statement, params);
    if (!rows) {
      ADD_FAILURE() << statement << ": " << rows.error();
      return {};
    }
    return std::move(*rows);
  }

  long long count(const std::string& table) {
    auto rows = sql("SELECT COUNT(*) FROM " + table);
    return rows.empty() ? -1 : db::as_int(rows.front().front());
  }

 private:
  Backend backend_;
  std::string url_, skip_, error_, name_, server_url_;
  std::filesystem::path dir_;
  std::unique_ptr<db::Database> admin_, direct_;
};

}  // namespace vigil::testdb
