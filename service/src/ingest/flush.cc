#include "ingest/flush.h"

#include <algorithm>
#include <optional>
#include <span>

#include "absl/strings/str_cat.h"

#include "driftwatch/storage/bucket_store.h"
#include "ingest/dedup.h"
#include "internal/log.h"

namespace driftwatch::service::ingest {
namespace {

using detectors::Profile;
using detectors::ProfileAccumulator;

// "*" of a bucket of a model with slice keys: the merge of the first key's
// slices (every event is in exactly one of them, "__missing__" and
// "__other__" included), at a quarter less work per event with 3 keys.
// nullopt when the bucket has none.
std::optional<std::string> PopulationProfile(const FlushSnapshot& snap, size_t bucket) {
  const FlushSnapshot::Bucket& b = snap.buckets[bucket];
  std::optional<Profile> all;
  for (const auto& [value, id] : snap.first_key) {
    if (static_cast<size_t>(id) >= b.slices.size() || !b.slices[id]) continue;
    if (!all) all.emplace(snap.layout);
    // Same layout by construction; a failure would be a bug, not bad input.
    (void)all->Merge(b.slices[id]->ToProfile());
  }
  if (!all) return std::nullopt;
  return all->Serialize();
}

// Takes one open bucket's dirty profiles (copies) or, when it closes, all
// of them (moved).
void TakeProfiles(OpenBucket& bucket, const FlushSnapshot& snap,
                  const std::vector<int32_t>& key_indexes, FlushSnapshot::Bucket* b) {
  b->slices.resize(bucket.slices.size());
  for (size_t id = snap.derived_all ? 1 : 0; id < bucket.slices.size(); ++id) {
    if (!bucket.dirty[id] || !bucket.slices[id]) continue;
    bucket.dirty[id] = 0;
    b->dirty.push_back(static_cast<int32_t>(id));
    if (id < key_indexes.size() && key_indexes[id] == 0) b->population_dirty = true;
  }
  if (b->closing) {
    for (size_t id = 0; id < bucket.slices.size(); ++id) b->slices[id] = std::move(bucket.slices[id]);
    return;
  }
  for (int32_t id : b->dirty) {
    b->slices[id] = std::make_unique<ProfileAccumulator>(bucket.slices[id]->Clone());
  }
  if (!b->population_dirty) return;
  for (const auto& [value, id] : snap.first_key) {
    if (static_cast<size_t>(id) < bucket.slices.size() && bucket.slices[id] && !b->slices[id]) {
      b->slices[id] = std::make_unique<ProfileAccumulator>(bucket.slices[id]->Clone());
    }
  }
}

// The ids of a bucket accepted since the last collect, as one chunk.
void CollectIds(BucketIds& ids, int64_t model_key, int64_t start, uint64_t collect,
                storage::FlushBatch* batch) {
  if (ids.collected == ids.hashes.size()) return;
  batch->dedup.push_back(storage::DedupChunk{
      model_key, start, EncodeEventIds(std::span(ids.hashes).subspan(ids.collected))});
  ids.collected = ids.hashes.size();
  ids.collect_seq = collect;
}

// Keeps the model's dedup ids within max_dedup_ids: evicts closed buckets
// whose ids are durable, least recently used first; if the open buckets
// alone hold more, closes the oldest of them early (their ids are evicted
// by a later flush, once committed).
void BoundDedupIds(ModelIngestState& state, const IngestOptions& options,
                   const CollectContext& context, IngestTotals* totals)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  const uint64_t cap = options.max_dedup_ids;
  if (state.ids.size() <= cap) return;
  struct Candidate {
    uint64_t touched;
    int64_t start;
  };
  std::vector<Candidate> candidates;
  uint64_t pending = 0;  // ids of closed buckets not yet evictable
  for (const auto& [start, ids] : state.bucket_ids) {
    if (start >= state.closed_until_ms) continue;
    if (ids.collected == ids.hashes.size() && ids.collect_seq <= context.committed &&
        !state.backfill.contains(start)) {
      candidates.push_back({ids.touched, start});
    } else {
      pending += ids.hashes.size();
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.touched != b.touched ? a.touched < b.touched : a.start < b.start;
  });
  for (const Candidate& c : candidates) {
    if (state.ids.size() <= cap) break;
    state.EvictBucketIds(state.bucket_ids.find(c.start));
    ++totals->evicted_buckets;
  }
  uint64_t open_ids = state.ids.size() - std::min<uint64_t>(pending, state.ids.size());
  for (auto it = state.buckets.begin(); open_ids > cap && it != state.buckets.end(); ++it) {
    const size_t held = it->second.ids != nullptr ? it->second.ids->hashes.size() : 0;
    open_ids -= std::min<uint64_t>(held, open_ids);
    state.closed_until_ms = std::max(state.closed_until_ms, it->first + options.bucket_width_ms);
    state.progress_dirty = true;
    ++totals->early_closes;
    internal::LogWarn("dedup id cap reached: closed the oldest open bucket early",
                      {{"model_key", absl::StrCat(state.model->model_key())},
                       {"bucket_start_ms", absl::StrCat(it->first)},
                       {"bucket_ids", absl::StrCat(held)},
                       {"max_dedup_ids", absl::StrCat(cap)}});
  }
}

}  // namespace

void CollectFlush(ModelIngestState& state, const IngestOptions& options,
                  const CollectContext& context, IngestTotals* totals,
                  storage::FlushBatch* batch, FlushSnapshot* snap) {
  const RegisteredModel& model = *state.model;
  const int64_t key = model.model_key();
  state.Quiesce();
  for (storage::SliceRecord& s : state.new_slices) batch->new_slices.push_back(std::move(s));
  state.new_slices.clear();
  snap->model_key = key;
  snap->layout = model.layout();
  snap->derived_all = model.slice_key_count() > 0;
  std::vector<int32_t> key_indexes;
  if (snap->derived_all) {
    snap->first_key = model.slices().SlicesOfKey(0);
    key_indexes = model.slices().KeyIndexes();
  }
  BoundDedupIds(state, options, context, totals);
  const int64_t close_clock = std::max(state.watermark_ms, context.now_ms);
  for (auto it = state.buckets.begin(); it != state.buckets.end();) {
    const int64_t start = it->first;
    OpenBucket& bucket = it->second;
    FlushSnapshot::Bucket& b = snap->buckets.emplace_back();
    b.start = start;
    // Closed early (max_dedup_ids), or by time: rolled into its hour and
    // day. Its ids stay (in memory until evicted, and in storage).
    b.closing = start < state.closed_until_ms ||
                start + options.bucket_width_ms + options.allowed_lateness_ms <= close_clock;
    TakeProfiles(bucket, *snap, key_indexes, &b);
    if (bucket.ids != nullptr) CollectIds(*bucket.ids, key, start, context.collect, batch);
    if (!b.closing) {
      ++it;
      continue;
    }
    state.closed_until_ms = std::max(state.closed_until_ms, start + options.bucket_width_ms);
    state.progress_dirty = true;
    it = state.buckets.erase(it);
  }
  for (auto& [start, delta] : state.backfill) {
    FlushSnapshot::Bucket& b = snap->buckets.emplace_back();
    b.start = start;
    b.closing = true;  // takes every profile
    b.delta = true;
    TakeProfiles(delta, *snap, key_indexes, &b);
    CollectIds(*delta.ids, key, start, context.collect, batch);
  }
  state.backfill.clear();
  for (storage::RawEventRow& row : state.raw) batch->raw_events.push_back(std::move(row));
  state.raw.clear();
  for (auto& [hour, records] : state.join_out) {
    batch->join_chunks.push_back({0, key, hour, std::move(records)});
  }
  state.join_out.clear();
  for (auto& [minute, counts] : state.arrivals) batch->arrivals.push_back(counts);
  state.arrivals.clear();
  for (; state.held_collected < state.held.size(); ++state.held_collected) {
    batch->pending_events.push_back({key, static_cast<int64_t>(state.held_collected),
                                     state.held[state.held_collected]});
  }
  if (state.clear_held) {
    batch->clear_pending.push_back(key);
    state.clear_held = false;
  }
  if (state.progress_dirty) {
    batch->progress.push_back({key, state.watermark_ms, state.closed_until_ms});
    state.progress_dirty = false;
  }
  state.PublishProgress();
}

void EncodeFlush(const FlushSnapshot& snap, storage::FlushBatch* batch) {
  using storage::BucketRow;
  using storage::Level;
  const int64_t key = snap.model_key;
  auto roll_up = [&](int64_t start, int32_t slice, std::string bytes) {
    batch->rollups.push_back(BucketRow{key, Level::kHour,
                                       storage::BucketStart(start, storage::kHourMs), slice, bytes});
    batch->rollups.push_back(BucketRow{key, Level::kDay, storage::BucketStart(start, storage::kDayMs),
                                       slice, std::move(bytes)});
  };
  bool rolls_up = false;
  for (size_t i = 0; i < snap.buckets.size(); ++i) {
    const FlushSnapshot::Bucket& b = snap.buckets[i];
    rolls_up |= b.closing;
    if (b.delta) {
      // Every row of a delta merges into what is stored: minute, hour, day.
      if (snap.derived_all) {
        if (std::optional<std::string> all = PopulationProfile(snap, i)) {
          batch->minute_merges.push_back(BucketRow{key, Level::kMinute, b.start, 0, *all});
          roll_up(b.start, 0, *std::move(all));
        }
      }
      for (size_t id = snap.derived_all ? 1 : 0; id < b.slices.size(); ++id) {
        if (!b.slices[id]) continue;
        std::string bytes = b.slices[id]->Serialize();
        batch->minute_merges.push_back(
            BucketRow{key, Level::kMinute, b.start, static_cast<int32_t>(id), bytes});
        roll_up(b.start, static_cast<int32_t>(id), std::move(bytes));
      }
      continue;
    }
    if (snap.derived_all && (b.population_dirty || b.closing)) {
      std::optional<std::string> all = PopulationProfile(snap, i);
      if (all && b.population_dirty) {
        batch->minute_upserts.push_back(BucketRow{key, Level::kMinute, b.start, 0, *all});
      }
      if (all && b.closing) roll_up(b.start, 0, *std::move(all));
    }
    for (int32_t id : b.dirty) {
      batch->minute_upserts.push_back(
          BucketRow{key, Level::kMinute, b.start, id, b.slices[id]->Serialize()});
    }
    if (!b.closing) continue;
    for (size_t id = snap.derived_all ? 1 : 0; id < b.slices.size(); ++id) {
      if (b.slices[id]) roll_up(b.start, static_cast<int32_t>(id), b.slices[id]->Serialize());
    }
  }
  // The store merges this model's roll-ups into stored rows with its layout.
  if (rolls_up) batch->layouts[key] = snap.layout;
}

}  // namespace driftwatch::service::ingest
