// `driftctl quality --model`: the JSON and text rendering of a hand-built
// QualityReport (driftwatch/cli/quality_report.h), and the request
// RunOnlineQuality sends, against a fake Reports service on 127.0.0.1:0.
#include "driftwatch/cli/quality_report.h"

#include <mutex>
#include <sstream>
#include <string>

#include "driftwatch/cli/client.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A binary classifier's day: 812 of 1000 labelled, with a baseline.
v1::QualityReport BinaryReport() {
  v1::QualityReport r;
  r.mutable_model()->set_model_id("fraud");
  r.mutable_model()->set_model_version("3");
  (*r.mutable_slice()->mutable_values())["country"] = "de";
  r.mutable_window()->mutable_start()->set_seconds(1'714'521'600);  // 2024-05-01T00:00:00Z
  r.mutable_window()->mutable_end()->set_seconds(1'714'608'000);
  r.set_baseline("default");
  r.set_predicted_weight(1000);
  r.set_labelled_weight(812);
  r.set_label_coverage(0.812);
  r.set_mature(false);
  v1::QualityMetrics* cur = r.mutable_current();
  cur->set_has_auc(true);
  cur->set_auc(0.8123);
  cur->set_auc_error_bound(0.004);
  cur->set_has_calibration(true);
  cur->set_ece(0.0312);
  cur->set_mce(0.11);
  cur->set_brier(0.14);
  // Ten bins; two empty ones are left out of the curve.
  for (int b = 0; b < 10; ++b) {
    v1::ReliabilityBin* bin = r.add_reliability();
    bin->set_lower(b / 10.0);
    bin->set_upper((b + 1) / 10.0);
    bin->set_mean_score(b / 10.0 + 0.05);
    bin->set_mean_label(b / 10.0 + 0.04);
    bin->set_weight(b == 3 || b == 7 ? 0 : 100 + b);
  }
  r.set_has_accuracy(true);
  r.set_accuracy(0.91);
  r.set_decision_threshold(0.5);
  r.set_has_estimate(true);
  r.set_estimated_auc(0.7149);
  r.set_estimated_accuracy(0.8012);
  r.set_unlabelled_weight(188);
  r.set_estimate_calibration("baseline");
  v1::Quantiles* delay = r.mutable_label_delay_ms();
  delay->set_p50(3 * 3'600'000.0 + 12 * 60'000.0);  // 3h12m
  delay->set_p95(26 * 3'600'000.0);                 // 1d2h
  delay->set_p99(850);
  delay->set_relative_error_bound(0.01);
  v1::QualityMetrics* base = r.mutable_baseline_metrics();
  base->set_has_auc(true);
  base->set_auc(0.83);
  base->set_has_calibration(true);
  base->set_ece(0.025);
  base->set_mce(0.09);
  base->set_brier(0.13);
  r.set_auc_delta(0.8123 - 0.83);
  r.set_ece_delta(0.0312 - 0.025);
  v1::LabelCounts* c = r.mutable_counts();
  c->set_predictions(1000);
  c->set_labelled(812);
  c->set_conflicting(3);
  c->set_orphan(1);
  c->set_not_sampled(4);
  c->set_expired(5);
  c->set_pending(6);
  c->set_rejected(7);
  c->set_duplicates(2);
  return r;
}

nlohmann::json Json(const v1::QualityReport& r) {
  std::ostringstream out;
  WriteQualityReportJson(r, out);
  return nlohmann::json::parse(out.str());
}

std::string Text(const v1::QualityReport& r) {
  std::ostringstream out;
  WriteQualityReportText(r, out);
  return out.str();
}

TEST(QualityReportJsonTest, BinaryHasTheOfflineKeysPlusTheWindowsOwn) {
  const nlohmann::json j = Json(BinaryReport());
  // The keys of offline `quality --json`.
  EXPECT_EQ(j["n"], 812.0);
  EXPECT_EQ(j["auc"], 0.8123);
  EXPECT_EQ(j["ece"], 0.0312);
  EXPECT_EQ(j["mce"], 0.11);
  EXPECT_EQ(j["brier"], 0.14);
  ASSERT_EQ(j["reliability"].size(), 8u);  // the empty bins 3 and 7 are left out
  EXPECT_EQ(j["reliability"][0]["bin"], 0);
  EXPECT_EQ(j["reliability"][3]["bin"], 4);
  EXPECT_EQ(j["reliability"][7]["bin"], 9);
  EXPECT_EQ(j["reliability"][7]["count"], 109.0);
  EXPECT_DOUBLE_EQ(j["reliability"][7]["mean_score"].get<double>(), 0.95);
  EXPECT_DOUBLE_EQ(j["reliability"][7]["mean_label"].get<double>(), 0.94);
  EXPECT_FALSE(j.contains("ndcg"));
  // The online report's own.
  EXPECT_EQ(j["model"]["id"], "fraud");
  EXPECT_EQ(j["slice"]["country"], "de");
  EXPECT_EQ(j["window"]["start"], "2024-05-01T00:00:00Z");
  EXPECT_EQ(j["window"]["end"], "2024-05-02T00:00:00Z");
  EXPECT_EQ(j["auc_error_bound"], 0.004);
  EXPECT_EQ(j["predicted_weight"], 1000.0);
  EXPECT_EQ(j["labelled_weight"], 812.0);
  EXPECT_EQ(j["label_coverage"], 0.812);
  EXPECT_EQ(j["mature"], false);
  EXPECT_EQ(j["label_delay_ms"]["p50"], 11'520'000.0);
  EXPECT_EQ(j["label_delay_ms"]["p99"], 850.0);
  EXPECT_EQ(j["label_delay_ms"]["relative_error_bound"], 0.01);
  EXPECT_EQ(j["accuracy"], 0.91);
  EXPECT_EQ(j["decision_threshold"], 0.5);
  EXPECT_EQ(j["estimated_auc"], 0.7149);
  EXPECT_EQ(j["estimated_accuracy"], 0.8012);
  EXPECT_EQ(j["unlabelled_weight"], 188.0);
  EXPECT_EQ(j["estimate_calibration"], "baseline");
  EXPECT_EQ(j["baseline"], nlohmann::json({{"name", "default"}, {"auc", 0.83}, {"ece", 0.025}}));
  EXPECT_DOUBLE_EQ(j["auc_delta"].get<double>(), 0.8123 - 0.83);
  EXPECT_DOUBLE_EQ(j["ece_delta"].get<double>(), 0.0312 - 0.025);
  EXPECT_EQ(j["counts"], nlohmann::json({{"predictions", 1000},
                                         {"labelled", 812},
                                         {"conflicting", 3},
                                         {"orphan", 1},
                                         {"not_sampled", 4},
                                         {"expired", 5},
                                         {"pending", 6},
                                         {"rejected", 7},
                                         {"duplicates", 2}}));
  for (const char* absent : {"mae", "rmse", "bias", "macro_auc", "log_loss", "k", "queries"}) {
    EXPECT_FALSE(j.contains(absent)) << absent;
  }
}

TEST(QualityReportJsonTest, OnlyWhatTheReportHas) {
  // Nothing labelled yet: no metric, no estimate, baseline by name only.
  v1::QualityReport r;
  r.set_baseline("default");
  r.set_predicted_weight(50);
  nlohmann::json j = Json(r);
  EXPECT_EQ(j["n"], 0.0);
  for (const char* absent :
       {"auc", "auc_error_bound", "ece", "mce", "brier", "reliability", "ndcg", "accuracy",
        "decision_threshold", "estimated_auc", "estimate_calibration", "auc_delta", "ece_delta"}) {
    EXPECT_FALSE(j.contains(absent)) << absent;
  }
  EXPECT_EQ(j["baseline"], nlohmann::json({{"name", "default"}}));
  EXPECT_EQ(j["slice"], nlohmann::json::object());
  EXPECT_EQ(j["predicted_weight"], 50.0);

  // A ranker.
  v1::QualityReport ranker;
  ranker.set_has_ndcg(true);
  ranker.set_ndcg(0.815);
  ranker.set_k(5);
  ranker.set_queries(120);
  j = Json(ranker);
  EXPECT_EQ(j["ndcg"], 0.815);
  EXPECT_EQ(j["k"], 5);
  EXPECT_EQ(j["queries"], 120);
  EXPECT_FALSE(j.contains("auc"));

  // Regression.
  v1::QualityReport reg;
  reg.set_has_regression(true);
  reg.set_mae(1.5);
  reg.set_rmse(2.25);
  reg.set_bias(-0.5);
  j = Json(reg);
  EXPECT_EQ(j["mae"], 1.5);
  EXPECT_EQ(j["rmse"], 2.25);
  EXPECT_EQ(j["bias"], -0.5);
  EXPECT_FALSE(j.contains("accuracy"));

  // Multiclass: accuracy without a decision threshold.
  v1::QualityReport mc;
  mc.set_has_multiclass(true);
  mc.set_macro_auc(0.9);
  mc.set_macro_auc_error_bound(0.002);
  mc.set_accuracy(0.7);
  mc.set_log_loss(0.6);
  j = Json(mc);
  EXPECT_EQ(j["macro_auc"], 0.9);
  EXPECT_EQ(j["macro_auc_error_bound"], 0.002);
  EXPECT_EQ(j["accuracy"], 0.7);
  EXPECT_EQ(j["log_loss"], 0.6);
  EXPECT_FALSE(j.contains("decision_threshold"));

  // A baseline without labels: no deltas.
  v1::QualityReport no_base = BinaryReport();
  no_base.clear_baseline_metrics();
  j = Json(no_base);
  EXPECT_TRUE(j.contains("auc"));
  EXPECT_FALSE(j.contains("auc_delta"));
  EXPECT_FALSE(j.contains("ece_delta"));
  EXPECT_EQ(j["baseline"], nlohmann::json({{"name", "default"}}));
}

TEST(QualityReportTextTest, BinaryReadsAsATable) {
  const std::string t = Text(BinaryReport());
  EXPECT_THAT(t, HasSubstr("model: fraud@3  slice: country=de  window: 2024-05-01T00:00:00Z .. "
                           "2024-05-02T00:00:00Z (24h)  baseline: default\n"));
  EXPECT_THAT(t, HasSubstr("labelled 812 of 1000 (81.2%), mature: no\n"));
  EXPECT_THAT(t, HasSubstr("label delay: p50 3h12m, p95 1d2h, p99 850ms (each within 1%)\n"));
  // The table: metric, current (AUC with its bound), baseline, delta.
  EXPECT_THAT(t, HasSubstr("metric"));
  EXPECT_THAT(t, HasSubstr("0.8123 \u00b1 0.0040"));
  EXPECT_THAT(t, HasSubstr("0.8300  -0.0177\n"));
  EXPECT_THAT(t, HasSubstr("0.0250  +0.0062\n"));
  EXPECT_THAT(t, HasSubstr("accuracy (threshold 0.5)"));
  EXPECT_THAT(t, HasSubstr("estimated for the 188 unlabelled: auc 0.71, accuracy 0.80 "
                           "(calibrated on baseline)\n"));
  EXPECT_THAT(t, HasSubstr("predictions: 1000 kept for the join, 812 labelled, 5 expired"));
  EXPECT_THAT(t, HasSubstr("3 conflicting, 1 orphan, 4 not sampled, 2 duplicates, 7 rejected; "
                           "6 waited for their prediction"));
  // The offline reliability table, without the empty bins.
  EXPECT_THAT(t, HasSubstr("reliability (non-empty bins)\n"));
  EXPECT_THAT(t, HasSubstr("   9      0.9500      0.9400         109\n"));
  EXPECT_THAT(t, Not(HasSubstr("   3      0.3500")));
}

TEST(QualityReportTextTest, ColumnsAlignWithTheBoundSign) {
  // "±" is two bytes: the columns after it still line up.
  const std::string t = Text(BinaryReport());
  std::istringstream lines(t);
  std::string line;
  std::vector<std::string> table;
  while (std::getline(lines, line)) {
    if (line.rfind("auc ", 0) == 0 || line.rfind("ece ", 0) == 0) table.push_back(line);
  }
  ASSERT_EQ(table.size(), 2u);
  auto columns = [](const std::string& s) {
    size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
  };
  EXPECT_EQ(columns(table[0]), columns(table[1]));
}

TEST(QualityReportTextTest, NothingLabelledAndOtherKinds) {
  v1::QualityReport r;
  r.mutable_model()->set_model_id("m");
  r.mutable_window()->mutable_start()->set_seconds(1'714'521'600);
  r.mutable_window()->mutable_end()->set_seconds(1'714'525'200);
  r.set_predicted_weight(50);
  std::string t = Text(r);
  EXPECT_THAT(t, HasSubstr("(1h)  baseline: -"));
  EXPECT_THAT(t, HasSubstr("labelled 0 of 50 (0.0%), mature: no"));
  EXPECT_THAT(t, HasSubstr("no prediction of the window is labelled yet"));
  EXPECT_THAT(t, Not(HasSubstr("label delay")));
  EXPECT_THAT(t, Not(HasSubstr("reliability")));

  v1::QualityReport ranker;
  ranker.set_labelled_weight(10);
  ranker.set_has_ndcg(true);
  ranker.set_ndcg(0.815);
  ranker.set_k(5);
  ranker.set_queries(120);
  t = Text(ranker);
  EXPECT_THAT(t, HasSubstr("ndcg@5 (120 queries)"));
  EXPECT_THAT(t, HasSubstr(" 0.8150\n"));
  EXPECT_THAT(t, Not(HasSubstr("baseline  delta")));  // nothing to compare with

  v1::QualityReport est = BinaryReport();
  est.set_estimate_calibration("identity");
  EXPECT_THAT(Text(est), HasSubstr("(scores taken as calibrated: the baseline has no labels)"));
}

// Answers GetQualityReport with BinaryReport() and keeps the request.
class FakeReports final : public v1::Reports::Service {
 public:
  grpc::Status GetQualityReport(grpc::ServerContext*, const v1::GetQualityReportRequest* request,
                                v1::QualityReport* response) override {
    std::lock_guard<std::mutex> lock(mu);
    last = *request;
    if (request->model().model_id() != "fraud") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "model is not registered");
    }
    *response = BinaryReport();
    return grpc::Status::OK;
  }
  std::mutex mu;
  v1::GetQualityReportRequest last;
};

class OnlineQualityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.server.server = "127.0.0.1:" + std::to_string(port);
    options_.server.timeout = "10s";
    options_.model = "fraud";
  }
  void TearDown() override { server_->Shutdown(); }

  FakeReports fake_;
  std::unique_ptr<grpc::Server> server_;
  OnlineQualityOptions options_;
};

TEST_F(OnlineQualityTest, SendsTheFlagsAndPrintsTheReport) {
  options_.version = "3";
  options_.slice = {"country=de"};
  options_.window.from = "2024-05-01T00:00:00Z";
  options_.window.to = "1714608000000";
  options_.baseline = "launch";
  options_.k = 5;
  options_.bins = 20;
  options_.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunOnlineQuality(options_, out, err), kExitOk) << err.str();
  const v1::GetQualityReportRequest& q = fake_.last;
  EXPECT_EQ(q.model().model_version(), "3");
  EXPECT_EQ(q.slice().values().at("country"), "de");
  EXPECT_EQ(q.window().range().start().seconds(), 1'714'521'600);
  EXPECT_EQ(q.window().range().end().seconds(), 1'714'608'000);
  EXPECT_EQ(q.baseline(), "launch");
  EXPECT_EQ(q.k(), 5u);
  EXPECT_EQ(q.bins(), 20u);
  EXPECT_EQ(nlohmann::json::parse(out.str())["auc"], 0.8123);

  // Unset --k and --window: the server's defaults.
  options_ = OnlineQualityOptions{options_.server, "fraud"};
  std::ostringstream text;
  ASSERT_EQ(RunOnlineQuality(options_, text, err), kExitOk) << err.str();
  EXPECT_EQ(fake_.last.k(), 0u);
  EXPECT_EQ(fake_.last.bins(), 10u);
  EXPECT_EQ(fake_.last.window().window_case(), v1::Window::WINDOW_NOT_SET);
  EXPECT_THAT(text.str(), HasSubstr("labelled 812 of 1000 (81.2%), mature: no"));
}

TEST_F(OnlineQualityTest, BadFlagsAndRpcErrors) {
  std::ostringstream out, err;
  options_.slice = {"country"};
  EXPECT_EQ(RunOnlineQuality(options_, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("--slice: expected KEY=VALUE"));
  options_.slice.clear();
  options_.k = 0;
  EXPECT_EQ(RunOnlineQuality(options_, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("--k must be >= 1"));
  options_.k.reset();
  options_.window.window = "1h";
  options_.window.from = "1";
  EXPECT_EQ(RunOnlineQuality(options_, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("--window and --from/--to exclude each other"));
  options_.window = {};
  options_.model = "nope";
  std::ostringstream rpc;
  EXPECT_EQ(RunOnlineQuality(options_, out, rpc), kExitRpcFailed);
  EXPECT_EQ(rpc.str(), "driftctl: GetQualityReport: NOT_FOUND: model is not registered\n");
}

}  // namespace
}  // namespace driftwatch::cli
