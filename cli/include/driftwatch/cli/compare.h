// Per-feature drift between a reference and a current CSV file: the shared
// engine behind `driftctl stats` and `driftctl report`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/cli/csv.h"
#include "driftwatch/detectors/drift.h"

namespace driftwatch::cli {

struct CompareOptions {
  int bins = detectors::kDefaultBins;        // equal-frequency reference bins
  std::vector<std::string> categorical;      // columns forced categorical
  std::optional<std::string> weight_column;  // 1 / sample_rate per row
};

enum class FeatureKind { kNumeric, kCategorical };

struct FeatureReport {
  std::string name;
  FeatureKind kind = FeatureKind::kNumeric;
  detectors::FeatureDrift drift;
  // Weight of null (and, for numeric, NaN / +-Inf) cells over all rows.
  double null_rate_reference = 0;
  double null_rate_current = 0;
  bool drifted = false;  // detectors::IsDrifted(drift)
};

struct DatasetComparison {
  std::string reference_name;
  std::string current_name;
  size_t reference_rows = 0;
  size_t current_rows = 0;
  std::vector<FeatureReport> features;  // in the reference file's column order

  size_t drifted_count() const;
};


// Compares every column except the weight column. INVALID_ARGUMENT (message
// naming file, line and column where one applies) when the column sets
// differ, a forced-categorical or weight column does not exist, a weight is
// not a finite number > 0, bins < 1, or a numeric column has no finite
// value in one file.
absl::StatusOr<DatasetComparison> CompareTables(const CsvTable& reference, const CsvTable& current,
                                                const CompareOptions& options);

// Reads both files and compares them.
absl::StatusOr<DatasetComparison> CompareFiles(const std::string& reference_path,
                                               const std::string& current_path,
                                               const CompareOptions& options);

// Reads a weight column: every cell a finite number > 0.
absl::StatusOr<std::vector<double>> ReadWeights(const CsvTable& table, const std::string& column);

}  // namespace driftwatch::cli
