// Sequential change detectors on a scalar series (a feature value, a score,
// or a drift signal such as PSI per evaluation). Each is a small state
// machine: Update() is O(1) with no allocation, the state is a plain struct
// that serialises, so a detector survives a restart. Not thread-safe.
//
// Conventions (DESIGN.md): unless mu0 and sigma are given, the first
// `warmup` points of a run estimate mu0 (mean) and sigma (sample std,
// ddof = 1) and raise no alarm. After an alarm the detector starts a new run
// whose first `warmup` points are again its warm-up (with mu0 and sigma given,
// the statistics just reset). Indices are 0-based. Non-finite points (NaN,
// +-inf) are ignored by every detector: no state change, no alarm. If the
// warm-up sees no variation (sigma = 0), any later point != mu0 alarms.
// Exact definitions: docs/sequential.md.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::detectors {

struct EwmaParams {
  double lambda = 0.2;  // (0, 1]
  double L = 3.0;       // control-limit width in sigmas, > 0
  int warmup = 30;      // >= 2 unless mu0 and sigma are given
  std::optional<double> mu0;
  std::optional<double> sigma;  // > 0
};

struct CusumParams {
  double k = 0.5;  // allowance, in sigmas, >= 0
  double h = 5.0;  // decision threshold, in sigmas, > 0
  int warmup = 30;
  std::optional<double> mu0;
  std::optional<double> sigma;
};

enum class PageHinkleyMode { kBoth, kUp, kDown };

// River's drift.PageHinkley parameters and defaults.
struct PageHinkleyParams {
  int min_instances = 30;
  double delta = 0.005;
  double threshold = 50.0;
  double alpha = 1 - 1e-4;
  PageHinkleyMode mode = PageHinkleyMode::kBoth;
};

// Serialisable state shared by the warm-up phase of EWMA and CUSUM.
struct WarmupState {
  int64_t n = 0;    // points seen in this warm-up
  double mean = 0;  // Welford running mean
  double m2 = 0;    // Welford sum of squared deviations
};

// EWMA control chart: z_t = lambda x_t + (1 - lambda) z_{t-1}, z_0 = mu0;
// alarm when |z_t - mu0| > L sigma sqrt(lambda/(2-lambda) (1-(1-lambda)^{2t})).
class Ewma {
 public:
  struct State {
    WarmupState warmup;
    bool armed = false;  // warm-up done (or mu0/sigma given)
    double mu0 = 0;
    double sigma = 0;
    double z = 0;
    int64_t t = 0;  // points since warm-up
  };
  // INVALID_ARGUMENT naming the parameter when one is out of range.
  static absl::StatusOr<Ewma> Create(const EwmaParams& params);
  // Returns true when this point raises an alarm. NaN points are ignored.
  bool Update(double x);
  const State& state() const { return state_; }
  // Replaces the state (e.g. after a restart). Fails if inconsistent.
  absl::Status Restore(const State& state);
  const EwmaParams& params() const { return params_; }

 private:
  explicit Ewma(const EwmaParams& params);
  void StartRun();
  EwmaParams params_;
  State state_;
};

// Two-sided tabular CUSUM on standardised values:
// S+ = max(0, S+ + (x-mu0)/sigma - k), S- = max(0, S- - (x-mu0)/sigma - k);
// alarm when either exceeds h.
class Cusum {
 public:
  struct State {
    WarmupState warmup;
    bool armed = false;
    double mu0 = 0;
    double sigma = 0;
    double s_pos = 0;
    double s_neg = 0;
  };
  static absl::StatusOr<Cusum> Create(const CusumParams& params);
  bool Update(double x);
  const State& state() const { return state_; }
  absl::Status Restore(const State& state);
  const CusumParams& params() const { return params_; }

 private:
  explicit Cusum(const CusumParams& params);
  void StartRun();
  CusumParams params_;
  State state_;
};

// Page-Hinkley with River's semantics: the same stream gives the same
// detection indices as river.drift.PageHinkley.
class PageHinkley {
 public:
  struct State {
    int64_t n = 0;  // points in the running mean
    double mean = 0;
    double sum_increase = 0;
    double sum_decrease = 0;
    // Running extrema with River's initial values (+inf and -1).
    double min_increase = std::numeric_limits<double>::infinity();
    double max_decrease = -1;
    bool drift_detected = false;
  };
  static absl::StatusOr<PageHinkley> Create(const PageHinkleyParams& params);
  bool Update(double x);
  const State& state() const { return state_; }
  absl::Status Restore(const State& state);
  const PageHinkleyParams& params() const { return params_; }

 private:
  explicit PageHinkley(const PageHinkleyParams& params);
  void Reset();
  PageHinkleyParams params_;
  State state_;
};

// Runs a fresh detector over `series` and returns the 0-based alarm indices.
template <typename Detector>
std::vector<int64_t> DetectAll(Detector detector, std::span<const double> series) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < series.size(); ++i) {
    if (detector.Update(series[i])) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

// Binary state encoding, for persistence (docs/formats/detector_state.md).
std::string SerializeState(const Ewma::State& state);
std::string SerializeState(const Cusum::State& state);
std::string SerializeState(const PageHinkley::State& state);
absl::StatusOr<Ewma::State> DeserializeEwmaState(std::string_view bytes);
absl::StatusOr<Cusum::State> DeserializeCusumState(std::string_view bytes);
absl::StatusOr<PageHinkley::State> DeserializePageHinkleyState(std::string_view bytes);

// ---- False-alarm calibration ------------------------------------------------
//
// Finds the threshold (EWMA L, CUSUM h, Page-Hinkley threshold) whose
// in-control average run length ARL0 (points to the first false alarm, warm-up
// included) is closest to `target_arl0`, by simulation: in-control streams are
// drawn with a seeded generator, either i.i.d. N(mean, sigma) or bootstrap
// resamples of a reference series, and the threshold is bisected using the
// same streams for every candidate (common random numbers make ARL monotone
// in the threshold). Runs are censored at `max_run_length`.
enum class DetectorKind { kEwma, kCusum, kPageHinkley };

struct ArlCalibrationOptions {
  double target_arl0 = 1000;
  int runs = 200;  // simulated in-control streams
  uint64_t seed = 42;
  int64_t max_run_length = 0;  // 0 = 20 * target_arl0
  int max_iterations = 40;     // bisection steps
};

struct ArlCalibration {
  double threshold = 0;    // the calibrated L, h or threshold
  double arl0 = 0;         // estimated ARL0 at that threshold
  double arl0_stderr = 0;  // standard error of that estimate
  int censored_runs = 0;   // runs that hit max_run_length
};

// In-control model: exactly one of `reference` (bootstrap) or
// `mean`/`sigma` (Gaussian). The other parameters of the detector (lambda,
// k, warm-up, delta, ...) are taken from the given params; their threshold
// field is what is calibrated. INVALID_ARGUMENT on a bad target or model.
struct InControlModel {
  std::vector<double> reference;
  std::optional<double> mean;
  std::optional<double> sigma;
};
absl::StatusOr<ArlCalibration> CalibrateEwma(const EwmaParams& params, const InControlModel& model,
                                             const ArlCalibrationOptions& options);
absl::StatusOr<ArlCalibration> CalibrateCusum(const CusumParams& params,
                                              const InControlModel& model,
                                              const ArlCalibrationOptions& options);
absl::StatusOr<ArlCalibration> CalibratePageHinkley(const PageHinkleyParams& params,
                                                    const InControlModel& model,
                                                    const ArlCalibrationOptions& options);

}  // namespace driftwatch::detectors
