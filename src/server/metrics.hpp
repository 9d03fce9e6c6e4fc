// Counters and latency histograms for GET /metrics (Prometheus text format 0.0.4).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include "vigil/registry.hpp"

namespace vigil::server {

class Metrics {
 public:
  void sighting(bool duplicate, Verdict verdict) {
    if (duplicate) {
      ++sightings_duplicate_;
      return;
    }
    ++sightings_stored_;
    ++decisions_[static_cast<std::size_t>(verdict)];
  }
  void batch_rejected() { ++batches_rejected_; }

  // One request to `route` ("POST /api/sightings") that took `seconds` and answered `status`.
  void request(const std::string& route, int status, double seconds) {
    std::lock_guard lock(mutex_);
    auto& h = latency_[route];
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
      if (seconds <= kBuckets[i]) ++h.counts[i];
    ++h.count;
    h.sum += seconds;
    ++responses_[{route, status}];
  }

  std::string render() const {
    std::string s;
    s +=
        "# HELP vigil_sightings_total Sightings received, by result.\n# TYPE vigil_sightings_total counter\n";
    s += "vigil_sightings_total{result=\"stored\"} " + std::to_string(sightings_stored_.load()) + "\n";
    s += "vigil_sightings_total{result=\"duplicate\"} " + std::to_string(sightings_duplicate_.load()) + "\n";
    s += "# HELP vigil_sighting_batches_rejected_total Sighting batches refused as a whole (bad input, "
         "wrong camera, conflict).\n# TYPE vigil_sighting_batches_rejected_total counter\n";
    s += "vigil_sighting_batches_rejected_total " + std::to_string(batches_rejected_.load()) + "\n";
    s += "# HELP vigil_decisions_total Decisions on stored sightings, by kind.\n"
         "# TYPE vigil_decisions_total counter\n";
    for (const Verdict v : {Verdict::kPaid, Verdict::kExempt, Verdict::kUnpaid, Verdict::kReview})
      s += std::string("vigil_decisions_total{decision=\"") + to_string(v) + "\"} " +
           std::to_string(decisions_[static_cast<std::size_t>(v)].load()) + "\n";
    std::lock_guard lock(mutex_);
    s += "# HELP vigil_http_responses_total HTTP responses, by route and status.\n"
         "# TYPE vigil_http_responses_total counter\n";
    for (const auto& [key, n] : responses_)
      s += "vigil_http_responses_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) +
           "\"} " + std::to_string(n) + "\n";
    s += "# HELP vigil_http_request_duration_seconds Time to answer a request, by route.\n"
         "# TYPE vigil_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
      const std::string label = "route=\"" + route + "\"";
      for (std::size_t i = 0; i < kBuckets.size(); ++i)
        s += "vigil_http_request_duration_seconds_bucket{" + label + ",le=\"" + number(kBuckets[i]) + "\"} " +
             std::to_string(h.counts[i]) + "\n";
      s += "vigil_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
      s += "vigil_http_request_duration_seconds_sum{" + label + "} " + number(h.sum) + "\n";
      s += "vigil_http_request_duration_seconds_count{" + label + "} " + std::to_string(h.count) + "\n";
    }
    return s;
  }

 private:
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  struct Histogram {
    std::array<std::uint64_t, 12> counts{};  // cumulative: requests at or under each bound
    std::uint64_t count = 0;
    double sum = 0.0;
  };

  static std::string number(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
  }

  std::atomic<std::uint64_t> sightings_stored_{0}, sightings_duplicate_{0}, batches_rejected_{0};
  std::array<std::atomic<std::uint64_t>, 4> decisions_{};
  mutable std::mutex mutex_;
  std::map<std::string, Histogram> latency_;
  std::map<std::pair<std::string, int>, std::uint64_t> responses_;
};

}  // namespace vigil::server
