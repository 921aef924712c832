#include "driftwatch/service/server.h"

#include <algorithm>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/thread_name.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/service/notifier.h"
#include "driftwatch/service/query_priority.h"
#include "driftwatch/service/window_reader.h"
#include "grpc/services.h"
#include "internal/log.h"
#include "internal/metrics.h"

namespace driftwatch::service {
namespace {

constexpr int kMaxReceiveMessageBytes = 64 << 20;
constexpr auto kShutdownGrace = std::chrono::seconds(5);
// Server threads beyond the ingest streams': unary RPCs, refused streams
// and gRPC's own pollers.
constexpr int kOtherRpcThreads = 64;

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
  Impl(const ServerConfig& config_in, const base::Clock* clock_in)
      : config(config_in), clock(clock_in) {}

  absl::Status Start();
  absl::Status OpenStorage();
  absl::Status Serve();
  void StartLoops();
  void Shutdown() ABSL_LOCKS_EXCLUDED(shutdown_mu, loop_mu, done_mu);
  // Runs `tick` every `interval_ms` on the clock until Shutdown.
  std::thread Every(const char* name, int64_t interval_ms, std::function<void()> tick)
      ABSL_LOCKS_EXCLUDED(loop_mu);

  const ServerConfig config;
  const base::Clock* const clock;

  // Built by Start, in this order; torn down by Shutdown in reverse.
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<ModelRegistry> registry;
  std::unique_ptr<Ingestor> ingestor;
  std::unique_ptr<LabelJoiner> labels;
  std::unique_ptr<WindowReader> windows;
  std::unique_ptr<Baselines> baselines;
  std::unique_ptr<ReportEngine> reports;
  std::unique_ptr<Evaluator> evaluator;
  std::unique_ptr<AlertRules> alert_rules;
  std::unique_ptr<SignalHistory> signal_history;
  alerting::NotificationConfig notifications;
  std::unique_ptr<Notifier> notifier;
  std::unique_ptr<QueryPriority> query_priority;
  std::unique_ptr<internal::Metrics> metrics;
  std::unique_ptr<grpc_api::IngestService> ingest_service;
  std::unique_ptr<grpc_api::ModelsService> models_service;
  std::unique_ptr<grpc_api::ReportsService> reports_service;
  std::unique_ptr<grpc_api::AlertsService> alerts_service;
  std::unique_ptr<grpc::Server> grpc_server;
  int grpc_port = 0;
  int metrics_port = 0;

  absl::Mutex loop_mu;
  bool stopping ABSL_GUARDED_BY(loop_mu) = false;
  std::vector<std::thread> loops;  // started by Start, joined by Shutdown

  absl::Mutex shutdown_mu;  // serialises Shutdown
  absl::Mutex done_mu;
  bool done ABSL_GUARDED_BY(done_mu) = false;
};

std::thread Server::Impl::Every(const char* name, int64_t interval_ms,
                                std::function<void()> tick) {
  return std::thread([this, name, interval_ms, tick = std::move(tick)] {
    base::SetCurrentThreadName(name);
    absl::MutexLock lock(&loop_mu);
    while (!clock->AwaitUntil(&loop_mu, absl::Condition(&stopping),
                              clock->NowMs() + interval_ms)) {
      loop_mu.Unlock();
      try {
        tick();
      } catch (const std::exception& e) {
        internal::LogError("background task threw", {{"error", e.what()}});
      }
      loop_mu.Lock();
    }
  });
}

absl::Status Server::Impl::OpenStorage() {
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
  return absl::OkStatus();
}

absl::Status Server::Impl::Start() {
  DW_RETURN_IF_ERROR(OpenStorage());
  registry = std::make_unique<ModelRegistry>(store.get(), clock, config.registry);
  DW_RETURN_IF_ERROR(registry->Recover());
  // Backfill merges into minute rows and dedups against ids kept with
  // minute retention: never further back than those live.
  IngestOptions ingest = config.ingest;
  ingest.backfill_horizon_ms = std::min(ingest.backfill_horizon_ms, config.retention.minute_ms);
  ingestor = std::make_unique<Ingestor>(registry.get(), store.get(), clock, ingest);
  DW_RETURN_IF_ERROR(ingestor->Recover());
  ingestor->StartFlusher();
  LabelOptions label_options = config.labels;
  label_options.max_event_id_bytes = config.ingest.max_event_id_bytes;
  label_options.max_future_skew_ms = config.ingest.max_future_skew_ms;
  labels = std::make_unique<LabelJoiner>(store.get(), registry.get(), clock, label_options);
  DW_RETURN_IF_ERROR(labels->Recover());
  labels->Start();
  windows = std::make_unique<WindowReader>(store.get(), store.get(), config.ingest.bucket_width_ms);
  baselines = std::make_unique<Baselines>(store.get(), windows.get(), config.reports.bins);
  reports = std::make_unique<ReportEngine>(registry.get(), windows.get(), baselines.get(), clock,
                                           config.reports);
  reports->AttachLabels(store.get(), config.labels);
  reports->set_silence_timeout_ms(config.silence_timeout_ms);
  EvaluatorOptions evaluation;
  evaluation.window_ms = config.evaluator_window_ms;
  evaluation.silence_timeout_ms = config.silence_timeout_ms;
  evaluation.shadow_interval_ms = config.shadow_interval_ms;
  evaluation.max_slices = config.max_signal_slices;
  evaluator = std::make_unique<Evaluator>(registry.get(), windows.get(), baselines.get(), clock,
                                          evaluation);
  evaluator->AttachQuality(reports.get());
  alert_rules = std::make_unique<AlertRules>(
      store.get(), clock,
      AlertRulesOptions{.resolved_retention_ms = config.alerts_resolved_retention_ms});
  if (!config.notifications_yaml.empty()) {
    DW_ASSIGN_OR_RETURN(
        notifications,
        alerting::ParseNotificationConfig(
            config.notifications_yaml,
            config.notifications_source.empty() ? "notifications" : config.notifications_source,
            [](const std::string& path) -> absl::StatusOr<std::string> {
              std::ifstream in(path);
              if (!in) return absl::NotFoundError(path);
              std::stringstream text;
              text << in.rdbuf();
              return text.str();
            }));
  }
  if (notifications.route) {
    notifier = std::make_unique<Notifier>(store.get(), &notifications, clock, NewCurlSender());
    alert_rules->AttachNotifications(&notifications, [this] { notifier->Wake(); });
  }
  DW_RETURN_IF_ERROR(alert_rules->Start(config.rules_file));
  signal_history = std::make_unique<SignalHistory>(store.get(), registry.get(), clock);
  query_priority = std::make_unique<QueryPriority>(config.reports.ingest_yield_ms, clock);
  metrics = std::make_unique<internal::Metrics>(ingestor.get(), registry.get(), evaluator.get(),
                                                labels.get(), alert_rules.get(), notifier.get());
  if (!config.metrics_listen.empty()) {
    DW_RETURN_IF_ERROR(metrics->Expose(config.metrics_listen));
    metrics_port = metrics->port();
  }
  DW_RETURN_IF_ERROR(Serve());
  StartLoops();
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

absl::Status Server::Impl::Serve() {
  ingest_service = std::make_unique<grpc_api::IngestService>(
      ingestor.get(), labels.get(), metrics.get(), query_priority.get(), config.max_ingest_streams);
  models_service = std::make_unique<grpc_api::ModelsService>(registry.get(), reports.get());
  reports_service = std::make_unique<grpc_api::ReportsService>(
      reports.get(), query_priority.get(), metrics.get(), signal_history.get());
  alerts_service = std::make_unique<grpc_api::AlertsService>(alert_rules.get(), store.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &grpc_port);
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  // The sync server runs each RPC on a thread of its own. A stream past
  // max_ingest_streams returns its thread at once; the quota bounds the
  // rest (a call past it fails RESOURCE_EXHAUSTED), leaving room for
  // reports and registration beside a full set of streams.
  grpc::ResourceQuota quota("driftwatchd");
  quota.SetMaxThreads(config.max_ingest_streams + kOtherRpcThreads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(ingest_service.get());
  builder.RegisterService(models_service.get());
  builder.RegisterService(reports_service.get());
  builder.RegisterService(alerts_service.get());
  grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    return absl::UnavailableError(absl::StrCat("listen ", config.listen, ": cannot bind"));
  }
  return absl::OkStatus();
}

void Server::Impl::StartLoops() {
  if (notifier != nullptr) notifier->Start();
  loops.push_back(Every("dw-evaluator", config.signal_interval_ms, [this] {
    const auto started = std::chrono::steady_clock::now();
    const absl::Status evaluated = evaluator->Evaluate();
    if (!evaluated.ok()) {
      internal::LogWarn("drift signals not refreshed", {{"error", evaluated.ToString()}});
    }
    const std::shared_ptr<const Evaluation> latest = evaluator->Latest();
    if (absl::Status s = signal_history->Record(*latest); !s.ok()) {
      internal::LogWarn("signal history not written", {{"error", s.ToString()}});
    }
    alert_rules->Evaluate(*latest, clock->NowMs());
    metrics->ObserveEvaluation(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        evaluated.ok());
  }));
  loops.push_back(Every("dw-retention", config.retention_interval_ms, [this] {
    // The signal history follows the buckets: evaluations while minutes
    // are kept, hourly means while hours are, daily means while days are.
    absl::StatusOr<int64_t> compacted = signal_history->Compact(
        {config.retention.minute_ms, config.retention.hour_ms, config.retention.day_ms},
        clock->NowMs());
    if (!compacted.ok()) {
      internal::LogWarn("signal history compaction failed",
                        {{"error", compacted.status().ToString()}});
    }
    // Delivered and failed notifications are listed for a week.
    if (absl::StatusOr<int64_t> gone =
            store->DeleteFinishedOutbox(clock->NowMs() - 7 * 86'400'000LL);
        !gone.ok()) {
      internal::LogWarn("outbox cleanup failed", {{"error", gone.status().ToString()}});
    }
    absl::StatusOr<int64_t> deleted = store->ApplyRetention(config.retention, clock->NowMs());
    if (!deleted.ok()) {
      internal::LogWarn("retention failed", {{"error", deleted.status().ToString()}});
    } else if (*deleted > 0) {
      internal::LogInfo("retention", {{"deleted_rows", absl::StrCat(*deleted)}});
    }
  }));
}

void Server::Impl::Shutdown() {
  absl::MutexLock serial(&shutdown_mu);
  {
    absl::MutexLock lock(&done_mu);
    if (done) return;
  }
  if (grpc_server != nullptr) {
    // In-flight RPCs get a grace period, then are cancelled.
    grpc_server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    grpc_server->Wait();
  }
  {
    absl::MutexLock lock(&loop_mu);
    stopping = true;
  }
  for (std::thread& t : loops) t.join();
  loops.clear();
  if (notifier != nullptr) notifier->Stop();  // an in-flight send ends within its timeout
  if (metrics != nullptr) metrics->StopExposing();
  grpc_server.reset();
  reports.reset();
  if (ingestor != nullptr) {
    const uint64_t accepted = ingestor->totals().accepted.load();
    ingestor.reset();  // the destructor's final flush commits what is still open
    internal::LogInfo("stopped", {{"accepted_events", absl::StrCat(accepted)}});
  }
  labels.reset();  // after ingest's last flush: its join state is tailed and committed
  metrics.reset();
  evaluator.reset();
  baselines.reset();
  windows.reset();
  registry.reset();
  store.reset();
  {
    absl::MutexLock lock(&done_mu);
    done = true;
  }
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
int Server::ingest_streams() const { return impl_->ingest_service->active_streams(); }
uint64_t Server::refused_ingest_streams() const {
  return impl_->ingest_service->refused_streams();
}
void Server::Shutdown() { impl_->Shutdown(); }

void Server::Wait() {
  absl::MutexLock lock(&impl_->done_mu);
  impl_->done_mu.Await(absl::Condition(&impl_->done));
}

ModelRegistry& Server::registry() { return *impl_->registry; }
Ingestor& Server::ingestor() { return *impl_->ingestor; }
LabelJoiner& Server::labels() { return *impl_->labels; }
ReportEngine& Server::reports() { return *impl_->reports; }
Evaluator& Server::evaluator() { return *impl_->evaluator; }
AlertRules& Server::alert_rules() { return *impl_->alert_rules; }
SignalHistory& Server::signal_history() { return *impl_->signal_history; }
absl::Status Server::ReloadRules() { return impl_->alert_rules->ReloadFile(); }

}  // namespace driftwatch::service
