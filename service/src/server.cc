#include "driftwatch/service/server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/service/model_runtime.h"
#include "driftwatch/service/query_priority.h"
#include "driftwatch/v1/alerts.grpc.pb.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "internal/log.h"
#include "internal/metrics.h"

namespace driftwatch::service {
namespace {

constexpr int kMaxReceiveMessageBytes = 64 << 20;
constexpr auto kShutdownGrace = std::chrono::seconds(5);

// The one mapping from our error vocabulary to the wire's: codes are the
// same set, messages are kept.
grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case absl::StatusCode::kOk:
      code = grpc::StatusCode::OK;
      break;
    case absl::StatusCode::kCancelled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case absl::StatusCode::kUnknown:
      code = grpc::StatusCode::UNKNOWN;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case absl::StatusCode::kDeadlineExceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case absl::StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case absl::StatusCode::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case absl::StatusCode::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case absl::StatusCode::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case absl::StatusCode::kAborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case absl::StatusCode::kOutOfRange:
      code = grpc::StatusCode::OUT_OF_RANGE;
      break;
    case absl::StatusCode::kUnimplemented:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
    case absl::StatusCode::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
    case absl::StatusCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case absl::StatusCode::kDataLoss:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    case absl::StatusCode::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    default:
      break;
  }
  return grpc::Status(code, std::string(s.message()));
}

// Runs a handler body; nothing thrown inside reaches gRPC.
template <typename Body>
grpc::Status Guard(std::string_view method, Body&& body) {
  try {
    return ToGrpc(body());
  } catch (const std::exception& e) {
    internal::LogError("handler threw", {{"method", std::string(method)}, {"error", e.what()}});
    return grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat(Sv(method), ": ", e.what()));
  } catch (...) {
    internal::LogError("handler threw", {{"method", std::string(method)}});
    return grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat(Sv(method), ": internal error"));
  }
}

void FillAck(const IngestCounts& counts, v1::IngestAck* ack) {
  ack->set_accepted(counts.accepted);
  ack->set_duplicates(counts.duplicates);
  ack->set_rejected(counts.rejected);
  ack->set_late_accepted(counts.late_accepted);
  ack->set_too_late(counts.too_late);
  ack->set_batches(counts.batches);
  std::vector<const std::pair<const std::string, RejectStat>*> reasons;
  for (const auto& entry : counts.reasons) reasons.push_back(&entry);
  std::sort(reasons.begin(), reasons.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* entry : reasons) {
    v1::RejectReason* r = ack->add_reasons();
    r->set_reason(entry->first);
    r->set_count(entry->second.count);
    r->set_example_event_id(entry->second.example_event_id);
    r->set_message(entry->second.message);
  }
}

class IngestService final : public v1::Ingest::Service {
 public:
  IngestService(Ingestor* ingestor, internal::Metrics* metrics, QueryPriority* priority)
      : ingestor_(ingestor), metrics_(metrics), priority_(priority) {}

  grpc::Status StreamPredictions(grpc::ServerContext*,
                                 grpc::ServerReader<v1::PredictionBatch>* reader,
                                 v1::IngestAck* ack) override {
    return Guard("StreamPredictions", [&]() -> absl::Status {
      IngestCounts counts;
      uint64_t last_seq = 0;
      absl::Status status = absl::OkStatus();
      // Each batch parses into an arena that is reset before the next read:
      // a parse allocates by bumping a pointer inside a block we own (kept
      // across resets), and nothing is freed per event. Measured against
      // resetting every 4, 16 or 256 reads, every read was fastest and
      // smallest.
      constexpr size_t kArenaBlock = 4 << 20;
      auto block = std::make_unique<char[]>(kArenaBlock);
      google::protobuf::ArenaOptions arena_options;
      arena_options.initial_block = block.get();
      arena_options.initial_block_size = kArenaBlock;
      arena_options.max_block_size = 8 << 20;
      google::protobuf::Arena arena(arena_options);
      while (true) {
        arena.Reset();
        auto* batch = google::protobuf::Arena::CreateMessage<v1::PredictionBatch>(&arena);
        if (!reader->Read(batch)) break;
        if (priority_->Yield()) metrics_->OnQueryYield();
        const auto started = std::chrono::steady_clock::now();
        absl::StatusOr<uint64_t> seq = ingestor_->Apply(*batch, &counts);
        metrics_->ObserveBatch(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        if (!seq.ok()) {
          status = seq.status();
          break;
        }
        last_seq = *seq;
      }
      metrics_->OnStreamEnd(counts);
      if (!status.ok()) return status;
      if (last_seq > 0) {
        absl::Status durable = ingestor_->WaitDurable(last_seq);
        if (!durable.ok()) {
          internal::LogWarn("ingest ack withheld", {{"error", durable.ToString()}});
          return absl::UnavailableError(
              absl::StrCat("events were not committed (", durable.message(),
                           "); retry the stream: duplicates are dropped by event_id"));
        }
      }
      FillAck(counts, ack);
      return absl::OkStatus();
    });
  }

  grpc::Status StreamLabels(grpc::ServerContext*, grpc::ServerReader<v1::LabelBatch>*,
                            v1::LabelAck*) override {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "label join lands with the labels issue");
  }

 private:
  Ingestor* const ingestor_;
  internal::Metrics* const metrics_;
  QueryPriority* const priority_;
};

class ModelsService final : public v1::Models::Service {
 public:
  ModelsService(Ingestor* ingestor, ReportEngine* reports)
      : ingestor_(ingestor), reports_(reports) {}

  grpc::Status RegisterModel(grpc::ServerContext*, const v1::RegisterModelRequest* request,
                             v1::RegisterModelResponse* response) override {
    return Guard("RegisterModel", [&]() -> absl::Status {
      bool created = false;
      DW_ASSIGN_OR_RETURN(v1::ModelSchema schema,
                          ingestor_->RegisterModel(request->schema(), &created));
      if (created) {
        internal::LogInfo("model registered",
                          {{"model", absl::StrCat(schema.model().model_id(), "@",
                                                  schema.model().model_version())}});
      }
      *response->mutable_schema() = std::move(schema);
      response->set_created(created);
      return absl::OkStatus();
    });
  }

  grpc::Status GetModel(grpc::ServerContext*, const v1::GetModelRequest* request,
                        v1::ModelSchema* response) override {
    return Guard("GetModel", [&]() -> absl::Status {
      DW_ASSIGN_OR_RETURN(Ingestor::ModelView view, ingestor_->FindModel(request->model()));
      *response = view.runtime->schema();
      return absl::OkStatus();
    });
  }

  grpc::Status ListModels(grpc::ServerContext*, const v1::ListModelsRequest*,
                          v1::ListModelsResponse* response) override {
    return Guard("ListModels", [&]() -> absl::Status {
      for (v1::ModelSchema& schema : ingestor_->ListModels()) {
        *response->add_models() = std::move(schema);
      }
      return absl::OkStatus();
    });
  }

  grpc::Status CreateBaseline(grpc::ServerContext*, const v1::CreateBaselineRequest* request,
                              v1::Baseline* response) override {
    return Guard("CreateBaseline", [&]() -> absl::Status {
      DW_ASSIGN_OR_RETURN(*response, reports_->CreateBaseline(*request));
      return absl::OkStatus();
    });
  }

  grpc::Status ListBaselines(grpc::ServerContext*, const v1::ListBaselinesRequest* request,
                             v1::ListBaselinesResponse* response) override {
    return Guard("ListBaselines", [&]() -> absl::Status {
      DW_ASSIGN_OR_RETURN(*response, reports_->ListBaselines(*request));
      return absl::OkStatus();
    });
  }

 private:
  Ingestor* const ingestor_;
  ReportEngine* const reports_;
};

class ReportsService final : public v1::Reports::Service {
 public:
  ReportsService(ReportEngine* reports, QueryPriority* priority, internal::Metrics* metrics)
      : reports_(reports), priority_(priority), metrics_(metrics) {}

  grpc::Status GetDriftReport(grpc::ServerContext*, const v1::GetDriftReportRequest* request,
                              v1::DriftReport* response) override {
    QueryPriority::Scope first(priority_);
    Timed timed(metrics_, "GetDriftReport");
    return Guard("GetDriftReport", [&]() -> absl::Status {
      DW_ASSIGN_OR_RETURN(*response, reports_->GetDriftReport(*request));
      return absl::OkStatus();
    });
  }

  grpc::Status RankSlices(grpc::ServerContext*, const v1::RankSlicesRequest* request,
                          v1::RankSlicesResponse* response) override {
    QueryPriority::Scope first(priority_);
    Timed timed(metrics_, "RankSlices");
    return Guard("RankSlices", [&]() -> absl::Status {
      DW_ASSIGN_OR_RETURN(*response, reports_->RankSlices(*request));
      return absl::OkStatus();
    });
  }

 private:
  // Observes a query's duration when it goes out of scope.
  class Timed {
   public:
    Timed(internal::Metrics* metrics, std::string method)
        : metrics_(metrics), method_(std::move(method)), started_(std::chrono::steady_clock::now()) {}
    ~Timed() {
      metrics_->ObserveQuery(
          method_,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    }

   private:
    internal::Metrics* metrics_;
    std::string method_;
    std::chrono::steady_clock::time_point started_;
  };

  ReportEngine* const reports_;
  QueryPriority* const priority_;
  internal::Metrics* const metrics_;
};

// Alerting is not built yet: every method answers UNIMPLEMENTED.
class AlertsService final : public v1::Alerts::Service {
 public:
  grpc::Status ListAlerts(grpc::ServerContext*, const v1::ListAlertsRequest*,
                          v1::ListAlertsResponse*) override {
    return Unimplemented();
  }
  grpc::Status PutRule(grpc::ServerContext*, const v1::PutRuleRequest*, v1::Rule*) override {
    return Unimplemented();
  }
  grpc::Status DeleteRule(grpc::ServerContext*, const v1::DeleteRuleRequest*,
                          v1::DeleteRuleResponse*) override {
    return Unimplemented();
  }
  grpc::Status ListRules(grpc::ServerContext*, const v1::ListRulesRequest*,
                         v1::ListRulesResponse*) override {
    return Unimplemented();
  }
  grpc::Status CreateSilence(grpc::ServerContext*, const v1::CreateSilenceRequest*,
                             v1::Silence*) override {
    return Unimplemented();
  }
  grpc::Status ExpireSilence(grpc::ServerContext*, const v1::ExpireSilenceRequest*,
                             v1::ExpireSilenceResponse*) override {
    return Unimplemented();
  }
  grpc::Status ListSilences(grpc::ServerContext*, const v1::ListSilencesRequest*,
                            v1::ListSilencesResponse*) override {
    return Unimplemented();
  }

 private:
  static grpc::Status Unimplemented() {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "alerting lands with the alerting issue");
  }
};

// "host:port" with the port replaced by the bound one.
std::string BoundAddress(const std::string& listen, int port) {
  const size_t colon = listen.rfind(':');
  return absl::StrCat(colon == std::string::npos ? listen : listen.substr(0, colon), ":", port);
}

// Writes `contents` to `path` so a reader sees the whole file or none.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << contents;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("port_file: cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("port_file: cannot rename ", tmp, " to ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

struct Server::Impl {
  Impl(const ServerConfig& config_in, const base::Clock* clock_in) : config(config_in), clock(clock_in) {}

  absl::Status Start();
  void Shutdown();
  // Runs `tick` every `interval_ms` until Shutdown.
  std::thread Every(int64_t interval_ms, std::function<void()> tick);

  const ServerConfig config;
  const base::Clock* const clock;

  // Built by Start, in this order; torn down by Shutdown in reverse.
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<Ingestor> ingestor;
  std::unique_ptr<ReportEngine> reports;
  std::unique_ptr<QueryPriority> query_priority;
  std::unique_ptr<internal::Metrics> metrics;
  std::unique_ptr<IngestService> ingest_service;
  std::unique_ptr<ModelsService> models_service;
  std::unique_ptr<ReportsService> reports_service;
  std::unique_ptr<AlertsService> alerts_service;
  std::unique_ptr<grpc::Server> grpc_server;
  int grpc_port = 0;
  int metrics_port = 0;

  std::mutex loop_mu;
  std::condition_variable loop_cv;
  bool stopping = false;  // guarded by loop_mu
  std::vector<std::thread> loops;

  std::mutex shutdown_mu;  // serialises Shutdown
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;  // guarded by done_mu
};

std::thread Server::Impl::Every(int64_t interval_ms, std::function<void()> tick) {
  return std::thread([this, interval_ms, tick = std::move(tick)] {
    std::unique_lock<std::mutex> lock(loop_mu);
    while (!loop_cv.wait_for(lock, std::chrono::milliseconds(interval_ms),
                             [this] { return stopping; })) {
      lock.unlock();
      try {
        tick();
      } catch (const std::exception& e) {
        internal::LogError("background task threw", {{"error", e.what()}});
      }
      lock.lock();
    }
  });
}

absl::Status Server::Impl::Start() {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("data_dir ", config.data_dir, ": cannot create: ", ec.message()));
  }
  storage::SqliteOptions sqlite;
  sqlite.path = absl::StrCat(config.data_dir, "/driftwatch.db");
  sqlite.synchronous_full = config.sqlite_synchronous_full;
  sqlite.clock = clock;
  DW_ASSIGN_OR_RETURN(store, storage::OpenSqliteStore(sqlite));

  ingestor = std::make_unique<Ingestor>(store.get(), clock, config.ingest);
  DW_RETURN_IF_ERROR(ingestor->Recover());
  ingestor->StartFlusher();
  reports = std::make_unique<ReportEngine>(store.get(), ingestor.get(), clock, config.reports);
  query_priority = std::make_unique<QueryPriority>(config.reports.ingest_yield_ms, clock);

  metrics = std::make_unique<internal::Metrics>(ingestor.get());
  if (!config.metrics_listen.empty()) {
    DW_RETURN_IF_ERROR(metrics->Expose(config.metrics_listen));
    metrics_port = metrics->port();
  }

  ingest_service =
      std::make_unique<IngestService>(ingestor.get(), metrics.get(), query_priority.get());
  models_service = std::make_unique<ModelsService>(ingestor.get(), reports.get());
  reports_service =
      std::make_unique<ReportsService>(reports.get(), query_priority.get(), metrics.get());
  alerts_service = std::make_unique<AlertsService>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &grpc_port);
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder.RegisterService(ingest_service.get());
  builder.RegisterService(models_service.get());
  builder.RegisterService(reports_service.get());
  builder.RegisterService(alerts_service.get());
  grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    return absl::UnavailableError(absl::StrCat("listen ", config.listen, ": cannot bind"));
  }

  loops.push_back(Every(config.signal_interval_ms, [this] {
    absl::StatusOr<std::vector<ReportEngine::Signal>> signals =
        reports->CurrentSignals(config.max_signal_slices);
    if (!signals.ok()) {
      internal::LogWarn("drift signals not refreshed", {{"error", signals.status().ToString()}});
      return;
    }
    metrics->SetSignals(*signals);
  }));
  loops.push_back(Every(config.retention_interval_ms, [this] {
    absl::StatusOr<int64_t> deleted = store->ApplyRetention(config.retention, clock->NowMs());
    if (!deleted.ok()) {
      internal::LogWarn("retention failed", {{"error", deleted.status().ToString()}});
    } else if (*deleted > 0) {
      internal::LogInfo("retention", {{"deleted_rows", absl::StrCat(*deleted)}});
    }
  }));

  if (!config.port_file.empty()) {
    DW_RETURN_IF_ERROR(WriteFileAtomically(
        config.port_file, absl::StrCat("grpc=", grpc_port, " metrics=", metrics_port, "\n")));
  }
  internal::LogInfo(
      "serving",
      {{"grpc", BoundAddress(config.listen, grpc_port)},
       {"metrics",
        metrics_port == 0 ? std::string("off") : BoundAddress(config.metrics_listen, metrics_port)},
       {"data_dir", config.data_dir}});
  return absl::OkStatus();
}

void Server::Impl::Shutdown() {
  std::lock_guard<std::mutex> serial(shutdown_mu);
  {
    std::lock_guard<std::mutex> lock(done_mu);
    if (done) return;
  }
  if (grpc_server != nullptr) {
    // In-flight RPCs get a grace period, then are cancelled.
    grpc_server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    grpc_server->Wait();
  }
  {
    std::lock_guard<std::mutex> lock(loop_mu);
    stopping = true;
  }
  loop_cv.notify_all();
  for (std::thread& t : loops) t.join();
  loops.clear();
  if (metrics != nullptr) metrics->StopExposing();
  grpc_server.reset();
  reports.reset();
  if (ingestor != nullptr) {
    const IngestTotals& t = ingestor->totals();
    const uint64_t accepted = t.accepted.load();
    ingestor.reset();  // the destructor's final flush commits what is still open
    internal::LogInfo("stopped", {{"accepted_events", absl::StrCat(accepted)}});
  }
  metrics.reset();
  store.reset();
  {
    std::lock_guard<std::mutex> lock(done_mu);
    done = true;
  }
  done_cv.notify_all();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                      const base::Clock* clock) {
  DW_RETURN_IF_ERROR(ValidateConfig(config));
  std::unique_ptr<Server> server(new Server());
  server->impl_ = std::make_unique<Impl>(config, clock);
  absl::Status status = server->impl_->Start();
  if (!status.ok()) {
    server->impl_->Shutdown();
    return status;
  }
  return server;
}

Server::~Server() {
  if (impl_ != nullptr) impl_->Shutdown();
}

int Server::grpc_port() const { return impl_->grpc_port; }
int Server::metrics_port() const { return impl_->metrics_port; }
void Server::Shutdown() { impl_->Shutdown(); }

void Server::Wait() {
  std::unique_lock<std::mutex> lock(impl_->done_mu);
  impl_->done_cv.wait(lock, [this] { return impl_->done; });
}

Ingestor& Server::ingestor() { return *impl_->ingestor; }
ReportEngine& Server::reports() { return *impl_->reports; }

}  // namespace driftwatch::service
