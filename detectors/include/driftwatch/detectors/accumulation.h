// The ingest hot path's accumulation kernel: events wait in a queue, then
// are added to their ProfileAccumulators feature by feature.
//
// AddTarget names the profiles an event goes to (its slices in one bucket)
// and Push then queues its numeric values and scores; Drain then, per summary, bins the
// queued values in one tight loop and adds them to every target in event
// order, prefetching the targets' lines ahead. Each profile sees its values
// in the order they were pushed, so the result is bit-identical to adding
// one event at a time; the gains are that one feature's bins of all slices
// are a small working set, and that a slice profile's lines, once fetched,
// take all its values of the queue. Categorical values are not queued: the
// caller adds them at once (CategoricalSummary is not flat).
//
// Pure: no I/O, no clocks. Not thread-safe: one owner fills and drains it
// (the service hands a full queue to the thread that drains it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/base/attributes.h"
#include "driftwatch/detectors/profile.h"

namespace driftwatch::detectors {

class AccumulationQueue {
 public:
  // Holds up to kMaxValues numeric values, and between kMinEvents and
  // kMaxEvents events, whatever the shape's summary count.
  static constexpr size_t kMaxValues = size_t{1} << 19;  // 4 MiB of doubles
  static constexpr size_t kMinEvents = 1024;
  static constexpr size_t kMaxEvents = 16384;

  explicit AccumulationQueue(std::shared_ptr<const ProfileAccumulator::Shape> shape);

  const ProfileAccumulator::Shape& shape() const { return *shape_; }
  size_t size() const { return weights_.size(); }
  size_t capacity() const { return capacity_; }
  bool full() const { return size() == capacity_; }

  // A profile the next pushed event goes to: a ProfileAccumulator::block()
  // of the shape, which must stay alive until the next Drain.
  void AddTarget(std::byte* block) { targets_.push_back(block); }

  // Queues one event, whose targets are those added since the previous
  // Push; the queue must not be full. `numeric` and `scores` hold one value
  // per numeric feature and per score of the shape (NaN is a null, +-Inf a
  // non-finite value); `weight` > 0 is 1 / sample rate; `late` and
  // `invalid` go to the targets' counters.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Push(std::span<const double> numeric,
                                         std::span<const double> scores, double weight, bool late,
                                         uint64_t invalid) {
    const size_t j = size();
    const size_t n_numeric = numeric.size();
    double* column = values_.data() + j;
    for (size_t k = 0; k < n_numeric; ++k) column[k * capacity_] = numeric[k];
    column += n_numeric * capacity_;
    for (size_t k = 0; k < scores.size(); ++k) column[k * capacity_] = scores[k];
    first_target_.push_back(targets_.size());
    weights_.push_back(weight);
    late_.push_back(late);
    invalid_.push_back(invalid);
  }

  // Adds every queued event to its targets and empties the queue.
  void Drain();

 private:
  static constexpr size_t kAhead = 16;  // events prefetched ahead in Drain
  static constexpr uint32_t kNonFinite = ~0u;

  void AddCounters();
  void AddSummary(size_t k);

  std::shared_ptr<const ProfileAccumulator::Shape> shape_;
  size_t summaries_ = 0;
  size_t capacity_ = 0;            // events
  std::vector<double> values_;     // [summary * capacity_ + event]
  std::vector<double> weights_;    // per event
  std::vector<uint8_t> late_;      // per event
  std::vector<uint64_t> invalid_;  // per event
  std::vector<size_t> first_target_;   // per event its first target; one more at the end
  std::vector<std::byte*> targets_;    // ProfileAccumulator::block() of each target
  std::vector<uint32_t> bins_;         // of one summary, per event
};

}  // namespace driftwatch::detectors
