// See driftwatch/cli/labels_file.h.
#include "driftwatch/cli/labels_file.h"

#include <cmath>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "internal/client_util.h"

namespace driftwatch::cli {
namespace {

// The file's column for each field of a label.
struct LabelColumns {
  size_t event_id = 0;
  size_t value = 0;
  std::optional<size_t> second_value;  // both `value` and `label` present
  std::optional<size_t> time;
  std::optional<size_t> second_time;  // both `label_time` and `label_time_ms`
  std::optional<size_t> source;
};

// The first of `names` the table has, and the second when it has both.
std::pair<std::optional<size_t>, std::optional<size_t>> FindEither(const CsvTable& table,
                                                                   std::string_view first,
                                                                   std::string_view second) {
  const std::optional<size_t> a = table.ColumnIndex(internal::Sv(first));
  const std::optional<size_t> b = table.ColumnIndex(internal::Sv(second));
  if (a) return {a, b};
  return {b, std::nullopt};
}

absl::StatusOr<LabelColumns> MapLabelColumns(const CsvTable& table, std::ostream& warnings) {
  LabelColumns map;
  std::vector<std::string> missing;
  const std::optional<size_t> id = table.ColumnIndex("event_id");
  if (!id) missing.push_back("\"event_id\"");
  const auto [value, second_value] = FindEither(table, "value", "label");
  if (!value) missing.push_back("\"value\" (or \"label\")");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(table.name, ":1: missing column",
                                                   missing.size() > 1 ? "s " : " ",
                                                   absl::StrJoin(missing, ", "), " of a label"));
  }
  map.event_id = *id;
  map.value = *value;
  map.second_value = second_value;
  std::tie(map.time, map.second_time) = FindEither(table, "label_time", "label_time_ms");
  map.source = table.ColumnIndex("source");
  std::vector<std::string> unknown;
  for (size_t c = 0; c < table.header.size(); ++c) {
    if (c != map.event_id && c != map.value && c != map.second_value && c != map.time &&
        c != map.second_time && c != map.source) {
      unknown.push_back(table.header[c]);
    }
  }
  if (!unknown.empty()) {
    warnings << "driftctl: warning: " << table.name << ": ignoring column"
             << (unknown.size() > 1 ? "s " : " ") << absl::StrJoin(unknown, ", ")
             << " (a label has event_id, value, label_time and source)\n";
  }
  return map;
}

// What is wrong with `x` as a label of `schema`, or "" when nothing is.
std::string CheckValue(double x, const v1::ModelSchema& schema) {
  if (!std::isfinite(x)) return "expected a finite number";
  switch (schema.label_kind()) {
    case v1::LABEL_KIND_BINARY:
      return x == 0 || x == 1 ? "" : "a binary label is 0 or 1";
    case v1::LABEL_KIND_MULTICLASS: {
      const int classes = schema.score_names_size();
      if (x < 0 || x != std::floor(x)) return "a multiclass label is a class index 0, 1, ...";
      if (classes > 1 && x >= classes) {
        return absl::StrCat("a class index is below ", classes, " (the model's score_names)");
      }
      return "";
    }
    case v1::LABEL_KIND_RELEVANCE:
      return x >= 0 ? "" : "a relevance label is >= 0";
    default:
      return "";
  }
}

}  // namespace

absl::StatusOr<std::vector<v1::Label>> ParseLabels(const CsvTable& table,
                                                   const v1::ModelSchema& schema, int64_t now_ms,
                                                   std::ostream& warnings) {
  absl::StatusOr<LabelColumns> map = MapLabelColumns(table, warnings);
  if (!map.ok()) return map.status();
  std::vector<v1::Label> labels(table.rows.size());
  std::vector<std::string> bad;  // the first kMaxReportedBadRows
  size_t bad_rows = 0;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& cells = table.rows[r];
    // The row's first problem, if any.
    std::string problem;
    auto complain = [&](size_t c, std::string_view what, bool quote_cell) {
      if (!problem.empty()) return;
      problem = absl::StrCat("column \"", table.header[c], "\": ", internal::Sv(what));
      if (quote_cell) absl::StrAppend(&problem, ", got \"", cells[c], "\"");
    };
    v1::Label& label = labels[r];
    if (cells[map->event_id].empty()) complain(map->event_id, "empty event id", false);
    label.set_event_id(cells[map->event_id]);

    size_t value_col = map->value;
    if (map->second_value && !cells[*map->second_value].empty()) {
      if (!cells[value_col].empty()) {
        complain(value_col,
                 absl::StrCat("give \"", table.header[value_col], "\" or \"",
                              table.header[*map->second_value], "\", not both"),
                 false);
      }
      value_col = *map->second_value;
    }
    const std::string& value = cells[value_col];
    if (value.empty()) {
      complain(value_col, "missing label value", false);
    } else {
      std::optional<double> x = value == "true"    ? std::optional<double>(1)
                                : value == "false" ? std::optional<double>(0)
                                                   : ParseNumber(value);
      if (!x) {
        complain(value_col, "expected a number", true);
      } else if (std::string what = CheckValue(*x, schema); !what.empty()) {
        complain(value_col, what, true);
      } else {
        label.set_value(*x);
      }
    }

    label.set_label_time_ms(now_ms);
    std::optional<size_t> time_col = map->time;
    if (map->second_time && !cells[*map->second_time].empty()) {
      if (!cells[*time_col].empty()) {
        complain(*time_col,
                 absl::StrCat("give \"", table.header[*time_col], "\" or \"",
                              table.header[*map->second_time], "\", not both"),
                 false);
      }
      time_col = map->second_time;
    }
    if (time_col && !cells[*time_col].empty()) {
      absl::StatusOr<int64_t> t = internal::ParseTimeMs(cells[*time_col]);
      if (t.ok()) {
        label.set_label_time_ms(*t);
      } else {
        complain(*time_col, "expected Unix milliseconds or an RFC 3339 time", true);
      }
    }
    if (map->source) label.set_source(cells[*map->source]);

    if (!problem.empty()) {
      ++bad_rows;
      if (bad.size() < kMaxReportedBadRows) {
        bad.push_back(absl::StrCat(table.name, ":", table.row_lines[r], ": ", problem));
      }
    }
  }
  if (bad_rows > 0) {
    std::string message = absl::StrJoin(bad, "\n");
    if (bad_rows > bad.size()) {
      absl::StrAppend(&message, "\n", table.name, ": and ", bad_rows - bad.size(),
                      " more bad rows");
    }
    absl::StrAppend(&message, "\n", table.name, ": ", bad_rows, " of ", table.rows.size(),
                    " rows are bad");
    return absl::InvalidArgumentError(message);
  }
  return labels;
}

absl::StatusOr<std::vector<v1::Label>> ReadLabelsFile(const std::string& path,
                                                      const v1::ModelSchema& schema, int64_t now_ms,
                                                      std::ostream& warnings) {
  absl::StatusOr<CsvTable> table = internal::ReadTable(path);
  if (!table.ok()) return table.status();
  return ParseLabels(*table, schema, now_ms, warnings);
}

}  // namespace driftwatch::cli
