#include "driftwatch/service/model_registry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "driftwatch/detectors/histogram.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/base/names.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/strings.h"

namespace driftwatch::service {
namespace {

using base::Sv;

using detectors::BinEdges;

// The sorted union of two edge sets (given edges stay, finer ones go
// between them).
absl::StatusOr<std::shared_ptr<const BinEdges>> UnionEdges(std::vector<double> a,
                                                           const std::vector<double>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  DW_ASSIGN_OR_RETURN(BinEdges merged, BinEdges::Create(std::move(a)));
  return std::make_shared<const BinEdges>(std::move(merged));
}

absl::StatusOr<std::shared_ptr<const BinEdges>> NumericEdges(const v1::FeatureSpec& feature,
                                                             int summary_bins, bool legacy) {
  std::vector<double> sample;
  for (double x : feature.reference_sample()) {
    if (std::isfinite(x)) sample.push_back(x);
  }
  if (feature.summary_edges_size() > 0) {
    absl::StatusOr<BinEdges> edges = BinEdges::Create(
        {feature.summary_edges().begin(), feature.summary_edges().end()});
    if (!edges.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("feature \"", feature.name(),
                                                     "\" summary_edges: ",
                                                     edges.status().message()));
    }
    if (!legacy && !sample.empty()) {
      // The user's edges stay (exact PSI where the deciles fall on them);
      // the sample's fill in between.
      DW_ASSIGN_OR_RETURN(BinEdges refined, BinEdges::ForReferenceSample(sample, summary_bins));
      return UnionEdges(edges->edges(), refined.edges());
    }
    return std::make_shared<const BinEdges>(std::move(*edges));
  }
  if (!sample.empty()) {
    DW_ASSIGN_OR_RETURN(BinEdges edges, legacy ? BinEdges::FromQuantiles(sample, summary_bins)
                                               : BinEdges::ForReferenceSample(sample, summary_bins));
    return std::make_shared<const BinEdges>(std::move(edges));
  }
  DW_ASSIGN_OR_RETURN(BinEdges edges, BinEdges::Create(DefaultNumericEdges()));
  return std::make_shared<const BinEdges>(std::move(edges));
}

// Whether a score kind has fixed edges (probabilities: [0, 1]).
bool FixedScoreEdges(v1::ScoreKind kind) {
  return kind == v1::SCORE_KIND_BINARY_PROBABILITY ||
         kind == v1::SCORE_KIND_MULTICLASS_PROBABILITIES;
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

constexpr std::string_view kEdgesMagic = "DWE1";

void PutEdges(const BinEdges& edges, bool learning, base::ByteWriter* w) {
  w->Put(static_cast<uint8_t>(learning));
  w->U32(static_cast<uint32_t>(edges.edges().size()));
  for (double e : edges.edges()) w->F64(e);
}

// The next edge set of a resolved_edges blob.
absl::StatusOr<std::shared_ptr<const BinEdges>> GetEdges(base::ByteReader* r, bool* learning) {
  uint32_t n = 0;
  uint8_t flag = 0;
  if (!r->Get(&flag) || flag > 1 || !r->Get(&n) || n > r->remaining() / 8) {
    return absl::DataLossError("stored summary edges are truncated");
  }
  *learning = flag == 1;
  std::vector<double> edges(n);
  for (double& e : edges) r->Get(&e);
  absl::StatusOr<BinEdges> made = BinEdges::Create(std::move(edges));
  if (!made.ok()) return absl::DataLossError(absl::StrCat("stored summary edges: ", made.status().message()));
  return std::make_shared<const BinEdges>(std::move(*made));
}

// The resolved_edges blob of a layout whose sets at `learning_numeric` /
// `learning_scores` are still to be learned.
std::string EncodeLayoutEdges(const detectors::ProfileLayout& layout,
                              const std::vector<int>& learning_numeric,
                              const std::vector<int>& learning_scores) {
  base::ByteWriter w;
  w.Raw(kEdgesMagic);
  auto put = [&](const auto& sets, const std::vector<int>& learning) {
    w.U32(static_cast<uint32_t>(sets.size()));
    for (size_t i = 0; i < sets.size(); ++i) {
      PutEdges(*sets[i], absl::c_linear_search(learning, static_cast<int>(i)), &w);
    }
  };
  put(layout.numeric_edges, learning_numeric);
  put(layout.score_edges, learning_scores);
  return std::move(w).Finish();
}

// `layout` with `edges` (one per learning_numeric index, then per
// learning_scores index) in place of the learning sets.
std::shared_ptr<const detectors::ProfileLayout> WithLearnedEdges(
    const detectors::ProfileLayout& layout, const std::vector<int>& learning_numeric,
    const std::vector<int>& learning_scores,
    std::vector<std::shared_ptr<const BinEdges>> edges) {
  auto out = std::make_shared<detectors::ProfileLayout>(layout);
  size_t next = 0;
  for (int f : learning_numeric) out->numeric_edges[f] = std::move(edges[next++]);
  for (int s : learning_scores) out->score_edges[s] = std::move(edges[next++]);
  return out;
}

}  // namespace

std::string RegisteredModel::EncodeEdges() const {
  absl::MutexLock lock(&layout_mu_);
  return EncodeLayoutEdges(*layout_, learning_numeric_, learning_scores_);
}

std::vector<int> RegisteredModel::learning_numeric() const {
  absl::MutexLock lock(&layout_mu_);
  return learning_numeric_;
}

std::vector<int> RegisteredModel::learning_scores() const {
  absl::MutexLock lock(&layout_mu_);
  return learning_scores_;
}

void RegisteredModel::InstallLearnedEdges(
    std::vector<std::shared_ptr<const detectors::BinEdges>> edges) const {
  absl::MutexLock lock(&layout_mu_);
  layout_ = WithLearnedEdges(*layout_, learning_numeric_, learning_scores_, std::move(edges));
  learning_numeric_.clear();
  learning_scores_.clear();
  learning_.store(false, std::memory_order_release);
}

std::vector<double> DefaultNumericEdges() {
  std::vector<double> edges;
  for (int k = 64; k >= -24; --k) edges.push_back(-std::pow(10.0, k / 8.0));
  edges.push_back(0.0);
  for (int k = -24; k <= 64; ++k) edges.push_back(std::pow(10.0, k / 8.0));
  return edges;
}

SliceDirectory::SliceDirectory(int64_t model_key, std::vector<uint32_t> caps)
    : model_key_(model_key), caps_(std::move(caps)), by_key_(caps_.size()) {
  storage::SliceRecord all;
  all.model_key = model_key_;
  all.slice_id = 0;
  all.key_index = -1;
  all.value = std::string(base::kAllSlice);
  records_.push_back(std::move(all));
}

std::optional<int32_t> SliceDirectory::FindLocked(int key_index, std::string_view value) const {
  if (key_index < 0 || key_index >= static_cast<int>(by_key_.size())) return std::nullopt;
  if (value.empty()) value = base::kMissing;
  const auto& values = by_key_[key_index];
  if (auto it = values.find(Sv(value)); it != values.end()) return it->second;
  return std::nullopt;
}

SliceDirectory::Resolved SliceDirectory::Resolve(int key_index, std::string_view value) {
  if (value.empty()) value = base::kMissing;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (std::optional<int32_t> id = FindLocked(key_index, value)) return {*id, false, false};
  }
  absl::MutexLock lock(&mu_);
  if (std::optional<int32_t> id = FindLocked(key_index, value)) return {*id, false, false};
  // At the cap, unseen values share "__other__" (which does not count
  // against the cap, so it can always be created).
  auto& values = by_key_[key_index];
  bool capped = false;
  if (values.size() >= caps_[key_index] && value != base::kOther) {
    value = base::kOther;
    capped = true;
    if (std::optional<int32_t> id = FindLocked(key_index, value)) return {*id, false, true};
  }
  storage::SliceRecord record;
  record.model_key = model_key_;
  record.slice_id = static_cast<int32_t>(records_.size());
  record.key_index = key_index;
  record.value = std::string(value);
  values.emplace(record.value, record.slice_id);
  const int32_t id = record.slice_id;
  records_.push_back(std::move(record));
  return {id, true, capped};
}

std::optional<int32_t> SliceDirectory::Find(int key_index, std::string_view value) const {
  absl::ReaderMutexLock lock(&mu_);
  return FindLocked(key_index, value);
}

storage::SliceRecord SliceDirectory::record(int32_t slice_id) const {
  absl::ReaderMutexLock lock(&mu_);
  return records_[slice_id];
}

std::vector<storage::SliceRecord> SliceDirectory::Records() const {
  absl::ReaderMutexLock lock(&mu_);
  return records_;
}

std::vector<int32_t> SliceDirectory::KeyIndexes() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<int32_t> out;
  out.reserve(records_.size());
  for (const storage::SliceRecord& r : records_) out.push_back(r.key_index);
  return out;
}

std::vector<std::pair<std::string, int32_t>> SliceDirectory::SlicesOfKey(int key_index) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::string, int32_t>> out;
  if (key_index < 0 || key_index >= static_cast<int>(by_key_.size())) return out;
  for (const auto& [value, id] : by_key_[key_index]) out.emplace_back(value, id);
  std::sort(out.begin(), out.end());
  return out;
}

void SliceDirectory::Restore(const storage::SliceRecord& record) {
  absl::MutexLock lock(&mu_);
  if (record.slice_id <= 0 || record.key_index < 0 ||
      record.key_index >= static_cast<int>(by_key_.size())) {
    return;
  }
  if (records_.size() <= static_cast<size_t>(record.slice_id)) {
    records_.resize(record.slice_id + 1);
  }
  records_[record.slice_id] = record;
  records_[record.slice_id].model_key = model_key_;
  by_key_[record.key_index].emplace(record.value, record.slice_id);
}

absl::Status RegisteredModel::AddFeature(const v1::FeatureSpec& f, const RegistryOptions& options,
                                         bool legacy_edges, detectors::ProfileLayout* layout,
                                         bool* learns) {
  *learns = false;
  if (f.name().empty()) return absl::InvalidArgumentError("a feature has an empty name");
  if (numeric_index_.contains(f.name()) || categorical_index_.contains(f.name())) {
    return absl::InvalidArgumentError(absl::StrCat("feature \"", f.name(), "\" is declared twice"));
  }
  switch (f.kind()) {
    case v1::FEATURE_KIND_NUMERIC: {
      DW_ASSIGN_OR_RETURN(auto edges, NumericEdges(f, options.summary_bins, legacy_edges));
      // Without a reference sample the edges are learned from traffic
      // (between the given summary_edges, if any: those stay).
      *learns = !legacy_edges && options.learn_edges_values > 0 && f.reference_sample_size() == 0;
      numeric_index_[f.name()] = static_cast<int>(layout->numeric_names.size());
      layout->numeric_names.push_back(f.name());
      layout->numeric_edges.push_back(std::move(edges));
      numeric_nullable_.push_back(f.nullable());
      if (f.has_min() && f.has_max() && !(f.min() <= f.max())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "feature \"", f.name(), "\" has min ", f.min(), " above max ", f.max()));
      }
      if ((f.has_min() && std::isnan(f.min())) || (f.has_max() && std::isnan(f.max()))) {
        return absl::InvalidArgumentError(
            absl::StrCat("feature \"", f.name(), "\" has a NaN min or max"));
      }
      numeric_min_.push_back(f.has_min() ? f.min() : -std::numeric_limits<double>::infinity());
      numeric_max_.push_back(f.has_max() ? f.max() : std::numeric_limits<double>::infinity());
      has_ranges_ = has_ranges_ || f.has_min() || f.has_max();
      return absl::OkStatus();
    }
    case v1::FEATURE_KIND_CATEGORICAL: {
      if (f.has_min() || f.has_max()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "feature \"", f.name(), "\" is categorical: min and max are for numeric features"));
      }
      categorical_index_[f.name()] = static_cast<int>(layout->categorical_names.size());
      layout->categorical_names.push_back(f.name());
      categorical_nullable_.push_back(f.nullable());
      if (f.allowed_values_size() > 0) {
        allowed_.push_back(std::make_unique<absl::flat_hash_set<std::string>>(
            f.allowed_values().begin(), f.allowed_values().end()));
      } else {
        allowed_.push_back(nullptr);
      }
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("feature \"", f.name(), "\" has no kind (numeric or categorical)"));
  }
}

absl::StatusOr<std::vector<uint32_t>> RegisteredModel::AddSliceKeys(
    const v1::ModelSchema& schema, const RegistryOptions& options) {
  std::vector<uint32_t> caps;
  for (const v1::SliceKeySpec& key : schema.slice_keys()) {
    if (key.key().empty()) return absl::InvalidArgumentError("a slice key has an empty name");
    if (slice_key_index_.contains(key.key())) {
      return absl::InvalidArgumentError(
          absl::StrCat("slice key \"", key.key(), "\" is declared twice"));
    }
    slice_key_index_[key.key()] = static_cast<int>(slice_keys_.size());
    slice_keys_.push_back(key.key());
    caps.push_back(key.max_values() > 0 ? key.max_values() : options.default_slice_cap);
  }
  input_slice_keys_ = static_cast<int>(slice_keys_.size());
  cross_parts_.assign(slice_keys_.size(), {});
  constexpr int kMaxCrosses = 8;
  if (schema.slice_crosses_size() > kMaxCrosses) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxCrosses,
                                                   " slice_crosses, got ",
                                                   schema.slice_crosses_size()));
  }
  for (int c = 0; c < schema.slice_crosses_size(); ++c) {
    const v1::SliceCross& cross = schema.slice_crosses(c);
    const std::string field = absl::StrCat("slice_crosses[", c, "]");
    if (cross.keys_size() < 2 || cross.keys_size() > 4) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must cross 2 to 4 slice keys, got ", cross.keys_size()));
    }
    std::vector<int> parts;
    for (const std::string& k : cross.keys()) {
      auto it = slice_key_index_.find(k);
      if (it == slice_key_index_.end() || it->second >= input_slice_keys_) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": \"", k, "\" is not a declared slice key"));
      }
      if (std::find(parts.begin(), parts.end(), it->second) != parts.end()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": \"", k, "\" is crossed twice"));
      }
      parts.push_back(it->second);
    }
    std::vector<int> sorted = parts;
    std::sort(sorted.begin(), sorted.end());
    for (int other = input_slice_keys_; other < static_cast<int>(slice_keys_.size()); ++other) {
      std::vector<int> o = cross_parts_[other];
      std::sort(o.begin(), o.end());
      if (o == sorted) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, " crosses the same keys as ", slice_keys_[other]));
      }
    }
    const std::string name = absl::StrJoin(cross.keys(), "+");
    if (slice_key_index_.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": its name \"", name, "\" is already a slice key"));
    }
    slice_key_index_[name] = static_cast<int>(slice_keys_.size());
    slice_keys_.push_back(name);
    cross_parts_.push_back(std::move(parts));
    caps.push_back(cross.max_values() > 0 ? cross.max_values() : options.default_slice_cap);
  }
  return caps;
}

const std::vector<int>& RegisteredModel::CrossParts(int key_index) const {
  static const std::vector<int> kNone;
  if (key_index < 0 || static_cast<size_t>(key_index) >= cross_parts_.size()) return kNone;
  return cross_parts_[key_index];
}

void RegisteredModel::ComposeCross(std::span<const std::string_view> parts, std::string* out) {
  out->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out->push_back('+');
    const std::string_view v = parts[i].empty() ? base::kMissing : parts[i];
    for (char ch : v) {
      if (ch == '\\' || ch == '+') out->push_back('\\');
      out->push_back(ch);
    }
  }
}

std::vector<std::string> RegisteredModel::SplitCross(std::string_view value) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      out.back().push_back(value[++i]);
    } else if (value[i] == '+') {
      out.emplace_back();
    } else {
      out.back().push_back(value[i]);
    }
  }
  return out;
}

v1::SliceSelector RegisteredModel::SelectorOf(const storage::SliceRecord& record) const {
  v1::SliceSelector out;
  if (record.key_index < 0 || record.key_index >= slice_key_count()) return out;
  const std::vector<int>& parts = CrossParts(record.key_index);
  if (parts.empty()) {
    (*out.mutable_values())[slice_keys_[record.key_index]] = record.value;
    return out;
  }
  const std::vector<std::string> values = SplitCross(record.value);
  for (size_t i = 0; i < parts.size(); ++i) {
    // __other__ (the crossing's cap) is one value for every part.
    (*out.mutable_values())[slice_keys_[parts[i]]] =
        values.size() == parts.size() ? values[i] : record.value;
  }
  return out;
}

absl::StatusOr<std::pair<int, std::string>> RegisteredModel::SelectorKey(
    const v1::SliceSelector& selector) const {
  if (selector.values_size() == 1) {
    const auto& [key, value] = *selector.values().begin();
    std::optional<int> index = SliceKeyIndex(key);
    if (!index) {
      return absl::InvalidArgumentError(
          absl::StrCat("slice key \"", key, "\" is not a slice key of model ", label()));
    }
    return std::make_pair(*index, value);
  }
  // Several keys: the crossing declared for exactly them.
  for (int k = input_slice_keys_; k < slice_key_count(); ++k) {
    const std::vector<int>& parts = cross_parts_[k];
    if (parts.size() != static_cast<size_t>(selector.values_size())) continue;
    std::vector<std::string_view> values;
    for (int part : parts) {
      auto it = selector.values().find(slice_keys_[part]);
      if (it == selector.values().end()) break;
      values.push_back(it->second);
    }
    if (values.size() != parts.size()) continue;
    std::string composed;
    ComposeCross(values, &composed);
    return std::make_pair(k, composed);
  }
  std::vector<std::string> keys;
  for (const auto& [key, value] : selector.values()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return absl::InvalidArgumentError(absl::StrCat(
      "slice selects ", absl::StrJoin(keys, ", "), ": model ", label(),
      " declares no crossing of exactly these keys (ModelSchema.slice_crosses)"));
}

absl::StatusOr<std::shared_ptr<RegisteredModel>> RegisteredModel::Create(
    int64_t model_key, v1::ModelSchema schema, const RegistryOptions& options,
    std::string_view stored_edges, bool legacy_edges) {
  if (schema.model().model_id().empty()) {
    return absl::InvalidArgumentError("schema.model.model_id is empty");
  }
  if (const double r = schema.label_join_rate(); !(r >= 0 && r <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema.label_join_rate must be in (0, 1] (0: every prediction), got ", r));
  }
  if (const double t = schema.decision_threshold(); !(t >= 0 && t < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema.decision_threshold must be in (0, 1) (0: 0.5), got ", t));
  }
  if (const double r = schema.declared_sample_rate(); !(r >= 0 && r <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema.declared_sample_rate must be in (0, 1] (0: not declared), got ", r));
  }
  if (schema.sampling_mode() == v1::SAMPLING_MODE_HASH && schema.declared_sample_rate() == 0) {
    return absl::InvalidArgumentError(
        "schema.sampling_mode SAMPLING_MODE_HASH needs schema.declared_sample_rate");
  }
  std::shared_ptr<RegisteredModel> model(new RegisteredModel());
  model->model_key_ = model_key;
  model->probability_scores_ =
      schema.score_kind() == v1::SCORE_KIND_BINARY_PROBABILITY ||
      schema.score_kind() == v1::SCORE_KIND_MULTICLASS_PROBABILITIES;
  model->label_ = absl::StrCat(schema.model().model_id(), "@", schema.model().model_version());
  auto layout = std::make_shared<detectors::ProfileLayout>();
  layout->max_categories = options.max_categories;
  std::vector<int> learning_numeric, learning_scores;
  for (const v1::FeatureSpec& f : schema.features()) {
    bool learns = false;
    DW_RETURN_IF_ERROR(model->AddFeature(f, options, legacy_edges, layout.get(), &learns));
    if (learns) learning_numeric.push_back(static_cast<int>(layout->numeric_names.size()) - 1);
  }
  int score_count = schema.score_names_size();
  if (score_count == 0 && schema.score_kind() != v1::SCORE_KIND_UNSPECIFIED) score_count = 1;
  for (int i = 0; i < score_count; ++i) {
    DW_ASSIGN_OR_RETURN(auto edges, ScoreEdges(schema.score_kind()));
    if (!legacy_edges && options.learn_edges_values > 0 && !FixedScoreEdges(schema.score_kind())) {
      learning_scores.push_back(i);
    }
    layout->score_names.push_back(i < schema.score_names_size() ? schema.score_names(i)
                                                                : std::string("score"));
    layout->score_edges.push_back(std::move(edges));
  }
  if (layout->numeric_names.empty() && layout->categorical_names.empty() &&
      layout->score_names.empty()) {
    return absl::InvalidArgumentError("schema declares no features and no scores");
  }
  if (!stored_edges.empty()) {
    learning_numeric.clear();
    learning_scores.clear();
    // What the version was registered with wins over what this build draws.
    if (!stored_edges.starts_with(kEdgesMagic)) {
      return absl::DataLossError(absl::StrCat("stored summary edges of model ", model->label_,
                                              " have no DWE1 header"));
    }
    base::ByteReader r(stored_edges.substr(kEdgesMagic.size()));
    // One count, then that many sets, for the numeric features, then the scores.
    auto read = [&](std::vector<std::shared_ptr<const BinEdges>>& sets, std::vector<int>& learning,
                    const char* what) -> absl::Status {
      uint32_t count = 0;
      if (!r.Get(&count) || count != sets.size()) {
        return absl::DataLossError(absl::StrCat("stored summary edges of model ", model->label_,
                                                " do not fit its ", what));
      }
      for (size_t i = 0; i < sets.size(); ++i) {
        bool learns = false;
        DW_ASSIGN_OR_RETURN(sets[i], GetEdges(&r, &learns));
        if (learns) learning.push_back(static_cast<int>(i));
      }
      return absl::OkStatus();
    };
    DW_RETURN_IF_ERROR(read(layout->numeric_edges, learning_numeric, "schema"));
    DW_RETURN_IF_ERROR(read(layout->score_edges, learning_scores, "scores"));
  }
  DW_ASSIGN_OR_RETURN(std::vector<uint32_t> caps, model->AddSliceKeys(schema, options));
  model->slices_ = std::make_unique<SliceDirectory>(model_key, std::move(caps));
  model->numeric_count_ = static_cast<int>(layout->numeric_names.size());
  model->categorical_count_ = static_cast<int>(layout->categorical_names.size());
  model->score_count_ = static_cast<int>(layout->score_names.size());
  {
    absl::MutexLock lock(&model->layout_mu_);
    model->layout_ = std::move(layout);
    model->learning_.store(!learning_numeric.empty() || !learning_scores.empty());
    model->learning_numeric_ = std::move(learning_numeric);
    model->learning_scores_ = std::move(learning_scores);
  }
  model->schema_ = std::move(schema);
  return model;
}

std::optional<int> RegisteredModel::NumericIndex(std::string_view name) const {
  if (auto it = numeric_index_.find(Sv(name)); it != numeric_index_.end()) return it->second;
  return std::nullopt;
}
std::optional<int> RegisteredModel::CategoricalIndex(std::string_view name) const {
  if (auto it = categorical_index_.find(Sv(name)); it != categorical_index_.end()) return it->second;
  return std::nullopt;
}
std::optional<int> RegisteredModel::SliceKeyIndex(std::string_view name) const {
  if (auto it = slice_key_index_.find(Sv(name)); it != slice_key_index_.end()) return it->second;
  return std::nullopt;
}
std::string RegisteredModel::SliceName(const storage::SliceRecord& record) const {
  if (record.key_index < 0 || record.key_index >= slice_key_count()) {
    return std::string(base::kAllSlice);
  }
  const std::vector<int>& parts = CrossParts(record.key_index);
  if (parts.empty()) return absl::StrCat(slice_keys_[record.key_index], "=", record.value);
  // A crossing: "platform=android,app_version=8.0".
  const std::vector<std::string> values = SplitCross(record.value);
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", slice_keys_[parts[i]], "=",
                    values.size() == parts.size() ? values[i] : record.value);
  }
  return out;
}

// ---------------------------------------------------------------------------

ModelRegistry::ModelRegistry(storage::ModelStore* store, const base::Clock* clock,
                             RegistryOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

absl::StatusOr<std::shared_ptr<RegisteredModel>> ModelRegistry::Add(
    const storage::ModelRecord& record) {
  v1::ModelSchema schema;
  if (!schema.ParseFromString(record.schema)) {
    return absl::DataLossError(absl::StrCat("stored schema of model ", record.model_id, "@",
                                            record.model_version, " does not parse"));
  }
  DW_ASSIGN_OR_RETURN(std::shared_ptr<RegisteredModel> model,
                      RegisteredModel::Create(record.model_key, std::move(schema), options_,
                                              record.resolved_edges,
                                              /*legacy_edges=*/record.resolved_edges.empty()));
  model->PublishProgress({record.watermark_ms, record.closed_until_ms});
  absl::MutexLock lock(&mu_);
  by_version_[{record.model_id, record.model_version}] = model;
  latest_[record.model_id] = model;
  list_.push_back(model);
  return model;
}

absl::Status ModelRegistry::Recover() {
  DW_ASSIGN_OR_RETURN(std::vector<storage::ModelRecord> records, store_->ListModels());
  for (const storage::ModelRecord& record : records) {
    DW_ASSIGN_OR_RETURN(std::shared_ptr<RegisteredModel> model, Add(record));
    DW_ASSIGN_OR_RETURN(std::vector<storage::SliceRecord> slices,
                        store_->ListSlices(record.model_key));
    for (const storage::SliceRecord& s : slices) model->slices().Restore(s);
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelRegistry::Registration> ModelRegistry::Register(v1::ModelSchema schema) {
  if (schema.model().model_version().empty()) {
    return absl::InvalidArgumentError("schema.model.model_version is empty");
  }
  // A label kind must fit the scores it judges (docs/labels.md).
  if (schema.label_kind() != v1::LABEL_KIND_UNSPECIFIED) {
    v1::ScoreKind needs = v1::SCORE_KIND_UNSPECIFIED;
    switch (schema.label_kind()) {
      case v1::LABEL_KIND_BINARY: needs = v1::SCORE_KIND_BINARY_PROBABILITY; break;
      case v1::LABEL_KIND_MULTICLASS: needs = v1::SCORE_KIND_MULTICLASS_PROBABILITIES; break;
      case v1::LABEL_KIND_REGRESSION: needs = v1::SCORE_KIND_REGRESSION; break;
      case v1::LABEL_KIND_RELEVANCE: needs = v1::SCORE_KIND_RANKING; break;
      default: break;
    }
    if (needs != v1::SCORE_KIND_UNSPECIFIED && schema.score_kind() != needs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "schema.label_kind ", v1::LabelKind_Name(schema.label_kind()), " needs score_kind ",
          v1::ScoreKind_Name(needs), ", got ", v1::ScoreKind_Name(schema.score_kind())));
    }
  }
  // Validate before storing: a schema the registry cannot serve is refused.
  DW_ASSIGN_OR_RETURN(std::shared_ptr<RegisteredModel> candidate,
                      RegisteredModel::Create(0, schema, options_));
  if (schema.registered_at().seconds() == 0) {
    schema.mutable_registered_at()->set_seconds(clock_->NowMs() / 1000);
  }
  absl::MutexLock serial(&register_mu_);
  if (std::shared_ptr<const RegisteredModel> existing = Lookup(schema.model())) {
    v1::ModelSchema stored = existing->schema();
    v1::ModelSchema candidate = schema;
    candidate.clear_registered_at();
    stored.clear_registered_at();
    if (candidate.SerializeAsString() != stored.SerializeAsString()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "model ", schema.model().model_id(), "@", schema.model().model_version(),
          " is registered with a different schema; register a new model_version"));
    }
    return Registration{existing->schema(), false};
  }
  storage::ModelRecord record;
  record.model_id = schema.model().model_id();
  record.model_version = schema.model().model_version();
  record.schema = schema.SerializeAsString();
  record.registered_at_ms = clock_->NowMs();
  record.resolved_edges = candidate->EncodeEdges();
  DW_ASSIGN_OR_RETURN(storage::ModelRecord stored, store_->PutModel(record));
  DW_ASSIGN_OR_RETURN(std::shared_ptr<RegisteredModel> model, Add(stored));
  return Registration{model->schema(), true};
}

absl::StatusOr<bool> ModelRegistry::FinishLearning(
    const RegisteredModel& model, const std::vector<std::vector<double>>& values) const {
  absl::MutexLock lock(&learn_mu_);
  if (!model.learning()) return false;
  const size_t wanted = model.learning_numeric().size() + model.learning_scores().size();
  if (values.size() != wanted) {
    return absl::InternalError(absl::StrCat("learning ", model.label(), ": ", values.size(),
                                            " value sets for ", wanted, " features and scores"));
  }
  // The given summary_edges of each learning feature (empty for none, and
  // for scores): they stay, the learned ones go between them.
  std::vector<const v1::FeatureSpec*> numeric_specs;
  for (const v1::FeatureSpec& f : model.schema().features()) {
    if (f.kind() == v1::FEATURE_KIND_NUMERIC) numeric_specs.push_back(&f);
  }
  std::vector<std::vector<double>> given;
  for (int f : model.learning_numeric()) {
    const v1::FeatureSpec* spec = numeric_specs[f];
    given.emplace_back(spec->summary_edges().begin(), spec->summary_edges().end());
  }
  given.resize(values.size());
  std::vector<std::shared_ptr<const BinEdges>> edges;
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StatusOr<BinEdges> learned = BinEdges::ForReferenceSample(values[i], options_.summary_bins);
    std::vector<double> extra = learned.ok() ? learned->edges() : std::vector<double>();
    // No values at all and no edges given: the default edges.
    if (extra.empty() && given[i].empty()) extra = DefaultNumericEdges();
    DW_ASSIGN_OR_RETURN(auto merged, UnionEdges(std::move(given[i]), extra));
    edges.push_back(std::move(merged));
  }
  // Stored first: a profile in the learned layout is only ever committed
  // after the edges that read it.
  const auto learned = WithLearnedEdges(*model.layout(), model.learning_numeric(),
                                        model.learning_scores(), edges);
  DW_RETURN_IF_ERROR(
      store_->UpdateResolvedEdges(model.model_key(), EncodeLayoutEdges(*learned, {}, {})));
  model.InstallLearnedEdges(std::move(edges));
  return true;
}

std::shared_ptr<const RegisteredModel> ModelRegistry::Lookup(const v1::ModelRef& ref) const {
  absl::ReaderMutexLock lock(&mu_);
  if (ref.model_version().empty()) {
    auto it = latest_.find(ref.model_id());
    return it == latest_.end() ? nullptr : it->second;
  }
  auto it = by_version_.find({ref.model_id(), ref.model_version()});
  return it == by_version_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<const RegisteredModel>> ModelRegistry::Find(
    const v1::ModelRef& ref) const {
  std::shared_ptr<const RegisteredModel> model = Lookup(ref);
  if (model == nullptr) {
    return absl::NotFoundError(absl::StrCat("model \"", ref.model_id(), "\" version \"",
                                            ref.model_version(), "\" is not registered"));
  }
  return model;
}

std::shared_ptr<const RegisteredModel> ModelRegistry::FindByKey(int64_t model_key) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& model : list_) {
    if (model->model_key() == model_key) return model;
  }
  return nullptr;
}

std::vector<std::shared_ptr<const RegisteredModel>> ModelRegistry::List() const {
  absl::ReaderMutexLock lock(&mu_);
  return list_;
}

std::optional<int32_t> ModelRegistry::FindSlice(const v1::ModelRef& ref, std::string_view key,
                                                std::string_view value) const {
  std::shared_ptr<const RegisteredModel> model = Lookup(ref);
  if (model == nullptr) return std::nullopt;
  std::optional<int> key_index = model->SliceKeyIndex(key);
  if (!key_index) return std::nullopt;
  return model->slices().Find(*key_index, value);
}

std::vector<storage::SliceRecord> ModelRegistry::Slices(const v1::ModelRef& ref) const {
  std::shared_ptr<const RegisteredModel> model = Lookup(ref);
  if (model == nullptr) return {};
  return model->slices().Records();
}

}  // namespace driftwatch::service
