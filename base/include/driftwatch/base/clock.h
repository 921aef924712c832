// Time, injected: production uses the system clock, tests a manual one, so
// no test sleeps on the wall clock. Waiting for a deadline goes through the
// clock too (AwaitUntil), so a wait bounded by time ends when a test moves
// its manual clock past the deadline.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace driftwatch::base {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;  // Unix milliseconds

  // With `mu` held: waits until `condition` holds or this clock reaches
  // `deadline_ms`, releasing `mu` while waiting (absl::Mutex::Await
  // semantics: the condition is re-checked whenever another thread releases
  // `mu`). Returns whether the condition holds.
  virtual bool AwaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                          int64_t deadline_ms) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

// AwaitUntil waits with abseil's timed waits, which in this abseil follow
// the wall clock: a backward step of the system clock stretches a timeout
// in progress by the step. Conditions still wake a waiter at once; only a
// wait that ends by its deadline is late.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& condition, int64_t deadline_ms) const
      override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int64_t left_ms = deadline_ms - NowMs();
    if (left_ms <= 0) return condition.Eval();
    return mu->AwaitWithTimeout(condition, absl::Milliseconds(left_ms));
  }
};

// Time stands still until Set or Advance moves it. A waiter in AwaitUntil
// wakes when its condition holds, or within a millisecond of real time
// after the clock passes its deadline.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void Set(int64_t now_ms) { now_ms_.store(now_ms); }
  void Advance(int64_t delta_ms) { now_ms_.fetch_add(delta_ms); }

  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& condition, int64_t deadline_ms) const
      override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!condition.Eval()) {
      if (NowMs() >= deadline_ms) return false;
      // A real-time poll only to notice Set/Advance; how long it takes
      // never decides the outcome.
      mu->AwaitWithTimeout(condition, absl::Milliseconds(1));
    }
    return true;
  }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace driftwatch::base
