// The data-quality report of one slice's window profile (docs/data-quality.md):
// what Reports.GetDataQualityReport answers and what the evaluator's
// data-quality signals are made of, so the two always agree.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "driftwatch/detectors/profile.h"
#include "driftwatch/detectors/signal.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service::reports {

struct DataQualityOptions {
  // A slice that sent nothing for this long (server clock) is silent.
  int64_t silence_timeout_ms = 10 * 60'000;
};

// Fills the data-quality fields of `out` from `current` (the slice's
// merged window) and, when not null, `reference` (its baseline profile:
// reference null rates and fingerprints; `reference_hashes` adds an
// uploaded reference's declared fingerprints). `now_ms` is the server clock.
void BuildDataQuality(const RegisteredModel& model, const detectors::Profile& current,
                      const detectors::Profile* reference,
                      const std::vector<std::string>& reference_hashes, int64_t now_ms,
                      const DataQualityOptions& options, v1::DataQualityReport* out);

// A slice is silent when it sent nothing for the silence timeout *and*
// its rate makes that unlikely by chance: at least this many events would
// have come meanwhile (Poisson P(none) = e^-6 = 0.25 %), so a slice that
// sends a few events an hour does not page each time it pauses.
inline constexpr double kMinExpectedInSilence = 6;

// Clears `report->silent` unless its rate (events per hour) times its
// silence_seconds reaches kMinExpectedInSilence. The rate is the seasonal
// expectation when the report has one (SetVolume), else `per_hour`.
void QualifySilence(double per_hour, v1::DataQualityReport* report);

// The value of RankSlices data-quality metric `metric` in `report`
// (largest is worst; "volume_drop" is -volume_z, absent without an
// expectation: SetVolume),
// with the feature that gave it ("" for slice-level metrics); nullopt for
// a metric that is not a data-quality one.
std::optional<std::pair<double, std::string>> DataQualityMetric(
    const v1::DataQualityReport& report, const std::string& metric, const std::string& feature);
bool IsDataQualityMetric(const std::string& metric);

// The evaluator's data-quality signals of one report (names: docs/alerting.md).
void AddDataQualitySignals(const v1::DataQualityReport& report, const std::string& model,
                           const std::string& slice, std::vector<detectors::Signal>* out);

}  // namespace driftwatch::service::reports
