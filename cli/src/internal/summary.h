// The feature summary shared by the `stats` text table and the HTML report,
// so both show the same columns, order and number formatting.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "driftwatch/cli/compare.h"
#include "driftwatch/detectors/quality.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli::internal {

inline constexpr std::string_view kDriftRule =
    "drifted: PSI >= 0.2, or KS p < 0.05 and W1/sd >= 0.1 (numeric), "
    "or chi2 p < 0.05 and JS >= 0.1 (categorical)";

// Column titles of the summary table.
const std::vector<std::string>& SummaryHeader();

// One row of cells per feature, in SummaryHeader() order; "-" where a
// statistic does not apply. The feature name is given raw (not escaped).
std::vector<std::string> SummaryCells(const FeatureReport& feature);

// Features sorted by PSI, descending (ties keep file order).
std::vector<const FeatureReport*> SortedByPsi(const std::vector<FeatureReport>& features);
inline std::vector<const FeatureReport*> SortedByPsi(const DatasetComparison& comparison) {
  return SortedByPsi(comparison.features);
}

// Rows of cells as aligned columns, two blanks apart: the first
// `text_columns` left-aligned, the rest right-aligned; no trailing blanks.
void WriteColumns(const std::vector<std::vector<std::string>>& rows, size_t text_columns,
                  std::ostream& out);

// The summary table (`stats` without --json, and `report` online): one row
// per feature sorted by PSI, drifted ones marked "*", then the rule.
void WriteSummaryTable(const std::vector<FeatureReport>& features, std::ostream& out);

// One feature's record of `stats --json`.
nlohmann::ordered_json FeatureJson(const FeatureReport& feature);

const char* KindName(FeatureKind kind);

// The reliability curve of `quality` (offline and online): one JSON record
// {bin, mean_score, mean_label, count} per bin, and the text table after a
// blank line. Defined in quality.cc.
nlohmann::ordered_json ReliabilityJson(const std::vector<detectors::ReliabilityBin>& bins);
void WriteReliabilityTable(const std::vector<detectors::ReliabilityBin>& bins, std::ostream& out);

// Compact number formatting: integers without decimals, else %.4g.
std::string FormatNumber(double x);

// Prints "driftctl: <line>" on `err` for each line of the message and
// returns kExitBadInput.
int ReportError(std::ostream& err, const absl::Status& status);

}  // namespace driftwatch::cli::internal
