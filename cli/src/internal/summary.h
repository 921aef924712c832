// The feature summary shared by the `stats` text table and the HTML report,
// so both show the same columns, order and number formatting.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "driftwatch/cli/compare.h"

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
std::vector<const FeatureReport*> SortedByPsi(const DatasetComparison& comparison);

const char* KindName(FeatureKind kind);

// Compact number formatting: integers without decimals, else %.4g.
std::string FormatNumber(double x);

// Prints "driftctl: <message>" on `err` and returns kExitBadInput.
int ReportError(std::ostream& err, const absl::Status& status);

}  // namespace driftwatch::cli::internal
