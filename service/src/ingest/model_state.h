// What ingest keeps of one model between batches: its open buckets (a
// ProfileAccumulator per slice), the deltas backfilled into closed
// buckets, the dedup index (every event id held in memory, whatever its
// bucket, and which bucket holds it), the watermark and close progress,
// what the next flush must persist, and the accumulation queues.
//
// Thread safety: `mu` is the model's ingest lock; batches of the model and
// the flush's collection serialise on it. A full accumulation queue is
// handed off with a ticket and drained after its batch releases `mu`, in
// ticket order under `drain_mu`, so other batches of the model validate
// and queue meanwhile; a drain writes only into accumulator blocks, which
// stay where they are until the flush, which first waits for every
// hand-off (Quiesce). Lock order: mu, then drain_mu, then spare_mu.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/detectors/accumulation.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/storage/bucket_store.h"
#include "driftwatch/storage/model_store.h"
#include "driftwatch/storage/raw_sample_store.h"
#include "ingest/dedup.h"

namespace driftwatch::service::ingest {

// The ids of one minute bucket (open, closed or backfilled) that ingest
// holds in memory, in the order accepted; the model's EventIdSet holds
// them too. A bucket's ids are held whole or not at all: they come back
// from storage whole (LoadBucketIds) and leave whole (eviction).
struct BucketIds {
  std::vector<uint64_t> hashes;
  size_t collected = 0;      // hashes[0, collected) are in a flush batch
  uint64_t collect_seq = 0;  // the flush collect that took the last of them
  uint64_t touched = 0;      // the batch that last accepted an id (eviction order)
};

// The profiles of one bucket a model is accumulating: an open bucket (its
// minute rows are rewritten at each flush) or the delta backfilled into a
// closed one (merged into the stored rows at the next flush, then gone).
struct OpenBucket {
  // By slice id; null = no event yet.
  std::vector<std::unique_ptr<detectors::ProfileAccumulator>> slices;
  std::vector<std::byte*> blocks;  // slices[id]->block(), or null
  std::vector<uint8_t> dirty;      // changed since the last flush
  BucketIds* ids = nullptr;        // of this bucket, in ModelIngestState::bucket_ids
  size_t profiles = 0;             // non-null slices

  // Marks slice `id` dirty and returns its block, creating the profile.
  std::byte* Block(int32_t id,
                   const std::shared_ptr<const detectors::ProfileAccumulator::Shape>& shape) {
    if (blocks.size() <= static_cast<size_t>(id) || blocks[id] == nullptr) {
      Set(id, std::make_unique<detectors::ProfileAccumulator>(shape));
    }
    dirty[id] = 1;
    return blocks[id];
  }
  void Set(int32_t id, std::unique_ptr<detectors::ProfileAccumulator> profile);
};

// A full queue handed off by a batch, drained once the model's lock is
// released. Tickets are drained in order.
struct HandOff {
  std::unique_ptr<detectors::AccumulationQueue> queue;
  uint64_t ticket = 0;
};

class ModelIngestState {
 public:
  explicit ModelIngestState(std::shared_ptr<const RegisteredModel> model);

  // Constant after construction.
  const std::shared_ptr<const RegisteredModel> model;

  absl::Mutex mu;
  // Of model->layout(); replaced (ResetShape) once learned edges are in.
  std::shared_ptr<const detectors::ProfileAccumulator::Shape> shape ABSL_GUARDED_BY(mu);

  // Learning edges from the first traffic (RegistryOptions::
  // learn_edges_values): accepted events are held whole, in arrival order,
  // and replayed into profiles once the edges are learned. Held events
  // are durable from the flush that collects them (FlushBatch::
  // pending_events) until the flush after the replay clears them.
  bool learning ABSL_GUARDED_BY(mu) = false;
  std::vector<std::string> held ABSL_GUARDED_BY(mu);  // serialized PredictionEvents
  size_t held_collected ABSL_GUARDED_BY(mu) = 0;      // held[0, this) are in a flush batch
  int64_t first_held_ms ABSL_GUARDED_BY(mu) = 0;      // server clock when held[0] came
  // The watermark before held[0]: the replay starts from it, so that it
  // judges each event late or not as its arrival would have.
  int64_t held_watermark_ms ABSL_GUARDED_BY(mu) = 0;
  // Finite values held per learning feature, then per learning score
  // (model->learning_numeric(), learning_scores()).
  std::vector<int> learn_numeric, learn_scores;  // constant after construction
  std::vector<uint64_t> learn_counts ABSL_GUARDED_BY(mu);
  bool clear_held ABSL_GUARDED_BY(mu) = false;  // replayed: the next flush clears storage's copy

  // After learned edges are installed: the shape and queues of the new
  // layout (every hand-off drained first).
  void ResetShape() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::map<int64_t, OpenBucket> buckets ABSL_GUARDED_BY(mu);  // closed ones stay until the flush
  // Deltas for buckets before closed_until_ms, by bucket start.
  std::map<int64_t, OpenBucket> backfill ABSL_GUARDED_BY(mu);
  // The dedup index: every id in bucket_ids, so an event id is a duplicate
  // whatever event time it is re-sent with.
  EventIdSet ids ABSL_GUARDED_BY(mu);
  std::map<int64_t, BucketIds> bucket_ids ABSL_GUARDED_BY(mu);
  uint64_t batches_applied ABSL_GUARDED_BY(mu) = 0;
  int64_t watermark_ms ABSL_GUARDED_BY(mu) = 0;
  int64_t closed_until_ms ABSL_GUARDED_BY(mu) = 0;  // buckets before it are closed
  bool progress_dirty ABSL_GUARDED_BY(mu) = false;
  std::vector<storage::SliceRecord> new_slices ABSL_GUARDED_BY(mu);
  std::vector<storage::RawEventRow> raw ABSL_GUARDED_BY(mu);
  // Join state of kept predictions (label_join_rate), by event-time hour,
  // for the next flush (storage::JoinChunk).
  std::map<int64_t, std::string> join_out ABSL_GUARDED_BY(mu);
  // What this model's traffic lost per minute of arrival (server clock),
  // for the next flush.
  std::map<int64_t, storage::ArrivalCounts> arrivals ABSL_GUARDED_BY(mu);

  // Counts a batch's losses under the minute it arrived in.
  void CountArrival(int64_t now_ms, uint64_t duplicates, uint64_t too_late, uint64_t rejected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (duplicates + too_late + rejected == 0) return;
    const int64_t minute = storage::BucketStart(now_ms, storage::kMinuteMs);
    storage::ArrivalCounts& a = arrivals[minute];
    a.model_key = model->model_key();
    a.minute_start_ms = minute;
    a.duplicates += duplicates;
    a.too_late += too_late;
    a.rejected += rejected;
  }

  // The slice of `value` of key `key_index`, from a cache of the model's
  // directory (the directory takes a lock; a hit here does not). A slice
  // this creates is queued for the next flush.
  int32_t ResolveSlice(int key_index, std::string_view value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Slice profiles held in `backfill` deltas.
  uint64_t BackfillProfiles() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint64_t n = 0;
    for (const auto& [start, delta] : backfill) n += delta.profiles;
    return n;
  }
  // The ids of bucket `start`, created empty if absent.
  BucketIds& IdsOf(int64_t start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return bucket_ids[start]; }
  // Drops bucket `start`'s ids from memory (they stay in storage).
  void EvictBucketIds(std::map<int64_t, BucketIds>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // The queue being filled.
  detectors::AccumulationQueue& queue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return *queue_; }
  // Hands the full queue off with the next ticket (into `out`, drained by
  // DrainHandOffs once mu is released) and goes on with a spare one.
  void HandOffQueue(std::vector<HandOff>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Drains `handoffs` in ticket order and keeps their queues as spares.
  void DrainHandOffs(std::vector<HandOff>* handoffs) ABSL_LOCKS_EXCLUDED(mu);
  // Waits for every hand-off and drains the queue being filled: after it,
  // every applied event is in its profiles (the flush collects then).
  void Quiesce() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Publishes watermark and closed_until to readers that must not wait.
  void PublishProgress() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    model->PublishProgress({watermark_ms, closed_until_ms});
  }

 private:
  std::vector<absl::flat_hash_map<std::string, int32_t>> slice_cache_ ABSL_GUARDED_BY(mu);
  // Per key: its "__other__" slice once the key is full, else -1.
  std::vector<int32_t> full_key_other_ ABSL_GUARDED_BY(mu);
  std::unique_ptr<detectors::AccumulationQueue> queue_ ABSL_GUARDED_BY(mu);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu) = 0;  // hand-offs so far

  absl::Mutex drain_mu_ ABSL_ACQUIRED_AFTER(mu);  // one drain at a time
  uint64_t drained_ ABSL_GUARDED_BY(drain_mu_) = 0;  // hand-offs drained
  absl::CondVar drained_cv_;                          // drained_ moved on

  absl::Mutex spare_mu_ ABSL_ACQUIRED_AFTER(drain_mu_);
  std::vector<std::unique_ptr<detectors::AccumulationQueue>> spare_ ABSL_GUARDED_BY(spare_mu_);
};

}  // namespace driftwatch::service::ingest
