#include "driftwatch/detectors/drift.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/math/distributions/chi_squared.hpp"
#include "driftwatch/base/status_macros.h"

namespace driftwatch::detectors {
namespace {

// Total of non-negative finite counts; fails naming `what`.
absl::StatusOr<double> CheckedTotal(std::span<const double> counts, absl::string_view what) {
  if (counts.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " has no bins"));
  double total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (!std::isfinite(counts[i]) || counts[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " bin ", i, " must be finite and >= 0, got ", counts[i]));
    }
    total += counts[i];
  }
  if (!(total > 0)) return absl::InvalidArgumentError(absl::StrCat(what, " counts sum to 0"));
  return total;
}

// Normalised proportions of non-negative finite counts; fails naming `what`.
absl::StatusOr<std::vector<double>> Proportions(std::span<const double> counts,
                                                absl::string_view what) {
  DW_ASSIGN_OR_RETURN(const double total, CheckedTotal(counts, what));
  std::vector<double> p(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) p[i] = counts[i] / total;
  return p;
}

absl::Status CheckSameLength(std::span<const double> reference, std::span<const double> current) {
  if (reference.size() != current.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reference has ", reference.size(), " bins but current has ", current.size()));
  }
  return absl::OkStatus();
}

void FloorZeros(std::vector<double>& p, double epsilon) {
  for (double& x : p) {
    if (x == 0) x = epsilon;
  }
}

double Sum(std::span<const double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }

double EffectiveN(double n_r, double n_c) { return n_r * n_c / (n_r + n_c); }

absl::Status CheckSameEdges(const NumericSummary& reference, const NumericSummary& current) {
  // Summaries of one feature share one edges object: compare values only
  // when they do not.
  if (reference.shared_edges() != current.shared_edges() &&
      !(reference.edges() == current.edges())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reference and current summaries have different edges (", reference.edges().edges().size(),
        " vs ", current.edges().edges().size(), " edges); rebuild the baseline"));
  }
  return absl::OkStatus();
}

absl::Status CheckNonEmpty(const NumericSummary& s, absl::string_view what) {
  // counts().weight is the bins' total (every finite value adds its weight
  // to both), so no pass over the bins is needed.
  if (s.counts().count == 0 || !(s.counts().weight > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " summary has no finite values"));
  }
  return absl::OkStatus();
}

absl::Status CheckNonEmpty(const WeightedSample& s, absl::string_view what) {
  if (s.size() == 0) return absl::InvalidArgumentError(absl::StrCat(what, " sample is empty"));
  return absl::OkStatus();
}

std::vector<double> Normalize(std::span<const double> counts) {
  const double total = Sum(counts);
  std::vector<double> p(counts.begin(), counts.end());
  for (double& x : p) x = total > 0 ? x / total : 0.0;
  return p;
}

// Integral of |g| over [0, len] for g linear from g0 to g1.
double AbsLinearIntegral(double g0, double g1, double len) {
  if ((g0 >= 0) == (g1 >= 0)) return len * std::abs(g0 + g1) / 2;
  const double a = std::abs(g0), b = std::abs(g1);
  return len * (a * a + b * b) / (2 * (a + b));
}

// For sizes up to 10000 scipy's ks_2samp (method "auto") snaps D to the
// nearest multiple of 1 / lcm(n1, n2), the grid D lives on; doing the same
// keeps our statistic bit-identical to scipy's.
double ScipyExactModeStatistic(double d, size_t n1, size_t n2) {
  constexpr size_t kScipyMaxExactN = 10000;
  if (std::max(n1, n2) > kScipyMaxExactN) return d;
  const double lcm = static_cast<double>(n1 / std::gcd(n1, n2) * n2);
  return std::round(d * lcm) / lcm;
}

}  // namespace

absl::StatusOr<Divergences> CompareBinCounts(std::span<const double> reference,
                                             std::span<const double> current, double epsilon) {
  DW_RETURN_IF_ERROR(CheckSameLength(reference, current));
  if (!(epsilon > 0) || !(epsilon < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("epsilon must be in (0, 1), got ", epsilon));
  }
  DW_ASSIGN_OR_RETURN(const double r_count, CheckedTotal(reference, "reference"));
  DW_ASSIGN_OR_RETURN(const double c_count, CheckedTotal(current, "current"));
  // This runs once per feature x slice per evaluation, so it allocates
  // nothing and takes two transcendental calls per bin: log(c/r) serves PSI
  // and KL, and JS reuses it through t = cn/rn (the renormalised ratio):
  //   rn ln(rn/m) + cn ln(cn/m) = (rn + cn)(ln 2 - ln(1 + t)) + cn ln t.
  // Proportions are divided, not scaled by a reciprocal: division rounds
  // correctly, so proportional counts give bit-identical proportions and
  // identical distributions give exactly 0 (as scipy does), where a
  // one-ulp residue would show as JS ~1e-8 after the square root.
  auto floored = [epsilon](double count, double total) {
    const double p = count / total;
    return p == 0 ? epsilon : p;
  };
  // The floored proportions of the usual bin counts are kept from the
  // first pass (on the stack: no allocation), so each is divided once.
  constexpr size_t kKeptBins = 256;
  double r_kept[kKeptBins], c_kept[kKeptBins];
  const bool kept = reference.size() <= kKeptBins;
  double r_total = 0, c_total = 0;  // of the floored proportions
  for (size_t i = 0; i < reference.size(); ++i) {
    const double r = floored(reference[i], r_count), c = floored(current[i], c_count);
    r_total += r;
    c_total += c;
    if (kept) {
      r_kept[i] = r;
      c_kept[i] = c;
    }
  }
  const double renorm = r_total / c_total, log_renorm = std::log(renorm);
  // Identical floored proportions give identical sums, so equal
  // renormalised proportions stay equal through these reciprocals.
  const double r_renorm = 1 / r_total, c_renorm = 1 / c_total;
  Divergences d;
  double js = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double r = kept ? r_kept[i] : floored(reference[i], r_count);
    const double c = kept ? c_kept[i] : floored(current[i], c_count);
    const double ratio = c / r;
    const double log_ratio = std::log(ratio);
    d.psi += (c - r) * log_ratio;
    d.kl += c * log_ratio;
    const double rn = r * r_renorm, cn = c * c_renorm;
    if (rn == cn) continue;  // this bin's JS term is exactly 0
    // t = cn / rn >= ~1e-4 here, where log(1 + t) loses nothing that
    // matters and costs half of log1p on glibc.
    const double t = ratio * renorm;
    const double term = (rn + cn) * (std::numbers::ln2 - std::log(1 + t)) +
                        cn * (log_ratio + log_renorm);
    // Each bin's term is >= 0 (log-sum inequality); rounding must not make
    // the sum dip below 0 before the square root.
    js += std::max(0.0, term);
  }
  d.js = std::sqrt(js / std::numbers::ln2 / 2);
  return d;
}

absl::StatusOr<KsResult> KsTest(const WeightedSample& reference, const WeightedSample& current) {
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  std::span<const double> rv = reference.values(), rw = reference.weights();
  std::span<const double> cv = current.values(), cw = current.weights();
  const double r_total = reference.total_weight(), c_total = current.total_weight();
  // Walk the union of distinct values; the ECDFs only change there.
  size_t i = 0, j = 0;
  double r_cum = 0, c_cum = 0, d = 0;
  while (i < rv.size() || j < cv.size()) {
    const double v = j == cv.size() || (i < rv.size() && rv[i] <= cv[j]) ? rv[i] : cv[j];
    for (; i < rv.size() && rv[i] == v; ++i) r_cum += rw[i];
    for (; j < cv.size() && cv[j] == v; ++j) c_cum += cw[j];
    d = std::max(d, std::abs(r_cum / r_total - c_cum / c_total));
  }
  if (reference.unweighted() && current.unweighted())
    d = ScipyExactModeStatistic(d, rv.size(), cv.size());
  KsResult result;
  result.statistic = d;
  result.n_effective = EffectiveN(reference.effective_size(), current.effective_size());
  result.p_value = KolmogorovSurvival(std::sqrt(result.n_effective) * d);
  result.p_value_low = result.p_value;
  return result;
}

absl::StatusOr<KsResult> KsTest(const NumericSummary& reference, const NumericSummary& current) {
  DW_RETURN_IF_ERROR(CheckSameEdges(reference, current));
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  // The CDFs are exact at the shared edges; between two edges each moves by
  // at most its bin's mass, which bounds what the edges can miss.
  std::span<const double> rb = reference.bins(), cb = current.bins();
  const double r_total = Sum(rb), c_total = Sum(cb);
  const double r_scale = 1 / r_total, c_scale = 1 / c_total;
  double r_cum = 0, c_cum = 0, d = 0, r_max = 0, c_max = 0;
  for (size_t k = 0; k + 1 < rb.size(); ++k) {
    r_max = std::max(r_max, rb[k]);
    c_max = std::max(c_max, cb[k]);
    r_cum += rb[k];
    c_cum += cb[k];
    d = std::max(d, std::abs(r_cum * r_scale - c_cum * c_scale));
  }
  const double bound = std::max(std::max(r_max, rb.back()) * r_scale,
                                std::max(c_max, cb.back()) * c_scale);
  KsResult result;
  result.statistic = d;
  result.error_bound = std::min(bound, 1.0 - d);
  result.n_effective = EffectiveN(reference.effective_size(), current.effective_size());
  result.p_value = KolmogorovSurvival(std::sqrt(result.n_effective) * d);
  result.p_value_low =
      KolmogorovSurvival(std::sqrt(result.n_effective) * (d + result.error_bound));
  return result;
}

absl::StatusOr<ChiSquareResult> ChiSquareTest(std::span<const double> reference,
                                              std::span<const double> current,
                                              double n_current_effective, double epsilon) {
  DW_RETURN_IF_ERROR(CheckSameLength(reference, current));
  if (!(n_current_effective > 0) || !std::isfinite(n_current_effective)) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_current_effective must be finite and > 0, got ", n_current_effective));
  }
  if (!(epsilon > 0) || !(epsilon < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("epsilon must be in (0, 1), got ", epsilon));
  }
  DW_ASSIGN_OR_RETURN(std::vector<double> p, Proportions(reference, "reference"));
  DW_ASSIGN_OR_RETURN(std::vector<double> c, Proportions(current, "current"));
  FloorZeros(p, epsilon);
  const double p_total = Sum(p);
  ChiSquareResult result;
  for (size_t i = 0; i < p.size(); ++i) {
    const double expected = p[i] / p_total * n_current_effective;
    const double observed = c[i] * n_current_effective;
    result.statistic += (observed - expected) * (observed - expected) / expected;
  }
  result.df = static_cast<int>(p.size()) - 1;
  result.p_value =
      result.df == 0
          ? 1.0
          : boost::math::cdf(boost::math::complement(
                boost::math::chi_squared_distribution<double>(result.df), result.statistic));
  return result;
}

absl::StatusOr<WassersteinResult> Wasserstein(const WeightedSample& reference,
                                              const WeightedSample& current) {
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  std::span<const double> rv = reference.values(), rw = reference.weights();
  std::span<const double> cv = current.values(), cw = current.weights();
  const double r_total = reference.total_weight(), c_total = current.total_weight();
  // Integrate |F_c - F_r| over the merged support; both are step functions
  // that only change at sample values.
  size_t i = 0, j = 0;
  double r_cum = 0, c_cum = 0, distance = 0, previous = 0, gap = 0;
  bool first = true;
  while (i < rv.size() || j < cv.size()) {
    const double v = j == cv.size() || (i < rv.size() && rv[i] <= cv[j]) ? rv[i] : cv[j];
    if (!first) distance += gap * (v - previous);
    first = false;
    for (; i < rv.size() && rv[i] == v; ++i) r_cum += rw[i];
    for (; j < cv.size() && cv[j] == v; ++j) c_cum += cw[j];
    gap = std::abs(r_cum / r_total - c_cum / c_total);
    previous = v;
  }
  WassersteinResult result;
  result.distance = distance;
  const double sd = reference.stddev();
  result.normalized = sd > 0 ? distance / sd : 0.0;
  return result;
}

absl::StatusOr<WassersteinResult> Wasserstein(const NumericSummary& reference,
                                              const NumericSummary& current) {
  DW_RETURN_IF_ERROR(CheckSameEdges(reference, current));
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  // Both model CDFs are linear between consecutive breakpoints (each
  // non-empty bin's lo, mean and hi), so the integral is exact there; a
  // point mass is a jump at a breakpoint, so each segment runs from the
  // CDFs at its start to their left limits at its end.
  std::vector<double> points;
  reference.AppendBreakpoints(&points);
  current.AppendBreakpoints(&points);
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  const std::vector<double> fr = reference.CdfAt(points);
  const std::vector<double> fc = current.CdfAt(points);
  const std::vector<double> fr_left = reference.CdfAt(points, /*left_limit=*/true);
  const std::vector<double> fc_left = current.CdfAt(points, /*left_limit=*/true);
  WassersteinResult result;
  for (size_t k = 0; k + 1 < points.size(); ++k) {
    result.distance += AbsLinearIntegral(fr[k] - fc[k], fr_left[k + 1] - fc_left[k + 1],
                                         points[k + 1] - points[k]);
  }
  // Triangle inequality: |W(F_r, F_c) - W(~F_r, ~F_c)| <= |F_r - ~F_r|_1 + |F_c - ~F_c|_1.
  result.error_bound = reference.CdfL1ErrorBound() + current.CdfL1ErrorBound();
  const double sd = reference.stddev();
  result.normalized = sd > 0 ? result.distance / sd : 0.0;
  result.normalized_error_bound = sd > 0 ? result.error_bound / sd : 0.0;
  return result;
}

absl::StatusOr<FeatureDrift> CompareNumeric(const WeightedSample& reference,
                                            const WeightedSample& current, int bins) {
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  absl::StatusOr<BinEdges> edges =
      reference.unweighted()
          ? BinEdges::FromQuantiles(reference.values(), bins)
          : BinEdges::FromWeightedQuantiles(reference.values(), reference.weights(), bins);
  if (!edges.ok()) return edges.status();
  std::vector<double> r_counts(edges->bin_count(), 0.0), c_counts(edges->bin_count(), 0.0);
  for (size_t i = 0; i < reference.size(); ++i) {
    r_counts[edges->BinOf(reference.values()[i])] += reference.weights()[i];
  }
  for (size_t i = 0; i < current.size(); ++i) {
    c_counts[edges->BinOf(current.values()[i])] += current.weights()[i];
  }
  FeatureDrift drift;
  drift.n_reference = reference.total_weight();
  drift.n_current = current.total_weight();
  DW_ASSIGN_OR_RETURN(drift.divergences, CompareBinCounts(r_counts, c_counts));
  DW_ASSIGN_OR_RETURN(drift.ks, KsTest(reference, current));
  DW_ASSIGN_OR_RETURN(drift.wasserstein, Wasserstein(reference, current));
  drift.edges = edges->edges();
  drift.reference_proportions = Normalize(r_counts);
  drift.current_proportions = Normalize(c_counts);
  return drift;
}

absl::StatusOr<NumericBaseline> MakeNumericBaseline(std::shared_ptr<const NumericSummary> reference,
                                                    int bins) {
  if (reference == nullptr) return absl::InvalidArgumentError("reference summary is null");
  if (bins < 1) return absl::InvalidArgumentError(absl::StrCat("bins must be >= 1, got ", bins));
  DW_RETURN_IF_ERROR(CheckNonEmpty(*reference, "reference"));
  std::vector<double> edges;
  for (int k = 1; k < bins; ++k)
    edges.push_back(reference->Quantile(static_cast<double>(k) / bins));
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  DW_ASSIGN_OR_RETURN(BinEdges drift_edges, BinEdges::Create(std::move(edges)));
  NumericBaseline baseline;
  baseline.drift_edges = std::make_shared<const BinEdges>(std::move(drift_edges));
  baseline.reference_counts = reference->Rebin(*baseline.drift_edges);
  baseline.reference = std::move(reference);
  return baseline;
}

absl::StatusOr<FeatureDrift> CompareNumeric(const NumericBaseline& baseline,
                                            const NumericSummary& current) {
  if (baseline.reference == nullptr || baseline.drift_edges == nullptr) {
    return absl::InvalidArgumentError("baseline has no reference summary or drift edges");
  }
  if (baseline.reference_counts.size() != baseline.drift_edges->bin_count()) {
    return absl::InvalidArgumentError(
        absl::StrCat("baseline has ", baseline.reference_counts.size(), " reference counts for ",
                     baseline.drift_edges->bin_count(), " drift bins"));
  }
  const NumericSummary& reference = *baseline.reference;
  DW_RETURN_IF_ERROR(CheckSameEdges(reference, current));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  const std::vector<double> c_counts = current.Rebin(*baseline.drift_edges);
  FeatureDrift drift;
  drift.n_reference = reference.counts().weight;
  drift.n_current = current.counts().weight;
  DW_ASSIGN_OR_RETURN(drift.divergences, CompareBinCounts(baseline.reference_counts, c_counts));
  DW_ASSIGN_OR_RETURN(drift.ks, KsTest(reference, current));
  DW_ASSIGN_OR_RETURN(drift.wasserstein, Wasserstein(reference, current));
  drift.edges = baseline.drift_edges->edges();
  drift.reference_proportions = Normalize(baseline.reference_counts);
  drift.current_proportions = Normalize(c_counts);
  return drift;
}

absl::StatusOr<FeatureDrift> CompareCategorical(const CategoricalSummary& reference,
                                                const CategoricalSummary& current) {
  if (!(reference.total_weight() > 0)) return absl::InvalidArgumentError("reference is empty");
  if (!(current.total_weight() > 0)) return absl::InvalidArgumentError("current is empty");
  FeatureDrift drift;
  for (const auto& [name, w] : reference.counts()) drift.categories.push_back(name);
  for (const auto& [name, w] : current.counts()) {
    if (!reference.counts().contains(name)) drift.categories.push_back(name);
  }
  std::sort(drift.categories.begin(), drift.categories.end());
  for (std::string_view special : {base::kOther, base::kMissing}) {
    if (reference.WeightOf(special) > 0 || current.WeightOf(special) > 0) {
      drift.categories.emplace_back(special);
    }
  }
  std::vector<double> r_counts, c_counts;
  for (const std::string& name : drift.categories) {
    r_counts.push_back(reference.WeightOf(name));
    c_counts.push_back(current.WeightOf(name));
  }
  drift.n_reference = reference.total_weight();
  drift.n_current = current.total_weight();
  DW_ASSIGN_OR_RETURN(drift.divergences, CompareBinCounts(r_counts, c_counts));
  DW_ASSIGN_OR_RETURN(drift.chi2, ChiSquareTest(r_counts, c_counts, current.effective_size()));
  drift.reference_proportions = Normalize(r_counts);
  drift.current_proportions = Normalize(c_counts);
  return drift;
}

bool IsDrifted(const FeatureDrift& drift) {
  if (drift.divergences.psi >= kDriftPsi) return true;
  if (drift.ks && drift.wasserstein) {
    return drift.ks->p_value < kDriftPValue && drift.wasserstein->normalized >= kDriftWassersteinNorm;
  }
  return drift.chi2 && drift.chi2->p_value < kDriftPValue && drift.divergences.js >= kDriftJs;
}

}  // namespace driftwatch::detectors
