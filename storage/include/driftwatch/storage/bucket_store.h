// Bucket profiles: one serialized detectors::Profile per model, level,
// bucket start and slice. Written by FlushStore::Commit; read here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::storage {

// Bucket levels: closed minute buckets roll up into hours and days.
enum class Level : int { kMinute = 0, kHour = 1, kDay = 2 };

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int64_t kDayMs = 86'400'000;

// The start of the bucket of `width_ms` holding `t_ms`: floor to a multiple
// of the width, also for times before 1970. Every level's rows are keyed by it.
inline constexpr int64_t BucketStart(int64_t t_ms, int64_t width_ms) {
  int64_t q = t_ms / width_ms;
  if (t_ms % width_ms != 0 && t_ms < 0) --q;
  return q * width_ms;
}

// One slice's profile (serialized detectors::Profile) in one bucket.
struct BucketRow {
  int64_t model_key = 0;
  Level level = Level::kMinute;
  int64_t bucket_start_ms = 0;
  int32_t slice_id = 0;
  std::string profile;
};

// One row's event count (BucketStore::ReadBucketEvents).
struct BucketEvents {
  int64_t bucket_start_ms = 0;
  int32_t slice_id = 0;
  uint64_t events = 0;
};

// What one model's traffic lost in one minute of arrival (server clock):
// events dropped as duplicates, events too old to keep, and every
// rejected event (the too-late ones included). Counted by arrival, not
// event time: a rejected event may carry no usable time, and a too-late
// one belongs to a bucket that is gone. Commit adds them to what is stored.
struct ArrivalCounts {
  int64_t model_key = 0;
  int64_t minute_start_ms = 0;
  uint64_t duplicates = 0;
  uint64_t too_late = 0;
  uint64_t rejected = 0;
};

// The event count in a profile blob's header (checksum checked), or
// DATA_LOSS naming the row.
absl::StatusOr<uint64_t> EventsOfProfile(int64_t model_key, Level level, int64_t bucket_start_ms,
                                         int32_t slice_id, std::string_view profile);

// Thread-safe; reads see whole committed flushes only.
class BucketStore {
 public:
  virtual ~BucketStore() = default;

  // Rows of one level with bucket_start in [start_ms, end_ms), for the
  // given slices (every slice when `slices` is empty), ordered by
  // (bucket_start, slice_id). INVALID_ARGUMENT for an unknown level.
  virtual absl::StatusOr<std::vector<BucketRow>> ReadBuckets(
      int64_t model_key, Level level, int64_t start_ms, int64_t end_ms,
      const std::vector<int32_t>& slices) = 0;

  // The event count of each row of one level with bucket_start in
  // [start_ms, end_ms), every slice, ordered like ReadBuckets, without
  // the profiles where the store keeps the count beside them (SqliteStore,
  // v9). DATA_LOSS naming the row when a profile it must read instead does
  // not decode. The default reads the profiles' headers.
  virtual absl::StatusOr<std::vector<BucketEvents>> ReadBucketEvents(int64_t model_key,
                                                                     Level level,
                                                                     int64_t start_ms,
                                                                     int64_t end_ms);

  // The sum of the model's ArrivalCounts with minute_start in [start_ms,
  // end_ms) (model_key and minute_start_ms of the result are the
  // arguments'). Minutes past minute-row retention are gone.
  virtual absl::StatusOr<ArrivalCounts> ReadArrivalCounts(int64_t model_key, int64_t start_ms,
                                                          int64_t end_ms) = 0;
};

}  // namespace driftwatch::storage
