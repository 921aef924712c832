#include "ingest/apply.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/sampling.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/time_format.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/storage/bucket_store.h"
#include "ingest/validate.h"
#include "labels/join_record.h"
#include "internal/log.h"

namespace driftwatch::service::ingest {

using detectors::ProfileAccumulator;

BatchApplier::BatchApplier(ModelIngestState& state, const BatchDecoder& decoder,
                           const IngestOptions& options, int64_t now_ms,
                           storage::DedupStore* dedup, IngestCounts* counts, IngestTotals* totals,
                           std::vector<HandOff>* handoffs)
    : state_(state),
      model_(*state.model),
      decoder_(decoder),
      options_(options),
      now_ms_(now_ms),
      horizon_start_ms_(options.backfill_horizon_ms > 0
                            ? storage::BucketStart(now_ms - options.backfill_horizon_ms,
                                                   options.bucket_width_ms)
                            : std::numeric_limits<int64_t>::min()),
      dedup_(dedup),
      counts_(counts),
      totals_(totals),
      handoffs_(handoffs),
      view_(decoder.NewView()),
      tuple_ids_(static_cast<size_t>(decoder.slice_tuples()) * model_.slice_key_count(), -1),
      join_(model_.joins_labels()),
      join_rate_(model_.label_join_rate()),
      join_ranked_(model_.schema().score_kind() == v1::SCORE_KIND_RANKING),
      join_class_probs_(model_.schema().score_kind() == v1::SCORE_KIND_MULTICLASS_PROBABILITIES),
      declared_rate_(model_.declared_sample_rate()),
      hash_sampled_(model_.hash_sampled()) {}


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

// A bucket that starts before the backfill horizon is too late; one at or
// after closed_until is open (created if need be; the next flush closes
// it if its time has passed); one before it gets a delta (unless backfill
// is off).
inline OpenBucket* BatchApplier::Place(int64_t bucket_start) {
  if (bucket_start < horizon_start_ms_ ||
      (bucket_start < state_.closed_until_ms && options_.backfill_horizon_ms <= 0)) {
    CountTooLate();
    return nullptr;
  }
  return &BucketFor(bucket_start);
}

inline bool BatchApplier::Dedup(OpenBucket& bucket) {
  if (!state_.ids.Insert(view_.id_hash)) {
    ++counts_->duplicates;
    return false;
  }
  bucket.ids->hashes.push_back(view_.id_hash);
  bucket.ids->touched = state_.batches_applied;
  return true;
}

inline std::span<const int32_t> BatchApplier::ResolveSlices(size_t i) {
  static constexpr int32_t kPopulationOnly[1] = {0};
  const int keys = model_.slice_key_count();
  const int inputs = model_.input_slice_key_count();
  // "*" is derived from the first key's slices at flush time (each event
  // is in exactly one of them) unless the model has no keys.
  if (keys == 0) return kPopulationOnly;
  const int tuple = decoder_.SliceTuple(i);
  if (tuple >= 0) {
    // Columnar: each distinct slice tuple resolves once per batch.
    std::span<int32_t> ids(tuple_ids_.data() + static_cast<size_t>(tuple) * keys, keys);
    if (ids[0] < 0) {
      for (int k = 0; k < inputs; ++k) {
        ids[k] = state_.ResolveSlice(k, decoder_.TupleValue(tuple, k));
      }
      for (int k = inputs; k < keys; ++k) ids[k] = state_.ResolveSlice(k, KeyValue(i, tuple, k));
    }
    return ids;
  }
  slice_ids_.resize(keys);
  // The keys events send, then the crossings (composed; none in most models).
  for (int k = 0; k < inputs; ++k) {
    slice_ids_[k] = state_.ResolveSlice(k, decoder_.SliceValue(i, k));
  }
  for (int k = inputs; k < keys; ++k) slice_ids_[k] = state_.ResolveSlice(k, KeyValue(i, -1, k));
  return slice_ids_;
}

std::string_view BatchApplier::KeyValue(size_t i, int tuple, int k) {
  auto input = [&](int key) {
    return tuple >= 0 ? decoder_.TupleValue(tuple, key) : decoder_.SliceValue(i, key);
  };
  if (k < model_.input_slice_key_count()) return input(k);
  cross_parts_.clear();
  for (int part : model_.CrossParts(k)) cross_parts_.push_back(input(part));
  RegisteredModel::ComposeCross(cross_parts_, &cross_value_);
  return cross_value_;
}

inline uint64_t BatchApplier::InvalidNumericValues() {
  invalid_features_.clear();
  invalid_out_of_range_.clear();
  // Nearly every event has only finite values (counted while decoding)
  // and most models declare no range.
  if (view_.non_finite == 0 && !model_.has_ranges()) return 0;
  // NaN is how a client sends null; a null where the schema forbids it is
  // also an invalid value, while an allowed null is not.
  uint64_t invalid = view_.non_finite;
  for (int f = 0; f < model_.numeric_count(); ++f) {
    const double x = view_.numeric[f];
    if (std::isnan(x) && model_.NumericNullable(f)) {
      --invalid;
      continue;
    }
    const bool out_of_range = x < model_.NumericMin(f) || x > model_.NumericMax(f);
    if (!std::isfinite(x) || out_of_range) {
      invalid_features_.push_back(static_cast<uint32_t>(f));
      // +-Inf beyond a bound is non-finite first.
      invalid_out_of_range_.push_back(std::isfinite(x) && out_of_range);
      invalid += std::isfinite(x);  // out of range: not counted as non-finite
    }
  }
  return invalid;
}

uint64_t BatchApplier::AddCategorical(double weight) {
  uint64_t invalid = 0;
  for (int f = 0; f < model_.categorical_count(); ++f) {
    if (view_.categorical_null[f]) {
      if (!model_.CategoricalNullable(f)) {
        ++invalid;
        invalid_features_.push_back(static_cast<uint32_t>(model_.numeric_count() + f));
        invalid_out_of_range_.push_back(0);
      }
      for (ProfileAccumulator* p : profiles_) p->categorical()[f].AddMissing(weight);
      continue;
    }
    std::string_view v = view_.categorical[f];
    if (const auto* allowed = model_.AllowedValues(f);
        allowed != nullptr && !allowed->contains(base::Sv(v))) {
      ++invalid;
      invalid_features_.push_back(static_cast<uint32_t>(model_.numeric_count() + f));
      invalid_out_of_range_.push_back(0);
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
  profiles_.clear();
  for (int32_t id : slices) profiles_.push_back(bucket.slices[id].get());
  if (model_.categorical_count() > 0) invalid += AddCategorical(w);
  queue.Push(view_.numeric, view_.scores, w, late, invalid);
  AddQuality();
  AdvanceWatermark();
  ++counts_->accepted;
  counts_->late_accepted += late;
  counts_->backfilled += cached_backfill_;
  if (state_.queue().full()) state_.HandOffQueue(handoffs_);
}

inline void BatchApplier::AddQuality() {
  using detectors::DataQuality;
  // Receive time - event time; a replayed (held) event arrived earlier
  // than now, so its lateness is not known here and is not counted.
  const size_t lateness_bin = detectors::DelayBin(
      detectors::kLatenessEdgesSeconds, static_cast<double>(now_ms_ - view_.event_time_ms) / 1000.0);
  const bool has_latency = view_.latency_ms > 0 && std::isfinite(view_.latency_ms);
  const size_t latency_bin =
      has_latency ? detectors::DelayBin(detectors::kLatencyEdgesMs, view_.latency_ms) : 0;
  const bool rare = view_.unknown_fields != 0 || !invalid_features_.empty() ||
                    !view_.feature_hash.empty() || declared_rate_ > 0;
  const auto in_range = [this](double x) { return model_.ScoreInRange(x); };
  for (detectors::ProfileAccumulator* p : profiles_) {
    DataQuality& q = p->quality();
    if (!replay_) {
      q.AddArrival(view_.event_time_ms, now_ms_, lateness_bin);
    } else if (view_.event_time_ms > q.newest_event_ms) {
      q.newest_event_ms = view_.event_time_ms;
    }
    if (has_latency) q.AddLatency(latency_bin);
    if (!view_.scores.empty()) q.AddScores(view_.scores, in_range);
  }
  if (!rare) return;
  const size_t features = static_cast<size_t>(model_.numeric_count() + model_.categorical_count());
  // A rate that differs by more than rounding from the declared one.
  const bool mismatch =
      declared_rate_ > 0 && std::abs(view_.sample_rate - declared_rate_) > 1e-9 * declared_rate_;
  const bool unsampled = hash_sampled_ && !base::InSample(view_.event_id, declared_rate_);
  for (detectors::ProfileAccumulator* p : profiles_) {
    DataQuality& q = p->quality();
    q.unknown_fields += view_.unknown_fields != 0;
    q.rate_mismatch += mismatch;
    q.hash_unsampled += unsampled;
    for (size_t k = 0; k < invalid_features_.size(); ++k) {
      q.AddInvalid(invalid_features_[k], features, invalid_out_of_range_[k] != 0,
                   static_cast<size_t>(model_.numeric_count()));
    }
    if (!view_.feature_hash.empty()) q.AddFingerprint(view_.feature_hash);
  }
}

// Only into slices that exist already: a duplicate creates no slice (a
// replay of junk must not fill the slice cap).
void BatchApplier::CountDuplicate(size_t i, OpenBucket& bucket) {
  const int keys = model_.slice_key_count();
  for (int k = 0; k < std::max(keys, 1); ++k) {
    std::optional<int32_t> id = 0;  // without keys: the population
    if (keys > 0) {
      const std::string_view value = KeyValue(i, decoder_.SliceTuple(i), k);
      id = model_.slices().Find(k, value.empty() ? base::kMissing : value);
    }
    if (!id) continue;
    bucket.Block(*id, state_.shape);
    ++bucket.slices[*id]->quality().duplicates;
  }
}

inline void BatchApplier::AdvanceWatermark() {
  // Bounded by the server clock: one client stamping events minutes ahead
  // (within max_future_skew) does not make everyone else's events late.
  const int64_t t = std::min(view_.event_time_ms, now_ms_);
  if (t > state_.watermark_ms) {
    state_.watermark_ms = t;
    state_.progress_dirty = true;
  }
}

void BatchApplier::Hold(size_t i) {
  if (state_.held.empty()) {
    state_.first_held_ms = now_ms_;
    state_.held_watermark_ms = state_.watermark_ms;
  }
  state_.held.push_back(decoder_.SerializeEvent(i, view_));
  size_t k = 0;
  for (int f : state_.learn_numeric) state_.learn_counts[k++] += std::isfinite(view_.numeric[f]);
  for (int s : state_.learn_scores) state_.learn_counts[k++] += std::isfinite(view_.scores[s]);
  // Counted as Accumulate counts (the ack tells the truth now); the
  // profiles count the event when it is replayed.
  counts_->late_accepted += view_.event_time_ms < state_.watermark_ms;
  counts_->backfilled += cached_backfill_;
  AdvanceWatermark();
  ++counts_->accepted;
}

inline void BatchApplier::KeepJoinState(size_t i, std::span<const int32_t> slices) {
  if (!join_) return;
  if (join_rate_ < 1.0 && !base::InSample(view_.event_id, join_rate_)) return;
  labels::JoinRecordRef r;
  r.event_time_ms = view_.event_time_ms;
  r.weight = 1.0 / view_.sample_rate;
  // Without slice keys the event is in the population only.
  if (model_.slice_key_count() > 0) r.slices = slices;
  r.kind = join_class_probs_ ? labels::JoinRecord::Scores::kClassProbs
                             : labels::JoinRecord::Scores::kOne;
  r.scores = view_.scores;
  if (join_ranked_) {
    r.ranked = true;
    r.query_hash = EventIdHash(decoder_.QueryId(i));
    r.position = static_cast<uint32_t>(std::max(0, decoder_.Position(i)));
  }
  const int64_t hour = storage::BucketStart(view_.event_time_ms, storage::kHourMs);
  if (join_chunk_ == nullptr || hour != join_hour_) {
    join_hour_ = hour;
    join_chunk_ = &state_.join_out[hour];
  }
  labels::AppendChunkEntry(view_.id_hash, r, join_chunk_);
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

void BatchApplier::CountTooLate() {
  ++counts_->too_late;
  counts_->Reject(
      RejectReason::kTooLate, view_.event_id,
      absl::StrCat("event_time_ms ", view_.event_time_ms, " (", base::IsoTime(view_.event_time_ms),
                   options_.backfill_horizon_ms > 0
                       ? absl::StrCat(") is older than the backfill horizon: its bucket starts "
                                      "before ",
                                      horizon_start_ms_, " (", base::IsoTime(horizon_start_ms_),
                                      "); ingest.backfill_horizon is ",
                                      options_.backfill_horizon_ms, " ms")
                       : std::string(") falls in a bucket already closed, and "
                                     "ingest.backfill_horizon is 0 (backfill off)")));
}

// The ids of every closed bucket this batch backfills must be in memory
// before dedup: they come back from storage whole if they were evicted
// (or the service restarted). One pass over event times, before any
// event is applied, so a failed read leaves the batch unapplied.
absl::Status BatchApplier::LoadBackfilledBuckets() {
  const size_t n = decoder_.size();
  int64_t last = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < n; ++i) {
    const int64_t t = decoder_.event_time_ms(i);
    if (t <= 0 || t > now_ms_ + options_.max_future_skew_ms) continue;  // rejected later
    const int64_t start = storage::BucketStart(t, options_.bucket_width_ms);
    if (start == last || start >= state_.closed_until_ms || start < horizon_start_ms_ ||
        options_.backfill_horizon_ms <= 0) {
      continue;
    }
    last = start;
    if (state_.bucket_ids.contains(start)) continue;
    BucketIds& ids = state_.IdsOf(start);
    absl::StatusOr<std::vector<storage::DedupChunk>> chunks = dedup_->ReadDedup(
        model_.model_key(), start, start + options_.bucket_width_ms);
    if (!chunks.ok()) {
      state_.bucket_ids.erase(start);
      return absl::Status(chunks.status().code(),
                          absl::StrCat("backfill: cannot read the stored ids of bucket ", start,
                                       " (", base::IsoTime(start), "); retry the batch: ",
                                       chunks.status().message()));
    }
    for (const storage::DedupChunk& chunk : *chunks) {
      DecodeEventIdsInto(chunk.hashes, &state_.ids, &ids.hashes);
    }
    ids.collected = ids.hashes.size();  // already stored
    ++totals_->loaded_buckets;
  }
  return absl::OkStatus();
}

inline OpenBucket& BatchApplier::BucketFor(int64_t bucket_start) {
  if (cached_bucket_ != nullptr && cached_start_ == bucket_start) return *cached_bucket_;
  return NewBucket(bucket_start);
}

OpenBucket& BatchApplier::NewBucket(int64_t bucket_start) {
  cached_start_ = bucket_start;
  cached_backfill_ = bucket_start < state_.closed_until_ms;
  auto& buckets = cached_backfill_ ? state_.backfill : state_.buckets;
  auto [it, created] = buckets.try_emplace(bucket_start);
  if (created) {
    it->second.ids = &state_.IdsOf(bucket_start);
    if (!cached_backfill_) {
      // Room for a bucket like the fullest held one, so that the set
      // rarely rehashes while the bucket fills.
      size_t expect = 0;
      for (const auto& [start, held] : state_.bucket_ids) {
        expect = std::max(expect, held.hashes.size());
      }
      state_.ids.Reserve(std::min<uint64_t>(state_.ids.size() + expect,
                                            options_.max_dedup_ids + expect));
    }
  }
  cached_bucket_ = &it->second;
  return *cached_bucket_;
}

// Starts loading the dedup slot of event i, which comes soon (a cache and
// TLB miss in a table of millions).
inline void BatchApplier::PrefetchId(size_t i) { state_.ids.Prefetch(decoder_.id_hash(i)); }

// The pipeline, with every step inlined (defined above).
absl::Status BatchApplier::Run() {
  state_.mu.AssertHeld();
  ++state_.batches_applied;
  const size_t n = decoder_.size();
  if (replay_) {
    for (size_t i = 0; i < n; ++i) {
      if (!Decode(i)) continue;
      OpenBucket* bucket =
          Place(storage::BucketStart(view_.event_time_ms, options_.bucket_width_ms));
      if (bucket == nullptr) continue;
      const std::span<const int32_t> slices = ResolveSlices(i);
      Accumulate(*bucket, slices);
      KeepJoinState(i, slices);
      if (Sampled(view_.id_hash)) KeepRaw(i);
    }
    return absl::OkStatus();
  }
  DW_RETURN_IF_ERROR(LoadBackfilledBuckets());
  const bool hold = state_.learning;
  for (size_t i = 0; i < n; ++i) {
    if (i + kIdAhead < n) PrefetchId(i + kIdAhead);
    if (!Decode(i) || !Validate()) continue;
    OpenBucket* bucket =
        Place(storage::BucketStart(view_.event_time_ms, options_.bucket_width_ms));
    if (bucket == nullptr) continue;
    if (!Dedup(*bucket)) {
      if (!hold) CountDuplicate(i, *bucket);
      continue;
    }
    if (hold) {
      Hold(i);
      continue;
    }
    const std::span<const int32_t> slices = ResolveSlices(i);
    Accumulate(*bucket, slices);
    KeepJoinState(i, slices);
    if (Sampled(view_.id_hash)) KeepRaw(i);
  }
  return absl::OkStatus();
}

}  // namespace driftwatch::service::ingest
