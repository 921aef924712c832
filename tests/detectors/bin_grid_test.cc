// BinEdges::BinOf takes a grid path for evenly spread edges and a binary
// search otherwise; both must equal "the number of edges strictly less than
// x" for every x, edges themselves and their neighbours included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "driftwatch/detectors/histogram.h"

namespace driftwatch::detectors {
namespace {

size_t Reference(const std::vector<double>& edges, double x) {
  return static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), x) - edges.begin());
}

void CheckAll(const BinEdges& b, std::mt19937_64& rng) {
  const std::vector<double>& e = b.edges();
  std::vector<double> probes = {-std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::max(), 0.0, -0.0};
  for (double edge : e) {
    probes.push_back(edge);
    probes.push_back(std::nextafter(edge, -INFINITY));
    probes.push_back(std::nextafter(edge, INFINITY));
  }
  const double lo = e.empty() ? -1 : e.front(), hi = e.empty() ? 1 : e.back();
  std::uniform_real_distribution<double> u(lo - (hi - lo), hi + (hi - lo));
  for (int i = 0; i < 20000; ++i) probes.push_back(u(rng));
  for (double x : probes) ASSERT_EQ(b.BinOf(x), Reference(e, x)) << "x = " << x;
}

TEST(BinGrid, QuantileEdgesOfSeveralShapesMatchTheDefinition) {
  std::mt19937_64 rng(11);
  for (int bins : {2, 4, 10, 64, 256, 1000}) {
    std::normal_distribution<double> normal(3, 2);
    std::lognormal_distribution<double> lognormal(0, 1.5);
    std::vector<double> a(5000), b(5000);
    for (double& x : a) x = normal(rng);
    for (double& x : b) x = lognormal(rng);
    CheckAll(*BinEdges::FromQuantiles(a, bins), rng);
    CheckAll(*BinEdges::FromQuantiles(b, bins), rng);
  }
}

TEST(BinGrid, UnevenAndDegenerateEdgesMatchTheDefinition) {
  std::mt19937_64 rng(12);
  std::vector<double> log_edges;
  for (int k = -24; k <= 64; ++k) log_edges.push_back(std::pow(10.0, k / 8.0));
  CheckAll(*BinEdges::Create(log_edges), rng);  // far too uneven: binary search
  CheckAll(*BinEdges::Create({}), rng);
  CheckAll(*BinEdges::Create({1.5}), rng);
  CheckAll(*BinEdges::Create({0, 1e-300}), rng);
  CheckAll(*BinEdges::Create({-1e300, 1e300}), rng);
  CheckAll(*BinEdges::EqualWidth(0, 1, 100), rng);
  std::vector<double> clustered = {0, 1e-9, 2e-9, 3e-9, 4e-9, 1};
  CheckAll(*BinEdges::Create(clustered), rng);
}

}  // namespace
}  // namespace driftwatch::detectors
