// Unix milliseconds in human time, for messages a person reads (reject
// reasons, logs): ISO 8601 in UTC, to the millisecond.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace driftwatch::base {

// "2026-12-01T10:15:00.123Z".
inline std::string IsoTime(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

}  // namespace driftwatch::base
