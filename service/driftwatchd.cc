// driftwatchd: the drift monitoring service. Configuration comes from
// --config FILE (docs/configuration.md) with every key also a flag; flags
// win over the file, and the defaults serve with neither.
//
// SIGHUP re-reads rules_file (a bad file is logged and counted; the rules
// in force stay).
// Exit codes: 0 after a clean shutdown (SIGINT / SIGTERM), 1 when the
// server cannot start (a port taken, storage unusable), 2 on a bad
// command line or configuration.

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "driftwatch/base/clock.h"
#include "driftwatch/service/server.h"

namespace {

using driftwatch::service::ServerConfig;

// A flag and the configuration key it sets.
struct KeyFlag {
  const char* flag;
  const char* key;
  const char* help;
};

constexpr KeyFlag kKeyFlags[] = {
    {"--listen", "listen", "gRPC address host:port (port 0: any free port)"},
    {"--metrics-listen", "metrics_listen", "/metrics address host:port; empty disables"},
    {"--data-dir", "data_dir", "directory holding driftwatch.db"},
    {"--port-file", "port_file", "write \"grpc=PORT metrics=PORT\" here once serving"},
    {"--rules-file", "rules_file", "alerting rules (docs/alerting.md), e.g. deploy/rules.yaml"},
    {"--sqlite-synchronous", "sqlite_synchronous", "full | normal"},
    {"--evaluator-interval", "evaluator.interval",
     "evaluator period (signals, their history, gauges, rules), e.g. 15s"},
    {"--evaluator-window", "evaluator.window",
     "event time each evaluation compares with the baseline, ending at the watermark"},
    {"--evaluator-slices", "evaluator.slices", "busiest slices per model the evaluator covers"},
    {"--silence-timeout", "evaluator.silence_timeout",
     "a slice that sent nothing this long (server clock) is silent, e.g. 10m"},
    {"--shadow-interval", "evaluator.shadow_interval",
     "how often two versions of a model are compared (shadow_* signals), e.g. 5m"},
    {"--signal-interval", "signal_interval", "old name of --evaluator-interval"},
    {"--signal-slices", "signal_slices", "old name of --evaluator-slices"},
    {"--alerts-resolved-retention", "alerts.resolved_retention",
     "how long resolved alerts stay listable, e.g. 24h"},
    {"--retention-interval", "retention.interval", "how often retention runs"},
    {"--retention-minute", "retention.minute", "keep minute buckets this long"},
    {"--retention-hour", "retention.hour", "keep hour buckets this long"},
    {"--retention-day", "retention.day", "keep day buckets this long"},
    {"--retention-raw-events", "retention.raw_events", "keep raw sampled events this long"},
    {"--bucket-width", "ingest.bucket_width", "event-time bucket width; divides an hour"},
    {"--allowed-lateness", "ingest.allowed_lateness", "how late an event may arrive"},
    {"--max-future-skew", "ingest.max_future_skew", "how far ahead an event time may be"},
    {"--raw-sample-rate", "ingest.raw_sample_rate", "share of events kept raw, [0, 1]"},
    {"--flush-interval", "ingest.flush_interval", "flush period of open buckets"},
    {"--slice-cap", "ingest.slice_cap", "default distinct values per slice key"},
    {"--max-dedup-ids", "ingest.max_dedup_ids",
     "event-id hashes held in memory per model (~19 bytes each)"},
    {"--backfill-horizon", "ingest.backfill_horizon",
     "events for closed buckets this recent are merged in; older ones are too_late"},
    {"--max-backfill-profiles", "ingest.max_backfill_profiles",
     "backfill deltas held per model before a batch waits for a flush"},
    {"--max-streams", "ingest.max_streams", "concurrent ingest streams; more are refused"},
    {"--max-event-id-bytes", "ingest.max_event_id_bytes", "longest event_id accepted"},
    {"--max-category-bytes", "ingest.max_category_bytes", "longest categorical value accepted"},
    {"--max-slice-value-bytes", "ingest.max_slice_value_bytes", "longest slice value accepted"},
    {"--max-query-id-bytes", "ingest.max_query_id_bytes", "longest query_id accepted"},
    {"--max-categories", "ingest.max_categories", "categories kept per feature and bucket"},
    {"--summary-bins", "ingest.summary_bins", "numeric summary bins from a reference sample"},
    {"--learn-edges-values", "ingest.learn_edges_values",
     "finite values a feature with no edges and no sample learns its edges from (0: fixed)"},
    {"--learn-edges-max-wait", "ingest.learn_edges_max_wait",
     "a model learning edges learns from what it holds once its first held event is this old"},
    {"--default-window", "reports.default_window", "report window when none is given"},
    {"--bins", "reports.bins", "PSI/KL/JS bins"},
    {"--min-support", "reports.min_support", "RankSlices minimum slice weight"},
    {"--top-k", "reports.top_k", "RankSlices default result count"},
    {"--ingest-yield", "reports.ingest_yield",
     "while a report runs, ingest waits up to this long per batch (0 = never)"},
    {"--log-format", "log.format", "text | json"},
    {"--log-level", "log.level", "trace | debug | info | warn | error | critical | off"},
};

int ConfigError(const std::string& message) {
  std::fprintf(stderr, "driftwatchd: configuration error: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals in every thread (gRPC's and civetweb's threads
  // inherit the mask); one thread takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"driftwatchd: ML model drift monitoring service"};
  std::string config_path;
  app.add_option("--config", config_path, "YAML configuration file (docs/configuration.md)");
  std::vector<std::pair<const KeyFlag*, std::string>> values;
  values.reserve(std::size(kKeyFlags));
  std::vector<CLI::Option*> options;
  for (const KeyFlag& kf : kKeyFlags) {
    values.emplace_back(&kf, std::string());
    options.push_back(app.add_option(kf.flag, values.back().second, kf.help));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  ServerConfig config;
  if (!config_path.empty()) {
    absl::StatusOr<ServerConfig> loaded = driftwatch::service::LoadConfigFile(config_path);
    if (!loaded.ok()) return ConfigError(std::string(loaded.status().message()));
    config = *std::move(loaded);
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (options[i]->count() == 0) continue;
    absl::Status set =
        driftwatch::service::SetConfigValue(&config, values[i].first->key, values[i].second);
    if (!set.ok()) {
      return ConfigError(std::string(values[i].first->flag) + ": " + std::string(set.message()));
    }
  }
  if (absl::Status valid = driftwatch::service::ValidateConfig(config); !valid.ok()) {
    return ConfigError(std::string(valid.message()));
  }
  if (absl::Status logging =
          driftwatch::service::ConfigureLogging(config.log_format, config.log_level);
      !logging.ok()) {
    return ConfigError(std::string(logging.message()));
  }

  driftwatch::base::SystemClock clock;
  absl::StatusOr<std::unique_ptr<driftwatch::service::Server>> server =
      driftwatch::service::Server::Start(config, &clock);
  if (!server.ok()) {
    std::fprintf(stderr, "driftwatchd: cannot start: %s\n", server.status().ToString().c_str());
    return 1;
  }

  std::thread signal_watcher([&stop_signals, s = server->get()] {
    while (true) {
      int signal_number = 0;
      sigwait(&stop_signals, &signal_number);
      if (signal_number != SIGHUP) break;
      (void)s->ReloadRules();  // logged and counted by the server
    }
    s->Shutdown();
  });
  (*server)->Wait();
  signal_watcher.join();
  server->reset();
  return 0;
}
