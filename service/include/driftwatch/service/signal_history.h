// The evaluator's signals, kept: every evaluation's values are appended to
// the signal history (storage::AlertStore::AppendSignals), downsampled and
// expired with the buckets' retention (evaluations for retention.minute,
// hourly means for retention.hour, daily means for retention.day), and
// read back per series by Reports.GetSignalSeries and `driftctl signals`.
// Reports, gauges and rules read the same values: those of one Evaluation.
// Thread-safe.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/storage/alert_store.h"
#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service {

class SignalHistory {
 public:
  // Every pointer must outlive this.
  SignalHistory(storage::AlertStore* store, const ModelRegistry* registry, const base::Clock* clock)
      : store_(store), registry_(registry), clock_(clock) {}

  // Appends an evaluation's signals (once per generation).
  absl::Status Record(const Evaluation& evaluation) ABSL_LOCKS_EXCLUDED(mu_);
  // Downsamples and expires; returns the rows removed.
  absl::StatusOr<int64_t> Compact(const storage::SignalRetention& retention, int64_t now_ms);
  // One series over the request's window (default the last 6 hours).
  // NOT_FOUND for an unknown model, INVALID_ARGUMENT for a bad request.
  absl::StatusOr<v1::SignalSeries> GetSeries(const v1::GetSignalSeriesRequest& request) const;

 private:
  storage::AlertStore* const store_;
  const ModelRegistry* const registry_;
  const base::Clock* const clock_;
  absl::Mutex mu_;
  uint64_t recorded_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace driftwatch::service
