// Data-quality and instrumentation counters of one profile (one model ×
// slice × bucket): what tells a logging failure from a real shift. Kept
// beside a profile's summaries, serialized with it (docs/formats/profile.md,
// version 4) and merged exactly like them, so any window's data quality is
// a merge of its buckets'. Definitions: docs/data-quality.md.
//
// Pure: no I/O, no clocks (the caller passes receive times). Not
// thread-safe: one owner updates it.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "driftwatch/base/byte_io.h"

namespace driftwatch::detectors {

// Fixed histogram edges (upper bounds, exclusive): bin 0 is below the first
// edge, bin i in [edge[i-1], edge[i]), the last bin at or above the last
// edge. Fixed so that every profile merges with every other.
inline constexpr size_t kDelayBins = 16;
// Receive time - event time, seconds. Bin 0 (< 0) is an event stamped after
// it arrived (client clock ahead).
inline constexpr std::array<double, kDelayBins - 1> kLatenessEdgesSeconds = {
    0, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400};
// Prediction latency (latency_ms), milliseconds.
inline constexpr std::array<double, kDelayBins - 1> kLatencyEdgesMs = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000};

// The bin of `x` among `edges` (see above); NaN goes to bin 0.
inline size_t DelayBin(std::span<const double> edges, double x) {
  size_t i = 0;
  while (i < edges.size() && !(x < edges[i])) ++i;
  return i;
}

// A quantile of a fixed-edge histogram: the upper edge of the bin where the
// cumulative count reaches q (the exact quantile is in that bin, so at most
// the bin's width below what is returned); the last bin returns its lower
// edge. NaN when empty.
double HistogramQuantile(std::span<const uint64_t> counts, std::span<const double> edges,
                         double q);

// Of one score output.
struct ScoreHealthCounts {
  uint64_t zeros = 0;         // exactly 0
  uint64_t ones = 0;          // exactly 1
  uint64_t out_of_range = 0;  // outside the score kind's range (or non-finite)
  uint64_t longest_run = 0;   // longest run of one identical value, in arrival order
  // The run in progress (its value and length), so that the next event,
  // or the next bucket merged after this one, can extend it.
  uint64_t run = 0;
  double last = std::nan("");
};

struct DataQuality {
  // Distinct transformation fingerprints kept per profile; more are
  // counted under kOtherFingerprint.
  static constexpr size_t kMaxFingerprints = 16;
  static constexpr std::string_view kOtherFingerprint = "__other__";

  uint64_t duplicates = 0;      // events dropped as already seen (retries, replays)
  uint64_t unknown_fields = 0;  // events carrying named fields not in the schema
  uint64_t rate_mismatch = 0;   // events whose sample_rate differs from the declared one
  uint64_t hash_unsampled = 0;  // events the declared hash sampling would not keep
  uint64_t latency_observed = 0;  // events with latency_ms > 0
  int64_t newest_event_ms = 0;     // 0: none
  int64_t newest_received_ms = 0;  // the server clock when the newest event arrived
  std::array<uint64_t, kDelayBins> lateness{};  // kLatenessEdgesSeconds
  std::array<uint64_t, kDelayBins> latency{};   // kLatencyEdgesMs
  // Per feature (numeric first, then categorical) invalid values, and per
  // numeric feature those outside its declared [min, max]. Empty: all zero
  // (sized on the first invalid value).
  std::vector<uint64_t> invalid;
  std::vector<uint64_t> out_of_range;
  std::vector<ScoreHealthCounts> scores;  // per score output; empty: none seen
  // (fingerprint, events), at most kMaxFingerprints + 1 entries.
  std::vector<std::pair<std::string, uint64_t>> fingerprints;

  bool empty() const;

  // One accepted event arriving at `received_ms`, its lateness in bin
  // `lateness_bin` (DelayBin of kLatenessEdgesSeconds).
  void AddArrival(int64_t event_time_ms, int64_t received_ms, size_t lateness_bin) {
    ++lateness[lateness_bin];
    if (event_time_ms > newest_event_ms) newest_event_ms = event_time_ms;
    if (received_ms > newest_received_ms) newest_received_ms = received_ms;
  }
  void AddLatency(size_t bin) {
    ++latency[bin];
    ++latency_observed;
  }
  // One event's scores; `in_range(x)` says whether x is within the kind's range.
  template <typename InRange>
  void AddScores(std::span<const double> values, InRange in_range) {
    if (scores.size() < values.size()) scores.resize(values.size());
    for (size_t s = 0; s < values.size(); ++s) {
      ScoreHealthCounts& h = scores[s];
      const double x = values[s];
      h.zeros += x == 0.0;
      h.ones += x == 1.0;
      h.out_of_range += !in_range(x);
      if (x == h.last) {
        ++h.run;
      } else {
        h.run = 1;
        h.last = x;
      }
      if (h.run > h.longest_run) h.longest_run = h.run;
    }
  }
  void AddInvalid(size_t feature, size_t features, bool out_of_range_value, size_t numeric);
  void AddFingerprint(std::string_view fingerprint, uint64_t events = 1);

  // Exact for every counter. A constant run is exact within a bucket;
  // across merged buckets the longest run is the longest of any one
  // bucket's (a run spanning buckets is reported at its longest part).
  void Merge(const DataQuality& other);

  // The section of the profile blob (docs/formats/profile.md).
  void Serialize(base::ByteWriter& w) const;
  // DATA_LOSS on a truncated or corrupt section.
  static absl::Status Deserialize(base::ByteReader& r, DataQuality* out);
};

}  // namespace driftwatch::detectors
