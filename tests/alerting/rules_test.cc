// Alert fingerprints (Prometheus' vectors), the rules schema and its
// errors: each names the source, the line and the rule.
#include "driftwatch/alerting/rules.h"

#include <string>

#include "driftwatch/alerting/labels.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::alerting {
namespace {

using ::testing::HasSubstr;

TEST(FingerprintTest, MatchesPrometheusLabelSetFingerprint) {
  // prometheus/common model: the empty set is the FNV-1a offset basis, and
  // signature_test.go's vector.
  EXPECT_EQ(Fingerprint({}), 14695981039346656037ULL);
  EXPECT_EQ(FingerprintHex({}), "cbf29ce484222325");
  EXPECT_EQ(Fingerprint({{"name", "garland, briggs"}, {"fear", "love is not enough"}}),
            5799056148416392346ULL);
  // One of ours (python3 FNV-1a over sorted name 0xff value 0xff).
  EXPECT_EQ(FingerprintHex(
                {{"alertname", "feature_drift"}, {"model", "loan"}, {"slice", "platform=android"}}),
            "9717731a185d4d5c");
  EXPECT_NE(FingerprintHex({{"a", "bc"}}), FingerprintHex({{"ab", "c"}}));
}

constexpr char kRules[] = R"(rules:
  - name: feature_drift
    model: "*"
    slices: ['platform=~"android|ios"', 'country!="ZZ"']
    condition:
      all:
        - 'psi{feature=~"income|age"} > 0.25'
        - expr: 'score_psi >= 0.2'
          resolve: 0.1
        - at_least: 1
          of: ['estimated_auc < 0.7', 'auc <= 0.7']
    for: 5m
    keep_firing_for: 90s
    min_support: 500
    severity: page
    labels: {team: risk}
    annotations: {summary: 'PSI {{ $value }} on {{ $labels.feature }}'}
    runbook_url: runbooks/feature-drift.md
  - name: volume_drop
    condition: 'volume < 10'
    runbook_url: runbooks/volume-drop.md
)";

TEST(RulesTest, ParsesEveryField) {
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(kRules, "rules.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 2u);
  const Rule& r = (*rules)[0];
  EXPECT_EQ(r.name, "feature_drift");
  EXPECT_EQ(r.line, 2);
  ASSERT_EQ(r.slices.size(), 2u);
  EXPECT_TRUE(r.slices[0].Matches("ios"));
  EXPECT_FALSE(r.slices[0].Matches("iosx"));  // regexes match the whole value
  EXPECT_TRUE(r.slices[1].Matches("DE"));
  EXPECT_FALSE(r.population);
  ASSERT_EQ(r.condition.kind, Condition::Kind::kAll);
  ASSERT_EQ(r.condition.children.size(), 3u);
  const Threshold& psi = r.condition.children[0].threshold;
  EXPECT_EQ(psi.signal, "psi");
  EXPECT_EQ(psi.op, Threshold::Op::kGt);
  EXPECT_DOUBLE_EQ(psi.value, 0.25);
  ASSERT_EQ(psi.feature.size(), 1u);
  EXPECT_TRUE(psi.feature[0].Matches("age"));
  EXPECT_EQ(r.condition.children[0].line, 7);
  const Threshold& score = r.condition.children[1].threshold;
  EXPECT_EQ(score.op, Threshold::Op::kGe);
  EXPECT_EQ(score.resolve, 0.1);
  EXPECT_TRUE(score.Holds(0.15, /*active=*/true));
  EXPECT_FALSE(score.Holds(0.15, /*active=*/false));
  EXPECT_FALSE(score.Holds(0.1, /*active=*/true));
  EXPECT_EQ(r.condition.children[2].kind, Condition::Kind::kAtLeast);
  EXPECT_EQ(r.condition.children[2].at_least, 1);
  EXPECT_EQ(r.for_ms, 300'000);
  EXPECT_EQ(r.keep_firing_for_ms, 90'000);
  EXPECT_DOUBLE_EQ(r.min_support, 500);
  EXPECT_EQ(r.severity, "page");
  EXPECT_EQ(r.labels.at("team"), "risk");
  EXPECT_EQ(r.runbook_url, "runbooks/feature-drift.md");
  const Rule& v = (*rules)[1];
  EXPECT_EQ(v.model, "*");
  EXPECT_TRUE(v.population);
  EXPECT_EQ(v.severity, "warning");
  EXPECT_EQ(v.condition.threshold.op, Threshold::Op::kLt);
}

void ExpectError(const std::string& yaml, const std::string& a, const std::string& b = "") {
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(yaml, "deploy/rules.yaml");
  ASSERT_FALSE(rules.ok()) << yaml;
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rules.status().message()), HasSubstr(a));
  if (!b.empty()) {
    EXPECT_THAT(std::string(rules.status().message()), HasSubstr(b));
  }
}

TEST(RulesTest, ErrorsNameTheSourceLineAndRule) {
  ExpectError("rules:\n  - name: no_runbook\n    condition: 'psi > 0.2'\n",
              "deploy/rules.yaml:2: rule \"no_runbook\"", "runbook_url is required");
  ExpectError("rules:\n  - name: r\n    condition: 'psi > 0.2'\n    runbook_url: x\n    fro: 5m\n",
              "deploy/rules.yaml:5: rule \"r\"", "unknown key \"fro\"");
  ExpectError("rules:\n  - name: r\n    condition: 'psi >> 0.2'\n    runbook_url: x\n",
              "deploy/rules.yaml:3", "expected a finite number");
  ExpectError("rules:\n  - name: r\n    condition: 'psi{slice=\"a\"} > 1'\n    runbook_url: x\n",
              "only the feature can be matched");
  ExpectError("rules:\n  - name: r\n    condition: 'psi{feature=~\"(\"} > 1'\n    runbook_url: x\n",
              "bad regex");
  ExpectError(
      "rules:\n  - {name: r, condition: 'psi > 1', runbook_url: x}\n"
      "  - {name: r, condition: 'psi > 2', runbook_url: y}\n",
      "deploy/rules.yaml:3: rule \"r\"", "already defined");
  ExpectError(
      "rules:\n  - name: r\n    condition: {expr: 'psi > 0.25', resolve: 0.3}\n"
      "    runbook_url: x\n",
      "other side of the threshold");
  ExpectError(
      "rules:\n  - name: r\n    condition: {at_least: 3, of: ['psi > 1', 'js > 1']}\n"
      "    runbook_url: x\n",
      "can never hold");
  ExpectError(
      "rules:\n  - name: r\n    condition: 'psi > 1'\n    runbook_url: x\n"
      "    labels: {slice: a}\n",
      "label \"slice\" is set by driftwatch");
  ExpectError("rules:\n  - name: r\n    condition: 'psi > 1'\n    runbook_url: x\n    for: 5x\n",
              "for: duration \"5x\"");
  ExpectError("rules:\n  - name: has space\n    condition: 'psi > 1'\n    runbook_url: x\n",
              "letters, digits and _");
  ExpectError("rules:\n  - name: r\n    runbook_url: x\n", "condition is required");
  ExpectError("alerts: []\n", "deploy/rules.yaml:1", "unknown top-level key");
  ExpectError("rules: [\n", "deploy/rules.yaml:", "not YAML");
}

TEST(RulesTest, EmptyDocumentsHaveNoRules) {
  for (const char* yaml : {"", "rules:\n", "rules: []\n"}) {
    absl::StatusOr<std::vector<Rule>> rules = ParseRules(yaml, "x");
    ASSERT_TRUE(rules.ok()) << rules.status();
    EXPECT_TRUE(rules->empty());
  }
}

TEST(RulesTest, DurationsAndMatchers) {
  EXPECT_EQ(*ParseDurationMs("0"), 0);
  EXPECT_EQ(*ParseDurationMs("250ms"), 250);
  EXPECT_EQ(*ParseDurationMs("15s"), 15'000);
  EXPECT_EQ(*ParseDurationMs("2h"), 7'200'000);
  EXPECT_EQ(*ParseDurationMs("7d"), 604'800'000);
  for (const char* bad : {"", "m", "-5m", "5", "5 m", "1.5h"}) {
    EXPECT_FALSE(ParseDurationMs(bad).ok()) << bad;
  }
  absl::StatusOr<Matcher> m = ParseMatcher("app_version!~'7\\.3\\..*'");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->op, Matcher::Op::kNre);
  EXPECT_FALSE(m->Matches("7.3.1"));
  EXPECT_TRUE(m->Matches("7.4.0"));
  ASSERT_TRUE(ParseMatcher("platform=android").ok());
  EXPECT_TRUE(ParseMatcher("platform=android")->Matches("android"));
  EXPECT_FALSE(ParseMatcher("=x").ok());
  EXPECT_FALSE(ParseMatcher("platform~x").ok());
}

}  // namespace
}  // namespace driftwatch::alerting
