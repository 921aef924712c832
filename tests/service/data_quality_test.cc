// Data-quality signals end to end: a real SQLite store, a real Ingestor on
// a manual clock, the evaluator and Reports.GetDataQualityReport. Each
// test injects the fault its signal exists for into one slice and checks
// the signal is raised there and not on the others.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/base/sampling.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/storage/store.h"
#include "gtest/gtest.h"

namespace driftwatch::service {
namespace {

constexpr int64_t kBase = 1'700'006'400'000;  // a UTC midnight
constexpr int64_t kMin = storage::kMinuteMs;
constexpr int64_t kHour = storage::kHourMs;
const char* const kVersions[] = {"7.1", "7.2", "7.3", "7.4", "7.5"};
const char* const kPlatforms[] = {"android", "ios", "web"};
const char* const kRegions[] = {"us", "eu", "apac", "sa"};

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("driftwatch_dq_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void SetMs(int64_t ms, google::protobuf::Timestamp* ts) {
  ts->set_seconds(ms / 1000);
  ts->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
}

// What one event looks like; the defaults are a healthy event.
struct EventSpec {
  std::string version = "7.1";
  std::string platform = "android";
  std::string region = "us";
  double x = 50;
  std::string country = "us";
  double score = 0.3;
  double sample_rate = 0.5;
  std::string feature_hash = "fe-v1";
  bool in_hash_sample = true;  // the id passes hash(event_id) < 0.5
  double latency_ms = 12;
  bool unknown_field = false;
};

class DataQualityTest : public ::testing::Test {
 protected:
  // By default nothing closes until a test says so.
  virtual int64_t AllowedLatenessMs() const { return 24 * kHour; }
  // More of the schema (crossings).
  virtual void Declare(v1::ModelSchema*) const {}

  void SetUp() override {
    storage::SqliteOptions options;
    options.path = dir_.File("driftwatch.db");
    options.synchronous_full = false;
    auto store = storage::OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    IngestOptions ingest;
    ingest.allowed_lateness_ms = AllowedLatenessMs();
    ingest.backfill_horizon_ms = 48 * kHour;
    registry_ = std::make_unique<ModelRegistry>(store_.get(), &clock_, RegistryOptions{});
    ASSERT_TRUE(registry_->Recover().ok());
    ingestor_ = std::make_unique<Ingestor>(registry_.get(), store_.get(), &clock_, ingest);
    ASSERT_TRUE(ingestor_->Recover().ok());
    windows_ = std::make_unique<WindowReader>(store_.get(), store_.get(), ingest.bucket_width_ms);
    baselines_ = std::make_unique<Baselines>(store_.get(), windows_.get(), ReportOptions().bins);
    engine_ = std::make_unique<ReportEngine>(registry_.get(), windows_.get(), baselines_.get(),
                                             &clock_);
    EvaluatorOptions eval;
    eval.window_ms = kHour;
    eval.max_slices = 50;
    evaluator_ = std::make_unique<Evaluator>(registry_.get(), windows_.get(), baselines_.get(),
                                             &clock_, eval);

    v1::ModelSchema schema;
    schema.mutable_model()->set_model_id("ctr");
    schema.mutable_model()->set_model_version("v1");
    v1::FeatureSpec* x = schema.add_features();
    x->set_name("x");
    x->set_kind(v1::FEATURE_KIND_NUMERIC);
    x->set_nullable(true);
    x->set_min(0);
    x->set_max(100);
    for (int i = 0; i <= 100; ++i) x->add_reference_sample(i);
    v1::FeatureSpec* country = schema.add_features();
    country->set_name("country");
    country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
    for (const char* c : {"us", "de", "fr"}) country->add_allowed_values(c);
    for (const char* key : {"platform", "app_version", "region"}) {
      schema.add_slice_keys()->set_key(key);
    }
    schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
    schema.add_score_names("p");
    schema.set_declared_sample_rate(0.5);
    schema.set_sampling_mode(v1::SAMPLING_MODE_HASH);
    Declare(&schema);
    ASSERT_TRUE(registry_->Register(schema).ok());
    model_.set_model_id("ctr");
  }

  // An id whose hash-sample membership at 0.5 is `in_sample`.
  std::string NextId(bool in_sample) {
    for (;;) {
      std::string id = absl::StrCat("e-", next_id_++);
      if (base::InSample(id, 0.5) == in_sample) return id;
    }
  }

  void Add(v1::PredictionBatch* batch, const EventSpec& s, int64_t time_ms) {
    v1::PredictionEvent* e = batch->mutable_rows()->add_events();
    e->set_event_id(NextId(s.in_hash_sample));
    e->set_event_time_ms(time_ms);
    e->add_numeric(s.x);
    e->add_categorical(s.country);
    e->add_scores(s.score);
    e->add_slice_values(s.platform);
    e->add_slice_values(s.version);
    e->add_slice_values(s.region);
    e->set_sample_rate(s.sample_rate);
    e->set_feature_hash(s.feature_hash);
    e->set_latency_ms(s.latency_ms);
    if (s.unknown_field) (*e->mutable_named_numeric())["new_feature_v8"] = 1;
  }

  v1::PredictionBatch Batch() {
    v1::PredictionBatch b;
    *b.mutable_model() = model_;
    return b;
  }

  void Apply(const v1::PredictionBatch& batch) {
    IngestCounts counts;
    auto seq = ingestor_->Apply(batch, &counts);
    ASSERT_TRUE(seq.ok()) << seq.status();
    ASSERT_TRUE(ingestor_->Flush().ok());
  }

  // Healthy traffic over every slice value, `n` events per app version,
  // event times spread over [start, start + span), `edit` applied to each.
  template <typename Edit>
  v1::PredictionBatch Traffic(int n, int64_t start, int64_t span, Edit edit) {
    v1::PredictionBatch batch = Batch();
    int k = 0;
    for (const char* version : kVersions) {
      for (int i = 0; i < n; ++i, ++k) {
        EventSpec s;
        s.version = version;
        s.platform = kPlatforms[k % 3];
        s.region = kRegions[(k / 3) % 4];
        s.x = (k * 37) % 100 + 0.5;
        s.score = 0.05 + 0.9 * ((k * 53) % 97) / 97.0;
        s.country = k % 2 ? "us" : "de";
        int64_t t = start + (span * i) / n;
        edit(s, t);
        Add(&batch, s, t);
      }
    }
    return batch;
  }
  v1::PredictionBatch Traffic(int n, int64_t start, int64_t span) {
    return Traffic(n, start, span, [](EventSpec&, int64_t&) {});
  }

  // A baseline over [0h, 1h) of healthy traffic with fingerprint fe-v1.
  void HealthyBaseline() {
    clock_.Set(kBase + kHour);
    Apply(Traffic(200, kBase, kHour - kMin));
    v1::CreateBaselineRequest pinned;
    *pinned.mutable_model() = model_;
    pinned.mutable_baseline()->set_name("default");
    SetMs(kBase, pinned.mutable_baseline()->mutable_pinned_range()->mutable_start());
    SetMs(kBase + kHour, pinned.mutable_baseline()->mutable_pinned_range()->mutable_end());
    auto created = engine_->CreateBaseline(pinned);
    ASSERT_TRUE(created.ok()) << created.status();
  }

  // The latest evaluation's signals by (slice, feature, name).
  std::map<std::tuple<std::string, std::string, std::string>, double> Evaluate() {
    EXPECT_TRUE(evaluator_->Evaluate().ok());
    std::map<std::tuple<std::string, std::string, std::string>, double> out;
    for (const detectors::Signal& s : evaluator_->Latest()->signals) {
      out[{s.slice, s.feature, s.name}] = s.value;
    }
    return out;
  }

  static double Get(const std::map<std::tuple<std::string, std::string, std::string>, double>& m,
                    const std::string& slice, const std::string& feature,
                    const std::string& name) {
    auto it = m.find({slice, feature, name});
    if (it == m.end()) {
      ADD_FAILURE() << "no signal " << name << " feature \"" << feature << "\" on " << slice;
      return std::nan("");
    }
    return it->second;
  }

  v1::DataQualityReport Report(const std::string& key, const std::string& value) {
    v1::GetDataQualityReportRequest request;
    *request.mutable_model() = model_;
    if (!key.empty()) (*request.mutable_slice()->mutable_values())[key] = value;
    request.mutable_window()->set_last_seconds(3600);
    auto r = engine_->GetDataQualityReport(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::DataQualityReport();
  }

  TempDir dir_;
  base::ManualClock clock_{kBase};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Ingestor> ingestor_;
  std::unique_ptr<WindowReader> windows_;
  std::unique_ptr<Baselines> baselines_;
  std::unique_ptr<ReportEngine> engine_;
  std::unique_ptr<Evaluator> evaluator_;
  v1::ModelRef model_;
  int next_id_ = 0;
};

std::string V(const char* version) { return absl::StrCat("app_version=", version); }

// Healthy traffic raises nothing anywhere: the baseline for every other test.
TEST_F(DataQualityTest, HealthyTrafficRaisesNoDataQualitySignal) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin));
  auto s = Evaluate();
  for (const char* v : kVersions) {
    EXPECT_EQ(Get(s, V(v), "x", "null_rate"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "x", "invalid_rate"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "duplicate_rate"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "fingerprint_mismatch"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "rate_mismatch_rate"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "hash_unsampled_rate"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "unknown_field_rate"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "slice_silent"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "score_constant"), 0) << v;
    EXPECT_LE(Get(s, V(v), "", "lateness_p95"), 300) << v;
    EXPECT_LE(Get(s, V(v), "", "latency_p95"), 20) << v;
  }
}

// A client release stops sending a field: nulls in one app version only.
TEST_F(DataQualityTest, NullsInOneAppVersionRaiseItsNullRateOnly) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.3") s.x = std::nan("");
  }));
  auto s = Evaluate();
  EXPECT_DOUBLE_EQ(Get(s, V("7.3"), "x", "null_rate"), 1.0);
  for (const char* v : {"7.1", "7.2", "7.4", "7.5"}) EXPECT_EQ(Get(s, V(v), "x", "null_rate"), 0);
  // The population sees a fifth of it: diluted, which is why slices matter.
  EXPECT_NEAR(Get(s, "*", "x", "null_rate"), 0.2, 1e-9);
  v1::DataQualityReport r = Report("app_version", "7.3");
  ASSERT_EQ(r.features_size(), 2);
  EXPECT_EQ(r.features(0).name(), "x");
  EXPECT_DOUBLE_EQ(r.features(0).null_rate(), 1.0);
  EXPECT_DOUBLE_EQ(r.features(0).reference_null_rate(), 0.0);
}

// RankSlices by a data-quality metric names the failing release first.
TEST_F(DataQualityTest, RankSlicesByNullRateNamesTheFailingAppVersion) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.3") s.x = std::nan("");
  }));
  v1::RankSlicesRequest request;
  *request.mutable_model() = model_;
  request.set_metric("null_rate");
  request.mutable_window()->set_last_seconds(3600);
  auto r = engine_->RankSlices(request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->slices_size(), 2);
  EXPECT_EQ(r->slices(0).slice().values().at("app_version"), "7.3");
  EXPECT_DOUBLE_EQ(r->slices(0).value(), 1.0);
  EXPECT_EQ(r->slices(0).feature(), "x");
  EXPECT_NEAR(r->slices(0).population_value(), 0.2, 1e-9);
  EXPECT_LT(r->slices(1).value(), 0.5);  // platforms and regions: diluted
}

// Out of range, outside the enum, +-Inf: invalid, on the slice that sends them.
TEST_F(DataQualityTest, InvalidValuesRaiseInvalidRateOnTheirSlice) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.4") {
      s.x = -5;  // below min 0
      s.country = "xx";
    }
  }));
  auto s = Evaluate();
  EXPECT_DOUBLE_EQ(Get(s, V("7.4"), "x", "invalid_rate"), 1.0);
  EXPECT_DOUBLE_EQ(Get(s, V("7.4"), "country", "invalid_rate"), 1.0);
  for (const char* v : {"7.1", "7.2", "7.3", "7.5"}) {
    EXPECT_EQ(Get(s, V(v), "x", "invalid_rate"), 0);
    EXPECT_EQ(Get(s, V(v), "country", "invalid_rate"), 0);
  }
  v1::DataQualityReport r = Report("app_version", "7.4");
  EXPECT_EQ(r.features(0).out_of_range(), 200u);
  EXPECT_EQ(r.features(0).invalid(), 200u);
}

// Retries from one app version: the replayed batch is dropped as
// duplicates and counted on that version's slice.
TEST_F(DataQualityTest, ReplayedBatchesRaiseDuplicateRateOnTheirAppVersion) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin));
  v1::PredictionBatch retry = Batch();
  v1::PredictionBatch again = Traffic(100, kBase + 3 * kHour - 4 * kMin, 2 * kMin,
                                      [](EventSpec& s, int64_t&) { s.version = "7.2"; });
  Apply(again);
  Apply(again);  // the client's retry
  auto s = Evaluate();
  // 7.2: 200 + 500 events, 500 duplicates.
  EXPECT_NEAR(Get(s, V("7.2"), "", "duplicate_rate"), 500.0 / 1200.0, 1e-9);
  for (const char* v : {"7.1", "7.3", "7.4", "7.5"}) {
    EXPECT_EQ(Get(s, V(v), "", "duplicate_rate"), 0) << v;
  }
  EXPECT_EQ(Report("app_version", "7.2").duplicates(), 500u);
}

// A pipeline that delays one region: its lateness, not the others'.
TEST_F(DataQualityTest, ADelayedRegionRaisesItsLateness) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t& t) {
    if (s.region == "eu") t -= 45 * kMin;
  }));
  auto s = Evaluate();
  EXPECT_GE(Get(s, "region=eu", "", "lateness_p95"), 1800);
  EXPECT_GE(Get(s, "region=eu", "", "lateness_p50"), 1800);
  for (const char* r : {"us", "apac", "sa"}) {
    EXPECT_LE(Get(s, absl::StrCat("region=", r), "", "lateness_p95"), 300) << r;
  }
  // Freshness is the newest event, not the lateness of the bulk.
  EXPECT_GE(Get(s, "region=eu", "", "freshness_seconds"), 45 * 60);
  EXPECT_LE(Get(s, "region=us", "", "freshness_seconds"), 120);
}

// A sampling change on one platform, and a client that does not apply the
// hash rule in one region.
TEST_F(DataQualityTest, SamplingChangesRaiseRateMismatchAndHashUnsampledOnTheirSlice) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.platform == "web") s.sample_rate = 1.0;
    if (s.region == "sa") s.in_hash_sample = false;
  }));
  auto s = Evaluate();
  EXPECT_DOUBLE_EQ(Get(s, "platform=web", "", "rate_mismatch_rate"), 1.0);
  EXPECT_EQ(Get(s, "platform=android", "", "rate_mismatch_rate"), 0);
  EXPECT_EQ(Get(s, "platform=ios", "", "rate_mismatch_rate"), 0);
  EXPECT_DOUBLE_EQ(Get(s, "region=sa", "", "hash_unsampled_rate"), 1.0);
  for (const char* r : {"us", "eu", "apac"}) {
    EXPECT_EQ(Get(s, absl::StrCat("region=", r), "", "hash_unsampled_rate"), 0) << r;
  }
}

// A silent preprocessing change: values plausible, fingerprint new.
TEST_F(DataQualityTest, AChangedFingerprintRaisesFingerprintMismatchOnItsVersion) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.5") s.feature_hash = "fe-v2";
  }));
  auto s = Evaluate();
  EXPECT_DOUBLE_EQ(Get(s, V("7.5"), "", "fingerprint_mismatch"), 1.0);
  for (const char* v : {"7.1", "7.2", "7.3", "7.4"}) {
    EXPECT_EQ(Get(s, V(v), "", "fingerprint_mismatch"), 0) << v;
  }
  v1::DataQualityReport r = Report("app_version", "7.5");
  EXPECT_EQ(r.feature_hashes().at("fe-v2"), 200u);
  ASSERT_EQ(r.baseline_feature_hashes_size(), 1);
  EXPECT_EQ(r.baseline_feature_hashes(0), "fe-v1");
}

// One region stops sending; the rest carry on. After the silence timeout
// (10 min of server clock) it is silent, the others are not.
TEST_F(DataQualityTest, ASilentSliceIsRaisedAfterTheTimeout) {
  HealthyBaseline();
  clock_.Set(kBase + 2 * kHour + 30 * kMin);
  Apply(Traffic(200, kBase + 2 * kHour + 25 * kMin, 4 * kMin));
  clock_.Set(kBase + 3 * kHour);
  // apac's events now go to us.
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.region == "apac") s.region = "us";
  }));
  auto s = Evaluate();
  EXPECT_EQ(Get(s, "region=apac", "", "slice_silent"), 1);
  EXPECT_NEAR(Get(s, "region=apac", "", "silence_seconds"), 30 * 60, 1);
  for (const char* r : {"us", "eu", "sa"}) {
    EXPECT_EQ(Get(s, absl::StrCat("region=", r), "", "slice_silent"), 0) << r;
  }
  EXPECT_TRUE(Report("region", "apac").silent());
}

// A slice that sends a few events an hour is not silent when it pauses for
// longer than the timeout: at its rate nothing was due. A busy one is.
TEST_F(DataQualityTest, ASporadicSliceIsNotSilentWhenItPauses) {
  HealthyBaseline();
  clock_.Set(kBase + 2 * kHour + 30 * kMin);
  // Region sa sends 4 events in the window; then neither sa nor apac.
  int sa = 0;
  Apply(Traffic(200, kBase + 2 * kHour + 25 * kMin, 4 * kMin, [&](EventSpec& s, int64_t&) {
    if (s.region == "sa" && ++sa > 4) s.region = "us";
  }));
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.region == "apac" || s.region == "sa") s.region = "us";
  }));
  auto s = Evaluate();
  EXPECT_NEAR(Get(s, "region=sa", "", "silence_seconds"), 30 * 60, 1);
  EXPECT_EQ(Get(s, "region=sa", "", "slice_silent"), 0);
  EXPECT_EQ(Get(s, "region=apac", "", "slice_silent"), 1);
  EXPECT_FALSE(Report("region", "sa").silent());
  EXPECT_TRUE(Report("region", "apac").silent());
}

// The whole model stops: its open buckets close on the server clock and
// the population is silent.
TEST_F(DataQualityTest, AModelWhoseTrafficStopsClosesItsBucketsAndGoesSilent) {
  clock_.Set(kBase + 2 * kHour);
  Apply(Traffic(50, kBase + 2 * kHour - 5 * kMin, 4 * kMin));
  // Nothing arrives for a day and a half; the flusher runs on its schedule.
  clock_.Set(kBase + 2 * kHour + 36 * kHour);
  ASSERT_TRUE(ingestor_->Flush().ok());
  auto closed = windows_->ClosedUntil(registry_->List()[0]->model_key());
  ASSERT_TRUE(closed.ok());
  EXPECT_GE(*closed, kBase + 2 * kHour - kMin);  // every bucket that had events is closed
  auto s = Evaluate();
  EXPECT_EQ(Get(s, "*", "", "slice_silent"), 1);
  EXPECT_GE(Get(s, "*", "", "silence_seconds"), 36 * 3600 - 1);
}

// A model serving defaults: every score 0 on one app version.
TEST_F(DataQualityTest, ConstantScoresRaiseScoreHealthOnTheirVersion) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.1") s.score = 0.0;
  }));
  auto s = Evaluate();
  EXPECT_EQ(Get(s, V("7.1"), "", "score_constant"), 1);
  EXPECT_DOUBLE_EQ(Get(s, V("7.1"), "", "score_zero_one_share"), 1.0);
  for (const char* v : {"7.2", "7.3", "7.4", "7.5"}) {
    EXPECT_EQ(Get(s, V(v), "", "score_constant"), 0) << v;
    EXPECT_EQ(Get(s, V(v), "", "score_zero_one_share"), 0) << v;
  }
  // Runs are exact within a bucket: 50 events per minute bucket here.
  EXPECT_EQ(Report("app_version", "7.1").scores(0).longest_constant_run(), 50u);
}

// Unknown named fields are kept (not rejected) and counted; slow serving
// shows in latency.
TEST_F(DataQualityTest, UnknownFieldsAndSlowServingShowOnTheirSlice) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(200, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.3") s.unknown_field = true;
    if (s.platform == "ios") s.latency_ms = 800;
  }));
  auto s = Evaluate();
  EXPECT_DOUBLE_EQ(Get(s, V("7.3"), "", "unknown_field_rate"), 1.0);
  EXPECT_EQ(Get(s, V("7.1"), "", "unknown_field_rate"), 0);
  EXPECT_GE(Get(s, "platform=ios", "", "latency_p95"), 800);
  EXPECT_LE(Get(s, "platform=android", "", "latency_p95"), 20);
}

TEST_F(DataQualityTest, ReportErrorsNameWhatIsWrong) {
  HealthyBaseline();
  v1::GetDataQualityReportRequest request;
  *request.mutable_model() = model_;
  (*request.mutable_slice()->mutable_values())["app_version"] = "9.9";
  auto r = engine_->GetDataQualityReport(request);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  request.clear_slice();
  (*request.mutable_slice()->mutable_values())["nope"] = "1";
  r = engine_->GetDataQualityReport(request);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  request.mutable_model()->set_model_id("missing");
  r = engine_->GetDataQualityReport(request);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
}

// Crossed slices: platform x app_version. A field goes null in one release
// on one platform only; the crossing names the cell, where the release and
// the platform alone see it diluted.
class CrossTest : public DataQualityTest {
 protected:
  void Declare(v1::ModelSchema* schema) const override {
    v1::SliceCross* cross = schema->add_slice_crosses();
    cross->add_keys("platform");
    cross->add_keys("app_version");
  }
};

TEST_F(CrossTest, ANullFieldInOneReleaseOnOnePlatformIsNamedByTheCrossing) {
  HealthyBaseline();
  clock_.Set(kBase + 3 * kHour);
  Apply(Traffic(300, kBase + 3 * kHour - 5 * kMin, 4 * kMin, [](EventSpec& s, int64_t&) {
    if (s.version == "7.3" && s.platform == "android") s.x = std::nan("");
  }));
  auto s = Evaluate();
  const std::string cell = "platform=android,app_version=7.3";
  EXPECT_DOUBLE_EQ(Get(s, cell, "x", "null_rate"), 1.0);
  EXPECT_EQ(Get(s, "platform=ios,app_version=7.3", "x", "null_rate"), 0);
  EXPECT_EQ(Get(s, "platform=android,app_version=7.2", "x", "null_rate"), 0);
  EXPECT_NEAR(Get(s, V("7.3"), "x", "null_rate"), 1.0 / 3, 1e-9);
  EXPECT_NEAR(Get(s, "platform=android", "x", "null_rate"), 0.2, 1e-9);

  v1::RankSlicesRequest request;
  *request.mutable_model() = model_;
  request.set_metric("null_rate");
  request.mutable_window()->set_last_seconds(3600);
  auto r = engine_->RankSlices(request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->slices_size(), 2);
  EXPECT_EQ(r->slices(0).slice().values_size(), 2);
  EXPECT_EQ(r->slices(0).slice().values().at("platform"), "android");
  EXPECT_EQ(r->slices(0).slice().values().at("app_version"), "7.3");
  EXPECT_DOUBLE_EQ(r->slices(0).value(), 1.0);
  EXPECT_LT(r->slices(1).value(), 0.5);

  // The cell is asked for with both keys, in either order.
  v1::GetDataQualityReportRequest dq;
  *dq.mutable_model() = model_;
  (*dq.mutable_slice()->mutable_values())["app_version"] = "7.3";
  (*dq.mutable_slice()->mutable_values())["platform"] = "android";
  auto report = engine_->GetDataQualityReport(dq);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_DOUBLE_EQ(report->features(0).null_rate(), 1.0);
  // Keys that no crossing declares: a clear error.
  (*dq.mutable_slice()->mutable_values())["region"] = "us";
  auto bad = engine_->GetDataQualityReport(dq);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_NE(bad.status().message().find("slice_crosses"), std::string::npos) << bad.status();
}

TEST_F(CrossTest, BadCrossingsAreRejectedNamingWhy) {
  auto attempt = [&](std::vector<std::string> keys) {
    v1::ModelSchema schema;
    schema.mutable_model()->set_model_id("crossed");
    schema.mutable_model()->set_model_version(absl::StrCat("v", next_id_++));
    for (const char* key : {"platform", "app_version"}) schema.add_slice_keys()->set_key(key);
    schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
    schema.add_score_names("p");
    v1::SliceCross* cross = schema.add_slice_crosses();
    for (const std::string& k : keys) cross->add_keys(k);
    if (keys.size() == 2 && keys[0] == "app_version") {
      // A second crossing of the same keys, in the other order.
      v1::SliceCross* again = schema.add_slice_crosses();
      again->add_keys("platform");
      again->add_keys("app_version");
    }
    absl::Status status = registry_->Register(schema).status();
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
    return std::string(status.message());
  };
  EXPECT_NE(attempt({"platform"}).find("2 to 4"), std::string::npos);
  EXPECT_NE(attempt({"platform", "region"}).find("\"region\" is not a declared slice key"),
            std::string::npos);
  EXPECT_NE(attempt({"platform", "platform"}).find("crossed twice"), std::string::npos);
  EXPECT_NE(attempt({"app_version", "platform"}).find("the same keys"), std::string::npos);
}

// Columnar batches compose the crossing from each dictionary tuple; an
// event cannot send the crossing's key itself (it is an unknown field).
TEST_F(CrossTest, ColumnarTuplesAndNamedSlicesCompose) {
  clock_.Set(kBase + kHour);
  v1::PredictionBatch batch = Batch();
  v1::ColumnarBatch* c = batch.mutable_columns();
  const int n = 40;
  c->set_num_events(n);
  v1::CategoricalColumn* country = c->add_categorical();
  country->set_name("country");
  country->add_dictionary("us");
  for (const char* platform : {"ios", "web"}) {
    v1::SliceTuple* t = c->add_slice_dictionary();
    t->add_values(platform);
    t->add_values("7.1+beta");  // '+' in a value is escaped in the crossing
    t->add_values("us");
  }
  for (int i = 0; i < n; ++i) {
    c->add_event_ids(NextId(true));
    c->add_event_time_ms(kBase + 10 * kMin + i);
    c->add_numeric(5);
    country->add_codes(0);
    c->add_scores(0.4);
    c->add_slice_codes(i % 4 == 0 ? 1 : 0);
    c->add_sample_rate(0.5);
  }
  Apply(batch);
  v1::PredictionBatch rows = Batch();
  EventSpec spec;
  spec.platform = "ios";
  spec.version = "7.1+beta";
  Add(&rows, spec, kBase + 20 * kMin);
  (*rows.mutable_rows()->mutable_events(0)->mutable_named_slices())["platform+app_version"] = "x";
  Apply(rows);
  std::map<std::string, uint64_t> events;
  for (const storage::SliceRecord& r : registry_->Slices(model_)) {
    events[registry_->List()[0]->SliceName(r)] = 0;
  }
  EXPECT_TRUE(events.contains("platform=ios,app_version=7.1+beta"));
  EXPECT_TRUE(events.contains("platform=web,app_version=7.1+beta"));
  EXPECT_FALSE(events.contains("platform=x")) << "the named crossing is not a value";
  v1::GetDataQualityReportRequest dq;
  *dq.mutable_model() = model_;
  (*dq.mutable_slice()->mutable_values())["platform"] = "ios";
  (*dq.mutable_slice()->mutable_values())["app_version"] = "7.1+beta";
  auto report = engine_->GetDataQualityReport(dq);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->events(), 31u);  // 30 columnar + 1 row
  EXPECT_EQ(report->unknown_fields(), 1u);
}

// Volume: hours close after 5 minutes of lateness, so the hour rows hold
// the history the seasonal expectation is made of (here the trailing
// 24 hours: two weeks are in tests/detectors/volume_test.cc).
class VolumeTest : public DataQualityTest {
 protected:
  int64_t AllowedLatenessMs() const override { return 5 * kMin; }

  // Hour `h` (from kBase) with `per_platform` events per platform, spread
  // over the hour, applied once the hour has passed on the server clock.
  void Hour(int h, const std::map<std::string, int>& per_platform) {
    v1::PredictionBatch batch = Batch();
    const int64_t start = kBase + h * kHour;
    for (const auto& [platform, n] : per_platform) {
      for (int i = 0; i < n; ++i) {
        EventSpec s;
        s.platform = platform;
        s.x = (i * 37) % 100 + 0.5;
        s.score = 0.05 + 0.9 * ((i * 53) % 97) / 97.0;
        Add(&batch, s, start + (59 * kMin * i) / n);
      }
    }
    clock_.Set(start + kHour);
    if (batch.rows().events_size() > 0) Apply(batch);
    ASSERT_TRUE(ingestor_->Flush().ok());
  }

  // 30 steady hours: android 100 per hour, ios and web 400.
  void SteadyHistory() {
    for (int h = 0; h < 30; ++h) Hour(h, {{"android", 100}, {"ios", 400}, {"web", 400}});
  }
};

// One platform's traffic falls to 30 % while the whole is down only 8 %:
// the platform's volume_z is far below -4, the population's and the other
// platforms' are not, and RankSlices by volume_drop names it.
TEST_F(VolumeTest, ADropInOnePlatformRaisesItsVolumeZWhileTheWholeLooksNormal) {
  SteadyHistory();
  Hour(30, {{"android", 30}, {"ios", 400}, {"web", 400}});
  auto s = Evaluate();
  EXPECT_LE(Get(s, "platform=android", "", "volume_z"), -4);
  EXPECT_GT(Get(s, "*", "", "volume_z"), -4);
  EXPECT_LT(std::abs(Get(s, "platform=ios", "", "volume_z")), 4);
  EXPECT_LT(std::abs(Get(s, "platform=web", "", "volume_z")), 4);
  // The expectation (the signal's baseline) is the slice's usual rate.
  for (const detectors::Signal& sig : evaluator_->Latest()->signals) {
    if (sig.name == "volume_z" && sig.slice == "platform=android") {
      EXPECT_DOUBLE_EQ(sig.baseline, 100);
    }
  }
  v1::DataQualityReport r = Report("platform", "android");
  EXPECT_EQ(r.volume_baseline(), "trailing");
  EXPECT_EQ(r.volume_history(), 24u);
  EXPECT_DOUBLE_EQ(r.volume_expected(), 100);
  EXPECT_NEAR(r.volume(), 30, 1);
  EXPECT_LE(r.volume_z(), -4);
  EXPECT_LT(std::abs(Report("platform", "ios").volume_z()), 4);

  v1::RankSlicesRequest request;
  *request.mutable_model() = model_;
  request.set_metric("volume_drop");
  request.set_min_support(1);
  request.mutable_window()->set_last_seconds(3600);
  auto ranked = engine_->RankSlices(request);
  ASSERT_TRUE(ranked.ok()) << ranked.status();
  ASSERT_GE(ranked->slices_size(), 3);
  EXPECT_EQ(ranked->slices(0).slice().values().at("platform"), "android");
  EXPECT_GE(ranked->slices(0).value(), 4);
  EXPECT_LT(ranked->slices(1).value(), 4);
}

// Steady traffic everywhere: no volume_z reaches 4 in any of several hours.
TEST_F(VolumeTest, SteadyTrafficRaisesNoVolumeAnomaly) {
  SteadyHistory();
  for (int h = 30; h < 34; ++h) {
    Hour(h, {{"android", 100}, {"ios", 400}, {"web", 400}});
    auto s = Evaluate();
    for (const char* slice : {"*", "platform=android", "platform=ios", "platform=web"}) {
      EXPECT_LT(std::abs(Get(s, slice, "", "volume_z")), 4) << slice << " hour " << h;
    }
  }
}

// A platform that stops altogether has no profile in the window after an
// hour; it still shows, from the hours it was last seen in: volume 0,
// volume_z far below -4, silent for as long as nothing came.
TEST_F(VolumeTest, ASliceThatStoppedIsStillSeenAfterTheWindowPassesIt) {
  SteadyHistory();
  Hour(30, {{"android", 100}, {"ios", 400}});
  Hour(31, {{"android", 100}, {"ios", 400}});
  auto s = Evaluate();
  EXPECT_EQ(Get(s, "platform=web", "", "volume"), 0);
  EXPECT_LE(Get(s, "platform=web", "", "volume_z"), -4);
  EXPECT_EQ(Get(s, "platform=web", "", "slice_silent"), 1);
  EXPECT_NEAR(Get(s, "platform=web", "", "silence_seconds"), 2 * 3600, 1);
  EXPECT_LT(std::abs(Get(s, "platform=android", "", "volume_z")), 4);
  EXPECT_EQ(Get(s, "platform=android", "", "slice_silent"), 0);
}

// Shadow / canary: two versions of "loan" score the same event ids. v2
// agrees with v1 everywhere but android, where it has diverged (its
// scores no longer follow v1's).
class ShadowTest : public DataQualityTest {
 protected:
  void SetUp() override {
    DataQualityTest::SetUp();
    engine_->AttachLabels(store_.get(), LabelOptions{});
    evaluator_->AttachQuality(engine_.get());
    for (const char* version : {"v1", "v2"}) {
      v1::ModelSchema schema;
      schema.mutable_model()->set_model_id("loan");
      schema.mutable_model()->set_model_version(version);
      v1::FeatureSpec* x = schema.add_features();
      x->set_name("x");
      x->set_kind(v1::FEATURE_KIND_NUMERIC);
      for (int i = 0; i <= 100; ++i) x->add_reference_sample(i);
      schema.add_slice_keys()->set_key("platform");
      schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
      schema.add_score_names("p");
      schema.set_label_kind(v1::LABEL_KIND_BINARY);
      ASSERT_TRUE(registry_->Register(schema).ok());
    }
  }

  // `n` events per platform at [start, start + 50 min); each version
  // scores them; v2 departs from v1 on `diverged` platforms. Event ids
  // e<i> are shared; v1 also scores `only_v1` ids v2 never saw.
  void Score(int n, int64_t start, const std::set<std::string>& diverged, int only_v1 = 0,
             const std::string& prefix = "loan-") {
    v1::PredictionBatch b1, b2;
    b1.mutable_model()->set_model_id("loan");
    b1.mutable_model()->set_model_version("v1");
    b2.mutable_model()->set_model_id("loan");
    b2.mutable_model()->set_model_version("v2");
    int k = 0;
    for (const char* platform : kPlatforms) {
      for (int i = 0; i < n; ++i, ++k) {
        const std::string id = absl::StrCat(prefix, k);
        const int64_t t = start + (50 * kMin * i) / n;
        const double p1 = 0.02 + 0.96 * ((k * 53) % 101) / 100.0;
        // v2: v1 plus a small wobble, or (diverged) an unrelated score.
        const double p2 = diverged.contains(platform)
                              ? 0.02 + 0.96 * ((k * 29 + 17) % 89) / 88.0
                              : std::clamp(p1 + 0.01 * ((k % 5) - 2), 0.0, 1.0);
        for (auto [batch, p] : {std::pair{&b1, p1}, std::pair{&b2, p2}}) {
          v1::PredictionEvent* e = batch->mutable_rows()->add_events();
          e->set_event_id(id);
          e->set_event_time_ms(t);
          e->add_numeric(k % 100);
          e->add_scores(p);
          e->add_slice_values(platform);
        }
      }
    }
    for (int i = 0; i < only_v1; ++i) {
      v1::PredictionEvent* e = b1.mutable_rows()->add_events();
      e->set_event_id(absl::StrCat("v1-only-", i));
      e->set_event_time_ms(start + i);
      e->add_numeric(1);
      e->add_scores(0.5);
      e->add_slice_values("ios");
    }
    Apply(b1);
    Apply(b2);
  }

  v1::CompareVersionsRequest Request() {
    v1::CompareVersionsRequest r;
    r.set_model_name("loan");
    r.set_version_a("v1");
    r.set_version_b("v2");
    r.mutable_window()->set_last_seconds(3600);
    return r;
  }
};

const v1::VersionAgreement* SliceOf(const v1::CompareVersionsResponse& r,
                                    const std::string& platform) {
  for (const v1::VersionAgreement& a : r.slices()) {
    if (a.slice().values().contains("platform") && a.slice().values().at("platform") == platform) {
      return &a;
    }
  }
  return nullptr;
}

TEST_F(ShadowTest, ADivergingShadowModelDisagreesOnItsSliceOnly) {
  clock_.Set(kBase + kHour);
  Score(400, kBase + 5 * kMin, {"android"}, /*only_v1=*/7);
  auto r = engine_->CompareVersions(Request());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->population().paired(), 1200u);
  EXPECT_EQ(r->population().only_a(), 7u);
  EXPECT_EQ(r->population().only_b(), 0u);
  EXPECT_DOUBLE_EQ(r->threshold(), 0.5);
  ASSERT_EQ(r->slices_size(), 3);
  const v1::VersionAgreement* android = SliceOf(*r, "android");
  const v1::VersionAgreement* ios = SliceOf(*r, "ios");
  ASSERT_NE(android, nullptr);
  ASSERT_NE(ios, nullptr);
  EXPECT_EQ(android->paired(), 400u);
  EXPECT_LT(android->score_correlation(), 0.5);
  EXPECT_LT(android->decision_agreement(), 0.8);
  EXPECT_GT(ios->score_correlation(), 0.99);
  EXPECT_GT(ios->decision_agreement(), 0.97);
  EXPECT_LT(ios->psi(), 0.05);
  EXPECT_EQ(ios->only_a(), 7u);
  EXPECT_TRUE(std::isnan(ios->topk_overlap()));  // not a ranker

  // The evaluator's shadow signals sit on v2, feature = v1.
  EXPECT_TRUE(evaluator_->Evaluate().ok());
  std::map<std::pair<std::string, std::string>, double> shadow;
  for (const detectors::Signal& sig : evaluator_->Latest()->signals) {
    if (sig.model == "loan@v2" && sig.feature == "v1") shadow[{sig.slice, sig.name}] = sig.value;
    EXPECT_FALSE(sig.model == "loan@v1" && sig.name.starts_with("shadow_")) << sig.name;
  }
  EXPECT_LT(shadow.at({"platform=android", "shadow_score_correlation"}), 0.8);
  EXPECT_LT(shadow.at({"platform=android", "shadow_decision_agreement"}), 0.9);
  EXPECT_GT(shadow.at({"platform=ios", "shadow_score_correlation"}), 0.99);
  EXPECT_GT(shadow.at({"platform=web", "shadow_decision_agreement"}), 0.97);
  EXPECT_EQ(shadow.at({"*", "shadow_paired"}), 1200);


  // One slice asked for: the population is that slice.
  v1::CompareVersionsRequest one = Request();
  (*one.mutable_slice()->mutable_values())["platform"] = "android";
  auto a = engine_->CompareVersions(one);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->population().paired(), 400u);
  EXPECT_NEAR(a->population().score_correlation(), android->score_correlation(), 1e-12);
  EXPECT_EQ(a->slices_size(), 0);

  // Comparisons are redone every evaluator.shadow_interval (5 min): more
  // pairs a minute later do not show yet, six minutes later they do.
  auto paired = [&] {
    EXPECT_TRUE(evaluator_->Evaluate().ok());
    for (const detectors::Signal& sig : evaluator_->Latest()->signals) {
      if (sig.model == "loan@v2" && sig.slice == "*" && sig.name == "shadow_paired") {
        return sig.value;
      }
    }
    return -1.0;
  };
  Score(100, kBase + 5 * kMin + 1, {}, 0, "more-");
  clock_.Set(kBase + kHour + kMin);
  EXPECT_EQ(paired(), 1200);
  clock_.Set(kBase + kHour + 6 * kMin);
  EXPECT_EQ(paired(), 1500);
}

// Past the record cap the comparison keeps a hash sample of the ids, the
// same in both versions: every pair still pairs, and the disagreement is
// still found.
TEST_F(ShadowTest, ManyRecordsAreComparedOnAHashSampleOfTheIds) {
  clock_.Set(kBase + kHour);
  Score(400, kBase + 5 * kMin, {"android"});
  ReportOptions small;
  small.compare_max_records = 300;
  ReportEngine engine(registry_.get(), windows_.get(), baselines_.get(), &clock_, small);
  engine.AttachLabels(store_.get(), LabelOptions{});
  auto r = engine.CompareVersions(Request());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->sampled(), 0.25);
  EXPECT_GT(r->population().paired(), 100u);
  EXPECT_LE(r->population().paired(), 300u);
  EXPECT_EQ(r->population().only_a(), 0u);  // the same ids on both sides
  EXPECT_EQ(r->population().only_b(), 0u);
  const v1::VersionAgreement* android = SliceOf(*r, "android");
  const v1::VersionAgreement* ios = SliceOf(*r, "ios");
  ASSERT_NE(android, nullptr);
  ASSERT_NE(ios, nullptr);
  EXPECT_LT(android->score_correlation(), 0.5);
  EXPECT_GT(ios->score_correlation(), 0.99);
  // Unsampled below the cap.
  auto full = engine_->CompareVersions(Request());
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->sampled(), 1.0);
}

TEST_F(ShadowTest, CompareVersionsErrorsNameWhatIsWrong) {
  v1::CompareVersionsRequest r = Request();
  r.set_version_b("v1");
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->CompareVersions(r).status()));
  r.set_version_b("v9");
  EXPECT_TRUE(absl::IsNotFound(engine_->CompareVersions(r).status()));
  r.set_version_b("");
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->CompareVersions(r).status()));
  // ctr keeps no join state (no label kind).
  v1::CompareVersionsRequest ctr;
  ctr.set_model_name("ctr");
  ctr.set_version_a("v1");
  ctr.set_version_b("v1x");
  auto status = engine_->CompareVersions(ctr).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("label_kind"), std::string::npos) << status;
  r = Request();
  r.set_threshold(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(engine_->CompareVersions(r).status()));
}

}  // namespace
}  // namespace driftwatch::service
