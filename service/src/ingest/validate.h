// Value checks of one decoded event that need nothing but the event, the
// server clock and the options: an id (not over ingest.max_event_id_bytes),
// a sample rate, an event time that is set and not too far ahead. The model's state (too late, duplicate)
// is checked after these, by the applier.
#pragma once

#include <cstdint>

#include "driftwatch/service/ingest_options.h"
#include "ingest/batch_decoder.h"

namespace driftwatch::service::ingest {

// The first check `event` fails, in order: id set, id length, sample rate,
// event time set, not too far ahead. False (and `rejection` unset) when it passes them all.
bool FindRejection(const EventView& event, int64_t now_ms, const IngestOptions& options,
                   Rejection* rejection);

// True when `event` may go on; otherwise false with `rejection` set. The
// usual event passes without leaving the caller.
inline bool ValidateEvent(const EventView& event, int64_t now_ms, const IngestOptions& options,
                          Rejection* rejection) {
  const bool valid = !event.event_id.empty() &&
                     event.event_id.size() <= options.max_event_id_bytes && event.sample_rate > 0 &&
                     event.sample_rate <= 1 && event.event_time_ms > 0 &&
                     event.event_time_ms <= now_ms + options.max_future_skew_ms;
  return valid || !FindRejection(event, now_ms, options, rejection);
}

}  // namespace driftwatch::service::ingest
