// The file of `driftctl labels push`: one delayed label a row, as CSV or
// JSONL, checked in full against the model before anything is sent.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/cli/csv.h"
#include "driftwatch/v1/ingest.pb.h"
#include "driftwatch/v1/models.pb.h"

namespace driftwatch::cli {

// At most this many bad rows are listed in ParseLabels' error.
inline constexpr int kMaxReportedBadRows = 10;

// The rows of `table` as labels of a model with `schema`. Columns, by name:
//   event_id                   not empty
//   value, or label            a finite number; true / false read as 1 / 0
//   label_time, label_time_ms  Unix ms or RFC 3339; empty or absent: now_ms
//   source                     optional
// Values must fit schema.label_kind(): binary 0 or 1; multiclass a class
// index (below the number of score_names when there are several);
// relevance >= 0; regression (or unspecified) any finite number. Any other
// column is ignored, with one warning on `warnings`.
// INVALID_ARGUMENT "name:1: missing column ..." when event_id or the value
// column is missing; for bad rows one line "name:LINE: column "c": what is
// wrong" per row (kMaxReportedBadRows of them, then a line counting the
// rest), so the whole file is reported at once.
absl::StatusOr<std::vector<v1::Label>> ParseLabels(const CsvTable& table,
                                                   const v1::ModelSchema& schema, int64_t now_ms,
                                                   std::ostream& warnings);

// Reads `path` (.jsonl / .ndjson: one JSON object a line, a null or absent
// key an empty cell; otherwise CSV) and parses it with ParseLabels.
// NOT_FOUND / INVALID_ARGUMENT naming the path when it cannot be read.
absl::StatusOr<std::vector<v1::Label>> ReadLabelsFile(const std::string& path,
                                                      const v1::ModelSchema& schema, int64_t now_ms,
                                                      std::ostream& warnings);

}  // namespace driftwatch::cli
