// Value checks of one decoded event that need nothing but the event, the
// server clock and the options: an id, a sample rate, an event time that
// is set and not too far ahead. The model's state (too late, duplicate)
// is checked after these, by the applier.
#pragma once

#include <cstdint>

#include "driftwatch/service/ingest_options.h"
#include "ingest/batch_decoder.h"

namespace driftwatch::service::ingest {

// True when `event` may go on; otherwise false with `rejection` set.
bool ValidateEvent(const EventView& event, int64_t now_ms, const IngestOptions& options,
                   Rejection* rejection);

}  // namespace driftwatch::service::ingest
