#include "ingest/flush.h"

#include <algorithm>
#include <optional>

#include "driftwatch/storage/bucket_store.h"
#include "ingest/dedup.h"

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

}  // namespace

void CollectFlush(ModelIngestState& state, const IngestOptions& options,
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
  for (auto it = state.buckets.begin(); it != state.buckets.end();) {
    const int64_t start = it->first;
    OpenBucket& bucket = it->second;
    FlushSnapshot::Bucket& b = snap->buckets.emplace_back();
    b.start = start;
    // Closed early (max_dedup_ids), or by the watermark: rolled into its
    // hour and day, its dedup ids dropped.
    b.closing = start < state.closed_until_ms ||
                start + options.bucket_width_ms + options.allowed_lateness_ms <= state.watermark_ms;
    TakeProfiles(bucket, *snap, key_indexes, &b);
    if (!bucket.new_ids.empty()) {
      batch->dedup.push_back(storage::DedupChunk{key, start, EncodeEventIds(bucket.new_ids)});
      bucket.new_ids.clear();
    }
    if (!b.closing) {
      ++it;
      continue;
    }
    state.dedup_ids -= bucket.ids.size();
    batch->drop_dedup.push_back({key, start});
    state.closed_until_ms = std::max(state.closed_until_ms, start + options.bucket_width_ms);
    state.progress_dirty = true;
    it = state.buckets.erase(it);
  }
  for (storage::RawEventRow& row : state.raw) batch->raw_events.push_back(std::move(row));
  state.raw.clear();
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
