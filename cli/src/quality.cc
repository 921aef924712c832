// `driftctl quality`: AUC, calibration and NDCG@k from a scored CSV file
// (`quality --model`, the server's report, is client_quality.cc).
#include "driftwatch/detectors/quality.h"

#include <cmath>
#include <ostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/cli/csv.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

using internal::ReportError;

absl::StatusOr<size_t> RequireColumn(const CsvTable& table, const std::string& column,
                                     absl::string_view flag) {
  std::optional<size_t> index = table.ColumnIndex(column);
  if (!index) {
    return absl::InvalidArgumentError(
        absl::StrCat(table.name, ":1: no column \"", column, "\" (", flag, ")"));
  }
  return *index;
}

absl::StatusOr<std::vector<double>> FiniteColumn(const CsvTable& table, size_t col) {
  std::vector<double> values;
  values.reserve(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& cell = table.rows[r][col];
    const std::optional<double> x = ParseNumber(cell);
    if (!x || !std::isfinite(*x)) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.name, ":", table.row_lines[r], ": column \"", table.header[col],
                       "\": expected a finite number, got \"", cell, "\""));
    }
    values.push_back(*x);
  }
  return values;
}

struct QualityResult {
  double n = 0;
  std::optional<double> auc;
  std::optional<detectors::CalibrationResult> calibration;
  std::optional<double> ndcg;
};

absl::StatusOr<QualityResult> ComputeQuality(const QualityOptions& o, std::ostream& err) {
  if (o.k && !o.query_column) return absl::InvalidArgumentError("--k needs --query-column");
  if (o.bins < 1) return absl::InvalidArgumentError("--bins must be >= 1");
  const int k = o.k.value_or(10);
  if (k < 1) return absl::InvalidArgumentError("--k must be >= 1");
  absl::StatusOr<CsvTable> table = ReadCsvFile(o.input);
  if (!table.ok()) return table.status();
  absl::StatusOr<size_t> score_col = RequireColumn(*table, o.score_column, "--score-column");
  if (!score_col.ok()) return score_col.status();
  absl::StatusOr<size_t> label_col = RequireColumn(*table, o.label_column, "--label-column");
  if (!label_col.ok()) return label_col.status();
  absl::StatusOr<std::vector<double>> scores = FiniteColumn(*table, *score_col);
  if (!scores.ok()) return scores.status();
  absl::StatusOr<std::vector<double>> labels = FiniteColumn(*table, *label_col);
  if (!labels.ok()) return labels.status();
  std::vector<double> weights;  // empty = unweighted
  if (o.weight_column) {
    absl::StatusOr<std::vector<double>> w = ReadWeights(*table, *o.weight_column);
    if (!w.ok()) return w.status();
    weights = std::move(*w);
  }

  QualityResult result;
  for (size_t r = 0; r < scores->size(); ++r) result.n += weights.empty() ? 1.0 : weights[r];

  // Binary metrics need 0/1 labels; graded relevance is for NDCG only.
  std::optional<size_t> non_binary_row;
  for (size_t r = 0; r < labels->size() && !non_binary_row; ++r) {
    if ((*labels)[r] != 0 && (*labels)[r] != 1) non_binary_row = r;
  }
  if (non_binary_row) {
    if (!o.query_column) {
      return absl::InvalidArgumentError(absl::StrCat(
          table->name, ":", table->row_lines[*non_binary_row], ": column \"", o.label_column,
          "\": label ", table->rows[*non_binary_row][*label_col],
          " is not 0/1; AUC and calibration need 0/1 labels, NDCG needs --query-column"));
    }
    err << "driftctl: note: labels are not all 0/1 (graded relevance): computing ndcg only\n";
  } else {
    absl::StatusOr<double> auc = detectors::RocAuc(*scores, *labels, weights);
    if (auc.ok()) {
      result.auc = *auc;
    } else {
      err << "driftctl: note: auc omitted: " << auc.status().message() << "\n";
    }
    bool in_unit_interval = true;
    for (double s : *scores) in_unit_interval = in_unit_interval && s >= 0 && s <= 1;
    if (in_unit_interval) {
      absl::StatusOr<detectors::CalibrationResult> cal =
          detectors::Calibration(*scores, *labels, weights, o.bins);
      if (!cal.ok()) return cal.status();
      result.calibration = std::move(*cal);
    } else {
      err << "driftctl: note: calibration omitted: scores are not all in [0, 1]\n";
    }
  }
  if (o.query_column) {
    absl::StatusOr<size_t> query_col = RequireColumn(*table, *o.query_column, "--query-column");
    if (!query_col.ok()) return query_col.status();
    std::vector<std::string> queries;
    queries.reserve(table->rows.size());
    for (const auto& row : table->rows) queries.push_back(row[*query_col]);
    absl::StatusOr<double> ndcg = detectors::NdcgAtK(queries, *scores, *labels, weights, k);
    if (!ndcg.ok()) return ndcg.status();
    result.ndcg = *ndcg;
  }
  return result;
}

}  // namespace

namespace internal {

nlohmann::ordered_json ReliabilityJson(const std::vector<detectors::ReliabilityBin>& bins) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const detectors::ReliabilityBin& b : bins) {
    j.push_back({{"bin", b.bin},
                 {"mean_score", b.mean_score},
                 {"mean_label", b.mean_label},
                 {"count", b.count}});
  }
  return j;
}

void WriteReliabilityTable(const std::vector<detectors::ReliabilityBin>& bins, std::ostream& out) {
  out << "\nreliability (non-empty bins)\n"
      << absl::StrFormat("%4s  %10s  %10s  %10s\n", "bin", "mean_score", "mean_label", "count");
  for (const detectors::ReliabilityBin& b : bins) {
    out << absl::StrFormat("%4d  %10.4f  %10.4f  %10s\n", b.bin, b.mean_score, b.mean_label,
                           FormatNumber(b.count));
  }
}

}  // namespace internal

int RunQuality(const QualityOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<QualityResult> r = ComputeQuality(options, err);
  if (!r.ok()) return ReportError(err, r.status());
  if (options.json) {
    nlohmann::ordered_json j;
    j["n"] = r->n;
    if (r->auc) j["auc"] = *r->auc;
    if (r->calibration) {
      j["ece"] = r->calibration->ece;
      j["mce"] = r->calibration->mce;
      j["brier"] = r->calibration->brier;
      j["reliability"] = internal::ReliabilityJson(r->calibration->reliability);
    }
    if (r->ndcg) j["ndcg"] = *r->ndcg;
    out << j.dump() << "\n";
    return kExitOk;
  }
  out << "n:      " << internal::FormatNumber(r->n) << "\n";
  if (r->auc) out << absl::StrFormat("auc:    %.6f\n", *r->auc);
  if (r->calibration) {
    out << absl::StrFormat("ece:    %.6f\nmce:    %.6f\nbrier:  %.6f\n", r->calibration->ece,
                           r->calibration->mce, r->calibration->brier);
  }
  if (r->ndcg) out << absl::StrFormat("ndcg@%d: %.6f\n", options.k.value_or(10), *r->ndcg);
  if (r->calibration) internal::WriteReliabilityTable(r->calibration->reliability, out);
  return kExitOk;
}

}  // namespace driftwatch::cli
