#include "labels/join_record.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace driftwatch::service::labels {
namespace {

JoinRecord Binary() {
  JoinRecord r;
  r.event_time_ms = 1'796'132'327'276;
  r.weight = 1 / 0.3;
  r.slices = {0, 3, 47, 946};
  r.scores = {0.8123456789012345};
  return r;
}

TEST(JoinRecordTest, RoundTripsAndStaysWithinItsBudget) {
  std::string bytes;
  EncodeJoinRecord(Binary(), &bytes);
  // docs/formats/join_state.md: 1 + 8 + 8 + 1 + (1 + 1 + 1 + 2) + 8 = 31.
  EXPECT_EQ(bytes.size(), 31u);
  auto back = DecodeJoinRecord(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, Binary());  // f64 scores and weights exactly

  JoinRecord ranked = Binary();
  ranked.ranked = true;
  ranked.query_hash = 0xfedcba9876543210ull;
  ranked.position = 12;
  std::string rb;
  EncodeJoinRecord(ranked, &rb);
  EXPECT_EQ(rb.size(), 31u + 8 + 1);
  EXPECT_EQ(*DecodeJoinRecord(rb), ranked);

  JoinRecord multi = Binary();
  multi.kind = JoinRecord::Scores::kClassProbs;
  multi.scores = {0.1, 0.25, 0.65};
  std::string mb;
  EncodeJoinRecord(multi, &mb);
  EXPECT_EQ(mb.size(), 23u + 1 + 3 * 4);
  auto m = DecodeJoinRecord(mb);
  ASSERT_TRUE(m.ok()) << m.status();
  for (size_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(m->scores[c], multi.scores[c], 6e-8 * multi.scores[c]);  // f32
  }
  // With the 8-byte id hash it is stored under, within the documented 48.
  EXPECT_LE(bytes.size() + 8, 48u);
  EXPECT_LE(rb.size() + 8, 48u);
}

TEST(JoinRecordTest, CorruptBytesAreDataLossNamingWhat) {
  std::string bytes;
  EncodeJoinRecord(Binary(), &bytes);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto got = DecodeJoinRecord(bytes.substr(0, cut));
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << cut;
  }
  EXPECT_NE(DecodeJoinRecord(bytes + "x").status().message().find("trailing"), std::string::npos);
  std::string version = bytes;
  version[0] = 7;
  EXPECT_NE(DecodeJoinRecord(version).status().message().find("version"), std::string::npos);
  JoinRecord bad = Binary();
  bad.weight = -1;
  std::string w;
  EncodeJoinRecord(bad, &w);
  EXPECT_NE(DecodeJoinRecord(w).status().message().find("weight"), std::string::npos);
}

}  // namespace
}  // namespace driftwatch::service::labels
