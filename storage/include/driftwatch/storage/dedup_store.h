// The event-id hashes accepted into each minute bucket, kept for the
// backfill horizon (the minute-row retention), so that a restarted service
// still recognises a retried event and a replayed history is deduplicated
// against what its buckets already hold (docs/formats/sqlite_schema.md,
// table dedup).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::storage {

// Hashes of event ids accepted into one minute bucket since the last
// flush: little-endian u64 each (base::ByteWriter::U64s).
struct DedupChunk {
  int64_t model_key = 0;
  int64_t bucket_start_ms = 0;
  std::string hashes;
};

// Thread-safe.
class DedupStore {
 public:
  virtual ~DedupStore() = default;

  // Dedup hashes of buckets starting in [from_bucket_ms, to_bucket_ms), one
  // entry per stored chunk, ordered by bucket_start then insertion order.
  virtual absl::StatusOr<std::vector<DedupChunk>> ReadDedup(
      int64_t model_key, int64_t from_bucket_ms,
      int64_t to_bucket_ms = std::numeric_limits<int64_t>::max()) = 0;
};

}  // namespace driftwatch::storage
