#include "driftwatch/detectors/volume.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

namespace driftwatch::detectors {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kHoursPerWeek = 168;
constexpr double kMadToSd = 1.4826;  // 1 / Phi^-1(3/4): MAD -> sd for normal data
constexpr double kMinHours = 1e-9;
// Var(median of n normal draws) ~ (pi / 2) sd^2 / n.
constexpr double kMedianVarFactor = std::numbers::pi / 2;

// Median of a non-empty `v`, which it reorders.
double Median(std::vector<double>& v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  return (*std::max_element(v.begin(), mid) + *mid) / 2;
}

// The history: the events of hour `hours_back` hours before the current
// hour, valid for 1 <= hours_back <= limit, where limit counts the hours
// starting in [history_start_ms, current_hour_ms).
class History {
 public:
  History(const std::map<int64_t, double>& hourly, int64_t history_start_ms,
          int64_t current_hour_ms)
      : hourly_(hourly), current_hour_ms_(current_hour_ms) {
    if (current_hour_ms > history_start_ms) {
      // Unsigned: the distance is exact even where the signed difference overflows.
      const uint64_t span_ms =
          static_cast<uint64_t>(current_hour_ms) - static_cast<uint64_t>(history_start_ms);
      limit_ = static_cast<int64_t>(span_ms / static_cast<uint64_t>(kHourMs));
    }
  }

  int64_t limit() const { return limit_; }

  // False for an unknown hour: outside the history, or a count that is not a
  // count (non-finite, negative). A missing hour is a zero-traffic hour.
  bool Get(int64_t hours_back, double* events) const {
    if (hours_back < 1 || hours_back > limit_) return false;
    const auto it = hourly_.find(current_hour_ms_ - hours_back * kHourMs);
    *events = it == hourly_.end() ? 0.0 : it->second;
    return std::isfinite(*events) && *events >= 0;
  }

 private:
  const std::map<int64_t, double>& hourly_;
  int64_t current_hour_ms_;
  int64_t limit_ = 0;
};

// A mode's history points, and how many independent hours their level comes
// from (volume.h: the n of the expected's standard error).
struct Points {
  std::vector<double> values;
  int level_hours = 0;
};

// Same hour of week and its neighbours, each neighbour shifted onto the
// centre hour's level (volume.h). Empty when fewer than `min_points`.
Points SeasonalPoints(const History& history, int max_weeks, int min_points) {
  std::vector<std::array<double, 3>> weeks;  // {hour - 1, hour, hour + 1}
  // Week k's oldest hour is k weeks + 1 hour back; older weeks are further out.
  for (int64_t k = 1; k <= max_weeks && k * kHoursPerWeek + 1 <= history.limit(); ++k) {
    const int64_t back = k * kHoursPerWeek;
    std::array<double, 3> week;
    if (history.Get(back + 1, &week[0]) && history.Get(back, &week[1]) &&
        history.Get(back - 1, &week[2])) {
      weeks.push_back(week);
    }
  }
  Points points;
  if (static_cast<int64_t>(weeks.size()) * 3 < min_points) return points;
  points.values.reserve(weeks.size() * 3);
  // The shifts use up the neighbours' levels: the level is the centre hours'.
  points.level_hours = static_cast<int>(weeks.size());
  std::vector<double> diffs(weeks.size());
  for (const std::array<double, 3>& week : weeks) points.values.push_back(week[1]);
  for (int j : {0, 2}) {
    for (size_t k = 0; k < weeks.size(); ++k) diffs[k] = weeks[k][j] - weeks[k][1];
    const double shift = Median(diffs);
    for (const std::array<double, 3>& week : weeks) points.values.push_back(week[j] - shift);
  }
  return points;
}

Points TrailingPoints(const History& history, int trailing_hours, int min_points) {
  Points points;
  const int64_t hours = std::min<int64_t>(trailing_hours, history.limit());
  for (int64_t back = 1; back <= hours; ++back) {
    double events;
    if (history.Get(back, &events)) points.values.push_back(events);
  }
  if (static_cast<int64_t>(points.values.size()) < min_points) points.values.clear();
  points.level_hours = static_cast<int>(points.values.size());
  return points;
}

}  // namespace

std::string_view VolumeModeName(VolumeMode mode) {
  switch (mode) {
    case VolumeMode::kNone:
      return "none";
    case VolumeMode::kSameHourOfWeek:
      return "same_hour_of_week";
    case VolumeMode::kTrailing:
      return "trailing";
  }
  return "unknown";
}

VolumeExpectation ExpectVolume(const std::map<int64_t, double>& hourly, int64_t history_start_ms,
                               int64_t current_hour_ms, double current_per_hour,
                               double current_hours, const VolumeOptions& options) {
  const History history(hourly, history_start_ms, current_hour_ms);
  VolumeExpectation out;
  Points points = SeasonalPoints(history, std::max(options.max_weeks, 0),
                                 std::max(options.min_seasonal_points, 1));
  out.mode = VolumeMode::kSameHourOfWeek;
  if (points.values.empty()) {
    points = TrailingPoints(history, std::max(options.trailing_hours, 0),
                            std::max(options.min_trailing_points, 1));
    out.mode = VolumeMode::kTrailing;
  }
  if (points.values.empty()) {
    out.mode = VolumeMode::kNone;
    return out;
  }
  std::vector<double>& values = points.values;
  out.points = static_cast<int>(values.size());
  out.expected = Median(values);
  for (double& v : values) v = std::abs(v - out.expected);
  const double spread_sd = kMadToSd * Median(values);
  // !(h > kMinHours) also catches NaN; +inf makes the Poisson term 0.
  const double hours = current_hours > kMinHours ? current_hours : kMinHours;
  const double mean = std::max(out.expected, 1.0);
  const double current_sd = std::max(spread_sd, std::sqrt(mean / hours));
  const double hour_sd = std::max(spread_sd, std::sqrt(mean));
  const double expected_var = kMedianVarFactor / points.level_hours * hour_sd * hour_sd;
  out.scale = std::sqrt(current_sd * current_sd + expected_var);  // > 0: hour_sd >= 1
  if (std::isfinite(current_per_hour)) out.z = (current_per_hour - out.expected) / out.scale;
  return out;
}

}  // namespace driftwatch::detectors
