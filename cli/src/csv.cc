#include "driftwatch/cli/csv.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace driftwatch::cli {
namespace {

constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";

// One record as it comes off the text, before the header is known.
struct RawRecord {
  std::vector<std::string> fields;
  int64_t line = 0;
};

absl::Status LineError(absl::string_view name, int64_t line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(name, ":", line, ": ", message));
}

// Splits `text` into records. Line numbers count every physical newline,
// including those inside quoted fields, so messages point at the editor line.
absl::StatusOr<std::vector<RawRecord>> SplitRecords(absl::string_view text,
                                                    absl::string_view name) {
  std::vector<RawRecord> records;
  RawRecord current;
  std::string field;
  int64_t line = 1;
  size_t i = 0;
  bool record_open = false;  // the current record has at least one character
  current.line = 1;

  auto end_field = [&] {
    current.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    if (record_open) {
      end_field();
      records.push_back(std::move(current));
    }
    current = RawRecord{};
    record_open = false;
  };

  while (i < text.size()) {
    const char c = text[i];
    if (!record_open) current.line = line;
    if (c == '\n' || c == '\r') {
      // CRLF, LF and a lone CR all end a record; blank lines yield nothing.
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
      end_record();
      ++line;
      continue;
    }
    record_open = true;
    if (c == ',') {
      end_field();
      ++i;
      continue;
    }
    if (c == '"' && field.empty()) {
      const int64_t quote_line = line;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        const char q = text[i];
        if (q == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (q == '\n') ++line;
        if (q == '\r' && !(i + 1 < text.size() && text[i + 1] == '\n')) ++line;
        field.push_back(q);
        ++i;
      }
      if (!closed) {
        return LineError(
            name, quote_line,
            absl::StrCat("field ", current.fields.size() + 1, ": unterminated quoted field"));
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        return LineError(name, line,
                         absl::StrCat("field ", current.fields.size() + 1,
                                      ": unexpected character after closing quote"));
      }
      continue;
    }
    field.push_back(c);
    ++i;
  }
  end_record();
  return records;
}

}  // namespace

std::optional<size_t> CsvTable::ColumnIndex(absl::string_view column) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == column) return i;
  }
  return std::nullopt;
}

absl::StatusOr<CsvTable> ParseCsv(absl::string_view text, absl::string_view name) {
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) text.remove_prefix(kUtf8Bom.size());
  absl::StatusOr<std::vector<RawRecord>> records = SplitRecords(text, name);
  if (!records.ok()) return records.status();
  if (records->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty file (no header)"));
  }
  CsvTable table;
  table.name = std::string(name);
  RawRecord& header = records->front();
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < header.fields.size(); ++i) {
    if (header.fields[i].empty()) {
      return LineError(name, header.line,
                       absl::StrCat("header field ", i + 1, " is an empty column name"));
    }
    if (!seen.insert(header.fields[i]).second) {
      return LineError(name, header.line,
                       absl::StrCat("duplicate column \"", header.fields[i], "\""));
    }
  }
  table.header = std::move(header.fields);
  const size_t width = table.header.size();
  for (size_t r = 1; r < records->size(); ++r) {
    RawRecord& record = (*records)[r];
    if (record.fields.size() != width) {
      // Name the first column that is missing, or the first extra field.
      const std::string where =
          record.fields.size() < width
              ? absl::StrCat("column \"", table.header[record.fields.size()], "\": ")
              : std::string();
      return LineError(
          name, record.line,
          absl::StrCat(where, "expected ", width, " fields, got ", record.fields.size()));
    }
    table.rows.push_back(std::move(record.fields));
    table.row_lines.push_back(record.line);
  }
  if (table.rows.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no data rows after the header"));
  }
  return table;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  return std::move(buffer).str();
}

absl::StatusOr<CsvTable> ReadCsvFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseCsv(*text, path);
}

std::optional<double> ParseNumber(absl::string_view text) {
  if (text.empty()) return std::nullopt;
  // strtod needs a terminated string; cells are short, so copy.
  const std::string copy(text);
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  // Leading blanks pass strtod; a lone "  " would too if we did not check.
  if (end == copy.c_str()) return std::nullopt;
  return value;  // ERANGE overflow gives +-inf, which is what we want
}

}  // namespace driftwatch::cli
