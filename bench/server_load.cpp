// Load benchmark of the registry server (not a test): starts `vigil serve`'s server in this process on
// loopback, creates a camera token and some vignettes, then posts sightings over HTTP from N client threads
// for a fixed time. Reports the sightings ingested per second (each decided and stored), request latency
// (p50, p99, max) and checks that nothing was lost: the rows stored for the run's camera equal the
// sightings the server acknowledged.
//
//   vigil_server_load                                  # SQLite file in a temporary folder, 1 per request
//   vigil_server_load --batch 50 --seconds 10 --runs 3 # median of 3 runs
//   vigil_server_load --db postgresql://vigil@127.0.0.1:5432/vigil_bench
//
// The clients run on the same machine as the server and take CPU from it: the numbers are a lower bound.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "vigil/registry.hpp"
#include "vigil/server.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Flags {
  std::string db;          // "" : a SQLite file in a temporary folder
  int clients = 4;         // client threads, one keep-alive connection each
  int batch = 1;           // sightings per request
  double seconds = 10.0;   // measured time per run
  int runs = 1;            // the median is reported
  int server_threads = 8;  // request worker threads
  int connections = 4;     // database connections of the registry
  int vignettes = 2000;    // records created first (half the reads are of their plates)
};

struct RunResult {
  double sightings_per_s = 0;
  double requests_per_s = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  long long posted = 0, acknowledged = 0, stored = 0, failed_requests = 0;
  std::string first_error;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// A random Czech-style plate ("5XY6789").
std::string random_plate(std::mt19937& rng) {
  static const char* letters = "ABCDEFHJKLMNPRSTUVXYZ";
  char buf[8];
  std::snprintf(buf, sizeof buf, "%c%c%c%04u", static_cast<char>('1' + rng() % 9), letters[rng() % 21],
                letters[rng() % 21], static_cast<unsigned>(rng() % 10000));
  return buf;
}

// The plates with a vignette (fixed seed: the same for every run).
std::vector<std::string> vignette_plates(int n) {
  std::mt19937 rng(42);
  std::vector<std::string> plates;
  for (int i = 0; i < n; ++i) plates.push_back(random_plate(rng));
  return plates;
}

RunResult run(const Flags& f, vigil::Registry& reg, int port, const std::string& token,
              const std::string& camera, const std::string& tag, const std::vector<std::string>& paid) {
  std::atomic<bool> stop{false};
  std::atomic<long long> posted{0}, acknowledged{0}, failed{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(f.clients));
  std::vector<std::string> errors(static_cast<std::size_t>(f.clients));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < f.clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);  // as cameras should: no Nagle wait between the request's header and body
      cli.set_read_timeout(30, 0);
      const httplib::Headers headers = {{"Authorization", "Bearer " + token}};
      std::mt19937 rng(static_cast<unsigned>(c) * 7919u + 1u);
      auto& lat = latencies[static_cast<std::size_t>(c)];
      long long seq = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        std::string body = "{\"sightings\":[";
        for (int i = 0; i < f.batch; ++i) {
          body += i ? "," : "";
          body += "{\"id\":\"" + tag + "-" + std::to_string(c) + "-" + std::to_string(seq++) +
                  "\",\"camera_id\":\"" + camera + "\",\"text\":\"" +
                  (rng() % 2 ? paid[rng() % paid.size()] : random_plate(rng)) +
                  "\",\"confidence\":0.93,\"country\":\"cz\",\"fits_format\":true,"
                  "\"time\":\"2024-06-05T12:00:00Z\"}";
        }
        body += "]}";
        const auto t0 = Clock::now();
        auto res = cli.Post("/api/sightings", headers, body, "application/json");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        posted += f.batch;
        if (!res || res->status != 200) {
          ++failed;
          if (errors[static_cast<std::size_t>(c)].empty())
            errors[static_cast<std::size_t>(c)] =
                res ? std::to_string(res->status) + " " + res->body : httplib::to_string(res.error());
          continue;
        }
        lat.push_back(ms);
        acknowledged += f.batch;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  RunResult r;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  r.requests_per_s = static_cast<double>(all.size()) / elapsed;
  r.p50_ms = percentile(all, 0.50);
  r.p99_ms = percentile(all, 0.99);
  r.max_ms = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  r.posted = posted;
  r.acknowledged = acknowledged;
  r.failed_requests = failed;
  r.sightings_per_s = static_cast<double>(acknowledged) / elapsed;
  for (const auto& e : errors)
    if (r.first_error.empty()) r.first_error = e;
  // What the database holds for this run (each run has its own camera).
  vigil::SightingQuery q;
  q.camera_id = camera;
  q.limit = 1000;
  for (;;) {
    auto page = reg.sightings(q);
    if (!page) {
      r.first_error = "counting the stored sightings: " + page.error();
      break;
    }
    r.stored += static_cast<long long>(page->size());
    if (page->size() < 1000) break;
    q.after_id = page->back().id;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{
      "Load benchmark of the vignette registry server: sightings/s with decisions, latency, no loss"};
  app.add_option("--db", f.db, "Database URL or SQLite file (default: a SQLite file in a temporary folder)");
  app.add_option("--clients", f.clients, "Client threads (one keep-alive connection each)")
      ->check(CLI::Range(1, 256));
  app.add_option("--batch", f.batch, "Sightings per request")->check(CLI::Range(1, 1000));
  app.add_option("--seconds", f.seconds, "Measured seconds per run")->check(CLI::Range(0.5, 3600.0));
  app.add_option("--runs", f.runs, "Runs; the median is reported")->check(CLI::Range(1, 100));
  app.add_option("--server-threads", f.server_threads, "Server request threads")->check(CLI::Range(1, 256));
  app.add_option("--connections", f.connections, "Database connections")->check(CLI::Range(1, 256));
  app.add_option("--vignettes", f.vignettes, "Vignettes created first")->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);

  fs::path tmp;
  std::string url = f.db;
  if (url.empty()) {
    tmp = fs::temp_directory_path() / ("vigil_server_load_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    url = (tmp / "bench.db").string();
  }
  int status = 0;
  {
    vigil::RegistryOptions o;
    o.connections = f.connections;
    auto opened = vigil::Registry::open(url, o);
    if (!opened) {
      std::cerr << "vigil_server_load: " << opened.error() << "\n";
      return 1;
    }
    auto reg = std::make_shared<vigil::Registry>(std::move(*opened));
    const std::string tag = "load" + std::to_string(std::random_device{}() % 1000000);
    // Half the reads are of plates with a vignette (paid), the others random (unpaid, a few near misses).
    const auto paid = vignette_plates(f.vignettes);
    std::string csv = "plate,country,product,start,order_id\n";
    for (int i = 0; i < f.vignettes; ++i)
      csv +=
          paid[static_cast<std::size_t>(i)] + ",cz,cz-30d,2024-06-01," + tag + "-" + std::to_string(i) + "\n";
    auto imported = reg->import_csv(csv, vigil::ImportMode::kAllOrNothing);
    if (!imported || !imported->committed) {
      std::cerr << "vigil_server_load: cannot create the vignettes: "
                << (imported ? "rows refused" : imported.error()) << "\n";
      return 1;
    }
    vigil::ServerOptions so;
    so.port = 0;
    so.threads = f.server_threads;
    vigil::Server server(reg, so);
    auto port = server.start();
    if (!port) {
      std::cerr << "vigil_server_load: " << port.error() << "\n";
      return 1;
    }
    std::cout << "vigil_server_load: " << reg->describe() << ", " << f.clients << " clients, " << f.batch
              << " sighting(s) per request, " << f.seconds << " s per run, " << f.server_threads
              << " server threads, " << f.connections << " connections, "
              << std::thread::hardware_concurrency() << " CPUs\n";
    std::vector<RunResult> results;
    for (int i = 0; i < f.runs; ++i) {
      const std::string camera = tag + "-r" + std::to_string(i);
      auto t = reg->create_token(vigil::Role::kCamera, camera, "load benchmark");
      if (!t) {
        std::cerr << "vigil_server_load: " << t.error() << "\n";
        return 1;
      }
      auto r = run(f, *reg, *port, t->token, camera, tag + "r" + std::to_string(i), paid);
      std::printf(
          "run %d: %8.0f sightings/s  %7.0f requests/s  p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  "
          "acknowledged %lld  stored %lld  failed requests %lld\n",
          i + 1, r.sightings_per_s, r.requests_per_s, r.p50_ms, r.p99_ms, r.max_ms, r.acknowledged, r.stored,
          r.failed_requests);
      if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.substr(0, 300).c_str());
      if (r.stored != r.acknowledged) {
        std::printf("  LOST: %lld sightings acknowledged but %lld stored\n", r.acknowledged, r.stored);
        status = 1;
      }
      if (r.failed_requests > 0) status = 1;
      results.push_back(r);
    }
    std::sort(results.begin(), results.end(),
              [](const RunResult& a, const RunResult& b) { return a.sightings_per_s < b.sightings_per_s; });
    const auto& m = results[results.size() / 2];
    std::printf("median of %d: %.0f sightings/s, p50 %.2f ms, p99 %.2f ms (that run)%s\n", f.runs,
                m.sightings_per_s, m.p50_ms, m.p99_ms, status ? "; FAILED: see above" : "");
    server.stop();
  }
  if (!tmp.empty()) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }
  return status;
}
