#include "driftwatch/detectors/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"
#include "internal/counts_codec.h"

namespace driftwatch::detectors {
namespace {

constexpr char kNumericMagic[] = "DWNS";
// 2 added NumericCounts::missing_weight, 3 the per-bin sums; 1 and 2 are
// still read.
constexpr uint32_t kNumericVersion = 3;

// numpy's _lerp: interpolating from the nearer end keeps the result
// bit-identical to numpy.quantile.
double NumpyLerp(double a, double b, double t) {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

std::vector<double> DedupSorted(std::vector<double> v) {
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// numpy.quantile(sorted, q) (the default linear method) of sorted values.
double SortedQuantile(std::span<const double> sorted, double q) {
  const size_t n = sorted.size();
  const double h = static_cast<double>(n - 1) * q;
  if (h >= static_cast<double>(n - 1)) return sorted[n - 1];
  const double lower = std::floor(h);
  const size_t i = static_cast<size_t>(lower);
  return NumpyLerp(sorted[i], sorted[i + 1], h - lower);
}

// The mass of one piece of a bin: `mass` spread uniformly over [lo, hi], or
// a point mass at lo when hi == lo. Weight <= x, or < x with `left_limit`.
double PieceWeight(double mass, double lo, double hi, double x, bool left_limit) {
  if (hi > lo) return mass * std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
  return (left_limit ? x > lo : x >= lo) ? mass : 0.0;
}

// The share of a bin's mass on [lo, mean] for the two-piece model whose
// mean is `mean`: a lo + (1 - a) hi = mean with each piece's mean at its
// middle gives a = (hi - mean) / (hi - lo).
double LowerShare(double lo, double mean, double hi) {
  return hi > lo ? (hi - mean) / (hi - lo) : 1.0;
}

absl::Status CheckBins(int bins) {
  if (bins < 1) return absl::InvalidArgumentError(absl::StrCat("bins must be >= 1, got ", bins));
  return absl::OkStatus();
}

}  // namespace

BinEdges::BinEdges(std::vector<double> edges) : edges_(std::move(edges)) {
  // A padded size P >= n + 1 lets the search reach every count in [0, n].
  const size_t padded_size = std::bit_ceil(edges_.size() + 1);
  padded_ = edges_;
  padded_.resize(padded_size + kMaxGridRun, std::numeric_limits<double>::infinity());
  half_ = padded_size / 2;
  BuildGrid();
}

void BinEdges::BuildGrid() {
  const size_t n = edges_.size();
  if (n < 2 || !(edges_.back() > edges_.front())) return;
  const size_t cells = std::min<size_t>(std::max<size_t>(64, 8 * n), 1 << 16);
  grid_lo_ = edges_.front();
  grid_scale_ = static_cast<double>(cells) / (edges_.back() - edges_.front());
  grid_last_ = static_cast<double>(cells - 1);
  if (!std::isfinite(grid_scale_)) return;
  // Cells are assigned with the very expression BinOf uses, which is
  // monotone in x: an edge in a lower cell than x is below x, one in a
  // higher cell above it, so only edges sharing x's cell need comparing.
  auto cell = [&](double x) {
    double t = (x - grid_lo_) * grid_scale_;
    t = t < 0 ? 0 : (t > grid_last_ ? grid_last_ : t);
    return static_cast<size_t>(t);
  };
  std::vector<uint32_t> per_cell(cells, 0);
  for (double e : edges_) ++per_cell[cell(e)];
  const uint32_t run = *std::max_element(per_cell.begin(), per_cell.end());
  if (run > static_cast<uint32_t>(kMaxGridRun)) return;  // binary search it is
  grid_.resize(cells);
  uint32_t below = 0;
  for (size_t c = 0; c < cells; ++c) {
    grid_[c] = below;
    below += per_cell[c];
  }
  grid_run_ = static_cast<int>(run);
}

absl::StatusOr<BinEdges> BinEdges::Create(std::vector<double> edges) {
  for (size_t i = 0; i < edges.size(); ++i) {
    if (!std::isfinite(edges[i])) {
      return absl::InvalidArgumentError(absl::StrCat("edge ", i, " is not finite"));
    }
    if (i > 0 && !(edges[i - 1] < edges[i])) {
      return absl::InvalidArgumentError(absl::StrCat("edges must be strictly increasing; edge ", i,
                                                     " (", edges[i], ") <= edge ", i - 1, " (",
                                                     edges[i - 1], ")"));
    }
  }
  return BinEdges(std::move(edges));
}

absl::StatusOr<BinEdges> BinEdges::ForReferenceSample(std::span<const double> values,
                                                      int bins) {
  if (auto s = CheckBins(bins); !s.ok()) return s;
  if (values.empty()) return absl::InvalidArgumentError("cannot take quantiles of empty values");
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> edges;
  for (int k = 1; k < bins; ++k) {
    edges.push_back(SortedQuantile(sorted, static_cast<double>(k) / bins));
  }
  for (int split = 2; split <= 8; split *= 2) {
    const double q = 1.0 / (static_cast<double>(bins) * split);
    if (static_cast<double>(sorted.size()) * q < 1) break;  // finer than the sample
    edges.push_back(SortedQuantile(sorted, q));
    edges.push_back(SortedQuantile(sorted, 1 - q));
  }
  std::sort(edges.begin(), edges.end());
  return Create(DedupSorted(std::move(edges)));
}

absl::StatusOr<BinEdges> BinEdges::FromQuantiles(std::span<const double> values, int bins) {
  if (auto s = CheckBins(bins); !s.ok()) return s;
  if (values.empty()) return absl::InvalidArgumentError("cannot take quantiles of empty values");
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> edges;
  edges.reserve(bins - 1);
  for (int k = 1; k < bins; ++k) {
    edges.push_back(SortedQuantile(sorted, static_cast<double>(k) / bins));
  }
  return Create(DedupSorted(std::move(edges)));
}

absl::StatusOr<BinEdges> BinEdges::FromWeightedQuantiles(std::span<const double> values,
                                                         std::span<const double> weights,
                                                         int bins) {
  if (auto s = CheckBins(bins); !s.ok()) return s;
  if (values.empty()) return absl::InvalidArgumentError("cannot take quantiles of empty values");
  if (weights.size() != values.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights has ", weights.size(), " entries but values has ", values.size()));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!(weights[i] > 0) || !std::isfinite(weights[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight ", i, " must be finite and > 0, got ", weights[i]));
    }
  }
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  // numpy normalises the cumulative weights by the total before searching.
  std::vector<double> cdf(order.size());
  double cum = 0;
  for (size_t i = 0; i < order.size(); ++i) cdf[i] = (cum += weights[order[i]]);
  for (double& c : cdf) c /= cum;
  std::vector<double> edges;
  edges.reserve(bins - 1);
  for (int k = 1; k < bins; ++k) {
    const double q = static_cast<double>(k) / bins;
    size_t i = std::lower_bound(cdf.begin(), cdf.end(), q) - cdf.begin();
    i = std::min(i, cdf.size() - 1);
    edges.push_back(values[order[i]]);
  }
  return Create(DedupSorted(std::move(edges)));
}

absl::StatusOr<BinEdges> BinEdges::EqualWidth(double lo, double hi, int bins) {
  if (auto s = CheckBins(bins); !s.ok()) return s;
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("equal-width range needs finite lo < hi, got [", lo, ", ", hi, "]"));
  }
  std::vector<double> edges;
  for (int k = 1; k < bins; ++k) edges.push_back(lo + (hi - lo) * k / bins);
  return Create(DedupSorted(std::move(edges)));
}

NumericSummary::NumericSummary(std::shared_ptr<const BinEdges> edges) : edges_(std::move(edges)) {
  if (edges_ == nullptr) edges_ = std::make_shared<const BinEdges>(*BinEdges::Create({}));
  bins_.assign(edges_->bin_count(), 0.0);
  sums_.assign(edges_->bin_count(), 0.0);
}

absl::Status NumericSummary::Merge(const NumericSummary& other) {
  if (edges_ != other.edges_ && !(*edges_ == *other.edges_)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot merge summaries with different edges (", edges_->edges().size(),
                     " vs ", other.edges_->edges().size(), " edges)"));
  }
  for (size_t i = 0; i < bins_.size(); ++i) {
    bins_[i] += other.bins_[i];
    sums_[i] += other.sums_[i];
  }
  const NumericCounts& o = other.counts_;
  if (o.count > 0) {
    counts_.min = counts_.count == 0 ? o.min : std::min(counts_.min, o.min);
    counts_.max = counts_.count == 0 ? o.max : std::max(counts_.max, o.max);
  }
  counts_.weight += o.weight;
  counts_.weight_sq += o.weight_sq;
  counts_.sum += o.sum;
  counts_.sum_sq += o.sum_sq;
  counts_.count += o.count;
  counts_.nulls += o.nulls;
  counts_.nans += o.nans;
  counts_.pos_infs += o.pos_infs;
  counts_.neg_infs += o.neg_infs;
  counts_.missing_weight += o.missing_weight;
  invalid_weights_ += other.invalid_weights_;
  return absl::OkStatus();
}

double NumericSummary::mean() const {
  return counts_.weight > 0 ? counts_.sum / counts_.weight : 0.0;
}

double NumericSummary::stddev() const {
  // min == max: exactly 0, not the cancellation residue of sum_sq/W - mean^2.
  if (!(counts_.weight > 0) || counts_.min == counts_.max) return 0.0;
  const double m = mean();
  return std::sqrt(std::max(0.0, counts_.sum_sq / counts_.weight - m * m));
}

double NumericSummary::effective_size() const {
  return counts_.weight_sq > 0 ? counts_.weight * counts_.weight / counts_.weight_sq : 0.0;
}

void NumericSummary::BinSupport(size_t k, double* lo, double* hi) const {
  const std::vector<double>& e = edges_->edges();
  *lo = k == 0 ? counts_.min : std::max(e[k - 1], counts_.min);
  *hi = k == e.size() ? counts_.max : std::min(e[k], counts_.max);
}

double NumericSummary::BinMean(size_t k, double lo, double hi) const {
  if (!(hi > lo)) return lo;
  const double mean = std::clamp(sums_[k] / bins_[k], lo, hi);
  // Equal values x summed with weights give sum / weight within a few ulps
  // of x; a tolerance far above that and far below any bin width keeps a
  // bin of ties (an integer on its edge) an exact point mass.
  const double tolerance = 1e-9 * (hi - lo);
  if (mean - lo <= tolerance) return lo;
  if (hi - mean <= tolerance) return hi;
  return mean;
}

std::vector<double> NumericSummary::PrefixWeights() const {
  std::vector<double> below(bins_.size() + 1, 0.0);
  for (size_t k = 0; k < bins_.size(); ++k) below[k + 1] = below[k] + bins_[k];
  return below;
}

double NumericSummary::CumulativeWeight(double x, std::span<const double> below,
                                        bool left_limit) const {
  if (counts_.count == 0 || x < counts_.min) return 0.0;
  const size_t k = edges_->BinOf(x);
  const double m = bins_[k];
  if (m == 0) return below[k];
  double lo, hi;
  BinSupport(k, &lo, &hi);
  if (x > hi) return below[k + 1];
  const double mean = BinMean(k, lo, hi);
  const double a = LowerShare(lo, mean, hi);
  return below[k] + PieceWeight(a * m, lo, mean, x, left_limit) +
         PieceWeight((1 - a) * m, mean, hi, x, left_limit);
}

double NumericSummary::Cdf(double x) const { return CdfAt(std::span<const double>(&x, 1))[0]; }

std::vector<double> NumericSummary::CdfAt(std::span<const double> xs, bool left_limit) const {
  std::vector<double> out(xs.size(), 0.0);
  const std::vector<double> below = PrefixWeights();
  const double total = below.back();
  if (!(total > 0)) return out;
  for (size_t i = 0; i < xs.size(); ++i) {
    out[i] = std::isnan(xs[i])
                 ? xs[i]
                 : std::min(1.0, CumulativeWeight(xs[i], below, left_limit) / total);
  }
  return out;
}

std::vector<NumericSummary::CdfRange> NumericSummary::CdfRangeAt(std::span<const double> xs,
                                                                 bool left_limit) const {
  std::vector<CdfRange> out(xs.size());
  const std::vector<double> below = PrefixWeights();
  const double total = below.back();
  if (!(total > 0)) return out;
  const double scale = 1 / total;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    if (left_limit ? !(x > counts_.min) : !(x >= counts_.min)) continue;  // 0 below the values
    const size_t k = edges_->BinOf(x);
    const double m = bins_[k];
    double lower = below[k], upper = below[k];
    if (m > 0) {
      double lo, hi;
      BinSupport(k, &lo, &hi);
      const double mean = BinMean(k, lo, hi);
      if (left_limit ? x <= lo : x < lo) {
        // below the bin's values
      } else if (left_limit ? x > hi : x >= hi) {
        lower = upper = below[k + 1];
      } else if (mean <= lo) {
        lower = upper = below[k + 1];  // a point mass at lo, passed
      } else if (mean >= hi) {
        // a point mass at hi, not reached
      } else if (x >= hi) {
        // P(X < hi): the limits of the bounds below
        lower += m * (hi - mean) / (hi - lo);
        upper += m;
      } else {
        lower += x > lo ? m * std::max(0.0, (x - mean) / (x - lo)) : 0.0;
        upper += m * std::min(1.0, (hi - mean) / (hi - x));
      }
    }
    out[i] = {std::min(1.0, lower * scale), std::min(1.0, upper * scale)};
  }
  return out;
}

void NumericSummary::AppendBreakpoints(std::vector<double>* out) const {
  for (size_t k = 0; k < bins_.size(); ++k) {
    if (bins_[k] == 0) continue;
    double lo, hi;
    BinSupport(k, &lo, &hi);
    out->insert(out->end(), {lo, BinMean(k, lo, hi), hi});
  }
}

double NumericSummary::CdfL1ErrorBound() const {
  const double total = std::accumulate(bins_.begin(), bins_.end(), 0.0);
  if (!(total > 0)) return 0.0;
  double bound = 0;
  for (size_t k = 0; k < bins_.size(); ++k) {
    if (bins_[k] == 0) continue;
    double lo, hi;
    BinSupport(k, &lo, &hi);
    if (!(hi > lo)) continue;  // a point mass is exact
    const double mean = BinMean(k, lo, hi);
    const double t = (mean - lo) / (hi - lo);
    // Same-mean CDFs on the bin differ by at most 2 min(t, 1-t) in L1;
    // the chord is within 1/2 and the two pieces within |1 - 2t| / 2 of it.
    const double phi = std::min(2 * std::min(t, 1 - t), std::max(t, 1 - t));
    // Snapping the mean (BinMean) moved it by at most this much.
    const double snap = std::abs(std::clamp(sums_[k] / bins_[k], lo, hi) - mean);
    bound += bins_[k] / total * ((hi - lo) * phi + snap);
  }
  return bound;
}

std::vector<double> NumericSummary::Rebin(const BinEdges& target) const {
  const std::vector<double>& t = target.edges();
  const std::vector<double> below = PrefixWeights();
  std::vector<double> out(target.bin_count(), 0.0);
  double previous = 0;
  for (size_t j = 0; j < t.size(); ++j) {
    const double cum = CumulativeWeight(t[j], below, /*left_limit=*/false);
    out[j] = std::max(0.0, cum - previous);
    previous = cum;
  }
  out[t.size()] = std::max(0.0, below.back() - previous);
  return out;
}

double NumericSummary::Quantile(double q) const {
  if (counts_.count == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  if (q == 0) return counts_.min;
  const double total = std::accumulate(bins_.begin(), bins_.end(), 0.0);
  const double target = q * total;
  double below = 0;
  for (size_t k = 0; k < bins_.size(); ++k) {
    const double m = bins_[k];
    if (m > 0 && below + m >= target) {
      double lo, hi;
      BinSupport(k, &lo, &hi);
      const double mean = BinMean(k, lo, hi);
      const double lower = LowerShare(lo, mean, hi) * m;
      const double r = std::clamp(target - below, 0.0, m);
      if (r <= lower) return lower > 0 ? lo + (r / lower) * (mean - lo) : lo;
      return mean + std::clamp((r - lower) / (m - lower), 0.0, 1.0) * (hi - mean);
    }
    below += m;
  }
  return counts_.max;  // rounding left target just above the total
}

std::string NumericSummary::Serialize() const {
  base::ByteWriter w;
  w.Raw(std::string_view(kNumericMagic, 4));
  w.U32(kNumericVersion);
  w.U32(static_cast<uint32_t>(edges_->edges().size()));
  for (double e : edges_->edges()) w.F64(e);
  for (double b : bins_) w.F64(b);
  for (double s : sums_) w.F64(s);
  internal::PutCounts(w, counts_, invalid_weights_);
  return std::move(w).FinishWithCrc();
}

absl::StatusOr<NumericSummary> NumericSummary::Deserialize(std::string_view bytes) {
  auto corrupt = [](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("numeric summary: ", what));
  };
  std::string_view body;
  if (!base::VerifyCrc(bytes, &body)) return corrupt("truncated or checksum mismatch");
  base::ByteReader r(body);
  std::string_view magic;
  uint32_t version, edge_count;
  if (!r.Raw(4, &magic) || magic != std::string_view(kNumericMagic, 4)) return corrupt("bad magic");
  if (!r.U32(&version)) return corrupt("truncated header");
  if (version < 1 || version > kNumericVersion) {
    return corrupt(absl::StrCat("unsupported version ", version));
  }
  if (!r.U32(&edge_count)) return corrupt("truncated header");
  // Each edge needs 16 bytes (edge + bin): reject absurd counts before allocating.
  if (edge_count > r.remaining() / 16) return corrupt("edge count exceeds payload");
  const bool has_sums = version >= 3;
  std::vector<double> edges(edge_count);
  for (double& e : edges) {
    if (!r.F64(&e)) return corrupt("truncated edges");
  }
  absl::StatusOr<BinEdges> bin_edges = BinEdges::Create(std::move(edges));
  if (!bin_edges.ok()) return corrupt(bin_edges.status().message());
  auto edges_ptr = std::make_shared<const BinEdges>(*std::move(bin_edges));
  std::vector<double> bins(edges_ptr->bin_count()), sums;
  for (double& b : bins) {
    if (!r.F64(&b)) return corrupt("truncated bins");
  }
  if (has_sums) {
    sums.resize(bins.size());
    for (double& s : sums) {
      if (!r.F64(&s)) return corrupt("truncated bin sums");
    }
  }
  NumericCounts c;
  uint64_t invalid_weights = 0;
  if (!internal::GetCounts(r, version, &c, &invalid_weights)) return corrupt("truncated counts");
  if (r.remaining() != 0) return corrupt("trailing bytes");
  if (!(c.weight >= 0) || !(c.weight_sq >= 0) || (c.count > 0 && !(c.min <= c.max))) {
    return corrupt("inconsistent counts");
  }
  absl::StatusOr<NumericSummary> summary = FromParts(std::move(edges_ptr), std::move(bins),
                                                     std::move(sums), c, invalid_weights);
  if (!summary.ok()) return corrupt(summary.status().message());
  return summary;
}

absl::StatusOr<NumericSummary> NumericSummary::FromParts(std::shared_ptr<const BinEdges> edges,
                                                         std::vector<double> bins,
                                                         std::vector<double> sums,
                                                         const NumericCounts& counts,
                                                         uint64_t invalid_weights) {
  if (edges == nullptr) return absl::InvalidArgumentError("summary edges are null");
  if (bins.size() != edges->bin_count()) {
    return absl::InvalidArgumentError(absl::StrCat("summary has ", bins.size(),
                                                   " bins but its edges make ",
                                                   edges->bin_count()));
  }
  for (size_t i = 0; i < bins.size(); ++i) {
    if (!std::isfinite(bins[i]) || bins[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("summary bin ", i, " must be finite and >= 0, got ", bins[i]));
    }
  }
  if (!sums.empty() && sums.size() != bins.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("summary has ", sums.size(), " bin sums for ", bins.size(), " bins"));
  }
  for (size_t i = 0; i < sums.size(); ++i) {
    if (!std::isfinite(sums[i])) {
      return absl::InvalidArgumentError(absl::StrCat("summary bin sum ", i, " is not finite"));
    }
  }
  NumericSummary s(std::move(edges));
  s.bins_ = std::move(bins);
  s.counts_ = counts;
  s.invalid_weights_ = invalid_weights;
  if (!sums.empty()) {
    s.sums_ = std::move(sums);
  } else {
    // A format without sums: each bin's mass at the middle of its support,
    // which the model spreads as the chord it used to be.
    for (size_t k = 0; k < s.bins_.size(); ++k) {
      if (s.bins_[k] == 0 || s.counts_.count == 0) continue;
      double lo, hi;
      s.BinSupport(k, &lo, &hi);
      s.sums_[k] = s.bins_[k] * (lo + (hi - lo) / 2);
    }
  }
  return s;
}

}  // namespace driftwatch::detectors
