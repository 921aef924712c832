// SQLite store flush cost: one Commit of 1000 slices x 12 KB profiles (a
// large model's minute flush), one of 20k minute rows x 600 B (many small
// slices), and the rollup path (read, merge through detectors, update) of
// 1000 ~10.5 KB profiles.
// Time per iteration = one flush; items/s = rows/s.
// Argument: 1 = synchronous FULL, 0 = NORMAL. Files go to $DRIFTWATCH_BENCH_DIR
// or the system temp dir, which must be on the disk being measured.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/storage/store.h"

namespace dd = driftwatch::detectors;
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
    auto store = ds::OpenSqliteStore(options);
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

// A layout whose profiles are ~10.5 KB: 20 numeric features of 64 bins.
std::shared_ptr<const dd::ProfileLayout> RollupLayout() {
  auto layout = std::make_shared<dd::ProfileLayout>();
  std::vector<double> edges;
  for (int i = 1; i < 64; ++i) edges.push_back(i);
  auto shared_edges = std::make_shared<const dd::BinEdges>(*dd::BinEdges::Create(edges));
  for (int f = 0; f < 20; ++f) {
    layout->numeric_names.push_back("f" + std::to_string(f));
    layout->numeric_edges.push_back(shared_edges);
  }
  return layout;
}

// 1000 rollups of ~10.5 KB profiles into existing hour rows: select, merge
// (decode both, add, encode), update.
void BM_CommitRollups(benchmark::State& state) {
  BenchDb db(state.range(0) != 0);
  ds::FlushBatch batch;
  batch.layouts[db.model_key()] = RollupLayout();
  dd::Profile profile(batch.layouts[db.model_key()]);
  for (auto& summary : profile.numeric()) {
    for (int i = 0; i < 64; ++i) summary.Add(i + 0.5);
  }
  const std::string bytes = profile.Serialize();
  for (int32_t s = 0; s < 1000; ++s) {
    batch.rollups.push_back({db.model_key(), ds::Level::kHour, 0, s, bytes});
  }
  RunFlushes(state, db, std::move(batch), bytes.size(), true);
}
BENCHMARK(BM_CommitRollups)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// A volume history's read: two weeks of hour rows (336 hours x 50 slices of
// ~10.5 KB profiles, 176 MB) read for their event counts. Arg 1:
// ReadBucketEvents (the partial covering index buckets_hour_events, no
// blob read); Arg 0: ReadBuckets and each profile's header, what reading
// the counts without the index costs. items/s = rows/s.
void BM_ReadHourEvents(benchmark::State& state) {
  BenchDb db(false);
  if (db.store() == nullptr) {
    state.SkipWithError("cannot open the bench database");
    return;
  }
  constexpr int kHours = 336, kSlices = 50;
  ds::FlushBatch batch;
  batch.layouts[db.model_key()] = RollupLayout();
  dd::Profile profile(batch.layouts[db.model_key()]);
  for (auto& summary : profile.numeric()) {
    for (int i = 0; i < 64; ++i) summary.Add(i + 0.5);
  }
  profile.counters().events = 64;
  const std::string bytes = profile.Serialize();
  for (int h = 0; h < kHours; ++h) {
    batch.rollups.clear();
    for (int32_t s = 0; s < kSlices; ++s) {
      batch.rollups.push_back({db.model_key(), ds::Level::kHour, h * ds::kHourMs, s, bytes});
    }
    if (absl::Status st = db.store()->Commit(batch); !st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
  }
  const bool indexed = state.range(0) != 0;
  uint64_t total = 0;
  for (auto _ : state) {
    total = 0;
    if (indexed) {
      auto rows = db.store()->ReadBucketEvents(db.model_key(), ds::Level::kHour, 0,
                                               kHours * ds::kHourMs);
      if (!rows.ok()) {
        state.SkipWithError(rows.status().ToString().c_str());
        return;
      }
      for (const ds::BucketEvents& r : *rows) total += r.events;
    } else {
      auto rows = db.store()->ReadBuckets(db.model_key(), ds::Level::kHour, 0,
                                          kHours * ds::kHourMs, {});
      if (!rows.ok()) {
        state.SkipWithError(rows.status().ToString().c_str());
        return;
      }
      for (const ds::BucketRow& r : *rows) {
        total += *ds::EventsOfProfile(r.model_key, r.level, r.bucket_start_ms, r.slice_id,
                                      r.profile);
      }
    }
    benchmark::DoNotOptimize(total);
  }
  if (total != static_cast<uint64_t>(kHours) * kSlices * 64) {
    state.SkipWithError("wrong event total");
  }
  state.SetItemsProcessed(state.iterations() * kHours * kSlices);
}
BENCHMARK(BM_ReadHourEvents)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
