// driftctl's online subcommands: gRPC clients of a driftwatchd server.
// Same contract as commands.h: parsed options in, text on `out` / `err`,
// an exit code back, nothing thrown. Exit codes: kExitOk when every RPC
// succeeded, kExitRejected when the server rejected some of a push's events
// or labels (unless allow_rejects), kExitRpcFailed when an RPC failed
// (stderr: "driftctl: <RPC>: <CODE>: <message>"), kExitBadInput for bad
// flags or files (nothing is sent then).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace driftwatch::cli {

inline constexpr int kExitRpcFailed = 1;

// Where the server is and how long one RPC may take.
struct ServerOptions {
  std::string server = "127.0.0.1:7070";  // host:port
  std::string timeout = "30s";            // per RPC (per stream for push)
};

struct RegisterOptions {
  ServerOptions server;
  std::string schema_path;  // .json (proto JSON of ModelSchema) or .yaml/.yml
};
int RunRegister(const RegisterOptions& options, std::ostream& out, std::ostream& err);

struct ModelsOptions {
  ServerOptions server;
  bool json = false;
};
int RunModels(const ModelsOptions& options, std::ostream& out, std::ostream& err);

struct PushOptions {
  ServerOptions server;
  std::string input;  // .csv or .jsonl
  std::string model;
  std::string version;  // empty: the latest registered
  int batch = 1000;     // events per batch
  // Batches per StreamPredictions stream: the ack comes at stream end, so
  // several short streams report progress as they go.
  int stream_batches = 10;
  bool columnar = false;
  std::string event_id_column = "event_id";
  std::string time_column = "event_time_ms";  // Unix ms, or RFC 3339
  std::optional<std::string> sample_rate_column;
  bool json = false;  // summary as JSON
  // Exit 0 although the server rejected events (else kExitRejected).
  bool allow_rejects = false;
};
// `err_is_tty`: draw a progress bar (else periodic plain lines).
int RunPush(const PushOptions& options, std::ostream& out, std::ostream& err, bool err_is_tty);

// `labels push`: delayed labels (labels_file.h) streamed to
// Ingest.StreamLabels in one stream; the server acks it after the commit.
struct LabelsPushOptions {
  ServerOptions server;
  std::string input;  // .csv or .jsonl
  std::string model;
  std::string version;  // empty: the latest registered
  int batch = 1000;     // labels per LabelBatch
  bool json = false;    // summary as JSON
  // Exit 0 although the server rejected labels (else kExitRejected).
  bool allow_rejects = false;
};
// `err_is_tty`: draw a progress bar (else periodic plain lines).
int RunLabelsPush(const LabelsPushOptions& options, std::ostream& out, std::ostream& err,
                  bool err_is_tty);

struct BaselineCreateOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  std::string name = "default";
  std::optional<std::string> range;          // START..END (Unix ms or RFC 3339)
  std::optional<std::string> trailing;       // LENGTH[:LAG], e.g. 24h:1h
  std::optional<std::string> profile;        // reference CSV
  std::optional<std::string> weight_column;  // of the profile CSV
  int bins = 10;
};
int RunBaselineCreate(const BaselineCreateOptions& options, std::ostream& out, std::ostream& err);

struct BaselineListOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  bool json = false;
};
int RunBaselineList(const BaselineListOptions& options, std::ostream& out, std::ostream& err);

// The window of a report: --window LENGTH (the last LENGTH) or --from/--to.
struct WindowFlags {
  std::optional<std::string> window;
  std::optional<std::string> from;
  std::optional<std::string> to;
};

struct OnlineReportOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  std::vector<std::string> slice;  // key=value
  WindowFlags window;
  std::string baseline;  // empty: the server's default
  bool json = false;
};
int RunOnlineReport(const OnlineReportOptions& options, std::ostream& out, std::ostream& err);

// `quality --model`: Reports.GetQualityReport, printed by
// quality_report.h.
struct OnlineQualityOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  std::vector<std::string> slice;  // key=value
  WindowFlags window;              // unset: the server's default (24 h)
  std::string baseline;            // empty: the server's default
  std::optional<int> k;            // rankers: NDCG@k; unset: the server's default (10)
  int bins = 10;                   // calibration bins (must divide 1000)
  bool json = false;
};
int RunOnlineQuality(const OnlineQualityOptions& options, std::ostream& out, std::ostream& err);

// `driftctl quality-data` (Reports.GetDataQualityReport).
struct DataQualityOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  std::vector<std::string> slice;  // key=value
  WindowFlags window;              // unset: the server's default (1 h)
  std::string baseline;            // empty: the server's default
  bool json = false;
};
int RunDataQuality(const DataQualityOptions& options, std::ostream& out, std::ostream& err);

// `driftctl compare-versions` (Reports.CompareVersions).
struct CompareVersionsOptions {
  ServerOptions server;
  std::string model;
  std::string a;                   // the reference version (champion)
  std::string b;                   // the challenger
  std::vector<std::string> slice;  // key=value (default: the population and every slice)
  WindowFlags window;              // unset: the server's default (1 h)
  uint32_t k = 0;                  // rankers' top-k (0: the server's default, 10)
  double threshold = 0;            // 0: version a's decision threshold
  bool json = false;
};
int RunCompareVersions(const CompareVersionsOptions& options, std::ostream& out,
                       std::ostream& err);

struct RankOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  std::string metric = "psi";
  std::string feature;
  int top = 10;
  double min_support = 100;
  uint32_t min_labels = 100;  // auc_drop / ece_rise
  WindowFlags window;
  std::string baseline;
  bool json = false;
};
int RunRank(const RankOptions& options, std::ostream& out, std::ostream& err);


// driftctl alerts: Alerts.ListAlerts, or with --watch Alerts.WatchAlerts
// (one line per state change until interrupted).
struct AlertsOptions {
  ServerOptions server;
  std::string model;    // empty: every model
  std::string version;
  std::vector<std::string> states;  // pending, firing, resolved; empty: pending and firing
  bool watch = false;
  bool skip_current = false;  // --watch: only changes from now on
  bool json = false;
};
int RunAlerts(const AlertsOptions& options, std::ostream& out, std::ostream& err);

// driftctl silence add|list|expire.
struct SilenceAddOptions {
  ServerOptions server;
  std::vector<std::string> matchers;  // name="v", name=~"re", ...
  std::string duration = "2h";
  std::optional<std::string> start;   // default now
  std::string created_by;
  std::string comment;
};
int RunSilenceAdd(const SilenceAddOptions& options, std::ostream& out, std::ostream& err);
struct SilenceListOptions {
  ServerOptions server;
  bool all = false;  // expired ones too
  bool json = false;
};
int RunSilenceList(const SilenceListOptions& options, std::ostream& out, std::ostream& err);
struct SilenceExpireOptions {
  ServerOptions server;
  std::vector<std::string> ids;
};
int RunSilenceExpire(const SilenceExpireOptions& options, std::ostream& out, std::ostream& err);

// driftctl rules list|put|delete: the rules in force, and the API's.
struct RulesListOptions {
  ServerOptions server;
  bool json = false;
};
int RunRulesList(const RulesListOptions& options, std::ostream& out, std::ostream& err);
struct RulesPutOptions {
  ServerOptions server;
  std::string file;  // one rule: the YAML map of one entry of `rules:`
};
int RunRulesPut(const RulesPutOptions& options, std::ostream& out, std::ostream& err);
struct RulesDeleteOptions {
  ServerOptions server;
  std::string name;
};
int RunRulesDelete(const RulesDeleteOptions& options, std::ostream& out, std::ostream& err);

// driftctl signals: one signal's history (Reports.GetSignalSeries).
struct SignalsOptions {
  ServerOptions server;
  std::string model;
  std::string version;
  std::string signal;
  std::string feature;
  std::string slice = "*";
  std::optional<std::string> range;  // the last RANGE; default the server's (6h)
  bool json = false;
};
int RunSignals(const SignalsOptions& options, std::ostream& out, std::ostream& err);

// driftctl notifications list [--pending]: the outbox.
struct NotificationsListOptions {
  ServerOptions server;
  bool pending = false;
  int limit = 100;
  bool json = false;
};
int RunNotificationsList(const NotificationsListOptions& options, std::ostream& out,
                         std::ostream& err);

}  // namespace driftwatch::cli
