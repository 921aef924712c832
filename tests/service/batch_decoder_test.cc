// BatchDecoder and the validate step on their own: what each malformed
// event is rejected as, in row and columnar form.
#include "ingest/batch_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "ingest/validate.h"

namespace driftwatch::service::ingest {
namespace {

constexpr int64_t kT = 1'700'000'000'000;

v1::ModelSchema Schema() {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("m");
  s.mutable_model()->set_model_version("v1");
  auto* amount = s.add_features();
  amount->set_name("amount");
  amount->set_kind(v1::FEATURE_KIND_NUMERIC);
  amount->set_nullable(true);
  for (int i = 0; i < 10; ++i) amount->add_reference_sample(i);
  auto* country = s.add_features();
  country->set_name("country");
  country->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  s.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  s.add_score_names("p");
  s.add_slice_keys()->set_key("platform");
  return s;
}

v1::PredictionEvent Event(const std::string& id) {
  v1::PredictionEvent e;
  e.set_event_id(id);
  e.set_event_time_ms(kT);
  e.add_numeric(1.5);
  e.add_categorical("US");
  e.add_scores(0.5);
  e.add_slice_values("ios");
  return e;
}

// One columnar event of country dictionary {"DE"} with `code`.
v1::PredictionBatch Columns(int code) {
  v1::PredictionBatch b;
  v1::ColumnarBatch* c = b.mutable_columns();
  c->set_num_events(1);
  c->add_event_ids("c0");
  c->add_event_time_ms(kT);
  c->add_numeric(2);
  c->add_scores(0.5);
  v1::CategoricalColumn* country = c->add_categorical();
  country->set_name("country");
  country->add_dictionary("DE");
  country->add_codes(code);
  c->add_slice_dictionary()->add_values("android");
  c->add_slice_codes(0);
  return b;
}

class BatchDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<RegisteredModel>> model =
        RegisteredModel::Create(1, Schema(), RegistryOptions{});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
  }

  // Decodes and validates event 0 of `batch`: "" when it passes, else the
  // reject reason's name (the message in `message`).
  std::string Outcome(const v1::PredictionBatch& batch, std::string* message = nullptr) {
    absl::StatusOr<BatchDecoder> decoder = BatchDecoder::Create(batch, *model_, options_);
    EXPECT_TRUE(decoder.ok()) << decoder.status();
    if (!decoder.ok()) return "batch error";
    EventView view = decoder->NewView();
    Rejection rejection{RejectReason::kMissingEventId, ""};
    if (!decoder->Decode(0, &view, &rejection) || !ValidateEvent(view, kT, options_, &rejection)) {
      if (message != nullptr) *message = rejection.message;
      return std::string(RejectReasonName(rejection.reason));
    }
    if (view.categorical_null[0]) return "null category";
    return "";
  }

  std::string RowOutcome(const v1::PredictionEvent& e, std::string* message = nullptr) {
    v1::PredictionBatch b;
    *b.mutable_rows()->add_events() = e;
    return Outcome(b, message);
  }

  IngestOptions options_;
  std::shared_ptr<RegisteredModel> model_;
};

TEST_F(BatchDecoderTest, ColumnarCodeMinusOneIsNullAndBelowIsABadCode) {
  EXPECT_EQ(Outcome(Columns(0)), "");
  EXPECT_EQ(Outcome(Columns(-1)), "null category");
  std::string message;
  EXPECT_EQ(Outcome(Columns(-2), &message), "bad_dictionary_code");
  EXPECT_NE(message.find("code -2 is outside its dictionary"), std::string::npos) << message;
  EXPECT_EQ(Outcome(Columns(-2'000'000'000)), "bad_dictionary_code");
  EXPECT_EQ(Outcome(Columns(1)), "bad_dictionary_code");
}

TEST_F(BatchDecoderTest, RowWithNoNumericValuesIsACountMismatch) {
  v1::PredictionEvent e = Event("r0");
  e.clear_numeric();
  std::string message;
  EXPECT_EQ(RowOutcome(e, &message), "numeric_count_mismatch");
  EXPECT_NE(message.find("no numeric values"), std::string::npos) << message;
  // Named values are values; NaN is how a null is sent.
  (*e.mutable_named_numeric())["amount"] = 3;
  EXPECT_EQ(RowOutcome(e), "");
  e.clear_named_numeric();
  e.add_numeric(std::nan(""));
  EXPECT_EQ(RowOutcome(e), "");
}

TEST_F(BatchDecoderTest, EachStringOverItsLimitHasItsOwnReason) {
  options_.max_event_id_bytes = 8;
  options_.max_category_bytes = 4;
  options_.max_slice_value_bytes = 5;
  options_.max_query_id_bytes = 6;
  EXPECT_EQ(RowOutcome(Event("12345678")), "");
  std::string message;
  EXPECT_EQ(RowOutcome(Event("123456789"), &message), "event_id_too_long");
  EXPECT_EQ(message, "event_id is 9 bytes, longer than ingest.max_event_id_bytes (8)");

  v1::PredictionEvent e = Event("r");
  e.set_categorical(0, "12345");
  EXPECT_EQ(RowOutcome(e, &message), "category_too_long");
  EXPECT_EQ(message,
            "categorical \"country\" value is 5 bytes, longer than ingest.max_category_bytes (4)");
  e = Event("r");
  e.clear_categorical();
  (*e.mutable_named_categorical())["country"] = "12345";
  EXPECT_EQ(RowOutcome(e), "category_too_long");

  e = Event("r");
  e.set_slice_values(0, "123456");
  EXPECT_EQ(RowOutcome(e, &message), "slice_value_too_long");
  EXPECT_NE(message.find("slice_values[0] (platform)"), std::string::npos) << message;
  e = Event("r");
  e.clear_slice_values();
  (*e.mutable_named_slices())["platform"] = "123456";
  EXPECT_EQ(RowOutcome(e), "slice_value_too_long");

  e = Event("r");
  e.set_query_id("123456");
  EXPECT_EQ(RowOutcome(e), "");
  e.set_query_id("1234567");
  EXPECT_EQ(RowOutcome(e), "query_id_too_long");
}

TEST_F(BatchDecoderTest, ColumnarStringLimitsCoverDictionaries) {
  options_.max_event_id_bytes = 8;
  options_.max_category_bytes = 2;
  options_.max_slice_value_bytes = 7;
  options_.max_query_id_bytes = 3;
  EXPECT_EQ(Outcome(Columns(0)), "");

  v1::PredictionBatch b = Columns(0);
  b.mutable_columns()->set_event_ids(0, "123456789");
  EXPECT_EQ(Outcome(b), "event_id_too_long");

  b = Columns(0);
  b.mutable_columns()->mutable_categorical(0)->set_dictionary(0, "DEU");
  std::string message;
  EXPECT_EQ(Outcome(b, &message), "category_too_long");
  EXPECT_NE(message.find("categorical \"country\" dictionary[0]"), std::string::npos) << message;
  // An over-long entry no event uses costs nothing.
  b.mutable_columns()->mutable_categorical(0)->set_codes(0, -1);
  EXPECT_EQ(Outcome(b), "null category");

  b = Columns(0);
  b.mutable_columns()->mutable_slice_dictionary(0)->set_values(0, "android!");
  EXPECT_EQ(Outcome(b), "slice_value_too_long");
  b.mutable_columns()->add_slice_dictionary()->add_values("ios");
  b.mutable_columns()->set_slice_codes(0, 1);
  EXPECT_EQ(Outcome(b), "");

  b = Columns(0);
  b.mutable_columns()->add_query_ids("1234");
  EXPECT_EQ(Outcome(b), "query_id_too_long");
  b.mutable_columns()->set_query_ids(0, "123");
  EXPECT_EQ(Outcome(b), "");
}

TEST_F(BatchDecoderTest, QueryIdsNeitherEmptyNorOnePerEventFailTheBatch) {
  v1::PredictionBatch b = Columns(0);
  b.mutable_columns()->add_query_ids("q1");
  b.mutable_columns()->add_query_ids("q2");
  absl::StatusOr<BatchDecoder> decoder = BatchDecoder::Create(b, *model_, options_);
  ASSERT_FALSE(decoder.ok());
  EXPECT_EQ(decoder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decoder.status().message(), "columns.query_ids has 2 values, expected 1");
}

}  // namespace
}  // namespace driftwatch::service::ingest
