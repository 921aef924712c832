// driftctl alerts [--watch], silence add|list|expire, rules list|put|delete
// and signals: the Alerts service and Reports.GetSignalSeries.
#include <fstream>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "driftwatch/alerting/rules.h"
#include "driftwatch/cli/client.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/alerts.grpc.pb.h"
#include "driftwatch/v1/reports.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "internal/client_util.h"
#include "internal/summary.h"

namespace driftwatch::cli {
namespace {

std::string Json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string StateName(v1::AlertState s) {
  switch (s) {
    case v1::ALERT_STATE_INACTIVE:
      return "inactive";
    case v1::ALERT_STATE_PENDING:
      return "pending";
    case v1::ALERT_STATE_FIRING:
      return "firing";
    case v1::ALERT_STATE_RESOLVED:
      return "resolved";
    default:
      return "unknown";
  }
}

std::string Get(const google::protobuf::Map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

std::vector<std::string> AlertRow(const v1::Alert& a) {
  const int64_t since = internal::TimestampMs(
      a.state() == v1::ALERT_STATE_FIRING     ? a.fired_at()
      : a.state() == v1::ALERT_STATE_RESOLVED ? a.resolved_at()
                                              : a.active_at());
  std::string state = StateName(a.state());
  if (a.silenced()) state += " (silenced)";
  if (a.inhibited()) state += " (inhibited)";
  return {state,
          a.rule(),
          absl::StrCat(Get(a.labels(), "model"), "@", Get(a.labels(), "model_version")),
          Get(a.labels(), "slice"),
          Get(a.labels(), "feature"),
          Get(a.labels(), "severity"),
          internal::FormatTimeMs(since),
          internal::FormatNumber(a.value()),
          Get(a.annotations(), "runbook_url")};
}

const std::vector<std::string> kAlertHeader = {"state", "rule",  "model", "slice", "feature",
                                               "severity", "since", "value", "runbook"};

absl::StatusOr<alerting::Matcher> ParseSilenceMatcher(const std::string& text) {
  absl::StatusOr<alerting::Matcher> m = alerting::ParseMatcher(text);
  if (!m.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--matcher: ", m.status().message()));
  }
  return m;
}

}  // namespace

int RunAlerts(const AlertsOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  auto stub = v1::Alerts::NewStub(conn->channel);
  v1::ModelRef model;
  internal::SetModel(options.model, options.version, &model);
  if (options.watch) {
    // One line per state change, as they happen, until interrupted.
    v1::WatchAlertsRequest request;
    *request.mutable_model() = model;
    request.set_skip_current(options.skip_current);
    grpc::ClientContext context;  // no deadline: a watch runs until stopped
    std::unique_ptr<grpc::ClientReader<v1::Alert>> reader = stub->WatchAlerts(&context, request);
    v1::Alert a;
    while (reader->Read(&a)) {
      if (options.json) {
        out << Json(a) << "\n";
      } else {
        std::vector<std::string> row = AlertRow(a);
        out << absl::StrJoin(row, "  ") << "\n";
      }
      out.flush();
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return internal::ReportRpcError(err, "WatchAlerts", status);
    return kExitOk;
  }
  v1::ListAlertsRequest request;
  *request.mutable_model() = model;
  for (const std::string& s : options.states) {
    if (s == "pending") {
      request.add_states(v1::ALERT_STATE_PENDING);
    } else if (s == "firing") {
      request.add_states(v1::ALERT_STATE_FIRING);
    } else if (s == "resolved") {
      request.add_states(v1::ALERT_STATE_RESOLVED);
    } else {
      err << "driftctl: alerts: --state must be pending, firing or resolved, got \"" << s
          << "\"\n";
      return kExitBadInput;
    }
  }
  v1::ListAlertsResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status = stub->ListAlerts(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "ListAlerts", status);
  if (options.json) {
    out << Json(response) << "\n";
    return kExitOk;
  }
  if (response.alerts().empty()) {
    out << "no alerts\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {kAlertHeader};
  for (const v1::Alert& a : response.alerts()) rows.push_back(AlertRow(a));
  internal::WriteColumns(rows, 7, out);
  return kExitOk;
}

int RunSilenceAdd(const SilenceAddOptions& options, std::ostream& out, std::ostream& err) {
  if (options.matchers.empty()) {
    err << "driftctl: silence add: give at least one --matcher (e.g. alertname=feature_drift)\n";
    return kExitBadInput;
  }
  absl::StatusOr<int64_t> duration = internal::ParseDurationMs(options.duration);
  if (!duration.ok() || *duration <= 0) {
    err << "driftctl: silence add: --duration: "
        << (duration.ok() ? std::string("must be positive")
                          : std::string(duration.status().message()))
        << "\n";
    return kExitBadInput;
  }
  v1::CreateSilenceRequest request;
  v1::Silence* s = request.mutable_silence();
  for (const std::string& text : options.matchers) {
    absl::StatusOr<alerting::Matcher> m = ParseSilenceMatcher(text);
    if (!m.ok()) return internal::ReportError(err, m.status());
    v1::Matcher* pm = s->add_matchers();
    pm->set_name(m->name);
    pm->set_value(m->value);
    pm->set_is_regex(m->op == alerting::Matcher::Op::kRe || m->op == alerting::Matcher::Op::kNre);
    pm->set_is_equal(m->op == alerting::Matcher::Op::kEq || m->op == alerting::Matcher::Op::kRe);
  }
  int64_t start = 0;
  if (options.start) {
    absl::StatusOr<int64_t> t = internal::ParseTimeMs(*options.start);
    if (!t.ok()) {
      err << "driftctl: silence add: --start: " << t.status().message() << "\n";
      return kExitBadInput;
    }
    start = *t;
  } else {
    start = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  }
  internal::SetTimestampMs(start, s->mutable_starts_at());
  internal::SetTimestampMs(start + *duration, s->mutable_ends_at());
  s->set_created_by(options.created_by);
  s->set_comment(options.comment);
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::Silence response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Alerts::NewStub(conn->channel)->CreateSilence(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "CreateSilence", status);
  out << response.id() << "\n";
  return kExitOk;
}

int RunSilenceList(const SilenceListOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::ListSilencesResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status = v1::Alerts::NewStub(conn->channel)
                            ->ListSilences(&context, v1::ListSilencesRequest(), &response);
  if (!status.ok()) return internal::ReportRpcError(err, "ListSilences", status);
  if (options.json) {
    out << Json(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"id", "state", "matchers", "starts", "ends", "created_by", "comment"}};
  for (const v1::Silence& s : response.silences()) {
    if (!options.all && s.state() == "expired") continue;
    std::vector<std::string> matchers;
    for (const v1::Matcher& m : s.matchers()) {
      const char* op = m.is_regex() ? (m.is_equal() ? "=~" : "!~") : (m.is_equal() ? "=" : "!=");
      matchers.push_back(absl::StrCat(m.name(), op, "\"", m.value(), "\""));
    }
    rows.push_back({s.id(), s.state(), absl::StrJoin(matchers, ","),
                    internal::FormatTimeMs(internal::TimestampMs(s.starts_at())),
                    internal::FormatTimeMs(internal::TimestampMs(s.ends_at())), s.created_by(),
                    s.comment()});
  }
  if (rows.size() == 1) {
    out << "no silences\n";
    return kExitOk;
  }
  internal::WriteColumns(rows, 7, out);
  return kExitOk;
}

int RunSilenceExpire(const SilenceExpireOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  for (const std::string& id : options.ids) {
    v1::ExpireSilenceRequest request;
    request.set_id(id);
    v1::ExpireSilenceResponse response;
    grpc::ClientContext context;
    conn->Arm(&context);
    grpc::Status status =
        v1::Alerts::NewStub(conn->channel)->ExpireSilence(&context, request, &response);
    if (!status.ok()) return internal::ReportRpcError(err, "ExpireSilence", status);
    out << "expired " << id << "\n";
  }
  return kExitOk;
}

int RunRulesList(const RulesListOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::ListRulesResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Alerts::NewStub(conn->channel)->ListRules(&context, v1::ListRulesRequest(), &response);
  if (!status.ok()) return internal::ReportRpcError(err, "ListRules", status);
  if (options.json) {
    out << Json(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"rule", "source", "severity", "runbook"}};
  for (const v1::Rule& r : response.rules()) {
    rows.push_back({r.name(), r.source(), r.severity(), r.runbook_url()});
  }
  internal::WriteColumns(rows, 4, out);
  return kExitOk;
}

int RunRulesPut(const RulesPutOptions& options, std::ostream& out, std::ostream& err) {
  std::ifstream in(options.file);
  if (!in) {
    err << "driftctl: rules put: cannot read " << options.file << "\n";
    return kExitBadInput;
  }
  std::stringstream text;
  text << in.rdbuf();
  // Checked here first, so that the error names the file and line.
  absl::StatusOr<alerting::Rule> local = alerting::ParseRule(text.str(), options.file);
  if (!local.ok()) {
    err << "driftctl: rules put: " << local.status().message() << "\n";
    return kExitBadInput;
  }
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::PutRuleRequest request;
  request.set_yaml(text.str());
  v1::Rule response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status = v1::Alerts::NewStub(conn->channel)->PutRule(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "PutRule", status);
  out << "rule " << response.name() << " in force\n";
  return kExitOk;
}

int RunRulesDelete(const RulesDeleteOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::DeleteRuleRequest request;
  request.set_name(options.name);
  v1::DeleteRuleResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Alerts::NewStub(conn->channel)->DeleteRule(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "DeleteRule", status);
  out << "rule " << options.name << " deleted\n";
  return kExitOk;
}

int RunSignals(const SignalsOptions& options, std::ostream& out, std::ostream& err) {
  v1::GetSignalSeriesRequest request;
  internal::SetModel(options.model, options.version, request.mutable_model());
  request.set_signal(options.signal);
  request.set_feature(options.feature);
  request.set_slice(options.slice);
  if (options.range) {
    absl::StatusOr<int64_t> range = internal::ParseDurationMs(*options.range);
    if (!range.ok() || *range < 1000) {
      err << "driftctl: signals: --range: "
          << (range.ok() ? std::string("at least 1s") : std::string(range.status().message()))
          << "\n";
      return kExitBadInput;
    }
    request.mutable_window()->set_last_seconds(*range / 1000);
  }
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::SignalSeries response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Reports::NewStub(conn->channel)->GetSignalSeries(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "GetSignalSeries", status);
  if (options.json) {
    out << Json(response) << "\n";
    return kExitOk;
  }
  out << response.signal();
  if (!response.feature().empty()) out << "{feature=\"" << response.feature() << "\"}";
  out << " of " << response.model().model_id() << "@" << response.model().model_version()
      << ", slice " << response.slice() << ", " << response.samples_size() << " samples\n";
  if (response.samples().empty()) return kExitOk;
  std::vector<std::vector<std::string>> rows = {{"time", "resolution", "value", "baseline"}};
  for (const v1::SignalSample& s : response.samples()) {
    rows.push_back({internal::FormatTimeMs(internal::TimestampMs(s.time())),
                    s.resolution() == 0   ? "evaluation"
                    : s.resolution() == 1 ? "hour mean"
                                          : "day mean",
                    internal::FormatNumber(s.value()),
                    s.has_baseline() ? internal::FormatNumber(s.baseline()) : "-"});
  }
  internal::WriteColumns(rows, 2, out);
  return kExitOk;
}

int RunNotificationsList(const NotificationsListOptions& options, std::ostream& out,
                         std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::ListNotificationsRequest request;
  request.set_pending_only(options.pending);
  request.set_limit(options.limit);
  v1::ListNotificationsResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Alerts::NewStub(conn->channel)->ListNotifications(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "ListNotifications", status);
  if (options.json) {
    out << Json(response) << "\n";
    return kExitOk;
  }
  if (response.notifications().empty()) {
    out << (options.pending ? "no pending notifications\n" : "no notifications\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"id", "receiver", "state", "created", "attempts", "last", "next / finished", "group"}};
  for (const v1::Notification& n : response.notifications()) {
    const std::string last = n.last_status() != 0 ? absl::StrCat("HTTP ", n.last_status())
                             : n.last_error().empty() ? std::string("-")
                                                      : n.last_error();
    rows.push_back({n.id(), n.receiver(), n.state(),
                    internal::FormatTimeMs(internal::TimestampMs(n.created_at())),
                    absl::StrCat(n.attempts()), last,
                    internal::FormatTimeMs(internal::TimestampMs(
                        n.state() == "pending" ? n.next_attempt_at() : n.finished_at())),
                    n.group_key()});
  }
  internal::WriteColumns(rows, 8, out);
  return kExitOk;
}

}  // namespace driftwatch::cli
