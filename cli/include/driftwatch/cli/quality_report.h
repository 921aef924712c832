// The output of `driftctl quality --model`: a Reports.GetQualityReport
// answer as JSON or text, apart from the RPC so that it is testable on a
// hand-built report.
#pragma once

#include <ostream>

#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::cli {

// One line of JSON. The metrics keep the keys of offline `quality --json`
// ("n" is the labelled weight; "auc", "ece", "mce", "brier", "reliability"
// of {bin, mean_score, mean_label, count} over the non-empty bins, "ndcg"),
// each present only when the report has it (has_auc, has_calibration,
// has_ndcg, ...), plus the window, slice, coverage, label delay, estimate,
// baseline and counts (docs/driftctl.md, "quality (online)").
void WriteQualityReportJson(const v1::QualityReport& report, std::ostream& out);

// The header (model, slice, window, baseline), label coverage and delay,
// a table of the metrics against the baseline, the estimate for the
// unlabelled predictions, the counts and the reliability table.
void WriteQualityReportText(const v1::QualityReport& report, std::ostream& out);

}  // namespace driftwatch::cli
