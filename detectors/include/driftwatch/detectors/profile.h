// A Profile is everything driftwatch keeps about one slice of one model in
// one time bucket: a summary per numeric feature and per score, a frequency
// table per categorical feature, and event counters. Profiles of the same
// layout merge exactly, so any window is a merge of bucket profiles.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/categorical.h"
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

  // FAILED_PRECONDITION when the layouts differ in shape or edges.
  absl::Status Merge(const Profile& other);

  // Encoding: docs/formats/profile.md. The layout is not stored (it is the
  // model version's); Deserialize checks the encoded shape matches it and
  // fails with DATA_LOSS on corrupt input.
  std::string Serialize() const;
  static absl::StatusOr<Profile> Deserialize(std::shared_ptr<const ProfileLayout> layout,
                                             std::string_view bytes);

 private:
  std::shared_ptr<const ProfileLayout> layout_;
  std::vector<NumericSummary> numeric_;
  std::vector<CategoricalSummary> categorical_;
  std::vector<NumericSummary> scores_;
  ProfileCounters counters_;
};

}  // namespace driftwatch::detectors
