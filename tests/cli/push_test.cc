// `driftctl push` when the server rejects events: the exit code, and the
// per-reason summary (count, example, message in human time, what to do),
// human and --json, against a fake Ingest service on 127.0.0.1:0 whose ack
// is fixed by the test.
#include <atomic>
#include <filesystem>
#include <fstream>
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
using ::testing::HasSubstr;
using ::testing::Not;

v1::ModelSchema Schema() {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("m");
  s.mutable_model()->set_model_version("1");
  auto* x = s.add_features();
  x->set_name("x");
  x->set_kind(v1::FEATURE_KIND_NUMERIC);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_score_names("p");
  return s;
}

// Answers every stream with `ack` (set before the push).
class FixedAckServer final : public v1::Models::Service, public v1::Ingest::Service {
 public:
  grpc::Status GetModel(grpc::ServerContext*, const v1::GetModelRequest*,
                        v1::ModelSchema* response) override {
    *response = Schema();
    return grpc::Status::OK;
  }
  grpc::Status StreamPredictions(grpc::ServerContext*,
                                 grpc::ServerReader<v1::PredictionBatch>* reader,
                                 v1::IngestAck* response) override {
    v1::PredictionBatch batch;
    while (reader->Read(&batch)) {
    }
    *response = ack;
    return grpc::Status::OK;
  }

  v1::IngestAck ack;
};

class PushTest : public ::testing::Test {
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
           ("push_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
    options_.input = (dir_ / "events.csv").string();
    std::ofstream(options_.input) << "event_id,event_time_ms,x,p\n"
                                     "a,1796132327276,1,0.5\n"
                                     "b,1796132327277,2,0.5\n"
                                     "c,1796132327278,3,0.5\n";
  }
  void TearDown() override {
    server_->Shutdown();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  struct Result {
    int code;
    std::string out, err;
  };
  Result Push() {
    std::ostringstream out, err;
    const int code = RunPush(options_, out, err, /*err_is_tty=*/false);
    return {code, out.str(), err.str()};
  }

  // 1 accepted, 1 too late, 1 in the future.
  void RejectTwo() {
    v1::IngestAck& ack = fake_.ack;
    ack.set_accepted(1);
    ack.set_rejected(2);
    ack.set_too_late(1);
    ack.set_batches(1);
    v1::RejectReason* late = ack.add_reasons();
    late->set_reason("too_late");
    late->set_count(1);
    late->set_example_event_id("b");
    late->set_message(
        "event_time_ms 1796132327277 falls in a bucket already closed (watermark 1796154526233, "
        "allowed lateness 300000 ms)");
    v1::RejectReason* future = ack.add_reasons();
    future->set_reason("event_time_in_future");
    future->set_count(1);
    future->set_example_event_id("c");
    future->set_message("event_time_ms 1796132327278 is more than 300000 ms ahead of the server clock");
  }

  FixedAckServer fake_;
  std::unique_ptr<grpc::Server> server_;
  PushOptions options_;
  fs::path dir_;
};

TEST_F(PushTest, NoRejectsExitZero) {
  fake_.ack.set_accepted(2);
  fake_.ack.set_duplicates(1);  // a duplicate is not a rejection
  Result r = Push();
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("rejected by reason")));
}

TEST_F(PushTest, RejectsExitNonZeroWithReasonsInHumanTimeAndAdvice) {
  RejectTwo();
  Result r = Push();
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_THAT(r.err, HasSubstr("the server rejected 2 of 3 events"));
  EXPECT_THAT(r.err, HasSubstr("--allow-rejects"));
  EXPECT_THAT(r.out, HasSubstr("rejected by reason:"));
  EXPECT_THAT(r.out, HasSubstr("too_late: 1 event, e.g. event_id \"b\""));
  EXPECT_THAT(r.out, HasSubstr("event_time_ms 1796132327277 (2026-12-01T13:38:47.277Z) falls in "
                               "a bucket already closed (watermark 1796154526233 "
                               "(2026-12-01T19:48:46.233Z), allowed lateness 300000 ms)"));
  EXPECT_THAT(r.out, HasSubstr("what to do: raise ingest.backfill_horizon (or "
                               "ingest.allowed_lateness)"));
  EXPECT_THAT(r.out, HasSubstr("event_time_in_future: 1 event, e.g. event_id \"c\""));
  EXPECT_THAT(r.out, HasSubstr("what to do: check the client clock"));
}

TEST_F(PushTest, AllowRejectsExitsZeroAndJsonCarriesTheSame) {
  RejectTwo();
  options_.allow_rejects = true;
  options_.json = true;
  Result r = Push();
  EXPECT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json s = nlohmann::json::parse(r.out);
  EXPECT_EQ(s["rejected"], 2);
  ASSERT_EQ(s["reasons"].size(), 2u);
  const nlohmann::json& future = s["reasons"][0];  // by name
  EXPECT_EQ(future["reason"], "event_time_in_future");
  EXPECT_EQ(future["count"], 1);
  EXPECT_EQ(future["example_event_id"], "c");
  EXPECT_EQ(future["message"],
            "event_time_ms 1796132327278 (2026-12-01T13:38:47.278Z) is more than 300000 ms "
            "ahead of the server clock");
  EXPECT_THAT(future["advice"].get<std::string>(), HasSubstr("check the client clock"));
  EXPECT_THAT(s["reasons"][1]["advice"].get<std::string>(),
              HasSubstr("raise ingest.backfill_horizon"));
  // Without --allow-rejects the same JSON, and exit 4.
  options_.allow_rejects = false;
  r = Push();
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_EQ(nlohmann::json::parse(r.out)["reasons"].size(), 2u);
}

TEST_F(PushTest, TimesAlreadyInHumanFormAreNotAnnotatedTwice) {
  fake_.ack.set_rejected(1);
  v1::RejectReason* r = fake_.ack.add_reasons();
  r->set_reason("some_new_reason");
  r->set_count(1);
  r->set_example_event_id("a");
  r->set_message("at 1796132327276 (2026-12-01T13:38:47.276Z), code 404, id x1796132327276");
  options_.allow_rejects = true;
  Result res = Push();
  EXPECT_EQ(res.code, kExitOk);
  EXPECT_THAT(res.out, HasSubstr("at 1796132327276 (2026-12-01T13:38:47.276Z), code 404, id "
                                 "x1796132327276\n"));
  EXPECT_THAT(res.out, HasSubstr("what to do: see the reject reasons in docs/ingest.md"));
}

}  // namespace
}  // namespace driftwatch::cli
