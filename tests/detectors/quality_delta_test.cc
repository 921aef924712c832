// QualityDelta and MergeQualityEncodings: byte for byte what the dense
// QualityProfile gives for the same adds and merges (random adds from fixed
// seeds, with invalid scores and labels, zero weights, bin edges and
// duplicates), for every kind; the dense path for v1 rows; and every
// truncation or corruption of either side an error, never a crash.
#include "driftwatch/detectors/quality_delta.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/detectors/quality_profile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using ::testing::HasSubstr;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// The same random adds into a dense profile and a delta.
class Adds {
 public:
  Adds(QualityKind kind, int classes, uint32_t seed)
      : kind_(kind), classes_(classes), rng_(seed), dense_(kind, classes), delta_(kind, classes) {}

  void Run(int n) {
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<int> pick(0, 99);
    for (int i = 0; i < n; ++i) {
      std::vector<double> scores = Scores(u, pick);
      double weight = pick(rng_) < 5 ? 0.0 : (pick(rng_) < 50 ? 1.0 : 1.0 / (0.01 + u(rng_)));
      if (pick(rng_) == 0) weight = -1;  // invalid: skipped by both
      const int what = pick(rng_);
      if (what < 45) {
        dense_.AddPrediction(scores, weight);
        delta_.AddPrediction(scores, weight);
      } else if (what < 90) {
        const double label = Label(u, pick);
        const double delay = pick(rng_) < 3 ? -5.0 : std::exp(u(rng_) * 20);
        dense_.AddLabel(scores, label, weight, delay);
        delta_.AddLabel(scores, label, weight, delay);
      } else if (what < 95) {
        dense_.AddExpired(weight);
        delta_.AddExpired(weight);
      } else {
        const double ndcg = u(rng_);
        dense_.AddQuery(ndcg, weight);
        delta_.AddQuery(ndcg, weight);
      }
    }
  }
  const QualityProfile& dense() const { return dense_; }
  const QualityDelta& delta() const { return delta_; }

 private:
  std::vector<double> Scores(std::uniform_real_distribution<double>& u,
                             std::uniform_int_distribution<int>& pick) {
    if (kind_ == QualityKind::kMulticlass) {
      std::vector<double> p(classes_);
      double sum = 0;
      for (double& x : p) sum += (x = u(rng_));
      for (double& x : p) x /= sum;
      return p;
    }
    const int r = pick(rng_);
    if (r < 2) return {};                     // no score
    if (r < 4) return {1.5};                  // out of [0, 1]: invalid for a binary summary
    if (r < 6) return {kNan};
    if (r < 12) return {pick(rng_) / 100.0};  // on a fine-bin edge, often repeated
    if (r < 14) return {0.0};
    if (r < 16) return {1.0};
    return {u(rng_)};
  }
  double Label(std::uniform_real_distribution<double>& u,
               std::uniform_int_distribution<int>& pick) {
    switch (kind_) {
      case QualityKind::kBinary:
        return pick(rng_) < 3 ? 0.5 : (u(rng_) < 0.4 ? 1.0 : 0.0);  // 0.5: invalid
      case QualityKind::kMulticlass:
        return std::uniform_int_distribution<int>(0, classes_ - 1)(rng_);
      default:
        return u(rng_) * 3;
    }
  }

  QualityKind kind_;
  int classes_;
  std::mt19937_64 rng_;
  QualityProfile dense_;
  QualityDelta delta_;
};

TEST(QualityDeltaTest, SerializesAsTheDenseProfileForEveryKind) {
  for (auto [kind, classes] : {std::pair{QualityKind::kBinary, 2},
                               {QualityKind::kMulticlass, 3},
                               {QualityKind::kRegression, 2},
                               {QualityKind::kRanking, 2}}) {
    for (uint32_t seed : {1u, 2u, 3u, 17u}) {
      for (int n : {0, 1, 7, 300, 5000}) {
        Adds adds(kind, classes, seed);
        adds.Run(n);
        SCOPED_TRACE(testing::Message() << "kind " << static_cast<int>(kind) << " seed " << seed
                                        << " adds " << n);
        ASSERT_EQ(adds.delta().Serialize(), adds.dense().Serialize());
        EXPECT_EQ(adds.delta().adds(), static_cast<size_t>(n));
        ASSERT_TRUE(QualityProfile::Deserialize(adds.delta().Serialize()).ok());
      }
    }
  }
}

// stored.Merge(delta) through Deserialize / Merge / Serialize.
std::string DenseMerge(const std::string& stored, const std::string& delta) {
  absl::StatusOr<QualityProfile> s = QualityProfile::Deserialize(stored);
  absl::StatusOr<QualityProfile> d = QualityProfile::Deserialize(delta);
  EXPECT_TRUE(s.ok() && d.ok());
  EXPECT_TRUE(s->Merge(*d).ok());
  return s->Serialize();
}

TEST(QualityDeltaTest, MergedEncodingsEqualTheDenseMerge) {
  for (auto [kind, classes] : {std::pair{QualityKind::kBinary, 2},
                               {QualityKind::kMulticlass, 4},
                               {QualityKind::kRegression, 2},
                               {QualityKind::kRanking, 2}}) {
    for (uint32_t seed : {5u, 6u, 7u}) {
      // A stored row grown by several commits, each merged as the store does.
      std::string stored = QualityDelta(kind, classes).Serialize();
      for (int commit = 0; commit < 6; ++commit) {
        Adds adds(kind, classes, seed * 100 + commit);
        adds.Run(commit == 3 ? 0 : 50 * (commit + 1));
        const std::string delta = adds.delta().Serialize();
        absl::StatusOr<std::string> merged = MergeQualityEncodings(stored, delta);
        ASSERT_TRUE(merged.ok()) << merged.status();
        ASSERT_EQ(*merged, DenseMerge(stored, delta))
            << "kind " << static_cast<int>(kind) << " seed " << seed << " commit " << commit;
        stored = *merged;
      }
      // Either way round.
      Adds other(kind, classes, seed + 999);
      other.Run(400);
      const std::string delta = other.delta().Serialize();
      absl::StatusOr<std::string> merged = MergeQualityEncodings(delta, stored);
      ASSERT_TRUE(merged.ok());
      EXPECT_EQ(*merged, DenseMerge(delta, stored));
    }
  }
}

// A v1 encoding (dense bins) of a binary profile, written by hand from the
// v2 one: the dense path reads it.
std::string ToV1(const QualityProfile& p) {
  base::ByteWriter s;
  s.Header(std::string_view("DWSL"), uint32_t{1});
  s.U32(kQualityFineBins);
  s.U64(p.binary().invalid());
  for (int part = 0; part < 4; ++part) {
    for (int b = 0; b < kQualityFineBins; ++b) {
      const ScoreLabelSummary& x = p.binary();
      s.F64(part == 0   ? x.positives(b)
            : part == 1 ? x.negatives(b)
            : part == 2 ? x.score_sum(b)
                        : 0.0);
    }
  }
  base::ByteWriter w;
  w.Header(std::string_view("DWQP"), uint32_t{1});
  w.U32(1);
  w.U32(2);
  w.U64(p.predicted());
  w.U64(p.labelled());
  w.U64(p.expired());
  for (double d : {p.predicted_weight(), p.labelled_weight(), p.expired_weight()}) w.F64(d);
  w.Str(std::move(s).Finish());
  for (int b = 0; b < kQualityFineBins; ++b) w.F64(p.predicted_bin_weight(b));
  for (int b = 0; b < kQualityFineBins; ++b) w.F64(p.predicted_bin_score_sum(b));
  std::string out = std::move(w).Finish();
  p.delay().AppendTo(&out);
  return out;
}

TEST(QualityDeltaTest, AVersionOneStoredRowMergesThroughTheDensePath) {
  Adds stored(QualityKind::kBinary, 2, 41), delta(QualityKind::kBinary, 2, 42);
  stored.Run(500);
  delta.Run(500);
  const std::string v1 = ToV1(stored.dense());
  ASSERT_TRUE(QualityProfile::Deserialize(v1).ok());
  absl::StatusOr<std::string> merged = MergeQualityEncodings(v1, delta.delta().Serialize());
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(*merged, DenseMerge(v1, delta.delta().Serialize()));
}

TEST(QualityDeltaTest, KindsThatDifferDoNotMerge) {
  const std::string binary = QualityDelta(QualityKind::kBinary).Serialize();
  const std::string ranking = QualityDelta(QualityKind::kRanking).Serialize();
  absl::StatusOr<std::string> merged = MergeQualityEncodings(binary, ranking);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
}

// Every truncation and single-byte corruption of either side: the sparse
// path accepts exactly what the dense one does, and then gives its bytes.
TEST(QualityDeltaTest, CorruptEncodingsAreRejectedAsTheDensePathRejectsThem) {
  Adds a(QualityKind::kBinary, 2, 77), b(QualityKind::kBinary, 2, 78);
  a.Run(60);
  b.Run(60);
  const std::string good_a = a.delta().Serialize(), good_b = b.delta().Serialize();
  std::vector<std::string> bad;
  for (size_t n = 0; n < good_a.size(); ++n) bad.push_back(good_a.substr(0, n));
  bad.push_back(good_a + "x");
  for (size_t i = 0; i < good_a.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xFF}) {
      std::string c = good_a;
      c[i] = static_cast<char>(static_cast<unsigned char>(c[i]) ^ flip);
      bad.push_back(std::move(c));
    }
  }
  int rejected = 0;
  for (const std::string& c : bad) {
    for (bool corrupt_is_stored : {true, false}) {
      const std::string& stored = corrupt_is_stored ? c : good_b;
      const std::string& delta = corrupt_is_stored ? good_b : c;
      absl::StatusOr<std::string> merged = MergeQualityEncodings(stored, delta);
      absl::StatusOr<QualityProfile> dense_c = QualityProfile::Deserialize(c);
      ASSERT_EQ(merged.ok(), dense_c.ok());
      if (merged.ok()) {
        ASSERT_EQ(*merged, DenseMerge(stored, delta));
      } else {
        ++rejected;
        EXPECT_EQ(merged.status().code(), absl::StatusCode::kDataLoss);
        EXPECT_THAT(std::string(merged.status().message()),
                    HasSubstr(corrupt_is_stored ? "stored row" : "delta"));
      }
    }
  }
  EXPECT_GT(rejected, static_cast<int>(good_a.size()));  // at least every truncation, both ways
}

// A report's merge of rows into one profile: the same profile (bytes, and
// the delay quantiles, which read the histogram's total) as Deserialize
// then Merge, for every kind; bad rows are the same errors and change
// nothing.
TEST(QualityDeltaTest, MergeEncodingIntoEqualsDeserializeAndMerge) {
  for (auto [kind, classes] : {std::pair{QualityKind::kBinary, 2},
                               {QualityKind::kMulticlass, 3},
                               {QualityKind::kRegression, 2},
                               {QualityKind::kRanking, 2}}) {
    QualityProfile fast(kind, classes), slow(kind, classes);
    for (uint32_t seed = 0; seed < 8; ++seed) {
      Adds adds(kind, classes, 300 + seed);
      adds.Run(seed == 3 ? 0 : 40 * (seed + 1) * (seed + 1));
      const std::string row = adds.delta().Serialize();
      ASSERT_TRUE(MergeEncodingInto(row, &fast).ok());
      absl::StatusOr<QualityProfile> p = QualityProfile::Deserialize(row);
      ASSERT_TRUE(p.ok());
      ASSERT_TRUE(slow.Merge(*p).ok());
      ASSERT_EQ(fast.Serialize(), slow.Serialize()) << "kind " << static_cast<int>(kind);
      for (double q : {0.0, 0.25, 0.5, 0.95, 0.99, 1.0}) {
        EXPECT_EQ(fast.delay().Quantile(q), slow.delay().Quantile(q));
      }
      EXPECT_EQ(fast.delay().weight(), slow.delay().weight());
    }
  }
  // Bad rows.
  Adds a(QualityKind::kBinary, 2, 501);
  a.Run(80);
  const std::string good = a.delta().Serialize();
  QualityProfile into(QualityKind::kBinary);
  ASSERT_TRUE(MergeEncodingInto(good, &into).ok());
  const std::string before = into.Serialize();
  for (size_t n = 0; n < good.size(); n += 3) {
    absl::Status st = MergeEncodingInto(std::string_view(good).substr(0, n), &into);
    ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << n;
  }
  EXPECT_EQ(MergeEncodingInto(QualityDelta(QualityKind::kRanking).Serialize(), &into).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(into.Serialize(), before);
}

}  // namespace
}  // namespace driftwatch::detectors
