#include "driftwatch/cli/csv.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CsvTest, ParsesHeaderAndRows) {
  auto t = ParseCsv("a,b\n1,2\n3,4\n", "f.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->header, ElementsAre("a", "b"));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_THAT(t->rows[1], ElementsAre("3", "4"));
  EXPECT_THAT(t->row_lines, ElementsAre(2, 3));
  EXPECT_EQ(t->name, "f.csv");
  EXPECT_EQ(t->ColumnIndex("b"), 1u);
  EXPECT_FALSE(t->ColumnIndex("c").has_value());
}

TEST(CsvTest, QuotedFieldsHoldCommasQuotesAndNewlines) {
  auto t = ParseCsv("name,note\n\"Smith, J\",\"say \"\"hi\"\"\"\n\"multi\nline\",\"\"\nx,y\n", "f");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_THAT(t->rows[0], ElementsAre("Smith, J", "say \"hi\""));
  EXPECT_THAT(t->rows[1], ElementsAre("multi\nline", ""));
  // The embedded newline counts: the last row starts on line 5.
  EXPECT_THAT(t->row_lines, ElementsAre(2, 3, 5));
}

TEST(CsvTest, ToleratesCrlfBomBlankLinesAndMissingFinalNewline) {
  auto t = ParseCsv(
      "\xEF\xBB\xBF"
      "a,b\r\n1,2\r\n\r\n3,\r\n4,5",
      "f");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->header, ElementsAre("a", "b"));
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_THAT(t->rows[0], ElementsAre("1", "2"));
  EXPECT_THAT(t->rows[1], ElementsAre("3", ""));
  EXPECT_THAT(t->rows[2], ElementsAre("4", "5"));
  EXPECT_THAT(t->row_lines, ElementsAre(2, 4, 5));
}

TEST(CsvTest, CrlfInsideQuotesIsKept) {
  auto t = ParseCsv("a\r\n\"x\r\ny\"\r\n", "f");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->rows[0], ElementsAre("x\r\ny"));
}

TEST(CsvTest, RaggedRowNamesFileLineAndColumn) {
  auto t = ParseCsv("a,b,c\n1,2,3\n4,5\n", "cur.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "cur.csv:3: column \"c\": expected 3 fields, got 2");
  t = ParseCsv("a,b\n1,2,3\n", "cur.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("cur.csv:2: expected 2 fields, got 3"));
}

TEST(CsvTest, RejectsEmptyInputHeaderOnlyAndBadHeaders) {
  EXPECT_THAT(ParseCsv("", "e.csv").status().message(), HasSubstr("e.csv: empty file"));
  EXPECT_THAT(ParseCsv("\n\n", "e.csv").status().message(), HasSubstr("empty file"));
  EXPECT_THAT(ParseCsv("a,b\n", "h.csv").status().message(), HasSubstr("h.csv: no data rows"));
  EXPECT_THAT(ParseCsv("a,a\n1,2\n", "d.csv").status().message(),
              HasSubstr("d.csv:1: duplicate column \"a\""));
  EXPECT_THAT(ParseCsv("a,\n1,2\n", "d.csv").status().message(), HasSubstr("empty column name"));
}

TEST(CsvTest, QuoteErrorsNameTheLine) {
  auto t = ParseCsv("a,b\n1,2\n3,\"open\n", "q.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("q.csv:3: field 2: unterminated"));
  t = ParseCsv("a\n\"x\"y\n", "q.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("q.csv:2:"));
}

TEST(CsvTest, ReadCsvFileNamesAMissingFile) {
  auto t = ReadCsvFile("/nonexistent/dir/x.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("/nonexistent/dir/x.csv: cannot open"));
}

TEST(ParseNumberTest, FullParseOnly) {
  EXPECT_EQ(ParseNumber("1.5"), 1.5);
  EXPECT_EQ(ParseNumber("-2e3"), -2000.0);
  EXPECT_TRUE(std::isnan(*ParseNumber("nan")));
  EXPECT_TRUE(std::isinf(*ParseNumber("-inf")));
  EXPECT_FALSE(ParseNumber("").has_value());
  EXPECT_FALSE(ParseNumber("1.5x").has_value());
  EXPECT_FALSE(ParseNumber("abc").has_value());
  EXPECT_FALSE(ParseNumber("1 ").has_value());
}

}  // namespace
}  // namespace driftwatch::cli
