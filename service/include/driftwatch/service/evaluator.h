// The evaluator: on a schedule, turns the committed buckets into signals.
// Per model with a baseline, for the population and the busiest slices, it
// compares the trailing window with the baseline and names what it finds
// (psi, js, ks, wasserstein_norm, null_rate per feature and score). For a
// model with a label kind and quality attached it adds the same slices'
// quality as labels mature over quality_window_ms (auc, ece, brier,
// label_coverage, estimated_auc, ...: kQualitySignalNames), whether or
// not the baseline exists.
// /metrics reads the latest evaluation; next, signal history and the
// rules engine read it too. It reads storage only: the ingest path never
// calls it.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/detectors/signal.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/service/window_reader.h"

namespace driftwatch::service {

namespace reports {
class VolumeHistory;
}

struct EvaluatorOptions {
  int64_t window_ms = 3'600'000;  // the trailing window compared, ending now
  int max_slices = 20;            // busiest slices per model, besides "*"
  std::string baseline = std::string(kDefaultBaseline);
  int64_t quality_window_ms = 24 * 3'600'000LL;  // quality signals: the trailing hours
  // Data quality: a slice that sent nothing for this long (server clock)
  // is silent (slice_silent).
  int64_t silence_timeout_ms = 10 * 60'000;
  // Shadow / canary comparisons (a read of two versions' join state) are
  // redone at most this often; in between the last result is emitted.
  int64_t shadow_interval_ms = 5 * 60'000;
};

// The names of the model-level quality signals (feature ""), by label kind.
inline constexpr std::string_view kQualitySignalNames[] = {
    "auc",           "auc_error_bound",    "ece",       "mce",      "brier",
    "accuracy",      "label_coverage",     "estimated_auc", "estimated_accuracy",
    "auc_delta",     "ece_delta",          "macro_auc", "log_loss", "mae",
    "rmse",          "bias",               "ndcg",      "label_delay_p95",
};

// The signals of one evaluation.
struct Evaluation {
  uint64_t generation = 0;  // 1 for the first, then +1 per evaluation
  int64_t evaluated_at_ms = 0;
  std::vector<detectors::Signal> signals;
};

// Thread-safe: Evaluate from one scheduler, Latest from anywhere.
class Evaluator {
 public:
  // Every pointer must outlive the evaluator.
  Evaluator(const ModelRegistry* registry, const WindowReader* windows, const Baselines* baselines,
            const base::Clock* clock, EvaluatorOptions options);
  ~Evaluator();

  // Evaluates every model now and publishes the result, unless an
  // evaluation that started later has already published. Models without
  // the baseline are skipped; a storage error fails the evaluation (the
  // last published one stays).
  absl::Status Evaluate();

  // Adds the quality signals, read through `reports` (it must outlive the
  // evaluator and have labels attached). Call before the first Evaluate.
  void AttachQuality(const ReportEngine* reports) { reports_ = reports; }

  // The latest published evaluation; generation 0 (no signals) before the first.
  std::shared_ptr<const Evaluation> Latest() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status EvaluateModel(const RegisteredModel& model, int64_t now_ms,
                             std::vector<detectors::Signal>* out) const;
  absl::Status AddQuality(const RegisteredModel& model, const std::vector<int32_t>& slices,
                          std::vector<detectors::Signal>* out) const;
  // volume, volume_z and the silence signals of slices that had traffic
  // in the last kStoppedLookBackMs and none in the window.
  absl::Status AddStopped(const RegisteredModel& model, Interval window, int64_t covered_end,
                          int64_t now_ms, const SliceProfiles& current,
                          std::vector<detectors::Signal>* out) const;
  // shadow_* signals against the model's earlier versions (CompareVersions).
  absl::Status AddShadow(const RegisteredModel& model, Interval window, int64_t now_ms,
                         std::vector<detectors::Signal>* out) const ABSL_LOCKS_EXCLUDED(shadow_mu_);
  static constexpr int64_t kStoppedLookBackMs = 24 * 3'600'000LL;

  // Constant after construction.
  const ModelRegistry* const registry_;
  const WindowReader* const windows_;
  const Baselines* const baselines_;
  const base::Clock* const clock_;
  const EvaluatorOptions options_;
  const ReportEngine* reports_ = nullptr;  // set before the first Evaluate
  // Each slice's hourly events (volume_z); thread-safe itself.
  const std::unique_ptr<reports::VolumeHistory> volume_;

  std::atomic<uint64_t> started_{0};  // evaluations started
  mutable absl::Mutex mu_;
  std::shared_ptr<const Evaluation> latest_ ABSL_GUARDED_BY(mu_);
  uint64_t latest_started_ ABSL_GUARDED_BY(mu_) = 0;  // the start order of latest_
  // The last CompareVersions per (earlier version's key, later's), and when.
  struct ShadowResult {
    int64_t at_ms = 0;
    v1::CompareVersionsResponse response;
  };
  mutable absl::Mutex shadow_mu_;
  mutable std::map<std::pair<int64_t, int64_t>, ShadowResult> shadow_ ABSL_GUARDED_BY(shadow_mu_);
};

}  // namespace driftwatch::service
