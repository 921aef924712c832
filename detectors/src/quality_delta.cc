#include "driftwatch/detectors/quality_delta.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/detectors/quality.h"

namespace driftwatch::detectors {
namespace {

// The formats (docs/formats/quality_profile.md): what QualityProfile and
// ScoreLabelSummary write.
constexpr std::string_view kProfileMagic = "DWQP";
constexpr uint32_t kProfileVersion = 2;
constexpr std::string_view kSummaryMagic = "DWSL";
constexpr uint32_t kSummaryVersion = 2;
constexpr size_t kSummaryHeaderBytes = 4 + 4 + 4 + 8;  // magic, version, fine_bins, invalid

bool ValidWeight(double w) { return std::isfinite(w) && w >= 0; }

// A binary kind's profile with only its non-empty bins, ascending.
struct SparseBinary {
  struct LabelBin {
    uint32_t bin;
    double pos, neg, score_sum, sq_err;
  };
  struct PredictionBin {
    uint32_t bin;
    double weight, score_sum;
  };
  struct DelayBin {
    uint32_t bin;
    double weight;
  };
  uint64_t predicted = 0, labelled = 0, expired = 0, invalid = 0;
  double predicted_weight = 0, labelled_weight = 0, expired_weight = 0;
  std::vector<LabelBin> labels;
  std::vector<PredictionBin> predictions;
  std::vector<DelayBin> delays;
};

// As QualityProfile::Serialize (kBinary): bins whose sums are all zero are
// left out, as the dense encoder leaves them out.
std::string Encode(const SparseBinary& p) {
  base::ByteWriter summary;
  uint32_t nonempty = 0;
  for (const auto& b : p.labels) {
    nonempty += b.pos != 0 || b.neg != 0 || b.score_sum != 0 || b.sq_err != 0;
  }
  summary.Reserve(kSummaryHeaderBytes + 4 + 36 * nonempty);
  summary.Header(kSummaryMagic, kSummaryVersion);
  summary.U32(static_cast<uint32_t>(kQualityFineBins));
  summary.U64(p.invalid);
  summary.U32(nonempty);
  for (const auto& b : p.labels) {
    if (b.pos == 0 && b.neg == 0 && b.score_sum == 0 && b.sq_err == 0) continue;
    summary.U32(b.bin);
    for (double d : {b.pos, b.neg, b.score_sum, b.sq_err}) summary.F64(d);
  }
  const std::string blob = std::move(summary).Finish();

  base::ByteWriter w;
  w.Reserve(8 + 8 + 48 + 4 + blob.size() + 4 + 20 * p.predictions.size() + 4 +
            12 * p.delays.size());
  w.Header(kProfileMagic, kProfileVersion);
  w.U32(static_cast<uint32_t>(QualityKind::kBinary));
  w.U32(2);
  w.U64(p.predicted);
  w.U64(p.labelled);
  w.U64(p.expired);
  for (double d : {p.predicted_weight, p.labelled_weight, p.expired_weight}) w.F64(d);
  w.Str(blob);
  uint32_t predictions = 0;
  for (const auto& b : p.predictions) predictions += b.weight != 0 || b.score_sum != 0;
  w.U32(predictions);
  for (const auto& b : p.predictions) {
    if (b.weight == 0 && b.score_sum == 0) continue;
    w.U32(b.bin);
    w.F64(b.weight);
    w.F64(b.score_sum);
  }
  uint32_t delays = 0;
  for (const auto& b : p.delays) delays += b.weight != 0;
  w.U32(delays);
  for (const auto& b : p.delays) {
    if (b.weight == 0) continue;
    w.U32(b.bin);
    w.F64(b.weight);
  }
  return std::move(w).Finish();
}

// Reads a binary kind's DWQP v2 encoding. False for anything else — another
// kind, another version, or bytes QualityProfile::Deserialize would reject
// (the caller then takes the dense path, which reads the older versions and
// names what is wrong). Never accepts what Deserialize rejects.
bool Decode(std::string_view bytes, SparseBinary* p) {
  base::ByteReader r(bytes);
  if (!r.Header("quality profile", kProfileMagic, kProfileVersion).ok()) return false;
  uint32_t kind = 0, classes = 0;
  if (!r.U32(&kind) || !r.U32(&classes)) return false;
  // Deserialize reads a binary profile of any class count as 2 classes.
  if (kind != static_cast<uint32_t>(QualityKind::kBinary) || classes != 2) return false;
  if (!r.U64(&p->predicted) || !r.U64(&p->labelled) || !r.U64(&p->expired) ||
      !r.F64(&p->predicted_weight) || !r.F64(&p->labelled_weight) || !r.F64(&p->expired_weight)) {
    return false;
  }
  if (!ValidWeight(p->predicted_weight) || !ValidWeight(p->labelled_weight) ||
      !ValidWeight(p->expired_weight)) {
    return false;
  }
  std::string_view blob;
  {
    uint32_t size = 0;
    if (!r.U32(&size) || size > r.remaining()) return false;
    blob = bytes.substr(bytes.size() - r.remaining(), size);
    r = base::ByteReader(bytes.substr(bytes.size() - r.remaining() + size));
  }
  {
    base::ByteReader s(blob);
    uint32_t fine_bins = 0, nonempty = 0;
    if (!s.Header("score-label summary", kSummaryMagic, kSummaryVersion).ok()) return false;
    if (!s.U32(&fine_bins) || !s.U64(&p->invalid) || !s.U32(&nonempty)) return false;
    if (fine_bins != static_cast<uint32_t>(kQualityFineBins) || nonempty > fine_bins) return false;
    if (blob.size() != kSummaryHeaderBytes + 4 + 36 * static_cast<size_t>(nonempty)) return false;
    p->labels.resize(nonempty);
    int64_t previous = -1;
    for (SparseBinary::LabelBin& b : p->labels) {
      if (!s.U32(&b.bin) || b.bin >= fine_bins || static_cast<int64_t>(b.bin) <= previous) {
        return false;
      }
      previous = b.bin;
      for (double* d : {&b.pos, &b.neg, &b.score_sum, &b.sq_err}) {
        if (!s.F64(d) || !ValidWeight(*d)) return false;
      }
    }
  }
  uint32_t predictions = 0;
  if (!r.U32(&predictions) || predictions > static_cast<uint32_t>(kQualityFineBins)) return false;
  p->predictions.resize(predictions);
  int64_t previous = -1;
  for (SparseBinary::PredictionBin& b : p->predictions) {
    if (!r.U32(&b.bin) || !r.F64(&b.weight) || !r.F64(&b.score_sum)) return false;
    if (b.bin >= static_cast<uint32_t>(kQualityFineBins) ||
        static_cast<int64_t>(b.bin) <= previous || !ValidWeight(b.weight) ||
        !ValidWeight(b.score_sum)) {
      return false;
    }
    previous = b.bin;
  }
  uint32_t delays = 0;
  if (!r.U32(&delays) || delays > static_cast<uint32_t>(DelayHistogram::kBins)) return false;
  p->delays.resize(delays);
  previous = -1;
  for (SparseBinary::DelayBin& b : p->delays) {
    // Deserialize also reads repeated or unordered delay bins (summing
    // them); the dense path handles those.
    if (!r.U32(&b.bin) || !r.F64(&b.weight)) return false;
    if (b.bin >= static_cast<uint32_t>(DelayHistogram::kBins) ||
        static_cast<int64_t>(b.bin) <= previous || !ValidWeight(b.weight)) {
      return false;
    }
    previous = b.bin;
  }
  return r.remaining() == 0;
}

// Merge-joins two ascending bin lists; `add(a, b, bin)` sums a bin's parts,
// with a zero bin for the side that lacks it (as the dense merge adds
// stored + 0 or 0 + delta).
template <typename Bin, typename Add>
std::vector<Bin> MergeBins(const std::vector<Bin>& a, const std::vector<Bin>& b, Add add) {
  std::vector<Bin> out;
  out.reserve(a.size() + b.size());
  static const Bin kZero{};
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].bin < b[j].bin)) {
      out.push_back(add(a[i], kZero, a[i].bin));
      ++i;
    } else if (i == a.size() || b[j].bin < a[i].bin) {
      out.push_back(add(kZero, b[j], b[j].bin));
      ++j;
    } else {
      out.push_back(add(a[i], b[j], a[i].bin));
      ++i;
      ++j;
    }
  }
  return out;
}

}  // namespace

struct QualityDelta::DenseBins {
  std::vector<SparseBinary::PredictionBin> predictions =
      std::vector<SparseBinary::PredictionBin>(kQualityFineBins);
  std::vector<SparseBinary::LabelBin> labels =
      std::vector<SparseBinary::LabelBin>(kQualityFineBins);
  std::vector<double> delays = std::vector<double>(DelayHistogram::kBins);
};

QualityDelta::QualityDelta(QualityKind kind, int classes) : kind_(kind) {
  if (kind_ != QualityKind::kBinary) dense_.emplace(kind, classes);
}
QualityDelta::~QualityDelta() = default;
QualityDelta::QualityDelta(QualityDelta&&) noexcept = default;
QualityDelta& QualityDelta::operator=(QualityDelta&&) noexcept = default;

void QualityDelta::AddToDense(const Prediction& x) {
  SparseBinary::PredictionBin& b = dense_bins_->predictions[x.bin];
  b.weight += x.weight;
  b.score_sum += x.weight * x.score;
}

void QualityDelta::AddToDense(const Label& x) {
  if (x.bin != kNoBin) {
    SparseBinary::LabelBin& b = dense_bins_->labels[x.bin];
    (x.label == 1.0 ? b.pos : b.neg) += x.weight;
    b.score_sum += x.weight * x.score;
    const double e = x.score - x.label;
    b.sq_err += x.weight * e * e;
  }
  if (x.weight != 0) dense_bins_->delays[x.delay_bin] += x.weight;
}

void QualityDelta::MaybeGoDense() {
  if (dense_bins_ != nullptr || predictions_.size() + labels_.size() < kDenseAfter) return;
  dense_bins_ = std::make_unique<DenseBins>();
  // Each bin's adds in their order (predictions and labels touch separate
  // sums, so the two logs replay one after the other).
  for (const Prediction& x : predictions_) AddToDense(x);
  for (const Label& x : labels_) AddToDense(x);
  predictions_ = {};
  labels_ = {};
}

void QualityDelta::AddPrediction(std::span<const double> scores, double weight) {
  ++adds_;
  if (dense_) return dense_->AddPrediction(scores, weight);
  if (!ValidWeight(weight)) return;
  predicted_weight_ += weight;
  ++predicted_;
  if (!scores.empty() && scores[0] >= 0 && scores[0] <= 1) {
    const Prediction x{static_cast<uint32_t>(FineBinOf(scores[0], kQualityFineBins)), weight,
                       scores[0]};
    if (dense_bins_ != nullptr) return AddToDense(x);
    predictions_.push_back(x);
    MaybeGoDense();
  }
}

void QualityDelta::AddLabel(std::span<const double> scores, double label, double weight,
                            double delay_ms) {
  ++adds_;
  if (dense_) return dense_->AddLabel(scores, label, weight, delay_ms);
  if (!ValidWeight(weight)) return;
  labelled_weight_ += weight;
  ++labelled_;
  uint32_t bin = kNoBin;
  if (!scores.empty()) {
    // ScoreLabelSummary::Add's rule (the weight is valid here).
    const double s = scores[0];
    if (s >= 0.0 && s <= 1.0 && (label == 0.0 || label == 1.0)) {
      bin = static_cast<uint32_t>(FineBinOf(s, kQualityFineBins));
    } else {
      ++invalid_;
    }
  }
  const Label x{bin, static_cast<uint32_t>(DelayHistogram::BinOf(delay_ms)), weight,
                scores.empty() ? 0.0 : scores[0], label};
  if (dense_bins_ != nullptr) return AddToDense(x);
  labels_.push_back(x);
  MaybeGoDense();
}

void QualityDelta::AddQuery(double ndcg, double weight) {
  ++adds_;
  if (dense_) dense_->AddQuery(ndcg, weight);
}

void QualityDelta::AddExpired(double weight) {
  ++adds_;
  if (dense_) return dense_->AddExpired(weight);
  expired_weight_ += weight;
  ++expired_;
}

std::string QualityDelta::Serialize() const {
  if (dense_) return dense_->Serialize();
  SparseBinary p;
  p.predicted = predicted_;
  p.labelled = labelled_;
  p.expired = expired_;
  p.invalid = invalid_;
  p.predicted_weight = predicted_weight_;
  p.labelled_weight = labelled_weight_;
  p.expired_weight = expired_weight_;
  if (dense_bins_ != nullptr) {
    for (uint32_t b = 0; b < static_cast<uint32_t>(kQualityFineBins); ++b) {
      const SparseBinary::PredictionBin& x = dense_bins_->predictions[b];
      if (x.weight != 0 || x.score_sum != 0) p.predictions.push_back({b, x.weight, x.score_sum});
      const SparseBinary::LabelBin& y = dense_bins_->labels[b];
      if (y.pos != 0 || y.neg != 0 || y.score_sum != 0 || y.sq_err != 0) {
        p.labels.push_back({b, y.pos, y.neg, y.score_sum, y.sq_err});
      }
    }
    for (uint32_t b = 0; b < static_cast<uint32_t>(DelayHistogram::kBins); ++b) {
      if (dense_bins_->delays[b] != 0) p.delays.push_back({b, dense_bins_->delays[b]});
    }
    return Encode(p);
  }
  // Each bin's sums in the order of the adds, as the dense bins take them,
  // in dense scratch bins that are zeroed again as they are read out.
  struct Scratch {
    std::vector<SparseBinary::LabelBin> labels =
        std::vector<SparseBinary::LabelBin>(kQualityFineBins);
    std::vector<SparseBinary::PredictionBin> predictions =
        std::vector<SparseBinary::PredictionBin>(kQualityFineBins);
    std::vector<SparseBinary::DelayBin> delays =
        std::vector<SparseBinary::DelayBin>(DelayHistogram::kBins);
    std::vector<uint8_t> touched = std::vector<uint8_t>(kQualityFineBins);
    std::vector<uint32_t> bins;
  };
  thread_local Scratch scratch;
  std::vector<uint32_t>& bins = scratch.bins;
  std::vector<uint8_t>& touched = scratch.touched;
  // Calls fill(bin) for each touched bin, ascending, and clears the marks.
  auto drain = [&](auto&& fill) {
    std::sort(bins.begin(), bins.end());
    for (uint32_t b : bins) {
      fill(b);
      touched[b] = 0;
    }
    bins.clear();
  };
  for (const Prediction& x : predictions_) {
    SparseBinary::PredictionBin& b = scratch.predictions[x.bin];
    if (!touched[x.bin]) {
      touched[x.bin] = 1;
      bins.push_back(x.bin);
      b = {x.bin, 0.0, 0.0};
    }
    b.weight += x.weight;
    b.score_sum += x.weight * x.score;
  }
  p.predictions.reserve(bins.size());
  drain([&](uint32_t b) { p.predictions.push_back(scratch.predictions[b]); });
  for (const Label& x : labels_) {
    if (x.bin == kNoBin) continue;
    SparseBinary::LabelBin& b = scratch.labels[x.bin];
    if (!touched[x.bin]) {
      touched[x.bin] = 1;
      bins.push_back(x.bin);
      b = {x.bin, 0.0, 0.0, 0.0, 0.0};
    }
    (x.label == 1.0 ? b.pos : b.neg) += x.weight;
    b.score_sum += x.weight * x.score;
    const double e = x.score - x.label;
    b.sq_err += x.weight * e * e;
  }
  p.labels.reserve(bins.size());
  drain([&](uint32_t b) { p.labels.push_back(scratch.labels[b]); });
  // Delay bins: their own marks (there are more of them than fine bins).
  std::vector<uint32_t> delay_bins;
  for (const Label& x : labels_) {
    if (x.weight == 0) continue;  // DelayHistogram::Add skips weight 0
    SparseBinary::DelayBin& b = scratch.delays[x.delay_bin];
    if (b.bin != x.delay_bin + 1) {  // +1: bin 0 of a zeroed scratch is unmarked
      b = {x.delay_bin + 1, 0.0};
      delay_bins.push_back(x.delay_bin);
    }
    b.weight += x.weight;
  }
  std::sort(delay_bins.begin(), delay_bins.end());
  p.delays.reserve(delay_bins.size());
  for (uint32_t d : delay_bins) {
    p.delays.push_back({d, scratch.delays[d].weight});
    scratch.delays[d] = {0, 0.0};
  }
  return Encode(p);
}

namespace internal {

struct QualityEncodingAccess {
  // Adds a decoded binary profile into `p` as QualityProfile::Merge does.
  static void Add(const SparseBinary& x, QualityProfile& p) {
    p.predicted_weight_ += x.predicted_weight;
    p.labelled_weight_ += x.labelled_weight;
    p.expired_weight_ += x.expired_weight;
    p.predicted_ += x.predicted;
    p.labelled_ += x.labelled;
    p.expired_ += x.expired;
    ScoreLabelSummary& s = p.binary_;
    for (const SparseBinary::LabelBin& b : x.labels) {
      s.pos_[b.bin] += b.pos;
      s.neg_[b.bin] += b.neg;
      s.score_sum_[b.bin] += b.score_sum;
      s.sq_err_[b.bin] += b.sq_err;
    }
    s.invalid_ += x.invalid;
    for (const SparseBinary::PredictionBin& b : x.predictions) {
      p.pred_w_[b.bin] += b.weight;
      p.pred_s_[b.bin] += b.score_sum;
    }
    // DelayHistogram::Merge adds the other's total, which ReadFrom summed
    // in the encoding's order.
    DelayHistogram& d = p.delay_;
    if (x.delays.empty()) return;
    if (d.bins_.empty()) d.bins_.assign(DelayHistogram::kBins, 0.0);
    double total = 0;
    for (const SparseBinary::DelayBin& b : x.delays) {
      d.bins_[b.bin] += 0.0 + b.weight;  // ReadFrom's 0 + v
      total += b.weight;
    }
    d.weight_ += total;
  }
};

}  // namespace internal

absl::Status MergeEncodingInto(std::string_view bytes, QualityProfile* into) {
  SparseBinary x;
  if (into->kind() == QualityKind::kBinary && into->classes() == 2 && Decode(bytes, &x)) {
    internal::QualityEncodingAccess::Add(x, *into);
    return absl::OkStatus();
  }
  absl::StatusOr<QualityProfile> other = QualityProfile::Deserialize(bytes);
  if (!other.ok()) return other.status();
  return into->Merge(*other);
}

absl::StatusOr<std::string> MergeQualityEncodings(std::string_view stored, std::string_view delta) {
  SparseBinary a, b;
  if (Decode(stored, &a) && Decode(delta, &b)) {
    SparseBinary m;
    m.predicted = a.predicted + b.predicted;
    m.labelled = a.labelled + b.labelled;
    m.expired = a.expired + b.expired;
    m.invalid = a.invalid + b.invalid;
    m.predicted_weight = a.predicted_weight + b.predicted_weight;
    m.labelled_weight = a.labelled_weight + b.labelled_weight;
    m.expired_weight = a.expired_weight + b.expired_weight;
    using L = SparseBinary::LabelBin;
    using P = SparseBinary::PredictionBin;
    using D = SparseBinary::DelayBin;
    m.labels = MergeBins(a.labels, b.labels, [](const L& x, const L& y, uint32_t bin) {
      return L{bin, x.pos + y.pos, x.neg + y.neg, x.score_sum + y.score_sum, x.sq_err + y.sq_err};
    });
    m.predictions =
        MergeBins(a.predictions, b.predictions, [](const P& x, const P& y, uint32_t bin) {
          return P{bin, x.weight + y.weight, x.score_sum + y.score_sum};
        });
    m.delays = MergeBins(a.delays, b.delays, [](const D& x, const D& y, uint32_t bin) {
      return D{bin, x.weight + y.weight};
    });
    return Encode(m);
  }
  absl::StatusOr<QualityProfile> s = QualityProfile::Deserialize(stored);
  if (!s.ok()) {
    return absl::Status(s.status().code(), absl::StrCat("stored row: ", s.status().message()));
  }
  absl::StatusOr<QualityProfile> d = QualityProfile::Deserialize(delta);
  if (!d.ok()) {
    return absl::Status(d.status().code(), absl::StrCat("delta: ", d.status().message()));
  }
  if (absl::Status st = s->Merge(*d); !st.ok()) return st;
  return s->Serialize();
}

}  // namespace driftwatch::detectors
