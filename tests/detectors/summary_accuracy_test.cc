// The service (summary) path against the exact path on data nobody tuned
// for: normal, lognormal, bimodal, heavy-tailed, integer-valued and
// mostly-constant features, weighted and not, with summary edges from a
// reference sample (the registry's 64 quantile bins) or given explicitly.
// Fixed seeds. Two kinds of assertion:
//  - always: the exact value lies inside the bound the summary reports
//    (KS in [D, D + error_bound], W1 and W1/sd within +- their bounds);
//  - the goal of issue 8 where these summaries reach it: PSI and KL within
//    0.005 absolute (or 2%), JS within 2% (or 0.002 absolute near 0), W1/sd
//    within 0.05, KS error_bound <= 0.02 for explicit edges refined by
//    learned ones (the registry's default) and <= 0.022 for a sample's
//    (docs/statistics.md says which layouts reach which).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "driftwatch/detectors/drift.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/sample.h"
#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

using Draw = std::function<double(std::mt19937_64&, bool shifted)>;

struct Distribution {
  std::string name;
  Draw draw;
  // Explicit edges a user would register for it.
  std::vector<double> explicit_edges;
};

std::vector<double> Grid(double lo, double hi, int n) {
  std::vector<double> e;
  for (int k = 0; k <= n; ++k) e.push_back(lo + (hi - lo) * k / n);
  return e;
}

std::vector<Distribution> Distributions() {
  return {
      {"normal",
       [](std::mt19937_64& g, bool s) { return std::normal_distribution<>(s ? 0.3 : 0, 1)(g); },
       Grid(-4, 4, 64)},
      {"lognormal",
       [](std::mt19937_64& g, bool s) {
         return std::lognormal_distribution<>(s ? 3.2 : 3, s ? 1.1 : 1)(g);
       },
       Grid(0, 300, 64)},
      {"bimodal",
       [](std::mt19937_64& g, bool s) {
         const bool left = std::bernoulli_distribution(s ? 0.4 : 0.5)(g);
         return std::normal_distribution<>(left ? -3 : 3, 0.7)(g);
       },
       Grid(-6, 6, 64)},
      {"heavy_tailed",  // Student t with 2 degrees of freedom
       [](std::mt19937_64& g, bool s) {
         return std::student_t_distribution<>(2)(g) * (s ? 1.3 : 1);
       },
       Grid(-10, 10, 64)},
      {"integer",
       [](std::mt19937_64& g, bool s) {
         return static_cast<double>(std::poisson_distribution<>(s ? 4.6 : 4)(g));
       },
       Grid(0, 30, 30)},
      {"mostly_constant",  // 90% exactly 0, the rest spread
       [](std::mt19937_64& g, bool s) {
         if (std::bernoulli_distribution(s ? 0.85 : 0.9)(g)) return 0.0;
         return std::exponential_distribution<>(0.1)(g);
       },
       Grid(0, 60, 60)},
  };
}

struct Data {
  std::vector<double> values, weights;
};

Data Draws(const Distribution& d, std::mt19937_64& rng, size_t n, bool shifted, bool weighted) {
  Data out;
  std::uniform_int_distribution<int> rate(0, 2);
  const double weights[] = {1, 2, 10};  // sample rates 1, 0.5, 0.1
  for (size_t i = 0; i < n; ++i) {
    out.values.push_back(d.draw(rng, shifted));
    out.weights.push_back(weighted ? weights[rate(rng)] : 1.0);
  }
  return out;
}

WeightedSample Exact(const Data& d, bool weighted) {
  auto s = weighted ? WeightedSample::Create(d.values, d.weights) : WeightedSample::Create(d.values);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

NumericSummary Summarize(std::shared_ptr<const BinEdges> edges, const Data& d) {
  NumericSummary s(std::move(edges));
  for (size_t i = 0; i < d.values.size(); ++i) s.Add(d.values[i], d.weights[i]);
  return s;
}

// kLearned: explicit edges refined by edges learned from the first 2,000
// values (the registry's default for summary_edges without a sample).
enum class Layout { kReferenceSample, kExplicitEdges, kLearned };

struct Errors {
  double psi = 0, kl = 0, js = 0, w1_norm = 0, ks_bound = 0;
};

// Compares both paths for one case; asserts the bounds hold, returns the errors.
Errors Compare(const Distribution& dist, Layout layout, bool weighted, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::shared_ptr<const BinEdges> edges;
  if (layout == Layout::kReferenceSample) {
    // What the registry does with a 2,000-row reference_sample.
    Data sample = Draws(dist, rng, 2000, false, false);
    edges = std::make_shared<const BinEdges>(*BinEdges::ForReferenceSample(sample.values, 64));
  } else if (layout == Layout::kLearned) {
    Data first = Draws(dist, rng, 2000, false, false);
    std::vector<double> all = dist.explicit_edges;
    const std::vector<double> learned = BinEdges::ForReferenceSample(first.values, 64)->edges();
    all.insert(all.end(), learned.begin(), learned.end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    edges = std::make_shared<const BinEdges>(*BinEdges::Create(all));
  } else {
    edges = std::make_shared<const BinEdges>(*BinEdges::Create(dist.explicit_edges));
  }
  const Data ref = Draws(dist, rng, 20000, false, weighted);
  const Data cur = Draws(dist, rng, 20000, true, weighted);
  auto exact = CompareNumeric(Exact(ref, weighted), Exact(cur, weighted));
  auto reference = std::make_shared<const NumericSummary>(Summarize(edges, ref));
  auto baseline = MakeNumericBaseline(reference);
  EXPECT_TRUE(exact.ok() && baseline.ok());
  auto got = CompareNumeric(*baseline, Summarize(edges, cur));
  EXPECT_TRUE(got.ok()) << got.status();
  if (!exact.ok() || !got.ok()) return {};

  // The bounds the service reports hold.
  EXPECT_GE(exact->ks->statistic, got->ks->statistic - 1e-12);
  EXPECT_LE(exact->ks->statistic, got->ks->statistic + got->ks->error_bound + 1e-12);
  EXPECT_LE(exact->ks->p_value, got->ks->p_value + 1e-12);
  EXPECT_GE(exact->ks->p_value, got->ks->p_value_low - 1e-12)
      << "exact D " << exact->ks->statistic << " n_e " << exact->ks->n_effective << "; summary D "
      << got->ks->statistic << " + " << got->ks->error_bound << " n_e " << got->ks->n_effective;
  const double w_tol = 1e-9 * (1 + exact->wasserstein->distance);
  EXPECT_NEAR(got->wasserstein->distance, exact->wasserstein->distance,
              got->wasserstein->error_bound + w_tol);
  EXPECT_NEAR(got->wasserstein->normalized, exact->wasserstein->normalized,
              got->wasserstein->normalized_error_bound + 1e-9);

  Errors e;
  e.psi = std::abs(got->divergences.psi - exact->divergences.psi);
  e.kl = std::abs(got->divergences.kl - exact->divergences.kl);
  e.js = std::abs(got->divergences.js - exact->divergences.js);
  e.w1_norm = std::abs(got->wasserstein->normalized - exact->wasserstein->normalized);
  e.ks_bound = got->ks->error_bound;
  std::printf(
      "%-16s %-9s %-10s psi %.4f/%.4f kl %.4f/%.4f js %.4f/%.4f w1sd %.4f/%.4f (+-%.4f) ks "
      "%.4f/%.4f (+%.4f)\n",
      dist.name.c_str(),
      layout == Layout::kReferenceSample ? "sample"
      : layout == Layout::kLearned       ? "learned"
                                         : "explicit",
      weighted ? "weighted" : "unweighted", got->divergences.psi, exact->divergences.psi,
      got->divergences.kl, exact->divergences.kl, got->divergences.js, exact->divergences.js,
      got->wasserstein->normalized, exact->wasserstein->normalized,
      got->wasserstein->normalized_error_bound, got->ks->statistic, exact->ks->statistic,
      got->ks->error_bound);

  // Exact values for the goal's relative tolerances.
  const double psi = exact->divergences.psi, kl = exact->divergences.kl, js = exact->divergences.js;
  EXPECT_LE(e.psi, std::max(0.005, 0.02 * psi)) << dist.name;
  EXPECT_LE(e.kl, std::max(0.005, 0.02 * kl)) << dist.name;
  EXPECT_LE(e.js, std::max(0.002, 0.02 * js)) << dist.name;
  EXPECT_LE(e.w1_norm, 0.05) << dist.name;
  // The KS goal: met by the layouts the registry draws from data (a
  // sample's quantiles with split tails, or explicit edges refined by the
  // first traffic's); explicit edges alone bound it by their own bins.
  if (layout == Layout::kLearned) {
    EXPECT_LE(e.ks_bound, 0.02) << dist.name;
  }
  if (layout == Layout::kReferenceSample) {
    EXPECT_LE(e.ks_bound, 0.022) << dist.name;
  }
  return e;
}

class SummaryAccuracy : public ::testing::TestWithParam<std::tuple<int, Layout, bool>> {};

TEST_P(SummaryAccuracy, ServicePathIsWithinItsBoundsOfTheExactPath) {
  const auto [index, layout, weighted] = GetParam();
  const Distribution dist = Distributions()[index];
  for (uint64_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE(seed);
    Compare(dist, layout, weighted, seed);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Distributions, SummaryAccuracy,
    ::testing::Combine(::testing::Range(0, 6),
                       ::testing::Values(Layout::kReferenceSample, Layout::kExplicitEdges,
                                         Layout::kLearned),
                       ::testing::Bool()),
    [](const auto& info) {
      return Distributions()[std::get<0>(info.param)].name +
             (std::get<1>(info.param) == Layout::kReferenceSample ? "_sample"
              : std::get<1>(info.param) == Layout::kLearned       ? "_learned"
                                                                  : "_explicit") +
             (std::get<2>(info.param) ? "_weighted" : "_unweighted");
    });

}  // namespace
}  // namespace driftwatch::detectors
