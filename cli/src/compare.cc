#include "driftwatch/cli/compare.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/categorical.h"
#include "driftwatch/detectors/sample.h"

namespace driftwatch::cli {
namespace {

// Large enough that an offline comparison never folds real categories into
// __other__; a file with more distinct values than this is not categorical.
constexpr size_t kMaxCategories = 100000;


// Numeric when every non-empty cell in both files parses. A column with no
// non-empty cell at all is categorical (all __missing__), so an all-null
// column compares as "no drift" instead of failing.
bool LooksNumeric(const CsvTable& a, size_t col_a, const CsvTable& b, size_t col_b) {
  bool any_value = false;
  for (const auto& [table, col] : {std::pair{&a, col_a}, std::pair{&b, col_b}}) {
    for (const auto& row : table->rows) {
      const std::string& cell = row[col];
      if (cell.empty()) continue;
      if (!ParseNumber(cell)) return false;
      any_value = true;
    }
  }
  return any_value;
}

struct NumericColumn {
  std::vector<double> values;
  std::vector<double> weights;  // empty when unweighted
  double null_weight = 0;
  double total_weight = 0;
};

NumericColumn ReadNumericColumn(const CsvTable& table, size_t col,
                                const std::vector<double>* weights) {
  NumericColumn out;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const double w = weights ? (*weights)[r] : 1.0;
    out.total_weight += w;
    const std::optional<double> x = ParseNumber(table.rows[r][col]);
    if (!x || !std::isfinite(*x)) {
      out.null_weight += w;
      continue;
    }
    out.values.push_back(*x);
    if (weights) out.weights.push_back(w);
  }
  return out;
}

detectors::CategoricalSummary ReadCategoricalColumn(const CsvTable& table, size_t col,
                                                    const std::vector<double>* weights) {
  detectors::CategoricalSummary summary(kMaxCategories);
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const double w = weights ? (*weights)[r] : 1.0;
    const std::string& cell = table.rows[r][col];
    if (cell.empty()) {
      summary.AddMissing(w);
    } else {
      summary.Add(cell, w);
    }
  }
  return summary;
}

absl::Status FeatureError(absl::string_view feature, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("column \"", feature, "\": ", message));
}

}  // namespace

size_t DatasetComparison::drifted_count() const {
  return static_cast<size_t>(
      std::count_if(features.begin(), features.end(), [](const auto& f) { return f.drifted; }));
}

absl::StatusOr<std::vector<double>> ReadWeights(const CsvTable& table, const std::string& column) {
  const std::optional<size_t> col = table.ColumnIndex(column);
  if (!col) {
    return absl::InvalidArgumentError(
        absl::StrCat(table.name, ": weight column \"", column, "\" not found"));
  }
  std::vector<double> weights;
  weights.reserve(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& cell = table.rows[r][*col];
    const std::optional<double> w = ParseNumber(cell);
    if (!w || !std::isfinite(*w) || !(*w > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.name, ":", table.row_lines[r], ": column \"", column,
                       "\": weight must be a finite number > 0, got \"", cell, "\""));
    }
    weights.push_back(*w);
  }
  return weights;
}

absl::StatusOr<DatasetComparison> CompareTables(const CsvTable& reference, const CsvTable& current,
                                                const CompareOptions& options) {
  if (options.bins < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--bins must be >= 1, got ", options.bins));
  }
  // Same column set, any order; name the first column and the file lacking it.
  for (const auto& [from, to] :
       {std::pair{&reference, &current}, std::pair{&current, &reference}}) {
    for (const std::string& column : from->header) {
      if (!to->ColumnIndex(column)) {
        return absl::InvalidArgumentError(absl::StrCat(to->name, ":1: column \"", column,
                                                       "\" is in ", from->name,
                                                       " but missing from ", to->name));
      }
    }
  }
  for (const std::string& column : options.categorical) {
    if (!reference.ColumnIndex(column)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--categorical: no column \"", column, "\" in ", reference.name));
    }
    if (options.weight_column && column == *options.weight_column) {
      return absl::InvalidArgumentError(
          absl::StrCat("--categorical: \"", column, "\" is the weight column"));
    }
  }

  std::optional<std::vector<double>> ref_weights;
  std::optional<std::vector<double>> cur_weights;
  if (options.weight_column) {
    absl::StatusOr<std::vector<double>> w = ReadWeights(reference, *options.weight_column);
    if (!w.ok()) return w.status();
    ref_weights = std::move(*w);
    w = ReadWeights(current, *options.weight_column);
    if (!w.ok()) return w.status();
    cur_weights = std::move(*w);
  }
  const std::vector<double>* ref_w = ref_weights ? &*ref_weights : nullptr;
  const std::vector<double>* cur_w = cur_weights ? &*cur_weights : nullptr;

  DatasetComparison out;
  out.reference_name = reference.name;
  out.current_name = current.name;
  out.reference_rows = reference.rows.size();
  out.current_rows = current.rows.size();
  for (size_t ref_col = 0; ref_col < reference.header.size(); ++ref_col) {
    const std::string& name = reference.header[ref_col];
    if (options.weight_column && name == *options.weight_column) continue;
    const size_t cur_col = *current.ColumnIndex(name);
    const bool forced = std::find(options.categorical.begin(), options.categorical.end(), name) !=
                        options.categorical.end();
    FeatureReport feature;
    feature.name = name;
    if (!forced && LooksNumeric(reference, ref_col, current, cur_col)) {
      feature.kind = FeatureKind::kNumeric;
      NumericColumn ref = ReadNumericColumn(reference, ref_col, ref_w);
      NumericColumn cur = ReadNumericColumn(current, cur_col, cur_w);
      for (const auto& [column, table] : {std::pair{&ref, &reference}, std::pair{&cur, &current}}) {
        if (column->values.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(table->name, ": column \"", name, "\": no finite numeric values"));
        }
      }
      feature.null_rate_reference = ref.null_weight / ref.total_weight;
      feature.null_rate_current = cur.null_weight / cur.total_weight;
      auto ref_sample =
          detectors::WeightedSample::Create(std::move(ref.values), std::move(ref.weights));
      if (!ref_sample.ok()) return FeatureError(name, ref_sample.status().message());
      auto cur_sample =
          detectors::WeightedSample::Create(std::move(cur.values), std::move(cur.weights));
      if (!cur_sample.ok()) return FeatureError(name, cur_sample.status().message());
      auto drift = detectors::CompareNumeric(*ref_sample, *cur_sample, options.bins);
      if (!drift.ok()) return FeatureError(name, drift.status().message());
      feature.drift = std::move(*drift);
    } else {
      feature.kind = FeatureKind::kCategorical;
      detectors::CategoricalSummary ref = ReadCategoricalColumn(reference, ref_col, ref_w);
      detectors::CategoricalSummary cur = ReadCategoricalColumn(current, cur_col, cur_w);
      feature.null_rate_reference = ref.missing_weight() / ref.total_weight();
      feature.null_rate_current = cur.missing_weight() / cur.total_weight();
      auto drift = detectors::CompareCategorical(ref, cur);
      if (!drift.ok()) return FeatureError(name, drift.status().message());
      feature.drift = std::move(*drift);
    }
    feature.drifted = detectors::IsDrifted(feature.drift);
    out.features.push_back(std::move(feature));
  }
  return out;
}

absl::StatusOr<DatasetComparison> CompareFiles(const std::string& reference_path,
                                               const std::string& current_path,
                                               const CompareOptions& options) {
  absl::StatusOr<CsvTable> reference = ReadCsvFile(reference_path);
  if (!reference.ok()) return reference.status();
  absl::StatusOr<CsvTable> current = ReadCsvFile(current_path);
  if (!current.ok()) return current.status();
  return CompareTables(*reference, *current, options);
}

}  // namespace driftwatch::cli
