#include "driftwatch/service/model_runtime.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/base/status_macros.h"

namespace driftwatch::service {
namespace {

using detectors::BinEdges;

absl::StatusOr<std::shared_ptr<const BinEdges>> NumericEdges(const v1::FeatureSpec& feature,
                                                             int summary_bins) {
  if (feature.summary_edges_size() > 0) {
    absl::StatusOr<BinEdges> edges = BinEdges::Create(
        {feature.summary_edges().begin(), feature.summary_edges().end()});
    if (!edges.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("feature \"", feature.name(),
                                                     "\" summary_edges: ",
                                                     edges.status().message()));
    }
    return std::make_shared<const BinEdges>(std::move(*edges));
  }
  std::vector<double> sample;
  for (double x : feature.reference_sample()) {
    if (std::isfinite(x)) sample.push_back(x);
  }
  if (!sample.empty()) {
    DW_ASSIGN_OR_RETURN(BinEdges edges, BinEdges::FromQuantiles(sample, summary_bins));
    return std::make_shared<const BinEdges>(std::move(edges));
  }
  DW_ASSIGN_OR_RETURN(BinEdges edges, BinEdges::Create(DefaultNumericEdges()));
  return std::make_shared<const BinEdges>(std::move(edges));
}

absl::StatusOr<std::shared_ptr<const BinEdges>> ScoreEdges(v1::ScoreKind kind) {
  if (kind == v1::SCORE_KIND_BINARY_PROBABILITY || kind == v1::SCORE_KIND_MULTICLASS_PROBABILITIES) {
    // 100 equal-width bins: calibration (10 bins) and AUC stay exact to 1%.
    DW_ASSIGN_OR_RETURN(BinEdges edges, BinEdges::EqualWidth(0, 1, 100));
    return std::make_shared<const BinEdges>(std::move(edges));
  }
  DW_ASSIGN_OR_RETURN(BinEdges edges, BinEdges::Create(DefaultNumericEdges()));
  return std::make_shared<const BinEdges>(std::move(edges));
}

}  // namespace

std::vector<double> DefaultNumericEdges() {
  std::vector<double> edges;
  for (int k = 64; k >= -24; --k) edges.push_back(-std::pow(10.0, k / 8.0));
  edges.push_back(0.0);
  for (int k = -24; k <= 64; ++k) edges.push_back(std::pow(10.0, k / 8.0));
  return edges;
}

SliceDirectory::SliceDirectory(std::vector<uint32_t> caps)
    : caps_(std::move(caps)), by_key_(caps_.size()) {
  storage::SliceRecord all;
  all.slice_id = 0;
  all.key_index = -1;
  all.value = std::string(kAllSlice);
  records_.push_back(std::move(all));
}

int32_t SliceDirectory::Resolve(int key_index, std::string_view value,
                                std::vector<storage::SliceRecord>* created, int64_t model_key) {
  if (value.empty()) value = base::kMissing;
  auto& values = by_key_[key_index];
  if (auto it = values.find(Sv(value)); it != values.end()) return it->second;
  // At the cap, unseen values share "__other__" (which does not count
  // against the cap, so it can always be created).
  if (values.size() >= caps_[key_index] && value != base::kOther) {
    return Resolve(key_index, base::kOther, created, model_key);
  }
  storage::SliceRecord record;
  record.model_key = model_key;
  record.slice_id = static_cast<int32_t>(records_.size());
  record.key_index = key_index;
  record.value = std::string(value);
  if (created != nullptr) created->push_back(record);
  const int32_t id = record.slice_id;
  std::unique_lock<std::shared_mutex> lock(*mu_);
  values.emplace(record.value, id);
  records_.push_back(std::move(record));
  return id;
}

std::optional<int32_t> SliceDirectory::Find(int key_index, std::string_view value) const {
  if (key_index < 0 || key_index >= static_cast<int>(by_key_.size())) return std::nullopt;
  if (value.empty()) value = base::kMissing;
  std::shared_lock<std::shared_mutex> lock(*mu_);
  const auto& values = by_key_[key_index];
  if (auto it = values.find(Sv(value)); it != values.end()) return it->second;
  return std::nullopt;
}

std::vector<storage::SliceRecord> SliceDirectory::Records() const {
  std::shared_lock<std::shared_mutex> lock(*mu_);
  return records_;
}

void SliceDirectory::Restore(const storage::SliceRecord& record) {
  if (record.slice_id <= 0 || record.key_index < 0 ||
      record.key_index >= static_cast<int>(by_key_.size())) {
    return;
  }
  std::unique_lock<std::shared_mutex> lock(*mu_);
  if (records_.size() <= static_cast<size_t>(record.slice_id)) {
    records_.resize(record.slice_id + 1);
  }
  records_[record.slice_id] = record;
  by_key_[record.key_index].emplace(record.value, record.slice_id);
}

absl::StatusOr<std::unique_ptr<ModelRuntime>> ModelRuntime::Create(int64_t model_key,
                                                                   v1::ModelSchema schema,
                                                                   const RuntimeOptions& options) {
  std::unique_ptr<ModelRuntime> rt(new ModelRuntime());
  rt->model_key_ = model_key;
  if (schema.model().model_id().empty()) {
    return absl::InvalidArgumentError("schema.model.model_id is empty");
  }
  rt->label_ = absl::StrCat(schema.model().model_id(), "@", schema.model().model_version());
  auto layout = std::make_shared<detectors::ProfileLayout>();
  layout->max_categories = options.max_categories;
  for (const v1::FeatureSpec& f : schema.features()) {
    if (f.name().empty()) return absl::InvalidArgumentError("a feature has an empty name");
    if (rt->numeric_index_.contains(f.name()) || rt->categorical_index_.contains(f.name())) {
      return absl::InvalidArgumentError(absl::StrCat("feature \"", f.name(), "\" is declared twice"));
    }
    switch (f.kind()) {
      case v1::FEATURE_KIND_NUMERIC: {
        DW_ASSIGN_OR_RETURN(auto edges, NumericEdges(f, options.summary_bins));
        rt->numeric_index_[f.name()] = static_cast<int>(layout->numeric_names.size());
        layout->numeric_names.push_back(f.name());
        layout->numeric_edges.push_back(std::move(edges));
        rt->numeric_nullable_.push_back(f.nullable());
        break;
      }
      case v1::FEATURE_KIND_CATEGORICAL: {
        rt->categorical_index_[f.name()] = static_cast<int>(layout->categorical_names.size());
        layout->categorical_names.push_back(f.name());
        rt->categorical_nullable_.push_back(f.nullable());
        if (f.allowed_values_size() > 0) {
          rt->allowed_.push_back(std::make_unique<absl::flat_hash_set<std::string>>(
              f.allowed_values().begin(), f.allowed_values().end()));
        } else {
          rt->allowed_.push_back(nullptr);
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("feature \"", f.name(), "\" has no kind (numeric or categorical)"));
    }
  }
  int score_count = schema.score_names_size();
  if (score_count == 0 && schema.score_kind() != v1::SCORE_KIND_UNSPECIFIED) score_count = 1;
  for (int i = 0; i < score_count; ++i) {
    DW_ASSIGN_OR_RETURN(auto edges, ScoreEdges(schema.score_kind()));
    layout->score_names.push_back(i < schema.score_names_size() ? schema.score_names(i)
                                                                : std::string("score"));
    layout->score_edges.push_back(std::move(edges));
  }
  if (layout->numeric_names.empty() && layout->categorical_names.empty() &&
      layout->score_names.empty()) {
    return absl::InvalidArgumentError("schema declares no features and no scores");
  }
  std::vector<uint32_t> caps;
  for (const v1::SliceKeySpec& key : schema.slice_keys()) {
    if (key.key().empty()) return absl::InvalidArgumentError("a slice key has an empty name");
    if (rt->slice_key_index_.contains(key.key())) {
      return absl::InvalidArgumentError(absl::StrCat("slice key \"", key.key(), "\" is declared twice"));
    }
    rt->slice_key_index_[key.key()] = static_cast<int>(rt->slice_keys_.size());
    rt->slice_keys_.push_back(key.key());
    caps.push_back(key.max_values() > 0 ? key.max_values() : options.default_slice_cap);
  }
  rt->slices_ = SliceDirectory(std::move(caps));
  rt->layout_ = std::move(layout);
  rt->schema_ = std::move(schema);
  return rt;
}

std::optional<int> ModelRuntime::NumericIndex(std::string_view name) const {
  if (auto it = numeric_index_.find(Sv(name)); it != numeric_index_.end()) return it->second;
  return std::nullopt;
}
std::optional<int> ModelRuntime::CategoricalIndex(std::string_view name) const {
  if (auto it = categorical_index_.find(Sv(name)); it != categorical_index_.end()) return it->second;
  return std::nullopt;
}
std::optional<int> ModelRuntime::SliceKeyIndex(std::string_view name) const {
  if (auto it = slice_key_index_.find(Sv(name)); it != slice_key_index_.end()) return it->second;
  return std::nullopt;
}
bool ModelRuntime::Nullable(bool numeric, int index) const {
  return numeric ? numeric_nullable_[index] : categorical_nullable_[index];
}
const absl::flat_hash_set<std::string>* ModelRuntime::AllowedValues(int categorical_index) const {
  return allowed_[categorical_index].get();
}

}  // namespace driftwatch::service
