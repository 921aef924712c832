// Mergeable weighted frequency table for a categorical feature, with a
// cardinality cap so that a flood of distinct values cannot exhaust memory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "driftwatch/base/names.h"

namespace driftwatch::detectors {

// Weighted counts per category. At most `max_categories` distinct values are
// kept; once full, unseen values go to `__other__`. Merge keeps the
// heaviest `max_categories` and folds the rest into `__other__`. Missing
// values are their own bin. Not thread-safe.
class CategoricalSummary {
 public:
  explicit CategoricalSummary(size_t max_categories = 1000);

  // A weight that is not finite and > 0 is ignored. A category spelled
  // base::kOther or base::kMissing is filed in that special bin.
  void Add(std::string_view category, double weight = 1.0);
  void AddMissing(double weight = 1.0);
  // Adds `other`; keeps this summary's cap. Never fails today (the Status
  // leaves room for incompatible future versions).
  absl::Status Merge(const CategoricalSummary& other);

  // Weighted count per kept category (excluding other and missing).
  const absl::flat_hash_map<std::string, double>& counts() const { return counts_; }
  double other_weight() const { return other_; }
  double missing_weight() const { return missing_; }
  double total_weight() const;  // all of the above
  double weight_sq() const { return weight_sq_; }
  double effective_size() const;             // Kish, over every value incl. missing
  uint64_t count() const { return count_; }  // unweighted, incl. missing
  size_t max_categories() const { return max_categories_; }

  // Weight of a category as this summary files it: base::kOther and
  // base::kMissing name the two special bins; an unknown category is 0.
  double WeightOf(std::string_view category) const;

  std::string Serialize() const;
  static absl::StatusOr<CategoricalSummary> Deserialize(std::string_view bytes);

 private:
  size_t max_categories_;
  absl::flat_hash_map<std::string, double> counts_;
  double other_ = 0;
  double missing_ = 0;
  double weight_sq_ = 0;
  uint64_t count_ = 0;
};

}  // namespace driftwatch::detectors
