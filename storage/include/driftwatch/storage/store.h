// Everything driftwatch persists. Callers take the narrow interface they
// need (models, flush commits, buckets, dedup, baselines, the raw sample);
// a backend implements them all as one Store. The embedded default is
// SQLite in WAL mode (OpenSqliteStore); the interfaces keep a second
// backend possible. Implementations are thread-safe: one writer at a time
// (Commit and the Put*/Delete* calls serialise), readers run concurrently
// and see whole committed batches only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/storage/alert_store.h"
#include "driftwatch/storage/baseline_store.h"
#include "driftwatch/storage/bucket_store.h"
#include "driftwatch/storage/dedup_store.h"
#include "driftwatch/storage/flush_store.h"
#include "driftwatch/storage/label_store.h"
#include "driftwatch/storage/model_store.h"
#include "driftwatch/storage/raw_sample_store.h"

namespace driftwatch::storage {

// Maximum ages, in ms before `now_ms`; a value <= 0 keeps that kind forever.
// Dedup hashes follow minute_ms (they are useless once their minute is gone).
struct RetentionPolicy {
  int64_t minute_ms = 2 * kDayMs;
  int64_t hour_ms = 35 * kDayMs;
  int64_t day_ms = 400 * kDayMs;
  int64_t raw_events_ms = 7 * kDayMs;
  // Quality rows (by event-time hour) and label counts (by arrival minute).
  int64_t quality_ms = 35 * kDayMs;
};

class Store : public ModelStore,
              public FlushStore,
              public BucketStore,
              public DedupStore,
              public BaselineStore,
              public RawSampleStore,
              public LabelStore,
              public AlertStore {
 public:
  ~Store() override = default;

  // Deletes rows older than the policy allows, relative to `now_ms`.
  // Returns the number of rows deleted.
  virtual absl::StatusOr<int64_t> ApplyRetention(const RetentionPolicy& policy, int64_t now_ms) = 0;
};

struct SqliteOptions {
  std::string path;              // the database file; created with its directory
  bool synchronous_full = true;  // FULL: a commit survives power loss; NORMAL: process crash only
  int busy_timeout_ms = 5000;
  // Stamps schema migrations; nullptr: the system clock. Must outlive the call.
  const base::Clock* clock = nullptr;
};

// Opens (creating if needed) the database and applies pending migrations.
// Every error message is "<operation>: <sqlite message>"; codes: DATA_LOSS
// for a corrupt or non-database file, UNAVAILABLE for a lock held past
// busy_timeout_ms or an I/O error, RESOURCE_EXHAUSTED for a full disk,
// FAILED_PRECONDITION for a file written by a newer schema version (the
// message names both versions). Layout: docs/formats/sqlite_schema.md.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options);

}  // namespace driftwatch::storage
