#include "driftwatch/detectors/sample.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(WeightedSampleTest, SortsValuesWithAlignedWeights) {
  auto s = WeightedSample::Create({3.0, 1.0, 2.0}, {0.5, 2.0, 1.0});
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->values(), ElementsAre(1.0, 2.0, 3.0));
  EXPECT_THAT(s->weights(), ElementsAre(2.0, 1.0, 0.5));
  EXPECT_FALSE(s->unweighted());
  EXPECT_EQ(s->total_weight(), 3.5);
  EXPECT_DOUBLE_EQ(s->effective_size(), 3.5 * 3.5 / 5.25);
  EXPECT_DOUBLE_EQ(s->mean(), (2.0 + 2.0 + 1.5) / 3.5);
  const double m = s->mean();
  EXPECT_DOUBLE_EQ(
      s->stddev(),
      std::sqrt((2 * (1 - m) * (1 - m) + (2 - m) * (2 - m) + 0.5 * (3 - m) * (3 - m)) / 3.5));
  EXPECT_EQ(s->Cdf(0.5), 0.0);
  EXPECT_DOUBLE_EQ(s->Cdf(1.0), 2.0 / 3.5);
  EXPECT_DOUBLE_EQ(s->Cdf(2.5), 3.0 / 3.5);
  EXPECT_EQ(s->Cdf(3.0), 1.0);
  EXPECT_EQ(s->CumulativeWeight(2.0), 3.0);
}

TEST(WeightedSampleTest, UnitWeightsCountAsUnweighted) {
  auto none = WeightedSample::Create({2.0, 4.0});
  auto ones = WeightedSample::Create({2.0, 4.0}, {1.0, 1.0});
  ASSERT_TRUE(none.ok() && ones.ok());
  EXPECT_TRUE(none->unweighted());
  EXPECT_TRUE(ones->unweighted());
  EXPECT_THAT(none->weights(), ElementsAre(1.0, 1.0));
  EXPECT_EQ(none->mean(), 3.0);
  EXPECT_EQ(none->stddev(), 1.0);  // numpy.std, ddof = 0
  EXPECT_EQ(none->effective_size(), 2.0);
}

TEST(WeightedSampleTest, EmptyAndSingleValue) {
  auto empty = WeightedSample::Create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(empty->mean(), 0.0);
  EXPECT_EQ(empty->stddev(), 0.0);
  EXPECT_EQ(empty->Cdf(1.0), 0.0);
  EXPECT_EQ(empty->effective_size(), 0.0);
  auto one = WeightedSample::Create({7.0}, {4.0});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->mean(), 7.0);
  EXPECT_EQ(one->stddev(), 0.0);
  EXPECT_EQ(one->effective_size(), 1.0);
  // A constant sample has std exactly 0 (no mean-rounding residue).
  auto constant =
      WeightedSample::Create({0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, {1, 2, 3, 1, 1, 1, 9});
  ASSERT_TRUE(constant.ok());
  EXPECT_EQ(constant->mean(), 0.1);
  EXPECT_EQ(constant->stddev(), 0.0);
}

TEST(WeightedSampleTest, RejectsBadInput) {
  auto nan = WeightedSample::Create({1.0, std::nan("")});
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("value 1"));
  auto inf = WeightedSample::Create({std::numeric_limits<double>::infinity()});
  EXPECT_EQ(inf.status().code(), absl::StatusCode::kInvalidArgument);
  auto mismatch = WeightedSample::Create({1.0, 2.0}, {1.0});
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("weights"));
  for (double bad : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto w = WeightedSample::Create({1.0, 2.0}, {1.0, bad});
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(w.status().message(), HasSubstr("weight 1"));
  }
}

}  // namespace
}  // namespace driftwatch::detectors
