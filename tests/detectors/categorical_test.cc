#include "driftwatch/detectors/categorical.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using ::testing::HasSubstr;

TEST(CategoricalSummaryTest, CountsWeightsAndSpecialBins) {
  CategoricalSummary s(10);
  s.Add("ios");
  s.Add("android", 2.0);
  s.Add("ios", 0.5);
  s.AddMissing(3.0);
  s.Add("web", 0.0);  // invalid weights are ignored
  s.Add("web", std::nan(""));
  s.Add(base::kOther, 4.0);  // the literal name files into the bin
  s.Add(base::kMissing);
  EXPECT_EQ(s.WeightOf("ios"), 1.5);
  EXPECT_EQ(s.WeightOf("android"), 2.0);
  EXPECT_EQ(s.WeightOf("web"), 0.0);
  EXPECT_EQ(s.missing_weight(), 4.0);
  EXPECT_EQ(s.WeightOf(base::kMissing), 4.0);
  EXPECT_EQ(s.other_weight(), 4.0);
  EXPECT_EQ(s.counts().size(), 2u);
  EXPECT_EQ(s.total_weight(), 11.5);
  EXPECT_EQ(s.count(), 6u);
  EXPECT_EQ(s.weight_sq(), 1 + 4 + 0.25 + 9 + 16 + 1);
  EXPECT_DOUBLE_EQ(s.effective_size(), 11.5 * 11.5 / 31.25);
}

TEST(CategoricalSummaryTest, EmptySummary) {
  CategoricalSummary s;
  EXPECT_EQ(s.total_weight(), 0.0);
  EXPECT_EQ(s.effective_size(), 0.0);
  EXPECT_EQ(s.WeightOf("x"), 0.0);
}

TEST(CategoricalSummaryTest, CapSendsUnseenValuesToOther) {
  CategoricalSummary s(2);
  s.Add("a");
  s.Add("b");
  s.Add("c");
  s.Add("a");
  s.Add("d", 2.0);
  EXPECT_EQ(s.counts().size(), 2u);
  EXPECT_EQ(s.WeightOf("a"), 2.0);
  EXPECT_EQ(s.WeightOf("c"), 0.0);
  EXPECT_EQ(s.other_weight(), 3.0);
  EXPECT_EQ(s.total_weight(), 6.0);
}

TEST(CategoricalSummaryTest, MergeUnderTheCapEqualsAddingEverything) {
  CategoricalSummary all(100), a(100), b(100);
  const std::string names[] = {"x", "y", "z", "w"};
  for (int i = 0; i < 200; ++i) {
    const std::string& name = names[(i * 7) % 4];
    all.Add(name);
    (i % 2 ? a : b).Add(name);
  }
  a.AddMissing();
  all.AddMissing();
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.counts(), all.counts());
  EXPECT_EQ(a.missing_weight(), all.missing_weight());
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.weight_sq(), all.weight_sq());
}

TEST(CategoricalSummaryTest, MergeKeepsTheHeaviestWithNameTieBreak) {
  CategoricalSummary a(3), b(3);
  a.Add("p", 5.0);
  a.Add("q", 1.0);
  a.Add("r", 2.0);
  b.Add("s", 2.0);
  b.Add("t", 0.5);
  b.Add("q", 0.5);
  ASSERT_TRUE(a.Merge(b).ok());
  // p=5, r=2, s=2 (tie with r: both kept), q=1.5 and t=0.5 fold into other.
  EXPECT_EQ(a.counts().size(), 3u);
  EXPECT_EQ(a.WeightOf("p"), 5.0);
  EXPECT_EQ(a.WeightOf("r"), 2.0);
  EXPECT_EQ(a.WeightOf("s"), 2.0);
  EXPECT_EQ(a.other_weight(), 2.0);
  EXPECT_EQ(a.total_weight(), 11.0);

  CategoricalSummary c(1), d(1);
  c.Add("beta");
  d.Add("alpha");
  ASSERT_TRUE(c.Merge(d).ok());
  EXPECT_EQ(c.WeightOf("alpha"), 1.0);  // equal weights: the smaller name wins
  EXPECT_EQ(c.other_weight(), 1.0);
}

TEST(CategoricalSummaryTest, SerializationRoundTripsAndIsDeterministic) {
  CategoricalSummary a(50), b(50);
  for (int i = 0; i < 30; ++i) a.Add("cat" + std::to_string(i), 1.0 + i);
  for (int i = 29; i >= 0; --i) b.Add("cat" + std::to_string(i), 1.0 + i);
  a.AddMissing(2.5);
  b.AddMissing(2.5);
  a.Add(std::string("with\0nul", 8));
  b.Add(std::string("with\0nul", 8));
  EXPECT_EQ(a.Serialize(), b.Serialize());
  auto back = CategoricalSummary::Deserialize(a.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->counts(), a.counts());
  EXPECT_EQ(back->missing_weight(), 2.5);
  EXPECT_EQ(back->max_categories(), 50u);
  EXPECT_EQ(back->count(), a.count());
  EXPECT_EQ(back->weight_sq(), a.weight_sq());
}

TEST(CategoricalSummaryTest, DeserializeRejectsTruncatedAndCorruptBytes) {
  CategoricalSummary s(5);
  s.Add("a", 2);
  s.Add("bb");
  s.AddMissing();
  const std::string bytes = s.Serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    ASSERT_EQ(CategoricalSummary::Deserialize(bytes.substr(0, len)).status().code(),
              absl::StatusCode::kDataLoss)
        << len;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x01;
    ASSERT_EQ(CategoricalSummary::Deserialize(bad).status().code(), absl::StatusCode::kDataLoss)
        << i;
  }
  auto wrong = CategoricalSummary::Deserialize("DWNS garbage");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(wrong.status().message(), HasSubstr("categorical summary"));
}

}  // namespace
}  // namespace driftwatch::detectors
