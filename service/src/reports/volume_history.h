// Seasonal volume per slice (docs/data-quality.md "Volume"): each slice's
// events per closed hour, read once from the hour rows and kept, and the
// robust z of its current rate against them (detectors::ExpectVolume).
// What the evaluator's volume_z, Reports.GetDataQualityReport's volume
// fields and RankSlices' "volume_drop" are made of.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/detectors/volume.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/window_reader.h"
#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service::reports {

struct SliceVolume {
  double per_hour = 0;      // the current rate: events / hours measured
  double hours = 0;         // the span the rate was measured over
  detectors::VolumeExpectation expectation;
};

// Thread-safe. The cache holds, per model version, every slice's events
// per hour over the trailing max_weeks weeks (+1 h): closed hour rows do
// not change, so each evaluation reads only the hours closed since the
// last one (Profile::PeekCounters: the header, not the summaries).
class VolumeHistory {
 public:
  // `windows` must outlive the history.
  explicit VolumeHistory(const WindowReader* windows, detectors::VolumeOptions options = {});

  // For each of `slices` that has history: its rate over [window.start_ms,
  // covered_end_ms) (its events in `current`, 0 when absent) against its
  // hours before the hour holding window.start_ms. History starts at the
  // slice's first hour with events in the look-back (so a new slice is not
  // compared with zeros from before it existed). Hours before that hour not
  // yet closed are read from the minute rows, up to a day of them; with
  // more, or with buckets that do not divide an hour, the expectation is
  // kNone. Storage errors are returned.
  absl::StatusOr<std::map<int32_t, SliceVolume>> Expect(const RegisteredModel& model,
                                                        Interval window, int64_t covered_end_ms,
                                                        const SliceProfiles& current,
                                                        const std::vector<int32_t>& slices)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Slices with events in a closed hour in [since_ms, the hour holding
  // window.start_ms), the most recently busy first (events in their last
  // such hour), at most `limit`: the slices a window that lost them should
  // still look at (a slice that stopped has no profile in the window).
  absl::StatusOr<std::vector<int32_t>> ActiveSince(const RegisteredModel& model, Interval window,
                                                   int64_t since_ms, size_t limit)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct ModelHours {
    int64_t from_ms = 0;   // closed hours in [from_ms, until_ms) are in `hourly`
    int64_t until_ms = 0;
    std::map<int32_t, std::map<int64_t, double>> hourly;  // by slice, by hour start
  };

  // Brings the model's whole closed hours up to date for a window whose
  // current hour is `current_hour`; the look-back starts at `from`.
  absl::StatusOr<ModelHours*> Refresh(const RegisteredModel& model, int64_t from,
                                      int64_t current_hour) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t LookBack(int64_t current_hour) const;

  const WindowReader* const windows_;
  const detectors::VolumeOptions options_;
  absl::Mutex mu_;
  std::map<int64_t, ModelHours> models_ ABSL_GUARDED_BY(mu_);  // by model key
};

// The volume fields of a data-quality report (volume, volume_expected,
// volume_z, volume_baseline, volume_history).
void SetVolume(const SliceVolume& volume, v1::DataQualityReport* out);

}  // namespace driftwatch::service::reports
