// The ingest edge under malformed and hostile traffic, through a real
// Server on 127.0.0.1:0: messages that do not parse, strings over their
// length limits, idle streams past the cap. Raw byte streams are sent
// through a ByteBuffer writer on the same channel.
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "driftwatch/base/clock.h"
#include "driftwatch/service/server.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"

namespace driftwatch::service {
namespace {

namespace fs = std::filesystem;

constexpr char kStreamPredictions[] = "/driftwatch.v1.Ingest/StreamPredictions";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "driftwatch-edge-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

v1::ModelSchema Schema() {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("edge");
  s.mutable_model()->set_model_version("v1");
  auto* amount = s.add_features();
  amount->set_name("amount");
  amount->set_kind(v1::FEATURE_KIND_NUMERIC);
  amount->set_nullable(true);
  for (int i = 0; i < 100; ++i) amount->add_reference_sample(i);
  auto* country = s.add_features();
  country->set_name("country");
  country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_score_names("p");
  s.add_slice_keys()->set_key("platform");
  return s;
}

// `n` row events "<prefix>0" ... at time `t`.
v1::PredictionBatch Rows(const std::string& prefix, int n, int64_t t) {
  v1::PredictionBatch b;
  b.mutable_model()->set_model_id("edge");
  b.mutable_model()->set_model_version("v1");
  for (int i = 0; i < n; ++i) {
    v1::PredictionEvent* e = b.mutable_rows()->add_events();
    e->set_event_id(prefix + std::to_string(i));
    e->set_event_time_ms(t);
    e->add_numeric(i);
    e->add_categorical("US");
    e->add_scores(0.5);
    e->add_slice_values("ios");
  }
  return b;
}

grpc::ByteBuffer Bytes(const std::string& wire) {
  grpc::Slice slice(wire);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer Bytes(const v1::PredictionBatch& batch) {
  return Bytes(batch.SerializeAsString());
}

class IngestEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "";
    config.data_dir = dir_.File("data");
    config.ingest.flush_interval_ms = 50;
    Configure(&config);
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(config, &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    ingest_ = v1::Ingest::NewStub(channel_);
    auto models = v1::Models::NewStub(channel_);
    grpc::ClientContext ctx;
    v1::RegisterModelRequest request;
    *request.mutable_schema() = Schema();
    v1::RegisterModelResponse response;
    ASSERT_TRUE(models->RegisterModel(&ctx, request, &response).ok());
  }
  void TearDown() override { server_.reset(); }
  virtual void Configure(ServerConfig*) {}

  // One stream of raw messages; the status, and the ack when OK.
  grpc::Status StreamBytes(const std::vector<grpc::ByteBuffer>& messages, v1::IngestAck* ack) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::ByteBuffer response;
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(kStreamPredictions,
                                      grpc::internal::RpcMethod::CLIENT_STREAMING),
            &ctx, &response));
    for (const grpc::ByteBuffer& m : messages) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (status.ok()) {
      std::vector<grpc::Slice> slices;
      EXPECT_TRUE(response.Dump(&slices).ok());
      std::string wire;
      for (const grpc::Slice& s : slices) wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
      EXPECT_TRUE(ack->ParseFromString(wire));
    }
    return status;
  }

  grpc::Status Stream(const std::vector<v1::PredictionBatch>& batches, v1::IngestAck* ack) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto writer = ingest_->StreamPredictions(&ctx, ack);
    for (const auto& b : batches) {
      if (!writer->Write(b)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  int64_t Now() const { return clock_.NowMs(); }

  TempDir dir_;
  base::SystemClock clock_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> ingest_;
};

// A batch whose first event_id holds bytes that are not UTF-8: the wire
// form is what a client without UTF-8 checks would send.
std::string InvalidUtf8Batch(int64_t t) {
  v1::PredictionBatch batch = Rows("bad", 5, t);
  std::string wire = batch.SerializeAsString();
  const std::string marker = "bad0";
  const size_t at = wire.find(marker);
  EXPECT_NE(at, std::string::npos);
  wire[at + 1] = static_cast<char>(0xC3);  // a lead byte, then 'd': invalid
  wire[at + 3] = static_cast<char>(0xFF);  // never valid in UTF-8
  return wire;
}

TEST_F(IngestEdgeTest, WellFormedRawBytesAreIngestedLikeTypedMessages) {
  const int64_t t = Now();
  v1::IngestAck ack;
  grpc::Status status = StreamBytes({Bytes(Rows("a", 5, t)), Bytes(Rows("b", 5, t))}, &ack);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ack.accepted(), 10u);
  EXPECT_EQ(ack.batches(), 2u);
}

TEST_F(IngestEdgeTest, InvalidUtf8FailsTheStreamNamingTheBatch) {
  const int64_t t = Now();
  v1::IngestAck ack;
  grpc::Status status = StreamBytes(
      {Bytes(Rows("a", 5, t)), Bytes(InvalidUtf8Batch(t)), Bytes(Rows("c", 5, t))}, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("batch 1 of the stream (0-based)"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("UTF-8"), std::string::npos) << status.error_message();

  // The batch before it stays applied: re-sending it counts duplicates.
  v1::IngestAck again;
  ASSERT_TRUE(Stream({Rows("a", 5, t)}, &again).ok());
  EXPECT_EQ(again.duplicates(), 5u);
  EXPECT_EQ(again.accepted(), 0u);
}

TEST_F(IngestEdgeTest, TruncatedBytesFailTheStreamNamingTheBatch) {
  const int64_t t = Now();
  const std::string whole = Rows("t", 5, t).SerializeAsString();
  for (size_t cut : {whole.size() - 1, whole.size() / 2, size_t{3}}) {
    SCOPED_TRACE(cut);
    v1::IngestAck ack;
    grpc::Status status =
        StreamBytes({Bytes(Rows("a", 5, t)), Bytes(Rows("b", 5, t)), Bytes(whole.substr(0, cut)),
                     Bytes(Rows("c", 5, t))},
                    &ack);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find("batch 2 of the stream (0-based)"), std::string::npos)
        << status.error_message();
  }
}

TEST_F(IngestEdgeTest, AnEmptyMessageIsAnEmptyBatchNotAnError) {
  // Zero bytes parse as a PredictionBatch with no model: NOT_FOUND, never OK.
  v1::IngestAck ack;
  grpc::Status status = StreamBytes({Bytes(std::string())}, &ack);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
}

// This process's resident set, in kB.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

int64_t RssKb();

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += static_cast<int64_t>(entry.file_size());
  }
  return total;
}

TEST_F(IngestEdgeTest, MegabyteCategoriesAreRejectedAndKeptNowhere) {
  const int64_t t = Now();
  ASSERT_TRUE(server_->ingestor().Flush().ok());
  const int64_t disk_before = DirBytes(dir_.File("data"));
  const int64_t rss_before_kb = RssKb();
  // 32 distinct 1 MiB values, row and columnar, 8 per batch.
  std::vector<v1::PredictionBatch> batches;
  for (int b = 0; b < 4; ++b) {
    v1::PredictionBatch batch = Rows("big" + std::to_string(b) + "-", 8, t);
    for (int i = 0; i < 8; ++i) {
      batch.mutable_rows()->mutable_events(i)->set_categorical(
          0, std::string(1 << 20, static_cast<char>('A' + b * 8 + i)));
    }
    if (b % 2 == 1) {  // the same events as a ColumnarBatch
      v1::PredictionBatch columns;
      *columns.mutable_model() = batch.model();
      v1::ColumnarBatch* c = columns.mutable_columns();
      c->set_num_events(8);
      v1::CategoricalColumn* country = c->add_categorical();
      country->set_name("country");
      c->add_slice_dictionary()->add_values("ios");
      for (int i = 0; i < 8; ++i) {
        const v1::PredictionEvent& e = batch.rows().events(i);
        c->add_event_ids(e.event_id());
        c->add_event_time_ms(t);
        c->add_numeric(e.numeric(0));
        country->add_dictionary(e.categorical(0));
        country->add_codes(i);
        c->add_scores(0.5);
        c->add_slice_codes(0);
      }
      batch = std::move(columns);
    }
    batches.push_back(std::move(batch));
  }
  batches.push_back(Rows("small", 2, t));
  v1::IngestAck ack;
  grpc::Status status = Stream(batches, &ack);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ack.accepted(), 2u);
  EXPECT_EQ(ack.rejected(), 32u);
  ASSERT_EQ(ack.reasons_size(), 1);
  EXPECT_EQ(ack.reasons(0).reason(), "category_too_long");
  EXPECT_EQ(ack.reasons(0).count(), 32u);
  EXPECT_NE(ack.reasons(0).message().find("1048576 bytes, longer than ingest.max_category_bytes "
                                          "(1024)"),
            std::string::npos)
      << ack.reasons(0).message();
  ASSERT_TRUE(server_->ingestor().Flush().ok());
  // Nothing of them is stored (they were 32 MiB, +360 MiB on disk before
  // the limit) or held: what grows is the two small events and SQLite's
  // pages.
  EXPECT_LT(DirBytes(dir_.File("data")) - disk_before, 2 << 20);
  const int64_t grown_kb = RssKb() - rss_before_kb;
  // AddressSanitizer keeps freed memory in quarantine (256 MB by default),
  // so the resident set says nothing under it.
  if (!kAddressSanitizer) {
    EXPECT_LT(grown_kb, 96 * 1024) << "resident set grew by " << grown_kb << " kB";
  }
}

// This process's resident set, in kB.
int64_t RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

class IdleStreamsTest : public IngestEdgeTest {
 protected:
  void Configure(ServerConfig* config) override { config->max_ingest_streams = kCap; }
  static constexpr int kCap = 64;  // the default
};

TEST_F(IdleStreamsTest, StreamsPastTheCapAreRefusedAndIdleOnesHoldNoArena) {
  constexpr int kStreams = 200;
  const int64_t rss_before_kb = RssKb();
  struct Open {
    grpc::ClientContext context;
    v1::IngestAck ack;
    std::unique_ptr<grpc::ClientWriter<v1::PredictionBatch>> writer;
  };
  std::vector<std::unique_ptr<Open>> streams;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int i = 0; i < kStreams; ++i) {
    auto open = std::make_unique<Open>();
    open->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
    open->writer = ingest_->StreamPredictions(&open->context, &open->ack);
    streams.push_back(std::move(open));
    // One at a time: each stream has reached its handler (running, or
    // refused) before the next opens. A bounded wait on a condition.
    while (server_->ingest_streams() + server_->refused_ingest_streams() <
               static_cast<uint64_t>(i + 1) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  ASSERT_EQ(server_->ingest_streams(), kCap);
  ASSERT_EQ(server_->refused_ingest_streams(), static_cast<uint64_t>(kStreams - kCap));
  // 64 streams with a zeroed 4 MiB block each were 256 MiB and more.
  const int64_t grown_kb = RssKb() - rss_before_kb;
  EXPECT_LT(grown_kb, 64 * 1024) << "resident set grew by " << grown_kb << " kB";

  int ok = 0, refused = 0;
  for (auto& open : streams) {
    open->writer->WritesDone();
    grpc::Status status = open->writer->Finish();
    if (status.ok()) {
      ++ok;
      EXPECT_EQ(open->ack.batches(), 0u);
    } else {
      ++refused;
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_NE(status.error_message().find("at most 64 (ingest.max_streams)"), std::string::npos)
          << status.error_message();
    }
  }
  EXPECT_EQ(ok, kCap);
  EXPECT_EQ(refused, kStreams - kCap);
  EXPECT_EQ(server_->ingest_streams(), 0);
  // The slots are free again.
  v1::IngestAck ack;
  ASSERT_TRUE(Stream({Rows("after", 3, Now())}, &ack).ok());
  EXPECT_EQ(ack.accepted(), 3u);
}

}  // namespace
}  // namespace driftwatch::service
