#include "driftwatch/detectors/sample.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace driftwatch::detectors {

absl::StatusOr<WeightedSample> WeightedSample::Create(std::vector<double> values,
                                                      std::vector<double> weights) {
  if (!weights.empty() && weights.size() != values.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights has ", weights.size(), " entries but values has ", values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat("value ", i, " is not finite"));
    }
  }
  WeightedSample s;
  s.unweighted_ = std::all_of(weights.begin(), weights.end(), [](double w) { return w == 1.0; });
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!(weights[i] > 0) || !std::isfinite(weights[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight ", i, " must be finite and > 0, got ", weights[i]));
    }
  }
  if (weights.empty()) {
    std::sort(values.begin(), values.end());
    weights.assign(values.size(), 1.0);
  } else {
    std::vector<size_t> order(values.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return values[a] < values[b]; });
    std::vector<double> v(values.size()), w(values.size());
    for (size_t i = 0; i < order.size(); ++i) {
      v[i] = values[order[i]];
      w[i] = weights[order[i]];
    }
    values = std::move(v);
    weights = std::move(w);
  }
  s.values_ = std::move(values);
  s.weights_ = std::move(weights);
  s.cumulative_.resize(s.weights_.size());
  double cum = 0;
  for (size_t i = 0; i < s.weights_.size(); ++i) {
    cum += s.weights_[i];
    s.cumulative_[i] = cum;
    s.weight_sq_ += s.weights_[i] * s.weights_[i];
  }
  s.total_weight_ = cum;
  return s;
}

double WeightedSample::effective_size() const {
  return weight_sq_ > 0 ? total_weight_ * total_weight_ / weight_sq_ : 0.0;
}

double WeightedSample::mean() const {
  if (values_.empty()) return 0.0;
  // A constant sample has that value as its mean, without summation residue.
  if (values_.front() == values_.back()) return values_.front();
  double sum = 0;
  for (size_t i = 0; i < values_.size(); ++i) sum += weights_[i] * values_[i];
  return sum / total_weight_;
}

double WeightedSample::stddev() const {
  // Exactly 0 for a constant sample, so that "std is 0" tests are reliable.
  if (values_.empty() || values_.front() == values_.back()) return 0.0;
  // Two passes: subtracting the mean first avoids cancellation.
  const double m = mean();
  double ss = 0;
  for (size_t i = 0; i < values_.size(); ++i) {
    const double d = values_[i] - m;
    ss += weights_[i] * d * d;
  }
  return std::sqrt(ss / total_weight_);
}

double WeightedSample::CumulativeWeight(double x) const {
  const size_t n = std::upper_bound(values_.begin(), values_.end(), x) - values_.begin();
  return n == 0 ? 0.0 : cumulative_[n - 1];
}

double WeightedSample::Cdf(double x) const {
  if (values_.empty()) return 0.0;
  return CumulativeWeight(x) / total_weight_;
}

}  // namespace driftwatch::detectors
