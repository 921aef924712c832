// Log lines: text ("<ts> <level> msg k=v ...") or JSON objects
// ({"ts":..., "level":..., "msg":..., "k":"v", ...}), one per line, on stderr.

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/strings.h"
#include "driftwatch/service/server.h"
#include "internal/log.h"

namespace driftwatch::service {
namespace {

std::atomic<bool> g_json{false};

// Marks a payload that Log() already rendered as JSON members.
constexpr char kFragmentMark = '\x1e';

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = "{\"ts\":\"";
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[96];
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    line.append(ts);
    line.append("\",\"level\":");
    const auto level = spdlog::level::to_string_view(msg.level);
    AppendJsonString(std::string_view(level.data(), level.size()), &line);
    line.push_back(',');
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!payload.empty() && payload.front() == kFragmentMark) {
      line.append(payload.substr(1));
    } else {  // a plain spdlog call from elsewhere
      line.append("\"msg\":");
      AppendJsonString(payload, &line);
    }
    line.append("}\n");
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

absl::Status ConfigureLogging(const std::string& format, const std::string& level) {
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log.format: \"", format, "\" is not one of text, json"));
  }
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str answers "off" for anything it does not know.
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "log.level: \"", level, "\" is not one of trace, debug, info, warn, error, critical, off"));
  }
  auto logger = std::make_shared<spdlog::logger>("driftwatchd",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  g_json.store(format == "json");
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

namespace internal {

namespace {
std::atomic<LogCapture> g_capture{nullptr};
std::atomic<void*> g_capture_context{nullptr};
}  // namespace

void Log(spdlog::level::level_enum level, std::string_view msg,
         std::initializer_list<LogField> fields) {
  if (!spdlog::should_log(level)) return;
  std::string line;
  if (g_json.load()) {
    line.push_back(kFragmentMark);
    line.append("\"msg\":");
    AppendJsonString(msg, &line);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      AppendJsonString(key, &line);
      line.push_back(':');
      AppendJsonString(value, &line);
    }
  } else {
    line.append(msg);
    for (const auto& [key, value] : fields) {
      line.push_back(' ');
      line.append(key);
      line.push_back('=');
      if (NeedsQuotes(value)) {
        AppendJsonString(value, &line);
      } else {
        line.append(value);
      }
    }
  }
  if (LogCapture capture = g_capture.load()) capture(g_capture_context.load(), level, line);
  spdlog::log(level, "{}", line);
}

void SetLogCaptureForTest(LogCapture capture, void* context) {
  g_capture_context.store(context);
  g_capture.store(capture);
}

}  // namespace internal
}  // namespace driftwatch::service
