// The service's rules engine: the rules of `rules_file`, evaluated on each
// of the evaluator's evaluations (the dw-evaluator thread), and the alerts
// that Alerts.ListAlerts answers (docs/alerting.md).
//
// Alert state is saved to the AlertStore after every evaluation that
// changed it and restored at start, so a restart neither forgets a pending
// `for` nor fires a firing alert again. Issue 10 in progress: the file is
// read at start only, and PutRule / DeleteRule, silences and WatchAlerts
// are not wired yet.
// Thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/alerting/engine.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/storage/alert_store.h"

namespace driftwatch::service {

class AlertRules {
 public:
  // `store` (may be null: nothing persists) must outlive this.
  explicit AlertRules(storage::AlertStore* store = nullptr) : store_(store) {}
  // Puts back the saved alerts. Call once, before the first Evaluate.
  absl::Status Restore() ABSL_LOCKS_EXCLUDED(mu_);
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
  storage::AlertStore* const store_;
  mutable absl::Mutex mu_;
  // Fingerprints with a saved row.
  std::set<std::string> persisted_ ABSL_GUARDED_BY(mu_);
  alerting::RuleEngine engine_ ABSL_GUARDED_BY(mu_);
  uint64_t last_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evaluations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace driftwatch::service
