#include "ingest/batch_decoder.h"

#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"
#include "ingest/dedup.h"

namespace driftwatch::service::ingest {
namespace {

using base::Sv;

Rejection Reject(RejectReason reason, std::string message) {
  return Rejection{reason, std::move(message)};
}

// `what` is over its limit; the message names the field, never the value.
Rejection TooLong(RejectReason reason, std::string_view what, size_t bytes, std::string_view key,
                  uint32_t limit) {
  return Reject(reason, absl::StrCat(Sv(what), " is ", bytes, " bytes, longer than ingest.",
                                     Sv(key), " (", limit, ")"));
}

}  // namespace

absl::StatusOr<BatchDecoder> BatchDecoder::Create(const v1::PredictionBatch& batch,
                                                  const RegisteredModel& model,
                                                  const IngestOptions& options) {
  if (batch.has_rows() && batch.has_columns()) {
    return absl::InvalidArgumentError(
        "batch sets both rows and columns; send one form per PredictionBatch");
  }
  if (batch.feature_hash().size() > options.max_category_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feature_hash is ", batch.feature_hash().size(),
        " bytes, longer than ingest.max_category_bytes (", options.max_category_bytes, ")"));
  }
  BatchDecoder decoder(batch, model, options);
  if (batch.has_rows()) {
    const auto& events = batch.rows().events();
    decoder.hashes_.resize(events.size());
    for (int i = 0; i < events.size(); ++i) decoder.hashes_[i] = EventIdHash(events[i].event_id());
  } else if (batch.has_columns()) {
    decoder.columns_ = &batch.columns();
    DW_RETURN_IF_ERROR(decoder.CheckColumns());
    const v1::ColumnarBatch& c = *decoder.columns_;
    decoder.hashes_.resize(c.num_events());
    for (size_t i = 0; i < decoder.hashes_.size(); ++i) {
      decoder.hashes_[i] = EventIdHash(c.event_ids(static_cast<int>(i)));
    }
  }
  return decoder;
}

absl::Status BatchDecoder::CheckColumns() {
  const v1::ColumnarBatch& c = *columns_;
  const RegisteredModel& m = *model_;
  const size_t n = c.num_events();
  auto check = [&](size_t got, size_t want, std::string_view field) -> absl::Status {
    if (got != want) {
      return absl::InvalidArgumentError(
          absl::StrCat("columns.", Sv(field), " has ", got, " values, expected ", want));
    }
    return absl::OkStatus();
  };
  DW_RETURN_IF_ERROR(check(c.event_ids_size(), n, "event_ids"));
  DW_RETURN_IF_ERROR(check(c.event_time_ms_size(), n, "event_time_ms"));
  DW_RETURN_IF_ERROR(check(c.numeric_size(), n * m.numeric_count(), "numeric"));
  DW_RETURN_IF_ERROR(check(c.scores_size(), n * m.score_count(), "scores"));
  if (c.sample_rate_size() > 1) DW_RETURN_IF_ERROR(check(c.sample_rate_size(), n, "sample_rate"));
  if (m.input_slice_key_count() > 0) {
    DW_RETURN_IF_ERROR(check(c.slice_codes_size(), n, "slice_codes"));
  }
  if (c.query_ids_size() > 0) DW_RETURN_IF_ERROR(check(c.query_ids_size(), n, "query_ids"));
  if (c.latency_ms_size() > 0) DW_RETURN_IF_ERROR(check(c.latency_ms_size(), n, "latency_ms"));
  if (c.feature_hashes_size() > 1) {
    DW_RETURN_IF_ERROR(check(c.feature_hashes_size(), n, "feature_hashes"));
  }
  // Categorical columns by name, dictionary-coded.
  categorical_columns_.assign(m.categorical_count(), nullptr);
  for (const v1::CategoricalColumn& col : c.categorical()) {
    std::optional<int> f = m.CategoricalIndex(col.name());
    if (!f) {
      return absl::InvalidArgumentError(
          absl::StrCat("columns.categorical \"", col.name(), "\" is not a categorical feature"));
    }
    DW_RETURN_IF_ERROR(
        check(col.codes_size(), n, absl::StrCat("categorical[", col.name(), "].codes")));
    categorical_columns_[*f] = &col;
  }
  for (int t = 0; t < c.slice_dictionary_size(); ++t) {
    const v1::SliceTuple& tuple = c.slice_dictionary(t);
    if (tuple.values_size() != m.input_slice_key_count()) {
      return absl::InvalidArgumentError(
          absl::StrCat("columns.slice_dictionary[", t, "] has ", tuple.values_size(),
                       " values, the schema has ", m.input_slice_key_count(), " slice keys"));
    }
    for (const std::string& value : tuple.values()) {
      if (value.size() <= options_->max_slice_value_bytes) continue;
      long_tuples_.resize(c.slice_dictionary_size());
      long_tuples_[t] = 1;
    }
  }
  return absl::OkStatus();
}

EventView BatchDecoder::NewView() const {
  EventView view;
  view.numeric.resize(model_->numeric_count());
  view.categorical.resize(model_->categorical_count());
  view.categorical_null.resize(model_->categorical_count());
  view.scores.resize(model_->score_count());
  return view;
}

bool BatchDecoder::DecodeRow(size_t i, EventView* view, Rejection* rejection) const {
  const RegisteredModel& m = *model_;
  const v1::PredictionEvent& e = batch_->rows().events(static_cast<int>(i));
  view->event_id = e.event_id();
  view->event_time_ms = e.event_time_ms();
  view->sample_rate = e.sample_rate() == 0 ? 1.0 : e.sample_rate();
  view->latency_ms = e.latency_ms();
  view->feature_hash = e.feature_hash().empty() ? std::string_view(batch_->feature_hash())
                                                : std::string_view(e.feature_hash());
  view->unknown_fields = 0;
  if (view->feature_hash.size() > options_->max_category_bytes) {
    *rejection = TooLong(RejectReason::kFeatureHashTooLong, "feature_hash",
                         view->feature_hash.size(), "max_category_bytes",
                         options_->max_category_bytes);
    return false;
  }
  // Positional values, then named ones on top.
  if (e.numeric_size() != 0 && e.numeric_size() != m.numeric_count()) {
    *rejection = Reject(RejectReason::kNumericCountMismatch,
                        absl::StrCat("numeric has ", e.numeric_size(), " values, the schema has ",
                                     m.numeric_count(), " numeric features"));
    return false;
  }
  // No numeric value at all is a client that forgot them, not an event
  // whose every value is null (send NaN for a null).
  if (e.numeric_size() == 0 && e.named_numeric().empty() && m.numeric_count() > 0) {
    *rejection = Reject(RejectReason::kNumericCountMismatch,
                        absl::StrCat("the event has no numeric values (neither numeric nor "
                                     "named_numeric), the schema has ",
                                     m.numeric_count(), " numeric features (send NaN for null)"));
    return false;
  }
  if (e.categorical_size() != 0 && e.categorical_size() != m.categorical_count()) {
    *rejection = Reject(RejectReason::kCategoricalCountMismatch,
                        absl::StrCat("categorical has ", e.categorical_size(),
                                     " values, the schema has ", m.categorical_count(),
                                     " categorical features"));
    return false;
  }
  if (e.scores_size() != m.score_count()) {
    *rejection = Reject(RejectReason::kScoreCountMismatch,
                        absl::StrCat("scores has ", e.scores_size(), " values, the schema has ",
                                     m.score_count()));
    return false;
  }
  if (e.slice_values_size() != 0 && e.slice_values_size() != m.input_slice_key_count()) {
    *rejection = Reject(RejectReason::kSliceCountMismatch,
                        absl::StrCat("slice_values has ", e.slice_values_size(),
                                     " values, the schema has ", m.input_slice_key_count(),
                                     " slice keys"));
    return false;
  }
  uint32_t non_finite = 0;
  for (int f = 0; f < m.numeric_count(); ++f) {
    const double x = e.numeric_size() ? e.numeric(f) : std::nan("");
    view->numeric[f] = x;
    non_finite += !std::isfinite(x);
  }
  const IngestOptions& o = *options_;
  for (int f = 0; f < m.categorical_count(); ++f) {
    view->categorical[f] = e.categorical_size() ? std::string_view(e.categorical(f)) : "";
    view->categorical_null[f] = view->categorical[f].empty();
    if (view->categorical[f].size() > o.max_category_bytes) {
      *rejection = TooLong(RejectReason::kCategoryTooLong,
                           absl::StrCat("categorical \"", m.layout()->categorical_names[f],
                                        "\" value"),
                           view->categorical[f].size(), "max_category_bytes",
                           o.max_category_bytes);
      return false;
    }
  }
  for (const auto& [name, value] : e.named_numeric()) {
    std::optional<int> f = m.NumericIndex(name);
    if (!f) {
      ++view->unknown_fields;
      continue;
    }
    non_finite += !std::isfinite(value);
    non_finite -= !std::isfinite(view->numeric[*f]);
    view->numeric[*f] = value;
  }
  for (const auto& [name, value] : e.named_categorical()) {
    std::optional<int> f = m.CategoricalIndex(name);
    if (!f) {
      ++view->unknown_fields;
      continue;
    }
    if (value.size() > o.max_category_bytes) {
      *rejection = TooLong(RejectReason::kCategoryTooLong,
                           absl::StrCat("named_categorical \"", name, "\" value"), value.size(),
                           "max_category_bytes", o.max_category_bytes);
      return false;
    }
    view->categorical[*f] = value;
    view->categorical_null[*f] = value.empty();
  }
  for (int s = 0; s < m.score_count(); ++s) {
    view->scores[s] = e.scores(s);
    non_finite += !std::isfinite(view->scores[s]);
  }
  view->non_finite = non_finite;
  for (const auto& [key, value] : e.named_slices()) {
    // A crossing's key is composed by the server, never sent.
    if (std::optional<int> k = m.SliceKeyIndex(key); !k || *k >= m.input_slice_key_count()) {
      ++view->unknown_fields;
      continue;
    }
    if (value.size() > o.max_slice_value_bytes) {
      *rejection = TooLong(RejectReason::kSliceValueTooLong,
                           absl::StrCat("named_slices \"", key, "\" value"), value.size(),
                           "max_slice_value_bytes", o.max_slice_value_bytes);
      return false;
    }
  }
  for (int k = 0; k < e.slice_values_size(); ++k) {
    if (e.slice_values(k).size() > o.max_slice_value_bytes) {
      *rejection = TooLong(RejectReason::kSliceValueTooLong,
                           absl::StrCat("slice_values[", k, "] (", m.slice_keys()[k], ")"),
                           e.slice_values(k).size(), "max_slice_value_bytes",
                           o.max_slice_value_bytes);
      return false;
    }
  }
  if (e.query_id().size() > o.max_query_id_bytes) {
    *rejection = TooLong(RejectReason::kQueryIdTooLong, "query_id", e.query_id().size(),
                         "max_query_id_bytes", o.max_query_id_bytes);
    return false;
  }
  return true;
}

bool BatchDecoder::DecodeColumn(size_t i, EventView* view, Rejection* rejection) const {
  const RegisteredModel& m = *model_;
  const v1::ColumnarBatch& c = *columns_;
  const int index = static_cast<int>(i);
  const size_t n = c.num_events();
  view->event_id = c.event_ids(index);
  view->event_time_ms = c.event_time_ms(index);
  view->sample_rate = c.sample_rate_size() == 0   ? 1.0
                      : c.sample_rate_size() == 1 ? c.sample_rate(0)
                                                  : c.sample_rate(index);
  if (view->sample_rate == 0) view->sample_rate = 1.0;
  view->latency_ms = c.latency_ms_size() == 0 ? 0.0 : c.latency_ms(index);
  view->feature_hash = c.feature_hashes_size() == 0   ? std::string_view(batch_->feature_hash())
                       : c.feature_hashes_size() == 1 ? std::string_view(c.feature_hashes(0))
                                                      : std::string_view(c.feature_hashes(index));
  if (view->feature_hash.size() > options_->max_category_bytes) {
    *rejection = TooLong(RejectReason::kFeatureHashTooLong, "feature_hashes value",
                         view->feature_hash.size(), "max_category_bytes",
                         options_->max_category_bytes);
    return false;
  }
  uint32_t non_finite = 0;
  for (int f = 0; f < m.numeric_count(); ++f) {
    const double x = c.numeric(static_cast<int>(f * n + i));
    view->numeric[f] = x;
    non_finite += !std::isfinite(x);
  }
  for (int f = 0; f < m.categorical_count(); ++f) {
    const v1::CategoricalColumn* col = categorical_columns_[f];
    const int code = col == nullptr ? -1 : col->codes(index);
    // -1 is null; every other code outside [0, dictionary size) is bad.
    if (col != nullptr && (code >= col->dictionary_size() || code < -1)) {
      *rejection = Reject(RejectReason::kBadDictionaryCode,
                          absl::StrCat("categorical \"", col->name(), "\" code ", code,
                                       " is outside its dictionary"));
      return false;
    }
    view->categorical_null[f] = code < 0;
    view->categorical[f] = code < 0 ? std::string_view() : std::string_view(col->dictionary(code));
    if (view->categorical[f].size() > options_->max_category_bytes) {
      *rejection = TooLong(RejectReason::kCategoryTooLong,
                           absl::StrCat("categorical \"", col->name(), "\" dictionary[", code, "]"),
                           view->categorical[f].size(), "max_category_bytes",
                           options_->max_category_bytes);
      return false;
    }
  }
  for (int s = 0; s < m.score_count(); ++s) {
    const double x = c.scores(static_cast<int>(s * n + i));
    view->scores[s] = x;
    non_finite += !std::isfinite(x);
  }
  view->non_finite = non_finite;
  if (m.input_slice_key_count() > 0) {
    const uint32_t code = c.slice_codes(index);
    if (code >= static_cast<size_t>(c.slice_dictionary_size())) {
      *rejection = Reject(RejectReason::kBadDictionaryCode,
                          absl::StrCat("slice_codes value ", code, " is outside slice_dictionary"));
      return false;
    }
    if (!long_tuples_.empty() && long_tuples_[code]) {
      *rejection = Reject(RejectReason::kSliceValueTooLong,
                          absl::StrCat("slice_dictionary[", code,
                                       "] has a value longer than ingest.max_slice_value_bytes (",
                                       options_->max_slice_value_bytes, ")"));
      return false;
    }
  }
  if (c.query_ids_size() > 0 && c.query_ids(index).size() > options_->max_query_id_bytes) {
    *rejection = TooLong(RejectReason::kQueryIdTooLong, "query_ids value",
                         c.query_ids(index).size(), "max_query_id_bytes",
                         options_->max_query_id_bytes);
    return false;
  }
  return true;
}

std::string_view BatchDecoder::SliceValue(size_t i, int key) const {
  const int index = static_cast<int>(i);
  if (columns_ != nullptr) {
    return columns_->slice_dictionary(columns_->slice_codes(index)).values(key);
  }
  const v1::PredictionEvent& e = batch_->rows().events(index);
  std::string_view value;
  if (e.slice_values_size()) value = e.slice_values(key);
  auto named = e.named_slices().find(model_->slice_keys()[key]);
  if (named != e.named_slices().end()) value = named->second;
  return value;
}

int BatchDecoder::slice_tuples() const {
  return columns_ == nullptr ? 0 : columns_->slice_dictionary_size();
}

std::string BatchDecoder::SerializeEvent(size_t i, const EventView& view) const {
  if (columns_ == nullptr) {
    const v1::PredictionEvent& e = batch_->rows().events(static_cast<int>(i));
    if (e.feature_hash().empty() && !batch_->feature_hash().empty()) {
      v1::PredictionEvent copy = e;
      copy.set_feature_hash(batch_->feature_hash());
      return copy.SerializeAsString();
    }
    return e.SerializeAsString();
  }
  // Materialise the columnar event in row form.
  v1::PredictionEvent e;
  e.set_event_id(std::string(view.event_id));
  e.set_event_time_ms(view.event_time_ms);
  for (double x : view.numeric) e.add_numeric(x);
  for (std::string_view v : view.categorical) e.add_categorical(std::string(v));
  for (double x : view.scores) e.add_scores(x);
  if (model_->input_slice_key_count() > 0) {
    for (const std::string& v : columns_->slice_dictionary(SliceTuple(i)).values()) {
      e.add_slice_values(v);
    }
  }
  e.set_sample_rate(view.sample_rate);
  if (view.latency_ms != 0) e.set_latency_ms(view.latency_ms);
  if (!view.feature_hash.empty()) e.set_feature_hash(std::string(view.feature_hash));
  return e.SerializeAsString();
}

}  // namespace driftwatch::service::ingest
