// Reports.CompareVersions' statistics against numpy
// (tests/golden/make_version_agreement_golden.py).
#include "reports/version_comparison.h"

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::service::reports {
namespace {

using Json = nlohmann::json;

Json LoadGolden() {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/version_agreement.json");
  EXPECT_TRUE(in.good()) << "missing golden file";
  return Json::parse(in);
}

std::vector<ScorePair> PairsOf(const Json& c) {
  std::vector<ScorePair> out;
  const size_t n = c["a"].size();
  for (size_t i = 0; i < n; ++i) {
    ScorePair p;
    p.a = c["a"][i].get<double>();
    p.b = c["b"][i].get<double>();
    p.weight = c["w"][i].get<double>();
    p.id = i;
    if (c.contains("ids")) {
      p.id = c["ids"][i].get<uint64_t>();
      p.ranked = true;
      p.query = c["query"][i].get<uint64_t>();
    }
    out.push_back(p);
  }
  return out;
}

TEST(VersionAgreement, MatchesNumpy) {
  const Json golden = LoadGolden();
  ASSERT_EQ(golden["cases"].size(), 3u);
  for (const Json& c : golden["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    AgreementOptions options;
    options.threshold = c["threshold"].get<double>();
    if (c.contains("k")) options.k = c["k"].get<uint32_t>();
    v1::VersionAgreement out;
    const std::vector<ScorePair> pairs = PairsOf(c);
    Agree(pairs, options, &out);
    EXPECT_EQ(out.paired(), pairs.size());
    EXPECT_NEAR(out.score_correlation(), c["score_correlation"].get<double>(), 1e-12);
    EXPECT_NEAR(out.decision_agreement(), c["decision_agreement"].get<double>(), 1e-12);
    EXPECT_NEAR(out.mean_abs_diff(), c["mean_abs_diff"].get<double>(), 1e-12);
    EXPECT_NEAR(out.psi(), c["psi"].get<double>(), 1e-12);
    if (c.contains("topk_overlap")) {
      EXPECT_NEAR(out.topk_overlap(), c["topk_overlap"].get<double>(), 1e-12);
    } else {
      EXPECT_TRUE(std::isnan(out.topk_overlap()));
    }
  }
}

TEST(VersionAgreement, UndefinedStatisticsAreNaN) {
  v1::VersionAgreement none;
  Agree({}, AgreementOptions{}, &none);
  EXPECT_EQ(none.paired(), 0u);
  EXPECT_TRUE(std::isnan(none.score_correlation()));
  EXPECT_TRUE(std::isnan(none.psi()));
  // A constant challenger (serving a default): no correlation, but the
  // decisions and the PSI say it.
  std::vector<ScorePair> pairs;
  for (int i = 0; i < 100; ++i) pairs.push_back({static_cast<uint64_t>(i), i / 100.0, 0.0});
  AgreementOptions at_half;
  at_half.threshold = 0.5;
  v1::VersionAgreement constant;
  Agree(pairs, at_half, &constant);
  EXPECT_TRUE(std::isnan(constant.score_correlation()));
  EXPECT_DOUBLE_EQ(constant.decision_agreement(), 0.5);
  EXPECT_GT(constant.psi(), 1);
  // No threshold and no classes: no decision.
  v1::VersionAgreement regression;
  Agree(pairs, AgreementOptions{}, &regression);
  EXPECT_TRUE(std::isnan(regression.decision_agreement()));
  // Multiclass decides by argmax.
  pairs[0].class_a = 1;
  pairs[0].class_b = 2;
  for (size_t i = 1; i < pairs.size(); ++i) pairs[i].class_a = pairs[i].class_b = 0;
  v1::VersionAgreement classes;
  Agree(pairs, AgreementOptions{}, &classes);
  EXPECT_DOUBLE_EQ(classes.decision_agreement(), 0.99);
}

}  // namespace
}  // namespace driftwatch::service::reports
