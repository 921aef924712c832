#include "driftwatch/service/evaluator.h"

#include <algorithm>
#include <utility>

#include "driftwatch/base/status_macros.h"
#include "reports/comparison.h"

namespace driftwatch::service {
namespace {

using detectors::Profile;

// The population and the `max_slices` busiest slices, by current weight.
std::vector<int32_t> ChooseSlices(const SliceProfiles& current, int max_slices) {
  std::vector<std::pair<double, int32_t>> busiest;
  for (const auto& [id, profile] : current) {
    if (id != 0 && profile.counters().events > 0) {
      busiest.emplace_back(-profile.counters().weight, id);
    }
  }
  std::sort(busiest.begin(), busiest.end());
  busiest.resize(std::min(busiest.size(), static_cast<size_t>(std::max(0, max_slices))));
  std::vector<int32_t> chosen{0};
  for (const auto& [w, id] : busiest) chosen.push_back(id);
  return chosen;
}

// The signals one slice's report carries.
void AddSignals(const v1::DriftReport& report, const std::string& model, const std::string& slice,
                std::vector<detectors::Signal>* out) {
  auto emit = [&](const std::string& feature, const char* name, double value) {
    out->push_back(detectors::Signal{model, slice, feature, name, value});
  };
  reports::ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
    emit(f.name(), "null_rate", f.null_rate());
    if (!reports::HasStatistics(f)) return;
    emit(f.name(), "psi", f.psi());
    emit(f.name(), "js", f.js());
    if (f.has_ks()) {
      emit(f.name(), "ks", f.ks().statistic());
      emit(f.name(), "wasserstein_norm", f.wasserstein_norm());
      // The summaries' bounds (docs/statistics.md): KS is within [ks, ks +
      // bound], W1/sd within +- its bound; a rule can ask for both.
      emit(f.name(), "ks_error_bound", f.ks().error_bound());
      emit(f.name(), "wasserstein_norm_error_bound", f.wasserstein_norm_error_bound());
    }
  });
}

}  // namespace

Evaluator::Evaluator(const ModelRegistry* registry, const WindowReader* windows,
                     const Baselines* baselines, const base::Clock* clock,
                     EvaluatorOptions options)
    : registry_(registry),
      windows_(windows),
      baselines_(baselines),
      clock_(clock),
      options_(std::move(options)),
      latest_(std::make_shared<const Evaluation>()) {}

std::shared_ptr<const Evaluation> Evaluator::Latest() const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

absl::Status Evaluator::Evaluate() {
  // Evaluations that overlap (the schedule and a caller) publish in the
  // order they started, so the latest never goes back to older data.
  const uint64_t started = started_.fetch_add(1) + 1;
  auto evaluation = std::make_shared<Evaluation>();
  evaluation->evaluated_at_ms = clock_->NowMs();
  for (const std::shared_ptr<const RegisteredModel>& model : registry_->List()) {
    DW_RETURN_IF_ERROR(EvaluateModel(*model, evaluation->evaluated_at_ms, &evaluation->signals));
  }
  absl::MutexLock lock(&mu_);
  if (started < latest_started_) return absl::OkStatus();  // a later one has published
  latest_started_ = started;
  evaluation->generation = latest_->generation + 1;
  latest_ = std::move(evaluation);
  return absl::OkStatus();
}

absl::Status Evaluator::EvaluateModel(const RegisteredModel& model, int64_t now_ms,
                                      std::vector<detectors::Signal>* out) const {
  const bool quality = reports_ != nullptr && model.quality_kind().has_value();
  absl::StatusOr<BaselineDef> def = baselines_->Load(model, options_.baseline);
  if (absl::IsNotFound(def.status()) && !quality) return absl::OkStatus();
  if (!def.ok() && !absl::IsNotFound(def.status())) return def.status();
  // The same whole buckets a report of this window reads.
  const Interval window = TrailingBuckets(now_ms, options_.window_ms, windows_->bucket_width_ms());
  DW_ASSIGN_OR_RETURN(SliceProfiles current, windows_->Read(model, window, {}));
  const std::vector<int32_t> chosen = ChooseSlices(current, options_.max_slices);
  if (def.ok()) {
    DW_ASSIGN_OR_RETURN(SliceProfiles refs, baselines_->Profiles(model, *def, now_ms, chosen));
    const std::vector<storage::SliceRecord> records = model.slices().Records();
    FrozenReferences frozen(def->bins);
    for (int32_t id : chosen) {
      auto cur = current.find(id);
      if (cur == current.end() || cur->second.counters().events == 0) continue;
      const Profile* reference = ReferenceFor(refs, id);
      if (reference == nullptr || static_cast<size_t>(id) >= records.size()) continue;
      DW_ASSIGN_OR_RETURN(const Reference* ref, frozen.For(*reference));
      v1::DriftReport report;
      DW_RETURN_IF_ERROR(reports::CompareProfiles(*ref, cur->second, &report));
      AddSignals(report, model.label(), model.SliceName(records[id]), out);
    }
  }
  if (quality) DW_RETURN_IF_ERROR(AddQuality(model, chosen, out));
  return absl::OkStatus();
}

absl::Status Evaluator::AddQuality(const RegisteredModel& model,
                                   const std::vector<int32_t>& slices,
                                   std::vector<detectors::Signal>* out) const {
  const std::vector<storage::SliceRecord> records = model.slices().Records();
  v1::GetQualityReportRequest request;
  *request.mutable_model() = model.ref();
  request.mutable_window()->set_last_seconds(options_.quality_window_ms / 1000);
  request.set_baseline(options_.baseline);
  for (int32_t id : slices) {
    if (static_cast<size_t>(id) >= records.size()) continue;
    const storage::SliceRecord& record = records[id];
    request.clear_slice();
    if (id != 0) {
      if (record.key_index < 0 || record.key_index >= model.slice_key_count()) continue;
      (*request.mutable_slice()->mutable_values())[model.slice_keys()[record.key_index]] =
          record.value;
    }
    absl::StatusOr<v1::QualityReport> r = reports_->GetQualityReport(request);
    // No baseline yet: the realised quality without the estimate and deltas.
    if (absl::IsNotFound(r.status())) {
      v1::GetQualityReportRequest without = request;
      without.clear_baseline();
      r = reports_->GetQualityReport(without);
    }
    if (absl::IsNotFound(r.status()) || absl::IsFailedPrecondition(r.status())) continue;
    if (!r.ok()) return r.status();
    const std::string slice = model.SliceName(record);
    auto emit = [&](std::string_view name, double value) {
      out->push_back(detectors::Signal{model.label(), slice, "", std::string(name), value});
    };
    if (r->predicted_weight() <= 0) continue;
    emit("label_coverage", r->label_coverage());
    const v1::QualityMetrics& m = r->current();
    if (m.has_auc()) {
      emit("auc", m.auc());
      emit("auc_error_bound", m.auc_error_bound());
      if (r->baseline_metrics().has_auc()) emit("auc_delta", r->auc_delta());
    }
    if (m.has_calibration()) {
      emit("ece", m.ece());
      emit("mce", m.mce());
      emit("brier", m.brier());
      if (r->baseline_metrics().has_calibration()) emit("ece_delta", r->ece_delta());
    }
    if (r->has_accuracy()) emit("accuracy", r->accuracy());
    if (r->has_estimate()) {
      emit("estimated_auc", r->estimated_auc());
      emit("estimated_accuracy", r->estimated_accuracy());
    }
    if (r->has_multiclass()) {
      emit("macro_auc", r->macro_auc());
      emit("log_loss", r->log_loss());
    }
    if (r->has_regression()) {
      emit("mae", r->mae());
      emit("rmse", r->rmse());
      emit("bias", r->bias());
    }
    if (r->has_ndcg()) emit("ndcg", r->ndcg());
    if (r->labelled_weight() > 0) {
      emit("label_delay_p95_seconds", r->label_delay_ms().p95() / 1000.0);
    }
  }
  return absl::OkStatus();
}

}  // namespace driftwatch::service
