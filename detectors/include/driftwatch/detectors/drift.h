// Distances and two-sample tests between a reference and a current
// distribution, following the conventions in DESIGN.md ("Statistical
// conventions") so that each value can be reproduced with scipy.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/categorical.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/sample.h"

namespace driftwatch::detectors {

inline constexpr double kEmptyBinEpsilon = 1e-4;
inline constexpr int kDefaultBins = 10;

// PSI, KL(current || reference) and JS distance (base 2) over aligned bins.
struct Divergences {
  double psi = 0;
  double kl = 0;
  double js = 0;
};

// From weighted counts per bin (same length, each summing to > 0): each is
// normalised to proportions, a proportion of 0 is replaced by `epsilon`, and
// JS renormalises the floored proportions as scipy's jensenshannon does.
absl::StatusOr<Divergences> CompareBinCounts(std::span<const double> reference,
                                             std::span<const double> current,
                                             double epsilon = kEmptyBinEpsilon);

struct KsResult {
  double statistic = 0;    // D = sup |F_c - F_r|
  double p_value = 1;      // kstwobign.sf(sqrt(n_e) * D)
  double n_effective = 0;  // n_r n_c / (n_r + n_c), Kish sizes when weighted
  double error_bound = 0;  // 0 when exact; else D is within [D, D + bound]
  // The p-value at D + error_bound: the true one lies in [p_value_low,
  // p_value] (equal when exact).
  double p_value_low = 1;
};

// Q(x) = P(K > x) for the limiting Kolmogorov distribution
// (scipy.stats.kstwobign.sf). Q(x) = 1 for x <= 0.
double KolmogorovSurvival(double x);

// Exact two-sample KS (weighted ECDFs). Fails if either sample is empty.
absl::StatusOr<KsResult> KsTest(const WeightedSample& reference, const WeightedSample& current);

// KS from two summaries with the same edges: D at the shared edges (exact
// there) and error_bound = max over bins of max(ref, cur) bin proportion
// (docs/statistics.md). FAILED_PRECONDITION if the edges differ,
// INVALID_ARGUMENT if either summary has no finite values.
absl::StatusOr<KsResult> KsTest(const NumericSummary& reference, const NumericSummary& current);

struct ChiSquareResult {
  double statistic = 0;
  int df = 0;
  double p_value = 1;
};

// scipy.stats.chisquare(f_obs = current counts, f_exp = p * n) with p the
// epsilon-floored reference proportions renormalised to 1; df = bins - 1.
// When weighted, counts are rescaled to the current Kish effective size
// `n_current_effective` (pass the plain count when unweighted).
absl::StatusOr<ChiSquareResult> ChiSquareTest(std::span<const double> reference,
                                              std::span<const double> current,
                                              double n_current_effective,
                                              double epsilon = kEmptyBinEpsilon);

struct WassersteinResult {
  double distance = 0;     // scipy.stats.wasserstein_distance(ref, cur)
  double normalized = 0;   // distance / reference std (ddof 0); 0 if std is 0
  double error_bound = 0;  // 0 when exact; else |W1 - distance| <= bound
  double normalized_error_bound = 0;  // error_bound / reference std (std is exact)
};

absl::StatusOr<WassersteinResult> Wasserstein(const WeightedSample& reference,
                                              const WeightedSample& current);
// From summaries with the same edges: integrates the model CDFs
// (histogram.h); error_bound = sum of both summaries' CdfL1ErrorBound(),
// normalized_error_bound = error_bound / reference std. Errors as KsTest.
absl::StatusOr<WassersteinResult> Wasserstein(const NumericSummary& reference,
                                              const NumericSummary& current);

// Every statistic for one feature. Fields that do not apply to the feature's
// kind are empty (ks / wasserstein for categorical, chi2 for numeric).
struct FeatureDrift {
  double n_reference = 0;  // total weight (the row count when unweighted)
  double n_current = 0;
  Divergences divergences;
  std::optional<KsResult> ks;
  std::optional<ChiSquareResult> chi2;
  std::optional<WassersteinResult> wasserstein;
  // The frozen reference bins (numeric) and both proportions, for reports.
  std::vector<double> edges;
  std::vector<std::string> categories;
  std::vector<double> reference_proportions;
  std::vector<double> current_proportions;
};

// The default drift rule shared by driftctl and the service's reports:
// PSI >= 0.2; or, for numeric features (ks and wasserstein present), KS
// p < 0.05 and Wasserstein / reference sd >= 0.1; or, for categorical
// features (chi2 present), chi-square p < 0.05 and JS >= 0.1. The second
// condition of each pair keeps large samples, where any difference is
// significant, from flagging negligible shifts.
inline constexpr double kDriftPsi = 0.2;
inline constexpr double kDriftPValue = 0.05;
inline constexpr double kDriftWassersteinNorm = 0.1;
inline constexpr double kDriftJs = 0.1;
bool IsDrifted(const FeatureDrift& drift);

// Numeric feature, exact: B equal-frequency bins of the reference (weighted
// quantiles when the reference is weighted), PSI/KL/JS on them, exact KS and
// Wasserstein. Fails if either sample is empty or bins < 1.
absl::StatusOr<FeatureDrift> CompareNumeric(const WeightedSample& reference,
                                            const WeightedSample& current, int bins = kDefaultBins);

// A numeric baseline frozen from a reference: its B equal-frequency edges
// and the reference summary they were computed from. Cheap to copy.
struct NumericBaseline {
  std::shared_ptr<const BinEdges> drift_edges;      // B bins for PSI/KL/JS
  std::vector<double> reference_counts;             // reference weight per drift bin
  std::shared_ptr<const NumericSummary> reference;  // fine summary, for KS/W1
};

// Builds a baseline from a summary: drift edges at the summary's quantiles
// k/B under its CDF model, so a fine bin whose values sit on its edge (an
// integer, a tie) gives that edge exactly and is never split. Fails if the
// summary is empty.
absl::StatusOr<NumericBaseline> MakeNumericBaseline(std::shared_ptr<const NumericSummary> reference,
                                                    int bins = kDefaultBins);

// Numeric feature from summaries (the service path): the current summary is
// rebinned onto the baseline's drift edges; KS and Wasserstein carry their
// error bounds. INVALID_ARGUMENT if the current summary is empty,
// FAILED_PRECONDITION if its edges differ from the baseline reference's.
absl::StatusOr<FeatureDrift> CompareNumeric(const NumericBaseline& baseline,
                                            const NumericSummary& current);

// Categorical feature: one bin per category in reference U current (plus
// __other__ and __missing__ when non-empty), PSI/KL/JS and chi-square.
absl::StatusOr<FeatureDrift> CompareCategorical(const CategoricalSummary& reference,
                                                const CategoricalSummary& current);

}  // namespace driftwatch::detectors
