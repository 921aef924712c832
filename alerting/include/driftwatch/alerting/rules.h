// Alerting rules: what a rules file (or Alerts.PutRule) says, parsed and
// validated. One schema for both; errors name the rule and, for a file,
// the line (docs/alerting.md). Pure: text in, rules out.
//
//   rules:
//     - name: feature_drift                 # the alert's `alertname`
//       model: "*"                          # or "loan", or "loan@v3"
//       slices: ['platform=~"android|ios"']  # default: every slice and "*"
//       condition:                          # a threshold, or all / any / at_least
//         all:
//           - 'psi > 0.25'                  # any feature: one alert per feature
//           - expr: 'score_psi > 0.2'
//             resolve: 0.1                  # hysteresis: holds while > 0.1 once active
//       for: 5m
//       keep_firing_for: 10m
//       min_support: 500                    # events in the evaluator's window
//       severity: page
//       labels: {team: risk}
//       annotations: {summary: 'PSI {{ $value }} on {{ $labels.feature }}'}
//       runbook_url: runbooks/feature-drift.md   # required
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/sequential.h"

namespace driftwatch::alerting {

// A label matcher as Prometheus writes them: name="v", name!="v",
// name=~"regex", name!~"regex" (regexes match the whole value).
struct Matcher {
  enum class Op { kEq, kNe, kRe, kNre };
  std::string name;
  Op op = Op::kEq;
  std::string value;
  std::shared_ptr<const std::regex> regex;  // kRe, kNre

  bool Matches(std::string_view v) const;
  std::string ToString() const;
};

// Which quantity of a signal a condition reads: the value, the change from
// the signal's baseline value (`change(null_rate)`: value - baseline), or
// the ratio to it (`ratio(volume)`: value / baseline). Signals without a
// baseline value (NaN) give no change or ratio: the condition fails.
enum class Transform { kValue, kChange, kRatio };

// The signal a condition reads: `signal{feature=~"income|age"}`, possibly
// inside change(...) or ratio(...). Only `feature` may be matched; a
// condition on a per-feature signal without a feature equality leaves the
// feature free.
struct Series {
  std::string signal;
  std::vector<Matcher> feature;  // matchers on the feature name
  Transform transform = Transform::kValue;

  std::string ToString() const;
};

// `series op threshold`, e.g. psi{feature=~"income|age"} > 0.25.
struct Threshold : Series {
  enum class Op { kGt, kGe, kLt, kLe };
  Op op = Op::kGt;
  double value = 0;
  // Hysteresis: once the alert is pending or firing the condition holds
  // while the value is still beyond this (op > / >=: above it).
  std::optional<double> resolve;

  bool Holds(double v, bool active) const;
  std::string ToString() const;
};

// A sequential detector (detectors/sequential.h) over the series of one
// signal, fed one point per evaluation: EWMA, CUSUM or Page-Hinkley with
// the parameters `driftctl changepoint` takes. With `target_arl0` the
// threshold (EWMA L, CUSUM h, Page-Hinkley threshold) is calibrated on the
// series' own first points (its warm-up, or min_instances for
// Page-Hinkley) to that in-control average run length. The condition holds
// at the evaluation whose point alarms, and for `hold` after it.
struct ChangePoint : Series {
  enum class Method { kEwma, kCusum, kPageHinkley };
  Method method = Method::kCusum;
  detectors::EwmaParams ewma;
  detectors::CusumParams cusum;
  detectors::PageHinkleyParams page_hinkley;
  std::optional<double> target_arl0;
  int64_t hold_ms = 0;

  std::string ToString() const;
};

struct Condition {
  enum class Kind { kThreshold, kAll, kAny, kAtLeast, kChangePoint };
  Kind kind = Kind::kThreshold;
  Threshold threshold;              // kThreshold
  ChangePoint change_point;         // kChangePoint
  int at_least = 0;                 // kAtLeast: how many children must hold
  std::vector<Condition> children;  // kAll, kAny, kAtLeast
  int line = 0;                     // in the rules file (1-based; 0: not from a file)
};

struct Rule {
  std::string name;
  std::string model = "*";      // "*", "<id>" (any version) or "<id>@<version>"
  std::vector<Matcher> slices;  // on slice key=value; empty: every slice and "*"
  bool population = true;       // whether "*" (the whole model) is evaluated
  Condition condition;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  // Of `support_signal` in the (model, slice): by default `events`, the
  // events in the evaluator's window (`labelled` counts labels instead).
  double min_support = 0;
  std::string support_signal = "events";
  std::string severity = "warning";
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string runbook_url;
  // Benjamini-Hochberg: the rule's thresholds on p-value signals (`ks_p <
  // x`, `chi2_p < x`) hold where BH at this false-discovery rate rejects,
  // over every (model, slice, feature) the rule sees at one evaluation; the
  // literal x is then ignored.
  std::optional<double> fdr_q;
  int line = 0;
  std::string source;  // the file, or "api"
  std::string yaml;    // the rule's own YAML map, re-emitted (Alerts.ListRules)
};

// Alertmanager's inhibition: while an alert matching `source` fires, the
// alerts matching `target` with the same values of the `equal` labels are
// marked inhibited (an alert never inhibits itself).
struct InhibitRule {
  std::vector<Matcher> source;
  std::vector<Matcher> target;
  std::vector<std::string> equal;
  int line = 0;
};

// A rules document: `rules:` and `inhibit_rules:`.
struct RulesFile {
  std::vector<Rule> rules;
  std::vector<InhibitRule> inhibit_rules;
};

// Parses a rules document (`source` names it in errors, e.g. the file
// path). INVALID_ARGUMENT naming the rule and line for anything wrong:
// unknown keys, a missing runbook_url, a bad expression, duplicate names.
absl::StatusOr<RulesFile> ParseRulesFile(std::string_view yaml, std::string_view source);
// Its rules only.
absl::StatusOr<std::vector<Rule>> ParseRules(std::string_view yaml, std::string_view source);
// One rule: the YAML map of one entry of `rules:` (Alerts.PutRule).
absl::StatusOr<Rule> ParseRule(std::string_view yaml, std::string_view source);

// Whether a signal is a p-value (its name ends in _p: ks_p, chi2_p).
bool IsPValue(std::string_view signal);

// Whether every matcher matches `labels` (a missing label is "").
bool MatchesAll(const std::vector<Matcher>& matchers, const std::map<std::string, std::string>& labels);

// One condition expression: `signal{feature=~"a|b"} > 0.25`,
// `change(null_rate) > 0.1`, `ratio(volume) < 0.5`.
absl::StatusOr<Threshold> ParseThreshold(std::string_view expr);
// A series without a comparison: `psi{feature="income"}`, `ratio(volume)`.
absl::StatusOr<Series> ParseSeries(std::string_view expr);
// One matcher: `platform=~"android|ios"` (quotes optional for =, !=).
absl::StatusOr<Matcher> ParseMatcher(std::string_view text);
// "90s", "5m", "2h", "1d", "0": milliseconds.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

}  // namespace driftwatch::alerting
