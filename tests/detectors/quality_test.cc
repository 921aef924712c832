#include "driftwatch/detectors/quality.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using ::testing::HasSubstr;

constexpr double kExact = 1e-12;  // sums of a few dozen doubles in another order

struct Rows {
  std::vector<double> scores, labels, weights;
};

// Scores in [0, 1] with labels that depend on them (so AUC is not 0.5),
// weights in [0.1, 3). `levels` > 0 rounds scores to multiples of 1/levels so
// ties (and edge values) are common.
Rows RandomRows(uint64_t seed, int n, int levels, bool weighted) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Rows r;
  for (int i = 0; i < n; ++i) {
    double s = u(rng);
    if (levels > 0) s = std::round(s * levels) / levels;
    r.scores.push_back(s);
    r.labels.push_back(u(rng) < 0.2 + 0.6 * s ? 1.0 : 0.0);
    r.weights.push_back(weighted ? 0.1 + 2.9 * u(rng) : 1.0);
  }
  return r;
}

// ---------------------------------------------------------------- RocAuc

TEST(QualityRocAucTest, HandComputedCases) {
  const std::vector<double> sep_scores = {0.1, 0.2, 0.8, 0.9};
  const std::vector<double> sep_labels = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*RocAuc(sep_scores, sep_labels, {}), 1.0);
  const std::vector<double> rev_labels = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(*RocAuc(sep_scores, rev_labels, {}), 0.0);
  const std::vector<double> tied = {0.5, 0.5, 0.5, 0.5};
  EXPECT_DOUBLE_EQ(*RocAuc(tied, sep_labels, {}), 0.5);
  // Positives 0.3 and 0.9, negatives 0.1, 0.3, 0.7: pairs won
  // (1 + 0.5 + 0) + (1 + 1 + 1) = 4.5 of 6.
  const std::vector<double> s5 = {0.1, 0.3, 0.3, 0.7, 0.9};
  const std::vector<double> y5 = {0, 1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(*RocAuc(s5, y5, {}), 0.75);
  // Weight 2 on the positive at 0.3 doubles its 1.5 pairs: (3 + 3) of 9.
  const std::vector<double> w5 = {1, 2, 1, 1, 1};
  EXPECT_DOUBLE_EQ(*RocAuc(s5, y5, w5), 6.0 / 9.0);
}

// /usr/bin/python3, sklearn 1.2.1:
//   s=[0.1,0.4,0.4,0.35,0.8,0.8,0.2,0.6]; y=[0,0,1,1,1,0,0,1]
//   w=[1,2,0.5,1.5,1,3,2,0.7]
//   roc_auc_score(y,s,sample_weight=w) -> 0.5574324324324325
//   roc_auc_score(y,s)                 -> 0.6875
TEST(QualityRocAucTest, MatchesSklearnWithWeightsAndTies) {
  const std::vector<double> s = {0.1, 0.4, 0.4, 0.35, 0.8, 0.8, 0.2, 0.6};
  const std::vector<double> y = {0, 0, 1, 1, 1, 0, 0, 1};
  const std::vector<double> w = {1, 2, 0.5, 1.5, 1, 3, 2, 0.7};
  EXPECT_NEAR(*RocAuc(s, y, w), 0.5574324324324325, kExact);
  EXPECT_NEAR(*RocAuc(s, y, {}), 0.6875, kExact);
}

TEST(QualityRocAucTest, ScoresNeedNotBeProbabilities) {
  const std::vector<double> s = {-3.0, 7.5, 2.0};
  const std::vector<double> y = {0, 1, 0};
  EXPECT_DOUBLE_EQ(*RocAuc(s, y, {}), 1.0);
}

TEST(QualityRocAucTest, OneClassIsFailedPrecondition) {
  const std::vector<double> s = {0.1, 0.2};
  const std::vector<double> y = {1, 1};
  auto auc = RocAuc(s, y, {});
  EXPECT_EQ(auc.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(auc.status().message(), HasSubstr("both classes"));
  // A class present only with weight 0 is absent.
  const std::vector<double> y2 = {0, 1};
  const std::vector<double> w2 = {0, 1};
  EXPECT_EQ(RocAuc(s, y2, w2).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(QualityRocAucTest, BadInputNamesTheField) {
  const std::vector<double> s = {0.1, 0.2};
  const std::vector<double> y = {0, 1};
  struct Case {
    std::vector<double> s, y, w;
    std::string field;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Case> cases = {
      {{}, {}, {}, "scores is empty"},    {s, {0, 1, 1}, {}, "labels has 3 rows"},
      {s, y, {1}, "weights has 1 rows"},  {s, {0, 2}, {}, "labels[1] = 2"},
      {{0.1, nan}, y, {}, "scores[1]"},   {s, y, {1, -1}, "weights[1] = -1"},
      {s, y, {0, 0}, "weights sum to 0"},
  };
  for (const Case& c : cases) {
    auto auc = RocAuc(c.s, c.y, c.w);
    EXPECT_EQ(auc.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(auc.status().message(), HasSubstr(c.field));
  }
}

// ----------------------------------------------------------- Calibration

// /usr/bin/python3, sklearn 1.2.1, numpy 1.24.2:
//   ps=np.array([0.0,0.2,0.3,0.25,0.6,0.6000000000000001,0.95,1.0,0.45,0.7,
//                0.1,0.55]); yt=np.array([0,0,1,0,1,0,1,1,0,1,0,1])
//   pt,pp=calibration_curve(yt,ps,n_bins=B,strategy='uniform')
//   ids=np.searchsorted(np.linspace(0,1,B+1)[1:-1],ps)
//   cnt=np.bincount(ids,minlength=B); nz=cnt>0
//   ece=np.sum(cnt[nz]/len(ps)*np.abs(pt-pp)); mce=np.max(np.abs(pt-pp))
//   brier_score_loss(yt,ps) -> 0.13500000000000004
// B=5:  bins [0,1,2,3,4] counts [3,2,4,1,2] pt [0,.5,.5,1,1]
//       pp [0.10000000000000002,.275,.55,.7,.975] ece 0.10833333333333335
//       mce 0.30000000000000004
// B=10: bins [0,1,2,4,5,6,9] counts [2,1,2,1,3,1,2]
//       pt [0,0,.5,0,0.6666666666666666,1,1]
//       pp [.05,.2,.275,.45,0.5833333333333334,.7,.975] ece 0.15 mce 0.45
// 0.2, 0.3, 0.6 and 0.6000000000000001 sit on (numpy's) edges.
const std::vector<double> kCalScores = {0.0,  0.2, 0.3,  0.25, 0.6, 0.6000000000000001,
                                        0.95, 1.0, 0.45, 0.7,  0.1, 0.55};
const std::vector<double> kCalLabels = {0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1};

TEST(QualityCalibrationTest, MatchesSklearnCalibrationCurve) {
  struct Expected {
    int bins;
    std::vector<int> bin;
    std::vector<double> count, mean_label, mean_score;
    double ece, mce;
  };
  const std::vector<Expected> expected = {
      {5,
       {0, 1, 2, 3, 4},
       {3, 2, 4, 1, 2},
       {0, .5, .5, 1, 1},
       {0.10000000000000002, .275, .55, .7, .975},
       0.10833333333333335,
       0.30000000000000004},
      {10,
       {0, 1, 2, 4, 5, 6, 9},
       {2, 1, 2, 1, 3, 1, 2},
       {0, 0, .5, 0, 0.6666666666666666, 1, 1},
       {.05, .2, .275, .45, 0.5833333333333334, .7, .975},
       0.15,
       0.45},
  };
  for (const Expected& e : expected) {
    SCOPED_TRACE(e.bins);
    auto cal = Calibration(kCalScores, kCalLabels, {}, e.bins);
    ASSERT_TRUE(cal.ok()) << cal.status();
    EXPECT_EQ(cal->n, 12);
    EXPECT_NEAR(cal->ece, e.ece, kExact);
    EXPECT_NEAR(cal->mce, e.mce, kExact);
    EXPECT_NEAR(cal->brier, 0.13500000000000004, kExact);
    ASSERT_EQ(cal->reliability.size(), e.bin.size());
    for (size_t i = 0; i < e.bin.size(); ++i) {
      EXPECT_EQ(cal->reliability[i].bin, e.bin[i]);
      EXPECT_EQ(cal->reliability[i].count, e.count[i]);
      EXPECT_NEAR(cal->reliability[i].mean_label, e.mean_label[i], kExact);
      EXPECT_NEAR(cal->reliability[i].mean_score, e.mean_score[i], kExact);
    }
  }
}

TEST(QualityCalibrationTest, EdgeValuesGoToTheLeftBin) {
  // 0 -> bin 0; k/10 -> bin k-1 (a bin holds (lower, upper]).
  std::vector<double> s, y;
  for (int k = 0; k <= 10; ++k) {
    s.push_back(k / 10.0);
    y.push_back(k % 2);
  }
  auto cal = Calibration(s, y, {}, 10);
  ASSERT_TRUE(cal.ok()) << cal.status();
  ASSERT_EQ(cal->reliability.size(), 10u);
  EXPECT_EQ(cal->reliability[0].count, 2);  // 0 and 0.1
  for (int b = 1; b < 10; ++b) {
    EXPECT_EQ(cal->reliability[b].bin, b);
    EXPECT_EQ(cal->reliability[b].count, 1) << b;
    EXPECT_DOUBLE_EQ(cal->reliability[b].mean_score, (b + 1) / 10.0);
  }
}

TEST(QualityCalibrationTest, WeightedEqualsRepeatedRows) {
  // Integer weights must act as row repetition (exact in doubles).
  const std::vector<double> s = {0.15, 0.4, 0.85, 0.9};
  const std::vector<double> y = {0, 1, 1, 0};
  const std::vector<double> w = {2, 1, 3, 1};
  const std::vector<double> rs = {0.15, 0.15, 0.4, 0.85, 0.85, 0.85, 0.9};
  const std::vector<double> ry = {0, 0, 1, 1, 1, 1, 0};
  auto a = Calibration(s, y, w, 4);
  auto b = Calibration(rs, ry, {}, 4);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NEAR(a->ece, b->ece, kExact);
  EXPECT_NEAR(a->mce, b->mce, kExact);
  EXPECT_NEAR(a->brier, b->brier, kExact);
  EXPECT_EQ(a->n, 7);
  // Gaps: bin 0 |0 - 0.15|, bin 1 |1 - 0.4|, bin 3 |0.75 - 0.8625|.
  EXPECT_NEAR(a->mce, 0.6, kExact);
  EXPECT_NEAR(a->ece, (2 * 0.15 + 0.6 + 4 * 0.1125) / 7, kExact);
}

TEST(QualityCalibrationTest, BadInputNamesTheField) {
  const std::vector<double> s = {0.1, 0.2};
  const std::vector<double> y = {0, 1};
  auto high = Calibration(std::vector<double>{0.1, 1.5}, y, {}, 10);
  EXPECT_EQ(high.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(high.status().message(), HasSubstr("scores[1] = 1.5 is outside [0, 1]"));
  auto label = Calibration(s, std::vector<double>{2, 0}, {}, 10);
  EXPECT_EQ(label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(label.status().message(), HasSubstr("labels[0] = 2"));
  auto size = Calibration(s, std::vector<double>{0}, {}, 10);
  EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(size.status().message(), HasSubstr("labels has 1 rows"));
  auto empty = Calibration({}, {}, {}, 10);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("empty"));
  auto bins = Calibration(s, y, {}, 0);
  EXPECT_EQ(bins.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bins.status().message(), HasSubstr("bins = 0"));
}

// ------------------------------------------------------------------ NDCG

// /usr/bin/python3, sklearn 1.2.1:
//   rel=[3,2,3,0,1,2]; sc=[0.9,0.8,0.8,0.8,0.3,0.1]
//   ndcg_score([rel],[sc],k=k) for k=1,2,3,4,None ->
//   1.0, 0.8280654190068705, 0.8289593784025651, 0.8295171871515202,
//   0.9385168586098184
// k = 2, 3 cut the tie group {0.8, 0.8, 0.8} at ranks 2-4.
TEST(QualityNdcgTest, MatchesSklearnWithTiesAcrossTheCutoff) {
  const std::vector<double> rel = {3, 2, 3, 0, 1, 2};
  const std::vector<double> sc = {0.9, 0.8, 0.8, 0.8, 0.3, 0.1};
  EXPECT_NEAR(QueryNdcg(sc, rel, 1), 1.0, kExact);
  EXPECT_NEAR(QueryNdcg(sc, rel, 2), 0.8280654190068705, kExact);
  EXPECT_NEAR(QueryNdcg(sc, rel, 3), 0.8289593784025651, kExact);
  EXPECT_NEAR(QueryNdcg(sc, rel, 4), 0.8295171871515202, kExact);
  EXPECT_NEAR(QueryNdcg(sc, rel, 0), 0.9385168586098184, kExact);
  EXPECT_NEAR(QueryNdcg(sc, rel, 100), 0.9385168586098184, kExact);
}

TEST(QualityNdcgTest, HandComputedCases) {
  const std::vector<double> rel = {0, 1, 2};
  EXPECT_DOUBLE_EQ(QueryNdcg(std::vector<double>{0.1, 0.2, 0.3}, rel, 3), 1.0);
  // Reversed: DCG = 0 + 1/log2(3) + 2/log2(4); IDCG = 2 + 1/log2(3).
  const double dcg = 1 / std::log2(3.0) + 2 / std::log2(4.0);
  const double idcg = 2 + 1 / std::log2(3.0);
  EXPECT_NEAR(QueryNdcg(std::vector<double>{0.3, 0.2, 0.1}, rel, 3), dcg / idcg, kExact);
  // All tied: every rank gets the mean gain 1.
  const double all_tied = (1 + 1 / std::log2(3.0) + 1 / std::log2(4.0)) / (2 + 1 / std::log2(3.0));
  EXPECT_NEAR(QueryNdcg(std::vector<double>{0.5, 0.5, 0.5}, rel, 3), all_tied, kExact);
  // Ideal DCG 0 scores 0; one document scores 1 if relevant, else 0.
  EXPECT_EQ(QueryNdcg(std::vector<double>{0.3, 0.2}, std::vector<double>{0, 0}, 5), 0.0);
  EXPECT_EQ(QueryNdcg(std::vector<double>{0.3}, std::vector<double>{2}, 5), 1.0);
  EXPECT_EQ(QueryNdcg(std::vector<double>{0.3}, std::vector<double>{0}, 5), 0.0);
}

// /usr/bin/python3, sklearn 1.2.1: with rel, sc as above and
//   rel2=[0,1,0,2]; sc2=[0.5,0.5,0.2,0.1]
//   ndcg_score([rel2],[sc2],k=3) -> 0.30995311664203284
//   np.average([ndcg_score([rel],[sc],k=3), ndcg_score([rel2],[sc2],k=3)],
//              weights=[2.0,0.5]) -> 0.7251581260504587
TEST(QualityNdcgTest, WeightedMeanOverInterleavedQueries) {
  // Query "a" = (rel, sc), query "b" = (rel2, sc2), rows interleaved; the
  // weight of a query is that of its first row.
  const std::vector<std::string> q = {"a", "b", "a", "a", "b", "a", "b", "a", "b", "a"};
  const std::vector<double> s = {0.9, 0.5, 0.8, 0.8, 0.5, 0.8, 0.2, 0.3, 0.1, 0.1};
  const std::vector<double> r = {3, 0, 2, 3, 1, 0, 0, 1, 2, 2};
  const std::vector<double> w = {2.0, 0.5, 9, 9, 9, 9, 9, 9, 9, 9};
  auto ndcg = NdcgAtK(q, s, r, w, 3);
  ASSERT_TRUE(ndcg.ok()) << ndcg.status();
  EXPECT_NEAR(*ndcg, 0.7251581260504587, kExact);
  auto unweighted = NdcgAtK(q, s, r, {}, 3);
  ASSERT_TRUE(unweighted.ok());
  EXPECT_NEAR(*unweighted, (0.8289593784025651 + 0.30995311664203284) / 2, kExact);
}

TEST(QualityNdcgTest, BadInputNamesTheField) {
  const std::vector<std::string> q = {"a", "a"};
  const std::vector<double> s = {0.1, 0.2};
  const std::vector<double> r = {0, 1};
  struct Case {
    std::vector<std::string> q;
    std::vector<double> s, r, w;
    int k;
    std::string field;
  };
  const std::vector<Case> cases = {
      {q, s, r, {}, 0, "k = 0"},
      {{}, {}, {}, {}, 3, "query_ids is empty"},
      {q, {0.1}, r, {}, 3, "scores has 1 rows"},
      {q, s, {1, 2, 3}, {}, 3, "relevance has 3 rows"},
      {q, s, r, {1, 1, 1}, 3, "weights has 3 rows"},
      {q, s, {0, -1}, {}, 3, "relevance[1] = -1"},
      {q, {std::numeric_limits<double>::infinity(), 0}, r, {}, 3, "scores[0]"},
      {q, s, r, {0, 1}, 3, "query weights sum to 0"},
  };
  for (const Case& c : cases) {
    auto ndcg = NdcgAtK(c.q, c.s, c.r, c.w, c.k);
    EXPECT_EQ(ndcg.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(ndcg.status().message(), HasSubstr(c.field));
  }
}

TEST(QualityNdcgAccumulatorTest, WeightedMeanAndMerge) {
  NdcgAccumulator a, b;
  EXPECT_EQ(a.mean(), 0.0);
  a.AddQuery(1.0, 3.0);
  a.AddQuery(0.5);
  b.AddQuery(0.0, 4.0);
  a.Merge(b);
  EXPECT_EQ(a.queries(), 3u);
  EXPECT_DOUBLE_EQ(a.weight(), 8.0);
  EXPECT_DOUBLE_EQ(a.mean(), 3.5 / 8.0);
}

// ------------------------------------------------------ ScoreLabelSummary

ScoreLabelSummary Summarize(const Rows& r, int fine_bins) {
  ScoreLabelSummary s(fine_bins);
  for (size_t i = 0; i < r.scores.size(); ++i) s.Add(r.scores[i], r.labels[i], r.weights[i]);
  return s;
}

void ExpectCalibrationNear(const CalibrationResult& a, const CalibrationResult& b) {
  EXPECT_NEAR(a.n, b.n, kExact * a.n);
  EXPECT_NEAR(a.ece, b.ece, kExact);
  EXPECT_NEAR(a.mce, b.mce, kExact);
  EXPECT_NEAR(a.brier, b.brier, kExact);
  ASSERT_EQ(a.reliability.size(), b.reliability.size());
  for (size_t i = 0; i < a.reliability.size(); ++i) {
    EXPECT_EQ(a.reliability[i].bin, b.reliability[i].bin);
    EXPECT_NEAR(a.reliability[i].count, b.reliability[i].count, kExact * a.n);
    EXPECT_NEAR(a.reliability[i].mean_label, b.reliability[i].mean_label, kExact);
    EXPECT_NEAR(a.reliability[i].mean_score, b.reliability[i].mean_score, kExact);
  }
}

TEST(QualitySummaryTest, CalibrationEqualsExactWhenBinsDivideFineBins) {
  for (uint64_t seed : {1, 2, 3}) {
    // levels = 20 puts many scores on the edges k/10 and k/20.
    for (int levels : {0, 20}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " levels " << levels);
      const Rows r = RandomRows(seed, 2000, levels, /*weighted=*/true);
      const ScoreLabelSummary summary = Summarize(r, 1000);
      for (int bins : {1, 5, 10, 20, 100, 1000}) {
        SCOPED_TRACE(bins);
        auto exact = Calibration(r.scores, r.labels, r.weights, bins);
        auto binned = summary.Calibration(bins);
        ASSERT_TRUE(exact.ok() && binned.ok()) << binned.status();
        ExpectCalibrationNear(*binned, *exact);
      }
    }
  }
}

TEST(QualitySummaryTest, CalibrationRejectsBinsNotDividingFineBins) {
  ScoreLabelSummary s(1000);
  s.Add(0.5, 1);
  for (int bins : {0, 3, 7, 2000}) {
    auto cal = s.Calibration(bins);
    EXPECT_EQ(cal.status().code(), absl::StatusCode::kInvalidArgument) << bins;
    EXPECT_THAT(cal.status().message(), HasSubstr("does not divide fine_bins = 1000"));
  }
  EXPECT_EQ(ScoreLabelSummary().Calibration(10).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(QualitySummaryTest, BinnedAucWithinErrorBoundOfExact) {
  for (uint64_t seed : {11, 12, 13, 14, 15}) {
    for (int fine_bins : {20, 1000}) {
      for (int levels : {0, 37}) {
        SCOPED_TRACE(testing::Message()
                     << "seed " << seed << " fine " << fine_bins << " levels " << levels);
        const Rows r = RandomRows(seed, 1500, levels, /*weighted=*/seed % 2 == 0);
        auto exact = RocAuc(r.scores, r.labels, r.weights);
        auto binned = Summarize(r, fine_bins).RocAuc();
        ASSERT_TRUE(exact.ok() && binned.ok());
        // The bound is the worst case: every within-bin pair misjudged by 1/2.
        EXPECT_LE(std::abs(binned->auc - *exact), binned->error_bound + kExact);
        // Coarse bins must actually tie pairs, or this test proves nothing.
        if (fine_bins == 20) {
          EXPECT_GT(binned->error_bound, 0.01);
        }
      }
    }
  }
}

TEST(QualitySummaryTest, BinnedAucIsExactWhenTiesAreBinAligned) {
  // Scores already on the fine grid centres: the summary loses nothing.
  ScoreLabelSummary s(10);
  const std::vector<double> sc = {0.05, 0.15, 0.15, 0.75, 0.95};
  const std::vector<double> y = {0, 1, 0, 0, 1};
  for (size_t i = 0; i < sc.size(); ++i) s.Add(sc[i], y[i]);
  auto auc = s.RocAuc();
  ASSERT_TRUE(auc.ok());
  EXPECT_DOUBLE_EQ(auc->auc, 0.75);
  EXPECT_DOUBLE_EQ(auc->error_bound, 0.5 / 6);  // one tied pair in bin 1
  EXPECT_EQ(ScoreLabelSummary().RocAuc().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(QualitySummaryTest, MergeEqualsOneSummaryOverAllRows) {
  const Rows r = RandomRows(21, 3000, 0, /*weighted=*/false);
  ScoreLabelSummary all(1000), first(1000), second(1000);
  for (size_t i = 0; i < r.scores.size(); ++i) {
    all.Add(r.scores[i], r.labels[i]);
    (i % 3 == 0 ? first : second).Add(r.scores[i], r.labels[i]);
  }
  second.Add(2.0, 1);  // invalid rows merge too
  ASSERT_TRUE(first.Merge(second).ok());
  EXPECT_EQ(first.invalid(), 1u);
  // Unit weights: counts are exact.
  EXPECT_EQ(first.positive_weight(), all.positive_weight());
  EXPECT_EQ(first.negative_weight(), all.negative_weight());
  ExpectCalibrationNear(*first.Calibration(10), *all.Calibration(10));
  EXPECT_NEAR(first.RocAuc()->auc, all.RocAuc()->auc, kExact);

  ScoreLabelSummary other(500);
  absl::Status s = first.Merge(other);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("fine_bins = 500"));
}

TEST(QualitySummaryTest, InvalidRowsAreCountedAndSkipped) {
  ScoreLabelSummary s(100);
  s.Add(1.5, 1);
  s.Add(-0.1, 0);
  s.Add(std::numeric_limits<double>::quiet_NaN(), 0);
  s.Add(0.5, 2);
  s.Add(0.5, 1, -1);
  s.Add(0.0, 0);
  s.Add(1.0, 1, 2.5);
  EXPECT_EQ(s.invalid(), 5u);
  EXPECT_EQ(s.negative_weight(), 1.0);
  EXPECT_EQ(s.positive_weight(), 2.5);
}

TEST(QualitySummaryTest, SerializeRoundTrip) {
  const Rows r = RandomRows(31, 500, 0, /*weighted=*/true);
  ScoreLabelSummary s = Summarize(r, 200);
  s.Add(7, 1);
  const std::string bytes = s.Serialize();
  auto back = ScoreLabelSummary::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->fine_bins(), 200);
  EXPECT_EQ(back->invalid(), 1u);
  EXPECT_EQ(back->Serialize(), bytes);
  EXPECT_EQ(back->RocAuc()->auc, s.RocAuc()->auc);
  // Little-endian header: magic, version 2, fine_bins 200.
  EXPECT_EQ(bytes.substr(0, 4), "DWSL");
  EXPECT_EQ(bytes[4], 2);
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 200);
}

TEST(QualitySummaryTest, DeserializeRejectsCorruptBytes) {
  ScoreLabelSummary s(10);
  s.Add(0.3, 1);
  const std::string good = s.Serialize();
  auto expect_data_loss = [](const std::string& bytes, const std::string& why) {
    auto back = ScoreLabelSummary::Deserialize(bytes);
    EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss) << why;
    EXPECT_THAT(back.status().message(), HasSubstr(why));
  };
  expect_data_loss("", "truncated");
  expect_data_loss(good.substr(0, good.size() - 1), "expected");
  expect_data_loss(good + "x", "expected");
  std::string bad = good;
  bad[0] = 'X';
  expect_data_loss(bad, "magic");
  bad = good;
  bad[4] = 9;
  expect_data_loss(bad, "version 9");
  bad = good;
  bad[8] = 0;
  expect_data_loss(bad, "fine_bins = 0");
  bad = good;
  bad[20] = 2;  // claims 2 non-empty bins, carries 1
  expect_data_loss(bad, "expected");
  bad = good;
  bad[20] = 11;  // more non-empty bins than bins
  expect_data_loss(bad, "11 bins of 10");
  bad = good;
  bad[24] = 10;  // bin index past the last bin
  expect_data_loss(bad, "bin index 10");
  bad = good;
  const double negative = -1.0;
  std::memcpy(bad.data() + 28, &negative, sizeof(negative));  // pos of the one bin
  expect_data_loss(bad, "negative or non-finite");
}

}  // namespace
}  // namespace driftwatch::detectors
