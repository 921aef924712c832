// Everything driftwatch persists, behind one interface. The embedded default
// is SQLite in WAL mode (OpenSqliteStore); the interface keeps a second
// backend possible. Implementations are thread-safe: one writer at a time
// (Commit and the Put*/Delete* calls serialise), readers run concurrently
// and see whole committed batches only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "driftwatch/base/clock.h"

namespace driftwatch::storage {

// Bucket levels: closed minute buckets roll up into hours and days.
enum class Level : int { kMinute = 0, kHour = 1, kDay = 2 };

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int64_t kDayMs = 86'400'000;

// The start of the bucket of `width_ms` holding `t_ms`: floor to a multiple
// of the width, also for times before 1970. Every level's rows are keyed by it.
inline constexpr int64_t BucketStart(int64_t t_ms, int64_t width_ms) {
  int64_t q = t_ms / width_ms;
  if (t_ms % width_ms != 0 && t_ms < 0) --q;
  return q * width_ms;
}

struct ModelRecord {
  int64_t model_key = 0;  // assigned by the store, > 0
  std::string model_id;
  std::string model_version;
  std::string schema;  // serialized driftwatch.v1.ModelSchema
  int64_t registered_at_ms = 0;
  int64_t watermark_ms = 0;     // max accepted event time
  int64_t closed_until_ms = 0;  // minute buckets starting before this are closed and rolled up
};

struct SliceRecord {
  int64_t model_key = 0;
  int32_t slice_id = 0;    // 0 is the whole population "*"
  int32_t key_index = -1;  // index into the schema's slice keys; -1 for "*"
  std::string value;
};

// One slice's profile (serialized detectors::Profile) in one bucket.
struct BucketRow {
  int64_t model_key = 0;
  Level level = Level::kMinute;
  int64_t bucket_start_ms = 0;
  int32_t slice_id = 0;
  std::string profile;
};

// Hashes of event ids accepted into one open minute bucket since the last
// flush (little-endian uint64 each).
struct DedupChunk {
  int64_t model_key = 0;
  int64_t bucket_start_ms = 0;
  std::string hashes;
};

// A raw event kept by the deterministic sample (hash of event_id).
struct RawEventRow {
  int64_t model_key = 0;
  std::string event_id;
  int64_t event_time_ms = 0;
  int64_t received_at_ms = 0;
  std::string event;  // serialized driftwatch.v1.PredictionEvent
};

struct BaselineRecord {
  int64_t model_key = 0;
  std::string name;
  std::string spec;     // serialized driftwatch.v1.BaselineSpec
  std::string profile;  // serialized detectors::Profile for uploaded profiles; else empty
  int64_t created_at_ms = 0;
};

// Everything one flush writes; Commit applies it in one transaction.
struct FlushBatch {
  std::vector<SliceRecord> new_slices;
  std::vector<BucketRow> minute_upserts;  // insert or replace
  // Hour / day rows to merge into: the stored profile (if any) is merged
  // with this one through the RollupMerger, else this one is inserted.
  std::vector<BucketRow> rollups;
  std::vector<DedupChunk> dedup;
  struct ClosedBucket {
    int64_t model_key = 0;
    int64_t bucket_start_ms = 0;
  };
  std::vector<ClosedBucket> drop_dedup;  // closed buckets whose dedup hashes go
  std::vector<RawEventRow> raw_events;   // insert or ignore (by model_key, event_id)
  struct Progress {
    int64_t model_key = 0;
    int64_t watermark_ms = 0;
    int64_t closed_until_ms = 0;
  };
  std::vector<Progress> progress;
};

// Merges two serialized profiles of one model (the store does not know the
// profile layout). Returns the merged bytes or an error that aborts Commit.
using RollupMerger = std::function<absl::StatusOr<std::string>(
    int64_t model_key, std::string_view stored, std::string_view added)>;

// Maximum ages, in ms before `now_ms`; a value <= 0 keeps that kind forever.
// Dedup hashes follow minute_ms (they are useless once their minute is gone).
struct RetentionPolicy {
  int64_t minute_ms = 2 * kDayMs;
  int64_t hour_ms = 35 * kDayMs;
  int64_t day_ms = 400 * kDayMs;
  int64_t raw_events_ms = 7 * kDayMs;
};

class Store {
 public:
  virtual ~Store() = default;

  // Registers a model version. Same id and version with the same schema:
  // returns the stored record. A different schema: ALREADY_EXISTS.
  // `model_id` must be non-empty (INVALID_ARGUMENT). A new record stores the
  // caller's registered_at_ms / watermark_ms / closed_until_ms as given.
  virtual absl::StatusOr<ModelRecord> PutModel(const ModelRecord& model) = 0;
  // Ordered by model_key.
  virtual absl::StatusOr<std::vector<ModelRecord>> ListModels() = 0;
  // Ordered by slice_id; empty for an unknown model.
  virtual absl::StatusOr<std::vector<SliceRecord>> ListSlices(int64_t model_key) = 0;

  // Applies `batch` atomically; returns only once it is durable (the ingest
  // ack depends on this). On error nothing of the batch is applied.
  // Errors: INVALID_ARGUMENT when a minute_upserts row is not Level::kMinute
  // or a rollups row is not kHour/kDay; the merger's own code (message
  // prefixed with the bucket) when it fails; FAILED_PRECONDITION when a
  // new_slices entry redefines a stored slice (an identical one is ignored);
  // NOT_FOUND when `progress` names an unknown model. drop_dedup is applied
  // before `dedup`. Progress fields only move forward (max with stored).
  virtual absl::Status Commit(const FlushBatch& batch) = 0;

  // Rows of one level with bucket_start in [start_ms, end_ms), for the
  // given slices (every slice when `slices` is empty), ordered by
  // (bucket_start, slice_id).
  virtual absl::StatusOr<std::vector<BucketRow>> ReadBuckets(
      int64_t model_key, Level level, int64_t start_ms, int64_t end_ms,
      const std::vector<int32_t>& slices) = 0;
  // Dedup hashes of buckets starting at or after `from_bucket_ms`, one entry
  // per stored chunk, ordered by bucket_start then insertion order.
  virtual absl::StatusOr<std::vector<DedupChunk>> ReadDedup(int64_t model_key,
                                                            int64_t from_bucket_ms) = 0;
  // Raw events with event_time in [start_ms, end_ms), at most `limit`
  // (> 0, else INVALID_ARGUMENT), ordered by (event_time, event_id).
  virtual absl::StatusOr<std::vector<RawEventRow>> ReadRawEvents(int64_t model_key,
                                                                 int64_t start_ms, int64_t end_ms,
                                                                 int limit) = 0;

  // Baselines: Put replaces a baseline of the same name (non-empty, else
  // INVALID_ARGUMENT). List is ordered by name.
  virtual absl::Status PutBaseline(const BaselineRecord& baseline) = 0;
  virtual absl::StatusOr<std::vector<BaselineRecord>> ListBaselines(int64_t model_key) = 0;

  // Deletes rows older than the policy allows, relative to `now_ms`.
  // Returns the number of rows deleted.
  virtual absl::StatusOr<int64_t> ApplyRetention(const RetentionPolicy& policy, int64_t now_ms) = 0;
  // Deletes raw events with these ids (user deletion requests), in one
  // transaction. Returns how many existed; unknown ids are not an error.
  virtual absl::StatusOr<int64_t> DeleteRawEvents(int64_t model_key,
                                                  const std::vector<std::string>& event_ids) = 0;
};

struct SqliteOptions {
  std::string path;              // the database file; created with its directory
  bool synchronous_full = true;  // FULL: a commit survives power loss; NORMAL: process crash only
  int busy_timeout_ms = 5000;
  // Stamps schema migrations; nullptr: the system clock. Must outlive the call.
  const base::Clock* clock = nullptr;
};

// Opens (creating if needed) the database and applies pending migrations.
// `merger` is used by Commit for rollups (may be empty if the caller never
// sends rollups; a rollup onto a stored row then fails FAILED_PRECONDITION).
// Fails with the SQLite message.
// Every error message is "<operation>: <sqlite message>"; codes: DATA_LOSS
// for a corrupt or non-database file, UNAVAILABLE for a lock held past
// busy_timeout_ms or an I/O error, RESOURCE_EXHAUSTED for a full disk,
// FAILED_PRECONDITION for a file written by a newer schema version (the
// message names both versions). Layout: docs/formats/sqlite_schema.md.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options,
                                                       RollupMerger merger);

}  // namespace driftwatch::storage
