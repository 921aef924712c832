#include "driftwatch/service/reports.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/drift.h"
#include "driftwatch/base/status_macros.h"
#include "google/protobuf/timestamp.pb.h"

namespace driftwatch::service {
namespace {

using detectors::FeatureDrift;
using detectors::NumericBaseline;
using detectors::NumericSummary;
using detectors::Profile;
using storage::kHourMs;


constexpr uint32_t kMaxBins = 1000;
constexpr int64_t kMaxWindowSeconds = 100LL * 366 * 86'400;
// A rollup committed between planning a read and finishing it makes the
// plan stale; the read is redone, then falls back to minute rows only.
constexpr int kPlannedReadAttempts = 3;

constexpr std::string_view kDefaultBaseline = "default";

int64_t CeilTo(int64_t t, int64_t width) { return -storage::BucketStart(-t, width); }

int64_t ToMs(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1'000'000;
}
void SetMs(int64_t ms, google::protobuf::Timestamp* ts) {
  const int64_t seconds = storage::BucketStart(ms, 1000) / 1000;
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>((ms - seconds * 1000) * 1'000'000));
}

// [start_ms, end_ms) in event time.
struct Interval {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

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

// The last `length_ms` ending at `end_ms`, clamped at the epoch.
Interval Trailing(int64_t end_ms, int64_t length_ms) {
  return Interval{std::max<int64_t>(0, end_ms - length_ms), end_ms};
}

absl::StatusOr<Interval> ResolveWindow(const v1::Window& window, int64_t default_ms, int64_t now_ms,
                                       int64_t width) {
  Interval out;
  switch (window.window_case()) {
    case v1::Window::kRange: {
      DW_ASSIGN_OR_RETURN(out, CheckedRange(window.range(), "window.range"));
      break;
    }
    case v1::Window::kLastSeconds: {
      const int64_t s = window.last_seconds();
      if (s < 0 || s > kMaxWindowSeconds) {
        return absl::InvalidArgumentError(
            absl::StrCat("window.last_seconds must be in [1, ", kMaxWindowSeconds, "], got ", s));
      }
      out = Trailing(now_ms, s == 0 ? default_ms : s * 1000);
      break;
    }
    default:
      out = Trailing(now_ms, default_ms);
  }
  out = Align(out, width);
  if (out.end_ms <= out.start_ms) return absl::InvalidArgumentError("window is empty");
  return out;
}

void SetRange(const Interval& in, v1::TimeRange* out) {
  SetMs(in.start_ms, out->mutable_start());
  SetMs(in.end_ms, out->mutable_end());
}

// Profiles by slice id.
using SliceProfiles = std::map<int32_t, Profile>;

std::string SliceName(const ModelRuntime& rt, const storage::SliceRecord& record) {
  if (record.key_index < 0 || record.key_index >= rt.slice_key_count()) {
    return std::string(kAllSlice);
  }
  return absl::StrCat(rt.slice_keys()[record.key_index], "=", record.value);
}

std::string SelectorName(const v1::SliceSelector& selector) {
  if (selector.values().empty()) return std::string(kAllSlice);
  const auto& [key, value] = *selector.values().begin();
  return absl::StrCat(key, "=", value);
}

v1::SliceSelector SelectorOf(const ModelRuntime& rt, const storage::SliceRecord& record) {
  v1::SliceSelector out;
  if (record.key_index >= 0 && record.key_index < rt.slice_key_count()) {
    (*out.mutable_values())[rt.slice_keys()[record.key_index]] = record.value;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Reading windows.

absl::StatusOr<int64_t> CommittedClosedUntil(storage::Store& store, int64_t model_key) {
  DW_ASSIGN_OR_RETURN(storage::ModelProgress progress, store.ReadProgress(model_key));
  return progress.closed_until_ms;
}

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

// Merges the profiles of `slices` (every slice when empty) over the
// bucket-aligned `window`. Hours wholly inside the window come from hour
// rows as far as they are closed; the rest (partial hours at either end,
// minutes not yet closed) from minute rows. At most three ReadBuckets.
absl::StatusOr<SliceProfiles> ReadWindow(storage::Store& store, const ModelRuntime& rt,
                                         int64_t width, Interval window,
                                         const std::vector<int32_t>& slices) {
  const int64_t key = rt.model_key();
  const bool hours_usable = width > 0 && kHourMs % width == 0;
  for (int attempt = 0; attempt <= kPlannedReadAttempts; ++attempt) {
    const bool minutes_only = attempt == kPlannedReadAttempts || !hours_usable;
    int64_t closed = 0;
    if (!minutes_only) {
      DW_ASSIGN_OR_RETURN(closed, CommittedClosedUntil(store, key));
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
                          store.ReadBuckets(key, level, start, end, slices));
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
      // Rollups only ever advance closed_until, so an unchanged value means
      // no rollup landed between the reads.
      DW_ASSIGN_OR_RETURN(int64_t closed_after, CommittedClosedUntil(store, key));
      if (closed_after != closed) continue;
    }
    SliceProfiles out;
    DW_RETURN_IF_ERROR(MergeRows(rows, rt.layout(), &out));
    return out;
  }
  return absl::InternalError("unreachable");
}

// ---------------------------------------------------------------------------
// Baselines.

struct BaselineDef {
  std::string name;
  v1::BaselineSpec spec;
  std::optional<Profile> uploaded;  // source == profile
  int64_t created_at_ms = 0;
  int bins = detectors::kDefaultBins;
};

absl::StatusOr<BaselineDef> DecodeBaseline(const ModelRuntime& rt,
                                           const storage::BaselineRecord& record,
                                           int default_bins) {
  BaselineDef def;
  def.name = record.name;
  def.created_at_ms = record.created_at_ms;
  if (!def.spec.ParseFromString(record.spec)) {
    return absl::DataLossError(absl::StrCat("baseline \"", record.name, "\" of model ", rt.label(),
                                            ": stored spec does not parse"));
  }
  def.bins = def.spec.bins() > 0 ? static_cast<int>(def.spec.bins()) : default_bins;
  if (def.spec.source_case() == v1::BaselineSpec::kProfile) {
    absl::StatusOr<Profile> profile = Profile::Deserialize(rt.layout(), record.profile);
    if (!profile.ok()) {
      return absl::Status(profile.status().code(),
                          absl::StrCat("baseline \"", record.name, "\" of model ", rt.label(), ": ",
                                       profile.status().message()));
    }
    def.uploaded.emplace(*std::move(profile));
  }
  return def;
}

absl::StatusOr<BaselineDef> LoadBaseline(storage::Store& store, const ModelRuntime& rt,
                                         std::string_view requested, int default_bins) {
  const std::string_view name = requested.empty() ? kDefaultBaseline : requested;
  DW_ASSIGN_OR_RETURN(std::vector<storage::BaselineRecord> records,
                      store.ListBaselines(rt.model_key()));
  for (const storage::BaselineRecord& record : records) {
    if (record.name == name) return DecodeBaseline(rt, record, default_bins);
  }
  return absl::NotFoundError(absl::StrCat("baseline \"", Sv(name), "\" not found for model ",
                                          rt.label(), "; create one with CreateBaseline"));
}

// The event-time range a pinned or trailing baseline covers at `now_ms`.
Interval BaselineRange(const v1::BaselineSpec& spec, int64_t now_ms, int64_t width) {
  if (spec.source_case() == v1::BaselineSpec::kPinnedRange) {
    return Align(Interval{ToMs(spec.pinned_range().start()), ToMs(spec.pinned_range().end())},
                 width);
  }
  const int64_t end = now_ms - spec.trailing().lag_seconds() * 1000;
  return Align(Trailing(end, spec.trailing().length_seconds() * 1000), width);
}

// Reference profiles for `slices` (every slice when empty) and slice 0.
// An uploaded profile serves every slice; a pinned range or trailing
// window is each slice's own traffic there.
absl::StatusOr<SliceProfiles> BaselineProfiles(storage::Store& store, const ModelRuntime& rt,
                                               int64_t width, int64_t now_ms,
                                               const BaselineDef& def,
                                               std::vector<int32_t> slices) {
  if (def.uploaded.has_value()) {
    SliceProfiles out;
    out.emplace(0, *def.uploaded);
    return out;
  }
  if (!slices.empty() && std::find(slices.begin(), slices.end(), 0) == slices.end()) {
    slices.push_back(0);
  }
  const Interval range = BaselineRange(def.spec, now_ms, width);
  if (range.end_ms <= range.start_ms) return SliceProfiles{};
  return ReadWindow(store, rt, width, range, slices);
}

bool HasData(const Profile& p) { return p.counters().events > 0; }

// The slice's own reference, else the population's; nullptr when neither
// holds data.
const Profile* ReferenceFor(const SliceProfiles& refs, int32_t slice_id) {
  auto it = refs.find(slice_id);
  if (it != refs.end() && HasData(it->second)) return &it->second;
  it = refs.find(0);
  if (it != refs.end() && HasData(it->second)) return &it->second;
  return nullptr;
}

absl::Status NoBaselineData(const ModelRuntime& rt, const BaselineDef& def) {
  return absl::FailedPreconditionError(
      absl::StrCat("baseline \"", def.name, "\" of model ", rt.label(), " holds no data"));
}

// A reference profile with its frozen numeric bins, built once and
// compared with any number of current profiles.
struct Reference {
  const Profile* profile = nullptr;
  std::vector<std::optional<NumericBaseline>> numeric;
  std::vector<std::optional<NumericBaseline>> scores;
};

absl::StatusOr<std::optional<NumericBaseline>> FreezeBins(const NumericSummary& summary, int bins) {
  if (summary.counts().count == 0 || !(summary.counts().weight > 0)) return std::nullopt;
  DW_ASSIGN_OR_RETURN(
      NumericBaseline baseline,
      detectors::MakeNumericBaseline(std::make_shared<const NumericSummary>(summary), bins));
  return baseline;
}

absl::StatusOr<Reference> BuildReference(const Profile& profile, int bins) {
  Reference ref;
  ref.profile = &profile;
  for (const NumericSummary& s : profile.numeric()) {
    DW_ASSIGN_OR_RETURN(auto frozen, FreezeBins(s, bins));
    ref.numeric.push_back(std::move(frozen));
  }
  for (const NumericSummary& s : profile.scores()) {
    DW_ASSIGN_OR_RETURN(auto frozen, FreezeBins(s, bins));
    ref.scores.push_back(std::move(frozen));
  }
  return ref;
}

// ---------------------------------------------------------------------------
// Comparing.

double InvalidRate(const detectors::ProfileCounters& c) {
  return c.events > 0 ? static_cast<double>(c.invalid_values) / static_cast<double>(c.events) : 0;
}

void FillDrift(const FeatureDrift& drift, v1::FeatureDriftReport* out) {
  out->set_psi(drift.divergences.psi);
  out->set_kl(drift.divergences.kl);
  out->set_js(drift.divergences.js);
  if (drift.ks) {
    out->mutable_ks()->set_statistic(drift.ks->statistic);
    out->mutable_ks()->set_p_value(drift.ks->p_value);
    out->mutable_ks()->set_error_bound(drift.ks->error_bound);
  }
  if (drift.chi2) {
    out->mutable_chi2()->set_statistic(drift.chi2->statistic);
    out->mutable_chi2()->set_df(drift.chi2->df);
    out->mutable_chi2()->set_p_value(drift.chi2->p_value);
  }
  if (drift.wasserstein) {
    out->set_wasserstein(drift.wasserstein->distance);
    out->set_wasserstein_norm(drift.wasserstein->normalized);
  }
  out->set_drifted(detectors::IsDrifted(drift));
}

absl::Status CompareNumericFeature(const std::string& name,
                                   const std::optional<NumericBaseline>& frozen,
                                   const NumericSummary& reference, const NumericSummary& current,
                                   const detectors::ProfileCounters& counters,
                                   v1::FeatureDriftReport* out) {
  out->set_name(name);
  out->set_kind(v1::FEATURE_KIND_NUMERIC);
  out->set_n_reference(reference.counts().weight);
  out->set_n_current(current.counts().weight);
  const detectors::NumericCounts& c = current.counts();
  const double missing = static_cast<double>(c.nulls + c.nans + c.pos_infs + c.neg_infs);
  const double all = missing + static_cast<double>(c.count);
  out->set_null_rate(all > 0 ? missing / all : 0);
  out->set_invalid_rate(InvalidRate(counters));
  if (!frozen.has_value() || c.count == 0 || !(c.weight > 0)) return absl::OkStatus();
  absl::StatusOr<FeatureDrift> drift = detectors::CompareNumeric(*frozen, current);
  if (!drift.ok()) {
    return absl::Status(drift.status().code(),
                        absl::StrCat("feature \"", name, "\": ", drift.status().message()));
  }
  FillDrift(*drift, out);
  return absl::OkStatus();
}

absl::Status CompareCategoricalFeature(const std::string& name,
                                       const detectors::CategoricalSummary& reference,
                                       const detectors::CategoricalSummary& current,
                                       const detectors::ProfileCounters& counters,
                                       v1::FeatureDriftReport* out) {
  out->set_name(name);
  out->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  out->set_n_reference(reference.total_weight());
  out->set_n_current(current.total_weight());
  const double total = current.total_weight();
  out->set_null_rate(total > 0 ? current.missing_weight() / total : 0);
  out->set_invalid_rate(InvalidRate(counters));
  if (!(reference.total_weight() > 0) || !(total > 0)) return absl::OkStatus();
  absl::StatusOr<FeatureDrift> drift = detectors::CompareCategorical(reference, current);
  if (!drift.ok()) {
    return absl::Status(drift.status().code(),
                        absl::StrCat("feature \"", name, "\": ", drift.status().message()));
  }
  FillDrift(*drift, out);
  return absl::OkStatus();
}

// Every feature and score of `current` against `ref`, in schema order.
absl::Status CompareProfiles(const Reference& ref, const Profile& current, v1::DriftReport* out) {
  const detectors::ProfileLayout& layout = current.layout();
  const Profile& reference = *ref.profile;
  const detectors::ProfileCounters& counters = current.counters();
  for (size_t f = 0; f < layout.numeric_names.size(); ++f) {
    DW_RETURN_IF_ERROR(CompareNumericFeature(layout.numeric_names[f], ref.numeric[f],
                                             reference.numeric()[f], current.numeric()[f], counters,
                                             out->add_features()));
  }
  for (size_t f = 0; f < layout.categorical_names.size(); ++f) {
    DW_RETURN_IF_ERROR(
        CompareCategoricalFeature(layout.categorical_names[f], reference.categorical()[f],
                                  current.categorical()[f], counters, out->add_features()));
  }
  for (size_t s = 0; s < layout.score_names.size(); ++s) {
    DW_RETURN_IF_ERROR(CompareNumericFeature(layout.score_names[s], ref.scores[s],
                                             reference.scores()[s], current.scores()[s], counters,
                                             out->add_scores()));
  }
  return absl::OkStatus();
}

bool HasStatistics(const v1::FeatureDriftReport& f) { return f.has_ks() || f.has_chi2(); }

enum class Metric { kPsi, kJs, kKs, kWassersteinNorm };

absl::StatusOr<Metric> ParseMetric(std::string_view name) {
  if (name.empty() || name == "psi") return Metric::kPsi;
  if (name == "js") return Metric::kJs;
  if (name == "ks") return Metric::kKs;
  if (name == "wasserstein_norm") return Metric::kWassersteinNorm;
  return absl::InvalidArgumentError(
      absl::StrCat("metric \"", Sv(name), "\" is not one of psi, js, ks, wasserstein_norm"));
}

// The metric's value for one feature; nullopt when it does not apply.
std::optional<double> MetricOf(const v1::FeatureDriftReport& f, Metric metric) {
  if (!HasStatistics(f)) return std::nullopt;
  switch (metric) {
    case Metric::kPsi:
      return f.psi();
    case Metric::kJs:
      return f.js();
    case Metric::kKs:
      if (!f.has_ks()) return std::nullopt;
      return f.ks().statistic();
    case Metric::kWassersteinNorm:
      if (!f.has_ks()) return std::nullopt;
      return f.wasserstein_norm();
  }
  return std::nullopt;
}

// Calls `fn` for every feature and score report.
template <typename Fn>
void ForEachFeature(const v1::DriftReport& report, Fn fn) {
  for (const v1::FeatureDriftReport& f : report.features()) fn(f);
  for (const v1::FeatureDriftReport& f : report.scores()) fn(f);
}

// ---------------------------------------------------------------------------
// Uploaded profiles.

absl::StatusOr<Profile> ProfileFromReference(const ModelRuntime& rt,
                                             const v1::ReferenceProfile& ref) {
  int64_t n = -1;
  auto expect = [&n](int64_t size, std::string_view field) -> absl::Status {
    if (n < 0) n = size;
    if (size != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.", Sv(field), " has ", size, " values, expected ", n));
    }
    return absl::OkStatus();
  };
  for (const v1::NumericColumn& col : ref.numeric()) {
    DW_RETURN_IF_ERROR(expect(col.values_size(), absl::StrCat("numeric[\"", col.name(), "\"]")));
  }
  for (const v1::CategoricalColumn& col : ref.categorical()) {
    DW_RETURN_IF_ERROR(
        expect(col.codes_size(), absl::StrCat("categorical[\"", col.name(), "\"].codes")));
  }
  const int scores = rt.score_count();
  if (ref.scores_size() > 0) {
    if (scores == 0 || ref.scores_size() % scores != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.scores has ", ref.scores_size(),
                       " values, not a multiple of the model's ", scores, " scores"));
    }
    DW_RETURN_IF_ERROR(expect(ref.scores_size() / scores, "scores (per score)"));
  }
  if (n <= 0) return absl::InvalidArgumentError("baseline.profile holds no rows");
  if (ref.weights_size() > 0) DW_RETURN_IF_ERROR(expect(ref.weights_size(), "weights"));
  for (int i = 0; i < ref.weights_size(); ++i) {
    const double w = ref.weights(i);
    if (!std::isfinite(w) || !(w > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.weights[", i, "] = ", w, " is not a finite number > 0"));
    }
  }
  auto weight = [&ref](int64_t i) { return ref.weights_size() > 0 ? ref.weights(i) : 1.0; };
  auto add_numeric = [](NumericSummary& s, double x, double w) {
    if (std::isnan(x)) {
      s.AddNull();
    } else {
      s.Add(x, w);  // counts +-Inf as non-finite
    }
  };

  Profile profile(rt.layout());
  std::vector<bool> seen_numeric(rt.numeric_count()), seen_categorical(rt.categorical_count());
  for (const v1::NumericColumn& col : ref.numeric()) {
    const std::optional<int> f = rt.NumericIndex(col.name());
    if (!f) {
      return absl::InvalidArgumentError(absl::StrCat("baseline.profile.numeric column \"",
                                                     col.name(), "\" is not a numeric feature of ",
                                                     rt.label()));
    }
    if (seen_numeric[*f]) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.numeric column \"", col.name(), "\" appears twice"));
    }
    seen_numeric[*f] = true;
    for (int64_t i = 0; i < n; ++i) add_numeric(profile.numeric()[*f], col.values(i), weight(i));
  }
  for (const v1::CategoricalColumn& col : ref.categorical()) {
    const std::optional<int> f = rt.CategoricalIndex(col.name());
    if (!f) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.categorical column \"", col.name(),
                       "\" is not a categorical feature of ", rt.label()));
    }
    if (seen_categorical[*f]) {
      return absl::InvalidArgumentError(
          absl::StrCat("baseline.profile.categorical column \"", col.name(), "\" appears twice"));
    }
    seen_categorical[*f] = true;
    detectors::CategoricalSummary& summary = profile.categorical()[*f];
    for (int64_t i = 0; i < n; ++i) {
      const int32_t code = col.codes(i);
      if (code == -1) {
        summary.AddMissing(weight(i));
      } else if (code < -1 || code >= col.dictionary_size()) {
        return absl::InvalidArgumentError(absl::StrCat("baseline.profile.categorical[\"",
                                                       col.name(), "\"].codes[", i, "] = ", code,
                                                       " is outside its dictionary"));
      } else {
        summary.Add(col.dictionary(code), weight(i));
      }
    }
  }
  if (ref.scores_size() > 0) {
    for (int s = 0; s < scores; ++s) {
      for (int64_t i = 0; i < n; ++i) {
        add_numeric(profile.scores()[s], ref.scores(static_cast<int>(s * n + i)), weight(i));
      }
    }
  }
  detectors::ProfileCounters& c = profile.counters();
  c.events = static_cast<uint64_t>(n);
  for (int64_t i = 0; i < n; ++i) {
    c.weight += weight(i);
    c.weight_sq += weight(i) * weight(i);
  }
  return profile;
}

}  // namespace

// ---------------------------------------------------------------------------

// A reference that owns its profile (Reference points into it), so it
// must not move once built: the cache holds it by shared_ptr.
struct OwnedReference {
  Profile profile;
  Reference frozen;
};

struct ReportEngine::ReferenceCache {
  // (model key, baseline name, baseline created_at, slice id).
  using Key = std::tuple<int64_t, std::string, int64_t, int32_t>;
  std::mutex mu;
  std::map<Key, std::shared_ptr<const OwnedReference>> entries;  // guarded by mu
};

ReportEngine::ReportEngine(storage::Store* store, const Ingestor* ingestor, const base::Clock* clock,
                           ReportOptions options)
    : cache_(std::make_unique<ReferenceCache>()),
      store_(store),
      ingestor_(ingestor),
      clock_(clock),
      options_(std::move(options)) {}

ReportEngine::~ReportEngine() = default;

int64_t ReportEngine::bucket_width_ms() const { return ingestor_->options().bucket_width_ms; }

absl::StatusOr<ReportEngine::ModelContext> ReportEngine::Model(const v1::ModelRef& ref) const {
  DW_ASSIGN_OR_RETURN(Ingestor::ModelView view, ingestor_->FindModel(ref));
  ModelContext ctx;
  ctx.runtime = std::move(view.runtime);
  ctx.ref = ctx.runtime->schema().model();
  return ctx;
}

absl::StatusOr<int32_t> ReportEngine::ResolveSlice(const ModelContext& ctx,
                                                   const v1::SliceSelector& selector) const {
  if (selector.values().empty()) return 0;
  if (selector.values_size() > 1) {
    return absl::InvalidArgumentError(
        "slice selects more than one key; crossings of slice keys are not supported yet");
  }
  const auto& [key, value] = *selector.values().begin();
  if (!ctx.runtime->SliceKeyIndex(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("slice key \"", key, "\" is not a slice key of model ", ctx.runtime->label()));
  }
  std::optional<int32_t> id = ingestor_->FindSlice(ctx.ref, key, value);
  if (!id) {
    return absl::NotFoundError(absl::StrCat("slice ", key, "=", value, " of model ",
                                            ctx.runtime->label(), " has never been seen"));
  }
  return *id;
}

absl::StatusOr<v1::DriftReport> ReportEngine::GetDriftReport(
    const v1::GetDriftReportRequest& request) const {
  DW_ASSIGN_OR_RETURN(ModelContext ctx, Model(request.model()));
  const ModelRuntime& rt = *ctx.runtime;
  DW_ASSIGN_OR_RETURN(int32_t slice_id, ResolveSlice(ctx, request.slice()));
  const int64_t now_ms = clock_->NowMs();
  const int64_t width = bucket_width_ms();
  DW_ASSIGN_OR_RETURN(Interval window,
                      ResolveWindow(request.window(), options_.default_window_ms, now_ms, width));
  DW_ASSIGN_OR_RETURN(BaselineDef def,
                      LoadBaseline(*store_, rt, request.baseline(), options_.bins));

  DW_ASSIGN_OR_RETURN(SliceProfiles current, ReadWindow(*store_, rt, width, window, {slice_id}));
  auto cur = current.find(slice_id);
  if (cur == current.end() || !HasData(cur->second)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", rt.label(), " has no events in slice ", SelectorName(request.slice()),
        " in the window [", window.start_ms, ", ", window.end_ms, ") ms"));
  }
  // A baseline that can no longer change is frozen once and cached.
  const ReferenceCache::Key cache_key{rt.model_key(), def.name, def.created_at_ms, slice_id};
  std::shared_ptr<const OwnedReference> cached;
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->entries.find(cache_key);
    if (it != cache_->entries.end()) cached = it->second;
  }
  if (cached == nullptr) {
    DW_ASSIGN_OR_RETURN(SliceProfiles refs,
                        BaselineProfiles(*store_, rt, width, now_ms, def, {slice_id}));
    const Profile* reference = ReferenceFor(refs, slice_id);
    if (reference == nullptr) return NoBaselineData(rt, def);
    auto owned = std::make_shared<OwnedReference>(OwnedReference{*reference, {}});
    DW_ASSIGN_OR_RETURN(owned->frozen, BuildReference(owned->profile, def.bins));
    bool immutable = def.uploaded.has_value();
    if (def.spec.source_case() == v1::BaselineSpec::kPinnedRange) {
      DW_ASSIGN_OR_RETURN(int64_t closed_until, CommittedClosedUntil(*store_, rt.model_key()));
      immutable = BaselineRange(def.spec, now_ms, width).end_ms <= closed_until;
    }
    if (immutable) {
      std::lock_guard<std::mutex> lock(cache_->mu);
      cache_->entries[cache_key] = owned;
    }
    cached = std::move(owned);
  }
  const Reference& frozen = cached->frozen;

  v1::DriftReport report;
  *report.mutable_model() = ctx.ref;
  *report.mutable_slice() = request.slice();
  SetRange(window, report.mutable_window());
  report.set_baseline(def.name);
  DW_RETURN_IF_ERROR(CompareProfiles(frozen, cur->second, &report));
  report.mutable_counts()->set_events(cur->second.counters().events);
  report.mutable_counts()->set_late_accepted(cur->second.counters().late_accepted);
  return report;
}

absl::StatusOr<v1::RankSlicesResponse> ReportEngine::RankSlices(
    const v1::RankSlicesRequest& request) const {
  DW_ASSIGN_OR_RETURN(ModelContext ctx, Model(request.model()));
  const ModelRuntime& rt = *ctx.runtime;
  DW_ASSIGN_OR_RETURN(Metric metric, ParseMetric(request.metric()));
  const std::string& feature = request.feature();
  if (!feature.empty()) {
    const bool numeric =
        rt.NumericIndex(feature).has_value() ||
        std::count(rt.layout()->score_names.begin(), rt.layout()->score_names.end(), feature) > 0;
    const bool categorical = rt.CategoricalIndex(feature).has_value();
    if (!numeric && !categorical) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feature \"", feature, "\" is not a feature or score of model ", rt.label()));
    }
    if (!numeric && (metric == Metric::kKs || metric == Metric::kWassersteinNorm)) {
      return absl::InvalidArgumentError(absl::StrCat("metric \"", request.metric(),
                                                     "\" does not apply to categorical feature \"",
                                                     feature, "\""));
    }
  }
  if (request.min_support() < 0 || !std::isfinite(request.min_support())) {
    return absl::InvalidArgumentError("min_support must be a finite number >= 0");
  }
  const double min_support =
      request.min_support() > 0 ? request.min_support() : options_.default_min_support;
  const uint32_t top_k = request.top_k() > 0 ? request.top_k() : options_.default_top_k;
  const int64_t now_ms = clock_->NowMs();
  const int64_t width = bucket_width_ms();
  DW_ASSIGN_OR_RETURN(Interval window,
                      ResolveWindow(request.window(), options_.default_window_ms, now_ms, width));
  DW_ASSIGN_OR_RETURN(BaselineDef def,
                      LoadBaseline(*store_, rt, request.baseline(), options_.bins));

  DW_ASSIGN_OR_RETURN(SliceProfiles current, ReadWindow(*store_, rt, width, window, {}));
  std::vector<int32_t> candidates;
  for (const auto& [id, profile] : current) {
    if (id != 0 && HasData(profile) && profile.counters().weight >= min_support) {
      candidates.push_back(id);
    }
  }
  v1::RankSlicesResponse response;
  if (candidates.empty()) return response;
  std::vector<int32_t> wanted = candidates;
  wanted.push_back(0);
  DW_ASSIGN_OR_RETURN(SliceProfiles refs,
                      BaselineProfiles(*store_, rt, width, now_ms, def, wanted));

  // Frozen references, one per distinct reference profile.
  std::map<const Profile*, Reference> frozen;
  auto compare = [&](int32_t id, v1::DriftReport* out) -> absl::StatusOr<bool> {
    const Profile* reference = ReferenceFor(refs, id);
    if (reference == nullptr) return false;
    auto it = frozen.find(reference);
    if (it == frozen.end()) {
      DW_ASSIGN_OR_RETURN(Reference r, BuildReference(*reference, def.bins));
      it = frozen.emplace(reference, std::move(r)).first;
    }
    DW_RETURN_IF_ERROR(CompareProfiles(it->second, current.at(id), out));
    return true;
  };
  // Population values per feature, for SliceRank.population_value.
  std::map<std::string, double> population;
  if (auto it = current.find(0); it != current.end() && HasData(it->second)) {
    v1::DriftReport report;
    DW_ASSIGN_OR_RETURN(bool ok, compare(0, &report));
    if (ok) {
      ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
        if (std::optional<double> v = MetricOf(f, metric)) population[f.name()] = *v;
      });
    }
  }
  if (ReferenceFor(refs, 0) == nullptr) return NoBaselineData(rt, def);

  const std::vector<storage::SliceRecord> records = ingestor_->Slices(ctx.ref);
  std::vector<v1::SliceRank> ranks;
  for (int32_t id : candidates) {
    v1::DriftReport report;
    DW_ASSIGN_OR_RETURN(bool ok, compare(id, &report));
    if (!ok) continue;
    std::optional<double> best;
    std::string best_feature;
    ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
      if (!feature.empty() && f.name() != feature) return;
      std::optional<double> v = MetricOf(f, metric);
      if (v && (!best || *v > *best)) {
        best = v;
        best_feature = f.name();
      }
    });
    if (!best || static_cast<size_t>(id) >= records.size()) continue;
    v1::SliceRank rank;
    *rank.mutable_slice() = SelectorOf(rt, records[id]);
    rank.set_value(*best);
    rank.set_feature(best_feature);
    rank.set_support(current.at(id).counters().weight);
    if (auto p = population.find(best_feature); p != population.end()) {
      rank.set_population_value(p->second);
    }
    ranks.push_back(std::move(rank));
  }
  std::stable_sort(ranks.begin(), ranks.end(), [](const v1::SliceRank& a, const v1::SliceRank& b) {
    return a.value() > b.value();
  });
  if (ranks.size() > top_k) ranks.resize(top_k);
  for (v1::SliceRank& r : ranks) *response.add_slices() = std::move(r);
  return response;
}

absl::StatusOr<double> ReportEngine::ReferenceWeight(const ModelContext& ctx,
                                                     const v1::BaselineSpec& spec,
                                                     const Profile* uploaded) const {
  if (uploaded != nullptr) return uploaded->counters().weight;
  const int64_t width = bucket_width_ms();
  const Interval range = BaselineRange(spec, clock_->NowMs(), width);
  if (range.end_ms <= range.start_ms) return 0.0;
  DW_ASSIGN_OR_RETURN(SliceProfiles population,
                      ReadWindow(*store_, *ctx.runtime, width, range, {0}));
  auto it = population.find(0);
  return it == population.end() ? 0.0 : it->second.counters().weight;
}

absl::StatusOr<v1::Baseline> ReportEngine::CreateBaseline(
    const v1::CreateBaselineRequest& request) const {
  DW_ASSIGN_OR_RETURN(ModelContext ctx, Model(request.model()));
  const ModelRuntime& rt = *ctx.runtime;
  v1::BaselineSpec spec = request.baseline();
  if (spec.name().empty()) spec.set_name(std::string(kDefaultBaseline));
  if (spec.bins() > kMaxBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("baseline.bins must be at most ", kMaxBins, ", got ", spec.bins()));
  }
  // Freeze the default so a later change of options leaves this baseline be.
  if (spec.bins() == 0) spec.set_bins(static_cast<uint32_t>(options_.bins));

  storage::BaselineRecord record;
  record.model_key = rt.model_key();
  record.name = spec.name();
  record.created_at_ms = clock_->NowMs();
  std::optional<Profile> uploaded;
  switch (spec.source_case()) {
    case v1::BaselineSpec::kProfile: {
      DW_ASSIGN_OR_RETURN(Profile profile, ProfileFromReference(rt, spec.profile()));
      record.profile = profile.Serialize();
      uploaded.emplace(std::move(profile));
      // The rows live on as their summary; the stored spec keeps the kind.
      spec.mutable_profile()->Clear();
      break;
    }
    case v1::BaselineSpec::kPinnedRange:
      DW_RETURN_IF_ERROR(CheckedRange(spec.pinned_range(), "baseline.pinned_range").status());
      break;
    case v1::BaselineSpec::kTrailing: {
      const v1::TrailingWindow& t = spec.trailing();
      if (t.length_seconds() <= 0 || t.length_seconds() > kMaxWindowSeconds) {
        return absl::InvalidArgumentError(
            absl::StrCat("baseline.trailing.length_seconds must be in [1, ", kMaxWindowSeconds,
                         "], got ", t.length_seconds()));
      }
      if (t.lag_seconds() < 0 || t.lag_seconds() > kMaxWindowSeconds) {
        return absl::InvalidArgumentError(
            absl::StrCat("baseline.trailing.lag_seconds must be in [0, ", kMaxWindowSeconds,
                         "], got ", t.lag_seconds()));
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(
          "baseline has no source: set profile, pinned_range or trailing");
  }
  record.spec = spec.SerializeAsString();
  DW_ASSIGN_OR_RETURN(double weight, ReferenceWeight(ctx, spec, uploaded ? &*uploaded : nullptr));
  DW_RETURN_IF_ERROR(store_->PutBaseline(record));

  v1::Baseline out;
  *out.mutable_model() = ctx.ref;
  *out.mutable_spec() = std::move(spec);
  SetMs(record.created_at_ms, out.mutable_created_at());
  out.set_reference_weight(weight);
  return out;
}

absl::StatusOr<v1::ListBaselinesResponse> ReportEngine::ListBaselines(
    const v1::ListBaselinesRequest& request) const {
  DW_ASSIGN_OR_RETURN(ModelContext ctx, Model(request.model()));
  DW_ASSIGN_OR_RETURN(std::vector<storage::BaselineRecord> records,
                      store_->ListBaselines(ctx.runtime->model_key()));
  v1::ListBaselinesResponse response;
  for (const storage::BaselineRecord& record : records) {
    DW_ASSIGN_OR_RETURN(BaselineDef def, DecodeBaseline(*ctx.runtime, record, options_.bins));
    DW_ASSIGN_OR_RETURN(double weight,
                        ReferenceWeight(ctx, def.spec, def.uploaded ? &*def.uploaded : nullptr));
    v1::Baseline* b = response.add_baselines();
    *b->mutable_model() = ctx.ref;
    *b->mutable_spec() = std::move(def.spec);
    SetMs(def.created_at_ms, b->mutable_created_at());
    b->set_reference_weight(weight);
  }
  return response;
}

absl::StatusOr<std::vector<ReportEngine::Signal>> ReportEngine::CurrentSignals(
    int max_slices) const {
  std::vector<Signal> out;
  const int64_t now_ms = clock_->NowMs();
  const int64_t width = bucket_width_ms();
  const Interval window = Align(Trailing(now_ms, options_.default_window_ms), width);
  for (const v1::ModelSchema& schema : ingestor_->ListModels()) {
    absl::StatusOr<ModelContext> ctx = Model(schema.model());
    if (!ctx.ok()) continue;  // unregistered since the listing
    const ModelRuntime& rt = *ctx->runtime;
    absl::StatusOr<BaselineDef> def = LoadBaseline(*store_, rt, kDefaultBaseline, options_.bins);
    if (absl::IsNotFound(def.status())) continue;
    DW_RETURN_IF_ERROR(def.status());

    DW_ASSIGN_OR_RETURN(SliceProfiles current, ReadWindow(*store_, rt, width, window, {}));
    // The population and the busiest slices, by current weight.
    std::vector<std::pair<double, int32_t>> busiest;
    for (const auto& [id, profile] : current) {
      if (id != 0 && HasData(profile)) busiest.emplace_back(-profile.counters().weight, id);
    }
    std::sort(busiest.begin(), busiest.end());
    if (busiest.size() > static_cast<size_t>(std::max(0, max_slices))) {
      busiest.resize(static_cast<size_t>(std::max(0, max_slices)));
    }
    std::vector<int32_t> chosen{0};
    for (const auto& [w, id] : busiest) chosen.push_back(id);
    DW_ASSIGN_OR_RETURN(SliceProfiles refs,
                        BaselineProfiles(*store_, rt, width, now_ms, *def, chosen));
    const std::vector<storage::SliceRecord> records = ingestor_->Slices(ctx->ref);
    std::map<const Profile*, Reference> frozen;
    for (int32_t id : chosen) {
      auto cur = current.find(id);
      if (cur == current.end() || !HasData(cur->second)) continue;
      const Profile* reference = ReferenceFor(refs, id);
      if (reference == nullptr || static_cast<size_t>(id) >= records.size()) continue;
      auto it = frozen.find(reference);
      if (it == frozen.end()) {
        DW_ASSIGN_OR_RETURN(Reference r, BuildReference(*reference, def->bins));
        it = frozen.emplace(reference, std::move(r)).first;
      }
      v1::DriftReport report;
      DW_RETURN_IF_ERROR(CompareProfiles(it->second, cur->second, &report));
      const std::string slice = SliceName(rt, records[id]);
      auto emit = [&](const std::string& feature, std::string_view name, double value) {
        out.push_back(Signal{rt.label(), slice, feature, std::string(name), value});
      };
      ForEachFeature(report, [&](const v1::FeatureDriftReport& f) {
        emit(f.name(), "null_rate", f.null_rate());
        if (!HasStatistics(f)) return;
        emit(f.name(), "psi", f.psi());
        emit(f.name(), "js", f.js());
        if (f.has_ks()) {
          emit(f.name(), "ks", f.ks().statistic());
          emit(f.name(), "wasserstein_norm", f.wasserstein_norm());
        }
      });
    }
  }
  return out;
}

}  // namespace driftwatch::service
