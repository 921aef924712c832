#include "driftwatch/service/reports.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/status_macros.h"
#include "reports/comparison.h"
#include "reports/data_quality.h"
#include "reports/volume_history.h"

namespace driftwatch::service {
namespace {

using detectors::Profile;
using reports::Metric;

bool HasData(const Profile& p) { return p.counters().events > 0; }

std::string SelectorName(const v1::SliceSelector& selector) {
  if (selector.values().empty()) return std::string(base::kAllSlice);
  std::map<std::string, std::string> sorted(selector.values().begin(), selector.values().end());
  std::string out;
  for (const auto& [key, value] : sorted) {
    absl::StrAppend(&out, out.empty() ? "" : ",", key, "=", value);
  }
  return out;
}

// FAILED_PRECONDITION saying why while a model learns its summary edges.
absl::Status CheckNotLearning(const RegisteredModel& model) {
  if (!model.learning()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "model ", model.label(),
      " is still learning the summary edges of its features registered without a "
      "reference_sample from its first traffic; its events are held and "
      "enter reports once they are learned (ingest.learn_edges_values values per feature, or "
      "ingest.learn_edges_max_wait), or as soon as a baseline profile is uploaded"));
}

// INVALID_ARGUMENT unless `feature` (may be empty: any) is a feature or
// score of the model that `metric` applies to.
absl::Status CheckRankedFeature(const RegisteredModel& model, const std::string& feature,
                                Metric metric, const std::string& metric_name) {
  if (feature.empty()) return absl::OkStatus();
  const std::shared_ptr<const detectors::ProfileLayout> layout = model.layout();
  const auto& scores = layout->score_names;
  const bool numeric = model.NumericIndex(feature).has_value() ||
                       std::count(scores.begin(), scores.end(), feature) > 0;
  const bool categorical = model.CategoricalIndex(feature).has_value();
  if (!numeric && !categorical) {
    return absl::InvalidArgumentError(absl::StrCat("feature \"", feature,
                                                   "\" is not a feature or score of model ",
                                                   model.label()));
  }
  if (!numeric && (metric == Metric::kKs || metric == Metric::kWassersteinNorm)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric \"", metric_name, "\" does not apply to categorical feature \"", feature, "\""));
  }
  return absl::OkStatus();
}

// The feature (restricted to `feature` when set) with the largest metric.
std::optional<std::pair<std::string, double>> Worst(const v1::DriftReport& report, Metric metric,
                                                    const std::string& feature) {
  std::optional<std::pair<std::string, double>> best;
  reports::ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
    if (!feature.empty() && f.name() != feature) return;
    std::optional<double> v = reports::MetricOf(f, metric);
    if (v && (!best || *v > best->second)) best.emplace(f.name(), *v);
  });
  return best;
}

}  // namespace

ReportEngine::ReportEngine(const ModelRegistry* registry, const WindowReader* windows,
                           const Baselines* baselines, const base::Clock* clock,
                           ReportOptions options)
    : registry_(registry),
      windows_(windows),
      baselines_(baselines),
      clock_(clock),
      options_(std::move(options)),
      volume_(std::make_unique<reports::VolumeHistory>(windows)) {}

ReportEngine::~ReportEngine() = default;

absl::StatusOr<ReportEngine::Query> ReportEngine::Prepare(
    std::shared_ptr<const RegisteredModel> model, const v1::Window& window,
    const std::string& baseline) const {
  Query q;
  q.model = std::move(model);
  q.now_ms = clock_->NowMs();
  DW_ASSIGN_OR_RETURN(q.window, windows_->Resolve(window, options_.default_window_ms, q.now_ms));
  DW_ASSIGN_OR_RETURN(q.baseline, baselines_->Load(*q.model, baseline));
  return q;
}

absl::StatusOr<int32_t> ReportEngine::ResolveSlice(const RegisteredModel& model,
                                                   const v1::SliceSelector& selector) const {
  if (selector.values().empty()) return 0;
  DW_ASSIGN_OR_RETURN(auto key, model.SelectorKey(selector));
  std::optional<int32_t> id = model.slices().Find(key.first, key.second);
  if (!id) {
    return absl::NotFoundError(absl::StrCat("slice ", SelectorName(selector), " of model ",
                                            model.label(), " has never been seen"));
  }
  return *id;
}

absl::StatusOr<v1::DriftReport> ReportEngine::GetDriftReport(
    const v1::GetDriftReportRequest& request) const {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  // Its events are all held: nothing to report yet, and that is why.
  DW_RETURN_IF_ERROR(CheckNotLearning(*model));
  DW_ASSIGN_OR_RETURN(int32_t slice_id, ResolveSlice(*model, request.slice()));
  DW_ASSIGN_OR_RETURN(Query q, Prepare(model, request.window(), request.baseline()));
  DW_ASSIGN_OR_RETURN(SliceProfiles current, windows_->Read(*q.model, q.window, {slice_id}));
  auto cur = current.find(slice_id);
  if (cur == current.end() || !HasData(cur->second)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", q.model->label(), " has no events in slice ", SelectorName(request.slice()),
        " in the window [", q.window.start_ms, ", ", q.window.end_ms, ") ms"));
  }
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const OwnedReference> reference,
                      baselines_->Frozen(*q.model, q.baseline, slice_id, q.now_ms));
  v1::DriftReport report;
  *report.mutable_model() = q.model->ref();
  *report.mutable_slice() = request.slice();
  SetRange(q.window, report.mutable_window());
  report.set_baseline(q.baseline.name);
  DW_RETURN_IF_ERROR(reports::CompareProfiles(reference->frozen, cur->second, &report));
  report.mutable_counts()->set_events(cur->second.counters().events);
  report.mutable_counts()->set_late_accepted(cur->second.counters().late_accepted);
  // Losses are the model's (a rejected event may name no slice).
  DW_ASSIGN_OR_RETURN(storage::ArrivalCounts lost, windows_->ReadArrivals(*q.model, q.window));
  report.mutable_counts()->set_duplicates(lost.duplicates);
  report.mutable_counts()->set_too_late(lost.too_late);
  report.mutable_counts()->set_rejected(lost.rejected);
  return report;
}

absl::StatusOr<v1::RankSlicesResponse> ReportEngine::RankSlices(
    const v1::RankSlicesRequest& request) const {
  if (request.metric() == "auc_drop" || request.metric() == "ece_rise") {
    return RankQuality(request, request.metric() == "auc_drop");
  }
  if (reports::IsDataQualityMetric(request.metric())) return RankDataQuality(request);
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  DW_RETURN_IF_ERROR(CheckNotLearning(*model));
  DW_ASSIGN_OR_RETURN(Metric metric, reports::ParseMetric(request.metric()));
  const std::string& feature = request.feature();
  DW_RETURN_IF_ERROR(CheckRankedFeature(*model, feature, metric, request.metric()));
  if (request.min_support() < 0 || !std::isfinite(request.min_support())) {
    return absl::InvalidArgumentError("min_support must be a finite number >= 0");
  }
  const double min_support =
      request.min_support() > 0 ? request.min_support() : options_.default_min_support;
  const uint32_t top_k = request.top_k() > 0 ? request.top_k() : options_.default_top_k;
  DW_ASSIGN_OR_RETURN(Query q, Prepare(model, request.window(), request.baseline()));

  DW_ASSIGN_OR_RETURN(SliceProfiles current, windows_->Read(*q.model, q.window, {}));
  std::vector<int32_t> candidates;
  for (const auto& [id, profile] : current) {
    if (id != 0 && HasData(profile) && profile.counters().weight >= min_support) {
      candidates.push_back(id);
    }
  }
  v1::RankSlicesResponse response;
  if (candidates.empty()) return response;
  std::vector<int32_t> wanted = candidates;
  wanted.push_back(0);
  DW_ASSIGN_OR_RETURN(SliceProfiles refs,
                      baselines_->Profiles(*q.model, q.baseline, q.now_ms, wanted));
  FrozenReferences frozen(q.baseline.bins);
  // Slice `id`'s report against its reference; false when it has none.
  auto compare = [&](int32_t id, v1::DriftReport* out) -> absl::StatusOr<bool> {
    const Profile* reference = ReferenceFor(refs, id);
    if (reference == nullptr) return false;
    DW_ASSIGN_OR_RETURN(const Reference* ref, frozen.For(*reference));
    DW_RETURN_IF_ERROR(reports::CompareProfiles(*ref, current.at(id), out));
    return true;
  };
  // Population values per feature, for SliceRank.population_value.
  std::map<std::string, double> population;
  if (auto it = current.find(0); it != current.end() && HasData(it->second)) {
    v1::DriftReport report;
    DW_ASSIGN_OR_RETURN(bool ok, compare(0, &report));
    if (ok) {
      reports::ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
        if (std::optional<double> v = reports::MetricOf(f, metric)) population[f.name()] = *v;
      });
    }
  }
  if (ReferenceFor(refs, 0) == nullptr) return Baselines::NoData(*q.model, q.baseline);

  const std::vector<storage::SliceRecord> records = q.model->slices().Records();
  std::vector<v1::SliceRank> ranks;
  for (int32_t id : candidates) {
    v1::DriftReport report;
    DW_ASSIGN_OR_RETURN(bool ok, compare(id, &report));
    std::optional<std::pair<std::string, double>> worst;
    if (ok) worst = Worst(report, metric, feature);
    if (!worst || static_cast<size_t>(id) >= records.size()) continue;
    v1::SliceRank& rank = ranks.emplace_back();
    *rank.mutable_slice() = q.model->SelectorOf(records[id]);
    rank.set_value(worst->second);
    rank.set_feature(worst->first);
    reports::ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
      if (f.name() == worst->first) rank.set_error_bound(reports::MetricBoundOf(f, metric));
    });
    rank.set_support(current.at(id).counters().weight);
    if (auto p = population.find(worst->first); p != population.end()) {
      rank.set_population_value(p->second);
    }
  }
  std::stable_sort(ranks.begin(), ranks.end(), [](const v1::SliceRank& a, const v1::SliceRank& b) {
    return a.value() > b.value();
  });
  if (ranks.size() > top_k) ranks.resize(top_k);
  for (v1::SliceRank& r : ranks) *response.add_slices() = std::move(r);
  return response;
}

absl::StatusOr<v1::Baseline> ReportEngine::CreateBaseline(
    const v1::CreateBaselineRequest& request) const {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  const v1::BaselineSpec& spec = request.baseline();
  if (model->learning() && spec.has_profile()) {
    // The reference itself is the best sample to learn the edges from;
    // ingest replays what it held into the learned layout at its next flush.
    const v1::ReferenceProfile& ref = spec.profile();
    std::vector<std::vector<double>> values;
    const std::shared_ptr<const detectors::ProfileLayout> layout = model->layout();
    for (int f : model->learning_numeric()) {
      std::vector<double>& v = values.emplace_back();
      for (const v1::NumericColumn& column : ref.numeric()) {
        if (column.name() != layout->numeric_names[f]) continue;
        for (double x : column.values()) {
          if (std::isfinite(x)) v.push_back(x);
        }
      }
    }
    const int scores = model->score_count();
    const int rows = scores > 0 ? ref.scores_size() / scores : 0;
    for (int s : model->learning_scores()) {
      std::vector<double>& v = values.emplace_back();
      for (int i = 0; i < rows && ref.scores_size() % scores == 0; ++i) {
        const double x = ref.scores(s * rows + i);
        if (std::isfinite(x)) v.push_back(x);
      }
    }
    DW_RETURN_IF_ERROR(registry_->FinishLearning(*model, values).status());
  }
  return baselines_->Create(*model, spec, clock_->NowMs());
}

absl::StatusOr<v1::ListBaselinesResponse> ReportEngine::ListBaselines(
    const v1::ListBaselinesRequest& request) const {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  return baselines_->List(*model, clock_->NowMs());
}

}  // namespace driftwatch::service

namespace driftwatch::service {

absl::StatusOr<v1::RankSlicesResponse> ReportEngine::RankDataQuality(
    const v1::RankSlicesRequest& request) const {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  DW_RETURN_IF_ERROR(CheckNotLearning(*model));
  if (request.min_support() < 0 || !std::isfinite(request.min_support())) {
    return absl::InvalidArgumentError("min_support must be a finite number >= 0");
  }
  const double min_support =
      request.min_support() > 0 ? request.min_support() : options_.default_min_support;
  const uint32_t top_k = request.top_k() > 0 ? request.top_k() : options_.default_top_k;
  const int64_t now_ms = clock_->NowMs();
  DW_ASSIGN_OR_RETURN(Interval window,
                      windows_->Resolve(request.window(), options_.default_window_ms, now_ms));
  DW_ASSIGN_OR_RETURN(SliceProfiles current, windows_->Read(*model, window, {}));
  const std::vector<storage::SliceRecord> records = model->slices().Records();
  reports::DataQualityOptions options;
  options.silence_timeout_ms = silence_timeout_ms_;
  std::map<int32_t, reports::SliceVolume> volumes;
  if (request.metric() == "volume_drop") {
    std::vector<int32_t> ids;
    for (const auto& [id, profile] : current) ids.push_back(id);
    DW_ASSIGN_OR_RETURN(volumes, volume_->Expect(*model, window, std::min(window.end_ms, now_ms + 1),
                                                 current, ids));
  }
  auto value_of = [&](int32_t id, const Profile& p) {
    v1::DataQualityReport report;
    reports::BuildDataQuality(*model, p, nullptr, {}, now_ms, options, &report);
    if (auto v = volumes.find(id); v != volumes.end()) reports::SetVolume(v->second, &report);
    return reports::DataQualityMetric(report, request.metric(), request.feature());
  };
  std::optional<std::pair<double, std::string>> population;
  if (auto it = current.find(0); it != current.end()) population = value_of(0, it->second);
  std::vector<v1::SliceRank> ranks;
  for (const auto& [id, profile] : current) {
    if (id == 0 || static_cast<size_t>(id) >= records.size() ||
        profile.counters().weight < min_support) {
      continue;
    }
    std::optional<std::pair<double, std::string>> v = value_of(id, profile);
    if (!v) continue;
    v1::SliceRank& rank = ranks.emplace_back();
    *rank.mutable_slice() = model->SelectorOf(records[id]);
    rank.set_value(v->first);
    rank.set_feature(v->second);
    rank.set_support(profile.counters().weight);
    if (population) rank.set_population_value(population->first);
  }
  std::stable_sort(ranks.begin(), ranks.end(), [](const v1::SliceRank& a, const v1::SliceRank& b) {
    return a.value() > b.value();
  });
  if (ranks.size() > top_k) ranks.resize(top_k);
  v1::RankSlicesResponse response;
  for (v1::SliceRank& r : ranks) *response.add_slices() = std::move(r);
  return response;
}

absl::StatusOr<v1::DataQualityReport> ReportEngine::GetDataQualityReport(
    const v1::GetDataQualityReportRequest& request) const {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  DW_RETURN_IF_ERROR(CheckNotLearning(*model));
  DW_ASSIGN_OR_RETURN(int32_t slice_id, ResolveSlice(*model, request.slice()));
  const int64_t now_ms = clock_->NowMs();
  DW_ASSIGN_OR_RETURN(Interval window,
                      windows_->Resolve(request.window(), options_.default_window_ms, now_ms));
  DW_ASSIGN_OR_RETURN(SliceProfiles current, windows_->Read(*model, window, {slice_id}));
  auto cur = current.find(slice_id);
  if (cur == current.end() ||
      (cur->second.counters().events == 0 && cur->second.quality().duplicates == 0)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", model->label(), " has no events in slice ", SelectorName(request.slice()),
        " in the window [", window.start_ms, ", ", window.end_ms, ") ms"));
  }
  // The baseline is optional here: a missing one leaves the reference
  // null rates and fingerprints out.
  std::optional<SliceProfiles> refs;
  std::vector<std::string> declared;
  absl::StatusOr<BaselineDef> def = baselines_->Load(*model, request.baseline());
  if (def.ok()) {
    absl::StatusOr<SliceProfiles> r = baselines_->Profiles(*model, *def, now_ms, {slice_id, 0});
    if (r.ok()) refs = std::move(*r);
    if (def->spec.has_profile()) {
      declared.assign(def->spec.profile().feature_hashes().begin(),
                      def->spec.profile().feature_hashes().end());
    }
  } else if (!absl::IsNotFound(def.status())) {
    return def.status();
  }
  v1::DataQualityReport report;
  *report.mutable_model() = model->ref();
  *report.mutable_slice() = request.slice();
  SetRange(window, report.mutable_window());
  reports::DataQualityOptions options;
  options.silence_timeout_ms = silence_timeout_ms_;
  reports::BuildDataQuality(*model, cur->second, refs ? ReferenceFor(*refs, slice_id) : nullptr,
                            declared, now_ms, options, &report);
  DW_ASSIGN_OR_RETURN(auto volumes,
                      volume_->Expect(*model, window, std::min(window.end_ms, now_ms + 1),
                                      current, {slice_id}));
  if (auto v = volumes.find(slice_id); v != volumes.end()) reports::SetVolume(v->second, &report);
  reports::QualifySilence(report.volume(), &report);
  return report;
}

}  // namespace driftwatch::service
