// The registry's HTTP API (JSON), as run by `vigil serve`.
//
//   auto reg = vigil::Registry::open("vigil.db");
//   vigil::Server server(std::make_shared<vigil::Registry>(std::move(*reg)), {.port = 0});
//   auto port = server.start();                  // serving on background threads
//   ...                                          // curl -H "Authorization: Bearer vgl_..." ...
//   server.stop();
//
// Endpoints (roles that may call them; every /api call needs "Authorization: Bearer <token>"):
//   GET    /health                              anyone      {"status":"ok","schema_version":2,...}
//   GET    /metrics                             operator, admin   Prometheus text
//   POST   /api/sightings                       camera (its own camera id only)  batch, idempotent by id
//   GET    /api/sightings/{id}                  operator, admin
//   GET    /api/plates/{plate}/status?at=T      operator, admin   decision for the plate at T (default now)
//   GET    /api/plates/{plate}/history          operator, admin   records and sightings of the plate
//   POST   /api/vignettes                       shop, admin       201 created, 200 same order id again
//   GET    /api/vignettes/{id}                  shop, operator, admin
//   DELETE /api/vignettes/{id}                  shop, admin       refund
//   POST   /api/vignettes/import?mode=all|valid shop, admin       CSV; 422 and nothing stored when mode=all
//                                                                 finds bad rows
//   POST   /api/exemptions, DELETE /api/exemptions/{id}           admin
//   GET    /api/violations?camera=&from=&to=&after_id=&limit=     operator, admin
//   GET    /api/review?camera=&from=&to=&after_id=&limit=         operator, admin
//   POST   /api/review/{id}/resolve             operator, admin   {"action":"confirm_unpaid"|"dismiss"|
//                                                                  "correct","plate":...,"note":...}
//   GET/POST /api/tokens, DELETE /api/tokens/{id}                 admin
//   GET    /api/cameras                         operator, admin;  POST /api/cameras  admin
// Failures answer {"error": "<what is wrong, naming the field>"} with 400 (malformed, wrong type, unknown
// field, bad plate), 401 (no or unknown token), 403 (role), 404, 409 (conflict), 413 (too large),
// 415 (content type), 422 (CSV rows rejected), 503 (database busy; Retry-After).
// Thread-safety: start() and stop() may be called from any thread; requests are served concurrently.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "vigil/common.hpp"
#include "vigil/registry.hpp"

namespace vigil {

struct ServerOptions {
  std::string bind = "127.0.0.1";           // address to listen on ("0.0.0.0": every interface)
  int port = 8080;                          // TCP port; 0 picks a free one (see Server::port())
  int threads = 8;                          // request worker threads
  std::size_t body_max_bytes = 1 << 20;     // largest JSON request body (bytes); larger: 413
  std::size_t import_max_bytes = 16 << 20;  // largest CSV import body (bytes)
  std::size_t batch_max = 1000;             // most sightings in one POST
  int read_timeout_s = 10;                  // a client that sends nothing for this long is dropped
};

class Server {
 public:
  Server(std::shared_ptr<Registry> registry, ServerOptions options = {});
  Server(Server&&) noexcept;
  Server& operator=(Server&&) noexcept;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();  // stops

  // Binds and starts serving on background threads; returns the port. Fails naming the address
  // ("cannot listen on 127.0.0.1:8080: address in use or not available").
  Result<int> start();
  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void stop();
  int port() const;
  std::string url() const;  // "http://127.0.0.1:8080"

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
