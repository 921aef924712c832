// Interactive queries before ingest. A drift report is a person (or a
// dashboard) waiting; ingest is throughput, and its clients are already
// buffered by gRPC flow control. On a machine whose cores ingest keeps
// busy, a report competing for CPU on equal terms waits several scheduler
// slices (p99 of tens of ms measured), so while any report runs, each
// ingest stream pauses before applying its next batch, for at most
// `max_pause_ms` per batch so that a slow or stuck query cannot stall ingest.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace driftwatch::service {

class QueryPriority {
 public:
  // max_pause_ms <= 0 turns the pause off.
  explicit QueryPriority(int64_t max_pause_ms) : max_pause_ms_(max_pause_ms) {}

  // Held by a query for its duration.
  class Scope {
   public:
    explicit Scope(QueryPriority* p) : p_(p) { p_->active_.fetch_add(1); }
    ~Scope() {
      if (p_->active_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(p_->mu_);
        p_->cv_.notify_all();
      }
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    QueryPriority* p_;
  };

  // Called by ingest between batches: returns at once when no query runs,
  // else when none does or max_pause_ms has passed. True if it waited.
  bool Yield() {
    if (max_pause_ms_ <= 0 || active_.load(std::memory_order_relaxed) == 0) return false;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(max_pause_ms_),
                 [&] { return active_.load() == 0; });
    return true;
  }

  int active() const { return active_.load(); }

 private:
  const int64_t max_pause_ms_;
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace driftwatch::service
