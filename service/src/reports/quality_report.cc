// Reports.GetQualityReport and RankSlices by auc_drop / ece_rise: the
// committed quality rows (storage::QualityRow, one per slice and
// event-time hour, written by the label joiner) merged over a window and
// turned into metrics. Semantics: docs/labels.md.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/detectors/quality.h"
#include "driftwatch/detectors/quality_delta.h"
#include "driftwatch/detectors/quality_profile.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/storage/bucket_store.h"

namespace driftwatch::service {
namespace {

using detectors::QualityKind;
using detectors::QualityProfile;
using storage::kHourMs;

constexpr int64_t kDefaultQualityWindowMs = 24 * kHourMs;

Interval HourAligned(Interval w) {
  w.start_ms = storage::BucketStart(w.start_ms, kHourMs);
  const int64_t end = storage::BucketStart(w.end_ms, kHourMs);
  w.end_ms = end == w.end_ms ? end : end + kHourMs;
  return w;
}

// Merges the quality rows of `slice` over `window`.
absl::StatusOr<QualityProfile> ReadMerged(storage::LabelStore* store, const RegisteredModel& model,
                                          QualityKind kind, int32_t slice, Interval window) {
  QualityProfile merged(kind, std::max(2, model.score_count()));
  DW_ASSIGN_OR_RETURN(std::vector<storage::QualityRow> rows,
                      store->ReadQuality(model.model_key(), slice, window.start_ms, window.end_ms));
  for (const storage::QualityRow& row : rows) {
    // Sparse rows add straight into the merged bins (no dense temporary).
    absl::Status st = detectors::MergeEncodingInto(row.profile, &merged);
    if (st.code() == absl::StatusCode::kDataLoss) {
      return absl::DataLossError(absl::StrCat("quality row of slice ", slice, " hour ",
                                              row.hour_start_ms, ": ", st.message()));
    }
    DW_RETURN_IF_ERROR(st);
  }
  return merged;
}

// AUC, calibration and their bound of a binary profile, as far as the
// labels allow.
void FillBinary(const QualityProfile& p, int bins, v1::QualityMetrics* m,
                v1::QualityReport* report) {
  const detectors::ScoreLabelSummary& s = p.binary();
  if (absl::StatusOr<detectors::ScoreLabelSummary::Auc> auc = s.RocAuc(); auc.ok()) {
    m->set_has_auc(true);
    m->set_auc(auc->auc);
    m->set_auc_error_bound(auc->error_bound);
  }
  if (absl::StatusOr<detectors::CalibrationResult> cal = s.Calibration(bins); cal.ok()) {
    m->set_has_calibration(true);
    m->set_ece(cal->ece);
    m->set_mce(cal->mce);
    m->set_brier(cal->brier);
    if (report != nullptr) {
      for (const detectors::ReliabilityBin& b : cal->reliability) {
        v1::ReliabilityBin* out = report->add_reliability();
        out->set_lower(static_cast<double>(b.bin) / bins);
        out->set_upper(static_cast<double>(b.bin + 1) / bins);
        out->set_mean_score(b.mean_score);
        out->set_mean_label(b.mean_label);
        out->set_weight(b.count);
      }
    }
  }
}

}  // namespace

absl::StatusOr<v1::QualityReport> ReportEngine::GetQualityReport(
    const v1::GetQualityReportRequest& request) const {
  if (labels_ == nullptr) return absl::FailedPreconditionError("labels are not attached");
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  const std::optional<QualityKind> kind = model->quality_kind();
  if (!kind) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", model->label(),
                     " was registered without a label_kind: it has no quality report"));
  }
  const int bins = request.bins() > 0 ? static_cast<int>(request.bins()) : 10;
  if (detectors::kQualityFineBins % bins != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bins = ", bins, " must divide ", detectors::kQualityFineBins,
        " (the fine bins of the service's score summaries)"));
  }
  const int k = request.k() > 0 ? static_cast<int>(request.k()) : label_options_.ndcg_k;
  if (k != label_options_.ndcg_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k = ", k, ": the service keeps NDCG@", label_options_.ndcg_k,
                     " per query (labels.ndcg_k); ask for that k or change the setting"));
  }
  DW_ASSIGN_OR_RETURN(int32_t slice, ResolveSlice(*model, request.slice()));
  const int64_t now = clock_->NowMs();
  DW_ASSIGN_OR_RETURN(Interval window,
                      windows_->Resolve(request.window(), kDefaultQualityWindowMs, now));
  window = HourAligned(window);
  const std::string baseline_name = request.baseline().empty() ? "default" : request.baseline();

  DW_ASSIGN_OR_RETURN(QualityProfile current, ReadMerged(labels_, *model, *kind, slice, window));
  v1::QualityReport out;
  *out.mutable_model() = model->ref();
  *out.mutable_slice() = request.slice();
  SetRange(window, out.mutable_window());
  out.set_predicted_weight(current.predicted_weight());
  out.set_labelled_weight(current.labelled_weight());
  const double coverage =
      current.predicted_weight() > 0 ? current.labelled_weight() / current.predicted_weight() : 0;
  out.set_label_coverage(coverage);
  out.set_mature(coverage >= label_options_.maturity_coverage ||
                 window.end_ms + label_options_.window_ms <= now);
  out.set_decision_threshold(model->decision_threshold());

  switch (*kind) {
    case QualityKind::kBinary: {
      FillBinary(current, bins, out.mutable_current(), &out);
      if (std::optional<double> acc =
              detectors::BinnedAccuracy(current.binary(), model->decision_threshold())) {
        out.set_has_accuracy(true);
        out.set_accuracy(*acc);
      }
      break;
    }
    case QualityKind::kMulticlass:
      if (auto m = current.multiclass().Compute(); m.ok()) {
        out.set_has_multiclass(true);
        out.set_macro_auc(m->macro_auc);
        out.set_macro_auc_error_bound(m->macro_auc_error_bound);
        out.set_accuracy(m->accuracy);
        out.set_has_accuracy(true);
        out.set_log_loss(m->log_loss);
      }
      break;
    case QualityKind::kRegression:
      if (auto e = current.regression().Compute(); e.ok()) {
        out.set_has_regression(true);
        out.set_mae(e->mae);
        out.set_rmse(e->rmse);
        out.set_bias(e->bias);
      }
      break;
    case QualityKind::kRanking:
      if (current.ndcg().queries() > 0) {
        out.set_has_ndcg(true);
        out.set_ndcg(current.ndcg().mean());
        out.set_queries(current.ndcg().queries());
      }
      out.set_k(static_cast<uint32_t>(k));
      break;
  }
  v1::Quantiles* delay = out.mutable_label_delay_ms();
  delay->set_relative_error_bound(detectors::DelayHistogram::kRelativeErrorBound);
  if (auto p50 = current.delay().Quantile(0.5)) {
    delay->set_p50(*p50);
    delay->set_p95(*current.delay().Quantile(0.95));
    delay->set_p99(*current.delay().Quantile(0.99));
  }

  // The baseline: its window's quality (a pinned range or trailing window
  // of the model's own labelled traffic; an uploaded profile has none).
  out.set_baseline(baseline_name);
  std::optional<QualityProfile> reference;
  absl::StatusOr<BaselineDef> baseline = baselines_->Load(*model, baseline_name);
  if (baseline.ok()) {
    if (!baseline->uploaded) {
      const Interval range = HourAligned(baselines_->Range(baseline->spec, now));
      DW_ASSIGN_OR_RETURN(QualityProfile ref, ReadMerged(labels_, *model, *kind, slice, range));
      reference = std::move(ref);
    }
  } else if (!absl::IsNotFound(baseline.status()) || !request.baseline().empty()) {
    return baseline.status();
  }
  if (reference && *kind == QualityKind::kBinary) {
    FillBinary(*reference, bins, out.mutable_baseline_metrics(), nullptr);
    if (out.current().has_auc() && out.baseline_metrics().has_auc()) {
      out.set_auc_delta(out.current().auc() - out.baseline_metrics().auc());
    }
    if (out.current().has_calibration() && out.baseline_metrics().has_calibration()) {
      out.set_ece_delta(out.current().ece() - out.baseline_metrics().ece());
    }
  }
  if (*kind == QualityKind::kBinary) {
    const detectors::ScoreLabelSummary* calibration =
        reference && reference->labelled_weight() > 0 ? &reference->binary() : nullptr;
    const detectors::PerformanceEstimate e =
        detectors::EstimatePerformance(current, calibration, model->decision_threshold());
    out.set_unlabelled_weight(e.unlabelled_weight);
    out.set_estimate_calibration(e.calibrated ? "baseline" : "identity");
    // Both, or none: an AUC needs expected weight in both classes.
    if (std::isfinite(e.auc) && std::isfinite(e.accuracy)) {
      out.set_has_estimate(true);
      out.set_estimated_auc(e.auc);
      out.set_estimated_accuracy(e.accuracy);
    }
  }

  // Counts: of the window's predictions, then the model's label traffic
  // that arrived during the window.
  v1::LabelCounts* counts = out.mutable_counts();
  counts->set_predictions(current.predicted());
  counts->set_labelled(current.labelled());
  DW_ASSIGN_OR_RETURN(storage::LabelCounts arrived,
                      labels_->ReadLabelCounts(model->model_key(), window.start_ms, window.end_ms));
  counts->set_conflicting(arrived.conflicting);
  counts->set_orphan(arrived.orphan);
  counts->set_not_sampled(arrived.not_sampled);
  counts->set_expired(current.expired());
  counts->set_rejected(arrived.rejected);
  counts->set_duplicates(arrived.duplicates);
  // Pending now = went pending - left pending (joined later or orphaned) is
  // not kept per minute; the model-level total since start is.
  counts->set_pending(arrived.pending);
  // The same arrivals by label source, in the store's order (by source).
  DW_ASSIGN_OR_RETURN(
      std::vector<storage::SourceLabelCounts> by_source,
      labels_->ReadSourceLabelCounts(model->model_key(), window.start_ms, window.end_ms));
  for (const storage::SourceLabelCounts& c : by_source) {
    v1::SourceLabelCounts* source = counts->add_sources();
    source->set_source(c.source);
    source->set_joined(c.joined);
    source->set_orphan(c.orphan);
    source->set_pending(c.pending);
  }
  return out;
}

absl::StatusOr<v1::RankSlicesResponse> ReportEngine::RankQuality(
    const v1::RankSlicesRequest& request, bool auc_drop) const {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  if (model->schema().label_kind() != v1::LABEL_KIND_BINARY) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric \"", request.metric(), "\" needs a binary classifier (label_kind BINARY); ",
        model->label(), " is not one"));
  }
  const uint32_t top_k = request.top_k() > 0 ? request.top_k() : options_.default_top_k;
  const uint32_t min_labels = request.min_labels() > 0 ? request.min_labels() : 100;
  std::vector<int32_t> slices;
  for (const storage::SliceRecord& r : model->slices().Records()) {
    if (r.slice_id != 0) slices.push_back(r.slice_id);
  }
  v1::GetQualityReportRequest q;
  *q.mutable_model() = model->ref();
  *q.mutable_window() = request.window();
  q.set_baseline(request.baseline());
  std::vector<v1::SliceRank> ranks;
  auto value_of = [&](const v1::QualityReport& r) -> std::optional<std::pair<double, double>> {
    if (auc_drop) {
      if (!r.current().has_auc() || !r.baseline_metrics().has_auc()) return std::nullopt;
      return std::make_pair(r.baseline_metrics().auc() - r.current().auc(),
                            r.current().auc_error_bound() + r.baseline_metrics().auc_error_bound());
    }
    if (!r.current().has_calibration() || !r.baseline_metrics().has_calibration()) {
      return std::nullopt;
    }
    return std::make_pair(r.current().ece() - r.baseline_metrics().ece(), 0.0);
  };
  DW_ASSIGN_OR_RETURN(v1::QualityReport population, GetQualityReport(q));
  const std::optional<std::pair<double, double>> population_value = value_of(population);
  for (int32_t id : slices) {
    const storage::SliceRecord record = model->slices().record(id);
    if (record.key_index < 0 || record.key_index >= model->slice_key_count()) continue;
    *q.mutable_slice() = model->SelectorOf(record);
    absl::StatusOr<v1::QualityReport> r = GetQualityReport(q);
    if (!r.ok()) continue;
    if (r->counts().labelled() < min_labels) continue;
    const std::optional<std::pair<double, double>> v = value_of(*r);
    if (!v) continue;
    v1::SliceRank& rank = ranks.emplace_back();
    *rank.mutable_slice() = q.slice();
    rank.set_value(v->first);
    rank.set_error_bound(v->second);
    rank.set_feature(auc_drop ? "auc" : "ece");
    rank.set_support(r->labelled_weight());
    if (population_value) rank.set_population_value(population_value->first);
  }
  std::sort(ranks.begin(), ranks.end(), [](const v1::SliceRank& a, const v1::SliceRank& b) {
    return a.value() > b.value();
  });
  v1::RankSlicesResponse response;
  for (size_t i = 0; i < ranks.size() && i < top_k; ++i) *response.add_slices() = ranks[i];
  return response;
}

}  // namespace driftwatch::service
