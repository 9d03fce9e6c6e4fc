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
//   GET    /, /ui/{file}                        anyone      the dashboard (ServerOptions::web_dir); its
//                                                            every API call sends the token typed into it
//   GET    /api/me                              any token   the calling token (id, role, camera, note)
//   GET    /metrics                             operator, admin   Prometheus text
//   POST   /api/sightings                       camera (its own camera id only)  batch, idempotent by id;
//                                               all or nothing: a refusal caused by one item names it
//                                               {"error","index","id"}; each item may carry evidence
//                                               "images": {"plate","frame"} (base64 JPEG, image_max_bytes)
//   GET    /api/sightings?camera=&from=&to=&after_id=&before_id=&order=newest|oldest&limit=
//                                               operator, admin   newest first; with after_id the ones
//                                                                 after it, oldest first (live polling)
//   GET    /api/sightings/{id}                  operator, admin   "images": {"plate": bool, "frame": bool}
//   GET    /api/sightings/{id}/plate.jpg        operator, admin   evidence JPEG (image/jpeg); 404 none
//   GET    /api/sightings/{id}/frame.jpg        operator, admin   the same for the frame
//   GET    /api/plates/{plate}/status?at=T      operator, admin   decision for the plate at T (default now)
//   GET    /api/plates/{plate}/history          operator, admin   records and sightings of the plate
//   POST   /api/vignettes                       shop, admin       201 created, 200 same order id again
//   GET    /api/vignettes?plate=P               shop, operator, admin   the plate's vignettes
//   GET    /api/vignettes/{id}                  shop, operator, admin
//   GET    /api/products                        shop, operator, admin   products on sale, zone, today
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
// The lists (sightings, violations, review, history) take the same filters; violations, review and history
// are oldest first by default. A full page of sightings, violations or review names the next one's cursor
// (next_after_id or next_before_id).
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
  // Request worker threads. A connection holds one while its request comes in (an idle one is dropped
  // after 1 s, a stalled one after read_timeout_s without a byte), so a few slow clients must not be able
  // to take them all: 256 leave /health answering in a few ms with 200 idle and 50 slow clients connected.
  // The work done at once is bounded by the registry's database connections, not by these.
  int threads = 256;
  std::size_t body_max_bytes = 1 << 20;     // largest JSON request body (bytes); larger: 413
  std::size_t import_max_bytes = 16 << 20;  // largest CSV import body (bytes)
  std::size_t batch_max = 1000;             // most sightings in one POST
  int read_timeout_s = 10;                  // a client that sends nothing for this long is dropped
  std::string web_dir;                      // the dashboard's files (index.html, app.js, ...); "": none
  // Largest POST /api/sightings body (bytes): evidence images make these larger than other requests.
  std::size_t sightings_max_bytes = 32 << 20;
  // Largest evidence JPEG of a sighting (bytes, decoded); larger: 400 naming the item.
  std::size_t image_max_bytes = 512 * 1024;
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
