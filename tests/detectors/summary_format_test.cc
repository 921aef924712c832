// Summaries keep the weight of missing values, and blobs of every format
// version ever written still decode (docs/formats/summary.md, profile.md).
#include <cmath>
#include <memory>
#include <string>

#include "driftwatch/base/byte_io.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/profile.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

TEST(MissingWeight, NullsAndNonFiniteValuesCarryTheirWeight) {
  NumericSummary s(std::make_shared<const BinEdges>(*BinEdges::Create({0.0})));
  s.Add(1.0, 2.0);
  s.AddNull(10.0);
  s.Add(std::nan(""), 4.0);
  s.Add(INFINITY, 0.5);
  EXPECT_EQ(s.counts().nulls, 1u);
  EXPECT_EQ(s.counts().nans, 1u);
  EXPECT_DOUBLE_EQ(s.counts().missing_weight, 14.5);
  NumericSummary other(s.shared_edges());
  other.AddNull(1.5);
  ASSERT_TRUE(s.Merge(other).ok());
  EXPECT_DOUBLE_EQ(s.counts().missing_weight, 16.0);
  auto back = NumericSummary::Deserialize(s.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_DOUBLE_EQ(back->counts().missing_weight, 16.0);
}

// The counts of format version 1: six f64, six u64.
void PutV1Counts(base::ByteWriter& w) {
  for (double v : {6.0, 12.0, 9.0, 15.0, -1.0, 2.0}) w.F64(v);  // weight 6 over 3 values
  for (uint64_t v : {3, 2, 1, 0, 1, 0}) w.U64(v);  // count 3, 2 nulls, 1 NaN, 1 -Inf
}

TEST(FormatVersions, NumericSummaryVersion1StillDecodes) {
  base::ByteWriter w;
  w.Raw("DWNS");
  w.U32(1);
  w.U32(1);    // one edge
  w.F64(0.0);  // edge
  w.F64(2.0);  // bins
  w.F64(4.0);
  PutV1Counts(w);
  auto s = NumericSummary::Deserialize(std::move(w).FinishWithCrc());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->counts().count, 3u);
  EXPECT_EQ(s->counts().nulls, 2u);
  // 4 missing values at the mean weight of the finite ones (6 / 3).
  EXPECT_DOUBLE_EQ(s->counts().missing_weight, 8.0);
}

TEST(FormatVersions, ProfileVersion1StillDecodes) {
  auto layout = std::make_shared<ProfileLayout>();
  layout->numeric_names = {"x"};
  layout->numeric_edges = {std::make_shared<const BinEdges>(*BinEdges::Create({0.0}))};
  base::ByteWriter w;
  w.Raw("DWPF");
  w.U32(1);
  w.U32(1);  // numeric
  w.U32(0);  // categorical
  w.U32(0);  // scores
  w.U64(7);  // events
  w.U64(0);
  w.U64(0);
  w.F64(14.0);
  w.F64(28.0);
  w.U32(2);  // bins
  w.Raw(std::string(1, '\0'));  // dense
  w.F64(2.0);
  w.F64(4.0);
  PutV1Counts(w);
  auto p = Profile::Deserialize(layout, std::move(w).FinishWithCrc());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->counters().events, 7u);
  EXPECT_DOUBLE_EQ(p->numeric()[0].counts().missing_weight, 8.0);
  // Written back in the current version, it decodes to the same profile.
  auto again = Profile::Deserialize(layout, p->Serialize());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->Serialize(), p->Serialize());
  // The header's counters read alone.
  auto c = Profile::PeekCounters(p->Serialize());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->events, 7u);
  EXPECT_DOUBLE_EQ(c->weight, 14.0);
}

TEST(FormatVersions, PeekCountersChecksWhatDeserializeChecks) {
  auto layout = std::make_shared<ProfileLayout>();
  layout->numeric_names = {"x"};
  layout->numeric_edges = {std::make_shared<const BinEdges>(*BinEdges::Create({0.0}))};
  Profile p(layout);
  p.counters().events = 42;
  std::string blob = p.Serialize();
  auto c = Profile::PeekCounters(blob);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->events, 42u);
  std::string flipped = blob;
  flipped[21] ^= 1;  // inside the events counter
  EXPECT_EQ(Profile::PeekCounters(flipped).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Profile::PeekCounters(blob.substr(0, 6)).status().code(),
            absl::StatusCode::kDataLoss);
  std::string wrong_magic = blob;
  wrong_magic[0] = 'X';
  base::ByteWriter w;
  w.Raw(std::string_view(wrong_magic).substr(0, wrong_magic.size() - 4));
  EXPECT_EQ(Profile::PeekCounters(std::move(w).FinishWithCrc()).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace driftwatch::detectors
