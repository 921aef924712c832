#include "driftwatch/storage/bucket_store.h"

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/detectors/profile.h"

namespace driftwatch::storage {

absl::StatusOr<uint64_t> EventsOfProfile(int64_t model_key, Level level, int64_t bucket_start_ms,
                                         int32_t slice_id, std::string_view profile) {
  absl::StatusOr<detectors::ProfileCounters> c = detectors::Profile::PeekCounters(profile);
  if (!c.ok()) {
    return absl::DataLossError(absl::StrCat("bucket row of model ", model_key, " level ",
                                            static_cast<int>(level), " bucket ", bucket_start_ms,
                                            " slice ", slice_id, ": ", c.status().message()));
  }
  return c->events;
}

absl::StatusOr<std::vector<BucketEvents>> BucketStore::ReadBucketEvents(int64_t model_key,
                                                                        Level level,
                                                                        int64_t start_ms,
                                                                        int64_t end_ms) {
  DW_ASSIGN_OR_RETURN(std::vector<BucketRow> rows,
                      ReadBuckets(model_key, level, start_ms, end_ms, {}));
  std::vector<BucketEvents> out;
  out.reserve(rows.size());
  for (const BucketRow& row : rows) {
    DW_ASSIGN_OR_RETURN(uint64_t events, EventsOfProfile(model_key, level, row.bucket_start_ms,
                                                         row.slice_id, row.profile));
    out.push_back({row.bucket_start_ms, row.slice_id, events});
  }
  return out;
}

}  // namespace driftwatch::storage
