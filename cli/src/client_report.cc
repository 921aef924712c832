// `driftctl report --model` (Reports.GetDriftReport) and `driftctl rank`
// (Reports.RankSlices). The report reuses the `stats` table and JSON
// records, so online and offline output read the same.
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "internal/client_util.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

// The server's record in the offline report's types.
FeatureReport ToFeatureReport(const v1::FeatureDriftReport& f) {
  FeatureReport r;
  r.name = f.name();
  r.kind =
      f.kind() == v1::FEATURE_KIND_CATEGORICAL ? FeatureKind::kCategorical : FeatureKind::kNumeric;
  detectors::FeatureDrift& d = r.drift;
  d.n_reference = f.n_reference();
  d.n_current = f.n_current();
  d.divergences = {f.psi(), f.kl(), f.js()};
  if (f.has_ks()) {
    d.ks = detectors::KsResult{f.ks().statistic(), f.ks().p_value(), 0, f.ks().error_bound(),
                               f.ks().error_bound() > 0 ? f.ks().p_value_low() : f.ks().p_value()};
  }
  if (f.has_chi2()) {
    d.chi2 = detectors::ChiSquareResult{f.chi2().statistic(), f.chi2().df(), f.chi2().p_value()};
  }
  if (r.kind == FeatureKind::kNumeric) {
    d.wasserstein =
        detectors::WassersteinResult{f.wasserstein(), f.wasserstein_norm(),
                                     f.wasserstein_error_bound(), f.wasserstein_norm_error_bound()};
  }
  r.null_rate_current = f.null_rate();
  r.drifted = f.drifted();
  return r;
}

// The `stats --json` record, adjusted to what a window report knows: no
// reference null rate, plus the summaries' error bounds (KS statistic and
// p-value range, Wasserstein) and the invalid-value rate.
nlohmann::ordered_json RecordJson(const v1::FeatureDriftReport& f) {
  nlohmann::ordered_json j = internal::FeatureJson(ToFeatureReport(f));
  j.erase("null_rate_reference");
  if (j.contains("ks")) {
    j["ks"]["error_bound"] = f.ks().error_bound();
    j["ks"]["p_value_low"] = f.ks().error_bound() > 0 ? f.ks().p_value_low() : f.ks().p_value();
  }
  if (j.contains("wasserstein")) {
    j["wasserstein_error_bound"] = f.wasserstein_error_bound();
    j["wasserstein_norm_error_bound"] = f.wasserstein_norm_error_bound();
  }
  j["invalid_rate"] = f.invalid_rate();
  return j;
}

}  // namespace

int RunOnlineReport(const OnlineReportOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::GetDriftReportRequest request;
  internal::SetModel(options.model, options.version, request.mutable_model());
  if (absl::Status s = internal::ParseSlice(options.slice, request.mutable_slice()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  if (absl::Status s = internal::FillWindow(options.window, request.mutable_window()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  request.set_baseline(options.baseline);
  v1::DriftReport report;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Reports::NewStub(conn->channel)->GetDriftReport(&context, request, &report);
  if (!status.ok()) return internal::ReportRpcError(err, "GetDriftReport", status);

  if (options.json) {
    nlohmann::ordered_json features = nlohmann::ordered_json::array();
    for (const auto& f : report.features()) features.push_back(RecordJson(f));
    nlohmann::ordered_json scores = nlohmann::ordered_json::array();
    for (const auto& s : report.scores()) scores.push_back(RecordJson(s));
    const v1::WindowCounts& c = report.counts();
    nlohmann::ordered_json doc = {
        {"model", {{"id", report.model().model_id()}, {"version", report.model().model_version()}}},
        {"slice", internal::SliceJson(report.slice())},
        {"window", internal::WindowJson(report.window())},
        {"baseline", report.baseline()},
        {"counts",
         {{"events", c.events()},
          {"late_accepted", c.late_accepted()},
          {"too_late", c.too_late()},
          {"duplicates", c.duplicates()},
          {"rejected", c.rejected()}}},
        {"features", std::move(features)},
        {"scores", std::move(scores)}};
    out << internal::DumpJson(doc) << "\n";
    return kExitOk;
  }
  std::vector<FeatureReport> features;
  for (const auto& f : report.features()) features.push_back(ToFeatureReport(f));
  size_t drifted = 0;
  for (const FeatureReport& f : features) drifted += f.drifted;
  out << "model: " << report.model().model_id() << "@" << report.model().model_version()
      << "  slice: " << internal::SliceText(report.slice())
      << "  window: " << internal::FormatTimeMs(internal::TimestampMs(report.window().start()))
      << " .. " << internal::FormatTimeMs(internal::TimestampMs(report.window().end())) << " ("
      << internal::WindowLength(report.window()) << " of whole buckets)"
      << "  baseline: " << report.baseline() << "\nevents: " << report.counts().events()
      << "  drifted: " << drifted << " of " << features.size() << " features\n";
  const v1::WindowCounts& lost = report.counts();
  if (lost.duplicates() + lost.rejected() > 0) {
    // The model's, by arrival while the window's span passed (docs/reports.md).
    out << "the model's events that arrived in the window and were not counted: "
        << lost.duplicates() << " duplicates, "
        << lost.rejected() << " rejected (" << lost.too_late() << " too late)\n";
  }
  out << "\n";
  internal::WriteSummaryTable(features, out);
  if (report.scores_size() > 0) {
    std::vector<FeatureReport> scores;
    for (const auto& s : report.scores()) scores.push_back(ToFeatureReport(s));
    out << "\nscores:\n\n";
    internal::WriteSummaryTable(scores, out);
  }
  return kExitOk;
}

int RunRank(const RankOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  if (options.top < 1) {
    return internal::ReportError(err, absl::InvalidArgumentError("--top must be >= 1"));
  }
  v1::RankSlicesRequest request;
  internal::SetModel(options.model, options.version, request.mutable_model());
  if (absl::Status s = internal::FillWindow(options.window, request.mutable_window()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  request.set_baseline(options.baseline);
  request.set_metric(options.metric);
  request.set_feature(options.feature);
  request.set_top_k(static_cast<uint32_t>(options.top));
  request.set_min_support(options.min_support);
  request.set_min_labels(options.min_labels);
  v1::RankSlicesResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Reports::NewStub(conn->channel)->RankSlices(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "RankSlices", status);
  if (options.json) {
    nlohmann::ordered_json slices = nlohmann::ordered_json::array();
    for (const v1::SliceRank& s : response.slices()) {
      slices.push_back({{"slice", internal::SliceJson(s.slice())},
                        {"feature", s.feature()},
                        {"value", s.value()},
                        {"error_bound", s.error_bound()},
                        {"population_value", s.population_value()},
                        {"support", s.support()}});
    }
    nlohmann::ordered_json doc = {
        {"model", options.model}, {"metric", options.metric}, {"slices", std::move(slices)}};
    out << internal::DumpJson(doc) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"#", "slice", "feature", options.metric, "population", "support"}};
  int rank = 0;
  for (const v1::SliceRank& s : response.slices()) {
    // A bound that matters is shown beside the value, as in the report:
    // "+" for KS (the true value is at or above), "±" for W1/sd.
    const char* sign = options.metric == "ks" ? " +" : " ±";
    rows.push_back(
        {absl::StrCat(++rank), internal::SliceText(s.slice()), s.feature(),
         s.error_bound() >= 0.0005 ? absl::StrFormat("%.4f%s%.4f", s.value(), sign, s.error_bound())
                                   : absl::StrFormat("%.4f", s.value()),
         absl::StrFormat("%.4f", s.population_value()), internal::FormatNumber(s.support())});
  }
  internal::WriteColumns(rows, 3, out);
  if (response.slices().empty()) {
    out << (options.metric == "auc_drop" || options.metric == "ece_rise"
                ? "(no slice has --min-labels labelled predictions and a labelled baseline)\n"
                : "(no slice has --min-support current weight)\n");
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
