#include "reports/comparison.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/detectors/drift.h"

namespace driftwatch::service::reports {
namespace {

using base::Sv;
using detectors::FeatureDrift;
using detectors::NumericBaseline;
using detectors::NumericSummary;
using detectors::Profile;

double InvalidRate(const detectors::ProfileCounters& c) {
  return c.events > 0 ? static_cast<double>(c.invalid_values) / static_cast<double>(c.events) : 0;
}

void FillDrift(const FeatureDrift& drift, v1::FeatureDriftReport* out) {
  out->set_psi(drift.divergences.psi);
  out->set_kl(drift.divergences.kl);
  out->set_js(drift.divergences.js);
  if (drift.ks) {
    out->mutable_ks()->set_statistic(drift.ks->statistic);
    out->mutable_ks()->set_p_value(drift.ks->p_value);
    out->mutable_ks()->set_error_bound(drift.ks->error_bound);
    out->mutable_ks()->set_p_value_low(drift.ks->p_value_low);
  }
  if (drift.chi2) {
    out->mutable_chi2()->set_statistic(drift.chi2->statistic);
    out->mutable_chi2()->set_df(drift.chi2->df);
    out->mutable_chi2()->set_p_value(drift.chi2->p_value);
  }
  if (drift.wasserstein) {
    out->set_wasserstein(drift.wasserstein->distance);
    out->set_wasserstein_norm(drift.wasserstein->normalized);
    out->set_wasserstein_error_bound(drift.wasserstein->error_bound);
    out->set_wasserstein_norm_error_bound(drift.wasserstein->normalized_error_bound);
  }
  out->set_drifted(detectors::IsDrifted(drift));
}

absl::Status CompareNumericFeature(const std::string& name,
                                   const std::optional<NumericBaseline>& frozen,
                                   const NumericSummary& reference, const NumericSummary& current,
                                   const detectors::ProfileCounters& counters,
                                   v1::FeatureDriftReport* out) {
  out->set_name(name);
  out->set_kind(v1::FEATURE_KIND_NUMERIC);
  out->set_n_reference(reference.counts().weight);
  out->set_n_current(current.counts().weight);
  const detectors::NumericCounts& c = current.counts();
  // Weighted, as every other proportion (and `driftctl stats`) is.
  const double all = c.missing_weight + c.weight;
  out->set_null_rate(all > 0 ? c.missing_weight / all : 0);
  const detectors::NumericCounts& r = reference.counts();
  const double ref_all = r.missing_weight + r.weight;
  out->set_reference_null_rate(ref_all > 0 ? r.missing_weight / ref_all : 0);
  out->set_mean(current.mean());
  out->set_reference_mean(reference.mean());
  out->set_invalid_rate(InvalidRate(counters));
  if (!frozen.has_value() || c.count == 0 || !(c.weight > 0)) return absl::OkStatus();
  absl::StatusOr<FeatureDrift> drift = detectors::CompareNumeric(*frozen, current);
  if (!drift.ok()) {
    return absl::Status(drift.status().code(),
                        absl::StrCat("feature \"", name, "\": ", drift.status().message()));
  }
  FillDrift(*drift, out);
  return absl::OkStatus();
}

absl::Status CompareCategoricalFeature(const std::string& name,
                                       const detectors::CategoricalSummary& reference,
                                       const detectors::CategoricalSummary& current,
                                       const detectors::ProfileCounters& counters,
                                       v1::FeatureDriftReport* out) {
  out->set_name(name);
  out->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  out->set_n_reference(reference.total_weight());
  out->set_n_current(current.total_weight());
  const double total = current.total_weight();
  out->set_null_rate(total > 0 ? current.missing_weight() / total : 0);
  const double ref_total = reference.total_weight();
  out->set_reference_null_rate(ref_total > 0 ? reference.missing_weight() / ref_total : 0);
  out->set_invalid_rate(InvalidRate(counters));
  if (!(reference.total_weight() > 0) || !(total > 0)) return absl::OkStatus();
  absl::StatusOr<FeatureDrift> drift = detectors::CompareCategorical(reference, current);
  if (!drift.ok()) {
    return absl::Status(drift.status().code(),
                        absl::StrCat("feature \"", name, "\": ", drift.status().message()));
  }
  FillDrift(*drift, out);
  return absl::OkStatus();
}

}  // namespace

absl::Status CompareProfiles(const Reference& ref, const Profile& current, v1::DriftReport* out) {
  const detectors::ProfileLayout& layout = current.layout();
  const Profile& reference = *ref.profile;
  const detectors::ProfileCounters& counters = current.counters();
  for (size_t f = 0; f < layout.numeric_names.size(); ++f) {
    DW_RETURN_IF_ERROR(CompareNumericFeature(layout.numeric_names[f], ref.numeric[f],
                                             reference.numeric()[f], current.numeric()[f], counters,
                                             out->add_features()));
  }
  for (size_t f = 0; f < layout.categorical_names.size(); ++f) {
    DW_RETURN_IF_ERROR(
        CompareCategoricalFeature(layout.categorical_names[f], reference.categorical()[f],
                                  current.categorical()[f], counters, out->add_features()));
  }
  for (size_t s = 0; s < layout.score_names.size(); ++s) {
    DW_RETURN_IF_ERROR(CompareNumericFeature(layout.score_names[s], ref.scores[s],
                                             reference.scores()[s], current.scores()[s], counters,
                                             out->add_scores()));
  }
  return absl::OkStatus();
}

bool HasStatistics(const v1::FeatureDriftReport& f) { return f.has_ks() || f.has_chi2(); }

absl::StatusOr<Metric> ParseMetric(std::string_view name) {
  if (name.empty() || name == "psi") return Metric::kPsi;
  if (name == "js") return Metric::kJs;
  if (name == "ks") return Metric::kKs;
  if (name == "wasserstein_norm") return Metric::kWassersteinNorm;
  return absl::InvalidArgumentError(
      absl::StrCat("metric \"", Sv(name), "\" is not one of psi, js, ks, wasserstein_norm, auc_drop, ece_rise"));
}

double MetricBoundOf(const v1::FeatureDriftReport& f, Metric metric) {
  if (!f.has_ks()) return 0.0;
  switch (metric) {
    case Metric::kKs:
      return f.ks().error_bound();
    case Metric::kWassersteinNorm:
      return f.wasserstein_norm_error_bound();
    case Metric::kPsi:
    case Metric::kJs:
      return 0.0;
  }
  return 0.0;
}

std::optional<double> MetricOf(const v1::FeatureDriftReport& f, Metric metric) {
  if (!HasStatistics(f)) return std::nullopt;
  switch (metric) {
    case Metric::kPsi:
      return f.psi();
    case Metric::kJs:
      return f.js();
    case Metric::kKs:
      if (!f.has_ks()) return std::nullopt;
      return f.ks().statistic();
    case Metric::kWassersteinNorm:
      if (!f.has_ks()) return std::nullopt;
      return f.wasserstein_norm();
  }
  return std::nullopt;
}

void ForEachFeature(const v1::DriftReport& report,
                    const std::function<void(const v1::FeatureDriftReport&)>& fn) {
  for (const v1::FeatureDriftReport& f : report.features()) fn(f);
  for (const v1::FeatureDriftReport& f : report.scores()) fn(f);
}

}  // namespace driftwatch::service::reports
