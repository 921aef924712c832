// The rules engine on an injected evaluation time: pending -> firing after
// `for`, keep_firing_for, hysteresis, resolution, N of M, one alert per free
// feature, slice selection and support, a restart in each state, rules
// that go away, and the annotations' templates.
#include "driftwatch/alerting/engine.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::alerting {
namespace {

constexpr int64_t kSec = 1000;
constexpr int64_t kT0 = 1'796'000'000'000;

using Signals = std::vector<detectors::Signal>;

detectors::Signal S(std::string name, double v, std::string feature = "",
                    std::string slice = "platform=android", std::string model = "loan@v3") {
  return {std::move(model), std::move(slice), std::move(feature), std::move(name), v};
}

std::vector<Rule> Rules(const std::string& yaml) {
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(yaml, "test");
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? *rules : std::vector<Rule>();
}

std::vector<AlertState> States(const std::vector<AlertChange>& changes) {
  std::vector<AlertState> out;
  for (const AlertChange& c : changes) out.push_back(c.alert.state);
  return out;
}

TEST(RuleEngineTest, PendingThenFiringAfterForThenResolved) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: score_drift
    condition: 'score_psi > 0.25'
    for: 60s
    severity: page
    annotations: {summary: 'score PSI {{ $value }} in {{ $labels.slice }}'}
    runbook_url: 'https://runbooks/score-drift.md#{{ $labels.model }}'
)"));
  int64_t t = kT0;
  EXPECT_TRUE(engine.Evaluate({S("score_psi", 0.1)}, t).empty());
  std::vector<AlertChange> c = engine.Evaluate({S("score_psi", 0.4)}, t += 15 * kSec);
  ASSERT_EQ(States(c), std::vector<AlertState>{AlertState::kPending});
  const Alert& a = c[0].alert;
  EXPECT_EQ(a.labels.at("alertname"), "score_drift");
  EXPECT_EQ(a.labels.at("model"), "loan");
  EXPECT_EQ(a.labels.at("model_version"), "v3");
  EXPECT_EQ(a.labels.at("slice"), "platform=android");
  EXPECT_EQ(a.labels.at("severity"), "page");
  EXPECT_FALSE(a.labels.contains("feature"));
  EXPECT_EQ(a.fingerprint, FingerprintHex(a.labels));
  EXPECT_EQ(a.annotations.at("summary"), "score PSI 0.4 in platform=android");
  EXPECT_EQ(a.annotations.at("runbook_url"), "https://runbooks/score-drift.md#loan");
  EXPECT_EQ(a.active_at_ms, t);
  const int64_t active = t;
  EXPECT_TRUE(engine.Evaluate({S("score_psi", 0.5)}, t += 30 * kSec).empty());  // 30 s < for
  c = engine.Evaluate({S("score_psi", 0.5)}, t += 30 * kSec);                   // 60 s
  ASSERT_EQ(States(c), std::vector<AlertState>{AlertState::kFiring});
  EXPECT_EQ(c[0].from, AlertState::kPending);
  EXPECT_EQ(c[0].alert.active_at_ms, active);
  EXPECT_EQ(c[0].alert.fired_at_ms, t);
  EXPECT_TRUE(engine.Evaluate({S("score_psi", 0.5)}, t += 15 * kSec).empty());  // no re-firing
  c = engine.Evaluate({S("score_psi", 0.05)}, t += 15 * kSec);
  ASSERT_EQ(States(c), std::vector<AlertState>{AlertState::kResolved});
  EXPECT_EQ(c[0].alert.resolved_at_ms, t);
  ASSERT_EQ(engine.alerts().size(), 1u);  // listable while retained
  EXPECT_TRUE(engine.Evaluate({S("score_psi", 0.05)}, t += 24 * 3600 * kSec).empty());
  EXPECT_TRUE(engine.alerts().empty());  // past the retention
}

TEST(RuleEngineTest, PendingThatStopsHoldingIsDropped) {
  RuleEngine engine;
  engine.SetRules(Rules("rules:\n  - {name: r, condition: 'psi > 1', for: 5m, runbook_url: x}\n"));
  ASSERT_EQ(States(engine.Evaluate({S("psi", 2, "income")}, kT0)),
            std::vector<AlertState>{AlertState::kPending});
  EXPECT_EQ(States(engine.Evaluate({S("psi", 0.5, "income")}, kT0 + 15 * kSec)),
            std::vector<AlertState>{AlertState::kInactive});
  EXPECT_TRUE(engine.alerts().empty());
}

TEST(RuleEngineTest, KeepFiringForAndHysteresis) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: r
    condition: {expr: 'psi > 0.25', resolve: 0.1}
    keep_firing_for: 30s
    runbook_url: x
)"));
  int64_t t = kT0;
  EXPECT_TRUE(engine.Evaluate({S("psi", 0.2, "age")}, t).empty());  // not above 0.25 yet
  ASSERT_EQ(States(engine.Evaluate({S("psi", 0.3, "age")}, t += 15 * kSec)),
            std::vector<AlertState>{AlertState::kFiring});  // for 0: at once
  // Between 0.1 and 0.25: still firing (hysteresis), and the value moves.
  EXPECT_TRUE(engine.Evaluate({S("psi", 0.15, "age")}, t += 15 * kSec).empty());
  EXPECT_DOUBLE_EQ(engine.alerts().begin()->second.value, 0.15);
  // Below 0.1: failing, but keep_firing_for 30 s.
  EXPECT_TRUE(engine.Evaluate({S("psi", 0.05, "age")}, t += 15 * kSec).empty());
  EXPECT_TRUE(engine.Evaluate({S("psi", 0.05, "age")}, t += 14 * kSec).empty());
  EXPECT_EQ(States(engine.Evaluate({S("psi", 0.05, "age")}, t += 16 * kSec)),
            std::vector<AlertState>{AlertState::kResolved});
  // Resolved: 0.2 does not re-fire (the firing threshold applies again).
  EXPECT_TRUE(engine.Evaluate({S("psi", 0.2, "age")}, t += 15 * kSec).empty());
  ASSERT_EQ(States(engine.Evaluate({S("psi", 0.3, "age")}, t += 15 * kSec)),
            std::vector<AlertState>{AlertState::kFiring});
  EXPECT_EQ(engine.alerts().begin()->second.active_at_ms, t);  // a new episode
}

TEST(RuleEngineTest, OneAlertPerFreeFeatureJoinedOnModelAndSlice) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: corroborated
    condition:
      all:
        - 'psi{feature!="id"} > 0.25'
        - 'score_psi > 0.2'
        - at_least: 1
          of: ['estimated_auc < 0.7', 'auc < 0.7']
    runbook_url: x
)"));
  const Signals android = {
      S("psi", 0.4, "income"), S("psi", 0.3, "age"),    S("psi", 0.1, "zip"), S("psi", 0.9, "id"),
      S("score_psi", 0.3),     S("estimated_auc", 0.6), S("auc", 0.8)};
  Signals all = android;
  // ios: feature PSI high but the score did not move: no alert.
  for (detectors::Signal s : android) {
    s.slice = "platform=ios";
    if (s.name == "score_psi") s.value = 0.05;
    all.push_back(s);
  }
  std::vector<AlertChange> c = engine.Evaluate(all, kT0);
  ASSERT_EQ(c.size(), 2u);
  std::vector<std::string> features;
  for (const AlertChange& x : c) {
    EXPECT_EQ(x.alert.labels.at("slice"), "platform=android");
    features.push_back(x.alert.labels.at("feature"));
  }
  EXPECT_THAT(features, ::testing::UnorderedElementsAre("income", "age"));
  // Two of the at_least: neither: nothing more, and those two resolve.
  Signals better = android;
  for (detectors::Signal& s : better) {
    if (s.name == "estimated_auc") s.value = 0.75;
  }
  EXPECT_EQ(States(engine.Evaluate(better, kT0 + 15 * kSec)),
            (std::vector<AlertState>{AlertState::kResolved, AlertState::kResolved}));
}

TEST(RuleEngineTest, SlicesModelsAndSupportSelectWhatIsEvaluated) {
  RuleEngine engine;
  engine.SetRules(Rules(R"(rules:
  - name: r
    model: loan
    slices: ['platform=~"android|web"']
    condition: 'null_rate > 0.1'
    min_support: 100
    runbook_url: x
)"));
  const Signals signals = {S("null_rate", 0.5, "income"),
                           S("events", 1000),  // android: yes
                           S("null_rate", 0.5, "income", "platform=web"),
                           S("events", 50, "", "platform=web"),  // support
                           S("null_rate", 0.5, "income", "platform=ios"),
                           S("events", 1000, "", "platform=ios"),
                           S("null_rate", 0.5, "income", "*"),
                           S("events", 1000, "", "*"),  // population
                           S("null_rate", 0.5, "income", "platform=android", "fraud@v1"),
                           S("events", 1000, "", "platform=android", "fraud@v1")};
  std::vector<AlertChange> c = engine.Evaluate(signals, kT0);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].alert.labels.at("slice"), "platform=android");
  EXPECT_EQ(c[0].alert.labels.at("model"), "loan");
}

TEST(RuleEngineTest, RestoredAlertsKeepTheirStateAndDoNotFireAgain) {
  const std::string yaml =
      "rules:\n  - {name: r, condition: 'score_psi > 0.25', for: 60s, runbook_url: x}\n"
      "  - {name: q, condition: 'auc < 0.7', runbook_url: y}\n";
  RuleEngine first;
  first.SetRules(Rules(yaml));
  std::vector<Alert> saved;
  for (const AlertChange& c :
       first.Evaluate({S("score_psi", 0.4), S("auc", 0.6)}, kT0)) {  // r pending, q firing
    saved.push_back(c.alert);
  }
  ASSERT_EQ(saved.size(), 2u);
  // A restart 30 s later: the pending `for` goes on from its active_at.
  RuleEngine second;
  second.SetRules(Rules(yaml));
  second.Restore(saved);
  EXPECT_TRUE(second.Evaluate({S("score_psi", 0.4), S("auc", 0.6)}, kT0 + 30 * kSec).empty());
  std::vector<AlertChange> c =
      second.Evaluate({S("score_psi", 0.4), S("auc", 0.6)}, kT0 + 60 * kSec);
  ASSERT_EQ(c.size(), 1u);  // r fires; q was firing and does not fire again
  EXPECT_EQ(c[0].alert.rule, "r");
  EXPECT_EQ(c[0].alert.state, AlertState::kFiring);
  EXPECT_EQ(c[0].alert.fingerprint,
            saved[0].rule == "r" ? saved[0].fingerprint : saved[1].fingerprint);
}

TEST(RuleEngineTest, ARestoredResolvedAlertStaysResolvedUntilANewEpisode) {
  const std::string yaml = "rules:\n  - {name: q, condition: 'auc < 0.7', runbook_url: y}\n";
  RuleEngine first;
  first.SetRules(Rules(yaml));
  first.Evaluate({S("auc", 0.6)}, kT0);
  std::vector<AlertChange> c = first.Evaluate({S("auc", 0.8)}, kT0 + 15 * kSec);
  ASSERT_EQ(States(c), std::vector<AlertState>{AlertState::kResolved});
  RuleEngine second;
  second.SetRules(Rules(yaml));
  second.Restore({c[0].alert});
  // Still resolved and listable; nothing to announce while it stays so.
  EXPECT_TRUE(second.Evaluate({S("auc", 0.8)}, kT0 + 30 * kSec).empty());
  ASSERT_EQ(second.alerts().size(), 1u);
  EXPECT_EQ(second.alerts().begin()->second.state, AlertState::kResolved);
  EXPECT_EQ(second.alerts().begin()->second.resolved_at_ms, kT0 + 15 * kSec);
  // Holding again is a new episode: it fires anew, active from now.
  c = second.Evaluate({S("auc", 0.6)}, kT0 + 45 * kSec);
  ASSERT_EQ(States(c), std::vector<AlertState>{AlertState::kFiring});
  EXPECT_EQ(c[0].alert.active_at_ms, kT0 + 45 * kSec);
  EXPECT_EQ(c[0].alert.resolved_at_ms, 0);
}

TEST(RuleEngineTest, ARuleThatGoesAwayResolvesItsAlerts) {
  RuleEngine engine;
  engine.SetRules(
      Rules("rules:\n  - {name: q, condition: 'auc < 0.7', runbook_url: y}\n"
            "  - {name: p, condition: 'auc < 0.7', for: 1h, runbook_url: y}\n"));
  EXPECT_EQ(engine.Evaluate({S("auc", 0.6)}, kT0).size(), 2u);
  engine.SetRules({});
  EXPECT_THAT(States(engine.Evaluate({S("auc", 0.6)}, kT0 + kSec)),
              ::testing::UnorderedElementsAre(AlertState::kResolved, AlertState::kInactive));
}

TEST(RuleEngineTest, ASliceThatStopsReportingCountsAsFailing) {
  RuleEngine engine;
  engine.SetRules(Rules("rules:\n  - {name: q, condition: 'auc < 0.7', runbook_url: y}\n"));
  ASSERT_EQ(engine.Evaluate({S("auc", 0.6)}, kT0).size(), 1u);
  EXPECT_EQ(States(engine.Evaluate({}, kT0 + 15 * kSec)),
            std::vector<AlertState>{AlertState::kResolved});
}

TEST(RuleEngineTest, TemplatesFillLabelsAndValueAndLeaveTheRest) {
  const Labels labels = {{"feature", "income"}, {"slice", "platform=ios"}};
  EXPECT_EQ(ExpandTemplate("{{ $labels.feature }} in {{$labels.slice}}: {{ $value }}", labels, 0.5),
            "income in platform=ios: 0.5");
  EXPECT_EQ(ExpandTemplate("{{ $labels.nope }}|{{ .Other }}|{{ unclosed", labels, 1),
            "|{{ .Other }}|{{ unclosed");
}

}  // namespace
}  // namespace driftwatch::alerting

namespace driftwatch::alerting {
namespace {

TEST(AlertCodecTest, RoundTripsAndRejectsCorruptBytes) {
  Alert a;
  a.rule = "feature_drift";
  a.labels = {{"alertname", "feature_drift"}, {"slice", "platform=ios"}, {"feature", "age"}};
  a.fingerprint = FingerprintHex(a.labels);
  a.state = AlertState::kFiring;
  a.active_at_ms = 1'796'000'000'000;
  a.fired_at_ms = a.active_at_ms + 60'000;
  a.last_held_at_ms = a.fired_at_ms + 15'000;
  a.value = 0.31;
  a.annotations = {{"runbook_url", "runbooks/feature-drift.md"}, {"summary", "PSI 0.31"}};
  const std::string bytes = EncodeAlert(a);
  absl::StatusOr<Alert> back = DecodeAlert(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rule, a.rule);
  EXPECT_EQ(back->labels, a.labels);
  EXPECT_EQ(back->annotations, a.annotations);
  EXPECT_EQ(back->fingerprint, a.fingerprint);
  EXPECT_EQ(back->state, a.state);
  EXPECT_EQ(back->active_at_ms, a.active_at_ms);
  EXPECT_EQ(back->fired_at_ms, a.fired_at_ms);
  EXPECT_EQ(back->resolved_at_ms, 0);
  EXPECT_EQ(back->last_held_at_ms, a.last_held_at_ms);
  EXPECT_EQ(back->value, a.value);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DecodeAlert(bytes.substr(0, n)).status().code(), absl::StatusCode::kDataLoss) << n;
  }
  EXPECT_FALSE(DecodeAlert(bytes + "x").ok());
}

}  // namespace
}  // namespace driftwatch::alerting
