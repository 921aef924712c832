// The two properties the ingest ack relies on: a committed flush survives
// the process being killed (SIGKILL, no close, no destructor), and readers
// running beside the writer only ever see whole batches.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "driftwatch/storage/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "temp_db.h"

namespace driftwatch::storage {
namespace {

using ::driftwatch::storage::testing::Bucket;
using ::driftwatch::storage::testing::TestProfile;
using ::driftwatch::storage::testing::WithLayout;
using ::driftwatch::storage::testing::Model;
using ::driftwatch::storage::testing::RawEvent;
using ::driftwatch::storage::testing::TempDir;

constexpr int kSlicesPerBatch = 8;

// Batch `i` writes minute bucket i for every slice, one raw event and
// progress up to the end of that minute.
FlushBatch NumberedBatch(int64_t key, int i) {
  FlushBatch batch;
  for (int32_t slice = 0; slice < kSlicesPerBatch; ++slice) {
    batch.minute_upserts.push_back(Bucket(
        key, Level::kMinute, i * kMinuteMs, slice,
        "batch-" + std::to_string(i) + "-" + std::string(2000, static_cast<char>('a' + slice))));
  }
  batch.rollups.push_back(Bucket(key, Level::kHour, 0, 0, TestProfile({static_cast<double>(i)})));
  WithLayout(&batch, key);
  batch.raw_events.push_back(RawEvent(key, "event-" + std::to_string(i), i * kMinuteMs, "p"));
  batch.progress.push_back({key, (i + 1) * kMinuteMs - 1, 0});
  return batch;
}

absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path, bool synchronous_full) {
  SqliteOptions options;
  options.path = path;
  options.synchronous_full = synchronous_full;
  return OpenSqliteStore(options);
}

// Checks every batch in [0, acked) is fully present after a crash.
void ExpectBatchesPresent(Store* store, int64_t key, int acked) {
  auto minutes = store->ReadBuckets(key, Level::kMinute, 0, acked * kMinuteMs, {});
  ASSERT_TRUE(minutes.ok()) << minutes.status();
  ASSERT_EQ(minutes->size(), static_cast<size_t>(acked * kSlicesPerBatch));
  for (const BucketRow& row : *minutes) {
    int i = static_cast<int>(row.bucket_start_ms / kMinuteMs);
    EXPECT_EQ(row.profile.substr(0, row.profile.find('-', 6)), "batch-" + std::to_string(i));
  }
  auto events = store->ReadRawEvents(key, 0, acked * kMinuteMs, 1 << 20);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), static_cast<size_t>(acked));
  auto models = store->ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_GE((*models)[0].watermark_ms, acked * kMinuteMs - 1);
}

class DurabilityTest : public ::testing::TestWithParam<bool> {
 protected:
  int64_t RegisterModel() {
    auto store = Open(path_, GetParam());
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return 0;
    auto model = (*store)->PutModel(Model("m", "v1", "s"));
    EXPECT_TRUE(model.ok());
    return model.ok() ? model->model_key : 0;
  }

  TempDir dir_;
  std::string path_ = dir_.File("crash.db");
};

// The child commits one batch and is killed at once: no close, no
// checkpoint, no destructor. The parent must find the batch.
TEST_P(DurabilityTest, CommitSurvivesSigkillRightAfterReturn) {
  int64_t key = RegisterModel();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = Open(path_, GetParam());
    if (!store.ok() || !(*store)->Commit(NumberedBatch(key, 0)).ok()) _exit(1);
    raise(SIGKILL);
    _exit(2);  // not reached
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
  EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);

  auto store = Open(path_, GetParam());
  ASSERT_TRUE(store.ok()) << store.status();
  ExpectBatchesPresent(store->get(), key, 1);
}

// The child commits in a loop and acks each batch on a pipe only after
// Commit returned; the parent kills it at an arbitrary point (possibly
// mid-commit). Every acked batch must be there after recovery.
TEST_P(DurabilityTest, AckedBatchesSurviveKillMidStream) {
  int64_t key = RegisterModel();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto store = Open(path_, GetParam());
    if (!store.ok()) _exit(1);
    for (int i = 0;; ++i) {
      if (!(*store)->Commit(NumberedBatch(key, i)).ok()) _exit(1);
      if (write(fds[1], &i, sizeof(i)) != sizeof(i)) _exit(1);
    }
  }
  close(fds[1]);
  int acked = 0;
  int i = 0;
  while (acked < 25 && read(fds[0], &i, sizeof(i)) == sizeof(i)) acked = i + 1;
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(wstatus)) << "child failed before the kill";
  // Acks written before the kill are still in the pipe.
  while (read(fds[0], &i, sizeof(i)) == sizeof(i)) acked = i + 1;
  close(fds[0]);
  ASSERT_GE(acked, 25);

  auto store = Open(path_, GetParam());
  ASSERT_TRUE(store.ok()) << store.status();
  ExpectBatchesPresent(store->get(), key, acked);
}

INSTANTIATE_TEST_SUITE_P(Synchronous, DurabilityTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Full" : "Normal";
                         });

// One writer replaces a bucket's rows batch after batch while two readers
// read it: each read is the whole of one batch, never a mix, never an error,
// and versions never go back.
TEST(ConcurrencyTest, ReadersSeeWholeBatchesWhileWriterCommits) {
  TempDir dir;
  auto opened = Open(dir.File("concurrent.db"), /*synchronous_full=*/false);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store* store = opened->get();
  auto model = store->PutModel(Model("m", "v1", "s"));
  ASSERT_TRUE(model.ok());
  const int64_t key = model->model_key;
  constexpr int kSlices = 50;
  constexpr int kVersions = 150;
  auto batch_for = [key](int version) {
    FlushBatch batch;
    for (int32_t slice = 0; slice < kSlices; ++slice) {
      batch.minute_upserts.push_back(
          Bucket(key, Level::kMinute, 0, slice, std::to_string(version) + std::string(500, 'x')));
    }
    batch.progress.push_back({key, version, 0});
    return batch;
  };
  ASSERT_TRUE(store->Commit(batch_for(0)).ok());

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  auto reader = [&]() {
    int last_version = 0;
    int64_t last_watermark = 0;
    while (!done.load()) {
      auto rows = store->ReadBuckets(key, Level::kMinute, 0, kMinuteMs, {});
      ASSERT_TRUE(rows.ok()) << rows.status();
      ASSERT_EQ(rows->size(), static_cast<size_t>(kSlices));
      const std::string& first = (*rows)[0].profile;
      for (const BucketRow& row : *rows) ASSERT_EQ(row.profile, first);
      int version = std::stoi(first);
      ASSERT_GE(version, last_version);
      last_version = version;
      auto models = store->ListModels();
      ASSERT_TRUE(models.ok()) << models.status();
      ASSERT_GE((*models)[0].watermark_ms, last_watermark);
      last_watermark = (*models)[0].watermark_ms;
      reads.fetch_add(1);
    }
  };
  std::thread r1(reader);
  std::thread r2(reader);
  for (int v = 1; v <= kVersions; ++v) {
    absl::Status status = store->Commit(batch_for(v));
    if (!status.ok()) {
      ADD_FAILURE() << status;
      break;
    }
  }
  done.store(true);
  r1.join();
  r2.join();
  EXPECT_GT(reads.load(), 0);
  ::testing::Test::RecordProperty("reads", reads.load());
  auto rows = store->ReadBuckets(key, Level::kMinute, 0, kMinuteMs, {});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(std::stoi((*rows)[0].profile), kVersions);
}

}  // namespace
}  // namespace driftwatch::storage
