// The service's rules engine (docs/alerting.md): the rules of `rules_file`
// (re-read on SIGHUP) and those put through Alerts.PutRule (saved in the
// database, the same schema), evaluated on each of the evaluator's
// evaluations (the dw-evaluator thread); the alerts that Alerts.ListAlerts
// and WatchAlerts answer, marked silenced and inhibited; and silences.
//
// Alert state is saved to the AlertStore after every evaluation that
// moved it and restored at start, so a restart neither forgets a pending
// `for` nor fires a firing alert again.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "driftwatch/alerting/engine.h"
#include "driftwatch/alerting/notify.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/storage/alert_store.h"

namespace driftwatch::service {

struct AlertRulesOptions {
  int64_t resolved_retention_ms = 24 * 3'600'000LL;  // alerts.resolved_retention
  size_t watch_backlog = 10'000;  // state changes kept for watchers that fall behind
};

// What /metrics reports of the rules engine.
struct AlertRulesStats {
  // Alerts by (state, rule, severity).
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> alerts;
  uint64_t evaluations = 0;
  uint64_t evaluation_failures = 0;  // saving state failed
  uint64_t rule_load_errors = 0;     // rules files refused (at a reload)
  double last_evaluation_seconds = 0;
  size_t rules = 0;
  size_t active_silences = 0;
};

// One state change, for watchers; seq increases by one per change.
struct AlertEvent {
  uint64_t seq = 0;
  alerting::Alert alert;
};

class AlertRules {
 public:
  // `store` (may be null: nothing persists) and `clock` must outlive this.
  AlertRules(storage::AlertStore* store, const base::Clock* clock, AlertRulesOptions options = {});

  // Notifications (issue 11): each evaluation's changes go through a
  // dispatcher on `config` (which must outlive this); its notifications are
  // saved to the outbox with the alerts, then `on_outbox` runs. Call before
  // Start.
  void AttachNotifications(const alerting::NotificationConfig* config,
                           std::function<void()> on_outbox) ABSL_LOCKS_EXCLUDED(mu_);

  // Reads `rules_file` (empty: none), the rules put through the API,
  // silences and saved alerts. Call once, before the first Evaluate. A bad
  // rules file fails the start (INVALID_ARGUMENT naming file, line, rule).
  absl::Status Start(const std::string& rules_file) ABSL_LOCKS_EXCLUDED(mu_);
  // Re-reads the rules file (SIGHUP). On an error the rules in force stay
  // as they were, the error is counted and returned.
  absl::Status ReloadFile() ABSL_LOCKS_EXCLUDED(mu_);

  // One rule in the rules file's schema; saved, then in force at the next
  // evaluation. INVALID_ARGUMENT for a bad rule, FAILED_PRECONDITION when
  // the rules file defines that name.
  absl::StatusOr<alerting::Rule> PutRule(const std::string& yaml) ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND when the API holds no such rule; FAILED_PRECONDITION for a
  // rule of the rules file.
  absl::Status DeleteRule(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // Every rule in force: the file's, then the API's.
  std::vector<alerting::Rule> Rules() const ABSL_LOCKS_EXCLUDED(mu_);

  // A new silence (its id is assigned; starts_at 0: now). INVALID_ARGUMENT
  // for bad matchers or times.
  absl::StatusOr<alerting::Silence> CreateSilence(alerting::Silence silence)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends a silence now. NOT_FOUND for an unknown id, FAILED_PRECONDITION
  // when it has already expired.
  absl::Status ExpireSilence(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<alerting::Silence> Silences() const ABSL_LOCKS_EXCLUDED(mu_);

  // One rules evaluation over `evaluation`'s signals at `now_ms`
  // (processing time): saves the changes, logs them, wakes watchers.
  void Evaluate(const Evaluation& evaluation, int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);

  // The alerts in `states` (empty: pending and firing), by fingerprint,
  // with their silenced and inhibited marks as of now.
  std::vector<alerting::Alert> List(const std::vector<alerting::AlertState>& states) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // The state changes after `after_seq`, waiting up to `timeout` for one.
  // *next_seq is where to continue; when the watcher fell behind the
  // backlog, *missed is set (it should re-list).
  std::vector<AlertEvent> WaitForChanges(uint64_t after_seq, absl::Duration timeout,
                                         uint64_t* next_seq, bool* missed) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The seq of the latest change (0 before any).
  uint64_t last_seq() const ABSL_LOCKS_EXCLUDED(mu_);

  AlertRulesStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t NowMs() const { return clock_->NowMs(); }
  size_t rule_count() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t evaluations() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status LoadFileLocked(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyRulesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkLocked(std::vector<alerting::Alert>* alerts, int64_t now_ms) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::AlertStore* const store_;
  const base::Clock* const clock_;
  const AlertRulesOptions options_;
  mutable absl::Mutex mu_;
  std::string rules_file_ ABSL_GUARDED_BY(mu_);
  std::vector<alerting::Rule> file_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<alerting::InhibitRule> inhibit_rules_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, alerting::Rule> api_rules_ ABSL_GUARDED_BY(mu_);  // by name
  std::map<std::string, alerting::Silence> silences_ ABSL_GUARDED_BY(mu_);  // by id
  // Fingerprints with a saved row.
  std::set<std::string> persisted_ ABSL_GUARDED_BY(mu_);
  alerting::RuleEngine engine_ ABSL_GUARDED_BY(mu_);
  uint64_t last_generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evaluations_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evaluation_failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rule_load_errors_ ABSL_GUARDED_BY(mu_) = 0;
  double last_evaluation_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<AlertEvent> events_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<alerting::Dispatcher> dispatcher_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_outbox_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace driftwatch::service
