// Applies the events of one decoded batch to one model, under the model's
// ingest lock. Each event goes through the same named steps, in order:
//
//   Decode -> Validate -> Place (its open bucket, or the delta of a closed
//          one; too late?) -> Dedup -> ResolveSlices -> Accumulate
//          -> KeepRaw (if sampled)
//
// Slices are resolved only once an event is accepted, so a rejected, too
// late or duplicate event never creates a slice or uses up a key's cap.
// Dedup is by event id across every bucket whose ids are in memory; before
// the loop, the ids of the closed buckets the batch backfills are loaded
// from storage if memory no longer holds them (LoadBackfilledBuckets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "driftwatch/storage/dedup_store.h"
#include "driftwatch/service/ingest_options.h"
#include "ingest/batch_decoder.h"
#include "ingest/model_state.h"

namespace driftwatch::service::ingest {

// Not thread-safe: lives for one batch, with state.mu held throughout.
class BatchApplier {
 public:
  // Counts go to `counts`, bucket loads to `totals`; full accumulation
  // queues are handed off into `handoffs` (drained by the caller once it
  // has released state.mu). `dedup` gives the stored ids of closed buckets.
  BatchApplier(ModelIngestState& state, const BatchDecoder& decoder, const IngestOptions& options,
               int64_t now_ms, storage::DedupStore* dedup, IngestCounts* counts,
               IngestTotals* totals, std::vector<HandOff>* handoffs);

  // A replay of events held while the model learned its edges: they were
  // validated and deduplicated when they came, so only placed and
  // accumulated now (counts are the caller's to discard).
  BatchApplier& Replay() {
    replay_ = true;
    return *this;
  }

  // Applies every event of the batch; state.mu must be held (asserted: the
  // analysis cannot name the caller's mutex through this object). Fails,
  // before any event is applied, only if storage cannot give the ids of a
  // closed bucket the batch backfills (the batch can be retried).
  absl::Status Run();

 private:
  // How many events ahead dedup slots are prefetched.
  static constexpr size_t kIdAhead = 8;

  // The steps run once per event: inlined into Run, so that naming them
  // costs nothing on the hot path.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Decode(size_t i);
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Validate();
  ABSL_ATTRIBUTE_ALWAYS_INLINE OpenBucket* Place(int64_t bucket_start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Dedup(OpenBucket& bucket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  ABSL_ATTRIBUTE_ALWAYS_INLINE std::span<const int32_t> ResolveSlices(size_t i)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // The value of slice key `k` of event `i` (of columnar tuple `tuple`
  // when >= 0): an input key's as sent, a crossing's composed from its
  // parts' (valid until the next call).
  std::string_view KeyValue(size_t i, int tuple, int k);
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Accumulate(OpenBucket& bucket,
                                               std::span<const int32_t> slices)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  void KeepRaw(size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // If the event is in the label join's sample (label_join_rate): its join
  // record, for the next flush (docs/formats/join_state.md).
  ABSL_ATTRIBUTE_ALWAYS_INLINE void KeepJoinState(size_t i, std::span<const int32_t> slices)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // While the model learns its edges: keeps the accepted event whole
  // instead of accumulating it.
  void Hold(size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // Moves the watermark to the event's time (bounded by the server clock).
  ABSL_ATTRIBUTE_ALWAYS_INLINE void AdvanceWatermark() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);

  absl::Status LoadBackfilledBuckets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  void CountTooLate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  ABSL_ATTRIBUTE_ALWAYS_INLINE OpenBucket& BucketFor(int64_t bucket_start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  OpenBucket& NewBucket(int64_t bucket_start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  ABSL_ATTRIBUTE_ALWAYS_INLINE void PrefetchId(size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // The event's numeric values and scores that the schema does not allow
  // (null where not nullable, NaN / +-Inf, outside the declared range);
  // the numeric features among them go to invalid_features_.
  ABSL_ATTRIBUTE_ALWAYS_INLINE uint64_t InvalidNumericValues();
  // The event's data-quality counts, into profiles_ (docs/data-quality.md).
  ABSL_ATTRIBUTE_ALWAYS_INLINE void AddQuality() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // A duplicate: counted in the bucket profile of each of its slices.
  void CountDuplicate(size_t i, OpenBucket& bucket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // Adds the event's categorical values to profiles_; returns how many the
  // schema does not allow (they count as "__other__").
  uint64_t AddCategorical(double weight);
  bool Sampled(uint64_t hash) const {
    return static_cast<double>(hash >> 11) * 0x1.0p-53 < options_.raw_sample_rate;
  }
  void Reject(const Rejection& rejection);

  ModelIngestState& state_;
  const RegisteredModel& model_;
  const BatchDecoder& decoder_;
  const IngestOptions& options_;
  const int64_t now_ms_;
  // Closed buckets starting before it are past the backfill horizon.
  const int64_t horizon_start_ms_;
  storage::DedupStore* const dedup_;
  IngestCounts* const counts_;
  IngestTotals* const totals_;
  std::vector<HandOff>* const handoffs_;

  EventView view_;     // the event in the pipeline
  Rejection rejection_;
  std::vector<int32_t> slice_ids_;  // of the event in the pipeline
  std::vector<std::string_view> cross_parts_;  // KeyValue's scratch
  std::string cross_value_;
  std::vector<int32_t> tuple_ids_;  // columnar: per dictionary tuple, its keys' slices; -1 unresolved
  std::vector<detectors::ProfileAccumulator*> profiles_;  // of the event, for categorical values
  // Of the event: features with an invalid value (numeric index, or
  // numeric_count + categorical index), and whether each was out of range.
  std::vector<uint32_t> invalid_features_;
  std::vector<uint8_t> invalid_out_of_range_;
  OpenBucket* cached_bucket_ = nullptr;  // open or delta: a start is one or the other
  int64_t cached_start_ = 0;
  bool cached_backfill_ = false;
  bool replay_ = false;
  // Constant per batch: whether the model keeps join state, and how.
  const bool join_ = false;
  const double join_rate_ = 1.0;
  const bool join_ranked_ = false;
  const bool join_class_probs_ = false;
  // Constant per batch: the declared sampling checks.
  const double declared_rate_ = 0;
  const bool hash_sampled_ = false;
  std::string* join_chunk_ = nullptr;  // state_.join_out[join_hour_]
  int64_t join_hour_ = 0;
};

}  // namespace driftwatch::service::ingest
