// Golden values from scipy / scikit-learn (tests/golden/make_golden.py):
// every statistic in DESIGN.md "Statistical conventions" on stored inputs.
// Tolerances and why are in tests/golden/README.md.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "driftwatch/detectors/categorical.h"
#include "driftwatch/detectors/drift.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/quality.h"
#include "driftwatch/detectors/sample.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::detectors {
namespace {

using nlohmann::json;

// Edges: numpy's linear interpolation, reproduced up to rounding.
constexpr double kEdgeRel = 1e-12;
// PSI / KL / JS / Wasserstein: sums of logs over up to ~1e3 terms.
constexpr double kDivergenceTol = 1e-9;
// KS statistic: a difference of two ECDF values, each a ratio of sums.
constexpr double kKsTol = 1e-12;
// p-values: relative, or absolute for the deep tail.
constexpr double kPValueRel = 1e-9;
constexpr double kPValueAbs = 1e-15;
// Proportions, AUC, ECE, MCE, Brier, NDCG: ratios of sums in [0, 1].
constexpr double kQualityTol = 1e-12;

json LoadGolden(const std::string& name) {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/" + name);
  EXPECT_TRUE(in.good()) << "cannot open golden file " << name;
  if (!in.good()) return json::object();
  return json::parse(in);
}

// |actual - expected| <= max(abs_tol, rel_tol * |expected|).
::testing::AssertionResult Near(double actual, double expected, double rel_tol, double abs_tol) {
  const double tol = std::max(abs_tol, rel_tol * std::fabs(expected));
  if (std::fabs(actual - expected) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << actual << ", expected " << expected << " (diff "
                                       << actual - expected << ", tol " << tol << ")";
}

::testing::AssertionResult NearRelOrAbs(double actual, double expected, double tol) {
  return Near(actual, expected, tol, tol);
}

std::vector<double> Doubles(const json& j) { return j.get<std::vector<double>>(); }

WeightedSample SampleOf(const json& side) {
  std::vector<double> weights;
  if (side.contains("weights")) weights = Doubles(side["weights"]);
  auto sample = WeightedSample::Create(Doubles(side["values"]), std::move(weights));
  EXPECT_TRUE(sample.ok()) << sample.status();
  return sample.ok() ? *std::move(sample) : *WeightedSample::Create({0.0});
}

CategoricalSummary SummaryOf(const json& side) {
  CategoricalSummary summary;
  const json& values = side["values"];
  for (size_t i = 0; i < values.size(); ++i) {
    const double w = side.contains("weights") ? side["weights"][i].get<double>() : 1.0;
    if (values[i].is_null()) {
      summary.AddMissing(w);
    } else {
      summary.Add(values[i].get<std::string>(), w);
    }
  }
  return summary;
}

struct NumericCase {
  std::string name;
  json expected;
  std::optional<FeatureDrift> drift;
};

std::vector<NumericCase> RunNumericCases() {
  std::vector<NumericCase> out;
  const json golden = LoadGolden("drift.json");
  for (const json& c : golden.value("numeric", json::array())) {
    NumericCase nc{c["name"].get<std::string>(), c["expected"], std::nullopt};
    auto drift =
        CompareNumeric(SampleOf(c["reference"]), SampleOf(c["current"]), c["bins"].get<int>());
    EXPECT_TRUE(drift.ok()) << nc.name << ": " << drift.status();
    if (drift.ok()) nc.drift = *std::move(drift);
    out.push_back(std::move(nc));
  }
  EXPECT_FALSE(out.empty());
  return out;
}

void ExpectVector(const std::vector<double>& actual, const json& expected, double rel, double abs,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_TRUE(Near(actual[i], expected[i].get<double>(), rel, abs)) << what << "[" << i << "]";
  }
}

TEST(GoldenDrift, NumericEdges) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.drift.has_value());
    // Relative to max(|e|, 1): an edge near 0 comes from a lerp of O(1) values.
    ExpectVector(c.drift->edges, c.expected["edges"], kEdgeRel, kEdgeRel, "edges");
  }
}

TEST(GoldenDrift, BinEdgesFromQuantilesMatchesNumpy) {
  const json golden = LoadGolden("drift.json");
  for (const json& c : golden.value("numeric", json::array())) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<double> values = Doubles(c["reference"]["values"]);
    const int bins = c["bins"].get<int>();
    absl::StatusOr<BinEdges> edges =
        c["reference"].contains("weights")
            ? BinEdges::FromWeightedQuantiles(values, Doubles(c["reference"]["weights"]), bins)
            : BinEdges::FromQuantiles(values, bins);
    ASSERT_TRUE(edges.ok()) << edges.status();
    ExpectVector(edges->edges(), c["expected"]["edges"], kEdgeRel, kEdgeRel, "edges");
  }
}

TEST(GoldenDrift, NumericTotals) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.drift.has_value());
    EXPECT_EQ(c.drift->n_reference, c.expected["n_reference"].get<double>());
    EXPECT_EQ(c.drift->n_current, c.expected["n_current"].get<double>());
    EXPECT_FALSE(c.drift->chi2.has_value());
  }
}

TEST(GoldenDrift, NumericProportions) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.drift.has_value());
    ExpectVector(c.drift->reference_proportions, c.expected["reference_proportions"], 0,
                 kQualityTol, "reference_proportions");
    ExpectVector(c.drift->current_proportions, c.expected["current_proportions"], 0, kQualityTol,
                 "current_proportions");
  }
}

TEST(GoldenDrift, NumericDivergences) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.drift.has_value());
    const Divergences& d = c.drift->divergences;
    EXPECT_TRUE(NearRelOrAbs(d.psi, c.expected["psi"].get<double>(), kDivergenceTol)) << "psi";
    EXPECT_TRUE(NearRelOrAbs(d.kl, c.expected["kl"].get<double>(), kDivergenceTol)) << "kl";
    EXPECT_TRUE(NearRelOrAbs(d.js, c.expected["js"].get<double>(), kDivergenceTol)) << "js";
  }
}

TEST(GoldenDrift, CompareBinCountsOnGoldenProportions) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    auto d = CompareBinCounts(Doubles(c.expected["reference_proportions"]),
                              Doubles(c.expected["current_proportions"]));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(NearRelOrAbs(d->psi, c.expected["psi"].get<double>(), kDivergenceTol)) << "psi";
    EXPECT_TRUE(NearRelOrAbs(d->kl, c.expected["kl"].get<double>(), kDivergenceTol)) << "kl";
    EXPECT_TRUE(NearRelOrAbs(d->js, c.expected["js"].get<double>(), kDivergenceTol)) << "js";
  }
}

TEST(GoldenDrift, NumericKs) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.drift.has_value());
    ASSERT_TRUE(c.drift->ks.has_value());
    const KsResult& ks = *c.drift->ks;
    EXPECT_TRUE(Near(ks.statistic, c.expected["ks_statistic"].get<double>(), 0, kKsTol))
        << "statistic";
    EXPECT_TRUE(Near(ks.n_effective, c.expected["ks_n_effective"].get<double>(), 1e-12, 0))
        << "n_effective";
    EXPECT_TRUE(Near(ks.p_value, c.expected["ks_p_value"].get<double>(), kPValueRel, kPValueAbs))
        << "p_value";
    EXPECT_EQ(ks.error_bound, 0);
  }
}

TEST(GoldenDrift, KsTestOnSamples) {
  const json golden = LoadGolden("drift.json");
  for (const json& c : golden.value("numeric", json::array())) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto ks = KsTest(SampleOf(c["reference"]), SampleOf(c["current"]));
    ASSERT_TRUE(ks.ok()) << ks.status();
    EXPECT_TRUE(Near(ks->statistic, c["expected"]["ks_statistic"].get<double>(), 0, kKsTol));
    EXPECT_TRUE(
        Near(ks->p_value, c["expected"]["ks_p_value"].get<double>(), kPValueRel, kPValueAbs));
  }
}

TEST(GoldenDrift, NumericWasserstein) {
  for (const NumericCase& c : RunNumericCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.drift.has_value());
    ASSERT_TRUE(c.drift->wasserstein.has_value());
    const WassersteinResult& w = *c.drift->wasserstein;
    EXPECT_TRUE(NearRelOrAbs(w.distance, c.expected["wasserstein"].get<double>(), kDivergenceTol))
        << "distance";
    EXPECT_TRUE(
        NearRelOrAbs(w.normalized, c.expected["wasserstein_norm"].get<double>(), kDivergenceTol))
        << "normalized";
    EXPECT_EQ(w.error_bound, 0);
  }
}

TEST(GoldenDrift, KolmogorovSurvivalMatchesKstwobign) {
  const json golden = LoadGolden("drift.json");
  ASSERT_GE(golden.value("kolmogorov", json::array()).size(), 20u);
  for (const json& row : golden["kolmogorov"]) {
    const double x = row["x"].get<double>();
    EXPECT_TRUE(Near(KolmogorovSurvival(x), row["sf"].get<double>(), kPValueRel, kPValueAbs))
        << "x = " << x;
  }
  // The deep tail too (Q(8) ~ 5e-56): relative only, where the absolute
  // floor above would accept anything.
  for (const json& row : golden["kolmogorov"]) {
    const double x = row["x"].get<double>();
    EXPECT_TRUE(Near(KolmogorovSurvival(x), row["sf"].get<double>(), kPValueRel, 0)) << "x = " << x;
  }
  EXPECT_EQ(KolmogorovSurvival(0), 1);
  EXPECT_EQ(KolmogorovSurvival(-1), 1);
}

TEST(GoldenDrift, Categorical) {
  const json golden = LoadGolden("drift.json");
  ASSERT_FALSE(golden.value("categorical", json::array()).empty());
  for (const json& c : golden["categorical"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const json& e = c["expected"];
    auto drift = CompareCategorical(SummaryOf(c["reference"]), SummaryOf(c["current"]));
    ASSERT_TRUE(drift.ok()) << drift.status();
    EXPECT_EQ(drift->n_reference, e["n_reference"].get<double>());
    EXPECT_EQ(drift->n_current, e["n_current"].get<double>());
    EXPECT_FALSE(drift->ks.has_value());
    EXPECT_FALSE(drift->wasserstein.has_value());

    // Bins may come in any order: match them by name.
    const auto names = e["categories"].get<std::vector<std::string>>();
    ASSERT_EQ(drift->categories.size(), names.size());
    ASSERT_EQ(drift->reference_proportions.size(), names.size());
    ASSERT_EQ(drift->current_proportions.size(), names.size());
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < drift->categories.size(); ++i) index[drift->categories[i]] = i;
    for (size_t i = 0; i < names.size(); ++i) {
      ASSERT_TRUE(index.count(names[i])) << "missing bin " << names[i];
      const size_t j = index[names[i]];
      EXPECT_TRUE(Near(drift->reference_proportions[j], e["reference_proportions"][i].get<double>(),
                       0, kQualityTol))
          << names[i];
      EXPECT_TRUE(Near(drift->current_proportions[j], e["current_proportions"][i].get<double>(), 0,
                       kQualityTol))
          << names[i];
    }

    const Divergences& d = drift->divergences;
    EXPECT_TRUE(NearRelOrAbs(d.psi, e["psi"].get<double>(), kDivergenceTol)) << "psi";
    EXPECT_TRUE(NearRelOrAbs(d.kl, e["kl"].get<double>(), kDivergenceTol)) << "kl";
    EXPECT_TRUE(NearRelOrAbs(d.js, e["js"].get<double>(), kDivergenceTol)) << "js";

    ASSERT_TRUE(drift->chi2.has_value());
    EXPECT_EQ(drift->chi2->df, e["chi2_df"].get<int>());
    EXPECT_TRUE(
        NearRelOrAbs(drift->chi2->statistic, e["chi2_statistic"].get<double>(), kDivergenceTol))
        << "chi2 statistic";
    EXPECT_TRUE(Near(drift->chi2->p_value, e["chi2_p_value"].get<double>(), kPValueRel, kPValueAbs))
        << "chi2 p";
  }
}

// ---- quality ------------------------------------------------------------

TEST(GoldenQuality, RocAuc) {
  const json golden = LoadGolden("quality.json");
  ASSERT_FALSE(golden.value("binary", json::array()).empty());
  for (const json& c : golden["binary"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<double> w =
        c.contains("weights") ? Doubles(c["weights"]) : std::vector<double>{};
    auto auc = RocAuc(Doubles(c["scores"]), Doubles(c["labels"]), w);
    ASSERT_TRUE(auc.ok()) << auc.status();
    EXPECT_TRUE(Near(*auc, c["expected"]["auc"].get<double>(), 0, kQualityTol));
  }
}

TEST(GoldenQuality, Calibration) {
  const json golden = LoadGolden("quality.json");
  for (const json& c : golden.value("binary", json::array())) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const json& e = c["expected"];
    const std::vector<double> w =
        c.contains("weights") ? Doubles(c["weights"]) : std::vector<double>{};
    auto cal = Calibration(Doubles(c["scores"]), Doubles(c["labels"]), w, 10);
    ASSERT_TRUE(cal.ok()) << cal.status();
    EXPECT_EQ(cal->n, e["n"].get<double>());
    EXPECT_TRUE(Near(cal->ece, e["ece"].get<double>(), 0, kQualityTol)) << "ece";
    EXPECT_TRUE(Near(cal->mce, e["mce"].get<double>(), 0, kQualityTol)) << "mce";
    EXPECT_TRUE(Near(cal->brier, e["brier"].get<double>(), 0, kQualityTol)) << "brier";
    ASSERT_EQ(cal->reliability.size(), e["reliability"].size());
    for (size_t i = 0; i < cal->reliability.size(); ++i) {
      const ReliabilityBin& got = cal->reliability[i];
      const json& want = e["reliability"][i];
      EXPECT_EQ(got.bin, want["bin"].get<int>()) << "row " << i;
      EXPECT_TRUE(Near(got.mean_score, want["mean_score"].get<double>(), 0, kQualityTol))
          << "bin " << got.bin;
      EXPECT_TRUE(Near(got.mean_label, want["mean_label"].get<double>(), 0, kQualityTol))
          << "bin " << got.bin;
      EXPECT_EQ(got.count, want["count"].get<double>()) << "bin " << got.bin;
    }
  }
}

TEST(GoldenQuality, Ndcg) {
  const json golden = LoadGolden("quality.json");
  ASSERT_TRUE(golden.contains("ndcg"));
  const json& g = golden["ndcg"];
  const auto qids = g["query_ids"].get<std::vector<std::string>>();
  const std::vector<double> scores = Doubles(g["scores"]);
  const std::vector<double> rel = Doubles(g["relevance"]);
  const std::vector<double> weights = Doubles(g["weights"]);
  for (const json& e : g["expected"]) {
    const int k = e["k"].get<int>();
    SCOPED_TRACE("k = " + std::to_string(k));
    auto mean = NdcgAtK(qids, scores, rel, {}, k);
    ASSERT_TRUE(mean.ok()) << mean.status();
    EXPECT_TRUE(Near(*mean, e["mean"].get<double>(), 0, kQualityTol)) << "unweighted";
    auto weighted = NdcgAtK(qids, scores, rel, weights, k);
    ASSERT_TRUE(weighted.ok()) << weighted.status();
    EXPECT_TRUE(Near(*weighted, e["weighted_mean"].get<double>(), 0, kQualityTol)) << "weighted";

    for (const auto& [q, want] : e["per_query"].items()) {
      std::vector<double> qs, qr;
      for (size_t i = 0; i < qids.size(); ++i) {
        if (qids[i] != q) continue;
        qs.push_back(scores[i]);
        qr.push_back(rel[i]);
      }
      EXPECT_TRUE(Near(QueryNdcg(qs, qr, k), want.get<double>(), 0, kQualityTol)) << "query " << q;
    }
  }
}

}  // namespace
}  // namespace driftwatch::detectors
