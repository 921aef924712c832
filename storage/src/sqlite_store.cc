// The SQLite backend of Store. Layout and invariants of the file:
// docs/formats/sqlite_schema.md.
//
// Concurrency: one writer connection behind write_mu_ (SQLite allows one
// writer anyway; the mutex makes our own writers queue instead of spinning on
// SQLITE_BUSY) and a pool of read connections leased one per call. In WAL
// mode a reader sees the last committed snapshot and never waits for a
// commit in progress. Every read is a single SELECT, hence one snapshot.
#include <chrono>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "driftwatch/base/thread_name.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/detectors/quality_delta.h"
#include "driftwatch/detectors/quality_profile.h"
#include "driftwatch/storage/store.h"
#include "internal/migrations.h"
#include "internal/sqlite.h"

namespace driftwatch::storage {
namespace {

using internal::Connection;
using internal::ScopedStatement;
using internal::Transaction;

// Idle read connections kept open; more are opened under load and closed
// when returned beyond this count.
constexpr size_t kMaxIdleReaders = 4;
constexpr int64_t kCheckpointIntervalMs = 500;
// Writer page cache: a flush of ~1000 x 12 KB profiles fits without spilling
// dirty pages to the WAL before COMMIT.
constexpr char kWriterCacheSql[] = "PRAGMA cache_size = -32768";  // KiB

constexpr char kInsertMinuteSql[] =
    "INSERT INTO buckets (model_key, level, bucket_start_ms, slice_id, profile, events) "
    "VALUES (?, 0, ?, ?, ?, ?) "
    "ON CONFLICT (model_key, level, bucket_start_ms, slice_id) "
    "DO UPDATE SET profile = excluded.profile, events = excluded.events";
// Every `level = ?` is written `level = CAST(? AS INTEGER)`: against a bare
// parameter the planner weighs the partial index buckets_hour_events
// (WHERE level = 1) by the bound value, and then re-prepares the statement
// whenever the level bound changes (hour and day rows alternate in a
// roll-up: a parse per row). The cast keeps the primary key's use and
// never matches the partial index.
constexpr char kSelectBucketSql[] =
    "SELECT rowid, profile FROM buckets "
    "WHERE model_key = ? AND level = CAST(? AS INTEGER) AND bucket_start_ms = ? "
    "AND slice_id = ?";
constexpr char kInsertBucketSql[] =
    "INSERT INTO buckets (model_key, level, bucket_start_ms, slice_id, profile, events) "
    "VALUES (?, ?, ?, ?, ?, ?)";
constexpr char kUpdateBucketSql[] = "UPDATE buckets SET profile = ?, events = ? WHERE rowid = ?";

// The events column of a profile blob: NULL when the header does not read
// (the reader then falls back to the blob, and reports what is wrong).
void BindEvents(internal::Statement& s, int index, std::string_view profile) {
  if (std::optional<uint64_t> e = detectors::SerializedProfileEvents(profile)) {
    s.BindInt64(index, static_cast<int64_t>(*e));
  } else {
    s.BindNull(index);
  }
}

bool ValidLevel(Level level) {
  return level == Level::kMinute || level == Level::kHour || level == Level::kDay;
}

ModelRecord ReadModelRow(const internal::Statement& s) {
  ModelRecord m;
  m.model_key = s.ColumnInt64(0);
  m.model_id = s.ColumnString(1);
  m.model_version = s.ColumnString(2);
  m.schema = s.ColumnString(3);
  m.registered_at_ms = s.ColumnInt64(4);
  m.watermark_ms = s.ColumnInt64(5);
  m.closed_until_ms = s.ColumnInt64(6);
  m.resolved_edges = s.ColumnString(7);  // NULL reads as empty
  return m;
}

absl::Status ValidateBatch(const FlushBatch& batch) {
  for (const BucketRow& row : batch.minute_upserts) {
    if (row.level != Level::kMinute) {
      return absl::InvalidArgumentError(
          absl::StrCat("commit flush: minute_upserts row for model ", row.model_key, " has level ",
                       static_cast<int>(row.level), ", want minute (0)"));
    }
  }
  for (const BucketRow& row : batch.minute_merges) {
    if (row.level != Level::kMinute) {
      return absl::InvalidArgumentError(
          absl::StrCat("commit flush: minute_merges row for model ", row.model_key, " has level ",
                       static_cast<int>(row.level), ", want minute (0)"));
    }
    auto layout = batch.layouts.find(row.model_key);
    if (layout == batch.layouts.end() || layout->second == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("commit flush: minute_merges row for model ",
                                                     row.model_key, " but no layout to merge with"));
    }
  }
  for (const BucketRow& row : batch.rollups) {
    if (row.level != Level::kHour && row.level != Level::kDay) {
      return absl::InvalidArgumentError(
          absl::StrCat("commit flush: rollups row for model ", row.model_key, " has level ",
                       static_cast<int>(row.level), ", want hour (1) or day (2)"));
    }
    auto layout = batch.layouts.find(row.model_key);
    if (layout == batch.layouts.end() || layout->second == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "commit flush: rollups row for model ", row.model_key, " but no layout to merge with"));
    }
  }
  return absl::OkStatus();
}

class SqliteStore final : public Store {
 public:
  SqliteStore(SqliteOptions options, std::unique_ptr<Connection> writer,
              std::unique_ptr<Connection> checkpointer)
      : options_(std::move(options)), writer_(std::move(writer)) {
    checkpoint_thread_ = std::thread(
        [this, conn = std::move(checkpointer)]() mutable {
          base::SetCurrentThreadName("dw-checkpoint");
          CheckpointLoop(std::move(conn));
        });
  }
  ~SqliteStore() override {
    {
      absl::MutexLock lock(&checkpoint_mu_);
      stopping_ = true;
    }
    checkpoint_thread_.join();
  }

  absl::StatusOr<ModelRecord> PutModel(const ModelRecord& model) override;
  absl::StatusOr<std::vector<ModelRecord>> ListModels() override;
  absl::StatusOr<std::vector<SliceRecord>> ListSlices(int64_t model_key) override;
  absl::StatusOr<ModelProgress> ReadProgress(int64_t model_key) override;
  absl::Status Commit(const FlushBatch& batch) override;
  absl::StatusOr<std::vector<BucketRow>> ReadBuckets(int64_t model_key, Level level,
                                                     int64_t start_ms, int64_t end_ms,
                                                     const std::vector<int32_t>& slices) override;
  absl::StatusOr<ArrivalCounts> ReadArrivalCounts(int64_t model_key, int64_t start_ms,
                                                  int64_t end_ms) override;
  absl::StatusOr<std::vector<PendingEventRow>> ReadPendingEvents(int64_t model_key) override;
  absl::Status UpdateResolvedEdges(int64_t model_key, const std::string& edges) override;
  absl::StatusOr<std::vector<DedupChunk>> ReadDedup(int64_t model_key, int64_t from_bucket_ms,
                                                    int64_t to_bucket_ms) override;
  absl::StatusOr<std::vector<RawEventRow>> ReadRawEvents(int64_t model_key, int64_t start_ms,
                                                         int64_t end_ms, int limit) override;
  absl::Status PutBaseline(const BaselineRecord& baseline) override;
  absl::StatusOr<std::vector<BaselineRecord>> ListBaselines(int64_t model_key) override;
  absl::StatusOr<int64_t> ApplyRetention(const RetentionPolicy& policy, int64_t now_ms) override;
  absl::StatusOr<int64_t> DeleteRawEvents(int64_t model_key,
                                          const std::vector<std::string>& event_ids) override;
  absl::Status CommitLabels(const LabelCommit& commit) override;
  absl::StatusOr<std::vector<JoinChunk>> ReadJoinChunks(int64_t model_key, int64_t after_seq,
                                                        int limit) override;
  absl::StatusOr<std::vector<BucketEvents>> ReadBucketEvents(int64_t model_key, Level level,
                                                             int64_t start_ms,
                                                             int64_t end_ms) override;
  absl::StatusOr<std::vector<JoinChunk>> ReadJoinChunksInHours(int64_t model_key, int64_t from_ms,
                                                               int64_t to_ms, int64_t after_seq,
                                                               int limit) override;
  absl::StatusOr<std::vector<LabelLogRow>> ReadLabelLog(int64_t model_key) override;
  absl::StatusOr<std::vector<PendingLabelRow>> ReadPendingLabels(int64_t model_key) override;
  using AlertStore::SaveAlerts;
  absl::Status SaveAlerts(const std::vector<AlertRow>& upserts,
                          const std::vector<std::string>& deleted_fingerprints,
                          const NotifyWrite& notify) override;
  absl::StatusOr<std::vector<OutboxRow>> ReadOutbox(bool pending_only, int limit) override;
  absl::Status UpdateOutbox(const OutboxRow& row) override;
  absl::StatusOr<std::pair<int64_t, int64_t>> OutboxDepth() override;
  absl::StatusOr<int64_t> DeleteFinishedOutbox(int64_t before_ms) override;
  absl::StatusOr<std::optional<std::string>> ReadDispatcherState() override;
  absl::StatusOr<std::vector<AlertRow>> ReadAlerts() override;
  absl::Status SaveRule(const RuleRow& rule) override;
  absl::Status DeleteRule(const std::string& name) override;
  absl::StatusOr<std::vector<RuleRow>> ReadRules() override;
  absl::Status SaveSilence(const SilenceRow& silence) override;
  absl::StatusOr<std::vector<SilenceRow>> ReadSilences() override;
  absl::StatusOr<int64_t> DeleteSilencesEndedBefore(int64_t before_ms) override;
  absl::Status AppendSignals(int64_t t_ms, const std::vector<SignalPoint>& points) override;
  absl::StatusOr<std::vector<SignalSample>> ReadSignalSeries(const std::string& model,
                                                             const std::string& signal,
                                                             const std::string& feature,
                                                             const std::string& slice,
                                                             int64_t from_ms,
                                                             int64_t to_ms) override;
  absl::StatusOr<int64_t> CompactSignals(const SignalRetention& retention,
                                         int64_t now_ms) override;
  absl::StatusOr<std::vector<QualityRow>> ReadQuality(int64_t model_key, int32_t slice_id,
                                                      int64_t from_ms, int64_t to_ms) override;
  absl::StatusOr<LabelCounts> ReadLabelCounts(int64_t model_key, int64_t from_ms,
                                              int64_t to_ms) override;
  absl::StatusOr<std::vector<SourceLabelCounts>> ReadSourceLabelCounts(int64_t model_key,
                                                                       int64_t from_ms,
                                                                       int64_t to_ms) override;
  absl::StatusOr<int64_t> ReadLabelProgress(int64_t model_key) override;

 private:
  // A read connection borrowed from the pool; returned on destruction.
  class ReaderLease {
   public:
    ReaderLease(SqliteStore* store, std::unique_ptr<Connection> conn)
        : store_(store), conn_(std::move(conn)) {}
    ReaderLease(ReaderLease&&) = default;
    ~ReaderLease() {
      if (conn_ != nullptr) store_->ReturnReader(std::move(conn_));
    }
    Connection* operator->() const { return conn_.get(); }

   private:
    SqliteStore* store_;
    std::unique_ptr<Connection> conn_;
  };

  // Copies the WAL into the database off the commit path. The writer runs
  // with wal_autocheckpoint off: SQLite's automatic checkpoint would run
  // inside Commit, which the ingest ack waits on, and it was most of the
  // commit's wall time. PASSIVE never blocks the writer or readers.
  void CheckpointLoop(std::unique_ptr<Connection> conn);

  absl::StatusOr<ReaderLease> AcquireReader();
  void ReturnReader(std::unique_ptr<Connection> conn);

  // The pieces of Commit, each inside the caller's transaction.
  absl::Status WriteSlices(const std::vector<SliceRecord>& slices)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteMinutes(const std::vector<BucketRow>& rows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Merges each row into the stored one with its model's layout (inserted
  // if none): minute_merges and rollups.
  absl::Status WriteMerges(const std::vector<BucketRow>& rows, const FlushBatch& batch,
                           absl::string_view op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteDedup(const FlushBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteRawEvents(const std::vector<RawEventRow>& rows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteProgress(const std::vector<FlushBatch::Progress>& progress)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteArrivals(const std::vector<ArrivalCounts>& arrivals)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WritePending(const FlushBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteJoinChunks(const std::vector<JoinChunk>& chunks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status MergeQuality(const QualityRow& row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Constant after construction.
  const SqliteOptions options_;

  absl::Mutex write_mu_;
  std::unique_ptr<Connection> writer_ ABSL_GUARDED_BY(write_mu_);
  // signal_series ids by model \x1f signal \x1f feature \x1f slice.
  absl::flat_hash_map<std::string, int64_t> series_ids_ ABSL_GUARDED_BY(write_mu_);

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_ ABSL_GUARDED_BY(pool_mu_);

  absl::Mutex checkpoint_mu_;
  bool stopping_ ABSL_GUARDED_BY(checkpoint_mu_) = false;
  std::thread checkpoint_thread_;
};

void SqliteStore::CheckpointLoop(std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&checkpoint_mu_);
  while (!stopping_) {
    checkpoint_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(kCheckpointIntervalMs));
    if (stopping_) break;
    checkpoint_mu_.Unlock();
    // A failure (e.g. a reader pinning an old snapshot) is retried next time.
    (void)conn->QueryText("PRAGMA wal_checkpoint(PASSIVE)", "checkpoint");
    checkpoint_mu_.Lock();
  }
  checkpoint_mu_.Unlock();
  (void)conn->QueryText("PRAGMA wal_checkpoint(PASSIVE)", "final checkpoint");
  checkpoint_mu_.Lock();
}

// --- Reader pool -------------------------------------------------------------

absl::StatusOr<SqliteStore::ReaderLease> SqliteStore::AcquireReader() {
  {
    absl::MutexLock lock(&pool_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReaderLease(this, std::move(conn));
    }
  }
  // Opened outside the pool lock: opening touches the file.
  DW_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                      Connection::Open(options_.path, options_.busy_timeout_ms));
  // A read connection never writes; query_only turns a bug into an error.
  DW_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = ON", "open read connection"));
  return ReaderLease(this, std::move(conn));
}

void SqliteStore::ReturnReader(std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&pool_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
}

// --- Models ------------------------------------------------------------------

absl::StatusOr<ModelRecord> SqliteStore::PutModel(const ModelRecord& model) {
  if (model.model_id.empty()) return absl::InvalidArgumentError("put model: empty model_id");
  constexpr absl::string_view kOp = "put model";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement find,
        writer_->Prepare("SELECT model_key, model_id, model_version, schema, registered_at_ms, "
                         "watermark_ms, closed_until_ms, resolved_edges FROM models "
                         "WHERE model_id = ? AND model_version = ?",
                         kOp));
    find->BindText(1, model.model_id);
    find->BindText(2, model.model_version);
    DW_ASSIGN_OR_RETURN(bool found, find->Step(kOp));
    if (found) {
      ModelRecord stored = ReadModelRow(*find);
      if (stored.schema != model.schema) {
        return absl::AlreadyExistsError(
            absl::StrCat("put model: model \"", model.model_id, "\" version \"",
                         model.model_version, "\" is already registered with a different schema"));
      }
      return stored;  // the transaction rolls back: nothing was written
    }
  }
  ModelRecord stored = model;
  {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement insert,
        writer_->Prepare("INSERT INTO models (model_id, model_version, schema, registered_at_ms, "
                         "watermark_ms, closed_until_ms, resolved_edges) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         kOp));
    insert->BindText(1, model.model_id);
    insert->BindText(2, model.model_version);
    insert->BindBlob(3, model.schema);
    insert->BindInt64(4, model.registered_at_ms);
    insert->BindInt64(5, model.watermark_ms);
    insert->BindInt64(6, model.closed_until_ms);
    insert->BindBlob(7, model.resolved_edges);
    DW_RETURN_IF_ERROR(insert->Run(kOp));
    stored.model_key = writer_->LastInsertRowid();
  }
  DW_RETURN_IF_ERROR(txn.Commit(kOp));
  return stored;
}

absl::StatusOr<std::vector<ModelRecord>> SqliteStore::ListModels() {
  constexpr absl::string_view kOp = "list models";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT model_key, model_id, model_version, schema, "
                                      "registered_at_ms, watermark_ms, closed_until_ms, "
                                      "resolved_edges FROM models ORDER BY model_key",
                                      kOp));
  std::vector<ModelRecord> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back(ReadModelRow(*s));
  }
  return out;
}

absl::StatusOr<std::vector<SliceRecord>> SqliteStore::ListSlices(int64_t model_key) {
  constexpr absl::string_view kOp = "list slices";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT slice_id, key_index, value FROM slices "
                                      "WHERE model_key = ? ORDER BY slice_id",
                                      kOp));
  s->BindInt64(1, model_key);
  std::vector<SliceRecord> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    SliceRecord& r = out.emplace_back();
    r.model_key = model_key;
    r.slice_id = static_cast<int32_t>(s->ColumnInt64(0));
    r.key_index = static_cast<int32_t>(s->ColumnInt64(1));
    r.value = s->ColumnString(2);
  }
  return out;
}

absl::StatusOr<ModelProgress> SqliteStore::ReadProgress(int64_t model_key) {
  constexpr absl::string_view kOp = "read progress";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT watermark_ms, closed_until_ms FROM models WHERE model_key = ?", kOp));
  s->BindInt64(1, model_key);
  DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
  if (!row) {
    return absl::NotFoundError(absl::StrCat(kOp, ": model key ", model_key, " is not in storage"));
  }
  return ModelProgress{s->ColumnInt64(0), s->ColumnInt64(1)};
}

// --- Commit ------------------------------------------------------------------

absl::Status SqliteStore::Commit(const FlushBatch& batch) {
  DW_RETURN_IF_ERROR(ValidateBatch(batch));
  constexpr absl::string_view kOp = "commit flush";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  // Any error below returns early and `txn` rolls the whole batch back.
  DW_RETURN_IF_ERROR(WriteSlices(batch.new_slices));
  DW_RETURN_IF_ERROR(WriteMinutes(batch.minute_upserts));
  DW_RETURN_IF_ERROR(WriteMerges(batch.minute_merges, batch, "commit flush: merge minute bucket"));
  DW_RETURN_IF_ERROR(WriteMerges(batch.rollups, batch, "commit flush: roll up bucket"));
  DW_RETURN_IF_ERROR(WriteDedup(batch));
  DW_RETURN_IF_ERROR(WriteRawEvents(batch.raw_events));
  DW_RETURN_IF_ERROR(WriteProgress(batch.progress));
  DW_RETURN_IF_ERROR(WriteArrivals(batch.arrivals));
  DW_RETURN_IF_ERROR(WritePending(batch));
  DW_RETURN_IF_ERROR(WriteJoinChunks(batch.join_chunks));
  return txn.Commit(kOp);
}

absl::Status SqliteStore::WriteSlices(const std::vector<SliceRecord>& slices) {
  constexpr absl::string_view kOp = "commit flush: insert slice";
  for (const SliceRecord& slice : slices) {
    {
      DW_ASSIGN_OR_RETURN(
          ScopedStatement s,
          writer_->Prepare("INSERT OR IGNORE INTO slices (model_key, slice_id, key_index, value) "
                           "VALUES (?, ?, ?, ?)",
                           kOp));
      s->BindInt64(1, slice.model_key);
      s->BindInt64(2, slice.slice_id);
      s->BindInt64(3, slice.key_index);
      s->BindText(4, slice.value);
      DW_RETURN_IF_ERROR(s->Run(kOp));
    }
    if (writer_->Changes() > 0) continue;
    // Re-sending a known slice is fine (a retried flush); redefining one is
    // a bug upstream that would silently mislabel stored buckets.
    DW_ASSIGN_OR_RETURN(ScopedStatement check,
                        writer_->Prepare("SELECT key_index, value FROM slices "
                                         "WHERE model_key = ? AND slice_id = ?",
                                         kOp));
    check->BindInt64(1, slice.model_key);
    check->BindInt64(2, slice.slice_id);
    DW_ASSIGN_OR_RETURN(bool found, check->Step(kOp));
    if (found &&
        (check->ColumnInt64(0) != slice.key_index || check->ColumnBlob(1) != slice.value)) {
      return absl::FailedPreconditionError(
          absl::StrCat(kOp, ": slice ", slice.slice_id, " of model ", slice.model_key,
                       " already exists with a different key or value"));
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteMinutes(const std::vector<BucketRow>& rows) {
  constexpr absl::string_view kOp = "commit flush: upsert minute bucket";
  for (const BucketRow& row : rows) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s, writer_->Prepare(kInsertMinuteSql, kOp));
    s->BindInt64(1, row.model_key);
    s->BindInt64(2, row.bucket_start_ms);
    s->BindInt64(3, row.slice_id);
    s->BindBlob(4, row.profile);
    BindEvents(*s, 5, row.profile);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteMerges(const std::vector<BucketRow>& rows,
                                      const FlushBatch& batch, absl::string_view kOp) {
  for (const BucketRow& row : rows) {
    int64_t rowid = 0;
    std::string merged;
    bool found = false;
    {
      DW_ASSIGN_OR_RETURN(ScopedStatement find, writer_->Prepare(kSelectBucketSql, kOp));
      find->BindInt64(1, row.model_key);
      find->BindInt64(2, static_cast<int>(row.level));
      find->BindInt64(3, row.bucket_start_ms);
      find->BindInt64(4, row.slice_id);
      DW_ASSIGN_OR_RETURN(found, find->Step(kOp));
      if (found) {
        rowid = find->ColumnInt64(0);
        // The stored bytes are borrowed from SQLite until `find` resets.
        absl::StatusOr<std::string> result = detectors::MergeSerializedProfiles(
            batch.layouts.at(row.model_key), find->ColumnBlob(1), row.profile);
        if (!result.ok()) {
          return absl::Status(
              result.status().code(),
              absl::StrCat(kOp, ": merge model ", row.model_key, " level ",
                           static_cast<int>(row.level), " bucket ", row.bucket_start_ms, " slice ",
                           row.slice_id, ": ", result.status().message()));
        }
        merged = *std::move(result);
      }
    }
    if (found) {
      DW_ASSIGN_OR_RETURN(ScopedStatement update, writer_->Prepare(kUpdateBucketSql, kOp));
      update->BindBlob(1, merged);
      BindEvents(*update, 2, merged);
      update->BindInt64(3, rowid);
      DW_RETURN_IF_ERROR(update->Run(kOp));
    } else {
      DW_ASSIGN_OR_RETURN(ScopedStatement insert, writer_->Prepare(kInsertBucketSql, kOp));
      insert->BindInt64(1, row.model_key);
      insert->BindInt64(2, static_cast<int>(row.level));
      insert->BindInt64(3, row.bucket_start_ms);
      insert->BindInt64(4, row.slice_id);
      insert->BindBlob(5, row.profile);
      BindEvents(*insert, 6, row.profile);
      DW_RETURN_IF_ERROR(insert->Run(kOp));
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteDedup(const FlushBatch& batch) {
  // Drops first: a batch that closes a bucket carries no new chunk for it,
  // and the order keeps a (buggy) both-in-one batch from losing new hashes.
  constexpr absl::string_view kDropOp = "commit flush: drop dedup";
  for (const FlushBatch::ClosedBucket& closed : batch.drop_dedup) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("DELETE FROM dedup WHERE model_key = ? AND bucket_start_ms = ?", kDropOp));
    s->BindInt64(1, closed.model_key);
    s->BindInt64(2, closed.bucket_start_ms);
    DW_RETURN_IF_ERROR(s->Run(kDropOp));
  }
  constexpr absl::string_view kOp = "commit flush: insert dedup chunk";
  for (const DedupChunk& chunk : batch.dedup) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("INSERT INTO dedup (model_key, bucket_start_ms, hashes) VALUES (?, ?, ?)",
                         kOp));
    s->BindInt64(1, chunk.model_key);
    s->BindInt64(2, chunk.bucket_start_ms);
    s->BindBlob(3, chunk.hashes);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteRawEvents(const std::vector<RawEventRow>& rows) {
  constexpr absl::string_view kOp = "commit flush: insert raw event";
  for (const RawEventRow& row : rows) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT OR IGNORE INTO raw_events (model_key, event_id, "
                                         "event_time_ms, received_at_ms, event) "
                                         "VALUES (?, ?, ?, ?, ?)",
                                         kOp));
    s->BindInt64(1, row.model_key);
    s->BindText(2, row.event_id);
    s->BindInt64(3, row.event_time_ms);
    s->BindInt64(4, row.received_at_ms);
    s->BindBlob(5, row.event);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WritePending(const FlushBatch& batch) {
  constexpr absl::string_view kOp = "commit flush: hold pending event";
  for (const PendingEventRow& row : batch.pending_events) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT OR REPLACE INTO pending_events (model_key, seq, "
                                         "event) VALUES (?, ?, ?)",
                                         kOp));
    s->BindInt64(1, row.model_key);
    s->BindInt64(2, row.seq);
    s->BindBlob(3, row.event);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (int64_t model_key : batch.clear_pending) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("DELETE FROM pending_events WHERE model_key = ?", "commit flush: clear pending"));
    s->BindInt64(1, model_key);
    DW_RETURN_IF_ERROR(s->Run("commit flush: clear pending"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PendingEventRow>> SqliteStore::ReadPendingEvents(int64_t model_key) {
  constexpr absl::string_view kOp = "read pending events";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT seq, event FROM pending_events WHERE model_key = ? "
                                      "ORDER BY seq",
                                      kOp));
  s->BindInt64(1, model_key);
  std::vector<PendingEventRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({model_key, s->ColumnInt64(0), s->ColumnString(1)});
  }
  return out;
}

absl::Status SqliteStore::UpdateResolvedEdges(int64_t model_key, const std::string& edges) {
  constexpr absl::string_view kOp = "store learned edges";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("UPDATE models SET resolved_edges = ? WHERE model_key = ?", kOp));
    s->BindBlob(1, edges);
    s->BindInt64(2, model_key);
    DW_RETURN_IF_ERROR(s->Run(kOp));
    if (writer_->Changes() == 0) {
      return absl::NotFoundError(absl::StrCat(kOp, ": model key ", model_key, " is not in storage"));
    }
  }
  return txn.Commit(kOp);
}

absl::Status SqliteStore::WriteArrivals(const std::vector<ArrivalCounts>& arrivals) {
  constexpr absl::string_view kOp = "commit flush: add arrival counts";
  for (const ArrivalCounts& a : arrivals) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("INSERT INTO arrival_counts (model_key, minute_start_ms, duplicates, "
                         "too_late, rejected) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (model_key, minute_start_ms) DO UPDATE SET "
                         "duplicates = duplicates + excluded.duplicates, "
                         "too_late = too_late + excluded.too_late, "
                         "rejected = rejected + excluded.rejected",
                         kOp));
    s->BindInt64(1, a.model_key);
    s->BindInt64(2, a.minute_start_ms);
    s->BindInt64(3, static_cast<int64_t>(a.duplicates));
    s->BindInt64(4, static_cast<int64_t>(a.too_late));
    s->BindInt64(5, static_cast<int64_t>(a.rejected));
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::WriteProgress(const std::vector<FlushBatch::Progress>& progress) {
  constexpr absl::string_view kOp = "commit flush: update progress";
  for (const FlushBatch::Progress& p : progress) {
    {
      // max(): a retried or reordered flush never moves a model backwards.
      DW_ASSIGN_OR_RETURN(
          ScopedStatement s,
          writer_->Prepare("UPDATE models SET watermark_ms = max(watermark_ms, ?), "
                           "closed_until_ms = max(closed_until_ms, ?) WHERE model_key = ?",
                           kOp));
      s->BindInt64(1, p.watermark_ms);
      s->BindInt64(2, p.closed_until_ms);
      s->BindInt64(3, p.model_key);
      DW_RETURN_IF_ERROR(s->Run(kOp));
    }
    if (writer_->Changes() == 0) {
      return absl::NotFoundError(absl::StrCat(kOp, ": unknown model_key ", p.model_key));
    }
  }
  return absl::OkStatus();
}

// --- Reads -------------------------------------------------------------------

absl::StatusOr<ArrivalCounts> SqliteStore::ReadArrivalCounts(int64_t model_key,
                                                             int64_t start_ms, int64_t end_ms) {
  constexpr absl::string_view kOp = "read arrival counts";
  ArrivalCounts out;
  out.model_key = model_key;
  out.minute_start_ms = start_ms;
  if (start_ms >= end_ms) return out;
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT coalesce(sum(duplicates), 0), coalesce(sum(too_late), 0), "
                      "coalesce(sum(rejected), 0) FROM arrival_counts WHERE model_key = ? AND "
                      "minute_start_ms >= ? AND minute_start_ms < ?",
                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, start_ms);
  s->BindInt64(3, end_ms);
  DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
  if (row) {
    out.duplicates = static_cast<uint64_t>(s->ColumnInt64(0));
    out.too_late = static_cast<uint64_t>(s->ColumnInt64(1));
    out.rejected = static_cast<uint64_t>(s->ColumnInt64(2));
  }
  return out;
}

absl::StatusOr<std::vector<BucketRow>> SqliteStore::ReadBuckets(
    int64_t model_key, Level level, int64_t start_ms, int64_t end_ms,
    const std::vector<int32_t>& slices) {
  constexpr absl::string_view kOp = "read buckets";
  if (!ValidLevel(level)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": unknown level ", static_cast<int>(level)));
  }
  std::vector<BucketRow> out;
  if (start_ms >= end_ms) return out;
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  // The slice filter is one JSON array parameter, so a single cached
  // statement serves every filter size (an IN list of ? would not).
  constexpr char kAll[] =
      "SELECT bucket_start_ms, slice_id, profile FROM buckets "
      "WHERE model_key = ? AND level = CAST(? AS INTEGER) AND bucket_start_ms >= ? "
      "AND bucket_start_ms < ? "
      "ORDER BY bucket_start_ms, slice_id";
  // A filtered read probes the slice-first index once per slice; left to
  // itself the planner walks the primary key's time range across every
  // slice, to skip the sort.
  constexpr char kFiltered[] =
      "SELECT bucket_start_ms, slice_id, profile FROM buckets INDEXED BY buckets_by_slice "
      "WHERE model_key = ? AND level = CAST(? AS INTEGER) AND bucket_start_ms >= ? "
      "AND bucket_start_ms < ? "
      "AND slice_id IN (SELECT value FROM json_each(?)) "
      "ORDER BY bucket_start_ms, slice_id";
  std::string slice_json;
  if (!slices.empty()) {
    slice_json = "[";
    for (size_t i = 0; i < slices.size(); ++i) {
      absl::StrAppend(&slice_json, i == 0 ? "" : ",", slices[i]);
    }
    slice_json += "]";
  }
  DW_ASSIGN_OR_RETURN(ScopedStatement s, reader->Prepare(slices.empty() ? kAll : kFiltered, kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, static_cast<int>(level));
  s->BindInt64(3, start_ms);
  s->BindInt64(4, end_ms);
  if (!slices.empty()) s->BindText(5, slice_json);
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    BucketRow& r = out.emplace_back();
    r.model_key = model_key;
    r.level = level;
    r.bucket_start_ms = s->ColumnInt64(0);
    r.slice_id = static_cast<int32_t>(s->ColumnInt64(1));
    r.profile = s->ColumnString(2);
  }
  return out;
}

absl::StatusOr<std::vector<BucketEvents>> SqliteStore::ReadBucketEvents(int64_t model_key,
                                                                        Level level,
                                                                        int64_t start_ms,
                                                                        int64_t end_ms) {
  constexpr absl::string_view kOp = "read bucket events";
  if (!ValidLevel(level)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": unknown level ", static_cast<int>(level)));
  }
  std::vector<BucketEvents> out;
  if (start_ms >= end_ms) return out;
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  // Hour rows: the partial index buckets_hour_events covers the read (the
  // literal `level = 1` makes it usable; INDEXED BY, since without
  // statistics the planner prefers the primary key), so no row's blob is
  // touched. Other levels, and rows written before v9 (events NULL, read
  // from the profile), go through the table.
  constexpr char kHours[] =
      "SELECT bucket_start_ms, slice_id, events, NULL FROM buckets INDEXED BY buckets_hour_events "
      "WHERE model_key = ? AND level = 1 AND bucket_start_ms >= ? AND bucket_start_ms < ? "
      "AND events IS NOT NULL "
      "UNION ALL "
      "SELECT bucket_start_ms, slice_id, NULL, profile FROM buckets "
      "WHERE model_key = ? AND level = 1 AND bucket_start_ms >= ? AND bucket_start_ms < ? "
      "AND events IS NULL "
      "ORDER BY 1, 2";
  constexpr char kAny[] =
      "SELECT bucket_start_ms, slice_id, events, "
      "CASE WHEN events IS NULL THEN profile END FROM buckets "
      "WHERE model_key = ? AND level = CAST(? AS INTEGER) AND bucket_start_ms >= ? AND "
      "bucket_start_ms < ? ORDER BY bucket_start_ms, slice_id";
  const bool hours = level == Level::kHour;
  DW_ASSIGN_OR_RETURN(ScopedStatement s, reader->Prepare(hours ? kHours : kAny, kOp));
  if (hours) {
    for (int part = 0; part < 2; ++part) {
      s->BindInt64(3 * part + 1, model_key);
      s->BindInt64(3 * part + 2, start_ms);
      s->BindInt64(3 * part + 3, end_ms);
    }
  } else {
    s->BindInt64(1, model_key);
    s->BindInt64(2, static_cast<int>(level));
    s->BindInt64(3, start_ms);
    s->BindInt64(4, end_ms);
  }
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    BucketEvents& e = out.emplace_back();
    e.bucket_start_ms = s->ColumnInt64(0);
    e.slice_id = static_cast<int32_t>(s->ColumnInt64(1));
    if (!s->ColumnIsNull(2)) {
      e.events = static_cast<uint64_t>(s->ColumnInt64(2));
    } else {
      DW_ASSIGN_OR_RETURN(e.events, EventsOfProfile(model_key, level, e.bucket_start_ms,
                                                    e.slice_id, s->ColumnBlob(3)));
    }
  }
  return out;
}

absl::StatusOr<std::vector<DedupChunk>> SqliteStore::ReadDedup(int64_t model_key,
                                                               int64_t from_bucket_ms,
                                                               int64_t to_bucket_ms) {
  constexpr absl::string_view kOp = "read dedup";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT bucket_start_ms, hashes FROM dedup "
                                      "WHERE model_key = ? AND bucket_start_ms >= ? "
                                      "AND bucket_start_ms < ? "
                                      "ORDER BY bucket_start_ms, chunk_id",
                                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, from_bucket_ms);
  s->BindInt64(3, to_bucket_ms);
  std::vector<DedupChunk> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    DedupChunk& c = out.emplace_back();
    c.model_key = model_key;
    c.bucket_start_ms = s->ColumnInt64(0);
    c.hashes = s->ColumnString(1);
  }
  return out;
}

absl::StatusOr<std::vector<RawEventRow>> SqliteStore::ReadRawEvents(int64_t model_key,
                                                                    int64_t start_ms,
                                                                    int64_t end_ms, int limit) {
  constexpr absl::string_view kOp = "read raw events";
  if (limit <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": limit must be > 0, got ", limit));
  }
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT event_id, event_time_ms, received_at_ms, event FROM raw_events "
                      "WHERE model_key = ? AND event_time_ms >= ? AND event_time_ms < ? "
                      "ORDER BY event_time_ms, event_id LIMIT ?",
                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, start_ms);
  s->BindInt64(3, end_ms);
  s->BindInt64(4, limit);
  std::vector<RawEventRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    RawEventRow& r = out.emplace_back();
    r.model_key = model_key;
    r.event_id = s->ColumnString(0);
    r.event_time_ms = s->ColumnInt64(1);
    r.received_at_ms = s->ColumnInt64(2);
    r.event = s->ColumnString(3);
  }
  return out;
}

// --- Baselines ---------------------------------------------------------------

absl::Status SqliteStore::PutBaseline(const BaselineRecord& baseline) {
  constexpr absl::string_view kOp = "put baseline";
  if (baseline.name.empty()) return absl::InvalidArgumentError("put baseline: empty name");
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      writer_->Prepare("INSERT OR REPLACE INTO baselines (model_key, name, spec, "
                                       "profile, created_at_ms) VALUES (?, ?, ?, ?, ?)",
                                       kOp));
  s->BindInt64(1, baseline.model_key);
  s->BindText(2, baseline.name);
  s->BindBlob(3, baseline.spec);
  s->BindBlob(4, baseline.profile);
  s->BindInt64(5, baseline.created_at_ms);
  return s->Run(kOp);  // autocommit: one statement is its own transaction
}

absl::StatusOr<std::vector<BaselineRecord>> SqliteStore::ListBaselines(int64_t model_key) {
  constexpr absl::string_view kOp = "list baselines";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT name, spec, profile, created_at_ms FROM baselines "
                                      "WHERE model_key = ? ORDER BY name",
                                      kOp));
  s->BindInt64(1, model_key);
  std::vector<BaselineRecord> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    BaselineRecord& b = out.emplace_back();
    b.model_key = model_key;
    b.name = s->ColumnString(0);
    b.spec = s->ColumnString(1);
    b.profile = s->ColumnString(2);
    b.created_at_ms = s->ColumnInt64(3);
  }
  return out;
}

// --- Labels ------------------------------------------------------------------

absl::Status SqliteStore::WriteJoinChunks(const std::vector<JoinChunk>& chunks) {
  constexpr absl::string_view kOp = "commit flush: insert join state";
  for (const JoinChunk& c : chunks) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT INTO join_state (model_key, hour_start_ms, "
                                         "records) VALUES (?, ?, ?)",
                                         kOp));
    s->BindInt64(1, c.model_key);
    s->BindInt64(2, c.hour_start_ms);
    s->BindBlob(3, c.records);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::MergeQuality(const QualityRow& row) {
  constexpr absl::string_view kOp = "commit labels: merge quality";
  std::string merged = row.profile;
  {
    DW_ASSIGN_OR_RETURN(ScopedStatement find,
                        writer_->Prepare("SELECT profile FROM quality WHERE model_key = ? AND "
                                         "slice_id = ? AND hour_start_ms = ?",
                                         kOp));
    find->BindInt64(1, row.model_key);
    find->BindInt64(2, row.slice_id);
    find->BindInt64(3, row.hour_start_ms);
    DW_ASSIGN_OR_RETURN(bool found, find->Step(kOp));
    if (found) {
      // Sparse (detectors/quality_delta.h): no dense decode of either side.
      absl::StatusOr<std::string> m =
          detectors::MergeQualityEncodings(find->ColumnBlob(0), row.profile);
      if (!m.ok()) {
        // A bad delta is the caller's; a bad stored row is data loss.
        const bool delta_bad = absl::StartsWith(m.status().message(), "delta:");
        return absl::Status(
            delta_bad ? absl::StatusCode::kInvalidArgument : m.status().code(),
            absl::StrCat(kOp, ": model ", row.model_key, " slice ", row.slice_id, " hour ",
                         row.hour_start_ms, ": ", m.status().message()));
      }
      merged = std::move(*m);
    }
  }
  DW_ASSIGN_OR_RETURN(ScopedStatement put,
                      writer_->Prepare("INSERT OR REPLACE INTO quality (model_key, slice_id, "
                                       "hour_start_ms, profile) VALUES (?, ?, ?, ?)",
                                       kOp));
  put->BindInt64(1, row.model_key);
  put->BindInt64(2, row.slice_id);
  put->BindInt64(3, row.hour_start_ms);
  put->BindBlob(4, merged);
  return put->Run(kOp);
}

absl::Status SqliteStore::CommitLabels(const LabelCommit& commit) {
  constexpr absl::string_view kOp = "commit labels";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  for (const LabelLogRow& row : commit.log) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT INTO label_log (model_key, commit_ms, entries) "
                                         "VALUES (?, ?, ?)",
                                         kOp));
    s->BindInt64(1, row.model_key);
    s->BindInt64(2, row.commit_ms);
    s->BindBlob(3, row.entries);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const QualityRow& row : commit.quality_merges) DW_RETURN_IF_ERROR(MergeQuality(row));
  for (const LabelCommit::Key& k : commit.pending_deletes) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("DELETE FROM pending_labels WHERE model_key = ? AND hash = ?", kOp));
    s->BindInt64(1, k.model_key);
    s->BindInt64(2, static_cast<int64_t>(k.hash));
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const PendingLabelRow& p : commit.pending_upserts) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT OR REPLACE INTO pending_labels (model_key, hash, "
                                         "value, label_time_ms, received_ms, source) VALUES (?, ?, "
                                         "?, ?, ?, ?)",
                                         kOp));
    s->BindInt64(1, p.model_key);
    s->BindInt64(2, static_cast<int64_t>(p.hash));
    s->BindDouble(3, p.value);
    s->BindInt64(4, p.label_time_ms);
    s->BindInt64(5, p.received_ms);
    s->BindText(6, p.source);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const LabelCounts& c : commit.counts) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare(
            "INSERT INTO label_counts (model_key, minute_start_ms, joined, pending, duplicates, "
            "conflicting, not_sampled, orphan, expired, rejected) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?) ON CONFLICT (model_key, minute_start_ms) DO UPDATE SET "
            "joined = joined + excluded.joined, pending = pending + excluded.pending, "
            "duplicates = duplicates + excluded.duplicates, "
            "conflicting = conflicting + excluded.conflicting, "
            "not_sampled = not_sampled + excluded.not_sampled, "
            "orphan = orphan + excluded.orphan, expired = expired + excluded.expired, "
            "rejected = rejected + excluded.rejected",
            kOp));
    s->BindInt64(1, c.model_key);
    s->BindInt64(2, c.minute_start_ms);
    int i = 3;
    for (uint64_t v : {c.joined, c.pending, c.duplicates, c.conflicting, c.not_sampled, c.orphan,
                       c.expired, c.rejected}) {
      s->BindInt64(i++, static_cast<int64_t>(v));
    }
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const SourceLabelCounts& c : commit.source_counts) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("INSERT INTO label_source_counts (model_key, minute_start_ms, source, "
                         "joined, orphan, pending) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                         "(model_key, minute_start_ms, source) DO UPDATE SET "
                         "joined = joined + excluded.joined, orphan = orphan + excluded.orphan, "
                         "pending = pending + excluded.pending",
                         kOp));
    s->BindInt64(1, c.model_key);
    s->BindInt64(2, c.minute_start_ms);
    s->BindText(3, c.source);
    s->BindInt64(4, static_cast<int64_t>(c.joined));
    s->BindInt64(5, static_cast<int64_t>(c.orphan));
    s->BindInt64(6, static_cast<int64_t>(c.pending));
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const LabelCommit::Progress& p : commit.progress) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT INTO label_progress (model_key, join_seq) VALUES "
                                         "(?, ?) ON CONFLICT (model_key) DO UPDATE SET join_seq = "
                                         "max(join_seq, excluded.join_seq)",
                                         kOp));
    s->BindInt64(1, p.model_key);
    s->BindInt64(2, p.join_seq);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const LabelCommit::Expire& e : commit.expire) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement a,
        writer_->Prepare("DELETE FROM join_state WHERE model_key = ? AND hour_start_ms < ?", kOp));
    a->BindInt64(1, e.model_key);
    a->BindInt64(2, e.join_before_hour_ms);
    DW_RETURN_IF_ERROR(a->Run(kOp));
    DW_ASSIGN_OR_RETURN(
        ScopedStatement b,
        writer_->Prepare("DELETE FROM label_log WHERE model_key = ? AND commit_ms < ?", kOp));
    b->BindInt64(1, e.model_key);
    b->BindInt64(2, e.log_before_ms);
    DW_RETURN_IF_ERROR(b->Run(kOp));
  }
  return txn.Commit(kOp);
}

absl::StatusOr<std::vector<JoinChunk>> SqliteStore::ReadJoinChunks(int64_t model_key,
                                                                   int64_t after_seq, int limit) {
  constexpr absl::string_view kOp = "read join state";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT seq, hour_start_ms, records FROM join_state WHERE "
                                      "model_key = ? AND seq > ? ORDER BY seq LIMIT ?",
                                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, after_seq);
  s->BindInt64(3, limit);
  std::vector<JoinChunk> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({s->ColumnInt64(0), model_key, s->ColumnInt64(1), s->ColumnString(2)});
  }
  return out;
}

absl::StatusOr<std::vector<JoinChunk>> SqliteStore::ReadJoinChunksInHours(
    int64_t model_key, int64_t from_ms, int64_t to_ms, int64_t after_seq, int limit) {
  constexpr absl::string_view kOp = "read join state";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT seq, hour_start_ms, records FROM join_state WHERE "
                                      "model_key = ? AND hour_start_ms >= ? AND hour_start_ms < ? "
                                      "AND seq > ? ORDER BY seq LIMIT ?",
                                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, from_ms);
  s->BindInt64(3, to_ms);
  s->BindInt64(4, after_seq);
  s->BindInt64(5, limit);
  std::vector<JoinChunk> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({s->ColumnInt64(0), model_key, s->ColumnInt64(1), s->ColumnString(2)});
  }
  return out;
}

absl::StatusOr<std::vector<LabelLogRow>> SqliteStore::ReadLabelLog(int64_t model_key) {
  constexpr absl::string_view kOp = "read label log";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT seq, commit_ms, entries FROM label_log WHERE "
                                      "model_key = ? ORDER BY seq",
                                      kOp));
  s->BindInt64(1, model_key);
  std::vector<LabelLogRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({s->ColumnInt64(0), model_key, s->ColumnInt64(1), s->ColumnString(2)});
  }
  return out;
}

absl::Status SqliteStore::SaveAlerts(const std::vector<AlertRow>& upserts,
                                     const std::vector<std::string>& deleted_fingerprints,
                                     const NotifyWrite& notify) {
  constexpr absl::string_view kOp = "save alerts";
  if (upserts.empty() && deleted_fingerprints.empty() && notify.outbox.empty() &&
      !notify.dispatcher_state) {
    return absl::OkStatus();
  }
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  for (const AlertRow& row : upserts) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("INSERT OR REPLACE INTO alerts (fingerprint, rule, alert) "
                                         "VALUES (?, ?, ?)",
                                         kOp));
    s->BindText(1, row.fingerprint);
    s->BindText(2, row.rule);
    s->BindBlob(3, row.alert);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  for (const std::string& fp : deleted_fingerprints) {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("DELETE FROM alerts WHERE fingerprint = ?", kOp));
    s->BindText(1, fp);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  // The notifications these changes cause, in the same transaction.
  for (const OutboxRow& row : notify.outbox) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("INSERT INTO outbox (id, receiver, url, body, group_key, created_ms, "
                         "next_attempt_ms, attempts, state, last_status, last_error, "
                         "delivered_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         kOp));
    s->BindText(1, row.id);
    s->BindText(2, row.receiver);
    s->BindText(3, row.url);
    s->BindBlob(4, row.body);
    s->BindText(5, row.group_key);
    s->BindInt64(6, row.created_ms);
    s->BindInt64(7, row.next_attempt_ms);
    s->BindInt64(8, row.attempts);
    s->BindInt64(9, row.state);
    s->BindInt64(10, row.last_status);
    s->BindText(11, row.last_error);
    s->BindInt64(12, row.delivered_ms);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  if (notify.dispatcher_state) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("INSERT OR REPLACE INTO notify_state (id, state) VALUES (1, ?)", kOp));
    s->BindBlob(1, *notify.dispatcher_state);
    DW_RETURN_IF_ERROR(s->Run(kOp));
  }
  return txn.Commit(kOp);
}

absl::StatusOr<std::vector<OutboxRow>> SqliteStore::ReadOutbox(bool pending_only, int limit) {
  constexpr absl::string_view kOp = "read outbox";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare(pending_only
                          ? "SELECT id, receiver, url, body, group_key, created_ms, "
                            "next_attempt_ms, attempts, state, last_status, last_error, "
                            "delivered_ms FROM outbox WHERE state = 0 ORDER BY next_attempt_ms, "
                            "created_ms LIMIT ?"
                          : "SELECT id, receiver, url, body, group_key, created_ms, "
                            "next_attempt_ms, attempts, state, last_status, last_error, "
                            "delivered_ms FROM outbox ORDER BY created_ms DESC LIMIT ?",
                      kOp));
  s->BindInt64(1, limit);
  std::vector<OutboxRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    OutboxRow r;
    r.id = s->ColumnString(0);
    r.receiver = s->ColumnString(1);
    r.url = s->ColumnString(2);
    r.body = s->ColumnString(3);
    r.group_key = s->ColumnString(4);
    r.created_ms = s->ColumnInt64(5);
    r.next_attempt_ms = s->ColumnInt64(6);
    r.attempts = static_cast<int>(s->ColumnInt64(7));
    r.state = static_cast<int>(s->ColumnInt64(8));
    r.last_status = static_cast<int>(s->ColumnInt64(9));
    r.last_error = s->ColumnString(10);
    r.delivered_ms = s->ColumnInt64(11);
    out.push_back(std::move(r));
  }
  return out;
}

absl::Status SqliteStore::UpdateOutbox(const OutboxRow& row) {
  constexpr absl::string_view kOp = "update outbox";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      writer_->Prepare("UPDATE outbox SET next_attempt_ms = ?, attempts = ?, "
                                       "state = ?, last_status = ?, last_error = ?, "
                                       "delivered_ms = ? WHERE id = ?",
                                       kOp));
  s->BindInt64(1, row.next_attempt_ms);
  s->BindInt64(2, row.attempts);
  s->BindInt64(3, row.state);
  s->BindInt64(4, row.last_status);
  s->BindText(5, row.last_error);
  s->BindInt64(6, row.delivered_ms);
  s->BindText(7, row.id);
  DW_RETURN_IF_ERROR(s->Run(kOp));
  if (writer_->Changes() == 0) return absl::NotFoundError("update outbox: no row " + row.id);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<int64_t, int64_t>> SqliteStore::OutboxDepth() {
  constexpr absl::string_view kOp = "outbox depth";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT count(*), coalesce(min(created_ms), 0) FROM outbox WHERE state = 0",
                      kOp));
  DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
  if (!row) return std::pair<int64_t, int64_t>{0, 0};
  return std::pair<int64_t, int64_t>{s->ColumnInt64(0), s->ColumnInt64(1)};
}

absl::StatusOr<int64_t> SqliteStore::DeleteFinishedOutbox(int64_t before_ms) {
  constexpr absl::string_view kOp = "delete finished outbox";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      writer_->Prepare("DELETE FROM outbox WHERE state != 0 AND delivered_ms < ?", kOp));
  s->BindInt64(1, before_ms);
  DW_RETURN_IF_ERROR(s->Run(kOp));
  return writer_->Changes();
}

absl::StatusOr<std::optional<std::string>> SqliteStore::ReadDispatcherState() {
  constexpr absl::string_view kOp = "read dispatcher state";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT state FROM notify_state WHERE id = 1", kOp));
  DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s->ColumnString(0));
}

absl::StatusOr<std::vector<AlertRow>> SqliteStore::ReadAlerts() {
  constexpr absl::string_view kOp = "read alerts";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT fingerprint, rule, alert FROM alerts "
                                      "ORDER BY fingerprint",
                                      kOp));
  std::vector<AlertRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({s->ColumnString(0), s->ColumnString(1), s->ColumnString(2)});
  }
  return out;
}

absl::Status SqliteStore::SaveRule(const RuleRow& rule) {
  constexpr absl::string_view kOp = "save rule";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      writer_->Prepare("INSERT OR REPLACE INTO rules (name, yaml, updated_at_ms) "
                                       "VALUES (?, ?, ?)",
                                       kOp));
  s->BindText(1, rule.name);
  s->BindText(2, rule.yaml);
  s->BindInt64(3, rule.updated_at_ms);
  return s->Run(kOp);
}

absl::Status SqliteStore::DeleteRule(const std::string& name) {
  constexpr absl::string_view kOp = "delete rule";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(ScopedStatement s, writer_->Prepare("DELETE FROM rules WHERE name = ?", kOp));
  s->BindText(1, name);
  DW_RETURN_IF_ERROR(s->Run(kOp));
  if (writer_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("no rule \"", name, "\" was put through the API"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RuleRow>> SqliteStore::ReadRules() {
  constexpr absl::string_view kOp = "read rules";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT name, yaml, updated_at_ms FROM rules ORDER BY name", kOp));
  std::vector<RuleRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({s->ColumnString(0), s->ColumnString(1), s->ColumnInt64(2)});
  }
  return out;
}

absl::Status SqliteStore::SaveSilence(const SilenceRow& silence) {
  constexpr absl::string_view kOp = "save silence";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      writer_->Prepare("INSERT OR REPLACE INTO silences (id, matchers, starts_at_ms, ends_at_ms, "
                       "created_by, comment, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       kOp));
  const std::string matchers = absl::StrJoin(silence.matchers, "\n");  // bound, not copied
  s->BindText(1, silence.id);
  s->BindText(2, matchers);
  s->BindInt64(3, silence.starts_at_ms);
  s->BindInt64(4, silence.ends_at_ms);
  s->BindText(5, silence.created_by);
  s->BindText(6, silence.comment);
  s->BindInt64(7, silence.updated_at_ms);
  return s->Run(kOp);
}

absl::StatusOr<std::vector<SilenceRow>> SqliteStore::ReadSilences() {
  constexpr absl::string_view kOp = "read silences";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT id, matchers, starts_at_ms, ends_at_ms, created_by, "
                                      "comment, updated_at_ms FROM silences ORDER BY starts_at_ms, id",
                                      kOp));
  std::vector<SilenceRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    SilenceRow r;
    r.id = s->ColumnString(0);
    const std::string matchers = s->ColumnString(1);
    if (!matchers.empty()) r.matchers = absl::StrSplit(matchers, '\n');
    r.starts_at_ms = s->ColumnInt64(2);
    r.ends_at_ms = s->ColumnInt64(3);
    r.created_by = s->ColumnString(4);
    r.comment = s->ColumnString(5);
    r.updated_at_ms = s->ColumnInt64(6);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<int64_t> SqliteStore::DeleteSilencesEndedBefore(int64_t before_ms) {
  constexpr absl::string_view kOp = "delete expired silences";
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      writer_->Prepare("DELETE FROM silences WHERE ends_at_ms < ?", kOp));
  s->BindInt64(1, before_ms);
  DW_RETURN_IF_ERROR(s->Run(kOp));
  return writer_->Changes();
}

absl::Status SqliteStore::AppendSignals(int64_t t_ms, const std::vector<SignalPoint>& points) {
  constexpr absl::string_view kOp = "append signals";
  if (points.empty()) return absl::OkStatus();
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  std::vector<std::pair<std::string, int64_t>> added;  // cached only once committed
  DW_ASSIGN_OR_RETURN(
      ScopedStatement insert,
      writer_->Prepare("INSERT OR REPLACE INTO signal_points (series_id, t_ms, resolution, value, "
                       "baseline) VALUES (?, ?, 0, ?, ?)",
                       kOp));
  for (const SignalPoint& p : points) {
    std::string key = absl::StrCat(p.model, "\x1f", p.signal, "\x1f", p.feature, "\x1f", p.slice);
    int64_t id = 0;
    if (auto it = series_ids_.find(key); it != series_ids_.end()) {
      id = it->second;
    } else {
      DW_ASSIGN_OR_RETURN(ScopedStatement up,
                          writer_->Prepare("INSERT INTO signal_series (model, signal, feature, "
                                           "slice) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                           kOp));
      up->BindText(1, p.model);
      up->BindText(2, p.signal);
      up->BindText(3, p.feature);
      up->BindText(4, p.slice);
      DW_RETURN_IF_ERROR(up->Run(kOp));
      DW_ASSIGN_OR_RETURN(ScopedStatement get,
                          writer_->Prepare("SELECT series_id FROM signal_series WHERE model = ? "
                                           "AND signal = ? AND feature = ? AND slice = ?",
                                           kOp));
      get->BindText(1, p.model);
      get->BindText(2, p.signal);
      get->BindText(3, p.feature);
      get->BindText(4, p.slice);
      DW_ASSIGN_OR_RETURN(bool row, get->Step(kOp));
      if (!row) return absl::InternalError("append signals: series id not found after insert");
      id = get->ColumnInt64(0);
      added.emplace_back(std::move(key), id);
    }
    insert->Reset();
    insert->BindInt64(1, id);
    insert->BindInt64(2, t_ms);
    insert->BindDouble(3, p.value);
    insert->BindDouble(4, p.baseline);  // NaN is stored as NULL
    DW_RETURN_IF_ERROR(insert->Run(kOp));
  }
  DW_RETURN_IF_ERROR(txn.Commit(kOp));
  for (auto& [key, id] : added) series_ids_.emplace(std::move(key), id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SignalSample>> SqliteStore::ReadSignalSeries(
    const std::string& model, const std::string& signal, const std::string& feature,
    const std::string& slice, int64_t from_ms, int64_t to_ms) {
  constexpr absl::string_view kOp = "read signal series";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT p.t_ms, p.value, p.baseline, p.resolution FROM signal_series AS r "
                      "JOIN signal_points AS p ON p.series_id = r.series_id WHERE r.model = ? AND "
                      "r.signal = ? AND r.feature = ? AND r.slice = ? AND p.t_ms >= ? AND "
                      "p.t_ms < ? ORDER BY p.t_ms",
                      kOp));
  s->BindText(1, model);
  s->BindText(2, signal);
  s->BindText(3, feature);
  s->BindText(4, slice);
  s->BindInt64(5, from_ms);
  s->BindInt64(6, to_ms);
  std::vector<SignalSample> out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({s->ColumnInt64(0), s->ColumnIsNull(1) ? nan : s->ColumnDouble(1),
                   s->ColumnIsNull(2) ? nan : s->ColumnDouble(2),
                   static_cast<int>(s->ColumnInt64(3))});
  }
  return out;
}

absl::StatusOr<int64_t> SqliteStore::CompactSignals(const SignalRetention& retention,
                                                    int64_t now_ms) {
  constexpr absl::string_view kOp = "compact signals";
  constexpr int64_t kHour = 3'600'000, kDay = 86'400'000;
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  int64_t removed = 0;
  // Evaluations older than raw_ms become their hour's mean, hourly means
  // older than hour_ms their day's; the cut-offs are aligned down to the
  // period so that no period is ever averaged twice from a part.
  const struct {
    int from, to;
    int64_t age_ms, period;
  } steps[] = {{0, 1, retention.raw_ms, kHour}, {1, 2, retention.hour_ms, kDay}};
  for (const auto& step : steps) {
    if (step.age_ms <= 0) continue;
    const int64_t before = (now_ms - step.age_ms) / step.period * step.period;
    int64_t n_before = 0;
    {
      DW_ASSIGN_OR_RETURN(ScopedStatement c,
                          writer_->Prepare("SELECT count(*) FROM signal_points WHERE resolution = "
                                           "? AND t_ms < ?",
                                           kOp));
      c->BindInt64(1, step.from);
      c->BindInt64(2, before);
      DW_ASSIGN_OR_RETURN(bool row, c->Step(kOp));
      n_before = row ? c->ColumnInt64(0) : 0;
    }
    if (n_before == 0) continue;
    DW_ASSIGN_OR_RETURN(
        ScopedStatement agg,
        writer_->Prepare("INSERT OR REPLACE INTO signal_points (series_id, t_ms, resolution, value, "
                         "baseline) SELECT series_id, (t_ms / ?1) * ?1, ?2, avg(value), "
                         "avg(baseline) FROM signal_points WHERE resolution = ?3 AND t_ms < ?4 "
                         "GROUP BY series_id, t_ms / ?1",
                         kOp));
    agg->BindInt64(1, step.period);
    agg->BindInt64(2, step.to);
    agg->BindInt64(3, step.from);
    agg->BindInt64(4, before);
    DW_RETURN_IF_ERROR(agg->Run(kOp));
    const int64_t written = writer_->Changes();
    DW_ASSIGN_OR_RETURN(ScopedStatement del,
                        writer_->Prepare("DELETE FROM signal_points WHERE resolution = ? AND "
                                         "t_ms < ?",
                                         kOp));
    del->BindInt64(1, step.from);
    del->BindInt64(2, before);
    DW_RETURN_IF_ERROR(del->Run(kOp));
    removed += writer_->Changes() - written;
  }
  if (retention.day_ms > 0) {
    DW_ASSIGN_OR_RETURN(ScopedStatement del,
                        writer_->Prepare("DELETE FROM signal_points WHERE t_ms < ?", kOp));
    del->BindInt64(1, now_ms - retention.day_ms);
    DW_RETURN_IF_ERROR(del->Run(kOp));
    removed += writer_->Changes();
  }
  DW_RETURN_IF_ERROR(txn.Commit(kOp));
  return removed;
}

absl::StatusOr<std::vector<PendingLabelRow>> SqliteStore::ReadPendingLabels(int64_t model_key) {
  constexpr absl::string_view kOp = "read pending labels";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT hash, value, label_time_ms, received_ms, source "
                                      "FROM pending_labels WHERE model_key = ?",
                                      kOp));
  s->BindInt64(1, model_key);
  std::vector<PendingLabelRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({model_key, static_cast<uint64_t>(s->ColumnInt64(0)), s->ColumnDouble(1),
                   s->ColumnInt64(2), s->ColumnInt64(3), s->ColumnString(4)});
  }
  return out;
}

absl::StatusOr<std::vector<QualityRow>> SqliteStore::ReadQuality(int64_t model_key,
                                                                 int32_t slice_id,
                                                                 int64_t from_ms, int64_t to_ms) {
  constexpr absl::string_view kOp = "read quality";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(ScopedStatement s,
                      reader->Prepare("SELECT hour_start_ms, profile FROM quality WHERE "
                                      "model_key = ? AND slice_id = ? AND hour_start_ms >= ? AND "
                                      "hour_start_ms < ? ORDER BY hour_start_ms",
                                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, slice_id);
  s->BindInt64(3, from_ms);
  s->BindInt64(4, to_ms);
  std::vector<QualityRow> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({model_key, slice_id, s->ColumnInt64(0), s->ColumnString(1)});
  }
  return out;
}

absl::StatusOr<LabelCounts> SqliteStore::ReadLabelCounts(int64_t model_key, int64_t from_ms,
                                                         int64_t to_ms) {
  constexpr absl::string_view kOp = "read label counts";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT coalesce(sum(joined), 0), coalesce(sum(pending), 0), "
                      "coalesce(sum(duplicates), 0), coalesce(sum(conflicting), 0), "
                      "coalesce(sum(not_sampled), 0), coalesce(sum(orphan), 0), "
                      "coalesce(sum(expired), 0), coalesce(sum(rejected), 0) FROM label_counts "
                      "WHERE model_key = ? AND minute_start_ms >= ? AND minute_start_ms < ?",
                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, from_ms);
  s->BindInt64(3, to_ms);
  LabelCounts c;
  c.model_key = model_key;
  DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
  if (row) {
    uint64_t* fields[] = {&c.joined,      &c.pending, &c.duplicates, &c.conflicting,
                          &c.not_sampled, &c.orphan,  &c.expired,    &c.rejected};
    for (int i = 0; i < 8; ++i) *fields[i] = static_cast<uint64_t>(s->ColumnInt64(i));
  }
  return c;
}

absl::StatusOr<std::vector<SourceLabelCounts>> SqliteStore::ReadSourceLabelCounts(int64_t model_key,
                                                                                  int64_t from_ms,
                                                                                  int64_t to_ms) {
  constexpr absl::string_view kOp = "read label counts by source";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT source, sum(joined), sum(orphan), sum(pending) FROM "
                      "label_source_counts WHERE model_key = ? AND minute_start_ms >= ? AND "
                      "minute_start_ms < ? GROUP BY source ORDER BY source",
                      kOp));
  s->BindInt64(1, model_key);
  s->BindInt64(2, from_ms);
  s->BindInt64(3, to_ms);
  std::vector<SourceLabelCounts> out;
  while (true) {
    DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
    if (!row) break;
    out.push_back({model_key, from_ms, s->ColumnString(0), static_cast<uint64_t>(s->ColumnInt64(1)),
                   static_cast<uint64_t>(s->ColumnInt64(2)),
                   static_cast<uint64_t>(s->ColumnInt64(3))});
  }
  return out;
}

absl::StatusOr<int64_t> SqliteStore::ReadLabelProgress(int64_t model_key) {
  constexpr absl::string_view kOp = "read label progress";
  DW_ASSIGN_OR_RETURN(ReaderLease reader, AcquireReader());
  DW_ASSIGN_OR_RETURN(
      ScopedStatement s,
      reader->Prepare("SELECT join_seq FROM label_progress WHERE model_key = ?", kOp));
  s->BindInt64(1, model_key);
  DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
  return row ? s->ColumnInt64(0) : 0;
}

// --- Deletion ----------------------------------------------------------------

absl::StatusOr<int64_t> SqliteStore::ApplyRetention(const RetentionPolicy& policy, int64_t now_ms) {
  constexpr absl::string_view kOp = "apply retention";
  // A non-positive age keeps that kind forever.
  auto cutoff = [now_ms](int64_t age_ms, int64_t* out) {
    return age_ms > 0 && !__builtin_sub_overflow(now_ms, age_ms, out);
  };
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  int64_t deleted = 0;
  // Per model, so each DELETE is a range scan of a primary-key prefix.
  std::vector<int64_t> models;
  {
    DW_ASSIGN_OR_RETURN(ScopedStatement s,
                        writer_->Prepare("SELECT model_key FROM models ORDER BY model_key", kOp));
    while (true) {
      DW_ASSIGN_OR_RETURN(bool row, s->Step(kOp));
      if (!row) break;
      models.push_back(s->ColumnInt64(0));
    }
  }
  const std::pair<Level, int64_t> levels[] = {{Level::kMinute, policy.minute_ms},
                                              {Level::kHour, policy.hour_ms},
                                              {Level::kDay, policy.day_ms}};
  for (int64_t model_key : models) {
    for (const auto& [level, age_ms] : levels) {
      int64_t before = 0;
      if (!cutoff(age_ms, &before)) continue;
      DW_ASSIGN_OR_RETURN(ScopedStatement s,
                          writer_->Prepare("DELETE FROM buckets WHERE model_key = ? AND "
                                           "level = CAST(? AS INTEGER) AND bucket_start_ms < ?",
                                           kOp));
      s->BindInt64(1, model_key);
      s->BindInt64(2, static_cast<int>(level));
      s->BindInt64(3, before);
      DW_RETURN_IF_ERROR(s->Run(kOp));
      deleted += writer_->Changes();
    }
    int64_t before = 0;
    // Dedup hashes of a bucket past minute retention can never be used; they
    // only linger if a drop_dedup was lost.
    if (cutoff(policy.minute_ms, &before)) {
      DW_ASSIGN_OR_RETURN(
          ScopedStatement s,
          writer_->Prepare("DELETE FROM dedup WHERE model_key = ? AND bucket_start_ms < ?", kOp));
      s->BindInt64(1, model_key);
      s->BindInt64(2, before);
      DW_RETURN_IF_ERROR(s->Run(kOp));
      deleted += writer_->Changes();
    }
    if (cutoff(policy.minute_ms, &before)) {
      DW_ASSIGN_OR_RETURN(ScopedStatement s,
                          writer_->Prepare("DELETE FROM arrival_counts WHERE model_key = ? AND "
                                           "minute_start_ms < ?",
                                           kOp));
      s->BindInt64(1, model_key);
      s->BindInt64(2, before);
      DW_RETURN_IF_ERROR(s->Run(kOp));
      deleted += writer_->Changes();
    }
    if (cutoff(policy.quality_ms, &before)) {
      for (const char* sql : {"DELETE FROM quality WHERE model_key = ? AND hour_start_ms < ?",
                              "DELETE FROM label_counts WHERE model_key = ? AND "
                              "minute_start_ms < ?",
                              "DELETE FROM label_source_counts WHERE model_key = ? AND "
                              "minute_start_ms < ?"}) {
        DW_ASSIGN_OR_RETURN(ScopedStatement s, writer_->Prepare(sql, kOp));
        s->BindInt64(1, model_key);
        s->BindInt64(2, before);
        DW_RETURN_IF_ERROR(s->Run(kOp));
        deleted += writer_->Changes();
      }
    }
    if (cutoff(policy.raw_events_ms, &before)) {
      DW_ASSIGN_OR_RETURN(
          ScopedStatement s,
          writer_->Prepare("DELETE FROM raw_events WHERE model_key = ? AND event_time_ms < ?",
                           kOp));
      s->BindInt64(1, model_key);
      s->BindInt64(2, before);
      DW_RETURN_IF_ERROR(s->Run(kOp));
      deleted += writer_->Changes();
    }
  }
  DW_RETURN_IF_ERROR(txn.Commit(kOp));
  return deleted;
}

absl::StatusOr<int64_t> SqliteStore::DeleteRawEvents(int64_t model_key,
                                                     const std::vector<std::string>& event_ids) {
  constexpr absl::string_view kOp = "delete raw events";
  if (event_ids.empty()) return 0;
  absl::MutexLock lock(&write_mu_);
  DW_ASSIGN_OR_RETURN(Transaction txn, Transaction::BeginImmediate(writer_.get(), kOp));
  int64_t deleted = 0;
  for (const std::string& id : event_ids) {
    DW_ASSIGN_OR_RETURN(
        ScopedStatement s,
        writer_->Prepare("DELETE FROM raw_events WHERE model_key = ? AND event_id = ?", kOp));
    s->BindInt64(1, model_key);
    s->BindText(2, id);
    DW_RETURN_IF_ERROR(s->Run(kOp));
    deleted += writer_->Changes();
  }
  DW_RETURN_IF_ERROR(txn.Commit(kOp));
  return deleted;
}

}  // namespace

// --- Open --------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  constexpr absl::string_view kOp = "open sqlite store";
  if (options.path.empty()) return absl::InvalidArgumentError("open sqlite store: empty path");
  if (options.busy_timeout_ms < 0) {
    return absl::InvalidArgumentError("open sqlite store: negative busy_timeout_ms");
  }
  std::filesystem::path parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::Status(
          absl::ErrnoToStatusCode(ec.value()),
          absl::StrCat(kOp, ": create directory ", parent.string(), ": ", ec.message()));
    }
  }
  DW_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                      Connection::Open(options.path, options.busy_timeout_ms));
  // The first statement reads the header: a non-database file fails here
  // with DATA_LOSS.
  DW_ASSIGN_OR_RETURN(std::string mode, writer->QueryText("PRAGMA journal_mode = WAL",
                                                          "open sqlite store: set WAL mode"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(kOp, ": journal mode is \"", mode,
                     "\", not \"wal\" (in-memory databases are unsupported)"));
  }
  DW_RETURN_IF_ERROR(writer->Exec(
      options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
      "open sqlite store: set synchronous"));
  DW_RETURN_IF_ERROR(writer->Exec("PRAGMA foreign_keys = OFF", "open sqlite store: foreign_keys"));
  DW_RETURN_IF_ERROR(writer->Exec(kWriterCacheSql, "open sqlite store: cache_size"));
  DW_RETURN_IF_ERROR(writer->Exec("PRAGMA wal_autocheckpoint = 0",
                                  "open sqlite store: wal_autocheckpoint"));
  const base::SystemClock system_clock;
  const base::Clock& clock = options.clock != nullptr ? *options.clock : system_clock;
  DW_RETURN_IF_ERROR(internal::ApplyMigrations(writer.get(), clock.NowMs()));
  DW_ASSIGN_OR_RETURN(std::unique_ptr<Connection> checkpointer,
                      Connection::Open(options.path, options.busy_timeout_ms));
  return std::unique_ptr<Store>(
      std::make_unique<SqliteStore>(options, std::move(writer), std::move(checkpointer)));
}

}  // namespace driftwatch::storage
