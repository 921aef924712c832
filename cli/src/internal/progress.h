// Progress of a long send on stderr, shared by `push` and `labels push`.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>

namespace driftwatch::cli::internal {

// The words of a progress line: "driftctl: <command>: 3000/9000 <unit>
// <verb> (33%), 1200 <rate_unit>".
struct ProgressText {
  const char* command;    // "push"
  const char* unit;       // "events"
  const char* verb;       // "acked"
  const char* rate_unit;  // "ev/s"
};

// A redrawn bar on a terminal, else a line at most every two seconds (and
// none at the end when everything is done: the summary follows). Not
// thread-safe: one sender updates it.
class Progress {
 public:
  Progress(std::ostream& err, bool tty, uint64_t total, ProgressText text);

  // `done` of the total so far; `final` ends the bar's line.
  void Update(uint64_t done, bool final);
  double seconds() const;

 private:
  using Clock = std::chrono::steady_clock;
  std::ostream& err_;
  const bool tty_;
  const uint64_t total_;
  const ProgressText text_;
  const Clock::time_point start_;
  Clock::time_point last_;
};

}  // namespace driftwatch::cli::internal
