// Rule unit tests (driftctl rules test): the test-file schema and each of
// its errors (source:line and the test case), the series syntax, and the
// runner: a wrong expectation is a failure that says what differs, `for`
// keeps an alert pending, hysteresis and keep_firing_for hold it, missing
// samples and series that run out drop it.
#include "driftwatch/alerting/rule_tests.h"

#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::alerting {
namespace {

using ::testing::HasSubstr;

constexpr char kRules[] = R"(rules:
  - name: drift
    condition: {expr: 'psi > 0.25', resolve: 0.1}
    for: 5m
    keep_firing_for: 2m
    severity: page
    labels: {team: risk}
    annotations: {summary: 'PSI {{ $value }} on {{ $labels.feature }}'}
    runbook_url: runbooks/drift.md
  - name: null_spike
    condition: 'change(null_rate) > 0.1'
    runbook_url: runbooks/null.md
  - name: score_drift
    condition: 'score_psi > 0.2'
    min_support: 100
    runbook_url: runbooks/score.md
)";

std::vector<Rule> TestRules() {
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(kRules, "rules.yaml");
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? *rules : std::vector<Rule>();
}

RuleTestReport RunTests(const std::string& yaml) {
  absl::StatusOr<RuleTestReport> report = RunRuleTests(TestRules(), yaml, "tests.yaml");
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? *report : RuleTestReport();
}

// The status of a test file that must not parse.
absl::Status Error(const std::string& yaml) {
  absl::StatusOr<RuleTestReport> report = RunRuleTests(TestRules(), yaml, "tests.yaml");
  return report.ok() ? absl::OkStatus() : report.status();
}

std::string Message(const absl::Status& st) { return std::string(st.message()); }

// One test case "t" around `body` (its input_series and alert_rule_test).
std::string Case(const std::string& body) { return "tests:\n  - name: t\n" + body; }

TEST(ExpandSeriesValuesTest, EachTokenKind) {
  using V = std::vector<std::optional<double>>;
  EXPECT_EQ(*ExpandSeriesValues("1 _ 2.5"), (V{1, std::nullopt, 2.5}));
  EXPECT_EQ(*ExpandSeriesValues("0.4x3"), (V{0.4, 0.4, 0.4}));  // three, not four
  EXPECT_EQ(*ExpandSeriesValues("1+0.5x3"), (V{1, 1.5, 2}));
  EXPECT_EQ(*ExpandSeriesValues("5-1x3"), (V{5, 4, 3}));
  EXPECT_EQ(*ExpandSeriesValues("-1-1x2 -0.5"), (V{-1, -2, -0.5}));
  EXPECT_EQ(*ExpandSeriesValues(" _x2  1e-3x1 "), (V{std::nullopt, std::nullopt, 1e-3}));
  EXPECT_EQ(*ExpandSeriesValues("1e+2+1e1x2"), (V{100, 110}));
  EXPECT_TRUE(ExpandSeriesValues("")->empty());
}

TEST(ExpandSeriesValuesTest, BadTokensAreNamed) {
  for (const char* bad :
       {"x3", "1x0", "1xa", "1x", "1+2", "abc", "1++2x3", "1+x3", "_+1x2", "0.1 2,5", "1x-2"}) {
    absl::StatusOr<std::vector<std::optional<double>>> v = ExpandSeriesValues(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(v.status()), HasSubstr("values: \"")) << bad;
  }
  EXPECT_THAT(Message(ExpandSeriesValues("0.1 2,5").status()), HasSubstr("\"2,5\""));
  EXPECT_THAT(Message(ExpandSeriesValues("1+2").status()), HasSubstr("needs a count: 1+2xN"));
  EXPECT_FALSE(ExpandSeriesValues("1x2000000").ok());  // bounded
}

TEST(RuleTestsParseTest, EachErrorNamesTheLineAndTheTestCase) {
  struct Bad {
    std::string yaml;
    std::string message;  // a substring of the error
  };
  const std::string check = "    alert_rule_test: [{eval_time: 1m, alertname: drift}]\n";
  const std::vector<Bad> cases = {
      {"tests: [", "tests.yaml:1: not YAML"},
      {"evaluation_interval: 1m\nrule_files: [x]\n" + Case(check),
       "tests.yaml:2: unknown top-level key \"rule_files\""},
      {"evaluation_interval: 1x\n" + Case(check),
       "tests.yaml:1: evaluation_interval: duration \"1x\""},
      {"evaluation_interval: 0\n" + Case(check), "evaluation_interval must be more than 0"},
      {"evaluation_interval: 1m\n", "tests.yaml:1: tests must be a list of test cases"},
      {"tests: []\n", "tests must be a list of test cases"},
      {"tests:\n  - input_series: []\n" + check, "tests.yaml:2: a test case needs a name"},
      {Case("    interval: 1m\n" + check),
       "tests.yaml:3: test \"t\": unknown key \"interval\" (expected name, input_series, "
       "alert_rule_test)"},
      {Case("    input_series: []\n"), "tests.yaml:2: test \"t\": alert_rule_test is required"},
      {Case("    input_series:\n      - {series: psi, values: '1', labels: {}}\n" + check),
       "tests.yaml:4: test \"t\": unknown key \"labels\" in an input series"},
      {Case("    input_series:\n      - {values: '1'}\n" + check),
       "tests.yaml:4: test \"t\": an input series needs `series`"},
      {Case("    input_series:\n      - {series: psi}\n" + check),
       "tests.yaml:4: test \"t\": an input series needs `values`"},
      {Case("    input_series:\n      - series: 'psi{platform=\"ios\"}'\n        values: '1'\n" +
            check),
       "tests.yaml:4: test \"t\": series \"psi{platform=\"ios\"}\": unknown label \"platform\" "
       "(model, slice, feature)"},
      {Case("    input_series:\n      - {series: 'psi{feature=~\"a.*\"}', values: '1'}\n" + check),
       "an input series names its labels with ="},
      {Case("    input_series:\n      - {series: 'psi{model=\"loan\"}', values: '1'}\n" + check),
       "model \"loan\": expected id@version"},
      {Case("    input_series:\n      - {series: 'psi{slice=\"android\"}', values: '1'}\n" + check),
       "slice \"android\": expected \"*\" or key=value"},
      {Case("    input_series:\n      - {series: 'psi{feature=\"a\",feature=\"b\"}', "
            "values: '1'}\n" +
            check),
       "label feature given twice"},
      {Case("    input_series:\n      - {series: '{feature=\"a\"}', values: '1'}\n" + check),
       "expected a signal name"},
      {Case("    input_series:\n      - {series: 'psi feature', values: '1'}\n" + check),
       "expected {labels} after psi"},
      {Case("    input_series:\n      - {series: psi, values: '1 2x'}\n" + check),
       "tests.yaml:4: test \"t\": values: \"2x\": expected a whole number of samples"},
      {Case("    input_series:\n      - {series: psi, values: [1, 2]}\n" + check),
       "values must be a single value"},
      {Case("    input_series:\n      - {series: null_rate, values: '1', baseline: low}\n" + check),
       "baseline: expected a number, got \"low\""},
      {Case("    input_series:\n      - {series: psi, values: '1'}\n"
            "      - {series: 'psi{model=\"model@v1\",slice=\"*\"}', values: '2'}\n" +
            check),
       "tests.yaml:5: test \"t\": the same signal as the series of line 4"},
      {Case("    alert_rule_test: []\n"), "alert_rule_test must be a list of checks"},
      {Case("    alert_rule_test:\n      - {eval_time: 5 min, alertname: drift}\n"),
       "tests.yaml:4: test \"t\": eval_time: duration \"5 min\""},
      {Case("    alert_rule_test:\n      - {alertname: drift}\n"), "eval_time is required"},
      {Case("    alert_rule_test:\n      - {eval_time: 1m}\n"), "alertname is required"},
      {Case("    alert_rule_test:\n      - {eval_time: 1m, alertname: drfit}\n"),
       "tests.yaml:4: test \"t\": alertname \"drfit\" is not a rule of the rules file"},
      {Case("    alert_rule_test:\n      - {eval_time: 1m, alertname: drift, exp_alert: []}\n"),
       "unknown key \"exp_alert\" in alert_rule_test"},
      {Case("    alert_rule_test:\n      - {eval_time: 1m, alertname: drift, exp_alerts: {}}\n"),
       "exp_alerts must be a list"},
      {Case("    alert_rule_test:\n      - eval_time: 1m\n        alertname: drift\n"
            "        exp_alerts:\n          - {labels: {feature: a}}\n"),
       "tests.yaml:7: test \"t\": unknown key \"labels\" in an expected alert"},
      {Case("    alert_rule_test:\n      - eval_time: 1m\n        alertname: drift\n"
            "        exp_alerts:\n          - exp_labels: [feature]\n"),
       "exp_labels must be a map"},
      {Case("    alert_rule_test:\n      - {eval_time: 1000000m, alertname: drift}\n"),
       "evaluations away"},
  };
  for (const Bad& c : cases) {
    const absl::Status st = Error(c.yaml);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(Message(st), HasSubstr(c.message)) << c.yaml;
  }
}

// The example of docs/alerting.md, on a rule of its own.
TEST(RuleTestsRunTest, APassingCase) {
  const RuleTestReport report = RunTests(R"(evaluation_interval: 1m
tests:
  - name: android income drift fires after 5m
    input_series:
      - series: 'psi{model="loan@v1",slice="platform=android",feature="income"}'
        values: '0.02x10 0.4x20'
      - series: 'psi{model="loan@v1",slice="platform=android",feature="age"}'
        values: '0.02x30'
    alert_rule_test:
      - eval_time: 15m
        alertname: drift
        exp_alerts:
          - exp_labels: {slice: platform=android, feature: income, severity: page}
            exp_annotations: {summary: 'PSI 0.4 on income'}
      - eval_time: 5m
        alertname: drift
        exp_alerts: []
)");
  ASSERT_EQ(report.cases.size(), 1u);
  EXPECT_EQ(report.cases[0].name, "android income drift fires after 5m");
  EXPECT_EQ(report.cases[0].line, 3);
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
  EXPECT_EQ(report.passed(), 1);
  EXPECT_EQ(report.failed(), 0);
}

TEST(RuleTestsRunTest, AWrongExpectationFailsSayingWhatDiffers) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: wrong feature
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x10'
    alert_rule_test:
      - eval_time: 6m
        alertname: drift
        exp_alerts:
          - exp_labels: {feature: age}
  - name: right feature
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x10'
    alert_rule_test:
      - eval_time: 6m
        alertname: drift
        exp_alerts:
          - exp_labels: {feature: income}
)");
  ASSERT_EQ(report.cases.size(), 2u);
  EXPECT_EQ(report.failed(), 1);
  EXPECT_EQ(report.passed(), 1);
  const RuleTestCaseResult& wrong = report.cases[0];
  ASSERT_FALSE(wrong.passed());
  ASSERT_EQ(wrong.failures.size(), 1u);
  const std::string& f = wrong.failures[0];
  EXPECT_THAT(f, HasSubstr("tests.yaml:7: drift at 6m: expected 1 firing alert, got 1"));
  EXPECT_THAT(f, HasSubstr("missing:    {feature=\"age\"}"));
  // The actual alert, with every label the engine set and its rule's.
  EXPECT_THAT(f, HasSubstr("unexpected: {alertname=\"drift\", feature=\"income\", "
                           "model=\"model\", model_version=\"v1\", severity=\"page\", "
                           "slice=\"*\", team=\"risk\"} value 0.4, firing since 5m"));
  EXPECT_TRUE(report.cases[1].passed());
}

TEST(RuleTestsRunTest, EveryMismatchIsReported) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: two wrong checks
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x10'
    alert_rule_test:
      - eval_time: 9m
        alertname: drift
        exp_alerts: []
      - eval_time: 1m
        alertname: drift
        exp_alerts:
          - exp_labels: {feature: income}
      - eval_time: 7m
        alertname: drift
        exp_alerts:
          - exp_labels: {feature: income}
)");
  ASSERT_EQ(report.cases.size(), 1u);
  const std::vector<std::string>& f = report.cases[0].failures;
  ASSERT_EQ(f.size(), 2u);  // file order, though evaluated in time order
  EXPECT_THAT(f[0], HasSubstr("tests.yaml:7: drift at 9m: expected 0 firing alerts, got 1"));
  EXPECT_THAT(f[1], HasSubstr("tests.yaml:10: drift at 1m: expected 1 firing alert, got 0"));
  // Pending, not firing yet: said so, with since when.
  EXPECT_THAT(f[1], HasSubstr("pending:    {alertname=\"drift\", feature=\"income\""));
  EXPECT_THAT(f[1], HasSubstr("value 0.4, since 0s"));
}

TEST(RuleTestsRunTest, PendingUntilForThenFiring) {
  const RuleTestReport report = RunTests(R"(evaluation_interval: 30s
tests:
  - name: for 5m
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.02x4 0.4x20'     # above 0.25 from 2m
    alert_rule_test:
      - {eval_time: 1m, alertname: drift, exp_alerts: []}
      - {eval_time: 419s, alertname: drift, exp_alerts: []}    # sees 6m30s: pending 4m30s
      - eval_time: 7m
        alertname: drift
        exp_alerts: [{exp_labels: {feature: income}}]
      - eval_time: 440s                                        # sees the 7m evaluation
        alertname: drift
        exp_alerts: [{exp_labels: {feature: income}}]
)");
  ASSERT_EQ(report.cases.size(), 1u);
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
}

TEST(RuleTestsRunTest, HysteresisThenKeepFiringForThenResolved) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: resolve below 0.1, 2m after
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x6 0.2x4 0.05x10'
    alert_rule_test:
      - eval_time: 9m             # 0.2: between resolve and threshold, still firing
        alertname: drift
        exp_alerts: [{exp_labels: {feature: income}}]
      - eval_time: 10m            # failing, but held at 9m: keep_firing_for 2m
        alertname: drift
        exp_alerts: [{exp_labels: {feature: income}}]
      - {eval_time: 11m, alertname: drift, exp_alerts: []}
  - name: 0.2 alone never fires
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.2x20'
    alert_rule_test:
      - {eval_time: 19m, alertname: drift, exp_alerts: []}
)");
  ASSERT_EQ(report.cases.size(), 2u);
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
  EXPECT_TRUE(report.cases[1].passed()) << report.cases[1].failures[0];
}

TEST(RuleTestsRunTest, ResolvedAlertsAreNamedWhenAFiringOneWasExpected) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: t
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x6'
    alert_rule_test:
      - eval_time: 8m
        alertname: drift
        exp_alerts: [{exp_labels: {feature: income}}]
)");
  ASSERT_EQ(report.cases.size(), 1u);
  ASSERT_EQ(report.cases[0].failures.size(), 1u);
  // The series ran out at 6m; failing from then on, keep_firing_for 2m.
  EXPECT_THAT(report.cases[0].failures[0], HasSubstr("resolved:   {alertname=\"drift\""));
  EXPECT_THAT(report.cases[0].failures[0], HasSubstr("} at 7m"));
}

TEST(RuleTestsRunTest, AMissingSampleDropsAPendingAlert) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: a gap restarts the for wait
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x4 _ 0.4x10'
    alert_rule_test:
      - {eval_time: 7m, alertname: drift, exp_alerts: []}      # would fire at 5m without the gap
      - eval_time: 10m                                         # pending again from 5m
        alertname: drift
        exp_alerts: [{exp_labels: {feature: income}}]
)");
  ASSERT_EQ(report.cases.size(), 1u);
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
}

TEST(RuleTestsRunTest, MatchingIsOneToOneAndOrderFree) {
  // Two firing alerts, ios and android, both on income; a test case of
  // `name` expecting `expected` (exp_alerts entries) at 5m.
  auto test_case = [](const std::string& name, const std::string& expected) {
    return "  - name: " + name + R"(
    input_series:
      - series: 'psi{slice="platform=ios",feature="income"}'
        values: '0.4x10'
      - series: 'psi{slice="platform=android",feature="income"}'
        values: '0.4x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: drift
        exp_alerts:
)" + expected;
  };
  const RuleTestReport report =
      RunTests("tests:\n" +
               test_case("both, ios named",
                         "          - exp_labels: {feature: income}\n"
                         "          - exp_labels: {slice: platform=ios}\n") +
               test_case("both, android named",
                         "          - exp_labels: {feature: income}\n"
                         "          - exp_labels: {slice: platform=android}\n") +
               test_case("one expected of two", "          - exp_labels: {feature: income}\n") +
               test_case("the same alert twice",
                         "          - exp_labels: {slice: platform=ios}\n"
                         "          - exp_labels: {slice: platform=ios}\n"));
  ASSERT_EQ(report.cases.size(), 4u);
  // {feature: income} fits both, and whichever it takes first, one of the
  // two cases needs it to give that one up.
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
  EXPECT_TRUE(report.cases[1].passed()) << report.cases[1].failures[0];
  ASSERT_FALSE(report.cases[2].passed());
  EXPECT_THAT(report.cases[2].failures[0], HasSubstr("expected 1 firing alert, got 2"));
  EXPECT_THAT(report.cases[2].failures[0], HasSubstr("unexpected: "));
  EXPECT_THAT(report.cases[2].failures[0], HasSubstr("matched:    "));
  ASSERT_FALSE(report.cases[3].passed());
  EXPECT_THAT(report.cases[3].failures[0], HasSubstr("missing:    {slice=\"platform=ios\"}"));
  EXPECT_THAT(report.cases[3].failures[0],
              HasSubstr("unexpected: {alertname=\"drift\", feature=\"income\", model=\"model\", "
                        "model_version=\"v1\", severity=\"page\", slice=\"platform=android\""));
}

TEST(RuleTestsRunTest, AnnotationsAreComparedExactlyWhenGiven) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: t
    input_series:
      - series: 'psi{feature="income"}'
        values: '0.4x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: drift
        exp_alerts:
          - exp_labels: {feature: income}
            exp_annotations: {summary: 'PSI 0.4 on income', runbook_url: runbooks/drift.md}
      - eval_time: 6m
        alertname: drift
        exp_alerts:
          - exp_labels: {feature: income}
            exp_annotations: {summary: 'PSI 0.4'}
)");
  ASSERT_EQ(report.cases.size(), 1u);
  ASSERT_EQ(report.cases[0].failures.size(), 1u);
  const std::string& f = report.cases[0].failures[0];
  EXPECT_THAT(f, HasSubstr("tests.yaml:12: drift at 6m"));
  EXPECT_THAT(f, HasSubstr("missing:    {feature=\"income\"} annotations {summary=\"PSI 0.4\"}"));
  EXPECT_THAT(f, HasSubstr("annotation summary of {alertname=\"drift\""));
  EXPECT_THAT(f, HasSubstr(": expected \"PSI 0.4\", got \"PSI 0.4 on income\""));
}

TEST(RuleTestsRunTest, BaselinesFeedChangeAndSupportGatesScoreDrift) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: null rate up by 0.2 from its baseline
    input_series:
      - series: 'null_rate{model="loan@v2",slice="platform=ios",feature="zip"}'
        values: '0.05 0.25'
        baseline: 0.05
      - series: 'null_rate{model="loan@v2",slice="platform=ios",feature="age"}'
        values: '0.25 0.25'                 # no baseline: no change()
    alert_rule_test:
      - {eval_time: 0m, alertname: null_spike, exp_alerts: []}
      - eval_time: 1m
        alertname: null_spike
        exp_alerts:
          - exp_labels: {model: loan, model_version: v2, slice: platform=ios, feature: zip,
                         severity: warning}
  - name: score drift needs a volume of 100
    input_series:
      - {series: score_psi, values: '0.3x4'}
      - {series: events, values: '50 50 150 150'}
    alert_rule_test:
      - {eval_time: 1m, alertname: score_drift, exp_alerts: []}
      - eval_time: 2m
        alertname: score_drift
        exp_alerts: [{exp_labels: {slice: '*', model: model}}]
)");
  ASSERT_EQ(report.cases.size(), 2u);
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
  EXPECT_TRUE(report.cases[1].passed()) << report.cases[1].failures[0];
}

TEST(RuleTestsRunTest, EachCaseStartsFromAFreshEngine) {
  const RuleTestReport report = RunTests(R"(tests:
  - name: first
    input_series: [{series: 'psi{feature="a"}', values: '0.4x6'}]
    alert_rule_test: [{eval_time: 5m, alertname: drift, exp_alerts: [{exp_labels: {feature: a}}]}]
  - name: second, no input
    alert_rule_test: [{eval_time: 5m, alertname: drift}]
)");
  ASSERT_EQ(report.cases.size(), 2u);
  EXPECT_TRUE(report.cases[0].passed()) << report.cases[0].failures[0];
  EXPECT_TRUE(report.cases[1].passed()) << report.cases[1].failures[0];
}

}  // namespace
}  // namespace driftwatch::alerting
