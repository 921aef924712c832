// driftctl's online subcommands against an in-process fake driftwatchd
// (bound to 127.0.0.1:0): file-to-schema mapping, batching, summaries,
// error codes and the report's JSON shape. The real server end to end is
// tests/service/driftwatchd_e2e_test.cc.
#include "driftwatch/cli/client.h"

#include <cmath>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// One model "m@1": numeric x, categorical c, slice key country, score "p".
v1::ModelSchema TestSchema() {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("m");
  s.mutable_model()->set_model_version("1");
  auto* x = s.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  auto* c = s.add_features();
  c->set_name("c");
  c->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  s.add_slice_keys()->set_key("country");
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_score_names("p");
  return s;
}

// Dedups by event id like the real ingestor; records every event it got.
class FakeServer final : public v1::Models::Service,
                         public v1::Ingest::Service,
                         public v1::Reports::Service {
 public:
  grpc::Status RegisterModel(grpc::ServerContext*, const v1::RegisterModelRequest* request,
                             v1::RegisterModelResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    registered_ = request->schema();
    *response->mutable_schema() = request->schema();
    response->set_created(true);
    return grpc::Status::OK;
  }
  grpc::Status GetModel(grpc::ServerContext*, const v1::GetModelRequest* request,
                        v1::ModelSchema* response) override {
    if (request->model().model_id() != "m") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "model \"" + request->model().model_id() + "\" is not registered");
    }
    *response = TestSchema();
    return grpc::Status::OK;
  }
  grpc::Status ListModels(grpc::ServerContext*, const v1::ListModelsRequest*,
                          v1::ListModelsResponse* response) override {
    *response->add_models() = TestSchema();
    return grpc::Status::OK;
  }
  grpc::Status CreateBaseline(grpc::ServerContext*, const v1::CreateBaselineRequest* request,
                              v1::Baseline* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    baseline_request_ = *request;
    *response->mutable_model() = request->model();
    *response->mutable_spec() = request->baseline();
    response->set_reference_weight(3);
    return grpc::Status::OK;
  }
  grpc::Status StreamPredictions(grpc::ServerContext*,
                                 grpc::ServerReader<v1::PredictionBatch>* reader,
                                 v1::IngestAck* ack) override {
    v1::PredictionBatch batch;
    std::lock_guard<std::mutex> lock(mu_);
    ++streams_;
    while (reader->Read(&batch)) {
      ack->set_batches(ack->batches() + 1);
      if (batch.model().model_version() != "1") {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unresolved version");
      }
      std::vector<v1::PredictionEvent> events;
      if (batch.has_rows()) {
        events.assign(batch.rows().events().begin(), batch.rows().events().end());
      } else {
        const v1::ColumnarBatch& c = batch.columns();
        for (uint32_t i = 0; i < c.num_events(); ++i) {
          v1::PredictionEvent e;
          e.set_event_id(c.event_ids(i));
          e.set_event_time_ms(c.event_time_ms(i));
          e.add_numeric(c.numeric(i));
          const int code = c.categorical(0).codes(i);
          e.add_categorical(code < 0 ? "" : c.categorical(0).dictionary(code));
          e.add_scores(c.scores(i));
          e.add_slice_values(c.slice_dictionary(c.slice_codes(i)).values(0));
          events.push_back(e);
        }
      }
      for (const v1::PredictionEvent& e : events) {
        if (e.event_id().empty()) {
          ack->set_rejected(ack->rejected() + 1);
          auto* r = ack->add_reasons();
          r->set_reason("missing_event_id");
          r->set_count(1);
          r->set_message("event_id is empty");
        } else if (!seen_.insert(e.event_id()).second) {
          ack->set_duplicates(ack->duplicates() + 1);
        } else {
          ack->set_accepted(ack->accepted() + 1);
          events_.push_back(e);
        }
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status GetDataQualityReport(grpc::ServerContext*,
                                    const v1::GetDataQualityReportRequest* request,
                                    v1::DataQualityReport* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    dq_request_ = *request;
    *response->mutable_model() = request->model();
    *response->mutable_slice() = request->slice();
    response->mutable_window()->mutable_start()->set_seconds(1'700'000'000);
    response->mutable_window()->mutable_end()->set_seconds(1'700'003'600);
    response->set_events(400);
    response->set_duplicates(100);
    response->set_duplicate_rate(0.2);
    auto* f = response->add_features();
    f->set_name("tenure");
    f->set_kind("numeric");
    f->set_null_rate(1.0);
    f->set_reference_null_rate(0.0);
    response->mutable_lateness_seconds()->set_p95(30);
    response->set_silent(true);
    response->set_silence_seconds(900);
    (*response->mutable_feature_hashes())["fe-v2"] = 400;
    response->add_baseline_feature_hashes("fe-v1");
    response->set_fingerprint_mismatch(1.0);
    response->set_volume(30);
    response->set_volume_expected(100);
    response->set_volume_z(-6.8);
    response->set_volume_baseline("trailing");
    response->set_volume_history(24);
    return grpc::Status::OK;
  }
  grpc::Status CompareVersions(grpc::ServerContext*, const v1::CompareVersionsRequest* request,
                               v1::CompareVersionsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    compare_request_ = *request;
    response->set_model_name(request->model_name());
    response->set_version_a(request->version_a());
    response->set_version_b(request->version_b());
    response->mutable_window()->mutable_start()->set_seconds(1'700'000'000);
    response->mutable_window()->mutable_end()->set_seconds(1'700'003'600);
    response->set_threshold(0.5);
    response->set_k(10);
    auto fill = [](v1::VersionAgreement* a, uint64_t paired, double r) {
      a->set_paired(paired);
      a->set_score_correlation(r);
      a->set_decision_agreement(r);
      a->set_topk_overlap(std::nan(""));
      a->set_mean_abs_diff(0.1);
      a->set_psi(0.02);
    };
    fill(response->mutable_population(), 1200, 0.7);
    v1::VersionAgreement* android = response->add_slices();
    (*android->mutable_slice()->mutable_values())["platform"] = "android";
    fill(android, 400, 0.05);
    return grpc::Status::OK;
  }
  grpc::Status GetDriftReport(grpc::ServerContext*, const v1::GetDriftReportRequest* request,
                              v1::DriftReport* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    report_request_ = *request;
    *response->mutable_model() = TestSchema().model();
    *response->mutable_slice() = request->slice();
    response->mutable_window()->mutable_start()->set_seconds(1'700'000'000);
    response->mutable_window()->mutable_end()->set_seconds(1'700'003'600);
    response->set_baseline("default");
    auto* x = response->add_features();
    x->set_name("x");
    x->set_kind(v1::FEATURE_KIND_NUMERIC);
    x->set_n_reference(100);
    x->set_n_current(50);
    x->set_psi(0.25);
    x->mutable_ks()->set_statistic(0.3);
    x->mutable_ks()->set_p_value(0.01);
    x->mutable_ks()->set_error_bound(0.02);
    x->mutable_ks()->set_p_value_low(0.004);
    x->set_wasserstein(1.5);
    x->set_wasserstein_norm(0.5);
    x->set_wasserstein_error_bound(0.66);
    x->set_wasserstein_norm_error_bound(0.22);
    x->set_drifted(true);
    auto* c = response->add_features();
    c->set_name("c");
    c->set_kind(v1::FEATURE_KIND_CATEGORICAL);
    c->set_psi(0.01);
    c->mutable_chi2()->set_df(2);
    auto* p = response->add_scores();
    p->set_name("p");
    p->set_kind(v1::FEATURE_KIND_NUMERIC);
    p->mutable_ks();
    response->mutable_counts()->set_events(50);
    return grpc::Status::OK;
  }

  std::mutex mu_;
  std::set<std::string> seen_;
  std::vector<v1::PredictionEvent> events_;
  int streams_ = 0;
  v1::ModelSchema registered_;
  v1::CreateBaselineRequest baseline_request_;
  v1::GetDriftReportRequest report_request_;
  v1::GetDataQualityReportRequest dq_request_;
  v1::CompareVersionsRequest compare_request_;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(static_cast<v1::Models::Service*>(&fake_));
    builder.RegisterService(static_cast<v1::Ingest::Service*>(&fake_));
    builder.RegisterService(static_cast<v1::Reports::Service*>(&fake_));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    server_options_.server = "127.0.0.1:" + std::to_string(port);
    server_options_.timeout = "10s";
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("client_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    server_->Shutdown();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  struct Result {
    int code;
    std::string out, err;
  };
  Result Push(PushOptions options) {
    options.server = server_options_;
    options.model = options.model.empty() ? "m" : options.model;
    options.json = true;
    std::ostringstream out, err;
    const int code = RunPush(options, out, err, /*err_is_tty=*/false);
    return {code, out.str(), err.str()};
  }

  FakeServer fake_;
  std::unique_ptr<grpc::Server> server_;
  ServerOptions server_options_;
  fs::path dir_;
};

constexpr char kEvents[] =
    "event_id,event_time_ms,x,c,country,p,extra\n"
    "e1,1700000000000,1.5,a,us,0.1,z\n"
    "e2,2023-11-14T22:13:21Z,,b,de,0.2,z\n"
    "e3,1700000002000,3,,us,0.3,z\n"
    ",1700000003000,4,a,fr,0.4,z\n"
    "e5,1700000004000,5,b,,0.5,z\n";

TEST_F(ClientTest, PushMapsColumnsByNameAndRerunIsAllDuplicates) {
  PushOptions options;
  options.input = Write("events.csv", kEvents);
  options.batch = 2;
  options.stream_batches = 1;  // 3 streams
  options.allow_rejects = true;  // one row has no event id (push_test.cc: the exit code)
  Result r = Push(options);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("ignoring column extra"));
  nlohmann::json s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["sent"], 5);
  EXPECT_EQ(s["accepted"], 4);
  EXPECT_EQ(s["rejected"], 1);
  EXPECT_EQ(s["reasons"][0]["reason"], "missing_event_id");
  EXPECT_EQ(fake_.streams_, 3);
  ASSERT_EQ(fake_.events_.size(), 4u);
  const v1::PredictionEvent& e2 = fake_.events_[1];
  EXPECT_EQ(e2.event_time_ms(), 1'700'000'001'000);  // RFC 3339
  EXPECT_TRUE(std::isnan(e2.numeric(0)));            // empty numeric = NaN
  EXPECT_EQ(e2.categorical(0), "b");
  EXPECT_EQ(e2.slice_values(0), "de");
  EXPECT_DOUBLE_EQ(e2.scores(0), 0.2);
  EXPECT_EQ(fake_.events_[2].categorical(0), "");  // empty categorical = null

  Result again = Push(options);
  ASSERT_EQ(again.code, 0) << again.err;
  nlohmann::json s2 = nlohmann::json::parse(again.out);
  EXPECT_EQ(s2["accepted"], 0);
  EXPECT_EQ(s2["duplicates"], 4);
}

TEST_F(ClientTest, ColumnarAndJsonlCarryTheSameEvents) {
  PushOptions options;
  options.input = Write("events.jsonl",
                        "{\"event_id\":\"j1\",\"event_time_ms\":1700000000000,\"x\":2.5,"
                        "\"c\":\"a\",\"country\":\"us\",\"p\":0.7}\n\n"
                        "{\"event_id\":\"j2\",\"event_time_ms\":1700000000001,\"x\":null,"
                        "\"c\":null,\"country\":\"de\",\"p\":0.25}\n");
  options.columnar = true;
  Result r = Push(options);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(fake_.events_.size(), 2u);
  EXPECT_DOUBLE_EQ(fake_.events_[0].numeric(0), 2.5);
  EXPECT_EQ(fake_.events_[0].slice_values(0), "us");
  EXPECT_TRUE(std::isnan(fake_.events_[1].numeric(0)));
  EXPECT_EQ(fake_.events_[1].categorical(0), "");
  EXPECT_DOUBLE_EQ(fake_.events_[1].scores(0), 0.25);
}

TEST_F(ClientTest, MissingColumnsAndBadCellsAreBadInputAndSendNothing) {
  PushOptions options;
  options.input = Write("short.csv", "event_id,x\ne1,1\n");
  Result r = Push(options);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("missing columns \"event_time_ms\" (event time)"));
  EXPECT_THAT(r.err, HasSubstr("\"c\" (categorical feature)"));
  EXPECT_THAT(r.err, HasSubstr("\"p\" (score)"));

  options.input =
      Write("bad.csv", "event_id,event_time_ms,x,c,country,p\ne1,1700000000000,abc,a,us,0.1\n");
  r = Push(options);
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_THAT(r.err, HasSubstr("bad.csv:2: column \"x\": expected a number, got \"abc\""));
  EXPECT_EQ(fake_.streams_, 0);
}

TEST_F(ClientTest, RpcErrorsNameTheRpcAndCode) {
  PushOptions options;
  options.input = Write("events.csv", kEvents);
  options.model = "nope";
  Result r = Push(options);
  EXPECT_EQ(r.code, kExitRpcFailed);
  EXPECT_THAT(r.err, HasSubstr("driftctl: GetModel: NOT_FOUND: model \"nope\""));
}

TEST_F(ClientTest, QualityDataSendsTheSliceAndPrintsEveryPart) {
  DataQualityOptions options;
  options.server = server_options_;
  options.model = "m";
  options.slice = {"app_version=8.0"};
  options.window.window = "1h";
  options.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunDataQuality(options, out, err), 0) << err.str();
  EXPECT_EQ(fake_.dq_request_.slice().values().at("app_version"), "8.0");
  EXPECT_EQ(fake_.dq_request_.window().last_seconds(), 3600);
  nlohmann::json doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["slice"]["app_version"], "8.0");
  EXPECT_EQ(doc["features"][0]["name"], "tenure");
  EXPECT_EQ(doc["features"][0]["null_rate"], 1.0);
  EXPECT_EQ(doc["features"][0]["reference_null_rate"], 0.0);
  EXPECT_EQ(doc["duplicate_rate"], 0.2);
  EXPECT_EQ(doc["silent"], true);
  EXPECT_EQ(doc["feature_hashes"]["fe-v2"], 400);
  EXPECT_EQ(doc["fingerprint_mismatch"], 1.0);
  options.json = false;
  std::ostringstream text;
  ASSERT_EQ(RunDataQuality(options, text, err), 0);
  EXPECT_THAT(text.str(), HasSubstr("slice: app_version=8.0"));
  EXPECT_THAT(text.str(), HasSubstr("100.00%"));
  EXPECT_THAT(text.str(), HasSubstr("SILENT"));
  EXPECT_THAT(text.str(), HasSubstr("fe-v2 (400); baseline: fe-v1"));
  EXPECT_THAT(text.str(), HasSubstr("volume: 30.0 events/h, expected 100.0 (trailing, 24 h), "
                                    "robust z -6.80"));
  EXPECT_EQ(doc["volume"]["z"], -6.8);
}

TEST_F(ClientTest, CompareVersionsSendsBothVersionsAndPrintsEverySlice) {
  CompareVersionsOptions options;
  options.server = server_options_;
  options.model = "loan";
  options.a = "v1";
  options.b = "v2";
  options.window.window = "1h";
  options.k = 5;
  options.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunCompareVersions(options, out, err), 0) << err.str();
  EXPECT_EQ(fake_.compare_request_.model_name(), "loan");
  EXPECT_EQ(fake_.compare_request_.version_a(), "v1");
  EXPECT_EQ(fake_.compare_request_.version_b(), "v2");
  EXPECT_EQ(fake_.compare_request_.k(), 5u);
  EXPECT_EQ(fake_.compare_request_.window().last_seconds(), 3600);
  nlohmann::json doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["population"]["paired"], 1200);
  EXPECT_TRUE(doc["population"]["topk_overlap"].is_null());  // not a ranker
  EXPECT_EQ(doc["slices"][0]["slice"]["platform"], "android");
  EXPECT_EQ(doc["slices"][0]["score_correlation"], 0.05);
  options.json = false;
  std::ostringstream text;
  ASSERT_EQ(RunCompareVersions(options, text, err), 0);
  EXPECT_THAT(text.str(), HasSubstr("v2 against v1"));
  EXPECT_THAT(text.str(), HasSubstr("platform=android"));
  EXPECT_THAT(text.str(), HasSubstr("0.0500"));
}

TEST_F(ClientTest, ReportJsonHasTheStatsRecordShapePlusWindow) {
  OnlineReportOptions options;
  options.server = server_options_;
  options.model = "m";
  options.slice = {"country=us"};
  options.window.window = "1h";
  options.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunOnlineReport(options, out, err), 0) << err.str();
  EXPECT_EQ(fake_.report_request_.window().last_seconds(), 3600);
  nlohmann::json doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["model"]["id"], "m");
  EXPECT_EQ(doc["slice"]["country"], "us");
  EXPECT_EQ(doc["window"]["start"], "2023-11-14T22:13:20Z");
  const nlohmann::json& x = doc["features"][0];
  EXPECT_EQ(x["name"], "x");
  EXPECT_EQ(x["kind"], "numeric");
  EXPECT_EQ(x["psi"], 0.25);
  EXPECT_EQ(x["ks"]["statistic"], 0.3);
  EXPECT_EQ(x["ks"]["error_bound"], 0.02);
  EXPECT_EQ(x["ks"]["p_value_low"], 0.004);
  EXPECT_EQ(x["wasserstein_norm"], 0.5);
  EXPECT_EQ(x["wasserstein_error_bound"], 0.66);
  EXPECT_EQ(x["wasserstein_norm_error_bound"], 0.22);
  EXPECT_FALSE(x.contains("chi2"));
  EXPECT_EQ(doc["features"][1]["chi2"]["df"], 2);
  EXPECT_FALSE(doc["features"][1].contains("ks"));
  EXPECT_EQ(doc["scores"][0]["name"], "p");

  options.json = false;
  std::ostringstream text;
  ASSERT_EQ(RunOnlineReport(options, text, err), 0);
  EXPECT_THAT(text.str(), HasSubstr("slice: country=us"));
  EXPECT_THAT(text.str(), HasSubstr("* x "));  // drifted, the stats table's marker
  EXPECT_THAT(text.str(), HasSubstr("KS p / chi2 p"));
  // Summary-based values print with their bounds; a bounded KS p is a range.
  EXPECT_THAT(text.str(), HasSubstr("0.3000 +0.0200"));
  EXPECT_THAT(text.str(), HasSubstr("0.004..0.01"));
  EXPECT_THAT(text.str(), HasSubstr("0.5000 \u00b1 0.2200"));
  EXPECT_THAT(text.str(), HasSubstr("(1h of whole buckets)"));
}

TEST_F(ClientTest, RegisterReadsProtoJsonAndYaml) {
  RegisterOptions options;
  options.server = server_options_;
  options.schema_path =
      Write("s.json", R"({"model":{"model_id":"m","model_version":"1"},)"
                      R"("features":[{"name":"x","kind":"FEATURE_KIND_NUMERIC",)"
                      R"("summary_edges":[1,2.5]}],"score_kind":"SCORE_KIND_REGRESSION"})");
  std::ostringstream out, err;
  ASSERT_EQ(RunRegister(options, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "created m@1\n");
  EXPECT_EQ(fake_.registered_.features(0).summary_edges(1), 2.5);

  options.schema_path = Write("s.yaml",
                              "model: {model_id: m, model_version: 2}\n"
                              "features:\n"
                              "  - {name: x, kind: FEATURE_KIND_NUMERIC, nullable: true,\n"
                              "     reference_sample: [1, 2, 3.5]}\n");
  ASSERT_EQ(RunRegister(options, out, err), 0) << err.str();
  EXPECT_EQ(fake_.registered_.model().model_version(), "2");
  EXPECT_TRUE(fake_.registered_.features(0).nullable());
  EXPECT_EQ(fake_.registered_.features(0).reference_sample(2), 3.5);

  options.schema_path = Write("bad.json", R"({"modle":{}})");
  std::ostringstream bad;
  EXPECT_EQ(RunRegister(options, out, bad), kExitBadInput);
  EXPECT_THAT(bad.str(), HasSubstr("bad.json: not a driftwatch.v1.ModelSchema"));
}

TEST_F(ClientTest, BaselineFromProfileSendsColumns) {
  BaselineCreateOptions options;
  options.server = server_options_;
  options.model = "m";
  options.profile = Write("ref.csv", "x,c,p\n1,a,0.5\n,b,0.25\n3,a,0.75\n");
  std::ostringstream out, err;
  ASSERT_EQ(RunBaselineCreate(options, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("created baseline default for m@1"));
  const v1::ReferenceProfile& p = fake_.baseline_request_.baseline().profile();
  ASSERT_EQ(p.numeric_size(), 1);
  EXPECT_EQ(p.numeric(0).values_size(), 3);
  EXPECT_TRUE(std::isnan(p.numeric(0).values(1)));
  EXPECT_EQ(p.categorical(0).codes(2), 0);
  EXPECT_EQ(p.scores_size(), 3);

  BaselineCreateOptions trailing;
  trailing.server = server_options_;
  trailing.model = "m";
  trailing.trailing = "24h:1h";
  ASSERT_EQ(RunBaselineCreate(trailing, out, err), 0) << err.str();
  EXPECT_EQ(fake_.baseline_request_.baseline().trailing().length_seconds(), 86400);
  EXPECT_EQ(fake_.baseline_request_.baseline().trailing().lag_seconds(), 3600);

  trailing.range = "1..2";
  std::ostringstream two;
  EXPECT_EQ(RunBaselineCreate(trailing, out, two), kExitBadInput);
  EXPECT_THAT(two.str(), HasSubstr("exactly one of"));
}

}  // namespace
}  // namespace driftwatch::cli
