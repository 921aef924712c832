// Batch decoding: a PredictionBatch in row or columnar form becomes a run
// of EventViews, one shape for the rest of the ingest pipeline. Decoding
// checks only the shape of what was sent (counts, names, dictionary codes);
// validate.h checks the values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/service/ingest_options.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reject_reason.h"
#include "driftwatch/v1/ingest.pb.h"

namespace driftwatch::service::ingest {

// One event, whichever form it came in. The views point into the batch.
struct EventView {
  std::string_view event_id;
  int64_t event_time_ms = 0;
  double sample_rate = 1;  // 0 on the wire means 1
  uint64_t id_hash = 0;    // EventIdHash(event_id)
  std::vector<double> numeric;                // schema order; NaN is null
  std::vector<std::string_view> categorical;  // schema order
  std::vector<uint8_t> categorical_null;      // schema order
  std::vector<double> scores;
  // How many of `numeric` and `scores` are NaN or +-Inf (counted while
  // decoding, so that the usual event with none costs nothing later).
  uint32_t non_finite = 0;
  double latency_ms = 0;  // 0: not sent
  std::string_view feature_hash;  // the event's, else the batch's; "" none
  // Named fields (named_numeric, named_categorical, named_slices) whose
  // name is not in the schema: ignored, and counted (unknown_fields).
  uint32_t unknown_fields = 0;
};

// Why one event cannot be ingested.
struct Rejection {
  RejectReason reason;
  std::string message;
};

// Not thread-safe; the batch, the model and the options must outlive it.
class BatchDecoder {
 public:
  // INVALID_ARGUMENT naming the field when the batch as a whole is
  // malformed: both forms set, columnar lengths that do not add up, a
  // categorical column that is not a feature, a slice tuple with the wrong
  // number of values. Hashes every event id (outside any lock). `options`
  // gives the string length limits.
  static absl::StatusOr<BatchDecoder> Create(const v1::PredictionBatch& batch,
                                             const RegisteredModel& model,
                                             const IngestOptions& options);

  size_t size() const { return hashes_.size(); }
  // Of event i, for look-ahead before it is decoded.
  uint64_t id_hash(size_t i) const { return hashes_[i]; }
  int64_t event_time_ms(size_t i) const {
    const int index = static_cast<int>(i);
    return columns_ != nullptr ? columns_->event_time_ms(index)
                               : batch_->rows().events(index).event_time_ms();
  }

  // Fills `view` with event i (sized for the model once, reused). False,
  // with `rejection` set, when the event itself is malformed (value counts,
  // dictionary codes, a categorical value, slice value, query id or
  // feature hash over its length limit). Unknown named fields are not a
  // rejection: they are ignored and counted in view->unknown_fields.
  bool Decode(size_t i, EventView* view, Rejection* rejection) const {
    view->id_hash = hashes_[i];
    return columns_ != nullptr ? DecodeColumn(i, view, rejection) : DecodeRow(i, view, rejection);
  }
  // A view sized for the model.
  EventView NewView() const;

  // The value event i sends for slice key `key` ("" when missing).
  std::string_view SliceValue(size_t i, int key) const;
  // Columnar batches: the slice_dictionary entry of event i, so that
  // slices resolve once per tuple; -1 for row batches.
  int SliceTuple(size_t i) const {
    if (columns_ == nullptr || model_->slice_key_count() == 0) return -1;
    return static_cast<int>(columns_->slice_codes(static_cast<int>(i)));
  }
  int slice_tuples() const;
  // Columnar batches: value `key` of slice_dictionary entry `tuple`.
  std::string_view TupleValue(int tuple, int key) const {
    return columns_->slice_dictionary(tuple).values(key);
  }

  // Rankers: the query id and position event i sends ("" and 0 if none).
  std::string_view QueryId(size_t i) const {
    const int index = static_cast<int>(i);
    if (columns_ != nullptr) {
      return columns_->query_ids_size() > index ? std::string_view(columns_->query_ids(index))
                                                : std::string_view();
    }
    return batch_->rows().events(index).query_id();
  }
  int32_t Position(size_t i) const {
    const int index = static_cast<int>(i);
    if (columns_ != nullptr) {
      return columns_->positions_size() > index ? columns_->positions(index) : 0;
    }
    return batch_->rows().events(index).position();
  }

  // Event i in row form, serialized: what the raw sample keeps.
  std::string SerializeEvent(size_t i, const EventView& view) const;

 private:
  BatchDecoder(const v1::PredictionBatch& batch, const RegisteredModel& model,
               const IngestOptions& options)
      : batch_(&batch), model_(&model), options_(&options) {}
  absl::Status CheckColumns();
  bool DecodeRow(size_t i, EventView* view, Rejection* rejection) const;
  bool DecodeColumn(size_t i, EventView* view, Rejection* rejection) const;

  const v1::PredictionBatch* batch_;
  const RegisteredModel* model_;
  const IngestOptions* options_;
  const v1::ColumnarBatch* columns_ = nullptr;  // columnar batches only
  // Columnar: per slice_dictionary entry, 1 when a value is over
  // max_slice_value_bytes; empty when none is (the usual batch).
  std::vector<uint8_t> long_tuples_;
  std::vector<const v1::CategoricalColumn*> categorical_columns_;  // by feature; null: absent
  std::vector<uint64_t> hashes_;
};

}  // namespace driftwatch::service::ingest
