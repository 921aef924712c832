// What one ingest flush writes, committed as one transaction: the ingest
// ack depends on it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/storage/bucket_store.h"
#include "driftwatch/storage/dedup_store.h"
#include "driftwatch/storage/label_store.h"
#include "driftwatch/storage/model_store.h"
#include "driftwatch/storage/raw_sample_store.h"

namespace driftwatch::storage {

struct FlushBatch {
  std::vector<SliceRecord> new_slices;
  std::vector<BucketRow> minute_upserts;  // insert or replace
  // Minute rows to merge into (backfill of a closed bucket: a delta), like
  // `rollups`; applied after minute_upserts.
  std::vector<BucketRow> minute_merges;
  // Hour / day rows to merge into: the stored profile (if any) is merged
  // with this one, else this one is inserted.
  std::vector<BucketRow> rollups;
  // The profile layout of every model in `minute_merges` or `rollups`, which the store merges
  // with (detectors::MergeSerializedProfiles).
  absl::flat_hash_map<int64_t, std::shared_ptr<const detectors::ProfileLayout>> layouts;
  std::vector<DedupChunk> dedup;
  struct ClosedBucket {
    int64_t model_key = 0;
    int64_t bucket_start_ms = 0;
  };
  std::vector<ClosedBucket> drop_dedup;  // closed buckets whose dedup hashes go
  std::vector<RawEventRow> raw_events;   // insert or ignore (by model_key, event_id)
  struct Progress {
    int64_t model_key = 0;
    int64_t watermark_ms = 0;
    int64_t closed_until_ms = 0;
  };
  std::vector<Progress> progress;
  std::vector<ArrivalCounts> arrivals;  // added to the stored minute's counts
  std::vector<PendingEventRow> pending_events;  // held while a model learns its edges
  std::vector<int64_t> clear_pending;  // models whose held events were replayed (after the inserts)
  std::vector<JoinChunk> join_chunks;  // join state of kept predictions (seq assigned on insert)

  bool empty() const {
    return new_slices.empty() && minute_upserts.empty() && minute_merges.empty() &&
           rollups.empty() && dedup.empty() &&
           drop_dedup.empty() && raw_events.empty() && progress.empty() &&
           arrivals.empty() && pending_events.empty() && clear_pending.empty() &&
           join_chunks.empty();
  }
};

// Thread-safe: commits serialise.
class FlushStore {
 public:
  virtual ~FlushStore() = default;

  // Applies `batch` atomically; returns only once it is durable. On error
  // nothing of the batch is applied. Errors: INVALID_ARGUMENT when a
  // minute_upserts or minute_merges row is not Level::kMinute, a rollups
  // row is not kHour/kDay, or a merged row's model has no entry in
  // `layouts`; DATA_LOSS or FAILED_PRECONDITION (message prefixed with the
  // bucket) when a stored row does not merge with the batch's; FAILED_PRECONDITION when a
  // new_slices entry redefines a stored slice (an identical one is
  // ignored); NOT_FOUND when `progress` names an unknown model. drop_dedup
  // is applied before `dedup`. Progress fields only move forward (max with
  // stored).
  virtual absl::Status Commit(const FlushBatch& batch) = 0;
};

}  // namespace driftwatch::storage
