// A Profile is everything driftwatch keeps about one slice of one model in
// one time bucket: a summary per numeric feature and per score, a frequency
// table per categorical feature, and event counters. Profiles of the same
// layout merge exactly, so any window is a merge of bucket profiles.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/categorical.h"
#include "driftwatch/detectors/data_quality.h"
#include "driftwatch/detectors/histogram.h"

namespace driftwatch::detectors {

// The fixed shape of a model version's profiles: summary edges per numeric
// feature and per score, and the categorical cap. Immutable; shared.
struct ProfileLayout {
  std::vector<std::string> numeric_names;
  std::vector<std::shared_ptr<const BinEdges>> numeric_edges;
  std::vector<std::string> categorical_names;
  size_t max_categories = 1000;
  std::vector<std::string> score_names;
  std::vector<std::shared_ptr<const BinEdges>> score_edges;
};

// Event counters of a profile. Weighted counts live in the summaries.
struct ProfileCounters {
  uint64_t events = 0;         // accepted into this profile
  uint64_t late_accepted = 0;  // behind the watermark but within lateness
  uint64_t invalid_values = 0; // values rejected by the schema (not events)
  double weight = 0;           // sum of 1 / sample_rate
  double weight_sq = 0;
};

// Not thread-safe: one owner updates it.
class Profile {
 public:
  explicit Profile(std::shared_ptr<const ProfileLayout> layout);

  const ProfileLayout& layout() const { return *layout_; }
  std::shared_ptr<const ProfileLayout> shared_layout() const { return layout_; }

  std::vector<NumericSummary>& numeric() { return numeric_; }
  const std::vector<NumericSummary>& numeric() const { return numeric_; }
  std::vector<CategoricalSummary>& categorical() { return categorical_; }
  const std::vector<CategoricalSummary>& categorical() const { return categorical_; }
  std::vector<NumericSummary>& scores() { return scores_; }
  const std::vector<NumericSummary>& scores() const { return scores_; }
  ProfileCounters& counters() { return counters_; }
  const ProfileCounters& counters() const { return counters_; }
  DataQuality& quality() { return quality_; }
  const DataQuality& quality() const { return quality_; }

  // FAILED_PRECONDITION when the layouts differ in shape or edges.
  absl::Status Merge(const Profile& other);

  // Encoding: docs/formats/profile.md. The layout is not stored (it is the
  // model version's); Deserialize checks the encoded shape matches it and
  // fails with DATA_LOSS on corrupt input.
  std::string Serialize() const;
  static absl::StatusOr<Profile> Deserialize(std::shared_ptr<const ProfileLayout> layout,
                                             std::string_view bytes);
  // Only the header's counters (events, late, invalid, weight), after the
  // same checksum, magic and version checks as Deserialize, without
  // decoding the summaries: what a volume history needs from each of
  // hundreds of hour rows. DATA_LOSS on corrupt input.
  static absl::StatusOr<ProfileCounters> PeekCounters(std::string_view bytes);

 private:
  std::shared_ptr<const ProfileLayout> layout_;
  std::vector<NumericSummary> numeric_;
  std::vector<CategoricalSummary> categorical_;
  std::vector<NumericSummary> scores_;
  ProfileCounters counters_;
  DataQuality quality_;
};

// The `events` counter of a serialized profile's header, unchecked (no
// checksum, no shape): for a writer that stores it beside the blob it
// just made. nullopt when the bytes are too short or not a profile.
std::optional<uint64_t> SerializedProfileEvents(std::string_view bytes);

// The merge of two serialized profiles of `layout`, serialized: what a
// roll-up into an hour or day row does. DATA_LOSS (naming the side) when
// either does not decode with the layout.
absl::StatusOr<std::string> MergeSerializedProfiles(
    const std::shared_ptr<const ProfileLayout>& layout, std::string_view stored,
    std::string_view added);

// The ingest hot path's form of a Profile. Its counters and every numeric
// feature's and score's moments and bins live in one 64-byte aligned block:
// line 0 holds the ProfileCounters, and summary k (numeric features first,
// then scores) is one line of moments followed by its bins as (weight, sum)
// pairs, so adding a value touches two cache lines found from the block
// address alone. Serialize() writes exactly the bytes
// ToProfile().Serialize() would. Not thread-safe: one owner updates it.
class ProfileAccumulator {
 public:
  // Where each summary sits in the block; computed once per layout, shared.
  struct Shape {
    std::shared_ptr<const ProfileLayout> layout;
    std::vector<const BinEdges*> edges;  // numeric features, then scores
    std::vector<uint32_t> first_line;    // per summary: its Moments line (>= 1); bins follow
    size_t cold_line = 0;                // per summary its rare counters (ColdCounts)
    size_t lines = 0;

    static std::shared_ptr<const Shape> Of(std::shared_ptr<const ProfileLayout> layout);
  };
  // The hot part of NumericCounts: exactly one cache line.
  struct alignas(64) Moments {
    double weight, weight_sq, sum, sum_sq, min, max;
    uint64_t count, nulls;
  };
  struct ColdCounts {
    uint64_t nans, pos_infs, neg_infs, invalid_weights;
    double missing_weight;  // of nulls and non-finite values
  };

  explicit ProfileAccumulator(std::shared_ptr<const Shape> shape);
  // An accumulator holding exactly `profile` (same layout as `shape`).
  static ProfileAccumulator FromProfile(std::shared_ptr<const Shape> shape, const Profile& profile);
  // A copy of the current state (one memcpy of the block): the flusher
  // snapshots under the ingest lock and serializes the copy outside it.
  ProfileAccumulator Clone() const;
  ProfileAccumulator(ProfileAccumulator&&) noexcept = default;
  ProfileAccumulator& operator=(ProfileAccumulator&&) noexcept = default;

  const Shape& shape() const { return *shape_; }
  std::byte* block() { return block_.get(); }
  Moments& moments(size_t k) { return *MomentsAt(block_.get(), shape_->first_line[k]); }
  // Summary k's bins: (weight, weighted sum) pairs, bin i at [2i, 2i + 1].
  double* bins(size_t k) { return BinsAt(block_.get(), shape_->first_line[k]); }
  ColdCounts& cold(size_t k) { return ColdAt(block_.get(), *shape_)[k]; }
  ProfileCounters& counters() { return *CountersAt(block_.get()); }
  const ProfileCounters& counters() const { return *CountersAt(block_.get()); }

  // Address arithmetic for callers that hoist shape().first_line[k].
  static Moments* MomentsAt(std::byte* block, uint32_t line) {
    return reinterpret_cast<Moments*>(block + size_t{line} * 64);
  }
  static double* BinsAt(std::byte* block, uint32_t line) {
    return reinterpret_cast<double*>(block + (size_t{line} + 1) * 64);
  }
  static ProfileCounters* CountersAt(std::byte* block) {
    return reinterpret_cast<ProfileCounters*>(block);
  }
  static ColdCounts* ColdAt(std::byte* block, const Shape& shape) {
    return reinterpret_cast<ColdCounts*>(block + shape.cold_line * 64);
  }

  // NumericSummary::AddAt on the flat form: x finite, weight > 0, bin its bin.
  static void AddAt(Moments& m, double* bins, size_t bin, double x, double weight) {
    bins[2 * bin] += weight;
    bins[2 * bin + 1] += weight * x;
    AddToMoments(m, x, weight);
  }
  void AddNull(size_t k, double weight = 1.0) {
    ++moments(k).nulls;
    cold(k).missing_weight += weight;
  }
  // NaN or +-Inf, counted as NumericSummary::AddNonFinite does.
  void AddNonFinite(size_t k, double x, double weight = 1.0) {
    CountNonFinite(cold(k), x);
    cold(k).missing_weight += weight;
  }
  static void CountNonFinite(ColdCounts& c, double x) {
    ::driftwatch::detectors::CountNonFinite(c, x);
  }

  std::vector<CategoricalSummary>& categorical() { return categorical_; }
  // Outside the block, like the categorical summaries: updated by the
  // owner directly, never through the queue.
  DataQuality& quality() { return quality_; }
  const DataQuality& quality() const { return quality_; }

  Profile ToProfile() const;
  std::string Serialize() const;

 private:
  struct FreeBlock {
    void operator()(std::byte* p) const;
  };
  std::shared_ptr<const Shape> shape_;
  std::unique_ptr<std::byte[], FreeBlock> block_;
  std::vector<CategoricalSummary> categorical_;
  DataQuality quality_;
};

}  // namespace driftwatch::detectors
