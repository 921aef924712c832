// See internal/progress.h.
#include "internal/progress.h"

#include <string>

#include "absl/strings/str_format.h"

namespace driftwatch::cli::internal {

Progress::Progress(std::ostream& err, bool tty, uint64_t total, ProgressText text)
    : err_(err), tty_(tty), total_(total), text_(text), start_(Clock::now()), last_(start_) {}

void Progress::Update(uint64_t done, bool final) {
  const auto now = Clock::now();
  if (!tty_ && !final && now - last_ < std::chrono::seconds(2)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const double share = total_ == 0 ? 1 : static_cast<double>(done) / total_;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(share * kWidth);
    err_ << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
         << absl::StrFormat("%3.0f%% %d/%d %s  %.0f %s", share * 100, done, total_, text_.unit,
                            rate, text_.rate_unit)
         << (final ? "\n" : "") << std::flush;
  } else if (!final || done != total_) {
    err_ << absl::StrFormat("driftctl: %s: %d/%d %s %s (%.0f%%), %.0f %s\n", text_.command, done,
                            total_, text_.unit, text_.verb, share * 100, rate, text_.rate_unit);
  }
}

double Progress::seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

}  // namespace driftwatch::cli::internal
