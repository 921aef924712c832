// The settings of the ingest path and what it reports back: per-stream
// counts (the IngestAck) and totals since start (/metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "driftwatch/service/reject_reason.h"

namespace driftwatch::service {

struct IngestOptions {
  int64_t bucket_width_ms = 60'000;
  int64_t allowed_lateness_ms = 300'000;  // a bucket closes this long after its end passes the watermark
  int64_t max_future_skew_ms = 300'000;   // event times further ahead of now are rejected
  double raw_sample_rate = 0.01;          // share of events kept raw (hash of event_id)
  int64_t flush_interval_ms = 1000;
  // Cap on the dedup ids held in memory per model, across its open buckets
  // (about 10.7 bytes each: 8-byte hashes at load <= 0.75, so the default
  // is ~540 MB). Degraded mode: an event that would exceed it first closes
  // the model's oldest open bucket early, exactly as the watermark would
  // (rolled up at the next flush, its ids dropped); later events for that
  // bucket are rejected as too_late, so nothing is counted twice. Counted
  // in IngestTotals::early_closes and logged.
  uint64_t max_dedup_ids = 50'000'000;
};

struct RejectStat {
  uint64_t count = 0;
  std::string example_event_id;
  std::string message;
};

// What happened to the events of one or more batches. Not thread-safe.
struct IngestCounts {
  uint64_t batches = 0;
  uint64_t accepted = 0;  // includes late_accepted
  uint64_t duplicates = 0;
  uint64_t rejected = 0;  // includes too_late
  uint64_t late_accepted = 0;
  uint64_t too_late = 0;
  // By RejectReasonName; the first event of each reason is the example.
  absl::flat_hash_map<std::string, RejectStat> reasons;

  void Reject(RejectReason reason, std::string_view event_id, std::string message);
  void Merge(const IngestCounts& other);
};

// Monotonic totals since start, for /metrics. Thread-safe.
struct IngestTotals {
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, late_accepted{0}, too_late{0};
  std::atomic<uint64_t> flushes{0}, flush_failures{0}, flushed_rows{0};
  std::atomic<uint64_t> last_flush_us{0};
  std::atomic<uint64_t> early_closes{0};  // buckets closed early by max_dedup_ids

  void Add(const IngestCounts& counts);
};

}  // namespace driftwatch::service
