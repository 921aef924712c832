#include "driftwatch/detectors/sequential.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::detectors {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> Normal(uint64_t seed, int n, double mean = 0, double sd = 1) {
  std::mt19937_64 eng(seed);
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> out(n);
  for (double& v : out) v = dist(eng);
  return out;
}

template <typename D, typename P>
D Make(const P& params) {
  absl::StatusOr<D> d = D::Create(params);
  EXPECT_TRUE(d.ok()) << d.status();
  return *std::move(d);
}

// ---- Golden: the same indices as river (PH) and the DESIGN formulas ---------

PageHinkleyParams PhFromJson(const nlohmann::json& j) {
  PageHinkleyParams p;
  if (j.contains("min_instances")) p.min_instances = j["min_instances"].get<int>();
  if (j.contains("delta")) p.delta = j["delta"].get<double>();
  if (j.contains("threshold")) p.threshold = j["threshold"].get<double>();
  if (j.contains("alpha")) p.alpha = j["alpha"].get<double>();
  if (j.contains("mode")) {
    const std::string m = j["mode"].get<std::string>();
    p.mode = m == "up"     ? PageHinkleyMode::kUp
             : m == "down" ? PageHinkleyMode::kDown
                           : PageHinkleyMode::kBoth;
  }
  return p;
}

TEST(SequentialGoldenTest, SameAlarmIndicesAsReferenceImplementations) {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/sequential.json");
  ASSERT_TRUE(in) << "missing golden file; run tests/golden/make_sequential_golden.py";
  const nlohmann::json doc = nlohmann::json::parse(in);
  const nlohmann::json& configs = doc["configs"];
  int checked = 0, total_alarms = 0;
  for (const nlohmann::json& c : doc["cases"]) {
    const std::string name = c["name"].get<std::string>();
    const std::vector<double> series = c["series"].get<std::vector<double>>();
    const nlohmann::json& expected = c["expected"];
    auto check = [&](const std::string& cfg, const std::vector<int64_t>& got) {
      SCOPED_TRACE(name + " / " + cfg);
      const std::vector<int64_t> want = expected[cfg].get<std::vector<int64_t>>();
      EXPECT_EQ(got, want);
      ++checked;
      total_alarms += static_cast<int>(want.size());
    };
    for (const auto& [cfg, p] : configs["page_hinkley"].items()) {
      check(cfg, DetectAll(Make<PageHinkley>(PhFromJson(p)), series));
    }
    for (const auto& [cfg, p] : configs["ewma"].items()) {
      EwmaParams e;
      if (p.contains("lambda")) e.lambda = p["lambda"].get<double>();
      if (p.contains("L")) e.L = p["L"].get<double>();
      if (p.contains("warmup")) e.warmup = p["warmup"].get<int>();
      check(cfg, DetectAll(Make<Ewma>(e), series));
    }
    for (const auto& [cfg, p] : configs["cusum"].items()) {
      CusumParams k;
      if (p.contains("k")) k.k = p["k"].get<double>();
      if (p.contains("h")) k.h = p["h"].get<double>();
      if (p.contains("warmup")) k.warmup = p["warmup"].get<int>();
      check(cfg, DetectAll(Make<Cusum>(k), series));
    }
    EwmaParams ek;
    ek.mu0 = c["mu0"].get<double>();
    ek.sigma = c["sigma"].get<double>();
    check("ewma_known", DetectAll(Make<Ewma>(ek), series));
    CusumParams ck;
    ck.mu0 = ek.mu0;
    ck.sigma = ek.sigma;
    check("cusum_known", DetectAll(Make<Cusum>(ck), series));
  }
  // Guards against an empty or truncated golden file passing vacuously.
  EXPECT_EQ(checked, 7 * 10);
  EXPECT_GT(total_alarms, 100);
}

// river's own docstring example: one detection, at index 1006.
TEST(PageHinkleyTest, RiverDocstringExample) {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/sequential.json");
  ASSERT_TRUE(in);
  const nlohmann::json doc = nlohmann::json::parse(in);
  for (const nlohmann::json& c : doc["cases"]) {
    if (c["name"] != "river_docstring") continue;
    const auto series = c["series"].get<std::vector<double>>();
    EXPECT_THAT(DetectAll(Make<PageHinkley>(PageHinkleyParams{}), series), ElementsAre(1006));
    return;
  }
  FAIL() << "river_docstring case missing";
}

// ---- Parameter validation ---------------------------------------------------

void ExpectInvalid(const absl::Status& s, const std::string& name) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(name));
}

TEST(SequentialParamsTest, EwmaRejectsBadParameters) {
  auto bad = [](auto mutate, const std::string& name) {
    EwmaParams p;
    mutate(p);
    ExpectInvalid(Ewma::Create(p).status(), name);
  };
  bad([](EwmaParams& p) { p.lambda = 0; }, "lambda");
  bad([](EwmaParams& p) { p.lambda = 1.5; }, "lambda");
  bad([](EwmaParams& p) { p.lambda = kNaN; }, "lambda");
  bad([](EwmaParams& p) { p.L = 0; }, "L must");
  bad([](EwmaParams& p) { p.L = std::numeric_limits<double>::infinity(); }, "L must");
  bad([](EwmaParams& p) { p.warmup = 1; }, "warmup");
  bad([](EwmaParams& p) { p.mu0 = 0; }, "mu0 and sigma");
  bad([](EwmaParams& p) { p.sigma = 1; }, "mu0 and sigma");
  bad([](EwmaParams& p) { p.mu0 = 0, p.sigma = 0; }, "sigma");
  bad([](EwmaParams& p) { p.mu0 = kNaN, p.sigma = 1; }, "mu0");
  EwmaParams known;
  known.mu0 = 1;
  known.sigma = 2;
  known.warmup = 0;  // unused when the baseline is given
  EXPECT_TRUE(Ewma::Create(known).ok());
}

TEST(SequentialParamsTest, CusumRejectsBadParameters) {
  auto bad = [](auto mutate, const std::string& name) {
    CusumParams p;
    mutate(p);
    ExpectInvalid(Cusum::Create(p).status(), name);
  };
  bad([](CusumParams& p) { p.k = -0.1; }, "k must");
  bad([](CusumParams& p) { p.h = 0; }, "h must");
  bad([](CusumParams& p) { p.h = kNaN; }, "h must");
  bad([](CusumParams& p) { p.warmup = 0; }, "warmup");
  bad([](CusumParams& p) { p.sigma = 1; }, "mu0 and sigma");
  bad([](CusumParams& p) { p.mu0 = 0, p.sigma = -1; }, "sigma");
}

TEST(SequentialParamsTest, PageHinkleyRejectsBadParameters) {
  auto bad = [](auto mutate, const std::string& name) {
    PageHinkleyParams p;
    mutate(p);
    ExpectInvalid(PageHinkley::Create(p).status(), name);
  };
  bad([](PageHinkleyParams& p) { p.min_instances = 0; }, "min_instances");
  bad([](PageHinkleyParams& p) { p.delta = -1; }, "delta");
  bad([](PageHinkleyParams& p) { p.threshold = 0; }, "threshold");
  bad([](PageHinkleyParams& p) { p.alpha = 0; }, "alpha");
  bad([](PageHinkleyParams& p) { p.alpha = 1.01; }, "alpha");
  bad([](PageHinkleyParams& p) { p.mode = static_cast<PageHinkleyMode>(7); }, "mode");
}

// ---- EWMA -------------------------------------------------------------------

TEST(EwmaTest, FirstPointUsesTimeVaryingLimitWithTEqualsOne) {
  // lambda 0.2, L 3, sigma 1: limit at t=1 is 3*sqrt(0.2/1.8*(1-0.8^2)) = 0.6,
  // and z_1 = 0.2 x, so the first point alarms iff |x| > 3.
  EwmaParams p;
  p.mu0 = 0;
  p.sigma = 1;
  Ewma below = Make<Ewma>(p);
  EXPECT_FALSE(below.Update(2.99));
  EXPECT_EQ(below.state().t, 1);
  Ewma above = Make<Ewma>(p);
  EXPECT_TRUE(above.Update(-3.01));
  // Known baseline: an alarm just resets the statistic.
  EXPECT_TRUE(above.state().armed);
  EXPECT_EQ(above.state().t, 0);
  EXPECT_EQ(above.state().z, 0.0);
}

TEST(EwmaTest, WarmupEstimatesBaselineAndNeverAlarms) {
  std::vector<double> x = Normal(1, 30, 10, 2);
  x[3] = 1e6;  // an outlier inside warm-up raises no alarm
  Ewma d = Make<Ewma>(EwmaParams{});
  for (double v : x) EXPECT_FALSE(d.Update(v));
  double mean = 0;
  for (double v : x) mean += v / 30;
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  ASSERT_TRUE(d.state().armed);
  // Welford vs two-pass: relative agreement to 1e-9 at these magnitudes.
  EXPECT_NEAR(d.state().mu0, mean, 1e-9 * std::abs(mean));
  EXPECT_NEAR(d.state().sigma, std::sqrt(ss / 29), 1e-9 * std::sqrt(ss / 29));
  EXPECT_EQ(d.state().t, 0);
}

TEST(EwmaTest, AlarmStartsANewWarmup) {
  std::vector<double> x = Normal(2, 30);
  x.push_back(100);                                              // alarms at index 30
  for (int i = 0; i < 29; ++i) x.push_back(i % 2 ? 1e3 : -1e3);  // warm-up again
  x.push_back(1e3);  // last point of the new warm-up: still no alarm
  x.push_back(1e7);  // far outside the new baseline: alarms at index 61
  EXPECT_THAT(DetectAll(Make<Ewma>(EwmaParams{}), x), ElementsAre(30, 61));
}

TEST(EwmaTest, LargeShiftDetectedQuickly) {
  std::vector<double> x = Normal(3, 30);
  const std::vector<double> shifted = Normal(4, 20, 5, 1);  // +5 sigma
  x.insert(x.end(), shifted.begin(), shifted.end());
  const auto alarms = DetectAll(Make<Ewma>(EwmaParams{}), x);
  ASSERT_FALSE(alarms.empty());
  EXPECT_GE(alarms[0], 30);
  EXPECT_LE(alarms[0], 33);  // z moves by about 1 sigma per point vs a limit < 0.9
}

TEST(EwmaTest, ConstantWarmupAlarmsOnAnyDeparture) {
  Ewma d = Make<Ewma>(EwmaParams{});
  for (int i = 0; i < 30; ++i) EXPECT_FALSE(d.Update(0.1));
  EXPECT_EQ(d.state().sigma, 0.0);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(d.Update(0.1));
  EXPECT_TRUE(d.Update(0.1 + 1e-12));
  EXPECT_FALSE(d.state().armed);  // a new warm-up run
}

// ---- CUSUM ------------------------------------------------------------------

TEST(CusumTest, StrictThresholdAndReset) {
  CusumParams p;
  p.mu0 = 10;
  p.sigma = 2;
  Cusum d = Make<Cusum>(p);
  EXPECT_FALSE(d.Update(10 + 2 * 5.4));  // S+ = 4.9
  EXPECT_NEAR(d.state().s_pos, 4.9, 1e-12);
  EXPECT_FALSE(d.Update(10 + 2 * 0.6));  // S+ = 5.0, not > 5
  EXPECT_TRUE(d.Update(10 + 2 * 0.6));   // S+ = 5.1
  EXPECT_EQ(d.state().s_pos, 0.0);
  EXPECT_TRUE(d.state().armed);
  EXPECT_FALSE(d.Update(10 - 2 * 5.4));  // S- = 4.9
  EXPECT_NEAR(d.state().s_neg, 4.9, 1e-12);
  EXPECT_TRUE(d.Update(10 - 2 * 0.7));  // S- = 5.1
}

TEST(CusumTest, MirrorImageSwapsSides) {
  // Negation is exact in floating point, so alarms on -x equal those on x.
  for (uint64_t seed : {5, 6, 7}) {
    std::vector<double> x = Normal(seed, 2000);
    for (int i = 1000; i < 2000; ++i) x[i] += 0.7;
    std::vector<double> neg(x.size());
    for (size_t i = 0; i < x.size(); ++i) neg[i] = -x[i];
    const auto a = DetectAll(Make<Cusum>(CusumParams{}), x);
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, DetectAll(Make<Cusum>(CusumParams{}), neg));
  }
}

TEST(CusumTest, ConstantWarmupAlarmsOnAnyDeparture) {
  Cusum d = Make<Cusum>(CusumParams{});
  for (int i = 0; i < 130; ++i) EXPECT_FALSE(d.Update(-3.0));
  EXPECT_EQ(d.state().sigma, 0.0);
  EXPECT_TRUE(d.Update(-2.9999));
}

TEST(WarmupDetectorsTest, AffineInvariant) {
  // Standardisation by the warm-up makes alarms invariant to x -> a x + b.
  for (uint64_t seed : {11, 12}) {
    std::vector<double> x = Normal(seed, 1500);
    for (int i = 700; i < 1500; ++i) x[i] += 1.0;
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = 250 + 4 * x[i];
    const auto ewma_x = DetectAll(Make<Ewma>(EwmaParams{}), x);
    const auto cusum_x = DetectAll(Make<Cusum>(CusumParams{}), x);
    EXPECT_GE(ewma_x.size(), 2u);
    EXPECT_GE(cusum_x.size(), 2u);
    EXPECT_EQ(ewma_x, DetectAll(Make<Ewma>(EwmaParams{}), y));
    EXPECT_EQ(cusum_x, DetectAll(Make<Cusum>(CusumParams{}), y));
  }
}

TEST(WarmupDetectorsTest, NonFinitePointsAreIgnored) {
  std::vector<double> x = Normal(21, 400);
  for (int i = 200; i < 400; ++i) x[i] += 2;
  std::vector<double> with_gaps;
  std::vector<int64_t> original_index;
  for (size_t i = 0; i < x.size(); ++i) {
    if (i % 7 == 3) {
      with_gaps.push_back(i % 2 ? kNaN : std::numeric_limits<double>::infinity());
      original_index.push_back(-1);
    }
    with_gaps.push_back(x[i]);
    original_index.push_back(static_cast<int64_t>(i));
  }
  auto remap = [&](const std::vector<int64_t>& idx) {
    std::vector<int64_t> out;
    for (int64_t i : idx) out.push_back(original_index[i]);
    return out;
  };
  const auto ewma = DetectAll(Make<Ewma>(EwmaParams{}), x);
  const auto cusum = DetectAll(Make<Cusum>(CusumParams{}), x);
  const auto ph = DetectAll(Make<PageHinkley>(PageHinkleyParams{.threshold = 10}), x);
  EXPECT_FALSE(ewma.empty());
  EXPECT_FALSE(cusum.empty());
  EXPECT_FALSE(ph.empty());
  EXPECT_EQ(remap(DetectAll(Make<Ewma>(EwmaParams{}), with_gaps)), ewma);
  EXPECT_EQ(remap(DetectAll(Make<Cusum>(CusumParams{}), with_gaps)), cusum);
  EXPECT_EQ(remap(DetectAll(Make<PageHinkley>(PageHinkleyParams{.threshold = 10}), with_gaps)), ph);
}

// ---- Page-Hinkley -----------------------------------------------------------

TEST(PageHinkleyTest, MinInstancesCountsTheCurrentPoint) {
  // A jump at index 5 is only reported once the mean holds 30 points.
  std::vector<double> x(5, 0.0);
  x.resize(40, 1000.0);
  PageHinkley d = Make<PageHinkley>(PageHinkleyParams{});
  std::vector<int64_t> alarms;
  for (size_t i = 0; i < x.size(); ++i) {
    if (d.Update(x[i])) alarms.push_back(static_cast<int64_t>(i));
    if (i == 29) {
      EXPECT_EQ(d.state().n, 30);
      EXPECT_TRUE(d.state().drift_detected);
    }
  }
  // Detected at index 29; the next detection needs 30 fresh points (69 > 39).
  EXPECT_THAT(alarms, ElementsAre(29));
}

TEST(PageHinkleyTest, ResetsLazilyOnTheUpdateAfterADetection) {
  PageHinkleyParams p;
  p.min_instances = 2;
  p.threshold = 1;
  PageHinkley d = Make<PageHinkley>(p);
  EXPECT_FALSE(d.Update(0));
  EXPECT_TRUE(d.Update(10));  // mean 5, dev 5: sum_increase - min > 1
  EXPECT_EQ(d.state().n, 2);  // not reset yet
  EXPECT_TRUE(d.state().drift_detected);
  EXPECT_FALSE(d.Update(10));  // reset first: a run of one point
  EXPECT_EQ(d.state().n, 1);
  EXPECT_EQ(d.state().mean, 10.0);
  EXPECT_EQ(d.state().sum_increase, -0.005);
  EXPECT_EQ(d.state().min_increase, -0.005);
  EXPECT_EQ(d.state().max_decrease, 0.005);
}

TEST(PageHinkleyTest, UpOnNegatedSeriesEqualsDown) {
  for (uint64_t seed : {31, 32}) {
    std::vector<double> x = Normal(seed, 3000);
    for (int i = 1000; i < 2000; ++i) x[i] -= 1.5;
    std::vector<double> neg(x.size());
    for (size_t i = 0; i < x.size(); ++i) neg[i] = -x[i];
    PageHinkleyParams down{.threshold = 20, .mode = PageHinkleyMode::kDown};
    PageHinkleyParams up{.threshold = 20, .mode = PageHinkleyMode::kUp};
    const auto a = DetectAll(Make<PageHinkley>(down), x);
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, DetectAll(Make<PageHinkley>(up), neg));
  }
}

TEST(PageHinkleyTest, ModeBothIsTheUnionUntilTheFirstDetection) {
  std::vector<double> x = Normal(41, 1000);
  for (int i = 500; i < 1000; ++i) x[i] += 2;
  const auto up = DetectAll(Make<PageHinkley>(PageHinkleyParams{.mode = PageHinkleyMode::kUp}), x);
  const auto down =
      DetectAll(Make<PageHinkley>(PageHinkleyParams{.mode = PageHinkleyMode::kDown}), x);
  const auto both = DetectAll(Make<PageHinkley>(PageHinkleyParams{}), x);
  ASSERT_FALSE(up.empty());
  ASSERT_FALSE(both.empty());
  const int64_t first_down = down.empty() ? INT64_MAX : down[0];
  EXPECT_EQ(both[0], std::min(up[0], first_down));
  EXPECT_GT(up[0], 500);
}

// ---- Persistence ------------------------------------------------------------

template <typename D, typename P, typename Deserialize>
void ExpectResumeMatchesUninterrupted(const P& params, const std::vector<double>& x,
                                      Deserialize deserialize) {
  const std::vector<int64_t> whole = DetectAll(Make<D>(params), x);
  ASSERT_GE(whole.size(), 2u) << "the stream must alarm on both halves";
  for (size_t cut : {x.size() / 3, x.size() / 2, static_cast<size_t>(whole[0] + 1)}) {
    SCOPED_TRACE(cut);
    D first = Make<D>(params);
    std::vector<int64_t> alarms;
    for (size_t i = 0; i < cut; ++i) {
      if (first.Update(x[i])) alarms.push_back(static_cast<int64_t>(i));
    }
    const std::string bytes = SerializeState(first.state());
    auto state = deserialize(bytes);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(SerializeState(*state), bytes);
    D second = Make<D>(params);
    ASSERT_TRUE(second.Restore(*state).ok());
    for (size_t i = cut; i < x.size(); ++i) {
      if (second.Update(x[i])) alarms.push_back(static_cast<int64_t>(i));
    }
    EXPECT_EQ(alarms, whole);
  }
}

std::vector<double> ShiftingStream(uint64_t seed) {
  std::vector<double> x = Normal(seed, 1200);
  for (int i = 300; i < 600; ++i) x[i] += 2;
  for (int i = 900; i < 1200; ++i) x[i] -= 2;
  return x;
}

TEST(SequentialPersistenceTest, ResumeAfterRestoreGivesSameAlarms) {
  const std::vector<double> x = ShiftingStream(51);
  ExpectResumeMatchesUninterrupted<Ewma>(EwmaParams{}, x, DeserializeEwmaState);
  ExpectResumeMatchesUninterrupted<Cusum>(CusumParams{}, x, DeserializeCusumState);
  ExpectResumeMatchesUninterrupted<Cusum>(CusumParams{.mu0 = 0, .sigma = 1}, x,
                                          DeserializeCusumState);
  ExpectResumeMatchesUninterrupted<PageHinkley>(PageHinkleyParams{.threshold = 15}, x,
                                                DeserializePageHinkleyState);
}

TEST(SequentialPersistenceTest, FreshStatesRoundTrip) {
  // Sizes documented in docs/formats/detector_state.md.
  EXPECT_EQ(SerializeState(Ewma::State{}).size(), 67u);
  EXPECT_EQ(SerializeState(Cusum::State{}).size(), 67u);
  EXPECT_EQ(SerializeState(PageHinkley::State{}).size(), 59u);
  EXPECT_EQ(SerializeState(Ewma::State{}).substr(0, 6), std::string("DWEW\x01\x00", 6));
  // Includes River's +inf initial minimum.
  auto ph = DeserializePageHinkleyState(SerializeState(PageHinkley::State{}));
  ASSERT_TRUE(ph.ok());
  EXPECT_EQ(ph->min_increase, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(Make<PageHinkley>(PageHinkleyParams{}).Restore(*ph).ok());
}

template <typename Deserialize>
void ExpectCorruptionDetected(const std::string& good, Deserialize deserialize) {
  ASSERT_TRUE(deserialize(good).ok());
  for (size_t len = 0; len < good.size(); ++len) {
    EXPECT_EQ(deserialize(good.substr(0, len)).status().code(), absl::StatusCode::kDataLoss)
        << "prefix " << len;
  }
  EXPECT_EQ(deserialize(good + '\0').status().code(), absl::StatusCode::kDataLoss);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_EQ(deserialize(bad).status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
  }
}

TEST(SequentialPersistenceTest, TruncatedOrCorruptBytesAreDataLoss) {
  const std::vector<double> x = Normal(61, 50);
  Ewma e = Make<Ewma>(EwmaParams{});
  Cusum c = Make<Cusum>(CusumParams{});
  PageHinkley p = Make<PageHinkley>(PageHinkleyParams{});
  for (double v : x) e.Update(v), c.Update(v), p.Update(v);
  ExpectCorruptionDetected(SerializeState(e.state()), DeserializeEwmaState);
  ExpectCorruptionDetected(SerializeState(c.state()), DeserializeCusumState);
  ExpectCorruptionDetected(SerializeState(p.state()), DeserializePageHinkleyState);
  // One kind's bytes are not another's.
  EXPECT_EQ(DeserializeCusumState(SerializeState(e.state())).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(DeserializeCusumState(SerializeState(e.state())).status().message()),
              HasSubstr("magic"));
}

TEST(SequentialPersistenceTest, RestoreRejectsInconsistentStates) {
  Ewma e = Make<Ewma>(EwmaParams{});
  Ewma::State es;
  es.warmup.n = 30;  // a full warm-up would have armed the chart
  ExpectInvalid(e.Restore(es), "warmup.n");
  es = Ewma::State{};
  es.armed = true;
  es.z = kNaN;
  ExpectInvalid(e.Restore(es), "z");
  Ewma known = Make<Ewma>(EwmaParams{.mu0 = 0, .sigma = 1});
  ExpectInvalid(known.Restore(Ewma::State{}), "armed");

  Cusum c = Make<Cusum>(CusumParams{});
  Cusum::State cs;
  cs.armed = true;
  cs.sigma = 1;
  cs.s_pos = -1;
  ExpectInvalid(c.Restore(cs), "s_pos");
  cs.s_pos = 0;
  cs.sigma = -1;
  ExpectInvalid(c.Restore(cs), "sigma");

  PageHinkley p = Make<PageHinkley>(PageHinkleyParams{});
  PageHinkley::State ps;
  ps.n = -1;
  ExpectInvalid(p.Restore(ps), "state.n");
  ps.n = 3;
  ps.min_increase = -1;
  ps.max_decrease = 1;
  ps.drift_detected = true;  // impossible before min_instances points
  ExpectInvalid(p.Restore(ps), "drift_detected");
  // A failed Restore leaves the detector as it was.
  EXPECT_EQ(p.state().n, 0);
}

}  // namespace
}  // namespace driftwatch::detectors
