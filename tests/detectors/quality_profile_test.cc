// DelayHistogram, QualityProfile, EstimatePerformance (CBPE) and
// BinnedAccuracy: quantiles and the isotonic calibration map against numpy /
// scikit-learn (tests/golden/quality_profile.json, made by
// make_quality_profile_golden.py), merges and round trips exactly, every
// truncation and a catalogue of corruptions rejected, and the CBPE estimate
// against the AUC and accuracy the drawn labels realise.
#include "driftwatch/detectors/quality_profile.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/detectors/quality.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::detectors {
namespace {

using ::testing::HasSubstr;

constexpr double kExact = 1e-12;  // ratios of sums of a few thousand doubles in another order
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

nlohmann::json Golden() {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/quality_profile.json");
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

// Uniform on [0, 1) from the top 53 bits: mt19937_64 is fully specified, so
// (unlike std::uniform_real_distribution) every standard library draws the
// same numbers.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1p-53; }

std::span<const double> One(const double& score) { return {&score, 1}; }

// ========================================================= DelayHistogram

// The geometric middle of the bin holding `delay_ms` (docs/formats/quality_profile.md).
double BinMiddle(double delay_ms) {
  if (delay_ms < 1) return 0;
  const int b = 1 + static_cast<int>(std::floor(std::log2(delay_ms) * DelayHistogram::kPerOctave));
  return std::exp2((b - 0.5) / DelayHistogram::kPerOctave);
}

// `estimate` is what the histogram should say of the exact quantile `exact`:
// 0 below 1 ms, else within the relative bound (and the middle of its bin).
void ExpectWithinBound(std::optional<double> estimate, double exact) {
  ASSERT_TRUE(estimate.has_value());
  if (exact < 1) {
    EXPECT_EQ(*estimate, 0.0) << "exact " << exact;
    return;
  }
  // 1e-12: a delay within an ulp of a bin edge may land either side.
  EXPECT_LE(std::abs(*estimate - exact), DelayHistogram::kRelativeErrorBound * exact * (1 + 1e-12))
      << "exact " << exact;
  EXPECT_NEAR(*estimate, BinMiddle(exact), 1e-12 * exact) << "exact " << exact;
}

DelayHistogram FromGolden(const nlohmann::json& c, int part = -1) {
  DelayHistogram h;
  for (size_t i = 0; i < c["delay_ms"].size(); ++i) {
    if (part >= 0 && static_cast<int>(i % 2) != part) continue;
    h.Add(c["delay_ms"][i].get<double>(), c["weights"][i].get<double>());
  }
  return h;
}

std::string Encode(const DelayHistogram& h) {
  std::string out;
  h.AppendTo(&out);
  return out;
}

TEST(DelayHistogramTest, BoundIsHalfABinInLogSpace) {
  EXPECT_DOUBLE_EQ(DelayHistogram::kRelativeErrorBound, std::exp2(1.0 / 32) - 1);
  EXPECT_NEAR(DelayHistogram::kRelativeErrorBound, 0.0219, 1e-4);
  EXPECT_EQ(DelayHistogram::kBins, 641);
}

// p50 / p95 / p99 (and the other stored q) of a few thousand weighted
// lognormal delays, some negative and some under 1 ms, against
// np.quantile(np.repeat(x, w), q, method="inverted_cdf").
TEST(DelayHistogramTest, QuantilesWithinTheBoundOfNumpysInvertedCdf) {
  const nlohmann::json golden = Golden();
  for (const auto& c : golden["delay"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const DelayHistogram h = FromGolden(c);
    double total = 0;
    for (const auto& w : c["weights"]) total += w.get<double>();
    EXPECT_EQ(h.weight(), total);
    for (size_t k = 0; k < c["q"].size(); ++k) {
      const double q = c["q"][k], exact = c["quantile_ms"][k];
      SCOPED_TRACE(q);
      ExpectWithinBound(h.Quantile(q), exact);
    }
  }
  // The cases reach both regimes: a median in bin 0, and p99 far above 1 ms.
  EXPECT_LT(golden["delay"][1]["quantile_ms"][4].get<double>(), 1.0);
  EXPECT_GT(golden["delay"][0]["quantile_ms"][8].get<double>(), 1e8);
}

// Every q = k / 200 against an exact weighted inverted-CDF over the same rows.
TEST(DelayHistogramTest, EveryQuantileWithinTheBoundOfTheExactOne) {
  const nlohmann::json golden = Golden();
  for (const auto& c : golden["delay"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<std::pair<double, double>> rows;  // (delay, weight)
    for (size_t i = 0; i < c["delay_ms"].size(); ++i) {
      rows.emplace_back(c["delay_ms"][i].get<double>(), c["weights"][i].get<double>());
    }
    std::sort(rows.begin(), rows.end());
    const DelayHistogram h = FromGolden(c);
    for (int k = 0; k <= 200; ++k) {
      const double q = k / 200.0, target = q * h.weight();
      double cumulative = 0, exact = rows.back().first;
      for (const auto& [x, w] : rows) {
        cumulative += w;  // integers: exact
        if (cumulative >= target) {
          exact = x;
          break;
        }
      }
      SCOPED_TRACE(q);
      ExpectWithinBound(h.Quantile(q), exact);
    }
  }
}

TEST(DelayHistogramTest, EmptyHasNoQuantile) {
  DelayHistogram h;
  EXPECT_EQ(h.weight(), 0);
  EXPECT_FALSE(h.Quantile(0.5).has_value());
  EXPECT_FALSE(h.Quantile(0).has_value());
  DelayHistogram other;
  h.Merge(other);
  EXPECT_FALSE(h.Quantile(0.99).has_value());
  // Weights that are not positive and finite are not added.
  for (double w : {0.0, -1.0, kNan, kInf}) h.Add(100, w);
  EXPECT_EQ(h.weight(), 0);
  EXPECT_FALSE(h.Quantile(0.5).has_value());
}

TEST(DelayHistogramTest, BinEdgesAndOutOfRangeDelays) {
  // Negative (clock skew), NaN and sub-millisecond delays read 0.
  DelayHistogram early;
  for (double d : {-5000.0, -0.5, 0.0, 0.999, kNan}) early.Add(d, 1);
  EXPECT_EQ(early.Quantile(0), 0.0);
  EXPECT_EQ(early.Quantile(1), 0.0);
  // 1 ms opens bin 1, 2 ms bin 17: their middles are 2^(0.5/16) and 2^(16.5/16).
  DelayHistogram h;
  h.Add(1.0, 1);
  EXPECT_DOUBLE_EQ(*h.Quantile(1), std::exp2(0.5 / 16));
  h.Add(2.0, 3);
  EXPECT_DOUBLE_EQ(*h.Quantile(0.25), std::exp2(0.5 / 16));
  EXPECT_DOUBLE_EQ(*h.Quantile(0.26), std::exp2(16.5 / 16));
  EXPECT_DOUBLE_EQ(*h.Quantile(1), std::exp2(16.5 / 16));
  // q is clamped to [0, 1].
  EXPECT_EQ(h.Quantile(-3), h.Quantile(0));
  EXPECT_EQ(h.Quantile(7), h.Quantile(1));
  // 2^40 ms and beyond (and +inf) share the last bin: its middle.
  DelayHistogram late;
  for (double d : {std::exp2(40), std::exp2(45), 1e300, kInf}) late.Add(d, 1);
  const double last = std::exp2((DelayHistogram::kBins - 1.5) / DelayHistogram::kPerOctave);
  EXPECT_DOUBLE_EQ(*late.Quantile(0), last);
  EXPECT_DOUBLE_EQ(*late.Quantile(1), last);
  EXPECT_EQ(Encode(late).size(), 4u + 12u);  // one bin
}

TEST(DelayHistogramTest, MergeEqualsAddingAll) {
  const nlohmann::json golden = Golden();
  for (const auto& c : golden["delay"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const DelayHistogram all = FromGolden(c);
    DelayHistogram merged = FromGolden(c, 0);
    merged.Merge(FromGolden(c, 1));
    EXPECT_EQ(Encode(merged), Encode(all));  // integer weights: exact
    EXPECT_EQ(merged.weight(), all.weight());
    for (double q : {0.0, 0.5, 0.95, 0.99, 1.0}) EXPECT_EQ(merged.Quantile(q), all.Quantile(q));
    // Into and with an empty histogram.
    DelayHistogram empty, into_empty;
    into_empty.Merge(all);
    EXPECT_EQ(Encode(into_empty), Encode(all));
    merged.Merge(empty);
    EXPECT_EQ(Encode(merged), Encode(all));
  }
}

TEST(DelayHistogramTest, AppendToReadFromRoundTrip) {
  const nlohmann::json golden = Golden();
  for (const auto& c : golden["delay"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const DelayHistogram h = FromGolden(c);
    const std::string bytes = Encode(h) + "tail";
    std::string_view view = bytes;
    DelayHistogram back;
    back.Add(5, 1);  // replaced, not added to
    ASSERT_TRUE(back.ReadFrom(&view));
    EXPECT_EQ(view, "tail");  // moved past what was read
    EXPECT_EQ(Encode(back), Encode(h));
    EXPECT_EQ(back.weight(), h.weight());
    for (double q : {0.0, 0.5, 0.95, 0.99, 1.0}) EXPECT_EQ(back.Quantile(q), h.Quantile(q));
  }
  DelayHistogram empty;
  const std::string bytes = Encode(empty);
  EXPECT_EQ(bytes.size(), 4u);
  std::string_view view = bytes;
  DelayHistogram back;
  back.Add(5, 1);
  ASSERT_TRUE(back.ReadFrom(&view));
  EXPECT_TRUE(view.empty());
  EXPECT_EQ(back.weight(), 0);
  EXPECT_FALSE(back.Quantile(0.5).has_value());
}

std::string DelayBytes(std::initializer_list<std::pair<uint32_t, double>> bins,
                       uint32_t count_override = UINT32_MAX) {
  base::ByteWriter w;
  w.U32(count_override != UINT32_MAX ? count_override : static_cast<uint32_t>(bins.size()));
  for (const auto& [b, v] : bins) {
    w.U32(b);
    w.F64(v);
  }
  return std::move(w).Finish();
}

bool Reads(std::string_view bytes, DelayHistogram* h = nullptr) {
  DelayHistogram scratch;
  return (h != nullptr ? h : &scratch)->ReadFrom(&bytes);
}

TEST(DelayHistogramTest, MalformedEncodingsAreRejected) {
  DelayHistogram h;
  for (double d : {-3.0, 0.5, 10.0, 1e4, 1e7, 1e13}) h.Add(d, 2);
  const std::string good = Encode(h);
  ASSERT_EQ(good.size(), 4u + 5 * 12u);  // -3 and 0.5 share bin 0
  ASSERT_TRUE(Reads(good));
  for (size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(Reads(good.substr(0, n))) << n;
  EXPECT_TRUE(Reads(DelayBytes({{0, 1}, {640, 2}})));
  EXPECT_FALSE(Reads(DelayBytes({{641, 1}})));         // bin out of range
  EXPECT_FALSE(Reads(DelayBytes({{UINT32_MAX, 1}})));  // far out of range
  EXPECT_FALSE(Reads(DelayBytes({{3, -1}})));
  EXPECT_FALSE(Reads(DelayBytes({{3, kNan}})));
  EXPECT_FALSE(Reads(DelayBytes({{3, kInf}})));
  EXPECT_FALSE(Reads(DelayBytes({{3, 1}}, 642)));             // more bins than there are
  EXPECT_FALSE(Reads(DelayBytes({{3, 1}}, UINT32_MAX - 1)));  // no huge allocation either
  EXPECT_FALSE(Reads(DelayBytes({{3, 1}}, 2)));               // fewer entries than announced
  // A bin listed twice adds (documented).
  DelayHistogram twice;
  ASSERT_TRUE(Reads(DelayBytes({{17, 1}, {17, 2}}), &twice));
  EXPECT_EQ(twice.weight(), 3);
  EXPECT_DOUBLE_EQ(*twice.Quantile(0.5), std::exp2(16.5 / 16));
}

// ========================================================= QualityProfile

// One call on a profile.
struct Event {
  enum Type { kPredict, kLabel, kQuery, kExpire } type;
  std::vector<double> scores;
  double label = 0, weight = 1, delay_ms = 0;
};

void Apply(QualityProfile& p, const Event& e) {
  switch (e.type) {
    case Event::kPredict:
      p.AddPrediction(e.scores, e.weight);
      break;
    case Event::kLabel:
      p.AddLabel(e.scores, e.label, e.weight, e.delay_ms);
      break;
    case Event::kQuery:
      p.AddQuery(e.label, e.weight);
      break;
    case Event::kExpire:
      p.AddExpired(e.weight);
      break;
  }
}

// Random rows of `kind` whose every value is a small dyadic rational, so
// every sum a profile keeps is exact in any order (and a merge of parts
// equals the whole bit for bit). Includes invalid rows (score out of
// range, label out of range) and bad weights.
std::vector<Event> RandomEvents(QualityKind kind, int classes, uint64_t seed, int rows) {
  std::mt19937_64 rng(seed);
  auto dyadic = [&](int denominator_log2, int max_numerator) {
    return static_cast<double>(rng() % (max_numerator + 1)) / (1 << denominator_log2);
  };
  const double weights[] = {0.5, 1, 2, 4};
  std::vector<Event> out;
  for (int i = 0; i < rows; ++i) {
    const double w = weights[rng() % 4];
    std::vector<double> scores;
    double label = 0;
    switch (kind) {
      case QualityKind::kBinary:
        scores = {i % 50 == 7 ? 1.5 : dyadic(12, 4096)};
        label = static_cast<double>(rng() % 2);
        break;
      case QualityKind::kMulticlass: {
        const double a = dyadic(6, 64), b = dyadic(6, 64 - static_cast<int>(a * 64));
        scores = {a, b, 1 - a - b};
        scores.resize(classes, 0.0);
        label = static_cast<double>(rng() % (classes + (i % 50 == 7 ? 5 : 0)));
        break;
      }
      case QualityKind::kRegression:
        scores = {dyadic(6, 6400) - 50};
        label = scores[0] + dyadic(6, 256) - 2;
        break;
      case QualityKind::kRanking:
        scores = {dyadic(6, 64)};
        label = dyadic(10, 1024);  // the query's NDCG
        break;
    }
    out.push_back({Event::kPredict, scores, 0, w, 0});
    const uint64_t fate = rng() % 10;
    if (fate < 6) {
      const double delay = fate == 0 ? -static_cast<double>(rng() % 1000)
                                     : std::ldexp(static_cast<double>(rng() % 4096), rng() % 30);
      out.push_back({Event::kLabel, scores, label, w, delay});
      if (kind == QualityKind::kRanking) out.push_back({Event::kQuery, {}, label, w, 0});
    } else if (fate == 6) {
      out.push_back({Event::kExpire, {}, 0, w, 0});
    }
    if (i % 97 == 3) out.push_back({Event::kLabel, scores, label, -1, 10});  // ignored
    if (i % 89 == 5) out.push_back({Event::kPredict, scores, 0, kNan, 0});   // ignored
  }
  return out;
}

struct KindCase {
  const char* name;
  QualityKind kind;
  int classes;
};
const KindCase kKinds[] = {{"binary", QualityKind::kBinary, 2},
                           {"multiclass", QualityKind::kMulticlass, 3},
                           {"regression", QualityKind::kRegression, 2},
                           {"ranking", QualityKind::kRanking, 2}};

QualityProfile Build(const KindCase& k, const std::vector<Event>& events, int part = -1) {
  QualityProfile p(k.kind, k.classes);
  for (size_t i = 0; i < events.size(); ++i) {
    if (part < 0 || static_cast<int>(i % 2) == part) Apply(p, events[i]);
  }
  return p;
}

// Bytes 104..111 of a multiclass profile hold its log-loss sum (64-byte
// header, u32 blob length, offset 36 of DWMC): a sum of logarithms, equal
// only to rounding when added in another order.
constexpr size_t kMulticlassLogLossOffset = 64 + 4 + 36;

void ExpectSameProfile(const QualityProfile& a, const QualityProfile& b) {
  EXPECT_EQ(a.kind(), b.kind());
  EXPECT_EQ(a.classes(), b.classes());
  EXPECT_EQ(a.predicted(), b.predicted());
  EXPECT_EQ(a.labelled(), b.labelled());
  EXPECT_EQ(a.expired(), b.expired());
  EXPECT_EQ(a.predicted_weight(), b.predicted_weight());
  EXPECT_EQ(a.labelled_weight(), b.labelled_weight());
  EXPECT_EQ(a.expired_weight(), b.expired_weight());
  EXPECT_EQ(Encode(a.delay()), Encode(b.delay()));
  const std::string x = a.Serialize(), y = b.Serialize();
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i]) continue;
    const bool log_loss = a.kind() == QualityKind::kMulticlass && i >= kMulticlassLogLossOffset &&
                          i < kMulticlassLogLossOffset + 8;
    EXPECT_TRUE(log_loss) << "byte " << i << " differs";
  }
  switch (a.kind()) {
    case QualityKind::kBinary: {
      EXPECT_EQ(a.binary().invalid(), b.binary().invalid());
      auto aa = a.binary().RocAuc(), ab = b.binary().RocAuc();
      ASSERT_EQ(aa.ok(), ab.ok());
      if (aa.ok()) {
        EXPECT_EQ(aa->auc, ab->auc);
      }
      break;
    }
    case QualityKind::kMulticlass: {
      EXPECT_EQ(a.multiclass().invalid(), b.multiclass().invalid());
      auto ma = a.multiclass().Compute(), mb = b.multiclass().Compute();
      ASSERT_EQ(ma.ok(), mb.ok());
      if (!ma.ok()) break;
      EXPECT_EQ(ma->accuracy, mb->accuracy);
      EXPECT_EQ(ma->macro_auc, mb->macro_auc);
      EXPECT_NEAR(ma->log_loss, mb->log_loss, kExact * ma->log_loss);
      break;
    }
    case QualityKind::kRegression: {
      EXPECT_EQ(a.regression().invalid(), b.regression().invalid());
      auto ea = a.regression().Compute(), eb = b.regression().Compute();
      ASSERT_EQ(ea.ok(), eb.ok());
      if (ea.ok()) {
        EXPECT_EQ(ea->rmse, eb->rmse);
      }
      break;
    }
    case QualityKind::kRanking:
      EXPECT_EQ(a.ndcg().mean(), b.ndcg().mean());
      EXPECT_EQ(a.ndcg().queries(), b.ndcg().queries());
      break;
  }
}

TEST(QualityProfileTest, MergeOfTwoHalvesEqualsOneProfileOfAllRows) {
  for (const KindCase& k : kKinds) {
    SCOPED_TRACE(k.name);
    const std::vector<Event> events = RandomEvents(k.kind, k.classes, 11, 1500);
    const QualityProfile all = Build(k, events);
    QualityProfile merged = Build(k, events, 0);
    ASSERT_TRUE(merged.Merge(Build(k, events, 1)).ok());
    ExpectSameProfile(merged, all);
    // The rows were not trivial.
    EXPECT_GT(all.labelled(), 500u);
    EXPECT_GT(all.expired(), 50u);
    EXPECT_GT(all.delay().weight(), 0);
    EXPECT_EQ(all.delay().weight(), all.labelled_weight());
    // Merging an empty profile changes nothing; merging into one copies.
    QualityProfile into_empty(k.kind, k.classes);
    ASSERT_TRUE(into_empty.Merge(all).ok());
    ExpectSameProfile(into_empty, all);
    ASSERT_TRUE(merged.Merge(QualityProfile(k.kind, k.classes)).ok());
    ExpectSameProfile(merged, all);
  }
}

TEST(QualityProfileTest, MergeRefusesOtherKindsAndClassCountsUnchanged) {
  const std::vector<Event> events = RandomEvents(QualityKind::kBinary, 2, 3, 200);
  QualityProfile binary = Build(kKinds[0], events);
  const std::string before = binary.Serialize();
  for (QualityKind other :
       {QualityKind::kMulticlass, QualityKind::kRegression, QualityKind::kRanking}) {
    const absl::Status s = binary.Merge(QualityProfile(other, 2));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("do not merge"));
  }
  EXPECT_EQ(binary.Serialize(), before);
  QualityProfile three(QualityKind::kMulticlass, 3);
  EXPECT_EQ(three.Merge(QualityProfile(QualityKind::kMulticlass, 4)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(QualityProfileTest, AccessorsSayWhatWasAdded) {
  QualityProfile p(QualityKind::kBinary, 7);
  EXPECT_EQ(p.classes(), 2);  // classes is for kMulticlass only
  EXPECT_EQ(QualityProfile(QualityKind::kMulticlass, 1).classes(), 2);
  EXPECT_EQ(QualityProfile(QualityKind::kMulticlass, 5).classes(), 5);
  const double s1 = 0.2505, s2 = 0.2509, out = 1.5;
  p.AddPrediction(One(s1), 2);
  p.AddPrediction(One(s2), 0.5);
  p.AddPrediction(One(out), 4);  // counted, in no bin
  p.AddPrediction({}, 1);        // no score: counted, in no bin
  p.AddPrediction(One(s1), -1);  // ignored
  p.AddLabel(One(s1), 1, 2, 3600e3);
  p.AddExpired(0.5);
  EXPECT_EQ(p.predicted(), 4u);
  EXPECT_EQ(p.predicted_weight(), 7.5);
  EXPECT_EQ(p.labelled(), 1u);
  EXPECT_EQ(p.labelled_weight(), 2);
  EXPECT_EQ(p.expired(), 1u);
  EXPECT_EQ(p.expired_weight(), 0.5);
  const int b = p.binary().BinOf(s1);
  ASSERT_EQ(b, 250);
  ASSERT_EQ(p.binary().BinOf(s2), b);
  EXPECT_EQ(p.predicted_bin_weight(b), 2.5);
  EXPECT_DOUBLE_EQ(p.predicted_bin_score_sum(b), 2 * s1 + 0.5 * s2);
  double in_bins = 0;
  for (int i = 0; i < kQualityFineBins; ++i) in_bins += p.predicted_bin_weight(i);
  EXPECT_EQ(in_bins, 2.5);
  EXPECT_EQ(p.binary().positives(b), 2);
  EXPECT_NEAR(*p.delay().Quantile(0.5), 3600e3, DelayHistogram::kRelativeErrorBound * 3600e3);
}

int NonEmptyLabelledBins(const ScoreLabelSummary& s) {
  int n = 0;
  for (int b = 0; b < s.fine_bins(); ++b) n += s.positives(b) + s.negatives(b) > 0;
  return n;
}

// Serialized size by kind, from the v2 layout (docs/formats/quality_profile.md):
// 64-byte header, the body, the delay histogram (u32 m + 12 m). A DWSL v2
// blob is 24 + 36 n for n non-empty bins, with its length 28 + 36 n.
size_t LayoutSize(const QualityProfile& p) {
  const size_t delay = Encode(p.delay()).size();
  switch (p.kind()) {
    case QualityKind::kBinary: {
      size_t predicted_bins = 0;
      for (int b = 0; b < kQualityFineBins; ++b) predicted_bins += p.predicted_bin_weight(b) != 0;
      // 64 + (28 + 36n) + (4 + 20p) + delay.
      return 96 + 36 * NonEmptyLabelledBins(p.binary()) + 20 * predicted_bins + delay;
    }
    case QualityKind::kMulticlass: {
      size_t size = 64 + 4 + 44 + delay;
      for (int c = 0; c < p.classes(); ++c) {
        size += 28 + 36 * NonEmptyLabelledBins(p.multiclass().one_vs_rest(c));
      }
      return size;
    }
    case QualityKind::kRegression:
      return 64 + 4 + 56 + delay;
    case QualityKind::kRanking:
      return 64 + 24 + delay;
  }
  return 0;
}

TEST(QualityProfileTest, SerializeDeserializeRoundTrip) {
  for (const KindCase& k : kKinds) {
    SCOPED_TRACE(k.name);
    for (int rows : {0, 1, 600}) {
      SCOPED_TRACE(rows);
      const QualityProfile p = Build(k, RandomEvents(k.kind, k.classes, 5, rows));
      const std::string bytes = p.Serialize();
      EXPECT_EQ(bytes.size(), LayoutSize(p));
      absl::StatusOr<QualityProfile> back = QualityProfile::Deserialize(bytes);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->Serialize(), bytes);
      ExpectSameProfile(*back, p);
    }
  }
}

absl::StatusCode DeserializeCode(std::string_view bytes) {
  return QualityProfile::Deserialize(bytes).status().code();
}

// Every proper prefix of an encoding, and the encoding with a byte more.
TEST(QualityProfileTest, EveryTruncationIsDataLoss) {
  for (const KindCase& k : kKinds) {
    SCOPED_TRACE(k.name);
    const QualityProfile p = Build(k, RandomEvents(k.kind, k.classes, 8, 120));
    const std::string bytes = p.Serialize();
    for (size_t n = 0; n < bytes.size(); ++n) {
      ASSERT_EQ(DeserializeCode(std::string_view(bytes).substr(0, n)), absl::StatusCode::kDataLoss)
          << "truncated to " << n << " of " << bytes.size();
    }
    const absl::Status trailing = QualityProfile::Deserialize(bytes + '\0').status();
    EXPECT_EQ(trailing.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(trailing.message(), HasSubstr("trailing bytes"));
  }
}

std::string WithU32(std::string bytes, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return bytes;
}
std::string WithF64(std::string bytes, size_t offset, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  for (int i = 0; i < 8; ++i) bytes[offset + i] = static_cast<char>((bits >> (8 * i)) & 0xFF);
  return bytes;
}

uint32_t U32At(std::string_view bytes, size_t offset) {
  base::ByteReader r(bytes.substr(offset));
  uint32_t v = 0;
  EXPECT_TRUE(r.U32(&v));
  return v;
}

void ExpectDataLoss(std::string_view bytes, std::string_view what) {
  const absl::Status s = QualityProfile::Deserialize(bytes).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << what;
  EXPECT_THAT(s.message(), HasSubstr(what));
}

TEST(QualityProfileTest, CorruptHeadersAndBodiesAreDataLossNamingWhatIsWrong) {
  const QualityProfile binary = Build(kKinds[0], RandomEvents(QualityKind::kBinary, 2, 9, 50));
  const std::string b = binary.Serialize();
  ASSERT_TRUE(QualityProfile::Deserialize(b).ok());
  std::string bad_magic = b;
  bad_magic[0] = 'X';
  ExpectDataLoss(bad_magic, "bad magic");
  ExpectDataLoss(WithU32(b, 4, 3), "unsupported version 3");
  ExpectDataLoss(WithU32(b, 4, 0), "unsupported version 0");
  ExpectDataLoss(WithU32(b, 8, 0), "unknown kind 0");
  ExpectDataLoss(WithU32(b, 8, 5), "unknown kind 5");
  ExpectDataLoss(WithU32(b, 12, 1), "classes out of range");
  ExpectDataLoss(WithU32(b, 12, 4097), "classes out of range");
  ExpectDataLoss(WithF64(b, 40, -1), "negative or non-finite weight");
  ExpectDataLoss(WithF64(b, 48, kNan), "negative or non-finite weight");
  ExpectDataLoss(WithF64(b, 56, kInf), "negative or non-finite weight");
  // The score summary's length pointing past the end; its own magic broken
  // (its error passes through).
  ExpectDataLoss(WithU32(b, 64, 1u << 30), "truncated score summary");
  std::string bad_inner = b;
  bad_inner[68] = 'X';
  EXPECT_EQ(DeserializeCode(bad_inner), absl::StatusCode::kDataLoss);
  // The kept predictions' sparse bins: u32 p, then p x (u32 bin, f64
  // weight, f64 score sum), strictly ascending.
  const size_t pred = 68 + U32At(b, 64);
  const uint32_t pred_bins = U32At(b, pred);
  ASSERT_GE(pred_bins, 3u);
  const size_t first = pred + 4, second = first + 20;
  ExpectDataLoss(WithU32(b, pred, kQualityFineBins + 1), "bad prediction bin count");
  ExpectDataLoss(WithU32(b, pred, pred_bins + 1), "prediction bin");  // reads into the delays
  ExpectDataLoss(WithU32(b, first, kQualityFineBins), "bad prediction bin 1000");
  std::string repeated = b;
  std::memcpy(repeated.data() + second, b.data() + first, 4);  // the second bin = the first
  ExpectDataLoss(repeated, "bad prediction bin");
  ExpectDataLoss(WithF64(b, first + 4, -0.5), "bad prediction bin");
  ExpectDataLoss(WithF64(b, second + 12, kNan), "bad prediction bin");
  ExpectDataLoss(WithF64(b, second + 12, kInf), "bad prediction bin");
  // A score summary of 10 fine bins in place of 1000.
  {
    base::ByteWriter w;
    w.Raw(std::string_view(b).substr(0, 64));
    w.Str(ScoreLabelSummary(10).Serialize());
    w.U32(0);
    w.U32(0);
    ExpectDataLoss(std::move(w).Finish(), "fine_bins 10");
  }
  // The delay histogram: a bin index out of range, too many bins, a bad weight.
  const size_t delay = first + 20 * static_cast<size_t>(pred_bins);
  ASSERT_GE(b.size(), delay + 16);
  ASSERT_EQ(b.size(), delay + Encode(binary.delay()).size());
  ExpectDataLoss(WithU32(b, delay + 4, 641), "bad delay histogram");
  ExpectDataLoss(WithU32(b, delay, 642), "bad delay histogram");
  ExpectDataLoss(WithF64(b, delay + 8, -1), "bad delay histogram");

  // Multiclass: the summary's class count must be the header's.
  const QualityProfile mc = Build(kKinds[1], RandomEvents(QualityKind::kMulticlass, 3, 9, 50));
  const std::string m = mc.Serialize();
  {
    base::ByteWriter w;
    w.Raw(std::string_view(m).substr(0, 64));
    w.Str(MulticlassSummary(4).Serialize());
    w.U32(0);
    ExpectDataLoss(std::move(w).Finish(), "class count mismatch");
  }
  ExpectDataLoss(WithU32(m, 64, static_cast<uint32_t>(m.size())), "truncated multiclass summary");

  // Regression: the nested blob's own error.
  const QualityProfile reg = Build(kKinds[2], RandomEvents(QualityKind::kRegression, 2, 9, 50));
  std::string r = reg.Serialize();
  r[68] ^= 0x20;
  EXPECT_EQ(DeserializeCode(r), absl::StatusCode::kDataLoss);

  // Ranking: Σ weight·NDCG and Σ weight must be finite and >= 0.
  const QualityProfile rank = Build(kKinds[3], RandomEvents(QualityKind::kRanking, 2, 9, 50));
  const std::string q = rank.Serialize();
  ExpectDataLoss(WithF64(q, 64, -1), "bad ndcg");
  ExpectDataLoss(WithF64(q, 72, kNan), "bad ndcg");
}

// A binary profile in version 1 (dense DWSL v1 inside, then 1000 f64
// weights and 1000 f64 score sums), written here from the rows themselves
// with the sums in the order the profile adds them.
std::string BinaryV1(const QualityProfile& p, const std::vector<Event>& events) {
  const ScoreLabelSummary& bins = p.binary();
  std::vector<double> pos(kQualityFineBins), neg(kQualityFineBins), ssum(kQualityFineBins),
      sq(kQualityFineBins), pred_w(kQualityFineBins), pred_s(kQualityFineBins);
  for (const Event& e : events) {
    if (!(e.weight >= 0 && std::isfinite(e.weight)) || e.scores.empty()) continue;
    const double s = e.scores[0];
    if (!(s >= 0 && s <= 1)) continue;
    const int b = bins.BinOf(s);
    if (e.type == Event::kPredict) {
      pred_w[b] += e.weight;
      pred_s[b] += e.weight * s;
    } else if (e.type == Event::kLabel) {
      (e.label == 1 ? pos : neg)[b] += e.weight;
      ssum[b] += e.weight * s;
      sq[b] += e.weight * (s - e.label) * (s - e.label);
    }
  }
  base::ByteWriter dwsl;
  dwsl.Header(std::string_view("DWSL"), uint32_t{1});
  dwsl.U32(kQualityFineBins);
  dwsl.U64(bins.invalid());
  for (const std::vector<double>* v : {&pos, &neg, &ssum, &sq}) {
    for (double d : *v) dwsl.F64(d);
  }
  base::ByteWriter w;
  w.Header(std::string_view("DWQP"), uint32_t{1});
  w.U32(static_cast<uint32_t>(QualityKind::kBinary));
  w.U32(2);
  w.U64(p.predicted());
  w.U64(p.labelled());
  w.U64(p.expired());
  w.F64(p.predicted_weight());
  w.F64(p.labelled_weight());
  w.F64(p.expired_weight());
  w.Str(std::move(dwsl).Finish());
  for (const std::vector<double>* v : {&pred_w, &pred_s}) {
    for (double d : *v) w.F64(d);
  }
  std::string out = std::move(w).Finish();
  p.delay().AppendTo(&out);
  return out;
}

TEST(QualityProfileTest, Version1IsStillRead) {
  const std::vector<Event> events = RandomEvents(QualityKind::kBinary, 2, 12, 400);
  const QualityProfile p = Build(kKinds[0], events);
  const std::string v1 = BinaryV1(p, events);
  ASSERT_EQ(v1.size(), 48092 + Encode(p.delay()).size() - 4);  // the v1 size (docs)
  absl::StatusOr<QualityProfile> back = QualityProfile::Deserialize(v1);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Serialize(), p.Serialize());  // read as v1, written as v2
  ExpectSameProfile(*back, p);
  // Its truncations (a stride, and every byte of the header and the tail)
  // and a bad dense prediction bin.
  for (size_t n = 0; n < v1.size(); ++n) {
    if (n > 200 && n + 200 < v1.size() && n % 7 != 0) continue;
    ASSERT_EQ(DeserializeCode(std::string_view(v1).substr(0, n)), absl::StatusCode::kDataLoss) << n;
  }
  const size_t pred_w = 64 + 4 + 20 + 32 * kQualityFineBins;
  ExpectDataLoss(WithF64(v1, pred_w + 8 * 17, -0.5), "truncated or bad prediction bins");
  ExpectDataLoss(WithF64(v1, pred_w + 8 * 1999, kNan), "truncated or bad prediction bins");
}

// Single-byte corruptions anywhere in the small encodings, and in the
// headers and tails of the large ones: an error or a profile that itself
// round-trips, never a crash.
TEST(QualityProfileTest, ByteFlipsNeverCrash) {
  for (const KindCase& k : kKinds) {
    SCOPED_TRACE(k.name);
    const QualityProfile p = Build(k, RandomEvents(k.kind, k.classes, 10, 60));
    const std::string bytes = p.Serialize();
    int rejected = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (bytes.size() > 1000 && i >= 160 && i + 200 < bytes.size() && i % 251 != 0) continue;
      for (unsigned char mask : {0x01, 0x80, 0xFF}) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ mask);
        absl::StatusOr<QualityProfile> back = QualityProfile::Deserialize(flipped);
        if (!back.ok()) {
          EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss);
          ++rejected;
          continue;
        }
        EXPECT_TRUE(QualityProfile::Deserialize(back->Serialize()).ok()) << "byte " << i;
      }
    }
    EXPECT_GT(rejected, 0);
  }
}

// ==================================================== EstimatePerformance

// The true calibration of the simulated model: its raw score s is
// deliberately miscalibrated (0.4 means 50/50, 0.9 means 82%).
double TrueRate(double s) { return 1 / (1 + std::exp(-3 * (s - 0.4))); }

struct CbpeRun {
  PerformanceEstimate estimate;                    // the baseline's isotonic map
  PerformanceEstimate identity;                    // no calibration data
  double realised_auc = 0, realised_accuracy = 0;  // of the unlabelled rows' drawn labels
  double expected_auc = 0, expected_accuracy = 0;  // under TrueRate, given their scores
  double baseline_auc = 0;
  size_t unlabelled = 0;
};

// Baseline: 20,000 labelled predictions, s ~ U(0, 1). Current: 30,000
// predictions with scores from `draw`, a third of them labelled (at
// random, independently of the score), every label ~ Bernoulli(TrueRate(s)).
// The estimate is for the ~20,000 unlabelled ones at threshold 0.5.
template <typename Draw>
CbpeRun RunCbpe(uint64_t seed, Draw draw) {
  std::mt19937_64 rng(seed);
  CbpeRun run;
  QualityProfile baseline(QualityKind::kBinary);
  for (int i = 0; i < 20000; ++i) {
    const double s = Uniform(rng);
    const double y = Uniform(rng) < TrueRate(s) ? 1 : 0;
    baseline.AddPrediction(One(s), 1);
    baseline.AddLabel(One(s), y, 1, 60e3);
  }
  QualityProfile current(QualityKind::kBinary);
  std::vector<double> scores, labels;
  for (int i = 0; i < 30000; ++i) {
    const double s = draw(rng);
    const double y = Uniform(rng) < TrueRate(s) ? 1 : 0;
    current.AddPrediction(One(s), 1);
    if (Uniform(rng) < 1.0 / 3) {
      current.AddLabel(One(s), y, 1, 60e3);
    } else {
      scores.push_back(s);
      labels.push_back(y);
    }
  }
  run.unlabelled = scores.size();
  run.estimate = EstimatePerformance(current, &baseline.binary(), 0.5);
  run.identity = EstimatePerformance(current, nullptr, 0.5);
  run.baseline_auc = baseline.binary().RocAuc()->auc;
  run.realised_auc = *RocAuc(scores, labels, {});
  double correct = 0;
  for (size_t i = 0; i < scores.size(); ++i) correct += (scores[i] >= 0.5) == (labels[i] == 1);
  run.realised_accuracy = correct / scores.size();
  // E[wins] / E[P N] over distinct rows (scores are continuous: no ties).
  std::vector<std::pair<double, double>> sp;
  for (double s : scores) sp.emplace_back(s, TrueRate(s));
  std::sort(sp.begin(), sp.end());
  double wins = 0, neg_below = 0, pos = 0, neg = 0, self = 0, acc = 0;
  for (const auto& [s, p] : sp) {
    wins += p * neg_below;
    neg_below += 1 - p;
    pos += p;
    neg += 1 - p;
    self += p * (1 - p);
    acc += s >= 0.5 ? p : 1 - p;
  }
  run.expected_auc = wins / (pos * neg - self);
  run.expected_accuracy = acc / sp.size();
  return run;
}

// Tolerances, from the sampling error at these sizes. The estimate differs
// from the realised value by (a) the labels' own noise about their
// expectation given the scores, and (b) the error of the isotonic map
// fitted on 20,000 baseline labels; from the expected value (under the true
// map) by (b) only.
// - Covariate shift, scores spread over [0, 1]: (a) the realised AUC of
//   ~20,000 labels (~9,000 positives) has sd ≈ 0.004 (Hanley & McNeil at
//   AUC 0.69), the realised accuracy sqrt(0.7 · 0.3 / 20,000) ≈ 0.0033;
//   (b) adds about as much again (isotonic steps over-spread the map a
//   little: the AUC comes out ~0.002 high on average).
// - Scores concentrated on [0.34, 0.46]: the map is read in one narrow
//   window holding ~2,400 baseline labels, so (b) does not average out:
//   the accuracy error is about sqrt(0.25 / 2,400) ≈ 0.010.
// DISABLED_ToleranceSweep measures both over seeds 1..200 (rms / largest):
//                     shift: auc  accuracy   concentrated: auc  accuracy
//   vs realised      0.0072/0.022 0.0049/0.017    0.0077/0.022 0.0107/0.037
//   vs expected      0.0056/0.016 0.0037/0.010    0.0064/0.022 0.0105/0.036
// The tolerances are 3.5-4 rms: a fresh seed fails about once in 2,000.
struct CbpeTolerance {
  double auc, accuracy;
};
constexpr CbpeTolerance kShiftTolerance = {0.025, 0.02};
constexpr CbpeTolerance kConcentratedTolerance = {0.03, 0.04};

void ExpectWithin(const CbpeRun& run, const CbpeTolerance& tol) {
  const PerformanceEstimate& e = run.estimate;
  EXPECT_NEAR(e.auc, run.realised_auc, tol.auc);
  EXPECT_NEAR(e.accuracy, run.realised_accuracy, tol.accuracy);
  EXPECT_NEAR(e.auc, run.expected_auc, tol.auc);
  EXPECT_NEAR(e.accuracy, run.expected_accuracy, tol.accuracy);
}

double ShiftedScore(std::mt19937_64& g) { return std::sqrt(Uniform(g)); }  // density 2s
double ConcentratedScore(std::mt19937_64& g) { return 0.4 + 0.06 * (Uniform(g) - Uniform(g)); }

TEST(EstimatePerformanceTest, TracksTheRealisedAucAndAccuracyUnderCovariateShift) {
  // Current scores have density 2s: shifted up from the baseline's U(0, 1).
  const CbpeRun run = RunCbpe(20261215, ShiftedScore);
  const PerformanceEstimate& e = run.estimate;
  EXPECT_TRUE(e.calibrated);
  EXPECT_EQ(e.unlabelled_weight, static_cast<double>(run.unlabelled));
  EXPECT_NEAR(run.unlabelled, 20000, 500);
  ExpectWithin(run, kShiftTolerance);
  // The shift is visible (the baseline's AUC is higher) ...
  EXPECT_NEAR(run.expected_auc, 0.69, 0.01);
  EXPECT_NEAR(run.baseline_auc, 0.725, 0.01);
  // ... and the calibration is what makes the estimate right: taking the
  // raw scores as probabilities is off by far more than the tolerance.
  EXPECT_FALSE(run.identity.calibrated);
  EXPECT_GT(run.identity.auc - run.realised_auc, 0.08);
  EXPECT_GT(run.identity.accuracy - run.realised_accuracy, 0.04);
}

// Re-derives the table above: --gtest_also_run_disabled_tests
// --gtest_filter='*ToleranceSweep*' (about 6 s).
TEST(EstimatePerformanceTest, DISABLED_ToleranceSweep) {
  constexpr int kSeeds = 200;
  for (auto* draw : {&ShiftedScore, &ConcentratedScore}) {
    double largest[4] = {}, squares[4] = {};
    for (int seed = 1; seed <= kSeeds; ++seed) {
      const CbpeRun run = RunCbpe(seed, draw);
      const double d[4] = {
          run.estimate.auc - run.realised_auc, run.estimate.accuracy - run.realised_accuracy,
          run.estimate.auc - run.expected_auc, run.estimate.accuracy - run.expected_accuracy};
      for (int k = 0; k < 4; ++k) {
        largest[k] = std::max(largest[k], std::abs(d[k]));
        squares[k] += d[k] * d[k];
      }
    }
    std::printf(
        "%s: vs realised auc %.4f/%.4f accuracy %.4f/%.4f; vs expected auc %.4f/%.4f "
        "accuracy %.4f/%.4f\n",
        draw == &ShiftedScore ? "shift" : "concentrated", std::sqrt(squares[0] / kSeeds),
        largest[0], std::sqrt(squares[1] / kSeeds), largest[1], std::sqrt(squares[2] / kSeeds),
        largest[2], std::sqrt(squares[3] / kSeeds), largest[3]);
  }
}

TEST(EstimatePerformanceTest, ScoresConcentratedWhereTheMapIsAHalfEstimateALowerAuc) {
  // Scores within ±0.06 of 0.4, where TrueRate is 0.5 ± 0.045: the model
  // can barely rank these, and the estimate must say so.
  const CbpeRun run = RunCbpe(20261216, ConcentratedScore);
  const PerformanceEstimate& e = run.estimate;
  EXPECT_TRUE(e.calibrated);
  EXPECT_LT(e.auc, run.baseline_auc - 0.15);
  EXPECT_LT(e.auc, 0.56);
  ExpectWithin(run, kConcentratedTolerance);
  EXPECT_NEAR(run.expected_accuracy, 0.5, 0.01);
  // The identity map says 60% (scores below 0.5 taken as P(1) = s < 0.5).
  EXPECT_GT(run.identity.accuracy - run.realised_accuracy, 0.07);
}

// The calibration map against sklearn.isotonic.isotonic_regression over the
// baseline's fine bins, read by np.interp between the blocks' mean scores:
// one unlabelled prediction at score s, threshold 0 (every bin predicted
// positive), has an estimated accuracy of exactly map(s).
TEST(EstimatePerformanceTest, CalibrationMapIsSklearnsIsotonicFitReadBetweenBlockMeans) {
  const nlohmann::json golden = Golden();
  const nlohmann::json& c = golden["calibration"];
  QualityProfile baseline(QualityKind::kBinary);
  for (size_t i = 0; i < c["scores"].size(); ++i) {
    const double s = c["scores"][i];
    baseline.AddLabel(One(s), c["labels"][i].get<double>(), c["weights"][i].get<double>(), 1);
  }
  ASSERT_EQ(baseline.binary().invalid(), 0u);
  EXPECT_GT(c["blocks"].get<int>(), 5);
  for (size_t k = 0; k < c["probe_score"].size(); ++k) {
    const double s = c["probe_score"][k], rate = c["probe_rate"][k];
    SCOPED_TRACE(s);
    QualityProfile current(QualityKind::kBinary);
    current.AddPrediction(One(s), 1);
    const PerformanceEstimate e = EstimatePerformance(current, &baseline.binary(), 0.0);
    EXPECT_TRUE(e.calibrated);
    EXPECT_EQ(e.unlabelled_weight, 1);
    EXPECT_NEAR(e.accuracy, rate, kExact);
    EXPECT_NEAR(e.auc, 0.5, kExact);  // one bin: every pair tied
  }
  // And the AUC and accuracy of 400 unlabelled scores under that map (a
  // double loop over fine bins in numpy).
  QualityProfile current(QualityKind::kBinary);
  for (const auto& s : c["current_scores"]) current.AddPrediction(One(s.get<double>()), 1);
  const PerformanceEstimate e = EstimatePerformance(current, &baseline.binary(), 0.5);
  EXPECT_NEAR(e.auc, c["current_auc"].get<double>(), kExact);
  EXPECT_NEAR(e.accuracy, c["current_accuracy_at_0_5"].get<double>(), kExact);
  EXPECT_EQ(e.unlabelled_weight, 400);
}

// Hand-computed: baseline rates 2/4 at 0.1, 1/4 at 0.3, 3/4 at 0.7. The
// first two violate monotonicity and pool into one block at mean score 0.2
// with rate 3/8, so the knots are (0.2, 3/8) and (0.7, 3/4). Unlabelled
// scores 0.05, 0.45, 0.9 map to 3/8 (flat below), 3/8 + (0.25/0.5)·3/8 =
// 9/16, 3/4. Expected positives and negatives per bin (.375, .625),
// (.5625, .4375), (.75, .25): AUC = [.375·.3125 + .5625·(.625 + .21875) +
// .75·(1.0625 + .125)] / (1.6875 · 1.3125) = 253/378; accuracy at 0.5
// = (.625 + .4375 + .75) / 3 = 29/48.
TEST(EstimatePerformanceTest, HandComputedPooledCalibration) {
  ScoreLabelSummary baseline(kQualityFineBins);
  for (double y : {1, 1, 0, 0}) baseline.Add(0.1, y);
  for (double y : {1, 0, 0, 0}) baseline.Add(0.3, y);
  for (double y : {1, 1, 1, 0}) baseline.Add(0.7, y);
  QualityProfile current(QualityKind::kBinary);
  for (double s : {0.05, 0.45, 0.9}) current.AddPrediction(One(s), 1);
  const PerformanceEstimate e = EstimatePerformance(current, &baseline, 0.5);
  EXPECT_TRUE(e.calibrated);
  EXPECT_NEAR(e.auc, 253.0 / 378, 1e-14);
  EXPECT_NEAR(e.accuracy, 29.0 / 48, 1e-14);
  EXPECT_EQ(e.unlabelled_weight, 3);
}

// With the identity map, against a pairwise computation over the unlabelled
// rows themselves: P(1) = score, the scores of one fine bin tied, a bin
// judged by its mean score. Weighted, some bins partly labelled (the
// estimate must subtract exactly those), a bin straddling the threshold.
TEST(EstimatePerformanceTest, IdentityMapMatchesAPairwiseReference) {
  std::mt19937_64 rng(77);
  QualityProfile current(QualityKind::kBinary);
  struct Row {
    double s, w;
  };
  std::vector<Row> unlabelled;
  for (int i = 0; i < 400; ++i) {
    double s = Uniform(rng);
    if (i % 5 == 0) s = std::floor(s * 40) / 40 + 0.0003;  // shared bins
    if (i < 6) s = i % 2 ? 0.4561 : 0.4568;                // bin (0.456, 0.457]
    const double w = 0.25 + 3 * Uniform(rng);
    current.AddPrediction(One(s), w);
    if (i % 3 == 0) {
      current.AddLabel(One(s), i % 2, w, 1);
    } else {
      unlabelled.push_back({s, w});
    }
  }
  const ScoreLabelSummary& bins = current.binary();
  for (double threshold : {0.5, 0.4565, 0.0, 1.01}) {
    SCOPED_TRACE(threshold);
    std::vector<double> w_bin(kQualityFineBins, 0), s_bin(kQualityFineBins, 0);
    for (const Row& r : unlabelled) {
      w_bin[bins.BinOf(r.s)] += r.w;
      s_bin[bins.BinOf(r.s)] += r.w * r.s;
    }
    double wins = 0, pos = 0, neg = 0, correct = 0, total = 0;
    for (const Row& a : unlabelled) {
      const int ba = bins.BinOf(a.s);
      for (const Row& b : unlabelled) {
        const int bb = bins.BinOf(b.s);
        wins += a.w * a.s * b.w * (1 - b.s) * (ba > bb ? 1.0 : ba == bb ? 0.5 : 0.0);
      }
      pos += a.w * a.s;
      neg += a.w * (1 - a.s);
      correct += s_bin[ba] / w_bin[ba] >= threshold ? a.w * a.s : a.w * (1 - a.s);
      total += a.w;
    }
    const PerformanceEstimate e = EstimatePerformance(current, nullptr, threshold);
    EXPECT_FALSE(e.calibrated);
    EXPECT_NEAR(e.unlabelled_weight, total, kExact * total);
    EXPECT_NEAR(e.auc, wins / (pos * neg), kExact);
    EXPECT_NEAR(e.accuracy, correct / total, kExact);
  }
  // Bin (0.456, 0.457] straddles 0.4565 with unlabelled rows on both sides.
  EXPECT_GT(current.predicted_bin_weight(456) - bins.positives(456) - bins.negatives(456), 1);
}

TEST(EstimatePerformanceTest, HandComputedIdentity) {
  QualityProfile current(QualityKind::kBinary);
  for (double s : {0.2, 0.8}) current.AddPrediction(One(s), 1);
  // Positives .2 and .8, negatives .8 and .2: wins .2·.4 + .8·(.8 + .1) = .8.
  const PerformanceEstimate e = EstimatePerformance(current, nullptr, 0.5);
  EXPECT_FALSE(e.calibrated);
  EXPECT_NEAR(e.auc, 0.8, 1e-15);
  EXPECT_NEAR(e.accuracy, 0.8, 1e-15);
  EXPECT_EQ(e.unlabelled_weight, 2);
  // A score exactly at the threshold is predicted positive: P(1) = 0.3 is
  // the accuracy, not 0.7.
  QualityProfile at(QualityKind::kBinary);
  const double s3 = 0.3, s9 = 0.9;
  at.AddPrediction(One(s3), 1);
  EXPECT_NEAR(EstimatePerformance(at, nullptr, 0.3).accuracy, 0.3, 1e-15);
  at.AddPrediction(One(s9), 1);
  EXPECT_NEAR(EstimatePerformance(at, nullptr, 0.3).accuracy, (0.3 + 0.9) / 2, 1e-15);
}

TEST(EstimatePerformanceTest, EdgeCases) {
  const double s1 = 0.3, s2 = 0.8;
  QualityProfile current(QualityKind::kBinary);
  current.AddPrediction(One(s1), 1);
  current.AddPrediction(One(s2), 1);
  // No calibration data, or calibration data without a valid label: identity.
  ScoreLabelSummary empty(kQualityFineBins), only_invalid(kQualityFineBins);
  only_invalid.Add(1.5, 1);
  only_invalid.Add(0.5, 2);
  for (const ScoreLabelSummary* cal :
       std::vector<const ScoreLabelSummary*>{nullptr, &empty, &only_invalid}) {
    const PerformanceEstimate e = EstimatePerformance(current, cal, 0.5);
    EXPECT_FALSE(e.calibrated);
    EXPECT_NEAR(e.auc, (0.3 * 0.5 * 0.7 + 0.8 * (0.7 + 0.5 * 0.2)) / (1.1 * 0.9), 1e-15);
  }
  // A baseline of positives only: every mapped rate 1, no negatives, no AUC;
  // the accuracy is the weight predicted positive.
  ScoreLabelSummary positives(kQualityFineBins);
  positives.Add(0.2, 1);
  positives.Add(0.9, 1);
  PerformanceEstimate e = EstimatePerformance(current, &positives, 0.5);
  EXPECT_TRUE(e.calibrated);
  EXPECT_TRUE(std::isnan(e.auc));
  EXPECT_DOUBLE_EQ(e.accuracy, 0.5);
  // A flat map (one block) carries no ranking: AUC exactly one half.
  ScoreLabelSummary flat(kQualityFineBins);
  for (double y : {1, 0, 0, 0}) flat.Add(0.5, y);
  e = EstimatePerformance(current, &flat, 0.5);
  EXPECT_NEAR(e.auc, 0.5, 1e-15);
  EXPECT_NEAR(e.accuracy, (0.75 + 0.25) / 2, 1e-15);

  // Nothing unlabelled: every prediction's label is in (added in another
  // order, with weights whose sums round), or there are no predictions.
  QualityProfile all_in(QualityKind::kBinary);
  std::mt19937_64 rng(5);
  std::vector<std::pair<double, double>> rows;
  for (int i = 0; i < 300; ++i) rows.emplace_back(Uniform(rng) * 0.01 + 0.5, 0.1 + Uniform(rng));
  for (const auto& [s, w] : rows) all_in.AddPrediction(One(s), w);
  for (auto it = rows.rbegin(); it != rows.rend(); ++it)
    all_in.AddLabel(One(it->first), 1, it->second, 5);
  const QualityProfile no_predictions(QualityKind::kBinary);
  for (const QualityProfile* p : std::vector<const QualityProfile*>{&all_in, &no_predictions}) {
    e = EstimatePerformance(*p, &flat, 0.5);
    EXPECT_EQ(e.unlabelled_weight, 0);
    EXPECT_TRUE(std::isnan(e.auc));
    EXPECT_TRUE(std::isnan(e.accuracy));
  }
  // Labels without their predictions leave nothing unlabelled either.
  QualityProfile orphans(QualityKind::kBinary);
  orphans.AddLabel(One(s1), 1, 1, 5);
  EXPECT_EQ(EstimatePerformance(orphans, nullptr, 0.5).unlabelled_weight, 0);
  // Other kinds have no estimate.
  for (QualityKind kind :
       {QualityKind::kMulticlass, QualityKind::kRegression, QualityKind::kRanking}) {
    QualityProfile p(kind, 3);
    p.AddPrediction(One(s1), 1);
    e = EstimatePerformance(p, &flat, 0.5);
    EXPECT_TRUE(std::isnan(e.auc));
    EXPECT_TRUE(std::isnan(e.accuracy));
    EXPECT_EQ(e.unlabelled_weight, 0);
  }
}

// ========================================================= BinnedAccuracy

struct Labelled {
  std::vector<double> s, y, w;
};

Labelled RandomLabelled(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  Labelled r;
  for (int i = 0; i < n; ++i) {
    const double s = Uniform(rng);
    r.s.push_back(s);
    r.y.push_back(Uniform(rng) < TrueRate(s) ? 1 : 0);
    r.w.push_back(0.5 + 2 * Uniform(rng));
  }
  return r;
}

double ExactAccuracy(const Labelled& r, double threshold) {
  double correct = 0, total = 0;
  for (size_t i = 0; i < r.s.size(); ++i) {
    correct += (r.s[i] >= threshold) == (r.y[i] == 1) ? r.w[i] : 0;
    total += r.w[i];
  }
  return correct / total;
}

ScoreLabelSummary Summarize(const Labelled& r) {
  ScoreLabelSummary s(kQualityFineBins);
  for (size_t i = 0; i < r.s.size(); ++i) s.Add(r.s[i], r.y[i], r.w[i]);
  return s;
}

TEST(BinnedAccuracyTest, ExactWhenTheThresholdIsABinEdge) {
  const Labelled r = RandomLabelled(21, 5000);
  const ScoreLabelSummary s = Summarize(r);
  // No drawn score sits on an edge, so no fine bin straddles these.
  for (double threshold : {0.0, 0.3, 0.5, 0.7, 0.999, 1.0, 1.5}) {
    SCOPED_TRACE(threshold);
    const std::optional<double> a = BinnedAccuracy(s, threshold);
    ASSERT_TRUE(a.has_value());
    EXPECT_NEAR(*a, ExactAccuracy(r, threshold), kExact);
  }
  // 0 and above 1: the positive and the negative rate.
  double pos = 0, total = 0;
  for (size_t i = 0; i < r.s.size(); ++i) {
    pos += r.y[i] * r.w[i];
    total += r.w[i];
  }
  EXPECT_NEAR(*BinnedAccuracy(s, 0.0), pos / total, kExact);
  EXPECT_NEAR(*BinnedAccuracy(s, 1.5), 1 - pos / total, kExact);
}

TEST(BinnedAccuracyTest, WithinTheStraddledBinsWeightOtherwise) {
  const Labelled r = RandomLabelled(22, 5000);
  const ScoreLabelSummary s = Summarize(r);
  double total = 0;
  for (double w : r.w) total += w;
  int differing = 0;
  for (int k = 0; k < 200; ++k) {
    const double threshold = 0.0025 + k * 0.005;  // mid-bin
    const int b = s.BinOf(threshold);
    const double bin_weight = s.positives(b) + s.negatives(b);
    const double exact = ExactAccuracy(r, threshold), binned = *BinnedAccuracy(s, threshold);
    EXPECT_LE(std::abs(binned - exact), bin_weight / total + kExact) << threshold;
    // And it is the bin-mean rule exactly: judge bin b by its mean score.
    double correct = 0;
    for (size_t i = 0; i < r.s.size(); ++i) {
      const int bi = s.BinOf(r.s[i]);
      const bool positive =
          bi == b ? s.score_sum(b) / bin_weight >= threshold : r.s[i] >= threshold;
      correct += positive == (r.y[i] == 1) ? r.w[i] : 0;
    }
    EXPECT_NEAR(binned, correct / total, kExact) << threshold;
    differing += std::abs(binned - exact) > kExact;
  }
  EXPECT_GT(differing, 10);  // the bound is not vacuous: the rule does bite
  // A score exactly on the threshold edge shares bin (0.499, 0.5] with a
  // lower score: the bin's mean is below 0.5, so the 0.5 row counts
  // negative, unlike the exact rule (within that bin's weight).
  ScoreLabelSummary edge(kQualityFineBins);
  edge.Add(0.5, 1);
  edge.Add(0.4995, 0);
  EXPECT_DOUBLE_EQ(*BinnedAccuracy(edge, 0.5), 0.5);  // exact: 1
}

TEST(BinnedAccuracyTest, HandComputedAndEmpty) {
  ScoreLabelSummary s(kQualityFineBins);
  EXPECT_FALSE(BinnedAccuracy(s, 0.5).has_value());
  s.Add(1.5, 1);  // invalid: still nothing labelled
  s.Add(0.5, 0.5);
  EXPECT_FALSE(BinnedAccuracy(s, 0.5).has_value());
  s.Add(0.9, 1, 2);    // right
  s.Add(0.8, 0, 1);    // wrong
  s.Add(0.1, 0, 3);    // right
  s.Add(0.2, 1, 0.5);  // wrong
  EXPECT_DOUBLE_EQ(*BinnedAccuracy(s, 0.5), 5 / 6.5);
  // A bin whose mean is the threshold is predicted positive.
  ScoreLabelSummary at(kQualityFineBins);
  at.Add(0.7, 1);
  at.Add(0.2, 0);
  EXPECT_DOUBLE_EQ(*BinnedAccuracy(at, 0.7), 1.0);
}

}  // namespace
}  // namespace driftwatch::detectors
