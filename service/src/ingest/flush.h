// What one flush takes from one model and writes: under the model's lock,
// copies of the dirty profiles (one memcpy each) and the closing buckets
// themselves; after the lock is released, their encoding into the flush
// batch (the bulk of a flush's CPU), so ingest of the model waits only for
// the copies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/ingest_options.h"
#include "driftwatch/storage/flush_store.h"
#include "ingest/model_state.h"

namespace driftwatch::service::ingest {

struct FlushSnapshot {
  struct Bucket {
    int64_t start = 0;
    bool closing = false;
    // A backfill delta of a closed bucket: merged into its stored minute
    // rows and rolled up, all of it (`slices` holds every profile).
    bool delta = false;
    // By slice id; null where not taken. Open buckets: the dirty slices, and
    // every first-key slice when "*" must be rewritten. Closing: all.
    std::vector<std::unique_ptr<detectors::ProfileAccumulator>> slices;
    std::vector<int32_t> dirty;  // minute rows to write (not "*")
    bool population_dirty = false;
  };
  int64_t model_key = 0;
  std::shared_ptr<const detectors::ProfileLayout> layout;
  bool derived_all = false;  // "*" is the merge of the first key's slices
  // The first slice key's slices, by value: "*" is their merge, in this
  // order, so its bytes do not depend on slice ids.
  std::vector<std::pair<std::string, int32_t>> first_key;
  std::vector<Bucket> buckets;
};

struct CollectContext {
  int64_t now_ms = 0;          // server clock: idle buckets close by it
  uint64_t collect = 0;        // this collect's number (Flusher::CollectSeq)
  uint64_t committed = 0;      // collects up to it are durable
};

// Drains the model's accumulation queues, moves what the flush commits
// besides profiles (new slices, dedup ids, raw events, progress) into
// `batch`, copies dirty profiles into `snap` and hands it the buckets that
// close and the backfill deltas. A bucket closes once the later of the
// watermark and the server clock is past its end plus the allowed
// lateness, so a model whose traffic stops still rolls up; or early, when
// the dedup ids of open buckets alone pass max_dedup_ids. Before that, the
// ids of closed buckets whose ids are durable leave memory, least recently
// used first, until the model is within max_dedup_ids (counted in
// `totals`).
void CollectFlush(ModelIngestState& state, const IngestOptions& options,
                  const CollectContext& context, IngestTotals* totals,
                  storage::FlushBatch* batch, FlushSnapshot* snap)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu);

// Without any lock: encodes `snap`'s profiles into `batch` (minute upserts,
// minute merges of backfill deltas, and hour and day roll-ups of closing
// buckets and deltas, with the layout they merge with).
void EncodeFlush(const FlushSnapshot& snap, storage::FlushBatch* batch);

}  // namespace driftwatch::service::ingest
