#include "reports/volume_history.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "driftwatch/base/status_macros.h"
#include "driftwatch/storage/bucket_store.h"

namespace driftwatch::service::reports {
namespace {

using storage::kHourMs;
constexpr int64_t kWeekMs = 7 * 24 * kHourMs;
// Hours before the current one that are not closed yet and are read from
// minute rows instead; more than this and there is no expectation.
constexpr int64_t kMaxOpenHistoryHours = 24;

}  // namespace

VolumeHistory::VolumeHistory(const WindowReader* windows, detectors::VolumeOptions options)
    : windows_(windows), options_(options) {}

absl::StatusOr<std::map<int32_t, SliceVolume>> VolumeHistory::Expect(
    const RegisteredModel& model, Interval window, int64_t covered_end_ms,
    const SliceProfiles& current, const std::vector<int32_t>& slices) {
  std::map<int32_t, SliceVolume> out;
  const int64_t width = windows_->bucket_width_ms();
  const double hours =
      std::max<double>(0, static_cast<double>(covered_end_ms - window.start_ms)) / kHourMs;
  for (int32_t id : slices) {
    SliceVolume& v = out[id];
    auto cur = current.find(id);
    v.hours = hours;
    v.per_hour = hours > 0 && cur != current.end()
                     ? static_cast<double>(cur->second.counters().events) / hours
                     : 0;
  }
  if (width <= 0 || kHourMs % width != 0 || hours <= 0) return out;
  const int64_t current_hour = storage::BucketStart(window.start_ms, kHourMs);
  const int64_t from = LookBack(current_hour);
  absl::MutexLock lock(&mu_);
  DW_ASSIGN_OR_RETURN(ModelHours * hours_of, Refresh(model, from, current_hour));
  ModelHours& m = *hours_of;
  // Hours after the whole ones and before the current one: from the
  // minute rows, one read per hour (normally none: the watermark's
  // lateness is minutes, the window starts an hour back).
  std::map<int32_t, std::map<int64_t, double>> open;
  const int64_t open_from = std::max(m.until_ms, from);
  if (current_hour - open_from > kMaxOpenHistoryHours * kHourMs) return out;
  for (int64_t h = open_from; h < current_hour; h += kHourMs) {
    DW_ASSIGN_OR_RETURN(SliceProfiles got, windows_->Read(model, Interval{h, h + kHourMs}, slices));
    for (const auto& [slice, profile] : got) {
      if (profile.counters().events > 0) {
        open[slice][h] = static_cast<double>(profile.counters().events);
      }
    }
  }
  for (int32_t id : slices) {
    std::map<int64_t, double> history;
    if (auto it = m.hourly.find(id); it != m.hourly.end()) history = it->second;
    if (auto it = open.find(id); it != open.end()) {
      history.insert(it->second.begin(), it->second.end());
    }
    if (history.empty()) continue;  // no hour with events yet: kNone
    SliceVolume& v = out[id];
    v.expectation = detectors::ExpectVolume(history, history.begin()->first, current_hour,
                                            v.per_hour, v.hours, options_);
  }
  return out;
}

int64_t VolumeHistory::LookBack(int64_t current_hour) const {
  const int64_t seasonal = current_hour - std::max(0, options_.max_weeks) * kWeekMs - kHourMs;
  const int64_t trailing = current_hour - std::max(0, options_.trailing_hours) * kHourMs;
  return std::max<int64_t>(0, std::min(seasonal, trailing));
}

absl::StatusOr<VolumeHistory::ModelHours*> VolumeHistory::Refresh(const RegisteredModel& model,
                                                                  int64_t from,
                                                                  int64_t current_hour) {
  DW_ASSIGN_OR_RETURN(int64_t closed, windows_->ClosedUntil(model.model_key()));
  // Hours before this one are whole in the hour rows.
  const int64_t whole_until = std::min(storage::BucketStart(closed, kHourMs), current_hour);
  ModelHours& m = models_[model.model_key()];
  if (from < m.from_ms || from > m.until_ms || m.until_ms == 0) {
    m = ModelHours{};
    m.from_ms = m.until_ms = from;
  }
  if (whole_until > m.until_ms) {
    DW_ASSIGN_OR_RETURN(auto fresh,
                        windows_->ReadHourlyEvents(model, Interval{m.until_ms, whole_until}));
    for (auto& [slice, by_hour] : fresh) m.hourly[slice].merge(by_hour);
    m.until_ms = whole_until;
  }
  // Forget what the look-back has passed.
  if (from > m.from_ms) {
    for (auto it = m.hourly.begin(); it != m.hourly.end();) {
      auto& by_hour = it->second;
      by_hour.erase(by_hour.begin(), by_hour.lower_bound(from));
      it = by_hour.empty() ? m.hourly.erase(it) : std::next(it);
    }
    m.from_ms = from;
  }
  return &m;
}

absl::StatusOr<std::vector<int32_t>> VolumeHistory::ActiveSince(const RegisteredModel& model,
                                                                Interval window, int64_t since_ms,
                                                                size_t limit) {
  const int64_t width = windows_->bucket_width_ms();
  std::vector<int32_t> out;
  if (width <= 0 || kHourMs % width != 0) return out;
  const int64_t current_hour = storage::BucketStart(window.start_ms, kHourMs);
  absl::MutexLock lock(&mu_);
  DW_ASSIGN_OR_RETURN(ModelHours * m, Refresh(model, LookBack(current_hour), current_hour));
  std::vector<std::pair<std::pair<int64_t, double>, int32_t>> recent;  // (last hour, events)
  for (const auto& [slice, by_hour] : m->hourly) {
    auto last = by_hour.lower_bound(current_hour);
    if (last == by_hour.begin()) continue;
    --last;
    if (last->first < since_ms) continue;
    recent.push_back({{last->first, last->second}, slice});
  }
  std::sort(recent.begin(), recent.end(), [](const auto& a, const auto& b) { return a > b; });
  for (const auto& r : recent) {
    if (out.size() >= limit) break;
    out.push_back(r.second);
  }
  return out;
}

void SetVolume(const SliceVolume& v, v1::DataQualityReport* out) {
  out->set_volume(v.per_hour);
  const detectors::VolumeExpectation& e = v.expectation;
  out->set_volume_baseline(std::string(detectors::VolumeModeName(e.mode)));
  out->set_volume_history(static_cast<uint32_t>(std::max(0, e.points)));
  // NaN-free on the wire: 0 with volume_baseline "none".
  out->set_volume_expected(std::isfinite(e.expected) ? e.expected : 0);
  out->set_volume_z(std::isfinite(e.z) ? e.z : 0);
}

}  // namespace driftwatch::service::reports
