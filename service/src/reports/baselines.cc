#include "driftwatch/service/baselines.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"
#include "reports/uploaded_profile.h"

namespace driftwatch::service {
namespace {

using base::Sv;
using detectors::NumericBaseline;
using detectors::NumericSummary;
using detectors::Profile;

constexpr uint32_t kMaxBins = 1000;

bool HasData(const Profile& p) { return p.counters().events > 0; }

absl::StatusOr<BaselineDef> Decode(const RegisteredModel& model,
                                   const storage::BaselineRecord& record, int default_bins) {
  BaselineDef def;
  def.name = record.name;
  def.created_at_ms = record.created_at_ms;
  if (!def.spec.ParseFromString(record.spec)) {
    return absl::DataLossError(absl::StrCat("baseline \"", record.name, "\" of model ",
                                            model.label(), ": stored spec does not parse"));
  }
  def.bins = def.spec.bins() > 0 ? static_cast<int>(def.spec.bins()) : default_bins;
  if (def.spec.source_case() == v1::BaselineSpec::kProfile) {
    absl::StatusOr<Profile> profile = Profile::Deserialize(model.layout(), record.profile);
    if (!profile.ok()) {
      return absl::Status(profile.status().code(),
                          absl::StrCat("baseline \"", record.name, "\" of model ", model.label(),
                                       ": ", profile.status().message()));
    }
    def.uploaded.emplace(*std::move(profile));
  }
  return def;
}

absl::StatusOr<std::optional<NumericBaseline>> FreezeBins(const NumericSummary& summary, int bins) {
  if (summary.counts().count == 0 || !(summary.counts().weight > 0)) return std::nullopt;
  DW_ASSIGN_OR_RETURN(
      NumericBaseline baseline,
      detectors::MakeNumericBaseline(std::make_shared<const NumericSummary>(summary), bins));
  return baseline;
}

// INVALID_ARGUMENT naming the field for a spec that cannot be stored.
absl::Status CheckSpec(const v1::BaselineSpec& spec) {
  if (spec.bins() > kMaxBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("baseline.bins must be at most ", kMaxBins, ", got ", spec.bins()));
  }
  switch (spec.source_case()) {
    case v1::BaselineSpec::kProfile:
      return absl::OkStatus();
    case v1::BaselineSpec::kPinnedRange:
      return CheckedRange(spec.pinned_range(), "baseline.pinned_range").status();
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
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          "baseline has no source: set profile, pinned_range or trailing");
  }
}

}  // namespace

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

const Profile* ReferenceFor(const SliceProfiles& refs, int32_t slice_id) {
  auto it = refs.find(slice_id);
  if (it != refs.end() && HasData(it->second)) return &it->second;
  it = refs.find(0);
  if (it != refs.end() && HasData(it->second)) return &it->second;
  return nullptr;
}

absl::StatusOr<const Reference*> FrozenReferences::For(const Profile& profile) {
  auto it = frozen_.find(&profile);
  if (it == frozen_.end()) {
    DW_ASSIGN_OR_RETURN(Reference r, BuildReference(profile, bins_));
    it = frozen_.emplace(&profile, std::move(r)).first;
  }
  return &it->second;
}

Baselines::Baselines(storage::BaselineStore* store, const WindowReader* windows, int default_bins)
    : store_(store), windows_(windows), default_bins_(default_bins) {}

Baselines::~Baselines() = default;

absl::Status Baselines::NoData(const RegisteredModel& model, const BaselineDef& def) {
  return absl::FailedPreconditionError(
      absl::StrCat("baseline \"", def.name, "\" of model ", model.label(), " holds no data"));
}

absl::StatusOr<BaselineDef> Baselines::Load(const RegisteredModel& model,
                                            std::string_view requested) const {
  const std::string_view name = requested.empty() ? kDefaultBaseline : requested;
  DW_ASSIGN_OR_RETURN(std::vector<storage::BaselineRecord> records,
                      store_->ListBaselines(model.model_key()));
  for (const storage::BaselineRecord& record : records) {
    if (record.name == name) return Decode(model, record, default_bins_);
  }
  return absl::NotFoundError(absl::StrCat("baseline \"", Sv(name), "\" not found for model ",
                                          model.label(), "; create one with CreateBaseline"));
}

Interval Baselines::Range(const v1::BaselineSpec& spec, int64_t now_ms) const {
  const int64_t width = windows_->bucket_width_ms();
  if (spec.source_case() == v1::BaselineSpec::kPinnedRange) {
    return Align(Interval{ToMs(spec.pinned_range().start()), ToMs(spec.pinned_range().end())},
                 width);
  }
  const int64_t end = now_ms - spec.trailing().lag_seconds() * 1000;
  return TrailingBuckets(end, spec.trailing().length_seconds() * 1000, width);
}

absl::StatusOr<SliceProfiles> Baselines::Profiles(const RegisteredModel& model,
                                                  const BaselineDef& def, int64_t now_ms,
                                                  std::vector<int32_t> slices) const {
  if (def.uploaded.has_value()) {
    SliceProfiles out;
    out.emplace(0, *def.uploaded);
    return out;
  }
  if (!slices.empty() && std::find(slices.begin(), slices.end(), 0) == slices.end()) {
    slices.push_back(0);
  }
  const Interval range = Range(def.spec, now_ms);
  if (range.end_ms <= range.start_ms) return SliceProfiles{};
  return windows_->Read(model, range, slices);
}

absl::StatusOr<std::shared_ptr<const OwnedReference>> Baselines::Frozen(
    const RegisteredModel& model, const BaselineDef& def, int32_t slice_id, int64_t now_ms) const {
  const CacheKey key{model.model_key(), def.name, def.created_at_ms, slice_id};
  // Read before storage: a backfill committed after it moves it on, so a
  // reference frozen from pre-backfill rows is not served again.
  const uint64_t generation = model.backfill_generation();
  {
    absl::MutexLock lock(&cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.generation == generation ||
          it->second.generation == CachedReference::kForever) {
        return it->second.reference;
      }
      cache_.erase(it);
    }
  }
  DW_ASSIGN_OR_RETURN(SliceProfiles refs, Profiles(model, def, now_ms, {slice_id}));
  const Profile* reference = ReferenceFor(refs, slice_id);
  if (reference == nullptr) return NoData(model, def);
  auto owned = std::make_shared<OwnedReference>(OwnedReference{*reference, {}});
  DW_ASSIGN_OR_RETURN(owned->frozen, BuildReference(owned->profile, def.bins));
  bool immutable = def.uploaded.has_value();
  if (def.spec.source_case() == v1::BaselineSpec::kPinnedRange) {
    DW_ASSIGN_OR_RETURN(int64_t closed_until, windows_->ClosedUntil(model.model_key()));
    immutable = Range(def.spec, now_ms).end_ms <= closed_until;
  }
  if (immutable) {
    absl::MutexLock lock(&cache_mu_);
    cache_[key] = CachedReference{
        owned, def.uploaded.has_value() ? CachedReference::kForever : generation};
  }
  return owned;
}

absl::StatusOr<double> Baselines::ReferenceWeight(const RegisteredModel& model,
                                                  const v1::BaselineSpec& spec,
                                                  const Profile* uploaded, int64_t now_ms) const {
  if (uploaded != nullptr) return uploaded->counters().weight;
  const Interval range = Range(spec, now_ms);
  if (range.end_ms <= range.start_ms) return 0.0;
  DW_ASSIGN_OR_RETURN(SliceProfiles population, windows_->Read(model, range, {0}));
  auto it = population.find(0);
  return it == population.end() ? 0.0 : it->second.counters().weight;
}

absl::StatusOr<v1::Baseline> Baselines::Create(const RegisteredModel& model, v1::BaselineSpec spec,
                                               int64_t now_ms) const {
  if (spec.name().empty()) spec.set_name(std::string(kDefaultBaseline));
  DW_RETURN_IF_ERROR(CheckSpec(spec));
  // Freeze the default so a later change of options leaves this baseline be.
  if (spec.bins() == 0) spec.set_bins(static_cast<uint32_t>(default_bins_));
  storage::BaselineRecord record;
  record.model_key = model.model_key();
  record.name = spec.name();
  record.created_at_ms = now_ms;
  std::optional<Profile> uploaded;
  if (spec.source_case() == v1::BaselineSpec::kProfile) {
    DW_ASSIGN_OR_RETURN(Profile profile, reports::ProfileFromReference(model, spec.profile()));
    record.profile = profile.Serialize();
    uploaded.emplace(std::move(profile));
    // The rows live on as their summary; the stored spec keeps the kind.
    spec.mutable_profile()->Clear();
  }
  record.spec = spec.SerializeAsString();
  DW_ASSIGN_OR_RETURN(double weight,
                      ReferenceWeight(model, spec, uploaded ? &*uploaded : nullptr, now_ms));
  DW_RETURN_IF_ERROR(store_->PutBaseline(record));

  v1::Baseline out;
  *out.mutable_model() = model.ref();
  *out.mutable_spec() = std::move(spec);
  SetMs(record.created_at_ms, out.mutable_created_at());
  out.set_reference_weight(weight);
  return out;
}

absl::StatusOr<v1::ListBaselinesResponse> Baselines::List(const RegisteredModel& model,
                                                          int64_t now_ms) const {
  DW_ASSIGN_OR_RETURN(std::vector<storage::BaselineRecord> records,
                      store_->ListBaselines(model.model_key()));
  v1::ListBaselinesResponse response;
  for (const storage::BaselineRecord& record : records) {
    DW_ASSIGN_OR_RETURN(BaselineDef def, Decode(model, record, default_bins_));
    DW_ASSIGN_OR_RETURN(double weight, ReferenceWeight(model, def.spec,
                                                       def.uploaded ? &*def.uploaded : nullptr,
                                                       now_ms));
    v1::Baseline* b = response.add_baselines();
    *b->mutable_model() = model.ref();
    *b->mutable_spec() = std::move(def.spec);
    SetMs(def.created_at_ms, b->mutable_created_at());
    b->set_reference_weight(weight);
  }
  return response;
}

}  // namespace driftwatch::service
