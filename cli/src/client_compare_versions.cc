// `driftctl compare-versions` (Reports.CompareVersions): shadow / canary
// agreement of two versions of a model on the same event ids, for the
// population and each slice (docs/data-quality.md).
#include <cmath>
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

// NaN (not applicable) prints as "-".
std::string Num(double v) {
  return std::isfinite(v) ? absl::StrFormat("%.4f", v) : std::string("-");
}

nlohmann::ordered_json AgreementJson(const v1::VersionAgreement& a) {
  auto finite = [](double v) -> nlohmann::ordered_json {
    return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
  };
  return {{"slice", internal::SliceJson(a.slice())},
          {"paired", a.paired()},
          {"only_a", a.only_a()},
          {"only_b", a.only_b()},
          {"weight", a.weight()},
          {"score_correlation", finite(a.score_correlation())},
          {"decision_agreement", finite(a.decision_agreement())},
          {"topk_overlap", finite(a.topk_overlap())},
          {"mean_abs_diff", finite(a.mean_abs_diff())},
          {"psi", finite(a.psi())}};
}

void WriteJson(const v1::CompareVersionsResponse& r, std::ostream& out) {
  nlohmann::ordered_json j;
  j["model"] = r.model_name();
  j["version_a"] = r.version_a();
  j["version_b"] = r.version_b();
  j["window"] = internal::WindowJson(r.window());
  j["threshold"] = std::isfinite(r.threshold()) ? nlohmann::ordered_json(r.threshold())
                                                : nlohmann::ordered_json(nullptr);
  j["k"] = r.k();
  j["sampled"] = r.sampled();
  j["population"] = AgreementJson(r.population());
  nlohmann::ordered_json slices = nlohmann::ordered_json::array();
  for (const v1::VersionAgreement& a : r.slices()) slices.push_back(AgreementJson(a));
  j["slices"] = std::move(slices);
  out << internal::DumpJson(j) << "\n";
}

void WriteText(const v1::CompareVersionsResponse& r, std::ostream& out) {
  out << "model: " << r.model_name() << "  " << r.version_b() << " against " << r.version_a()
      << "  window: " << internal::FormatTimeMs(internal::TimestampMs(r.window().start()))
      << " .. " << internal::FormatTimeMs(internal::TimestampMs(r.window().end())) << " ("
      << internal::WindowLength(r.window()) << ")\n";
  out << "decision threshold: "
      << (std::isfinite(r.threshold()) ? absl::StrCat(r.threshold()) : std::string("-"))
      << ", top-k: " << r.k();
  if (r.sampled() < 1) {
    out << ", compared on a hash sample of " << absl::StrFormat("%.2f%%", 100 * r.sampled())
        << " of the event ids";
  }
  out << "\n\n";
  std::vector<std::vector<std::string>> rows = {{"slice", "paired", "only a", "only b",
                                                 "correlation", "decisions agree", "top-k",
                                                 "mean |diff|", "psi"}};
  auto row = [&](const v1::VersionAgreement& a) {
    rows.push_back({internal::SliceText(a.slice()), absl::StrCat(a.paired()),
                    absl::StrCat(a.only_a()), absl::StrCat(a.only_b()),
                    Num(a.score_correlation()), Num(a.decision_agreement()),
                    Num(a.topk_overlap()), Num(a.mean_abs_diff()), Num(a.psi())});
  };
  row(r.population());
  for (const v1::VersionAgreement& a : r.slices()) row(a);
  internal::WriteColumns(rows, 2, out);
  if (r.population().paired() == 0) {
    out << "\nno event id was scored by both versions in the window: are both logging the "
           "same traffic, with the same event ids and label_join_rate?\n";
  }
}

}  // namespace

int RunCompareVersions(const CompareVersionsOptions& options, std::ostream& out,
                       std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::CompareVersionsRequest request;
  request.set_model_name(options.model);
  request.set_version_a(options.a);
  request.set_version_b(options.b);
  if (absl::Status s = internal::ParseSlice(options.slice, request.mutable_slice()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  if (absl::Status s = internal::FillWindow(options.window, request.mutable_window()); !s.ok()) {
    return internal::ReportError(err, s);
  }
  request.set_k(options.k);
  request.set_threshold(options.threshold);
  v1::CompareVersionsResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Reports::NewStub(conn->channel)->CompareVersions(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "CompareVersions", status);
  if (options.json) {
    WriteJson(response, out);
  } else {
    WriteText(response, out);
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
