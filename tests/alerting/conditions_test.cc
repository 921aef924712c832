// The rules engine's conditions beyond thresholds: change from the
// baseline (change(), ratio()), change-point detectors over a signal's
// series (alarming where `driftctl changepoint` does, ARL0-calibrated on the
// series' own history), and Benjamini-Hochberg over many p-values.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "driftwatch/alerting/engine.h"
#include "driftwatch/detectors/sequential.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::alerting {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kT0 = 1'796'000'000'000;
const double kNan = std::nan("");

using Signals = std::vector<detectors::Signal>;

detectors::Signal S(std::string name, double v, double baseline = kNan, std::string feature = "",
                    std::string slice = "platform=android") {
  return {"loan@v3", std::move(slice), std::move(feature), std::move(name), v, baseline};
}

std::vector<Rule> Rules(const std::string& yaml) {
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(yaml, "test");
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? *rules : std::vector<Rule>();
}

size_t Firing(const RuleEngine& engine) {
  size_t n = 0;
  for (const auto& [fp, a] : engine.alerts()) n += a.state == AlertState::kFiring;
  return n;
}

TEST(ConditionsTest, ParsesChangeAndRatio) {
  absl::StatusOr<Threshold> t = ParseThreshold("change(null_rate{feature=\"income\"}) > 0.1");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->signal, "null_rate");
  EXPECT_EQ(t->transform, Transform::kChange);
  ASSERT_EQ(t->feature.size(), 1u);
  EXPECT_EQ(t->ToString(), "change(null_rate{feature=\"income\"}) > 0.1");
  t = ParseThreshold(" ratio( volume ) < 0.5");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->transform, Transform::kRatio);
  EXPECT_THAT(ParseThreshold("change(ratio(volume)) < 1").status().message(),
              testing::HasSubstr("do not nest"));
  EXPECT_THAT(ParseThreshold("change(volume < 1").status().message(),
              testing::HasSubstr("expected ) after volume"));
}

TEST(ConditionsTest, ChangeAndRatioReadTheBaselineValue) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: null_spike
    condition: {expr: 'change(null_rate) > 0.1', resolve: 0.03}
    runbook_url: r
  - name: volume_drop
    condition: 'ratio(volume) < 0.5'
    runbook_url: r
)"));
  int64_t t = kT0;
  // 0.02 -> 0.10 is +0.08: not a spike; no baseline: no change to judge.
  engine.Evaluate({S("null_rate", 0.10, 0.02, "income"), S("volume", 100, kNan)}, t);
  EXPECT_EQ(Firing(engine), 0u);
  engine.Evaluate({S("null_rate", 0.20, 0.02, "income"), S("volume", 40, 100)}, t += kMin);
  EXPECT_EQ(Firing(engine), 2u);
  for (const auto& [fp, a] : engine.alerts()) {
    if (a.rule == "null_spike") {
      EXPECT_EQ(a.labels.at("feature"), "income");
      EXPECT_NEAR(a.value, 0.18, 1e-12);  // the change, not the level
    } else {
      EXPECT_NEAR(a.value, 0.4, 1e-12);
    }
  }
  // Hysteresis on the change: +0.05 still holds (> 0.03), +0.02 resolves.
  engine.Evaluate({S("null_rate", 0.07, 0.02, "income"), S("volume", 40, 100)}, t += kMin);
  EXPECT_EQ(Firing(engine), 2u);
  engine.Evaluate({S("null_rate", 0.04, 0.02, "income"), S("volume", 90, 100)}, t += kMin);
  EXPECT_EQ(Firing(engine), 0u);
  // A zero baseline has no ratio.
  engine.Evaluate({S("volume", 0, 0)}, t += kMin);
  EXPECT_EQ(Firing(engine), 0u);
}

// A series with a shift after point 60.
std::vector<double> ShiftedSeries(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.05, 0.01);
  std::vector<double> xs;
  for (int i = 0; i < 120; ++i) xs.push_back(noise(rng) + (i >= 60 ? 0.03 : 0));
  return xs;
}

// Feeds `xs` one point per minute; returns the indices where the rule's
// alert was firing at that evaluation having not fired at the previous.
std::vector<int64_t> Alarms(RuleEngine& engine, const std::vector<double>& xs) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < xs.size(); ++i) {
    for (const AlertChange& c :
         engine.Evaluate({S("psi", xs[i], kNan, "income")}, kT0 + static_cast<int64_t>(i) * kMin)) {
      if (c.alert.state == AlertState::kFiring) out.push_back(static_cast<int64_t>(i));
    }
  }
  return out;
}

TEST(ConditionsTest, ChangePointFiresWhereTheDetectorDoes) {
  // The same parameters `driftctl changepoint --method M ...` takes.
  struct Case {
    const char* yaml;
    std::vector<int64_t> expected;
  };
  const std::vector<double> xs = ShiftedSeries(7);
  detectors::CusumParams cusum;
  cusum.k = 0.5;
  cusum.h = 4;
  cusum.warmup = 30;
  detectors::EwmaParams ewma;
  ewma.lambda = 0.2;
  ewma.L = 3;
  ewma.warmup = 30;
  detectors::PageHinkleyParams ph;
  ph.min_instances = 30;
  ph.delta = 0.001;
  ph.threshold = 0.05;
  const std::vector<Case> cases = {
      {"{change_point: 'psi{feature=\"income\"}', method: cusum, k: 0.5, h: 4, warmup: 30}",
       detectors::DetectAll(*detectors::Cusum::Create(cusum), xs)},
      {"{change_point: 'psi', method: ewma, lambda: 0.2, L: 3, warmup: 30}",
       detectors::DetectAll(*detectors::Ewma::Create(ewma), xs)},
      {"{change_point: 'psi', method: page-hinkley, min_instances: 30, delta: 0.001, "
       "threshold: 0.05}",
       detectors::DetectAll(*detectors::PageHinkley::Create(ph), xs)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    ASSERT_FALSE(c.expected.empty());  // the shift is detectable: the test can fail
    RuleEngine engine;
    engine.SetRules(Rules(std::string("rules:\n  - name: cp\n    condition: ") + c.yaml +
                          "\n    runbook_url: r\n"));
    // Each alarm fires the alert (hold 0: it resolves at the next point,
    // unless that point alarms too).
    std::vector<int64_t> got = Alarms(engine, xs);
    EXPECT_EQ(got, c.expected);
    ASSERT_EQ(engine.detectors().size(), 1u);
    EXPECT_EQ(engine.detectors()[0].feature, "income");
    EXPECT_EQ(engine.detectors()[0].points, static_cast<int64_t>(xs.size()));
  }
}

TEST(ConditionsTest, ChangePointHoldKeepsTheConditionAfterTheAlarm) {
  const std::vector<double> xs = ShiftedSeries(7);
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: cp
    condition: {change_point: psi, method: cusum, k: 0.5, h: 4, warmup: 30, hold: 10m}
    for: 5m
    runbook_url: r
)"));
  detectors::CusumParams p;
  p.h = 4;
  const std::vector<int64_t> alarms = detectors::DetectAll(*detectors::Cusum::Create(p), xs);
  ASSERT_FALSE(alarms.empty());
  // With `for: 5m` an alarm alone could never fire; held 10 min, it does,
  // 5 min after the first alarm.
  const std::vector<int64_t> fired = Alarms(engine, xs);
  ASSERT_FALSE(fired.empty());
  EXPECT_EQ(fired[0], alarms[0] + 5);
}

TEST(ConditionsTest, TargetArl0CalibratesOnTheSeriesOwnWarmup) {
  const std::vector<double> xs = ShiftedSeries(11);
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: cp
    condition: {change_point: psi, method: cusum, k: 0.5, warmup: 30, target_arl0: 500}
    runbook_url: r
)"));
  std::vector<int64_t> got = Alarms(engine, xs);
  ASSERT_EQ(engine.detectors().size(), 1u);
  const DetectorInfo info = engine.detectors()[0];
  EXPECT_TRUE(info.error.empty()) << info.error;
  EXPECT_FALSE(info.calibrating);
  // The same calibration by hand: bootstrap of the first 30 points.
  detectors::CusumParams p;
  p.k = 0.5;
  p.warmup = 30;
  detectors::ArlCalibrationOptions o;
  o.target_arl0 = 500;
  o.runs = EngineOptions{}.calibration_runs;
  o.seed = EngineOptions{}.calibration_seed;
  detectors::InControlModel model;
  model.reference.assign(xs.begin(), xs.begin() + 30);
  absl::StatusOr<detectors::ArlCalibration> cal = detectors::CalibrateCusum(p, model, o);
  ASSERT_TRUE(cal.ok()) << cal.status();
  EXPECT_DOUBLE_EQ(info.threshold, cal->threshold);
  EXPECT_GT(info.calibrated_arl0, 0);
  // And the alarms are that detector's on the whole series.
  p.h = cal->threshold;
  EXPECT_EQ(got, detectors::DetectAll(*detectors::Cusum::Create(p), xs));
  EXPECT_FALSE(got.empty());
}

TEST(ConditionsTest, ChangePointParseErrors) {
  auto error = [](const std::string& cond) {
    absl::StatusOr<std::vector<Rule>> r = ParseRules(
        "rules:\n  - name: cp\n    condition: " + cond + "\n    runbook_url: r\n", "f.yaml");
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_THAT(error("{change_point: psi, method: arima}"),
              testing::HasSubstr("method must be ewma, cusum or page-hinkley"));
  EXPECT_THAT(error("{change_point: psi, method: cusum, lambda: 0.2}"),
              testing::HasSubstr("lambda does not apply to method cusum"));
  EXPECT_THAT(error("{change_point: psi, method: page-hinkley, warmup: 10}"),
              testing::HasSubstr("warmup does not apply to method page-hinkley"));
  EXPECT_THAT(error("{change_point: psi, method: ewma, lambda: 2}"),
              testing::HasSubstr("lambda"));
  EXPECT_THAT(error("{change_point: 'psi > 1'}"), testing::HasSubstr("unexpected \">"));
  EXPECT_THAT(error("{change_point: psi, target_arl0: 1}"), testing::HasSubstr("target_arl0"));
  EXPECT_THAT(error("{change_point: psi, colour: red}"), testing::HasSubstr("unknown key"));
  EXPECT_EQ(error("{change_point: psi}"), "ok");  // CUSUM with its defaults
}

// 20 features x 100 slices of p-values; `shifted` of them drawn near zero.
Signals PValues(std::mt19937_64& rng, int shifted) {
  std::uniform_real_distribution<double> u(0, 1);
  Signals out;
  for (int s = 0; s < 100; ++s) {
    for (int f = 0; f < 20; ++f) {
      const bool real = s * 20 + f < shifted;
      out.push_back(S("ks_p", real ? u(rng) * 1e-5 : u(rng), kNan, "f" + std::to_string(f),
                      "platform=p" + std::to_string(s)));
    }
  }
  return out;
}

TEST(ConditionsTest, BenjaminiHochbergBoundsFalseAlarmsOnNullData) {
  const std::string plain = R"(rules:
  - name: ks
    condition: 'ks_p < 0.05'
    runbook_url: r
)";
  const std::string bh = R"(rules:
  - name: ks
    condition: 'ks_p < 0.05'
    fdr_q: 0.05
    runbook_url: r
)";
  std::mt19937_64 rng(2026);
  constexpr int kEvaluations = 200;
  int evaluations_with_alarm[2] = {0, 0};
  double alarms[2] = {0, 0};
  for (int e = 0; e < kEvaluations; ++e) {
    const Signals signals = PValues(rng, 0);
    for (int i = 0; i < 2; ++i) {
      RuleEngine engine;
      engine.SetRules(Rules(i == 0 ? plain : bh));
      engine.Evaluate(signals, kT0);
      const size_t n = Firing(engine);
      alarms[i] += static_cast<double>(n);
      evaluations_with_alarm[i] += n > 0;
    }
  }
  // Without BH: ~5% of the 2,000 tests alarm at every evaluation (about 100).
  const double per_test = alarms[0] / (kEvaluations * 2000.0);
  EXPECT_NEAR(per_test, 0.05, 0.005);
  EXPECT_EQ(evaluations_with_alarm[0], kEvaluations);
  // With BH at q = 0.05 on null data (all hypotheses true) the chance that an
  // evaluation raises any alarm is at most q: observed ~5% of 200.
  const double any_rate = evaluations_with_alarm[1] / static_cast<double>(kEvaluations);
  EXPECT_LE(any_rate, 0.10);
  EXPECT_LT(alarms[1], 0.001 * alarms[0]);
  std::printf("null data, 20 features x 100 slices, %d evaluations: without BH %.1f alarms per "
              "evaluation (%.2f%% of tests), with BH q=0.05 %.0f%% of evaluations raise any\n",
              kEvaluations, alarms[0] / kEvaluations, 100 * per_test, 100 * any_rate);
}

TEST(ConditionsTest, BenjaminiHochbergStillFindsRealShifts) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: ks
    condition: 'ks_p < 0.05'
    fdr_q: 0.05
    runbook_url: r
)"));
  std::mt19937_64 rng(99);
  engine.Evaluate(PValues(rng, 30), kT0);
  // The 30 real shifts (p < 1e-5) all pass BH; at most a couple of nulls do.
  EXPECT_GE(Firing(engine), 30u);
  EXPECT_LE(Firing(engine), 33u);
}

TEST(ConditionsTest, FdrNeedsAPValueThreshold) {
  auto error = [](const std::string& body) {
    absl::StatusOr<std::vector<Rule>> r =
        ParseRules("rules:\n  - name: x\n" + body + "    runbook_url: r\n", "f.yaml");
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_THAT(error("    condition: 'psi > 0.2'\n    fdr_q: 0.05\n"),
              testing::HasSubstr("fdr_q needs a threshold on a p-value signal"));
  EXPECT_THAT(error("    condition: 'ks_p > 0.2'\n    fdr_q: 0.05\n"),
              testing::HasSubstr("must be a < or <="));
  EXPECT_THAT(error("    condition: 'ks_p < 0.2'\n    fdr_q: 1.5\n"),
              testing::HasSubstr("fdr_q must be in (0, 1)"));
  EXPECT_EQ(error("    condition: {all: ['ks_p < 0.05', 'psi > 0.1']}\n    fdr_q: 0.1\n"), "ok");
}

TEST(ConditionsTest, ParsesInhibitRulesAndSingleRules) {
  absl::StatusOr<RulesFile> file = ParseRulesFile(R"(rules:
  - name: volume_drop
    condition: 'ratio(volume) < 0.5'
    runbook_url: r
inhibit_rules:
  - source_matchers: ['alertname="volume_drop"']
    target_matchers: ['alertname=~"feature_drift|score_drift"']
    equal: [model, slice]
)",
                                                  "f.yaml");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->inhibit_rules.size(), 1u);
  EXPECT_EQ(file->inhibit_rules[0].equal, (std::vector<std::string>{"model", "slice"}));
  EXPECT_EQ(file->rules[0].source, "f.yaml");
  absl::StatusOr<RulesFile> bad = ParseRulesFile(R"(inhibit_rules:
  - source_matchers: ['alertname="x"']
)",
                                                 "f.yaml");
  EXPECT_THAT(bad.status().message(), testing::HasSubstr("f.yaml:2: inhibit rule"));
  absl::StatusOr<Rule> one =
      ParseRule("name: api_rule\ncondition: 'psi > 0.3'\nrunbook_url: r\n", "api");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->source, "api");
  EXPECT_THAT(ParseRule("name: api_rule\ncondition: 'psi > 0.3'\n", "api").status().message(),
              testing::HasSubstr("api:1: rule \"api_rule\": runbook_url is required"));
}

TEST(SuppressionTest, SilencesAndInhibitionMarkWithoutChangingState) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: volume_drop
    condition: 'ratio(volume) < 0.5'
    severity: page
    runbook_url: r
  - name: feature_drift
    condition: 'psi > 0.25'
    runbook_url: r
)"));
  engine.Evaluate({S("volume", 10, 100), S("psi", 0.4, kNan, "income"),
                   S("volume", 100, 100, "", "platform=ios"),
                   S("psi", 0.4, kNan, "income", "platform=ios")},
                  kT0);
  std::vector<Alert> alerts;
  for (const auto& [fp, a] : engine.alerts()) alerts.push_back(a);
  ASSERT_EQ(alerts.size(), 3u);  // volume_drop on android; feature_drift on android and ios
  absl::StatusOr<RulesFile> file = ParseRulesFile(R"(inhibit_rules:
  - source_matchers: ['alertname="volume_drop"']
    target_matchers: ['alertname="feature_drift"']
    equal: [model, slice]
)",
                                                  "f");
  ASSERT_TRUE(file.ok()) << file.status();
  Silence silence;
  silence.id = "s1";
  silence.matchers = {*ParseMatcher("slice=\"platform=ios\"")};
  silence.starts_at_ms = kT0;
  silence.ends_at_ms = kT0 + kMin;
  ASSERT_TRUE(ValidateSilence(silence).ok());
  MarkSuppressed(&alerts, engine.alerts(), {silence}, file->inhibit_rules, kT0 + 1);
  for (const Alert& a : alerts) {
    const std::string slice = a.labels.at("slice");
    SCOPED_TRACE(a.rule + " " + slice);
    EXPECT_EQ(a.state, AlertState::kFiring);  // marks, not states
    // The android volume drop mutes android's feature alert, not ios's.
    EXPECT_EQ(a.inhibited, a.rule == "feature_drift" && slice == "platform=android");
    EXPECT_EQ(a.silenced_by, slice == "platform=ios" ? std::vector<std::string>{"s1"}
                                                     : std::vector<std::string>{});
  }
  // Past its end the silence marks nothing; nor before its start.
  MarkSuppressed(&alerts, engine.alerts(), {silence}, {}, kT0 + kMin);
  for (const Alert& a : alerts) EXPECT_TRUE(a.silenced_by.empty());
  MarkSuppressed(&alerts, engine.alerts(), {silence}, {}, kT0 - 1);
  for (const Alert& a : alerts) EXPECT_TRUE(a.silenced_by.empty());
  EXPECT_EQ(silence.StateAt(kT0 - 1), "pending");
  EXPECT_EQ(silence.StateAt(kT0), "active");
  EXPECT_EQ(silence.StateAt(kT0 + kMin), "expired");
  // A silence of everything, or one that ends before it starts, is refused.
  Silence everything = silence;
  everything.matchers = {*ParseMatcher("team=~\".*\"")};
  EXPECT_FALSE(ValidateSilence(everything).ok());
  Silence backwards = silence;
  backwards.ends_at_ms = backwards.starts_at_ms;
  EXPECT_FALSE(ValidateSilence(backwards).ok());
}

}  // namespace
}  // namespace driftwatch::alerting
