// Plumbing shared by the online subcommands; see internal/client_util.h.
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "internal/client_util.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli::internal {

void Connection::Arm(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

absl::StatusOr<Connection> Connect(const ServerOptions& options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is empty");
  absl::StatusOr<int64_t> timeout = ParseDurationMs(options.timeout);
  if (!timeout.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--timeout: ", timeout.status().message()));
  }
  if (*timeout <= 0) return absl::InvalidArgumentError("--timeout must be positive");
  Connection c;
  c.channel = grpc::CreateChannel(options.server, grpc::InsecureChannelCredentials());
  c.timeout_ms = *timeout;
  return c;
}

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

int ReportRpcError(std::ostream& err, std::string_view rpc, const grpc::Status& status) {
  err << "driftctl: " << rpc << ": " << StatusCodeName(status.error_code()) << ": "
      << status.error_message() << "\n";
  return kExitRpcFailed;
}

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(Sv(text));
  struct Unit {
    const char* suffix;
    int64_t ms;
  };
  // "ms" before "s" so that "250ms" is not read as "250m" + "s".
  static constexpr Unit kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  int64_t scale = 1000;
  absl::string_view digits = t;
  for (const Unit& u : kUnits) {
    const absl::string_view suffix(u.suffix);
    if (t.size() > suffix.size() && t.substr(t.size() - suffix.size()) == suffix) {
      scale = u.ms;
      digits = t.substr(0, t.size() - suffix.size());
      break;
    }
  }
  int64_t n = 0;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &n) || n > INT64_MAX / scale) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a duration like 90s, 5m, 1h or 7d, got \"", t, "\""));
  }
  return n * scale;
}

std::string FormatDurationMs(int64_t ms) {
  if (ms != 0 && ms % 86'400'000 == 0) return absl::StrCat(ms / 86'400'000, "d");
  if (ms != 0 && ms % 3'600'000 == 0) return absl::StrCat(ms / 3'600'000, "h");
  if (ms != 0 && ms % 60'000 == 0) return absl::StrCat(ms / 60'000, "m");
  if (ms % 1000 == 0) return absl::StrCat(ms / 1000, "s");
  return absl::StrCat(ms, "ms");
}

absl::StatusOr<int64_t> ParseTimeMs(std::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(Sv(text));
  if (!t.empty() && std::all_of(t.begin(), t.end(), absl::ascii_isdigit)) {
    int64_t ms = 0;
    if (absl::SimpleAtoi(t, &ms)) return ms;
  }
  absl::Time parsed;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, t, &parsed, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected Unix milliseconds or an RFC 3339 time (2024-05-01T12:00:00Z), got \"", t, "\""));
  }
  return absl::ToUnixMillis(parsed);
}

std::string FormatTimeMs(int64_t unix_ms) {
  const char* format = unix_ms % 1000 == 0 ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%dT%H:%M:%E3SZ";
  return absl::FormatTime(format, absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

int64_t TimestampMs(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

void SetTimestampMs(int64_t unix_ms, google::protobuf::Timestamp* t) {
  int64_t seconds = unix_ms / 1000;
  int64_t rest = unix_ms % 1000;
  if (rest < 0) {
    --seconds;
    rest += 1000;
  }
  t->set_seconds(seconds);
  t->set_nanos(static_cast<int32_t>(rest * 1'000'000));
}

absl::Status FillWindow(const WindowFlags& flags, v1::Window* window) {
  if (flags.window && (flags.from || flags.to)) {
    return absl::InvalidArgumentError("--window and --from/--to exclude each other");
  }
  if (flags.window) {
    absl::StatusOr<int64_t> ms = ParseDurationMs(*flags.window);
    if (!ms.ok())
      return absl::InvalidArgumentError(absl::StrCat("--window: ", ms.status().message()));
    if (*ms < 1000 || *ms % 1000 != 0) {
      return absl::InvalidArgumentError("--window must be a positive whole number of seconds");
    }
    window->set_last_seconds(*ms / 1000);
    return absl::OkStatus();
  }
  if (flags.from.has_value() != flags.to.has_value()) {
    return absl::InvalidArgumentError("--from and --to go together");
  }
  if (!flags.from) return absl::OkStatus();
  absl::StatusOr<int64_t> from = ParseTimeMs(*flags.from);
  if (!from.ok())
    return absl::InvalidArgumentError(absl::StrCat("--from: ", from.status().message()));
  absl::StatusOr<int64_t> to = ParseTimeMs(*flags.to);
  if (!to.ok()) return absl::InvalidArgumentError(absl::StrCat("--to: ", to.status().message()));
  if (*to <= *from) return absl::InvalidArgumentError("--to must be after --from");
  SetTimestampMs(*from, window->mutable_range()->mutable_start());
  SetTimestampMs(*to, window->mutable_range()->mutable_end());
  return absl::OkStatus();
}

std::string WithHumanTimes(const std::string& message) {
  constexpr int64_t kMinMs = 978'307'200'000;    // 2001-01-01
  constexpr int64_t kMaxMs = 4'102'444'800'000;  // 2100-01-01
  std::string out;
  out.reserve(message.size() + 32);
  size_t i = 0;
  while (i < message.size()) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(message[i]))) {
      out.push_back(message[i++]);
      continue;
    }
    size_t end = i;
    while (end < message.size() && absl::ascii_isdigit(static_cast<unsigned char>(message[end])))
      ++end;
    const std::string_view digits(message.data() + i, end - i);
    out.append(digits);
    int64_t ms = 0;
    const bool inside_word =
        i > 0 && (absl::ascii_isalpha(static_cast<unsigned char>(message[i - 1])) ||
                  message[i - 1] == '.' || message[i - 1] == '-');
    const bool annotated = message.compare(end, 2, " (") == 0 && end + 2 < message.size() &&
                           absl::ascii_isdigit(static_cast<unsigned char>(message[end + 2]));
    if (!inside_word && !annotated && (digits.size() == 12 || digits.size() == 13) &&
        absl::SimpleAtoi(Sv(digits), &ms) && ms >= kMinMs && ms < kMaxMs) {
      absl::StrAppend(&out, " (", FormatTimeMs(ms), ")");
    }
    i = end;
  }
  return out;
}

std::string WindowLength(const v1::TimeRange& range) {
  const int64_t ms = TimestampMs(range.end()) - TimestampMs(range.start());
  const int64_t minutes = ms / 60'000, seconds = ms % 60'000 / 1000;
  std::string out;
  if (minutes >= 60) absl::StrAppend(&out, minutes / 60, "h");
  if (minutes % 60 > 0) absl::StrAppend(&out, minutes % 60, "m");
  if (seconds > 0 || out.empty()) absl::StrAppend(&out, seconds, "s");
  return out;
}

nlohmann::ordered_json WindowJson(const v1::TimeRange& range) {
  return {{"start", FormatTimeMs(TimestampMs(range.start()))},
          {"end", FormatTimeMs(TimestampMs(range.end()))}};
}

absl::Status ParseSlice(const std::vector<std::string>& flags, v1::SliceSelector* slice) {
  for (const std::string& kv : flags) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--slice: expected KEY=VALUE, got \"", kv, "\""));
    }
    (*slice->mutable_values())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return absl::OkStatus();
}

std::string SliceText(const v1::SliceSelector& slice) {
  if (slice.values().empty()) return "*";
  std::map<std::string, std::string> sorted(slice.values().begin(), slice.values().end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

nlohmann::ordered_json SliceJson(const v1::SliceSelector& slice) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  std::map<std::string, std::string> sorted(slice.values().begin(), slice.values().end());
  for (const auto& [k, v] : sorted) j[k] = v;
  return j;
}

void SetModel(const std::string& model, const std::string& version, v1::ModelRef* ref) {
  ref->set_model_id(model);
  ref->set_model_version(version);
}

std::string DumpJson(const nlohmann::ordered_json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

absl::StatusOr<CsvTable> ReadJsonl(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  CsvTable table;
  table.name = path;
  std::vector<nlohmann::json> objects;
  std::vector<int64_t> lines;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    ++line_no;
    const std::string_view line(text->data() + pos, end - pos);
    pos = end + 1;
    if (absl::StripAsciiWhitespace(Sv(line)).empty()) continue;
    nlohmann::json obj = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!obj.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected one JSON object per line"));
    }
    for (const auto& [key, value] : obj.items()) {
      if (!table.ColumnIndex(key)) table.header.push_back(key);
      if (value.is_object() || value.is_array()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": column \"", key,
                                                       "\": expected a number, string or null"));
      }
    }
    objects.push_back(std::move(obj));
    lines.push_back(line_no);
  }
  if (objects.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no data rows"));
  for (size_t r = 0; r < objects.size(); ++r) {
    std::vector<std::string> row(table.header.size());
    for (size_t c = 0; c < table.header.size(); ++c) {
      auto it = objects[r].find(table.header[c]);
      if (it == objects[r].end() || it->is_null()) continue;
      if (it->is_string()) {
        row[c] = it->get<std::string>();
      } else if (it->is_boolean()) {
        row[c] = it->get<bool>() ? "true" : "false";
      } else if (it->is_number_integer()) {
        row[c] = it->dump();
      } else {
        row[c] = absl::StrFormat("%.17g", it->get<double>());
      }
    }
    table.rows.push_back(std::move(row));
    table.row_lines.push_back(lines[r]);
  }
  return table;
}

}  // namespace

absl::StatusOr<CsvTable> ReadTable(const std::string& path) {
  if (EndsWith(path, ".jsonl") || EndsWith(path, ".ndjson")) return ReadJsonl(path);
  return ReadCsvFile(path);
}

std::string ScoreKindName(v1::ScoreKind kind) {
  std::string name = v1::ScoreKind_Name(kind);
  constexpr std::string_view kPrefix = "SCORE_KIND_";
  if (name.rfind(kPrefix, 0) == 0) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

std::vector<std::string> ScoreColumns(const v1::ModelSchema& schema) {
  std::vector<std::string> names(schema.score_names().begin(), schema.score_names().end());
  if (names.empty() && schema.score_kind() != v1::SCORE_KIND_UNSPECIFIED) names.push_back("score");
  return names;
}

}  // namespace driftwatch::cli::internal
