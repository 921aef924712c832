// `driftctl quality --model` (Reports.GetQualityReport): the server's
// quality of a model as its delayed labels join, printed with the keys and
// the reliability table of offline `quality` (quality.cc) plus what only a
// window of labelled traffic has: coverage, maturity, label delay, the
// estimate for the unlabelled predictions and the baseline.
#include <cmath>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "driftwatch/cli/client.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/cli/quality_report.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "internal/client_util.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

// The report's non-empty bins as offline `quality` has them: the bin's
// 0-based index (its lower edge over its width), and its weight as count.
std::vector<detectors::ReliabilityBin> ReliabilityBins(const v1::QualityReport& r) {
  std::vector<detectors::ReliabilityBin> bins;
  for (const v1::ReliabilityBin& b : r.reliability()) {
    if (!(b.weight() > 0)) continue;
    const double width = b.upper() - b.lower();
    detectors::ReliabilityBin bin;
    bin.bin = width > 0 ? static_cast<int>(std::lround(b.lower() / width)) : 0;
    bin.mean_score = b.mean_score();
    bin.mean_label = b.mean_label();
    bin.count = b.weight();
    bins.push_back(bin);
  }
  return bins;
}

// "850ms", "12.5s", "12m30s", "3h12m", "2d4h".
std::string HumanDuration(double ms) {
  if (!(ms >= 0)) return "-";
  if (ms < 1000) return absl::StrFormat("%.0fms", ms);
  if (ms < 60'000) return absl::StrFormat("%.1fs", ms / 1000);
  const int64_t s = std::llround(ms / 1000);
  auto two = [](int64_t big, const char* big_unit, int64_t small, const char* small_unit) {
    return small == 0 ? absl::StrCat(big, big_unit)
                      : absl::StrCat(big, big_unit, small, small_unit);
  };
  if (s < 3600) return two(s / 60, "m", s % 60, "s");
  const int64_t m = (s + 30) / 60;
  if (m < 24 * 60) return two(m / 60, "h", m % 60, "m");
  const int64_t h = (m + 30) / 60;
  return two(h / 24, "d", h % 24, "h");
}

// "0.8123 ± 0.0040", or without the bound when it does not show at 4 decimals.
std::string WithBound(double value, double bound) {
  if (bound >= 0.00005) return absl::StrFormat("%.4f \u00b1 %.4f", value, bound);
  return absl::StrFormat("%.4f", value);
}

std::string Fixed(double x) { return absl::StrFormat("%.4f", x); }

}  // namespace

void WriteQualityReportJson(const v1::QualityReport& r, std::ostream& out) {
  const v1::QualityMetrics& cur = r.current();
  const v1::QualityMetrics& base = r.baseline_metrics();
  nlohmann::ordered_json j;
  j["model"] = {{"id", r.model().model_id()}, {"version", r.model().model_version()}};
  j["slice"] = internal::SliceJson(r.slice());
  j["window"] = internal::WindowJson(r.window());
  j["n"] = r.labelled_weight();
  if (cur.has_auc()) {
    j["auc"] = cur.auc();
    j["auc_error_bound"] = cur.auc_error_bound();
  }
  if (cur.has_calibration()) {
    j["ece"] = cur.ece();
    j["mce"] = cur.mce();
    j["brier"] = cur.brier();
    j["reliability"] = internal::ReliabilityJson(ReliabilityBins(r));
  }
  if (r.has_ndcg()) {
    j["ndcg"] = r.ndcg();
    j["k"] = r.k();
    j["queries"] = r.queries();
  }
  if (r.has_accuracy() || r.has_multiclass()) j["accuracy"] = r.accuracy();
  if (r.has_accuracy()) j["decision_threshold"] = r.decision_threshold();
  if (r.has_regression()) {
    j["mae"] = r.mae();
    j["rmse"] = r.rmse();
    j["bias"] = r.bias();
  }
  if (r.has_multiclass()) {
    j["macro_auc"] = r.macro_auc();
    j["macro_auc_error_bound"] = r.macro_auc_error_bound();
    j["log_loss"] = r.log_loss();
  }
  j["predicted_weight"] = r.predicted_weight();
  j["labelled_weight"] = r.labelled_weight();
  j["label_coverage"] = r.label_coverage();
  j["mature"] = r.mature();
  const v1::Quantiles& delay = r.label_delay_ms();
  j["label_delay_ms"] = {{"p50", delay.p50()},
                         {"p95", delay.p95()},
                         {"p99", delay.p99()},
                         {"relative_error_bound", delay.relative_error_bound()}};
  if (r.has_estimate()) {
    j["estimated_auc"] = r.estimated_auc();
    j["estimated_accuracy"] = r.estimated_accuracy();
    j["unlabelled_weight"] = r.unlabelled_weight();
    j["estimate_calibration"] = r.estimate_calibration();
  }
  nlohmann::ordered_json baseline = {{"name", r.baseline()}};
  if (base.has_auc()) baseline["auc"] = base.auc();
  if (base.has_calibration()) baseline["ece"] = base.ece();
  j["baseline"] = std::move(baseline);
  if (cur.has_auc() && base.has_auc()) j["auc_delta"] = r.auc_delta();
  if (cur.has_calibration() && base.has_calibration()) j["ece_delta"] = r.ece_delta();
  const v1::LabelCounts& c = r.counts();
  j["counts"] = {{"predictions", c.predictions()}, {"labelled", c.labelled()},
                 {"conflicting", c.conflicting()}, {"orphan", c.orphan()},
                 {"not_sampled", c.not_sampled()}, {"expired", c.expired()},
                 {"pending", c.pending()},         {"rejected", c.rejected()},
                 {"duplicates", c.duplicates()}};
  out << internal::DumpJson(j) << "\n";
}

void WriteQualityReportText(const v1::QualityReport& r, std::ostream& out) {
  const v1::QualityMetrics& cur = r.current();
  const v1::QualityMetrics& base = r.baseline_metrics();
  out << "model: " << r.model().model_id() << "@" << r.model().model_version()
      << "  slice: " << internal::SliceText(r.slice())
      << "  window: " << internal::FormatTimeMs(internal::TimestampMs(r.window().start())) << " .. "
      << internal::FormatTimeMs(internal::TimestampMs(r.window().end())) << " ("
      << internal::WindowLength(r.window()) << ")"
      << "  baseline: " << (r.baseline().empty() ? "-" : r.baseline()) << "\n";
  out << "labelled " << internal::FormatNumber(r.labelled_weight()) << " of "
      << internal::FormatNumber(r.predicted_weight())
      << absl::StrFormat(" (%.1f%%)", r.label_coverage() * 100)
      << ", mature: " << (r.mature() ? "yes" : "no") << "\n";
  if (r.labelled_weight() > 0) {
    const v1::Quantiles& d = r.label_delay_ms();
    out << "label delay: p50 " << HumanDuration(d.p50()) << ", p95 " << HumanDuration(d.p95())
        << ", p99 " << HumanDuration(d.p99());
    if (d.relative_error_bound() > 0) {
      out << absl::StrFormat(" (each within %.2g%%)", d.relative_error_bound() * 100);
    }
    out << "\n";
  }

  // Baseline columns only when the baseline has a metric to compare with.
  const bool with_baseline = base.has_auc() || base.has_calibration();
  std::vector<std::vector<std::string>> rows;
  auto row = [&](std::string name, std::string current, std::string baseline = "-",
                 std::string delta = "-") {
    if (with_baseline) {
      rows.push_back({std::move(name), std::move(current), std::move(baseline), std::move(delta)});
    } else {
      rows.push_back({std::move(name), std::move(current)});
    }
  };
  if (with_baseline) {
    rows.push_back({"metric", "current", "baseline", "delta"});
  } else {
    rows.push_back({"metric", "current"});
  }
  if (cur.has_auc()) {
    row("auc", WithBound(cur.auc(), cur.auc_error_bound()),
        base.has_auc() ? Fixed(base.auc()) : "-",
        base.has_auc() ? absl::StrFormat("%+.4f", r.auc_delta()) : "-");
  }
  if (cur.has_calibration()) {
    const bool b = base.has_calibration();
    row("ece", Fixed(cur.ece()), b ? Fixed(base.ece()) : "-",
        b ? absl::StrFormat("%+.4f", r.ece_delta()) : "-");
    row("mce", Fixed(cur.mce()), b ? Fixed(base.mce()) : "-");
    row("brier", Fixed(cur.brier()), b ? Fixed(base.brier()) : "-");
  }
  if (r.has_accuracy() && !r.has_multiclass()) {
    row(absl::StrCat("accuracy (threshold ", internal::FormatNumber(r.decision_threshold()), ")"),
        Fixed(r.accuracy()));
  }
  if (r.has_multiclass()) {
    row("macro auc", WithBound(r.macro_auc(), r.macro_auc_error_bound()));
    row("accuracy", Fixed(r.accuracy()));
    row("log loss", Fixed(r.log_loss()));
  }
  if (r.has_regression()) {
    row("mae", internal::FormatNumber(r.mae()));
    row("rmse", internal::FormatNumber(r.rmse()));
    row("bias", internal::FormatNumber(r.bias()));
  }
  if (r.has_ndcg()) {
    row(absl::StrCat("ndcg@", r.k(), " (", r.queries(), r.queries() == 1 ? " query)" : " queries)"),
        Fixed(r.ndcg()));
  }
  out << "\n";
  if (rows.size() > 1) {
    internal::WriteColumns(rows, 1, out);
  } else {
    out << (r.labelled_weight() > 0 ? "no quality metrics in the report\n"
                                    : "no quality metrics: no prediction of the window is "
                                      "labelled yet\n");
  }

  if (r.has_estimate()) {
    const std::string& how = r.estimate_calibration();
    out << "\nestimated for the " << internal::FormatNumber(r.unlabelled_weight())
        << " unlabelled: "
        << absl::StrFormat("auc %.2f, accuracy %.2f", r.estimated_auc(), r.estimated_accuracy())
        << (how == "baseline"   ? " (calibrated on baseline)"
            : how == "identity" ? " (scores taken as calibrated: the baseline has no labels)"
                                : absl::StrCat(" (calibration: ", how, ")"))
        << "\n";
  }

  const v1::LabelCounts& c = r.counts();
  out << "\npredictions: " << c.predictions() << " kept for the join, " << c.labelled()
      << " labelled, " << c.expired() << " expired unlabelled\n"
      << "labels arriving in the window (whole model): " << c.conflicting() << " conflicting, "
      << c.orphan() << " orphan, " << c.not_sampled() << " not sampled, " << c.duplicates()
      << " duplicates, " << c.rejected() << " rejected; " << c.pending()
      << " waited for their prediction\n";
  if (cur.has_calibration()) internal::WriteReliabilityTable(ReliabilityBins(r), out);
}

int RunOnlineQuality(const OnlineQualityOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  if (options.k && *options.k < 1) {
    return internal::ReportError(err, absl::InvalidArgumentError("--k must be >= 1"));
  }
  if (options.bins < 1) {
    return internal::ReportError(err, absl::InvalidArgumentError("--bins must be >= 1"));
  }
  v1::GetQualityReportRequest request;
  internal::SetModel(options.model, options.version, request.mutable_model());
  if (absl::Status s = internal::ParseSlice(options.slice, request.mutable_slice()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  if (absl::Status s = internal::FillWindow(options.window, request.mutable_window()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  request.set_baseline(options.baseline);
  request.set_k(static_cast<uint32_t>(options.k.value_or(0)));
  request.set_bins(static_cast<uint32_t>(options.bins));
  v1::QualityReport report;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Reports::NewStub(conn->channel)->GetQualityReport(&context, request, &report);
  if (!status.ok()) return internal::ReportRpcError(err, "GetQualityReport", status);
  if (options.json) {
    WriteQualityReportJson(report, out);
  } else {
    WriteQualityReportText(report, out);
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
