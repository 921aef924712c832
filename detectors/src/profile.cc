#include "driftwatch/detectors/profile.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/base/byte_io.h"
#include "internal/counts_codec.h"

namespace driftwatch::detectors {
namespace {

constexpr char kMagic[4] = {'D', 'W', 'P', 'F'};
// 2 added each numeric summary's missing weight, 3 its per-bin sums, 4 the
// data-quality section; 1 to 3 are still read.
constexpr uint32_t kVersion = 4;
constexpr uint8_t kDense = 0;
constexpr uint8_t kSparse = 1;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("profile: ", what));
}

void PutDoubles(base::ByteWriter& w, std::span<const double> v) {
  if constexpr (std::endian::native == std::endian::little) {
    // F64 is the little-endian IEEE-754 pattern: the array as it is.
    w.Raw(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * 8));
  } else {
    for (double x : v) w.F64(x);
  }
}

// `bin(i)` and `sum(i)` give bin i's weight and weighted sum.
template <typename Bin, typename Sum>
void PutNumeric(base::ByteWriter& w, size_t bin_count, Bin bin, Sum sum, const NumericCounts& c,
                uint64_t invalid_weights) {
  size_t nonzero = 0;
  for (size_t i = 0; i < bin_count; ++i) nonzero += bin(i) != 0;
  w.U32(static_cast<uint32_t>(bin_count));
  // Most slices are small, so most of their bins are empty: store
  // (index, weight, sum) triples when that is shorter than the dense arrays.
  if (nonzero * 20 < bin_count * 16) {
    w.Raw(std::string_view(reinterpret_cast<const char*>(&kSparse), 1));
    w.U32(static_cast<uint32_t>(nonzero));
    for (size_t i = 0; i < bin_count; ++i) {
      if (bin(i) != 0) {
        w.U32(static_cast<uint32_t>(i));
        w.F64(bin(i));
        w.F64(sum(i));
      }
    }
  } else {
    w.Raw(std::string_view(reinterpret_cast<const char*>(&kDense), 1));
    for (size_t i = 0; i < bin_count; ++i) w.F64(bin(i));
    for (size_t i = 0; i < bin_count; ++i) w.F64(sum(i));
  }
  internal::PutCounts(w, c, invalid_weights);
}

void PutNumeric(base::ByteWriter& w, const NumericSummary& s) {
  std::span<const double> bins = s.bins(), sums = s.bin_sums();
  size_t nonzero = 0;
  for (double b : bins) nonzero += b != 0;
  if (nonzero * 20 >= bins.size() * 16) {
    // The dense form of a summary is its two arrays as they are.
    w.U32(static_cast<uint32_t>(bins.size()));
    w.Raw(std::string_view(reinterpret_cast<const char*>(&kDense), 1));
    PutDoubles(w, bins);
    PutDoubles(w, sums);
    internal::PutCounts(w, s.counts(), s.invalid_weights());
    return;
  }
  PutNumeric(
      w, bins.size(), [&](size_t i) { return bins[i]; }, [&](size_t i) { return sums[i]; },
      s.counts(), s.invalid_weights());
}

void PutHeader(base::ByteWriter& w, size_t n_numeric, size_t n_categorical, size_t n_scores,
               const ProfileCounters& c) {
  w.Raw(std::string_view(kMagic, 4));
  w.U32(kVersion);
  w.U32(static_cast<uint32_t>(n_numeric));
  w.U32(static_cast<uint32_t>(n_categorical));
  w.U32(static_cast<uint32_t>(n_scores));
  w.U64(c.events);
  w.U64(c.late_accepted);
  w.U64(c.invalid_values);
  w.F64(c.weight);
  w.F64(c.weight_sq);
}

absl::StatusOr<NumericSummary> GetNumeric(base::ByteReader& r, uint32_t version,
                                          std::shared_ptr<const BinEdges> edges) {
  uint32_t bin_count = 0;
  std::string_view mode;
  if (!r.U32(&bin_count) || !r.Raw(1, &mode)) return Corrupt("truncated numeric summary");
  if (bin_count != edges->bin_count()) {
    return Corrupt(absl::StrCat("numeric summary has ", bin_count, " bins, layout has ",
                                edges->bin_count()));
  }
  const bool has_sums = version >= 3;
  std::vector<double> bins(bin_count, 0.0), sums(has_sums ? bin_count : 0, 0.0);
  if (static_cast<uint8_t>(mode[0]) == kSparse) {
    uint32_t nonzero = 0;
    if (!r.U32(&nonzero) || nonzero > bin_count) return Corrupt("bad sparse bin count");
    for (uint32_t k = 0; k < nonzero; ++k) {
      uint32_t index = 0;
      double weight = 0, sum = 0;
      if (!r.U32(&index) || !r.F64(&weight) || (has_sums && !r.F64(&sum))) {
        return Corrupt("truncated sparse bins");
      }
      if (index >= bin_count) return Corrupt("sparse bin index out of range");
      bins[index] = weight;
      if (has_sums) sums[index] = sum;
    }
  } else if (static_cast<uint8_t>(mode[0]) == kDense) {
    for (double& b : bins) {
      if (!r.F64(&b)) return Corrupt("truncated dense bins");
    }
    for (double& s : sums) {
      if (!r.F64(&s)) return Corrupt("truncated dense bin sums");
    }
  } else {
    return Corrupt("unknown bin encoding");
  }
  NumericCounts c;
  uint64_t invalid = 0;
  if (!internal::GetCounts(r, version, &c, &invalid)) return Corrupt("truncated numeric counts");
  absl::StatusOr<NumericSummary> s =
      NumericSummary::FromParts(std::move(edges), std::move(bins), std::move(sums), c, invalid);
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
  quality_.Merge(other.quality_);
  return absl::OkStatus();
}

std::string Profile::Serialize() const {
  base::ByteWriter w;
  PutHeader(w, numeric_.size(), categorical_.size(), scores_.size(), counters_);
  for (const NumericSummary& s : numeric_) PutNumeric(w, s);
  for (const CategoricalSummary& s : categorical_) w.Str(s.Serialize());
  for (const NumericSummary& s : scores_) PutNumeric(w, s);
  quality_.Serialize(w);
  return std::move(w).FinishWithCrc();
}

namespace {

// What precedes a profile's summaries: format version and shape.
struct Header {
  uint32_t version = 0, n_numeric = 0, n_categorical = 0, n_scores = 0;
};

// The bytes before a blob's trailing CRC-32C, once it matches.
absl::StatusOr<std::string_view> CheckedBody(std::string_view bytes) {
  if (bytes.size() < 8) return Corrupt("too short");
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  base::ByteReader crc_reader(bytes.substr(bytes.size() - 4));
  uint32_t crc = 0;
  if (!crc_reader.U32(&crc) || crc != base::Crc32c(body)) return Corrupt("checksum mismatch");
  return body;
}

absl::Status ReadHeader(base::ByteReader& r, Header* h) {
  std::string_view magic;
  if (!r.Raw(4, &magic) || magic != std::string_view(kMagic, 4)) return Corrupt("bad magic");
  if (!r.U32(&h->version) || h->version < 1 || h->version > kVersion) {
    return Corrupt(absl::StrCat("unsupported version ", h->version));
  }
  if (!r.U32(&h->n_numeric) || !r.U32(&h->n_categorical) || !r.U32(&h->n_scores)) {
    return Corrupt("truncated header");
  }
  return absl::OkStatus();
}

absl::Status ReadCounters(base::ByteReader& r, ProfileCounters* c) {
  if (!r.U64(&c->events) || !r.U64(&c->late_accepted) || !r.U64(&c->invalid_values) ||
      !r.F64(&c->weight) || !r.F64(&c->weight_sq)) {
    return Corrupt("truncated counters");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Profile> Profile::Deserialize(std::shared_ptr<const ProfileLayout> layout,
                                             std::string_view bytes) {
  DW_ASSIGN_OR_RETURN(const std::string_view body, CheckedBody(bytes));
  base::ByteReader r(body);
  Header h;
  DW_RETURN_IF_ERROR(ReadHeader(r, &h));
  if (h.n_numeric != layout->numeric_edges.size() ||
      h.n_categorical != layout->categorical_names.size() ||
      h.n_scores != layout->score_edges.size()) {
    return Corrupt(absl::StrCat("shape ", h.n_numeric, "/", h.n_categorical, "/", h.n_scores,
                                " does not match the model layout ",
                                layout->numeric_edges.size(), "/",
                                layout->categorical_names.size(), "/",
                                layout->score_edges.size()));
  }
  Profile p(layout);
  DW_RETURN_IF_ERROR(ReadCounters(r, &p.counters_));
  for (size_t i = 0; i < h.n_numeric; ++i) {
    DW_ASSIGN_OR_RETURN(p.numeric_[i], GetNumeric(r, h.version, layout->numeric_edges[i]));
  }
  for (size_t i = 0; i < h.n_categorical; ++i) {
    std::string blob;
    if (!r.Str(&blob)) return Corrupt("truncated categorical summary");
    DW_ASSIGN_OR_RETURN(p.categorical_[i], CategoricalSummary::Deserialize(blob));
  }
  for (size_t i = 0; i < h.n_scores; ++i) {
    DW_ASSIGN_OR_RETURN(p.scores_[i], GetNumeric(r, h.version, layout->score_edges[i]));
  }
  if (h.version >= 4) DW_RETURN_IF_ERROR(DataQuality::Deserialize(r, &p.quality_));
  if (r.remaining() != 0) return Corrupt("trailing bytes");
  return p;
}

std::optional<uint64_t> SerializedProfileEvents(std::string_view bytes) {
  base::ByteReader r(bytes);
  Header h;
  ProfileCounters c;
  if (!ReadHeader(r, &h).ok() || !ReadCounters(r, &c).ok()) return std::nullopt;
  return c.events;
}

absl::StatusOr<ProfileCounters> Profile::PeekCounters(std::string_view bytes) {
  DW_ASSIGN_OR_RETURN(const std::string_view body, CheckedBody(bytes));
  base::ByteReader r(body);
  Header h;
  DW_RETURN_IF_ERROR(ReadHeader(r, &h));
  ProfileCounters c;
  DW_RETURN_IF_ERROR(ReadCounters(r, &c));
  return c;
}

namespace {

constexpr size_t kLine = 64;
constexpr size_t kDoublesPerLine = kLine / sizeof(double);

NumericCounts CountsOf(const ProfileAccumulator::Moments& m,
                       const ProfileAccumulator::ColdCounts& cold) {
  NumericCounts c;
  c.weight = m.weight;
  c.weight_sq = m.weight_sq;
  c.sum = m.sum;
  c.sum_sq = m.sum_sq;
  c.min = m.min;
  c.max = m.max;
  c.count = m.count;
  c.nulls = m.nulls;
  c.nans = cold.nans;
  c.pos_infs = cold.pos_infs;
  c.neg_infs = cold.neg_infs;
  c.missing_weight = cold.missing_weight;
  return c;
}

}  // namespace

std::shared_ptr<const ProfileAccumulator::Shape> ProfileAccumulator::Shape::Of(
    std::shared_ptr<const ProfileLayout> layout) {
  static_assert(sizeof(Moments) == kLine && sizeof(ProfileCounters) <= kLine);
  auto shape = std::make_shared<Shape>();
  for (const auto& e : layout->numeric_edges) shape->edges.push_back(e.get());
  for (const auto& e : layout->score_edges) shape->edges.push_back(e.get());
  size_t line = 1;  // line 0: the ProfileCounters
  for (const BinEdges* e : shape->edges) {
    shape->first_line.push_back(static_cast<uint32_t>(line));
    line += 1 + (2 * e->bin_count() + kDoublesPerLine - 1) / kDoublesPerLine;
  }
  shape->cold_line = line;
  line += (shape->edges.size() * sizeof(ColdCounts) + kLine - 1) / kLine;
  shape->lines = line;
  shape->layout = std::move(layout);
  return shape;
}

void ProfileAccumulator::FreeBlock::operator()(std::byte* p) const {
  ::operator delete(p, std::align_val_t(kLine));
}

ProfileAccumulator::ProfileAccumulator(std::shared_ptr<const Shape> shape)
    : shape_(std::move(shape)),
      block_(static_cast<std::byte*>(
          ::operator new(shape_->lines * kLine, std::align_val_t(kLine)))),
      categorical_(shape_->layout->categorical_names.size(),
                   CategoricalSummary(shape_->layout->max_categories)) {
  // All-zero bytes are 0.0 and 0: every summary starts empty.
  std::memset(block_.get(), 0, shape_->lines * kLine);
  new (block_.get()) ProfileCounters();
}

ProfileAccumulator ProfileAccumulator::Clone() const {
  ProfileAccumulator copy(shape_);
  std::memcpy(copy.block_.get(), block_.get(), shape_->lines * kLine);
  copy.categorical_ = categorical_;
  copy.quality_ = quality_;
  return copy;
}

ProfileAccumulator ProfileAccumulator::FromProfile(std::shared_ptr<const Shape> shape,
                                                   const Profile& profile) {
  ProfileAccumulator acc(std::move(shape));
  const size_t n_numeric = profile.numeric().size();
  for (size_t k = 0; k < acc.shape_->edges.size(); ++k) {
    const NumericSummary& s =
        k < n_numeric ? profile.numeric()[k] : profile.scores()[k - n_numeric];
    const NumericCounts& c = s.counts();
    acc.moments(k) = Moments{c.weight, c.weight_sq, c.sum, c.sum_sq, c.min, c.max, c.count, c.nulls};
    acc.cold(k) = ColdCounts{c.nans, c.pos_infs, c.neg_infs, s.invalid_weights(), c.missing_weight};
    double* pairs = acc.bins(k);
    for (size_t i = 0; i < s.bins().size(); ++i) {
      pairs[2 * i] = s.bins()[i];
      pairs[2 * i + 1] = s.bin_sums()[i];
    }
  }
  acc.categorical_ = profile.categorical();
  acc.quality_ = profile.quality();
  acc.counters() = profile.counters();
  return acc;
}

Profile ProfileAccumulator::ToProfile() const {
  Profile p(shape_->layout);
  const size_t n_numeric = p.numeric().size();
  std::byte* block = block_.get();
  const ColdCounts* cold = ColdAt(block, *shape_);
  for (size_t k = 0; k < shape_->edges.size(); ++k) {
    const uint32_t line = shape_->first_line[k];
    NumericSummary& s = k < n_numeric ? p.numeric()[k] : p.scores()[k - n_numeric];
    const double* pairs = BinsAt(block, line);
    std::vector<double> bins(s.bins().size()), sums(s.bins().size());
    for (size_t i = 0; i < bins.size(); ++i) {
      bins[i] = pairs[2 * i];
      sums[i] = pairs[2 * i + 1];
    }
    // The bins were only ever incremented by positive weights (or copied
    // from a valid summary), so FromParts cannot fail.
    s = *NumericSummary::FromParts(s.shared_edges(), std::move(bins), std::move(sums),
                                   CountsOf(*MomentsAt(block, line), cold[k]),
                                   cold[k].invalid_weights);
  }
  p.categorical() = categorical_;
  p.quality() = quality_;
  p.counters() = counters();
  return p;
}

std::string ProfileAccumulator::Serialize() const {
  const ProfileLayout& layout = *shape_->layout;
  const size_t n_numeric = layout.numeric_edges.size();
  base::ByteWriter w;
  PutHeader(w, n_numeric, categorical_.size(), layout.score_edges.size(), counters());
  std::byte* block = block_.get();
  const ColdCounts* cold = ColdAt(block, *shape_);
  auto put = [&](size_t k) {
    const uint32_t line = shape_->first_line[k];
    const double* pairs = BinsAt(block, line);
    PutNumeric(
        w, shape_->edges[k]->bin_count(), [pairs](size_t i) { return pairs[2 * i]; },
        [pairs](size_t i) { return pairs[2 * i + 1]; },
        CountsOf(*MomentsAt(block, line), cold[k]), cold[k].invalid_weights);
  };
  for (size_t k = 0; k < n_numeric; ++k) put(k);
  for (const CategoricalSummary& s : categorical_) w.Str(s.Serialize());
  for (size_t k = n_numeric; k < shape_->edges.size(); ++k) put(k);
  quality_.Serialize(w);
  return std::move(w).FinishWithCrc();
}

absl::StatusOr<std::string> MergeSerializedProfiles(
    const std::shared_ptr<const ProfileLayout>& layout, std::string_view stored,
    std::string_view added) {
  absl::StatusOr<Profile> merged = Profile::Deserialize(layout, stored);
  if (!merged.ok()) {
    return absl::Status(merged.status().code(),
                        absl::StrCat("stored profile: ", merged.status().message()));
  }
  absl::StatusOr<Profile> more = Profile::Deserialize(layout, added);
  if (!more.ok()) {
    return absl::Status(more.status().code(),
                        absl::StrCat("added profile: ", more.status().message()));
  }
  DW_RETURN_IF_ERROR(merged->Merge(*more));
  return merged->Serialize();
}

}  // namespace driftwatch::detectors
