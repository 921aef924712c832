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
  // Longest strings an event may carry, in bytes; an event with a longer
  // one is rejected by its own reason (*_too_long, docs/ingest.md), so a
  // hostile client cannot grow categorical tables, slices or the raw
  // sample by megabytes per value. Categories count columnar dictionary
  // entries too.
  uint32_t max_event_id_bytes = 256;
  uint32_t max_category_bytes = 1024;
  uint32_t max_slice_value_bytes = 256;
  uint32_t max_query_id_bytes = 256;
  // An event for a bucket that has already closed is merged into it as a
  // delta (minute row, hour and day) if the bucket starts within this long
  // before the server clock, deduplicated against the ids the bucket holds
  // (kept in storage as long); older events are too_late. 0 turns backfill
  // off. Default: the default minute-row retention; the server caps it at
  // retention.minute.
  int64_t backfill_horizon_ms = 2 * 86'400'000LL;
  // Cap on the dedup ids held in memory per model (about 18.7 bytes each:
  // the 8-byte hash in the model's set at load <= 0.75, and in its
  // bucket's list), so the default is ~560 MB. Past it, each flush evicts
  // the ids of the least recently used closed buckets (they stay in
  // storage: a later event for such a bucket loads them back first, so
  // dedup stays exact). Only if every held bucket is open does the flush
  // close the oldest early (IngestTotals::early_closes, logged); its later
  // events are then backfill. Between flushes the count may pass the cap
  // by what one flush interval accepts.
  uint64_t max_dedup_ids = 30'000'000;
  // Backfill deltas held between flushes, in slice profiles per model;
  // past it the batch that went over waits for a flush (backpressure), so
  // a shuffled day of history cannot hold a profile per slice per minute.
  uint64_t max_backfill_profiles = 20'000;
  // A model learning edges from its first traffic (RegistryOptions::
  // learn_edges_values) learns them once each learning feature has that
  // many finite values, once it holds this many times as many events
  // (features that are mostly null), or once its first held event is
  // this old on the server clock, whichever comes first.
  int64_t learn_edges_max_wait_ms = 300'000;
  uint32_t learn_edges_max_held_factor = 10;
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
  uint64_t backfilled = 0;  // of accepted: merged into a closed bucket
  // By RejectReasonName; the first event of each reason is the example.
  absl::flat_hash_map<std::string, RejectStat> reasons;

  void Reject(RejectReason reason, std::string_view event_id, std::string message);
  void Merge(const IngestCounts& other);
};

// Monotonic totals since start, for /metrics. Thread-safe.
struct IngestTotals {
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, late_accepted{0}, too_late{0},
      backfilled{0};
  std::atomic<uint64_t> flushes{0}, flush_failures{0}, flushed_rows{0};
  std::atomic<uint64_t> last_flush_us{0};
  std::atomic<uint64_t> early_closes{0};  // buckets closed early by max_dedup_ids
  std::atomic<uint64_t> evicted_buckets{0};  // closed buckets whose ids left memory
  std::atomic<uint64_t> loaded_buckets{0};   // closed buckets whose ids came back from storage

  void Add(const IngestCounts& counts);
};

}  // namespace driftwatch::service
