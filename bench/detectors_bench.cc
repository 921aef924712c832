// Micro benchmarks for the statistics core (issue 2 targets):
//   summary update <= 10 ns/value, PSI+KL+JS+KS <= 1 us per feature-slice at
//   64 bins, sequential detectors <= 15 ns/update.
// Run with `make bench`; figures go in the issue note, never in tests.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "driftwatch/detectors/categorical.h"
#include "driftwatch/detectors/drift.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/sequential.h"

namespace dd = driftwatch::detectors;

namespace {

std::vector<double> Normal(size_t n, double mean, double sd, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::shared_ptr<const dd::BinEdges> QuantileEdges(int bins) {
  auto ref = Normal(100000, 0, 1, 1);
  return std::make_shared<const dd::BinEdges>(*dd::BinEdges::FromQuantiles(ref, bins));
}

// One value into one summary; values cycle through a buffer far larger than
// the branch predictor can learn.
void BM_NumericSummaryAdd(benchmark::State& state) {
  auto edges = QuantileEdges(static_cast<int>(state.range(0)));
  dd::NumericSummary summary(edges);
  auto values = Normal(1 << 16, 0, 1, 2);
  size_t i = 0;
  for (auto _ : state) {
    summary.Add(values[i], 1.0);
    i = (i + 1) & ((1 << 16) - 1);
  }
  benchmark::DoNotOptimize(summary.counts().weight);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NumericSummaryAdd)->Arg(16)->Arg(64)->Arg(256);

// The ingest shape: one event updates 20 feature summaries in turn.
void BM_NumericSummaryAdd20Features(benchmark::State& state) {
  constexpr int kFeatures = 20;
  std::vector<dd::NumericSummary> summaries;
  for (int f = 0; f < kFeatures; ++f) summaries.emplace_back(QuantileEdges(64));
  auto values = Normal(kFeatures * 4096, 0, 1, 3);
  size_t row = 0;
  for (auto _ : state) {
    const double* v = &values[row * kFeatures];
    for (int f = 0; f < kFeatures; ++f) summaries[f].Add(v[f], 1.0);
    row = (row + 1) & 4095;
  }
  benchmark::DoNotOptimize(summaries[0].counts().weight);
  state.SetItemsProcessed(state.iterations() * kFeatures);
}
BENCHMARK(BM_NumericSummaryAdd20Features);

void BM_NumericSummaryMerge(benchmark::State& state) {
  auto edges = QuantileEdges(static_cast<int>(state.range(0)));
  dd::NumericSummary a(edges), b(edges);
  for (double x : Normal(10000, 0, 1, 4)) b.Add(x);
  for (auto _ : state) {
    benchmark::DoNotOptimize(a.Merge(b));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NumericSummaryMerge)->Arg(64)->Arg(256);

void BM_CategoricalAdd(benchmark::State& state) {
  dd::CategoricalSummary summary(1000);
  std::vector<std::string> cats;
  for (int i = 0; i < 50; ++i) cats.push_back("country_" + std::to_string(i));
  std::mt19937_64 rng(5);
  std::vector<uint32_t> idx(4096);
  for (auto& i : idx) i = rng() % cats.size();
  size_t i = 0;
  for (auto _ : state) {
    summary.Add(cats[idx[i]], 1.0);
    i = (i + 1) & 4095;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CategoricalAdd);

// One feature-slice evaluation on 64 aligned bins: PSI + KL + JS, then KS
// from the two summaries.
void BM_PsiKlJsKs64Bins(benchmark::State& state) {
  auto edges = QuantileEdges(64);
  dd::NumericSummary ref(edges), cur(edges);
  for (double x : Normal(50000, 0, 1, 6)) ref.Add(x);
  for (double x : Normal(50000, 0.1, 1.1, 7)) cur.Add(x);
  for (auto _ : state) {
    auto div = dd::CompareBinCounts(ref.bins(), cur.bins());
    auto ks = dd::KsTest(ref, cur);
    benchmark::DoNotOptimize(div);
    benchmark::DoNotOptimize(ks);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PsiKlJsKs64Bins);

// The full service-path comparison against a frozen 10-bin baseline built
// from a 64-bin reference summary (rebin + PSI/KL/JS + KS + Wasserstein).
void BM_CompareNumericBaseline(benchmark::State& state) {
  auto edges = QuantileEdges(64);
  auto ref = std::make_shared<dd::NumericSummary>(edges);
  for (double x : Normal(50000, 0, 1, 8)) ref->Add(x);
  auto baseline = dd::MakeNumericBaseline(ref, 10);
  dd::NumericSummary cur(edges);
  for (double x : Normal(50000, 0.1, 1.1, 9)) cur.Add(x);
  for (auto _ : state) {
    auto drift = dd::CompareNumeric(*baseline, cur);
    benchmark::DoNotOptimize(drift);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CompareNumericBaseline);

template <typename Detector, typename Params>
void RunSequential(benchmark::State& state, const Params& params) {
  auto values = Normal(1 << 16, 0, 1, 10);
  auto detector = *Detector::Create(params);
  size_t i = 0;
  int64_t alarms = 0;
  for (auto _ : state) {
    alarms += detector.Update(values[i]);
    i = (i + 1) & ((1 << 16) - 1);
  }
  benchmark::DoNotOptimize(alarms);
  state.SetItemsProcessed(state.iterations());
}

void BM_EwmaUpdate(benchmark::State& state) { RunSequential<dd::Ewma>(state, dd::EwmaParams{}); }
BENCHMARK(BM_EwmaUpdate);
void BM_CusumUpdate(benchmark::State& state) {
  RunSequential<dd::Cusum>(state, dd::CusumParams{});
}
BENCHMARK(BM_CusumUpdate);
void BM_PageHinkleyUpdate(benchmark::State& state) {
  RunSequential<dd::PageHinkley>(state, dd::PageHinkleyParams{});
}
BENCHMARK(BM_PageHinkleyUpdate);

}  // namespace

namespace {
void BM_CompareBinCounts64(benchmark::State& state) {
  auto edges = QuantileEdges(64);
  dd::NumericSummary ref(edges), cur(edges);
  for (double x : Normal(50000, 0, 1, 6)) ref.Add(x);
  for (double x : Normal(50000, 0.1, 1.1, 7)) cur.Add(x);
  for (auto _ : state) benchmark::DoNotOptimize(dd::CompareBinCounts(ref.bins(), cur.bins()));
}
BENCHMARK(BM_CompareBinCounts64);
void BM_KsSummaries64(benchmark::State& state) {
  auto edges = QuantileEdges(64);
  dd::NumericSummary ref(edges), cur(edges);
  for (double x : Normal(50000, 0, 1, 6)) ref.Add(x);
  for (double x : Normal(50000, 0.1, 1.1, 7)) cur.Add(x);
  for (auto _ : state) benchmark::DoNotOptimize(dd::KsTest(ref, cur));
}
BENCHMARK(BM_KsSummaries64);
}  // namespace
