#include "driftwatch/service/ingestor.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"

#include "driftwatch/detectors/profile.h"
#include "fake_store.h"
#include "ingest/dedup.h"
#include "internal/log.h"

namespace driftwatch::service {
namespace {

using storage::Level;

constexpr int64_t kT0 = 1'700'000'080'000;  // a minute boundary + 40 s
constexpr int64_t kMinute = 60'000;

v1::ModelSchema Schema(uint32_t platform_cap = 0) {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("fraud");
  s.mutable_model()->set_model_version("v1");
  auto* amount = s.add_features();
  amount->set_name("amount");
  amount->set_kind(v1::FEATURE_KIND_NUMERIC);
  amount->set_nullable(true);
  for (int i = 0; i < 100; ++i) amount->add_reference_sample(i);
  auto* country = s.add_features();
  country->set_name("country");
  country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  auto* key = s.add_slice_keys();
  key->set_key("platform");
  key->set_max_values(platform_cap);
  return s;
}

v1::PredictionEvent Event(const std::string& id, int64_t t, double amount,
                          const std::string& platform = "ios") {
  v1::PredictionEvent e;
  e.set_event_id(id);
  e.set_event_time_ms(t);
  e.add_numeric(amount);
  e.add_categorical("US");
  e.add_scores(0.25);
  e.add_slice_values(platform);
  return e;
}

v1::PredictionBatch Rows(std::vector<v1::PredictionEvent> events) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id("fraud");
  b.mutable_model()->set_model_version("v1");
  for (auto& e : events) *b.mutable_rows()->add_events() = std::move(e);
  return b;
}

class IngestorTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart(); }

  // A fresh registry and Ingestor over the same store: what a process
  // restart sees.
  void Restart() {
    ingestor_.reset();
    registry_.reset();
    if (store_ == nullptr) {
      store_ = std::make_unique<testing::FakeStore>();
    }
    registry_ = std::make_unique<ModelRegistry>(store_.get(), &clock_, RegistryOptions{});
    ASSERT_TRUE(registry_->Recover().ok());
    IngestOptions options;
    options.allowed_lateness_ms = 2 * kMinute;
    options.max_future_skew_ms = 10 * kMinute;
    options.raw_sample_rate = 1.0;
    options.max_dedup_ids = max_dedup_ids_;
    ingestor_ = std::make_unique<Ingestor>(registry_.get(), store_.get(), &clock_, options);
    ASSERT_TRUE(ingestor_->Recover().ok());
    ASSERT_TRUE(registry_->Register(Schema(platform_cap_)).ok());
  }

  // A fresh ingestor on an empty store.
  void Fresh() {
    ingestor_.reset();
    registry_.reset();
    store_.reset();
    Restart();
  }

  IngestCounts Apply(const v1::PredictionBatch& batch) {
    IngestCounts counts;
    absl::StatusOr<uint64_t> seq = ingestor_->Apply(batch, &counts);
    EXPECT_TRUE(seq.ok()) << seq.status();
    return counts;
  }

  // The committed profile of a slice in a minute bucket.
  detectors::Profile Committed(int64_t bucket_start, int32_t slice, Level level = Level::kMinute) {
    auto rows = store_->ReadBuckets(1, level, bucket_start, bucket_start + 1, {slice});
    EXPECT_TRUE(rows.ok());
    EXPECT_EQ(rows->size(), 1u);
    auto p = detectors::Profile::Deserialize(registry_->FindByKey(1)->layout(), rows->at(0).profile);
    EXPECT_TRUE(p.ok()) << p.status();
    return *p;
  }

  base::ManualClock clock_{kT0};
  uint32_t platform_cap_ = 0;
  uint64_t max_dedup_ids_ = IngestOptions().max_dedup_ids;
  std::unique_ptr<testing::FakeStore> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Ingestor> ingestor_;
};

TEST_F(IngestorTest, AcceptsCountsAndFlushesPerSliceProfiles) {
  IngestCounts c = Apply(Rows({Event("a", kT0, 1), Event("b", kT0 + 1, 2, "android"),
                               Event("c", kT0 + 2, 3)}));
  EXPECT_EQ(c.accepted, 3u);
  EXPECT_EQ(c.rejected, 0u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  const int64_t bucket = kT0 - 40'000;
  EXPECT_EQ(Committed(bucket, 0).counters().events, 3u);  // "*"
  auto ios = registry_->FindSlice(Schema().model(), "platform", "ios");
  auto android = registry_->FindSlice(Schema().model(), "platform", "android");
  ASSERT_TRUE(ios && android);
  EXPECT_EQ(Committed(bucket, *ios).counters().events, 2u);
  detectors::Profile a = Committed(bucket, *android);
  EXPECT_EQ(a.counters().events, 1u);
  EXPECT_DOUBLE_EQ(a.numeric()[0].mean(), 2.0);
  EXPECT_DOUBLE_EQ(a.scores()[0].mean(), 0.25);
  EXPECT_EQ(store_->raw_events(), 3u);  // raw_sample_rate 1 keeps all
}

TEST_F(IngestorTest, RetriedBatchIsNeverCountedTwice) {
  auto batch = Rows({Event("a", kT0, 1), Event("b", kT0, 2), Event("a", kT0, 1)});
  IngestCounts first = Apply(batch);
  EXPECT_EQ(first.accepted, 2u);
  EXPECT_EQ(first.duplicates, 1u);
  IngestCounts retry = Apply(batch);
  EXPECT_EQ(retry.accepted, 0u);
  EXPECT_EQ(retry.duplicates, 3u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(Committed(kT0 - 40'000, 0).counters().events, 2u);
}

TEST_F(IngestorTest, DedupSurvivesRestart) {
  Apply(Rows({Event("a", kT0, 1), Event("b", kT0, 2)}));
  ASSERT_TRUE(ingestor_->Flush().ok());
  Restart();
  IngestCounts retry = Apply(Rows({Event("a", kT0, 1), Event("b", kT0, 2), Event("c", kT0, 3)}));
  EXPECT_EQ(retry.duplicates, 2u);
  EXPECT_EQ(retry.accepted, 1u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  // The reloaded open bucket kept its counts: 2 before + 1 after.
  EXPECT_EQ(Committed(kT0 - 40'000, 0).counters().events, 3u);
}

TEST_F(IngestorTest, UnflushedEventsAreLostOnCrashAndTheRetryCountsThemOnce) {
  Apply(Rows({Event("a", kT0, 1)}));
  ASSERT_TRUE(ingestor_->Flush().ok());
  Apply(Rows({Event("b", kT0, 2)}));  // never acked: no flush before the "crash"
  // A crash: the store keeps only what was committed. Simulate by
  // dropping the ingestor without its destructor's final flush.
  store_->FailCommits(1);
  ingestor_.reset();
  Restart();
  IngestCounts retry = Apply(Rows({Event("a", kT0, 1), Event("b", kT0, 2)}));
  EXPECT_EQ(retry.duplicates, 1u);
  EXPECT_EQ(retry.accepted, 1u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(Committed(kT0 - 40'000, 0).counters().events, 2u);
}

TEST_F(IngestorTest, LateEventsAreAcceptedBackfilledOrTooLate) {
  Apply(Rows({Event("now", kT0, 1)}));
  // 30 s behind the watermark: late but its bucket is open.
  IngestCounts late = Apply(Rows({Event("late", kT0 - 30'000, 1)}));
  EXPECT_EQ(late.accepted, 1u);
  EXPECT_EQ(late.late_accepted, 1u);
  EXPECT_EQ(late.backfilled, 0u);
  // Five minutes on, the first bucket (end + 2 min lateness) closes at the
  // flush; an event for it is then merged in as a delta.
  clock_.Advance(5 * kMinute);
  Apply(Rows({Event("later", kT0 + 5 * kMinute, 1)}));
  ASSERT_TRUE(ingestor_->Flush().ok());
  const int64_t bucket = kT0 - 40'000;
  auto model = registry_->Find(Schema().model());
  ASSERT_TRUE(model.ok());
  EXPECT_GT((*model)->progress().closed_until_ms, bucket);
  IngestCounts backfilled = Apply(Rows({Event("old", kT0 - 10'000, 1)}));
  EXPECT_EQ(backfilled.accepted, 1u);
  EXPECT_EQ(backfilled.backfilled, 1u);
  EXPECT_EQ(backfilled.late_accepted, 1u);
  // A retry of it is a duplicate, even re-stamped into another bucket.
  EXPECT_EQ(Apply(Rows({Event("old", kT0 - 10'000, 1)})).duplicates, 1u);
  EXPECT_EQ(Apply(Rows({Event("old", kT0 + 5 * kMinute, 1)})).duplicates, 1u);
  // Older than the backfill horizon (2 days): too late, with what to do.
  IngestCounts too_late = Apply(Rows({Event("ancient", kT0 - 3 * storage::kDayMs, 1)}));
  EXPECT_EQ(too_late.accepted, 0u);
  EXPECT_EQ(too_late.too_late, 1u);
  EXPECT_EQ(too_late.rejected, 1u);
  EXPECT_EQ(too_late.reasons.at("too_late").example_event_id, "ancient");
  EXPECT_NE(too_late.reasons.at("too_late").message.find("ingest.backfill_horizon"),
            std::string::npos);
  EXPECT_NE(too_late.reasons.at("too_late").message.find("2023-11-11T22:14:40.000Z"),
            std::string::npos)
      << too_late.reasons.at("too_late").message;
  // Frozen baselines of closed buckets re-freeze once a backfill of the
  // model is committed (the generation moves at the commit, not before).
  const uint64_t generation = (*model)->backfill_generation();
  store_->FailCommits(1);
  EXPECT_FALSE(ingestor_->Flush().ok());
  EXPECT_EQ((*model)->backfill_generation(), generation);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ((*model)->backfill_generation(), generation + 1);
  // The closed minute and its hour hold all three of its events.
  const int64_t hour = bucket - bucket % storage::kHourMs;
  EXPECT_EQ(Committed(bucket, 0).counters().events, 3u);
  detectors::Profile rolled = Committed(hour, 0, Level::kHour);
  EXPECT_EQ(rolled.counters().events, 3u);
  EXPECT_EQ(rolled.counters().late_accepted, 2u);
}

// Past max_dedup_ids a flush first closes the oldest open bucket early,
// and once its ids are durable evicts them from memory; an event for that
// bucket then loads them back from storage, so nothing counts twice.
TEST_F(IngestorTest, DedupCapEvictsClosedBucketsAndLoadsThemBackForBackfill) {
  max_dedup_ids_ = 3;
  Fresh();
  const int64_t b0 = kT0 - 40'000;
  const int64_t b1 = b0 + kMinute;
  IngestCounts c = Apply(Rows({Event("a", kT0, 1), Event("b", kT0, 2), Event("c", kT0 + kMinute, 3),
                               Event("d", kT0 + kMinute, 4)}));
  EXPECT_EQ(c.accepted, 4u);
  // 4 ids in open buckets: the flush closes b0 early.
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(ingestor_->totals().early_closes.load(), 1u);
  auto model = registry_->Find(Schema().model());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->progress().closed_until_ms, b1);
  // b0's ids are durable now: the next flush evicts them.
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(ingestor_->totals().evicted_buckets.load(), 1u);
  // A retry of b0's events loads its ids back: duplicates, not counted;
  // a new event of b0 is backfilled.
  const int reads = store_->dedup_reads();
  c = Apply(Rows({Event("a", kT0, 1), Event("b", kT0, 2), Event("e", kT0, 5)}));
  EXPECT_EQ(store_->dedup_reads(), reads + 1);
  EXPECT_EQ(ingestor_->totals().loaded_buckets.load(), 1u);
  EXPECT_EQ(c.duplicates, 2u);
  EXPECT_EQ(c.accepted, 1u);
  EXPECT_EQ(c.backfilled, 1u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(ingestor_->open_buckets(), 1u);
  EXPECT_EQ(Committed(b0, 0).counters().events, 3u);
  EXPECT_EQ(Committed(b0 - b0 % storage::kHourMs, 0, Level::kHour).counters().events, 3u);
  EXPECT_EQ(Committed(b1, 0).counters().events, 2u);
  // After a restart: the open bucket's ids come back at recovery, b0's on
  // first use.
  Restart();
  c = Apply(Rows({Event("b", kT0, 2), Event("c", kT0 + kMinute, 3), Event("e", kT0, 5)}));
  EXPECT_EQ(c.duplicates, 3u);
  EXPECT_EQ(c.accepted, 0u);
}

// Events with dyadic values and weights, so that every sum a profile
// keeps is exact and the order of additions cannot change a bit: an hour
// from kT0, three platforms.
std::vector<v1::PredictionEvent> DyadicHour(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<v1::PredictionEvent> events;
  for (int i = 0; i < n; ++i) {
    const int64_t t = kT0 + static_cast<int64_t>(rng() % (60 * kMinute));
    const char* platforms[] = {"ios", "android", "web"};
    v1::PredictionEvent e =
        Event(absl::StrCat("h", i), t, static_cast<double>(rng() % 8000) / 8, platforms[rng() % 3]);
    e.set_scores(0, static_cast<double>(rng() % 64) / 64);
    e.set_sample_rate(std::array{1.0, 0.5, 0.25}[rng() % 3]);
    if (rng() % 10 == 0) e.set_numeric(0, std::nan(""));
    events.push_back(std::move(e));
  }
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.event_time_ms() < b.event_time_ms();
  });
  return events;
}

class HistoryTest : public IngestorTest {
 protected:
  // Every stored row, its late counter zeroed: "late" records the arrival
  // order, which is what these tests vary; every other byte must match.
  // Keyed by slice value: slice ids follow the order values first arrive.
  using RowKey = std::tuple<int64_t, int, int64_t, std::string>;
  std::map<RowKey, std::string> Rows_() {
    std::map<RowKey, std::string> out;
    auto layout = registry_->FindByKey(1)->layout();
    std::map<int32_t, std::string> values;
    for (const auto& slice : registry_->Slices(Schema().model())) values[slice.slice_id] = slice.value;
    for (const auto& [key, row] : store_->bucket_rows()) {
      auto p = detectors::Profile::Deserialize(layout, row.profile);
      EXPECT_TRUE(p.ok()) << p.status();
      p->counters().late_accepted = 0;
      // The data-quality section records how the history arrived
      // (lateness, duplicates, receive times): exactly what these tests
      // vary. A bucket that only ever saw duplicates keeps their count.
      p->quality() = detectors::DataQuality();
      if (p->counters().events == 0) continue;
      out[{row.model_key, static_cast<int>(row.level), row.bucket_start_ms, values[row.slice_id]}] =
          p->Serialize();
    }
    return out;
  }
  // Pushes `events` in batches of `batch` in the given order, the clock at
  // each batch's newest event plus `delay` (never moving back), flushing
  // every 10 batches; then lets every bucket close.
  IngestCounts Push(const std::vector<v1::PredictionEvent>& events, size_t batch, int64_t delay) {
    IngestCounts total;
    for (size_t i = 0; i < events.size(); i += batch) {
      std::vector<v1::PredictionEvent> part(events.begin() + i,
                                            events.begin() + std::min(events.size(), i + batch));
      int64_t newest = 0;
      for (const auto& e : part) newest = std::max(newest, e.event_time_ms());
      if (newest + delay > clock_.NowMs()) clock_.Advance(newest + delay - clock_.NowMs());
      total.Merge(Apply(Rows(part)));
      if ((i / batch) % 10 == 9) {
        EXPECT_TRUE(ingestor_->Flush().ok());
      }
    }
    return total;
  }
  // Names what differs instead of printing every byte.
  static std::string Diff(const std::map<RowKey, std::string>& got,
                          const std::map<RowKey, std::string>& want) {
    std::string out;
    int shown = 0;
    for (const auto& [key, bytes] : want) {
      auto it = got.find(key);
      const auto& [m, level, start, slice] = key;
      if (it == got.end()) {
        absl::StrAppend(&out, "missing level ", level, " bucket ", start, " slice ", slice, "\n");
      } else if (it->second != bytes) {
        absl::StrAppend(&out, "differs level ", level, " bucket ", start, " slice ", slice, "\n");
      } else {
        continue;
      }
      if (++shown == 5) break;
    }
    for (const auto& [key, bytes] : got) {
      if (!want.contains(key)) absl::StrAppend(&out, "extra level ", std::get<1>(key), " bucket ",
                                               std::get<2>(key), " slice ", std::get<3>(key), "\n");
    }
    return out;
  }
  void CloseEverything() {
    EXPECT_TRUE(ingestor_->Flush().ok());
    clock_.Advance(10 * kMinute);
    EXPECT_TRUE(ingestor_->Flush().ok());
    EXPECT_EQ(ingestor_->open_buckets(), 0u);
  }
};

TEST_F(HistoryTest, ShuffledReplayedAndLateHistoryStoreTheSameBytesAsInOrder) {
  const std::vector<v1::PredictionEvent> hour = DyadicHour(3000, 7);
  Fresh();
  EXPECT_EQ(Push(hour, 50, 1000).accepted, hour.size());
  CloseEverything();
  const auto in_order = Rows_();
  ASSERT_GT(in_order.size(), 60u * 3);  // minutes x slices, hours, days

  // Shuffled, arriving as late as the end of the hour: most buckets close
  // while their events still come, which are then backfilled.
  std::vector<v1::PredictionEvent> shuffled = hour;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(11));
  Fresh();
  IngestCounts c = Push(shuffled, 50, 0);
  EXPECT_EQ(c.accepted, hour.size());
  EXPECT_GT(c.backfilled, hour.size() / 2);
  CloseEverything();
  EXPECT_EQ(Diff(Rows_(), in_order), "");

  // History pushed after current traffic: the second half first, then the
  // first half, an hour later.
  Fresh();
  std::vector<v1::PredictionEvent> second(hour.begin() + hour.size() / 2, hour.end());
  std::vector<v1::PredictionEvent> first(hour.begin(), hour.begin() + hour.size() / 2);
  Push(second, 50, 1000);
  CloseEverything();
  clock_.Advance(60 * kMinute);
  c = Push(first, 50, 0);
  EXPECT_EQ(c.accepted, first.size());
  EXPECT_EQ(c.backfilled, first.size());
  EXPECT_EQ(c.too_late, 0u);
  CloseEverything();
  EXPECT_EQ(Diff(Rows_(), in_order), "");

  // A replayed hour (a day later) counts only duplicates and changes
  // nothing; so does a retry re-stamped with new event times.
  clock_.Advance(storage::kDayMs);
  c = Push(hour, 100, 0);
  EXPECT_EQ(c.accepted, 0u);
  EXPECT_EQ(c.duplicates, hour.size());
  std::vector<v1::PredictionEvent> restamped = hour;
  for (auto& e : restamped) e.set_event_time_ms(clock_.NowMs() - 1000);
  c = Push(restamped, 100, 0);
  EXPECT_EQ(c.accepted, 0u);
  EXPECT_EQ(c.duplicates, hour.size());
  CloseEverything();
  EXPECT_EQ(Diff(Rows_(), in_order), "");
}

TEST_F(HistoryTest, ReplayAfterRestartAndEvictionCountsOnlyDuplicates) {
  max_dedup_ids_ = 500;  // far fewer than the hour holds
  const std::vector<v1::PredictionEvent> hour = DyadicHour(3000, 3);
  Fresh();
  Push(hour, 50, 1000);
  CloseEverything();
  const auto in_order = Rows_();
  EXPECT_GT(ingestor_->totals().evicted_buckets.load(), 0u);
  Restart();
  // The replay loads each bucket's ids back from storage before its events
  // are deduplicated; memory stays near the cap.
  IngestCounts c = Push(hour, 50, 0);
  EXPECT_EQ(c.accepted, 0u);
  EXPECT_EQ(c.duplicates, hour.size());
  EXPECT_GT(ingestor_->totals().loaded_buckets.load(), 50u);
  CloseEverything();
  EXPECT_EQ(Diff(Rows_(), in_order), "");
}

// A client stamping events minutes ahead (within max_future_skew) does not
// move the watermark past the server clock.
TEST_F(IngestorTest, AFutureClockDoesNotMakeOtherEventsLate) {
  EXPECT_EQ(Apply(Rows({Event("skewed", kT0 + 9 * kMinute, 1)})).accepted, 1u);
  IngestCounts c = Apply(Rows({Event("on-time", kT0 - 70'000, 1)}));
  EXPECT_EQ(c.accepted, 1u);
  EXPECT_EQ(c.late_accepted, 1u);  // 70 s behind the server clock
  EXPECT_EQ(c.backfilled, 0u);
  auto model = registry_->Find(Schema().model());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->progress().watermark_ms, kT0);
}

// A model whose traffic stops: its buckets close by the server clock.
TEST_F(IngestorTest, IdleModelsCloseTheirBucketsByTheServerClock) {
  Apply(Rows({Event("a", kT0, 1), Event("b", kT0 + kMinute, 2)}));
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(ingestor_->open_buckets(), 2u);
  clock_.Advance(2 * kMinute + 20'000);  // the first bucket's end + lateness
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(ingestor_->open_buckets(), 1u);
  clock_.Advance(kMinute);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(ingestor_->open_buckets(), 0u);
  const int64_t b0 = kT0 - 40'000;
  EXPECT_EQ(Committed(b0 - b0 % storage::kHourMs, 0, Level::kHour).counters().events, 2u);
}

// The ingest hot path keeps profiles in a flat layout and adds values
// feature by feature; what it stores must be byte-identical to a Profile
// fed one event at a time through NumericSummary (nulls, non-finite
// values, weights, and more events than one internal chunk).
TEST_F(IngestorTest, StoredProfileEqualsOneEventAtATimeReference) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> dist(50, 20);
  detectors::Profile expected(registry_->FindByKey(1)->layout());
  std::vector<v1::PredictionEvent> events;
  const double rates[] = {1.0, 0.3, 0.5, 0.1};
  for (int i = 0; i < 2500; ++i) {
    double amount = dist(rng);
    if (i % 97 == 0) amount = std::nan("");
    if (i % 131 == 0) amount = std::numeric_limits<double>::infinity();
    if (i % 149 == 0) amount = -std::numeric_limits<double>::infinity();
    const double rate = rates[i % 4];
    // Event times only move forward (no event is late), within one bucket.
    v1::PredictionEvent e = Event("id" + std::to_string(i), kT0 + i / 3, amount);
    e.set_sample_rate(rate);
    e.set_scores(0, i % 211 == 0 ? std::nan("") : 0.001 * (i % 1000));
    events.push_back(e);
    const double w = 1.0 / rate;
    detectors::NumericSummary& a = expected.numeric()[0];
    if (std::isnan(amount)) {
      a.AddNull(w);
    } else if (!std::isfinite(amount)) {
      a.AddNonFinite(amount, w);
    } else {
      a.Add(amount, w);
    }
    if (std::isnan(e.scores(0))) {
      expected.scores()[0].AddNull(w);
    } else {
      expected.scores()[0].Add(e.scores(0), w);
    }
    expected.categorical()[0].Add("US", w);
    detectors::ProfileCounters& c = expected.counters();
    ++c.events;
    c.invalid_values += std::isinf(amount) + std::isnan(e.scores(0));
    c.weight += w;
    c.weight_sq += w * w;
  }
  EXPECT_EQ(Apply(Rows(std::move(events))).accepted, 2500u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  const detectors::Profile got = Committed(kT0 - 40'000, 0);
  EXPECT_EQ(got.counters().events, 2500u);
  EXPECT_EQ(got.counters().late_accepted, 0u);
  EXPECT_DOUBLE_EQ(got.counters().weight, expected.counters().weight);
  EXPECT_DOUBLE_EQ(got.numeric()[0].counts().sum, expected.numeric()[0].counts().sum);
  EXPECT_EQ(got.numeric()[0].counts().nulls, expected.numeric()[0].counts().nulls);
  EXPECT_EQ(got.numeric()[0].counts().pos_infs, expected.numeric()[0].counts().pos_infs);
  EXPECT_EQ(got.scores()[0].counts().nulls, expected.scores()[0].counts().nulls);
  // The reference has no data-quality section (checked in data_quality_test).
  detectors::Profile summaries = got;
  summaries.quality() = detectors::DataQuality();
  EXPECT_EQ(summaries.Serialize(), expected.Serialize());
}

// Values wait in a queue across batches (16k events here) and full queues
// are handed off and drained after the model's lock is released, in order:
// the result is still bit-identical to one event at a time.
TEST_F(IngestorTest, QueuedValuesAcrossBatchesAndHandOffsKeepEventOrder) {
  std::mt19937_64 rng(12);
  std::normal_distribution<double> dist(50, 20);
  detectors::Profile expected(registry_->FindByKey(1)->layout());
  int next = 0;
  uint64_t accepted = 0;
  for (int b = 0; b < 9; ++b) {
    std::vector<v1::PredictionEvent> events;
    const int n = b == 4 ? 20'000 : 3'000;  // one batch alone fills a queue
    for (int i = 0; i < n; ++i, ++next) {
      const double amount = dist(rng);
      events.push_back(Event("q" + std::to_string(next), kT0 + next / 1000, amount));
      expected.numeric()[0].Add(amount, 1);
      expected.scores()[0].Add(0.25, 1);
      expected.categorical()[0].Add("US", 1);
      detectors::ProfileCounters& c = expected.counters();
      ++c.events;
      c.weight += 1;
      c.weight_sq += 1;
    }
    accepted += Apply(Rows(std::move(events))).accepted;
  }
  EXPECT_EQ(accepted, 44'000u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  detectors::Profile summaries = Committed(kT0 - 40'000, 0);
  summaries.quality() = detectors::DataQuality();
  EXPECT_EQ(summaries.Serialize(), expected.Serialize());
}

TEST_F(IngestorTest, ConcurrentBatchesOfOneModelAreAllCountedOnce) {
  constexpr int kThreads = 4, kBatches = 12, kPerBatch = 1500;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> accepted{0}, duplicates{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<v1::PredictionEvent> events;
        for (int i = 0; i < kPerBatch; ++i) {
          // Threads 0 and 1 send the same ids: one of each pair is a duplicate.
          const int owner = t == 1 ? 0 : t;
          const std::string id = absl::StrCat("c", owner, "-", b, "-", i);
          events.push_back(Event(id, kT0 + i, i % 10, i % 3 == 0 ? "android" : "ios"));
        }
        IngestCounts counts;
        absl::StatusOr<uint64_t> seq = ingestor_->Apply(Rows(std::move(events)), &counts);
        ASSERT_TRUE(seq.ok());
        accepted += counts.accepted;
        duplicates += counts.duplicates;
        if (b % 5 == 0) {
          ASSERT_TRUE(ingestor_->Flush().ok());  // flushes interleave
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  ASSERT_TRUE(ingestor_->Flush().ok());
  constexpr uint64_t kUnique = 3ull * kBatches * kPerBatch;
  EXPECT_EQ(accepted.load(), kUnique);
  EXPECT_EQ(duplicates.load(), uint64_t{kBatches} * kPerBatch);
  const int64_t bucket = kT0 - 40'000;
  detectors::Profile all = Committed(bucket, 0);
  EXPECT_EQ(all.counters().events, kUnique);
  EXPECT_EQ(all.numeric()[0].counts().count, kUnique);
  EXPECT_DOUBLE_EQ(all.numeric()[0].counts().sum, 4.5 * kUnique);
  auto android = registry_->FindSlice(Schema().model(), "platform", "android");
  ASSERT_TRUE(android);
  EXPECT_EQ(Committed(bucket, *android).counters().events, kUnique / 3);
}

TEST_F(IngestorTest, BadEventsAreRejectedByReasonWithoutFailingTheBatch) {
  v1::PredictionEvent no_id = Event("", kT0, 1);
  v1::PredictionEvent bad_rate = Event("r", kT0, 1);
  bad_rate.set_sample_rate(1.5);
  v1::PredictionEvent future = Event("f", kT0 + 60 * kMinute, 1);
  v1::PredictionEvent wrong_count = Event("w", kT0, 1);
  wrong_count.add_numeric(2);
  // A named field the schema does not have is ignored and counted
  // (data quality: unknown_fields), not a rejection.
  v1::PredictionEvent unknown = Event("u", kT0, 1);
  (*unknown.mutable_named_numeric())["nope"] = 1;
  IngestCounts c = Apply(Rows({no_id, bad_rate, future, wrong_count, unknown, Event("ok", kT0, 1)}));
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_EQ(c.rejected, 4u);
  EXPECT_EQ(c.reasons.at("missing_event_id").count, 1u);
  EXPECT_EQ(c.reasons.at("invalid_sample_rate").count, 1u);
  EXPECT_EQ(c.reasons.at("event_time_in_future").count, 1u);
  EXPECT_EQ(c.reasons.at("numeric_count_mismatch").count, 1u);
  EXPECT_FALSE(c.reasons.contains("unknown_feature"));
}

// Rejections reach the log at warn at most once per model per 10 s of the
// server clock, each line with the counts by reason since the previous
// one; the model's counters (read by /metrics) count every event.
TEST_F(IngestorTest, RejectionsAreLoggedOncePerModelPerIntervalWithCountsSinceTheLastLine) {
  std::ostringstream out;
  internal::SetLogCaptureForTest(
      [](void* context, spdlog::level::level_enum level, std::string_view line) {
        *static_cast<std::ostringstream*>(context)
            << spdlog::level::to_string_view(level).data() << " " << line << "\n";
      },
      &out);
  struct Restore {
    ~Restore() { internal::SetLogCaptureForTest(nullptr, nullptr); }
  } restore;
  auto lines = [&out] {
    std::vector<std::string> found;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) {
      if (line.find("ingest rejected events") != std::string::npos) found.push_back(line);
    }
    return found;
  };
  const v1::PredictionEvent no_id = Event("", kT0, 1);
  auto future = [](const std::string& id) { return Event(id, kT0 + 60 * kMinute, 1); };

  Apply(Rows({Event("a", kT0, 1), no_id, no_id}));
  ASSERT_EQ(lines().size(), 1u) << out.str();
  EXPECT_EQ(lines()[0].rfind("warning ingest rejected events model=fraud@v1 rejected=2 "
                             "reasons=missing_event_id:2 since_last_line=start "
                             "example_reason=missing_event_id",
                             0),
            0u)
      << lines()[0];
  clock_.Advance(5'000);
  Apply(Rows({future("f1"), future("f2"), future("f3")}));  // within 10 s: held
  EXPECT_EQ(lines().size(), 1u) << out.str();
  clock_.Advance(5'000);
  Apply(Rows({no_id}));
  ASSERT_EQ(lines().size(), 2u) << out.str();
  EXPECT_NE(lines()[1].find("rejected=4 reasons=missing_event_id:1,event_time_in_future:3 "
                            "since_last_line=10000ms"),
            std::string::npos)
      << lines()[1];
  clock_.Advance(60'000);
  Apply(Rows({Event("b", kT0, 1)}));  // nothing rejected: no line
  EXPECT_EQ(lines().size(), 2u) << out.str();

  const RegisteredModel::IngestCounters& c = registry_->FindByKey(1)->ingest_counters();
  EXPECT_EQ(c.accepted.load(), 2u);
  EXPECT_EQ(c.rejected.load(), 6u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<size_t>(RejectReason::kMissingEventId)].load(), 3u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<size_t>(RejectReason::kEventTimeInFuture)].load(), 3u);
}

TEST_F(IngestorTest, UnknownModelIsNotFound) {
  v1::PredictionBatch b = Rows({Event("a", kT0, 1)});
  b.mutable_model()->set_model_id("nope");
  IngestCounts counts;
  EXPECT_EQ(ingestor_->Apply(b, &counts).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IngestorTest, FailedCommitIsRetriedAndNothingIsLost) {
  Apply(Rows({Event("a", kT0, 1), Event("b", kT0, 2)}));
  store_->FailCommits(1);
  EXPECT_FALSE(ingestor_->Flush().ok());
  Apply(Rows({Event("c", kT0, 3)}));
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(Committed(kT0 - 40'000, 0).counters().events, 3u);
  Restart();
  EXPECT_EQ(Apply(Rows({Event("a", kT0, 1), Event("c", kT0, 3)})).duplicates, 2u);
}

TEST_F(IngestorTest, WaitDurableReturnsOnceCommitted) {
  ingestor_->StartFlusher();
  IngestCounts counts;
  auto seq = ingestor_->Apply(Rows({Event("a", kT0, 1)}), &counts);
  ASSERT_TRUE(seq.ok());
  ASSERT_TRUE(ingestor_->WaitDurable(*seq).ok());
  EXPECT_GE(ingestor_->durable_seq(), *seq);
  EXPECT_EQ(Committed(kT0 - 40'000, 0).counters().events, 1u);
}

TEST_F(IngestorTest, SliceCardinalityIsCapped) {
  platform_cap_ = 3;
  Fresh();
  std::vector<v1::PredictionEvent> events;
  for (int i = 0; i < 50; ++i) events.push_back(Event("e" + std::to_string(i), kT0, 1, "p" + std::to_string(i)));
  EXPECT_EQ(Apply(Rows(events)).accepted, 50u);
  auto slices = registry_->Slices(Schema().model());
  EXPECT_EQ(slices.size(), 1u + 3u + 1u);  // "*", three values, __other__
  auto other = registry_->FindSlice(Schema().model(), "platform", "__other__");
  ASSERT_TRUE(other);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(Committed(kT0 - 40'000, *other).counters().events, 47u);
}

// Slices are resolved only for accepted events: garbage (rejected, too
// late or duplicate events) must not create slices, nor push real values
// into "__other__" by using up a key's cap.
TEST_F(IngestorTest, RejectedEventsCreateNoSlice) {
  platform_cap_ = 3;
  Fresh();
  Apply(Rows({Event("first", kT0, 1, "ios")}));
  clock_.Advance(5 * kMinute);
  Apply(Rows({Event("now", kT0 + 5 * kMinute, 1, "ios")}));
  std::vector<v1::PredictionEvent> garbage;
  for (int i = 0; i < 20; ++i) {
    const std::string platform = absl::StrCat("junk", i);
    v1::PredictionEvent bad_rate = Event(absl::StrCat("r", i), kT0 + 5 * kMinute, 1, platform);
    bad_rate.set_sample_rate(2);
    garbage.push_back(bad_rate);
    garbage.push_back(Event("", kT0 + 5 * kMinute, 1, platform));                   // no id
    garbage.push_back(Event(absl::StrCat("f", i), kT0 + 60 * kMinute, 1, platform));  // future
    garbage.push_back(
        Event(absl::StrCat("o", i), kT0 - 3 * storage::kDayMs, 1, platform));  // too late
    garbage.push_back(Event("now", kT0 + 5 * kMinute, 1, platform));                 // duplicate
    v1::PredictionEvent scores = Event(absl::StrCat("u", i), kT0 + 5 * kMinute, 1, platform);
    scores.add_scores(0.5);  // one more than the schema has
    garbage.push_back(scores);
  }
  IngestCounts c = Apply(Rows(garbage));
  EXPECT_EQ(c.accepted, 0u);
  EXPECT_EQ(c.duplicates, 20u);
  EXPECT_EQ(c.rejected, 100u);
  // Columnar garbage: bad codes and a bad sample rate, with fresh tuples.
  v1::PredictionBatch columnar;
  columnar.mutable_model()->set_model_id("fraud");
  columnar.mutable_model()->set_model_version("v1");
  auto* cols = columnar.mutable_columns();
  cols->set_num_events(2);
  auto* country = cols->add_categorical();
  country->set_name("country");
  country->add_dictionary("US");
  cols->add_slice_dictionary()->add_values("col-junk-a");
  cols->add_slice_dictionary()->add_values("col-junk-b");
  for (int i = 0; i < 2; ++i) {
    cols->add_event_ids(absl::StrCat("c", i));
    cols->add_event_time_ms(kT0 + 5 * kMinute);
    cols->add_numeric(1);
    cols->add_scores(0.5);
    cols->add_slice_codes(i);
  }
  country->add_codes(5);  // outside the dictionary
  country->add_codes(0);
  cols->add_sample_rate(0.5);
  cols->add_sample_rate(7);  // invalid
  EXPECT_EQ(Apply(columnar).rejected, 2u);
  ASSERT_TRUE(ingestor_->Flush().ok());
  auto slices = registry_->Slices(Schema().model());
  ASSERT_EQ(slices.size(), 2u);  // "*" and ios
  EXPECT_EQ(slices[1].value, "ios");
  EXPECT_EQ(store_->ListSlices(1)->size(), 1u);  // only ios was persisted
  // The cap is intact: three real values get slices of their own.
  EXPECT_EQ(Apply(Rows({Event("a1", kT0 + 5 * kMinute, 1, "android"),
                        Event("w1", kT0 + 5 * kMinute, 1, "web")}))
                .accepted,
            2u);
  EXPECT_TRUE(registry_->FindSlice(Schema().model(), "platform", "android"));
  EXPECT_TRUE(registry_->FindSlice(Schema().model(), "platform", "web"));
  EXPECT_FALSE(registry_->FindSlice(Schema().model(), "platform", "__other__"));
}

// Event times are read ahead (to prefetch dedup slots) before they are
// validated: extreme values are rejected, never overflow (UBSan in make asan).
TEST_F(IngestorTest, ExtremeEventTimesAreRejected) {
  std::vector<v1::PredictionEvent> events;
  for (int i = 0; i < 20; ++i) {
    const int64_t t = i % 2 ? std::numeric_limits<int64_t>::min() + i
                            : std::numeric_limits<int64_t>::max() - i;
    events.push_back(Event(absl::StrCat("x", i), t, 1));
  }
  events.push_back(Event("ok", kT0, 1));
  IngestCounts c = Apply(Rows(events));
  EXPECT_EQ(c.accepted, 1u);
  EXPECT_EQ(c.reasons.at("missing_event_time").count, 10u);
  EXPECT_EQ(c.reasons.at("event_time_in_future").count, 10u);
}

// Past a key's cap, every new value shares "__other__" (and is not
// remembered one by one).
TEST_F(IngestorTest, ValuesPastTheCapShareOther) {
  platform_cap_ = 2;
  Fresh();
  std::vector<v1::PredictionEvent> events;
  for (int i = 0; i < 1000; ++i) events.push_back(Event(absl::StrCat("v", i), kT0, 1, absl::StrCat("p", i)));
  EXPECT_EQ(Apply(Rows(events)).accepted, 1000u);
  EXPECT_EQ(Apply(Rows({Event("late-p0", kT0, 1, "p0")})).accepted, 1u);  // still its own
  ASSERT_TRUE(ingestor_->Flush().ok());
  auto other = registry_->FindSlice(Schema().model(), "platform", "__other__");
  auto p0 = registry_->FindSlice(Schema().model(), "platform", "p0");
  ASSERT_TRUE(other && p0);
  EXPECT_EQ(registry_->Slices(Schema().model()).size(), 1u + 2u + 1u);
  EXPECT_EQ(Committed(kT0 - 40'000, *other).counters().events, 998u);
  EXPECT_EQ(Committed(kT0 - 40'000, *p0).counters().events, 2u);
}

TEST_F(IngestorTest, ColumnarBatchEqualsRowBatch) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> dist(50, 20);
  std::vector<v1::PredictionEvent> events;
  v1::PredictionBatch columnar;
  columnar.mutable_model()->set_model_id("fraud");
  columnar.mutable_model()->set_model_version("v1");
  auto* c = columnar.mutable_columns();
  const int n = 500;
  c->set_num_events(n);
  auto* country = c->add_categorical();
  country->set_name("country");
  country->add_dictionary("US");
  c->add_slice_dictionary()->add_values("ios");
  c->add_slice_dictionary()->add_values("android");
  std::vector<double> amounts;
  for (int i = 0; i < n; ++i) {
    const double x = dist(rng);
    amounts.push_back(x);
    const std::string platform = i % 3 ? "ios" : "android";
    events.push_back(Event("r" + std::to_string(i), kT0 + i, x, platform));
    c->add_event_ids("c" + std::to_string(i));
    c->add_event_time_ms(kT0 + i);
    country->add_codes(0);
    c->add_scores(0.25);
    c->add_slice_codes(i % 3 ? 0 : 1);
  }
  for (double x : amounts) c->add_numeric(x);
  // Two models would be cleaner; instead compare the row run, then the
  // columnar run on a fresh store.
  Apply(Rows(events));
  ASSERT_TRUE(ingestor_->Flush().ok());
  const std::string row_profile = Committed(kT0 - 40'000, 0).Serialize();
  Fresh();
  IngestCounts counts = Apply(columnar);
  EXPECT_EQ(counts.accepted, static_cast<uint64_t>(n));
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_EQ(Committed(kT0 - 40'000, 0).Serialize(), row_profile);
}

TEST_F(IngestorTest, MalformedColumnarBatchIsInvalidArgument) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id("fraud");
  b.mutable_columns()->set_num_events(2);
  b.mutable_columns()->add_event_ids("x");
  IngestCounts counts;
  absl::Status s = ingestor_->Apply(b, &counts).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("event_ids"), std::string_view::npos);
}

TEST(EventIdHash, IsStableAndNeverZero) {
  using ingest::EventIdHash;
  // Persisted in dedup tables: these values must never change.
  EXPECT_EQ(EventIdHash("a"), EventIdHash("a"));
  EXPECT_NE(EventIdHash("a"), EventIdHash("b"));
  EXPECT_NE(EventIdHash(""), 0u);
  EXPECT_NE(EventIdHash("0123456789abcdef"), EventIdHash("0123456789abcdeg"));
}

// The summary edges a version is registered with are stored with it: a
// restart with other options (or a build drawing edges differently) keeps
// them, and a version stored before they were kept draws them as that
// build did, so its stored profiles still decode.
TEST(ModelRegistryEdges, StoredEdgesOutliveOptionsAndLegacyVersionsKeepTheirs) {
  testing::FakeStore store;
  base::ManualClock clock(1'700'000'000'000);
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("m");
  schema.mutable_model()->set_model_version("1");
  v1::FeatureSpec* f = schema.add_features();
  f->set_name("x");
  f->set_kind(v1::FEATURE_KIND_NUMERIC);
  for (int i = 0; i < 2000; ++i) f->add_reference_sample(i * 0.5);
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  std::vector<double> sample(f->reference_sample().begin(), f->reference_sample().end());

  ModelRegistry first(&store, &clock, RegistryOptions{});
  ASSERT_TRUE(first.Register(schema).ok());
  auto registered = first.Find(schema.model());
  ASSERT_TRUE(registered.ok());
  const std::vector<double> edges = (*registered)->layout()->numeric_edges[0]->edges();
  EXPECT_EQ(edges, detectors::BinEdges::ForReferenceSample(sample, 64)->edges());

  RegistryOptions other;
  other.summary_bins = 10;
  ModelRegistry restarted(&store, &clock, other);
  ASSERT_TRUE(restarted.Recover().ok());
  EXPECT_EQ((*restarted.Find(schema.model()))->layout()->numeric_edges[0]->edges(), edges);
  // Re-registering the same schema is still the same registration.
  auto again = restarted.Register(schema);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);

  // A version stored without edges (before they were kept).
  storage::ModelRecord legacy;
  legacy.model_id = "m";
  legacy.model_version = "old";
  v1::ModelSchema old_schema = schema;
  old_schema.mutable_model()->set_model_version("old");
  legacy.schema = old_schema.SerializeAsString();
  ASSERT_TRUE(store.PutModel(legacy).ok());
  ModelRegistry upgraded(&store, &clock, RegistryOptions{});
  ASSERT_TRUE(upgraded.Recover().ok());
  EXPECT_EQ((*upgraded.Find(old_schema.model()))->layout()->numeric_edges[0]->edges(),
            detectors::BinEdges::FromQuantiles(sample, 64)->edges());

  // Edges and a sample: the user's edges stay, the sample's fill in.
  v1::ModelSchema both = schema;
  both.mutable_model()->set_model_version("both");
  both.mutable_features(0)->add_summary_edges(10.25);
  both.mutable_features(0)->add_summary_edges(700.75);
  ASSERT_TRUE(upgraded.Register(both).ok());
  const std::vector<double> merged =
      (*upgraded.Find(both.model()))->layout()->numeric_edges[0]->edges();
  const std::vector<double> from_sample = detectors::BinEdges::ForReferenceSample(sample, 64)->edges();
  EXPECT_EQ(merged.size(), from_sample.size() + 2);
  EXPECT_TRUE(std::binary_search(merged.begin(), merged.end(), 10.25));
  EXPECT_TRUE(std::binary_search(merged.begin(), merged.end(), 700.75));
  for (double e : from_sample) EXPECT_TRUE(std::binary_search(merged.begin(), merged.end(), e));

  // The label join rate and decision threshold: defaults, and bad values
  // refused by name.
  EXPECT_EQ((*upgraded.Find(both.model()))->label_join_rate(), 1.0);
  EXPECT_EQ((*upgraded.Find(both.model()))->decision_threshold(), 0.5);
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    v1::ModelSchema s = schema;
    s.mutable_model()->set_model_version(absl::StrCat("rate", bad));
    s.set_label_join_rate(bad);
    auto refused = upgraded.Register(s);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("label_join_rate"), std::string::npos);
  }
  v1::ModelSchema quarter = schema;
  quarter.mutable_model()->set_model_version("quarter");
  quarter.set_label_join_rate(0.25);
  quarter.set_decision_threshold(0.7);
  ASSERT_TRUE(upgraded.Register(quarter).ok());
  EXPECT_EQ((*upgraded.Find(quarter.model()))->label_join_rate(), 0.25);
  EXPECT_EQ((*upgraded.Find(quarter.model()))->decision_threshold(), 0.7);
  v1::ModelSchema threshold = schema;
  threshold.mutable_model()->set_model_version("threshold");
  threshold.set_decision_threshold(1.0);
  EXPECT_EQ(upgraded.Register(threshold).status().code(), absl::StatusCode::kInvalidArgument);

  // Stored edges that do not fit the schema are data loss, named.
  storage::ModelRecord broken = legacy;
  broken.model_version = "broken";
  old_schema.mutable_model()->set_model_version("broken");
  broken.schema = old_schema.SerializeAsString();
  broken.resolved_edges = "DWE1\x05";
  ASSERT_TRUE(store.PutModel(broken).ok());
  ModelRegistry damaged(&store, &clock, RegistryOptions{});
  const absl::Status recovered = damaged.Recover();
  EXPECT_EQ(recovered.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(recovered.message().find("m@broken"), std::string::npos) << recovered;
}

}  // namespace
}  // namespace driftwatch::service
