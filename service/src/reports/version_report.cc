// Reports.CompareVersions: two versions of one model that scored the same
// event ids, paired through their join state (docs/data-quality.md).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/service/reports.h"
#include "labels/join_record.h"
#include "reports/version_comparison.h"

namespace driftwatch::service {
namespace {

constexpr int kChunksPerRead = 256;
constexpr size_t kMaxSlicesReported = 100;

// What one version kept of one prediction, for the comparison.
struct Kept {
  double score = 0;
  int cls = -1;
  double weight = 1;
  std::vector<uint32_t> slices;
  bool ranked = false;
  uint64_t query = 0;
};

using KeptMap = absl::flat_hash_map<uint64_t, Kept>;

// Drops the records whose hash is at or above `threshold`.
void Thin(uint64_t threshold, KeptMap* kept) {
  absl::erase_if(*kept, [threshold](const auto& entry) { return entry.first >= threshold; });
}

// The records of `model` with event time in `window` and hash below
// `*threshold`. Past `cap` records the threshold is halved (and the
// records at or above it dropped) until they fit: the rule depends on the
// hash alone, so both versions keep the same ids (the label join's hash
// sampling, again).
absl::StatusOr<KeptMap> ReadKept(storage::LabelStore* store, const RegisteredModel& model,
                                 Interval window, size_t cap, uint64_t* threshold) {
  KeptMap out;
  const int64_t from = storage::BucketStart(window.start_ms, storage::kHourMs);
  const int64_t to = storage::BucketStart(window.end_ms - 1, storage::kHourMs) + storage::kHourMs;
  const bool classes = model.schema().score_kind() == v1::SCORE_KIND_MULTICLASS_PROBABILITIES;
  int64_t after = 0;
  labels::JoinRecord rec;
  absl::Status bad = absl::OkStatus();
  for (;;) {
    DW_ASSIGN_OR_RETURN(std::vector<storage::JoinChunk> chunks,
                        store->ReadJoinChunksInHours(model.model_key(), from, to, after,
                                                     kChunksPerRead));
    for (const storage::JoinChunk& chunk : chunks) {
      after = chunk.seq;
      DW_RETURN_IF_ERROR(labels::ForEachChunkEntry(
          chunk.records, [&](uint64_t hash, std::string_view bytes) {
            if (!bad.ok()) return;
            if (absl::Status s = labels::DecodeJoinRecordInto(bytes, &rec); !s.ok()) {
              bad = absl::DataLossError(absl::StrCat("join state of model ", model.label(),
                                                     " (chunk ", chunk.seq, "): ", s.message()));
              return;
            }
            if (hash >= *threshold || rec.event_time_ms < window.start_ms ||
                rec.event_time_ms >= window.end_ms || rec.scores.empty()) {
              return;
            }
            Kept k;
            k.score = rec.scores[0];
            if (classes) {
              k.cls = static_cast<int>(std::max_element(rec.scores.begin(), rec.scores.end()) -
                                       rec.scores.begin());
            }
            k.weight = rec.weight;
            k.slices = rec.slices;
            k.ranked = rec.ranked;
            k.query = rec.query_hash;
            out.insert_or_assign(hash, std::move(k));
            while (out.size() > cap) {
              *threshold /= 2;
              Thin(*threshold, &out);
            }
          }));
      DW_RETURN_IF_ERROR(bad);
    }
    if (static_cast<int>(chunks.size()) < kChunksPerRead) break;
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const RegisteredModel>> FindVersion(const ModelRegistry& registry,
                                                                   const std::string& name,
                                                                   const std::string& version,
                                                                   const char* field) {
  if (version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  v1::ModelRef ref;
  ref.set_model_id(name);
  ref.set_model_version(version);
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model, registry.Find(ref));
  if (!model->joins_labels()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", model->label(),
        " keeps no per-event scores: compare-versions pairs the versions' join state, kept for "
        "models registered with a label_kind"));
  }
  return model;
}

}  // namespace

absl::StatusOr<v1::CompareVersionsResponse> ReportEngine::CompareVersions(
    const v1::CompareVersionsRequest& request) const {
  if (request.model_name().empty()) return absl::InvalidArgumentError("model_name is required");
  if (!request.version_a().empty() && request.version_a() == request.version_b()) {
    return absl::InvalidArgumentError(
        absl::StrCat("version_a and version_b are both ", request.version_a(),
                     ": compare two different versions"));
  }
  if (!std::isfinite(request.threshold()) || request.threshold() < 0) {
    return absl::InvalidArgumentError("threshold must be a finite number >= 0");
  }
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> a,
                      FindVersion(*registry_, request.model_name(), request.version_a(),
                                  "version_a"));
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> b,
                      FindVersion(*registry_, request.model_name(), request.version_b(),
                                  "version_b"));
  if (a->schema().score_kind() != b->schema().score_kind()) {
    return absl::FailedPreconditionError(
        absl::StrCat(a->label(), " and ", b->label(), " have different score kinds (",
                     v1::ScoreKind_Name(a->schema().score_kind()), ", ",
                     v1::ScoreKind_Name(b->schema().score_kind()), ")"));
  }
  if (labels_ == nullptr) return absl::FailedPreconditionError("labels are not attached");
  const int64_t now_ms = clock_->NowMs();
  DW_ASSIGN_OR_RETURN(Interval window,
                      windows_->Resolve(request.window(), storage::kHourMs, now_ms));
  // The selector names a slice of version a (and the same value of b).
  std::optional<std::pair<int, uint32_t>> only;  // (key index, a's slice id)
  const std::vector<storage::SliceRecord> a_records = a->slices().Records();
  if (!request.slice().values().empty()) {
    DW_ASSIGN_OR_RETURN(int32_t id, ResolveSlice(*a, request.slice()));
    only.emplace(a_records[id].key_index, static_cast<uint32_t>(id));
  }
  uint64_t threshold = std::numeric_limits<uint64_t>::max();
  const size_t cap = std::max<size_t>(1, options_.compare_max_records);
  DW_ASSIGN_OR_RETURN(KeptMap kept_a, ReadKept(labels_, *a, window, cap, &threshold));
  DW_ASSIGN_OR_RETURN(KeptMap kept_b, ReadKept(labels_, *b, window, cap, &threshold));
  Thin(threshold, &kept_a);  // b may have lowered it

  // b's slice ids as a's: by key name and value.
  const std::vector<storage::SliceRecord> b_records = b->slices().Records();
  std::vector<int> b_key_of_a(a->slice_key_count(), -1);
  for (int k = 0; k < a->slice_key_count(); ++k) {
    if (std::optional<int> bk = b->SliceKeyIndex(a->slice_keys()[k])) b_key_of_a[k] = *bk;
  }
  auto a_slice_of_b = [&](int a_key, const Kept& kb) -> std::optional<uint32_t> {
    const int bk = b_key_of_a[a_key];
    if (bk < 0 || static_cast<size_t>(bk) >= kb.slices.size()) return std::nullopt;
    const uint32_t bid = kb.slices[bk];
    if (bid >= b_records.size()) return std::nullopt;
    std::optional<int32_t> aid = a->slices().Find(a_key, b_records[bid].value);
    if (!aid) return std::nullopt;
    return static_cast<uint32_t>(*aid);
  };
  auto in_only = [&](const Kept& ka) {
    return !only || (static_cast<size_t>(only->first) < ka.slices.size() &&
                     ka.slices[only->first] == only->second);
  };

  struct Group {
    std::vector<reports::ScorePair> pairs;
    uint64_t only_a = 0, only_b = 0;
  };
  Group population;
  std::map<uint32_t, Group> by_slice;  // a's slice id
  const int keys = a->slice_key_count();
  for (const auto& [hash, ka] : kept_a) {
    if (!in_only(ka)) continue;
    auto it = kept_b.find(hash);
    const bool paired = it != kept_b.end();
    reports::ScorePair p;
    if (paired) {
      const Kept& kb = it->second;
      p.id = hash;
      p.a = ka.score;
      p.b = kb.score;
      p.class_a = ka.cls;
      p.class_b = kb.cls;
      p.weight = ka.weight;
      p.ranked = ka.ranked && kb.ranked && ka.query == kb.query;
      p.query = ka.query;
      population.pairs.push_back(p);
    } else {
      ++population.only_a;
    }
    if (only) continue;
    for (int k = 0; k < keys && static_cast<size_t>(k) < ka.slices.size(); ++k) {
      Group& g = by_slice[ka.slices[k]];
      if (paired) g.pairs.push_back(p);
      else ++g.only_a;
    }
  }
  for (const auto& [hash, kb] : kept_b) {
    if (kept_a.contains(hash)) continue;
    if (only) {
      std::optional<uint32_t> aid = a_slice_of_b(only->first, kb);
      if (aid && *aid == only->second) ++population.only_b;
      continue;
    }
    ++population.only_b;
    for (int k = 0; k < keys; ++k) {
      if (std::optional<uint32_t> aid = a_slice_of_b(k, kb)) ++by_slice[*aid].only_b;
    }
  }

  reports::AgreementOptions options;
  if (request.k() > 0) options.k = request.k();
  if (request.threshold() > 0) {
    options.threshold = request.threshold();
  } else if (a->schema().score_kind() == v1::SCORE_KIND_BINARY_PROBABILITY) {
    options.threshold = a->decision_threshold();
  }
  v1::CompareVersionsResponse response;
  response.set_model_name(request.model_name());
  response.set_version_a(request.version_a());
  response.set_version_b(request.version_b());
  SetRange(window, response.mutable_window());
  response.set_threshold(options.threshold);
  response.set_sampled(threshold == std::numeric_limits<uint64_t>::max()
                           ? 1.0
                           : std::ldexp(static_cast<double>(threshold), -64));
  response.set_k(options.k);
  auto fill = [&](const Group& g, v1::VersionAgreement* out) {
    reports::Agree(g.pairs, options, out);
    out->set_only_a(g.only_a);
    out->set_only_b(g.only_b);
  };
  fill(population, response.mutable_population());
  if (only) *response.mutable_population()->mutable_slice() = request.slice();
  std::vector<std::pair<size_t, uint32_t>> order;  // (pairs, slice id)
  for (const auto& [id, g] : by_slice) {
    if (!g.pairs.empty() && id < a_records.size()) order.emplace_back(g.pairs.size(), id);
  }
  std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  });
  if (order.size() > kMaxSlicesReported) order.resize(kMaxSlicesReported);
  for (const auto& [n, id] : order) {
    v1::VersionAgreement* s = response.add_slices();
    fill(by_slice.at(id), s);
    *s->mutable_slice() = a->SelectorOf(a_records[id]);
  }
  return response;
}

}  // namespace driftwatch::service
