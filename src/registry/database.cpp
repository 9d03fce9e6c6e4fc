// Which backend a database URL names, and URLs made safe to show.
#include <algorithm>

#include "registry/db.hpp"

namespace vigil::db {

bool is_postgres_url(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

std::string redact_url(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  std::string s = url;
  // scheme://user:password@host...: the user part ends at the last '@' before the path or query.
  const std::size_t start = scheme + 3;
  const std::size_t end = std::min(s.find('/', start), s.find('?', start));
  const std::size_t at = s.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at != std::string::npos && at >= start) {
    const std::size_t colon = s.find(':', start);
    if (colon != std::string::npos && colon < at) s.replace(colon + 1, at - colon - 1, "***");
  }
  // ...?password=secret&...
  for (std::size_t pos = s.find('?'); pos != std::string::npos; pos = s.find('&', pos + 1)) {
    if (s.compare(pos + 1, 9, "password=") != 0) continue;
    const std::size_t value = pos + 10;
    const std::size_t stop = s.find('&', value);
    s.replace(value, (stop == std::string::npos ? s.size() : stop) - value, "***");
  }
  return s;
}

RegistryResult<std::unique_ptr<Database>> open_database(const std::string& url, int busy_timeout_ms,
                                                        int connections) {
  if (is_postgres_url(url)) {
#if VIGIL_HAVE_POSTGRES
    return open_postgres({url, busy_timeout_ms, connections});
#else
    return RegistryError{Failure::kStorage,
                         "cannot open " + redact_url(url) +
                             ": this vigil was built without PostgreSQL support (install libpq-dev and "
                             "rebuild), or use a SQLite file (--db vigil.db)"};
#endif
  }
  if (const auto scheme = url.find("://"); scheme != std::string::npos && url.rfind("sqlite:", 0) != 0)
    return RegistryError{Failure::kInvalid, "database '" + redact_url(url) + "': unknown URL scheme '" +
                                                url.substr(0, scheme) +
                                                "' (use postgresql://... or a SQLite file path)"};
  const std::string path = url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url;
  if (path.empty()) return RegistryError{Failure::kInvalid, "database: empty path"};
  return open_sqlite({path, busy_timeout_ms, connections});
}

}  // namespace vigil::db

namespace vigil {

std::string redact_database_url(const std::string& url) { return db::redact_url(url); }

}  // namespace vigil
