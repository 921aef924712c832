// Registered model versions, their slices and their ingest progress.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace driftwatch::storage {

struct ModelRecord {
  int64_t model_key = 0;  // assigned by the store, > 0
  std::string model_id;
  std::string model_version;
  std::string schema;  // serialized driftwatch.v1.ModelSchema
  int64_t registered_at_ms = 0;
  int64_t watermark_ms = 0;     // max accepted event time
  int64_t closed_until_ms = 0;  // minute buckets starting before this are closed and rolled up
  // The summary edges the registry resolved for this version when it was
  // registered (its own encoding, docs/formats/sqlite_schema.md), so that
  // a later build or option drawing edges differently still reads the
  // stored profiles. Empty for a version registered before v3.
  std::string resolved_edges;
};

struct SliceRecord {
  int64_t model_key = 0;
  int32_t slice_id = 0;    // 0 is the whole population "*"
  int32_t key_index = -1;  // index into the schema's slice keys; -1 for "*"
  std::string value;
};

// How far a model's committed buckets have come.
struct ModelProgress {
  int64_t watermark_ms = 0;
  int64_t closed_until_ms = 0;
};

// Thread-safe.
class ModelStore {
 public:
  virtual ~ModelStore() = default;

  // Registers a model version. Same id and version with the same schema:
  // returns the stored record. A different schema: ALREADY_EXISTS.
  // `model_id` must be non-empty (INVALID_ARGUMENT). A new record stores the
  // caller's registered_at_ms / watermark_ms / closed_until_ms as given.
  virtual absl::StatusOr<ModelRecord> PutModel(const ModelRecord& model) = 0;
  // Ordered by model_key.
  virtual absl::StatusOr<std::vector<ModelRecord>> ListModels() = 0;
  // Ordered by slice_id; empty for an unknown model.
  virtual absl::StatusOr<std::vector<SliceRecord>> ListSlices(int64_t model_key) = 0;
  // The committed progress of a model; NOT_FOUND for an unknown key.
  virtual absl::StatusOr<ModelProgress> ReadProgress(int64_t model_key) = 0;
  // Replaces a version's resolved_edges (its learned edges), durably.
  // NOT_FOUND for an unknown key.
  virtual absl::Status UpdateResolvedEdges(int64_t model_key, const std::string& edges) = 0;
};

}  // namespace driftwatch::storage
