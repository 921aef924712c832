// Shared plumbing of driftctl's online subcommands (client_*.cc): the
// channel and deadlines, the one-line RPC error, time and duration text,
// and reading a CSV or JSONL file into one table shape.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/cli/client.h"
#include "driftwatch/cli/csv.h"
#include "driftwatch/v1/common.pb.h"
#include "driftwatch/v1/models.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli::internal {

using base::Sv;  // driftwatch/base/strings.h

// A channel to options.server and the per-RPC timeout. INVALID_ARGUMENT
// for an empty server or a bad --timeout.
struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  int64_t timeout_ms = 0;

  // Sets the deadline now + timeout on `context`.
  void Arm(grpc::ClientContext* context) const;
};
absl::StatusOr<Connection> Connect(const ServerOptions& options);

// "OK", "NOT_FOUND", ... as in grpc's status code names.
const char* StatusCodeName(grpc::StatusCode code);

// Prints "driftctl: <rpc>: <CODE>: <message>" and returns kExitRpcFailed.
int ReportRpcError(std::ostream& err, std::string_view rpc, const grpc::Status& status);

// "250ms", "90s", "5m", "2h", "7d" or a whole number of seconds.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);
// Compact duration text: "1h", "90s", "250ms".
std::string FormatDurationMs(int64_t ms);

// Unix milliseconds (all digits) or RFC 3339 ("2024-05-01T12:00:00Z").
absl::StatusOr<int64_t> ParseTimeMs(std::string_view text);
std::string FormatTimeMs(int64_t unix_ms);  // RFC 3339, UTC
int64_t TimestampMs(const google::protobuf::Timestamp& t);
void SetTimestampMs(int64_t unix_ms, google::protobuf::Timestamp* t);

// `message` with every Unix-millisecond time in it (a 12- or 13-digit
// number between 2001 and 2100) followed by its ISO 8601 UTC form, unless
// the server already wrote one there: for the messages of reject reasons.
std::string WithHumanTimes(const std::string& message);

// --window LENGTH or --from/--to into a Window; leaves `window` unset when
// no flag is given. INVALID_ARGUMENT naming the flag otherwise.
absl::Status FillWindow(const WindowFlags& flags, v1::Window* window);

// "20m", "2h", "1h30m": the length of a resolved (bucket-aligned) window.
std::string WindowLength(const v1::TimeRange& range);
// {"start": RFC 3339, "end": RFC 3339}.
nlohmann::ordered_json WindowJson(const v1::TimeRange& range);

// --slice KEY=VALUE flags into `slice`; INVALID_ARGUMENT naming the flag.
absl::Status ParseSlice(const std::vector<std::string>& flags, v1::SliceSelector* slice);
// "*" for the population, else "k1=v1,k2=v2" sorted by key.
std::string SliceText(const v1::SliceSelector& slice);
// {} for the population, else {"k1": "v1", ...} sorted by key.
nlohmann::ordered_json SliceJson(const v1::SliceSelector& slice);

void SetModel(const std::string& model, const std::string& version, v1::ModelRef* ref);

// One line of JSON, invalid UTF-8 replaced (names come from users).
std::string DumpJson(const nlohmann::ordered_json& doc);

// A CSV file, or a JSONL file (one JSON object a line; the header is every
// key in first-seen order, a missing key or null is an empty cell, numbers
// keep 17 significant digits, booleans are "true"/"false").
absl::StatusOr<CsvTable> ReadTable(const std::string& path);

// "binary_probability" for SCORE_KIND_BINARY_PROBABILITY, and so on.
std::string ScoreKindName(v1::ScoreKind kind);

// The score columns a file must have for a schema: score_names, or "score"
// when the schema has a score kind but no names.
std::vector<std::string> ScoreColumns(const v1::ModelSchema& schema);

}  // namespace driftwatch::cli::internal
