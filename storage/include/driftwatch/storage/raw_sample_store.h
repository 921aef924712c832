// The deterministic raw-event sample (hash of event_id): what a user can
// replay or inspect, and what deletion requests reach.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::storage {

// A raw event kept by the deterministic sample (hash of event_id).
struct RawEventRow {
  int64_t model_key = 0;
  std::string event_id;
  int64_t event_time_ms = 0;
  int64_t received_at_ms = 0;
  std::string event;  // serialized driftwatch.v1.PredictionEvent
};

// An event ingest holds, whole, while its model learns summary edges
// from its first traffic (docs/ingest.md): replayed into profiles once
// they are learned, then cleared.
struct PendingEventRow {
  int64_t model_key = 0;
  int64_t seq = 0;    // per model, in arrival order
  std::string event;  // serialized driftwatch.v1.PredictionEvent
};

// Thread-safe.
class RawSampleStore {
 public:
  virtual ~RawSampleStore() = default;

  // Raw events with event_time in [start_ms, end_ms), at most `limit`
  // (> 0, else INVALID_ARGUMENT), ordered by (event_time, event_id).
  virtual absl::StatusOr<std::vector<RawEventRow>> ReadRawEvents(int64_t model_key,
                                                                 int64_t start_ms, int64_t end_ms,
                                                                 int limit) = 0;
  // Deletes raw events with these ids (user deletion requests), in one
  // transaction. Returns how many existed; unknown ids are not an error.
  virtual absl::StatusOr<int64_t> DeleteRawEvents(int64_t model_key,
                                                  const std::vector<std::string>& event_ids) = 0;
  // The model's held events (FlushBatch::pending_events not yet cleared),
  // by seq.
  virtual absl::StatusOr<std::vector<PendingEventRow>> ReadPendingEvents(int64_t model_key) = 0;
};

}  // namespace driftwatch::storage
