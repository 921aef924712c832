// Drift reports by slice: merges bucket profiles over a window (minute rows
// for open or partial hours, hour rows where whole closed hours are
// covered) and compares them with a baseline, per feature and per score.
// Reads committed data only, so a report reflects every acked event.
// Semantics and read plan: docs/reports.md. Thread-safe (no mutable state;
// the store and ingestor are thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/storage/store.h"
#include "driftwatch/v1/models.pb.h"
#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service {

struct ReportOptions {
  int64_t default_window_ms = 3'600'000;  // the last hour
  int bins = 10;                          // PSI/KL/JS bins unless the baseline says otherwise
  double default_min_support = 100;       // RankSlices
  uint32_t default_top_k = 10;
  // While a GetDriftReport or RankSlices runs, ingest streams pause before
  // their next batch, each for at most this long (0: never). See
  // query_priority.h.
  int64_t ingest_yield_ms = 20;
};

class ReportEngine {
 public:
  // All pointers must outlive the engine.
  ReportEngine(storage::Store* store, const Ingestor* ingestor, const base::Clock* clock,
               ReportOptions options = {});
  ~ReportEngine();

  // NOT_FOUND: unknown model, slice or baseline. INVALID_ARGUMENT: a bad
  // window or slice selector (naming the field). FAILED_PRECONDITION: the
  // window or the baseline holds no data. A feature with no data on one
  // side gets its counts and rates but no statistics. RankSlices also
  // fails with INVALID_ARGUMENT for an unknown metric or feature.
  absl::StatusOr<v1::DriftReport> GetDriftReport(const v1::GetDriftReportRequest& request) const;
  absl::StatusOr<v1::RankSlicesResponse> RankSlices(const v1::RankSlicesRequest& request) const;

  // Baselines: an uploaded profile is summarised with the model's layout
  // and stored (its rows are not kept: the returned and listed spec holds
  // an empty profile); a pinned range or trailing window is stored as its
  // spec and resolved (merged from buckets) when a report asks for it.
  // Unnamed: "default"; bins 0: options.bins, frozen at creation.
  // NOT_FOUND: unknown model. INVALID_ARGUMENT naming the field: no source,
  // a bad range or trailing length, an unknown or ragged profile column.
  // A baseline of the same name is replaced.
  absl::StatusOr<v1::Baseline> CreateBaseline(const v1::CreateBaselineRequest& request) const;
  absl::StatusOr<v1::ListBaselinesResponse> ListBaselines(
      const v1::ListBaselinesRequest& request) const;

  // The whole population and the `max_slices` busiest slices of every model,
  // each feature's PSI / KS / JS against the "default" baseline over the
  // default window, for the /metrics gauges. Models without a default
  // baseline are skipped.
  struct Signal {
    std::string model;  // "id@version"
    std::string slice;  // "*" or "key=value"
    std::string feature;
    std::string name;  // psi, js, ks, wasserstein_norm, null_rate
    double value = 0;
  };
  absl::StatusOr<std::vector<Signal>> CurrentSignals(int max_slices) const;

 private:
  // A model version as resolved for one request.
  struct ModelContext {
    std::shared_ptr<const ModelRuntime> runtime;
    v1::ModelRef ref;  // with the resolved version
  };
  absl::StatusOr<ModelContext> Model(const v1::ModelRef& ref) const;
  absl::StatusOr<int32_t> ResolveSlice(const ModelContext& ctx,
                                       const v1::SliceSelector& selector) const;
  // Population weight a baseline covers now (`uploaded`: its profile).
  absl::StatusOr<double> ReferenceWeight(const ModelContext& ctx, const v1::BaselineSpec& spec,
                                         const detectors::Profile* uploaded) const;
  int64_t bucket_width_ms() const;

  // Frozen references of baselines that can no longer change (uploaded
  // profiles, pinned ranges that are closed), so a report does not re-read
  // and re-merge its baseline every time. Internally synchronised.
  struct ReferenceCache;
  std::unique_ptr<ReferenceCache> cache_;

  storage::Store* const store_;
  const Ingestor* const ingestor_;
  const base::Clock* const clock_;
  const ReportOptions options_;
};

}  // namespace driftwatch::service
