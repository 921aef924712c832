// Bins and mergeable numeric summaries: the hot-path state of every numeric
// feature and score, per model x slice x bucket.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::detectors {

// Strictly increasing finite edges e[0] < ... < e[n-1] defining n+1 bins:
// bin 0 = (-inf, e[0]], bin k = (e[k-1], e[k]], bin n = (e[n-1], +inf).
// A value equal to an edge belongs to the bin on its left (DESIGN.md).
// Immutable after construction; thread-safe to share (summaries hold a
// shared_ptr to one instance per feature).
class BinEdges {
 public:
  // Fails with INVALID_ARGUMENT if an edge is not finite or the edges are not
  // strictly increasing. Zero edges is valid (one bin holding everything).
  static absl::StatusOr<BinEdges> Create(std::vector<double> edges);

  // Equal-frequency edges of `values` at the quantiles k/bins, k = 1..bins-1,
  // computed exactly as numpy.quantile's default (linear interpolation),
  // duplicates removed. Non-finite values must already be filtered out.
  // Fails if `values` is empty or bins < 1.
  static absl::StatusOr<BinEdges> FromQuantiles(std::span<const double> values, int bins);

  // The summary edges of a reference sample (what the registry draws for
  // a feature registered with `reference_sample`): the quantiles k / bins
  // (numpy's linear method), and in each tail 1 / (2 bins), 1 / (4 bins)
  // and 1 / (8 bins) and one minus those, as far as the sample resolves
  // them (n q >= 1). The outer bins reach the extremes, so they are the
  // widest; split, they bound KS and Wasserstein much tighter
  // (docs/statistics.md). Equal quantiles collapse into one edge. Fails on
  // an empty sample or bins < 1.
  static absl::StatusOr<BinEdges> ForReferenceSample(std::span<const double> values, int bins);

  // Weighted variant: edges at the weighted quantiles k/bins using the
  // inverted weighted CDF (numpy >= 2 `quantile(..., weights=w,
  // method="inverted_cdf")`). `weights` must be > 0 and match `values`.
  static absl::StatusOr<BinEdges> FromWeightedQuantiles(std::span<const double> values,
                                                        std::span<const double> weights, int bins);

  // `bins` equal-width bins over [lo, hi]: edges lo + (hi-lo)*k/bins for
  // k = 1..bins-1 (the outer bins still extend to +-inf).
  static absl::StatusOr<BinEdges> EqualWidth(double lo, double hi, int bins);

  size_t bin_count() const { return edges_.size() + 1; }
  const std::vector<double>& edges() const { return edges_; }

  // Index of the bin holding finite or infinite `x` (not NaN): the number of
  // edges strictly less than x. No allocation. When the edges spread evenly
  // enough (quantile edges do), a uniform grid over [e[0], e[n-1]] gives the
  // count below x's cell and at most kMaxGridRun compares finish it;
  // otherwise a branch-free binary search over a padded copy of the edges.
  size_t BinOf(double x) const {
    if (!grid_.empty()) {
      double t = (x - grid_lo_) * grid_scale_;
      t = t < 0 ? 0 : (t > grid_last_ ? grid_last_ : t);
      size_t i = grid_[static_cast<size_t>(t)];
      for (int j = 0; j < grid_run_; ++j) i += padded_[i] < x;
      return i;
    }
    size_t i = 0;
    for (size_t step = half_; step > 0; step >>= 1) {
      i += (padded_[i + step - 1] < x) ? step : 0;
    }
    return i;
  }

  bool operator==(const BinEdges& other) const { return edges_ == other.edges_; }

 private:
  explicit BinEdges(std::vector<double> edges);
  void BuildGrid();
  std::vector<double> edges_;
  std::vector<double> padded_;  // edges_ padded with +inf to a power of two
  size_t half_ = 0;             // padded_.size() / 2 ... search start step
  // The grid (empty when not worth it): cell(x) = clamp((x - lo) * scale),
  // grid_[c] = edges whose cell is < c (all of them are < any x in c), and
  // grid_run_ = the most edges sharing one cell, the compares left to do.
  static constexpr int kMaxGridRun = 3;
  std::vector<uint32_t> grid_;
  double grid_lo_ = 0;
  double grid_scale_ = 0;
  double grid_last_ = 0;
  int grid_run_ = 0;
};

// Weighted moments and counts of the values a summary has seen. Non-finite
// values and nulls are counted here and never enter sums or bins.
struct NumericCounts {
  double weight = 0;     // sum of weights of finite values
  double weight_sq = 0;  // sum of squared weights (Kish effective size)
  double sum = 0;        // sum of w * x
  double sum_sq = 0;     // sum of w * x^2
  double min = 0;        // finite values only; meaningless when weight == 0
  double max = 0;
  uint64_t count = 0;  // number of finite values (unweighted)
  uint64_t nulls = 0;  // missing values
  uint64_t nans = 0;
  uint64_t pos_infs = 0;
  uint64_t neg_infs = 0;
  // Sum of the weights of nulls and non-finite values: the weighted null
  // rate is missing_weight / (missing_weight + weight). Summaries decoded
  // from format version 1 (which did not keep it) hold the unweighted
  // count of nulls and non-finite values here.
  double missing_weight = 0;
};

// The per-value updates of a summary's moments and non-finite counts, shared
// by NumericSummary and the ingest accumulator (profile.h), whose structs
// use the same field names.
template <typename Moments>
inline void AddToMoments(Moments& m, double x, double weight) {
  m.min = m.count == 0 ? x : std::min(m.min, x);
  m.max = m.count == 0 ? x : std::max(m.max, x);
  ++m.count;
  m.weight += weight;
  m.weight_sq += weight * weight;
  m.sum += weight * x;
  m.sum_sq += weight * x * x;
}
template <typename Counts>
inline void CountNonFinite(Counts& c, double x) {
  if (std::isnan(x)) {
    ++c.nans;
  } else if (x > 0) {
    ++c.pos_infs;
  } else {
    ++c.neg_infs;
  }
}

// A mergeable summary of one numeric stream: per fixed bin its weight and
// its weighted sum (so its mean), plus exact moments. Update is O(log bins)
// branch-free with no allocation. Two summaries merge exactly when they
// share the same edges. Not thread-safe; one owner (an ingest shard)
// updates it.
//
// The CDF model (docs/statistics.md): exact at every bin edge; inside a bin
// (clipped to the observed [min, max]) the bin's mass is spread as two
// uniform pieces, [lo, mean] and [mean, hi], weighted so that the piece
// mixture has the bin's mean. A bin whose values all sit at one end (an
// integer on its edge, a tie) is a point mass there, so it is never split.
// Any CDF value is off by at most the mass of the bin it falls in.
class NumericSummary {
 public:
  explicit NumericSummary(std::shared_ptr<const BinEdges> edges);

  // `weight` is 1 / sample_rate, > 0 (the caller validates; a non-positive
  // weight is ignored and counted as invalid). NaN / +-Inf are counted and
  // skipped.
  void Add(double x, double weight = 1.0) {
    if (!(weight > 0)) {
      ++invalid_weights_;
      return;
    }
    if (!std::isfinite(x)) {
      AddNonFinite(x, weight);
      return;
    }
    AddAt(edges_->BinOf(x), x, weight);
  }
  // A missing value of an event of `weight` (> 0, unchecked).
  void AddNull(double weight = 1.0) {
    ++counts_.nulls;
    counts_.missing_weight += weight;
  }

  // The hot path when one value updates several summaries that share edges
  // (one per slice): the caller computes `bin` = edges().BinOf(x) once and
  // has already checked that x is finite and weight > 0.
  void AddAt(size_t bin, double x, double weight) {
    bins_[bin] += weight;
    sums_[bin] += weight * x;
    AddToMoments(counts_, x, weight);
  }
  // Counts a non-finite value (NaN, +-Inf) of `weight` as Add would.
  void AddNonFinite(double x, double weight = 1.0) {
    CountNonFinite(counts_, x);
    counts_.missing_weight += weight;
  }

  // Rebuilds a summary from its parts (a decoder's output), e.g. a profile
  // that stores the edges once for many summaries. `sums` holds each bin's
  // weighted sum; empty means unknown (a blob of a format that kept none),
  // and each bin's mass is then taken to sit at the middle of its support.
  // INVALID_ARGUMENT when `bins` or `sums` does not match the edges or
  // holds a non-finite value, or a bin weight is negative.
  static absl::StatusOr<NumericSummary> FromParts(std::shared_ptr<const BinEdges> edges,
                                                  std::vector<double> bins,
                                                  std::vector<double> sums,
                                                  const NumericCounts& counts,
                                                  uint64_t invalid_weights);

  // Adds `other` into this summary. FAILED_PRECONDITION if the edges differ.
  absl::Status Merge(const NumericSummary& other);

  const BinEdges& edges() const { return *edges_; }
  std::shared_ptr<const BinEdges> shared_edges() const { return edges_; }
  std::span<const double> bins() const { return bins_; }
  std::span<const double> bin_sums() const { return sums_; }  // sum of w * x per bin
  const NumericCounts& counts() const { return counts_; }
  uint64_t invalid_weights() const { return invalid_weights_; }

  double mean() const;            // weighted; 0 when empty
  double stddev() const;          // weighted population std (ddof = 0)
  double effective_size() const;  // Kish: weight^2 / weight_sq; 0 when empty

  // Weighted CDF F(x) = P(X <= x) over finite values under the model above:
  // exact at edges, the two pieces inside a bin (outer bins reach min / max).
  double Cdf(double x) const;
  // Cdf at each of `xs` (any order), in O(bins + n log bins); with
  // `left_limit`, the limit from the left, P(X < x), which differs from
  // Cdf(x) only at a point mass.
  std::vector<double> CdfAt(std::span<const double> xs, bool left_limit = false) const;

  // The points where the model's CDF bends (each non-empty bin's lo, mean
  // and hi), appended to `out` unsorted: between two consecutive ones the
  // CDF is linear.
  void AppendBreakpoints(std::vector<double>* out) const;

  // Bound on the L1 distance (integral of |F - Cdf|, in units of x) between
  // the model's Cdf and the true ECDF of the values added: the sum over bins
  // of mass_b times width_b times phi(t_b), width_b the bin clipped to
  // [min, max], t_b the mean's position in it, phi(t) = min(2 min(t, 1-t),
  // max(t, 1-t)) <= 1/2 (docs/statistics.md); 0 for a point mass.
  double CdfL1ErrorBound() const;

  // What the summary alone implies about the true CDF, for bounds between
  // two summaries (drift.cc). For a non-empty bin k with support [lo, hi]
  // (BinSupport), mass m, mean mu (BinMean) and weight `below` under it,
  // every multiset of values with these bin weights, bin sums, min and max
  // has, for lo <= x < hi, its weight <= x in
  //   [below + m max(0, (x - mu) / (x - lo)), below + m min(1, (hi - mu) / (hi - x))]
  // (the values above x are > x and those at or below it are >= lo, and
  // the other way round; docs/statistics.md). Outside [lo, hi) the weight
  // is exact: below under lo, below + m from hi on; a bin whose mean sits
  // at an end is a point mass there. `lower` and `upper` are normalised by
  // the total weight, as Cdf is.
  struct CdfRange {
    double lower = 0, upper = 0;
  };
  // With `left_limit`, the range of P(X < x) instead.
  std::vector<CdfRange> CdfRangeAt(std::span<const double> xs, bool left_limit = false) const;

  // The interval [lo, hi] over which bin k's values lie: the bin clipped to
  // [min, max] observed. Only meaningful for a non-empty bin.
  void BinSupport(size_t k, double* lo, double* hi) const;
  // Bin k's mean clamped to [lo, hi], and snapped to lo or hi when within
  // rounding of it (so a bin of equal values is an exact point mass).
  double BinMean(size_t k, double lo, double hi) const;

  // Weighted mass of each bin of `target` (a different edge set), using Cdf.
  // Exact when every target edge is one of this summary's edges.
  std::vector<double> Rebin(const BinEdges& target) const;

  // Inverse of the interpolated Cdf: the smallest x with Cdf(x) >= q, q in
  // [0, 1] (clamped). Returns min for q = 0 and 0 when the summary is empty.
  double Quantile(double q) const;

  // Stable binary encoding (docs/formats/summary.md) and its inverse.
  // Deserialize fails with DATA_LOSS on truncated or corrupt input.
  std::string Serialize() const;
  static absl::StatusOr<NumericSummary> Deserialize(std::string_view bytes);

 private:
  // below[k] = total weight of bins < k, for k = 0..bin_count().
  std::vector<double> PrefixWeights() const;
  // Weight of finite values <= x (< x with `left_limit`) under the model.
  double CumulativeWeight(double x, std::span<const double> below, bool left_limit) const;

  std::shared_ptr<const BinEdges> edges_;
  std::vector<double> bins_;
  std::vector<double> sums_;  // per bin: sum of w * x
  NumericCounts counts_;
  uint64_t invalid_weights_ = 0;
};

}  // namespace driftwatch::detectors
