// Baselines: the reference a window is compared with. A baseline is an
// uploaded profile, a pinned event-time range or a trailing window; this
// resolves one into reference profiles per slice, freezes their PSI/KL/JS
// bins, and caches frozen references that can no longer change (uploaded
// profiles, pinned ranges that are closed), so a report does not re-read
// and re-merge its baseline every time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/detectors/drift.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/window_reader.h"
#include "driftwatch/storage/baseline_store.h"
#include "driftwatch/v1/models.pb.h"

namespace driftwatch::service {

inline constexpr std::string_view kDefaultBaseline = "default";

// A stored baseline, decoded.
struct BaselineDef {
  std::string name;
  v1::BaselineSpec spec;
  std::optional<detectors::Profile> uploaded;  // source == profile
  int64_t created_at_ms = 0;
  int bins = detectors::kDefaultBins;
};

// A reference profile with its frozen numeric bins, built once and
// compared with any number of current profiles. Points into `profile`.
struct Reference {
  const detectors::Profile* profile = nullptr;
  std::vector<std::optional<detectors::NumericBaseline>> numeric;
  std::vector<std::optional<detectors::NumericBaseline>> scores;
};

// A Reference that owns its profile; it must not move once built, so it
// lives behind a shared_ptr.
struct OwnedReference {
  detectors::Profile profile;
  Reference frozen;
};

// Freezes the bins of every numeric feature and score of `profile`.
absl::StatusOr<Reference> BuildReference(const detectors::Profile& profile, int bins);

// The slice's own reference, else the population's; nullptr when neither
// holds data.
const detectors::Profile* ReferenceFor(const SliceProfiles& refs, int32_t slice_id);

// Frozen references of one request, one per distinct reference profile
// (several slices share the population's). Not thread-safe.
class FrozenReferences {
 public:
  explicit FrozenReferences(int bins) : bins_(bins) {}
  absl::StatusOr<const Reference*> For(const detectors::Profile& profile);

 private:
  const int bins_;
  std::map<const detectors::Profile*, Reference> frozen_;
};

// Thread-safe.
class Baselines {
 public:
  // Both pointers must outlive this object. `default_bins` applies to a
  // baseline created without bins.
  Baselines(storage::BaselineStore* store, const WindowReader* windows, int default_bins);
  ~Baselines();

  // The baseline `name` ("" means "default") of a model. NOT_FOUND when
  // there is none; DATA_LOSS for a stored one that does not decode.
  absl::StatusOr<BaselineDef> Load(const RegisteredModel& model, std::string_view name) const;

  // Reference profiles for `slices` (every slice when empty) and slice 0
  // at `now_ms`. An uploaded profile serves every slice (as slice 0); a
  // pinned range or trailing window is each slice's own traffic there.
  absl::StatusOr<SliceProfiles> Profiles(const RegisteredModel& model, const BaselineDef& def,
                                         int64_t now_ms, std::vector<int32_t> slices) const;

  // The frozen reference of one slice (its own, else the population's),
  // from the cache when the baseline can no longer change.
  // FAILED_PRECONDITION when the baseline holds no data for it.
  absl::StatusOr<std::shared_ptr<const OwnedReference>> Frozen(const RegisteredModel& model,
                                                               const BaselineDef& def,
                                                               int32_t slice_id,
                                                               int64_t now_ms) const;

  // Stores a baseline created at `now_ms` (replacing one of the same name).
  // An uploaded profile is summarised with the model's layout (its rows
  // are not kept: the returned spec holds an empty profile); a pinned
  // range or trailing window is stored as its spec. Unnamed: "default";
  // bins 0: the default, frozen at creation. INVALID_ARGUMENT naming the
  // field: no source, a bad range or trailing length, too many bins, an
  // unknown or ragged profile column.
  absl::StatusOr<v1::Baseline> Create(const RegisteredModel& model, v1::BaselineSpec spec,
                                      int64_t now_ms) const;
  // Every baseline of a model, by name, with the weight each covers now.
  absl::StatusOr<v1::ListBaselinesResponse> List(const RegisteredModel& model,
                                                 int64_t now_ms) const;

  // The event-time range a pinned or trailing baseline covers at `now_ms`
  // (quality reports read their labelled traffic there).
  Interval Range(const v1::BaselineSpec& spec, int64_t now_ms) const;

  // FAILED_PRECONDITION: the baseline holds no data.
  static absl::Status NoData(const RegisteredModel& model, const BaselineDef& def);

 private:
  // Population weight a baseline covers at `now_ms` (`uploaded`: its profile).
  absl::StatusOr<double> ReferenceWeight(const RegisteredModel& model, const v1::BaselineSpec& spec,
                                         const detectors::Profile* uploaded, int64_t now_ms) const;
  // Constant after construction.
  storage::BaselineStore* const store_;
  const WindowReader* const windows_;
  const int default_bins_;

  // (model key, baseline name, baseline created_at, slice id).
  using CacheKey = std::tuple<int64_t, std::string, int64_t, int32_t>;
  mutable absl::Mutex cache_mu_;
  // A pinned range frozen from closed buckets, valid while the model's
  // backfill generation is `generation`; an uploaded profile for good
  // (kForever).
  struct CachedReference {
    static constexpr uint64_t kForever = ~uint64_t{0};
    std::shared_ptr<const OwnedReference> reference;
    uint64_t generation = 0;
  };
  mutable std::map<CacheKey, CachedReference> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace driftwatch::service
