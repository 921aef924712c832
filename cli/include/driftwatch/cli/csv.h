// A small RFC 4180 CSV reader for driftctl's offline commands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace driftwatch::cli {

// A parsed CSV file: a header and rows that all have exactly as many fields
// as the header. Plain value type; thread-compatible.
struct CsvTable {
  std::string name;                            // file name as given, for messages
  std::vector<std::string> header;             // unique, non-empty column names
  std::vector<std::vector<std::string>> rows;  // data rows, header excluded
  std::vector<int64_t> row_lines;              // 1-based line each row starts on

  // Index of `column` in the header, or nullopt.
  std::optional<size_t> ColumnIndex(absl::string_view column) const;
};

// Parses CSV text: fields separated by ',', records by LF or CRLF; quoted
// fields may hold commas, newlines and doubled quotes; a leading UTF-8 BOM
// is dropped; blank lines are skipped. The first record is the header.
// INVALID_ARGUMENT, with a message "name:line: ..." naming the column where
// one applies, on an empty input, a header without data rows, a duplicate or
// empty column name, a row with the wrong number of fields, an unterminated
// quote, or text after a closing quote.
absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, absl::string_view name);

// Reads and parses `path` (named as given in messages). NOT_FOUND /
// INVALID_ARGUMENT when the file cannot be read.
absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path);

// Reads a whole file into memory; the error message names the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// strtod-style full parse: the whole of `text` must be a number (including
// "nan" and "inf"); empty text is not a number.
std::optional<double> ParseNumber(absl::string_view text);

}  // namespace driftwatch::cli
