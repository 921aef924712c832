// The ingest path: a batch is decoded, each event validated, placed in its
// event-time bucket (watermark and allowed lateness), deduplicated by
// event id, added to its slices' profiles in memory, and group-committed
// to the store by the flusher. The parts live in service/src/ingest/
// (batch_decoder, validate, dedup, apply, model_state, flush, flusher).
//
// Durability contract: Apply() returns a sequence number; WaitDurable(seq)
// returns OK only once every event applied up to seq is committed, so an
// ack sent after it survives kill -9. A retried batch is deduplicated by
// event_id against the ids of its (open) bucket, in memory and in the
// store, so it is never counted twice, across restarts too.
//
// Thread-safe: Apply runs concurrently for different models and serialises
// per model; Flush serialises with itself.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/ingest_options.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/storage/bucket_store.h"
#include "driftwatch/storage/dedup_store.h"
#include "driftwatch/storage/flush_store.h"
#include "driftwatch/v1/ingest.pb.h"

namespace driftwatch::service {

namespace ingest {
class Flusher;
class ModelIngestState;
struct HandOff;
}  // namespace ingest

// The storage ingest uses: flush commits, and on recovery the open
// buckets and their dedup ids. One backend (storage::Store) converts.
struct IngestStorage {
  storage::FlushStore* flush = nullptr;
  storage::BucketStore* buckets = nullptr;
  storage::DedupStore* dedup = nullptr;
  storage::RawSampleStore* held = nullptr;  // events held while a model learns its edges

  template <typename Store>
  IngestStorage(Store* store)  // NOLINT: implicit
      : flush(store), buckets(store), dedup(store), held(store) {}
};

class Ingestor {
 public:
  // Everything passed must outlive the Ingestor.
  Ingestor(const ModelRegistry* registry, IngestStorage storage, const base::Clock* clock,
           IngestOptions options);
  ~Ingestor();  // stops the flusher after a final flush

  // Loads the open buckets and their dedup ids of every registered model
  // (recover the registry first). Call once before serving.
  absl::Status Recover();
  // Starts the background flusher (every flush_interval_ms).
  void StartFlusher();

  // Applies one batch. NOT_FOUND for an unknown model; INVALID_ARGUMENT
  // when the batch as a whole is malformed (columnar lengths that do not
  // add up). Per-event problems are rejections counted in `counts`; the
  // rest of the batch is applied. Returns the sequence to WaitDurable on.
  absl::StatusOr<uint64_t> Apply(const v1::PredictionBatch& batch, IngestCounts* counts);

  // Requests a flush and blocks until `seq` is durable. UNAVAILABLE when
  // storage keeps failing for `timeout_ms` or the ingestor is stopping.
  absl::Status WaitDurable(uint64_t seq, int64_t timeout_ms = 30'000);

  // One flush now. On a storage error, what could not be committed is kept
  // and retried by the next flush.
  absl::Status Flush();

  const IngestTotals& totals() const { return totals_; }
  size_t open_buckets() const;
  const IngestOptions& options() const { return options_; }
  uint64_t durable_seq() const;

 private:
  // The ingest state of a model, created on first use.
  ingest::ModelIngestState& StateOf(const std::shared_ptr<const RegisteredModel>& model)
      ABSL_LOCKS_EXCLUDED(states_mu_);
  std::vector<ingest::ModelIngestState*> States() const ABSL_LOCKS_EXCLUDED(states_mu_);
  absl::Status RecoverModel(ingest::ModelIngestState& state);
  // A model learning its edges: learns them once it holds enough (or has
  // waited long enough), and once they are in (learned here or from an
  // uploaded reference) replays the held events. Full queues go to
  // `handoffs`, drained by the caller once it has released state.mu,
  // which must be held (asserted: the type is incomplete here).
  void MaybeFinishLearning(ingest::ModelIngestState& state, int64_t now_ms,
                           std::vector<ingest::HandOff>* handoffs);
  // The flusher's collect step: every model's share of one flush.
  // `collect` is its number, `committed` the last one whose batch is
  // durable (Flusher::CollectSeq).
  void CollectAll(storage::FlushBatch* batch, uint64_t collect, uint64_t committed);
  // After a commit: models whose backfill it made durable move their
  // backfill generation on (frozen references re-freeze).
  void BackfillCommitted(uint64_t committed) ABSL_LOCKS_EXCLUDED(backfill_mu_);

  struct PendingBackfill {
    uint64_t collect = 0;
    std::shared_ptr<const RegisteredModel> model;
  };
  absl::Mutex backfill_mu_;
  std::vector<PendingBackfill> backfilled_ ABSL_GUARDED_BY(backfill_mu_);

  // Constant after construction.
  const ModelRegistry* const registry_;
  const IngestStorage storage_;
  const base::Clock* const clock_;
  const IngestOptions options_;

  IngestTotals totals_;
  mutable absl::Mutex states_mu_;
  // By model key; never removed, so a returned state stays valid.
  absl::flat_hash_map<int64_t, std::unique_ptr<ingest::ModelIngestState>> states_
      ABSL_GUARDED_BY(states_mu_);
  std::unique_ptr<ingest::Flusher> flusher_;  // last: stopped before the states go
};

}  // namespace driftwatch::service
