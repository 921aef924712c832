#include "driftwatch/detectors/drift.h"

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<double> Normal(int n, double mean, double sd, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

WeightedSample Sample(std::vector<double> values, std::vector<double> weights = {}) {
  auto s = WeightedSample::Create(std::move(values), std::move(weights));
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

std::shared_ptr<NumericSummary> Summarize(const std::vector<double>& values,
                                          std::shared_ptr<const BinEdges> edges) {
  auto s = std::make_shared<NumericSummary>(std::move(edges));
  for (double x : values) s->Add(x);
  return s;
}

TEST(KolmogorovSurvivalTest, MatchesScipyKstwobign) {
  // scipy.stats.kstwobign.sf(x), scipy 1.10.1. Both series branches and the
  // switch at 1.18 are covered; tolerance 1e-10 absolute (observed ~3e-15).
  const std::pair<double, double> table[] = {
      {0.05, 1.0},
      {0.1, 1.0},
      {0.2, 0.999999999999495},
      {0.3, 0.9999906941986655},
      {0.4, 0.9971923267772983},
      {0.5, 0.9639452436648751},
      {0.6, 0.8642827790506042},
      {0.7, 0.7112351950296893},
      {0.8, 0.5441424115741981},
      {0.9, 0.3927307079406543},
      {1.0, 0.26999967167735456},
      {1.1, 0.1777181926064012},
      {1.17, 0.12939004218561884},
      {1.19, 0.11774229287977166},
      {1.3, 0.06809222184476636},
      {1.5, 0.022217962616525127},
      {1.8, 0.003067621347579706},
      {2.0, 0.0006709252557796953},
      {2.5, 7.453306344157342e-06},
      {3.0, 3.045995948942526e-08},
      {4.0, 2.532833109818835e-14},
      {6.0, 1.0760372320042276e-31},
  };
  for (const auto& [x, q] : table) {
    EXPECT_NEAR(KolmogorovSurvival(x), q, 1e-10) << x;
    EXPECT_NEAR(KolmogorovSurvival(x), q, 1e-12 * q) << x;  // relative, in the tail too
  }
  EXPECT_EQ(KolmogorovSurvival(0), 1.0);
  EXPECT_EQ(KolmogorovSurvival(-1), 1.0);
  EXPECT_TRUE(std::isnan(KolmogorovSurvival(std::nan(""))));
}

TEST(CompareBinCountsTest, TwoBinsByHand) {
  // r = (.5, .5), c = (.8, .2).
  const std::vector<double> r = {50, 50}, c = {80, 20};
  auto d = CompareBinCounts(r, c);
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(d->psi, 0.3 * std::log(1.6) + 0.3 * std::log(2.5), 1e-15);
  EXPECT_NEAR(d->kl, 0.8 * std::log(1.6) + 0.2 * std::log(0.4), 1e-15);
  // scipy.spatial.distance.jensenshannon([.5, .5], [.8, .2], base=2)
  EXPECT_NEAR(d->js, 0.2703775285259666, 1e-14);
}

TEST(CompareBinCountsTest, EmptyBinsAreFlooredNotRenormalised) {
  // r = (1, 0) -> (1, 1e-4) for PSI/KL as is; JS renormalises. Values from
  // numpy/scipy on the floored vectors.
  const std::vector<double> r = {10, 0}, c = {3, 3};
  auto d = CompareBinCounts(r, c);
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(d->psi, 4.604318466668949, 1e-12);
  EXPECT_NEAR(d->kl, 3.9120230054281455, 1e-12);
  EXPECT_NEAR(d->js, 0.5573337462525721, 1e-12);
}

TEST(CompareBinCountsTest, IdenticalProportionsGiveZero) {
  const std::vector<double> r = {1, 2, 0, 7}, c = {10, 20, 0, 70};
  auto d = CompareBinCounts(r, c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->psi, 0.0);
  EXPECT_EQ(d->kl, 0.0);
  EXPECT_NEAR(d->js, 0.0, 1e-8);  // sqrt of a ~1e-17 rounding residue
}

// crosscheck_scipy once failed here: a constant feature (n values in one
// bin) against a single current value gave JS 1.27e-8 where scipy gives 0,
// because n * (1/n) != 1 in floating point for some n.
TEST(CompareBinCountsTest, IdenticalDistributionsGiveExactlyZero) {
  for (int n = 1; n <= 5000; ++n) {
    const std::vector<double> r = {static_cast<double>(n), 0}, c = {1, 0};
    auto d = CompareBinCounts(r, c);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d->js, 0.0) << "n = " << n;
    ASSERT_EQ(d->psi, 0.0) << "n = " << n;
    ASSERT_EQ(d->kl, 0.0) << "n = " << n;
  }
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<double> r(2 + rng() % 20), c(r.size());
    const double scale = 1 + static_cast<double>(rng() % 97);
    for (size_t i = 0; i < r.size(); ++i) {
      r[i] = static_cast<double>(rng() % 50);
      c[i] = r[i] * scale;
    }
    r[0] += 1;
    c[0] += scale;
    auto d = CompareBinCounts(r, c);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d->js, 0.0) << "trial " << trial;
  }
}

TEST(CompareBinCountsTest, RejectsBadCounts) {
  const std::vector<double> two = {1, 1}, three = {1, 1, 1}, zeros = {0, 0}, negative = {1, -1};
  auto length = CompareBinCounts(two, three);
  EXPECT_EQ(length.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(length.status().message(), HasSubstr("bins"));
  auto empty = CompareBinCounts(zeros, two);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("reference counts sum to 0"));
  auto neg = CompareBinCounts(two, negative);
  EXPECT_EQ(neg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(neg.status().message(), HasSubstr("current bin 1"));
  EXPECT_EQ(CompareBinCounts({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CompareBinCounts(two, two, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KsTestTest, ExactStatisticMatchesScipy) {
  auto ks = KsTest(Sample({0.5, 1.5, 2.0, 3.25, 4.0, 4.0, 6.5}), Sample({1.0, 2.0, 2.0, 5.0, 7.5}));
  ASSERT_TRUE(ks.ok());
  EXPECT_EQ(ks->statistic, 0.2571428571428571);  // scipy.stats.ks_2samp(...).statistic
  EXPECT_DOUBLE_EQ(ks->n_effective, 35.0 / 12);
  EXPECT_DOUBLE_EQ(ks->p_value, KolmogorovSurvival(std::sqrt(35.0 / 12) * ks->statistic));
  EXPECT_EQ(ks->error_bound, 0.0);
}

TEST(KsTestTest, IdenticalAndDisjointSamples) {
  const std::vector<double> v = Normal(500, 0, 1, 1);
  auto same = KsTest(Sample(v), Sample(v));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->statistic, 0.0);
  EXPECT_EQ(same->p_value, 1.0);
  auto disjoint = KsTest(Sample({1, 2, 3}), Sample({4, 5, 6}));
  ASSERT_TRUE(disjoint.ok());
  EXPECT_EQ(disjoint->statistic, 1.0);
}

TEST(KsTestTest, IntegerWeightsEqualRepetitionForTheStatistic) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> count(1, 4);
  const std::vector<double> a = Normal(200, 0, 1, 4), b = Normal(150, 0.3, 1, 5);
  std::vector<double> wa, ra;
  for (double x : a) {
    wa.push_back(count(rng));
    ra.insert(ra.end(), static_cast<size_t>(wa.back()), x);
  }
  auto weighted = KsTest(Sample(a, wa), Sample(b));
  auto repeated = KsTest(Sample(ra), Sample(b));
  ASSERT_TRUE(weighted.ok() && repeated.ok());
  EXPECT_NEAR(weighted->statistic, repeated->statistic, 1e-14);
  // The test's size is Kish's, not the row count of the repetition.
  const WeightedSample sa = Sample(a, wa);
  const double n_r = sa.effective_size();
  EXPECT_DOUBLE_EQ(weighted->n_effective, n_r * 150 / (n_r + 150));
  EXPECT_LT(weighted->n_effective, repeated->n_effective);
}

TEST(KsTestTest, RejectsEmptySamples) {
  auto empty = KsTest(Sample({}), Sample({1.0}));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("reference sample is empty"));
  EXPECT_THAT(KsTest(Sample({1.0}), Sample({})).status().message(),
              HasSubstr("current sample is empty"));
}

TEST(ChiSquareTestTest, ByHand) {
  // scipy.stats.chisquare([60, 40], [50, 50]) = (4.0, 0.04550026389635857).
  const std::vector<double> r = {1, 1}, c = {60, 40};
  auto chi = ChiSquareTest(r, c, 100);
  ASSERT_TRUE(chi.ok());
  EXPECT_NEAR(chi->statistic, 4.0, 1e-12);
  EXPECT_EQ(chi->df, 1);
  EXPECT_NEAR(chi->p_value, 0.04550026389635857, 1e-12);
  // Weighted: the same proportions at an effective size of 50 halve it.
  auto half = ChiSquareTest(r, std::vector<double>{600, 400}, 50);
  ASSERT_TRUE(half.ok());
  EXPECT_NEAR(half->statistic, 2.0, 1e-12);
}

TEST(ChiSquareTestTest, OneBinAndBadInput) {
  const std::vector<double> one = {3}, two = {1, 1};
  auto single = ChiSquareTest(one, one, 3);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->df, 0);
  EXPECT_EQ(single->p_value, 1.0);
  auto bad_n = ChiSquareTest(two, two, 0);
  EXPECT_EQ(bad_n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_n.status().message(), HasSubstr("n_current_effective"));
}

TEST(WassersteinTest, ExactMatchesScipy) {
  auto w =
      Wasserstein(Sample({0.5, 1.5, 2.0, 3.25, 4.0, 4.0, 6.5}), Sample({1.0, 2.0, 2.0, 5.0, 7.5}));
  ASSERT_TRUE(w.ok());
  EXPECT_NEAR(w->distance, 0.9214285714285713, 1e-14);
  EXPECT_EQ(w->error_bound, 0.0);
  // scipy.stats.wasserstein_distance([1,2,3], [2,4], [1,2,3], [5,1])
  auto weighted = Wasserstein(Sample({1, 2, 3}, {1, 2, 3}), Sample({2, 4}, {5, 1}));
  ASSERT_TRUE(weighted.ok());
  EXPECT_NEAR(weighted->distance, 0.6666666666666666, 1e-14);
  auto shift = Wasserstein(Sample({0, 2}), Sample({1, 3}));
  ASSERT_TRUE(shift.ok());
  EXPECT_DOUBLE_EQ(shift->distance, 1.0);
  EXPECT_DOUBLE_EQ(shift->normalized, 1.0);  // reference std (ddof 0) is 1
  auto constant = Wasserstein(Sample({2, 2}), Sample({3}));
  ASSERT_TRUE(constant.ok());
  EXPECT_EQ(constant->distance, 1.0);
  EXPECT_EQ(constant->normalized, 0.0);
}

// Property, several seeds: the exact statistics lie within the summary's
// reported bounds (KS: [D, D + bound]; W1: distance +- bound).
TEST(SummaryStatisticsTest, ExactValuesLieWithinReportedBounds) {
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    const std::vector<double> ref = Normal(5000, 0, 1, seed);
    const std::vector<double> cur = Normal(4000, 0.2 * seed - 0.5, 1 + 0.05 * seed, seed + 100);
    auto fine = std::make_shared<const BinEdges>(*BinEdges::FromQuantiles(ref, 128));
    auto rs = Summarize(ref, fine), cs = Summarize(cur, fine);
    auto ks_exact = KsTest(Sample(ref), Sample(cur));
    auto ks_summary = KsTest(*rs, *cs);
    ASSERT_TRUE(ks_exact.ok() && ks_summary.ok());
    EXPECT_GT(ks_summary->error_bound, 0.0);
    // Bins hold 1/128 of the reference, but the outer ones also hold the
    // shifted current's tail beyond the reference range.
    EXPECT_LT(ks_summary->error_bound, 0.1) << seed;
    EXPECT_LE(ks_summary->statistic, ks_exact->statistic + 1e-12) << seed;
    EXPECT_LE(ks_exact->statistic, ks_summary->statistic + ks_summary->error_bound + 1e-12);
    EXPECT_DOUBLE_EQ(ks_summary->n_effective, ks_exact->n_effective);

    auto w_exact = Wasserstein(Sample(ref), Sample(cur));
    auto w_summary = Wasserstein(*rs, *cs);
    ASSERT_TRUE(w_exact.ok() && w_summary.ok());
    EXPECT_GT(w_summary->error_bound, 0.0);
    EXPECT_LE(std::abs(w_summary->distance - w_exact->distance), w_summary->error_bound + 1e-12)
        << seed;
  }
}

TEST(SummaryStatisticsTest, RejectsMismatchedOrEmptySummaries) {
  auto a = std::make_shared<const BinEdges>(*BinEdges::Create({0.0}));
  auto b = std::make_shared<const BinEdges>(*BinEdges::Create({1.0}));
  auto ra = Summarize({1, 2}, a), rb = Summarize({1, 2}, b), empty = Summarize({}, a);
  EXPECT_EQ(KsTest(*ra, *rb).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Wasserstein(*ra, *rb).status().code(), absl::StatusCode::kFailedPrecondition);
  auto e = KsTest(*ra, *empty);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("current summary has no finite values"));
  EXPECT_EQ(Wasserstein(*empty, *ra).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CompareNumericTest, IdenticalSamplesGiveZero) {
  const std::vector<double> v = Normal(2000, 3, 2, 7);
  auto d = CompareNumeric(Sample(v), Sample(v));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->divergences.psi, 0.0);
  EXPECT_EQ(d->divergences.kl, 0.0);
  EXPECT_NEAR(d->divergences.js, 0.0, 1e-8);
  EXPECT_EQ(d->ks->statistic, 0.0);
  EXPECT_EQ(d->ks->p_value, 1.0);
  EXPECT_EQ(d->wasserstein->distance, 0.0);
  EXPECT_FALSE(d->chi2.has_value());
  EXPECT_EQ(d->edges.size(), 9u);
  EXPECT_EQ(d->reference_proportions.size(), 10u);
  for (double p : d->reference_proportions) EXPECT_NEAR(p, 0.1, 1e-12);
  EXPECT_EQ(d->n_reference, 2000.0);
}

TEST(CompareNumericTest, LargeShiftIsDetected) {
  auto d = CompareNumeric(Sample(Normal(5000, 0, 1, 8)), Sample(Normal(5000, 3, 1, 9)));
  ASSERT_TRUE(d.ok());
  EXPECT_GT(d->divergences.psi, 1.0);
  EXPECT_LT(d->ks->p_value, 1e-6);
  EXPECT_NEAR(d->wasserstein->normalized, 3.0, 0.1);  // ~3 sigma, sampling error < 0.05
  EXPECT_GT(d->current_proportions.back(), 0.9);
}

TEST(CompareNumericTest, SmallShiftStaysSmall) {
  // A 0.05 sigma shift moves PSI by ~0.0025 (= shift^2); 20000 rows keep the
  // sampling noise (~bins / n = 0.001) well under the 0.01 tolerance.
  auto d = CompareNumeric(Sample(Normal(20000, 0, 1, 10)), Sample(Normal(20000, 0.05, 1, 11)));
  ASSERT_TRUE(d.ok());
  EXPECT_LT(d->divergences.psi, 0.01);
  EXPECT_GT(d->divergences.psi, 0.0);
}

TEST(CompareNumericTest, SingleValueReferenceAndEmptyInput) {
  auto d = CompareNumeric(Sample({5.0}), Sample({5.0, 6.0}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->edges, ElementsAre(5.0));  // 2 bins: (-inf, 5], (5, inf)
  EXPECT_THAT(d->reference_proportions, ElementsAre(1.0, 0.0));
  EXPECT_THAT(d->current_proportions, ElementsAre(0.5, 0.5));
  EXPECT_EQ(d->ks->statistic, 0.5);
  EXPECT_EQ(d->wasserstein->normalized, 0.0);  // reference std is 0
  auto empty = CompareNumeric(Sample({}), Sample({1.0}));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("reference sample is empty"));
  EXPECT_EQ(CompareNumeric(Sample({1.0}), Sample({})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CompareNumeric(Sample({1.0}), Sample({1.0}), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CompareNumericTest, WeightedReferenceUsesWeightedQuantiles) {
  const std::vector<double> v = {1, 2, 3, 4};
  auto d = CompareNumeric(Sample(v, {1, 3, 1, 1}), Sample(v), 2);
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->edges, ElementsAre(2.0));  // weighted median, inverted CDF
  EXPECT_THAT(d->reference_proportions, ElementsAre(4.0 / 6, 2.0 / 6));
  EXPECT_NEAR(d->n_reference, 6.0, 1e-15);
}

TEST(NumericBaselineTest, SummaryPathAgreesWithExactPath) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::vector<double> ref = Normal(20000, 0, 1, seed);
    const std::vector<double> cur = Normal(20000, 0.5, 1.2, seed + 50);
    auto fine = std::make_shared<const BinEdges>(*BinEdges::FromQuantiles(ref, 256));
    auto baseline = MakeNumericBaseline(Summarize(ref, fine));
    ASSERT_TRUE(baseline.ok()) << baseline.status();
    ASSERT_EQ(baseline->drift_edges->bin_count(), 10u);
    auto exact_edges = *BinEdges::FromQuantiles(ref, 10);
    for (size_t k = 0; k < 9; ++k) {
      // Each decile is within one fine bin (<= 0.05 sigma in the body) of exact.
      EXPECT_NEAR(baseline->drift_edges->edges()[k], exact_edges.edges()[k], 0.05);
    }
    auto summary = CompareNumeric(*baseline, *Summarize(cur, fine));
    auto exact = CompareNumeric(Sample(ref), Sample(cur));
    ASSERT_TRUE(summary.ok() && exact.ok()) << summary.status();
    // Interpolation inside 1/256-mass fine bins moves PSI by < 1%.
    EXPECT_NEAR(summary->divergences.psi, exact->divergences.psi, 0.01 * exact->divergences.psi);
    EXPECT_NEAR(summary->divergences.js, exact->divergences.js, 0.01 * exact->divergences.js);
    EXPECT_LE(exact->ks->statistic, summary->ks->statistic + summary->ks->error_bound + 1e-12);
    EXPECT_LE(std::abs(summary->wasserstein->distance - exact->wasserstein->distance),
              summary->wasserstein->error_bound + 1e-12);
    EXPECT_EQ(summary->n_reference, 20000.0);
    EXPECT_EQ(summary->n_current, 20000.0);
  }
}

TEST(NumericBaselineTest, IdenticalSummaryGivesZero) {
  const std::vector<double> v = Normal(3000, 0, 1, 12);
  auto fine = std::make_shared<const BinEdges>(*BinEdges::EqualWidth(-4, 4, 64));
  auto baseline = MakeNumericBaseline(Summarize(v, fine));
  ASSERT_TRUE(baseline.ok());
  auto d = CompareNumeric(*baseline, *Summarize(v, fine));
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(d->divergences.psi, 0.0, 1e-15);
  EXPECT_EQ(d->ks->statistic, 0.0);
  EXPECT_EQ(d->ks->p_value, 1.0);
  EXPECT_EQ(d->wasserstein->distance, 0.0);
}

TEST(NumericBaselineTest, RejectsBadInput) {
  auto fine = std::make_shared<const BinEdges>(*BinEdges::EqualWidth(0, 1, 4));
  auto empty = MakeNumericBaseline(Summarize({}, fine));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeNumericBaseline(nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeNumericBaseline(Summarize({0.5}, fine), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto baseline = MakeNumericBaseline(Summarize({0.1, 0.5, 0.9}, fine));
  ASSERT_TRUE(baseline.ok());
  auto other = std::make_shared<const BinEdges>(*BinEdges::EqualWidth(0, 1, 8));
  EXPECT_EQ(CompareNumeric(*baseline, *Summarize({0.5}, other)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CompareNumeric(*baseline, *Summarize({}, fine)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CompareCategoricalTest, BinsAreSortedUnionThenSpecialBins) {
  CategoricalSummary ref(2), cur(2);
  ref.Add("b", 30);
  ref.Add("a", 60);
  ref.Add("zzz", 10);  // over the cap: __other__
  cur.Add("c", 50);
  cur.Add("a", 40);
  cur.AddMissing(10);
  auto d = CompareCategorical(ref, cur);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->categories, ElementsAre("a", "b", "c", "__other__", "__missing__"));
  EXPECT_THAT(d->reference_proportions, ElementsAre(0.6, 0.3, 0.0, 0.1, 0.0));
  EXPECT_THAT(d->current_proportions, ElementsAre(0.4, 0.0, 0.5, 0.0, 0.1));
  EXPECT_EQ(d->n_reference, 100.0);
  ASSERT_TRUE(d->chi2.has_value());
  EXPECT_EQ(d->chi2->df, 4);
  EXPECT_LT(d->chi2->p_value, 1e-6);
  EXPECT_FALSE(d->ks.has_value());
  EXPECT_GT(d->divergences.psi, 1.0);
}

TEST(CompareCategoricalTest, IdenticalGivesZeroAndWeightsUseKish) {
  CategoricalSummary ref, cur;
  for (int i = 0; i < 100; ++i) {
    ref.Add(i % 3 ? "x" : "y");
    cur.Add(i % 3 ? "x" : "y", 2.0);  // same proportions, weights 2
  }
  auto d = CompareCategorical(ref, cur);
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(d->divergences.psi, 0.0, 1e-15);
  EXPECT_NEAR(d->chi2->statistic, 0.0, 1e-20);
  EXPECT_EQ(d->chi2->p_value, 1.0);
  EXPECT_EQ(d->n_current, 200.0);
  EXPECT_THAT(d->categories, ElementsAre("x", "y"));

  // Chi-square scales with the Kish size (100), not the total weight (200).
  CategoricalSummary shifted;
  shifted.Add("x", 2.0 * 60);
  shifted.Add("y", 2.0 * 40);
  for (int i = 0; i < 99; ++i) shifted.Add("x", 1e-9);  // tiny weights: Kish ~1
  auto s = CompareCategorical(ref, shifted);
  ASSERT_TRUE(s.ok());
  const double n_kish = shifted.effective_size();
  EXPECT_LT(n_kish, 3.0);
  auto manual =
      ChiSquareTest(std::vector<double>{66, 34}, std::vector<double>{120 + 99e-9, 80}, n_kish);
  EXPECT_NEAR(s->chi2->statistic, manual->statistic, 1e-12);
}

TEST(CompareCategoricalTest, RejectsEmptyInput) {
  CategoricalSummary empty, one;
  one.Add("a");
  auto e = CompareCategorical(empty, one);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("reference"));
  EXPECT_EQ(CompareCategorical(one, empty).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace driftwatch::detectors
