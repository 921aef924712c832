// A signal: one named value of one evaluation, e.g. the PSI of feature
// `income` in slice `platform=android` of model `loan@v1`. The evaluator
// produces them; /metrics, signal history and the rules engine read them.
// A plain value type, so alerting can use it without the service.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace driftwatch::detectors {

struct Signal {
  std::string model;    // "id@version"
  std::string slice;    // "*" or "key=value"
  std::string feature;  // the feature or score; empty for model-level signals
  std::string name;     // psi, js, ks, wasserstein_norm, null_rate, ...
  double value = 0;
  // The same quantity on the baseline, where it has one (score_mean,
  // null_rate, volume, auc, ...); NaN otherwise. Rules read it through
  // change(signal) and ratio(signal).
  double baseline = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace driftwatch::detectors
