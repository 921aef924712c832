// `driftctl labels push` end to end against a fake Models + Ingest service
// on 127.0.0.1:0: one StreamLabels stream of --batch sized batches naming
// the resolved version, the summary by result (text and --json), the exit
// codes for rejects, bad files (nothing sent) and a failed RPC.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "driftwatch/cli/client.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Model "m" resolves to version "7", binary labels. StreamLabels records
// every batch and answers with `ack` (or `fail` when set).
class FakeLabelServer final : public v1::Models::Service, public v1::Ingest::Service {
 public:
  grpc::Status GetModel(grpc::ServerContext*, const v1::GetModelRequest* request,
                        v1::ModelSchema* response) override {
    if (request->model().model_id() != "m") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "model is not registered");
    }
    response->mutable_model()->set_model_id("m");
    response->mutable_model()->set_model_version("7");
    response->set_label_kind(v1::LABEL_KIND_BINARY);
    response->add_score_names("p");
    return grpc::Status::OK;
  }
  grpc::Status StreamLabels(grpc::ServerContext*, grpc::ServerReader<v1::LabelBatch>* reader,
                            v1::LabelAck* response) override {
    std::lock_guard<std::mutex> lock(mu);
    ++streams;
    v1::LabelBatch batch;
    while (reader->Read(&batch)) batches.push_back(batch);
    if (fail) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "StreamLabels");
    *response = ack;
    return grpc::Status::OK;
  }

  std::mutex mu;
  int streams = 0;
  std::vector<v1::LabelBatch> batches;
  v1::LabelAck ack;
  bool fail = false;
};

class LabelsPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(static_cast<v1::Models::Service*>(&fake_));
    builder.RegisterService(static_cast<v1::Ingest::Service*>(&fake_));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.server.server = "127.0.0.1:" + std::to_string(port);
    options_.server.timeout = "10s";
    options_.model = "m";
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("labels_push_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
    options_.input = Write("labels.csv",
                           "event_id,value,label_time,source\n"
                           "a,1,1796132327276,crm\n"
                           "b,0,2026-12-01T13:38:47Z,\n"
                           "c,1,,\n"
                           "d,0,1796132327279,\n"
                           "e,1,1796132327280,\n");
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
  Result Push() {
    std::ostringstream out, err;
    const int code = RunLabelsPush(options_, out, err, /*err_is_tty=*/false);
    return {code, out.str(), err.str()};
  }

  void SetAck() {
    v1::LabelAck& ack = fake_.ack;
    ack.set_joined(2);
    ack.set_pending(1);
    ack.set_not_sampled(1);
    ack.set_rejected(1);
    ack.set_batches(3);
    v1::RejectReason* r = ack.add_reasons();
    r->set_reason("label_time_in_future");
    r->set_count(1);
    r->set_example_event_id("e");
    r->set_message("label_time_ms 1796132327280 is ahead of the server clock");
  }

  FakeLabelServer fake_;
  std::unique_ptr<grpc::Server> server_;
  LabelsPushOptions options_;
  fs::path dir_;
};

TEST_F(LabelsPushTest, OneStreamOfBatchesNamingTheResolvedVersion) {
  options_.batch = 2;
  options_.allow_rejects = true;
  SetAck();
  Result r = Push();
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(fake_.streams, 1);
  ASSERT_EQ(fake_.batches.size(), 3u);  // 2 + 2 + 1
  EXPECT_EQ(fake_.batches[0].labels_size(), 2);
  EXPECT_EQ(fake_.batches[2].labels_size(), 1);
  for (const v1::LabelBatch& b : fake_.batches) {
    EXPECT_EQ(b.model().model_id(), "m");
    EXPECT_EQ(b.model().model_version(), "7");
  }
  const v1::Label& a = fake_.batches[0].labels(0);
  EXPECT_EQ(a.event_id(), "a");
  EXPECT_EQ(a.value(), 1);
  EXPECT_EQ(a.label_time_ms(), 1'796'132'327'276);
  EXPECT_EQ(a.source(), "crm");
  EXPECT_EQ(fake_.batches[0].labels(1).label_time_ms(), 1'796'132'327'000);
  EXPECT_GT(fake_.batches[1].labels(0).label_time_ms(), 1'700'000'000'000);  // "now"
  EXPECT_EQ(fake_.batches[2].labels(0).event_id(), "e");

  // The summary by result, then the reasons in human time.
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)sent +5\n"));
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)joined +2\n"));
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)pending +1\n"));
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)conflicting +0\n"));
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)not sampled +1\n"));
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)orphan +0\n"));
  EXPECT_THAT(r.out, ContainsRegex("(^|\n)rejected +1\n"));
  EXPECT_THAT(r.out, HasSubstr("pending: no prediction with that event id yet"));
  EXPECT_THAT(r.out, HasSubstr("not sampled: the event id is outside"));
  EXPECT_THAT(r.out, Not(HasSubstr("orphan: ")));  // zero: no note
  EXPECT_THAT(r.out, HasSubstr("label_time_in_future: 1 label, e.g. event_id \"e\"\n"
                               "    label_time_ms 1796132327280 (2026-12-01T13:38:47.280Z) is "
                               "ahead of the server clock\n"));
}

TEST_F(LabelsPushTest, JsonAndTheRejectExitCode) {
  SetAck();
  options_.json = true;
  Result r = Push();
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_THAT(r.err, HasSubstr("the server rejected 1 of 5 labels"));
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["sent"], 5);
  EXPECT_EQ(j["joined"], 2);
  EXPECT_EQ(j["pending"], 1);
  EXPECT_EQ(j["duplicates"], 0);
  EXPECT_EQ(j["conflicting"], 0);
  EXPECT_EQ(j["not_sampled"], 1);
  EXPECT_EQ(j["orphan"], 0);
  EXPECT_EQ(j["rejected"], 1);
  EXPECT_EQ(j["batches"], 3);
  ASSERT_EQ(j["reasons"].size(), 1u);
  EXPECT_EQ(j["reasons"][0]["reason"], "label_time_in_future");
  EXPECT_EQ(j["reasons"][0]["count"], 1);
  EXPECT_EQ(j["reasons"][0]["example_event_id"], "e");
  EXPECT_THAT(j["reasons"][0]["message"].get<std::string>(),
              HasSubstr("(2026-12-01T13:38:47.280Z)"));
  EXPECT_TRUE(j.contains("labels_per_second"));
}

TEST_F(LabelsPushTest, BadRowsSendNothing) {
  options_.input = Write("bad.csv", "event_id,value\na,1\nb,2\n,0\n");
  Result r = Push();
  EXPECT_EQ(r.code, kExitBadInput);
  // Every bad row, one "driftctl: FILE:LINE: ..." line each.
  EXPECT_THAT(r.err, HasSubstr("bad.csv:3: column \"value\": a binary label is 0 or 1, "
                               "got \"2\"\n"));
  EXPECT_THAT(r.err, HasSubstr("bad.csv:4: column \"event_id\": empty event id\n"));
  EXPECT_THAT(r.err, HasSubstr("bad.csv: 2 of 3 rows are bad\n"));
  EXPECT_THAT(r.err, HasSubstr("driftctl: labels push: nothing was sent"));
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.rfind("driftctl: ", 0), 0u) << line;
  }
  EXPECT_EQ(fake_.streams, 0);
}

TEST_F(LabelsPushTest, RpcFailuresExitOne) {
  fake_.fail = true;
  Result r = Push();
  EXPECT_EQ(r.code, kExitRpcFailed);
  EXPECT_THAT(r.err, HasSubstr("driftctl: StreamLabels: UNIMPLEMENTED: StreamLabels\n"));
  EXPECT_THAT(r.err, HasSubstr("5 of 5 labels were sent and none is acknowledged"));
  EXPECT_EQ(r.out, "");

  options_.model = "nope";
  r = Push();
  EXPECT_EQ(r.code, kExitRpcFailed);
  EXPECT_THAT(r.err, HasSubstr("driftctl: GetModel: NOT_FOUND"));
}

}  // namespace
}  // namespace driftwatch::cli
