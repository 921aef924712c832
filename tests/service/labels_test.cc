// The label join on real SQLite files with an injected clock: predictions
// through the Ingestor (flushed by hand), labels through the LabelJoiner
// (committed by hand), quality through the ReportEngine, restarts as a new
// set of objects over the same database file. Every metric is checked
// against the exact definition (detectors' exact functions, the ones
// offline `driftctl quality` runs) within the stated binned bounds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "driftwatch/base/sampling.h"
#include "driftwatch/detectors/quality.h"
#include "driftwatch/detectors/quality_profile.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/service/window_reader.h"
#include "driftwatch/storage/store.h"

namespace driftwatch::service {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kMinute = 60'000;
// Now: an hour boundary + 30 min. Predictions are 3 h old, labels later.
constexpr int64_t kNow = 1'700'002'800'000 + 30 * kMinute;
constexpr int64_t kEventHour = kNow - 30 * kMinute - 3 * kHour;

v1::ModelSchema BinarySchema(const std::string& id, double join_rate = 0) {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id(id);
  s.mutable_model()->set_model_version("v1");
  auto* x = s.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  for (int i = 0; i < 100; ++i) x->add_reference_sample(i);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_score_names("p");
  s.set_label_kind(v1::LABEL_KIND_BINARY);
  s.add_slice_keys()->set_key("platform");
  s.set_label_join_rate(join_rate);
  return s;
}

// One prediction of the tests' models.
struct Pred {
  std::string id;
  int64_t t = 0;
  std::vector<double> scores;
  std::string platform;
  std::string query;
  int position = 0;
};

v1::PredictionBatch Batch(const std::string& model, const std::vector<Pred>& preds) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id(model);
  b.mutable_model()->set_model_version("v1");
  for (const Pred& p : preds) {
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id(p.id);
    e->set_event_time_ms(p.t);
    e->add_numeric(7);
    for (double s : p.scores) e->add_scores(s);
    e->add_slice_values(p.platform);
    if (!p.query.empty()) {
      e->set_query_id(p.query);
      e->set_position(p.position);
    }
  }
  return b;
}

struct Lab {
  std::string id;
  double value = 0;
  int64_t t = 0;
  std::string source = "test";
};

v1::LabelBatch Labels(const std::string& model, const std::vector<Lab>& labels) {
  v1::LabelBatch b;
  b.mutable_model()->set_model_id(model);
  b.mutable_model()->set_model_version("v1");
  for (const Lab& l : labels) {
    v1::Label* out = b.add_labels();
    out->set_event_id(l.id);
    out->set_value(l.value);
    out->set_label_time_ms(l.t);
    out->set_source(l.source);
  }
  return b;
}

// The numpy "inverted_cdf" quantile of unweighted values.
double InvertedCdf(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
  i = std::clamp<size_t>(i, 1, n);
  return v[i - 1];
}

class LabelJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "driftwatch-labels-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    Open();
  }
  void TearDown() override {
    Close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A process over the database file: everything recovered from it.
  void Open() {
    storage::SqliteOptions so;
    so.path = dir_ + "/driftwatch.db";
    so.synchronous_full = false;
    so.clock = &clock_;
    auto store = storage::OpenSqliteStore(so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    registry_ = std::make_unique<ModelRegistry>(store_.get(), &clock_, RegistryOptions{});
    ASSERT_TRUE(registry_->Recover().ok());
    IngestOptions io;
    io.allowed_lateness_ms = 24 * kHour;
    io.raw_sample_rate = 0;
    ingestor_ = std::make_unique<Ingestor>(registry_.get(), store_.get(), &clock_, io);
    ASSERT_TRUE(ingestor_->Recover().ok());
    joiner_ = std::make_unique<LabelJoiner>(store_.get(), registry_.get(), &clock_, options_);
    ASSERT_TRUE(joiner_->Recover().ok());
    windows_ = std::make_unique<WindowReader>(store_.get(), store_.get(), 60'000);
    baselines_ = std::make_unique<Baselines>(store_.get(), windows_.get(), 10);
    reports_ = std::make_unique<ReportEngine>(registry_.get(), windows_.get(), baselines_.get(),
                                              &clock_, ReportOptions{});
    reports_->AttachLabels(store_.get(), options_);
  }
  // A clean stop (everything acked is committed), in reverse order.
  void Close() {
    reports_.reset();
    baselines_.reset();
    windows_.reset();
    if (joiner_ != nullptr) joiner_->Stop();
    joiner_.reset();
    ingestor_.reset();
    registry_.reset();
    store_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }

  void Register(const v1::ModelSchema& schema) {
    auto r = registry_->Register(schema);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Predictions in, flushed (acked), join state tailed.
  IngestCounts Predict(const std::string& model, const std::vector<Pred>& preds) {
    IngestCounts counts;
    for (size_t i = 0; i < preds.size(); i += 500) {
      std::vector<Pred> part(preds.begin() + static_cast<std::ptrdiff_t>(i),
                             preds.begin() + static_cast<std::ptrdiff_t>(
                                                 std::min(preds.size(), i + 500)));
      auto seq = ingestor_->Apply(Batch(model, part), &counts);
      EXPECT_TRUE(seq.ok()) << seq.status();
    }
    EXPECT_TRUE(ingestor_->Flush().ok());
    EXPECT_TRUE(joiner_->FlushNow().ok());
    return counts;
  }

  // Labels in and committed (what the ack waits for).
  LabelStreamCounts Label(const std::string& model, const std::vector<Lab>& labels) {
    LabelStreamCounts counts;
    for (size_t i = 0; i < labels.size(); i += 700) {
      std::vector<Lab> part(labels.begin() + static_cast<std::ptrdiff_t>(i),
                            labels.begin() + static_cast<std::ptrdiff_t>(
                                                 std::min(labels.size(), i + 700)));
      auto seq = joiner_->Apply(Labels(model, part), &counts);
      EXPECT_TRUE(seq.ok()) << seq.status();
    }
    EXPECT_TRUE(joiner_->FlushNow().ok());
    return counts;
  }

  v1::QualityReport Quality(const std::string& model, const std::string& platform = "",
                            const std::string& baseline = "") {
    v1::GetQualityReportRequest q;
    q.mutable_model()->set_model_id(model);
    if (!platform.empty()) (*q.mutable_slice()->mutable_values())["platform"] = platform;
    q.mutable_window()->set_last_seconds(24 * 3600);
    q.set_baseline(baseline);
    auto r = reports_->GetQualityReport(q);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::QualityReport();
  }

  std::string dir_;
  base::ManualClock clock_{kNow};
  LabelOptions options_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Ingestor> ingestor_;
  std::unique_ptr<LabelJoiner> joiner_;
  std::unique_ptr<WindowReader> windows_;
  std::unique_ptr<Baselines> baselines_;
  std::unique_ptr<ReportEngine> reports_;
};

// The rows the join should see: a binary workload over two platforms,
// labels ~ Bernoulli(score) on ios and worse (flipped half the time) on
// android, with delays of minutes to an hour.
struct BinaryWorkload {
  std::vector<Pred> preds;
  std::vector<Lab> labels;  // one per prediction, the true value
  explicit BinaryWorkload(int n, uint32_t seed = 7) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::lognormal_distribution<double> delay_min(2.5, 0.8);
    for (int i = 0; i < n; ++i) {
      Pred p;
      p.id = absl::StrCat("e", i);
      p.t = kEventHour + static_cast<int64_t>(u(rng) * (kHour - 1));
      const double s = u(rng);
      p.scores = {s};
      p.platform = i % 3 == 0 ? "android" : "ios";
      double y = u(rng) < s ? 1 : 0;
      if (p.platform == "android" && u(rng) < 0.5) y = 1 - y;
      const int64_t delay =
          std::min<int64_t>(static_cast<int64_t>(delay_min(rng) * kMinute), 2 * kHour);
      labels.push_back({p.id, y, p.t + delay});
      preds.push_back(std::move(p));
    }
  }
};

// Checks a binary report against the exact metrics of `rows`.
void ExpectMatchesExact(const v1::QualityReport& r, const std::vector<double>& scores,
                        const std::vector<double>& ys, const std::vector<double>& delays) {
  ASSERT_FALSE(scores.empty());
  auto auc = detectors::RocAuc(scores, ys, {});
  ASSERT_TRUE(auc.ok());
  ASSERT_TRUE(r.current().has_auc());
  EXPECT_LE(std::abs(r.current().auc() - *auc), r.current().auc_error_bound() + 1e-12)
      << "service " << r.current().auc() << " exact " << *auc;
  EXPECT_LT(r.current().auc_error_bound(), 0.002);
  auto cal = detectors::Calibration(scores, ys, {}, 10);
  ASSERT_TRUE(cal.ok());
  ASSERT_TRUE(r.current().has_calibration());
  EXPECT_NEAR(r.current().ece(), cal->ece, 1e-9);
  EXPECT_NEAR(r.current().mce(), cal->mce, 1e-9);
  EXPECT_NEAR(r.current().brier(), cal->brier, 1e-9);
  ASSERT_EQ(r.reliability_size(), static_cast<int>(cal->reliability.size()));
  for (int i = 0; i < r.reliability_size(); ++i) {
    const detectors::ReliabilityBin& b = cal->reliability[static_cast<size_t>(i)];
    EXPECT_DOUBLE_EQ(r.reliability(i).lower(), b.bin / 10.0);
    EXPECT_NEAR(r.reliability(i).mean_score(), b.mean_score, 1e-9);
    EXPECT_NEAR(r.reliability(i).mean_label(), b.mean_label, 1e-9);
    EXPECT_NEAR(r.reliability(i).weight(), b.count, 1e-9);
  }
  const double bound = r.label_delay_ms().relative_error_bound();
  EXPECT_NEAR(bound, 0.022, 0.001);
  for (auto [q, got] : {std::pair{0.5, r.label_delay_ms().p50()},
                        std::pair{0.95, r.label_delay_ms().p95()},
                        std::pair{0.99, r.label_delay_ms().p99()}}) {
    const double exact = InvertedCdf(delays, q);
    EXPECT_LE(std::abs(got - exact), bound * exact + 1e-9) << "q " << q;
  }
}

TEST_F(LabelJoinTest, OutOfOrderLateDuplicateConflictingAndOrphanLabelsJoinOnce) {
  options_.max_pending = 400;
  Reopen();
  Register(BinarySchema("churn"));
  BinaryWorkload w(3000);

  // 200 labels come before their predictions: held.
  std::vector<Lab> early(w.labels.begin(), w.labels.begin() + 200);
  for (Lab& l : early) l.t = std::min(l.t, kNow);
  LabelStreamCounts first = Label("churn", early);
  EXPECT_EQ(first.pending, 200u);
  EXPECT_EQ(first.joined, 0u);

  IngestCounts in = Predict("churn", w.preds);
  ASSERT_EQ(in.accepted, 3000u);

  // The rest, shuffled, with late duplicates and conflicting values mixed in.
  std::vector<Lab> rest(w.labels.begin() + 200, w.labels.end());
  std::mt19937_64 rng(11);
  std::shuffle(rest.begin(), rest.end(), rng);
  for (int i = 0; i < 150; ++i) rest.push_back(w.labels[static_cast<size_t>(i) * 7]);  // dups
  for (int i = 0; i < 40; ++i) {  // another value for an already-labelled event
    Lab c = w.labels[static_cast<size_t>(i) * 11 + 1];
    c.value = 1 - c.value;
    rest.push_back(c);
  }
  // Unknown ids: one whose label time is past the label window (orphan at
  // once), and recent ones that wait (pending) until their TTL.
  rest.push_back({"gone", 1, kNow - options_.window_ms - kHour});
  for (int i = 0; i < 5; ++i) rest.push_back({absl::StrCat("never", i), 0, kNow - kMinute});
  LabelStreamCounts second = Label("churn", rest);
  EXPECT_EQ(second.joined, 2800u);
  EXPECT_EQ(second.duplicates, 150u);
  EXPECT_EQ(second.conflicting, 40u);
  EXPECT_EQ(second.orphan, 1u);
  EXPECT_EQ(second.pending, 5u);
  EXPECT_EQ(second.rejected, 0u);

  const RegisteredModel::LabelCounters& c = (*registry_->Find(BinarySchema("churn").model()))
                                                ->label_counters();
  EXPECT_EQ(c.joined.load(), 3000u);  // 2800 + the 200 that waited
  EXPECT_EQ(c.pending.load(), 205u);
  EXPECT_EQ(joiner_->totals().pending_labels.load(), 5u);

  // The pending ones leave as orphan after labels.pending_ttl.
  clock_.Advance(options_.pending_ttl_ms + kMinute);
  ASSERT_TRUE(joiner_->FlushNow().ok());
  EXPECT_EQ(c.orphan.load(), 6u);
  EXPECT_EQ(joiner_->totals().pending_labels.load(), 0u);

  // The population and a slice equal the exact metrics of the joined rows
  // (the first value of each event).
  for (const std::string platform : {"", "android", "ios"}) {
    SCOPED_TRACE(platform);
    std::vector<double> scores, ys, delays;
    for (size_t i = 0; i < w.preds.size(); ++i) {
      if (!platform.empty() && w.preds[i].platform != platform) continue;
      scores.push_back(w.preds[i].scores[0]);
      ys.push_back(w.labels[i].value);
      const int64_t t = i < 200 ? std::min(w.labels[i].t, kNow) : w.labels[i].t;
      delays.push_back(static_cast<double>(t - w.preds[i].t));
    }
    const v1::QualityReport r = Quality("churn", platform);
    EXPECT_DOUBLE_EQ(r.predicted_weight(), static_cast<double>(scores.size()));
    EXPECT_DOUBLE_EQ(r.labelled_weight(), static_cast<double>(scores.size()));
    EXPECT_DOUBLE_EQ(r.label_coverage(), 1.0);
    EXPECT_TRUE(r.mature());
    EXPECT_EQ(r.counts().labelled(), scores.size());
    ExpectMatchesExact(r, scores, ys, delays);
  }
  // android is the worse slice.
  EXPECT_LT(Quality("churn", "android").current().auc() + 0.2, Quality("churn", "ios").current().auc());
  const v1::QualityReport all = Quality("churn");
  EXPECT_EQ(all.counts().conflicting(), 40u);
  EXPECT_EQ(all.counts().duplicates(), 150u);
  EXPECT_EQ(all.counts().orphan(), 6u);
}

TEST_F(LabelJoinTest, CoverageGrowsAndAWindowWithoutLabelsAnswersCountsAndEstimates) {
  Register(BinarySchema("churn"));
  BinaryWorkload w(2000);
  Predict("churn", w.preds);
  v1::QualityReport none = Quality("churn");
  EXPECT_DOUBLE_EQ(none.predicted_weight(), 2000);
  EXPECT_DOUBLE_EQ(none.labelled_weight(), 0);
  EXPECT_DOUBLE_EQ(none.label_coverage(), 0);
  EXPECT_FALSE(none.mature());
  EXPECT_FALSE(none.current().has_auc());
  EXPECT_TRUE(none.has_estimate());  // identity calibration: no baseline
  EXPECT_EQ(none.estimate_calibration(), "identity");
  EXPECT_DOUBLE_EQ(none.unlabelled_weight(), 2000);

  std::vector<Lab> half(w.labels.begin(), w.labels.begin() + 1000);
  Label("churn", half);
  v1::QualityReport some = Quality("churn");
  EXPECT_DOUBLE_EQ(some.label_coverage(), 0.5);
  EXPECT_FALSE(some.mature());
  EXPECT_DOUBLE_EQ(some.unlabelled_weight(), 1000);

  std::vector<Lab> more(w.labels.begin() + 1000, w.labels.begin() + 1850);
  Label("churn", more);
  v1::QualityReport most = Quality("churn");
  EXPECT_DOUBLE_EQ(most.label_coverage(), 0.925);
  EXPECT_TRUE(most.mature());  // labels.maturity_coverage 0.9
}

TEST_F(LabelJoinTest, RestartKeepsAckedAndPendingLabelsAndARetryCountsOnce) {
  Register(BinarySchema("churn"));
  BinaryWorkload w(1500);
  std::vector<Pred> before(w.preds.begin(), w.preds.begin() + 1000);
  std::vector<Pred> after(w.preds.begin() + 1000, w.preds.end());
  Predict("churn", before);
  std::vector<Lab> all = w.labels;
  for (Lab& l : all) l.t = std::min(l.t, kNow);
  LabelStreamCounts first = Label("churn", all);
  EXPECT_EQ(first.joined, 1000u);
  EXPECT_EQ(first.pending, 500u);
  const v1::QualityReport was = Quality("churn");

  Reopen();
  // Recovered: the same report, the pending labels still waiting.
  const v1::QualityReport is = Quality("churn");
  EXPECT_DOUBLE_EQ(is.labelled_weight(), was.labelled_weight());
  EXPECT_DOUBLE_EQ(is.current().auc(), was.current().auc());
  EXPECT_DOUBLE_EQ(is.current().ece(), was.current().ece());
  EXPECT_EQ(joiner_->totals().pending_labels.load(), 500u);

  // The client retries everything: nothing is counted twice.
  LabelStreamCounts retry = Label("churn", all);
  EXPECT_EQ(retry.joined, 0u);
  EXPECT_EQ(retry.duplicates, 1500u);
  EXPECT_DOUBLE_EQ(Quality("churn").labelled_weight(), 1000);

  // The predictions the pending labels waited for arrive: they join.
  Predict("churn", after);
  const v1::QualityReport done = Quality("churn");
  EXPECT_DOUBLE_EQ(done.labelled_weight(), 1500);
  EXPECT_DOUBLE_EQ(done.label_coverage(), 1.0);
  std::vector<double> scores, ys, delays;
  for (size_t i = 0; i < w.preds.size(); ++i) {
    scores.push_back(w.preds[i].scores[0]);
    ys.push_back(w.labels[i].value);
    delays.push_back(static_cast<double>(std::min(w.labels[i].t, kNow) - w.preds[i].t));
  }
  ExpectMatchesExact(done, scores, ys, delays);

  // And once more across a restart: the joined labels are still duplicates.
  Reopen();
  EXPECT_EQ(Label("churn", all).duplicates, 1500u);
  EXPECT_DOUBLE_EQ(Quality("churn").labelled_weight(), 1500);
}

TEST_F(LabelJoinTest, JoinRateKeepsAHashSampleAndDropsTheRestAsNotSampled) {
  Register(BinarySchema("full"));
  Register(BinarySchema("quarter", 0.25));
  BinaryWorkload w(12000, 3);
  std::vector<Lab> labels = w.labels;
  for (Lab& l : labels) l.t = std::min(l.t, kNow);
  Predict("full", w.preds);
  Predict("quarter", w.preds);
  uint64_t in_sample = 0;
  for (const Pred& p : w.preds) in_sample += base::InSample(p.id, 0.25) ? 1 : 0;
  ASSERT_GT(in_sample, 2800u);
  ASSERT_LT(in_sample, 3200u);

  const LabelStreamCounts full = Label("full", labels);
  EXPECT_EQ(full.joined, 12000u);
  const LabelStreamCounts quarter = Label("quarter", labels);
  EXPECT_EQ(quarter.joined, in_sample);
  EXPECT_EQ(quarter.not_sampled, 12000u - in_sample);
  EXPECT_EQ(quarter.orphan, 0u);
  EXPECT_EQ(quarter.pending, 0u);

  const v1::QualityReport a = Quality("full"), b = Quality("quarter");
  // Weights are corrected by the join rate: the estimate of 12000 events.
  EXPECT_NEAR(b.predicted_weight(), 12000, 4 * std::sqrt(12000 * 0.75 / 0.25));
  EXPECT_DOUBLE_EQ(b.label_coverage(), 1.0);
  // Within sampling error (n ~ 3000: AUC sd ~ 0.01, ECE and Brier sd ~ 0.005).
  EXPECT_NEAR(b.current().auc(), a.current().auc(), 0.03);
  EXPECT_NEAR(b.current().brier(), a.current().brier(), 0.015);
  EXPECT_NEAR(b.current().ece(), a.current().ece(), 0.03);
}

TEST_F(LabelJoinTest, BadLabelsAreRejectedByReasonAndTheRestOfTheBatchKept) {
  Register(BinarySchema("churn"));
  v1::ModelSchema multi = BinarySchema("tri");
  multi.set_score_kind(v1::SCORE_KIND_MULTICLASS_PROBABILITIES);
  multi.clear_score_names();
  for (const char* n : {"a", "b", "c"}) multi.add_score_names(n);
  multi.set_label_kind(v1::LABEL_KIND_MULTICLASS);
  Register(multi);
  v1::ModelSchema ranker = BinarySchema("search");
  ranker.set_score_kind(v1::SCORE_KIND_RANKING);
  ranker.set_label_kind(v1::LABEL_KIND_RELEVANCE);
  Register(ranker);
  v1::ModelSchema plain = BinarySchema("nolabels");
  plain.set_label_kind(v1::LABEL_KIND_UNSPECIFIED);
  Register(plain);

  const int64_t t = kNow - kHour;
  Predict("churn", {{"a", t, {0.9}, "ios"}, {"b", t, {0.2}, "ios"}});
  Predict("tri", {{"m", t, {0.2, 0.3, 0.5}, "ios"}, {"n", t, {0.6, 0.3, 0.1}, "ios"}});
  Predict("search", {{"r1", t, {2.0}, "ios", "q", 0}, {"r2", t, {1.0}, "ios", "q", 1}});

  LabelStreamCounts c = Label(
      "churn", {{"", 1, t},
                {std::string(300, 'x'), 1, t},
                {"a", 0.5, t},
                {"a", std::nan(""), t},
                {"a", 1, t - options_.max_clock_skew_ms - 1},
                {"a", 1, kNow + options_.max_future_skew_ms + 1},
                {"b", 0, t + kMinute}});
  EXPECT_EQ(c.joined, 1u);
  EXPECT_EQ(c.rejected, 6u);
  std::map<std::string, uint64_t> by;
  for (const auto& [reason, stat] : c.reasons) {
    by[reason] = stat.count;
    EXPECT_FALSE(stat.message.empty()) << reason;
  }
  EXPECT_EQ(by, (std::map<std::string, uint64_t>{{"missing_event_id", 1},
                                                 {"event_id_too_long", 1},
                                                 {"invalid_label_value", 2},
                                                 {"label_before_prediction", 1},
                                                 {"label_time_in_future", 1}}));
  EXPECT_NE(c.reasons.at("invalid_label_value").message.find("0 or 1"), std::string::npos);
  // The rejected label left "a" unlabelled: a valid one still joins.
  EXPECT_EQ(Label("churn", {{"a", 1, t + kMinute}}).joined, 1u);

  LabelStreamCounts m = Label("tri", {{"m", 7, t}, {"m", 1.5, t}, {"m", -1, t}, {"n", 0, t}});
  EXPECT_EQ(m.rejected, 3u);
  EXPECT_EQ(m.joined, 1u);
  EXPECT_NE(m.reasons.at("invalid_label_value").message.find("0..2"), std::string::npos);

  LabelStreamCounts r =
      Label("search", {{"r1", -1, t}, {"r1", std::nan(""), t}, {"r1", 3, t}, {"r2", 0, t}});
  EXPECT_EQ(r.rejected, 2u);
  // A ranker's scores have no fixed range: its first predictions are held
  // while it learns its summary edges, and their labels wait for them.
  EXPECT_EQ(r.joined + r.pending, 2u);

  LabelStreamCounts unused;
  auto missing = joiner_->Apply(Labels("nope", {{"a", 1, t}}), &unused);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto unlabelled = joiner_->Apply(Labels("nolabels", {{"a", 1, t}}), &unused);
  EXPECT_EQ(unlabelled.status().code(), absl::StatusCode::kFailedPrecondition);

  const RegisteredModel::LabelCounters& counters =
      (*registry_->Find(BinarySchema("churn").model()))->label_counters();
  EXPECT_EQ(counters.rejected.load(), 6u);
  EXPECT_EQ(counters.rejected_by_reason[static_cast<size_t>(LabelRejectReason::kInvalidValue)]
                .load(),
            2u);
}

TEST_F(LabelJoinTest, MulticlassRegressionAndRankingMatchTheExactMetrics) {
  v1::ModelSchema multi = BinarySchema("tri");
  multi.set_score_kind(v1::SCORE_KIND_MULTICLASS_PROBABILITIES);
  multi.clear_score_names();
  for (const char* n : {"a", "b", "c"}) multi.add_score_names(n);
  multi.set_label_kind(v1::LABEL_KIND_MULTICLASS);
  Register(multi);
  v1::ModelSchema reg = BinarySchema("price");
  reg.set_score_kind(v1::SCORE_KIND_REGRESSION);
  reg.set_label_kind(v1::LABEL_KIND_REGRESSION);
  Register(reg);
  v1::ModelSchema ranker = BinarySchema("search");
  ranker.set_score_kind(v1::SCORE_KIND_RANKING);
  ranker.set_label_kind(v1::LABEL_KIND_RELEVANCE);
  Register(ranker);

  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 2);
  const int64_t t = kEventHour + 10 * kMinute;
  std::vector<Pred> mp, rp, kp;
  std::vector<Lab> ml, rl, kl;
  std::vector<std::vector<double>> probs;
  std::vector<int> classes;
  std::vector<double> pred_values, targets;
  std::vector<std::string> qids;
  std::vector<double> rank_scores, relevance;
  for (int i = 0; i < 3000; ++i) {
    const std::string id = absl::StrCat("e", i);
    // Multiclass: softmax of random logits, the label drawn from it.
    double l[3] = {3 * u(rng), 3 * u(rng), 3 * u(rng)}, z = 0;
    for (double& x : l) z += (x = std::exp(x));
    std::vector<double> p = {l[0] / z, l[1] / z, l[2] / z};
    const double r = u(rng);
    const int y = r < p[0] ? 0 : r < p[0] + p[1] ? 1 : 2;
    mp.push_back({id, t, p, i % 2 ? "ios" : "android"});
    ml.push_back({id, static_cast<double>(y), t + kMinute});
    probs.push_back(p);
    classes.push_back(y);
    // Regression.
    const double target = 100 * u(rng), pred = target + noise(rng) + 0.5;
    rp.push_back({id, t, {pred}, i % 2 ? "ios" : "android"});
    rl.push_back({id, target, t + kMinute});
    pred_values.push_back(pred);
    targets.push_back(target);
    // Ranking: 300 queries of 10 documents.
    const std::string q = absl::StrCat("q", i / 10);
    const double s = u(rng), rel = std::floor(4 * std::min(0.999, s * 0.7 + 0.3 * u(rng)));
    kp.push_back({id, t, {s}, "ios", q, i % 10});
    kl.push_back({id, rel, t + kMinute});
    qids.push_back(q);
    rank_scores.push_back(s);
    relevance.push_back(rel);
  }
  Predict("tri", mp);
  Predict("price", rp);
  Predict("search", kp);
  Label("tri", ml);
  Label("price", rl);
  // Half the ranking labels: only the queries whose rows are all labelled count.
  std::vector<Lab> first_half(kl.begin(), kl.begin() + 1500);
  Label("search", first_half);
  EXPECT_EQ(Quality("search").queries(), 150u);
  std::vector<Lab> second_half(kl.begin() + 1500, kl.end());
  Label("search", second_half);

  // Multiclass, exact: one-vs-rest AUC per class on the f32 probabilities
  // the join state keeps; argmax accuracy; log loss.
  const v1::QualityReport m = Quality("tri");
  ASSERT_TRUE(m.has_multiclass());
  double auc_sum = 0, correct = 0, ll = 0;
  for (int k = 0; k < 3; ++k) {
    std::vector<double> s, y;
    for (size_t i = 0; i < probs.size(); ++i) {
      s.push_back(static_cast<float>(probs[i][static_cast<size_t>(k)]));
      y.push_back(classes[i] == k ? 1 : 0);
    }
    auc_sum += *detectors::RocAuc(s, y, {});
  }
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& p = probs[i];
    correct += std::max_element(p.begin(), p.end()) - p.begin() == classes[i] ? 1 : 0;
    double sum = 0;
    for (double x : p) sum += static_cast<float>(x);
    ll -= std::log(static_cast<float>(p[static_cast<size_t>(classes[i])]) / sum);
  }
  EXPECT_LE(std::abs(m.macro_auc() - auc_sum / 3), m.macro_auc_error_bound() + 1e-9);
  EXPECT_DOUBLE_EQ(m.accuracy(), correct / 3000);
  EXPECT_NEAR(m.log_loss(), ll / 3000, 1e-9);

  // Regression: exact sums.
  const v1::QualityReport r = Quality("price");
  ASSERT_TRUE(r.has_regression());
  double mae = 0, mse = 0, bias = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const double e = pred_values[i] - targets[i];
    mae += std::abs(e);
    mse += e * e;
    bias += e;
  }
  EXPECT_NEAR(r.mae(), mae / 3000, 1e-9);
  EXPECT_NEAR(r.rmse(), std::sqrt(mse / 3000), 1e-9);
  EXPECT_NEAR(r.bias(), bias / 3000, 1e-9);
  const v1::QualityReport ra = Quality("price", "android");
  double mae_a = 0;
  for (size_t i = 0; i < targets.size(); i += 2) mae_a += std::abs(pred_values[i] - targets[i]);
  EXPECT_NEAR(ra.mae(), mae_a / 1500, 1e-9);

  // Ranking: NDCG@10 of every query, as sklearn's ndcg_score.
  const v1::QualityReport k = Quality("search");
  ASSERT_TRUE(k.has_ndcg());
  EXPECT_EQ(k.k(), 10u);
  EXPECT_EQ(k.queries(), 300u);
  auto exact = detectors::NdcgAtK(qids, rank_scores, relevance, {}, 10);
  ASSERT_TRUE(exact.ok());
  EXPECT_NEAR(k.ndcg(), *exact, 1e-12);
}

TEST_F(LabelJoinTest, JoinStateLeavesAfterTheWindowCountedExpired) {
  options_.window_ms = 2 * kHour;
  Reopen();
  Register(BinarySchema("churn"));
  BinaryWorkload w(400);
  for (Pred& p : w.preds) p.t = kNow - 20 * kMinute;  // this hour
  Predict("churn", w.preds);
  std::vector<Lab> half;
  for (size_t i = 0; i < 100; ++i) half.push_back({w.preds[i].id, w.labels[i].value, kNow});
  Label("churn", half);
  EXPECT_EQ(joiner_->totals().join_records.load(), 400u);

  clock_.Advance(3 * kHour);
  ASSERT_TRUE(joiner_->FlushNow().ok());
  EXPECT_EQ(joiner_->totals().join_records.load(), 0u);
  const RegisteredModel::LabelCounters& c =
      (*registry_->Find(BinarySchema("churn").model()))->label_counters();
  EXPECT_EQ(c.expired.load(), 300u);
  // A label for an expired prediction, its time past the window: orphan.
  LabelStreamCounts late = Label("churn", {{w.preds[200].id, 1, kNow - 20 * kMinute}});
  EXPECT_EQ(late.orphan, 1u);
  // Survives a restart: the state stays gone, the quality rows stay.
  Reopen();
  EXPECT_EQ(joiner_->totals().join_records.load(), 0u);
  v1::GetQualityReportRequest q;
  q.mutable_model()->set_model_id("churn");
  // The prediction hour as a range: its label window has closed.
  const int64_t hour = kNow - 30 * kMinute;
  q.mutable_window()->mutable_range()->mutable_start()->set_seconds(hour / 1000);
  q.mutable_window()->mutable_range()->mutable_end()->set_seconds((hour + kHour) / 1000);
  auto r = reports_->GetQualityReport(q);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->labelled_weight(), 100);
  EXPECT_EQ(r->counts().expired(), 300u);
  EXPECT_DOUBLE_EQ(r->label_coverage(), 0.25);
  EXPECT_TRUE(r->mature());  // coverage 0.25, but its label window has closed
}

// "source:joined/orphan/pending" of each of the report's label sources, in order.
std::vector<std::string> SourceCounts(const v1::QualityReport& r) {
  std::vector<std::string> out;
  for (const v1::SourceLabelCounts& c : r.counts().sources()) {
    out.push_back(absl::StrCat(c.source(), ":", c.joined(), "/", c.orphan(), "/", c.pending()));
  }
  return out;
}

// Cross-stream consistency per label source: pipeline-a's labels all join
// (10 of them after waiting for their predictions, across a restart);
// pipeline-b's predictions never arrive, so its labels are orphan, at once
// or when their wait runs out. The report shows orphans on pipeline-b only.
TEST_F(LabelJoinTest, OrphanLabelsAreCountedPerLabelSource) {
  Register(BinarySchema("churn"));
  BinaryWorkload w(110);
  std::vector<Pred> first(w.preds.begin(), w.preds.begin() + 100);
  std::vector<Pred> late(w.preds.begin() + 100, w.preds.end());
  Predict("churn", first);
  std::vector<Lab> labels;
  for (const Lab& l : w.labels) labels.push_back({l.id, l.value, kNow, "pipeline-a"});
  for (int i = 0; i < 50; ++i) labels.push_back({absl::StrCat("b", i), 1, kNow, "pipeline-b"});
  labels.push_back({"gone", 1, kNow - options_.window_ms - kHour, "pipeline-b"});
  const LabelStreamCounts in = Label("churn", labels);
  EXPECT_EQ(in.joined, 100u);
  EXPECT_EQ(in.pending, 60u);
  EXPECT_EQ(in.orphan, 1u);
  EXPECT_THAT(SourceCounts(Quality("churn")),
              ::testing::ElementsAre("pipeline-a:100/0/10", "pipeline-b:0/1/50"));

  // The waiting labels keep their source across a restart.
  Reopen();
  Predict("churn", late);
  clock_.Advance(options_.pending_ttl_ms + kMinute);
  ASSERT_TRUE(joiner_->FlushNow().ok());
  const v1::QualityReport r = Quality("churn");
  EXPECT_THAT(SourceCounts(r), ::testing::ElementsAre("pipeline-a:110/0/10", "pipeline-b:0/51/50"));
  EXPECT_EQ(r.counts().orphan(), 51u);
  EXPECT_EQ(r.counts().labelled(), 110u);
  // Every slice's report carries the model's label traffic by source.
  EXPECT_THAT(SourceCounts(Quality("churn", "ios")),
              ::testing::ElementsAre("pipeline-a:110/0/10", "pipeline-b:0/51/50"));
}

// Hostile sources: a long one is cut (at a UTF-8 boundary) to 128 bytes;
// past 64 distinct sources per model the rest count as "__other__".
TEST_F(LabelJoinTest, LabelSourcesAreCutAndBoundedPerModel) {
  Register(BinarySchema("churn"));
  BinaryWorkload w(71);
  Predict("churn", w.preds);
  std::string long_source = "x";
  for (int i = 0; i < 100; ++i) long_source += "\xc3\xa9";  // 201 bytes of "xéé..."
  std::vector<Lab> labels = {{w.labels[0].id, w.labels[0].value, kNow, long_source}};
  for (int i = 1; i < 71; ++i) {
    const Lab& l = w.labels[static_cast<size_t>(i)];
    labels.push_back({l.id, l.value, kNow, absl::StrFormat("s%02d", i)});
  }
  EXPECT_EQ(Label("churn", labels).joined, 71u);
  const v1::QualityReport r = Quality("churn");
  ASSERT_EQ(r.counts().sources_size(), 65);
  // Sorted bytewise: "__other__" < "s01" < ... < "s63" < "x...".
  EXPECT_EQ(r.counts().sources(0).source(), "__other__");
  EXPECT_EQ(r.counts().sources(0).joined(), 7u);  // s64 ... s70
  EXPECT_EQ(r.counts().sources(1).source(), "s01");
  EXPECT_EQ(r.counts().sources(63).source(), "s63");
  std::string cut = "x";
  for (int i = 0; i < 63; ++i) cut += "\xc3\xa9";  // 127 bytes: no half character
  EXPECT_EQ(r.counts().sources(64).source(), cut);
  EXPECT_EQ(r.counts().sources(64).joined(), 1u);
  // The cap holds for the model's later labels, also of a new source.
  EXPECT_EQ(Label("churn", {{"never", 1, kNow, "brand-new"}}).pending, 1u);
  EXPECT_EQ(Quality("churn").counts().sources(0).pending(), 1u);
  EXPECT_EQ(Quality("churn").counts().sources_size(), 65);
}

// Hostile volume: more kept predictions in one hour than
// labels.max_join_records. Memory stays at the cap (no older hour to drop,
// so the rest are not held, counted); the held ones still join, the
// others' labels wait and then become orphan; a restart loads no more.
TEST_F(LabelJoinTest, JoinStateStopsAtMaxJoinRecordsWithinOneHour) {
  options_.max_join_records = 100;
  Reopen();
  Register(BinarySchema("churn"));
  BinaryWorkload w(400);
  for (Pred& p : w.preds) p.t = kNow - 20 * kMinute;  // one hour
  Predict("churn", w.preds);
  EXPECT_EQ(joiner_->totals().join_records.load(), 100u);
  const RegisteredModel::LabelCounters& c =
      (*registry_->Find(BinarySchema("churn").model()))->label_counters();
  EXPECT_EQ(c.join_state_full.load(), 300u);
  // A prediction not held adds no quality either (as one outside the
  // label_join_rate sample): the quality rows hold the 100.
  std::vector<Lab> all;
  for (size_t i = 0; i < w.preds.size(); ++i) all.push_back({w.preds[i].id, 1, kNow});
  LabelStreamCounts got = Label("churn", all);
  EXPECT_EQ(got.joined, 100u);
  EXPECT_EQ(got.pending, 300u);
  EXPECT_EQ(Quality("churn").labelled_weight(), 100);
  EXPECT_EQ(Quality("churn").predicted_weight(), 100);
  Reopen();
  EXPECT_EQ(joiner_->totals().join_records.load(), 100u);
  clock_.Advance(options_.pending_ttl_ms + kMinute);
  ASSERT_TRUE(joiner_->FlushNow().ok());
  EXPECT_EQ((*registry_->Find(BinarySchema("churn").model()))->label_counters().orphan.load(),
            300u);
}

}  // namespace
}  // namespace driftwatch::service
