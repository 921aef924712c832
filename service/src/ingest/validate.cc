#include "ingest/validate.h"

#include "absl/strings/str_cat.h"

namespace driftwatch::service::ingest {

bool FindRejection(const EventView& e, int64_t now_ms, const IngestOptions& options,
                   Rejection* rejection) {
  if (e.event_id.empty()) {
    *rejection = {RejectReason::kMissingEventId, "event_id is empty"};
    return true;
  }
  if (e.event_id.size() > options.max_event_id_bytes) {
    *rejection = {RejectReason::kEventIdTooLong,
                  absl::StrCat("event_id is ", e.event_id.size(),
                               " bytes, longer than ingest.max_event_id_bytes (",
                               options.max_event_id_bytes, ")")};
    return true;
  }
  if (!(e.sample_rate > 0 && e.sample_rate <= 1)) {
    *rejection = {RejectReason::kInvalidSampleRate,
                  absl::StrCat("sample_rate must be in (0, 1], got ", e.sample_rate)};
    return true;
  }
  if (e.event_time_ms <= 0) {
    *rejection = {RejectReason::kMissingEventTime, "event_time_ms must be > 0"};
    return true;
  }
  if (e.event_time_ms > now_ms + options.max_future_skew_ms) {
    *rejection = {RejectReason::kEventTimeInFuture,
                  absl::StrCat("event_time_ms ", e.event_time_ms, " is more than ",
                               options.max_future_skew_ms, " ms ahead of the server clock")};
    return true;
  }
  return false;
}

}  // namespace driftwatch::service::ingest
