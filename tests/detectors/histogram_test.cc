#include "driftwatch/detectors/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();

std::shared_ptr<const BinEdges> Shared(BinEdges edges) {
  return std::make_shared<const BinEdges>(std::move(edges));
}

std::vector<double> Normal(int n, double mean, double sd, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

// Exact weighted ECDF, for comparison with the interpolated one.
double ExactCdf(const std::vector<double>& values, double x) {
  return static_cast<double>(
             std::count_if(values.begin(), values.end(), [x](double v) { return v <= x; })) /
         values.size();
}

TEST(BinEdgesTest, CreateRejectsBadEdges) {
  auto unsorted = BinEdges::Create({1.0, 1.0});
  EXPECT_EQ(unsorted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unsorted.status().message(), HasSubstr("strictly increasing"));
  auto nan = BinEdges::Create({0.0, std::nan("")});
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("edge 1 is not finite"));
  EXPECT_FALSE(BinEdges::Create({-kInf, 0.0}).ok());
  EXPECT_TRUE(BinEdges::Create({}).ok());
}

TEST(BinEdgesTest, ValueOnAnEdgeBelongsToTheLeftBin) {
  auto edges = *BinEdges::Create({-1.0, 0.0, 2.5});
  EXPECT_EQ(edges.bin_count(), 4u);
  EXPECT_EQ(edges.BinOf(-kInf), 0u);
  EXPECT_EQ(edges.BinOf(-1.0), 0u);
  EXPECT_EQ(edges.BinOf(std::nextafter(-1.0, 0.0)), 1u);
  EXPECT_EQ(edges.BinOf(0.0), 1u);
  EXPECT_EQ(edges.BinOf(1.0), 2u);
  EXPECT_EQ(edges.BinOf(2.5), 2u);
  EXPECT_EQ(edges.BinOf(2.6), 3u);
  EXPECT_EQ(edges.BinOf(kInf), 3u);
}

TEST(BinEdgesTest, NoEdgesIsOneBin) {
  auto edges = *BinEdges::Create({});
  EXPECT_EQ(edges.bin_count(), 1u);
  EXPECT_EQ(edges.BinOf(-kInf), 0u);
  EXPECT_EQ(edges.BinOf(3.0), 0u);
  EXPECT_EQ(edges.BinOf(kInf), 0u);
}

// Property: the branch-free search equals std::lower_bound (count of edges
// strictly below x) for every edge count around the powers of two.
TEST(BinEdgesTest, BinOfMatchesLowerBound) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(-10, 10);
  for (size_t n = 0; n <= 70; ++n) {
    std::vector<double> e(n);
    for (double& x : e) x = uniform(rng);
    std::sort(e.begin(), e.end());
    e.erase(std::unique(e.begin(), e.end()), e.end());
    auto edges = *BinEdges::Create(e);
    std::vector<double> probes = e;  // hit every edge exactly
    for (int i = 0; i < 200; ++i) probes.push_back(uniform(rng) * 1.2);
    probes.push_back(kInf);
    probes.push_back(-kInf);
    for (double x : probes) {
      const size_t expected = std::lower_bound(e.begin(), e.end(), x) - e.begin();
      ASSERT_EQ(edges.BinOf(x), expected) << "n=" << n << " x=" << x;
    }
  }
}

TEST(BinEdgesTest, FromQuantilesIsNumpyLinearBitForBit) {
  // numpy.quantile(values, arange(1, bins) / bins).tolist() from numpy 1.24.
  const std::vector<double> a = {0.0, 1.0, 3.0, 7.0, 15.0};
  EXPECT_THAT(BinEdges::FromQuantiles(a, 3)->edges(),
              ElementsAre(1.6666666666666665, 5.666666666666666));
  const std::vector<double> b = {2.5, -1.0, 4.0, 0.1, 9.0, 3.3, 7.7};
  EXPECT_THAT(
      BinEdges::FromQuantiles(b, 10)->edges(),
      ElementsAre(-0.33999999999999997, 0.5800000000000004, 2.0199999999999996, 2.8200000000000003,
                  3.3, 3.7199999999999998, 4.7399999999999975, 6.960000000000003, 8.22));
}

TEST(BinEdgesTest, FromQuantilesDropsDuplicates) {
  const std::vector<double> constant(50, 4.0);
  EXPECT_THAT(BinEdges::FromQuantiles(constant, 10)->edges(), ElementsAre(4.0));
  const std::vector<double> two = {1, 1, 1, 1, 1, 1, 2, 2, 2, 2};
  EXPECT_THAT(BinEdges::FromQuantiles(two, 4)->edges(), ElementsAre(1.0, 2.0));
  const std::vector<double> single = {3.0};
  EXPECT_THAT(BinEdges::FromQuantiles(single, 10)->edges(), ElementsAre(3.0));
  EXPECT_TRUE(BinEdges::FromQuantiles(single, 1)->edges().empty());
}

TEST(BinEdgesTest, FromQuantilesRejectsBadInput) {
  auto empty = BinEdges::FromQuantiles({}, 10);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("empty"));
  const std::vector<double> v = {1, 2};
  auto zero_bins = BinEdges::FromQuantiles(v, 0);
  EXPECT_EQ(zero_bins.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero_bins.status().message(), HasSubstr("bins"));
}

TEST(BinEdgesTest, WeightedQuantilesUseTheInvertedCdf) {
  // Smallest x whose cumulative weight reaches q * W.
  const std::vector<double> v = {4.0, 1.0, 3.0, 2.0};
  const std::vector<double> ones = {1, 1, 1, 1};
  EXPECT_THAT(BinEdges::FromWeightedQuantiles(v, ones, 4)->edges(), ElementsAre(1.0, 2.0, 3.0));
  const std::vector<double> w = {1, 3, 1, 1};  // 1.0 carries half the weight
  EXPECT_THAT(BinEdges::FromWeightedQuantiles(v, w, 2)->edges(), ElementsAre(1.0));
  EXPECT_THAT(BinEdges::FromWeightedQuantiles(v, w, 3)->edges(), ElementsAre(1.0, 2.0));
}

// Property: integer weight k equals repeating the value k times.
TEST(BinEdgesTest, IntegerWeightsEqualRepetition) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> count(1, 5);
  const std::vector<double> v = Normal(300, 0, 1, 3);
  std::vector<double> w(v.size()), repeated;
  for (size_t i = 0; i < v.size(); ++i) {
    w[i] = count(rng);
    repeated.insert(repeated.end(), static_cast<size_t>(w[i]), v[i]);
  }
  std::sort(repeated.begin(), repeated.end());
  auto edges = *BinEdges::FromWeightedQuantiles(v, w, 10);
  ASSERT_EQ(edges.edges().size(), 9u);
  for (int k = 1; k < 10; ++k) {
    // inverted_cdf on the repeated sample: index ceil(q n) - 1.
    const double qn = static_cast<double>(k) / 10 * repeated.size();
    EXPECT_EQ(edges.edges()[k - 1], repeated[static_cast<size_t>(std::ceil(qn)) - 1]);
  }
}

TEST(BinEdgesTest, WeightedQuantilesRejectBadWeights) {
  const std::vector<double> v = {1, 2};
  const std::vector<double> short_w = {1};
  auto mismatch = BinEdges::FromWeightedQuantiles(v, short_w, 2);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("weights"));
  const std::vector<double> zero = {1, 0};
  auto bad = BinEdges::FromWeightedQuantiles(v, zero, 2);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("weight 1"));
}

TEST(BinEdgesTest, EqualWidth) {
  EXPECT_THAT(BinEdges::EqualWidth(0, 1, 4)->edges(), ElementsAre(0.25, 0.5, 0.75));
  EXPECT_TRUE(BinEdges::EqualWidth(0, 1, 1)->edges().empty());
  EXPECT_EQ(BinEdges::EqualWidth(1, 1, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BinEdges::EqualWidth(0, kInf, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BinEdges::EqualWidth(0, 1, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NumericSummaryTest, CountsNonFiniteAndInvalidWeightsSeparately) {
  NumericSummary s(Shared(*BinEdges::Create({0.0})));
  s.Add(-1.0);
  s.Add(2.0, 3.0);
  s.Add(std::nan(""));
  s.Add(kInf);
  s.Add(-kInf);
  s.Add(kInf);
  s.Add(1.0, 0.0);
  s.Add(1.0, -2.0);
  s.Add(1.0, std::nan(""));
  s.AddNull();
  EXPECT_THAT(s.bins(), ElementsAre(1.0, 3.0));
  const NumericCounts& c = s.counts();
  EXPECT_EQ(c.count, 2u);
  EXPECT_EQ(c.weight, 4.0);
  EXPECT_EQ(c.weight_sq, 10.0);
  EXPECT_EQ(c.sum, 5.0);
  EXPECT_EQ(c.sum_sq, 13.0);
  EXPECT_EQ(c.min, -1.0);
  EXPECT_EQ(c.max, 2.0);
  EXPECT_EQ(c.nans, 1u);
  EXPECT_EQ(c.pos_infs, 2u);
  EXPECT_EQ(c.neg_infs, 1u);
  EXPECT_EQ(c.nulls, 1u);
  EXPECT_EQ(s.invalid_weights(), 3u);
  EXPECT_DOUBLE_EQ(s.mean(), 1.25);
  // Weighted population variance: 13/4 - 1.25^2.
  EXPECT_DOUBLE_EQ(s.stddev(), std::sqrt(13.0 / 4 - 1.5625));
  EXPECT_DOUBLE_EQ(s.effective_size(), 1.6);
}

TEST(NumericSummaryTest, EmptySummary) {
  NumericSummary s(Shared(*BinEdges::Create({0.0, 1.0})));
  EXPECT_EQ(s.mean(), 0.0);
  EXPECT_EQ(s.stddev(), 0.0);
  EXPECT_EQ(s.effective_size(), 0.0);
  EXPECT_EQ(s.Cdf(0.5), 0.0);
  EXPECT_EQ(s.Quantile(0.5), 0.0);
  EXPECT_EQ(s.CdfL1ErrorBound(), 0.0);
  EXPECT_THAT(s.Rebin(*BinEdges::Create({0.5})), ElementsAre(0.0, 0.0));
}

TEST(NumericSummaryTest, SingleValue) {
  NumericSummary s(Shared(*BinEdges::Create({0.0, 1.0})));
  s.Add(0.5);
  EXPECT_EQ(s.Cdf(0.49), 0.0);
  EXPECT_EQ(s.Cdf(0.5), 1.0);
  EXPECT_EQ(s.Quantile(0.3), 0.5);
  EXPECT_EQ(s.stddev(), 0.0);
  EXPECT_EQ(s.CdfL1ErrorBound(), 0.0);  // min == max: the point mass is known
}

TEST(NumericSummaryTest, MergeEqualsAddingEverythingToOneSummary) {
  auto edges = Shared(*BinEdges::FromQuantiles(Normal(1000, 0, 1, 1), 64));
  NumericSummary all(edges), a(edges), b(edges), empty(edges);
  const std::vector<double> values = Normal(5000, 0.3, 1.2, 2);
  for (size_t i = 0; i < values.size(); ++i) {
    all.Add(values[i]);
    (i % 3 == 0 ? a : b).Add(values[i]);
  }
  a.AddNull();
  all.AddNull();
  ASSERT_TRUE(a.Merge(b).ok());
  ASSERT_TRUE(a.Merge(empty).ok());
  // Unit weights: every bin is an integer, so the sums are bitwise equal.
  ASSERT_EQ(a.bins().size(), all.bins().size());
  for (size_t k = 0; k < a.bins().size(); ++k) EXPECT_EQ(a.bins()[k], all.bins()[k]) << k;
  EXPECT_EQ(a.counts().count, all.counts().count);
  EXPECT_EQ(a.counts().weight, all.counts().weight);
  EXPECT_EQ(a.counts().min, all.counts().min);
  EXPECT_EQ(a.counts().max, all.counts().max);
  EXPECT_EQ(a.counts().nulls, 1u);
  // Sums are added in a different order: equal to ~1e-12 relative.
  EXPECT_NEAR(a.counts().sum, all.counts().sum, 1e-9);
  EXPECT_NEAR(a.counts().sum_sq, all.counts().sum_sq, 1e-9);

  // Merging into an empty summary takes the other's min and max.
  NumericSummary fresh(edges);
  ASSERT_TRUE(fresh.Merge(all).ok());
  EXPECT_EQ(fresh.counts().min, all.counts().min);
  EXPECT_EQ(fresh.counts().max, all.counts().max);
}

TEST(NumericSummaryTest, MergeRejectsDifferentEdges) {
  NumericSummary a(Shared(*BinEdges::Create({0.0}))), b(Shared(*BinEdges::Create({1.0})));
  EXPECT_EQ(a.Merge(b).code(), absl::StatusCode::kFailedPrecondition);
  // Equal edges in different instances merge.
  NumericSummary c(Shared(*BinEdges::Create({0.0})));
  EXPECT_TRUE(a.Merge(c).ok());
}

// Property: the CDF is exact at every edge and off by at most the bin's mass
// elsewhere; L1 distance to the exact ECDF stays within CdfL1ErrorBound.
TEST(NumericSummaryTest, CdfIsExactAtEdgesAndBoundedInside) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<double> values = Normal(3000, 1, 2, seed);
    auto edges = Shared(*BinEdges::EqualWidth(-4, 6, 40));
    NumericSummary s(edges);
    for (double x : values) s.Add(x);
    std::vector<double> cdf_at_edges = s.CdfAt(edges->edges());
    for (size_t k = 0; k < edges->edges().size(); ++k) {
      // Counts are integers, so the only rounding is one division.
      EXPECT_NEAR(cdf_at_edges[k], ExactCdf(values, edges->edges()[k]), 1e-15);
    }
    const double lo = s.counts().min, hi = s.counts().max;
    EXPECT_EQ(s.Cdf(std::nextafter(lo, -kInf)), 0.0);
    EXPECT_EQ(s.Cdf(hi), 1.0);
    double l1 = 0;
    const int steps = 20000;
    const double max_bin = *std::max_element(s.bins().begin(), s.bins().end()) / values.size();
    for (int i = 0; i < steps; ++i) {
      const double x = lo + (hi - lo) * (i + 0.5) / steps;
      const double diff = std::abs(s.Cdf(x) - ExactCdf(values, x));
      ASSERT_LE(diff, max_bin + 1e-12);
      l1 += diff * (hi - lo) / steps;
    }
    // Midpoint-rule integration error is far below the bound's slack.
    EXPECT_LE(l1, s.CdfL1ErrorBound());
    EXPECT_GT(l1, 0.0);
  }
}

// The envelope holds every CDF consistent with the summary, so the true
// one: checked on a fine grid, at every value and just below it (the left
// limits), for data with ties on edges and a point mass inside a bin.
TEST(NumericSummaryTest, CdfRangeHoldsTheTrueCdfAndIsExactAtPointMasses) {
  std::mt19937_64 rng(5);
  std::vector<double> values = Normal(3000, 1, 2, 5);
  for (int i = 0; i < 400; ++i) values.push_back(2.0);   // ties on an edge
  for (int i = 0; i < 300; ++i) values.push_back(0.37);  // a point mass inside a bin
  std::vector<double> weights;
  for (size_t i = 0; i < values.size(); ++i) weights.push_back(1 + static_cast<double>(rng() % 3));
  auto edges = Shared(*BinEdges::EqualWidth(-4, 6, 20));
  NumericSummary s(edges);
  double total = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    s.Add(values[i], weights[i]);
    total += weights[i];
  }
  auto exact = [&](double x, bool left) {
    double w = 0;
    for (size_t i = 0; i < values.size(); ++i) w += (left ? values[i] < x : values[i] <= x) ? weights[i] : 0;
    return w / total;
  };
  std::vector<double> xs;
  const double lo = s.counts().min, hi = s.counts().max;
  for (int i = 0; i <= 5000; ++i) xs.push_back(lo - 0.5 + (hi - lo + 1) * i / 5000);
  for (double v : values) xs.push_back(v);
  for (bool left : {false, true}) {
    const std::vector<NumericSummary::CdfRange> range = s.CdfRangeAt(xs, left);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double f = exact(xs[i], left);
      ASSERT_LE(range[i].lower, f + 1e-12) << xs[i] << " left " << left;
      ASSERT_GE(range[i].upper, f - 1e-12) << xs[i] << " left " << left;
    }
  }
  // A bin holding only ties on its upper edge is a point mass there, and
  // the range is exact inside it; a bin's values below its mean bound it.
  NumericSummary ties(Shared(*BinEdges::EqualWidth(0, 10, 10)));
  for (int i = 0; i < 10; ++i) ties.Add(5.0);
  ties.Add(7.25);
  ties.Add(7.75);
  const std::vector<double> inside = {4.2, 4.9, 5.0, 7.1};
  const auto at = ties.CdfRangeAt(inside);
  const auto left = ties.CdfRangeAt(inside, /*left_limit=*/true);
  EXPECT_DOUBLE_EQ(at[0].lower, 0.0);
  EXPECT_DOUBLE_EQ(at[0].upper, 0.0);
  EXPECT_DOUBLE_EQ(at[1].upper, 0.0);
  EXPECT_DOUBLE_EQ(at[2].lower, 10.0 / 12);
  EXPECT_DOUBLE_EQ(left[2].upper, 0.0);  // P(X < 5) with the mass at 5
  // (7, 8] holds 7.25 and 7.75 (mean 7.5, support [7, 7.75] clipped to
  // the max): at 7.1 at most (7.75 - 7.5) / (7.75 - 7.1) of its mass.
  EXPECT_DOUBLE_EQ(at[3].lower, 10.0 / 12);
  EXPECT_NEAR(at[3].upper, (10 + 2 * 0.25 / 0.65) / 12, 1e-12);
}

TEST(BinEdgesTest, ReferenceSampleEdgesSplitTheTails) {
  std::vector<double> sample;
  for (int i = 0; i < 2000; ++i) sample.push_back(i);
  auto edges = BinEdges::ForReferenceSample(sample, 64);
  ASSERT_TRUE(edges.ok());
  // 63 quantile edges and six in the tails (1/128, 1/256, 1/512 and their
  // complements; 2000 / 512 >= 1).
  EXPECT_EQ(edges->edges().size(), 63u + 6u);
  EXPECT_NEAR(edges->edges().front(), 1999.0 / 512, 1e-9);
  EXPECT_NEAR(edges->edges().back(), 1999.0 * (1 - 1.0 / 512), 1e-9);
  // The 63 quantile edges are FromQuantiles'.
  const std::vector<double> q = BinEdges::FromQuantiles(sample, 64)->edges();
  for (double e : q) {
    EXPECT_TRUE(std::binary_search(edges->edges().begin(), edges->edges().end(), e)) << e;
  }
  // A sample too small for the finer tails gets only what it resolves.
  std::vector<double> small(sample.begin(), sample.begin() + 300);
  EXPECT_EQ(BinEdges::ForReferenceSample(small, 64)->edges().size(), 63u + 4u);
  EXPECT_THAT(BinEdges::ForReferenceSample(std::vector<double>(50, 4.0), 64)->edges(),
              ElementsAre(4.0));
  EXPECT_EQ(BinEdges::ForReferenceSample({}, 64).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NumericSummaryTest, RebinIsExactOnSubsetsOfEdges) {
  auto fine = Shared(*BinEdges::EqualWidth(0, 10, 10));  // edges 1..9, bin k = (k, k+1]
  NumericSummary s(fine);
  for (double x : Normal(2000, 5, 2, 4)) s.Add(x);
  auto coarse = *BinEdges::Create({3.0, 7.0});
  std::vector<double> r = s.Rebin(coarse);
  const auto b = s.bins();
  EXPECT_EQ(r[0], b[0] + b[1] + b[2]);
  EXPECT_EQ(r[1], b[3] + b[4] + b[5] + b[6]);
  EXPECT_EQ(r[2], b[7] + b[8] + b[9]);
  // Off-edge targets interpolate but keep the total.
  std::vector<double> off = s.Rebin(*BinEdges::Create({2.2, 5.5, 5.6}));
  double total = 0;
  for (double x : off) total += x;
  EXPECT_NEAR(total, 2000.0, 1e-9);
  EXPECT_GT(off[2], 0.0);
}

TEST(NumericSummaryTest, QuantileInvertsCdf) {
  NumericSummary s(Shared(*BinEdges::EqualWidth(-3, 3, 30)));
  for (double x : Normal(5000, 0, 1, 5)) s.Add(x);
  EXPECT_EQ(s.Quantile(0), s.counts().min);
  EXPECT_EQ(s.Quantile(1), s.counts().max);
  for (double q = 0.05; q < 1; q += 0.05) {
    EXPECT_NEAR(s.Cdf(s.Quantile(q)), q, 1e-12) << q;
  }
}

TEST(NumericSummaryTest, SerializationRoundTrips) {
  NumericSummary s(Shared(*BinEdges::FromQuantiles(Normal(500, 0, 1, 6), 16)));
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<double> weight(1, 20);
  for (double x : Normal(1000, 0.2, 1, 7)) s.Add(x, weight(rng));
  s.Add(std::nan(""));
  s.Add(-kInf);
  s.AddNull();
  s.Add(1.0, -1.0);
  const std::string bytes = s.Serialize();
  EXPECT_EQ(bytes.size(), 136 + 24 * s.edges().edges().size());  // docs/formats/summary.md
  auto back = NumericSummary::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->edges(), s.edges());
  EXPECT_THAT(back->bins(), ::testing::ElementsAreArray(s.bins()));
  EXPECT_EQ(back->counts().sum, s.counts().sum);
  EXPECT_EQ(back->counts().sum_sq, s.counts().sum_sq);
  EXPECT_EQ(back->counts().weight_sq, s.counts().weight_sq);
  EXPECT_EQ(back->counts().min, s.counts().min);
  EXPECT_EQ(back->counts().nans, 1u);
  EXPECT_EQ(back->counts().neg_infs, 1u);
  EXPECT_EQ(back->counts().nulls, 1u);
  EXPECT_EQ(back->invalid_weights(), 1u);
  EXPECT_EQ(back->Serialize(), bytes);

  NumericSummary empty(Shared(*BinEdges::Create({})));
  auto empty_back = NumericSummary::Deserialize(empty.Serialize());
  ASSERT_TRUE(empty_back.ok());
  EXPECT_EQ(empty_back->bins().size(), 1u);
}

TEST(NumericSummaryTest, DeserializeRejectsTruncatedAndCorruptBytes) {
  NumericSummary s(Shared(*BinEdges::Create({-1.0, 0.0, 1.0})));
  for (double x : Normal(100, 0, 1, 8)) s.Add(x);
  const std::string bytes = s.Serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto r = NumericSummary::Deserialize(bytes.substr(0, len));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << "len=" << len;
  }
  // CRC-32C detects every single-byte corruption.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x5A;
    ASSERT_EQ(NumericSummary::Deserialize(bad).status().code(), absl::StatusCode::kDataLoss)
        << "byte " << i;
  }
  auto trailing = NumericSummary::Deserialize(bytes + "x");
  EXPECT_EQ(trailing.status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace driftwatch::detectors
