// The label joiner: joins delayed labels (Ingest.StreamLabels) to the
// predictions they judge, by event id, and keeps the quality profiles of
// the bucket and slices each *prediction* fell in (docs/labels.md).
//
// The join state of kept predictions is written by the ingest flush
// (storage::JoinChunk, in the same transaction as the events) and tailed
// here in seq order (by the committer, and by each label batch before it
// is applied, so a label sent after its prediction's ack finds it); a
// label is applied in memory at once and committed
// with everything else the joiner learnt since the last commit, in one
// LabelStore transaction; the stream's LabelAck waits for that commit.
// After a restart the state comes back from storage: the join chunks, the
// log of joined labels, the pending labels and how far the tail had got.
//
// Thread-safe: one mutex guards the state of every model (an Apply holds it
// for one batch); the committer thread takes what is new under it and
// commits outside it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/ingest_options.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reject_reason.h"
#include "driftwatch/storage/label_store.h"
#include "driftwatch/v1/ingest.pb.h"

namespace driftwatch::service {

struct LabelOptions {
  // Join state is kept this long after its prediction's event time (the
  // server clock decides), then dropped (counted `expired` if unlabelled).
  int64_t window_ms = 7 * 24 * 3'600'000LL;
  // Labels held for a prediction not seen yet: at most this many per
  // model (past it a label with no prediction is `orphan` at once), each
  // at most pending_ttl_ms (then `orphan`).
  uint64_t max_pending = 1'000'000;
  int64_t pending_ttl_ms = 3'600'000;
  // A quality report is `mature` at this coverage.
  double maturity_coverage = 0.9;
  // A label time may precede its prediction's event time by at most this
  // (clock skew between systems); earlier: rejected `label_before_prediction`.
  int64_t max_clock_skew_ms = 300'000;
  // A label time further ahead of the server clock: rejected
  // `label_time_in_future`.
  int64_t max_future_skew_ms = 300'000;
  // Join records held in memory per model (~80 bytes each); past it the
  // oldest hours leave early, counted `expired`.
  uint64_t max_join_records = 10'000'000;
  // How often new join state is tailed and labels committed.
  int64_t flush_interval_ms = 200;
  // Rankers: NDCG@k of each query (GetQualityReport's k must be this).
  int ndcg_k = 10;
  uint32_t max_event_id_bytes = 256;
};

// What happened to the labels of one stream. Not thread-safe.
struct LabelStreamCounts {
  uint64_t batches = 0, joined = 0, pending = 0, duplicates = 0, conflicting = 0,
           not_sampled = 0, orphan = 0, rejected = 0;
  absl::flat_hash_map<std::string, RejectStat> reasons;  // by reason name
  std::array<uint64_t, kLabelRejectReasonNames.size()> by_reason{};
  void Reject(LabelRejectReason reason, std::string_view event_id, std::string message);
};

// The joiner's own totals since start, for /metrics (the label counts by
// result and reason are per model: RegisteredModel::label_counters).
// Thread-safe.
struct LabelTotals {
  std::atomic<uint64_t> commits{0}, commit_failures{0};
  std::atomic<uint64_t> join_records{0};    // held in memory now, over models
  std::atomic<uint64_t> pending_labels{0};  // waiting now, over models
};

class LabelJoiner {
 public:
  LabelJoiner(storage::LabelStore* store, ModelRegistry* registry, const base::Clock* clock,
              LabelOptions options);
  ~LabelJoiner();
  LabelJoiner(const LabelJoiner&) = delete;
  LabelJoiner& operator=(const LabelJoiner&) = delete;

  // Loads every registered model's join state from storage. Call once,
  // before Start and any Apply.
  absl::Status Recover();
  // The committer thread: every flush_interval_ms tails new join state,
  // expires what is past the window and commits.
  void Start();
  // Commits what is applied and stops the thread.
  void Stop();

  // Applies one batch in memory; returns the sequence number to wait for
  // (WaitDurable) before acking. NOT_FOUND for an unknown model;
  // FAILED_PRECONDITION for a model registered without a label kind.
  // Invalid labels are counted by reason and the rest applied.
  absl::StatusOr<uint64_t> Apply(const v1::LabelBatch& batch, LabelStreamCounts* counts);
  // Blocks until everything applied up to `seq` is committed, or
  // UNAVAILABLE after `timeout_ms` (with the last commit error).
  absl::Status WaitDurable(uint64_t seq, int64_t timeout_ms = 60'000);
  // Tails, expires and commits now, on the calling thread (tests; Stop).
  absl::Status FlushNow();

  const LabelOptions& options() const { return options_; }
  LabelTotals& totals() { return totals_; }
  const LabelTotals& totals() const { return totals_; }

  struct ModelState;  // per model, in joiner.cc

 private:
  // Finds or creates (loading from storage) the state of `model`.
  absl::StatusOr<ModelState*> StateOf(const std::shared_ptr<const RegisteredModel>& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Load(ModelState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads new join chunks of every model (outside mu_), then applies them.
  absl::Status Tail();
  // The same for one model, from chunk `seq` on, at most `max_rounds`
  // reads of 64 chunks. Safe to overlap with another tail.
  absl::Status TailModel(ModelState& state, int64_t seq, int max_rounds)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Expire(ModelState& state, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();

  storage::LabelStore* const store_;
  ModelRegistry* const registry_;
  const base::Clock* const clock_;
  const LabelOptions options_;
  LabelTotals totals_;

  absl::Mutex commit_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one tail + commit at a time
  absl::Mutex mu_;
  absl::flat_hash_map<int64_t, std::unique_ptr<ModelState>> states_ ABSL_GUARDED_BY(mu_);
  uint64_t applied_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  // A commit that failed: retried, before anything newer, by the next one.
  std::vector<storage::LabelCommit> unsent_ ABSL_GUARDED_BY(commit_mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace driftwatch::service
