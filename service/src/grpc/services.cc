#include "grpc/services.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "google/protobuf/arena.h"
#include "grpc/status.h"
#include "internal/log.h"

namespace driftwatch::service::grpc_api {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Reject reasons by name, in name order.
void FillReasons(const absl::flat_hash_map<std::string, RejectStat>& reasons,
                 google::protobuf::RepeatedPtrField<v1::RejectReason>* out) {
  std::vector<const std::pair<const std::string, RejectStat>*> sorted;
  for (const auto& entry : reasons) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* entry : sorted) {
    v1::RejectReason* r = out->Add();
    r->set_reason(entry->first);
    r->set_count(entry->second.count);
    r->set_example_event_id(entry->second.example_event_id);
    r->set_message(entry->second.message);
  }
}

void FillAck(const IngestCounts& counts, v1::IngestAck* ack) {
  ack->set_accepted(counts.accepted);
  ack->set_duplicates(counts.duplicates);
  ack->set_rejected(counts.rejected);
  ack->set_late_accepted(counts.late_accepted);
  ack->set_too_late(counts.too_late);
  ack->set_backfilled(counts.backfilled);
  ack->set_batches(counts.batches);
  FillReasons(counts.reasons, ack->mutable_reasons());
}

// Observes a query's duration when it goes out of scope.
class Timed {
 public:
  Timed(internal::Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), started_(std::chrono::steady_clock::now()) {}
  ~Timed() { metrics_->ObserveQuery(method_, SecondsSince(started_)); }
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;

 private:
  internal::Metrics* const metrics_;
  const std::string method_;
  const std::chrono::steady_clock::time_point started_;
};

grpc::Status Unimplemented() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "alerting lands with the alerting issue");
}

}  // namespace

// The generated service reads StreamPredictions through a typed reader,
// whose Read returns false alike at the end of the stream and when a
// message does not parse. This handler reads ByteBuffers instead.
// MarkMethodStreamed also marks the method BIDI_STREAMING, which the sync
// server treats exactly as CLIENT_STREAMING (neither reads a payload
// before the handler runs); only server interceptors, which we do not
// install, would see the other type.
IngestService::IngestService(Ingestor* ingestor, LabelJoiner* labels, internal::Metrics* metrics,
                             QueryPriority* priority, int max_streams)
    : ingestor_(ingestor),
      labels_(labels),
      metrics_(metrics),
      priority_(priority),
      max_streams_(max_streams) {
  constexpr int kStreamPredictions = 0;  // the method's index in ingest.proto
  MarkMethodStreamed(
      kStreamPredictions,
      new grpc::internal::ClientStreamingHandler<IngestService, grpc::ByteBuffer, v1::IngestAck>(
          [](IngestService* service, grpc::ServerContext* context,
             grpc::ServerReader<grpc::ByteBuffer>* reader, v1::IngestAck* ack) {
            return service->StreamPredictionBytes(context, reader, ack);
          },
          this));
}

grpc::Status IngestService::StreamPredictionBytes(grpc::ServerContext*,
                                                  grpc::ServerReader<grpc::ByteBuffer>* reader,
                                                  v1::IngestAck* ack) {
  // Admitted before anything else, so a stream past the cap costs nothing
  // but this check (and is never counted as running).
  int active = active_streams_.load();
  do {
    if (active >= max_streams_) {
      refused_streams_.fetch_add(1);
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("too many concurrent ingest streams: at most ", max_streams_,
                       " (ingest.max_streams); retry later, or send more batches per stream"));
    }
  } while (!active_streams_.compare_exchange_weak(active, active + 1));
  struct Admission {
    std::atomic<int>& active;
    ~Admission() { active.fetch_sub(1); }
  } admission{active_streams_};
  return Guard("StreamPredictions", [&]() -> absl::Status {
    IngestCounts counts;
    uint64_t last_seq = 0;
    absl::Status status = absl::OkStatus();
    // Each batch parses into an arena that is reset before the next read:
    // a parse allocates by bumping a pointer inside a block we own (kept
    // across resets), and nothing is freed per event. Measured against
    // resetting every 4, 16 or 256 reads, every read was fastest and
    // smallest. The block is allocated, uninitialised, with the first
    // message: an idle stream holds none, and pages a batch does not reach
    // are never touched.
    constexpr size_t kArenaBlock = 4 << 20;
    std::unique_ptr<char[]> block;
    std::optional<google::protobuf::Arena> arena;
    grpc::ByteBuffer bytes;
    for (uint64_t index = 0; reader->Read(&bytes); ++index) {
      if (!arena) {
        block = std::make_unique_for_overwrite<char[]>(kArenaBlock);
        google::protobuf::ArenaOptions arena_options;
        arena_options.initial_block = block.get();
        arena_options.initial_block_size = kArenaBlock;
        arena_options.max_block_size = 8 << 20;
        arena.emplace(arena_options);
      }
      arena->Reset();
      auto* batch = google::protobuf::Arena::CreateMessage<v1::PredictionBatch>(&*arena);
      // Parsed straight from the received slices, as gRPC's own
      // deserializer does, then the slices are released.
      grpc::ProtoBufferReader input(&bytes);
      const bool parsed = batch->ParseFromZeroCopyStream(&input) && input.status().ok();
      bytes.Clear();
      if (!parsed) {
        status = absl::InvalidArgumentError(absl::StrCat(
            "batch ", index, " of the stream (0-based) is not a valid PredictionBatch: truncated "
            "or malformed bytes, or a string field (e.g. event_id) that is not valid UTF-8; the ",
            index, " batches before it stay applied (a retry is deduplicated by event_id)"));
        break;
      }
      if (priority_->Yield()) metrics_->OnQueryYield();
      const auto started = std::chrono::steady_clock::now();
      absl::StatusOr<uint64_t> seq = ingestor_->Apply(*batch, &counts);
      metrics_->ObserveBatch(SecondsSince(started));
      if (!seq.ok()) {
        status = seq.status();
        break;
      }
      last_seq = *seq;
    }
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

grpc::Status IngestService::StreamLabels(grpc::ServerContext*,
                                         grpc::ServerReader<v1::LabelBatch>* reader,
                                         v1::LabelAck* ack) {
  return Guard("StreamLabels", [&]() -> absl::Status {
    LabelStreamCounts counts;
    uint64_t last_seq = 0;
    v1::LabelBatch batch;
    while (reader->Read(&batch)) {
      DW_ASSIGN_OR_RETURN(last_seq, labels_->Apply(batch, &counts));
      batch.Clear();
    }
    if (last_seq > 0) {
      absl::Status durable = labels_->WaitDurable(last_seq);
      if (!durable.ok()) {
        internal::LogWarn("label ack withheld", {{"error", durable.ToString()}});
        return absl::UnavailableError(
            absl::StrCat("labels were not committed (", durable.message(),
                         "); retry the stream: a label already in is counted a duplicate"));
      }
    }
    ack->set_joined(counts.joined);
    ack->set_pending(counts.pending);
    ack->set_duplicates(counts.duplicates);
    ack->set_rejected(counts.rejected);
    ack->set_conflicting(counts.conflicting);
    ack->set_not_sampled(counts.not_sampled);
    ack->set_orphan(counts.orphan);
    ack->set_batches(counts.batches);
    FillReasons(counts.reasons, ack->mutable_reasons());
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::RegisterModel(grpc::ServerContext*,
                                          const v1::RegisterModelRequest* request,
                                          v1::RegisterModelResponse* response) {
  return Guard("RegisterModel", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(ModelRegistry::Registration registration,
                        registry_->Register(request->schema()));
    if (registration.created) {
      const v1::ModelRef& model = registration.schema.model();
      internal::LogInfo("model registered",
                        {{"model", absl::StrCat(model.model_id(), "@", model.model_version())}});
    }
    *response->mutable_schema() = std::move(registration.schema);
    response->set_created(registration.created);
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::GetModel(grpc::ServerContext*, const v1::GetModelRequest* request,
                                     v1::ModelSchema* response) {
  return Guard("GetModel", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                        registry_->Find(request->model()));
    *response = model->schema();
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::ListModels(grpc::ServerContext*, const v1::ListModelsRequest*,
                                       v1::ListModelsResponse* response) {
  return Guard("ListModels", [&]() -> absl::Status {
    for (const auto& model : registry_->List()) *response->add_models() = model->schema();
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::CreateBaseline(grpc::ServerContext*,
                                           const v1::CreateBaselineRequest* request,
                                           v1::Baseline* response) {
  return Guard("CreateBaseline", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->CreateBaseline(*request));
    return absl::OkStatus();
  });
}

grpc::Status ModelsService::ListBaselines(grpc::ServerContext*,
                                          const v1::ListBaselinesRequest* request,
                                          v1::ListBaselinesResponse* response) {
  return Guard("ListBaselines", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->ListBaselines(*request));
    return absl::OkStatus();
  });
}

grpc::Status ReportsService::GetDriftReport(grpc::ServerContext*,
                                            const v1::GetDriftReportRequest* request,
                                            v1::DriftReport* response) {
  QueryPriority::Scope first(priority_);
  Timed timed(metrics_, "GetDriftReport");
  return Guard("GetDriftReport", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->GetDriftReport(*request));
    return absl::OkStatus();
  });
}

grpc::Status ReportsService::RankSlices(grpc::ServerContext*, const v1::RankSlicesRequest* request,
                                        v1::RankSlicesResponse* response) {
  QueryPriority::Scope first(priority_);
  Timed timed(metrics_, "RankSlices");
  return Guard("RankSlices", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->RankSlices(*request));
    return absl::OkStatus();
  });
}

grpc::Status ReportsService::GetQualityReport(grpc::ServerContext*,
                                              const v1::GetQualityReportRequest* request,
                                              v1::QualityReport* response) {
  QueryPriority::Scope first(priority_);
  Timed timed(metrics_, "GetQualityReport");
  return Guard("GetQualityReport", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->GetQualityReport(*request));
    return absl::OkStatus();
  });
}

grpc::Status AlertsService::ListAlerts(grpc::ServerContext*, const v1::ListAlertsRequest* request,
                                       v1::ListAlertsResponse* response) {
  std::vector<alerting::AlertState> states;
  for (int s : request->states()) {
    switch (static_cast<v1::AlertState>(s)) {
      case v1::ALERT_STATE_PENDING: states.push_back(alerting::AlertState::kPending); break;
      case v1::ALERT_STATE_FIRING: states.push_back(alerting::AlertState::kFiring); break;
      case v1::ALERT_STATE_RESOLVED: states.push_back(alerting::AlertState::kResolved); break;
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("states: ", s, " is not pending, firing or resolved"));
    }
  }
  const std::string& model = request->model().model_id();
  const std::string& version = request->model().model_version();
  auto stamp = [](int64_t ms, google::protobuf::Timestamp* t) {
    t->set_seconds(ms / 1000);
    t->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
  };
  for (const alerting::Alert& a : rules_->List(states)) {
    auto label = [&a](const char* name) {
      auto it = a.labels.find(name);
      return it == a.labels.end() ? std::string() : it->second;
    };
    if (!model.empty() && label("model") != model) continue;
    if (!version.empty() && label("model_version") != version) continue;
    v1::Alert* out = response->add_alerts();
    out->set_fingerprint(a.fingerprint);
    out->set_rule(a.rule);
    out->mutable_labels()->insert(a.labels.begin(), a.labels.end());
    out->mutable_annotations()->insert(a.annotations.begin(), a.annotations.end());
    out->set_state(a.state == alerting::AlertState::kPending  ? v1::ALERT_STATE_PENDING
                   : a.state == alerting::AlertState::kFiring ? v1::ALERT_STATE_FIRING
                                                              : v1::ALERT_STATE_RESOLVED);
    stamp(a.active_at_ms, out->mutable_active_at());
    if (a.fired_at_ms != 0) stamp(a.fired_at_ms, out->mutable_fired_at());
    if (a.resolved_at_ms != 0) stamp(a.resolved_at_ms, out->mutable_resolved_at());
    out->set_value(a.value);
  }
  return grpc::Status::OK;
}
grpc::Status AlertsService::PutRule(grpc::ServerContext*, const v1::PutRuleRequest*, v1::Rule*) {
  return Unimplemented();
}
grpc::Status AlertsService::DeleteRule(grpc::ServerContext*, const v1::DeleteRuleRequest*,
                                       v1::DeleteRuleResponse*) {
  return Unimplemented();
}
grpc::Status AlertsService::ListRules(grpc::ServerContext*, const v1::ListRulesRequest*,
                                      v1::ListRulesResponse*) {
  return Unimplemented();
}
grpc::Status AlertsService::CreateSilence(grpc::ServerContext*, const v1::CreateSilenceRequest*,
                                          v1::Silence*) {
  return Unimplemented();
}
grpc::Status AlertsService::ExpireSilence(grpc::ServerContext*, const v1::ExpireSilenceRequest*,
                                          v1::ExpireSilenceResponse*) {
  return Unimplemented();
}
grpc::Status AlertsService::ListSilences(grpc::ServerContext*, const v1::ListSilencesRequest*,
                                         v1::ListSilencesResponse*) {
  return Unimplemented();
}

}  // namespace driftwatch::service::grpc_api
