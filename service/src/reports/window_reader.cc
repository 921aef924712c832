#include "driftwatch/service/window_reader.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"

namespace driftwatch::service {
namespace {

using base::Sv;
using detectors::Profile;
using storage::kHourMs;

// A roll-up committed between planning a read and finishing it makes the
// plan stale; the read is redone, then falls back to minute rows only.
constexpr int kPlannedReadAttempts = 3;

int64_t CeilTo(int64_t t, int64_t width) { return -storage::BucketStart(-t, width); }

absl::Status MergeRows(const std::vector<storage::BucketRow>& rows,
                       const std::shared_ptr<const detectors::ProfileLayout>& layout,
                       SliceProfiles* out) {
  for (const storage::BucketRow& row : rows) {
    absl::StatusOr<Profile> profile = Profile::Deserialize(layout, row.profile);
    if (!profile.ok()) {
      return absl::Status(profile.status().code(),
                          absl::StrCat("bucket ", row.bucket_start_ms, " slice ", row.slice_id,
                                       ": ", profile.status().message()));
    }
    auto it = out->find(row.slice_id);
    if (it == out->end()) {
      out->emplace(row.slice_id, *std::move(profile));
    } else {
      DW_RETURN_IF_ERROR(it->second.Merge(*profile));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t ToMs(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1'000'000;
}

void SetMs(int64_t ms, google::protobuf::Timestamp* ts) {
  const int64_t seconds = storage::BucketStart(ms, 1000) / 1000;
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>((ms - seconds * 1000) * 1'000'000));
}

void SetRange(const Interval& in, v1::TimeRange* out) {
  SetMs(in.start_ms, out->mutable_start());
  SetMs(in.end_ms, out->mutable_end());
}

absl::StatusOr<Interval> CheckedRange(const v1::TimeRange& range, std::string_view field) {
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 4000;
  if (std::abs(range.start().seconds()) > kMaxSeconds ||
      std::abs(range.end().seconds()) > kMaxSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(field), " is out of range"));
  }
  Interval out{ToMs(range.start()), ToMs(range.end())};
  if (out.start_ms < 0 || out.end_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(field), ": start and end must not be negative"));
  }
  if (out.end_ms <= out.start_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        Sv(field), ": end (", out.end_ms, " ms) must be after start (", out.start_ms, " ms)"));
  }
  return out;
}

Interval Align(Interval in, int64_t width) {
  return Interval{storage::BucketStart(in.start_ms, width), CeilTo(in.end_ms, width)};
}

Interval Trailing(int64_t end_ms, int64_t length_ms) {
  return Interval{std::max<int64_t>(0, end_ms - length_ms), end_ms};
}

Interval TrailingBuckets(int64_t end_ms, int64_t length_ms, int64_t width_ms) {
  if (width_ms <= 0) return Trailing(end_ms, length_ms);
  const int64_t end = CeilTo(end_ms, width_ms);
  return Trailing(end, CeilTo(length_ms, width_ms));
}

WindowReader::WindowReader(storage::BucketStore* buckets, storage::ModelStore* progress,
                           int64_t bucket_width_ms)
    : buckets_(buckets), progress_(progress), bucket_width_ms_(bucket_width_ms) {}

absl::StatusOr<Interval> WindowReader::Resolve(const v1::Window& window, int64_t default_ms,
                                               int64_t now_ms) const {
  Interval out;
  switch (window.window_case()) {
    case v1::Window::kRange: {
      DW_ASSIGN_OR_RETURN(out, CheckedRange(window.range(), "window.range"));
      out = Align(out, bucket_width_ms_);
      break;
    }
    case v1::Window::kLastSeconds: {
      const int64_t s = window.last_seconds();
      if (s < 0 || s > kMaxWindowSeconds) {
        return absl::InvalidArgumentError(
            absl::StrCat("window.last_seconds must be in [1, ", kMaxWindowSeconds, "], got ", s));
      }
      out = TrailingBuckets(now_ms, s == 0 ? default_ms : s * 1000, bucket_width_ms_);
      break;
    }
    default:
      out = TrailingBuckets(now_ms, default_ms, bucket_width_ms_);
  }
  if (out.end_ms <= out.start_ms) return absl::InvalidArgumentError("window is empty");
  return out;
}

absl::StatusOr<storage::ArrivalCounts> WindowReader::ReadArrivals(const RegisteredModel& model,
                                                                  Interval window) const {
  return buckets_->ReadArrivalCounts(model.model_key(), window.start_ms, window.end_ms);
}

absl::StatusOr<std::map<int32_t, std::map<int64_t, double>>> WindowReader::ReadHourlyEvents(
    const RegisteredModel& model, Interval hours) const {
  std::map<int32_t, std::map<int64_t, double>> out;
  if (hours.end_ms <= hours.start_ms) return out;
  DW_ASSIGN_OR_RETURN(std::vector<storage::BucketEvents> rows,
                      buckets_->ReadBucketEvents(model.model_key(), storage::Level::kHour,
                                                 hours.start_ms, hours.end_ms));
  for (const storage::BucketEvents& row : rows) {
    out[row.slice_id][row.bucket_start_ms] += static_cast<double>(row.events);
  }
  return out;
}

absl::StatusOr<int64_t> WindowReader::ClosedUntil(int64_t model_key) const {
  DW_ASSIGN_OR_RETURN(storage::ModelProgress progress, progress_->ReadProgress(model_key));
  return progress.closed_until_ms;
}

absl::StatusOr<SliceProfiles> WindowReader::Read(const RegisteredModel& model, Interval window,
                                                 const std::vector<int32_t>& slices) const {
  const int64_t key = model.model_key();
  const bool hours_usable = bucket_width_ms_ > 0 && kHourMs % bucket_width_ms_ == 0;
  for (int attempt = 0; attempt <= kPlannedReadAttempts; ++attempt) {
    const bool minutes_only = attempt == kPlannedReadAttempts || !hours_usable;
    int64_t closed = 0;
    if (!minutes_only) {
      DW_ASSIGN_OR_RETURN(closed, ClosedUntil(key));
    }
    // Hours wholly inside the window: [inside_start, inside_end). Of them,
    // hour rows cover [inside_start, covered_end): the closed part.
    const int64_t inside_start = CeilTo(window.start_ms, kHourMs);
    const int64_t inside_end = storage::BucketStart(window.end_ms, kHourMs);
    int64_t covered_end = inside_start;
    if (!minutes_only && inside_start < inside_end && inside_start < closed) {
      covered_end = std::min(closed, inside_end);
    }
    std::vector<storage::BucketRow> rows;
    auto read = [&](storage::Level level, int64_t start, int64_t end) -> absl::Status {
      if (end <= start) return absl::OkStatus();
      DW_ASSIGN_OR_RETURN(std::vector<storage::BucketRow> got,
                          buckets_->ReadBuckets(key, level, start, end, slices));
      if (rows.empty()) {
        rows = std::move(got);
      } else {
        rows.insert(rows.end(), std::make_move_iterator(got.begin()),
                    std::make_move_iterator(got.end()));
      }
      return absl::OkStatus();
    };
    if (covered_end > inside_start) {
      // Each hour row holds exactly the closed minutes of its hour, so the
      // hour holding `closed` contributes its row plus its minutes from
      // `closed` on.
      DW_RETURN_IF_ERROR(read(storage::Level::kHour, inside_start, CeilTo(covered_end, kHourMs)));
      DW_RETURN_IF_ERROR(read(storage::Level::kMinute, window.start_ms, inside_start));
      DW_RETURN_IF_ERROR(read(storage::Level::kMinute, covered_end, window.end_ms));
    } else {
      DW_RETURN_IF_ERROR(read(storage::Level::kMinute, window.start_ms, window.end_ms));
    }
    if (!minutes_only) {
      // Roll-ups only ever advance closed_until, so an unchanged value means
      // no roll-up landed between the reads.
      DW_ASSIGN_OR_RETURN(int64_t closed_after, ClosedUntil(key));
      if (closed_after != closed) continue;
    }
    SliceProfiles out;
    DW_RETURN_IF_ERROR(MergeRows(rows, model.layout(), &out));
    return out;
  }
  return absl::InternalError("unreachable");
}

}  // namespace driftwatch::service
