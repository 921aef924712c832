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

grpc::Status ReportsService::GetDataQualityReport(grpc::ServerContext*,
                                                  const v1::GetDataQualityReportRequest* request,
                                                  v1::DataQualityReport* response) {
  QueryPriority::Scope first(priority_);
  Timed timed(metrics_, "GetDataQualityReport");
  return Guard("GetDataQualityReport", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->GetDataQualityReport(*request));
    return absl::OkStatus();
  });
}

grpc::Status ReportsService::CompareVersions(grpc::ServerContext*,
                                             const v1::CompareVersionsRequest* request,
                                             v1::CompareVersionsResponse* response) {
  QueryPriority::Scope first(priority_);
  Timed timed(metrics_, "CompareVersions");
  return Guard("CompareVersions", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, reports_->CompareVersions(*request));
    return absl::OkStatus();
  });
}

grpc::Status ReportsService::GetSignalSeries(grpc::ServerContext*,
                                             const v1::GetSignalSeriesRequest* request,
                                             v1::SignalSeries* response) {
  QueryPriority::Scope first(priority_);
  Timed timed(metrics_, "GetSignalSeries");
  return Guard("GetSignalSeries", [&]() -> absl::Status {
    DW_ASSIGN_OR_RETURN(*response, signals_->GetSeries(*request));
    return absl::OkStatus();
  });
}

namespace {

void Stamp(int64_t ms, google::protobuf::Timestamp* t) {
  t->set_seconds(ms / 1000);
  t->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
}

int64_t FromStamp(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

v1::AlertState ToProto(alerting::AlertState s) {
  switch (s) {
    case alerting::AlertState::kInactive:
      return v1::ALERT_STATE_INACTIVE;
    case alerting::AlertState::kPending:
      return v1::ALERT_STATE_PENDING;
    case alerting::AlertState::kFiring:
      return v1::ALERT_STATE_FIRING;
    case alerting::AlertState::kResolved:
      return v1::ALERT_STATE_RESOLVED;
  }
  return v1::ALERT_STATE_UNSPECIFIED;
}

void ToProto(const alerting::Alert& a, v1::Alert* out) {
  out->set_fingerprint(a.fingerprint);
  out->set_rule(a.rule);
  out->mutable_labels()->insert(a.labels.begin(), a.labels.end());
  out->mutable_annotations()->insert(a.annotations.begin(), a.annotations.end());
  out->set_state(ToProto(a.state));
  Stamp(a.active_at_ms, out->mutable_active_at());
  if (a.fired_at_ms != 0) Stamp(a.fired_at_ms, out->mutable_fired_at());
  if (a.resolved_at_ms != 0) Stamp(a.resolved_at_ms, out->mutable_resolved_at());
  out->set_value(a.value);
  out->set_silenced(!a.silenced_by.empty());
  out->set_inhibited(a.inhibited);
  for (const std::string& id : a.silenced_by) out->add_silenced_by(id);
}

bool ModelMatches(const v1::ModelRef& model, const alerting::Alert& a) {
  auto label = [&a](const char* name) {
    auto it = a.labels.find(name);
    return it == a.labels.end() ? std::string() : it->second;
  };
  if (!model.model_id().empty() && label("model") != model.model_id()) return false;
  return model.model_version().empty() || label("model_version") == model.model_version();
}

void ToProto(const alerting::Silence& s, int64_t now_ms, v1::Silence* out) {
  out->set_id(s.id);
  for (const alerting::Matcher& m : s.matchers) {
    v1::Matcher* pm = out->add_matchers();
    pm->set_name(m.name);
    pm->set_value(m.value);
    pm->set_is_regex(m.op == alerting::Matcher::Op::kRe || m.op == alerting::Matcher::Op::kNre);
    pm->set_is_equal(m.op == alerting::Matcher::Op::kEq || m.op == alerting::Matcher::Op::kRe);
  }
  Stamp(s.starts_at_ms, out->mutable_starts_at());
  Stamp(s.ends_at_ms, out->mutable_ends_at());
  out->set_created_by(s.created_by);
  out->set_comment(s.comment);
  out->set_state(std::string(s.StateAt(now_ms)));
}

void ToProto(const alerting::Rule& r, v1::Rule* out) {
  out->set_name(r.name);
  out->set_source(r.source);
  out->set_yaml(r.yaml);
  out->set_severity(r.severity);
  out->set_runbook_url(r.runbook_url);
}

}  // namespace

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
  for (const alerting::Alert& a : rules_->List(states)) {
    if (ModelMatches(request->model(), a)) ToProto(a, response->add_alerts());
  }
  return grpc::Status::OK;
}

grpc::Status AlertsService::WatchAlerts(grpc::ServerContext* context,
                                        const v1::WatchAlertsRequest* request,
                                        grpc::ServerWriter<v1::Alert>* writer) {
  // Changes after this seq are streamed; the current alerts (as listed
  // after it was read) come first, so none is missed in between.
  uint64_t seq = rules_->last_seq();
  if (!request->skip_current()) {
    for (const alerting::Alert& a : rules_->List({})) {
      if (!ModelMatches(request->model(), a)) continue;
      v1::Alert out;
      ToProto(a, &out);
      if (!writer->Write(out)) return grpc::Status::OK;
    }
  }
  while (!context->IsCancelled()) {
    bool missed = false;
    uint64_t next = seq;
    std::vector<AlertEvent> events =
        rules_->WaitForChanges(seq, absl::Milliseconds(500), &next, &missed);
    if (missed) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          "WatchAlerts: this watcher fell behind the change backlog; "
                          "list the alerts again and re-watch");
    }
    for (const AlertEvent& e : events) {
      if (!ModelMatches(request->model(), e.alert)) continue;
      v1::Alert out;
      ToProto(e.alert, &out);
      if (!writer->Write(out)) return grpc::Status::OK;
    }
    seq = next;
  }
  return grpc::Status::OK;
}

grpc::Status AlertsService::PutRule(grpc::ServerContext*, const v1::PutRuleRequest* request,
                                    v1::Rule* response) {
  return Guard("PutRule", [&]() -> absl::Status {
    if (request->yaml().empty()) {
      return absl::InvalidArgumentError("yaml: give one rule in the rules file's schema");
    }
    if (request->yaml().size() > 64 * 1024) {
      return absl::InvalidArgumentError("yaml: a rule is at most 64 KiB");
    }
    DW_ASSIGN_OR_RETURN(alerting::Rule rule, rules_->PutRule(request->yaml()));
    ToProto(rule, response);
    return absl::OkStatus();
  });
}

grpc::Status AlertsService::DeleteRule(grpc::ServerContext*, const v1::DeleteRuleRequest* request,
                                       v1::DeleteRuleResponse*) {
  return Guard("DeleteRule", [&]() -> absl::Status { return rules_->DeleteRule(request->name()); });
}

grpc::Status AlertsService::ListRules(grpc::ServerContext*, const v1::ListRulesRequest*,
                                      v1::ListRulesResponse* response) {
  for (const alerting::Rule& r : rules_->Rules()) ToProto(r, response->add_rules());
  return grpc::Status::OK;
}

grpc::Status AlertsService::CreateSilence(grpc::ServerContext*,
                                          const v1::CreateSilenceRequest* request,
                                          v1::Silence* response) {
  return Guard("CreateSilence", [&]() -> absl::Status {
    const v1::Silence& in = request->silence();
    alerting::Silence s;
    for (const v1::Matcher& pm : in.matchers()) {
      alerting::Matcher m;
      m.name = pm.name();
      m.value = pm.value();
      m.op = pm.is_regex() ? (pm.is_equal() ? alerting::Matcher::Op::kRe
                                             : alerting::Matcher::Op::kNre)
                           : (pm.is_equal() ? alerting::Matcher::Op::kEq
                                            : alerting::Matcher::Op::kNe);
      // Through the parser, so a bad regex is refused the same way.
      DW_ASSIGN_OR_RETURN(m, alerting::ParseMatcher(m.ToString()));
      s.matchers.push_back(std::move(m));
    }
    if (in.has_starts_at()) s.starts_at_ms = FromStamp(in.starts_at());
    if (!in.has_ends_at()) return absl::InvalidArgumentError("ends_at: a silence must end");
    s.ends_at_ms = FromStamp(in.ends_at());
    s.created_by = in.created_by();
    s.comment = in.comment();
    if (s.created_by.empty()) {
      return absl::InvalidArgumentError("created_by: say who silences (and why, in comment)");
    }
    DW_ASSIGN_OR_RETURN(alerting::Silence created, rules_->CreateSilence(std::move(s)));
    ToProto(created, rules_->NowMs(), response);
    return absl::OkStatus();
  });
}

grpc::Status AlertsService::ExpireSilence(grpc::ServerContext*,
                                          const v1::ExpireSilenceRequest* request,
                                          v1::ExpireSilenceResponse*) {
  return Guard("ExpireSilence",
               [&]() -> absl::Status { return rules_->ExpireSilence(request->id()); });
}

grpc::Status AlertsService::ListSilences(grpc::ServerContext*, const v1::ListSilencesRequest*,
                                         v1::ListSilencesResponse* response) {
  const int64_t now_ms = rules_->NowMs();
  for (const alerting::Silence& s : rules_->Silences()) {
    ToProto(s, now_ms, response->add_silences());
  }
  return grpc::Status::OK;
}

grpc::Status AlertsService::ListNotifications(grpc::ServerContext*,
                                              const v1::ListNotificationsRequest* request,
                                              v1::ListNotificationsResponse* response) {
  return Guard("ListNotifications", [&]() -> absl::Status {
    if (request->limit() < 0 || request->limit() > 10'000) {
      return absl::InvalidArgumentError("limit: at most 10000");
    }
    const int limit = request->limit() == 0 ? 100 : request->limit();
    DW_ASSIGN_OR_RETURN(std::vector<storage::OutboxRow> rows,
                        store_->ReadOutbox(request->pending_only(), limit));
    for (const storage::OutboxRow& r : rows) {
      v1::Notification* n = response->add_notifications();
      n->set_id(r.id);
      n->set_receiver(r.receiver);
      n->set_url(r.url);
      n->set_group_key(r.group_key);
      n->set_state(r.state == storage::OutboxRow::kPending     ? "pending"
                   : r.state == storage::OutboxRow::kDelivered ? "delivered"
                                                               : "failed");
      n->set_attempts(r.attempts);
      n->set_last_status(r.last_status);
      n->set_last_error(r.last_error);
      Stamp(r.created_ms, n->mutable_created_at());
      if (r.state == storage::OutboxRow::kPending) {
        Stamp(r.next_attempt_ms, n->mutable_next_attempt_at());
      } else {
        Stamp(r.delivered_ms, n->mutable_finished_at());
      }
      n->set_body(r.body);
    }
    return absl::OkStatus();
  });
}

}  // namespace driftwatch::service::grpc_api
