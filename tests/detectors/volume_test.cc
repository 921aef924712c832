#include "driftwatch/detectors/volume.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int kWeek = 168;                  // hours
constexpr int64_t kT0 = 1'704'067'200'000;  // Monday 2024-01-01 00:00 UTC
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr uint64_t kSeed = 20240101;
constexpr double kHalfPi = std::numbers::pi / 2;

int64_t HourMs(int64_t h) { return kT0 + h * kHourMs; }

// Uniform and Poisson draws of our own, so the series are the same with any
// standard library (std::poisson_distribution is implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed) {}

  double Uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }  // [0, 1)

  // Knuth's product method below mean 10, else Hoermann's PTRS (as numpy).
  double Poisson(double mean) {
    if (mean <= 0) return 0;
    if (mean < 10) {
      const double limit = std::exp(-mean);
      double prod = Uniform();
      int k = 0;
      while (prod > limit) {
        ++k;
        prod *= Uniform();
      }
      return k;
    }
    const double slam = std::sqrt(mean), loglam = std::log(mean);
    const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    const double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
    while (true) {
      const double u = Uniform() - 0.5, v = Uniform();
      const double us = 0.5 - std::abs(u);
      const double k = std::floor((2 * a / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (std::log(v) + std::log(invalpha) - std::log(a / (us * us) + b) <=
          -mean + k * loglam - std::lgamma(k + 1)) {
        return k;
      }
    }
  }

 private:
  std::mt19937_64 eng_;
};

// The clean traffic: a daily sinusoid, weekends (days 5, 6 of each week) at 0.6.
double SeasonalMean(int64_t h) {
  const bool weekend = (h / 24) % 7 >= 5;
  return 1000 * (1 + 0.6 * std::sin(2 * std::numbers::pi * static_cast<double>(h - 6) / 24)) *
         (weekend ? 0.6 : 1.0);
}

using MeanFn = std::function<double(int64_t)>;

// Poisson counts for hours [0, hours); hours with no events are left out of
// the map, as the service's hourly series leaves them out.
std::map<int64_t, double> Traffic(uint64_t seed, int hours, const MeanFn& mean) {
  Rng rng(seed);
  std::map<int64_t, double> out;
  for (int h = 0; h < hours; ++h) {
    const double n = rng.Poisson(mean(h));
    if (n > 0) out[HourMs(h)] = n;
  }
  return out;
}

double At(const std::map<int64_t, double>& hourly, int64_t h) {
  const auto it = hourly.find(HourMs(h));
  return it == hourly.end() ? 0 : it->second;
}

VolumeExpectation Expect(const std::map<int64_t, double>& hourly, int64_t history_start_h,
                         int64_t current_h, double current, double current_hours = 1,
                         const VolumeOptions& options = {}) {
  return ExpectVolume(hourly, HourMs(history_start_h), HourMs(current_h), current, current_hours,
                      options);
}

struct AlarmStats {
  int evaluations = 0;
  int alarms = 0;
  int seasonal = 0;
  int trailing = 0;
  double max_abs_z = 0;
  double rate() const { return evaluations == 0 ? 0 : static_cast<double>(alarms) / evaluations; }
};

// Evaluates every hour from hour 24 on, history from hour 0. With
// current_hours = 1 the current is the hour's own count; shorter, a fresh
// Poisson measurement over current_hours of the same mean.
AlarmStats EvaluateClean(uint64_t seed, int hours, double current_hours) {
  const std::map<int64_t, double> hourly = Traffic(seed, hours, SeasonalMean);
  Rng rng(seed ^ 0x9e3779b97f4a7c15ULL);
  AlarmStats stats;
  for (int h = 24; h < hours; ++h) {
    const double current = current_hours == 1
                               ? At(hourly, h)
                               : rng.Poisson(SeasonalMean(h) * current_hours) / current_hours;
    const VolumeExpectation e = Expect(hourly, 0, h, current, current_hours);
    ++stats.evaluations;
    stats.seasonal += e.mode == VolumeMode::kSameHourOfWeek;
    stats.trailing += e.mode == VolumeMode::kTrailing;
    stats.max_abs_z = std::max(stats.max_abs_z, std::abs(e.z));
    stats.alarms += std::abs(e.z) >= kDefaultVolumeZThreshold;
  }
  return stats;
}

void Report(const std::string& name, const AlarmStats& s) {
  std::cout << "[ volume   ] " << name << ": " << s.alarms << " alarms / " << s.evaluations
            << " evaluations (rate " << s.rate() << "), max |z| " << s.max_abs_z << " ("
            << s.seasonal << " seasonal, " << s.trailing << " trailing)\n";
  ::testing::Test::RecordProperty(name + "_false_alarm_rate", std::to_string(s.rate()));
  ::testing::Test::RecordProperty(name + "_max_abs_z", std::to_string(s.max_abs_z));
}

TEST(VolumeModeNameTest, Names) {
  EXPECT_EQ(VolumeModeName(VolumeMode::kNone), "none");
  EXPECT_EQ(VolumeModeName(VolumeMode::kSameHourOfWeek), "same_hour_of_week");
  EXPECT_EQ(VolumeModeName(VolumeMode::kTrailing), "trailing");
  EXPECT_EQ(VolumeModeName(static_cast<VolumeMode>(7)), "unknown");
}

// ---- Clean traffic: no false alarms ----------------------------------------

TEST(VolumeCleanTest, TwoWeeksNoFalseAlarms) {
  for (double hours : {1.0, 0.25}) {
    const AlarmStats s = EvaluateClean(kSeed, 2 * kWeek, hours);
    Report(hours == 1 ? "two_weeks_1h" : "two_weeks_15min", s);
    EXPECT_EQ(s.evaluations, 2 * kWeek - 24);
    // One prior week gives 3 seasonal points (< 6): trailing throughout.
    EXPECT_EQ(s.trailing, s.evaluations);
    EXPECT_EQ(s.alarms, 0) << "current_hours " << hours;
  }
}

TEST(VolumeCleanTest, FourWeeksNoFalseAlarms) {
  for (double hours : {1.0, 0.25}) {
    const AlarmStats s = EvaluateClean(kSeed, 4 * kWeek, hours);
    Report(hours == 1 ? "four_weeks_1h" : "four_weeks_15min", s);
    // Seasonal from two weeks and an hour of history on (6 points).
    EXPECT_EQ(s.seasonal, 4 * kWeek - (2 * kWeek + 1));
    EXPECT_EQ(s.trailing, s.evaluations - s.seasonal);
    EXPECT_EQ(s.alarms, 0) << "current_hours " << hours;
  }
}

// The rate volume.h states: 40 seeds of four weeks.
TEST(VolumeCleanTest, FalseAlarmRateOverSeeds) {
  for (double hours : {1.0, 0.25}) {
    AlarmStats total;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      const AlarmStats s = EvaluateClean(seed, 4 * kWeek, hours);
      total.evaluations += s.evaluations;
      total.alarms += s.alarms;
      total.seasonal += s.seasonal;
      total.trailing += s.trailing;
      total.max_abs_z = std::max(total.max_abs_z, s.max_abs_z);
    }
    Report(hours == 1 ? "forty_seeds_1h" : "forty_seeds_15min", total);
    EXPECT_LE(total.rate(), 2e-4) << "current_hours " << hours;
  }
}

// ---- Sensitivity ---------------------------------------------------------------

// Every hour of week 4, against the full history before it.
TEST(VolumeSensitivityTest, HalvingForAnHourInWeek4) {
  const std::map<int64_t, double> hourly = Traffic(kSeed, 4 * kWeek, SeasonalMean);
  Rng rng(kSeed + 1);
  for (double hours : {1.0, 0.25}) {
    int flagged = 0;
    double max_z = -std::numeric_limits<double>::infinity();
    for (int h = 3 * kWeek; h < 4 * kWeek; ++h) {
      const double current = rng.Poisson(SeasonalMean(h) / 2 * hours) / hours;
      const VolumeExpectation e = Expect(hourly, 0, h, current, hours);
      ASSERT_EQ(e.mode, VolumeMode::kSameHourOfWeek);
      ASSERT_EQ(e.points, h == 3 * kWeek ? 6 : 9);  // week 3 has no hour - 1 yet
      flagged += e.z <= -kDefaultVolumeZThreshold;
      max_z = std::max(max_z, e.z);
      if (hours == 1) {
        EXPECT_LE(e.z, -kDefaultVolumeZThreshold) << "hour " << h;
      }
    }
    std::cout << "[ volume   ] halving, current_hours " << hours << ": " << flagged << " / "
              << kWeek << " hours of week 4 flagged, largest z " << max_z << "\n";
  }
  // Weekday noon, the steepest hour (06:00) and Saturday noon over 15 minutes.
  for (int h : {3 * kWeek + 12, 3 * kWeek + 6, 3 * kWeek + 5 * 24 + 12}) {
    const VolumeExpectation e = Expect(hourly, 0, h, SeasonalMean(h) / 2, 0.25);
    EXPECT_LE(e.z, -kDefaultVolumeZThreshold) << "hour " << h;
  }
}

TEST(VolumeSensitivityTest, TenfoldSpike) {
  const std::map<int64_t, double> hourly = Traffic(kSeed, 4 * kWeek, SeasonalMean);
  for (double hours : {1.0, 0.25}) {
    for (int h = 3 * kWeek; h < 4 * kWeek; ++h) {
      const VolumeExpectation e = Expect(hourly, 0, h, 10 * SeasonalMean(h), hours);
      EXPECT_GE(e.z, kDefaultVolumeZThreshold) << "hour " << h << ", current_hours " << hours;
    }
  }
  // Trailing mode too: the spike dwarfs a daily cycle's spread.
  const VolumeExpectation e = Expect(hourly, 0, 30, 10 * SeasonalMean(30));
  EXPECT_EQ(e.mode, VolumeMode::kTrailing);
  EXPECT_GE(e.z, kDefaultVolumeZThreshold);
}

TEST(VolumeSensitivityTest, SliceStopsAfterSteadyTraffic) {
  const std::map<int64_t, double> hourly = Traffic(kSeed, 4 * kWeek, [](int64_t) { return 500.0; });
  const VolumeExpectation seasonal = Expect(hourly, 0, 4 * kWeek - 10, 0);
  EXPECT_EQ(seasonal.mode, VolumeMode::kSameHourOfWeek);
  EXPECT_NEAR(seasonal.expected, 500, 50);
  EXPECT_LE(seasonal.z, -10);
  // One day of history: trailing, as sure.
  const VolumeExpectation trailing = Expect(hourly, 4 * kWeek - 34, 4 * kWeek - 10, 0);
  EXPECT_EQ(trailing.mode, VolumeMode::kTrailing);
  EXPECT_EQ(trailing.points, 24);
  EXPECT_LE(trailing.z, -10);
  // Measured over 15 minutes the Poisson sd doubles: still far out.
  const VolumeExpectation quarter = Expect(hourly, 0, 4 * kWeek - 10, 0, 0.25);
  EXPECT_LE(quarter.z, -8);
  std::cout << "[ volume   ] steady 500/h stops: z " << seasonal.z << " (seasonal), " << trailing.z
            << " (trailing), " << quarter.z << " (seasonal, 15 min)\n";
}

TEST(VolumeSensitivityTest, SeasonalSliceStops) {
  const std::map<int64_t, double> hourly = Traffic(kSeed, 4 * kWeek, SeasonalMean);
  for (int h = 3 * kWeek; h < 4 * kWeek; ++h) {
    EXPECT_LE(Expect(hourly, 0, h, 0, 0.25).z, -1.5 * kDefaultVolumeZThreshold) << "hour " << h;
  }
  // The blind spot volume.h states: in trailing mode a strongly daily slice's
  // MAD spans the cycle, and a stop at noon stays above the threshold.
  const VolumeExpectation e = Expect(hourly, 0, 36, 0);
  EXPECT_EQ(e.mode, VolumeMode::kTrailing);
  EXPECT_LT(e.z, -1);
  EXPECT_GT(e.z, -kDefaultVolumeZThreshold);
  std::cout << "[ volume   ] seasonal slice stops at noon of day 2, trailing mode: z " << e.z
            << "\n";
}

// ---- History and modes -------------------------------------------------------

TEST(VolumeHistoryTest, TooLittleHistoryHasNoExpectation) {
  const std::map<int64_t, double> hourly = Traffic(kSeed, 48, [](int64_t) { return 100.0; });
  const VolumeExpectation none = Expect(hourly, 40, 45, 100);
  EXPECT_EQ(none.mode, VolumeMode::kNone);
  EXPECT_EQ(none.points, 0);
  EXPECT_TRUE(std::isnan(none.expected));
  EXPECT_TRUE(std::isnan(none.scale));
  EXPECT_TRUE(std::isnan(none.z));
  // Six hours is enough for trailing.
  const VolumeExpectation six = Expect(hourly, 40, 46, 100);
  EXPECT_EQ(six.mode, VolumeMode::kTrailing);
  EXPECT_EQ(six.points, 6);
  EXPECT_TRUE(std::isfinite(six.z));
  // No history at all, or a start after the current hour.
  EXPECT_EQ(Expect(hourly, 46, 46, 100).mode, VolumeMode::kNone);
  EXPECT_EQ(Expect(hourly, 47, 46, 100).mode, VolumeMode::kNone);
  // A start inside an hour: that hour is not history.
  EXPECT_EQ(ExpectVolume(hourly, HourMs(40) + 1, HourMs(46), 100, 1).mode, VolumeMode::kNone);
}

TEST(VolumeHistoryTest, TrailingUntilTwoFullWeeksAndAnHour) {
  const std::map<int64_t, double> hourly = Traffic(kSeed, 3 * kWeek, [](int64_t) { return 100.0; });
  const int64_t now = 3 * kWeek;
  // Exactly two weeks: week 2's hour - 1 is before the start, so one week, 3 points.
  const VolumeExpectation two = Expect(hourly, now - 2 * kWeek, now, 100);
  EXPECT_EQ(two.mode, VolumeMode::kTrailing);
  EXPECT_EQ(two.points, 24);
  const VolumeExpectation two_and_hour = Expect(hourly, now - 2 * kWeek - 1, now, 100);
  EXPECT_EQ(two_and_hour.mode, VolumeMode::kSameHourOfWeek);
  EXPECT_EQ(two_and_hour.points, 6);
  // One week is seasonal when the options allow three points.
  VolumeOptions three;
  three.min_seasonal_points = 3;
  EXPECT_EQ(Expect(hourly, now - kWeek - 1, now, 100, 1, three).points, 3);
  // Three weeks: weeks 1 and 2 (week 3's hour - 1 is before the start) ...
  EXPECT_EQ(Expect(hourly, 0, now, 100).points, 6);
  // ... or fewer, when max_weeks says so.
  VolumeOptions one_week;
  one_week.max_weeks = 1;
  EXPECT_EQ(Expect(hourly, 0, now, 100, 1, one_week).mode, VolumeMode::kTrailing);
}

TEST(VolumeHistoryTest, HoursBeforeTheStartAndBadCountsAreUnknown) {
  std::map<int64_t, double> hourly = Traffic(kSeed, 48, [](int64_t) { return 100.0; });
  const VolumeExpectation base = Expect(hourly, 24, 48, 100);
  std::map<int64_t, double> with_old = hourly;
  for (int h = 0; h < 24; ++h) with_old[HourMs(h)] = 1e6;  // before the start: ignored
  const VolumeExpectation old = Expect(with_old, 24, 48, 100);
  EXPECT_EQ(old.points, base.points);
  EXPECT_EQ(old.expected, base.expected);
  EXPECT_EQ(old.scale, base.scale);
  hourly[HourMs(30)] = kNaN;
  hourly[HourMs(31)] = -5;
  EXPECT_EQ(Expect(hourly, 24, 48, 100).points, 22);
}

TEST(VolumeHistoryTest, ZeroTrafficHoursCountAsZeros) {
  // Quiet at night: events only from 08:00 to 19:59; night hours are absent.
  const MeanFn daytime = [](int64_t h) { return h % 24 >= 8 && h % 24 < 20 ? 200.0 : 0.0; };
  const std::map<int64_t, double> hourly = Traffic(kSeed, 4 * kWeek, daytime);
  ASSERT_EQ(hourly.size(), 4u * 7 * 12);
  // Trailing over a night and a day: all 24 hours are points, 12 of them zero.
  const VolumeExpectation trailing = Expect(hourly, 0, 24 + 20, 0);
  EXPECT_EQ(trailing.mode, VolumeMode::kTrailing);
  EXPECT_EQ(trailing.points, 24);
  // Between the 12 zeros and the 12 busy hours.
  EXPECT_GT(trailing.expected, 50);
  EXPECT_LT(trailing.expected, 150);
  // At 03:00 the seasonal expectation is 0, so a quiet night is no alarm ...
  const int64_t night = 3 * kWeek + 3;
  const VolumeExpectation quiet = Expect(hourly, 0, night, 0);
  EXPECT_EQ(quiet.mode, VolumeMode::kSameHourOfWeek);
  EXPECT_EQ(quiet.points, 9);
  EXPECT_EQ(quiet.expected, 0);
  // The Poisson floor of a mean below 1, with the error of a median of 3 weeks.
  EXPECT_DOUBLE_EQ(quiet.scale, std::sqrt(1 + kHalfPi / 3));
  EXPECT_EQ(quiet.z, 0);
  // ... and daytime traffic at night is.
  EXPECT_GE(Expect(hourly, 0, night, 200).z, kDefaultVolumeZThreshold);
  // At 08:00 the 07:00 neighbour (zero) is moved onto 08:00's level, not
  // counted as spread: the usual morning is no alarm, a halved one is.
  const int64_t morning = 3 * kWeek + 8;
  const VolumeExpectation usual = Expect(hourly, 0, morning, At(hourly, morning));
  EXPECT_NEAR(usual.expected, 200, 30);
  EXPECT_LT(std::abs(usual.z), kDefaultVolumeZThreshold);
  EXPECT_LE(Expect(hourly, 0, morning, 100).z, -kDefaultVolumeZThreshold);
}

TEST(VolumeScaleTest, PoissonFloorAndCurrent) {
  const std::map<int64_t, double> flat = [] {
    std::map<int64_t, double> m;
    for (int h = 0; h < 24; ++h) m[HourMs(h)] = 400;  // no spread: the floor rules
    return m;
  }();
  // Poisson sd of the current over h hours, and of the median of 24 hours.
  const auto poisson = [](double h) { return std::sqrt(400 * (1 / h + kHalfPi / 24)); };
  const VolumeExpectation hour = Expect(flat, 0, 24, 440, 1);
  EXPECT_EQ(hour.expected, 400);
  EXPECT_DOUBLE_EQ(hour.scale, poisson(1));  // ~ 20.6
  EXPECT_DOUBLE_EQ(hour.z, 40 / poisson(1));
  const VolumeExpectation quarter = Expect(flat, 0, 24, 440, 0.25);
  EXPECT_DOUBLE_EQ(quarter.scale, poisson(0.25));  // ~ 40.3
  EXPECT_DOUBLE_EQ(quarter.z, 40 / poisson(0.25));
  // No measurement time: an enormous scale, not a division by zero.
  for (double h : {0.0, -1.0, kNaN}) {
    EXPECT_DOUBLE_EQ(Expect(flat, 0, 24, 440, h).scale, poisson(1e-9));
  }
  // Infinite measurement: only the median's error is left.
  EXPECT_DOUBLE_EQ(Expect(flat, 0, 24, 400, std::numeric_limits<double>::infinity()).scale,
                   std::sqrt(400 * kHalfPi / 24));
  // A non-finite current keeps the expectation, without a z.
  const VolumeExpectation nan = Expect(flat, 0, 24, kNaN);
  EXPECT_EQ(nan.mode, VolumeMode::kTrailing);
  EXPECT_EQ(nan.expected, 400);
  EXPECT_TRUE(std::isnan(nan.z));
}

TEST(VolumeScaleTest, MadOfTheHistory) {
  // 1.4826 * MAD above the floor: counts 100 +- 30 alternate.
  std::map<int64_t, double> m;
  for (int h = 0; h < 24; ++h) m[HourMs(h)] = h % 2 == 0 ? 70 : 130;
  const VolumeExpectation e = Expect(m, 0, 24, 100);
  EXPECT_DOUBLE_EQ(e.expected, 100);  // even count: the mean of the middle two
  EXPECT_DOUBLE_EQ(e.scale, 1.4826 * 30 * std::sqrt(1 + kHalfPi / 24));
  EXPECT_DOUBLE_EQ(e.z, 0);
}

}  // namespace
}  // namespace driftwatch::detectors
