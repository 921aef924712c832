// SQLite store flush cost: one Commit of 1000 slices x 12 KB profiles (a
// large model's minute flush), one of 20k minute rows x 600 B (many small
// slices), and the rollup path (read, merge, update) at the 12 KB size.
// Time per iteration = one flush; items/s = rows/s.
// Argument: 1 = synchronous FULL, 0 = NORMAL. Files go to $DRIFTWATCH_BENCH_DIR
// or the system temp dir, which must be on the disk being measured.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "driftwatch/storage/store.h"

namespace ds = driftwatch::storage;

namespace {

// Minute buckets cycled through, so the file reaches a steady size (rows
// are replaced, as retention would free them) instead of growing per run.
constexpr int kBucketRing = 8;

class BenchDb {
 public:
  explicit BenchDb(bool synchronous_full) {
    const char* base = std::getenv("DRIFTWATCH_BENCH_DIR");
    dir_ =
        (base != nullptr ? std::filesystem::path(base) : std::filesystem::temp_directory_path()) /
        ("driftwatch_storage_bench_" + std::to_string(::getpid()));
    ds::SqliteOptions options;
    options.path = (dir_ / "bench.db").string();
    options.synchronous_full = synchronous_full;
    auto store = ds::OpenSqliteStore(
        options,
        [](int64_t, std::string_view, std::string_view added) -> absl::StatusOr<std::string> {
          return std::string(added);  // merge cost is the detectors' business
        });
    if (!store.ok()) return;
    store_ = *std::move(store);
    auto model = store_->PutModel({0, "bench", "v1", "schema", 0, 0, 0});
    if (model.ok()) model_key_ = model->model_key;
  }
  ~BenchDb() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ds::Store* store() const { return store_.get(); }
  int64_t model_key() const { return model_key_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<ds::Store> store_;
  int64_t model_key_ = 0;
};

ds::FlushBatch MinuteBatch(int64_t key, int64_t bucket_ms, int slices, size_t profile_bytes) {
  ds::FlushBatch batch;
  for (int32_t s = 0; s < slices; ++s) {
    batch.minute_upserts.push_back({key, ds::Level::kMinute, bucket_ms, s,
                                    std::string(profile_bytes, static_cast<char>('a' + s % 26))});
  }
  batch.progress.push_back({key, bucket_ms, 0});
  return batch;
}

void RunFlushes(benchmark::State& state, BenchDb& db, ds::FlushBatch batch, size_t bytes_per_row,
                bool rollup) {
  if (db.store() == nullptr) {
    state.SkipWithError("cannot open the bench database");
    return;
  }
  const int64_t rows =
      static_cast<int64_t>(rollup ? batch.rollups.size() : batch.minute_upserts.size());
  int64_t flush = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // Move every row to the next bucket of the ring (not timed).
    const int64_t start = (flush++ % kBucketRing) * (rollup ? ds::kHourMs : ds::kMinuteMs);
    for (auto* rows_of : {&batch.minute_upserts, &batch.rollups}) {
      for (ds::BucketRow& row : *rows_of) row.bucket_start_ms = start;
    }
    state.ResumeTiming();
    absl::Status status = db.store()->Commit(batch);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * rows);
  state.SetBytesProcessed(state.iterations() * rows * static_cast<int64_t>(bytes_per_row));
}

// 1000 slices x 12 KB minute rows per Commit.
void BM_CommitProfiles12KB(benchmark::State& state) {
  BenchDb db(state.range(0) != 0);
  RunFlushes(state, db, MinuteBatch(db.model_key(), 0, 1000, 12 * 1024), 12 * 1024, false);
}
BENCHMARK(BM_CommitProfiles12KB)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// 20k minute rows x 600 B per Commit (one bucket of 20k slices).
void BM_CommitMinuteRows600B(benchmark::State& state) {
  BenchDb db(state.range(0) != 0);
  RunFlushes(state, db, MinuteBatch(db.model_key(), 0, 20'000, 600), 600, false);
}
BENCHMARK(BM_CommitMinuteRows600B)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// 1000 x 12 KB rollups into existing hour rows: select, merge, update.
void BM_CommitRollups12KB(benchmark::State& state) {
  BenchDb db(state.range(0) != 0);
  ds::FlushBatch batch;
  for (int32_t s = 0; s < 1000; ++s) {
    batch.rollups.push_back({db.model_key(), ds::Level::kHour, 0, s, std::string(12 * 1024, 'r')});
  }
  RunFlushes(state, db, std::move(batch), 12 * 1024, true);
}
BENCHMARK(BM_CommitRollups12KB)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
