#include "ingest/apply.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/storage/bucket_store.h"
#include "ingest/validate.h"
#include "internal/log.h"

namespace driftwatch::service::ingest {

using detectors::ProfileAccumulator;

BatchApplier::BatchApplier(ModelIngestState& state, const BatchDecoder& decoder,
                           const IngestOptions& options, int64_t now_ms, IngestCounts* counts,
                           IngestTotals* totals, std::vector<HandOff>* handoffs)
    : state_(state),
      model_(*state.model),
      decoder_(decoder),
      options_(options),
      now_ms_(now_ms),
      counts_(counts),
      totals_(totals),
      handoffs_(handoffs),
      view_(decoder.NewView()),
      tuple_ids_(static_cast<size_t>(decoder.slice_tuples()) * model_.slice_key_count(), -1) {}


void BatchApplier::Reject(const Rejection& rejection) {
  counts_->Reject(rejection.reason, view_.event_id, rejection.message);
}

inline bool BatchApplier::Decode(size_t i) {
  if (decoder_.Decode(i, &view_, &rejection_)) return true;
  Reject(rejection_);
  return false;
}

inline bool BatchApplier::Validate() {
  if (ValidateEvent(view_, now_ms_, options_, &rejection_)) return true;
  Reject(rejection_);
  return false;
}

inline OpenBucket* BatchApplier::Place(int64_t bucket_start) {
  if (TooLate(bucket_start)) return nullptr;
  if (state_.dedup_ids >= options_.max_dedup_ids) {
    CloseOldestEarly();
    if (TooLate(bucket_start)) return nullptr;
  }
  return &BucketFor(bucket_start);
}

inline bool BatchApplier::Dedup(OpenBucket& bucket) {
  if (!bucket.ids.Insert(view_.id_hash)) {
    ++counts_->duplicates;
    return false;
  }
  ++state_.dedup_ids;
  bucket.new_ids.push_back(view_.id_hash);
  return true;
}

inline std::span<const int32_t> BatchApplier::ResolveSlices(size_t i) {
  static constexpr int32_t kPopulationOnly[1] = {0};
  const int keys = model_.slice_key_count();
  // "*" is derived from the first key's slices at flush time (each event
  // is in exactly one of them) unless the model has no keys.
  if (keys == 0) return kPopulationOnly;
  const int tuple = decoder_.SliceTuple(i);
  if (tuple >= 0) {
    // Columnar: each distinct slice tuple resolves once per batch.
    std::span<int32_t> ids(tuple_ids_.data() + static_cast<size_t>(tuple) * keys, keys);
    if (ids[0] < 0) {
      for (int k = 0; k < keys; ++k) ids[k] = state_.ResolveSlice(k, decoder_.TupleValue(tuple, k));
    }
    return ids;
  }
  slice_ids_.resize(keys);
  for (int k = 0; k < keys; ++k) slice_ids_[k] = state_.ResolveSlice(k, decoder_.SliceValue(i, k));
  return slice_ids_;
}

inline uint64_t BatchApplier::InvalidNumericValues() const {
  // Nearly every event has only finite values (counted while decoding).
  if (view_.non_finite == 0) return 0;
  // NaN is how a client sends null; a null where the schema forbids it is
  // also an invalid value, while an allowed null is not.
  uint64_t invalid = view_.non_finite;
  for (int f = 0; f < model_.numeric_count(); ++f) {
    if (std::isnan(view_.numeric[f]) && model_.NumericNullable(f)) --invalid;
  }
  return invalid;
}

uint64_t BatchApplier::AddCategorical(double weight) {
  uint64_t invalid = 0;
  for (int f = 0; f < model_.categorical_count(); ++f) {
    if (view_.categorical_null[f]) {
      invalid += !model_.CategoricalNullable(f);
      for (ProfileAccumulator* p : profiles_) p->categorical()[f].AddMissing(weight);
      continue;
    }
    std::string_view v = view_.categorical[f];
    if (const auto* allowed = model_.AllowedValues(f);
        allowed != nullptr && !allowed->contains(base::Sv(v))) {
      ++invalid;
      v = base::kOther;
    }
    for (ProfileAccumulator* p : profiles_) p->categorical()[f].Add(v, weight);
  }
  return invalid;
}

inline void BatchApplier::Accumulate(OpenBucket& bucket, std::span<const int32_t> slices) {
  const bool late = view_.event_time_ms < state_.watermark_ms;
  const double w = 1.0 / view_.sample_rate;
  detectors::AccumulationQueue& queue = state_.queue();
  for (int32_t id : slices) queue.AddTarget(bucket.Block(id, state_.shape));
  // Categorical values are added now; numeric values and scores wait in
  // the queue.
  uint64_t invalid = InvalidNumericValues();
  if (model_.categorical_count() > 0) {
    profiles_.clear();
    for (int32_t id : slices) profiles_.push_back(bucket.slices[id].get());
    invalid += AddCategorical(w);
  }
  queue.Push(view_.numeric, view_.scores, w, late, invalid);
  if (view_.event_time_ms > state_.watermark_ms) {
    state_.watermark_ms = view_.event_time_ms;
    state_.progress_dirty = true;
  }
  ++counts_->accepted;
  counts_->late_accepted += late;
  if (state_.queue().full()) state_.HandOffQueue(handoffs_);
}

void BatchApplier::KeepRaw(size_t i) {
  storage::RawEventRow row;
  row.model_key = model_.model_key();
  row.event_id = std::string(view_.event_id);
  row.event_time_ms = view_.event_time_ms;
  row.received_at_ms = now_ms_;
  row.event = decoder_.SerializeEvent(i, view_);
  state_.raw.push_back(std::move(row));
}

inline bool BatchApplier::TooLate(int64_t bucket_start) {
  if (bucket_start >= state_.closed_until_ms &&
      bucket_start + options_.bucket_width_ms + options_.allowed_lateness_ms >
          state_.watermark_ms) {
    return false;
  }
  CountTooLate();
  return true;
}

void BatchApplier::CountTooLate() {
  ++counts_->too_late;
  counts_->Reject(RejectReason::kTooLate, view_.event_id,
                  absl::StrCat("event_time_ms ", view_.event_time_ms,
                               " falls in a bucket already closed (watermark ",
                               state_.watermark_ms, ", allowed lateness ",
                               options_.allowed_lateness_ms, " ms)"));
}

// The max_dedup_ids degraded mode: closes the oldest open bucket now, as
// the watermark would later. Its profiles stay (queued values still land
// in them) and are rolled up by the next flush; its ids go.
void BatchApplier::CloseOldestEarly() {
  auto it = state_.buckets.lower_bound(state_.closed_until_ms);
  if (it == state_.buckets.end()) return;
  OpenBucket& bucket = it->second;
  const size_t dropped = bucket.ids.size();
  state_.dedup_ids -= dropped;
  bucket.ids = EventIdSet();
  bucket.new_ids = std::vector<uint64_t>();  // the close drops its stored ids too
  state_.closed_until_ms = it->first + options_.bucket_width_ms;
  state_.progress_dirty = true;
  ++totals_->early_closes;
  internal::LogWarn("dedup id cap reached: closed the oldest open bucket early",
                    {{"model_key", absl::StrCat(model_.model_key())},
                     {"bucket_start_ms", absl::StrCat(it->first)},
                     {"ids_dropped", absl::StrCat(dropped)},
                     {"max_dedup_ids", absl::StrCat(options_.max_dedup_ids)}});
}

inline OpenBucket& BatchApplier::BucketFor(int64_t bucket_start) {
  if (cached_bucket_ != nullptr && cached_start_ == bucket_start) return *cached_bucket_;
  return NewBucket(bucket_start);
}

OpenBucket& BatchApplier::NewBucket(int64_t bucket_start) {
  cached_start_ = bucket_start;
  auto [it, created] = state_.buckets.try_emplace(bucket_start);
  if (created) {
    // Size the dedup set like the fullest open bucket so that it rarely
    // rehashes while it fills.
    size_t expect = 0;
    for (const auto& [start, other] : state_.buckets) expect = std::max(expect, other.ids.size());
    it->second.ids.Reserve(std::min<uint64_t>(expect, options_.max_dedup_ids));
  }
  cached_bucket_ = &it->second;
  return *cached_bucket_;
}

// Starts loading the dedup slot of event i, which comes soon (a cache and
// TLB miss in a table of millions).
inline void BatchApplier::PrefetchId(size_t i) {
  const int64_t t = decoder_.event_time_ms(i);
  if (t <= 0) return;  // not validated yet: may be anything
  const int64_t start = storage::BucketStart(t, options_.bucket_width_ms);
  if (cached_bucket_ != nullptr && cached_start_ == start) {
    cached_bucket_->ids.Prefetch(decoder_.id_hash(i));
    return;
  }
  auto it = state_.buckets.find(start);
  if (it != state_.buckets.end()) it->second.ids.Prefetch(decoder_.id_hash(i));
}

// The pipeline, with every step inlined (defined above).
void BatchApplier::Run() {
  state_.mu.AssertHeld();
  const size_t n = decoder_.size();
  for (size_t i = 0; i < n; ++i) {
    if (i + kIdAhead < n) PrefetchId(i + kIdAhead);
    if (!Decode(i) || !Validate()) continue;
    OpenBucket* bucket =
        Place(storage::BucketStart(view_.event_time_ms, options_.bucket_width_ms));
    if (bucket == nullptr || !Dedup(*bucket)) continue;
    Accumulate(*bucket, ResolveSlices(i));
    if (Sampled(view_.id_hash)) KeepRaw(i);
  }
}

}  // namespace driftwatch::service::ingest
