// The labels file of `driftctl labels push` (driftwatch/cli/labels_file.h):
// CSV and JSONL, label times in Unix ms, RFC 3339 or absent (now), values
// checked against the label kind, and every bad row named by file and line.
#include "driftwatch/cli/labels_file.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kNowMs = 1'700'000'099'000;

v1::ModelSchema Schema(v1::LabelKind kind, int scores = 1) {
  v1::ModelSchema s;
  s.mutable_model()->set_model_id("m");
  s.mutable_model()->set_model_version("1");
  s.set_label_kind(kind);
  for (int i = 0; i < scores; ++i) s.add_score_names("p" + std::to_string(i));
  return s;
}

class LabelsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("labels_file_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  absl::StatusOr<std::vector<v1::Label>> Read(const std::string& name, const std::string& text,
                                              const v1::ModelSchema& schema) {
    warnings_.str("");
    return ReadLabelsFile(Write(name, text), schema, kNowMs, warnings_);
  }

  fs::path dir_;
  std::ostringstream warnings_;
};

TEST_F(LabelsFileTest, CsvWithMsRfc3339AndMissingTimes) {
  absl::StatusOr<std::vector<v1::Label>> labels = Read("l.csv",
                                                       "event_id,value,label_time,source\n"
                                                       "e1,1,1700000000000,annotator-a\n"
                                                       "e2,0,2023-11-14T22:13:21Z,\n"
                                                       "e3,1,2023-11-14T22:13:21.250+01:00,batch\n"
                                                       "e4,0,,\n",
                                                       Schema(v1::LABEL_KIND_BINARY));
  ASSERT_TRUE(labels.ok()) << labels.status();
  ASSERT_EQ(labels->size(), 4u);
  EXPECT_EQ((*labels)[0].event_id(), "e1");
  EXPECT_EQ((*labels)[0].value(), 1);
  EXPECT_EQ((*labels)[0].label_time_ms(), 1'700'000'000'000);
  EXPECT_EQ((*labels)[0].source(), "annotator-a");
  EXPECT_EQ((*labels)[1].value(), 0);
  EXPECT_EQ((*labels)[1].label_time_ms(), 1'700'000'001'000);
  EXPECT_EQ((*labels)[1].source(), "");
  EXPECT_EQ((*labels)[2].label_time_ms(), 1'700'000'001'250 - 3'600'000);  // +01:00
  EXPECT_EQ((*labels)[3].label_time_ms(), kNowMs);                         // empty: now
  EXPECT_EQ(warnings_.str(), "");
}

TEST_F(LabelsFileTest, LabelColumnAndNoTimeColumnAndUnknownColumnsWarn) {
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("l.csv", "event_id,label,note\ne1,2.5,x\ne2,-1,y\n", Schema(v1::LABEL_KIND_REGRESSION));
  ASSERT_TRUE(labels.ok()) << labels.status();
  ASSERT_EQ(labels->size(), 2u);
  EXPECT_EQ((*labels)[0].value(), 2.5);
  EXPECT_EQ((*labels)[1].value(), -1);
  EXPECT_EQ((*labels)[1].label_time_ms(), kNowMs);
  EXPECT_THAT(warnings_.str(), HasSubstr("ignoring column note"));
}

TEST_F(LabelsFileTest, JsonlWithMsOrRfc3339AndBooleans) {
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("l.jsonl",
           "{\"event_id\":\"j1\",\"value\":1,\"label_time_ms\":1700000000000,\"source\":\"crm\"}\n"
           "\n"
           "{\"event_id\":\"j2\",\"value\":false,\"label_time\":\"2023-11-14T22:13:21Z\"}\n"
           "{\"event_id\":\"j3\",\"value\":true,\"label_time_ms\":null}\n"
           "{\"event_id\":42,\"value\":0.0}\n",
           Schema(v1::LABEL_KIND_BINARY));
  ASSERT_TRUE(labels.ok()) << labels.status();
  ASSERT_EQ(labels->size(), 4u);
  EXPECT_EQ((*labels)[0].label_time_ms(), 1'700'000'000'000);
  EXPECT_EQ((*labels)[0].source(), "crm");
  EXPECT_EQ((*labels)[1].value(), 0);
  EXPECT_EQ((*labels)[1].label_time_ms(), 1'700'000'001'000);
  EXPECT_EQ((*labels)[2].value(), 1);
  EXPECT_EQ((*labels)[2].label_time_ms(), kNowMs);
  EXPECT_EQ((*labels)[3].event_id(), "42");
  EXPECT_EQ((*labels)[3].value(), 0);
}

TEST_F(LabelsFileTest, EveryBadCsvRowIsNamedByLine) {
  absl::StatusOr<std::vector<v1::Label>> labels = Read("bad.csv",
                                                       "event_id,value,label_time\n"
                                                       "e1,1,1700000000000\n"
                                                       ",1,1700000000000\n"
                                                       "e3,x,1700000000000\n"
                                                       "e4,0.5,1700000000000\n"
                                                       "e5,1,yesterday\n"
                                                       "e6,,1700000000000\n"
                                                       "e7,nan,\n",
                                                       Schema(v1::LABEL_KIND_BINARY));
  ASSERT_FALSE(labels.ok());
  EXPECT_EQ(labels.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string m(labels.status().message());
  EXPECT_THAT(m, HasSubstr("bad.csv:3: column \"event_id\": empty event id\n"));
  EXPECT_THAT(m, HasSubstr("bad.csv:4: column \"value\": expected a number, got \"x\"\n"));
  EXPECT_THAT(m, HasSubstr("bad.csv:5: column \"value\": a binary label is 0 or 1, got \"0.5\""));
  EXPECT_THAT(m, HasSubstr("bad.csv:6: column \"label_time\": expected Unix milliseconds or an "
                           "RFC 3339 time, got \"yesterday\""));
  EXPECT_THAT(m, HasSubstr("bad.csv:7: column \"value\": missing label value"));
  EXPECT_THAT(m, HasSubstr("bad.csv:8: column \"value\": expected a finite number"));
  EXPECT_THAT(m, HasSubstr("bad.csv: 6 of 7 rows are bad"));
  EXPECT_THAT(m, Not(HasSubstr("bad.csv:2:")));
}

TEST_F(LabelsFileTest, ManyBadRowsAreCountedAfterTheFirstTen) {
  std::string text = "event_id,value\n";
  for (int i = 0; i < 25; ++i) text += "e" + std::to_string(i) + ",7\n";
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("many.csv", text, Schema(v1::LABEL_KIND_BINARY));
  ASSERT_FALSE(labels.ok());
  const std::string m(labels.status().message());
  EXPECT_THAT(m, HasSubstr("many.csv:11:"));
  EXPECT_THAT(m, Not(HasSubstr("many.csv:12:")));
  EXPECT_THAT(m, HasSubstr("many.csv: and 15 more bad rows"));
  EXPECT_THAT(m, HasSubstr("many.csv: 25 of 25 rows are bad"));
}

TEST_F(LabelsFileTest, BadJsonlLinesAreNamedByLine) {
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("bad.jsonl",
           "{\"event_id\":\"j1\",\"value\":1}\n"
           "\n"
           "{\"event_id\":\"j2\",\"value\":1,\"label_time\":\"2023-13-45T00:00:00Z\"}\n"
           "{\"event_id\":\"j3\"}\n"
           "{\"event_id\":\"j4\",\"value\":1,\"label_time\":1,\"label_time_ms\":2}\n",
           Schema(v1::LABEL_KIND_BINARY));
  ASSERT_FALSE(labels.ok());
  const std::string m(labels.status().message());
  EXPECT_THAT(m, HasSubstr("bad.jsonl:3: column \"label_time\": expected Unix milliseconds"));
  EXPECT_THAT(m, HasSubstr("bad.jsonl:4: column \"value\": missing label value"));
  EXPECT_THAT(m, HasSubstr("bad.jsonl:5: column \"label_time\": give \"label_time\" or "
                           "\"label_time_ms\", not both"));

  labels = Read("broken.jsonl", "{\"event_id\":\"j1\",\"value\":1}\n{\"event_id\":\n",
                Schema(v1::LABEL_KIND_BINARY));
  ASSERT_FALSE(labels.ok());
  EXPECT_THAT(labels.status().message(), HasSubstr("broken.jsonl:2: expected one JSON object"));
}

TEST_F(LabelsFileTest, MissingColumnsAreNamed) {
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("short.csv", "id,score\na,1\n", Schema(v1::LABEL_KIND_BINARY));
  ASSERT_FALSE(labels.ok());
  EXPECT_THAT(labels.status().message(),
              HasSubstr("short.csv:1: missing columns \"event_id\", \"value\" (or \"label\")"));
}

TEST_F(LabelsFileTest, ValuesFollowTheLabelKind) {
  const std::string rows = "event_id,value\na,0\nb,2\nc,1.5\nd,-3\n";
  // Multiclass with three classes: 0 and 2 are classes, 1.5 and -3 are not.
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("mc.csv", rows, Schema(v1::LABEL_KIND_MULTICLASS, 3));
  ASSERT_FALSE(labels.ok());
  std::string m(labels.status().message());
  EXPECT_THAT(m, Not(HasSubstr("mc.csv:2:")));
  EXPECT_THAT(m, Not(HasSubstr("mc.csv:3:")));
  EXPECT_THAT(m, HasSubstr("mc.csv:4: column \"value\": a multiclass label is a class index"));
  EXPECT_THAT(m, HasSubstr("mc.csv:5:"));
  labels = Read("mc2.csv", "event_id,value\na,3\n", Schema(v1::LABEL_KIND_MULTICLASS, 3));
  ASSERT_FALSE(labels.ok());
  EXPECT_THAT(labels.status().message(), HasSubstr("a class index is below 3"));
  // Relevance: any grade >= 0.
  labels = Read("rel.csv", rows, Schema(v1::LABEL_KIND_RELEVANCE));
  ASSERT_FALSE(labels.ok());
  m = std::string(labels.status().message());
  EXPECT_THAT(m, HasSubstr("rel.csv:5: column \"value\": a relevance label is >= 0"));
  EXPECT_THAT(m, HasSubstr("1 of 4 rows are bad"));
  // Regression and an unspecified kind: any finite number.
  EXPECT_TRUE(Read("reg.csv", rows, Schema(v1::LABEL_KIND_REGRESSION)).ok());
  EXPECT_TRUE(Read("any.csv", rows, Schema(v1::LABEL_KIND_UNSPECIFIED)).ok());
}

TEST_F(LabelsFileTest, ValueAndLabelColumnsTogether) {
  // Either may be filled per row; both in one row is an error.
  absl::StatusOr<std::vector<v1::Label>> labels =
      Read("both.csv", "event_id,value,label\na,1,\nb,,0\nc,1,1\n", Schema(v1::LABEL_KIND_BINARY));
  ASSERT_FALSE(labels.ok());
  const std::string m(labels.status().message());
  EXPECT_THAT(m, HasSubstr("both.csv:4: column \"value\": give \"value\" or \"label\", not both"));
  EXPECT_THAT(m, HasSubstr("1 of 3 rows are bad"));
}

TEST_F(LabelsFileTest, UnreadableFileNamesThePath) {
  std::ostringstream warnings;
  absl::StatusOr<std::vector<v1::Label>> labels =
      ReadLabelsFile((dir_ / "nope.csv").string(), Schema(v1::LABEL_KIND_BINARY), kNowMs, warnings);
  ASSERT_FALSE(labels.ok());
  EXPECT_THAT(labels.status().message(), HasSubstr("nope.csv"));
}

}  // namespace
}  // namespace driftwatch::cli
