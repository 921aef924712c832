#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/base/huge_page_allocator.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/sampling.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/base/thread_name.h"
#include "driftwatch/base/time_format.h"
#include "driftwatch/detectors/quality.h"
#include "driftwatch/detectors/quality_delta.h"
#include "driftwatch/detectors/quality_profile.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/storage/bucket_store.h"
#include "ingest/dedup.h"
#include "internal/log.h"
#include "labels/join_record.h"

namespace driftwatch::service {
namespace {

using detectors::QualityDelta;
using detectors::QualityKind;
using labels::JoinRecord;
using storage::kHourMs;
using storage::kMinuteMs;

// Label sources (Label.source) a model counts apart; past them, further
// sources since the process started count under base::kOther. Each
// source's counts are a row per arrival minute, so this bounds the rows
// and the memory a client can make with made-up sources.
constexpr size_t kMaxLabelSources = 64;
// A longer source is cut to this (at a UTF-8 boundary) before it counts.
constexpr size_t kMaxSourceBytes = 128;

struct Entry {
  int32_t hour = 0;  // event-time hour number: its arena
  uint32_t offset = 0;
  uint32_t len = 0;
  bool labelled = false;
  double label = 0;
};

// A kept prediction's add to the quality delta of one slice (binary).
struct PredictionAdd {
  int32_t slice;
  double weight;
  double score;  // NaN: no score
};

struct Arena {
  std::string bytes;             // the records, back to back
  std::vector<uint64_t> hashes;  // in the order added
};

struct PendingLabel {
  double value = 0;
  int64_t label_time_ms = 0;
  int64_t received_ms = 0;
  uint16_t source = 0;  // ModelState::source_names
};

// Of one model's labels of one arrival minute and one source.
struct SourceTally {
  uint64_t joined = 0, orphan = 0, pending = 0;
};

SourceTally& TallyOf(std::vector<SourceTally>& by_source, uint16_t source) {
  if (by_source.size() <= source) by_source.resize(static_cast<size_t>(source) + 1);
  return by_source[source];
}

// A ranker's query: its NDCG counts once every kept row of it is labelled,
// or when its join state expires with some labelled.
struct Query {
  int64_t hour_start_ms = 0;     // of its first kept row
  int64_t last_hour_ms = 0;      // of its latest kept row: it counts at that hour's expiry
  std::vector<uint32_t> slices;  // of its first kept row
  double weight = 1;             // of its first kept row
  uint32_t kept = 0;
  std::vector<double> scores, relevance;  // of its labelled rows
  bool counted = false;
};

}  // namespace

void LabelStreamCounts::Reject(LabelRejectReason reason, std::string_view event_id,
                               std::string message) {
  ++rejected;
  ++by_reason[static_cast<size_t>(reason)];
  RejectStat& stat = reasons[std::string(LabelRejectReasonName(reason))];
  if (stat.count++ == 0) {
    stat.example_event_id = std::string(event_id);
    stat.message = std::move(message);
  }
}

struct LabelJoiner::ModelState {
  std::shared_ptr<const RegisteredModel> model;
  QualityKind kind = QualityKind::kBinary;
  int classes = 2;
  bool ranked = false;
  double join_rate = 1;

  absl::flat_hash_map<uint64_t, Entry, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                      base::HugePageAllocator<std::pair<const uint64_t, Entry>>>
      index;
  std::map<int64_t, Arena> arenas;  // by event-time hour start
  absl::flat_hash_map<uint64_t, PendingLabel> pending;
  std::deque<std::pair<int64_t, uint64_t>> pending_order;  // (received, hash), oldest first
  absl::flat_hash_map<uint64_t, Query> queries;
  int64_t tail_seq = 0;  // join chunks up to it are applied
  bool warned_full = false;
  // The label sources seen since start, by id (SourceId): at most
  // kMaxLabelSources and base::kOther. Never shrinks (pending labels hold ids).
  std::vector<std::string> source_names;
  absl::flat_hash_map<std::string, uint16_t> source_ids;
  bool warned_sources = false, warned_source_bytes = false;

  // Since the last commit.
  // Sparse: a row changes by a few adds between commits.
  absl::flat_hash_map<std::pair<int32_t, int64_t>, std::unique_ptr<QualityDelta>> dirty;
  // Binary classifiers: the kept predictions' adds of each event-time hour
  // in tail order, one per (record, slice), grouped into `dirty` by slice
  // at the commit, outside mu_ (one sequential append here instead of a
  // cache miss per slice per prediction).
  absl::flat_hash_map<int64_t, std::vector<PredictionAdd>> prediction_log;
  size_t dirty_adds = 0;  // over `dirty` and `prediction_log`
  base::ByteWriter log;   // [u64 hash][f64 value] per joined label
  absl::flat_hash_map<uint64_t, std::optional<PendingLabel>> pending_changes;  // nullopt: deleted
  std::map<int64_t, storage::LabelCounts> counts;                              // by arrival minute
  std::map<int64_t, std::vector<SourceTally>> source_counts;  // by minute, then source id
  bool progress_dirty = false;
  int64_t expire_join_before_ms = 0;
  int64_t expire_log_before_ms = 0;
  bool expire_dirty = false;

  JoinRecord scratch;       // Record's
  JoinRecord tail_scratch;  // TailModel's (a join in it calls Record)

  // Indexes record `rec` (its bytes) of event-time hour `hour_start`;
  // `h` must not be indexed yet. Rankers: counts the row in its query.
  Entry& AddRecord(uint64_t h, std::string_view bytes, const JoinRecord& rec, int64_t hour_start) {
    return FillRecord(index[h], h, bytes, rec, arenas[hour_start], hour_start);
  }
  // The same into a new index entry `e` and the hour's arena.
  Entry& FillRecord(Entry& e, uint64_t h, std::string_view bytes, const JoinRecord& rec,
                    Arena& arena, int64_t hour_start) {
    e = Entry{static_cast<int32_t>(hour_start / kHourMs), static_cast<uint32_t>(arena.bytes.size()),
              static_cast<uint32_t>(bytes.size())};
    arena.bytes.append(bytes);
    arena.hashes.push_back(h);
    if (ranked) {
      Query& q = queries[rec.query_hash];
      if (q.kept++ == 0) {
        q.hour_start_ms = hour_start;
        q.slices = rec.slices;
        q.weight = rec.weight / join_rate;
      }
      q.last_hour_ms = std::max(q.last_hour_ms, hour_start);
    }
    return e;
  }

  QualityDelta& Dirty(int32_t slice, int64_t hour_start) {
    std::unique_ptr<QualityDelta>& p = dirty[{slice, hour_start}];
    if (p == nullptr) p = std::make_unique<QualityDelta>(kind, classes);
    ++dirty_adds;
    return *p;
  }
  storage::LabelCounts& CountsAt(int64_t now_ms) {
    const int64_t minute = storage::BucketStart(now_ms, kMinuteMs);
    storage::LabelCounts& c = counts[minute];
    c.model_key = model->model_key();
    c.minute_start_ms = minute;
    return c;
  }
  std::vector<SourceTally>& SourceCountsAt(int64_t now_ms) {
    return source_counts[storage::BucketStart(now_ms, kMinuteMs)];
  }
  // The id of label source `name`, cut to kMaxSourceBytes; once
  // kMaxLabelSources others are known, base::kOther's. Each degraded case
  // is logged once per model.
  uint16_t SourceId(std::string_view name) {
    if (name.size() > kMaxSourceBytes) {
      size_t cut = kMaxSourceBytes;
      while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
      name = name.substr(0, cut);
      if (!warned_source_bytes) {
        warned_source_bytes = true;
        internal::LogWarn(
            "labels: label sources cut to their first bytes",
            {{"model", model->label()}, {"max_source_bytes", absl::StrCat(kMaxSourceBytes)}});
      }
    }
    if (auto it = source_ids.find(base::Sv(name)); it != source_ids.end()) return it->second;
    const size_t named =
        source_names.size() - (source_ids.contains(base::Sv(base::kOther)) ? 1 : 0);
    if (named >= kMaxLabelSources && name != base::kOther) {
      if (!warned_sources) {
        warned_sources = true;
        internal::LogWarn(
            "labels: too many label sources; the rest count as __other__",
            {{"model", model->label()}, {"max_label_sources", absl::StrCat(kMaxLabelSources)}});
      }
      name = base::kOther;
      if (auto it = source_ids.find(base::Sv(name)); it != source_ids.end()) return it->second;
    }
    const auto id = static_cast<uint16_t>(source_names.size());
    source_names.emplace_back(name);
    source_ids.emplace(source_names.back(), id);
    return id;
  }
  // Calls fn(slice id) for the population and each of the record's slices.
  template <typename Fn>
  static void ForSlices(const std::vector<uint32_t>& slices, Fn&& fn) {
    fn(0);
    for (uint32_t s : slices) {
      if (s != 0) fn(static_cast<int32_t>(s));
    }
  }
  const JoinRecord* Record(const Entry& e) {
    auto it = arenas.find(static_cast<int64_t>(e.hour) * kHourMs);
    if (it == arenas.end()) return nullptr;
    if (!labels::DecodeJoinRecordInto(std::string_view(it->second.bytes).substr(e.offset, e.len),
                                      &scratch)
             .ok()) {
      return nullptr;
    }
    return &scratch;
  }
};

LabelJoiner::LabelJoiner(storage::LabelStore* store, ModelRegistry* registry,
                         const base::Clock* clock, LabelOptions options)
    : store_(store), registry_(registry), clock_(clock), options_(std::move(options)) {}

LabelJoiner::~LabelJoiner() { Stop(); }

absl::Status LabelJoiner::Recover() {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<const RegisteredModel>& model : registry_->List()) {
    if (!model->joins_labels()) continue;
    DW_RETURN_IF_ERROR(StateOf(model).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<LabelJoiner::ModelState*> LabelJoiner::StateOf(
    const std::shared_ptr<const RegisteredModel>& model) {
  auto it = states_.find(model->model_key());
  if (it != states_.end()) return it->second.get();
  auto state = std::make_unique<ModelState>();
  state->model = model;
  const std::optional<QualityKind> kind = model->quality_kind();
  if (!kind) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", model->label(),
                     " was registered without a label_kind: it keeps no join state, so labels "
                     "cannot join; register a new version with label_kind set"));
  }
  state->kind = *kind;
  state->classes = std::max(2, model->score_count());
  state->ranked = model->schema().score_kind() == v1::SCORE_KIND_RANKING;
  state->join_rate = model->label_join_rate();
  DW_RETURN_IF_ERROR(Load(*state));
  ModelState* out = state.get();
  states_.emplace(model->model_key(), std::move(state));
  return out;
}

absl::Status LabelJoiner::Load(ModelState& state) {
  const int64_t key = state.model->model_key();
  const std::string where = absl::StrCat("recover labels of ", state.model->label(), ": ");
  auto wrap = [&](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat(where, st.message()));
  };
  absl::StatusOr<int64_t> progress = store_->ReadLabelProgress(key);
  if (!progress.ok()) return wrap(progress.status());
  // Join state the joiner had applied: into the index only (its
  // predictions are in the stored quality rows already).
  int64_t seq = 0;
  while (seq < *progress) {
    absl::StatusOr<std::vector<storage::JoinChunk>> chunks = store_->ReadJoinChunks(key, seq, 256);
    if (!chunks.ok()) return wrap(chunks.status());
    if (chunks->empty()) break;
    for (const storage::JoinChunk& chunk : *chunks) {
      if (chunk.seq > *progress) break;
      seq = chunk.seq;
      absl::Status st =
          labels::ForEachChunkEntry(chunk.records, [&](uint64_t h, std::string_view r) {
            if (state.index.contains(h)) return;
            // As the tail bounds it (TailModel).
            if (state.index.size() >= options_.max_join_records &&
                (state.arenas.empty() || state.arenas.begin()->first >= chunk.hour_start_ms ||
                 state.index.size() >= 2 * options_.max_join_records)) {
              state.model->label_counters().join_state_full.fetch_add(1);
              return;
            }
            absl::StatusOr<JoinRecord> rec = labels::DecodeJoinRecord(r);
            if (rec.ok()) state.AddRecord(h, r, *rec, chunk.hour_start_ms);
          });
      if (!st.ok()) {  // as the tail does: the rest of the state still loads
        internal::LogWarn("labels: skipping a corrupt join chunk",
                          {{"model", state.model->label()},
                           {"seq", absl::StrCat(chunk.seq)},
                           {"error", st.ToString()}});
      }
    }
    if (chunks->back().seq > *progress) break;
  }
  state.tail_seq = *progress;
  // Which predictions are labelled, and with what.
  absl::StatusOr<std::vector<storage::LabelLogRow>> log = store_->ReadLabelLog(key);
  if (!log.ok()) return wrap(log.status());
  for (const storage::LabelLogRow& row : *log) {
    base::ByteReader e(row.entries);
    uint64_t h = 0;
    double value = 0;
    while (e.U64(&h) && e.F64(&value)) {
      auto it = state.index.find(h);
      if (it == state.index.end()) continue;  // expired since
      it->second.labelled = true;
      it->second.label = value;
      if (state.ranked) {
        const JoinRecord* rec = state.Record(it->second);
        if (rec == nullptr) continue;
        Query& q = state.queries[rec->query_hash];
        q.scores.push_back(rec->scores.empty() ? 0 : rec->scores[0]);
        q.relevance.push_back(value);
        if (q.relevance.size() >= q.kept) q.counted = true;  // counted when it happened
      }
    }
  }
  absl::StatusOr<std::vector<storage::PendingLabelRow>> pending = store_->ReadPendingLabels(key);
  if (!pending.ok()) return wrap(pending.status());
  std::sort(pending->begin(), pending->end(),
            [](const auto& a, const auto& b) { return a.received_ms < b.received_ms; });
  for (const storage::PendingLabelRow& p : *pending) {
    state.pending[p.hash] =
        PendingLabel{p.value, p.label_time_ms, p.received_ms, state.SourceId(p.source)};
    state.pending_order.emplace_back(p.received_ms, p.hash);
  }
  totals_.join_records.fetch_add(state.index.size());
  totals_.pending_labels.fetch_add(state.pending.size());
  internal::LogInfo("labels recovered", {{"model", state.model->label()},
                                         {"join_records", absl::StrCat(state.index.size())},
                                         {"pending_labels", absl::StrCat(state.pending.size())}});
  return absl::OkStatus();
}

namespace {

// Joins a label to the prediction of entry `e`; false when the label time
// is before the prediction's event time by more than the allowed skew.
bool JoinEntry(LabelJoiner::ModelState& s, uint64_t hash, Entry& e, double value,
               int64_t label_time_ms, const LabelOptions& options, int ndcg_k);

}  // namespace

absl::StatusOr<uint64_t> LabelJoiner::Apply(const v1::LabelBatch& batch,
                                            LabelStreamCounts* counts) {
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model, registry_->Find(batch.model()));
  // The join state of every prediction acked so far, first: a label sent
  // after its prediction's ack finds it.
  ModelState* state = nullptr;
  int64_t seq = 0;
  {
    absl::MutexLock lock(&mu_);
    DW_ASSIGN_OR_RETURN(state, StateOf(model));
    seq = state->tail_seq;
  }
  DW_RETURN_IF_ERROR(TailModel(*state, seq, 1024));
  const int64_t now = clock_->NowMs();
  absl::MutexLock lock(&mu_);
  ModelState& s = *state;
  ++counts->batches;
  LabelStreamCounts before = *counts;
  storage::LabelCounts& minute = s.CountsAt(now);
  std::vector<SourceTally>& by_source = s.SourceCountsAt(now);
  // A batch mostly comes from one source: looked up once.
  std::string_view last_source;
  uint16_t last_source_id = 0;
  bool have_source = false;
  auto source_of = [&](const v1::Label& label) {
    if (!have_source || label.source() != last_source) {
      last_source = label.source();
      last_source_id = s.SourceId(last_source);
      have_source = true;
    }
    return last_source_id;
  };
  const v1::LabelKind label_kind = model->schema().label_kind();
  const int classes = model->score_count();
  for (const v1::Label& label : batch.labels()) {
    const std::string& id = label.event_id();
    if (id.empty()) {
      counts->Reject(LabelRejectReason::kMissingEventId, id, "label without an event_id");
      continue;
    }
    if (id.size() > options_.max_event_id_bytes) {
      counts->Reject(LabelRejectReason::kEventIdTooLong, id.substr(0, 64),
                     absl::StrCat("event_id is ", id.size(), " bytes, over max_event_id_bytes ",
                                  options_.max_event_id_bytes));
      continue;
    }
    const double v = label.value();
    bool valid = std::isfinite(v);
    std::string why;
    switch (label_kind) {
      case v1::LABEL_KIND_BINARY:
        valid = valid && (v == 0 || v == 1);
        why = "a binary label must be 0 or 1";
        break;
      case v1::LABEL_KIND_MULTICLASS:
        valid = valid && v >= 0 && v < classes && v == std::floor(v);
        why = absl::StrCat("a multiclass label is a class index in 0..", classes - 1);
        break;
      case v1::LABEL_KIND_RELEVANCE:
        valid = valid && v >= 0;
        why = "a relevance label must be finite and >= 0";
        break;
      default:
        why = "a regression target must be finite";
        break;
    }
    if (!valid) {
      counts->Reject(LabelRejectReason::kInvalidValue, id, absl::StrCat("value ", v, ": ", why));
      continue;
    }
    const int64_t t = label.label_time_ms() != 0 ? label.label_time_ms() : now;
    if (t > now + options_.max_future_skew_ms) {
      counts->Reject(LabelRejectReason::kTimeInFuture, id,
                     absl::StrCat("label_time_ms ", t, " (", base::IsoTime(t),
                                  ") is ahead of the server clock by more than "
                                  "labels.max_future_skew (",
                                  options_.max_future_skew_ms, " ms)"));
      continue;
    }
    const uint64_t h = ingest::EventIdHash(id);
    if (auto it = s.index.find(h); it != s.index.end()) {
      Entry& e = it->second;
      if (e.labelled) {
        (e.label == v ? counts->duplicates : counts->conflicting)++;
        continue;
      }
      if (!JoinEntry(s, h, e, v, t, options_, options_.ndcg_k)) {
        counts->Reject(LabelRejectReason::kBeforePrediction, id,
                       absl::StrCat("label_time_ms ", t, " (", base::IsoTime(t),
                                    ") is before its prediction's event time by more than "
                                    "labels.max_clock_skew (",
                                    options_.max_clock_skew_ms, " ms)"));
        continue;
      }
      ++counts->joined;
      ++TallyOf(by_source, source_of(label)).joined;
      continue;
    }
    if (s.join_rate < 1.0 && !base::InSample(id, s.join_rate)) {
      ++counts->not_sampled;
      continue;
    }
    if (auto it = s.pending.find(h); it != s.pending.end()) {
      (it->second.value == v ? counts->duplicates : counts->conflicting)++;
      continue;
    }
    const uint16_t source = source_of(label);
    if (t < now - options_.window_ms || s.pending.size() >= options_.max_pending) {
      ++counts->orphan;
      ++TallyOf(by_source, source).orphan;
      continue;
    }
    s.pending[h] = PendingLabel{v, t, now, source};
    s.pending_order.emplace_back(now, h);
    s.pending_changes[h] = PendingLabel{v, t, now, source};
    totals_.pending_labels.fetch_add(1);
    ++counts->pending;
    ++TallyOf(by_source, source).pending;
  }
  // The batch's share, into the model's arrival-minute counts and totals.
  const uint64_t joined = counts->joined - before.joined,
                 pending = counts->pending - before.pending,
                 dups = counts->duplicates - before.duplicates,
                 conflicting = counts->conflicting - before.conflicting,
                 not_sampled = counts->not_sampled - before.not_sampled,
                 orphan = counts->orphan - before.orphan,
                 rejected = counts->rejected - before.rejected;
  minute.joined += joined;
  minute.pending += pending;
  minute.duplicates += dups;
  minute.conflicting += conflicting;
  minute.not_sampled += not_sampled;
  minute.orphan += orphan;
  minute.rejected += rejected;
  RegisteredModel::LabelCounters& c = model->label_counters();
  c.joined.fetch_add(joined);
  c.pending.fetch_add(pending);
  c.duplicates.fetch_add(dups);
  c.conflicting.fetch_add(conflicting);
  c.not_sampled.fetch_add(not_sampled);
  c.orphan.fetch_add(orphan);
  c.rejected.fetch_add(rejected);
  for (size_t i = 0; i < kLabelRejectReasonNames.size(); ++i) {
    const uint64_t n = counts->by_reason[i] - before.by_reason[i];
    if (n > 0) c.rejected_by_reason[i].fetch_add(n);
  }
  return ++applied_seq_;
}

namespace {

void CountQuery(LabelJoiner::ModelState& s, Query& q, int k) {
  if (q.counted || q.relevance.empty()) return;
  const double ndcg = detectors::QueryNdcg(q.scores, q.relevance, k);
  LabelJoiner::ModelState::ForSlices(
      q.slices, [&](int32_t slice) { s.Dirty(slice, q.hour_start_ms).AddQuery(ndcg, q.weight); });
  q.counted = true;
}

bool JoinEntry(LabelJoiner::ModelState& s, uint64_t hash, Entry& e, double value,
               int64_t label_time_ms, const LabelOptions& options, int ndcg_k) {
  const JoinRecord* r = s.Record(e);
  if (r == nullptr) return true;  // cannot happen: the arena holds every indexed record
  if (label_time_ms < r->event_time_ms - options.max_clock_skew_ms) return false;
  const double w = r->weight / s.join_rate;
  const double delay = static_cast<double>(label_time_ms - r->event_time_ms);
  const int64_t hour = storage::BucketStart(r->event_time_ms, kHourMs);
  LabelJoiner::ModelState::ForSlices(
      r->slices, [&](int32_t slice) { s.Dirty(slice, hour).AddLabel(r->scores, value, w, delay); });
  e.labelled = true;
  e.label = value;
  s.log.U64(hash);
  s.log.F64(value);
  if (s.ranked) {
    // Its query is there until the last of its rows leaves the window.
    auto it = s.queries.find(r->query_hash);
    if (it == s.queries.end()) return true;
    Query& q = it->second;
    q.scores.push_back(r->scores.empty() ? 0 : r->scores[0]);
    q.relevance.push_back(value);
    if (q.relevance.size() >= q.kept) CountQuery(s, q, ndcg_k);
  }
  return true;
}

}  // namespace

absl::Status LabelJoiner::Tail() {
  std::vector<std::pair<ModelState*, int64_t>> models;
  {
    absl::MutexLock lock(&mu_);
    for (const std::shared_ptr<const RegisteredModel>& model : registry_->List()) {
      if (!model->joins_labels()) continue;
      absl::StatusOr<ModelState*> state = StateOf(model);
      if (!state.ok()) {
        internal::LogWarn("labels: cannot load a model's join state",
                          {{"model", model->label()}, {"error", state.status().ToString()}});
        continue;
      }
      models.emplace_back(*state, (*state)->tail_seq);
    }
  }
  for (auto [state, seq] : models) DW_RETURN_IF_ERROR(TailModel(*state, seq, 64));
  return absl::OkStatus();
}

absl::Status LabelJoiner::TailModel(ModelState& s, int64_t seq, int max_rounds) {
  constexpr int kChunksPerRead = 64;
  // Then commit, and go on at the next tick (memory between commits).
  constexpr size_t kMaxDirtyProfiles = 4096;
  constexpr size_t kMaxDirtyAdds = 4'000'000;
  for (int round = 0; round < max_rounds; ++round) {
    absl::StatusOr<std::vector<storage::JoinChunk>> chunks =
        store_->ReadJoinChunks(s.model->model_key(), seq, kChunksPerRead);
    if (!chunks.ok()) return chunks.status();
    if (chunks->empty()) break;
    const int64_t now = clock_->NowMs();
    absl::MutexLock lock(&mu_);
    uint64_t added = 0, joined = 0, rejected = 0, not_held = 0;
    for (const storage::JoinChunk& chunk : *chunks) {
      seq = chunk.seq;
      // Tails may overlap (the committer's, a label batch's): each chunk
      // is applied once, in seq order.
      if (chunk.seq <= s.tail_seq) continue;
      Arena& arena = s.arenas[chunk.hour_start_ms];
      std::vector<PredictionAdd>* log =
          s.kind == QualityKind::kBinary ? &s.prediction_log[chunk.hour_start_ms] : nullptr;
      absl::Status st =
          labels::ForEachChunkEntry(chunk.records, [&](uint64_t h, std::string_view bytes) {
            JoinRecord& rec = s.tail_scratch;
            if (!labels::DecodeJoinRecordInto(bytes, &rec).ok()) return;
            // Memory stays bounded: past max_join_records the oldest hours
            // leave at the next commit (Expire); with none older than this
            // one (or twice the cap reached), the record is not held.
            if (s.index.size() >= options_.max_join_records &&
                (s.arenas.begin()->first >= chunk.hour_start_ms ||
                 s.index.size() >= 2 * options_.max_join_records) &&
                !s.index.contains(h)) {
              ++not_held;
              return;
            }
            auto [it, inserted] = s.index.try_emplace(h);
            if (!inserted) return;
            Entry& e = s.FillRecord(it->second, h, bytes, rec, arena, chunk.hour_start_ms);
            ++added;
            const double w = rec.weight / s.join_rate;
            if (log != nullptr) {
              const double score =
                  rec.scores.empty() ? std::numeric_limits<double>::quiet_NaN() : rec.scores[0];
              ModelState::ForSlices(rec.slices, [&](int32_t slice) {
                log->push_back({slice, w, score});
                ++s.dirty_adds;
              });
            } else {
              ModelState::ForSlices(rec.slices, [&](int32_t slice) {
                s.Dirty(slice, chunk.hour_start_ms).AddPrediction(rec.scores, w);
              });
            }
            // A label that came first.
            if (!s.pending.empty()) {
              auto p = s.pending.find(h);
              if (p != s.pending.end()) {
                if (JoinEntry(s, h, e, p->second.value, p->second.label_time_ms, options_,
                              options_.ndcg_k)) {
                  ++joined;
                  ++TallyOf(s.SourceCountsAt(now), p->second.source).joined;
                } else {
                  ++rejected;
                }
                s.pending.erase(p);
                s.pending_changes[h] = std::nullopt;
                totals_.pending_labels.fetch_sub(1);
              }
            }
          });
      if (!st.ok()) {
        internal::LogWarn("labels: skipping a corrupt join chunk",
                          {{"model", s.model->label()},
                           {"seq", absl::StrCat(chunk.seq)},
                           {"error", st.ToString()}});
      }
      s.tail_seq = chunk.seq;
      s.progress_dirty = true;
    }
    totals_.join_records.fetch_add(added);
    if (not_held > 0) {
      s.model->label_counters().join_state_full.fetch_add(not_held);
      if (!s.warned_full) {
        s.warned_full = true;
        internal::LogWarn("labels: join state full; kept predictions are not held",
                          {{"model", s.model->label()},
                           {"max_join_records", absl::StrCat(options_.max_join_records)},
                           {"hint",
                            "lower the model's label_join_rate or raise "
                            "labels.max_join_records"}});
      }
    }
    if (joined + rejected > 0) {
      storage::LabelCounts& c = s.CountsAt(now);
      c.joined += joined;
      c.rejected += rejected;
      RegisteredModel::LabelCounters& m = s.model->label_counters();
      m.joined.fetch_add(joined);
      m.rejected.fetch_add(rejected);
      m.rejected_by_reason[static_cast<size_t>(LabelRejectReason::kBeforePrediction)].fetch_add(
          rejected);
    }
    if (s.dirty.size() > kMaxDirtyProfiles || s.dirty_adds > kMaxDirtyAdds) break;
  }
  return absl::OkStatus();
}

void LabelJoiner::Expire(ModelState& s, int64_t now_ms) {
  const int64_t cutoff = now_ms - options_.window_ms;
  uint64_t expired = 0, removed = 0;
  auto expire_front = [&]() {
    auto it = s.arenas.begin();
    const int64_t hour_start = it->first;
    for (uint64_t h : it->second.hashes) {
      auto e = s.index.find(h);
      if (e == s.index.end()) continue;
      if (const JoinRecord* r = s.Record(e->second); r != nullptr) {
        if (!e->second.labelled) {
          ++expired;
          const double w = r->weight / s.join_rate;
          ModelState::ForSlices(r->slices,
                                [&](int32_t slice) { s.Dirty(slice, hour_start).AddExpired(w); });
        }
        if (s.ranked) {
          auto q = s.queries.find(r->query_hash);
          if (q != s.queries.end() && q->second.last_hour_ms <= hour_start) {
            CountQuery(s, q->second, options_.ndcg_k);
            s.queries.erase(q);
          }
        }
      }
      s.index.erase(e);
      ++removed;
    }
    s.expire_join_before_ms = std::max(s.expire_join_before_ms, hour_start + kHourMs);
    s.expire_dirty = true;
    s.arenas.erase(it);
  };
  while (!s.arenas.empty() && s.arenas.begin()->first + kHourMs <= cutoff) expire_front();
  while (s.arenas.size() > 1 && s.index.size() > options_.max_join_records) expire_front();
  if (s.expire_dirty) {
    s.expire_log_before_ms = std::max(
        s.expire_log_before_ms,
        cutoff - kHourMs - std::max(options_.max_clock_skew_ms, options_.max_future_skew_ms));
  }
  // Labels that waited too long for their prediction.
  uint64_t orphaned = 0;
  while (!s.pending_order.empty() &&
         s.pending_order.front().first < now_ms - options_.pending_ttl_ms) {
    const auto [received, h] = s.pending_order.front();
    s.pending_order.pop_front();
    auto p = s.pending.find(h);
    if (p == s.pending.end() || p->second.received_ms != received) continue;
    ++TallyOf(s.SourceCountsAt(now_ms), p->second.source).orphan;
    s.pending.erase(p);
    s.pending_changes[h] = std::nullopt;
    ++orphaned;
  }
  if (expired + orphaned > 0) {
    storage::LabelCounts& c = s.CountsAt(now_ms);
    c.expired += expired;
    c.orphan += orphaned;
  }
  s.model->label_counters().expired.fetch_add(expired);
  s.model->label_counters().orphan.fetch_add(orphaned);
  totals_.join_records.fetch_sub(removed);
  totals_.pending_labels.fetch_sub(orphaned);
}

namespace {

// Calls fn(slice, adds of that slice in their order) for each slice in
// `adds` (a stable counting sort by slice id; ids are small and dense).
template <typename Fn>
void GroupBySlice(const std::vector<PredictionAdd>& adds, Fn&& fn) {
  if (adds.empty()) return;
  int32_t max_slice = 0;
  bool negative = false;
  for (const PredictionAdd& a : adds) {
    max_slice = std::max(max_slice, a.slice);
    negative = negative || a.slice < 0;
  }
  std::vector<PredictionAdd> sorted;
  sorted.resize(adds.size());
  if (negative || max_slice > (1 << 22)) {
    sorted = adds;
    std::stable_sort(
        sorted.begin(), sorted.end(),
        [](const PredictionAdd& a, const PredictionAdd& b) { return a.slice < b.slice; });
  } else {
    std::vector<uint32_t> start(static_cast<size_t>(max_slice) + 2, 0);
    for (const PredictionAdd& a : adds) ++start[static_cast<size_t>(a.slice) + 1];
    for (size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
    for (const PredictionAdd& a : adds) sorted[start[static_cast<size_t>(a.slice)]++] = a;
  }
  size_t i = 0;
  while (i < sorted.size()) {
    size_t j = i;
    while (j < sorted.size() && sorted[j].slice == sorted[i].slice) ++j;
    fn(sorted[i].slice, std::span<const PredictionAdd>(sorted.data() + i, j - i));
    i = j;
  }
}

}  // namespace

absl::Status LabelJoiner::FlushNow() {
  absl::MutexLock commit_lock(&commit_mu_);
  absl::Status tail = Tail();
  if (!tail.ok()) {
    internal::LogWarn("labels: cannot read new join state", {{"error", tail.ToString()}});
  }
  storage::LabelCommit commit;
  // Completed and serialized after mu_ is released: label batches go on
  // meanwhile.
  struct Taken {
    int64_t key;
    QualityKind kind;
    int classes;
    absl::flat_hash_map<std::pair<int32_t, int64_t>, std::unique_ptr<QualityDelta>> dirty;
    absl::flat_hash_map<int64_t, std::vector<PredictionAdd>> prediction_log;
  };
  std::vector<Taken> taken;
  uint64_t covered = 0;
  {
    absl::MutexLock lock(&mu_);
    const int64_t now = clock_->NowMs();
    for (auto& [key, state] : states_) {
      ModelState& s = *state;
      Expire(s, now);
      if (s.log.size() > 0) {
        commit.log.push_back({0, key, now, std::move(s.log).Finish()});
        s.log = base::ByteWriter();
      }
      if (!s.dirty.empty() || !s.prediction_log.empty()) {
        taken.push_back({key, s.kind, s.classes, std::move(s.dirty), std::move(s.prediction_log)});
      }
      s.dirty.clear();
      s.prediction_log.clear();
      s.dirty_adds = 0;
      for (auto& [h, change] : s.pending_changes) {
        if (change) {
          commit.pending_upserts.push_back({key, h, change->value, change->label_time_ms,
                                            change->received_ms, s.source_names[change->source]});
        } else {
          commit.pending_deletes.push_back({key, h});
        }
      }
      s.pending_changes.clear();
      for (auto& [minute, c] : s.counts) commit.counts.push_back(c);
      s.counts.clear();
      for (const auto& [minute, by_source] : s.source_counts) {
        for (size_t i = 0; i < by_source.size(); ++i) {
          const SourceTally& t = by_source[i];
          if (t.joined + t.orphan + t.pending == 0) continue;
          commit.source_counts.push_back(
              {key, minute, s.source_names[i], t.joined, t.orphan, t.pending});
        }
      }
      s.source_counts.clear();
      if (s.progress_dirty) commit.progress.push_back({key, s.tail_seq});
      s.progress_dirty = false;
      if (s.expire_dirty) {
        commit.expire.push_back({key, s.expire_join_before_ms, s.expire_log_before_ms});
      }
      s.expire_dirty = false;
    }
    covered = applied_seq_;
  }
  for (Taken& t : taken) {
    for (auto& [hour_start, adds] : t.prediction_log) {
      const int64_t hour = hour_start;  // a lambda cannot capture a binding in C++20
      GroupBySlice(adds, [&](int32_t slice, std::span<const PredictionAdd> run) {
        std::unique_ptr<QualityDelta>& d = t.dirty[{slice, hour}];
        if (d == nullptr) d = std::make_unique<QualityDelta>(t.kind, t.classes);
        for (const PredictionAdd& a : run) {
          d->AddPrediction(std::span<const double>(&a.score, 1), a.weight);
        }
      });
    }
    t.prediction_log.clear();
    for (auto& [slice_hour, delta] : t.dirty) {
      commit.quality_merges.push_back(
          {t.key, slice_hour.first, slice_hour.second, delta->Serialize()});
    }
  }
  taken.clear();
  if (!commit.empty()) unsent_.push_back(std::move(commit));
  absl::Status status = absl::OkStatus();
  while (!unsent_.empty()) {
    status = store_->CommitLabels(unsent_.front());
    if (!status.ok()) break;
    unsent_.erase(unsent_.begin());
    totals_.commits.fetch_add(1);
  }
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    durable_seq_ = std::max(durable_seq_, covered);
    last_error_ = absl::OkStatus();
  } else {
    totals_.commit_failures.fetch_add(1);
    last_error_ = status;
    internal::LogWarn("labels: commit failed (retried)", {{"error", status.ToString()}});
  }
  return status;
}

absl::Status LabelJoiner::WaitDurable(uint64_t seq, int64_t timeout_ms) {
  absl::MutexLock lock(&mu_);
  wake_ = true;
  auto done = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return durable_seq_ >= seq; };
  const bool ok = mu_.AwaitWithTimeout(absl::Condition(&done), absl::Milliseconds(timeout_ms));
  if (ok) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("labels were not committed within ", timeout_ms, " ms",
                   last_error_.ok() ? std::string() : absl::StrCat(": ", last_error_.message())));
}

void LabelJoiner::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    base::SetCurrentThreadName("dw-labels");
    Run();
  });
}

void LabelJoiner::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), absl::Milliseconds(options_.flush_interval_ms));
      if (stopping_) return;
      wake_ = false;
    }
    FlushNow().IgnoreError();  // logged; retried at the next tick
  }
}

void LabelJoiner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  FlushNow().IgnoreError();
}

}  // namespace driftwatch::service
