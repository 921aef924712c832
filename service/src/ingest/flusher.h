// Group commit. Every batch applied under a model's lock takes a sequence
// number; a flush reads the newest one, collects what every model has
// applied (through `collect`), commits it in one transaction and then
// releases every WaitDurable(seq) it covers, so an ack is sent only for
// committed events. A failed commit is kept and retried, whole, by the
// next flush. Flushes run every interval on a background thread, at once
// when a waiter asks, or when called.
//
// Thread-safe. Flush serialises with itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/ingest_options.h"
#include "driftwatch/storage/flush_store.h"

namespace driftwatch::service::ingest {

class Flusher {
 public:
  // Which collects are committed: collect `seq` is the seq-th call of
  // Collect (from 1); everything collects 1..committed put into batches is
  // durable (a failed batch is retried whole, so it is all or nothing).
  struct CollectSeq {
    uint64_t seq = 0;
    uint64_t committed = 0;
  };
  // Fills a batch with everything applied so far; called by Flush, one at a time.
  using Collect = std::function<void(storage::FlushBatch*, CollectSeq)>;

  // Called after a commit, with the last collect it made durable.
  using OnCommit = std::function<void(uint64_t committed_collect)>;
  // All pointers must outlive the flusher; `totals` gets the flush counters.
  Flusher(storage::FlushStore* store, const base::Clock* clock, int64_t interval_ms,
          IngestTotals* totals, Collect collect, OnCommit on_commit = nullptr);
  ~Flusher();  // Stop()

  // Starts the background thread (every interval_ms on the clock).
  void Start();
  // Stops the thread and releases every waiter (UNAVAILABLE). Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // The sequence number of a batch being applied; call under the model's
  // lock, so that a flush that reads a number collects its batch.
  uint64_t NextSeq() { return applied_.fetch_add(1) + 1; }

  // One flush now. On a storage error what could not be committed is kept
  // for the next flush, and the error returned.
  absl::Status Flush() ABSL_LOCKS_EXCLUDED(flush_mu_, mu_);

  // Requests a flush and blocks until `seq` is durable. UNAVAILABLE when
  // storage keeps failing for `timeout_ms` or the flusher is stopping.
  absl::Status WaitDurable(uint64_t seq, int64_t timeout_ms) ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t durable_seq() const { return durable_.load(); }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  storage::FlushStore* const store_;
  const base::Clock* const clock_;
  const int64_t interval_ms_;
  IngestTotals* const totals_;
  const Collect collect_;
  const OnCommit on_commit_;

  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> durable_{0};

  absl::Mutex flush_mu_;  // one flush at a time
  std::unique_ptr<storage::FlushBatch> retry_ ABSL_GUARDED_BY(flush_mu_);
  uint64_t collects_ ABSL_GUARDED_BY(flush_mu_) = 0;
  uint64_t committed_collects_ ABSL_GUARDED_BY(flush_mu_) = 0;

  // Waiters wait on mu_ for conditions over these atomics; whoever
  // changes one takes mu_ around the change, so that they re-check.
  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(flush_mu_);
  std::atomic<bool> flush_requested_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  std::thread thread_;  // started once by Start, joined by Stop
};

}  // namespace driftwatch::service::ingest
