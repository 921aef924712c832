// Drift reports by slice: the answers to Reports.GetDriftReport,
// Reports.RankSlices and the baseline calls of Models. A report merges the
// committed window of a slice (WindowReader) and compares it with a
// baseline (Baselines) per feature and per score. Semantics: docs/reports.md.
//
// Thread-safe: it holds no state of its own beyond the options; its
// collaborators are thread-safe (the baselines keep an internally locked
// cache).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/storage/label_store.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/window_reader.h"
#include "driftwatch/v1/models.pb.h"
#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service {

namespace reports {
class VolumeHistory;
}

struct ReportOptions {
  int64_t default_window_ms = 3'600'000;  // the last hour
  int bins = 10;                          // PSI/KL/JS bins unless the baseline says otherwise
  double default_min_support = 100;       // RankSlices
  uint32_t default_top_k = 10;
  // While a GetDriftReport or RankSlices runs, ingest streams pause before
  // their next batch, each for at most this long (0: never). See
  // query_priority.h.
  int64_t ingest_yield_ms = 20;
  // CompareVersions holds at most this many records per version; past it
  // the ids compared are a hash sample (CompareVersionsResponse.sampled).
  size_t compare_max_records = 250'000;
};

class ReportEngine {
 public:
  // All pointers must outlive the engine.
  ReportEngine(const ModelRegistry* registry, const WindowReader* windows,
               const Baselines* baselines, const base::Clock* clock, ReportOptions options = {});
  ~ReportEngine();

  // NOT_FOUND: unknown model, slice or baseline. INVALID_ARGUMENT: a bad
  // window or slice selector (naming the field). FAILED_PRECONDITION: the
  // window or the baseline holds no data. A feature with no data on one
  // side gets its counts and rates but no statistics. RankSlices also
  // fails with INVALID_ARGUMENT for an unknown metric or feature.
  absl::StatusOr<v1::DriftReport> GetDriftReport(const v1::GetDriftReportRequest& request) const;
  absl::StatusOr<v1::RankSlicesResponse> RankSlices(const v1::RankSlicesRequest& request) const;

  // Quality as labels mature (docs/labels.md), from the committed quality
  // rows of the slice over the hour-aligned window (default the last 24
  // h). NOT_FOUND: unknown model, slice or baseline; INVALID_ARGUMENT: a
  // bad window, bins that do not divide 1000, k other than labels.ndcg_k;
  // FAILED_PRECONDITION: labels are not attached or the model has no label
  // kind. A window with no labels answers its counts and estimates.
  absl::StatusOr<v1::QualityReport> GetQualityReport(
      const v1::GetQualityReportRequest& request) const;
  // Data quality of one slice over the window (default the last hour):
  // docs/data-quality.md. NOT_FOUND: unknown model or slice;
  // INVALID_ARGUMENT: a bad window or selector; FAILED_PRECONDITION: no
  // events (and no duplicates) in the window. The baseline is optional:
  // without it there are no reference null rates or fingerprints.
  absl::StatusOr<v1::DataQualityReport> GetDataQualityReport(
      const v1::GetDataQualityReportRequest& request) const;
  void set_silence_timeout_ms(int64_t ms) { silence_timeout_ms_ = ms; }
  // Shadow / canary agreement of two versions of one model over the window
  // (default the last hour), paired by event id through both versions'
  // join state (docs/data-quality.md). NOT_FOUND: unknown version or
  // slice; INVALID_ARGUMENT: no name or version, the same version twice, a
  // bad threshold, window or selector; FAILED_PRECONDITION: labels not
  // attached, a version without a label kind (no join state), different
  // score kinds.
  absl::StatusOr<v1::CompareVersionsResponse> CompareVersions(
      const v1::CompareVersionsRequest& request) const;

  // Where quality rows are read from; call before serving.
  void AttachLabels(storage::LabelStore* store, LabelOptions options) {
    labels_ = store;
    label_options_ = std::move(options);
  }

  // Baselines (see Baselines::Create). NOT_FOUND: unknown model.
  absl::StatusOr<v1::Baseline> CreateBaseline(const v1::CreateBaselineRequest& request) const;
  absl::StatusOr<v1::ListBaselinesResponse> ListBaselines(
      const v1::ListBaselinesRequest& request) const;

 private:
  // What every report resolves first: the model, the window at now and
  // the baseline.
  struct Query {
    std::shared_ptr<const RegisteredModel> model;
    int64_t now_ms = 0;
    Interval window;
    BaselineDef baseline;
  };
  absl::StatusOr<Query> Prepare(std::shared_ptr<const RegisteredModel> model,
                                const v1::Window& window, const std::string& baseline) const;
  absl::StatusOr<int32_t> ResolveSlice(const RegisteredModel& model,
                                       const v1::SliceSelector& selector) const;

  // Constant after construction.
  const ModelRegistry* const registry_;
  const WindowReader* const windows_;
  const Baselines* const baselines_;
  const base::Clock* const clock_;
  const ReportOptions options_;
  storage::LabelStore* labels_ = nullptr;  // set once, before serving
  LabelOptions label_options_;
  int64_t silence_timeout_ms_ = 10 * 60'000;
  // Each slice's hourly events (volume_z, "volume_drop"); thread-safe itself.
  const std::unique_ptr<reports::VolumeHistory> volume_;

  absl::StatusOr<v1::RankSlicesResponse> RankDataQuality(const v1::RankSlicesRequest& request) const;
  absl::StatusOr<v1::RankSlicesResponse> RankQuality(const v1::RankSlicesRequest& request,
                                                     bool auc_drop) const;
};

}  // namespace driftwatch::service
