#include "driftwatch/detectors/profile.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/status_macros.h"
#include "internal/byte_io.h"

namespace driftwatch::detectors {
namespace {

constexpr char kMagic[4] = {'D', 'W', 'P', 'F'};
constexpr uint32_t kVersion = 1;
constexpr uint8_t kDense = 0;
constexpr uint8_t kSparse = 1;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("profile: ", what));
}

void PutNumeric(internal::ByteWriter& w, const NumericSummary& s) {
  std::span<const double> bins = s.bins();
  size_t nonzero = 0;
  for (double b : bins) nonzero += b != 0;
  w.U32(static_cast<uint32_t>(bins.size()));
  // Most slices are small, so most of their bins are empty: store
  // (index, weight) pairs when that is shorter than the dense array.
  if (nonzero * 12 < bins.size() * 8) {
    w.Raw(std::string_view(reinterpret_cast<const char*>(&kSparse), 1));
    w.U32(static_cast<uint32_t>(nonzero));
    for (size_t i = 0; i < bins.size(); ++i) {
      if (bins[i] != 0) {
        w.U32(static_cast<uint32_t>(i));
        w.F64(bins[i]);
      }
    }
  } else {
    w.Raw(std::string_view(reinterpret_cast<const char*>(&kDense), 1));
    for (double b : bins) w.F64(b);
  }
  const NumericCounts& c = s.counts();
  w.F64(c.weight);
  w.F64(c.weight_sq);
  w.F64(c.sum);
  w.F64(c.sum_sq);
  w.F64(c.min);
  w.F64(c.max);
  w.U64(c.count);
  w.U64(c.nulls);
  w.U64(c.nans);
  w.U64(c.pos_infs);
  w.U64(c.neg_infs);
  w.U64(s.invalid_weights());
}

absl::StatusOr<NumericSummary> GetNumeric(internal::ByteReader& r,
                                          std::shared_ptr<const BinEdges> edges) {
  uint32_t bin_count = 0;
  std::string_view mode;
  if (!r.U32(&bin_count) || !r.Raw(1, &mode)) return Corrupt("truncated numeric summary");
  if (bin_count != edges->bin_count()) {
    return Corrupt(absl::StrCat("numeric summary has ", bin_count, " bins, layout has ",
                                edges->bin_count()));
  }
  std::vector<double> bins(bin_count, 0.0);
  if (static_cast<uint8_t>(mode[0]) == kSparse) {
    uint32_t nonzero = 0;
    if (!r.U32(&nonzero) || nonzero > bin_count) return Corrupt("bad sparse bin count");
    for (uint32_t k = 0; k < nonzero; ++k) {
      uint32_t index = 0;
      double weight = 0;
      if (!r.U32(&index) || !r.F64(&weight)) return Corrupt("truncated sparse bins");
      if (index >= bin_count) return Corrupt("sparse bin index out of range");
      bins[index] = weight;
    }
  } else if (static_cast<uint8_t>(mode[0]) == kDense) {
    for (double& b : bins) {
      if (!r.F64(&b)) return Corrupt("truncated dense bins");
    }
  } else {
    return Corrupt("unknown bin encoding");
  }
  NumericCounts c;
  uint64_t invalid = 0;
  if (!r.F64(&c.weight) || !r.F64(&c.weight_sq) || !r.F64(&c.sum) || !r.F64(&c.sum_sq) ||
      !r.F64(&c.min) || !r.F64(&c.max) || !r.U64(&c.count) || !r.U64(&c.nulls) ||
      !r.U64(&c.nans) || !r.U64(&c.pos_infs) || !r.U64(&c.neg_infs) || !r.U64(&invalid)) {
    return Corrupt("truncated numeric counts");
  }
  absl::StatusOr<NumericSummary> s =
      NumericSummary::FromParts(std::move(edges), std::move(bins), c, invalid);
  if (!s.ok()) return Corrupt(s.status().message());
  return s;
}

bool SameEdges(const std::vector<std::shared_ptr<const BinEdges>>& a,
               const std::vector<std::shared_ptr<const BinEdges>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && !(*a[i] == *b[i])) return false;
  }
  return true;
}

}  // namespace

Profile::Profile(std::shared_ptr<const ProfileLayout> layout) : layout_(std::move(layout)) {
  numeric_.reserve(layout_->numeric_edges.size());
  for (const auto& edges : layout_->numeric_edges) numeric_.emplace_back(edges);
  categorical_.assign(layout_->categorical_names.size(),
                      CategoricalSummary(layout_->max_categories));
  scores_.reserve(layout_->score_edges.size());
  for (const auto& edges : layout_->score_edges) scores_.emplace_back(edges);
}

absl::Status Profile::Merge(const Profile& other) {
  if (layout_ != other.layout_ &&
      (!SameEdges(layout_->numeric_edges, other.layout_->numeric_edges) ||
       !SameEdges(layout_->score_edges, other.layout_->score_edges) ||
       layout_->categorical_names.size() != other.layout_->categorical_names.size())) {
    return absl::FailedPreconditionError("profiles have different layouts");
  }
  for (size_t i = 0; i < numeric_.size(); ++i) DW_RETURN_IF_ERROR(numeric_[i].Merge(other.numeric_[i]));
  for (size_t i = 0; i < categorical_.size(); ++i) {
    DW_RETURN_IF_ERROR(categorical_[i].Merge(other.categorical_[i]));
  }
  for (size_t i = 0; i < scores_.size(); ++i) DW_RETURN_IF_ERROR(scores_[i].Merge(other.scores_[i]));
  counters_.events += other.counters_.events;
  counters_.late_accepted += other.counters_.late_accepted;
  counters_.invalid_values += other.counters_.invalid_values;
  counters_.weight += other.counters_.weight;
  counters_.weight_sq += other.counters_.weight_sq;
  return absl::OkStatus();
}

std::string Profile::Serialize() const {
  internal::ByteWriter w;
  w.Raw(std::string_view(kMagic, 4));
  w.U32(kVersion);
  w.U32(static_cast<uint32_t>(numeric_.size()));
  w.U32(static_cast<uint32_t>(categorical_.size()));
  w.U32(static_cast<uint32_t>(scores_.size()));
  w.U64(counters_.events);
  w.U64(counters_.late_accepted);
  w.U64(counters_.invalid_values);
  w.F64(counters_.weight);
  w.F64(counters_.weight_sq);
  for (const NumericSummary& s : numeric_) PutNumeric(w, s);
  for (const CategoricalSummary& s : categorical_) w.Str(s.Serialize());
  for (const NumericSummary& s : scores_) PutNumeric(w, s);
  return std::move(w).FinishWithCrc();
}

absl::StatusOr<Profile> Profile::Deserialize(std::shared_ptr<const ProfileLayout> layout,
                                             std::string_view bytes) {
  if (bytes.size() < 8) return Corrupt("too short");
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  internal::ByteReader crc_reader(bytes.substr(bytes.size() - 4));
  uint32_t crc = 0;
  if (!crc_reader.U32(&crc) || crc != internal::Crc32c(body)) return Corrupt("checksum mismatch");
  internal::ByteReader r(body);
  std::string_view magic;
  uint32_t version = 0, n_numeric = 0, n_categorical = 0, n_scores = 0;
  if (!r.Raw(4, &magic) || magic != std::string_view(kMagic, 4)) return Corrupt("bad magic");
  if (!r.U32(&version) || version != kVersion) {
    return Corrupt(absl::StrCat("unsupported version ", version));
  }
  if (!r.U32(&n_numeric) || !r.U32(&n_categorical) || !r.U32(&n_scores)) {
    return Corrupt("truncated header");
  }
  if (n_numeric != layout->numeric_edges.size() ||
      n_categorical != layout->categorical_names.size() ||
      n_scores != layout->score_edges.size()) {
    return Corrupt(absl::StrCat("shape ", n_numeric, "/", n_categorical, "/", n_scores,
                                " does not match the model layout ",
                                layout->numeric_edges.size(), "/",
                                layout->categorical_names.size(), "/",
                                layout->score_edges.size()));
  }
  Profile p(layout);
  ProfileCounters& c = p.counters_;
  if (!r.U64(&c.events) || !r.U64(&c.late_accepted) || !r.U64(&c.invalid_values) ||
      !r.F64(&c.weight) || !r.F64(&c.weight_sq)) {
    return Corrupt("truncated counters");
  }
  for (size_t i = 0; i < n_numeric; ++i) {
    DW_ASSIGN_OR_RETURN(p.numeric_[i], GetNumeric(r, layout->numeric_edges[i]));
  }
  for (size_t i = 0; i < n_categorical; ++i) {
    std::string blob;
    if (!r.Str(&blob)) return Corrupt("truncated categorical summary");
    DW_ASSIGN_OR_RETURN(p.categorical_[i], CategoricalSummary::Deserialize(blob));
  }
  for (size_t i = 0; i < n_scores; ++i) {
    DW_ASSIGN_OR_RETURN(p.scores_[i], GetNumeric(r, layout->score_edges[i]));
  }
  return p;
}

}  // namespace driftwatch::detectors
