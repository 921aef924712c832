// The ingest accumulation kernel: whatever the order of pushes, drains and
// targets, each profile ends bit-identical to a Profile fed one event at a
// time through NumericSummary.
#include "driftwatch/detectors/accumulation.h"

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace driftwatch::detectors {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::shared_ptr<const ProfileLayout> Layout() {
  auto layout = std::make_shared<ProfileLayout>();
  layout->numeric_names = {"a", "b"};
  layout->numeric_edges = {std::make_shared<const BinEdges>(*BinEdges::Create({-1, 0, 1, 2})),
                           std::make_shared<const BinEdges>(*BinEdges::EqualWidth(0, 100, 10))};
  layout->score_names = {"s"};
  layout->score_edges = {std::make_shared<const BinEdges>(*BinEdges::EqualWidth(0, 1, 20))};
  return layout;
}

void AddReference(Profile& p, const std::vector<double>& numeric, double score, double weight,
                  bool late, uint64_t invalid) {
  auto add = [weight](NumericSummary& s, double x) {
    if (std::isnan(x)) {
      s.AddNull(weight);
    } else if (!std::isfinite(x)) {
      s.AddNonFinite(x, weight);
    } else {
      s.Add(x, weight);
    }
  };
  for (size_t k = 0; k < numeric.size(); ++k) add(p.numeric()[k], numeric[k]);
  add(p.scores()[0], score);
  ProfileCounters& c = p.counters();
  ++c.events;
  c.late_accepted += late;
  c.invalid_values += invalid;
  c.weight += weight;
  c.weight_sq += weight * weight;
}

TEST(AccumulationQueueTest, CapacityIsBoundedByValuesAndEvents) {
  AccumulationQueue queue(ProfileAccumulator::Shape::Of(Layout()));
  // 3 summaries: 2^19 / 3 values would be 174762 events; the cap is 16384.
  EXPECT_EQ(queue.capacity(), AccumulationQueue::kMaxEvents);
  EXPECT_EQ(queue.size(), 0u);
  queue.Drain();  // an empty drain is a no-op
}

TEST(AccumulationQueueTest, DrainedProfilesEqualOneEventAtATime) {
  const auto layout = Layout();
  const auto shape = ProfileAccumulator::Shape::Of(layout);
  constexpr int kProfiles = 5;
  std::vector<ProfileAccumulator> accumulators;
  std::vector<Profile> expected;
  for (int i = 0; i < kProfiles; ++i) {
    accumulators.emplace_back(shape);
    expected.emplace_back(layout);
  }
  AccumulationQueue queue(shape);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.5, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  const double special[] = {std::nan(""), kInf, -kInf};
  for (int e = 0; e < 40'000; ++e) {  // more than two queues' worth
    std::vector<double> numeric = {normal(rng), 100 * unit(rng)};
    if (e % 13 == 0) numeric[0] = special[e % 3];
    if (e % 17 == 0) numeric[1] = special[(e + 1) % 3];
    const double score = e % 19 == 0 ? std::nan("") : unit(rng);
    const double weight = 1.0 / (1 + static_cast<double>(e % 4));
    const bool late = e % 7 == 0;
    const uint64_t invalid = e % 11 == 0;
    // 1 to 3 distinct targets per event.
    const int first = static_cast<int>(rng() % kProfiles);
    const int count = 1 + static_cast<int>(rng() % 3);
    for (int t = 0; t < count; ++t) {
      const int p = (first + t) % kProfiles;
      queue.AddTarget(accumulators[p].block());
      AddReference(expected[p], numeric, score, weight, late, invalid);
    }
    queue.Push(numeric, std::span<const double>(&score, 1), weight, late, invalid);
    if (queue.full() || e % 5000 == 4999) queue.Drain();
  }
  queue.Drain();
  for (int p = 0; p < kProfiles; ++p) {
    EXPECT_EQ(accumulators[p].Serialize(), expected[p].Serialize()) << "profile " << p;
    EXPECT_EQ(accumulators[p].counters().events, expected[p].counters().events);
  }
}

}  // namespace
}  // namespace driftwatch::detectors
