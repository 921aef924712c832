// Why ingest rejects an event. The names are part of the wire contract:
// IngestAck.reasons[].reason and the `reason` label of
// driftwatch_ingest_rejected_total carry them, and clients match on them.
// docs/ingest.md lists them once, with what each means (a test keeps the
// two in step). Append new reasons; never rename one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace driftwatch::service {

enum class RejectReason : uint8_t {
  kMissingEventId,
  kInvalidSampleRate,
  kMissingEventTime,
  kEventTimeInFuture,
  kTooLate,
  kNumericCountMismatch,
  kCategoricalCountMismatch,
  kScoreCountMismatch,
  kSliceCountMismatch,
  kUnknownFeature,
  kUnknownSliceKey,
  kBadDictionaryCode,
  kEventIdTooLong,
  kCategoryTooLong,
  kSliceValueTooLong,
  kQueryIdTooLong,
};

// Indexed by RejectReason.
inline constexpr std::array<std::string_view, 16> kRejectReasonNames = {
    "missing_event_id",
    "invalid_sample_rate",
    "missing_event_time",
    "event_time_in_future",
    "too_late",
    "numeric_count_mismatch",
    "categorical_count_mismatch",
    "score_count_mismatch",
    "slice_count_mismatch",
    "unknown_feature",
    "unknown_slice_key",
    "bad_dictionary_code",
    "event_id_too_long",
    "category_too_long",
    "slice_value_too_long",
    "query_id_too_long",
};
static_assert(kRejectReasonNames.size() == static_cast<size_t>(RejectReason::kQueryIdTooLong) + 1,
              "one name per reason");

constexpr std::string_view RejectReasonName(RejectReason reason) {
  return kRejectReasonNames[static_cast<size_t>(reason)];
}

}  // namespace driftwatch::service
