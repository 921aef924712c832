// RegressionErrorSummary and MulticlassSummary against scikit-learn
// (tests/golden/label_quality.json, made by make_label_quality_golden.py).
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "driftwatch/detectors/quality.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::detectors {
namespace {

nlohmann::json Golden() {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/label_quality.json");
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

double WeightAt(const nlohmann::json& c, size_t i) {
  return c["weights"].is_null() ? 1.0 : c["weights"][i].get<double>();
}

TEST(RegressionErrorSummaryTest, MatchesSklearnAndMergesAndRoundTrips) {
  const nlohmann::json golden = Golden();  // kept alive for the loop
  for (const auto& c : golden["regression"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    RegressionErrorSummary all, first, second;
    const size_t n = c["target"].size();
    for (size_t i = 0; i < n; ++i) {
      const double p = c["prediction"][i], t = c["target"][i], w = WeightAt(c, i);
      all.Add(p, t, w);
      (i % 3 == 0 ? first : second).Add(p, t, w);
    }
    first.Merge(second);
    for (const RegressionErrorSummary* s : {&all, &first}) {
      auto e = s->Compute();
      ASSERT_TRUE(e.ok()) << e.status();
      EXPECT_NEAR(e->mae, c["mae"].get<double>(), 1e-12);
      EXPECT_NEAR(e->rmse, c["rmse"].get<double>(), 1e-12);
      EXPECT_NEAR(e->bias, c["bias"].get<double>(), 1e-12);
    }
    auto back = RegressionErrorSummary::Deserialize(all.Serialize());
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->Compute()->mae, all.Compute()->mae);
    EXPECT_EQ(back->count(), n);
  }
  RegressionErrorSummary bad;
  bad.Add(NAN, 1);
  bad.Add(1, INFINITY);
  bad.Add(1, 2, -1);
  EXPECT_EQ(bad.invalid(), 3u);
  EXPECT_EQ(bad.Compute().status().code(), absl::StatusCode::kFailedPrecondition);
  std::string blob = bad.Serialize();
  EXPECT_EQ(RegressionErrorSummary::Deserialize(blob.substr(0, blob.size() - 1)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(MulticlassSummaryTest, MatchesSklearnWithinTheBinnedAucBound) {
  const nlohmann::json golden = Golden();
  for (const auto& c : golden["multiclass"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const int k = c["classes"];
    MulticlassSummary all(k), first(k), second(k);
    const size_t n = c["labels"].size();
    for (size_t i = 0; i < n; ++i) {
      const std::vector<double> p = c["probabilities"][i].get<std::vector<double>>();
      const int y = c["labels"][i];
      all.Add(p, y, WeightAt(c, i));
      (i % 2 ? first : second).Add(p, y, WeightAt(c, i));
    }
    ASSERT_TRUE(first.Merge(second).ok());
    for (const MulticlassSummary* s : {&all, &first}) {
      auto m = s->Compute();
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ(m->auc_classes, k);
      EXPECT_NEAR(m->macro_auc, c["macro_auc"].get<double>(), m->macro_auc_error_bound + 1e-12);
      EXPECT_LT(m->macro_auc_error_bound, 0.01);
      EXPECT_NEAR(m->accuracy, c["accuracy"].get<double>(), 1e-12);
      EXPECT_NEAR(m->log_loss, c["log_loss"].get<double>(), 1e-12);
    }
  }
}

TEST(MulticlassSummaryTest, BadRowsAreInvalidAndOneClassIsNotAnAuc) {
  MulticlassSummary s(3);
  const std::vector<double> ok = {0.2, 0.5, 0.3}, short_row = {0.5, 0.5}, nan_row = {NAN, 0.5, 0.5},
                            big = {1.5, 0, 0};
  s.Add(short_row, 0);
  s.Add(nan_row, 0);
  s.Add(big, 0);
  s.Add(ok, 3);
  s.Add(ok, -1);
  s.Add(ok, 1, -2);
  EXPECT_EQ(s.invalid(), 6u);
  s.Add(ok, 1);
  s.Add(ok, 1);
  EXPECT_EQ(s.Compute().status().code(), absl::StatusCode::kFailedPrecondition);  // one class
  MulticlassSummary other(4);
  EXPECT_EQ(s.Merge(other).code(), absl::StatusCode::kInvalidArgument);
  // Ties go to the first maximum, as numpy's argmax.
  MulticlassSummary ties(2);
  const std::vector<double> tie = {0.5, 0.5};
  ties.Add(tie, 0);
  ties.Add(tie, 1);
  const std::vector<double> sure0 = {0.9, 0.1}, sure1 = {0.2, 0.8};
  ties.Add(sure0, 0);
  ties.Add(sure1, 1);
  auto m = ties.Compute();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->accuracy, 3.0 / 4);
}

}  // namespace
}  // namespace driftwatch::detectors
