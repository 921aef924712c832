// Unit tests for alerting rules (`driftctl rules test`, docs/alerting.md
// "Testing rules"), in the spirit of `promtool test rules`: a test file
// gives synthetic signal series, one sample per evaluation, and the firing
// alerts expected of a rule at chosen times; the rules engine runs over
// them on a simulated clock. Pure (text in, a report out; no I/O, no
// clock), so safe to call from any thread.
//
//   evaluation_interval: 1m
//   tests:
//     - name: income drift fires after 15m
//       input_series:
//         - series: 'psi{model="loan@v1",slice="platform=android",feature="income"}'
//           values: '0.02x10 0.4x20'
//           baseline: 0.01                        # optional
//       alert_rule_test:
//         - eval_time: 25m
//           alertname: feature_drift
//           exp_alerts:
//             - exp_labels: {feature: income}
//               exp_annotations: {summary: '...'}  # optional
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/alerting/rules.h"

namespace driftwatch::alerting {

// The outcome of one test case.
struct RuleTestCaseResult {
  std::string name;
  int line = 0;  // of the test case in its file (1-based)
  // One entry per failed alert_rule_test (its expected and actual alerts,
  // and what did not match), possibly several lines each. Empty: passed.
  std::vector<std::string> failures;

  bool passed() const { return failures.empty(); }
};

struct RuleTestReport {
  std::vector<RuleTestCaseResult> cases;  // in file order

  int passed() const;
  int failed() const;
};

// Runs every test case of `tests_yaml` against `rules`, each on a fresh
// engine (`source` names the file in errors). A test file that does not
// parse is INVALID_ARGUMENT naming source:line and the test case: unknown
// keys, a bad series selector or values, a bad duration, an alertname that
// is none of `rules`. A test whose expectations are not met is not an
// error: it is a failed case in the report.
absl::StatusOr<RuleTestReport> RunRuleTests(const std::vector<Rule>& rules,
                                            std::string_view tests_yaml, std::string_view source);

// The samples a `values` string stands for, one per evaluation (nullopt:
// none at that evaluation): `0.4`, `_`, `0.4x3` (three samples, not four
// as in promtool), `1+0.5x3` (1, 1.5, 2), `5-1x3`, `_x3`.
// INVALID_ARGUMENT naming the token that is wrong.
absl::StatusOr<std::vector<std::optional<double>>> ExpandSeriesValues(std::string_view values);

}  // namespace driftwatch::alerting
