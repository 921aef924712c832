#include "internal/migrations.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace driftwatch::storage::internal {
namespace {

// Append-only. Rowid tables throughout: profiles are multi-KB blobs and a
// WITHOUT ROWID table stores them inside the key b-tree, which measured 3x
// slower for flushes (docs/formats/sqlite_schema.md).
constexpr std::array<const char*, 9> kMigrations = {
    // v1: the initial schema.
    R"sql(
CREATE TABLE models (
  model_key INTEGER PRIMARY KEY AUTOINCREMENT,
  model_id TEXT NOT NULL,
  model_version TEXT NOT NULL,
  schema BLOB NOT NULL,
  registered_at_ms INTEGER NOT NULL,
  watermark_ms INTEGER NOT NULL DEFAULT 0,
  closed_until_ms INTEGER NOT NULL DEFAULT 0,
  UNIQUE (model_id, model_version)
) STRICT;
CREATE TABLE slices (
  model_key INTEGER NOT NULL,
  slice_id INTEGER NOT NULL,
  key_index INTEGER NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (model_key, slice_id)
) STRICT;
CREATE TABLE buckets (
  model_key INTEGER NOT NULL,
  level INTEGER NOT NULL,
  bucket_start_ms INTEGER NOT NULL,
  slice_id INTEGER NOT NULL,
  profile BLOB NOT NULL,
  PRIMARY KEY (model_key, level, bucket_start_ms, slice_id)
) STRICT;
CREATE TABLE dedup (
  chunk_id INTEGER PRIMARY KEY,
  model_key INTEGER NOT NULL,
  bucket_start_ms INTEGER NOT NULL,
  hashes BLOB NOT NULL
) STRICT;
CREATE INDEX dedup_by_bucket ON dedup (model_key, bucket_start_ms);
CREATE TABLE raw_events (
  model_key INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  event_time_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (model_key, event_id)
) STRICT;
CREATE INDEX raw_events_by_time ON raw_events (model_key, event_time_ms);
CREATE TABLE baselines (
  model_key INTEGER NOT NULL,
  name TEXT NOT NULL,
  spec BLOB NOT NULL,
  profile BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (model_key, name)
) STRICT;
)sql",
    // v2: one slice's rows over a time range (a drift report) are an index
    // range; through the primary key they were a scan of every slice's rows
    // in the range, ~1000x the rows wanted with 1000 slices.
    R"sql(
CREATE INDEX buckets_by_slice ON buckets (model_key, level, slice_id, bucket_start_ms);
)sql",
    // v3: what each model's traffic lost, per minute of arrival (reports'
    // window counts); the summary edges each version was registered with
    // (or learned), and the events held while a version learns them.
    R"sql(
ALTER TABLE models ADD COLUMN resolved_edges BLOB;
CREATE TABLE pending_events (
  model_key INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (model_key, seq)
) STRICT;
CREATE TABLE arrival_counts (
  model_key INTEGER NOT NULL,
  minute_start_ms INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  too_late INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  PRIMARY KEY (model_key, minute_start_ms)
) STRICT;
)sql",
    // 4: the label join (issue 9).
    R"sql(
CREATE TABLE join_state (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  model_key INTEGER NOT NULL,
  hour_start_ms INTEGER NOT NULL,
  records BLOB NOT NULL
) STRICT;
CREATE INDEX join_state_by_model ON join_state (model_key, seq);
CREATE INDEX join_state_by_hour ON join_state (model_key, hour_start_ms);
CREATE TABLE label_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  model_key INTEGER NOT NULL,
  commit_ms INTEGER NOT NULL,
  entries BLOB NOT NULL
) STRICT;
CREATE INDEX label_log_by_model ON label_log (model_key, commit_ms);
CREATE TABLE pending_labels (
  model_key INTEGER NOT NULL,
  hash INTEGER NOT NULL,
  value REAL NOT NULL,
  label_time_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (model_key, hash)
) STRICT, WITHOUT ROWID;
CREATE TABLE quality (
  model_key INTEGER NOT NULL,
  slice_id INTEGER NOT NULL,
  hour_start_ms INTEGER NOT NULL,
  profile BLOB NOT NULL,
  PRIMARY KEY (model_key, slice_id, hour_start_ms)
) STRICT;
CREATE TABLE label_counts (
  model_key INTEGER NOT NULL,
  minute_start_ms INTEGER NOT NULL,
  joined INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  conflicting INTEGER NOT NULL,
  not_sampled INTEGER NOT NULL,
  orphan INTEGER NOT NULL,
  expired INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  PRIMARY KEY (model_key, minute_start_ms)
) STRICT;
CREATE TABLE label_progress (
  model_key INTEGER PRIMARY KEY,
  join_seq INTEGER NOT NULL
) STRICT;
)sql",
    // v5: the rules engine's alert state.
    R"sql(
CREATE TABLE alerts (
  fingerprint TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  alert BLOB NOT NULL
) STRICT;
)sql",
    // v6: rules from the API, silences, and the signal history.
    R"sql(
CREATE TABLE rules (
  name TEXT PRIMARY KEY,
  yaml TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE silences (
  id TEXT PRIMARY KEY,
  matchers TEXT NOT NULL,
  starts_at_ms INTEGER NOT NULL,
  ends_at_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  comment TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE signal_series (
  series_id INTEGER PRIMARY KEY,
  model TEXT NOT NULL,
  signal TEXT NOT NULL,
  feature TEXT NOT NULL,
  slice TEXT NOT NULL,
  UNIQUE (model, signal, feature, slice)
) STRICT;
CREATE TABLE signal_points (
  series_id INTEGER NOT NULL,
  t_ms INTEGER NOT NULL,
  resolution INTEGER NOT NULL,
  value REAL,
  baseline REAL,
  PRIMARY KEY (series_id, t_ms)
) STRICT, WITHOUT ROWID;
CREATE INDEX signal_points_by_resolution ON signal_points (resolution, t_ms);
)sql",
    // v7: the notification outbox and the dispatcher's grouping state.
    R"sql(
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  receiver TEXT NOT NULL,
  url TEXT NOT NULL,
  body BLOB NOT NULL,
  group_key TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  state INTEGER NOT NULL,
  last_status INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  delivered_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
CREATE TABLE notify_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  state BLOB NOT NULL
) STRICT;
)sql",
    // v8: label counts per label source, and the source of each waiting
    // label (so that it counts under it when it joins or becomes orphan).
    R"sql(
CREATE TABLE label_source_counts (
  model_key INTEGER NOT NULL,
  minute_start_ms INTEGER NOT NULL,
  source TEXT NOT NULL,
  joined INTEGER NOT NULL,
  orphan INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  PRIMARY KEY (model_key, minute_start_ms, source)
) STRICT;
ALTER TABLE pending_labels ADD COLUMN source TEXT NOT NULL DEFAULT '';
)sql",
    // v9: each bucket row's event count beside its profile (NULL in rows
    // written before: read from the blob's header), and a partial index of
    // the hour rows' counts that covers a volume history's read, so weeks
    // of hour rows are read without touching their blobs (the column comes
    // after the blob in the row, on its overflow pages).
    R"sql(
ALTER TABLE buckets ADD COLUMN events INTEGER;
CREATE INDEX buckets_hour_events ON buckets (model_key, level, bucket_start_ms, slice_id, events)
  WHERE level = 1;
)sql",
};

constexpr char kCurrentVersionSql[] = "SELECT coalesce(max(version), 0) FROM schema_migrations";

absl::StatusOr<int64_t> CurrentVersion(Connection* conn) {
  absl::StatusOr<ScopedStatement> stmt = conn->Prepare(kCurrentVersionSql, "read schema version");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = (*stmt)->Step("read schema version");
  if (!row.ok()) return row.status();
  return *row ? (*stmt)->ColumnInt64(0) : 0;
}

absl::Status CheckNotNewer(int64_t on_disk) {
  if (on_disk <= LatestSchemaVersion()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("database schema version ", on_disk, " is newer than this build supports (",
                   LatestSchemaVersion(), "); upgrade driftwatch or use another data directory"));
}

}  // namespace

int64_t LatestSchemaVersion() { return static_cast<int64_t>(kMigrations.size()); }

absl::Status ApplyMigrations(Connection* conn, int64_t now_ms) {
  if (absl::Status s = conn->Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                                  "version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
                                  "create schema_migrations");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> version = CurrentVersion(conn);
  if (!version.ok()) return version.status();
  if (absl::Status s = CheckNotNewer(*version); !s.ok()) return s;

  for (int64_t target = *version + 1; target <= LatestSchemaVersion(); ++target) {
    std::string op = absl::StrCat("apply schema migration ", target);
    absl::StatusOr<Transaction> txn = Transaction::BeginImmediate(conn, op);
    if (!txn.ok()) return txn.status();
    // Another process may have migrated while we waited for the lock.
    absl::StatusOr<int64_t> now_version = CurrentVersion(conn);
    if (!now_version.ok()) return now_version.status();
    if (absl::Status s = CheckNotNewer(*now_version); !s.ok()) return s;
    if (*now_version >= target) continue;
    if (absl::Status s = conn->Exec(kMigrations[target - 1], op); !s.ok()) return s;
    {
      absl::StatusOr<ScopedStatement> record =
          conn->Prepare("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)", op);
      if (!record.ok()) return record.status();
      (*record)->BindInt64(1, target);
      (*record)->BindInt64(2, now_ms);
      if (absl::Status s = (*record)->Run(op); !s.ok()) return s;
    }
    if (absl::Status s = txn->Commit(op); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace driftwatch::storage::internal
