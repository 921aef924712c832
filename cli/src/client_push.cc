// `driftctl push`: a CSV / JSONL file of predictions streamed to
// Ingest.StreamPredictions. The whole file is parsed and checked against
// the model's schema before anything is sent, so bad input sends nothing.
// The server acks a stream only once its events are committed; the file is
// sent as several short streams so acks (and progress) arrive as it goes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <ostream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "internal/client_util.h"
#include "internal/progress.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

// One parsed row in schema order.
struct Row {
  std::string event_id;
  int64_t event_time_ms = 0;
  double sample_rate = 0;  // 0 = 1 (the wire's default)
  std::vector<double> numeric;
  std::vector<std::string> categorical;
  std::vector<double> scores;
  std::vector<std::string> slices;
};

// The file's column for each schema field.
struct ColumnMap {
  size_t event_id = 0;
  size_t time = 0;
  std::optional<size_t> sample_rate;
  std::vector<size_t> numeric;
  std::vector<std::string> categorical_names;
  std::vector<size_t> categorical;
  std::vector<size_t> scores;
  std::vector<size_t> slices;
};

absl::StatusOr<ColumnMap> MapColumns(const CsvTable& table, const v1::ModelSchema& schema,
                                     const PushOptions& options, std::ostream& err) {
  ColumnMap map;
  std::vector<std::string> missing;
  std::vector<bool> used(table.header.size(), false);
  auto find = [&](const std::string& name, std::string_view what) -> size_t {
    std::optional<size_t> c = table.ColumnIndex(name);
    if (!c) {
      missing.push_back(absl::StrCat("\"", name, "\" (", internal::Sv(what), ")"));
      return 0;
    }
    used[*c] = true;
    return *c;
  };
  map.event_id = find(options.event_id_column, "event id");
  map.time = find(options.time_column, "event time");
  if (options.sample_rate_column)
    map.sample_rate = find(*options.sample_rate_column, "sample rate");
  for (const v1::FeatureSpec& f : schema.features()) {
    if (f.kind() == v1::FEATURE_KIND_NUMERIC) {
      map.numeric.push_back(find(f.name(), "numeric feature"));
    } else {
      map.categorical_names.push_back(f.name());
      map.categorical.push_back(find(f.name(), "categorical feature"));
    }
  }
  for (const std::string& s : internal::ScoreColumns(schema))
    map.scores.push_back(find(s, "score"));
  for (const v1::SliceKeySpec& k : schema.slice_keys())
    map.slices.push_back(find(k.key(), "slice key"));
  if (!missing.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(table.name, ":1: missing column", missing.size() > 1 ? "s " : " ",
                     absl::StrJoin(missing, ", "), " of model ", schema.model().model_id(), "@",
                     schema.model().model_version()));
  }
  std::vector<std::string> unknown;
  for (size_t c = 0; c < table.header.size(); ++c) {
    if (!used[c]) unknown.push_back(table.header[c]);
  }
  if (!unknown.empty()) {
    err << "driftctl: warning: " << table.name << ": ignoring column"
        << (unknown.size() > 1 ? "s " : " ") << absl::StrJoin(unknown, ", ")
        << " (not in the schema of " << schema.model().model_id() << "@"
        << schema.model().model_version() << ")\n";
  }
  return map;
}

absl::StatusOr<std::vector<Row>> ParseRows(const CsvTable& table, const ColumnMap& map) {
  std::vector<Row> rows(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& cells = table.rows[r];
    auto bad = [&](size_t c, std::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.name, ":", table.row_lines[r], ": column \"", table.header[c],
                       "\": ", internal::Sv(what), ", got \"", cells[c], "\""));
    };
    // Empty numeric cells are nulls (NaN on the wire).
    auto number = [&](size_t c, double* x) -> absl::Status {
      if (cells[c].empty()) {
        *x = std::nan("");
        return absl::OkStatus();
      }
      std::optional<double> v = ParseNumber(cells[c]);
      if (!v) return bad(c, "expected a number");
      *x = *v;
      return absl::OkStatus();
    };
    Row& row = rows[r];
    row.event_id = cells[map.event_id];
    if (cells[map.time].empty()) return bad(map.time, "expected an event time");
    absl::StatusOr<int64_t> t = internal::ParseTimeMs(cells[map.time]);
    if (!t.ok()) return bad(map.time, "expected Unix milliseconds or an RFC 3339 time");
    row.event_time_ms = *t;
    if (map.sample_rate && !cells[*map.sample_rate].empty()) {
      std::optional<double> rate = ParseNumber(cells[*map.sample_rate]);
      if (!rate || !(*rate > 0 && *rate <= 1)) {
        return bad(*map.sample_rate, "expected a sample rate in (0, 1]");
      }
      row.sample_rate = *rate;
    }
    row.numeric.resize(map.numeric.size());
    for (size_t f = 0; f < map.numeric.size(); ++f) {
      if (absl::Status s = number(map.numeric[f], &row.numeric[f]); !s.ok()) return s;
    }
    for (size_t c : map.categorical) row.categorical.push_back(cells[c]);
    row.scores.resize(map.scores.size());
    for (size_t s = 0; s < map.scores.size(); ++s) {
      if (absl::Status st = number(map.scores[s], &row.scores[s]); !st.ok()) return st;
    }
    for (size_t c : map.slices) row.slices.push_back(cells[c]);
  }
  return rows;
}

void FillRowBatch(const std::vector<Row>& rows, size_t begin, size_t end, v1::RowBatch* batch) {
  for (size_t i = begin; i < end; ++i) {
    const Row& r = rows[i];
    v1::PredictionEvent* e = batch->add_events();
    e->set_event_id(r.event_id);
    e->set_event_time_ms(r.event_time_ms);
    e->set_sample_rate(r.sample_rate);
    *e->mutable_numeric() = {r.numeric.begin(), r.numeric.end()};
    *e->mutable_categorical() = {r.categorical.begin(), r.categorical.end()};
    *e->mutable_scores() = {r.scores.begin(), r.scores.end()};
    *e->mutable_slice_values() = {r.slices.begin(), r.slices.end()};
  }
}

void FillColumnarBatch(const std::vector<Row>& rows, size_t begin, size_t end, const ColumnMap& map,
                       v1::ColumnarBatch* batch) {
  const size_t n = end - begin;
  batch->set_num_events(static_cast<uint32_t>(n));
  bool any_rate = false;
  for (size_t i = begin; i < end; ++i) {
    batch->add_event_ids(rows[i].event_id);
    batch->add_event_time_ms(rows[i].event_time_ms);
    any_rate |= rows[i].sample_rate != 0;
  }
  if (any_rate) {
    for (size_t i = begin; i < end; ++i) batch->add_sample_rate(rows[i].sample_rate);
  }
  for (size_t f = 0; f < map.numeric.size(); ++f) {
    for (size_t i = begin; i < end; ++i) batch->add_numeric(rows[i].numeric[f]);
  }
  for (size_t f = 0; f < map.categorical.size(); ++f) {
    v1::CategoricalColumn* col = batch->add_categorical();
    col->set_name(map.categorical_names[f]);
    absl::flat_hash_map<std::string, int32_t> codes;
    for (size_t i = begin; i < end; ++i) {
      const std::string& v = rows[i].categorical[f];
      if (v.empty()) {
        col->add_codes(-1);
        continue;
      }
      auto [it, inserted] = codes.try_emplace(v, col->dictionary_size());
      if (inserted) col->add_dictionary(v);
      col->add_codes(it->second);
    }
  }
  for (size_t s = 0; s < map.scores.size(); ++s) {
    for (size_t i = begin; i < end; ++i) batch->add_scores(rows[i].scores[s]);
  }
  if (!map.slices.empty()) {
    std::map<std::vector<std::string>, uint32_t> tuples;
    for (size_t i = begin; i < end; ++i) {
      auto [it, inserted] = tuples.try_emplace(rows[i].slices, batch->slice_dictionary_size());
      if (inserted) {
        *batch->add_slice_dictionary()->mutable_values() = {rows[i].slices.begin(),
                                                            rows[i].slices.end()};
      }
      batch->add_slice_codes(it->second);
    }
  }
  (void)n;
}

// Sums of the acks received so far.
struct Totals {
  uint64_t sent = 0;
  uint64_t acked_events = 0;  // events of streams that were acked
  uint64_t accepted = 0, duplicates = 0, rejected = 0, late = 0, too_late = 0, backfilled = 0,
           batches = 0;
  std::map<std::string, v1::RejectReason> reasons;

  void Add(const v1::IngestAck& ack) {
    accepted += ack.accepted();
    duplicates += ack.duplicates();
    rejected += ack.rejected();
    late += ack.late_accepted();
    too_late += ack.too_late();
    backfilled += ack.backfilled();
    batches += ack.batches();
    for (const v1::RejectReason& r : ack.reasons()) {
      v1::RejectReason& mine = reasons[r.reason()];
      if (mine.count() == 0)
        mine = r;
      else
        mine.set_count(mine.count() + r.count());
    }
  }
};

// One line on what to do about a reject reason (docs/ingest.md).
std::string Advice(const std::string& reason) {
  static const auto* advice = new std::map<std::string, std::string, std::less<>>{
      {"too_late",
       "raise ingest.backfill_horizon (or ingest.allowed_lateness) in the server's "
       "configuration; events older than it cannot be merged"},
      {"event_time_in_future",
       "check the client clock, and that the time column is Unix milliseconds or RFC 3339 "
       "(the server allows ingest.max_future_skew ahead)"},
      {"missing_event_time", "give every row an event time (--time-column)"},
      {"missing_event_id", "give every row an event id (--event-id-column)"},
      {"invalid_sample_rate", "sample rates must be in (0, 1] (--sample-rate-column)"},
      {"numeric_count_mismatch",
       "the events do not match the registered schema: check --version and the file's columns "
       "(driftctl models)"},
      {"categorical_count_mismatch",
       "the events do not match the registered schema: check --version and the file's columns "
       "(driftctl models)"},
      {"score_count_mismatch",
       "send one score per score of the schema (score_names): check --version (driftctl models)"},
      {"slice_count_mismatch",
       "send one value per slice key of the schema: check --version (driftctl models)"},
      {"unknown_feature", "name only features of the registered schema (driftctl models)"},
      {"unknown_slice_key", "name only slice keys of the registered schema (driftctl models)"},
      {"bad_dictionary_code",
       "a columnar batch used a code outside its dictionary: a bug in the sending client"},
      {"event_id_too_long", "shorten the event ids, or raise ingest.max_event_id_bytes"},
      {"category_too_long",
       "shorten the categorical values (ids do not belong in a category), or raise "
       "ingest.max_category_bytes"},
      {"slice_value_too_long", "shorten the slice values, or raise ingest.max_slice_value_bytes"},
      {"query_id_too_long", "shorten the query ids, or raise ingest.max_query_id_bytes"},
  };
  auto it = advice->find(reason);
  return it != advice->end() ? it->second
                             : "see the reject reasons in docs/ingest.md of the server's version";
}

void WriteSummary(const Totals& t, double seconds, bool json, std::ostream& out) {
  const double rate = seconds > 0 ? t.acked_events / seconds : 0;
  if (json) {
    nlohmann::ordered_json reasons = nlohmann::ordered_json::array();
    for (const auto& [name, r] : t.reasons) {
      reasons.push_back({{"reason", name},
                         {"count", r.count()},
                         {"example_event_id", r.example_event_id()},
                         {"message", internal::WithHumanTimes(r.message())},
                         {"advice", Advice(name)}});
    }
    nlohmann::ordered_json doc = {{"sent", t.sent},
                                  {"accepted", t.accepted},
                                  {"duplicates", t.duplicates},
                                  {"rejected", t.rejected},
                                  {"late", t.late},
                                  {"too_late", t.too_late},
                                  {"backfilled", t.backfilled},
                                  {"batches", t.batches},
                                  {"reasons", std::move(reasons)},
                                  {"seconds", seconds},
                                  {"events_per_second", rate}};
    out << doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"sent", absl::StrCat(t.sent)},
      {"accepted", absl::StrCat(t.accepted)},
      {"duplicates", absl::StrCat(t.duplicates)},
      {"rejected", absl::StrCat(t.rejected)},
      {"late (accepted)", absl::StrCat(t.late)},
      {"backfilled (accepted into closed buckets)", absl::StrCat(t.backfilled)},
      {"too late (rejected)", absl::StrCat(t.too_late)},
      {"events/s", absl::StrFormat("%.0f (%.2f s)", rate, seconds)}};
  internal::WriteColumns(rows, 1, out);
  if (!t.reasons.empty()) {
    out << "\nrejected by reason:\n";
    for (const auto& [name, r] : t.reasons) {
      out << "  " << name << ": " << r.count() << (r.count() == 1 ? " event" : " events")
          << ", e.g. event_id \"" << r.example_event_id() << "\"\n"
          << "    " << internal::WithHumanTimes(r.message()) << "\n"
          << "    what to do: " << Advice(name) << "\n";
    }
  }
}

}  // namespace

int RunPush(const PushOptions& options, std::ostream& out, std::ostream& err, bool err_is_tty) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  if (options.batch < 1 || options.stream_batches < 1) {
    return internal::ReportError(
        err, absl::InvalidArgumentError("--batch and --stream-batches must be >= 1"));
  }
  absl::StatusOr<CsvTable> table = internal::ReadTable(options.input);
  if (!table.ok()) return internal::ReportError(err, table.status());

  v1::GetModelRequest get;
  get.mutable_model()->set_model_id(options.model);
  get.mutable_model()->set_model_version(options.version);
  v1::ModelSchema schema;
  {
    grpc::ClientContext context;
    conn->Arm(&context);
    grpc::Status status = v1::Models::NewStub(conn->channel)->GetModel(&context, get, &schema);
    if (!status.ok()) return internal::ReportRpcError(err, "GetModel", status);
  }
  absl::StatusOr<ColumnMap> map = MapColumns(*table, schema, options, err);
  if (!map.ok()) return internal::ReportError(err, map.status());
  absl::StatusOr<std::vector<Row>> rows = ParseRows(*table, *map);
  if (!rows.ok()) return internal::ReportError(err, rows.status());
  table->rows.clear();

  auto stub = v1::Ingest::NewStub(conn->channel);
  Totals totals;
  internal::Progress progress(err, err_is_tty, rows->size(), {"push", "events", "acked", "ev/s"});
  const size_t batch_size = static_cast<size_t>(options.batch);
  const size_t stream_events = batch_size * static_cast<size_t>(options.stream_batches);
  for (size_t begin = 0; begin < rows->size(); begin += stream_events) {
    const size_t stream_end = std::min(rows->size(), begin + stream_events);
    grpc::ClientContext context;
    conn->Arm(&context);
    v1::IngestAck ack;
    std::unique_ptr<grpc::ClientWriter<v1::PredictionBatch>> writer =
        stub->StreamPredictions(&context, &ack);
    for (size_t b = begin; b < stream_end; b += batch_size) {
      const size_t e = std::min(stream_end, b + batch_size);
      v1::PredictionBatch batch;
      *batch.mutable_model() = schema.model();
      if (options.columnar) {
        FillColumnarBatch(*rows, b, e, *map, batch.mutable_columns());
      } else {
        FillRowBatch(*rows, b, e, batch.mutable_rows());
      }
      if (!writer->Write(batch)) break;  // the stream failed: Finish says why
      totals.sent += e - b;
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) {
      progress.Update(totals.acked_events, /*final=*/true);
      WriteSummary(totals, progress.seconds(), options.json, out);
      return internal::ReportRpcError(err, "StreamPredictions", status);
    }
    totals.acked_events += stream_end - begin;
    totals.Add(ack);
    progress.Update(totals.acked_events, stream_end == rows->size());
  }
  if (rows->empty()) progress.Update(totals.acked_events, true);
  WriteSummary(totals, progress.seconds(), options.json, out);
  if (totals.rejected > 0 && !options.allow_rejects) {
    err << "driftctl: push: the server rejected " << totals.rejected << " of " << totals.sent
        << " events (reasons above); --allow-rejects exits 0 anyway\n";
    return kExitRejected;
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
