// The gRPC services of driftwatch.v1: thin handlers that map a request to
// the component that answers it and its absl::Status to the wire.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "driftwatch/service/alert_rules.h"
#include "driftwatch/service/signal_history.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/query_priority.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/v1/alerts.grpc.pb.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "internal/metrics.h"

namespace driftwatch::service::grpc_api {

// Ingest.StreamPredictions: each batch applied as it arrives; the ack is
// sent once every applied batch is committed. A message that does not
// parse as a PredictionBatch fails the stream with INVALID_ARGUMENT naming
// its index, so the handler reads raw bytes and parses them itself (a
// typed reader cannot tell a parse failure from the end of the stream).
// At most `max_streams` streams run at once; one more fails at once with
// RESOURCE_EXHAUSTED (an idle stream costs a server thread, nothing else:
// its parse arena is allocated with its first message). StreamLabels
// applies each LabelBatch through the label joiner and acks once every
// label is committed. Every pointer must outlive the service.
class IngestService final : public v1::Ingest::Service {
 public:
  IngestService(Ingestor* ingestor, LabelJoiner* labels, internal::Metrics* metrics,
                QueryPriority* priority, int max_streams);

  // Streams running now, and refused by the cap since start.
  int active_streams() const { return active_streams_.load(); }
  uint64_t refused_streams() const { return refused_streams_.load(); }

  grpc::Status StreamLabels(grpc::ServerContext* context,
                            grpc::ServerReader<v1::LabelBatch>* reader,
                            v1::LabelAck* ack) override;

 private:
  // What StreamPredictions runs: each message is a serialized PredictionBatch.
  grpc::Status StreamPredictionBytes(grpc::ServerContext* context,
                                     grpc::ServerReader<grpc::ByteBuffer>* reader,
                                     v1::IngestAck* ack);

  Ingestor* const ingestor_;
  LabelJoiner* const labels_;
  internal::Metrics* const metrics_;
  QueryPriority* const priority_;
  const int max_streams_;
  std::atomic<int> active_streams_{0};
  std::atomic<uint64_t> refused_streams_{0};
};

// Models: registration through the registry, baselines through reports.
class ModelsService final : public v1::Models::Service {
 public:
  ModelsService(ModelRegistry* registry, ReportEngine* reports)
      : registry_(registry), reports_(reports) {}

  grpc::Status RegisterModel(grpc::ServerContext* context, const v1::RegisterModelRequest* request,
                             v1::RegisterModelResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::ModelSchema* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status CreateBaseline(grpc::ServerContext* context,
                              const v1::CreateBaselineRequest* request,
                              v1::Baseline* response) override;
  grpc::Status ListBaselines(grpc::ServerContext* context, const v1::ListBaselinesRequest* request,
                             v1::ListBaselinesResponse* response) override;

 private:
  ModelRegistry* const registry_;
  ReportEngine* const reports_;
};

// Reports: each query holds QueryPriority for its duration and is timed.
class ReportsService final : public v1::Reports::Service {
 public:
  ReportsService(ReportEngine* reports, QueryPriority* priority, internal::Metrics* metrics,
                 const SignalHistory* signals)
      : reports_(reports), priority_(priority), metrics_(metrics), signals_(signals) {}

  grpc::Status GetDriftReport(grpc::ServerContext* context,
                              const v1::GetDriftReportRequest* request,
                              v1::DriftReport* response) override;
  grpc::Status RankSlices(grpc::ServerContext* context, const v1::RankSlicesRequest* request,
                          v1::RankSlicesResponse* response) override;
  grpc::Status GetQualityReport(grpc::ServerContext* context,
                                const v1::GetQualityReportRequest* request,
                                v1::QualityReport* response) override;
  grpc::Status GetDataQualityReport(grpc::ServerContext* context,
                                    const v1::GetDataQualityReportRequest* request,
                                    v1::DataQualityReport* response) override;
  grpc::Status CompareVersions(grpc::ServerContext* context,
                               const v1::CompareVersionsRequest* request,
                               v1::CompareVersionsResponse* response) override;
  grpc::Status GetSignalSeries(grpc::ServerContext* context,
                               const v1::GetSignalSeriesRequest* request,
                               v1::SignalSeries* response) override;

 private:
  ReportEngine* const reports_;
  QueryPriority* const priority_;
  internal::Metrics* const metrics_;
  const SignalHistory* const signals_;
};

// Alerts, rules and silences, from the rules engine (docs/alerting.md).
class AlertsService final : public v1::Alerts::Service {
 public:
  AlertsService(AlertRules* rules, storage::AlertStore* store) : rules_(rules), store_(store) {}
  grpc::Status ListAlerts(grpc::ServerContext*, const v1::ListAlertsRequest*,
                          v1::ListAlertsResponse*) override;
  grpc::Status PutRule(grpc::ServerContext*, const v1::PutRuleRequest*, v1::Rule*) override;
  grpc::Status DeleteRule(grpc::ServerContext*, const v1::DeleteRuleRequest*,
                          v1::DeleteRuleResponse*) override;
  grpc::Status ListRules(grpc::ServerContext*, const v1::ListRulesRequest*,
                         v1::ListRulesResponse*) override;
  grpc::Status CreateSilence(grpc::ServerContext*, const v1::CreateSilenceRequest*,
                             v1::Silence*) override;
  grpc::Status ExpireSilence(grpc::ServerContext*, const v1::ExpireSilenceRequest*,
                             v1::ExpireSilenceResponse*) override;
  grpc::Status ListSilences(grpc::ServerContext*, const v1::ListSilencesRequest*,
                            v1::ListSilencesResponse*) override;
  grpc::Status WatchAlerts(grpc::ServerContext*, const v1::WatchAlertsRequest*,
                           grpc::ServerWriter<v1::Alert>*) override;
  grpc::Status ListNotifications(grpc::ServerContext*, const v1::ListNotificationsRequest*,
                                 v1::ListNotificationsResponse*) override;

 private:
  AlertRules* const rules_;
  storage::AlertStore* const store_;
};

}  // namespace driftwatch::service::grpc_api
