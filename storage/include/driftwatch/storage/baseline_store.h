// Baseline definitions: a spec, and for uploaded profiles the profile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace driftwatch::storage {

struct BaselineRecord {
  int64_t model_key = 0;
  std::string name;
  std::string spec;     // serialized driftwatch.v1.BaselineSpec
  std::string profile;  // serialized detectors::Profile for uploaded profiles; else empty
  int64_t created_at_ms = 0;
};

// Thread-safe.
class BaselineStore {
 public:
  virtual ~BaselineStore() = default;

  // Replaces a baseline of the same name (non-empty, else INVALID_ARGUMENT).
  virtual absl::Status PutBaseline(const BaselineRecord& baseline) = 0;
  // Ordered by name.
  virtual absl::StatusOr<std::vector<BaselineRecord>> ListBaselines(int64_t model_key) = 0;
};

}  // namespace driftwatch::storage
