// `driftctl register`, `models`, `baseline create` and `baseline list`.
#include <algorithm>
#include <cmath>
#include <map>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "internal/client_util.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace driftwatch::cli {
namespace {

using internal::Sv;

bool IsYaml(const std::string& path) {
  auto ends = [&](std::string_view s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".yaml") || ends(".yml");
}

// YAML to the proto JSON mapping: every scalar becomes a JSON string, which
// the proto JSON parser accepts for numbers, booleans and enums alike, so
// `model_version: 1` and `nullable: true` both work.
nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(YamlToJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar:
      return node.Scalar();
    default:
      return nullptr;
  }
}

absl::StatusOr<v1::ModelSchema> ReadSchema(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  std::string json = *text;
  if (IsYaml(path)) {
    try {
      json = YamlToJson(YAML::Load(*text)).dump();
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
    }
  }
  v1::ModelSchema schema;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &schema);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a driftwatch.v1.ModelSchema in the proto JSON mapping: ",
                     std::string(status.message().data(), status.message().size())));
  }
  return schema;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

v1::ModelRef Ref(const std::string& model, const std::string& version) {
  v1::ModelRef ref;
  ref.set_model_id(model);
  ref.set_model_version(version);
  return ref;
}

std::string Label(const v1::ModelRef& ref) {
  return absl::StrCat(ref.model_id(), "@", ref.model_version());
}

// The profile CSV as columnar reference rows, columns matched to the
// schema by name. Schema columns the file lacks are left out (the server
// then has no reference for them); a warning names them.
absl::StatusOr<v1::ReferenceProfile> ReadProfile(const std::string& path,
                                                 const std::optional<std::string>& weight_column,
                                                 const v1::ModelSchema& schema, std::ostream& err) {
  absl::StatusOr<CsvTable> table = internal::ReadTable(path);
  if (!table.ok()) return table.status();
  v1::ReferenceProfile profile;
  std::vector<std::string> missing;
  auto number = [&](size_t r, size_t c) -> absl::StatusOr<double> {
    const std::string& cell = table->rows[r][c];
    if (cell.empty()) return std::nan("");
    std::optional<double> x = ParseNumber(cell);
    if (!x) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", table->row_lines[r], ": column \"",
                                                     table->header[c],
                                                     "\": expected a number, got \"", cell, "\""));
    }
    return *x;
  };
  for (const v1::FeatureSpec& f : schema.features()) {
    std::optional<size_t> c = table->ColumnIndex(f.name());
    if (!c) {
      missing.push_back(f.name());
      continue;
    }
    if (f.kind() == v1::FEATURE_KIND_NUMERIC) {
      v1::NumericColumn* col = profile.add_numeric();
      col->set_name(f.name());
      for (size_t r = 0; r < table->rows.size(); ++r) {
        absl::StatusOr<double> x = number(r, *c);
        if (!x.ok()) return x.status();
        col->add_values(*x);
      }
    } else {
      v1::CategoricalColumn* col = profile.add_categorical();
      col->set_name(f.name());
      std::map<std::string, int32_t> codes;
      for (const auto& row : table->rows) {
        const std::string& v = row[*c];
        if (v.empty()) {
          col->add_codes(-1);
          continue;
        }
        auto [it, inserted] = codes.emplace(v, col->dictionary_size());
        if (inserted) col->add_dictionary(v);
        col->add_codes(it->second);
      }
    }
  }
  const std::vector<std::string> score_columns = internal::ScoreColumns(schema);
  std::vector<size_t> score_index;
  for (const std::string& s : score_columns) {
    if (std::optional<size_t> c = table->ColumnIndex(s)) score_index.push_back(*c);
  }
  if (!score_index.empty() && score_index.size() != score_columns.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": has some score columns but not all of ",
                                                   absl::StrJoin(score_columns, ", ")));
  }
  if (score_index.empty()) {
    for (const std::string& s : score_columns) missing.push_back(s);
  }
  for (size_t c : score_index) {  // score-major, like ColumnarBatch
    for (size_t r = 0; r < table->rows.size(); ++r) {
      absl::StatusOr<double> x = number(r, c);
      if (!x.ok()) return x.status();
      profile.add_scores(*x);
    }
  }
  if (weight_column) {
    absl::StatusOr<std::vector<double>> weights = ReadWeights(*table, *weight_column);
    if (!weights.ok()) return weights.status();
    for (double w : *weights) profile.add_weights(w);
  }
  if (profile.numeric_size() + profile.categorical_size() + profile.scores_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no column matches a feature or score of ", Label(schema.model())));
  }
  std::vector<std::string> unknown;
  for (const std::string& column : table->header) {
    const bool known =
        std::any_of(schema.features().begin(), schema.features().end(),
                    [&](const v1::FeatureSpec& f) { return f.name() == column; }) ||
        std::find(score_columns.begin(), score_columns.end(), column) != score_columns.end() ||
        (weight_column && column == *weight_column);
    if (!known) unknown.push_back(column);
  }
  if (!unknown.empty()) {
    err << "driftctl: warning: " << path << ": ignoring column" << (unknown.size() > 1 ? "s " : " ")
        << absl::StrJoin(unknown, ", ") << " (not in the schema of " << Label(schema.model())
        << ")\n";
  }
  if (!missing.empty()) {
    err << "driftctl: warning: " << path << " has no column for " << absl::StrJoin(missing, ", ")
        << "; the baseline will not cover them\n";
  }
  return profile;
}

std::string BaselineSource(const v1::BaselineSpec& spec) {
  switch (spec.source_case()) {
    case v1::BaselineSpec::kProfile:
      return "profile";
    case v1::BaselineSpec::kPinnedRange:
      return absl::StrCat(
          "range ", internal::FormatTimeMs(internal::TimestampMs(spec.pinned_range().start())),
          "..", internal::FormatTimeMs(internal::TimestampMs(spec.pinned_range().end())));
    case v1::BaselineSpec::kTrailing:
      return absl::StrCat(
          "trailing ", internal::FormatDurationMs(spec.trailing().length_seconds() * 1000), " lag ",
          internal::FormatDurationMs(spec.trailing().lag_seconds() * 1000));
    default:
      return "-";
  }
}

}  // namespace

int RunRegister(const RegisterOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  absl::StatusOr<v1::ModelSchema> schema = ReadSchema(options.schema_path);
  if (!schema.ok()) return internal::ReportError(err, schema.status());
  v1::RegisterModelRequest request;
  *request.mutable_schema() = std::move(*schema);
  v1::RegisterModelResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Models::NewStub(conn->channel)->RegisterModel(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "RegisterModel", status);
  out << (response.created() ? "created " : "exists ") << Label(response.schema().model()) << "\n";
  return kExitOk;
}

int RunModels(const ModelsOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::ListModelsResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Models::NewStub(conn->channel)->ListModels(&context, v1::ListModelsRequest(), &response);
  if (!status.ok()) return internal::ReportRpcError(err, "ListModels", status);
  if (options.json) {
    out << ProtoJson(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"id", "version", "features", "slice keys", "score kind"}};
  for (const v1::ModelSchema& m : response.models()) {
    int numeric = 0;
    for (const v1::FeatureSpec& f : m.features()) numeric += f.kind() == v1::FEATURE_KIND_NUMERIC;
    std::vector<std::string> keys;
    for (const v1::SliceKeySpec& k : m.slice_keys()) keys.push_back(k.key());
    rows.push_back({m.model().model_id(), m.model().model_version(),
                    absl::StrCat(m.features_size(), " (", numeric, " numeric, ",
                                 m.features_size() - numeric, " categorical)"),
                    keys.empty() ? "-" : absl::StrJoin(keys, ","),
                    internal::ScoreKindName(m.score_kind())});
  }
  internal::WriteColumns(rows, rows.front().size(), out);
  return kExitOk;
}

int RunBaselineCreate(const BaselineCreateOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  const int sources =
      options.range.has_value() + options.trailing.has_value() + options.profile.has_value();
  if (sources != 1) {
    return internal::ReportError(
        err, absl::InvalidArgumentError("give exactly one of --range, --trailing, --profile"));
  }
  if (options.bins < 1) {
    return internal::ReportError(err, absl::InvalidArgumentError("--bins must be >= 1"));
  }
  if (options.weight_column && !options.profile) {
    return internal::ReportError(err,
                                 absl::InvalidArgumentError("--weight-column needs --profile"));
  }
  v1::CreateBaselineRequest request;
  *request.mutable_model() = Ref(options.model, options.version);
  v1::BaselineSpec* spec = request.mutable_baseline();
  spec->set_name(options.name);
  spec->set_bins(static_cast<uint32_t>(options.bins));
  auto stub = v1::Models::NewStub(conn->channel);
  if (options.range) {
    std::vector<std::string> parts = absl::StrSplit(*options.range, "..");
    if (parts.size() != 2) {
      return internal::ReportError(
          err, absl::InvalidArgumentError("--range: expected START..END, got \"" + *options.range +
                                          "\""));
    }
    absl::StatusOr<int64_t> start = internal::ParseTimeMs(parts[0]);
    absl::StatusOr<int64_t> end = internal::ParseTimeMs(parts[1]);
    for (const auto* t : {&start, &end}) {
      if (!t->ok()) {
        return internal::ReportError(
            err, absl::InvalidArgumentError(absl::StrCat("--range: ", t->status().message())));
      }
    }
    if (*end <= *start) {
      return internal::ReportError(err,
                                   absl::InvalidArgumentError("--range: END must be after START"));
    }
    internal::SetTimestampMs(*start, spec->mutable_pinned_range()->mutable_start());
    internal::SetTimestampMs(*end, spec->mutable_pinned_range()->mutable_end());
  } else if (options.trailing) {
    std::vector<std::string> parts = absl::StrSplit(*options.trailing, ':');
    absl::StatusOr<int64_t> length = internal::ParseDurationMs(parts[0]);
    absl::StatusOr<int64_t> lag =
        parts.size() > 1 ? internal::ParseDurationMs(parts[1]) : absl::StatusOr<int64_t>(0);
    if (parts.size() > 2 || !length.ok() || !lag.ok() || *length < 1000) {
      return internal::ReportError(
          err, absl::InvalidArgumentError(
                   "--trailing: expected LENGTH[:LAG] like 24h or 24h:1h, got \"" +
                   *options.trailing + "\""));
    }
    spec->mutable_trailing()->set_length_seconds(*length / 1000);
    spec->mutable_trailing()->set_lag_seconds(*lag / 1000);
  } else {
    // The profile's columns are matched to the schema, so fetch it first.
    v1::GetModelRequest get;
    *get.mutable_model() = request.model();
    v1::ModelSchema schema;
    grpc::ClientContext context;
    conn->Arm(&context);
    grpc::Status status = stub->GetModel(&context, get, &schema);
    if (!status.ok()) return internal::ReportRpcError(err, "GetModel", status);
    absl::StatusOr<v1::ReferenceProfile> profile =
        ReadProfile(*options.profile, options.weight_column, schema, err);
    if (!profile.ok()) return internal::ReportError(err, profile.status());
    *spec->mutable_profile() = std::move(*profile);
    *request.mutable_model() = schema.model();
  }
  v1::Baseline baseline;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status = stub->CreateBaseline(&context, request, &baseline);
  if (!status.ok()) return internal::ReportRpcError(err, "CreateBaseline", status);
  out << "created baseline " << baseline.spec().name() << " for " << Label(baseline.model()) << ": "
      << BaselineSource(baseline.spec()) << ", reference weight "
      << internal::FormatNumber(baseline.reference_weight()) << "\n";
  return kExitOk;
}

int RunBaselineList(const BaselineListOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  v1::ListBaselinesRequest request;
  *request.mutable_model() = Ref(options.model, options.version);
  v1::ListBaselinesResponse response;
  grpc::ClientContext context;
  conn->Arm(&context);
  grpc::Status status =
      v1::Models::NewStub(conn->channel)->ListBaselines(&context, request, &response);
  if (!status.ok()) return internal::ReportRpcError(err, "ListBaselines", status);
  if (options.json) {
    // Profiles carry raw reference rows; the listing needs only their size.
    for (v1::Baseline& b : *response.mutable_baselines()) {
      if (b.spec().has_profile()) b.mutable_spec()->mutable_profile()->Clear();
    }
    out << ProtoJson(response) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"name", "model", "source", "bins", "created", "reference weight"}};
  for (const v1::Baseline& b : response.baselines()) {
    rows.push_back({b.spec().name(), Label(b.model()), BaselineSource(b.spec()),
                    absl::StrCat(b.spec().bins() == 0 ? 10u : b.spec().bins()),
                    internal::FormatTimeMs(internal::TimestampMs(b.created_at())),
                    internal::FormatNumber(b.reference_weight())});
  }
  internal::WriteColumns(rows, 5, out);
  return kExitOk;
}

}  // namespace driftwatch::cli
