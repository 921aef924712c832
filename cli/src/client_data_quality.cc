// `driftctl quality-data` (Reports.GetDataQualityReport): one slice's data
// quality and instrumentation health over a window, as a table (or JSON):
// what tells a logging failure from a real shift (docs/data-quality.md).
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "driftwatch/cli/client.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "internal/client_util.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

std::string Pct(double share) { return absl::StrFormat("%.2f%%", share * 100); }

nlohmann::ordered_json QuantilesJson(const v1::Quantiles& q) {
  return {{"p50", q.p50()},
          {"p95", q.p95()},
          {"p99", q.p99()},
          {"relative_error_bound", q.relative_error_bound()}};
}

void WriteJson(const v1::DataQualityReport& r, std::ostream& out) {
  nlohmann::ordered_json j;
  j["model"] = {{"id", r.model().model_id()}, {"version", r.model().model_version()}};
  j["slice"] = internal::SliceJson(r.slice());
  j["window"] = internal::WindowJson(r.window());
  j["events"] = r.events();
  j["duplicates"] = r.duplicates();
  j["duplicate_rate"] = r.duplicate_rate();
  j["unknown_fields"] = r.unknown_fields();
  j["unknown_field_rate"] = r.unknown_field_rate();
  nlohmann::ordered_json features = nlohmann::ordered_json::array();
  for (const v1::FeatureQuality& f : r.features()) {
    nlohmann::ordered_json fj = {{"name", f.name()},
                                 {"kind", f.kind()},
                                 {"null_rate", f.null_rate()},
                                 {"invalid_rate", f.invalid_rate()},
                                 {"invalid", f.invalid()},
                                 {"out_of_range", f.out_of_range()}};
    if (f.has_reference_null_rate()) fj["reference_null_rate"] = f.reference_null_rate();
    features.push_back(std::move(fj));
  }
  j["features"] = std::move(features);
  j["lateness_seconds"] = QuantilesJson(r.lateness_seconds());
  j["late_share"] = r.late_share();
  j["freshness_seconds"] = r.freshness_seconds();
  j["silence_seconds"] = r.silence_seconds();
  j["silent"] = r.silent();
  j["volume"] = {{"per_hour", r.volume()},
                 {"expected", r.volume_expected()},
                 {"z", r.volume_z()},
                 {"baseline", r.volume_baseline()},
                 {"history_hours", r.volume_history()}};
  j["declared_sample_rate"] = r.declared_sample_rate();
  j["rate_mismatch_rate"] = r.rate_mismatch_rate();
  j["hash_unsampled_rate"] = r.hash_unsampled_rate();
  nlohmann::ordered_json hashes = nlohmann::ordered_json::object();
  for (const auto& [hash, n] : r.feature_hashes()) hashes[hash] = n;
  j["feature_hashes"] = std::move(hashes);
  j["baseline_feature_hashes"] = std::vector<std::string>(r.baseline_feature_hashes().begin(),
                                                          r.baseline_feature_hashes().end());
  j["fingerprint_mismatch"] = r.fingerprint_mismatch();
  j["latency_ms"] = QuantilesJson(r.latency_ms());
  j["latency_observed"] = r.latency_observed();
  nlohmann::ordered_json scores = nlohmann::ordered_json::array();
  for (const v1::ScoreHealth& s : r.scores()) {
    scores.push_back({{"name", s.name()},
                      {"zero_one_share", s.zero_one_share()},
                      {"out_of_range_share", s.out_of_range_share()},
                      {"longest_constant_run", s.longest_constant_run()},
                      {"constant", s.constant()}});
  }
  j["scores"] = std::move(scores);
  out << internal::DumpJson(j) << "\n";
}

void WriteText(const v1::DataQualityReport& r, std::ostream& out) {
  out << "model: " << r.model().model_id() << "@" << r.model().model_version()
      << "  slice: " << internal::SliceText(r.slice())
      << "  window: " << internal::FormatTimeMs(internal::TimestampMs(r.window().start())) << " .. "
      << internal::FormatTimeMs(internal::TimestampMs(r.window().end())) << " ("
      << internal::WindowLength(r.window()) << ")\n";
  out << "events " << r.events() << ", duplicates " << r.duplicates() << " ("
      << Pct(r.duplicate_rate()) << "), events with unknown fields " << r.unknown_fields()
      << " (" << Pct(r.unknown_field_rate()) << ")\n";
  std::vector<std::vector<std::string>> rows = {
      {"feature", "kind", "null rate", "baseline", "invalid rate", "out of range"}};
  for (const v1::FeatureQuality& f : r.features()) {
    rows.push_back({f.name(), f.kind(), Pct(f.null_rate()),
                    f.has_reference_null_rate() ? Pct(f.reference_null_rate()) : "-",
                    Pct(f.invalid_rate()), absl::StrCat(f.out_of_range())});
  }
  out << "\n";
  internal::WriteColumns(rows, 2, out);
  const v1::Quantiles& l = r.lateness_seconds();
  out << "\nlateness (receive - event time): p50 <= " << l.p50() << "s, p95 <= " << l.p95()
      << "s, p99 <= " << l.p99() << "s; behind the watermark " << Pct(r.late_share()) << "\n";
  out << "freshness: newest event " << absl::StrFormat("%.0f", r.freshness_seconds())
      << "s ago, last arrival " << absl::StrFormat("%.0f", r.silence_seconds()) << "s ago"
      << (r.silent() ? "  SILENT" : "") << "\n";
  if (!r.volume_baseline().empty() && r.volume_baseline() != "none") {
    out << "volume: " << absl::StrFormat("%.1f", r.volume()) << " events/h, expected "
        << absl::StrFormat("%.1f", r.volume_expected()) << " (" << r.volume_baseline() << ", "
        << r.volume_history() << " h), robust z " << absl::StrFormat("%.2f", r.volume_z())
        << "\n";
  } else {
    out << "volume: " << absl::StrFormat("%.1f", r.volume())
        << " events/h (no seasonal expectation yet)\n";
  }
  if (r.declared_sample_rate() > 0) {
    out << "sampling: declared rate " << r.declared_sample_rate() << ", rate mismatch "
        << Pct(r.rate_mismatch_rate()) << ", not in the hash sample "
        << Pct(r.hash_unsampled_rate()) << "\n";
  }
  if (!r.feature_hashes().empty() || r.baseline_feature_hashes_size() > 0) {
    out << "fingerprints:";
    for (const auto& [hash, n] : r.feature_hashes()) out << " " << hash << " (" << n << ")";
    out << "; baseline:";
    for (const std::string& hash : r.baseline_feature_hashes()) out << " " << hash;
    out << "; unseen by the baseline " << Pct(r.fingerprint_mismatch()) << "\n";
  }
  if (r.latency_observed() > 0) {
    const v1::Quantiles& q = r.latency_ms();
    out << "latency: p50 <= " << q.p50() << "ms, p95 <= " << q.p95() << "ms, p99 <= " << q.p99()
        << "ms (" << r.latency_observed() << " observed)\n";
  }
  for (const v1::ScoreHealth& s : r.scores()) {
    out << "score " << s.name() << ": exactly 0 or 1 " << Pct(s.zero_one_share())
        << ", out of range " << Pct(s.out_of_range_share()) << ", longest constant run "
        << s.longest_constant_run() << (s.constant() ? "  CONSTANT" : "") << "\n";
  }
}

}  // namespace

int RunDataQuality(const DataQualityOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::GetDataQualityReportRequest request;
  internal::SetModel(options.model, options.version, request.mutable_model());
  if (absl::Status s = internal::ParseSlice(options.slice, request.mutable_slice()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  if (absl::Status s = internal::FillWindow(options.window, request.mutable_window()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  request.set_baseline(options.baseline);
  v1::DataQualityReport report;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Reports::NewStub(conn->channel)->GetDataQualityReport(&context, request, &report);
  if (!status.ok()) return internal::ReportRpcError(err, "GetDataQualityReport", status);
  if (options.json) {
    WriteJson(report, out);
  } else {
    WriteText(report, out);
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
