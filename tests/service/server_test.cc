// The process around the ingest path: a real Server on 127.0.0.1:0 spoken
// to through real gRPC stubs and a raw /metrics socket; the configuration
// file and flags; driftwatchd itself as a subprocess.
#include "driftwatch/service/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <thread>
#include <vector>

#include "driftwatch/v1/alerts.grpc.pb.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "driftwatch/v1/reports.grpc.pb.h"

extern char** environ;

namespace driftwatch::service {
namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "driftwatch-server-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::ModelSchema Schema(const std::string& version = "v1") {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("fraud");
  s.mutable_model()->set_model_version(version);
  auto* amount = s.add_features();
  amount->set_name("amount");
  amount->set_kind(v1::FEATURE_KIND_NUMERIC);
  amount->set_nullable(true);
  for (int i = 0; i < 100; ++i) amount->add_reference_sample(i);
  auto* country = s.add_features();
  country->set_name("country");
  country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_score_names("p_fraud");
  s.add_slice_keys()->set_key("platform");
  return s;
}

int64_t NowMs() { return base::SystemClock().NowMs(); }

v1::PredictionBatch Rows(const std::vector<std::string>& ids, int64_t t) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id("fraud");
  b.mutable_model()->set_model_version("v1");
  for (const std::string& id : ids) {
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id(id);
    e->set_event_time_ms(t);
    e->add_numeric(42);
    e->add_categorical("US");
    e->add_scores(0.25);
    e->add_slice_values("ios");
  }
  return b;
}

v1::PredictionBatch Columns(const std::vector<std::string>& ids, int64_t t) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id("fraud");
  b.mutable_model()->set_model_version("v1");
  v1::ColumnarBatch* c = b.mutable_columns();
  c->set_num_events(static_cast<uint32_t>(ids.size()));
  v1::CategoricalColumn* country = c->add_categorical();
  country->set_name("country");
  country->add_dictionary("DE");
  c->add_slice_dictionary()->add_values("android");
  for (size_t i = 0; i < ids.size(); ++i) {
    c->add_event_ids(ids[i]);
    c->add_event_time_ms(t);
    c->add_numeric(static_cast<double>(i));
    country->add_codes(0);
    c->add_scores(0.5);
    c->add_slice_codes(0);
  }
  return b;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }
  void TearDown() override { server_.reset(); }

  void StartServer() {
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "127.0.0.1:0";
    config.data_dir = dir_.File("data");
    config.ingest.flush_interval_ms = 50;
    config.ingest.raw_sample_rate = 1.0;
    config.signal_interval_ms = 50;
    config.rules_file = rules_file_;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(config, &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->grpc_port(), 0);
    ASSERT_GT(server_->metrics_port(), 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    ingest_ = v1::Ingest::NewStub(channel);
    models_ = v1::Models::NewStub(channel);
    alerts_ = v1::Alerts::NewStub(channel);
    reports_ = v1::Reports::NewStub(channel);
  }

  void Restart() {
    server_->Shutdown();
    server_.reset();
    StartServer();
  }

  // Registers the test schema with a baseline of amounts 0..99, then
  // streams 50 events whose ids start with `prefix`, every amount 42.
  void RegisterAndDrift(const std::string& prefix) {
    bool created = false;
    ASSERT_TRUE(Register(Schema(), &created).ok());
    v1::CreateBaselineRequest request;
    request.mutable_model()->set_model_id("fraud");
    request.mutable_baseline()->set_name("default");
    v1::ReferenceProfile* ref = request.mutable_baseline()->mutable_profile();
    v1::NumericColumn* amount = ref->add_numeric();
    amount->set_name("amount");
    for (int i = 0; i < 100; ++i) {
      amount->add_values(i);
      ref->add_scores(0.25);
    }
    grpc::ClientContext ctx;
    v1::Baseline baseline;
    ASSERT_TRUE(models_->CreateBaseline(&ctx, request, &baseline).ok());
    std::vector<std::string> ids;
    for (int i = 0; i < 50; ++i) ids.push_back(prefix + std::to_string(i));
    v1::IngestAck ack;
    ASSERT_TRUE(Stream({Rows(ids, NowMs())}, &ack).ok());
  }

  grpc::Status Register(const v1::ModelSchema& schema, bool* created) {
    grpc::ClientContext ctx;
    v1::RegisterModelRequest request;
    *request.mutable_schema() = schema;
    v1::RegisterModelResponse response;
    grpc::Status status = models_->RegisterModel(&ctx, request, &response);
    *created = response.created();
    return status;
  }

  // One client stream carrying `batches`; the ack or the error.
  grpc::Status Stream(const std::vector<v1::PredictionBatch>& batches, v1::IngestAck* ack) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto writer = ingest_->StreamPredictions(&ctx, ack);
    for (const auto& b : batches) {
      if (!writer->Write(b)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  TempDir dir_;
  base::SystemClock clock_;
  std::string rules_file_;  // config.rules_file of the next start
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Ingest::Stub> ingest_;
  std::unique_ptr<v1::Models::Stub> models_;
  std::unique_ptr<v1::Alerts::Stub> alerts_;
  std::unique_ptr<v1::Reports::Stub> reports_;
};

TEST_F(ServerTest, RegisterModelIsIdempotentAndRefusesAnotherSchema) {
  bool created = false;
  ASSERT_TRUE(Register(Schema(), &created).ok());
  EXPECT_TRUE(created);
  ASSERT_TRUE(Register(Schema(), &created).ok());
  EXPECT_FALSE(created);
  v1::ModelSchema other = Schema();
  other.mutable_features(0)->set_nullable(false);
  grpc::Status status = Register(other, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();

  grpc::ClientContext ctx;
  v1::GetModelRequest get;
  get.mutable_model()->set_model_id("fraud");
  v1::ModelSchema got;
  ASSERT_TRUE(models_->GetModel(&ctx, get, &got).ok());
  EXPECT_EQ(got.model().model_version(), "v1");
  EXPECT_EQ(got.features_size(), 2);

  grpc::ClientContext list_ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(models_->ListModels(&list_ctx, v1::ListModelsRequest(), &list).ok());
  EXPECT_EQ(list.models_size(), 1);

  grpc::ClientContext missing_ctx;
  get.mutable_model()->set_model_id("nope");
  EXPECT_EQ(models_->GetModel(&missing_ctx, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, StreamsRowAndColumnarBatchesAndAcksCounts) {
  bool created = false;
  ASSERT_TRUE(Register(Schema(), &created).ok());
  const int64_t t = NowMs();
  v1::PredictionBatch rows = Rows({"r1", "r2", "r3"}, t);
  rows.mutable_rows()->mutable_events(1)->clear_event_id();  // rejected, the rest go in
  std::vector<v1::PredictionBatch> stream = {rows, Columns({"c1", "c2"}, t)};

  v1::IngestAck ack;
  grpc::Status status = Stream(stream, &ack);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ack.batches(), 2u);
  EXPECT_EQ(ack.accepted(), 4u);
  EXPECT_EQ(ack.rejected(), 1u);
  EXPECT_EQ(ack.duplicates(), 0u);
  ASSERT_EQ(ack.reasons_size(), 1);
  EXPECT_EQ(ack.reasons(0).reason(), "missing_event_id");
  EXPECT_EQ(ack.reasons(0).count(), 1u);
  EXPECT_FALSE(ack.reasons(0).message().empty());

  // The retried stream is all duplicates: nothing is counted twice.
  v1::IngestAck retry;
  ASSERT_TRUE(Stream(stream, &retry).ok());
  EXPECT_EQ(retry.accepted(), 0u);
  EXPECT_EQ(retry.duplicates(), 4u);
  EXPECT_EQ(retry.rejected(), 1u);
  EXPECT_EQ(server_->ingestor().totals().accepted.load(), 4u);

  // Restart on the same data dir: dedup ids were persisted with the ack.
  Restart();
  v1::IngestAck after;
  ASSERT_TRUE(Stream(stream, &after).ok());
  EXPECT_EQ(after.accepted(), 0u);
  EXPECT_EQ(after.duplicates(), 4u);
  v1::IngestAck fresh;
  ASSERT_TRUE(Stream({Rows({"r9"}, t)}, &fresh).ok());
  EXPECT_EQ(fresh.accepted(), 1u);
}

TEST_F(ServerTest, UnknownModelEndsTheStreamWithNotFound) {
  v1::IngestAck ack;
  grpc::Status status = Stream({Rows({"a"}, NowMs())}, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("fraud"), std::string::npos) << status.error_message();

  bool created = false;
  ASSERT_TRUE(Register(Schema(), &created).ok());
  v1::PredictionBatch malformed = Columns({"a", "b"}, NowMs());
  malformed.mutable_columns()->set_num_events(3);  // columns hold 2 values each
  status = Stream({malformed}, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

TEST_F(ServerTest, EmptyStreamAcksZeroAndAnEmptyRuleIsRefused) {
  v1::IngestAck ack;
  ASSERT_TRUE(Stream({}, &ack).ok());
  EXPECT_EQ(ack.batches(), 0u);

  grpc::ClientContext label_ctx;
  v1::LabelAck label_ack;
  auto writer = ingest_->StreamLabels(&label_ctx, &label_ack);
  writer->WritesDone();
  EXPECT_TRUE(writer->Finish().ok());
  EXPECT_EQ(label_ack.batches(), 0u);

  grpc::ClientContext alerts_ctx;
  v1::ListAlertsResponse alerts;
  grpc::Status status = alerts_->ListAlerts(&alerts_ctx, v1::ListAlertsRequest(), &alerts);
  EXPECT_TRUE(status.ok()) << status.error_message();  // no rules file: no alerts
  EXPECT_EQ(alerts.alerts_size(), 0);
  grpc::ClientContext rule_ctx;
  v1::Rule rule;
  status = alerts_->PutRule(&rule_ctx, v1::PutRuleRequest(), &rule);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("yaml: give one rule"), std::string::npos);
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, n);
    }
  }
  close(fd);
  return response;
}

// The sum of every sample of /metrics whose line starts with `prefix`.
double SumOf(const std::string& body, const std::string& prefix) {
  double sum = 0;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

TEST_F(ServerTest, MetricsEndpointCountsIngest) {
  bool created = false;
  ASSERT_TRUE(Register(Schema(), &created).ok());
  v1::ModelSchema churn = Schema();
  churn.mutable_model()->set_model_id("churn");
  ASSERT_TRUE(Register(churn, &created).ok());
  // fraud@v1: 1 accepted, 1 duplicate, 2 rejected (no id, time in the
  // future); churn@v1: 2 accepted.
  v1::PredictionBatch fraud = Rows({"m1", "m2", "m1", "m3"}, NowMs());
  fraud.mutable_rows()->mutable_events(1)->clear_event_id();
  fraud.mutable_rows()->mutable_events(3)->set_event_time_ms(NowMs() + 86'400'000);
  v1::PredictionBatch churn_batch = Rows({"c1", "c2"}, NowMs());
  churn_batch.mutable_model()->set_model_id("churn");
  v1::IngestAck ack;
  ASSERT_TRUE(Stream({fraud, churn_batch}, &ack).ok());

  std::string body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(body.find("200 OK"), std::string::npos) << body;
  for (
      const char* line : {
          R"(driftwatch_ingest_events_total{model="fraud",result="accepted",version="v1"} 1)",
          R"(driftwatch_ingest_events_total{model="fraud",result="duplicate",version="v1"} 1)",
          R"(driftwatch_ingest_events_total{model="fraud",result="rejected",version="v1"} 2)",
          R"(driftwatch_ingest_events_total{model="churn",result="accepted",version="v1"} 2)",
          R"(driftwatch_ingest_events_total{model="churn",result="rejected",version="v1"} 0)",
          R"(driftwatch_ingest_rejected_total{model="fraud",reason="missing_event_id",version="v1"} 1)",
          R"(driftwatch_ingest_rejected_total{model="fraud",reason="event_time_in_future",version="v1"} 1)",
          R"(driftwatch_ingest_late_accepted_total{model="fraud",version="v1"} 0)",
          R"(driftwatch_ingest_backfilled_total{model="churn",version="v1"} 0)",
          "driftwatch_ingest_dedup_evicted_buckets_total 0",
          "driftwatch_ingest_dedup_loaded_buckets_total 0",
          "driftwatch_dedup_early_closes_total 0",
          "driftwatch_ingest_batches_total 2",
          "driftwatch_models 2",
          "driftwatch_ingest_batch_seconds_count 2",
      }) {
    EXPECT_NE(body.find(line), std::string::npos) << line << "\n" << body;
  }
  // Results are disjoint: summed over result, each model counts what it
  // was sent; reasons sum to its rejected.
  EXPECT_EQ(SumOf(body, R"(driftwatch_ingest_events_total{model="fraud",)"), 4);
  EXPECT_EQ(SumOf(body, R"(driftwatch_ingest_events_total{model="churn",)"), 2);
  EXPECT_EQ(SumOf(body, "driftwatch_ingest_events_total{"), 6);
  EXPECT_EQ(SumOf(body, R"(driftwatch_ingest_rejected_total{model="fraud",)"), 2);
  EXPECT_EQ(SumOf(body, R"(driftwatch_ingest_rejected_total{model="churn",)"), 0);
}

TEST_F(ServerTest, DriftSignalsBecomeGauges) {
  bool created = false;
  ASSERT_TRUE(Register(Schema(), &created).ok());
  v1::CreateBaselineRequest request;
  request.mutable_model()->set_model_id("fraud");
  request.mutable_baseline()->set_name("default");
  v1::ReferenceProfile* ref = request.mutable_baseline()->mutable_profile();
  v1::NumericColumn* amount = ref->add_numeric();
  amount->set_name("amount");
  v1::CategoricalColumn* country = ref->add_categorical();
  country->set_name("country");
  country->add_dictionary("US");
  for (int i = 0; i < 100; ++i) {
    amount->add_values(i);
    country->add_codes(0);
    ref->add_scores(0.25);
  }
  grpc::ClientContext ctx;
  v1::Baseline baseline;
  grpc::Status status = models_->CreateBaseline(&ctx, request, &baseline);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back("s" + std::to_string(i));
  v1::IngestAck ack;
  ASSERT_TRUE(Stream({Rows(ids, NowMs())}, &ack).ok());  // every amount is 42: drifted

  // The ack came after the commit: an evaluation now sees the events (the
  // scheduled one may run too; either publishes the same signals).
  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  std::string body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(body.find("driftwatch_psi{feature=\"amount\",model=\"fraud@v1\",slice=\"*\"}"),
            std::string::npos)
      << body;

  // Report queries are timed by method, answered or not.
  for (const char* baseline : {"default", "no-such-baseline"}) {
    grpc::ClientContext ctx;
    v1::GetDriftReportRequest report_request;
    report_request.mutable_model()->set_model_id("fraud");
    report_request.set_baseline(baseline);
    v1::DriftReport report;
    grpc::Status report_status = reports_->GetDriftReport(&ctx, report_request, &report);
    EXPECT_EQ(report_status.ok(), std::string(baseline) == "default")
        << report_status.error_message();
  }
  body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(body.find("driftwatch_query_seconds_count{method=\"GetDriftReport\"} 2"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("driftwatch_ingest_query_yields_total 0"), std::string::npos);
}

// The rules file's rules run on the evaluator's signals, and
// Alerts.ListAlerts lists what they raised, with the label contract and the
// runbook; a broken rules file stops the start naming file, line and rule.
TEST_F(ServerTest, RulesFileRaisesAlertsOnTheEvaluatorsSignals) {
  rules_file_ = dir_.File("rules.yaml");
  {
    std::ofstream f(rules_file_);
    f << "rules:\n"
         "  - name: amount_drift\n"
         "    condition: 'psi{feature=\"amount\"} > 0.2'\n"
         "    severity: page\n"
         "    annotations: {summary: 'PSI {{ $value }} on {{ $labels.feature }}'}\n"
         "    runbook_url: runbooks/feature-drift.md\n"
         "  - name: never\n"
         "    condition: 'psi > 1000'\n"
         "    runbook_url: runbooks/feature-drift.md\n";
  }
  Restart();
  EXPECT_EQ(server_->alert_rules().rule_count(), 2u);
  ASSERT_NO_FATAL_FAILURE(RegisterAndDrift("r"));  // every amount is 42: drifted

  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  server_->alert_rules().Evaluate(*server_->evaluator().Latest(), NowMs());
  grpc::ClientContext list_ctx;
  v1::ListAlertsResponse alerts;
  grpc::Status status = alerts_->ListAlerts(&list_ctx, v1::ListAlertsRequest(), &alerts);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The population and the rows' one slice; `never` raised nothing.
  ASSERT_EQ(alerts.alerts_size(), 2);
  std::set<std::string> slices;
  for (const v1::Alert& x : alerts.alerts()) slices.insert(x.labels().at("slice"));
  EXPECT_EQ(slices, (std::set<std::string>{"*", "platform=ios"}));
  const v1::Alert& a =
      alerts.alerts(0).labels().at("slice") == "*" ? alerts.alerts(0) : alerts.alerts(1);
  EXPECT_EQ(a.rule(), "amount_drift");
  EXPECT_EQ(a.state(), v1::ALERT_STATE_FIRING);
  EXPECT_EQ(a.labels().at("alertname"), "amount_drift");
  EXPECT_EQ(a.labels().at("model"), "fraud");
  EXPECT_EQ(a.labels().at("model_version"), "v1");
  EXPECT_EQ(a.labels().at("slice"), "*");
  EXPECT_EQ(a.labels().at("feature"), "amount");
  EXPECT_EQ(a.labels().at("severity"), "page");
  EXPECT_EQ(a.annotations().at("runbook_url"), "runbooks/feature-drift.md");
  EXPECT_GT(a.value(), 0.2);
  EXPECT_EQ(a.fingerprint().size(), 16u);
  // Only resolved ones: none; another model: none; a bad state: refused.
  for (auto [model, state, want] : {std::tuple{"", v1::ALERT_STATE_RESOLVED, 0},
                                    {"other", v1::ALERT_STATE_FIRING, 0},
                                    {"fraud", v1::ALERT_STATE_FIRING, 2}}) {
    grpc::ClientContext c;
    v1::ListAlertsRequest q;
    q.mutable_model()->set_model_id(model);
    q.add_states(state);
    v1::ListAlertsResponse r;
    ASSERT_TRUE(alerts_->ListAlerts(&c, q, &r).ok());
    EXPECT_EQ(r.alerts_size(), want) << model;
  }
  grpc::ClientContext bad_ctx;
  v1::ListAlertsRequest bad;
  bad.add_states(v1::ALERT_STATE_INACTIVE);
  v1::ListAlertsResponse none;
  EXPECT_EQ(alerts_->ListAlerts(&bad_ctx, bad, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A broken rules file: the server does not start.
  server_->Shutdown();
  server_.reset();
  {
    std::ofstream f(rules_file_);
    f << "rules:\n  - name: broken\n    condition: 'psi > 0.2'\n";
  }
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "";
  config.data_dir = dir_.File("data");
  config.rules_file = rules_file_;
  absl::StatusOr<std::unique_ptr<Server>> refused = Server::Start(config, &clock_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(rules_file_ + ":2: rule \"broken\""),
            absl::string_view::npos)
      << refused.status();
  rules_file_.clear();
  StartServer();
}

// A restart keeps alert state: a firing alert is listed as firing before
// any evaluation and does not fire again; a pending one keeps its `for`.
TEST_F(ServerTest, AlertStateSurvivesARestart) {
  rules_file_ = dir_.File("rules.yaml");
  {
    std::ofstream f(rules_file_);
    f << "rules:\n"
         "  - {name: now, condition: 'psi{feature=\"amount\"} > 0.2', runbook_url: r.md}\n"
         "  - {name: later, condition: 'psi{feature=\"amount\"} > 0.2', for: 1h, "
         "runbook_url: r.md}\n";
  }
  Restart();
  ASSERT_NO_FATAL_FAILURE(RegisterAndDrift("k"));  // every amount is 42: drifted
  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  server_->alert_rules().Evaluate(*server_->evaluator().Latest(), NowMs());
  auto list = [this]() {
    grpc::ClientContext c;
    v1::ListAlertsResponse r;
    EXPECT_TRUE(alerts_->ListAlerts(&c, v1::ListAlertsRequest(), &r).ok());
    std::map<std::string, v1::Alert> by_fp;
    for (const v1::Alert& a : r.alerts()) by_fp[a.fingerprint()] = a;
    return by_fp;
  };
  const std::map<std::string, v1::Alert> before = list();
  ASSERT_EQ(before.size(), 4u);  // 2 rules x (population, platform=ios)
  int firing = 0;
  for (const auto& [fp, a] : before) {
    firing += a.state() == v1::ALERT_STATE_FIRING;
    EXPECT_EQ(a.state(), a.rule() == "now" ? v1::ALERT_STATE_FIRING : v1::ALERT_STATE_PENDING);
  }
  EXPECT_EQ(firing, 2);

  Restart();
  const std::map<std::string, v1::Alert> after = list();  // before any evaluation
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [fp, a] : before) {
    ASSERT_TRUE(after.contains(fp)) << fp;
    EXPECT_EQ(after.at(fp).state(), a.state());
    EXPECT_EQ(after.at(fp).active_at().DebugString(), a.active_at().DebugString());
    EXPECT_EQ(after.at(fp).fired_at().DebugString(), a.fired_at().DebugString());
  }
  // Evaluated again after the restart: still firing and pending, nothing
  // fired anew (fired_at and active_at as before).
  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  server_->alert_rules().Evaluate(*server_->evaluator().Latest(), NowMs() + 60'000);
  const std::map<std::string, v1::Alert> again = list();
  ASSERT_EQ(again.size(), before.size());
  for (const auto& [fp, a] : before) {
    EXPECT_EQ(again.at(fp).state(), a.state()) << a.rule();
    EXPECT_EQ(again.at(fp).active_at().DebugString(), a.active_at().DebugString());
    EXPECT_EQ(again.at(fp).fired_at().DebugString(), a.fired_at().DebugString());
  }
  rules_file_.clear();
}

// Rules put through the API (persisted, the rules file's schema), silences
// and inhibition marks, WatchAlerts streaming the changes, SIGHUP-style
// reloads of the rules file, the signal history, and the alert metrics.
TEST_F(ServerTest, ApiRulesSilencesWatchReloadAndSignalHistory) {
  rules_file_ = dir_.File("rules.yaml");
  {
    std::ofstream f(rules_file_);
    f << "rules:\n"
         "  - {name: from_file, condition: 'psi > 1000', runbook_url: r.md}\n";
  }
  Restart();
  // PutRule: the same schema, errors naming "api"; a name of the file refused.
  auto put = [this](const std::string& yaml, v1::Rule* rule) {
    grpc::ClientContext c;
    v1::PutRuleRequest q;
    q.set_yaml(yaml);
    return alerts_->PutRule(&c, q, rule);
  };
  v1::Rule rule;
  grpc::Status status = put("name: amount_drift\n"
                            "condition: 'psi{feature=\"amount\"} > 0.2'\n"
                            "runbook_url: runbooks/feature-drift.md\n",
                            &rule);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(rule.source(), "api");
  EXPECT_EQ(rule.runbook_url(), "runbooks/feature-drift.md");
  status = put("name: no_runbook\ncondition: 'psi > 0.2'\n", &rule);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("api:1: rule \"no_runbook\": runbook_url is required"),
            std::string::npos)
      << status.error_message();
  status = put("name: from_file\ncondition: 'psi > 0.2'\nrunbook_url: r.md\n", &rule);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // A watcher from the start.
  grpc::ClientContext watch_ctx;
  v1::WatchAlertsRequest watch_request;
  auto reader = alerts_->WatchAlerts(&watch_ctx, watch_request);
  ASSERT_NO_FATAL_FAILURE(RegisterAndDrift("w"));
  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  server_->alert_rules().Evaluate(*server_->evaluator().Latest(), NowMs());
  std::set<std::string> watched;
  v1::Alert event;
  while (watched.size() < 2 && reader->Read(&event)) {
    EXPECT_EQ(event.rule(), "amount_drift");
    EXPECT_EQ(event.state(), v1::ALERT_STATE_FIRING);
    watched.insert(event.labels().at("slice"));
  }
  EXPECT_EQ(watched, (std::set<std::string>{"*", "platform=ios"}));
  watch_ctx.TryCancel();
  (void)reader->Finish();

  // A silence on the population's alert: still firing, marked silenced.
  grpc::ClientContext silence_ctx;
  v1::CreateSilenceRequest silence_request;
  v1::Matcher* m = silence_request.mutable_silence()->add_matchers();
  m->set_name("slice");
  m->set_value("*");
  m->set_is_equal(true);
  silence_request.mutable_silence()->mutable_ends_at()->set_seconds(NowMs() / 1000 + 3600);
  silence_request.mutable_silence()->set_created_by("test");
  v1::Silence silence;
  status = alerts_->CreateSilence(&silence_ctx, silence_request, &silence);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(silence.state(), "active");
  auto list = [this]() {
    grpc::ClientContext c;
    v1::ListAlertsResponse r;
    EXPECT_TRUE(alerts_->ListAlerts(&c, v1::ListAlertsRequest(), &r).ok());
    std::map<std::string, v1::Alert> by_slice;
    for (const v1::Alert& a : r.alerts()) by_slice[a.labels().at("slice")] = a;
    return by_slice;
  };
  std::map<std::string, v1::Alert> alerts = list();
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_TRUE(alerts["*"].silenced());
  ASSERT_EQ(alerts["*"].silenced_by_size(), 1);
  EXPECT_EQ(alerts["*"].silenced_by(0), silence.id());
  EXPECT_EQ(alerts["*"].state(), v1::ALERT_STATE_FIRING);
  EXPECT_FALSE(alerts["platform=ios"].silenced());
  // A silence of everything is refused.
  grpc::ClientContext all_ctx;
  v1::CreateSilenceRequest everything = silence_request;
  everything.mutable_silence()->mutable_matchers(0)->set_value("");
  v1::Silence none;
  EXPECT_EQ(alerts_->CreateSilence(&all_ctx, everything, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The signal history holds what the rules read.
  ASSERT_TRUE(server_->signal_history().Record(*server_->evaluator().Latest()).ok());
  grpc::ClientContext series_ctx;
  v1::GetSignalSeriesRequest series_request;
  series_request.mutable_model()->set_model_id("fraud");
  series_request.set_signal("psi");
  series_request.set_feature("amount");
  v1::SignalSeries series;
  status = reports_->GetSignalSeries(&series_ctx, series_request, &series);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(series.samples_size(), 1);
  EXPECT_GT(series.samples(series.samples_size() - 1).value(), 0.2);
  EXPECT_EQ(series.slice(), "*");
  EXPECT_EQ(series.model().model_version(), "v1");

  // Metrics: alerts by state, rule and severity; rules in force; silences.
  std::string body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(body.find(R"(driftwatch_alerts{rule="amount_drift",severity="warning",state="firing"} 2)"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("driftwatch_rules 2"), std::string::npos);
  EXPECT_NE(body.find("driftwatch_silences_active 1"), std::string::npos);
  EXPECT_NE(body.find("driftwatch_evaluation_duration_seconds_count"), std::string::npos);

  // A restart keeps the API's rule and the silence.
  Restart();
  EXPECT_EQ(server_->alert_rules().rule_count(), 2u);
  alerts = list();
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_TRUE(alerts["*"].silenced());
  grpc::ClientContext expire_ctx;
  v1::ExpireSilenceRequest expire;
  expire.set_id(silence.id());
  v1::ExpireSilenceResponse expired;
  ASSERT_TRUE(alerts_->ExpireSilence(&expire_ctx, expire, &expired).ok());
  EXPECT_FALSE(list()["*"].silenced());

  // Reload (SIGHUP): a broken file is refused and counted, the rules stay;
  // a good one adds an inhibit rule that mutes the feature alerts.
  {
    std::ofstream f(rules_file_);
    f << "rules:\n  - {name: broken, condition: 'psi >'}\n";
  }
  EXPECT_FALSE(server_->ReloadRules().ok());
  EXPECT_EQ(server_->alert_rules().rule_count(), 2u);
  body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_NE(body.find("driftwatch_rule_load_errors_total 1"), std::string::npos) << body;
  {
    std::ofstream f(rules_file_);
    f << "rules:\n"
         "  - {name: model_wide, condition: 'volume > 0', severity: page, runbook_url: r.md}\n"
         "inhibit_rules:\n"
         "  - source_matchers: ['alertname=\"model_wide\"']\n"
         "    target_matchers: ['alertname=\"amount_drift\"']\n"
         "    equal: [model, slice]\n";
  }
  ASSERT_TRUE(server_->ReloadRules().ok());
  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  server_->alert_rules().Evaluate(*server_->evaluator().Latest(), NowMs() + 1000);
  alerts.clear();
  {
    grpc::ClientContext c;
    v1::ListAlertsResponse r;
    ASSERT_TRUE(alerts_->ListAlerts(&c, v1::ListAlertsRequest(), &r).ok());
    for (const v1::Alert& a : r.alerts()) {
      EXPECT_EQ(a.inhibited(), a.rule() == "amount_drift") << a.rule();
    }
    EXPECT_EQ(r.alerts_size(), 4);  // 2 rules x (population, platform=ios)
  }
  // DeleteRule: the API's rule goes; a file rule cannot be deleted there.
  grpc::ClientContext del_ctx;
  v1::DeleteRuleRequest del;
  del.set_name("amount_drift");
  v1::DeleteRuleResponse deleted;
  ASSERT_TRUE(alerts_->DeleteRule(&del_ctx, del, &deleted).ok());
  grpc::ClientContext del2_ctx;
  del.set_name("model_wide");
  EXPECT_EQ(alerts_->DeleteRule(&del2_ctx, del, &deleted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(server_->alert_rules().rule_count(), 1u);
  rules_file_.clear();
}

TEST_F(ServerTest, LabelCountersAndQualityGauges) {
  v1::ModelSchema schema = Schema();
  schema.set_label_kind(v1::LABEL_KIND_BINARY);
  bool created = false;
  ASSERT_TRUE(Register(schema, &created).ok());
  // 40 predictions, scores 0.1 / 0.9; labels for 30 of them (mostly
  // right), one rejected, one duplicate, one conflicting.
  v1::PredictionBatch rows = Rows({}, NowMs());
  for (int i = 0; i < 40; ++i) {
    v1::PredictionBatch one = Rows({"q" + std::to_string(i)}, NowMs());
    one.mutable_rows()->mutable_events(0)->set_scores(0, i % 2 ? 0.9 : 0.1);
    *rows.mutable_rows()->add_events() = one.rows().events(0);
  }
  v1::IngestAck ack;
  ASSERT_TRUE(Stream({rows}, &ack).ok());
  ASSERT_EQ(ack.accepted(), 40u);
  v1::LabelBatch labels;
  labels.mutable_model()->set_model_id("fraud");
  for (int i = 0; i < 30; ++i) {
    v1::Label* l = labels.add_labels();
    l->set_event_id("q" + std::to_string(i));
    l->set_value(i % 2 == 0 ? (i % 10 == 0 ? 1 : 0) : 1);
    l->set_label_time_ms(NowMs());
  }
  *labels.add_labels() = labels.labels(1);  // duplicate
  *labels.add_labels() = labels.labels(2);
  labels.mutable_labels(31)->set_value(1);  // conflicting
  labels.add_labels()->set_value(1);        // no event id: rejected
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::LabelAck label_ack;
  auto writer = ingest_->StreamLabels(&ctx, &label_ack);
  ASSERT_TRUE(writer->Write(labels));
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(label_ack.joined(), 30u);

  ASSERT_TRUE(server_->evaluator().Evaluate().ok());
  const std::string body = HttpGet(server_->metrics_port(), "/metrics");
  for (const char* line : {
           R"(driftwatch_labels_total{model="fraud",result="joined",version="v1"} 30)",
           R"(driftwatch_labels_total{model="fraud",result="duplicate",version="v1"} 1)",
           R"(driftwatch_labels_total{model="fraud",result="conflicting",version="v1"} 1)",
           R"(driftwatch_labels_total{model="fraud",result="rejected",version="v1"} 1)",
           R"(driftwatch_labels_rejected_total{model="fraud",reason="missing_event_id",version="v1"} 1)",
           R"(driftwatch_labels_expired_total{model="fraud",version="v1"} 0)",
           "driftwatch_label_join_records 40",
           "driftwatch_labels_pending 0",
           R"(driftwatch_label_coverage{model="fraud@v1",slice="*"} 0.75)",
           R"(driftwatch_label_coverage{model="fraud@v1",slice="platform=ios"} 0.75)",
       }) {
    EXPECT_NE(body.find(line), std::string::npos) << line << "\n" << body;
  }
  for (const char* series : {R"(driftwatch_auc{model="fraud@v1",slice="*"})",
                             R"(driftwatch_ece{model="fraud@v1",slice="*"})",
                             R"(driftwatch_brier{model="fraud@v1",slice="*"})",
                             R"(driftwatch_estimated_auc{model="fraud@v1",slice="*"})",
                             R"(driftwatch_label_delay_p95_seconds{model="fraud@v1",slice="*"})"}) {
    EXPECT_NE(body.find(series), std::string::npos) << series << "\n" << body;
  }
  // The gauge is the report's value.
  grpc::ClientContext qctx;
  v1::GetQualityReportRequest q;
  q.mutable_model()->set_model_id("fraud");
  v1::QualityReport report;
  ASSERT_TRUE(reports_->GetQualityReport(&qctx, q, &report).ok());
  const std::string auc_line = R"(driftwatch_auc{model="fraud@v1",slice="*"} )";
  const size_t at = body.find(auc_line);
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stod(body.substr(at + auc_line.size())), report.current().auc(), 1e-6);
  EXPECT_LT(report.current().auc(), 1.0);
  EXPECT_GT(report.current().auc(), 0.5);
}

// --- configuration ---

TEST(ConfigTest, ParsesDurations) {
  EXPECT_EQ(*ParseDurationMs("60s"), 60'000);
  EXPECT_EQ(*ParseDurationMs("5m"), 300'000);
  EXPECT_EQ(*ParseDurationMs("2h"), 7'200'000);
  EXPECT_EQ(*ParseDurationMs("7d"), 604'800'000);
  EXPECT_EQ(*ParseDurationMs("250ms"), 250);
  EXPECT_EQ(*ParseDurationMs("90"), 90'000);
  for (const char* bad : {"", "s", "5x", "-5s", "1.5h", "5 m", "m5"}) {
    EXPECT_EQ(ParseDurationMs(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ConfigTest, LoadsEveryKindOfKey) {
  TempDir dir;
  WriteFile(dir.File("c.yaml"),
            "listen: 0.0.0.0:7171\n"
            "metrics_listen: \"\"\n"
            "data_dir: /var/lib/dw\n"
            "sqlite_synchronous: normal\n"
            "signal_interval: 30s\n"
            "retention: {minute: 1d, raw_events: 0}\n"
            "ingest:\n"
            "  bucket_width: 5m\n"
            "  allowed_lateness: 600\n"
            "  raw_sample_rate: 0.5\n"
            "  slice_cap: 20\n"
            "  max_categories: 500\n"
            "reports: {default_window: 2h, bins: 20, min_support: 50, ingest_yield: 5ms}\n"
            "log: {format: json, level: debug}\n");
  absl::StatusOr<ServerConfig> c = LoadConfigFile(dir.File("c.yaml"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "0.0.0.0:7171");
  EXPECT_EQ(c->metrics_listen, "");
  EXPECT_EQ(c->data_dir, "/var/lib/dw");
  EXPECT_FALSE(c->sqlite_synchronous_full);
  EXPECT_EQ(c->signal_interval_ms, 30'000);
  EXPECT_EQ(c->retention.minute_ms, 86'400'000);
  EXPECT_EQ(c->retention.raw_events_ms, 0);
  EXPECT_EQ(c->retention.hour_ms, ServerConfig().retention.hour_ms);  // untouched
  EXPECT_EQ(c->ingest.bucket_width_ms, 300'000);
  EXPECT_EQ(c->ingest.allowed_lateness_ms, 600'000);
  EXPECT_EQ(c->ingest.raw_sample_rate, 0.5);
  EXPECT_EQ(c->registry.default_slice_cap, 20u);
  EXPECT_EQ(c->registry.max_categories, 500u);
  EXPECT_EQ(c->reports.default_window_ms, 7'200'000);
  EXPECT_EQ(c->reports.bins, 20);
  EXPECT_EQ(c->reports.default_min_support, 50);
  EXPECT_EQ(c->reports.ingest_yield_ms, 5);
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->log_level, "debug");
}

TEST(ConfigTest, TheExampleFileLoads) {
  absl::StatusOr<ServerConfig> c =
      LoadConfigFile(DRIFTWATCH_GOLDEN_DIR "/../../deploy/driftwatch.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ingest.bucket_width_ms, ServerConfig().ingest.bucket_width_ms);
  // The file documents the defaults.
  EXPECT_EQ(c->ingest.backfill_horizon_ms, ServerConfig().ingest.backfill_horizon_ms);
  EXPECT_EQ(c->ingest.max_dedup_ids, ServerConfig().ingest.max_dedup_ids);
  EXPECT_EQ(c->ingest.max_backfill_profiles, ServerConfig().ingest.max_backfill_profiles);
  EXPECT_EQ(c->max_ingest_streams, ServerConfig().max_ingest_streams);
  EXPECT_EQ(c->ingest.max_event_id_bytes, ServerConfig().ingest.max_event_id_bytes);
}

TEST(ConfigTest, ErrorsNameTheKey) {
  TempDir dir;
  auto load = [&](const std::string& text) {
    WriteFile(dir.File("c.yaml"), text);
    return LoadConfigFile(dir.File("c.yaml")).status();
  };
  absl::Status s = load("ingest:\n  bucket_widht: 1m\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("ingest.bucket_widht: unknown key"), std::string::npos) << s;
  s = load("ingest:\n  bucket_width: soon\n");
  EXPECT_NE(s.message().find("ingest.bucket_width"), std::string::npos) << s;
  EXPECT_NE(s.message().find("soon"), std::string::npos) << s;
  s = load("ingest:\n  bucket_width: 7m\n");  // does not divide an hour
  EXPECT_NE(s.message().find("ingest.bucket_width"), std::string::npos) << s;
  s = load("ingest:\n  raw_sample_rate: 1.5\n");
  EXPECT_NE(s.message().find("ingest.raw_sample_rate"), std::string::npos) << s;
  s = load("sqlite_synchronous: off\n");
  EXPECT_NE(s.message().find("sqlite_synchronous"), std::string::npos) << s;
  s = load("ingest: 5\n");
  EXPECT_NE(s.message().find("ingest: expected a mapping"), std::string::npos) << s;
  s = load("listen: [a, b]\n");
  EXPECT_NE(s.message().find("listen"), std::string::npos) << s;
  s = load("listen: [a, b\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(LoadConfigFile(dir.File("missing.yaml")).status().code(), absl::StatusCode::kNotFound);
  WriteFile(dir.File("empty.yaml"), "");
  EXPECT_TRUE(LoadConfigFile(dir.File("empty.yaml")).ok());
}

TEST(ConfigTest, FlagValuesGoThroughTheSameKeys) {
  ServerConfig c;
  ASSERT_TRUE(SetConfigValue(&c, "ingest.flush_interval", "250ms").ok());
  EXPECT_EQ(c.ingest.flush_interval_ms, 250);
  ASSERT_TRUE(SetConfigValue(&c, "log.level", "warn").ok());
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(SetConfigValue(&c, "ingest.slice_cap", "-3").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetConfigValue(&c, "nope", "1").message(), "nope: unknown key");
  EXPECT_TRUE(ValidateConfig(c).ok());
}

#ifdef DRIFTWATCHD_PATH
// Runs driftwatchd with `args`; its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::string& stderr_path) {
  std::vector<char*> argv;
  std::string path = DRIFTWATCHD_PATH;
  argv.push_back(path.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(DriftwatchdTest, FlagsOverrideTheFileAndSigtermExitsCleanly) {
  TempDir dir;
  WriteFile(dir.File("c.yaml"), "listen: 127.0.0.1:0\nmetrics_listen: \"\"\nlog: {format: json}\n");
  const pid_t pid = Spawn({"--config", dir.File("c.yaml"), "--metrics-listen", "127.0.0.1:0",
                           "--data-dir", dir.File("data"), "--port-file", dir.File("ports")},
                          dir.File("stderr"));
  ASSERT_GT(pid, 0);
  std::string ports;
  for (int i = 0; i < 1000 && ports.empty(); ++i) {  // bounded wait for the port file
    ports = ReadFile(dir.File("ports"));
    if (ports.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int grpc = 0, metrics = 0;
  ASSERT_EQ(std::sscanf(ports.c_str(), "grpc=%d metrics=%d", &grpc, &metrics), 2) << ports;
  EXPECT_GT(grpc, 0);
  EXPECT_GT(metrics, 0);  // the flag won over the file's ""
  EXPECT_NE(HttpGet(metrics, "/metrics").find("driftwatch_dedup_early_closes_total"), std::string::npos);
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitExit(pid), 0);
  const std::string log = ReadFile(dir.File("stderr"));
  EXPECT_NE(log.find("\"msg\":\"serving\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"msg\":\"stopped\""), std::string::npos) << log;
}

TEST(DriftwatchdTest, BadConfigIsOneLineAndExitTwo) {
  TempDir dir;
  WriteFile(dir.File("c.yaml"), "ingest:\n  bucket_widht: 1m\n");
  const pid_t pid = Spawn({"--config", dir.File("c.yaml")}, dir.File("stderr"));
  EXPECT_EQ(WaitExit(pid), 2);
  const std::string err = ReadFile(dir.File("stderr"));
  EXPECT_NE(err.find("ingest.bucket_widht: unknown key"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(WaitExit(Spawn({"--raw-sample-rate", "2"}, dir.File("stderr"))), 2);
}
#endif

}  // namespace
}  // namespace driftwatch::service
