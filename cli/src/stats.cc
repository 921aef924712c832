// `driftctl stats`: the drift table or its JSON form.
#include <algorithm>
#include <cmath>
#include <ostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "driftwatch/cli/commands.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace internal {

const std::vector<std::string>& SummaryHeader() {
  static const std::vector<std::string>* header = new std::vector<std::string>{
      "feature", "kind", "n_ref", "n_cur", "PSI", "KL", "JS", "KS D", "KS p / chi2 p", "W1/sd"};
  return *header;
}

std::string FormatNumber(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e15) {
    return absl::StrFormat("%.0f", x);
  }
  return absl::StrFormat("%.4g", x);
}

const char* KindName(FeatureKind kind) {
  return kind == FeatureKind::kNumeric ? "numeric" : "categorical";
}

// A bound shows where it would change the printed digits (4 decimals).
bool Material(double bound) { return bound >= 5e-5; }

std::string KsCell(const detectors::KsResult& ks) {
  // D lies in [D, D + bound]: the bound is one-sided.
  if (!Material(ks.error_bound)) return absl::StrFormat("%.4f", ks.statistic);
  return absl::StrFormat("%.4f +%.4f", ks.statistic, ks.error_bound);
}

std::string KsPCell(const detectors::KsResult& ks) {
  // A p-value from a bounded statistic is a range, never a point.
  if (!Material(ks.error_bound) || ks.p_value_low == ks.p_value) {
    return absl::StrFormat("%.3g", ks.p_value);
  }
  return absl::StrFormat("%.3g..%.3g", ks.p_value_low, ks.p_value);
}

std::string WassersteinCell(const detectors::WassersteinResult& w) {
  if (!Material(w.normalized_error_bound)) return absl::StrFormat("%.4f", w.normalized);
  return absl::StrFormat("%.4f \u00b1 %.4f", w.normalized, w.normalized_error_bound);
}

std::vector<std::string> SummaryCells(const FeatureReport& f) {
  const detectors::FeatureDrift& d = f.drift;
  const std::string dash = "-";
  std::string p_value = dash;
  if (d.ks) p_value = KsPCell(*d.ks);
  if (d.chi2) p_value = absl::StrFormat("%.3g", d.chi2->p_value);
  return {f.name,
          std::string(KindName(f.kind)),
          FormatNumber(d.n_reference),
          FormatNumber(d.n_current),
          absl::StrFormat("%.4f", d.divergences.psi),
          absl::StrFormat("%.4f", d.divergences.kl),
          absl::StrFormat("%.4f", d.divergences.js),
          d.ks ? KsCell(*d.ks) : dash,
          p_value,
          d.wasserstein ? WassersteinCell(*d.wasserstein) : dash};
}

std::vector<const FeatureReport*> SortedByPsi(const std::vector<FeatureReport>& features) {
  std::vector<const FeatureReport*> sorted;
  for (const FeatureReport& f : features) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->drift.divergences.psi > b->drift.divergences.psi;
  });
  return sorted;
}

int ReportError(std::ostream& err, const absl::Status& status) {
  for (absl::string_view line : absl::StrSplit(status.message(), '\n')) {
    err << "driftctl: " << line << "\n";
  }
  return kExitBadInput;
}

// Columns a cell takes on a terminal: UTF-8 continuation bytes ("±") take none.
static size_t DisplayWidth(const std::string& cell) {
  return static_cast<size_t>(std::count_if(cell.begin(), cell.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

void WriteColumns(const std::vector<std::vector<std::string>>& rows, size_t text_columns,
                  std::ostream& out) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(widths[i] - DisplayWidth(row[i]), ' ');
      line += i < text_columns ? row[i] + pad : pad + row[i];
      if (i + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

void WriteSummaryTable(const std::vector<FeatureReport>& features, std::ostream& out) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back(SummaryHeader());
  rows.front().front() = "  " + rows.front().front();
  for (const FeatureReport* f : SortedByPsi(features)) {
    rows.push_back(SummaryCells(*f));
    rows.back().front() = (f->drifted ? "* " : "  ") + rows.back().front();
  }
  // Text columns (feature, kind) left-aligned, numbers right-aligned.
  WriteColumns(rows, 2, out);
  out << "\n* " << kDriftRule << "\n";
}

nlohmann::ordered_json FeatureJson(const FeatureReport& f) {
  const detectors::FeatureDrift& d = f.drift;
  nlohmann::ordered_json j;
  j["name"] = f.name;
  j["kind"] = KindName(f.kind);
  j["n_reference"] = d.n_reference;
  j["n_current"] = d.n_current;
  j["psi"] = d.divergences.psi;
  j["kl"] = d.divergences.kl;
  j["js"] = d.divergences.js;
  if (d.ks) j["ks"] = {{"statistic", d.ks->statistic}, {"p_value", d.ks->p_value}};
  if (d.chi2) {
    j["chi2"] = {
        {"statistic", d.chi2->statistic}, {"df", d.chi2->df}, {"p_value", d.chi2->p_value}};
  }
  if (d.wasserstein) {
    j["wasserstein"] = d.wasserstein->distance;
    j["wasserstein_norm"] = d.wasserstein->normalized;
  }
  j["null_rate_reference"] = f.null_rate_reference;
  j["null_rate_current"] = f.null_rate_current;
  j["drifted"] = f.drifted;
  return j;
}

}  // namespace internal

namespace {

void WriteTable(const DatasetComparison& c, std::ostream& out) {
  out << "reference: " << c.reference_name << " (" << c.reference_rows
      << " rows)  current: " << c.current_name << " (" << c.current_rows
      << " rows)  drifted: " << c.drifted_count() << " of " << c.features.size() << " features\n\n";
  internal::WriteSummaryTable(c.features, out);
}

}  // namespace

int RunStats(const StatsOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<DatasetComparison> comparison =
      CompareFiles(options.reference, options.current, options.compare);
  if (!comparison.ok()) return internal::ReportError(err, comparison.status());
  if (options.json) {
    nlohmann::ordered_json features = nlohmann::ordered_json::array();
    for (const FeatureReport& f : comparison->features) features.push_back(internal::FeatureJson(f));
    nlohmann::ordered_json doc = {{"features", std::move(features)}};
    // Replace invalid UTF-8 in names rather than throwing from dump().
    out << doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else {
    WriteTable(*comparison, out);
  }
  if (options.fail_on_drift && comparison->drifted_count() > 0) return kExitDrift;
  return kExitOk;
}

}  // namespace driftwatch::cli
