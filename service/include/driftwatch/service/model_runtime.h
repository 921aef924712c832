// What the service keeps in memory per registered model version: the
// schema, the profile layout its buckets use, and the slice directory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/storage/store.h"
#include "driftwatch/v1/models.pb.h"

namespace driftwatch::service {

using base::Sv;
using base::kAllSlice;

struct RuntimeOptions {
  uint32_t default_slice_cap = 100;  // distinct values per slice key
  size_t max_categories = 1000;      // per categorical feature and bucket
  int summary_bins = 64;             // numeric edges from a reference sample
};

// Maps (slice key, value) to a dense slice id. Slice 0 is the whole
// population. Each key holds at most its cap of distinct values; later
// values share the key's "__other__" slice. Not thread-safe: guarded by
// the owner's model lock.
// Thread safety: one owner (the model's ingest lock) calls Resolve,
// Restore, size() and record(); any thread may call Find() and Records()
// at the same time, without the owner's lock (reports must not wait for
// ingest). Lookups by the owner take no lock; a mutation takes mu_.
class SliceDirectory {
 public:
  explicit SliceDirectory(std::vector<uint32_t> caps);

  // The slice for `value` of key `key_index` ("" means missing), creating it
  // if the cap allows; a created slice is appended to `created`. Owner only.
  int32_t Resolve(int key_index, std::string_view value,
                  std::vector<storage::SliceRecord>* created, int64_t model_key);
  // Looks up an existing slice; nullopt when it was never seen. Any thread.
  std::optional<int32_t> Find(int key_index, std::string_view value) const;
  // A copy of every record, by slice id. Any thread.
  std::vector<storage::SliceRecord> Records() const;
  // Restores a persisted slice (recovery). Ids must be unique. Owner only.
  void Restore(const storage::SliceRecord& record);

  // Owner only.
  size_t size() const { return records_.size(); }
  const storage::SliceRecord& record(int32_t slice_id) const { return records_[slice_id]; }

 private:
  std::unique_ptr<std::shared_mutex> mu_ = std::make_unique<std::shared_mutex>();  // movable
  std::vector<uint32_t> caps_;
  std::vector<absl::flat_hash_map<std::string, int32_t>> by_key_;
  std::vector<storage::SliceRecord> records_;  // index = slice id
};

// Immutable after Create except for the slice directory.
class ModelRuntime {
 public:
  // INVALID_ARGUMENT naming the field when the schema is unusable (no
  // features and no scores, duplicate names, a numeric feature with
  // unsorted edges, an empty slice key ...).
  static absl::StatusOr<std::unique_ptr<ModelRuntime>> Create(int64_t model_key,
                                                              v1::ModelSchema schema,
                                                              const RuntimeOptions& options);

  int64_t model_key() const { return model_key_; }
  const v1::ModelSchema& schema() const { return schema_; }
  const std::string& label() const { return label_; }  // "id@version"
  std::shared_ptr<const detectors::ProfileLayout> layout() const { return layout_; }

  int numeric_count() const { return static_cast<int>(layout_->numeric_names.size()); }
  int categorical_count() const { return static_cast<int>(layout_->categorical_names.size()); }
  int score_count() const { return static_cast<int>(layout_->score_names.size()); }
  int slice_key_count() const { return static_cast<int>(slice_keys_.size()); }
  const std::vector<std::string>& slice_keys() const { return slice_keys_; }

  std::optional<int> NumericIndex(std::string_view name) const;
  std::optional<int> CategoricalIndex(std::string_view name) const;
  std::optional<int> SliceKeyIndex(std::string_view name) const;
  bool Nullable(bool numeric, int index) const;
  // nullptr when any value is allowed.
  const absl::flat_hash_set<std::string>* AllowedValues(int categorical_index) const;

  SliceDirectory& slices() { return slices_; }
  const SliceDirectory& slices() const { return slices_; }

 private:
  ModelRuntime() = default;

  int64_t model_key_ = 0;
  v1::ModelSchema schema_;
  std::string label_;
  std::shared_ptr<const detectors::ProfileLayout> layout_;
  std::vector<std::string> slice_keys_;
  absl::flat_hash_map<std::string, int> numeric_index_;
  absl::flat_hash_map<std::string, int> categorical_index_;
  absl::flat_hash_map<std::string, int> slice_key_index_;
  std::vector<bool> numeric_nullable_;
  std::vector<bool> categorical_nullable_;
  std::vector<std::unique_ptr<absl::flat_hash_set<std::string>>> allowed_;
  SliceDirectory slices_{{}};
};

// Default numeric summary edges when a feature declares neither edges nor a
// reference sample: 0 and +-10^(k/8) for 10^-3 .. 10^8 (a 33% wide bin per
// step), so any value has a bin within a fixed relative resolution.
std::vector<double> DefaultNumericEdges();

}  // namespace driftwatch::service
