// End to end: the real driftwatchd binary on 127.0.0.1:0 with a temp data
// dir, driven by a real gRPC client and by the real driftctl binary.
// Covers acks, durability of acked events across kill -9, dedup after a
// restart, the drift report against the offline exact statistics, late /
// too-late accounting, error codes and a clean SIGTERM.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "driftwatch/v1/alerts.grpc.pb.h"
#include "http_receiver.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "process.h"

namespace driftwatch {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using ::testing::HasSubstr;
using testing::RunCommand;

constexpr auto kStartTimeout = std::chrono::seconds(15);
constexpr int kRefRows = 1000;
constexpr int kCurRows = 600;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t FloorMinute(int64_t ms) { return ms - ms % 60'000; }

// Reference and current rows with a moderate shift; fixed seed.
struct Data {
  std::vector<double> ref_x, ref_y, cur_x, cur_y;
  std::vector<std::string> cur_country;
  std::vector<int64_t> cur_time_ms;
};

Data MakeData(int64_t first_event_ms) {
  Data d;
  std::mt19937_64 rng(42);
  std::normal_distribution<double> rx(0, 1), ry(10, 2), cx(0.3, 1.1), cy(10.5, 2);
  for (int i = 0; i < kRefRows; ++i) {
    d.ref_x.push_back(rx(rng));
    d.ref_y.push_back(ry(rng));
  }
  for (int i = 0; i < kCurRows; ++i) {
    d.cur_x.push_back(cx(rng));
    d.cur_y.push_back(cy(rng));
    d.cur_country.push_back(i % 3 == 0 ? "de" : "us");
    d.cur_time_ms.push_back(first_event_ms + i * 100);  // one minute of traffic
  }
  return d;
}

std::string Num(double x) { return absl::StrFormat("%.17g", x); }

class DriftwatchdE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef DRIFTWATCHD_PATH
    GTEST_SKIP() << "driftwatchd is not built";
#endif
    static int counter = 0;
    dir_ = fs::temp_directory_path() /
           ("driftwatchd_e2e_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_ / "data");
  }
  void TearDown() override {
    server_.KillAndReap();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Starts driftwatchd on the data dir and connects; fails the test when it
  // is not serving within kStartTimeout.
  void StartServer() {
#ifdef DRIFTWATCHD_PATH
    const fs::path port_file = dir_ / "ports";
    fs::remove(port_file);
    std::string error;
    std::vector<std::string> args = {DRIFTWATCHD_PATH,  "--listen",   "127.0.0.1:0",
                                     "--metrics-listen", "127.0.0.1:0", "--data-dir",
                                     (dir_ / "data").string(), "--port-file",
                                     port_file.string()};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    ASSERT_TRUE(server_.Start(args, (dir_ / "server.out").string(),
                              (dir_ / "server.err").string(), &error))
        << error;
    std::optional<std::string> ports = testing::WaitForFileLine(port_file, kStartTimeout, &server_);
    ASSERT_TRUE(ports.has_value()) << "driftwatchd did not write its port file; stderr:\n"
                                   << testing::ReadWholeFile(dir_ / "server.err");
    int grpc_port = 0, metrics_port = 0;
    ASSERT_EQ(std::sscanf(ports->c_str(), "grpc=%d metrics=%d", &grpc_port, &metrics_port), 2)
        << *ports;
    address_ = "127.0.0.1:" + std::to_string(grpc_port);
    metrics_port_ = metrics_port;
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    models_ = v1::Models::NewStub(channel_);
    ingest_ = v1::Ingest::NewStub(channel_);
    reports_ = v1::Reports::NewStub(channel_);
    alerts_ = v1::Alerts::NewStub(channel_);
#endif
  }

  static void Arm(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  // One StreamPredictions stream of `batches`; the ack, or the failure.
  grpc::Status Stream(const std::vector<v1::PredictionBatch>& batches, v1::IngestAck* ack) {
    grpc::ClientContext context;
    Arm(&context);
    auto writer = ingest_->StreamPredictions(&context, ack);
    for (const v1::PredictionBatch& b : batches) {
      if (!writer->Write(b)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  void Register(const v1::ModelSchema& schema) {
    v1::RegisterModelRequest request;
    *request.mutable_schema() = schema;
    v1::RegisterModelResponse response;
    grpc::ClientContext context;
    Arm(&context);
    grpc::Status status = models_->RegisterModel(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.created());
  }

  void WriteFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // driftctl with --server appended where it talks to the server.
  testing::CommandResult Driftctl(std::vector<std::string> args, bool online = true) {
    args.insert(args.begin(), DRIFTCTL_PATH);
    if (online) {
      args.push_back("--server");
      args.push_back(address_);
      args.push_back("--timeout");
      args.push_back("10s");
    }
    return RunCommand(args, dir_);
  }

  // `driftctl stats --json` of ref.csv vs cur.csv: the exact statistics.
  nlohmann::json OfflineStats() {
    testing::CommandResult r = Driftctl({"stats", "--reference", (dir_ / "ref.csv").string(),
                                         "--current", (dir_ / "cur.csv").string(), "--json"},
                                        /*online=*/false);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  void WriteRefAndCurCsv(const Data& d) {
    std::string ref = "x,y\n", cur = "x,y\n";
    for (int i = 0; i < kRefRows; ++i) ref += Num(d.ref_x[i]) + "," + Num(d.ref_y[i]) + "\n";
    for (int i = 0; i < kCurRows; ++i) cur += Num(d.cur_x[i]) + "," + Num(d.cur_y[i]) + "\n";
    WriteFile("ref.csv", ref);
    WriteFile("cur.csv", cur);
  }

  fs::path dir_;
  ChildProcess server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Models::Stub> models_;
  std::unique_ptr<v1::Ingest::Stub> ingest_;
  std::unique_ptr<v1::Reports::Stub> reports_;
  std::unique_ptr<v1::Alerts::Stub> alerts_;
  std::vector<std::string> extra_args_;  // appended to driftwatchd's command line
  int metrics_port_ = 0;
};

const nlohmann::json& Feature(const nlohmann::json& doc, const std::string& name) {
  for (const auto& f : doc.at("features")) {
    if (f.at("name") == name) return f;
  }
  static const nlohmann::json kNone = nlohmann::json::object();
  ADD_FAILURE() << "no feature " << name << " in " << doc.dump();
  return kNone;
}

const v1::FeatureDriftReport* Feature(const v1::DriftReport& report, const std::string& name) {
  for (const auto& f : report.features()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

v1::PredictionEvent Event(const std::string& id, int64_t time_ms, double x) {
  v1::PredictionEvent e;
  e.set_event_id(id);
  e.set_event_time_ms(time_ms);
  e.add_numeric(x);
  return e;
}

TEST_F(DriftwatchdE2ETest, AckedEventsSurviveKillAndReportMatchesOfflineStats) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int64_t first_ms = FloorMinute(NowMs()) - 120'000;
  const Data d = MakeData(first_ms);
  WriteRefAndCurCsv(d);

  // x's summary edges contain the reference deciles (exactly as the offline
  // CLI computes them, numpy's linear quantiles) plus finer 1/40 quantiles;
  // y's edges are derived by the server from a reference sample.
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("e2e");
  schema.mutable_model()->set_model_version("1");
  auto* x = schema.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  auto deciles = detectors::BinEdges::FromQuantiles(d.ref_x, 10);
  auto fine = detectors::BinEdges::FromQuantiles(d.ref_x, 40);
  ASSERT_TRUE(deciles.ok() && fine.ok());
  std::vector<double> edges = deciles->edges();
  for (size_t k = 0; k < fine->edges().size(); ++k) {
    if ((k + 1) % 4 != 0) edges.push_back(fine->edges()[k]);  // k/40 that are not deciles
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  *x->mutable_summary_edges() = {edges.begin(), edges.end()};
  auto* y = schema.add_features();
  y->set_name("y");
  y->set_kind(v1::FEATURE_KIND_NUMERIC);
  *y->mutable_reference_sample() = {d.ref_y.begin(), d.ref_y.end()};
  schema.add_slice_keys()->set_key("country");
  ASSERT_NO_FATAL_FAILURE(Register(schema));

  v1::CreateBaselineRequest baseline;
  *baseline.mutable_model() = schema.model();
  baseline.mutable_baseline()->set_name("default");
  auto* profile = baseline.mutable_baseline()->mutable_profile();
  auto* px = profile->add_numeric();
  px->set_name("x");
  *px->mutable_values() = {d.ref_x.begin(), d.ref_x.end()};
  auto* py = profile->add_numeric();
  py->set_name("y");
  *py->mutable_values() = {d.ref_y.begin(), d.ref_y.end()};
  {
    v1::Baseline created;
    grpc::ClientContext context;
    Arm(&context);
    grpc::Status status = models_->CreateBaseline(&context, baseline, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_DOUBLE_EQ(created.reference_weight(), kRefRows);
  }

  // Three row batches of 200 in one stream.
  std::vector<v1::PredictionBatch> batches(3);
  for (int i = 0; i < kCurRows; ++i) {
    v1::PredictionBatch& b = batches[i / 200];
    *b.mutable_model() = schema.model();
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id("ev-" + std::to_string(i));
    e->set_event_time_ms(d.cur_time_ms[i]);
    e->add_numeric(d.cur_x[i]);
    e->add_numeric(d.cur_y[i]);
    e->add_slice_values(d.cur_country[i]);
  }
  v1::IngestAck ack;
  grpc::Status status = Stream(batches, &ack);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The ack means committed: kill -9 at once, with no chance to flush more.
  server_.Signal(SIGKILL);
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  EXPECT_EQ(ack.accepted(), static_cast<uint64_t>(kCurRows));
  EXPECT_EQ(ack.duplicates(), 0u);
  EXPECT_EQ(ack.rejected(), 0u);
  EXPECT_EQ(ack.batches(), 3u);

  // Same data dir: every acked event is still there and deduplicated.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::IngestAck again;
  status = Stream(batches, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.accepted(), 0u);
  EXPECT_EQ(again.duplicates(), static_cast<uint64_t>(kCurRows));

  v1::GetDriftReportRequest request;
  *request.mutable_model() = schema.model();
  auto* range = request.mutable_window()->mutable_range();
  range->mutable_start()->set_seconds(first_ms / 1000);
  range->mutable_end()->set_seconds((FloorMinute(d.cur_time_ms.back()) + 60'000) / 1000);
  v1::DriftReport report;
  {
    grpc::ClientContext context;
    Arm(&context);
    status = reports_->GetDriftReport(&context, request, &report);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(report.counts().events(), static_cast<uint64_t>(kCurRows));

  // Summary vs exact. The service never sees raw rows: the baseline's
  // decile edges are quantiles of the reference's fine summary and the
  // current window is counted in the fine summary bins, then rebinned onto
  // those edges. For x the fine edges contain the exact deciles, so both
  // the edges and every bin count are exact and PSI / KL / JS agree with
  // the offline numbers up to rounding (1e-9). For y (edges from 64
  // reference quantiles) each decile bin's mass can be off by at most the
  // mass of the fine bins its edges fall in (~1/64 each), which moves PSI by
  // a few hundredths at most here: tolerance 0.05. KS from summaries is
  // exact at the fine edges, so the true D lies in
  // [reported, reported + error_bound].
  const nlohmann::json offline = OfflineStats();
  for (const std::string name : {"x", "y"}) {
    SCOPED_TRACE(name);
    const v1::FeatureDriftReport* online = Feature(report, name);
    ASSERT_NE(online, nullptr);
    const nlohmann::json& exact = Feature(offline, name);
    EXPECT_DOUBLE_EQ(online->n_current(), kCurRows);
    EXPECT_DOUBLE_EQ(online->n_reference(), kRefRows);
    const double psi_tolerance = name == "x" ? 1e-9 : 0.05;
    EXPECT_NEAR(online->psi(), exact["psi"].get<double>(), psi_tolerance);
    if (name == "x") {
      EXPECT_NEAR(online->kl(), exact["kl"].get<double>(), 1e-9);
      EXPECT_NEAR(online->js(), exact["js"].get<double>(), 1e-9);
    }
    const double d_exact = exact["ks"]["statistic"].get<double>();
    EXPECT_LE(online->ks().statistic(), d_exact + 1e-12);
    EXPECT_LE(d_exact, online->ks().statistic() + online->ks().error_bound() + 1e-12);
    // W1 from interpolated CDFs: within 5% of a reference sd here.
    EXPECT_NEAR(online->wasserstein_norm(), exact["wasserstein_norm"].get<double>(), 0.05);
  }

  // SIGTERM: a clean exit (0) after the final flush; nothing acked is lost.
  server_.Signal(SIGTERM);
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 0)
      << testing::ReadWholeFile(dir_ / "server.err");
  ASSERT_NO_FATAL_FAILURE(StartServer());
  {
    v1::DriftReport after;
    grpc::ClientContext context;
    Arm(&context);
    status = reports_->GetDriftReport(&context, request, &after);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(after.counts().events(), static_cast<uint64_t>(kCurRows));
  }
}

TEST_F(DriftwatchdE2ETest, LateTooLateAndBadInput) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("late");
  schema.mutable_model()->set_model_version("1");
  auto* x = schema.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  ASSERT_NO_FATAL_FAILURE(Register(schema));

  // Default ingest settings: 1 min buckets, 5 min allowed lateness, 5 min
  // future skew, 2 days of backfill. An event 1 min ahead is accepted (the
  // watermark stays at the server clock); one 30 s behind is late but
  // accepted; one 10 min old opens a bucket that the next flush closes;
  // one 3 days old is past the backfill horizon; one an hour ahead is too
  // far in the future; one without a time is rejected.
  const int64_t now = NowMs();
  v1::PredictionBatch batch;
  *batch.mutable_model() = schema.model();
  *batch.mutable_rows()->add_events() = Event("ahead", now + 60'000, 1);
  *batch.mutable_rows()->add_events() = Event("late", now - 30'000, 2);
  *batch.mutable_rows()->add_events() = Event("old", now - 600'000, 3);
  *batch.mutable_rows()->add_events() = Event("too-late", now - 3 * 86'400'000LL, 3);
  *batch.mutable_rows()->add_events() = Event("future", now + 3'600'000, 4);
  *batch.mutable_rows()->add_events() = Event("no-time", 0, 5);
  v1::IngestAck ack;
  grpc::Status status = Stream({batch}, &ack);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ack.accepted(), 3u);
  EXPECT_EQ(ack.late_accepted(), 2u);
  EXPECT_EQ(ack.too_late(), 1u);
  EXPECT_EQ(ack.rejected(), 3u);
  std::map<std::string, std::string> examples;
  for (const v1::RejectReason& r : ack.reasons()) examples[r.reason()] = r.example_event_id();
  EXPECT_EQ(examples["too_late"], "too-late");
  EXPECT_EQ(examples["event_time_in_future"], "future");
  EXPECT_EQ(examples["missing_event_time"], "no-time");

  // An unknown model fails the stream with NOT_FOUND.
  v1::PredictionBatch unknown = batch;
  unknown.mutable_model()->set_model_id("no-such-model");
  v1::IngestAck unused;
  EXPECT_EQ(Stream({unknown}, &unused).error_code(), grpc::StatusCode::NOT_FOUND);

  // A columnar batch whose columns do not add up: INVALID_ARGUMENT.
  v1::PredictionBatch columnar;
  *columnar.mutable_model() = schema.model();
  v1::ColumnarBatch* c = columnar.mutable_columns();
  c->set_num_events(3);
  c->add_event_ids("c1");
  c->add_event_ids("c2");  // one id short
  for (int i = 0; i < 3; ++i) {
    c->add_event_time_ms(now);
    c->add_numeric(i);
  }
  status = Stream({columnar}, &unused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("event_ids"));
}

TEST_F(DriftwatchdE2ETest, DriftctlPushAndReportEndToEnd) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int64_t first_ms = FloorMinute(NowMs()) - 120'000;
  const Data d = MakeData(first_ms);
  WriteRefAndCurCsv(d);

  nlohmann::json schema = {
      {"model", {{"model_id", "cli"}, {"model_version", "1"}}},
      {"features",
       {{{"name", "x"}, {"kind", "FEATURE_KIND_NUMERIC"}, {"reference_sample", d.ref_x}}}},
      {"slice_keys", {{{"key", "country"}}}}};
  WriteFile("schema.json", schema.dump());
  testing::CommandResult r = Driftctl({"register", "--schema", (dir_ / "schema.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "created cli@1\n");
  r = Driftctl({"register", "--schema", (dir_ / "schema.json").string()});
  EXPECT_EQ(r.out, "exists cli@1\n");

  // The file has a column the schema lacks (y): a warning, not an error.
  std::string events = "event_id,event_time_ms,x,y,country\n";
  for (int i = 0; i < kCurRows; ++i) {
    events += "cli-" + std::to_string(i) + "," + std::to_string(d.cur_time_ms[i]) + "," +
              Num(d.cur_x[i]) + "," + Num(d.cur_y[i]) + "," + d.cur_country[i] + "\n";
  }
  WriteFile("events.csv", events);
  const std::vector<std::string> push = {"push",
                                         (dir_ / "events.csv").string(),
                                         "--model",
                                         "cli",
                                         "--batch",
                                         "100",
                                         "--stream-batches",
                                         "2",
                                         "--json"};
  r = Driftctl(push);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("ignoring column y"));
  nlohmann::json summary = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(summary["sent"], kCurRows);
  EXPECT_EQ(summary["accepted"], kCurRows);
  EXPECT_EQ(summary["batches"], kCurRows / 100);
  std::vector<std::string> columnar = push;
  columnar.push_back("--columnar");
  r = Driftctl(columnar);  // the same events again: all duplicates
  ASSERT_EQ(r.exit_code, 0) << r.err;
  summary = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(summary["accepted"], 0);
  EXPECT_EQ(summary["duplicates"], kCurRows);

  r = Driftctl({"baseline", "create", "--model", "cli", "--profile", (dir_ / "ref.csv").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created baseline default for cli@1"));
  EXPECT_THAT(r.err, HasSubstr("ignoring column y"));
  r = Driftctl({"baseline", "list", "--model", "cli"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("default"));

  r = Driftctl({"report", "--model", "cli", "--window", "1h", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(doc["model"]["id"], "cli");
  EXPECT_TRUE(doc["slice"].empty());
  EXPECT_TRUE(doc["window"].contains("start"));
  const nlohmann::json& x = Feature(doc, "x");
  EXPECT_EQ(x["kind"], "numeric");
  EXPECT_EQ(x["n_current"], kCurRows);
  EXPECT_EQ(x["n_reference"], kRefRows);
  const nlohmann::json exact = Feature(OfflineStats(), "x");
  // Edges from 64 reference quantiles: see the tolerance note above.
  EXPECT_NEAR(x["psi"].get<double>(), exact["psi"].get<double>(), 0.05);

  r = Driftctl({"report", "--model", "cli", "--window", "1h", "--slice", "country=de"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("slice: country=de"));
  EXPECT_THAT(r.out, HasSubstr("KS p / chi2 p"));

  r = Driftctl({"rank", "--model", "cli", "--window", "1h", "--min-support", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out, nullptr, false)["slices"].is_array()) << r.out;

  r = Driftctl({"push", (dir_ / "events.csv").string(), "--model", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("driftctl: GetModel: NOT_FOUND: "));
}

// Delayed labels on the real binary: some before their predictions (held,
// across a kill -9), the rest through `driftctl labels push` shuffled with
// duplicates, conflicting values and an orphan; a second kill -9 right
// after that ack, and the file sent again counts nothing twice. The
// service's quality (driftctl quality --model) equals the offline exact
// `driftctl quality` of the joined rows within the binned bounds, for the
// population and a slice.
TEST_F(DriftwatchdE2ETest, DelayedLabelsSurviveKillAndMatchOfflineQuality) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int64_t now = NowMs();
  const int64_t first_ms = FloorMinute(now) - 180'000;
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("ctr");
  schema.mutable_model()->set_model_version("1");
  auto* x = schema.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  for (int i = 0; i < 100; ++i) x->add_reference_sample(i);
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  schema.add_score_names("p");
  schema.set_label_kind(v1::LABEL_KIND_BINARY);
  schema.add_slice_keys()->set_key("platform");
  ASSERT_NO_FATAL_FAILURE(Register(schema));

  constexpr int kN = 1500, kEarly = 300;
  std::mt19937_64 rng(21);
  std::uniform_real_distribution<double> u(0, 1);
  struct Row {
    std::string id, platform;
    int64_t t = 0, label_t = 0;
    double s = 0, y = 0;
  };
  std::vector<Row> rows;
  for (int i = 0; i < kN; ++i) {
    Row r;
    r.id = "p-" + std::to_string(i);
    r.t = first_ms + i * 100;
    r.s = u(rng);
    r.platform = i % 3 == 0 ? "android" : "ios";
    r.y = u(rng) < r.s ? 1 : 0;
    if (r.platform == "android" && u(rng) < 0.4) r.y = 1 - r.y;
    r.label_t = r.t + static_cast<int64_t>(u(rng) * static_cast<double>(now - r.t));
    rows.push_back(r);
  }

  // 1. Labels that come before their predictions: held, and acked.
  {
    v1::LabelBatch batch;
    *batch.mutable_model() = schema.model();
    for (int i = 0; i < kEarly; ++i) {
      v1::Label* l = batch.add_labels();
      l->set_event_id(rows[i].id);
      l->set_value(rows[i].y);
      l->set_label_time_ms(rows[i].label_t);
    }
    grpc::ClientContext context;
    Arm(&context);
    v1::LabelAck ack;
    auto writer = ingest_->StreamLabels(&context, &ack);
    ASSERT_TRUE(writer->Write(batch));
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(ack.pending(), static_cast<uint64_t>(kEarly));
    EXPECT_EQ(ack.joined(), 0u);
  }
  server_.Signal(SIGKILL);
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  ASSERT_NO_FATAL_FAILURE(StartServer());

  // 2. The predictions.
  std::vector<v1::PredictionBatch> batches(3);
  for (int i = 0; i < kN; ++i) {
    v1::PredictionBatch& b = batches[static_cast<size_t>(i) / 500];
    *b.mutable_model() = schema.model();
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id(rows[i].id);
    e->set_event_time_ms(rows[i].t);
    e->add_numeric(1);
    e->add_scores(rows[i].s);
    e->add_slice_values(rows[i].platform);
  }
  v1::IngestAck ingest_ack;
  grpc::Status status = Stream(batches, &ingest_ack);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(ingest_ack.accepted(), static_cast<uint64_t>(kN));

  // 3. The rest by driftctl, shuffled, with duplicates, conflicting values
  //    and one orphan (label time far past the 7-day window).
  std::vector<std::string> lines;
  for (int i = kEarly; i < kN; ++i) {
    lines.push_back(absl::StrFormat("%s,%g,%d", rows[i].id, rows[i].y, rows[i].label_t));
  }
  for (int i = 0; i < 100; ++i) {
    const Row& r = rows[static_cast<size_t>(i) * 13];
    lines.push_back(absl::StrFormat("%s,%g,%d", r.id, r.y, r.label_t));
  }
  for (int i = 0; i < 30; ++i) {
    const Row& r = rows[static_cast<size_t>(i) * 17 + 5];
    lines.push_back(absl::StrFormat("%s,%g,%d", r.id, 1 - r.y, r.label_t));
  }
  lines.push_back(absl::StrFormat("nobody,1,%d", now - 9 * 86'400'000LL));
  std::shuffle(lines.begin(), lines.end(), rng);
  std::string csv = "event_id,value,label_time_ms\n";
  for (const std::string& l : lines) csv += l + "\n";
  // The first value to arrive is kept: a conflicting line may come first.
  int want_dups = 0, want_conflicting = 0;
  {
    std::map<std::string, size_t> by_id;
    for (size_t i = 0; i < rows.size(); ++i) by_id[rows[i].id] = i;
    std::map<std::string, double> first;
    for (int i = 0; i < kEarly; ++i) first[rows[i].id] = rows[i].y;
    for (const std::string& l : lines) {
      const std::string id = l.substr(0, l.find(','));
      if (!by_id.contains(id)) continue;
      const double v = std::stod(l.substr(id.size() + 1));
      auto [it, added] = first.emplace(id, v);
      if (added) {
        rows[by_id[id]].y = v;
      } else {
        (it->second == v ? want_dups : want_conflicting)++;
      }
    }
  }
  ASSERT_GE(want_conflicting, 30);
  WriteFile("labels.csv", csv);
  auto push = [&] {
    testing::CommandResult r = Driftctl(
        {"labels", "push", (dir_ / "labels.csv").string(), "--model", "ctr", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  };
  nlohmann::json pushed = push();
  ASSERT_FALSE(pushed.is_discarded());
  // Every prediction is acked, so every label for one joins at once
  // (an early label's duplicate meets it joined, or still pending: the same).
  EXPECT_EQ(pushed["joined"].get<int>(), kN - kEarly);
  EXPECT_EQ(pushed["pending"].get<int>(), 0);
  EXPECT_EQ(pushed["duplicates"].get<int>(), want_dups);
  EXPECT_EQ(pushed["conflicting"].get<int>(), want_conflicting);
  EXPECT_EQ(pushed["orphan"].get<int>(), 1);
  EXPECT_EQ(pushed["rejected"].get<int>(), 0);
  // The ack means committed: kill -9 at once.
  server_.Signal(SIGKILL);
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  ASSERT_NO_FATAL_FAILURE(StartServer());

  // 4. Everything again: nothing is counted twice.
  nlohmann::json again = push();
  EXPECT_EQ(again["joined"].get<int>(), 0);
  EXPECT_EQ(again["pending"].get<int>(), 0);
  // Each line again: the kept first value's lines are duplicates, others conflicting.
  EXPECT_EQ(again["duplicates"].get<int>() + again["conflicting"].get<int>(), kN - kEarly + 130);
  EXPECT_EQ(again["conflicting"].get<int>(), want_conflicting);

  // 5. Online vs offline exact, once the held labels have joined (the
  //    joiner tails the predictions' join state every 200 ms).
  auto online = [&](const std::string& slice) {
    std::vector<std::string> args = {"quality", "--model", "ctr", "--window", "24h", "--json"};
    if (!slice.empty()) {
      args.push_back("--slice");
      args.push_back(slice);
    }
    testing::CommandResult r = Driftctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  };
  nlohmann::json all;
  for (int attempt = 0; attempt < 100; ++attempt) {
    all = online("");
    if (!all.is_discarded() && all["labelled_weight"].get<double>() >= kN) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_DOUBLE_EQ(all["labelled_weight"].get<double>(), kN) << all.dump();
  for (const std::string platform : {"", "android"}) {
    SCOPED_TRACE(platform);
    std::string joined = "s,y\n";
    std::vector<double> delays;
    for (const Row& r : rows) {
      if (!platform.empty() && r.platform != platform) continue;
      joined += Num(r.s) + "," + Num(r.y) + "\n";
      delays.push_back(static_cast<double>(r.label_t - r.t));
    }
    WriteFile("joined.csv", joined);
    testing::CommandResult off =
        Driftctl({"quality", "--input", (dir_ / "joined.csv").string(), "--score-column", "s",
                  "--label-column", "y", "--json"},
                 /*online=*/false);
    ASSERT_EQ(off.exit_code, 0) << off.err;
    const nlohmann::json exact = nlohmann::json::parse(off.out);
    const nlohmann::json on = online(platform.empty() ? "" : "platform=" + platform);
    EXPECT_DOUBLE_EQ(on["n"].get<double>(), exact["n"].get<double>());
    EXPECT_DOUBLE_EQ(on["label_coverage"].get<double>(), 1.0);
    EXPECT_TRUE(on["mature"].get<bool>());
    EXPECT_LE(std::abs(on["auc"].get<double>() - exact["auc"].get<double>()),
              on["auc_error_bound"].get<double>() + 1e-12);
    for (const char* m : {"ece", "mce", "brier"}) {
      EXPECT_NEAR(on[m].get<double>(), exact[m].get<double>(), 1e-9) << m;
    }
    ASSERT_EQ(on["reliability"].size(), exact["reliability"].size());
    for (size_t b = 0; b < exact["reliability"].size(); ++b) {
      for (const char* k : {"mean_score", "mean_label", "count"}) {
        EXPECT_NEAR(on["reliability"][b][k].get<double>(),
                    exact["reliability"][b][k].get<double>(), 1e-9);
      }
    }
    std::sort(delays.begin(), delays.end());
    const double bound = on["label_delay_ms"]["relative_error_bound"].get<double>();
    for (auto [q, key] : {std::pair{0.5, "p50"}, std::pair{0.95, "p95"}, std::pair{0.99, "p99"}}) {
      const size_t k = std::max<size_t>(
          1, static_cast<size_t>(std::ceil(q * static_cast<double>(delays.size()))));
      const double want = delays[k - 1];  // numpy inverted_cdf
      EXPECT_LE(std::abs(on["label_delay_ms"][key].get<double>() - want), bound * want + 1e-9)
          << key;
    }
  }
  const nlohmann::json counts = all["counts"];
  EXPECT_EQ(counts["predictions"].get<int>(), kN);
  EXPECT_EQ(counts["labelled"].get<int>(), kN);
  // Both pushes arrived in the window.
  EXPECT_EQ(counts["conflicting"].get<int>(), 2 * want_conflicting);
  EXPECT_EQ(counts["orphan"].get<int>(), 2);
}

// Alerts on the real driftwatchd: a drifting android slice raises exactly
// one alert per rule and label set, with its runbook; ios and web none.
// kill -9 while one alert is firing and the other pending: after the
// restart the same fingerprints in the same states, nothing fired again.
// Then the traffic returns to the baseline and the firing alert resolves.
TEST_F(DriftwatchdE2ETest, AlertsSurviveKillAndResolveWhenTrafficReturns) {
  WriteFile("rules.yaml", R"(rules:
  - name: drift_now
    slices: ['platform=~".+"']
    condition: {expr: 'psi > 0.25', resolve: 0.1}
    min_support: 50
    severity: page
    runbook_url: runbooks/feature-drift.md
  - name: drift_slow
    slices: ['platform=~".+"']
    condition: 'psi > 0.25'
    for: 1h
    min_support: 50
    runbook_url: runbooks/feature-drift.md
)");
  extra_args_ = {"--rules-file",        (dir_ / "rules.yaml").string(), "--evaluator-interval",
                 "200ms",               "--evaluator-window",           "2m",
                 "--allowed-lateness",  "10m"};
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("loan");
  schema.mutable_model()->set_model_version("v1");
  auto* x = schema.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  schema.add_score_names("p");
  schema.add_slice_keys()->set_key("platform");
  ASSERT_NO_FATAL_FAILURE(Register(schema));
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 1);
  {
    v1::CreateBaselineRequest request;
    *request.mutable_model() = schema.model();
    request.mutable_baseline()->set_name("default");
    v1::ReferenceProfile* ref = request.mutable_baseline()->mutable_profile();
    v1::NumericColumn* col = ref->add_numeric();
    col->set_name("x");
    for (int i = 0; i < 3000; ++i) {
      col->add_values(normal(rng));
      ref->add_scores(0.5);
    }
    grpc::ClientContext context;
    Arm(&context);
    v1::Baseline baseline;
    grpc::Status status = models_->CreateBaseline(&context, request, &baseline);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  // Three platforms, 300 events each over a minute; android's x shifted.
  auto traffic = [&](int64_t start_ms, bool android_drifts, const std::string& prefix) {
    v1::PredictionBatch b;
    *b.mutable_model() = schema.model();
    for (int i = 0; i < 900; ++i) {
      const std::string platform = i % 3 == 0 ? "android" : i % 3 == 1 ? "ios" : "web";
      v1::PredictionEvent* e = b.mutable_rows()->add_events();
      e->set_event_id(prefix + std::to_string(i));
      e->set_event_time_ms(start_ms + i * 60);
      e->add_numeric(normal(rng) + (android_drifts && platform == "android" ? 2.0 : 0.0));
      e->add_scores(0.5);
      e->add_slice_values(platform);
    }
    v1::IngestAck ack;
    grpc::Status status = Stream({b}, &ack);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(ack.accepted(), 900u);
  };
  auto list = [&](std::vector<v1::AlertState> states) {
    v1::ListAlertsRequest request;
    for (v1::AlertState s : states) request.add_states(s);
    grpc::ClientContext context;
    Arm(&context);
    v1::ListAlertsResponse response;
    grpc::Status status = alerts_->ListAlerts(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, v1::Alert> by_fp;
    for (const v1::Alert& a : response.alerts()) by_fp[a.fingerprint()] = a;
    return by_fp;
  };
  auto wait_for = [&](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a real server's clock
    }
    return true;
  };
  const int64_t t0 = FloorMinute(NowMs()) - 120'000;
  ASSERT_NO_FATAL_FAILURE(traffic(t0, /*android_drifts=*/true, "d-"));
  ASSERT_TRUE(wait_for([&] { return list({}).size() == 2; }))
      << testing::ReadWholeFile(dir_ / "server.err");
  const std::map<std::string, v1::Alert> before = list({});
  for (const auto& [fp, a] : before) {
    EXPECT_EQ(a.labels().at("slice"), "platform=android");
    EXPECT_EQ(a.labels().at("feature"), "x");
    EXPECT_EQ(a.labels().at("model"), "loan");
    EXPECT_EQ(a.annotations().at("runbook_url"), "runbooks/feature-drift.md");
    EXPECT_EQ(a.state(),
              a.rule() == "drift_now" ? v1::ALERT_STATE_FIRING : v1::ALERT_STATE_PENDING);
  }

  // kill -9 with one firing and one pending; same alerts after the restart.
  server_.Signal(SIGKILL);
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (int round = 0; round < 2; ++round) {
    const std::map<std::string, v1::Alert> after = list({});
    ASSERT_EQ(after.size(), before.size()) << round;
    for (const auto& [fp, a] : before) {
      ASSERT_TRUE(after.contains(fp)) << fp;
      EXPECT_EQ(after.at(fp).state(), a.state());
      EXPECT_EQ(after.at(fp).active_at().DebugString(), a.active_at().DebugString());
      EXPECT_EQ(after.at(fp).fired_at().DebugString(), a.fired_at().DebugString());  // not again
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // five evaluations later, the same
  }

  // The traffic returns to the baseline (the 2-minute window then holds
  // only clean events): the firing alert resolves, the pending one goes.
  ASSERT_NO_FATAL_FAILURE(traffic(t0 + 180'000, /*android_drifts=*/false, "c-"));
  ASSERT_TRUE(wait_for([&] { return list({}).empty(); }))
      << testing::ReadWholeFile(dir_ / "server.err");
  const std::map<std::string, v1::Alert> resolved = list({v1::ALERT_STATE_RESOLVED});
  ASSERT_EQ(resolved.size(), 1u);
  const v1::Alert& r = resolved.begin()->second;
  EXPECT_EQ(r.rule(), "drift_now");
  EXPECT_TRUE(before.contains(r.fingerprint()));
  EXPECT_TRUE(r.has_resolved_at());
}

// At least once through kill -9: a webhook notification that got a 500 is
// pending when driftwatchd is killed, and goes out after the restart with
// its original webhook-id; killed again after the receiver has it but
// before the answer (so before the outbox update), it is re-sent after the
// next restart with the same id, then marked delivered and never sent
// again; the grouping state survives, so the still-firing alert is not
// notified anew.
TEST_F(DriftwatchdE2ETest, WebhookNotificationsSurviveKillWithTheirIds) {
  testing::HttpReceiver receiver;
  receiver.Script({{500}});
  WriteFile("rules.yaml", R"(rules:
  - name: drift_now
    slices: ['platform=~".+"']
    condition: 'psi > 0.25'
    min_support: 50
    severity: page
    runbook_url: runbooks/feature-drift.md
)");
  WriteFile("config.yaml", "notifications:\n"
                           "  runbook_base_url: https://git.example/dw/blob/main\n"
                           "  receivers:\n"
                           "    - name: oncall\n"
                           "      type: webhook\n"
                           "      url: " + receiver.url() + "\n"
                           "      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
                           "      timeout: 2s\n"
                           "  route:\n"
                           "    receiver: oncall\n"
                           "    group_by: [alertname, model]\n"
                           "    group_wait: 0s\n"
                           "  retry: {initial_backoff: 500ms, max_backoff: 1s}\n");
  extra_args_ = {"--config", (dir_ / "config.yaml").string(), "--rules-file",
                 (dir_ / "rules.yaml").string(), "--evaluator-interval", "200ms",
                 "--evaluator-window", "2m", "--allowed-lateness", "10m"};
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("loan");
  schema.mutable_model()->set_model_version("v1");
  auto* x = schema.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  schema.add_score_names("p");
  schema.add_slice_keys()->set_key("platform");
  ASSERT_NO_FATAL_FAILURE(Register(schema));
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal(0, 1);
  {
    v1::CreateBaselineRequest request;
    *request.mutable_model() = schema.model();
    request.mutable_baseline()->set_name("default");
    v1::ReferenceProfile* ref = request.mutable_baseline()->mutable_profile();
    v1::NumericColumn* col = ref->add_numeric();
    col->set_name("x");
    for (int i = 0; i < 3000; ++i) {
      col->add_values(normal(rng));
      ref->add_scores(0.5);
    }
    grpc::ClientContext context;
    Arm(&context);
    v1::Baseline baseline;
    ASSERT_TRUE(models_->CreateBaseline(&context, request, &baseline).ok());
  }
  v1::PredictionBatch b;
  *b.mutable_model() = schema.model();
  const int64_t t0 = FloorMinute(NowMs()) - 120'000;
  for (int i = 0; i < 900; ++i) {
    const std::string platform = i % 3 == 0 ? "android" : i % 3 == 1 ? "ios" : "web";
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id("e" + std::to_string(i));
    e->set_event_time_ms(t0 + i * 60);
    e->add_numeric(normal(rng) + (platform == "android" ? 2.0 : 0.0));
    e->add_scores(0.5);
    e->add_slice_values(platform);
  }
  v1::IngestAck ack;
  ASSERT_TRUE(Stream({b}, &ack).ok());

  // 1. The first attempt gets a 500; kill -9 while the row waits its backoff.
  ASSERT_TRUE(receiver.WaitFor(1, std::chrono::seconds(30)))
      << testing::ReadWholeFile(dir_ / "server.err");
  server_.Signal(SIGKILL);
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  // 2. After the restart it goes again; the receiver has it, and driftwatchd
  //    is killed before it hears the 200.
  std::atomic<pid_t> pid{0};
  receiver.OnRequest([&pid](const testing::HttpReceiver::Request&) {
    if (const pid_t p = pid.exchange(0); p > 0) ::kill(p, SIGKILL);
  });
  ASSERT_NO_FATAL_FAILURE(StartServer());
  pid = server_.pid();
  ASSERT_TRUE(receiver.WaitFor(2, std::chrono::seconds(30)));
  EXPECT_EQ(server_.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  // 3. Restarted: the same notification a third time, answered 200, then
  //    nothing more (delivered; the alert still fires but is not new).
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(receiver.WaitFor(3, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // ~15 evaluations, 2+ relay polls
  const std::vector<testing::HttpReceiver::Request> got = receiver.requests();
  ASSERT_EQ(got.size(), 3u);
  for (const testing::HttpReceiver::Request& q : got) {
    EXPECT_EQ(q.headers.at("webhook-id"), got[0].headers.at("webhook-id"));
    EXPECT_EQ(q.body, got[0].body);
  }
  // This process delivered it (its first attempt), and nothing is pending.
  const std::string metrics = testing::LoopbackGet(metrics_port_, "/metrics");
  EXPECT_THAT(metrics,
              HasSubstr("driftwatch_notifications_total{receiver=\"oncall\",result=\"delivered\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("driftwatch_notification_outbox_pending 0"));
  EXPECT_THAT(metrics, HasSubstr("driftwatch_notification_delivery_seconds_count 1"));
  const nlohmann::json body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body["status"], "firing");
  EXPECT_EQ(body["groupLabels"]["alertname"], "drift_now");
  ASSERT_EQ(body["alerts"].size(), 1u);  // android only
  EXPECT_EQ(body["alerts"][0]["labels"]["slice"], "platform=android");
  EXPECT_EQ(body["alerts"][0]["annotations"]["runbook_url"],
            "https://git.example/dw/blob/main/runbooks/feature-drift.md");
}

// Against Debian's real prometheus-alertmanager on loopback ports with a
// config written here: driftwatch's alert appears in GET /api/v2/alerts
// with our labels, annotations and runbook URL, and is resolved there
// (gone from the active list) after driftwatch resolves it.
TEST_F(DriftwatchdE2ETest, AlertsReachARealAlertmanagerAndResolveThere) {
  const char* kAlertmanager = "/usr/bin/prometheus-alertmanager";
  if (!fs::exists(kAlertmanager)) GTEST_SKIP() << "prometheus-alertmanager is not installed";
  fs::create_directories(dir_ / "am");
  WriteFile("am/alertmanager.yml", "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n");
  const int am_port = testing::FreePort();
  testing::ChildProcess am;
  std::string error;
  ASSERT_TRUE(am.Start({kAlertmanager, "--config.file=" + (dir_ / "am/alertmanager.yml").string(),
                        "--storage.path=" + (dir_ / "am").string(),
                        "--web.listen-address=127.0.0.1:" + std::to_string(am_port),
                        "--cluster.listen-address="},
                       (dir_ / "am.out").string(), (dir_ / "am.err").string(), &error))
      << error;
  auto am_alerts = [&] {
    return nlohmann::json::parse(testing::LoopbackGet(am_port, "/api/v2/alerts"), nullptr, false);
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!am_alerts().is_array() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(am_alerts().is_array()) << testing::ReadWholeFile(dir_ / "am.err");

  WriteFile("rules.yaml", R"(rules:
  - name: drift_now
    slices: ['platform=~".+"']
    condition: {expr: 'psi > 0.25', resolve: 0.1}
    min_support: 50
    severity: page
    annotations: {summary: 'PSI {{ $value }} on {{ $labels.feature }} in {{ $labels.slice }}'}
    runbook_url: runbooks/feature-drift.md
)");
  WriteFile("config.yaml", "notifications:\n"
                           "  external_url: http://driftwatch.test:7070\n"
                           "  runbook_base_url: https://git.example/dw/blob/main\n"
                           "  alertmanager_resend: 1s\n"
                           "  receivers:\n"
                           "    - {name: am, type: alertmanager, url: 'http://127.0.0.1:" +
                               std::to_string(am_port) + "'}\n"
                           "  route: {receiver: am}\n");
  extra_args_ = {"--config", (dir_ / "config.yaml").string(), "--rules-file",
                 (dir_ / "rules.yaml").string(), "--evaluator-interval", "200ms",
                 "--evaluator-window", "2m", "--allowed-lateness", "10m"};
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id("loan");
  schema.mutable_model()->set_model_version("v1");
  auto* x = schema.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  schema.add_score_names("p");
  schema.add_slice_keys()->set_key("platform");
  ASSERT_NO_FATAL_FAILURE(Register(schema));
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0, 1);
  {
    v1::CreateBaselineRequest request;
    *request.mutable_model() = schema.model();
    request.mutable_baseline()->set_name("default");
    v1::ReferenceProfile* ref = request.mutable_baseline()->mutable_profile();
    v1::NumericColumn* col = ref->add_numeric();
    col->set_name("x");
    for (int i = 0; i < 3000; ++i) {
      col->add_values(normal(rng));
      ref->add_scores(0.5);
    }
    grpc::ClientContext context;
    Arm(&context);
    v1::Baseline baseline;
    ASSERT_TRUE(models_->CreateBaseline(&context, request, &baseline).ok());
  }
  auto traffic = [&](int64_t start_ms, bool drift, const std::string& prefix) {
    v1::PredictionBatch b;
    *b.mutable_model() = schema.model();
    for (int i = 0; i < 900; ++i) {
      const std::string platform = i % 3 == 0 ? "android" : i % 3 == 1 ? "ios" : "web";
      v1::PredictionEvent* e = b.mutable_rows()->add_events();
      e->set_event_id(prefix + std::to_string(i));
      e->set_event_time_ms(start_ms + i * 60);
      e->add_numeric(normal(rng) + (drift && platform == "android" ? 2.0 : 0.0));
      e->add_scores(0.5);
      e->add_slice_values(platform);
    }
    v1::IngestAck ack;
    ASSERT_TRUE(Stream({b}, &ack).ok());
  };
  const int64_t t0 = FloorMinute(NowMs()) - 180'000;
  ASSERT_NO_FATAL_FAILURE(traffic(t0, true, "d-"));
  auto wait_for = [&](const std::function<bool(const nlohmann::json&)>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      const nlohmann::json a = am_alerts();
      if (a.is_array() && done(a)) return a;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return am_alerts();
  };
  nlohmann::json listed = wait_for([](const nlohmann::json& a) { return a.size() == 1; });
  ASSERT_EQ(listed.size(), 1u) << listed.dump() << testing::ReadWholeFile(dir_ / "server.err");
  const nlohmann::json& a = listed[0];
  EXPECT_EQ(a["labels"]["alertname"], "drift_now");
  EXPECT_EQ(a["labels"]["model"], "loan");
  EXPECT_EQ(a["labels"]["model_version"], "v1");
  EXPECT_EQ(a["labels"]["slice"], "platform=android");
  EXPECT_EQ(a["labels"]["feature"], "x");
  EXPECT_EQ(a["labels"]["severity"], "page");
  EXPECT_EQ(a["annotations"]["runbook_url"],
            "https://git.example/dw/blob/main/runbooks/feature-drift.md");
  EXPECT_THAT(a["annotations"]["summary"].get<std::string>(), HasSubstr("on x in platform=android"));
  EXPECT_EQ(a["generatorURL"], "http://driftwatch.test:7070/alerts?rule=drift_now");
  EXPECT_EQ(a["status"]["state"], "active");
  // Alertmanager's fingerprint is ours.
  grpc::ClientContext list_ctx;
  v1::ListAlertsResponse ours;
  ASSERT_TRUE(alerts_->ListAlerts(&list_ctx, v1::ListAlertsRequest(), &ours).ok());
  ASSERT_EQ(ours.alerts_size(), 1);
  EXPECT_EQ(a["fingerprint"], ours.alerts(0).fingerprint());

  // The traffic returns to the baseline: resolved in driftwatch, then in
  // Alertmanager (endsAt = the resolve time: no longer active).
  ASSERT_NO_FATAL_FAILURE(traffic(t0 + 180'000, false, "c-"));
  listed = wait_for([](const nlohmann::json& a) { return a.empty(); });
  EXPECT_TRUE(listed.empty()) << listed.dump();
  am.Signal(SIGTERM);
  (void)am.Wait(std::chrono::seconds(10));
  am.KillAndReap();
}

}  // namespace
}  // namespace driftwatch
