#include "driftwatch/detectors/accumulation.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace driftwatch::detectors {

AccumulationQueue::AccumulationQueue(std::shared_ptr<const ProfileAccumulator::Shape> shape)
    : shape_(std::move(shape)), summaries_(shape_->edges.size()) {
  capacity_ = std::clamp<size_t>(kMaxValues / std::max<size_t>(1, summaries_), kMinEvents,
                                 kMaxEvents);
  values_.resize(summaries_ * capacity_);
  bins_.resize(capacity_);
  weights_.reserve(capacity_);
  late_.reserve(capacity_);
  invalid_.reserve(capacity_);
  first_target_.reserve(capacity_ + 1);
  first_target_.push_back(0);
}

void AccumulationQueue::Drain() {
  if (size() == 0) return;
  AddCounters();
  for (size_t k = 0; k < summaries_; ++k) AddSummary(k);
  weights_.clear();
  late_.clear();
  invalid_.clear();
  first_target_.resize(1);
  targets_.clear();
}

void AccumulationQueue::AddCounters() {
  const size_t n = size();
  const size_t* first = first_target_.data();
  std::byte* const* targets = targets_.data();
  for (size_t j = 0; j < n; ++j) {
    if (j + kAhead < n) {
      for (size_t t = first[j + kAhead]; t < first[j + kAhead + 1]; ++t) {
        __builtin_prefetch(targets[t], 1);
      }
    }
    const double w = weights_[j];
    for (size_t t = first[j]; t < first[j + 1]; ++t) {
      ProfileCounters& c = *ProfileAccumulator::CountersAt(targets[t]);
      ++c.events;
      c.late_accepted += late_[j];
      c.invalid_values += invalid_[j];
      c.weight += w;
      c.weight_sq += w * w;
    }
  }
}

void AccumulationQueue::AddSummary(size_t k) {
  const size_t n = size();
  const BinEdges& edges = *shape_->edges[k];
  const uint32_t line = shape_->first_line[k];
  const double* xs = &values_[k * capacity_];
  const double* w = weights_.data();
  const size_t* first = first_target_.data();
  std::byte* const* targets = targets_.data();
  uint32_t* bins = bins_.data();
  for (size_t j = 0; j < n; ++j) {
    bins[j] = std::isfinite(xs[j]) ? static_cast<uint32_t>(edges.BinOf(xs[j])) : kNonFinite;
  }
  for (size_t j = 0; j < n; ++j) {
    // The targets' lines are mostly cache misses (thousands of slice
    // profiles): fetch kAhead events ahead so that they overlap.
    if (j + kAhead < n && bins[j + kAhead] != kNonFinite) {
      for (size_t t = first[j + kAhead]; t < first[j + kAhead + 1]; ++t) {
        std::byte* block = targets[t];
        __builtin_prefetch(ProfileAccumulator::MomentsAt(block, line), 1);
        __builtin_prefetch(ProfileAccumulator::BinsAt(block, line) + 2 * bins[j + kAhead], 1);
      }
    }
    const double x = xs[j];
    if (bins[j] == kNonFinite) {
      for (size_t t = first[j]; t < first[j + 1]; ++t) {
        ProfileAccumulator::ColdCounts& cold = ProfileAccumulator::ColdAt(targets[t], *shape_)[k];
        if (std::isnan(x)) {
          ++ProfileAccumulator::MomentsAt(targets[t], line)->nulls;
        } else {
          ProfileAccumulator::CountNonFinite(cold, x);
        }
        cold.missing_weight += w[j];
      }
      continue;
    }
    for (size_t t = first[j]; t < first[j + 1]; ++t) {
      std::byte* block = targets[t];
      ProfileAccumulator::AddAt(*ProfileAccumulator::MomentsAt(block, line),
                                ProfileAccumulator::BinsAt(block, line), bins[j], x, w[j]);
    }
  }
}

}  // namespace driftwatch::detectors
