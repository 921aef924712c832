// The limiting Kolmogorov distribution. Boost 1.74 lacks it (added in
// 1.75), so both classical series are summed here.
#include <cmath>
#include <limits>
#include <numbers>

#include "driftwatch/detectors/drift.h"

namespace driftwatch::detectors {
namespace {

// Below this the alternating series converges slowly and the theta form
// (Jacobi) converges fast; above it the reverse. At 1.18 both need < 5 terms.
constexpr double kThetaFormBelow = 1.18;

}  // namespace

double KolmogorovSurvival(double x) {
  if (std::isnan(x)) return std::numeric_limits<double>::quiet_NaN();
  if (x <= 0) return 1.0;
  if (x < kThetaFormBelow) {
    // P(K <= x) = sqrt(2 pi) / x * sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 x^2)).
    const double w = -std::numbers::pi * std::numbers::pi / (8 * x * x);
    double sum = 0;
    for (int k = 1; k < 100; ++k) {
      const double odd = 2.0 * k - 1;
      const double term = std::exp(odd * odd * w);
      sum += term;
      if (term <= 1e-17 * sum) break;
    }
    return 1.0 - std::sqrt(2 * std::numbers::pi) / x * sum;
  }
  // Q(x) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2).
  double sum = 0;
  double sign = 1;
  for (int k = 1; k < 100; ++k) {
    const double term = std::exp(-2.0 * k * k * x * x);
    sum += sign * term;
    if (term <= 1e-17 * sum) break;
    sign = -sign;
  }
  return 2 * sum;
}

}  // namespace driftwatch::detectors
