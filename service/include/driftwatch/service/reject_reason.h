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
  kFeatureHashTooLong,
};

// Indexed by RejectReason.
inline constexpr std::array<std::string_view, 17> kRejectReasonNames = {
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
    "feature_hash_too_long",
};
static_assert(kRejectReasonNames.size() ==
                  static_cast<size_t>(RejectReason::kFeatureHashTooLong) + 1,
              "one name per reason");

constexpr std::string_view RejectReasonName(RejectReason reason) {
  return kRejectReasonNames[static_cast<size_t>(reason)];
}

// Why the label join rejects a label (LabelAck.reasons[].reason, the
// `reason` label of driftwatch_labels_rejected_total; docs/labels.md).
enum class LabelRejectReason : uint8_t {
  kMissingEventId,
  kEventIdTooLong,
  kInvalidValue,
  kTimeInFuture,
  kBeforePrediction,
};

// Indexed by LabelRejectReason.
inline constexpr std::array<std::string_view, 5> kLabelRejectReasonNames = {
    "missing_event_id", "event_id_too_long", "invalid_label_value", "label_time_in_future",
    "label_before_prediction",
};
static_assert(kLabelRejectReasonNames.size() ==
                  static_cast<size_t>(LabelRejectReason::kBeforePrediction) + 1,
              "one name per label reason");

constexpr std::string_view LabelRejectReasonName(LabelRejectReason reason) {
  return kLabelRejectReasonNames[static_cast<size_t>(reason)];
}

}  // namespace driftwatch::service
