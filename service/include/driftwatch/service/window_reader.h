// Reading windows of committed buckets: which levels cover an event-time
// window (hour rows for closed whole hours, minute rows for the rest) and
// the merge of their profiles per slice. Reads committed data only, so a
// window reflects every acked event. Read plan: docs/reports.md.
#pragma once

#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/storage/bucket_store.h"
#include "driftwatch/storage/model_store.h"
#include "driftwatch/v1/common.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace driftwatch::service {

// [start_ms, end_ms) in event time.
struct Interval {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// Timestamps <-> Unix milliseconds.
int64_t ToMs(const google::protobuf::Timestamp& ts);
void SetMs(int64_t ms, google::protobuf::Timestamp* ts);
void SetRange(const Interval& in, v1::TimeRange* out);

// A range as sent. INVALID_ARGUMENT naming `field` when it is out of range,
// negative or empty.
absl::StatusOr<Interval> CheckedRange(const v1::TimeRange& range, std::string_view field);
// Widened to whole buckets of `width_ms`.
Interval Align(Interval in, int64_t width_ms);
// The last `length_ms` ending at `end_ms`, clamped at the epoch.
Interval Trailing(int64_t end_ms, int64_t length_ms);
// The trailing window of whole buckets a `last N` request means: it ends at
// the end of the bucket holding `end_ms` (so the open bucket's events are
// in) and spans `length_ms` rounded up to whole buckets of `width_ms`, so
// `last 20 min` is exactly twenty one-minute buckets, not the twenty-one
// that aligning [end - 20 min, end) outward would give. Clamped at the epoch.
Interval TrailingBuckets(int64_t end_ms, int64_t length_ms, int64_t width_ms);

// The longest window or trailing length accepted, in seconds.
inline constexpr int64_t kMaxWindowSeconds = 100LL * 366 * 86'400;

// Profiles by slice id.
using SliceProfiles = std::map<int32_t, detectors::Profile>;

// Thread-safe (the stores are).
class WindowReader {
 public:
  // Both stores must outlive the reader.
  WindowReader(storage::BucketStore* buckets, storage::ModelStore* progress,
               int64_t bucket_width_ms);

  int64_t bucket_width_ms() const { return bucket_width_ms_; }

  // The bucket-aligned window a request asks for at `now_ms`: a range
  // (widened to whole buckets), the last N seconds or (unset) the last
  // `default_ms` (TrailingBuckets). INVALID_ARGUMENT naming the field for a
  // bad one.
  absl::StatusOr<Interval> Resolve(const v1::Window& window, int64_t default_ms,
                                   int64_t now_ms) const;

  // Merges the profiles of `slices` (every slice when empty) over the
  // bucket-aligned `window`. Hours wholly inside the window come from hour
  // rows as far as they are closed; the rest (partial hours at either end,
  // minutes not yet closed) from minute rows. At most three reads; a roll-up
  // committed meanwhile makes the plan stale, and the read is redone.
  // DATA_LOSS naming the bucket for a row that does not decode.
  absl::StatusOr<SliceProfiles> Read(const RegisteredModel& model, Interval window,
                                     const std::vector<int32_t>& slices) const;

  // What the model's traffic lost while the window's span passed on the
  // server clock: duplicates, too-late and rejected events that arrived in
  // [window.start_ms, window.end_ms) (storage::ArrivalCounts).
  absl::StatusOr<storage::ArrivalCounts> ReadArrivals(const RegisteredModel& model,
                                                      Interval window) const;

  // Events per hour by slice and hour start, from the hour rows starting
  // in [hours.start_ms, hours.end_ms), without their profiles
  // (BucketStore::ReadBucketEvents). An hour row holds its hour's closed minutes,
  // so only hours before the hour holding ClosedUntil are whole. DATA_LOSS
  // naming the bucket for a row that does not decode.
  absl::StatusOr<std::map<int32_t, std::map<int64_t, double>>> ReadHourlyEvents(
      const RegisteredModel& model, Interval hours) const;

  // Minute buckets before this are committed as closed (rolled up).
  absl::StatusOr<int64_t> ClosedUntil(int64_t model_key) const;

 private:
  storage::BucketStore* const buckets_;
  storage::ModelStore* const progress_;
  const int64_t bucket_width_ms_;
};

}  // namespace driftwatch::service
