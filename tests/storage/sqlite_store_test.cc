// Behaviour of the SQLite store against real files: migrations, models,
// every row kind of a flush, rollups, retention and error mapping.
#include <cmath>
#include <sqlite3.h>  // only to inspect or tamper with files behind the store

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/storage/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "temp_db.h"

namespace driftwatch::storage {
namespace {

using ::driftwatch::storage::testing::Bucket;
using ::driftwatch::storage::testing::SumOf;
using ::driftwatch::storage::testing::TestProfile;
using ::driftwatch::storage::testing::WithLayout;
using ::driftwatch::storage::testing::Model;
using ::driftwatch::storage::testing::RawEvent;
using ::driftwatch::storage::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

// Runs SQL on the file with a plain connection; returns the first column of
// the first row as text ("" if none).
std::string RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  std::string result;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

// The details of EXPLAIN QUERY PLAN `sql`, one line each.
std::string QueryPlan(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  const std::string explain = "EXPLAIN QUERY PLAN " + sql;
  EXPECT_EQ(sqlite3_prepare_v2(db, explain.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    out += "\n";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

std::vector<std::pair<int64_t, int32_t>> Keys(const std::vector<BucketRow>& rows) {
  std::vector<std::pair<int64_t, int32_t>> keys;
  for (const BucketRow& r : rows) keys.emplace_back(r.bucket_start_ms, r.slice_id);
  return keys;
}

std::vector<std::string> Profiles(const std::vector<BucketRow>& rows) {
  std::vector<std::string> out;
  for (const BucketRow& r : rows) out.push_back(r.profile);
  return out;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();  // close first, like a restart
    SqliteOptions options;
    options.path = path_;
    auto store = OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  int64_t AddModel(const std::string& id = "fraud") {
    auto m = store_->PutModel(Model(id, "v1", "schema-" + id));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? m->model_key : 0;
  }

  ModelRecord GetModel(int64_t key) {
    auto models = store_->ListModels();
    EXPECT_TRUE(models.ok()) << models.status();
    for (const ModelRecord& m : *models) {
      if (m.model_key == key) return m;
    }
    ADD_FAILURE() << "no model " << key;
    return {};
  }

  TempDir dir_;
  std::string path_ = dir_.File("data/driftwatch.db");  // parent not yet created
  std::unique_ptr<Store> store_;
};

// --- Opening and migrations --------------------------------------------------

TEST_F(SqliteStoreTest, FreshFileIsMigratedInWalMode) {
  EXPECT_EQ(RawSql(path_, "SELECT group_concat(version) FROM schema_migrations"),
            "1,2,3,4,5,6,7,8,9");
  EXPECT_EQ(RawSql(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawSql(path_,
                   "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                   "('models','slices','buckets','dedup','raw_events','baselines','arrival_counts',"
                   "'pending_events')"),
            "8");
  // v2: a slice's rows over a time range are found by the slice-first index.
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                          "name = 'buckets_by_slice'"),
            "1");
}

TEST_F(SqliteStoreTest, ReopenIsIdempotentAndKeepsData) {
  int64_t key = AddModel();
  Reopen();
  Reopen();
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM schema_migrations"), "9");
  EXPECT_EQ(GetModel(key).model_id, "fraud");
}

TEST_F(SqliteStoreTest, NewerSchemaVersionIsRejected) {
  store_.reset();
  RawSql(path_, "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (10, 0)");
  SqliteOptions options;
  options.path = path_;
  auto store = OpenSqliteStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("version 10"));
  EXPECT_THAT(store.status().message(), HasSubstr("supports (9)"));
  // Nothing was changed on disk.
  EXPECT_EQ(RawSql(path_, "SELECT group_concat(version) FROM schema_migrations"),
            "1,2,3,4,5,6,7,8,9,10");
}

// v5: alert state rows, upserted and deleted in one transaction, kept
// across a reopen.
TEST_F(SqliteStoreTest, AlertRowsUpsertDeleteAndSurviveAReopen) {
  ASSERT_TRUE(store_->SaveAlerts({{"aaaa", "r1", "one"}, {"bbbb", "r2", "two"}}, {}).ok());
  ASSERT_TRUE(store_->SaveAlerts({{"aaaa", "r1", "uno"}}, {"bbbb", "never-there"}).ok());
  Reopen();
  absl::StatusOr<std::vector<AlertRow>> rows = store_->ReadAlerts();
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].fingerprint, "aaaa");
  EXPECT_EQ((*rows)[0].rule, "r1");
  EXPECT_EQ((*rows)[0].alert, "uno");
  EXPECT_TRUE(store_->SaveAlerts({}, {}).ok());
}

// v6: rules put through the API and silences, kept across a reopen.
TEST_F(SqliteStoreTest, RulesAndSilencesSurviveAReopen) {
  ASSERT_TRUE(store_->SaveRule({"b_rule", "name: b_rule", 10}).ok());
  ASSERT_TRUE(store_->SaveRule({"a_rule", "name: a_rule", 11}).ok());
  ASSERT_TRUE(store_->SaveRule({"a_rule", "name: a_rule # v2", 12}).ok());
  ASSERT_TRUE(store_->DeleteRule("b_rule").ok());
  EXPECT_EQ(store_->DeleteRule("b_rule").code(), absl::StatusCode::kNotFound);
  SilenceRow silence{"s1", {"alertname=\"feature_drift\"", "slice=~\"platform=.*\""}, 100, 200,
                     "alice", "deploying", 100};
  ASSERT_TRUE(store_->SaveSilence(silence).ok());
  ASSERT_TRUE(store_->SaveSilence({"s2", {}, 100, 150, "bob", "", 100}).ok());
  Reopen();
  absl::StatusOr<std::vector<RuleRow>> rules = store_->ReadRules();
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 1u);
  EXPECT_EQ((*rules)[0].yaml, "name: a_rule # v2");
  EXPECT_EQ((*rules)[0].updated_at_ms, 12);
  absl::StatusOr<std::vector<SilenceRow>> silences = store_->ReadSilences();
  ASSERT_TRUE(silences.ok()) << silences.status();
  ASSERT_EQ(silences->size(), 2u);
  EXPECT_EQ((*silences)[0].matchers, silence.matchers);
  EXPECT_EQ((*silences)[0].comment, "deploying");
  EXPECT_TRUE((*silences)[1].matchers.empty());
  absl::StatusOr<int64_t> gone = store_->DeleteSilencesEndedBefore(160);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 1);
}

// v6: the signal history, read back by series and range, downsampled to
// hourly then daily means and dropped past its retention.
TEST_F(SqliteStoreTest, SignalHistoryIsReadByRangeAndDownsampled) {
  constexpr int64_t kHour = 3'600'000, kDay = 24 * kHour;
  const int64_t t0 = 400 * kDay;  // day-aligned
  const double nan = std::nan("");
  // Two series, one point per 15 min for two days.
  for (int64_t t = t0; t < t0 + 2 * kDay; t += kHour / 4) {
    const double v = static_cast<double>((t - t0) / (kHour / 4) % 4);  // 0 1 2 3 per hour
    ASSERT_TRUE(store_
                    ->AppendSignals(t, {{"loan@v1", "psi", "income", "platform=android", v, nan},
                                        {"loan@v1", "volume", "", "*", 100 + v, 50}})
                    .ok());
  }
  absl::StatusOr<std::vector<SignalSample>> got =
      store_->ReadSignalSeries("loan@v1", "psi", "income", "platform=android", t0, t0 + kHour);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 4u);
  EXPECT_EQ((*got)[3].t_ms, t0 + 3 * kHour / 4);
  EXPECT_EQ((*got)[3].value, 3);
  EXPECT_TRUE(std::isnan((*got)[3].baseline));
  EXPECT_EQ((*got)[3].resolution, 0);
  // Raw points older than one day become hourly means.
  SignalRetention retention{kDay, 10 * kDay, 100 * kDay};
  ASSERT_TRUE(store_->CompactSignals(retention, t0 + 2 * kDay + kHour / 2).ok());
  got = store_->ReadSignalSeries("loan@v1", "volume", "", "*", t0, t0 + 2 * kDay);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 24u + 4 * 24u);  // the first day hourly, the second as it was
  EXPECT_EQ((*got)[0].t_ms, t0);
  EXPECT_EQ((*got)[0].resolution, 1);
  EXPECT_DOUBLE_EQ((*got)[0].value, 101.5);  // mean of 100..103
  EXPECT_DOUBLE_EQ((*got)[0].baseline, 50);
  EXPECT_EQ((*got)[24].resolution, 0);
  // Compacting again changes nothing; later, hourly means older than the
  // hour retention become daily means, and the oldest go.
  ASSERT_TRUE(store_->CompactSignals(retention, t0 + 2 * kDay + kHour / 2).ok());
  got = store_->ReadSignalSeries("loan@v1", "volume", "", "*", t0, t0 + 2 * kDay);
  EXPECT_EQ(got->size(), 24u + 4 * 24u);
  ASSERT_TRUE(store_->CompactSignals(retention, t0 + 12 * kDay + kHour).ok());
  got = store_->ReadSignalSeries("loan@v1", "volume", "", "*", t0, t0 + 2 * kDay);
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].resolution, 2);
  EXPECT_DOUBLE_EQ((*got)[0].value, 101.5);
  ASSERT_TRUE(store_->CompactSignals(retention, t0 + 200 * kDay).ok());
  got = store_->ReadSignalSeries("loan@v1", "volume", "", "*", 0, t0 + 300 * kDay);
  EXPECT_TRUE(got->empty());
}

// v7: notifications go into the outbox in the alerts' own transaction,
// with the dispatcher's state; the relay's updates and a reopen keep them.
TEST_F(SqliteStoreTest, OutboxRowsComeWithTheirAlertsAndSurviveAReopen) {
  NotifyWrite notify;
  OutboxRow row;
  row.id = "msg_1";
  row.receiver = "hook";
  row.url = "http://127.0.0.1:9/x";
  row.body = "{\"alerts\":[]}";
  row.group_key = "{}:{}";
  row.created_ms = 100;
  row.next_attempt_ms = 100;
  notify.outbox.push_back(row);
  row.id = "msg_2";
  row.next_attempt_ms = 50;
  notify.outbox.push_back(row);
  notify.dispatcher_state = std::string("DWDS\x01", 5);
  ASSERT_TRUE(store_->SaveAlerts({{"aaaa", "r1", "one"}}, {}, notify).ok());
  // An id sent twice is a bug, not a second page: the transaction fails,
  // the alert row with it.
  EXPECT_FALSE(store_->SaveAlerts({{"bbbb", "r2", "two"}}, {}, notify).ok());
  Reopen();
  EXPECT_EQ(store_->ReadAlerts()->size(), 1u);
  absl::StatusOr<std::vector<OutboxRow>> pending = store_->ReadOutbox(true, 10);
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].id, "msg_2");  // due first
  EXPECT_EQ((*pending)[1].body, "{\"alerts\":[]}");
  EXPECT_EQ(*store_->ReadDispatcherState(), std::optional<std::string>(std::string("DWDS\x01", 5)));
  OutboxRow done = (*pending)[0];
  done.state = OutboxRow::kDelivered;
  done.attempts = 3;
  done.last_status = 200;
  done.delivered_ms = 200;
  ASSERT_TRUE(store_->UpdateOutbox(done).ok());
  Reopen();
  EXPECT_EQ(store_->ReadOutbox(true, 10)->size(), 1u);
  EXPECT_EQ(*store_->OutboxDepth(), (std::pair<int64_t, int64_t>{1, 100}));
  absl::StatusOr<std::vector<OutboxRow>> all = store_->ReadOutbox(false, 10);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(*store_->DeleteFinishedOutbox(300), 1);
  EXPECT_EQ(store_->ReadOutbox(false, 10)->size(), 1u);
}

TEST_F(SqliteStoreTest, NonDatabaseFileIsDataLoss) {
  std::string path = dir_.File("garbage.db");
  std::ofstream(path) << std::string(8192, 'x');
  SqliteOptions options;
  options.path = path;
  auto store = OpenSqliteStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("file is not a database"));
}

TEST_F(SqliteStoreTest, CorruptPagesAreDataLossNotACrash) {
  int64_t key = AddModel();
  FlushBatch batch;
  for (int i = 0; i < 200; ++i) {
    batch.minute_upserts.push_back(Bucket(key, Level::kMinute, i * kMinuteMs, 0,
                                          std::string(3000, static_cast<char>('a' + i % 26))));
  }
  ASSERT_TRUE(store_->Commit(batch).ok());
  store_.reset();  // the last close checkpoints the WAL into the main file
  {
    // Keep page 1 (header and schema), scribble over every other page.
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(0, std::ios::end);
    const std::streamoff size = file.tellp();
    ASSERT_GT(size, 8 * 4096);
    file.seekp(4096);
    file << std::string(static_cast<size_t>(size) - 4096, '\xA5');
  }
  SqliteOptions options;
  options.path = path_;
  auto store = OpenSqliteStore(options);
  absl::Status status = store.status();
  if (store.ok()) {
    status = (*store)->ReadBuckets(key, Level::kMinute, 0, kDayMs, {}).status();
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
}

TEST(SqliteOpenTest, EmptyPathIsInvalid) {
  auto store = OpenSqliteStore(SqliteOptions{});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Models ------------------------------------------------------------------

TEST_F(SqliteStoreTest, PutModelSemantics) {
  auto a = store_->PutModel(Model("fraud", "v1", "S1"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_GT(a->model_key, 0);
  EXPECT_EQ(a->registered_at_ms, 1000);

  auto b = store_->PutModel(Model("fraud", "v2", "S2"));
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->model_key, a->model_key);

  // Same id, version and schema: the stored record, even if other fields differ.
  ModelRecord again = Model("fraud", "v1", "S1");
  again.registered_at_ms = 99'999;
  auto c = store_->PutModel(again);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->model_key, a->model_key);
  EXPECT_EQ(c->registered_at_ms, 1000);

  auto d = store_->PutModel(Model("fraud", "v1", "S-other"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(d.status().message(), HasSubstr("\"fraud\""));

  EXPECT_EQ(store_->PutModel(Model("", "v1", "S")).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto models = store_->ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].model_key, a->model_key);
  EXPECT_EQ((*models)[0].schema, "S1");
  EXPECT_EQ((*models)[1].model_version, "v2");
}

TEST_F(SqliteStoreTest, BinarySchemaBytesRoundTrip) {
  std::string schema("\0\x01\xff\x00zz", 6);
  auto m = store_->PutModel(Model("bin", "v1", schema));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(GetModel(m->model_key).schema, schema);
  EXPECT_TRUE(store_->PutModel(Model("bin", "v1", schema)).ok());
}

// --- Commit ------------------------------------------------------------------

TEST_F(SqliteStoreTest, CommitRoundTripsEveryRowKind) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.new_slices = {{key, 0, -1, "*"}, {key, 1, 0, "country=FR"}};
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "m0"),
                          Bucket(key, Level::kMinute, 0, 1, std::string("m\0b", 3))};
  batch.rollups = {Bucket(key, Level::kHour, 0, 0, TestProfile({1})),
                   Bucket(key, Level::kDay, 0, 0, TestProfile({2}))};
  WithLayout(&batch, key);
  batch.dedup = {{key, 0, "12345678"}};
  batch.raw_events = {RawEvent(key, "e1", 10, "payload")};
  batch.progress = {{key, 59'000, 0}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  Reopen();  // read back through a fresh process view

  auto slices = store_->ListSlices(key);
  ASSERT_TRUE(slices.ok());
  ASSERT_EQ(slices->size(), 2u);
  EXPECT_EQ((*slices)[0].key_index, -1);
  EXPECT_EQ((*slices)[0].value, "*");
  EXPECT_EQ((*slices)[1].key_index, 0);
  EXPECT_EQ((*slices)[1].value, "country=FR");

  auto minutes = store_->ReadBuckets(key, Level::kMinute, 0, kMinuteMs, {});
  ASSERT_TRUE(minutes.ok());
  EXPECT_THAT(Profiles(*minutes), ElementsAre("m0", std::string("m\0b", 3)));
  EXPECT_EQ((*minutes)[1].level, Level::kMinute);
  EXPECT_EQ((*minutes)[1].model_key, key);
  EXPECT_THAT(Profiles(*store_->ReadBuckets(key, Level::kHour, 0, kHourMs, {})),
              ElementsAre(TestProfile({1})));
  EXPECT_THAT(Profiles(*store_->ReadBuckets(key, Level::kDay, 0, kDayMs, {})),
              ElementsAre(TestProfile({2})));

  auto dedup = store_->ReadDedup(key, 0);
  ASSERT_TRUE(dedup.ok());
  ASSERT_EQ(dedup->size(), 1u);
  EXPECT_EQ((*dedup)[0].hashes, "12345678");

  auto events = store_->ReadRawEvents(key, 0, 100, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].event_id, "e1");
  EXPECT_EQ((*events)[0].event_time_ms, 10);
  EXPECT_EQ((*events)[0].received_at_ms, 15);
  EXPECT_EQ((*events)[0].event, "payload");

  EXPECT_EQ(GetModel(key).watermark_ms, 59'000);
}

TEST_F(SqliteStoreTest, MinuteUpsertReplaces) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "old")};
  ASSERT_TRUE(store_->Commit(batch).ok());
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "new")};
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_THAT(Profiles(*store_->ReadBuckets(key, Level::kMinute, 0, kMinuteMs, {})),
              ElementsAre("new"));
}

TEST_F(SqliteStoreTest, RollupsMergeWithTheBatchLayout) {
  int64_t key = AddModel();
  FlushBatch batch;
  WithLayout(&batch, key);
  batch.rollups = {Bucket(key, Level::kHour, 0, 0, TestProfile({1}))};
  ASSERT_TRUE(store_->Commit(batch).ok());
  // Two rows for one bucket in one batch: the second merges into the first.
  batch.rollups = {Bucket(key, Level::kHour, 0, 0, TestProfile({10})),
                   Bucket(key, Level::kHour, 0, 0, TestProfile({100})),
                   Bucket(key, Level::kHour, 0, 1, TestProfile({1000}))};
  ASSERT_TRUE(store_->Commit(batch).ok());
  auto rows = store_->ReadBuckets(key, Level::kHour, 0, kHourMs, {});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(SumOf((*rows)[0].profile), 111);  // 1 + 10 + 100: merged in order
  EXPECT_EQ((*rows)[0].profile, TestProfile({1, 10, 100}));
  EXPECT_EQ(SumOf((*rows)[1].profile), 1000);
}

// v9: each row's event count is kept beside its profile; a row written
// before (events NULL) is read from its profile's header, and one whose
// profile does not decode is DATA_LOSS naming it.
TEST_F(SqliteStoreTest, BucketEventsAreReadWithoutTheProfiles) {
  int64_t key = AddModel();
  FlushBatch batch;
  WithLayout(&batch, key);
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, TestProfile({1, 2}))};
  batch.rollups = {Bucket(key, Level::kHour, 0, 0, TestProfile({1, 2, 3})),
                   Bucket(key, Level::kHour, 0, 1, TestProfile({4})),
                   Bucket(key, Level::kHour, kHourMs, 0, TestProfile({5}))};
  ASSERT_TRUE(store_->Commit(batch).ok());
  batch.minute_upserts.clear();
  batch.rollups = {Bucket(key, Level::kHour, 0, 1, TestProfile({6, 7}))};  // merged: 3 events
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(RawSql(path_, "SELECT group_concat(events) FROM buckets WHERE level = 1"), "3,3,1");
  auto events = store_->ReadBucketEvents(key, Level::kHour, 0, 2 * kHourMs);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].slice_id, 0);
  EXPECT_EQ((*events)[0].events, 3u);
  EXPECT_EQ((*events)[1].slice_id, 1);
  EXPECT_EQ((*events)[1].events, 3u);
  EXPECT_EQ((*events)[2].bucket_start_ms, kHourMs);
  EXPECT_EQ((*events)[2].events, 1u);
  // The hour rows' counts come from the partial index alone (the store's
  // query names it).
  EXPECT_THAT(QueryPlan(path_, absl::StrCat("SELECT bucket_start_ms, slice_id, events FROM "
                                         "buckets INDEXED BY buckets_hour_events WHERE model_key = ",
                                         key, " AND level = 1 AND bucket_start_ms >= 0 AND "
                                         "bucket_start_ms < 7200000 AND events IS NOT NULL")),
              HasSubstr("COVERING INDEX buckets_hour_events"));
  // As a v8 file wrote them: the count comes from the profile.
  RawSql(path_, "UPDATE buckets SET events = NULL");
  events = store_->ReadBucketEvents(key, Level::kHour, 0, 2 * kHourMs);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ((*events)[0].events, 3u);
  EXPECT_EQ((*events)[2].events, 1u);
  RawSql(path_, "UPDATE buckets SET profile = x'00' WHERE level = 1 AND slice_id = 1");
  events = store_->ReadBucketEvents(key, Level::kHour, 0, 2 * kHourMs);
  EXPECT_EQ(events.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(events.status().message(), HasSubstr("slice 1"));
}

// Why every `level = ?` of the store is `level = CAST(? AS INTEGER)`: with
// the partial index buckets_hour_events a bare parameter makes SQLite
// re-prepare (parse again) the statement each time the level bound
// changes, as a roll-up does row by row.
TEST_F(SqliteStoreTest, LevelParametersDoNotRepreparePerBinding) {
  AddModel();
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto reprepares = [&](const char* level_term) {
    const std::string sql = absl::StrCat(
        "SELECT rowid, profile FROM buckets WHERE model_key = ? AND level = ", level_term,
        " AND bucket_start_ms = ? AND slice_id = ?");
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
              SQLITE_OK);
    for (int level : {1, 2, 1, 2}) {
      sqlite3_bind_int64(stmt, 1, 1);
      sqlite3_bind_int64(stmt, 2, level);
      sqlite3_bind_int64(stmt, 3, 0);
      sqlite3_bind_int64(stmt, 4, 0);
      while (sqlite3_step(stmt) == SQLITE_ROW) {
      }
      sqlite3_reset(stmt);
    }
    const int n = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0);
    sqlite3_finalize(stmt);
    return n;
  };
  EXPECT_GT(reprepares("?"), 0);  // the pitfall
  EXPECT_EQ(reprepares("CAST(? AS INTEGER)"), 0);
  sqlite3_close(db);
  Reopen();
}

TEST_F(SqliteStoreTest, RollupWithoutALayoutIsInvalid) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.rollups = {Bucket(key, Level::kHour, 0, 0, TestProfile({1}))};
  absl::Status status = store_->Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("no layout"));
  EXPECT_THAT(*store_->ReadBuckets(key, Level::kHour, 0, kDayMs, {}), IsEmpty());
}

TEST_F(SqliteStoreTest, FailingMergeRollsBackTheWholeBatch) {
  int64_t key = AddModel();
  FlushBatch first;
  // A stored day row that is not a profile of the layout: a merge into it fails.
  first.rollups = {Bucket(key, Level::kDay, 0, 0, "stored")};
  WithLayout(&first, key);
  first.progress = {{key, 1'000, 500}};
  ASSERT_TRUE(store_->Commit(first).ok());

  Reopen();
  FlushBatch batch;
  WithLayout(&batch, key);
  batch.new_slices = {{key, 3, 0, "x"}};
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "m")};
  batch.rollups = {Bucket(key, Level::kHour, 0, 0, TestProfile({1})),  // inserted, then undone
                   Bucket(key, Level::kDay, 0, 0, TestProfile({2}))};
  batch.dedup = {{key, 0, "hhhhhhhh"}};
  batch.raw_events = {RawEvent(key, "e", 1, "p")};
  batch.progress = {{key, 9'000, 8'000}};
  absl::Status status = store_->Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("stored profile"));
  EXPECT_THAT(status.message(), HasSubstr("commit flush"));
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("merge model ", key, " level 2 bucket 0")));

  EXPECT_THAT(*store_->ListSlices(key), IsEmpty());
  EXPECT_THAT(*store_->ReadBuckets(key, Level::kMinute, 0, kDayMs, {}), IsEmpty());
  EXPECT_THAT(*store_->ReadBuckets(key, Level::kHour, 0, kDayMs, {}), IsEmpty());
  EXPECT_THAT(Profiles(*store_->ReadBuckets(key, Level::kDay, 0, kDayMs, {})),
              ElementsAre("stored"));
  EXPECT_THAT(*store_->ReadDedup(key, 0), IsEmpty());
  EXPECT_THAT(*store_->ReadRawEvents(key, 0, kDayMs, 10), IsEmpty());
  EXPECT_EQ(GetModel(key).watermark_ms, 1'000);
  EXPECT_EQ(GetModel(key).closed_until_ms, 500);

  // The store is still usable after the rollback.
  FlushBatch ok;
  ok.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "after")};
  EXPECT_TRUE(store_->Commit(ok).ok());
}

TEST_F(SqliteStoreTest, ProgressNeverMovesBackwards) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.progress = {{key, 10'000, 6'000}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  batch.progress = {{key, 5'000, 7'000}};  // a stale watermark, a newer close
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(GetModel(key).watermark_ms, 10'000);
  EXPECT_EQ(GetModel(key).closed_until_ms, 7'000);
  batch.progress = {{key, 0, 0}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  EXPECT_EQ(GetModel(key).watermark_ms, 10'000);
  EXPECT_EQ(GetModel(key).closed_until_ms, 7'000);
}

TEST_F(SqliteStoreTest, ReadProgressIsTheCommittedProgress) {
  int64_t key = AddModel();
  auto fresh = store_->ReadProgress(key);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->watermark_ms, 0);
  FlushBatch batch;
  batch.progress = {{key, 10'000, 6'000}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  auto progress = store_->ReadProgress(key);
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->watermark_ms, 10'000);
  EXPECT_EQ(progress->closed_until_ms, 6'000);
  EXPECT_EQ(store_->ReadProgress(key + 100).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, ProgressForUnknownModelFailsTheBatch) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "m")};
  batch.progress = {{key + 100, 1, 1}};
  EXPECT_EQ(store_->Commit(batch).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(*store_->ReadBuckets(key, Level::kMinute, 0, kDayMs, {}), IsEmpty());
}

TEST_F(SqliteStoreTest, RowsOfTheWrongLevelAreInvalid) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.minute_upserts = {Bucket(key, Level::kHour, 0, 0, "m")};
  EXPECT_EQ(store_->Commit(batch).code(), absl::StatusCode::kInvalidArgument);
  batch.minute_upserts.clear();
  batch.rollups = {Bucket(key, Level::kMinute, 0, 0, "m")};
  WithLayout(&batch, key);
  EXPECT_EQ(store_->Commit(batch).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadBuckets(key, static_cast<Level>(7), 0, 1, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, SlicesMayBeResentButNotRedefined) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.new_slices = {{key, 1, 0, "FR"}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  ASSERT_TRUE(store_->Commit(batch).ok());  // a retried flush
  batch.new_slices = {{key, 1, 0, "DE"}};
  absl::Status status = store_->Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("slice 1"));
  ASSERT_EQ(store_->ListSlices(key)->size(), 1u);
  EXPECT_EQ((*store_->ListSlices(key))[0].value, "FR");
}

// --- Reads -------------------------------------------------------------------

TEST_F(SqliteStoreTest, ReadBucketsOrdersAndFilters) {
  int64_t key = AddModel();
  int64_t other = AddModel("other");
  FlushBatch batch;
  // Inserted out of order on purpose.
  for (int64_t start : {2 * kMinuteMs, 0L, kMinuteMs, 3 * kMinuteMs}) {
    for (int32_t slice : {2, 0, 1}) {
      batch.minute_upserts.push_back(Bucket(key, Level::kMinute, start, slice, "p"));
    }
  }
  batch.minute_upserts.push_back(Bucket(other, Level::kMinute, kMinuteMs, 0, "other"));
  batch.rollups.push_back(Bucket(key, Level::kHour, 0, 0, TestProfile({7})));
  WithLayout(&batch, key);
  ASSERT_TRUE(store_->Commit(batch).ok());

  auto all = store_->ReadBuckets(key, Level::kMinute, kMinuteMs, 3 * kMinuteMs, {});
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Keys(*all),
              ElementsAre(Pair(kMinuteMs, 0), Pair(kMinuteMs, 1), Pair(kMinuteMs, 2),
                          Pair(2 * kMinuteMs, 0), Pair(2 * kMinuteMs, 1), Pair(2 * kMinuteMs, 2)));
  auto filtered = store_->ReadBuckets(key, Level::kMinute, 0, kHourMs, {2, 0, 9});
  ASSERT_TRUE(filtered.ok());
  EXPECT_THAT(Keys(*filtered),
              ElementsAre(Pair(0, 0), Pair(0, 2), Pair(kMinuteMs, 0), Pair(kMinuteMs, 2),
                          Pair(2 * kMinuteMs, 0), Pair(2 * kMinuteMs, 2), Pair(3 * kMinuteMs, 0),
                          Pair(3 * kMinuteMs, 2)));
  EXPECT_THAT(Profiles(*store_->ReadBuckets(key, Level::kHour, 0, kDayMs, {})),
              ElementsAre(TestProfile({7})));
  EXPECT_THAT(*store_->ReadBuckets(key, Level::kMinute, kMinuteMs, kMinuteMs, {}), IsEmpty());
  EXPECT_THAT(*store_->ReadBuckets(key, Level::kDay, 0, kDayMs, {}), IsEmpty());
  EXPECT_THAT(Profiles(*store_->ReadBuckets(other, Level::kMinute, 0, kDayMs, {})),
              ElementsAre("other"));
}

TEST_F(SqliteStoreTest, DedupChunksAreDroppedWithTheirBucket) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.dedup = {{key, 0, "A1"}, {key, kMinuteMs, "B1"}, {key, 0, "A2"}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  auto chunks = store_->ReadDedup(key, 0);
  ASSERT_TRUE(chunks.ok());
  std::vector<std::string> hashes;
  for (const DedupChunk& c : *chunks) hashes.push_back(c.hashes);
  EXPECT_THAT(hashes, ElementsAre("A1", "A2", "B1"));
  EXPECT_EQ(store_->ReadDedup(key, kMinuteMs)->size(), 1u);

  FlushBatch close;
  close.drop_dedup = {{key, 0}};
  close.dedup = {{key, 2 * kMinuteMs, "C1"}};
  ASSERT_TRUE(store_->Commit(close).ok());
  chunks = store_->ReadDedup(key, 0);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 2u);
  EXPECT_EQ((*chunks)[0].bucket_start_ms, kMinuteMs);
  EXPECT_EQ((*chunks)[1].hashes, "C1");
}

TEST_F(SqliteStoreTest, RawEventsInsertOrIgnoreAndRead) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.raw_events = {RawEvent(key, "b", 20, "first-b"), RawEvent(key, "a", 20, "a"),
                      RawEvent(key, "c", 5, "c"), RawEvent(key, "late", 1000, "late")};
  ASSERT_TRUE(store_->Commit(batch).ok());
  batch.raw_events = {RawEvent(key, "b", 20, "second-b")};  // a retried event
  ASSERT_TRUE(store_->Commit(batch).ok());

  auto events = store_->ReadRawEvents(key, 0, 1000, 10);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> ids;
  for (const RawEventRow& e : *events) ids.push_back(e.event_id);
  EXPECT_THAT(ids, ElementsAre("c", "a", "b"));
  EXPECT_EQ((*events)[2].event, "first-b");
  EXPECT_EQ(store_->ReadRawEvents(key, 0, 2000, 2)->size(), 2u);
  EXPECT_EQ(store_->ReadRawEvents(key, 0, 2000, 0).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto deleted = store_->DeleteRawEvents(key, {"a", "zzz", "late"});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
  EXPECT_EQ(store_->ReadRawEvents(key, 0, 2000, 10)->size(), 2u);
}

TEST_F(SqliteStoreTest, RetentionDeletesPerLevelAndKind) {
  int64_t key = AddModel();
  const int64_t now = 500 * kDayMs;
  RetentionPolicy policy;  // 2 d minutes, 35 d hours, 400 d days, 7 d raw
  FlushBatch batch;
  batch.minute_upserts = {Bucket(key, Level::kMinute, now - 3 * kDayMs, 0, "old"),
                          Bucket(key, Level::kMinute, now - kDayMs, 0, "new")};
  batch.rollups = {Bucket(key, Level::kHour, now - 36 * kDayMs, 0, "old"),
                   Bucket(key, Level::kHour, now - 3 * kDayMs, 0, "new"),
                   Bucket(key, Level::kDay, now - 401 * kDayMs, 0, "old"),
                   Bucket(key, Level::kDay, now - 36 * kDayMs, 0, "new")};
  WithLayout(&batch, key);  // each is inserted: nothing to merge with
  batch.dedup = {{key, now - 3 * kDayMs, "stale"}, {key, now - kMinuteMs, "open"}};
  batch.raw_events = {RawEvent(key, "old", now - 8 * kDayMs, "x"),
                      RawEvent(key, "new", now - kDayMs, "y")};
  ASSERT_TRUE(store_->Commit(batch).ok());

  auto deleted = store_->ApplyRetention(policy, now);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 5);
  for (Level level : {Level::kMinute, Level::kHour, Level::kDay}) {
    EXPECT_THAT(Profiles(*store_->ReadBuckets(key, level, 0, now, {})), ElementsAre("new"));
  }
  EXPECT_EQ(store_->ReadDedup(key, 0)->size(), 1u);
  EXPECT_EQ((*store_->ReadRawEvents(key, 0, now, 10))[0].event_id, "new");
  EXPECT_EQ(*store_->ApplyRetention(policy, now), 0);

  // Non-positive ages keep everything.
  RetentionPolicy keep{0, 0, -1, 0};
  EXPECT_EQ(*store_->ApplyRetention(keep, now + 1000 * kDayMs), 0);
}

TEST_F(SqliteStoreTest, ArrivalCountsAddUpAndAgeWithMinutes) {
  int64_t key = AddModel();
  int64_t other = AddModel("other");
  const int64_t now = 500 * kDayMs;
  FlushBatch batch;
  batch.arrivals = {{key, now - 3 * kDayMs, 1, 0, 1},
                    {key, now - 2 * kMinuteMs, 2, 1, 4},
                    {other, now - 2 * kMinuteMs, 100, 100, 100}};
  ASSERT_TRUE(store_->Commit(batch).ok());
  batch.arrivals = {{key, now - 2 * kMinuteMs, 3, 0, 0}, {key, now - kMinuteMs, 0, 5, 5}};
  ASSERT_TRUE(store_->Commit(batch).ok());

  auto window = store_->ReadArrivalCounts(key, now - kHourMs, now);
  ASSERT_TRUE(window.ok()) << window.status();
  EXPECT_EQ(window->duplicates, 5u);  // 2 + 3 in one minute, added
  EXPECT_EQ(window->too_late, 6u);
  EXPECT_EQ(window->rejected, 9u);
  EXPECT_EQ(store_->ReadArrivalCounts(key, now - kMinuteMs, now)->rejected, 5u);  // end exclusive
  EXPECT_EQ(store_->ReadArrivalCounts(key, now, now - kHourMs)->rejected, 0u);
  EXPECT_EQ(store_->ReadArrivalCounts(key, 0, now)->duplicates, 6u);

  RetentionPolicy policy;  // 2 d minutes
  ASSERT_TRUE(store_->ApplyRetention(policy, now).ok());
  EXPECT_EQ(store_->ReadArrivalCounts(key, 0, now)->duplicates, 5u);
}

// --- Label counts per source (v8) ---------------------------------------------

// The source of each pending label, and per-source counts added up per
// model, arrival minute and source; read back as sums over a range, one
// row per source, by source.
TEST_F(SqliteStoreTest, LabelSourceCountsAddUpPerMinuteAndSourceAndComeBackBySource) {
  int64_t key = AddModel();
  int64_t other = AddModel("other");
  const int64_t now = 500 * kDayMs;
  LabelCommit commit;
  commit.pending_upserts = {{key, 7, 1.0, now - kMinuteMs, now, "pipeline-b"},
                            {key, 8, 0.0, now - kMinuteMs, now, ""}};
  commit.counts = {{key, now - 2 * kMinuteMs}};
  commit.counts[0].joined = 5;
  commit.source_counts = {{key, now - 2 * kMinuteMs, "pipeline-a", 5, 0, 0},
                          {key, now - 2 * kMinuteMs, "pipeline-b", 0, 1, 2},
                          {key, now - kMinuteMs, "", 1, 0, 0},
                          {other, now - 2 * kMinuteMs, "pipeline-a", 100, 100, 100}};
  ASSERT_TRUE(store_->CommitLabels(commit).ok());
  commit = LabelCommit();
  commit.source_counts = {{key, now - 2 * kMinuteMs, "pipeline-b", 0, 3, 0},  // added
                          {key, now - kMinuteMs, "pipeline-a", 2, 0, 1}};
  ASSERT_TRUE(store_->CommitLabels(commit).ok());
  Reopen();

  auto pending = store_->ReadPendingLabels(key);
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::map<uint64_t, std::string> sources;
  for (const PendingLabelRow& p : *pending) sources[p.hash] = p.source;
  EXPECT_THAT(sources, ElementsAre(Pair(7u, "pipeline-b"), Pair(8u, "")));
  EXPECT_EQ(store_->ReadLabelCounts(key, 0, now)->joined, 5u);

  auto window = store_->ReadSourceLabelCounts(key, now - kHourMs, now);
  ASSERT_TRUE(window.ok()) << window.status();
  auto flat = [](const std::vector<SourceLabelCounts>& rows) {
    std::vector<std::string> out;
    for (const SourceLabelCounts& r : rows) {
      out.push_back(absl::StrCat(r.source, ":", r.joined, "/", r.orphan, "/", r.pending));
    }
    return out;
  };
  EXPECT_THAT(flat(*window), ElementsAre(":1/0/0", "pipeline-a:7/0/1", "pipeline-b:0/4/2"));
  EXPECT_EQ((*window)[1].model_key, key);
  // End exclusive; an empty or inverted range has no rows.
  EXPECT_THAT(flat(*store_->ReadSourceLabelCounts(key, now - 2 * kMinuteMs, now - kMinuteMs)),
              ElementsAre("pipeline-a:5/0/0", "pipeline-b:0/4/2"));
  EXPECT_THAT(*store_->ReadSourceLabelCounts(key, now, now - kHourMs), IsEmpty());
  EXPECT_THAT(flat(*store_->ReadSourceLabelCounts(other, 0, now)),
              ElementsAre("pipeline-a:100/100/100"));
  EXPECT_THAT(*store_->ReadSourceLabelCounts(other + 1, 0, now), IsEmpty());
}

// Kept as long as the model-level label counts (RetentionPolicy::quality_ms).
TEST_F(SqliteStoreTest, LabelSourceCountsAgeWithTheLabelCounts) {
  int64_t key = AddModel();
  const int64_t now = 500 * kDayMs;
  LabelCommit commit;
  commit.counts = {{key, now - 36 * kDayMs}, {key, now - kDayMs}};
  commit.source_counts = {{key, now - 36 * kDayMs, "a", 1, 0, 0},
                          {key, now - kDayMs, "a", 0, 1, 0},
                          {key, now - kDayMs, "b", 0, 0, 1}};
  ASSERT_TRUE(store_->CommitLabels(commit).ok());
  RetentionPolicy policy;  // 35 d of quality and label counts
  auto deleted = store_->ApplyRetention(policy, now);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2);  // a label_counts row and a label_source_counts row
  auto left = store_->ReadSourceLabelCounts(key, 0, now);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].source, "a");
  EXPECT_EQ((*left)[0].joined, 0u);
  EXPECT_EQ((*left)[0].orphan, 1u);
}

// A file of schema v7 (before label sources): its pending labels come
// back with source "", and it takes per-source counts after migrating.
TEST_F(SqliteStoreTest, SchemaV7FileMigratesToLabelSources) {
  int64_t key = AddModel();
  store_.reset();
  // Back to v7 on disk: what v8 added goes, and a pending label as v7 wrote it.
  RawSql(path_, "DROP TABLE label_source_counts");
  RawSql(path_, "ALTER TABLE pending_labels DROP COLUMN source");
  RawSql(path_, "DELETE FROM schema_migrations WHERE version >= 8");
  RawSql(path_, "DROP INDEX buckets_hour_events");
  RawSql(path_, "ALTER TABLE buckets DROP COLUMN events");
  RawSql(path_, absl::StrCat("INSERT INTO pending_labels (model_key, hash, value, label_time_ms, "
                             "received_ms) VALUES (",
                             key, ", 42, 1.0, 1000, 2000)"));
  ASSERT_EQ(RawSql(path_, "SELECT group_concat(version) FROM schema_migrations"), "1,2,3,4,5,6,7");
  Reopen();
  EXPECT_EQ(RawSql(path_, "SELECT group_concat(version) FROM schema_migrations"),
            "1,2,3,4,5,6,7,8,9");
  auto pending = store_->ReadPendingLabels(key);
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].hash, 42u);
  EXPECT_EQ((*pending)[0].received_ms, 2000);
  EXPECT_EQ((*pending)[0].source, "");
  LabelCommit commit;
  commit.pending_upserts = {{key, 43, 0.0, 1000, 3000, "crm"}};
  commit.source_counts = {{key, 0, "crm", 0, 0, 1}};
  ASSERT_TRUE(store_->CommitLabels(commit).ok());
  EXPECT_EQ(store_->ReadPendingLabels(key)->size(), 2u);
  auto counts = store_->ReadSourceLabelCounts(key, 0, kMinuteMs);
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ((*counts)[0].source, "crm");
  EXPECT_EQ((*counts)[0].pending, 1u);
}

TEST_F(SqliteStoreTest, BaselinesReplaceByName) {
  int64_t key = AddModel();
  ASSERT_TRUE(store_->PutBaseline({key, "training", "spec1", "", 1}).ok());
  ASSERT_TRUE(store_->PutBaseline({key, "last-week", "spec2", "prof", 2}).ok());
  ASSERT_TRUE(store_->PutBaseline({key, "training", "spec3", "prof3", 3}).ok());
  EXPECT_EQ(store_->PutBaseline({key, "", "s", "", 1}).code(), absl::StatusCode::kInvalidArgument);
  auto baselines = store_->ListBaselines(key);
  ASSERT_TRUE(baselines.ok());
  ASSERT_EQ(baselines->size(), 2u);
  EXPECT_EQ((*baselines)[0].name, "last-week");
  EXPECT_EQ((*baselines)[0].profile, "prof");
  EXPECT_EQ((*baselines)[1].name, "training");
  EXPECT_EQ((*baselines)[1].spec, "spec3");
  EXPECT_EQ((*baselines)[1].created_at_ms, 3);
  EXPECT_THAT(*store_->ListBaselines(key + 1), IsEmpty());
}

// --- Locking -----------------------------------------------------------------

TEST_F(SqliteStoreTest, ForeignWriteLockIsUnavailableAndReadsProceed) {
  int64_t key = AddModel();
  FlushBatch batch;
  batch.minute_upserts = {Bucket(key, Level::kMinute, 0, 0, "v1")};
  ASSERT_TRUE(store_->Commit(batch).ok());

  store_.reset();
  SqliteOptions options;
  options.path = path_;
  options.busy_timeout_ms = 20;
  auto store = OpenSqliteStore(options);
  ASSERT_TRUE(store.ok());

  // Another process holds the write lock with an uncommitted change.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE; UPDATE buckets SET profile = CAST('v2' AS BLOB);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);

  batch.minute_upserts = {Bucket(key, Level::kMinute, kMinuteMs, 0, "blocked")};
  absl::Status status = (*store)->Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("commit flush: database is locked"));
  // Readers see the last committed state, not the foreign transaction.
  EXPECT_THAT(Profiles(*(*store)->ReadBuckets(key, Level::kMinute, 0, kDayMs, {})),
              ElementsAre("v1"));

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE((*store)->Commit(batch).ok());
}

}  // namespace
}  // namespace driftwatch::storage
