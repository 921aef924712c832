#include "ingest/flusher.h"

#include <chrono>
#include <utility>

#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/thread_name.h"

namespace driftwatch::service::ingest {

Flusher::Flusher(storage::FlushStore* store, const base::Clock* clock, int64_t interval_ms,
                 IngestTotals* totals, Collect collect, OnCommit on_commit)
    : store_(store),
      clock_(clock),
      interval_ms_(interval_ms),
      totals_(totals),
      collect_(std::move(collect)),
      on_commit_(std::move(on_commit)) {}

Flusher::~Flusher() { Stop(); }

void Flusher::Start() {
  started_.store(true);
  thread_ = std::thread([this] {
    base::SetCurrentThreadName("dw-flush");
    Loop();
  });
}

void Flusher::Stop() {
  {
    absl::MutexLock lock(&mu_);  // waiters re-check their condition on release
    stopping_.store(true);
  }
  if (thread_.joinable()) thread_.join();
}

void Flusher::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_.load()) {
    auto wake = [this] { return stopping_.load() || flush_requested_.load(); };
    clock_->AwaitUntil(&mu_, absl::Condition(&wake), clock_->NowMs() + interval_ms_);
    if (stopping_.load()) break;
    flush_requested_.store(false);
    mu_.Unlock();
    (void)Flush();
    mu_.Lock();
  }
}

absl::Status Flusher::Flush() {
  absl::MutexLock flush_lock(&flush_mu_);
  const uint64_t seq = applied_.load();
  auto batch = retry_ != nullptr ? std::move(retry_) : std::make_unique<storage::FlushBatch>();
  const uint64_t collect = ++collects_;
  collect_(batch.get(), CollectSeq{collect, committed_collects_});
  const auto started = std::chrono::steady_clock::now();
  absl::Status status = batch->empty() ? absl::OkStatus() : store_->Commit(*batch);
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  ++totals_->flushes;
  totals_->last_flush_us = elapsed.count();
  if (!status.ok()) {
    ++totals_->flush_failures;
    retry_ = std::move(batch);  // committed with the next flush (all-or-nothing)
    return status;
  }
  committed_collects_ = collect;
  if (on_commit_) on_commit_(collect);
  totals_->flushed_rows +=
      batch->minute_upserts.size() + batch->minute_merges.size() + batch->rollups.size();
  absl::MutexLock lock(&mu_);  // waiters re-check durable_ on release
  if (seq > durable_.load()) durable_.store(seq);
  return absl::OkStatus();
}

absl::Status Flusher::WaitDurable(uint64_t seq, int64_t timeout_ms) {
  if (durable_.load() >= seq) return absl::OkStatus();
  if (!started_.load()) {
    DW_RETURN_IF_ERROR(Flush());
    return durable_.load() >= seq ? absl::OkStatus()
                                  : absl::UnavailableError("flush did not cover the batch");
  }
  absl::MutexLock lock(&mu_);
  flush_requested_.store(true);
  auto done = [this, seq] { return stopping_.load() || durable_.load() >= seq; };
  const bool woke = clock_->AwaitUntil(&mu_, absl::Condition(&done), clock_->NowMs() + timeout_ms);
  if (durable_.load() >= seq) return absl::OkStatus();
  if (!woke) return absl::UnavailableError("storage did not commit the batch in time; retry");
  return absl::UnavailableError("server is shutting down; retry");
}

}  // namespace driftwatch::service::ingest
