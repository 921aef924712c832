#include "ingest/model_state.h"

#include <utility>

#include "driftwatch/base/strings.h"

namespace driftwatch::service::ingest {

using detectors::AccumulationQueue;
using detectors::ProfileAccumulator;

void OpenBucket::Set(int32_t id, std::unique_ptr<ProfileAccumulator> profile) {
  if (slices.size() <= static_cast<size_t>(id)) {
    slices.resize(id + 1);
    blocks.resize(id + 1, nullptr);
    dirty.resize(id + 1, 0);
  }
  if (slices[id] == nullptr) ++profiles;
  blocks[id] = profile->block();
  slices[id] = std::move(profile);
}

ModelIngestState::ModelIngestState(std::shared_ptr<const RegisteredModel> model_in)
    : model(std::move(model_in)),
      shape(ProfileAccumulator::Shape::Of(model->layout())),
      learning(model->learning()),
      learn_numeric(model->learning_numeric()),
      learn_scores(model->learning_scores()),
      learn_counts(learn_numeric.size() + learn_scores.size(), 0),
      slice_cache_(model->slice_key_count()),
      full_key_other_(model->slice_key_count(), -1),
      queue_(std::make_unique<AccumulationQueue>(shape)) {
  const RegisteredModel::Progress progress = model->progress();
  watermark_ms = progress.watermark_ms;
  closed_until_ms = progress.closed_until_ms;
}

void ModelIngestState::ResetShape() {
  Quiesce();
  shape = ProfileAccumulator::Shape::Of(model->layout());
  queue_ = std::make_unique<AccumulationQueue>(shape);
  absl::MutexLock lock(&spare_mu_);
  spare_.clear();
}

void ModelIngestState::EvictBucketIds(std::map<int64_t, BucketIds>::iterator it) {
  for (uint64_t h : it->second.hashes) ids.Erase(h);
  bucket_ids.erase(it);
}

int32_t ModelIngestState::ResolveSlice(int key_index, std::string_view value) {
  auto& cache = slice_cache_[key_index];
  if (auto it = cache.find(base::Sv(value)); it != cache.end()) return it->second;
  // Only this state creates the model's slices, so once a key is full every
  // value not cached is past its cap.
  if (full_key_other_[key_index] >= 0) return full_key_other_[key_index];
  const SliceDirectory::Resolved resolved = model->slices().Resolve(key_index, value);
  if (resolved.created) new_slices.push_back(model->slices().record(resolved.slice_id));
  if (resolved.capped) {
    // Not cached: a million distinct values must not grow the cache (it
    // is bounded by the caps).
    full_key_other_[key_index] = resolved.slice_id;
  } else {
    cache.emplace(std::string(value), resolved.slice_id);
  }
  return resolved.slice_id;
}

void ModelIngestState::HandOffQueue(std::vector<HandOff>* out) {
  out->push_back(HandOff{std::move(queue_), next_ticket_++});
  {
    absl::MutexLock lock(&spare_mu_);
    if (!spare_.empty()) {
      queue_ = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (queue_ == nullptr) queue_ = std::make_unique<AccumulationQueue>(shape);
}

void ModelIngestState::DrainHandOffs(std::vector<HandOff>* handoffs) {
  for (HandOff& h : *handoffs) {
    {
      absl::MutexLock lock(&drain_mu_);
      while (drained_ != h.ticket) drained_cv_.Wait(&drain_mu_);
      h.queue->Drain();
      ++drained_;
    }
    drained_cv_.SignalAll();
    absl::MutexLock lock(&spare_mu_);
    spare_.push_back(std::move(h.queue));
  }
  handoffs->clear();
}

void ModelIngestState::Quiesce() {
  absl::MutexLock lock(&drain_mu_);
  while (drained_ != next_ticket_) drained_cv_.Wait(&drain_mu_);
  queue_->Drain();
}

}  // namespace driftwatch::service::ingest
