#include "driftwatch/service/evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/status_macros.h"
#include "reports/comparison.h"
#include "reports/data_quality.h"
#include "reports/volume_history.h"

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

// The signals one slice's report carries: per feature, and the model's
// first score at feature "" (score_*), so that a rule can join "feature
// PSI high AND score PSI high" on one slice.
void AddSignals(const v1::DriftReport& report, const std::string& model, const std::string& slice,
                std::vector<detectors::Signal>* out) {
  auto emit = [&](const std::string& feature, const char* name, double value,
                  double baseline = std::numeric_limits<double>::quiet_NaN()) {
    out->push_back(detectors::Signal{model, slice, feature, name, value, baseline});
  };
  for (const v1::FeatureDriftReport& f : report.features()) {
    emit(f.name(), "null_rate", f.null_rate(), f.reference_null_rate());
    if (!reports::HasStatistics(f)) continue;
    emit(f.name(), "psi", f.psi());
    emit(f.name(), "js", f.js());
    if (f.has_ks()) {
      emit(f.name(), "ks", f.ks().statistic());
      emit(f.name(), "ks_p", f.ks().p_value());
      emit(f.name(), "wasserstein_norm", f.wasserstein_norm());
      // The summaries' bounds (docs/statistics.md): KS is within [ks, ks +
      // bound], W1/sd within +- its bound; a rule can ask for both.
      emit(f.name(), "ks_error_bound", f.ks().error_bound());
      emit(f.name(), "wasserstein_norm_error_bound", f.wasserstein_norm_error_bound());
    }
    if (f.has_chi2()) emit(f.name(), "chi2_p", f.chi2().p_value());
  }
  if (report.scores_size() > 0) {
    const v1::FeatureDriftReport& f = report.scores(0);
    emit("", "score_null_rate", f.null_rate(), f.reference_null_rate());
    if (f.n_current() > 0) emit("", "score_mean", f.mean(), f.reference_mean());
    if (reports::HasStatistics(f)) {
      emit("", "score_psi", f.psi());
      emit("", "score_js", f.js());
      emit("", "score_ks", f.ks().statistic());
      emit("", "score_ks_p", f.ks().p_value());
      emit("", "score_wasserstein_norm", f.wasserstein_norm());
    }
  }
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
      volume_(std::make_unique<reports::VolumeHistory>(windows)),
      latest_(std::make_shared<const Evaluation>()) {}

Evaluator::~Evaluator() = default;

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
  if (!def.ok() && !absl::IsNotFound(def.status())) return def.status();
  // The same whole buckets a report of this window reads, ending at the
  // model's watermark (event time): a replay or a backfill is judged on its
  // own events, not on the wall clock's empty hour.
  const int64_t watermark = model.progress().watermark_ms;
  const int64_t width = windows_->bucket_width_ms();
  const Interval window =
      TrailingBuckets(watermark > 0 ? watermark : now_ms, options_.window_ms, width);
  // The window's last bucket holds the watermark and is only partly
  // filled: volume is events per bucket of the time up to the watermark.
  const int64_t covered_end =
      watermark > 0 ? std::min(window.end_ms, watermark + 1) : window.end_ms;
  const double buckets =
      width > 0 ? std::max<double>(1, static_cast<double>(covered_end - window.start_ms) / width)
                : 1;
  DW_ASSIGN_OR_RETURN(SliceProfiles current, windows_->Read(model, window, {}));
  const std::vector<int32_t> chosen = ChooseSlices(current, options_.max_slices);
  DW_ASSIGN_OR_RETURN(auto volumes,
                      volume_->Expect(model, window, covered_end, current, chosen));
  // Events per bucket, by slice; against the baseline's own rate where
  // the baseline is a range of the model's traffic.
  std::map<int32_t, double> baseline_volume;
  std::optional<SliceProfiles> refs;
  if (def.ok()) {
    DW_ASSIGN_OR_RETURN(refs, baselines_->Profiles(model, *def, now_ms, chosen));
    if (def->spec.source_case() != v1::BaselineSpec::kProfile) {
      const Interval range = baselines_->Range(def->spec, now_ms);
      const double ref_buckets =
          width > 0 ? static_cast<double>(range.end_ms - range.start_ms) / width : 0;
      for (const auto& [id, profile] : *refs) {
        if (ref_buckets >= 1) {
          baseline_volume[id] = static_cast<double>(profile.counters().events) / ref_buckets;
        }
      }
    }
  }
  const std::vector<storage::SliceRecord> records = model.slices().Records();
  for (int32_t id : chosen) {
    if (static_cast<size_t>(id) >= records.size()) continue;
    auto cur = current.find(id);
    const double events = cur == current.end() ? 0 : cur->second.counters().events;
    auto b = baseline_volume.find(id);
    const std::string slice = model.SliceName(records[id]);
    out->push_back(detectors::Signal{
        model.label(), slice, "", "volume", events / buckets,
        b == baseline_volume.end() ? std::numeric_limits<double>::quiet_NaN() : b->second});
    // What min_support counts by default: events in the window.
    out->push_back(detectors::Signal{model.label(), slice, "", "events", events});
  }
  if (def.ok()) {
    FrozenReferences frozen(def->bins);
    for (int32_t id : chosen) {
      auto cur = current.find(id);
      if (cur == current.end() || cur->second.counters().events == 0) continue;
      const Profile* reference = ReferenceFor(*refs, id);
      if (reference == nullptr || static_cast<size_t>(id) >= records.size()) continue;
      DW_ASSIGN_OR_RETURN(const Reference* ref, frozen.For(*reference));
      v1::DriftReport report;
      DW_RETURN_IF_ERROR(reports::CompareProfiles(*ref, cur->second, &report));
      AddSignals(report, model.label(), model.SliceName(records[id]), out);
    }
  }
  // Data quality, per chosen slice, from the same window (baseline or not).
  std::vector<std::string> declared_hashes;
  if (def.ok() && def->spec.has_profile()) {
    declared_hashes.assign(def->spec.profile().feature_hashes().begin(),
                           def->spec.profile().feature_hashes().end());
  }
  reports::DataQualityOptions dq;
  dq.silence_timeout_ms = options_.silence_timeout_ms;
  for (int32_t id : chosen) {
    auto cur = current.find(id);
    if (cur == current.end() || static_cast<size_t>(id) >= records.size()) continue;
    const Profile* reference = refs ? ReferenceFor(*refs, id) : nullptr;
    v1::DataQualityReport report;
    reports::BuildDataQuality(model, cur->second, reference, declared_hashes, now_ms, dq,
                              &report);
    if (auto v = volumes.find(id); v != volumes.end()) reports::SetVolume(v->second, &report);
    reports::QualifySilence(report.volume(), &report);
    const std::string slice = model.SliceName(records[id]);
    reports::AddDataQualitySignals(report, model.label(), slice, out);
    if (reference == nullptr) {
      // Without a baseline the drift signals (and their null_rate) are absent.
      for (const v1::FeatureQuality& f : report.features()) {
        out->push_back(detectors::Signal{model.label(), slice, f.name(), "null_rate",
                                         f.null_rate(),
                                         std::numeric_limits<double>::quiet_NaN()});
      }
    }
  }
  DW_RETURN_IF_ERROR(AddStopped(model, window, covered_end, now_ms, current, out));
  if (quality) DW_RETURN_IF_ERROR(AddQuality(model, chosen, out));
  if (reports_ != nullptr && model.joins_labels()) {
    DW_RETURN_IF_ERROR(AddShadow(model, window, now_ms, out));
  }
  return absl::OkStatus();
}

absl::Status Evaluator::AddShadow(const RegisteredModel& model, Interval window, int64_t now_ms,
                                  std::vector<detectors::Signal>* out) const {
  // Against every earlier-registered version of the same model that keeps
  // join state: the signals go on this (the later, the challenger) version,
  // feature = the version it is compared with.
  for (const std::shared_ptr<const RegisteredModel>& other : registry_->List()) {
    if (other->ref().model_id() != model.ref().model_id() ||
        other->model_key() >= model.model_key() || !other->joins_labels() ||
        other->schema().score_kind() != model.schema().score_kind()) {
      continue;
    }
    const std::pair<int64_t, int64_t> versions{other->model_key(), model.model_key()};
    std::optional<v1::CompareVersionsResponse> cached;
    {
      absl::MutexLock lock(&shadow_mu_);
      auto it = shadow_.find(versions);
      if (it != shadow_.end() && now_ms - it->second.at_ms < options_.shadow_interval_ms &&
          now_ms >= it->second.at_ms) {
        cached = it->second.response;
      }
    }
    absl::StatusOr<v1::CompareVersionsResponse> r;
    if (cached) {
      r = *std::move(cached);
    } else {
      v1::CompareVersionsRequest request;
      request.set_model_name(model.ref().model_id());
      request.set_version_a(other->ref().model_version());
      request.set_version_b(model.ref().model_version());
      SetRange(window, request.mutable_window()->mutable_range());
      r = reports_->CompareVersions(request);
      if (absl::IsFailedPrecondition(r.status()) || absl::IsNotFound(r.status())) continue;
      if (!r.ok()) return r.status();
      absl::MutexLock lock(&shadow_mu_);
      shadow_[versions] = ShadowResult{now_ms, *r};
    }
    if (r->population().paired() == 0) continue;
    const std::string& versus = other->ref().model_version();
    auto emit_all = [&](const std::string& slice, const v1::VersionAgreement& g) {
      if (g.paired() == 0) return;
      auto emit = [&](const char* name, double value) {
        if (std::isfinite(value)) {
          out->push_back(detectors::Signal{model.label(), slice, versus, name, value,
                                           std::numeric_limits<double>::quiet_NaN()});
        }
      };
      emit("shadow_paired", static_cast<double>(g.paired()));
      emit("shadow_score_correlation", g.score_correlation());
      emit("shadow_decision_agreement", g.decision_agreement());
      emit("shadow_topk_overlap", g.topk_overlap());
      emit("shadow_psi", g.psi());
      emit("shadow_mean_abs_diff", g.mean_abs_diff());
    };
    emit_all(std::string(base::kAllSlice), r->population());
    for (const v1::VersionAgreement& g : r->slices()) {
      if (g.slice().values().empty()) continue;
      absl::StatusOr<std::pair<int, std::string>> key = other->SelectorKey(g.slice());
      if (!key.ok()) continue;
      emit_all(other->SliceName(storage::SliceRecord{0, 0, key->first, key->second}), g);
    }
  }
  return absl::OkStatus();
}

absl::Status Evaluator::AddStopped(const RegisteredModel& model, Interval window,
                                   int64_t covered_end, int64_t now_ms,
                                   const SliceProfiles& current,
                                   std::vector<detectors::Signal>* out) const {
  // Slices busy in the last day's closed hours with no event in the window:
  // they stopped. No window profile names them, so their volume and
  // silence come from the hours they were last seen in.
  DW_ASSIGN_OR_RETURN(std::vector<int32_t> recent,
                      volume_->ActiveSince(model, window, window.start_ms - kStoppedLookBackMs,
                                           static_cast<size_t>(std::max(0, options_.max_slices)) +
                                               1));
  std::vector<int32_t> stopped;
  for (int32_t id : recent) {
    auto cur = current.find(id);
    if (id != 0 && (cur == current.end() || cur->second.counters().events == 0)) {
      stopped.push_back(id);
    }
  }
  if (stopped.empty()) return absl::OkStatus();
  DW_ASSIGN_OR_RETURN(auto volumes,
                      volume_->Expect(model, window, covered_end, current, stopped));
  DW_ASSIGN_OR_RETURN(
      SliceProfiles last_seen,
      windows_->Read(model, Interval{window.start_ms - kStoppedLookBackMs, window.end_ms},
                     stopped));
  const std::vector<storage::SliceRecord> records = model.slices().Records();
  reports::DataQualityOptions dq;
  dq.silence_timeout_ms = options_.silence_timeout_ms;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int32_t id : stopped) {
    if (static_cast<size_t>(id) >= records.size()) continue;
    const std::string slice = model.SliceName(records[id]);
    auto emit = [&](const char* name, double value, double baseline) {
      out->push_back(detectors::Signal{model.label(), slice, "", name, value, baseline});
    };
    v1::DataQualityReport report;
    if (auto seen = last_seen.find(id); seen != last_seen.end()) {
      reports::BuildDataQuality(model, seen->second, nullptr, {}, now_ms, dq, &report);
    }
    if (auto v = volumes.find(id); v != volumes.end()) reports::SetVolume(v->second, &report);
    // Without a seasonal expectation: its rate over the day it was last seen in.
    reports::QualifySilence(
        static_cast<double>(report.events()) * 3'600'000.0 /
            static_cast<double>(window.end_ms - window.start_ms + kStoppedLookBackMs),
        &report);
    emit("volume", 0, nan);
    emit("events", 0, nan);
    if (report.volume_baseline() != "none" && !report.volume_baseline().empty()) {
      emit("volume_z", report.volume_z(), report.volume_expected());
    }
    if (report.silence_seconds() > 0) {
      emit("freshness_seconds", report.freshness_seconds(), nan);
      emit("silence_seconds", report.silence_seconds(), nan);
      emit("slice_silent", report.silent() ? 1.0 : 0.0, nan);
    }
  }
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
      *request.mutable_slice() = model.SelectorOf(record);
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
    auto emit = [&](std::string_view name, double value,
                    double baseline = std::numeric_limits<double>::quiet_NaN()) {
      out->push_back(
          detectors::Signal{model.label(), slice, "", std::string(name), value, baseline});
    };
    const v1::QualityMetrics& b = r->baseline_metrics();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Cross-stream consistency: labels without a prediction, per label
    // source (model-level, on "*"), and predictions whose label window
    // passed unlabelled, per slice.
    if (id == 0) {
      for (const v1::SourceLabelCounts& c : r->counts().sources()) {
        const double arrived = static_cast<double>(c.joined() + c.orphan());
        if (arrived <= 0) continue;
        out->push_back(detectors::Signal{model.label(), slice, c.source(), "orphan_label_rate",
                                         c.orphan() / arrived,
                                         std::numeric_limits<double>::quiet_NaN()});
      }
    }
    if (r->counts().predictions() > 0) {
      emit("unlabelled_rate", static_cast<double>(r->counts().expired()) /
                                  static_cast<double>(r->counts().predictions()));
    }
    if (r->predicted_weight() <= 0) continue;
    emit("label_coverage", r->label_coverage());
    emit("labelled", r->labelled_weight());  // support_signal: labelled
    const v1::QualityMetrics& m = r->current();
    if (m.has_auc()) {
      emit("auc", m.auc(), b.has_auc() ? b.auc() : nan);
      emit("auc_error_bound", m.auc_error_bound());
      if (r->baseline_metrics().has_auc()) emit("auc_delta", r->auc_delta());
    }
    if (m.has_calibration()) {
      emit("ece", m.ece(), b.has_calibration() ? b.ece() : nan);
      emit("mce", m.mce(), b.has_calibration() ? b.mce() : nan);
      emit("brier", m.brier(), b.has_calibration() ? b.brier() : nan);
      if (r->baseline_metrics().has_calibration()) emit("ece_delta", r->ece_delta());
    }
    if (r->has_accuracy()) emit("accuracy", r->accuracy());
    if (r->has_estimate()) {
      // Against the baseline's realised AUC: change(estimated_auc) is the
      // drop expected before the labels arrive.
      emit("estimated_auc", r->estimated_auc(), b.has_auc() ? b.auc() : nan);
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
      emit("label_delay_p95", r->label_delay_ms().p95() / 1000.0);
    }
  }
  return absl::OkStatus();
}

}  // namespace driftwatch::service
