// What a kept prediction keeps for its label (issue 9's join state): only
// what the quality summaries of its bucket and slices need, compact. The
// record is stored under the hash of its event id (the dedup hash), in
// the event-id index that ingest's dedup already keeps per model.
// Format: docs/formats/join_state.md. Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace driftwatch::service::labels {

struct JoinRecord {
  enum class Scores : uint8_t {
    kOne = 0,         // one score, kept as f64 (binary, regression, ranking)
    kClassProbs = 1,  // one probability per class, kept as f32
  };
  int64_t event_time_ms = 0;  // of the prediction: its bucket, and the label delay
  double weight = 1.0;        // 1 / sample_rate
  std::vector<uint32_t> slices;  // one slice id per slice key, in key order
  Scores kind = Scores::kOne;
  std::vector<double> scores;  // kOne: exactly one; kClassProbs: one per class
  bool ranked = false;         // a ranker's row: query and position below
  uint64_t query_hash = 0;     // hash of query_id
  uint32_t position = 0;

  bool operator==(const JoinRecord&) const = default;
};

// The same fields by reference, for ingest's hot path (no allocation).
struct JoinRecordRef {
  int64_t event_time_ms = 0;
  double weight = 1.0;
  std::span<const int32_t> slices;
  JoinRecord::Scores kind = JoinRecord::Scores::kOne;
  std::span<const double> scores;
  bool ranked = false;
  uint64_t query_hash = 0;
  uint32_t position = 0;
};
void EncodeJoinRecord(const JoinRecordRef& record, std::string* out);

// A join chunk (storage::JoinChunk::records) frames each record as
// [u64 event-id hash, little-endian][varint length][record].
void AppendChunkEntry(uint64_t hash, const JoinRecordRef& record, std::string* chunk);
// Calls fn(hash, record bytes) for each entry; DATA_LOSS on bad framing.
absl::Status ForEachChunkEntry(std::string_view chunk,
                               absl::FunctionRef<void(uint64_t, std::string_view)> fn);

// Appends the record's bytes to `out`. Class probabilities are rounded to
// f32 (a relative 6e-8: a probability moves to a neighbouring calibration
// bin only within that of an edge); everything else is kept exactly.
void EncodeJoinRecord(const JoinRecord& record, std::string* out);

// DATA_LOSS naming what is wrong for truncated or corrupt bytes (trailing
// bytes included).
absl::StatusOr<JoinRecord> DecodeJoinRecord(std::string_view bytes);
// The same into `*out`, reusing its vectors (the joiner's hot path); on an
// error `*out` is left partly written.
absl::Status DecodeJoinRecordInto(std::string_view bytes, JoinRecord* out);

}  // namespace driftwatch::service::labels
