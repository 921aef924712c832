// driftwatchd's process: configuration, storage, the model registry,
// ingest, reports, the evaluator, the gRPC services, /metrics and the
// background loops, started and stopped as one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/service/alert_rules.h"
#include "driftwatch/service/signal_history.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/storage/store.h"

namespace driftwatch::service {

struct ServerConfig {
  std::string listen = "127.0.0.1:7070";          // gRPC; port 0 picks a free port
  std::string metrics_listen = "127.0.0.1:9464";  // /metrics; empty disables; port 0 allowed
  std::string data_dir = "./driftwatch-data";     // holds driftwatch.db
  std::string port_file;  // when set, "grpc=PORT metrics=PORT" is written there once serving
  bool sqlite_synchronous_full = true;
  int64_t signal_interval_ms = 15'000;  // evaluator.interval: how often the evaluator runs
  // evaluator.window: the trailing event time each evaluation compares with
  // the baseline, ending at the model's watermark.
  int64_t evaluator_window_ms = 3'600'000;
  int64_t silence_timeout_ms = 10 * 60'000;  // evaluator.silence_timeout
  int64_t shadow_interval_ms = 5 * 60'000;   // evaluator.shadow_interval
  int64_t retention_interval_ms = 600'000;
  int max_signal_slices = 20;  // evaluator.slices: busiest slices per model it covers
  // Concurrent Ingest.StreamPredictions streams (key ingest.max_streams);
  // one more fails with RESOURCE_EXHAUSTED. Each running stream holds a
  // gRPC server thread, and up to 8 MiB of parse arena once it has sent.
  int max_ingest_streams = 64;
  // Alerting rules (docs/alerting.md), read at start and on SIGHUP
  // (Server::ReloadRules); empty: only rules put through the API.
  std::string rules_file;
  int64_t alerts_resolved_retention_ms = 24 * 3'600'000LL;  // alerts.resolved_retention
  // The `notifications:` map (docs/notifications.md): YAML text holding it
  // (LoadConfigFile puts the whole file here) and where it came from, for
  // errors. Empty: nothing is sent.
  std::string notifications_yaml;
  std::string notifications_source;
  std::string log_format = "text";  // text | json
  std::string log_level = "info";
  RegistryOptions registry;  // keys ingest.slice_cap, .max_categories, .summary_bins
  IngestOptions ingest;
  LabelOptions labels;  // keys labels.*
  ReportOptions reports;
  storage::RetentionPolicy retention;
};

// Reads a YAML file (docs/configuration.md) over `base` and validates the
// result. INVALID_ARGUMENT naming the key on a bad value or an unknown key
// ("ingest.bucket_widht: unknown key"); NOT_FOUND when the file is missing.
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path, ServerConfig base = {});

// Sets one key of the file's vocabulary ("listen", "ingest.bucket_width")
// from its text form, exactly as the file would: command-line flags go
// through here so they accept and reject the same values. Does not
// validate cross-field rules (ValidateConfig does).
absl::Status SetConfigValue(ServerConfig* config, std::string_view key, std::string_view value);

// Range and consistency checks (bucket width divides an hour, rates in
// [0, 1], ...). INVALID_ARGUMENT naming the key.
absl::Status ValidateConfig(const ServerConfig& config);

// "250ms", "60s", "5m", "2h", "7d" or an integer number of seconds.
// INVALID_ARGUMENT otherwise (negative values included).
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

// Routes spdlog's default logger to stderr as text or JSON lines (ts,
// level, msg and the line's fields). INVALID_ARGUMENT for an unknown
// format ("text" | "json") or level (trace .. critical, off).
absl::Status ConfigureLogging(const std::string& format, const std::string& level);

// One driftwatchd process. Shutdown and Wait may be called from any thread;
// the accessors are valid until Shutdown.
class Server {
 public:
  // Opens storage, recovers, binds both ports and starts serving.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                       const base::Clock* clock);
  ~Server();  // Shutdown()

  int grpc_port() const;
  int metrics_port() const;
  // Stops accepting, lets in-flight RPCs finish, flushes, closes storage.
  // Idempotent; safe from a signal-watching thread.
  void Shutdown();
  // Blocks until Shutdown() has completed.
  void Wait();

  // Ingest streams running now, and refused by max_ingest_streams so far.
  int ingest_streams() const;
  uint64_t refused_ingest_streams() const;

  ModelRegistry& registry();
  Ingestor& ingestor();
  LabelJoiner& labels();
  ReportEngine& reports();
  Evaluator& evaluator();
  AlertRules& alert_rules();
  SignalHistory& signal_history();
  // Re-reads rules_file (SIGHUP); the rules in force stay on an error.
  absl::Status ReloadRules();

 private:
  Server() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftwatch::service
