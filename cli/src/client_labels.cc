// `driftctl labels push`: a CSV / JSONL file of delayed labels streamed to
// Ingest.StreamLabels. The whole file is parsed and checked against the
// model's label kind before anything is sent; then the labels go in
// batches over one stream, which the server acks once they are committed.
#include <algorithm>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "driftwatch/cli/client.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/cli/labels_file.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "internal/client_util.h"
#include "internal/progress.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

// What a count of the ack means, printed below the table when not zero.
struct Outcome {
  const char* name;  // as in the JSON summary
  const char* title;
  uint64_t (v1::LabelAck::*count)() const;
  const char* note;  // empty: none
};

constexpr Outcome kOutcomes[] = {
    {"joined", "joined", &v1::LabelAck::joined, ""},
    {"pending", "pending", &v1::LabelAck::pending,
     "no prediction with that event id yet: held, and joined when it arrives"},
    {"duplicates", "duplicates", &v1::LabelAck::duplicates, ""},
    {"conflicting", "conflicting", &v1::LabelAck::conflicting,
     "the event already had a label with another value: the first one is kept"},
    {"not_sampled", "not sampled", &v1::LabelAck::not_sampled,
     "the event id is outside the model's label_join_rate sample (driftctl sample) and is not "
     "joined"},
    {"orphan", "orphan", &v1::LabelAck::orphan,
     "no prediction, and too old (or too many pending) to wait for one: dropped"},
    {"rejected", "rejected", &v1::LabelAck::rejected, ""},
};

void WriteSummary(const v1::LabelAck& ack, uint64_t sent, double seconds, bool json,
                  std::ostream& out) {
  const double rate = seconds > 0 ? static_cast<double>(sent) / seconds : 0;
  if (json) {
    nlohmann::ordered_json doc = {{"sent", sent}};
    for (const Outcome& o : kOutcomes) doc[o.name] = (ack.*o.count)();
    doc["batches"] = ack.batches();
    nlohmann::ordered_json reasons = nlohmann::ordered_json::array();
    for (const v1::RejectReason& r : ack.reasons()) {
      reasons.push_back({{"reason", r.reason()},
                         {"count", r.count()},
                         {"example_event_id", r.example_event_id()},
                         {"message", internal::WithHumanTimes(r.message())}});
    }
    doc["reasons"] = std::move(reasons);
    doc["seconds"] = seconds;
    doc["labels_per_second"] = rate;
    out << internal::DumpJson(doc) << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {{"sent", absl::StrCat(sent)}};
  for (const Outcome& o : kOutcomes) rows.push_back({o.title, absl::StrCat((ack.*o.count)())});
  rows.push_back({"labels/s", absl::StrFormat("%.0f (%.2f s)", rate, seconds)});
  internal::WriteColumns(rows, 1, out);
  bool first_note = true;
  for (const Outcome& o : kOutcomes) {
    if (*o.note == '\0' || (ack.*o.count)() == 0) continue;
    out << (first_note ? "\n" : "") << o.title << ": " << o.note << "\n";
    first_note = false;
  }
  if (!ack.reasons().empty()) {
    out << "\nrejected by reason:\n";
    for (const v1::RejectReason& r : ack.reasons()) {
      out << "  " << r.reason() << ": " << r.count() << (r.count() == 1 ? " label" : " labels")
          << ", e.g. event_id \"" << r.example_event_id() << "\"\n"
          << "    " << internal::WithHumanTimes(r.message()) << "\n";
    }
  }
}

}  // namespace

int RunLabelsPush(const LabelsPushOptions& options, std::ostream& out, std::ostream& err,
                  bool err_is_tty) {
  absl::StatusOr<internal::Connection> conn = internal::Connect(options.server);
  if (!conn.ok()) return internal::ReportError(err, conn.status());
  if (options.batch < 1) {
    return internal::ReportError(err, absl::InvalidArgumentError("--batch must be >= 1"));
  }
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());  // for rows without a label time
  absl::StatusOr<CsvTable> table = internal::ReadTable(options.input);
  if (!table.ok()) return internal::ReportError(err, table.status());

  // The schema resolves the version (every batch names the same one) and
  // gives the label kind the values are checked against.
  v1::GetModelRequest get;
  internal::SetModel(options.model, options.version, get.mutable_model());
  v1::ModelSchema schema;
  {
    grpc::ClientContext context;
    conn->Arm(&context);
    grpc::Status status = v1::Models::NewStub(conn->channel)->GetModel(&context, get, &schema);
    if (!status.ok()) return internal::ReportRpcError(err, "GetModel", status);
  }
  absl::StatusOr<std::vector<v1::Label>> labels = ParseLabels(*table, schema, now_ms, err);
  if (!labels.ok()) {
    internal::ReportError(err, labels.status());
    err << "driftctl: labels push: nothing was sent\n";
    return kExitBadInput;
  }
  table->rows.clear();

  internal::Progress progress(err, err_is_tty, labels->size(),
                              {"labels push", "labels", "sent", "labels/s"});
  grpc::ClientContext context;
  conn->Arm(&context);
  v1::LabelAck ack;
  std::unique_ptr<grpc::ClientWriter<v1::LabelBatch>> writer =
      v1::Ingest::NewStub(conn->channel)->StreamLabels(&context, &ack);
  const size_t batch_size = static_cast<size_t>(options.batch);
  uint64_t sent = 0;
  v1::LabelBatch batch;
  for (size_t begin = 0; begin < labels->size(); begin += batch_size) {
    const size_t end = std::min(labels->size(), begin + batch_size);
    batch.Clear();
    *batch.mutable_model() = schema.model();
    for (size_t i = begin; i < end; ++i) *batch.add_labels() = std::move((*labels)[i]);
    if (!writer->Write(batch)) break;  // the stream failed: Finish says why
    sent += end - begin;
    progress.Update(sent, sent == labels->size());
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) {
    if (sent > 0) {
      err << "driftctl: labels push: " << sent << " of " << labels->size()
          << " labels were sent and none is acknowledged; sending the file again is safe "
             "(a label already in counts as a duplicate)\n";
    }
    return internal::ReportRpcError(err, "StreamLabels", status);
  }
  if (labels->empty()) progress.Update(0, true);
  WriteSummary(ack, sent, progress.seconds(), options.json, out);
  if (ack.rejected() > 0 && !options.allow_rejects) {
    err << "driftctl: labels push: the server rejected " << ack.rejected() << " of " << sent
        << " labels (reasons above); --allow-rejects exits 0 anyway\n";
    return kExitRejected;
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
