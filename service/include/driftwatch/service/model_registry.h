// The one place that answers "what is model M, and what is its slice S":
// registered model versions (schema, profile layout, name indexes), their
// slice directories and their published ingest progress. Owned by the
// server and handed to ingest, reports, the evaluator and metrics (and
// next, the label joiner).
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/detectors/quality_profile.h"
#include "driftwatch/service/reject_reason.h"
#include "driftwatch/storage/model_store.h"
#include "driftwatch/v1/models.pb.h"

namespace driftwatch::service {

struct RegistryOptions {
  uint32_t default_slice_cap = 100;  // distinct values per slice key
  size_t max_categories = 1000;      // per categorical feature and bucket
  int summary_bins = 64;             // numeric edges from a reference sample
  // A numeric feature (or a score of a kind without fixed edges) declared
  // without a reference_sample learns its edges from its first this many
  // finite values, between its summary_edges if it has any (ingest holds
  // the events meanwhile, docs/ingest.md); 0 keeps the summary_edges, or
  // DefaultNumericEdges without them.
  uint32_t learn_edges_values = 2000;
};

// Maps (slice key, value) to a dense slice id. Slice 0 is the whole
// population. Each key holds at most its cap of distinct values; later
// values share the key's "__other__" slice. Thread-safe: ingest resolves
// (and so creates) slices while reports look them up.
class SliceDirectory {
 public:
  SliceDirectory(int64_t model_key, std::vector<uint32_t> caps);

  struct Resolved {
    int32_t slice_id = 0;
    bool created = false;  // a new slice: the caller persists record(slice_id)
    bool capped = false;   // the key was full: `value` shares "__other__"
  };
  // The slice for `value` of key `key_index` ("" means missing), creating it
  // if the cap allows; past the cap, the key's "__other__" slice.
  Resolved Resolve(int key_index, std::string_view value);
  // An existing slice; nullopt when it was never seen.
  std::optional<int32_t> Find(int key_index, std::string_view value) const;
  // A copy of one record; slice_id must exist.
  storage::SliceRecord record(int32_t slice_id) const;
  // A copy of every record, by slice id.
  std::vector<storage::SliceRecord> Records() const;
  // Every slice's key index (-1 for "*"), by slice id.
  std::vector<int32_t> KeyIndexes() const;
  // The (value, slice id) pairs of one key, sorted by value.
  std::vector<std::pair<std::string, int32_t>> SlicesOfKey(int key_index) const;
  // Restores a persisted slice (recovery). Ids must be unique; a record of
  // an unknown key or of slice 0 is ignored.
  void Restore(const storage::SliceRecord& record);

 private:
  // The lookup of Resolve, with mu_ held either way.
  std::optional<int32_t> FindLocked(int key_index, std::string_view value) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  const int64_t model_key_;
  const std::vector<uint32_t> caps_;
  std::vector<absl::flat_hash_map<std::string, int32_t>> by_key_ ABSL_GUARDED_BY(mu_);
  std::vector<storage::SliceRecord> records_ ABSL_GUARDED_BY(mu_);  // index = slice id
};

// One registered model version. Immutable after Create, except for the
// slice directory, the published progress and the ingest counters, which
// are thread-safe.
class RegisteredModel {
 public:
  // INVALID_ARGUMENT naming the field when the schema is unusable (no
  // features and no scores, duplicate names, a numeric feature with
  // unsorted edges, an empty slice key ...).
  //
  // `stored_edges` are the summary edges a stored version was registered
  // with (EncodeEdges of its layout), used as they are (DATA_LOSS when
  // they do not decode or do not fit the schema); empty draws them from
  // the schema: explicit summary_edges, else BinEdges::ForReferenceSample
  // of the reference_sample, else DefaultNumericEdges; scores by kind. A
  // version stored before edges were kept (`legacy_edges`) draws them as
  // that build did (FromQuantiles of the sample), so its profiles still
  // decode.
  static absl::StatusOr<std::shared_ptr<RegisteredModel>> Create(
      int64_t model_key, v1::ModelSchema schema, const RegistryOptions& options,
      std::string_view stored_edges = {}, bool legacy_edges = false);

  // The numeric and score edges of the layout and which of them are still
  // to be learned, encoded for storage::ModelRecord::resolved_edges
  // (docs/formats/sqlite_schema.md).
  std::string EncodeEdges() const;

  // Installs learned edges (one set per learning_numeric() index, then per
  // learning_scores() index) and ends learning. Called by
  // ModelRegistry::FinishLearning once they are stored.
  void InstallLearnedEdges(std::vector<std::shared_ptr<const detectors::BinEdges>> edges) const;

  int64_t model_key() const { return model_key_; }
  const v1::ModelSchema& schema() const { return schema_; }
  const v1::ModelRef& ref() const { return schema_.model(); }  // with its version
  const std::string& label() const { return label_; }          // "id@version"
  // Whether accepted predictions keep join state for their labels: the
  // schema declares a label kind.
  bool joins_labels() const { return schema_.label_kind() != v1::LABEL_KIND_UNSPECIFIED; }
  // The quality summary its label kind keeps; nullopt without a label kind.
  std::optional<detectors::QualityKind> quality_kind() const {
    switch (schema_.label_kind()) {
      case v1::LABEL_KIND_BINARY:
        return detectors::QualityKind::kBinary;
      case v1::LABEL_KIND_MULTICLASS:
        return detectors::QualityKind::kMulticlass;
      case v1::LABEL_KIND_REGRESSION:
        return detectors::QualityKind::kRegression;
      case v1::LABEL_KIND_RELEVANCE:
        return detectors::QualityKind::kRanking;
      default:
        return std::nullopt;
    }
  }
  // label_join_rate and decision_threshold with their defaults applied.
  double label_join_rate() const {
    return schema_.label_join_rate() > 0 ? schema_.label_join_rate() : 1.0;
  }
  double decision_threshold() const {
    return schema_.decision_threshold() > 0 ? schema_.decision_threshold() : 0.5;
  }
  // The layout profiles are kept in. It changes once, when a version that
  // learns edges from its first traffic has learned them (the edge sets of
  // the learning features and scores; names and counts stay), before any
  // profile of the version exists.
  std::shared_ptr<const detectors::ProfileLayout> layout() const {
    absl::MutexLock lock(&layout_mu_);
    return layout_;
  }
  // Whether some feature or score still waits for its learned edges, and
  // which (indexes into the layout's numeric features and scores).
  bool learning() const { return learning_.load(std::memory_order_acquire); }
  std::vector<int> learning_numeric() const;
  std::vector<int> learning_scores() const;

  int numeric_count() const { return numeric_count_; }
  int categorical_count() const { return categorical_count_; }
  int score_count() const { return score_count_; }
  // Every slice key: the ones events send, then the declared crossings
  // (ModelSchema.slice_crosses), named "a+b", whose values the server
  // composes from their parts' (ComposeCross).
  int slice_key_count() const { return static_cast<int>(slice_keys_.size()); }
  const std::vector<std::string>& slice_keys() const { return slice_keys_; }
  // The keys events send: the first input_slice_key_count() of slice_keys().
  int input_slice_key_count() const { return input_slice_keys_; }
  // The input keys crossing `key_index` is made of, in declared order;
  // empty for an input key.
  const std::vector<int>& CrossParts(int key_index) const;
  // A crossing's value from its parts' values: each escaped ('\' and '+'
  // get a '\' before them; an empty one is base::kMissing), joined by '+'.
  static void ComposeCross(std::span<const std::string_view> parts, std::string* out);
  // The parts of a composed value (ComposeCross's inverse).
  static std::vector<std::string> SplitCross(std::string_view value);
  // The selector naming slice `record`: {key: value}, or for a crossing
  // one entry per part; empty for the population.
  v1::SliceSelector SelectorOf(const storage::SliceRecord& record) const;
  // The slice key and value a selector of one key, or of exactly the keys
  // of a declared crossing, names. INVALID_ARGUMENT saying what is wrong.
  absl::StatusOr<std::pair<int, std::string>> SelectorKey(const v1::SliceSelector& selector) const;

  std::optional<int> NumericIndex(std::string_view name) const;
  std::optional<int> CategoricalIndex(std::string_view name) const;
  std::optional<int> SliceKeyIndex(std::string_view name) const;
  bool NumericNullable(int index) const { return numeric_nullable_[index]; }
  // The declared [min, max] of numeric feature `index` (+-Inf when unset),
  // and whether any numeric feature declares one.
  double NumericMin(int index) const { return numeric_min_[index]; }
  double NumericMax(int index) const { return numeric_max_[index]; }
  bool has_ranges() const { return has_ranges_; }
  // Whether x is within the score kind's range: [0, 1] for probabilities,
  // any finite value for regression and ranking.
  bool ScoreInRange(double x) const {
    return probability_scores_ ? (x >= 0.0 && x <= 1.0) : std::isfinite(x);
  }
  // The declared sampling (ModelSchema.declared_sample_rate; 0: none) and
  // whether it is the deterministic hash rule.
  double declared_sample_rate() const { return schema_.declared_sample_rate(); }
  bool hash_sampled() const { return schema_.sampling_mode() == v1::SAMPLING_MODE_HASH; }
  bool CategoricalNullable(int index) const { return categorical_nullable_[index]; }
  // nullptr when any value is allowed.
  const absl::flat_hash_set<std::string>* AllowedValues(int categorical_index) const {
    return allowed_[categorical_index].get();
  }
  // "*" or "key=value" for a slice of this model.
  std::string SliceName(const storage::SliceRecord& record) const;

  SliceDirectory& slices() const { return *slices_; }

  // What ingest has accepted (watermark) and closed, as of its last batch
  // or flush; published by ingest, read by anyone without waiting for it.
  struct Progress {
    int64_t watermark_ms = 0;
    int64_t closed_until_ms = 0;
  };
  Progress progress() const {
    return {watermark_ms_.load(std::memory_order_relaxed),
            closed_until_ms_.load(std::memory_order_relaxed)};
  }
  void PublishProgress(Progress p) const {
    watermark_ms_.store(p.watermark_ms, std::memory_order_relaxed);
    closed_until_ms_.store(p.closed_until_ms, std::memory_order_relaxed);
  }
  // What ingest did with this model's events since start, for /metrics:
  // added once per batch by Ingestor::Apply, read at scrape time. accepted,
  // duplicates and rejected are disjoint and sum to the events received;
  // late_accepted and backfilled are parts of accepted, and
  // rejected_by_reason (indexed by RejectReason) splits rejected.
  struct IngestCounters {
    std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, late_accepted{0}, backfilled{0};
    std::array<std::atomic<uint64_t>, kRejectReasonNames.size()> rejected_by_reason{};
    // The rate-limited reject log line: when the last one went out, and
    // the rejected_by_reason values it reported up to.
    std::atomic<int64_t> reject_logged_ms{std::numeric_limits<int64_t>::min()};
    std::array<std::atomic<uint64_t>, kRejectReasonNames.size()> rejected_logged{};
  };
  IngestCounters& ingest_counters() const { return ingest_counters_; }
  // What the label join did with this model's labels since start
  // (docs/labels.md). At arrival a label is one of joined, pending,
  // duplicates, conflicting, not_sampled, orphan or rejected; a pending
  // label counts once more when it leaves: joined, orphan (its TTL ran
  // out) or rejected (label_before_prediction). `expired` counts kept
  // predictions that left the label window unlabelled.
  struct LabelCounters {
    std::atomic<uint64_t> joined{0}, pending{0}, duplicates{0}, conflicting{0}, not_sampled{0},
        orphan{0}, rejected{0}, expired{0};
    // Kept predictions whose join record did not fit (labels.max_join_records
    // reached within the newest hour): their labels will be `orphan`.
    std::atomic<uint64_t> join_state_full{0};
    std::array<std::atomic<uint64_t>, kLabelRejectReasonNames.size()> rejected_by_reason{};
  };
  LabelCounters& label_counters() const { return label_counters_; }
  // Moves on each time a flush that merged backfill into closed buckets
  // has committed: a reference frozen from closed buckets under an older
  // generation may be stale (Baselines re-freezes it).
  uint64_t backfill_generation() const { return backfill_generation_.load(); }
  void NoteBackfillCommitted() const { backfill_generation_.fetch_add(1); }

 private:
  RegisteredModel() = default;
  // The pieces of Create.
  // Appends the feature to `layout`; true in *learns when its edges are
  // to be learned from traffic.
  absl::Status AddFeature(const v1::FeatureSpec& feature, const RegistryOptions& options,
                          bool legacy_edges, detectors::ProfileLayout* layout, bool* learns);
  absl::StatusOr<std::vector<uint32_t>> AddSliceKeys(const v1::ModelSchema& schema,
                                                     const RegistryOptions& options);

  int64_t model_key_ = 0;
  v1::ModelSchema schema_;
  std::string label_;
  mutable absl::Mutex layout_mu_;
  mutable std::shared_ptr<const detectors::ProfileLayout> layout_ ABSL_GUARDED_BY(layout_mu_);
  mutable std::vector<int> learning_numeric_ ABSL_GUARDED_BY(layout_mu_);
  mutable std::vector<int> learning_scores_ ABSL_GUARDED_BY(layout_mu_);
  mutable std::atomic<bool> learning_{false};
  int numeric_count_ = 0, categorical_count_ = 0, score_count_ = 0;
  std::vector<std::string> slice_keys_;
  int input_slice_keys_ = 0;
  std::vector<std::vector<int>> cross_parts_;  // by key index; empty for input keys
  absl::flat_hash_map<std::string, int> numeric_index_;
  absl::flat_hash_map<std::string, int> categorical_index_;
  absl::flat_hash_map<std::string, int> slice_key_index_;
  std::vector<bool> numeric_nullable_;
  std::vector<double> numeric_min_, numeric_max_;
  bool has_ranges_ = false;
  bool probability_scores_ = false;
  std::vector<bool> categorical_nullable_;
  std::vector<std::unique_ptr<absl::flat_hash_set<std::string>>> allowed_;
  std::unique_ptr<SliceDirectory> slices_;
  mutable std::atomic<int64_t> watermark_ms_{0};
  mutable std::atomic<int64_t> closed_until_ms_{0};
  mutable std::atomic<uint64_t> backfill_generation_{0};
  mutable IngestCounters ingest_counters_;
  mutable LabelCounters label_counters_;
};

// Thread-safe. Models are never removed, so a returned model stays valid
// for as long as its shared_ptr is held.
class ModelRegistry {
 public:
  // `store` and `clock` must outlive the registry.
  ModelRegistry(storage::ModelStore* store, const base::Clock* clock, RegistryOptions options);

  // Loads every stored model, its slices and committed progress. Call once
  // before serving. DATA_LOSS for a stored schema that does not parse.
  absl::Status Recover();

  // Registers a model version: persisted, then served. Idempotent for an
  // identical schema (created = false); ALREADY_EXISTS for a different one;
  // INVALID_ARGUMENT for a bad schema.
  struct Registration {
    v1::ModelSchema schema;  // as stored, with registered_at
    bool created = false;
  };
  absl::StatusOr<Registration> Register(v1::ModelSchema schema);

  // The model a ref names (an empty version: the latest registered).
  // NOT_FOUND naming the model when it is not registered.
  absl::StatusOr<std::shared_ptr<const RegisteredModel>> Find(const v1::ModelRef& ref) const;
  // By store key; nullptr if unknown.
  std::shared_ptr<const RegisteredModel> FindByKey(int64_t model_key) const;
  // In registration order.
  std::vector<std::shared_ptr<const RegisteredModel>> List() const;

  // The slice id of `key=value` of a model; nullopt when the model, the key
  // or the value is unknown.
  std::optional<int32_t> FindSlice(const v1::ModelRef& ref, std::string_view key,
                                   std::string_view value) const;
  // Every slice record of a model (empty for an unknown model).
  std::vector<storage::SliceRecord> Slices(const v1::ModelRef& ref) const;

  const RegistryOptions& options() const { return options_; }

  // Ends the learning of `model`'s edges from `values` (finite values:
  // one vector per learning_numeric() index, then per learning_scores()
  // index): BinEdges::ForReferenceSample of each (DefaultNumericEdges for
  // one with fewer than two distinct values), stored with the version
  // (ModelStore::UpdateResolvedEdges) and then installed. A no-op when the
  // model no longer learns; on a storage error nothing changes. Returns
  // whether this call ended the learning. Thread-safe; one at a time.
  absl::StatusOr<bool> FinishLearning(const RegisteredModel& model,
                                      const std::vector<std::vector<double>>& values) const;

 private:
  // Adds a stored model to the maps.
  absl::StatusOr<std::shared_ptr<RegisteredModel>> Add(const storage::ModelRecord& record);
  std::shared_ptr<const RegisteredModel> Lookup(const v1::ModelRef& ref) const;

  // Constant after construction.
  storage::ModelStore* const store_;
  const base::Clock* const clock_;
  const RegistryOptions options_;

  absl::Mutex register_mu_;  // one Register at a time (check, then persist)
  mutable absl::Mutex learn_mu_;  // one FinishLearning at a time
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const RegisteredModel>> by_version_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const RegisteredModel>> latest_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<const RegisteredModel>> list_ ABSL_GUARDED_BY(mu_);
};

// Default numeric summary edges when a feature declares neither edges nor a
// reference sample: 0 and +-10^(k/8) for 10^-3 .. 10^8 (a 33% wide bin per
// step), so any value has a bin within a fixed relative resolution.
std::vector<double> DefaultNumericEdges();

}  // namespace driftwatch::service
