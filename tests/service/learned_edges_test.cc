// A numeric feature registered with neither summary_edges nor a
// reference_sample learns its edges from its first traffic: the events are
// held (durably) until enough values have come, the edges are drawn as
// from a reference sample, stored with the version, and the held events
// replayed. Nothing is lost meanwhile, and the profiles are those the same
// events give under the learned edges declared up front, byte for byte.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/service/window_reader.h"
#include "driftwatch/storage/store.h"
#include "gtest/gtest.h"

namespace driftwatch::service {
namespace {

constexpr int64_t kT0 = 1'700'000'040'000;  // a minute boundary + 40 s
constexpr int64_t kMinute = 60'000;
constexpr uint32_t kLearn = 500;

v1::ModelSchema Schema(const std::string& id, const std::vector<double>& edges = {}) {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id(id);
  s.mutable_model()->set_model_version("1");
  v1::FeatureSpec* x = s.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  x->set_nullable(true);
  for (double e : edges) x->add_summary_edges(e);
  v1::FeatureSpec* country = s.add_features();
  country->set_name("country");
  country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_slice_keys()->set_key("platform");
  return s;
}

struct Data {
  std::vector<double> x;
  std::vector<std::string> platform;
};

Data Draw(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(50, 10);
  Data d;
  for (size_t i = 0; i < n; ++i) {
    d.x.push_back(i % 17 == 0 ? NAN : normal(rng));  // some nulls
    d.platform.push_back(i % 3 == 0 ? "android" : "ios");
  }
  return d;
}

v1::PredictionBatch Batch(const std::string& model, const Data& d, size_t from, size_t to) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id(model);
  for (size_t i = from; i < to; ++i) {
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id(absl::StrCat("e", i));
    e->set_event_time_ms(kT0 - 30'000 + static_cast<int64_t>(i) * 20);
    e->add_numeric(d.x[i]);
    e->add_categorical(i % 2 ? "US" : "DE");
    e->add_scores(0.01 * static_cast<double>(i % 100));
    e->add_slice_values(d.platform[i]);
  }
  return b;
}

class LearnedEdgesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/dw-learned-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    Start();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }

  // What a (re)started service builds over the same database file.
  void Start() {
    storage::SqliteOptions options;
    options.path = dir_ + "/driftwatch.db";
    options.synchronous_full = false;
    auto store = storage::OpenSqliteStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    RegistryOptions registry_options;
    registry_options.learn_edges_values = kLearn;
    registry_ = std::make_unique<ModelRegistry>(store_.get(), &clock_, registry_options);
    ASSERT_TRUE(registry_->Recover().ok());
    IngestOptions ingest;
    ingest.learn_edges_max_wait_ms = 10 * kMinute;
    ingestor_ = std::make_unique<Ingestor>(registry_.get(), store_.get(), &clock_, ingest);
    ASSERT_TRUE(ingestor_->Recover().ok());
    windows_ = std::make_unique<WindowReader>(store_.get(), store_.get(), kMinute);
    baselines_ = std::make_unique<Baselines>(store_.get(), windows_.get(), 10);
    engine_ = std::make_unique<ReportEngine>(registry_.get(), windows_.get(), baselines_.get(),
                                             &clock_);
  }
  void Stop() {
    engine_.reset();
    baselines_.reset();
    windows_.reset();
    ingestor_.reset();
    registry_.reset();
    store_.reset();
  }

  IngestCounts Apply(const v1::PredictionBatch& batch) {
    IngestCounts counts;
    EXPECT_TRUE(ingestor_->Apply(batch, &counts).ok());
    EXPECT_TRUE(ingestor_->Flush().ok());
    return counts;
  }

  std::shared_ptr<const RegisteredModel> Model(const std::string& id) {
    v1::ModelRef ref;
    ref.set_model_id(id);
    auto m = registry_->Find(ref);
    EXPECT_TRUE(m.ok()) << m.status();
    return *m;
  }

  // Every committed minute row of a model, serialized, in key order.
  std::vector<std::string> MinuteRows(const std::string& id) {
    auto rows = store_->ReadBuckets(Model(id)->model_key(), storage::Level::kMinute, 0,
                                    std::numeric_limits<int64_t>::max(), {});
    EXPECT_TRUE(rows.ok());
    std::vector<std::string> out;
    for (const auto& r : *rows) out.push_back(absl::StrCat(r.bucket_start_ms, "/", r.slice_id, "/", r.profile));
    return out;
  }

  uint64_t CommittedEvents(const std::string& id) {
    auto model = Model(id);
    auto rows = store_->ReadBuckets(model->model_key(), storage::Level::kMinute, 0,
                                    std::numeric_limits<int64_t>::max(), {0});
    uint64_t events = 0;
    for (const auto& r : *rows) {
      auto p = detectors::Profile::Deserialize(model->layout(), r.profile);
      EXPECT_TRUE(p.ok()) << p.status();
      if (p.ok()) events += p->counters().events;
    }
    return events;
  }

  std::vector<double> FirstFinite(const Data& d, size_t n) {
    std::vector<double> out;
    for (double x : d.x) {
      if (std::isfinite(x) && out.size() < n) out.push_back(x);
    }
    return out;
  }

  std::string dir_;
  base::ManualClock clock_{kT0};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Ingestor> ingestor_;
  std::unique_ptr<WindowReader> windows_;
  std::unique_ptr<Baselines> baselines_;
  std::unique_ptr<ReportEngine> engine_;
};

TEST_F(LearnedEdgesTest, HeldUntilLearnedThenEqualToTheLearnedEdgesDeclared) {
  ASSERT_TRUE(registry_->Register(Schema("learns")).ok());
  EXPECT_TRUE(Model("learns")->learning());
  const Data d = Draw(900, 7);

  // 400 events: fewer finite values than kLearn. Accepted and held.
  IngestCounts first = Apply(Batch("learns", d, 0, 400));
  EXPECT_EQ(first.accepted, 400u);
  EXPECT_TRUE(Model("learns")->learning());
  EXPECT_TRUE(MinuteRows("learns").empty());
  v1::GetDriftReportRequest request;
  request.mutable_model()->set_model_id("learns");
  auto report = engine_->GetDriftReport(request);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(report.status().message().find("still learning"), std::string::npos)
      << report.status();

  // A retry of a held event is a duplicate; the next 500 complete learning.
  EXPECT_EQ(Apply(Batch("learns", d, 399, 400)).duplicates, 1u);
  EXPECT_EQ(Apply(Batch("learns", d, 400, 900)).accepted, 500u);
  auto model = Model("learns");
  EXPECT_FALSE(model->learning());
  const std::vector<double> learned = model->layout()->numeric_edges[0]->edges();
  EXPECT_EQ(learned, detectors::BinEdges::ForReferenceSample(FirstFinite(d, kLearn), 64)->edges());
  EXPECT_EQ(CommittedEvents("learns"), 900u);

  // The same events into a model declaring those edges (it refines them
  // from the same first traffic, which adds none): the same rows.
  ASSERT_TRUE(registry_->Register(Schema("declared", learned)).ok());
  Apply(Batch("declared", d, 0, 400));
  Apply(Batch("declared", d, 400, 900));
  EXPECT_FALSE(Model("declared")->learning());
  EXPECT_EQ(Model("declared")->layout()->numeric_edges[0]->edges(), learned);
  std::vector<std::string> a = MinuteRows("learns"), b = MinuteRows("declared");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b);

  // The learned edges are the version's from now on, across restarts.
  Stop();
  Start();
  EXPECT_FALSE(Model("learns")->learning());
  EXPECT_EQ(Model("learns")->layout()->numeric_edges[0]->edges(), learned);
  EXPECT_EQ(CommittedEvents("learns"), 900u);
}

TEST_F(LearnedEdgesTest, HeldEventsSurviveARestart) {
  ASSERT_TRUE(registry_->Register(Schema("learns")).ok());
  const Data d = Draw(900, 8);
  EXPECT_EQ(Apply(Batch("learns", d, 0, 300)).accepted, 300u);
  Stop();  // held events are durable from the flush on
  Start();
  EXPECT_TRUE(Model("learns")->learning());
  EXPECT_EQ(Apply(Batch("learns", d, 0, 300)).duplicates, 300u);  // a replayed stream
  EXPECT_EQ(Apply(Batch("learns", d, 300, 900)).accepted, 600u);
  EXPECT_FALSE(Model("learns")->learning());
  EXPECT_EQ(Model("learns")->layout()->numeric_edges[0]->edges(),
            detectors::BinEdges::ForReferenceSample(FirstFinite(d, kLearn), 64)->edges());
  EXPECT_EQ(CommittedEvents("learns"), 900u);
}

TEST_F(LearnedEdgesTest, ATrickleLearnsAfterTheMaxWait) {
  ASSERT_TRUE(registry_->Register(Schema("learns")).ok());
  const Data d = Draw(40, 9);
  Apply(Batch("learns", d, 0, 40));
  clock_.Advance(9 * kMinute);
  ASSERT_TRUE(ingestor_->Flush().ok());
  EXPECT_TRUE(Model("learns")->learning());
  clock_.Advance(kMinute);
  ASSERT_TRUE(ingestor_->Flush().ok());  // learns, replays
  ASSERT_TRUE(ingestor_->Flush().ok());  // clears the held copies
  EXPECT_FALSE(Model("learns")->learning());
  EXPECT_EQ(Model("learns")->layout()->numeric_edges[0]->edges(),
            detectors::BinEdges::ForReferenceSample(FirstFinite(d, 40), 64)->edges());
  EXPECT_EQ(CommittedEvents("learns"), 40u);
  auto held = store_->ReadPendingEvents(Model("learns")->model_key());
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->empty());
}

TEST_F(LearnedEdgesTest, AnUploadedReferenceIsWhatItLearnsFrom) {
  ASSERT_TRUE(registry_->Register(Schema("learns")).ok());
  const Data d = Draw(200, 10);
  Apply(Batch("learns", d, 0, 200));  // held
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(45, 12);
  v1::CreateBaselineRequest request;
  request.mutable_model()->set_model_id("learns");
  request.mutable_baseline()->set_name("reference");
  v1::ReferenceProfile* ref = request.mutable_baseline()->mutable_profile();
  v1::NumericColumn* x = ref->add_numeric();
  x->set_name("x");
  std::vector<double> values;
  for (int i = 0; i < 3000; ++i) values.push_back(normal(rng));
  for (double v : values) x->add_values(v);
  auto created = engine_->CreateBaseline(request);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(Model("learns")->learning());
  EXPECT_EQ(Model("learns")->layout()->numeric_edges[0]->edges(),
            detectors::BinEdges::ForReferenceSample(values, 64)->edges());
  ASSERT_TRUE(ingestor_->Flush().ok());  // the held events go in
  EXPECT_EQ(CommittedEvents("learns"), 200u);
  v1::GetDriftReportRequest report;
  report.mutable_model()->set_model_id("learns");
  report.set_baseline("reference");
  auto got = engine_->GetDriftReport(report);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_GT(got->features_size(), 0);
  EXPECT_LE(got->features(0).ks().error_bound(), 0.03);
}

// Given summary_edges stay; the learned ones go between them.
TEST_F(LearnedEdgesTest, GivenEdgesAreRefinedNotReplaced) {
  const std::vector<double> given = {0.5, 42.25, 1000};
  ASSERT_TRUE(registry_->Register(Schema("refines", given)).ok());
  EXPECT_TRUE(Model("refines")->learning());
  const Data d = Draw(600, 12);
  EXPECT_EQ(Apply(Batch("refines", d, 0, 600)).accepted, 600u);
  const std::vector<double> edges = Model("refines")->layout()->numeric_edges[0]->edges();
  for (double e : given) EXPECT_TRUE(std::binary_search(edges.begin(), edges.end(), e)) << e;
  const std::vector<double> learned =
      detectors::BinEdges::ForReferenceSample(FirstFinite(d, kLearn), 64)->edges();
  for (double e : learned) EXPECT_TRUE(std::binary_search(edges.begin(), edges.end(), e)) << e;
  EXPECT_EQ(edges.size(), given.size() + learned.size());
  EXPECT_EQ(CommittedEvents("refines"), 600u);
}

TEST_F(LearnedEdgesTest, OffWhenLearnEdgesValuesIsZero) {
  Stop();
  storage::SqliteOptions options;
  options.path = dir_ + "/off.db";
  store_ = std::move(*storage::OpenSqliteStore(options));
  RegistryOptions registry_options;
  registry_options.learn_edges_values = 0;
  registry_ = std::make_unique<ModelRegistry>(store_.get(), &clock_, registry_options);
  ASSERT_TRUE(registry_->Register(Schema("fixed")).ok());
  EXPECT_FALSE(Model("fixed")->learning());
  EXPECT_EQ(Model("fixed")->layout()->numeric_edges[0]->edges(), DefaultNumericEdges());
}

}  // namespace
}  // namespace driftwatch::service
