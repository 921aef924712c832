// Comparing a current profile with a frozen reference: per feature and
// per score, PSI / KL / JS, KS (with its error bound), chi-squared,
// Wasserstein-1, null and invalid rates, and the drift verdict; plus the
// metrics a slice ranking or a signal picks from a report.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service::reports {

// Every feature and score of `current` against `ref`, in schema order,
// appended to out->features() and out->scores(). A feature with no data on
// one side gets its counts and rates but no statistics.
absl::Status CompareProfiles(const Reference& ref, const detectors::Profile& current,
                             v1::DriftReport* out);

// Whether a feature report carries statistics (both sides had data).
bool HasStatistics(const v1::FeatureDriftReport& f);

// What RankSlices ranks by.
enum class Metric { kPsi, kJs, kKs, kWassersteinNorm };
// "" means psi. INVALID_ARGUMENT for an unknown name.
absl::StatusOr<Metric> ParseMetric(std::string_view name);
// The metric's value for one feature; nullopt when it does not apply.
std::optional<double> MetricOf(const v1::FeatureDriftReport& f, Metric metric);
// The summary bound of MetricOf (SliceRank.error_bound); 0 for PSI and JS.
double MetricBoundOf(const v1::FeatureDriftReport& f, Metric metric);

// Calls `fn` for every feature and score report.
void ForEachFeature(const v1::DriftReport& report,
                    const std::function<void(const v1::FeatureDriftReport&)>& fn);

}  // namespace driftwatch::service::reports
