// ARL0 calibration by simulation with common random numbers. See the header
// and docs/sequential.md ("Calibration") for the method.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/sequential.h"

namespace driftwatch::detectors {
namespace {

// Uniform in (0, 1] from the top 53 bits, so log() never sees 0. Built on the
// engine's raw output (fully specified by the standard), not on
// std::*_distribution, so a seed gives the same streams on every platform.
double UnitOpenClosed(std::mt19937_64& eng) {
  return (static_cast<double>(eng() >> 11) + 1.0) * 0x1.0p-53;
}

// One in-control stream: N(mean, sigma) by Box-Muller, or a bootstrap
// resample of the reference.
class InControlStream {
 public:
  InControlStream(const InControlModel& model, uint64_t seed) : model_(model), eng_(seed) {}

  double Next() {
    if (!model_.reference.empty()) {
      const uint64_t n = model_.reference.size();
      // Multiply-shift maps 64 random bits onto [0, n) without a modulo.
      const auto idx = static_cast<size_t>((static_cast<unsigned __int128>(eng_()) * n) >> 64);
      return model_.reference[idx];
    }
    if (has_spare_) {
      has_spare_ = false;
      return *model_.mean + *model_.sigma * spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(UnitOpenClosed(eng_)));
    const double angle = 2.0 * std::numbers::pi * UnitOpenClosed(eng_);
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return *model_.mean + *model_.sigma * radius * std::cos(angle);
  }

 private:
  const InControlModel& model_;
  std::mt19937_64 eng_;
  double spare_ = 0;
  bool has_spare_ = false;
};

struct ArlEstimate {
  double arl = 0;
  double stderr_ = 0;
  int censored = 0;
  bool stopped_above = false;  // early exit: ARL certainly >= target
};

absl::Status ValidateInputs(const InControlModel& model, const ArlCalibrationOptions& options) {
  if (!(std::isfinite(options.target_arl0) && options.target_arl0 > 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_arl0 must be finite and > 1, got ", options.target_arl0));
  }
  if (options.target_arl0 > 1e9) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_arl0 must be <= 1e9, got ", options.target_arl0));
  }
  if (options.runs < 2) {
    return absl::InvalidArgumentError(absl::StrCat("runs must be >= 2, got ", options.runs));
  }
  if (options.max_run_length < 0 ||
      (options.max_run_length > 0 &&
       static_cast<double>(options.max_run_length) <= options.target_arl0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_run_length must be 0 (auto) or > target_arl0, got ", options.max_run_length));
  }
  if (options.max_iterations < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_iterations must be >= 1, got ", options.max_iterations));
  }
  const bool gaussian = model.mean.has_value() || model.sigma.has_value();
  if (gaussian == !model.reference.empty()) {
    return absl::InvalidArgumentError(
        "model: give exactly one of reference (bootstrap) or mean and sigma (Gaussian)");
  }
  if (gaussian) {
    if (!model.mean.has_value() || !model.sigma.has_value()) {
      return absl::InvalidArgumentError("model.mean and model.sigma must be given together");
    }
    if (!std::isfinite(*model.mean)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.mean must be finite, got ", *model.mean));
    }
    if (!(std::isfinite(*model.sigma) && *model.sigma > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.sigma must be finite and > 0, got ", *model.sigma));
    }
  } else {
    for (size_t i = 0; i < model.reference.size(); ++i) {
      if (!std::isfinite(model.reference[i])) {
        return absl::InvalidArgumentError(absl::StrCat("model.reference[", i, "] is not finite"));
      }
    }
  }
  return absl::OkStatus();
}

// `make(threshold)` returns a fresh detector with that threshold; ARL0 is
// increasing in the threshold for every detector here.
template <typename MakeDetector>
absl::StatusOr<ArlCalibration> Calibrate(MakeDetector make, double initial_threshold,
                                         const InControlModel& model,
                                         const ArlCalibrationOptions& options) {
  const double target = options.target_arl0;
  const int64_t max_len = options.max_run_length > 0 ? options.max_run_length
                                                     : static_cast<int64_t>(std::ceil(20 * target));
  // Common random numbers: run i uses the same stream for every candidate.
  std::vector<uint64_t> run_seeds(options.runs);
  std::mt19937_64 master(options.seed);
  for (uint64_t& s : run_seeds) s = master();

  // With `stop_above`, quits as soon as the total run length proves
  // ARL >= target, so a high candidate costs at most runs * target points.
  auto estimate = [&](double threshold, bool stop_above) {
    ArlEstimate e;
    const double budget = target * options.runs;
    double sum = 0, sum_sq = 0;
    for (uint64_t seed : run_seeds) {
      auto detector = make(threshold);
      InControlStream stream(model, seed);
      int64_t len = 0;
      bool alarmed = false;
      while (len < max_len) {
        ++len;
        if (detector.Update(stream.Next())) {
          alarmed = true;
          break;
        }
        if (stop_above && sum + static_cast<double>(len) >= budget) {
          e.stopped_above = true;
          return e;
        }
      }
      if (!alarmed) ++e.censored;
      sum += static_cast<double>(len);
      sum_sq += static_cast<double>(len) * static_cast<double>(len);
    }
    const double n = options.runs;
    e.arl = sum / n;
    const double var = std::max(0.0, (sum_sq - n * e.arl * e.arl) / (n - 1));
    e.stderr_ = std::sqrt(var / n);
    return e;
  };
  auto above = [&](double threshold) {
    const ArlEstimate e = estimate(threshold, /*stop_above=*/true);
    return e.stopped_above || e.arl >= target;
  };

  // Bracket [lo, hi] with ARL(lo) < target <= ARL(hi), doubling/halving.
  constexpr int kMaxBracketSteps = 60;
  double lo = initial_threshold, hi = initial_threshold;
  if (above(initial_threshold)) {
    int steps = 0;
    do {
      hi = lo;
      lo = hi / 2;
      if (++steps > kMaxBracketSteps) {
        return absl::InvalidArgumentError(
            absl::StrCat("target_arl0 ", target,
                         " is below the shortest achievable ARL0 (warm-up/min_instances "
                         "points plus one)"));
      }
    } while (above(lo));
  } else {
    int steps = 0;
    do {
      lo = hi;
      hi = lo * 2;
      if (++steps > kMaxBracketSteps) {
        return absl::InvalidArgumentError(absl::StrCat(
            "target_arl0 ", target,
            " is unreachable for this model: ARL0 stays below it for every threshold"));
      }
    } while (!above(hi));
  }
  // Bisection; relative width 1e-4 is far below the Monte Carlo error.
  for (int i = 0; i < options.max_iterations && hi - lo > 1e-4 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (above(mid) ? hi : lo) = mid;
  }
  // Of the two bracket ends, report the one whose ARL0 is closer in log scale.
  const ArlEstimate at_lo = estimate(lo, false);
  const ArlEstimate at_hi = estimate(hi, false);
  const bool pick_lo =
      std::abs(std::log(at_lo.arl / target)) < std::abs(std::log(at_hi.arl / target));
  const ArlEstimate& best = pick_lo ? at_lo : at_hi;
  ArlCalibration out;
  out.threshold = pick_lo ? lo : hi;
  out.arl0 = best.arl;
  out.arl0_stderr = best.stderr_;
  out.censored_runs = best.censored;
  return out;
}

}  // namespace

absl::StatusOr<ArlCalibration> CalibrateEwma(const EwmaParams& params, const InControlModel& model,
                                             const ArlCalibrationOptions& options) {
  if (absl::Status s = ValidateInputs(model, options); !s.ok()) return s;
  if (absl::StatusOr<Ewma> probe = Ewma::Create(params); !probe.ok()) return probe.status();
  auto make = [&params](double threshold) {
    EwmaParams p = params;
    p.L = threshold;
    return *Ewma::Create(p);  // only L changed, and it stays > 0
  };
  return Calibrate(make, params.L, model, options);
}

absl::StatusOr<ArlCalibration> CalibrateCusum(const CusumParams& params,
                                              const InControlModel& model,
                                              const ArlCalibrationOptions& options) {
  if (absl::Status s = ValidateInputs(model, options); !s.ok()) return s;
  if (absl::StatusOr<Cusum> probe = Cusum::Create(params); !probe.ok()) return probe.status();
  auto make = [&params](double threshold) {
    CusumParams p = params;
    p.h = threshold;
    return *Cusum::Create(p);
  };
  return Calibrate(make, params.h, model, options);
}

absl::StatusOr<ArlCalibration> CalibratePageHinkley(const PageHinkleyParams& params,
                                                    const InControlModel& model,
                                                    const ArlCalibrationOptions& options) {
  if (absl::Status s = ValidateInputs(model, options); !s.ok()) return s;
  if (absl::StatusOr<PageHinkley> probe = PageHinkley::Create(params); !probe.ok()) {
    return probe.status();
  }
  auto make = [&params](double threshold) {
    PageHinkleyParams p = params;
    p.threshold = threshold;
    return *PageHinkley::Create(p);
  };
  return Calibrate(make, params.threshold, model, options);
}

}  // namespace driftwatch::detectors
