#include "driftwatch/detectors/categorical.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"

namespace driftwatch::detectors {
namespace {

constexpr char kCategoricalMagic[] = "DWCS";
constexpr uint32_t kCategoricalVersion = 1;

// Debian's Abseil keeps its own string_view type, so map lookups need this.
absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool ValidWeight(double w) { return w > 0 && std::isfinite(w); }

// Heaviest first; ties broken by name so that merges are deterministic.
bool Heavier(const std::pair<std::string, double>& a, const std::pair<std::string, double>& b) {
  return a.second != b.second ? a.second > b.second : a.first < b.first;
}

}  // namespace

CategoricalSummary::CategoricalSummary(size_t max_categories) : max_categories_(max_categories) {}

void CategoricalSummary::Add(std::string_view category, double weight) {
  if (!ValidWeight(weight)) return;
  if (category == base::kMissing) {
    AddMissing(weight);
    return;
  }
  ++count_;
  weight_sq_ += weight * weight;
  if (category == base::kOther) {
    other_ += weight;
    return;
  }
  auto it = counts_.find(AsAbsl(category));
  if (it != counts_.end()) {
    it->second += weight;
  } else if (counts_.size() < max_categories_) {
    counts_.emplace(std::string(category), weight);
  } else {
    other_ += weight;
  }
}

void CategoricalSummary::AddMissing(double weight) {
  if (!ValidWeight(weight)) return;
  ++count_;
  weight_sq_ += weight * weight;
  missing_ += weight;
}

absl::Status CategoricalSummary::Merge(const CategoricalSummary& other) {
  for (const auto& [name, w] : other.counts_) counts_[name] += w;
  other_ += other.other_;
  missing_ += other.missing_;
  weight_sq_ += other.weight_sq_;
  count_ += other.count_;
  if (counts_.size() <= max_categories_) return absl::OkStatus();
  std::vector<std::pair<std::string, double>> sorted(counts_.begin(), counts_.end());
  std::sort(sorted.begin(), sorted.end(), Heavier);
  for (size_t i = max_categories_; i < sorted.size(); ++i) {
    other_ += sorted[i].second;
    counts_.erase(sorted[i].first);
  }
  return absl::OkStatus();
}

double CategoricalSummary::total_weight() const {
  double total = other_ + missing_;
  for (const auto& [name, w] : counts_) total += w;
  return total;
}

double CategoricalSummary::effective_size() const {
  const double total = total_weight();
  return weight_sq_ > 0 ? total * total / weight_sq_ : 0.0;
}

double CategoricalSummary::WeightOf(std::string_view category) const {
  if (category == base::kOther) return other_;
  if (category == base::kMissing) return missing_;
  auto it = counts_.find(AsAbsl(category));
  return it == counts_.end() ? 0.0 : it->second;
}

std::string CategoricalSummary::Serialize() const {
  std::vector<std::pair<std::string, double>> sorted(counts_.begin(), counts_.end());
  std::sort(sorted.begin(), sorted.end());  // stable bytes for equal summaries
  base::ByteWriter w;
  w.Raw(std::string_view(kCategoricalMagic, 4));
  w.U32(kCategoricalVersion);
  w.U64(max_categories_);
  w.U64(count_);
  w.F64(other_);
  w.F64(missing_);
  w.F64(weight_sq_);
  w.U32(static_cast<uint32_t>(sorted.size()));
  for (const auto& [name, weight] : sorted) {
    w.Str(name);
    w.F64(weight);
  }
  return std::move(w).FinishWithCrc();
}

absl::StatusOr<CategoricalSummary> CategoricalSummary::Deserialize(std::string_view bytes) {
  auto corrupt = [](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("categorical summary: ", what));
  };
  std::string_view body;
  if (!base::VerifyCrc(bytes, &body)) return corrupt("truncated or checksum mismatch");
  base::ByteReader r(body);
  std::string_view magic;
  uint32_t version, n;
  uint64_t max_categories;
  if (!r.Raw(4, &magic) || magic != std::string_view(kCategoricalMagic, 4)) {
    return corrupt("bad magic");
  }
  if (!r.U32(&version)) return corrupt("truncated header");
  if (version != kCategoricalVersion) return corrupt(absl::StrCat("unsupported version ", version));
  if (!r.U64(&max_categories)) return corrupt("truncated header");
  CategoricalSummary s(max_categories);
  if (!r.U64(&s.count_) || !r.F64(&s.other_) || !r.F64(&s.missing_) || !r.F64(&s.weight_sq_) ||
      !r.U32(&n)) {
    return corrupt("truncated header");
  }
  if (!(s.other_ >= 0) || !(s.missing_ >= 0) || !(s.weight_sq_ >= 0) || !std::isfinite(s.other_) ||
      !std::isfinite(s.missing_) || !std::isfinite(s.weight_sq_)) {
    return corrupt("special bin weight is negative or not finite");
  }
  // Each entry needs at least 12 bytes (length + weight).
  if (n > r.remaining() / 12 || n > max_categories) return corrupt("category count exceeds limits");
  for (uint32_t i = 0; i < n; ++i) {
    std::string name;
    double weight;
    if (!r.Str(&name) || !r.F64(&weight)) return corrupt("truncated categories");
    if (!(weight >= 0) || !std::isfinite(weight)) return corrupt("category weight is invalid");
    if (!s.counts_.emplace(std::move(name), weight).second) return corrupt("duplicate category");
  }
  if (r.remaining() != 0) return corrupt("trailing bytes");
  return s;
}

}  // namespace driftwatch::detectors
