// Micro benchmark of the ingest hot path's profile updates: every event adds
// 20 features + 1 score to 4 profiles (the population, and one slice of each
// of 3 keys with 3, 50 and 947 values) chosen from `range(0)` buckets' worth
// of slices. BM_AccumulationQueue runs the production kernel
// (detectors/accumulation.h); BM_ProfileEventMajor is the plain design it
// replaced (a Profile of NumericSummary objects, one event at a time), for
// comparison.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <span>
#include <random>
#include <vector>

#include "driftwatch/detectors/accumulation.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/profile.h"

namespace dd = driftwatch::detectors;

namespace {

constexpr int kFeatures = 20;
constexpr size_t kEvents = 1 << 14;

// What the registry gives: edges from a 2,000-row reference sample at
// `bins` (ingest.summary_bins, 64) with split tails, and a probability
// score's 100 equal-width bins.
std::shared_ptr<const dd::ProfileLayout> Layout(int bins = 64) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  std::vector<double> ref(2000);
  for (double& x : ref) x = normal(rng);
  auto edges =
      std::make_shared<const dd::BinEdges>(*dd::BinEdges::ForReferenceSample(ref, bins));
  auto layout = std::make_shared<dd::ProfileLayout>();
  for (int f = 0; f < kFeatures; ++f) {
    layout->numeric_names.push_back("f" + std::to_string(f));
    layout->numeric_edges.push_back(edges);
  }
  layout->score_names.push_back("score");
  layout->score_edges.push_back(std::make_shared<const dd::BinEdges>(
      *dd::BinEdges::EqualWidth(0, 1, 100)));
  return layout;
}

struct Traffic {
  std::vector<double> values;   // [event][summary], 21 per event
  std::vector<uint32_t> slices;  // [event][4] slice index within `slices_total`
  size_t slices_total = 0;
};

Traffic MakeTraffic(int buckets) {
  Traffic t;
  std::mt19937_64 rng(2);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> unit;
  const uint32_t per_bucket = 1 + 3 + 50 + 947;
  t.slices_total = per_bucket * buckets;
  for (size_t e = 0; e < kEvents; ++e) {
    for (int f = 0; f < kFeatures; ++f) t.values.push_back(normal(rng));
    t.values.push_back(unit(rng));
    const uint32_t base = per_bucket * static_cast<uint32_t>(rng() % buckets);
    t.slices.push_back(base);
    t.slices.push_back(base + 1 + rng() % 3);
    t.slices.push_back(base + 4 + rng() % 50);
    t.slices.push_back(base + 54 + rng() % 947);
  }
  return t;
}

void BM_ProfileEventMajor(benchmark::State& state) {
  auto layout = Layout();
  Traffic t = MakeTraffic(static_cast<int>(state.range(0)));
  std::vector<dd::Profile> profiles(t.slices_total, dd::Profile(layout));
  size_t e = 0;
  for (auto _ : state) {
    const double* v = &t.values[e * (kFeatures + 1)];
    dd::Profile* p[4];
    for (int s = 0; s < 4; ++s) p[s] = &profiles[t.slices[e * 4 + s]];
    for (int f = 0; f < kFeatures; ++f) {
      const size_t bin = layout->numeric_edges[f]->BinOf(v[f]);
      for (dd::Profile* q : p) q->numeric()[f].AddAt(bin, v[f], 1.0);
    }
    const size_t bin = layout->score_edges[0]->BinOf(v[kFeatures]);
    for (dd::Profile* q : p) q->scores()[0].AddAt(bin, v[kFeatures], 1.0);
    e = (e + 1) % kEvents;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProfileEventMajor)->Arg(1)->Arg(6);

// The production kernel (detectors::AccumulationQueue, what the ingestor
// runs): events pushed with their 4 target profiles, `range(1)` at a time
// (0: until the queue is full, as the ingestor does), then drained
// feature by feature with prefetch; `range(2)` summary bins (what a finer
// ingest.summary_bins costs).
void BM_AccumulationQueue(benchmark::State& state) {
  auto shape = dd::ProfileAccumulator::Shape::Of(Layout(static_cast<int>(state.range(2))));
  Traffic t = MakeTraffic(static_cast<int>(state.range(0)));
  std::vector<dd::ProfileAccumulator> profiles;
  for (size_t i = 0; i < t.slices_total; ++i) profiles.emplace_back(shape);
  dd::AccumulationQueue queue(shape);
  const size_t per_drain =
      std::min({queue.capacity(), kEvents,
                state.range(1) > 0 ? static_cast<size_t>(state.range(1)) : queue.capacity()});
  size_t e = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < per_drain; ++j, e = (e + 1) % kEvents) {
      for (int s = 0; s < 4; ++s) queue.AddTarget(profiles[t.slices[e * 4 + s]].block());
      const double* v = &t.values[e * (kFeatures + 1)];
      queue.Push(std::span<const double>(v, kFeatures), std::span<const double>(v + kFeatures, 1),
                 1.0, false, 0);
    }
    queue.Drain();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(per_drain));
}
BENCHMARK(BM_AccumulationQueue)
    ->Args({1, 1024, 64})
    ->Args({6, 1024, 64})
    ->Args({1, 0, 64})
    ->Args({6, 0, 64})
    ->Args({1, 1024, 128})
    ->Args({6, 1024, 128});

}  // namespace
