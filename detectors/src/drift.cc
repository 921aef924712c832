#include "driftwatch/detectors/drift.h"

#include <algorithm>
#include <cmath>
#include <limits>
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

// What two summaries with the same edges imply about the true CDFs: a
// bound on sup |F_r - F_c| and a range for the integral of |F_r - F_c|.
// Between the bins' values both CDFs are flat and exact, so only the
// inside of each bin's union support [lo, hi] is uncertain. There each
// CDF lies in its CdfRange envelope (histogram.h), whose ends only rise
// with x, so on a grid cell [a, b] F_r - F_c <= R_upper(b) - C_lower(a)
// and the other way round. The integral of each CDF over [lo, hi] is
// exact (below (hi - lo) + mass (hi - mean)), which pins the signed
// integral of F_r - F_c: its absolute value bounds the integral of
// |F_r - F_c| from below, and from above once one sign's excursions are
// bounded (|g| = g + 2 g^- = -g + 2 g^+).
struct EnvelopeBounds {
  double ks_sup = 0;    // >= sup |F_r - F_c| inside the bins
  double w1_lower = 0;  // <= integral of |F_r - F_c| <= w1_upper
  double w1_upper = 0;
};

// Grid cells per bin: the bound tightens as 1 / cells towards what the
// envelopes allow; 24 costs ~50 CDF ranges per non-empty bin.
constexpr int kEnvelopeCells = 24;

// Integral of a summary's (unnormalised) CDF over [lo, hi], which holds
// bin k's values: exact from the bin's mass and sum.
double BinArea(const NumericSummary& s, size_t k, double below, double lo, double hi) {
  const double m = s.bins()[k];
  if (!(m > 0)) return below * (hi - lo);
  double slo, shi;
  s.BinSupport(k, &slo, &shi);
  const double mean = std::clamp(s.bin_sums()[k] / m, slo, shi);
  return below * (hi - lo) + m * (hi - mean);
}

EnvelopeBounds BoundBetween(const NumericSummary& r, const NumericSummary& c) {
  std::span<const double> rb = r.bins(), cb = c.bins();
  const double r_scale = 1 / Sum(rb), c_scale = 1 / Sum(cb);
  EnvelopeBounds out;
  double r_below = 0, c_below = 0;
  double previous_hi = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> xs;
  for (size_t k = 0; k < rb.size(); r_below += rb[k], c_below += cb[k], ++k) {
    if (!(rb[k] > 0) && !(cb[k] > 0)) continue;
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const NumericSummary* s : {&r, &c}) {
      if (!(s->bins()[k] > 0)) continue;
      double a, b;
      s->BinSupport(k, &a, &b);
      lo = std::min(lo, a);
      hi = std::max(hi, b);
    }
    if (!std::isnan(previous_hi) && lo > previous_hi) {
      const double flat = std::abs(r_below * r_scale - c_below * c_scale) * (lo - previous_hi);
      out.w1_lower += flat;
      out.w1_upper += flat;
    }
    previous_hi = hi;
    if (!(hi > lo)) continue;  // both a point mass at one value: exact
    xs.clear();
    for (int i = 0; i < kEnvelopeCells; ++i) xs.push_back(lo + (hi - lo) * i / kEnvelopeCells);
    xs.push_back(hi);
    for (const NumericSummary* s : {&r, &c}) {
      if (!(s->bins()[k] > 0)) continue;
      double a, b;
      s->BinSupport(k, &a, &b);
      const double mean = s->BinMean(k, a, b);
      if (mean > lo && mean < hi) xs.push_back(mean);
    }
    std::sort(xs.begin(), xs.end());
    // On a cell [a, b): F(a) <= F(x) <= F(b-), so the lower ends at a and
    // the upper ends of the left limits at b.
    const std::vector<NumericSummary::CdfRange> fr = r.CdfRangeAt(xs);
    const std::vector<NumericSummary::CdfRange> fc = c.CdfRangeAt(xs);
    const std::vector<NumericSummary::CdfRange> fr_left = r.CdfRangeAt(xs, /*left_limit=*/true);
    const std::vector<NumericSummary::CdfRange> fc_left = c.CdfRangeAt(xs, /*left_limit=*/true);
    double plus = 0, minus = 0, either = 0, surely = 0;
    for (size_t i = 0; i + 1 < xs.size(); ++i) {
      const double width = xs[i + 1] - xs[i];
      const double up = fr_left[i + 1].upper - fc[i].lower;    // F_r - F_c <= up on the cell
      const double down = fc_left[i + 1].upper - fr[i].lower;  // F_c - F_r <= down
      out.ks_sup = std::max(out.ks_sup, std::max(up, down));
      plus += width * std::max(0.0, up);
      minus += width * std::max(0.0, down);
      either += width * std::max(0.0, std::max(up, down));
      surely += width * std::max(0.0, std::max(fr[i].lower - fc_left[i + 1].upper,
                                               fc[i].lower - fr_left[i + 1].upper));
    }
    const double signed_area = BinArea(r, k, r_below, lo, hi) * r_scale -
                               BinArea(c, k, c_below, lo, hi) * c_scale;
    const double lower = std::max(std::abs(signed_area), surely);
    out.w1_lower += lower;
    out.w1_upper += std::max(
        lower, std::min({either, signed_area + 2 * minus, -signed_area + 2 * plus}));
  }
  return out;
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

namespace {

// KsTest of two checked summaries, given what their envelopes say.
KsResult KsOfSummaries(const NumericSummary& reference, const NumericSummary& current,
                       const EnvelopeBounds& envelope) {
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
  // Each bin's mass bounds how far the CDFs move inside it; the envelopes
  // say more (how far they can part given both bins' means).
  const double bound = std::min(std::max(std::max(r_max, rb.back()) * r_scale,
                                         std::max(c_max, cb.back()) * c_scale),
                                std::max(0.0, envelope.ks_sup - d));
  KsResult result;
  result.statistic = d;
  result.error_bound = std::min(bound, 1.0 - d);
  result.n_effective = EffectiveN(reference.effective_size(), current.effective_size());
  result.p_value = KolmogorovSurvival(std::sqrt(result.n_effective) * d);
  result.p_value_low =
      KolmogorovSurvival(std::sqrt(result.n_effective) * (d + result.error_bound));
  return result;
}

}  // namespace

absl::StatusOr<KsResult> KsTest(const NumericSummary& reference, const NumericSummary& current) {
  DW_RETURN_IF_ERROR(CheckSameEdges(reference, current));
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  return KsOfSummaries(reference, current, BoundBetween(reference, current));
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

namespace {

// Wasserstein of two checked summaries, given what their envelopes say.
WassersteinResult WassersteinOfSummaries(const NumericSummary& reference,
                                         const NumericSummary& current,
                                         const EnvelopeBounds& envelope) {
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
  // Triangle inequality: |W(F_r, F_c) - W(~F_r, ~F_c)| <= |F_r - ~F_r|_1 +
  // |F_c - ~F_c|_1; and the true W1 lies in the envelopes' range.
  result.error_bound =
      std::min(reference.CdfL1ErrorBound() + current.CdfL1ErrorBound(),
               std::max({0.0, result.distance - envelope.w1_lower,
                         envelope.w1_upper - result.distance}));
  const double sd = reference.stddev();
  result.normalized = sd > 0 ? result.distance / sd : 0.0;
  result.normalized_error_bound = sd > 0 ? result.error_bound / sd : 0.0;
  return result;
}

}  // namespace

absl::StatusOr<WassersteinResult> Wasserstein(const NumericSummary& reference,
                                              const NumericSummary& current) {
  DW_RETURN_IF_ERROR(CheckSameEdges(reference, current));
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  DW_RETURN_IF_ERROR(CheckNonEmpty(current, "current"));
  return WassersteinOfSummaries(reference, current, BoundBetween(reference, current));
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
  DW_RETURN_IF_ERROR(CheckNonEmpty(reference, "reference"));
  // One pass over the envelopes serves both bounds.
  const EnvelopeBounds envelope = BoundBetween(reference, current);
  drift.ks = KsOfSummaries(reference, current, envelope);
  drift.wasserstein = WassersteinOfSummaries(reference, current, envelope);
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
