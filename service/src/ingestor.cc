#include "driftwatch/service/ingestor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"
#include "ingest/apply.h"
#include "ingest/batch_decoder.h"
#include "ingest/dedup.h"
#include "ingest/flush.h"
#include "ingest/flusher.h"
#include "ingest/model_state.h"
#include "internal/log.h"

namespace driftwatch::service {

using ingest::ModelIngestState;

namespace {

// A longer example id is cut at a UTF-8 boundary (event_id_too_long), so
// that a hostile id does not travel back whole in the ack.
std::string ExampleId(std::string_view id) {
  constexpr size_t kMaxExampleIdBytes = 256;
  if (id.size() <= kMaxExampleIdBytes) return std::string(id);
  size_t cut = kMaxExampleIdBytes;
  while (cut > 0 && (static_cast<unsigned char>(id[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(base::Sv(id.substr(0, cut)), "...");
}

// One batch's outcome into its model's counters (a handful of atomic
// adds, no lock: the counters live beside the model).
void CountForModel(const IngestCounts& counts, RegisteredModel::IngestCounters& model) {
  model.accepted += counts.accepted;
  model.duplicates += counts.duplicates;
  model.rejected += counts.rejected;
  model.late_accepted += counts.late_accepted;
  model.backfilled += counts.backfilled;
  for (const auto& [name, stat] : counts.reasons) {
    for (size_t i = 0; i < kRejectReasonNames.size(); ++i) {
      if (kRejectReasonNames[i] == name) model.rejected_by_reason[i] += stat.count;
    }
  }
}

// Calls f(k, x) for the held event's value of each learning feature, then
// each learning score, k counting them (NaN where the event has none).
template <typename F>
void ForEachLearningValue(const ingest::ModelIngestState& state, const v1::PredictionEvent& e,
                          F f) {
  size_t k = 0;
  for (int i : state.learn_numeric) f(k++, i < e.numeric_size() ? e.numeric(i) : NAN);
  for (int i : state.learn_scores) f(k++, i < e.scores_size() ? e.scores(i) : NAN);
}

// At most one reject line per model version per this long.
constexpr int64_t kRejectLogIntervalMs = 10'000;

// After a batch with rejections: unless the model's last reject line went
// out less than kRejectLogIntervalMs ago (server clock), one warn line
// with the counts by reason since that line and an example from this
// batch. Counts that arrive in the quiet interval go into the next line
// (every count is in /metrics and the stream's ack regardless).
void LogRejects(const RegisteredModel& model, const IngestCounts& batch, int64_t now_ms) {
  RegisteredModel::IngestCounters& c = model.ingest_counters();
  int64_t last = c.reject_logged_ms.load();
  do {
    if (last != std::numeric_limits<int64_t>::min() && now_ms - last < kRejectLogIntervalMs) {
      return;
    }
  } while (!c.reject_logged_ms.compare_exchange_weak(last, now_ms));
  std::string counts;
  uint64_t total = 0;
  for (size_t i = 0; i < kRejectReasonNames.size(); ++i) {
    const uint64_t now_count = c.rejected_by_reason[i].load();
    const uint64_t since = now_count - c.rejected_logged[i].exchange(now_count);
    if (since == 0) continue;
    total += since;
    absl::StrAppend(&counts, counts.empty() ? "" : ",", base::Sv(kRejectReasonNames[i]), ":",
                    since);
  }
  if (total == 0) return;  // another batch's line took them
  // The example: this batch's alphabetically first reason, so it is stable.
  const std::pair<const std::string, RejectStat>* example = nullptr;
  for (const auto& entry : batch.reasons) {
    if (example == nullptr || entry.first < example->first) example = &entry;
  }
  const std::string window = last == std::numeric_limits<int64_t>::min()
                                 ? std::string("start")
                                 : absl::StrCat(now_ms - last, "ms");
  internal::LogWarn(
      "ingest rejected events",
      {{"model", model.label()},
       {"rejected", absl::StrCat(total)},
       {"reasons", counts},
       {"since_last_line", window},
       {"example_reason", example != nullptr ? example->first : std::string()},
       {"example_event_id", example != nullptr ? example->second.example_event_id : std::string()},
       {"example", example != nullptr ? example->second.message : std::string()}});
}

}  // namespace

void IngestCounts::Reject(RejectReason reason, std::string_view event_id, std::string message) {
  ++rejected;
  RejectStat& stat = reasons[base::Sv(RejectReasonName(reason))];
  if (stat.count++ == 0) {
    stat.example_event_id = ExampleId(event_id);
    stat.message = std::move(message);
  }
}

void IngestCounts::Merge(const IngestCounts& other) {
  batches += other.batches;
  accepted += other.accepted;
  duplicates += other.duplicates;
  rejected += other.rejected;
  late_accepted += other.late_accepted;
  too_late += other.too_late;
  backfilled += other.backfilled;
  for (const auto& [reason, stat] : other.reasons) {
    RejectStat& mine = reasons[reason];
    if (mine.count == 0) {
      mine.example_event_id = stat.example_event_id;
      mine.message = stat.message;
    }
    mine.count += stat.count;
  }
}

void IngestTotals::Add(const IngestCounts& counts) {
  accepted += counts.accepted;
  duplicates += counts.duplicates;
  rejected += counts.rejected;
  late_accepted += counts.late_accepted;
  too_late += counts.too_late;
  backfilled += counts.backfilled;
}

Ingestor::Ingestor(const ModelRegistry* registry, IngestStorage storage, const base::Clock* clock,
                   IngestOptions options)
    : registry_(registry),
      storage_(storage),
      clock_(clock),
      options_(std::move(options)),
      flusher_(std::make_unique<ingest::Flusher>(
          storage_.flush, clock_, options_.flush_interval_ms, &totals_,
          [this](storage::FlushBatch* batch, ingest::Flusher::CollectSeq seq) {
            CollectAll(batch, seq.seq, seq.committed);
          },
          [this](uint64_t committed) { BackfillCommitted(committed); })) {}

Ingestor::~Ingestor() {
  flusher_->Stop();
  (void)flusher_->Flush();  // what is still open is committed
}

void Ingestor::StartFlusher() { flusher_->Start(); }

absl::Status Ingestor::Flush() { return flusher_->Flush(); }

absl::Status Ingestor::WaitDurable(uint64_t seq, int64_t timeout_ms) {
  return flusher_->WaitDurable(seq, timeout_ms);
}

uint64_t Ingestor::durable_seq() const { return flusher_->durable_seq(); }

ModelIngestState& Ingestor::StateOf(const std::shared_ptr<const RegisteredModel>& model) {
  {
    absl::ReaderMutexLock lock(&states_mu_);
    auto it = states_.find(model->model_key());
    if (it != states_.end()) return *it->second;
  }
  absl::MutexLock lock(&states_mu_);
  auto& state = states_[model->model_key()];
  if (state == nullptr) state = std::make_unique<ModelIngestState>(model);
  return *state;
}

std::vector<ModelIngestState*> Ingestor::States() const {
  absl::ReaderMutexLock lock(&states_mu_);
  std::vector<ModelIngestState*> out;
  out.reserve(states_.size());
  for (const auto& [key, state] : states_) out.push_back(state.get());
  return out;
}

absl::Status Ingestor::Recover() {
  for (const std::shared_ptr<const RegisteredModel>& model : registry_->List()) {
    DW_RETURN_IF_ERROR(RecoverModel(StateOf(model)));
  }
  return absl::OkStatus();
}

// Buckets not yet closed come back into memory with their dedup ids;
// closed buckets' ids come back when a batch backfills them.
absl::Status Ingestor::RecoverModel(ModelIngestState& state) {
  const RegisteredModel& model = *state.model;
  absl::MutexLock lock(&state.mu);
  DW_ASSIGN_OR_RETURN(std::vector<storage::BucketRow> rows,
                      storage_.buckets->ReadBuckets(model.model_key(), storage::Level::kMinute,
                                                    state.closed_until_ms,
                                                    std::numeric_limits<int64_t>::max(), {}));
  const bool derived_all = model.slice_key_count() > 0;
  for (storage::BucketRow& row : rows) {
    ingest::OpenBucket& bucket = state.buckets[row.bucket_start_ms];
    bucket.ids = &state.IdsOf(row.bucket_start_ms);
    // A derived "*" is rebuilt from the key slices at the next flush.
    if (derived_all && row.slice_id == 0) continue;
    DW_ASSIGN_OR_RETURN(detectors::Profile profile,
                        detectors::Profile::Deserialize(model.layout(), row.profile));
    bucket.Set(row.slice_id, std::make_unique<detectors::ProfileAccumulator>(
                                 detectors::ProfileAccumulator::FromProfile(state.shape, profile)));
  }
  DW_ASSIGN_OR_RETURN(std::vector<storage::DedupChunk> chunks,
                      storage_.dedup->ReadDedup(model.model_key(), state.closed_until_ms));
  for (const storage::DedupChunk& chunk : chunks) {
    ingest::BucketIds& ids = state.IdsOf(chunk.bucket_start_ms);
    ingest::DecodeEventIdsInto(chunk.hashes, &state.ids, &ids.hashes);
    ids.collected = ids.hashes.size();  // already stored
  }
  // Events held while the model learns its edges (or learned them, and
  // the replay did not commit before the restart).
  DW_ASSIGN_OR_RETURN(std::vector<storage::PendingEventRow> held,
                      storage_.held->ReadPendingEvents(model.model_key()));
  for (storage::PendingEventRow& row : held) state.held.push_back(std::move(row.event));
  state.held_collected = state.held.size();
  state.first_held_ms = clock_->NowMs();
  state.held_watermark_ms = state.watermark_ms;  // what arrival saw is gone
  state.learning = model.learning() || !state.held.empty();
  std::vector<uint64_t> counts(state.learn_counts.size(), 0);
  for (const std::string& bytes : state.held) {
    v1::PredictionEvent e;
    if (!e.ParseFromString(bytes)) {
      return absl::DataLossError(absl::StrCat("a held event of model ", model.label(),
                                              " does not parse"));
    }
    ForEachLearningValue(state, e, [&](size_t k, double x) { counts[k] += std::isfinite(x); });
  }
  for (size_t k = 0; k < counts.size(); ++k) state.learn_counts[k] += counts[k];
  return absl::OkStatus();
}

void Ingestor::MaybeFinishLearning(ModelIngestState& state, int64_t now_ms,
                                   std::vector<ingest::HandOff>* handoffs) {
  state.mu.AssertHeld();
  if (!state.learning) return;
  const RegisteredModel& model = *state.model;
  if (model.learning()) {
    const uint32_t wanted = registry_->options().learn_edges_values;
    const bool enough = std::all_of(state.learn_counts.begin(), state.learn_counts.end(),
                                    [wanted](uint64_t n) { return n >= wanted; });
    const bool full = state.held.size() >= static_cast<uint64_t>(wanted) *
                                               options_.learn_edges_max_held_factor;
    const bool waited =
        !state.held.empty() && now_ms - state.first_held_ms >= options_.learn_edges_max_wait_ms;
    if (!enough && !full && !waited) return;
    // Held row events parse (rows came from the client or were made by
    // BatchDecoder::SerializeEvent). The values are their finite ones, up
    // to `wanted` per feature: the first traffic.
    std::vector<std::vector<double>> values(state.learn_counts.size());
    for (const std::string& bytes : state.held) {
      v1::PredictionEvent e;
      if (!e.ParseFromString(bytes)) continue;
      ForEachLearningValue(state, e, [&](size_t k, double x) {
        if (std::isfinite(x) && values[k].size() < wanted) values[k].push_back(x);
      });
    }
    absl::StatusOr<bool> learned = registry_->FinishLearning(model, values);
    if (!learned.ok()) {
      internal::LogWarn("could not store learned summary edges; retrying at the next flush",
                        {{"model", model.label()}, {"error", std::string(learned.status().message())}});
      return;
    }
    internal::LogInfo("learned summary edges from the first traffic",
                      {{"model", model.label()},
                       {"held_events", absl::StrCat(state.held.size())},
                       {"values_per_feature", absl::StrCat(values.empty() ? 0 : values[0].size())},
                       {"reason", enough ? "enough values" : full ? "held cap" : "max wait"}});
  }
  // The edges are in: the held events go into profiles of the new layout.
  state.ResetShape();
  state.learning = false;
  v1::PredictionBatch batch;
  *batch.mutable_model() = model.ref();
  for (const std::string& bytes : state.held) {
    if (!batch.mutable_rows()->add_events()->ParseFromString(bytes)) {
      batch.mutable_rows()->mutable_events()->RemoveLast();
    }
  }
  IngestCounts replayed;
  const int64_t watermark = state.watermark_ms;
  state.watermark_ms = std::min(state.watermark_ms, state.held_watermark_ms);
  absl::StatusOr<ingest::BatchDecoder> decoder =
      ingest::BatchDecoder::Create(batch, model, options_);
  absl::Status status = decoder.status();
  if (decoder.ok()) {
    status = ingest::BatchApplier(state, *decoder, options_, now_ms, storage_.dedup, &replayed,
                                  &totals_, handoffs)
                 .Replay()
                 .Run();
  }
  if (!status.ok() || replayed.rejected > 0) {
    internal::LogWarn("held events not replayed whole",
                      {{"model", model.label()},
                       {"held_events", absl::StrCat(state.held.size())},
                       {"replayed", absl::StrCat(replayed.accepted)},
                       {"error", std::string(status.message())}});
  }
  state.watermark_ms = std::max(state.watermark_ms, watermark);
  state.held.clear();
  state.held.shrink_to_fit();
  state.held_collected = 0;
  state.clear_held = true;
}

size_t Ingestor::open_buckets() const {
  size_t n = 0;
  for (ModelIngestState* state : States()) {
    absl::MutexLock lock(&state->mu);
    n += state->buckets.size();
  }
  return n;
}

// find the model -> decode the batch -> apply its events under the
// model's lock -> drain full queues after it -> count.
absl::StatusOr<uint64_t> Ingestor::Apply(const v1::PredictionBatch& batch, IngestCounts* counts) {
  absl::StatusOr<std::shared_ptr<const RegisteredModel>> found = registry_->Find(batch.model());
  if (!found.ok()) {
    return absl::Status(found.status().code(),
                        absl::StrCat(found.status().message(),
                                     " (register it with Models.RegisterModel)"));
  }
  const std::shared_ptr<const RegisteredModel> model = *std::move(found);
  DW_ASSIGN_OR_RETURN(ingest::BatchDecoder decoder,
                      ingest::BatchDecoder::Create(batch, *model, options_));
  ModelIngestState& state = StateOf(model);
  IngestCounts local;
  local.batches = 1;
  uint64_t seq = 0;
  bool flush_now = false;
  {
    // Full queues this batch hands off are drained once the lock is
    // released, on every way out (a flush waits for them).
    struct DrainOnExit {
      ModelIngestState& state;
      std::vector<ingest::HandOff> handoffs;
      ~DrainOnExit() { state.DrainHandOffs(&handoffs); }
    } drain{state, {}};
    absl::MutexLock lock(&state.mu);
    seq = flusher_->NextSeq();
    const int64_t now_ms = clock_->NowMs();
    DW_RETURN_IF_ERROR(ingest::BatchApplier(state, decoder, options_, now_ms, storage_.dedup,
                                            &local, &totals_, &drain.handoffs)
                           .Run());
    state.CountArrival(now_ms, local.duplicates, local.too_late, local.rejected);
    MaybeFinishLearning(state, now_ms, &drain.handoffs);
    state.PublishProgress();
    flush_now = !state.backfill.empty() &&
                state.BackfillProfiles() > options_.max_backfill_profiles;
  }
  // Backpressure: a backfill spread over many buckets holds a delta per
  // slice per bucket until the flush merges them; past the cap the batch
  // that went over waits for one.
  if (flush_now) (void)flusher_->Flush();
  totals_.Add(local);
  CountForModel(local, model->ingest_counters());
  if (local.rejected > 0) LogRejects(*model, local, clock_->NowMs());
  counts->Merge(local);
  return seq;
}

void Ingestor::CollectAll(storage::FlushBatch* batch, uint64_t collect, uint64_t committed) {
  const int64_t now_ms = clock_->NowMs();
  for (ModelIngestState* state : States()) {
    {
      std::vector<ingest::HandOff> handoffs;
      {
        absl::MutexLock lock(&state->mu);
        MaybeFinishLearning(*state, now_ms, &handoffs);
      }
      state->DrainHandOffs(&handoffs);
    }
    ingest::FlushSnapshot snap;
    {
      absl::MutexLock lock(&state->mu);
      ingest::CollectFlush(*state, options_, {now_ms, collect, committed}, &totals_, batch, &snap);
    }
    if (std::any_of(snap.buckets.begin(), snap.buckets.end(),
                    [](const ingest::FlushSnapshot::Bucket& b) { return b.delta; })) {
      absl::MutexLock lock(&backfill_mu_);
      backfilled_.push_back({collect, state->model});
    }
    ingest::EncodeFlush(snap, batch);
  }
}

void Ingestor::BackfillCommitted(uint64_t committed) {
  absl::MutexLock lock(&backfill_mu_);
  std::erase_if(backfilled_, [committed](const PendingBackfill& p) {
    if (p.collect > committed) return false;
    p.model->NoteBackfillCommitted();
    return true;
  });
}

}  // namespace driftwatch::service
