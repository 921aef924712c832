// ReportEngine against a real SQLite store and a real Ingestor driven by a
// manual clock: the statistics equal the exact offline ones where the bins
// coincide, every read plan (open minutes, partly and fully rolled-up
// hours) gives the same report, and each error names what is wrong.
#include "driftwatch/service/reports.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/drift.h"
#include "driftwatch/detectors/sample.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/storage/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::service {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kBase = 1'700'006'400'000;  // a UTC midnight
constexpr int64_t kMin = storage::kMinuteMs;
constexpr int64_t kHour = storage::kHourMs;
constexpr int kRows = 1000;  // per platform and range

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("driftwatch_reports_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
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

v1::Window Range(int64_t start_ms, int64_t end_ms) {
  v1::Window w;
  SetMs(start_ms, w.mutable_range()->mutable_start());
  SetMs(end_ms, w.mutable_range()->mutable_end());
  return w;
}

v1::SliceSelector Platform(const std::string& value) {
  v1::SliceSelector s;
  (*s.mutable_values())["platform"] = value;
  return s;
}

const v1::FeatureDriftReport& Find(const v1::DriftReport& report, const std::string& name) {
  for (const auto& f : report.features()) {
    if (f.name() == name) return f;
  }
  for (const auto& f : report.scores()) {
    if (f.name() == name) return f;
  }
  static const v1::FeatureDriftReport kNone;
  ADD_FAILURE() << "no feature " << name;
  return kNone;
}

// One row of test data.
struct Row {
  double x = 0, y = 0, p = 0;
  std::string country;
};

std::vector<Row> MakeRows(std::mt19937_64& rng, double x_shift,
                          const std::vector<double>& country_mix) {
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  static const char* kCountries[] = {"us", "de", "fr"};
  std::vector<Row> rows(kRows);
  for (Row& r : rows) {
    r.x = normal(rng) + x_shift;
    r.y = 5 + 2 * normal(rng);
    r.p = 1 / (1 + std::exp(-(r.x + 0.5 * normal(rng))));
    double u = unit(rng);
    int c = 0;
    while (c < 2 && u >= country_mix[c]) u -= country_mix[c++];
    r.country = kCountries[c];
  }
  return rows;
}

class ReportsTest : public ::testing::Test {
 protected:
  void OpenStore() {
    storage::SqliteOptions options;
    options.path = dir_.File("driftwatch.db");
    options.synchronous_full = false;
    auto store = storage::OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // What a (re)started service builds over the store: registry, ingest,
  // the window reader, baselines and the report engine.
  void StartIngestor(IngestOptions options, RegistryOptions registry_options = {}) {
    engine_.reset();
    ingestor_.reset();
    registry_ = std::make_unique<ModelRegistry>(store_.get(), &clock_, registry_options);
    ASSERT_TRUE(registry_->Recover().ok());
    ingestor_ = std::make_unique<Ingestor>(registry_.get(), store_.get(), &clock_, options);
    ASSERT_TRUE(ingestor_->Recover().ok());
    windows_ = std::make_unique<WindowReader>(store_.get(), store_.get(), options.bucket_width_ms);
    baselines_ = std::make_unique<Baselines>(store_.get(), windows_.get(), ReportOptions().bins);
    engine_ = std::make_unique<ReportEngine>(registry_.get(), windows_.get(), baselines_.get(),
                                             &clock_);
  }

  void Apply(const v1::PredictionBatch& batch, uint64_t expect_accepted) {
    IngestCounts counts;
    auto seq = ingestor_->Apply(batch, &counts);
    ASSERT_TRUE(seq.ok()) << seq.status();
    ASSERT_EQ(counts.accepted, expect_accepted);
    ASSERT_TRUE(ingestor_->Flush().ok());
  }

  TempDir dir_;
  base::ManualClock clock_{kBase};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Ingestor> ingestor_;
  std::unique_ptr<WindowReader> windows_;
  std::unique_ptr<Baselines> baselines_;
  std::unique_ptr<ReportEngine> engine_;
};

// Baseline range [0h, 1h): both platforms carry the same 1000 rows. Current
// range [2h, 4h): android's x shifts by one sd and its country mix changes;
// ios is fresh rows from the baseline distribution.
//
// The registry uses 10 summary bins from a reference_sample equal to the
// baseline x (and y) values, so the summary edges are exactly the numpy
// quantiles the offline CompareNumeric freezes. Because each platform holds
// the same baseline values, the population's quantiles are the same
// numbers. The service's PSI/KL/JS then equal the exact ones up to float
// rounding (1e-9), and the exact KS statistic lies in the service's
// [D, D + error_bound].
class DriftScenario : public ReportsTest {
 protected:
  void SetUp() override {
    OpenStore();
    IngestOptions options;
    RegistryOptions registry_options;
    registry_options.summary_bins = 10;
    options.allowed_lateness_ms = 24 * kHour;  // nothing closes until we say so
    StartIngestor(options, registry_options);

    std::mt19937_64 rng(20240601);
    base_ = MakeRows(rng, 0, {0.5, 0.3, 0.2});
    android_ = MakeRows(rng, 1.0, {0.2, 0.3, 0.5});
    ios_ = MakeRows(rng, 0, {0.5, 0.3, 0.2});

    v1::ModelSchema schema;
    schema.mutable_model()->set_model_id("ctr");
    schema.mutable_model()->set_model_version("v1");
    for (const char* name : {"x", "y"}) {
      v1::FeatureSpec* f = schema.add_features();
      f->set_name(name);
      f->set_kind(v1::FEATURE_KIND_NUMERIC);
      for (const Row& r : base_) f->add_reference_sample(name[0] == 'x' ? r.x : r.y);
    }
    v1::FeatureSpec* country = schema.add_features();
    country->set_name("country");
    country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
    country->set_nullable(true);
    schema.add_slice_keys()->set_key("platform");
    schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
    schema.add_score_names("p");
    ASSERT_TRUE(registry_->Register(schema).ok());
    model_.set_model_id("ctr");

    clock_.Set(kBase + 4 * kHour);
    v1::PredictionBatch batch;
    *batch.mutable_model() = model_;
    for (const char* platform : {"android", "ios"}) {
      for (int i = 0; i < kRows; ++i) {
        AddEvent(&batch, absl::StrCat("b-", platform, "-", i), kBase + i * 3600, base_[i],
                 platform);
      }
    }
    for (int i = 0; i < kRows; ++i) {
      AddEvent(&batch, absl::StrCat("c-android-", i), kBase + 2 * kHour + i * 7200, android_[i],
               "android");
      AddEvent(&batch, absl::StrCat("c-ios-", i), kBase + 2 * kHour + i * 7200, ios_[i], "ios");
    }
    Apply(batch, 4 * kRows);

    v1::CreateBaselineRequest pinned;
    *pinned.mutable_model() = model_;
    pinned.mutable_baseline()->set_name("pinned");
    SetMs(kBase, pinned.mutable_baseline()->mutable_pinned_range()->mutable_start());
    SetMs(kBase + kHour, pinned.mutable_baseline()->mutable_pinned_range()->mutable_end());
    auto created_baseline = engine_->CreateBaseline(pinned);
    ASSERT_TRUE(created_baseline.ok()) << created_baseline.status();
    EXPECT_DOUBLE_EQ(created_baseline->reference_weight(), 2 * kRows);
  }

  static void AddEvent(v1::PredictionBatch* batch, const std::string& id, int64_t time_ms,
                       const Row& r, const std::string& platform) {
    v1::PredictionEvent* e = batch->mutable_rows()->add_events();
    e->set_event_id(id);
    e->set_event_time_ms(time_ms);
    e->add_numeric(r.x);
    e->add_numeric(r.y);
    e->add_categorical(r.country);
    e->add_scores(r.p);
    e->add_slice_values(platform);
  }

  v1::DriftReport Report(const v1::SliceSelector& slice, const v1::Window& window,
                         const std::string& baseline = "pinned") {
    v1::GetDriftReportRequest request;
    *request.mutable_model() = model_;
    *request.mutable_slice() = slice;
    *request.mutable_window() = window;
    request.set_baseline(baseline);
    auto report = engine_->GetDriftReport(request);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : v1::DriftReport();
  }

  v1::DriftReport CurrentReport(const v1::SliceSelector& slice,
                                const std::string& baseline = "pinned") {
    return Report(slice, Range(kBase + 2 * kHour, kBase + 4 * kHour), baseline);
  }

  // Pushes the watermark to `watermark_ms` with one ios event there, which
  // closes every minute bucket ending 24 h (the lateness) before it.
  void PushWatermark(int64_t watermark_ms) {
    clock_.Set(watermark_ms);
    v1::PredictionBatch batch;
    *batch.mutable_model() = model_;
    AddEvent(&batch, absl::StrCat("push-", watermark_ms), watermark_ms, base_[0], "ios");
    Apply(batch, 1);
  }

  int64_t ClosedUntil() {
    auto model = registry_->Find(model_);
    EXPECT_TRUE(model.ok());
    return model.ok() ? (*model)->progress().closed_until_ms : -1;
  }

  std::vector<Row> base_, android_, ios_;
  v1::ModelRef model_;
};

detectors::WeightedSample Sample(const std::vector<const std::vector<Row>*>& parts,
                                 double Row::*field) {
  std::vector<double> values;
  for (const auto* rows : parts) {
    for (const Row& r : *rows) values.push_back(r.*field);
  }
  auto sample = detectors::WeightedSample::Create(std::move(values));
  EXPECT_TRUE(sample.ok());
  return *sample;
}

detectors::CategoricalSummary Countries(const std::vector<const std::vector<Row>*>& parts) {
  detectors::CategoricalSummary s;
  for (const auto* rows : parts) {
    for (const Row& r : *rows) s.Add(r.country);
  }
  return s;
}

void ExpectMatchesExact(const v1::FeatureDriftReport& got,
                        const std::vector<const std::vector<Row>*>& reference,
                        const std::vector<const std::vector<Row>*>& current) {
  auto exact = detectors::CompareNumeric(Sample(reference, &Row::x), Sample(current, &Row::x),
                                         detectors::kDefaultBins);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_DOUBLE_EQ(got.n_reference(), exact->n_reference);
  EXPECT_DOUBLE_EQ(got.n_current(), exact->n_current);
  EXPECT_NEAR(got.psi(), exact->divergences.psi, 1e-9);
  EXPECT_NEAR(got.kl(), exact->divergences.kl, 1e-9);
  EXPECT_NEAR(got.js(), exact->divergences.js, 1e-9);
  ASSERT_TRUE(got.has_ks());
  EXPECT_GE(exact->ks->statistic, got.ks().statistic() - 1e-12);
  EXPECT_LE(exact->ks->statistic, got.ks().statistic() + got.ks().error_bound() + 1e-12);
}

TEST_F(DriftScenario, PopulationAndSlicesMatchTheExactStatistics) {
  const v1::DriftReport all = CurrentReport({});
  const v1::DriftReport android = CurrentReport(Platform("android"));
  const v1::DriftReport ios = CurrentReport(Platform("ios"));

  EXPECT_EQ(all.baseline(), "pinned");
  EXPECT_EQ(all.model().model_version(), "v1");
  EXPECT_EQ(all.window().start().seconds(), (kBase + 2 * kHour) / 1000);
  EXPECT_EQ(all.window().end().seconds(), (kBase + 4 * kHour) / 1000);
  EXPECT_EQ(all.counts().events(), 2u * kRows);
  EXPECT_EQ(android.counts().events(), 1u * kRows);
  ASSERT_EQ(all.features_size(), 3);
  ASSERT_EQ(all.scores_size(), 1);

  // x drifts on android only.
  EXPECT_GT(Find(android, "x").psi(), 0.5);
  EXPECT_TRUE(Find(android, "x").drifted());
  EXPECT_LT(Find(ios, "x").psi(), 0.1);
  EXPECT_FALSE(Find(ios, "x").drifted());
  EXPECT_LT(Find(android, "y").psi(), 0.1);
  EXPECT_GT(Find(android, "country").psi(), 0.2);
  EXPECT_LT(Find(ios, "country").psi(), 0.05);
  EXPECT_GT(Find(android, "p").psi(), Find(ios, "p").psi());
  EXPECT_EQ(Find(android, "country").kind(), v1::FEATURE_KIND_CATEGORICAL);
  EXPECT_TRUE(Find(android, "country").has_chi2());
  EXPECT_FALSE(Find(android, "country").has_ks());
  EXPECT_EQ(Find(android, "x").null_rate(), 0);

  // The exact offline statistics on the same rows.
  ExpectMatchesExact(Find(all, "x"), {&base_, &base_}, {&android_, &ios_});
  ExpectMatchesExact(Find(android, "x"), {&base_}, {&android_});
  ExpectMatchesExact(Find(ios, "x"), {&base_}, {&ios_});
  auto exact_country = detectors::CompareCategorical(Countries({&base_}), Countries({&android_}));
  ASSERT_TRUE(exact_country.ok());
  EXPECT_NEAR(Find(android, "country").psi(), exact_country->divergences.psi, 1e-12);
  EXPECT_NEAR(Find(android, "country").chi2().statistic(), exact_country->chi2->statistic, 1e-9);
  EXPECT_NEAR(Find(android, "country").chi2().p_value(), exact_country->chi2->p_value, 1e-12);
}

void ExpectSameStatistics(const v1::DriftReport& a, const v1::DriftReport& b) {
  ASSERT_EQ(a.features_size(), b.features_size());
  ASSERT_EQ(a.scores_size(), b.scores_size());
  EXPECT_EQ(a.counts().events(), b.counts().events());
  auto same = [](const v1::FeatureDriftReport& x, const v1::FeatureDriftReport& y) {
    SCOPED_TRACE(x.name());
    EXPECT_EQ(x.name(), y.name());
    EXPECT_NEAR(x.psi(), y.psi(), 1e-12);
    EXPECT_NEAR(x.kl(), y.kl(), 1e-12);
    EXPECT_NEAR(x.js(), y.js(), 1e-12);
    EXPECT_NEAR(x.ks().statistic(), y.ks().statistic(), 1e-12);
    EXPECT_NEAR(x.chi2().statistic(), y.chi2().statistic(), 1e-9);
    EXPECT_NEAR(x.wasserstein(), y.wasserstein(), 1e-9);
    EXPECT_DOUBLE_EQ(x.n_current(), y.n_current());
    EXPECT_DOUBLE_EQ(x.n_reference(), y.n_reference());
    EXPECT_EQ(x.drifted(), y.drifted());
  };
  for (int i = 0; i < a.features_size(); ++i) same(a.features(i), b.features(i));
  for (int i = 0; i < a.scores_size(); ++i) same(a.scores(i), b.scores(i));
}

TEST_F(DriftScenario, RolledUpHoursGiveTheSameReport) {
  const v1::DriftReport open_all = CurrentReport({});
  const v1::DriftReport open_android = CurrentReport(Platform("android"));
  const v1::Window partial = Range(kBase + 2 * kHour + 30 * kMin, kBase + 4 * kHour);
  auto events_in = [&](const v1::Window& w) { return Report({}, w).counts().events(); };
  ASSERT_EQ(ClosedUntil(), 0);
  EXPECT_EQ(events_in(partial), 2u * 750);

  // Hour 3 half closed: its hour row plus its minutes from 3:30 on.
  PushWatermark(kBase + 27 * kHour + 30 * kMin);
  ASSERT_EQ(ClosedUntil(), kBase + 3 * kHour + 30 * kMin);
  ExpectSameStatistics(open_all, CurrentReport({}));
  ExpectSameStatistics(open_android, CurrentReport(Platform("android")));
  EXPECT_EQ(events_in(partial), 2u * 750);

  // Everything closed.
  PushWatermark(kBase + 30 * kHour);
  ASSERT_EQ(ClosedUntil(), kBase + 4 * kHour);
  ExpectSameStatistics(open_all, CurrentReport({}));
  ExpectSameStatistics(open_android, CurrentReport(Platform("android")));
  EXPECT_EQ(events_in(partial), 2u * 750);

  // With the minute rows gone, whole hours still come from hour rows.
  storage::RetentionPolicy retention;
  retention.minute_ms = 1;
  ASSERT_TRUE(store_->ApplyRetention(retention, kBase + 5 * kHour).ok());
  ExpectSameStatistics(open_all, CurrentReport({}));
  ExpectSameStatistics(open_android, CurrentReport(Platform("android")));
}

TEST_F(DriftScenario, RankSlicesPutsAndroidFirst) {
  v1::RankSlicesRequest request;
  *request.mutable_model() = model_;
  *request.mutable_window() = Range(kBase + 2 * kHour, kBase + 4 * kHour);
  request.set_baseline("pinned");
  auto ranked = engine_->RankSlices(request);
  ASSERT_TRUE(ranked.ok()) << ranked.status();
  ASSERT_EQ(ranked->slices_size(), 2);
  EXPECT_EQ(ranked->slices(0).slice().values().at("platform"), "android");
  EXPECT_EQ(ranked->slices(1).slice().values().at("platform"), "ios");
  EXPECT_GT(ranked->slices(0).value(), 0.5);
  EXPECT_DOUBLE_EQ(ranked->slices(0).support(), kRows);
  EXPECT_GT(ranked->slices(0).population_value(), 0);
  EXPECT_LT(ranked->slices(0).population_value(), ranked->slices(0).value());
  // The named feature's value equals the report's.
  const double android_x_psi = Find(CurrentReport(Platform("android")), "x").psi();
  request.set_feature("x");
  ranked = engine_->RankSlices(request);
  ASSERT_TRUE(ranked.ok());
  EXPECT_EQ(ranked->slices(0).feature(), "x");
  EXPECT_DOUBLE_EQ(ranked->slices(0).value(), android_x_psi);
  // Support filter, top_k and metrics.
  request.set_min_support(kRows + 1);
  EXPECT_EQ(engine_->RankSlices(request)->slices_size(), 0);
  request.set_min_support(0);
  request.set_top_k(1);
  request.set_metric("ks");
  ranked = engine_->RankSlices(request);
  ASSERT_TRUE(ranked.ok());
  ASSERT_EQ(ranked->slices_size(), 1);
  EXPECT_EQ(ranked->slices(0).slice().values().at("platform"), "android");
  // The rank carries the report's bound of the value it ranks by.
  const v1::FeatureDriftReport android_x = Find(CurrentReport(Platform("android")), "x");
  EXPECT_DOUBLE_EQ(ranked->slices(0).value(), android_x.ks().statistic());
  EXPECT_DOUBLE_EQ(ranked->slices(0).error_bound(), android_x.ks().error_bound());
  EXPECT_GT(ranked->slices(0).error_bound(), 0);
  request.set_metric("wasserstein_norm");
  ranked = engine_->RankSlices(request);
  ASSERT_TRUE(ranked.ok());
  EXPECT_DOUBLE_EQ(ranked->slices(0).error_bound(), android_x.wasserstein_norm_error_bound());
  request.set_metric("psi");
  EXPECT_EQ(engine_->RankSlices(request)->slices(0).error_bound(), 0);
  request.set_metric("median");
  EXPECT_EQ(engine_->RankSlices(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_metric("ks");
  request.set_feature("country");
  EXPECT_EQ(engine_->RankSlices(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DriftScenario, UploadedProfileRoundTrip) {
  v1::CreateBaselineRequest request;
  *request.mutable_model() = model_;
  v1::BaselineSpec* spec = request.mutable_baseline();
  spec->set_name("training");
  v1::ReferenceProfile* profile = spec->mutable_profile();
  v1::NumericColumn* x = profile->add_numeric();
  v1::NumericColumn* y = profile->add_numeric();
  x->set_name("x");
  y->set_name("y");
  v1::CategoricalColumn* country = profile->add_categorical();
  country->set_name("country");
  std::map<std::string, int> codes;
  for (int copy = 0; copy < 2; ++copy) {
    for (const Row& r : base_) {
      x->add_values(r.x);
      y->add_values(r.y);
      auto [it, inserted] = codes.emplace(r.country, static_cast<int>(codes.size()));
      if (inserted) country->add_dictionary(r.country);
      country->add_codes(it->second);
      profile->add_scores(r.p);
    }
  }
  auto created = engine_->CreateBaseline(request);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_DOUBLE_EQ(created->reference_weight(), 2 * kRows);
  EXPECT_EQ(created->spec().bins(), 10u);

  v1::ListBaselinesRequest list;
  *list.mutable_model() = model_;
  auto listed = engine_->ListBaselines(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->baselines_size(), 2);
  EXPECT_EQ(listed->baselines(0).spec().name(), "pinned");
  EXPECT_TRUE(listed->baselines(0).spec().has_pinned_range());
  EXPECT_DOUBLE_EQ(listed->baselines(0).reference_weight(), 2 * kRows);
  EXPECT_EQ(listed->baselines(1).spec().name(), "training");
  EXPECT_TRUE(listed->baselines(1).spec().has_profile());
  EXPECT_EQ(listed->baselines(1).spec().profile().numeric_size(), 0);  // rows are not kept
  EXPECT_DOUBLE_EQ(listed->baselines(1).reference_weight(), 2 * kRows);
  EXPECT_EQ(listed->baselines(1).created_at().seconds(), clock_.NowMs() / 1000);

  // The uploaded rows are the pinned range's rows: the same summaries.
  ExpectSameStatistics(CurrentReport({}, "pinned"), CurrentReport({}, "training"));
  // A slice is compared with the population's uploaded profile.
  const v1::DriftReport android = CurrentReport(Platform("android"), "training");
  EXPECT_EQ(android.baseline(), "training");
  EXPECT_GT(Find(android, "x").psi(), 0.5);
  EXPECT_DOUBLE_EQ(Find(android, "x").n_reference(), 2 * kRows);

  // Bad uploads name the column.
  v1::CreateBaselineRequest bad = request;
  bad.mutable_baseline()->mutable_profile()->mutable_numeric(0)->set_name("zz");
  auto status = engine_->CreateBaseline(bad).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"zz\""));
  bad = request;
  bad.mutable_baseline()->mutable_profile()->mutable_numeric(1)->add_values(1.0);
  status = engine_->CreateBaseline(bad).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("numeric[\"y\"]"));
  bad = request;
  bad.mutable_baseline()->mutable_profile()->mutable_categorical(0)->set_codes(3, 7);
  EXPECT_EQ(engine_->CreateBaseline(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DriftScenario, ProfileWithNullsAndMissingColumns) {
  v1::CreateBaselineRequest request;
  *request.mutable_model() = model_;
  v1::NumericColumn* x = request.mutable_baseline()->mutable_profile()->add_numeric();
  x->set_name("x");
  for (const Row& r : base_) x->add_values(r.x);
  x->add_values(std::nan(""));
  request.mutable_baseline()->mutable_profile()->add_weights(1.0);  // wrong length
  EXPECT_EQ(engine_->CreateBaseline(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.mutable_baseline()->mutable_profile()->clear_weights();
  auto created = engine_->CreateBaseline(request);  // unnamed: "default"
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->spec().name(), "default");

  // No baseline named: "default". y, country and p have no reference: their
  // counts and rates, no statistics.
  const v1::DriftReport report = CurrentReport(Platform("android"), "");
  EXPECT_EQ(report.baseline(), "default");
  EXPECT_GT(Find(report, "x").psi(), 0.5);
  EXPECT_DOUBLE_EQ(Find(report, "x").n_reference(), kRows);
  const v1::FeatureDriftReport& y = Find(report, "y");
  EXPECT_DOUBLE_EQ(y.n_reference(), 0);
  EXPECT_DOUBLE_EQ(y.n_current(), kRows);
  EXPECT_FALSE(y.has_ks());
  EXPECT_FALSE(y.drifted());
  EXPECT_FALSE(Find(report, "country").has_chi2());
}

TEST_F(DriftScenario, TrailingBaselineAndDefaultWindow) {
  v1::CreateBaselineRequest request;
  *request.mutable_model() = model_;
  request.mutable_baseline()->mutable_trailing()->set_length_seconds(3600);
  request.mutable_baseline()->mutable_trailing()->set_lag_seconds(3 * 3600);
  auto created = engine_->CreateBaseline(request);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_DOUBLE_EQ(created->reference_weight(), 2 * kRows);  // now - 4h .. now - 3h
  // last_seconds ends at the clock (4h): the same window as the range.
  v1::Window last;
  last.set_last_seconds(2 * 3600);
  ExpectSameStatistics(CurrentReport(Platform("android")), Report(Platform("android"), last, ""));
  // No window: the last hour.
  const v1::DriftReport hour = Report({}, v1::Window(), "default");
  EXPECT_EQ(hour.window().start().seconds(), (kBase + 3 * kHour) / 1000);
  EXPECT_EQ(hour.counts().events(), 1000u);

  // The evaluator's signals: the default baseline, the default window, the
  // population and the 5 busiest slices.
  EvaluatorOptions evaluation;
  evaluation.max_slices = 5;
  Evaluator evaluator(registry_.get(), windows_.get(), baselines_.get(), &clock_, evaluation);
  EXPECT_EQ(evaluator.Latest()->generation, 0u);
  ASSERT_TRUE(evaluator.Evaluate().ok());
  const std::shared_ptr<const Evaluation> latest = evaluator.Latest();
  EXPECT_EQ(latest->generation, 1u);
  EXPECT_EQ(latest->evaluated_at_ms, clock_.NowMs());
  bool android_x_psi = false, all_null_rate = false;
  for (const auto& s : latest->signals) {
    EXPECT_EQ(s.model, "ctr@v1");
    if (s.slice == "platform=android" && s.feature == "x" && s.name == "psi") {
      android_x_psi = true;
      EXPECT_GT(s.value, 0.5);
    }
    if (s.slice == "*" && s.feature == "country" && s.name == "null_rate") all_null_rate = true;
  }
  EXPECT_TRUE(android_x_psi);
  EXPECT_TRUE(all_null_rate);
}

// Duplicates, too-late and rejected events are counted by the minute they
// arrive in, for the model, and a report sums those of its window's span.
TEST_F(DriftScenario, WindowCountsShowWhatTheTrafficLost) {
  clock_.Set(kBase + 3 * kHour);  // the bad traffic arrives inside [2h, 4h)
  v1::PredictionBatch batch;
  *batch.mutable_model() = model_;
  AddEvent(&batch, "c-ios-0", kBase + 2 * kHour, ios_[0], "ios");          // a duplicate
  AddEvent(&batch, "c-ios-1", kBase + 2 * kHour + 5, ios_[1], "ios");      // re-stamped: too
  AddEvent(&batch, "ancient", kBase - 3 * 24 * kHour, ios_[2], "ios");    // past the horizon
  AddEvent(&batch, "short", kBase + 2 * kHour, ios_[3], "ios");
  batch.mutable_rows()->mutable_events(3)->clear_numeric();  // numeric_count_mismatch
  AddEvent(&batch, "fresh", kBase + 3 * kHour, ios_[4], "ios");
  IngestCounts counts;
  ASSERT_TRUE(ingestor_->Apply(batch, &counts).ok());
  EXPECT_EQ(counts.accepted, 1u);
  EXPECT_EQ(counts.duplicates, 2u);
  EXPECT_EQ(counts.too_late, 1u);
  EXPECT_EQ(counts.rejected, 2u);  // too_late and the mismatch
  ASSERT_TRUE(ingestor_->Flush().ok());

  for (const v1::SliceSelector& slice : {v1::SliceSelector(), Platform("android")}) {
    const v1::WindowCounts got = CurrentReport(slice).counts();
    EXPECT_EQ(got.duplicates(), 2u);
    EXPECT_EQ(got.too_late(), 1u);
    EXPECT_EQ(got.rejected(), 2u);
  }
  EXPECT_EQ(CurrentReport({}).counts().events(), 2u * kRows + 1);
  // A window whose span saw none of it shows none.
  const v1::DriftReport before = Report({}, Range(kBase + 2 * kHour, kBase + 3 * kHour));
  EXPECT_EQ(before.counts().duplicates(), 0u);
  EXPECT_EQ(before.counts().rejected(), 0u);

  // Counts survive a restart (they were committed with the flush).
  IngestOptions options;
  options.allowed_lateness_ms = 24 * kHour;
  StartIngestor(options);  // the stored edges, whatever summary_bins says now
  EXPECT_EQ(CurrentReport({}).counts().duplicates(), 2u);
}

TEST_F(DriftScenario, ErrorsNameTheProblem) {
  v1::GetDriftReportRequest good;
  *good.mutable_model() = model_;
  *good.mutable_window() = Range(kBase + 2 * kHour, kBase + 4 * kHour);
  good.set_baseline("pinned");
  ASSERT_TRUE(engine_->GetDriftReport(good).ok());

  auto code_of = [&](const v1::GetDriftReportRequest& r) {
    return engine_->GetDriftReport(r).status();
  };
  v1::GetDriftReportRequest r = good;
  r.mutable_model()->set_model_id("nope");
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kNotFound);
  r = good;
  r.mutable_model()->set_model_version("v9");
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kNotFound);

  r = good;
  (*r.mutable_slice()->mutable_values())["country"] = "us";
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(code_of(r).message()), HasSubstr("country"));
  r = good;
  *r.mutable_slice() = Platform("web");
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kNotFound);
  (*r.mutable_slice()->mutable_values())["region"] = "eu";
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kInvalidArgument);

  r = good;
  r.clear_baseline();
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(code_of(r).message()),
              HasSubstr("baseline \"default\" not found for model ctr@v1; create one with "
                        "CreateBaseline"));
  r.set_baseline("nope");
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kNotFound);

  r = good;
  *r.mutable_window() = Range(kBase + 4 * kHour, kBase + 2 * kHour);
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(code_of(r).message()), HasSubstr("window.range"));
  r.mutable_window()->set_last_seconds(-5);
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(code_of(r).message()), HasSubstr("window.last_seconds"));
  *r.mutable_window() = Range(kBase + 10 * kHour, kBase + 11 * kHour);
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kFailedPrecondition);

  // A pinned range with no data.
  v1::CreateBaselineRequest empty;
  *empty.mutable_model() = model_;
  empty.mutable_baseline()->set_name("empty");
  SetMs(kBase + 10 * kHour, empty.mutable_baseline()->mutable_pinned_range()->mutable_start());
  SetMs(kBase + 11 * kHour, empty.mutable_baseline()->mutable_pinned_range()->mutable_end());
  ASSERT_TRUE(engine_->CreateBaseline(empty).ok());
  r = good;
  r.set_baseline("empty");
  EXPECT_EQ(code_of(r).code(), absl::StatusCode::kFailedPrecondition);

  // Baseline validation.
  v1::CreateBaselineRequest bad;
  *bad.mutable_model() = model_;
  EXPECT_EQ(engine_->CreateBaseline(bad).status().code(), absl::StatusCode::kInvalidArgument);
  SetMs(kBase + 2 * kHour, bad.mutable_baseline()->mutable_pinned_range()->mutable_start());
  SetMs(kBase + kHour, bad.mutable_baseline()->mutable_pinned_range()->mutable_end());
  EXPECT_EQ(engine_->CreateBaseline(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.mutable_baseline()->mutable_trailing()->set_length_seconds(0);
  EXPECT_EQ(engine_->CreateBaseline(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.mutable_model()->set_model_id("nope");
  bad.mutable_baseline()->mutable_trailing()->set_length_seconds(60);
  EXPECT_EQ(engine_->CreateBaseline(bad).status().code(), absl::StatusCode::kNotFound);
}

// 24 hour rows x 11 slices x 20 numeric features, written straight to the
// store as a fully rolled-up day; prints how long reports take (no timing
// assertion: the machine is shared).
TEST_F(ReportsTest, DayOfHourRowsLatency) {
  OpenStore();
  IngestOptions options;
  StartIngestor(options);
  constexpr int kFeatures = 20, kSlices = 10, kPerHour = 60;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0, 1);
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("wide");
  schema.mutable_model()->set_model_version("v1");
  for (int f = 0; f < kFeatures; ++f) {
    v1::FeatureSpec* spec = schema.add_features();
    spec->set_name(absl::StrCat("f", f));
    spec->set_kind(v1::FEATURE_KIND_NUMERIC);
    for (int i = 0; i < 500; ++i) spec->add_reference_sample(normal(rng));
  }
  schema.add_slice_keys()->set_key("platform");
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  ASSERT_TRUE(registry_->Register(schema).ok());
  v1::ModelRef model;
  model.set_model_id("wide");
  auto registered = registry_->Find(model);
  ASSERT_TRUE(registered.ok());
  const auto layout = (*registered)->layout();
  const int64_t key = (*registered)->model_key();

  storage::FlushBatch batch;
  for (int s = 1; s <= kSlices; ++s) {
    batch.new_slices.push_back(storage::SliceRecord{key, s, 0, absl::StrCat("p", s)});
  }
  for (int h = 0; h < 24; ++h) {
    detectors::Profile all(layout);
    for (int s = 1; s <= kSlices; ++s) {
      detectors::Profile p(layout);
      const double shift = (s == 3 && h >= 12) ? 1.0 : 0.0;
      for (int i = 0; i < kPerHour; ++i) {
        for (int f = 0; f < kFeatures; ++f) p.numeric()[f].Add(normal(rng) + shift);
        p.scores()[0].Add(0.5 + 0.1 * normal(rng));
        ++p.counters().events;
        p.counters().weight += 1;
        p.counters().weight_sq += 1;
      }
      ASSERT_TRUE(all.Merge(p).ok());
      batch.rollups.push_back(
          storage::BucketRow{key, storage::Level::kHour, kBase + h * kHour, s, p.Serialize()});
    }
    batch.rollups.push_back(
        storage::BucketRow{key, storage::Level::kHour, kBase + h * kHour, 0, all.Serialize()});
  }
  batch.progress.push_back({key, kBase + 24 * kHour, kBase + 24 * kHour});
  batch.layouts[key] = layout;
  ingestor_.reset();
  ASSERT_TRUE(store_->Commit(batch).ok());
  StartIngestor(options);  // recovers the slices and progress
  clock_.Set(kBase + 25 * kHour);

  v1::CreateBaselineRequest baseline;
  *baseline.mutable_model() = model;
  SetMs(kBase, baseline.mutable_baseline()->mutable_pinned_range()->mutable_start());
  SetMs(kBase + kHour, baseline.mutable_baseline()->mutable_pinned_range()->mutable_end());
  ASSERT_TRUE(engine_->CreateBaseline(baseline).ok());

  v1::GetDriftReportRequest request;
  *request.mutable_model() = model;
  *request.mutable_window() = Range(kBase, kBase + 24 * kHour);
  *request.mutable_slice() = Platform("p3");
  constexpr int kRuns = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) {
    auto report = engine_->GetDriftReport(request);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_EQ(report->counts().events(), 24u * kPerHour);
    ASSERT_EQ(report->features_size(), kFeatures);
  }
  const auto t1 = std::chrono::steady_clock::now();
  v1::RankSlicesRequest rank;
  *rank.mutable_model() = model;
  *rank.mutable_window() = request.window();
  auto ranked = engine_->RankSlices(rank);
  ASSERT_TRUE(ranked.ok()) << ranked.status();
  const auto t2 = std::chrono::steady_clock::now();
  ASSERT_EQ(ranked->slices_size(), kSlices);
  EXPECT_EQ(ranked->slices(0).slice().values().at("platform"), "p3");
  const double report_ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / kRuns;
  const double rank_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  std::printf(
      "[latency] 24h report, 20 features, 1 slice of 10 (hour rows): %.2f ms; "
      "RankSlices over 10 slices: %.2f ms\n",
      report_ms, rank_ms);
}

}  // namespace
}  // namespace driftwatch::service
