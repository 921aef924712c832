// The rules engine's state (docs/alerting.md): one row per alert by
// fingerprint, written when it changes, read back at start so a restart
// neither forgets a pending `for` nor fires a firing alert again (the
// alert itself is an opaque encoding, alerting::EncodeAlert); the rules
// put through the API (their YAML, the rules file's schema); silences;
// and the evaluator's signal history.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace driftwatch::storage {

struct RuleRow {
  std::string name;
  std::string yaml;  // one rule, as Alerts.PutRule received it
  int64_t updated_at_ms = 0;
};

struct SilenceRow {
  std::string id;
  std::vector<std::string> matchers;  // as written: name="v", name=~"re", ...
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  std::string created_by;
  std::string comment;
  int64_t updated_at_ms = 0;
};

// One evaluation's value of one signal series.
struct SignalPoint {
  std::string model;    // "id@version"
  std::string signal;   // psi, score_psi, auc, ...
  std::string feature;  // "" for model-level signals
  std::string slice;    // "*" or "key=value"
  double value = 0;
  double baseline = 0;  // NaN: none (stored as NULL)
};

struct SignalSample {
  int64_t t_ms = 0;
  double value = 0;
  double baseline = 0;  // NaN: none
  int resolution = 0;   // 0: one evaluation, 1: an hour's mean, 2: a day's mean
};

// How long the signal history keeps each resolution: evaluations for
// `raw_ms`, then hourly means for `hour_ms`, then daily means for `day_ms`
// (<= 0: forever).
struct SignalRetention {
  int64_t raw_ms = 2 * 86'400'000LL;
  int64_t hour_ms = 35 * 86'400'000LL;
  int64_t day_ms = 400 * 86'400'000LL;
};

// One notification in the outbox (docs/notifications.md): written in the
// same transaction as the alert state change that causes it, sent by the
// relay, marked delivered only after a 2xx.
struct OutboxRow {
  enum State { kPending = 0, kDelivered = 1, kFailed = 2 };
  std::string id;  // webhook-id: stable across retries
  std::string receiver;
  std::string url;
  std::string body;
  std::string group_key;
  int64_t created_ms = 0;
  int64_t next_attempt_ms = 0;
  int attempts = 0;
  int state = kPending;
  int last_status = 0;  // the last HTTP status (0: none, a transport error)
  std::string last_error;
  int64_t delivered_ms = 0;  // or failed, when final
};

// What a rules evaluation hands to notifications, saved with its alerts.
struct NotifyWrite {
  std::vector<OutboxRow> outbox;
  std::optional<std::string> dispatcher_state;  // the grouping state after it
};

struct AlertRow {
  std::string fingerprint;
  std::string rule;
  std::string alert;  // the encoded alert
};

class AlertStore {
 public:
  virtual ~AlertStore() = default;
  // Upserts and deletes, in one transaction.
  virtual absl::Status SaveAlerts(const std::vector<AlertRow>& upserts,
                                  const std::vector<std::string>& deleted_fingerprints,
                                  const NotifyWrite& notify) = 0;
  absl::Status SaveAlerts(const std::vector<AlertRow>& upserts,
                          const std::vector<std::string>& deleted_fingerprints) {
    return SaveAlerts(upserts, deleted_fingerprints, NotifyWrite{});
  }
  virtual absl::StatusOr<std::vector<AlertRow>> ReadAlerts() = 0;

  virtual absl::Status SaveRule(const RuleRow& rule) = 0;
  // NOT_FOUND when there is no rule of that name.
  virtual absl::Status DeleteRule(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<RuleRow>> ReadRules() = 0;

  virtual absl::Status SaveSilence(const SilenceRow& silence) = 0;
  virtual absl::StatusOr<std::vector<SilenceRow>> ReadSilences() = 0;
  // Deletes silences that ended before `before_ms`; returns how many.
  virtual absl::StatusOr<int64_t> DeleteSilencesEndedBefore(int64_t before_ms) = 0;

  // The outbox, oldest next attempt first: pending rows only, or all
  // (newest first), at most `limit`.
  virtual absl::StatusOr<std::vector<OutboxRow>> ReadOutbox(bool pending_only, int limit) = 0;
  // A send's outcome: state, attempts, next attempt, status, error.
  virtual absl::Status UpdateOutbox(const OutboxRow& row) = 0;
  // Pending rows and the oldest one's created_ms (0 when none).
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> OutboxDepth() = 0;
  // Deletes delivered and failed rows finished before `before_ms`.
  virtual absl::StatusOr<int64_t> DeleteFinishedOutbox(int64_t before_ms) = 0;
  virtual absl::StatusOr<std::optional<std::string>> ReadDispatcherState() = 0;

  // The points of one evaluation at `t_ms`, in one transaction.
  virtual absl::Status AppendSignals(int64_t t_ms, const std::vector<SignalPoint>& points) = 0;
  // One series' samples in [from_ms, to_ms), oldest first.
  virtual absl::StatusOr<std::vector<SignalSample>> ReadSignalSeries(
      const std::string& model, const std::string& signal, const std::string& feature,
      const std::string& slice, int64_t from_ms, int64_t to_ms) = 0;
  // Downsamples (evaluations to hourly means, hourly to daily) and deletes
  // what `retention` no longer keeps; returns the rows removed.
  virtual absl::StatusOr<int64_t> CompactSignals(const SignalRetention& retention,
                                                 int64_t now_ms) = 0;
};

}  // namespace driftwatch::storage
