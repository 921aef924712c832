// Interactive queries before ingest. A drift report is a person (or a
// dashboard) waiting; ingest is throughput, and its clients are already
// buffered by gRPC flow control. On a machine whose cores ingest keeps
// busy, a report competing for CPU on equal terms waits several scheduler
// slices (p99 of tens of ms measured), so while any report runs, each
// ingest stream pauses before applying its next batch, for at most
// `max_pause_ms` per batch so that a slow or stuck query cannot stall ingest.
//
// Thread-safe: queries hold Scopes on any thread while ingest threads Yield.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"

namespace driftwatch::service {

class QueryPriority {
 public:
  // max_pause_ms <= 0 turns the pause off. `clock` bounds the pause and
  // must outlive this object.
  QueryPriority(int64_t max_pause_ms, const base::Clock* clock)
      : max_pause_ms_(max_pause_ms), clock_(clock) {}

  // Held by a query for its duration.
  class Scope {
   public:
    explicit Scope(QueryPriority* priority) : priority_(priority) {
      priority_->active_.fetch_add(1);
    }
    ~Scope() {
      if (priority_->active_.fetch_sub(1) == 1) {
        // Waiters re-check their condition when the mutex is released.
        absl::MutexLock lock(&priority_->mu_);
      }
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    QueryPriority* const priority_;
  };

  // Called by ingest between batches: returns at once when no query runs,
  // else when none does or max_pause_ms has passed on the clock. True if it
  // waited.
  bool Yield() {
    if (max_pause_ms_ <= 0 || active_.load(std::memory_order_relaxed) == 0) return false;
    absl::MutexLock lock(&mu_);
    ++waiting_;
    clock_->AwaitUntil(&mu_, absl::Condition(this, &QueryPriority::Idle),
                       clock_->NowMs() + max_pause_ms_);
    --waiting_;
    return true;
  }

  int active() const { return active_.load(); }
  // Ingest streams inside Yield now.
  int waiting() const {
    absl::MutexLock lock(&mu_);
    return waiting_;
  }

 private:
  bool Idle() const { return active_.load() == 0; }

  // Constant after construction.
  const int64_t max_pause_ms_;
  const base::Clock* const clock_;

  std::atomic<int> active_{0};
  mutable absl::Mutex mu_;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace driftwatch::service
