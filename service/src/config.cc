// driftwatchd's configuration: one table of keys serves the YAML file and
// the command-line flags, so both accept and reject the same text.

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/service/server.h"

namespace driftwatch::service {
namespace {

using base::Sv;

using Setter = std::function<absl::Status(ServerConfig&, std::string_view key, std::string_view)>;

absl::Status BadValue(std::string_view key, std::string_view value, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(Sv(key), ": invalid value \"", Sv(value), "\" (", Sv(why), ")"));
}

Setter String(std::string ServerConfig::*field) {
  return [field](ServerConfig& c, std::string_view, std::string_view v) {
    c.*field = std::string(v);
    return absl::OkStatus();
  };
}

// A duration in ms written through `get`.
template <typename Get>
Setter Duration(Get get) {
  return [get](ServerConfig& c, std::string_view key, std::string_view v) -> absl::Status {
    absl::StatusOr<int64_t> ms = ParseDurationMs(v);
    if (!ms.ok()) return BadValue(key, v, "expected a duration like 250ms, 60s, 5m, 2h, 7d");
    get(c) = *ms;
    return absl::OkStatus();
  };
}

template <typename T, typename Get>
Setter Integer(Get get) {
  return [get](ServerConfig& c, std::string_view key, std::string_view v) -> absl::Status {
    int64_t n = 0;
    if (!absl::SimpleAtoi(Sv(v), &n) || n < 0 ||
        static_cast<uint64_t>(n) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return BadValue(key, v, "expected a non-negative integer");
    }
    get(c) = static_cast<T>(n);
    return absl::OkStatus();
  };
}

template <typename Get>
Setter Real(Get get) {
  return [get](ServerConfig& c, std::string_view key, std::string_view v) -> absl::Status {
    double x = 0;
    if (!absl::SimpleAtod(Sv(v), &x) || !std::isfinite(x)) {
      return BadValue(key, v, "expected a number");
    }
    get(c) = x;
    return absl::OkStatus();
  };
}

Setter OneOf(std::string ServerConfig::*field, std::vector<std::string> allowed) {
  return
      [field, allowed](ServerConfig& c, std::string_view key, std::string_view v) -> absl::Status {
        for (const std::string& a : allowed) {
          if (v == a) {
            c.*field = a;
            return absl::OkStatus();
          }
        }
        std::string list;
        for (const std::string& a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", a);
        return BadValue(key, v, absl::StrCat("expected one of ", list));
      };
}

// Every key of docs/configuration.md.
const std::map<std::string, Setter, std::less<>>& Keys() {
  static const auto* keys = new std::map<std::string, Setter, std::less<>>{
      {"listen", String(&ServerConfig::listen)},
      {"metrics_listen", String(&ServerConfig::metrics_listen)},
      {"data_dir", String(&ServerConfig::data_dir)},
      {"port_file", String(&ServerConfig::port_file)},
      {"rules_file", String(&ServerConfig::rules_file)},
      {"sqlite_synchronous",
       [](ServerConfig& c, std::string_view key, std::string_view v) -> absl::Status {
         if (v == "full" || v == "normal") {
           c.sqlite_synchronous_full = v == "full";
           return absl::OkStatus();
         }
         return BadValue(key, v, "expected one of full, normal");
       }},
      {"evaluator.interval",
       Duration([](ServerConfig& c) -> int64_t& { return c.signal_interval_ms; })},
      {"evaluator.window",
       Duration([](ServerConfig& c) -> int64_t& { return c.evaluator_window_ms; })},
      {"evaluator.silence_timeout",
       Duration([](ServerConfig& c) -> int64_t& { return c.silence_timeout_ms; })},
      {"evaluator.shadow_interval",
       Duration([](ServerConfig& c) -> int64_t& { return c.shadow_interval_ms; })},
      {"evaluator.slices",
       Integer<int>([](ServerConfig& c) -> int& { return c.max_signal_slices; })},
      // The names before issue 10, still read.
      {"signal_interval",
       Duration([](ServerConfig& c) -> int64_t& { return c.signal_interval_ms; })},
      {"signal_slices", Integer<int>([](ServerConfig& c) -> int& { return c.max_signal_slices; })},
      {"alerts.resolved_retention",
       Duration([](ServerConfig& c) -> int64_t& { return c.alerts_resolved_retention_ms; })},
      {"retention.interval",
       Duration([](ServerConfig& c) -> int64_t& { return c.retention_interval_ms; })},
      {"retention.minute",
       Duration([](ServerConfig& c) -> int64_t& { return c.retention.minute_ms; })},
      {"retention.hour", Duration([](ServerConfig& c) -> int64_t& { return c.retention.hour_ms; })},
      {"retention.day", Duration([](ServerConfig& c) -> int64_t& { return c.retention.day_ms; })},
      {"retention.raw_events",
       Duration([](ServerConfig& c) -> int64_t& { return c.retention.raw_events_ms; })},
      {"labels.window", Duration([](ServerConfig& c) -> int64_t& { return c.labels.window_ms; })},
      {"labels.max_pending",
       Integer<uint64_t>([](ServerConfig& c) -> uint64_t& { return c.labels.max_pending; })},
      {"labels.pending_ttl",
       Duration([](ServerConfig& c) -> int64_t& { return c.labels.pending_ttl_ms; })},
      {"labels.maturity_coverage",
       Real([](ServerConfig& c) -> double& { return c.labels.maturity_coverage; })},
      {"labels.max_clock_skew",
       Duration([](ServerConfig& c) -> int64_t& { return c.labels.max_clock_skew_ms; })},
      {"labels.max_join_records",
       Integer<uint64_t>([](ServerConfig& c) -> uint64_t& { return c.labels.max_join_records; })},
      {"labels.flush_interval",
       Duration([](ServerConfig& c) -> int64_t& { return c.labels.flush_interval_ms; })},
      {"labels.ndcg_k", Integer<int>([](ServerConfig& c) -> int& { return c.labels.ndcg_k; })},
      {"ingest.bucket_width",
       Duration([](ServerConfig& c) -> int64_t& { return c.ingest.bucket_width_ms; })},
      {"ingest.allowed_lateness",
       Duration([](ServerConfig& c) -> int64_t& { return c.ingest.allowed_lateness_ms; })},
      {"ingest.max_future_skew",
       Duration([](ServerConfig& c) -> int64_t& { return c.ingest.max_future_skew_ms; })},
      {"ingest.raw_sample_rate",
       Real([](ServerConfig& c) -> double& { return c.ingest.raw_sample_rate; })},
      {"ingest.flush_interval",
       Duration([](ServerConfig& c) -> int64_t& { return c.ingest.flush_interval_ms; })},
      {"ingest.slice_cap", Integer<uint32_t>([](ServerConfig& c) -> uint32_t& {
         return c.registry.default_slice_cap;
       })},
      {"ingest.max_dedup_ids",
       Integer<uint64_t>([](ServerConfig& c) -> uint64_t& { return c.ingest.max_dedup_ids; })},
      {"ingest.backfill_horizon",
       Duration([](ServerConfig& c) -> int64_t& { return c.ingest.backfill_horizon_ms; })},
      {"ingest.max_backfill_profiles", Integer<uint64_t>([](ServerConfig& c) -> uint64_t& {
         return c.ingest.max_backfill_profiles;
       })},
      {"ingest.max_event_id_bytes", Integer<uint32_t>([](ServerConfig& c) -> uint32_t& {
         return c.ingest.max_event_id_bytes;
       })},
      {"ingest.max_category_bytes", Integer<uint32_t>([](ServerConfig& c) -> uint32_t& {
         return c.ingest.max_category_bytes;
       })},
      {"ingest.max_slice_value_bytes", Integer<uint32_t>([](ServerConfig& c) -> uint32_t& {
         return c.ingest.max_slice_value_bytes;
       })},
      {"ingest.max_query_id_bytes", Integer<uint32_t>([](ServerConfig& c) -> uint32_t& {
         return c.ingest.max_query_id_bytes;
       })},
      {"ingest.max_streams",
       Integer<int>([](ServerConfig& c) -> int& { return c.max_ingest_streams; })},
      {"ingest.max_categories",
       Integer<size_t>([](ServerConfig& c) -> size_t& { return c.registry.max_categories; })},
      {"ingest.summary_bins",
       Integer<int>([](ServerConfig& c) -> int& { return c.registry.summary_bins; })},
      {"ingest.learn_edges_values", Integer<uint32_t>([](ServerConfig& c) -> uint32_t& {
         return c.registry.learn_edges_values;
       })},
      {"ingest.learn_edges_max_wait",
       Duration([](ServerConfig& c) -> int64_t& { return c.ingest.learn_edges_max_wait_ms; })},
      {"reports.default_window",
       Duration([](ServerConfig& c) -> int64_t& { return c.reports.default_window_ms; })},
      {"reports.bins", Integer<int>([](ServerConfig& c) -> int& { return c.reports.bins; })},
      {"reports.min_support",
       Real([](ServerConfig& c) -> double& { return c.reports.default_min_support; })},
      {"reports.ingest_yield",
       Duration([](ServerConfig& c) -> int64_t& { return c.reports.ingest_yield_ms; })},
      {"reports.top_k",
       Integer<uint32_t>([](ServerConfig& c) -> uint32_t& { return c.reports.default_top_k; })},
      {"log.format", OneOf(&ServerConfig::log_format, {"text", "json"})},
      {"log.level", OneOf(&ServerConfig::log_level,
                          {"trace", "debug", "info", "warn", "error", "critical", "off"})},
  };
  return *keys;
}

bool IsSection(std::string_view path) {
  const std::string prefix = absl::StrCat(Sv(path), ".");
  auto it = Keys().lower_bound(prefix);
  return it != Keys().end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

absl::Status ApplyNode(ServerConfig* config, const std::string& path, const YAML::Node& node) {
  // Lists and trees: parsed whole by alerting::ParseNotificationConfig.
  if (path == "notifications") {
    config->notifications_yaml = "present";  // LoadConfigFile puts the file's text here
    return absl::OkStatus();
  }
  if (node.IsMap()) {
    if (!path.empty() && !IsSection(path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, Keys().count(path) ? ": expected a value, not a mapping" : ": unknown key"));
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      DW_RETURN_IF_ERROR(
          ApplyNode(config, path.empty() ? key : absl::StrCat(path, ".", key), it->second));
    }
    return absl::OkStatus();
  }
  if (path.empty()) {
    if (node.IsNull()) return absl::OkStatus();  // an empty file
    return absl::InvalidArgumentError("the configuration must be a YAML mapping of keys");
  }
  if (IsSection(path)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a mapping of keys"));
  }
  if (!Keys().count(path)) return absl::InvalidArgumentError(absl::StrCat(path, ": unknown key"));
  if (node.IsNull()) return absl::InvalidArgumentError(absl::StrCat(path, ": missing value"));
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a single value"));
  }
  return SetConfigValue(config, path, node.Scalar());
}

}  // namespace

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view number = text.substr(0, digits);
  const std::string_view unit = text.substr(digits);
  int64_t n = 0;
  if (digits == 0 || digits > 15 || !absl::SimpleAtoi(Sv(number), &n)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid duration \"", Sv(text), "\""));
  }
  int64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid duration \"", Sv(text), "\": unit must be ms, s, m, h or d"));
  }
  return n * scale;  // digits <= 15 keeps this far from overflow
}

absl::Status SetConfigValue(ServerConfig* config, std::string_view key, std::string_view value) {
  auto it = Keys().find(key);
  if (it == Keys().end()) return absl::InvalidArgumentError(absl::StrCat(Sv(key), ": unknown key"));
  return it->second(*config, key, value);
}

absl::Status ValidateConfig(const ServerConfig& c) {
  auto bad = [](std::string_view key, auto... why) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(key), ": ", why...));
  };
  if (c.listen.empty()) return bad("listen", "must not be empty (host:port)");
  if (c.data_dir.empty()) return bad("data_dir", "must not be empty");
  if (c.signal_interval_ms <= 0) return bad("evaluator.interval", "must be positive");
  if (c.evaluator_window_ms <= 0) return bad("evaluator.window", "must be positive");
  if (c.silence_timeout_ms <= 0) return bad("evaluator.silence_timeout", "must be positive");
  if (c.shadow_interval_ms <= 0) return bad("evaluator.shadow_interval", "must be positive");
  if (c.max_signal_slices < 0) return bad("evaluator.slices", "must not be negative");
  if (c.alerts_resolved_retention_ms < 0) {
    return bad("alerts.resolved_retention", "must not be negative");
  }
  if (c.retention_interval_ms <= 0) return bad("retention.interval", "must be positive");
  const IngestOptions& in = c.ingest;
  if (in.bucket_width_ms <= 0 || storage::kHourMs % in.bucket_width_ms != 0) {
    return bad("ingest.bucket_width", in.bucket_width_ms,
               " ms must divide an hour (3600000 ms) so minute buckets roll up exactly");
  }
  if (in.allowed_lateness_ms < 0) return bad("ingest.allowed_lateness", "must not be negative");
  if (in.max_future_skew_ms < 0) return bad("ingest.max_future_skew", "must not be negative");
  if (!(in.raw_sample_rate >= 0 && in.raw_sample_rate <= 1)) {
    return bad("ingest.raw_sample_rate", in.raw_sample_rate, " is outside [0, 1]");
  }
  if (in.flush_interval_ms <= 0) return bad("ingest.flush_interval", "must be positive");
  if (in.backfill_horizon_ms < 0) return bad("ingest.backfill_horizon", "must not be negative");
  if (in.max_dedup_ids < 1) return bad("ingest.max_dedup_ids", "must be at least 1");
  if (in.max_backfill_profiles < 1) {
    return bad("ingest.max_backfill_profiles", "must be at least 1");
  }
  if (c.max_ingest_streams < 1) return bad("ingest.max_streams", "must be at least 1");
  if (in.max_event_id_bytes < 1) return bad("ingest.max_event_id_bytes", "must be at least 1");
  if (in.max_category_bytes < 1) return bad("ingest.max_category_bytes", "must be at least 1");
  if (in.max_slice_value_bytes < 1) {
    return bad("ingest.max_slice_value_bytes", "must be at least 1");
  }
  if (in.max_query_id_bytes < 1) return bad("ingest.max_query_id_bytes", "must be at least 1");
  if (c.registry.default_slice_cap < 1) return bad("ingest.slice_cap", "must be at least 1");
  if (c.registry.max_categories < 1) return bad("ingest.max_categories", "must be at least 1");
  if (c.registry.summary_bins < 2) return bad("ingest.summary_bins", "must be at least 2");
  if (c.ingest.learn_edges_max_wait_ms < 0) {
    return bad("ingest.learn_edges_max_wait", "must not be negative");
  }
  const LabelOptions& l = c.labels;
  if (l.window_ms < storage::kHourMs) return bad("labels.window", "must be at least 1h");
  if (l.pending_ttl_ms <= 0) return bad("labels.pending_ttl", "must be positive");
  if (!(l.maturity_coverage > 0 && l.maturity_coverage <= 1)) {
    return bad("labels.maturity_coverage", l.maturity_coverage, " is outside (0, 1]");
  }
  if (l.max_clock_skew_ms < 0) return bad("labels.max_clock_skew", "must not be negative");
  if (l.max_join_records < 1) return bad("labels.max_join_records", "must be at least 1");
  if (l.flush_interval_ms <= 0) return bad("labels.flush_interval", "must be positive");
  if (l.ndcg_k < 1) return bad("labels.ndcg_k", "must be at least 1");
  const ReportOptions& r = c.reports;
  if (r.default_window_ms <= 0) return bad("reports.default_window", "must be positive");
  if (r.bins < 2) return bad("reports.bins", "must be at least 2");
  if (!(r.default_min_support >= 0)) return bad("reports.min_support", "must not be negative");
  if (r.default_top_k < 1) return bad("reports.top_k", "must be at least 1");
  if (r.ingest_yield_ms < 0) return bad("reports.ingest_yield", "must not be negative");
  if (c.log_format != "text" && c.log_format != "json") {
    return bad("log.format", "must be text or json");
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path, ServerConfig base) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such configuration file"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  absl::Status status;
  try {
    status = ApplyNode(&base, "", root);
  } catch (const YAML::Exception& e) {  // e.g. a key that is not a scalar
    status = absl::InvalidArgumentError(e.what());
  }
  if (status.ok() && base.notifications_yaml == "present") {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    base.notifications_yaml = text.str();
    base.notifications_source = path;
  }
  if (status.ok()) status = ValidateConfig(base);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
  }
  return base;
}

}  // namespace driftwatch::service
