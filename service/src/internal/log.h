// Structured log lines for the service: a message plus key=value fields,
// rendered as text or as one JSON object per line (ConfigureLogging in
// server.h picks which). Thread-safe (spdlog's default logger).
#pragma once

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace driftwatch::service::internal {

using LogField = std::pair<std::string_view, std::string>;

void Log(spdlog::level::level_enum level, std::string_view msg,
         std::initializer_list<LogField> fields = {});

// Tests: every line Log renders also goes to `capture` (level, rendered
// line) while set; null stops it. Not for production use.
using LogCapture = void (*)(void* context, spdlog::level::level_enum level, std::string_view line);
void SetLogCaptureForTest(LogCapture capture, void* context);

inline void LogInfo(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(spdlog::level::info, msg, fields);
}
inline void LogWarn(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(spdlog::level::warn, msg, fields);
}
inline void LogError(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(spdlog::level::err, msg, fields);
}

}  // namespace driftwatch::service::internal
