// What the label joiner persists (docs/formats/sqlite_schema.md, tables
// join_state, label_log, pending_labels, quality, label_counts,
// label_source_counts, label_progress): the join state of kept predictions
// (written by the ingest flush, FlushBatch::join_chunks, and tailed by the
// joiner in seq order), the log of joined labels (so a restart knows which
// predictions are labelled, and with what), labels waiting for their
// prediction, the quality profiles per slice and event-time hour, and the
// label counts per arrival minute, model-level and per label source. One
// LabelCommit is one transaction: the LabelAck depends on it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::storage {

// Join records of one model's kept predictions of one event-time hour,
// from one flush: repeated [u64 event-id hash][varint length][JoinRecord bytes]
// (docs/formats/join_state.md).
struct JoinChunk {
  int64_t seq = 0;  // assigned by the store, ascending; 0 in a FlushBatch
  int64_t model_key = 0;
  int64_t hour_start_ms = 0;
  std::string records;
};

// Joined labels of one model from one commit: repeated [u64 hash][f64 value].
struct LabelLogRow {
  int64_t seq = 0;
  int64_t model_key = 0;
  int64_t commit_ms = 0;
  std::string entries;
};

struct PendingLabelRow {
  int64_t model_key = 0;
  uint64_t hash = 0;
  double value = 0;
  int64_t label_time_ms = 0;
  int64_t received_ms = 0;
  std::string source;  // Label.source, as the joiner bounds it ("" before schema v8)
};

// Merged into the stored row (detectors::QualityProfile::Merge) or inserted.
struct QualityRow {
  int64_t model_key = 0;
  int32_t slice_id = 0;
  int64_t hour_start_ms = 0;
  std::string profile;  // detectors::QualityProfile::Serialize
};

// Labels by result, per model and arrival minute (server clock). Added to
// the stored counts.
struct LabelCounts {
  int64_t model_key = 0;
  int64_t minute_start_ms = 0;
  uint64_t joined = 0, pending = 0, duplicates = 0, conflicting = 0, not_sampled = 0,
           orphan = 0, expired = 0, rejected = 0;
  void Add(const LabelCounts& o) {
    joined += o.joined;
    pending += o.pending;
    duplicates += o.duplicates;
    conflicting += o.conflicting;
    not_sampled += o.not_sampled;
    orphan += o.orphan;
    expired += o.expired;
    rejected += o.rejected;
  }
};

// Of the labels of one model and arrival minute, those from one label
// source (Label.source; "" for none): joined (at arrival or after waiting),
// orphan (at once or when their wait ran out) and went pending. Added to
// the stored counts. The store keeps any source string; the joiner bounds
// their length and number per model (docs/labels.md).
struct SourceLabelCounts {
  int64_t model_key = 0;
  int64_t minute_start_ms = 0;
  std::string source;
  uint64_t joined = 0, orphan = 0, pending = 0;
};

struct LabelCommit {
  std::vector<LabelLogRow> log;  // seq ignored
  std::vector<QualityRow> quality_merges;
  std::vector<PendingLabelRow> pending_upserts;
  struct Key {
    int64_t model_key = 0;
    uint64_t hash = 0;
  };
  std::vector<Key> pending_deletes;  // applied before pending_upserts
  std::vector<LabelCounts> counts;
  std::vector<SourceLabelCounts> source_counts;
  struct Progress {
    int64_t model_key = 0;
    int64_t join_seq = 0;  // every join chunk up to it is applied
  };
  std::vector<Progress> progress;
  struct Expire {
    int64_t model_key = 0;
    int64_t join_before_hour_ms = 0;  // join_state rows of earlier hours go
    int64_t log_before_ms = 0;        // label_log rows committed earlier go
  };
  std::vector<Expire> expire;

  bool empty() const {
    return log.empty() && quality_merges.empty() && pending_upserts.empty() &&
           pending_deletes.empty() && counts.empty() && source_counts.empty() && progress.empty() &&
           expire.empty();
  }
};

// Thread-safe.
class LabelStore {
 public:
  virtual ~LabelStore() = default;

  // Atomically; returns once durable. DATA_LOSS or INVALID_ARGUMENT
  // (naming the row) when a quality row does not merge with the stored one.
  virtual absl::Status CommitLabels(const LabelCommit& commit) = 0;
  // Join chunks of a model with seq > after_seq, ascending, at most `limit`.
  virtual absl::StatusOr<std::vector<JoinChunk>> ReadJoinChunks(int64_t model_key,
                                                                int64_t after_seq,
                                                                int limit) = 0;
  // The same, only chunks whose event-time hour_start is in [from_ms,
  // to_ms): what a window's per-event comparison (Reports.CompareVersions)
  // reads. The default filters ReadJoinChunks; SqliteStore uses its
  // (model_key, hour_start_ms) index.
  virtual absl::StatusOr<std::vector<JoinChunk>> ReadJoinChunksInHours(int64_t model_key,
                                                                       int64_t from_ms,
                                                                       int64_t to_ms,
                                                                       int64_t after_seq,
                                                                       int limit) {
    std::vector<JoinChunk> out;
    while (static_cast<int>(out.size()) < limit) {
      absl::StatusOr<std::vector<JoinChunk>> page = ReadJoinChunks(model_key, after_seq, limit);
      if (!page.ok()) return page.status();
      if (page->empty()) break;
      for (JoinChunk& c : *page) {
        after_seq = c.seq;
        if (c.hour_start_ms >= from_ms && c.hour_start_ms < to_ms &&
            static_cast<int>(out.size()) < limit) {
          out.push_back(std::move(c));
        }
      }
    }
    return out;
  }
  virtual absl::StatusOr<std::vector<LabelLogRow>> ReadLabelLog(int64_t model_key) = 0;
  virtual absl::StatusOr<std::vector<PendingLabelRow>> ReadPendingLabels(int64_t model_key) = 0;
  // Quality rows of one slice with hour_start in [from_ms, to_ms), ascending.
  virtual absl::StatusOr<std::vector<QualityRow>> ReadQuality(int64_t model_key, int32_t slice_id,
                                                              int64_t from_ms, int64_t to_ms) = 0;
  // Summed over arrival minutes in [from_ms, to_ms).
  virtual absl::StatusOr<LabelCounts> ReadLabelCounts(int64_t model_key, int64_t from_ms,
                                                      int64_t to_ms) = 0;
  // The same per label source: one row per source with counts in the
  // range (minute_start_ms = from_ms), ascending by source (bytewise).
  virtual absl::StatusOr<std::vector<SourceLabelCounts>> ReadSourceLabelCounts(int64_t model_key,
                                                                               int64_t from_ms,
                                                                               int64_t to_ms) = 0;
  // 0 when the joiner has applied nothing yet.
  virtual absl::StatusOr<int64_t> ReadLabelProgress(int64_t model_key) = 0;
};

}  // namespace driftwatch::storage
