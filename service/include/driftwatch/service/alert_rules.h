// The service's rules engine: the rules of `rules_file`, evaluated on each
// of the evaluator's evaluations (the dw-evaluator thread), and the alerts
// that Alerts.ListAlerts answers (docs/alerting.md).
//
// Issue 10 in progress: alert state lives in memory only here (a restart
// starts from no alerts), the file is read at start, and PutRule /
// DeleteRule, silences and WatchAlerts are not wired yet.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/alerting/engine.h"
#include "driftwatch/service/evaluator.h"

namespace driftwatch::service {

class AlertRules {
 public:
  // Reads and validates a rules file; INVALID_ARGUMENT naming file, line
  // and rule, NOT_FOUND when it cannot be read. The rules in force stay as
  // they were on an error.
  absl::Status LoadFile(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_);
  // One rules evaluation over `evaluation`'s signals at `now_ms`
  // (processing time); logs each alert state change.
  void Evaluate(const Evaluation& evaluation, int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);
  // The alerts in `states` (empty: pending and firing), by fingerprint.
  std::vector<alerting::Alert> List(const std::vector<alerting::AlertState>& states) const
      ABSL_LOCKS_EXCLUDED(mu_);
  size_t rule_count() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t evaluations() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  alerting::RuleEngine engine_ ABSL_GUARDED_BY(mu_);
  uint64_t last_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evaluations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace driftwatch::service
