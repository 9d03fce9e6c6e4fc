// Durable delivery of plate events to a vignette registry (`vigil serve`, POST /api/sightings).
//
//   vigil::OutboxOptions o;
//   o.server = "https://registry.example.org";         // vigil serve's base URL
//   o.token = "vgl_...";                                // a camera token for this camera
//   o.clock = vigil::EventClock::kWall;                 // a live camera
//   auto outbox = vigil::Outbox::open("/var/lib/vigil/gate-1.outbox", o);
//   if (!outbox) { std::cerr << outbox.error() << "\n"; return 1; }
//   (*outbox)->start();                                 // the uploader thread
//   auto stream = vigil::Stream::open(*rec, opt, {*outbox});
//   ...                                                 // events are stored, then sent in batches
//   stream->stop(); stream->wait();
//   std::int64_t left = (*outbox)->drain(5.0);          // up to 5 s to send what is still pending
//   (*outbox)->stop();                                  // `left` events wait in the file for the next start
//
// Delivery: on_event() commits the event (the JSON the server accepts, with a wall-clock "time" and the
// evidence JPEGs as base64 under "images") to a SQLite file (WAL, synchronous=FULL) before it returns, so a
// crash or SIGKILL at any moment loses nothing that on_event() returned for. The uploader sends the oldest
// pending events in batches and deletes them only after a 2xx answer; an event may therefore be sent twice
// (killed after the server stored it, before the delete), which the server's idempotency by event id makes
// harmless: every event is stored exactly once.
// Failures: network errors, timeouts, 408, 429 and 5xx are retried with exponential back-off with jitter
// (503/429 wait at least their Retry-After); 401/403 stop uploading for good (wrong token or camera id;
// the events stay in the file); an event the server rejects for good (400/409/413 naming that item) moves
// to the file's dead_letter table with the server's message and the rest go on.
// Thread-safety: every public call is thread-safe; one Outbox may be fed by several streams (each event
// must then carry a camera id the token may post for). One file is used by one Outbox at a time (an open
// Outbox holds an exclusive lock on it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "vigil/common.hpp"
#include "vigil/video.hpp"

namespace vigil {

struct OutboxOptions {
  std::string server;  // base URL of `vigil serve`: "http://host:port" or "https://host/prefix"
  std::string token;   // bearer token: a camera token for the events' camera id
  std::string name;    // names the outbox in log messages (e.g. the camera id); "": the file name
  // The events' clock. kStream (files): "time" is the wall-clock time on_event() was called; kWall (live
  // sources): "time" is the event's last_seen.
  EventClock clock = EventClock::kStream;
  std::size_t image_max_bytes = 512 * 1024;  // each evidence JPEG at most this many bytes (re-encoded at
                                             // lower quality, then smaller, until it fits); 0: no images
  int jpeg_quality = 90;                     // evidence JPEG quality when it fits (0..100)
  std::size_t batch_max = 100;               // events per request (>= 1)
  std::size_t batch_bytes_max = 8 << 20;     // request body at most this (bytes); an event larger than
                                             // this alone is sent alone
  double retry_min_s = 1.0;                  // wait after the first failure in a row (seconds)
  double retry_max_s = 60.0;  // the wait doubles per failure, with jitter, up to this (seconds)
  double timeout_s = 15.0;    // connect, send and answer timeout of one request (seconds)
};

struct OutboxStats {
  std::int64_t pending = 0;     // events in the file waiting for the server
  std::int64_t dead = 0;        // events in the file's dead_letter table (refused by the server for good)
  std::int64_t stored = 0;      // events on_event() stored since open()
  std::int64_t delivered = 0;   // events the server took (2xx) since open(), duplicates included
  std::int64_t duplicates = 0;  // ... of which it already had (sent again after a crash or a lost answer)
  std::int64_t rejected = 0;    // events moved to dead_letter since open()
  std::int64_t failures = 0;    // requests that failed and will be retried, since open()
  bool refused = false;         // the server refused the token (401/403): uploading stopped
  std::string last_error;       // the latest failure, for messages; "" none
};

class Outbox : public EventSink {
 public:
  // Opens (creating) the outbox file and checks the options. Fails naming the file ("cannot open outbox
  // /var/lib/vigil/gate-1.outbox: folder /var/lib/vigil does not exist", "... is in use by another
  // process", "... is not an outbox (not a SQLite database)") or the option ("server: expected a URL
  // starting with http:// or https://, got 'localhost:8080'"). Does not contact the server.
  static Result<std::shared_ptr<Outbox>> open(const std::string& path, OutboxOptions options);
  ~Outbox() override;  // stop()s; pending events stay in the file
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Stores the event (durably) and wakes the uploader. A storage failure (disk full) is logged as an
  // error naming the event and the file; it never throws.
  void on_event(const PlateEvent& event) override;
  // As on_event(), returning the failure instead of logging it.
  Result<bool> store(const PlateEvent& event);

  // Starts the uploader thread (sending what earlier runs left, too); a second call does nothing.
  void start();
  // Waits until nothing is pending, the server refused the token, or `timeout_s` seconds passed; returns
  // the number of events still pending. Needs start().
  std::int64_t drain(double timeout_s);
  // Stops the uploader, aborting a request in flight (its events stay pending), and joins it. Idempotent.
  void stop();

  OutboxStats stats() const;
  const std::string& path() const;

  struct Impl;

 private:
  explicit Outbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The sighting one event is sent as (one line of JSON): event_to_json()'s fields (no "evidence"), plus
// "time" (RFC 3339: `produced` (Unix seconds) for kStream events, last_seen for kWall ones) and, when the
// event has images and image_max_bytes > 0, "images": {"plate": base64 JPEG, "frame": base64 JPEG} (each
// present only when the event has it). Exposed for tests.
std::string event_to_sighting_json(const PlateEvent& event, EventClock clock, double produced,
                                   std::size_t image_max_bytes = 512 * 1024, int jpeg_quality = 90);

// A JPEG of `image` of at most max_bytes: at `quality`, then lower qualities, then halved sizes. ""
// when the image is empty or cannot fit. Exposed for tests.
std::string encode_jpeg_within(const cv::Mat& image, std::size_t max_bytes, int quality = 90);

}  // namespace vigil
