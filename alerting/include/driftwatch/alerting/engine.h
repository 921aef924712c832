// The rules engine: each evaluation's signals in, alert state changes out.
//
// A rule applies to each (model, slice) its selectors match; its
// conditions are joined on that model and slice. Where a condition on a
// per-feature signal leaves the feature free, the rule is evaluated per
// feature and each feature is its own alert. An alert is one rule x label
// set (`alertname`, `model`, `model_version`, `slice`, `feature` where
// free, `severity`, the rule's labels), identified by its fingerprint, and
// moves inactive -> pending -> firing -> resolved:
//   - pending when its condition first holds; firing once it has held for
//     `for` (at once when `for` is 0);
//   - while pending or firing, thresholds with a `resolve` value hold
//     until the value is back past that value (hysteresis);
//   - a pending alert whose condition fails is dropped (inactive); a firing
//     one resolves once its condition has failed for `keep_firing_for`;
//   - a (model, slice) whose support signal is below `min_support`, or that
//     produced no signals at all, counts as failing.
// Resolved alerts are kept for `resolved_retention_ms`, then forgotten.
// Pure: the caller passes the evaluation time (processing time) and
// persists the changes; Restore puts saved alerts back. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/alerting/labels.h"
#include "driftwatch/alerting/rules.h"
#include "driftwatch/detectors/signal.h"

namespace driftwatch::alerting {

enum class AlertState { kInactive = 0, kPending = 1, kFiring = 2, kResolved = 3 };
std::string_view AlertStateName(AlertState state);

struct Alert {
  std::string rule;
  Labels labels;
  std::string fingerprint;  // FingerprintHex(labels)
  AlertState state = AlertState::kInactive;
  int64_t active_at_ms = 0;     // when the condition first held (pending)
  int64_t fired_at_ms = 0;      // 0 until firing
  int64_t resolved_at_ms = 0;   // 0 until resolved
  int64_t last_held_at_ms = 0;  // the latest evaluation where the condition held
  double value = 0;             // of the rule's first threshold, at the latest evaluation
  std::map<std::string, std::string> annotations;  // templated; runbook_url among them
};

// One alert's change at an evaluation (pending, firing, resolved, or
// inactive: a pending alert dropped).
struct AlertChange {
  Alert alert;
  AlertState from = AlertState::kInactive;
};

struct EngineOptions {
  int64_t resolved_retention_ms = 24 * 3'600'000LL;
};

class RuleEngine {
 public:
  explicit RuleEngine(EngineOptions options = {}) : options_(options) {}

  // Replaces the rules. Alerts of rules that are gone are dropped at the
  // next evaluation (returned as changes to inactive); the others keep their
  // state.
  void SetRules(std::vector<Rule> rules);
  const std::vector<Rule>& rules() const { return rules_; }

  // Puts back alerts saved from earlier changes (after a restart).
  void Restore(std::vector<Alert> alerts);

  // One evaluation of every rule over `signals` (one evaluation's worth:
  // Signal.model is "id@version", Signal.slice "*" or "key=value").
  std::vector<AlertChange> Evaluate(const std::vector<detectors::Signal>& signals, int64_t now_ms);

  // Pending, firing and retained resolved alerts, by fingerprint.
  const std::map<std::string, Alert>& alerts() const { return alerts_; }

 private:
  EngineOptions options_;
  std::vector<Rule> rules_;
  std::map<std::string, Alert> alerts_;  // by fingerprint
};

// An alert as bytes, for the alert store ("DWAL" v1: docs/alerting.md).
// DecodeAlert: DATA_LOSS naming what is wrong.
std::string EncodeAlert(const Alert& alert);
absl::StatusOr<Alert> DecodeAlert(std::string_view bytes);

// `{{ $labels.name }}` and `{{ $value }}` filled in (unknown labels: "").
std::string ExpandTemplate(std::string_view text, const Labels& labels, double value);

}  // namespace driftwatch::alerting
