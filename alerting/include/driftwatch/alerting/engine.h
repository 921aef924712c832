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
#include <optional>
#include <string>
#include <string_view>
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
  // Marks, not states (not saved; recomputed when listed): muted by an
  // active silence (its ids) or by a firing alert of an inhibit rule.
  std::vector<std::string> silenced_by;
  bool inhibited = false;
};

// A silence: alerts whose labels match every matcher are marked silenced
// between starts_at and ends_at (their state still moves).
struct Silence {
  std::string id;
  std::vector<Matcher> matchers;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  std::string created_by;
  std::string comment;

  bool ActiveAt(int64_t now_ms) const { return starts_at_ms <= now_ms && now_ms < ends_at_ms; }
  // "active", "pending" (not started) or "expired".
  std::string_view StateAt(int64_t now_ms) const;
};

// INVALID_ARGUMENT unless the silence has matchers, at least one of which
// does not match the empty value (a silence of everything is refused, as
// Alertmanager does), and ends after it starts.
absl::Status ValidateSilence(const Silence& silence);

// Sets silenced_by and inhibited on each of `alerts`: silenced by every
// active silence matching its labels; inhibited while a firing alert of
// `all` (not itself) matches an inhibit rule's source matchers, with the
// same values of its `equal` labels, and the alert its target matchers.
void MarkSuppressed(std::vector<Alert>* alerts, const std::map<std::string, Alert>& all,
                    const std::vector<Silence>& silences,
                    const std::vector<InhibitRule>& inhibit_rules, int64_t now_ms);

// One alert's change at an evaluation (pending, firing, resolved, or
// inactive: a pending alert dropped).
struct AlertChange {
  Alert alert;
  AlertState from = AlertState::kInactive;
};

struct EngineOptions {
  int64_t resolved_retention_ms = 24 * 3'600'000LL;
  // target_arl0 calibrations (a simulation each, ~10-100 ms) run at most
  // this many per evaluation; a series waiting for its turn keeps its points.
  int max_calibrations_per_evaluation = 8;
  int calibration_runs = 100;  // simulated in-control streams per calibration
  uint64_t calibration_seed = 42;
  // A change-point series that has had no point for this long is forgotten.
  int64_t detector_idle_ms = 24 * 3'600'000LL;
};

// A change-point condition's detector on one (model, slice, feature).
struct DetectorInfo {
  std::string rule;
  std::string model, slice, feature;
  std::string series;       // the condition, as written
  bool calibrating = false;  // target_arl0: still collecting its calibration points
  double threshold = 0;      // in force (calibrated or given)
  double calibrated_arl0 = 0;  // the calibration's estimate; 0 when not calibrated
  int64_t points = 0;        // fed since it was created
  int64_t last_alarm_ms = 0;
  std::string error;         // why calibration failed (the given threshold is used)
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

  // The change-point detectors, for diagnostics and tests.
  std::vector<DetectorInfo> detectors() const;

 private:
  struct Slot {
    DetectorInfo info;
    std::optional<detectors::Ewma> ewma;
    std::optional<detectors::Cusum> cusum;
    std::optional<detectors::PageHinkley> page_hinkley;
    std::vector<double> calibration_points;  // target_arl0, before calibration
    int64_t last_point_ms = 0;
  };
  // Feeds one point; true when it alarms.
  bool Feed(const ChangePoint& cp, Slot& slot, double x, int* calibrations_left);

  EngineOptions options_;
  std::vector<Rule> rules_;
  std::map<std::string, Alert> alerts_;  // by fingerprint
  std::map<std::string, Slot> detectors_;  // by rule, condition, model, slice, feature
};

// An alert as bytes, for the alert store ("DWAL" v1: docs/alerting.md).
// DecodeAlert: DATA_LOSS naming what is wrong.
std::string EncodeAlert(const Alert& alert);
absl::StatusOr<Alert> DecodeAlert(std::string_view bytes);

// `{{ $labels.name }}` and `{{ $value }}` filled in (unknown labels: "").
std::string ExpandTemplate(std::string_view text, const Labels& labels, double value);

}  // namespace driftwatch::alerting
