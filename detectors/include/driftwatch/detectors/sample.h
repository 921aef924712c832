// An exact weighted sample of raw values: the offline (CLI) path, where every
// statistic is computed exactly rather than from summaries.
#pragma once

#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::detectors {

// Finite values sorted ascending with their weights. Immutable; thread-safe.
class WeightedSample {
 public:
  // `weights` empty means all 1. Fails with INVALID_ARGUMENT when a value is
  // not finite, a weight is not finite and > 0, or the sizes differ.
  static absl::StatusOr<WeightedSample> Create(std::vector<double> values,
                                               std::vector<double> weights = {});

  std::span<const double> values() const { return values_; }    // sorted
  std::span<const double> weights() const { return weights_; }  // aligned
  size_t size() const { return values_.size(); }
  bool unweighted() const { return unweighted_; }
  double total_weight() const { return total_weight_; }
  double effective_size() const;  // Kish (sum w)^2 / sum w^2
  double mean() const;
  double stddev() const;  // weighted population std, ddof = 0 (numpy.std)

  // Weighted ECDF F(x) = sum of weights of values <= x / total weight;
  // 0 for an empty sample.
  double Cdf(double x) const;
  // Sum of weights of values <= x (the ECDF numerator, without rounding
  // from the division).
  double CumulativeWeight(double x) const;

 private:
  std::vector<double> values_;
  std::vector<double> weights_;
  std::vector<double> cumulative_;  // cumulative_[i] = sum of weights_[0..i]
  double total_weight_ = 0;
  double weight_sq_ = 0;
  bool unweighted_ = true;
};

}  // namespace driftwatch::detectors
