// The ingest path: validate -> dedup -> bucket (event time, watermark) ->
// per-slice profiles in memory -> group-committed flushes to the store.
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

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/model_runtime.h"
#include "driftwatch/storage/store.h"
#include "driftwatch/v1/ingest.pb.h"

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
  RuntimeOptions runtime;
};

struct RejectStat {
  uint64_t count = 0;
  std::string example_event_id;
  std::string message;
};

// What happened to the events of one or more batches.
struct IngestCounts {
  uint64_t batches = 0;
  uint64_t accepted = 0;  // includes late_accepted
  uint64_t duplicates = 0;
  uint64_t rejected = 0;  // includes too_late
  uint64_t late_accepted = 0;
  uint64_t too_late = 0;
  absl::flat_hash_map<std::string, RejectStat> reasons;

  void Reject(std::string_view reason, std::string_view event_id, std::string message);
  void Merge(const IngestCounts& other);
};

// Monotonic totals since start, for /metrics.
struct IngestTotals {
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, late_accepted{0}, too_late{0};
  std::atomic<uint64_t> flushes{0}, flush_failures{0}, flushed_rows{0};
  std::atomic<uint64_t> last_flush_us{0};
  std::atomic<uint64_t> early_closes{0};  // buckets closed early by max_dedup_ids
};

class Ingestor {
 public:
  // `store` and `clock` must outlive the Ingestor.
  Ingestor(storage::Store* store, const base::Clock* clock, IngestOptions options);
  ~Ingestor();  // stops the flusher after a final flush

  // Loads models, slices, open buckets and their dedup ids from the store.
  // Call once before serving.
  absl::Status Recover();
  // Starts the background flusher (every flush_interval_ms).
  void StartFlusher();

  // Registers a model version (idempotent for an identical schema;
  // ALREADY_EXISTS for a different one; INVALID_ARGUMENT for a bad schema).
  absl::StatusOr<v1::ModelSchema> RegisterModel(v1::ModelSchema schema, bool* created);
  std::vector<v1::ModelSchema> ListModels() const;

  // Applies one batch. NOT_FOUND for an unknown model; INVALID_ARGUMENT
  // when the batch as a whole is malformed (columnar lengths that do not
  // add up). Per-event problems are rejections counted in `counts`; the
  // rest of the batch is applied. Returns the sequence to WaitDurable on.
  absl::StatusOr<uint64_t> Apply(const v1::PredictionBatch& batch, IngestCounts* counts);

  // Requests a flush and blocks until `seq` is durable. UNAVAILABLE when
  // storage keeps failing for `timeout_ms` or the ingestor is stopping.
  absl::Status WaitDurable(uint64_t seq, int64_t timeout_ms = 30'000);

  // One flush now. Thread-safe. On a storage error, what could not be
  // committed is kept and retried by the next flush.
  absl::Status Flush();

  // Read side for reports: the model runtime for a ref (empty version:
  // the latest registered), and its progress.
  struct ModelView {
    std::shared_ptr<const ModelRuntime> runtime;
    int64_t watermark_ms = 0;
    int64_t closed_until_ms = 0;
  };
  absl::StatusOr<ModelView> FindModel(const v1::ModelRef& ref) const;
  // Slice id for `key=value` of a model, under the model's lock.
  std::optional<int32_t> FindSlice(const v1::ModelRef& ref, std::string_view key,
                                   std::string_view value) const;
  // Every slice record of a model.
  std::vector<storage::SliceRecord> Slices(const v1::ModelRef& ref) const;

  // The profile layout of a model by its store key (nullptr if unknown).
  std::shared_ptr<const detectors::ProfileLayout> LayoutFor(int64_t model_key) const;

  const IngestTotals& totals() const { return totals_; }
  size_t open_buckets() const;
  const IngestOptions& options() const { return options_; }
  uint64_t durable_seq() const { return durable_seq_.load(); }

 private:
  struct ModelState;
  struct OpenBucket;
  class EventSink;
  struct FlushSnapshot;

  std::shared_ptr<ModelState> Lookup(const v1::ModelRef& ref) const;
  absl::StatusOr<std::shared_ptr<ModelState>> AddModel(const storage::ModelRecord& record);
  // Under m.mu: drains the apply queue, moves what the flush commits
  // besides profiles into `batch`, copies dirty profiles into `snap` and
  // hands it the buckets that close.
  void CollectFlush(ModelState& m, storage::FlushBatch* batch, FlushSnapshot* snap);
  // Without any lock: encodes `snap`'s profiles into `batch`.
  static void EncodeFlush(const FlushSnapshot& snap, storage::FlushBatch* batch);
  // The serialized "*" of snap.buckets[bucket]; nullopt when it has no
  // slice of the first key.
  static std::optional<std::string> PopulationProfile(const FlushSnapshot& snap, size_t bucket);
  void FlusherLoop();

  storage::Store* const store_;
  const base::Clock* const clock_;
  const IngestOptions options_;

  mutable std::shared_mutex models_mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<ModelState>> models_;
  std::map<std::string, std::shared_ptr<ModelState>> latest_;  // by model id
  std::vector<std::shared_ptr<ModelState>> model_list_;

  std::atomic<uint64_t> applied_seq_{0};
  std::atomic<uint64_t> durable_seq_{0};
  std::mutex flush_mu_;                        // one flush at a time
  std::unique_ptr<storage::FlushBatch> retry_;  // guarded by flush_mu_

  std::mutex wait_mu_;
  std::condition_variable wait_cv_;     // durable_seq_ advanced, or stop
  std::condition_variable flusher_cv_;  // a flush was requested, or stop
  bool flush_requested_ = false;        // guarded by wait_mu_
  bool stopping_ = false;               // guarded by wait_mu_
  std::thread flusher_;

  IngestTotals totals_;
};

// Stable 64-bit hash of an event id (persisted: never change it). Never 0.
uint64_t EventIdHash(std::string_view event_id);

}  // namespace driftwatch::service
