#include "driftwatch/detectors/quality_profile.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/base/status_macros.h"

namespace driftwatch::detectors {
namespace {

constexpr std::string_view kMagic = "DWQP";
constexpr uint32_t kVersion = 2;
constexpr std::string_view kFormat = "quality profile";

bool ValidWeight(double w) { return std::isfinite(w) && w >= 0; }

int DelayBin(double delay_ms) {
  if (!(delay_ms >= 1.0)) return 0;  // also NaN
  const double j = std::floor(std::log2(delay_ms) * DelayHistogram::kPerOctave);
  return static_cast<int>(std::min<double>(j + 1, DelayHistogram::kBins - 1));
}

}  // namespace

int DelayHistogram::BinOf(double delay_ms) { return DelayBin(delay_ms); }

const double DelayHistogram::kRelativeErrorBound = std::exp2(0.5 / kPerOctave) - 1;

void DelayHistogram::Add(double delay_ms, double weight) {
  if (!ValidWeight(weight) || weight == 0) return;
  if (bins_.empty()) bins_.assign(kBins, 0.0);
  bins_[DelayBin(delay_ms)] += weight;
  weight_ += weight;
}

void DelayHistogram::Merge(const DelayHistogram& other) {
  if (other.bins_.empty()) return;
  if (bins_.empty()) bins_.assign(kBins, 0.0);
  for (int b = 0; b < kBins; ++b) bins_[b] += other.bins_[b];
  weight_ += other.weight_;
}

std::optional<double> DelayHistogram::Quantile(double q) const {
  if (!(weight_ > 0)) return std::nullopt;
  const double target = std::clamp(q, 0.0, 1.0) * weight_;
  double cumulative = 0;
  int b = 0;
  for (; b < kBins; ++b) {
    cumulative += bins_[b];
    if (bins_[b] > 0 && cumulative >= target) break;
  }
  if (b == kBins) {  // rounding: the last non-empty bin
    for (b = kBins - 1; b > 0 && bins_[b] == 0; --b) {
    }
  }
  if (b == 0) return 0.0;
  return std::exp2((b - 1 + 0.5) / kPerOctave);
}

void DelayHistogram::AppendTo(std::string* out) const {
  base::ByteWriter w;
  uint32_t n = 0;
  for (double v : bins_) n += v != 0;
  w.U32(n);
  for (size_t b = 0; b < bins_.size(); ++b) {
    if (bins_[b] == 0) continue;
    w.U32(static_cast<uint32_t>(b));
    w.F64(bins_[b]);
  }
  out->append(std::move(w).Finish());
}

bool DelayHistogram::ReadFrom(std::string_view* bytes) {
  base::ByteReader r(*bytes);
  uint32_t n = 0;
  if (!r.U32(&n) || n > static_cast<uint32_t>(kBins)) return false;
  bins_.clear();
  weight_ = 0;
  if (n > 0) bins_.assign(kBins, 0.0);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t b = 0;
    double v = 0;
    if (!r.U32(&b) || !r.F64(&v) || b >= static_cast<uint32_t>(kBins) || !ValidWeight(v)) {
      return false;
    }
    bins_[b] += v;
    weight_ += v;
  }
  bytes->remove_prefix(bytes->size() - r.remaining());
  return true;
}

QualityProfile::QualityProfile(QualityKind kind, int classes)
    : kind_(kind),
      classes_(kind == QualityKind::kMulticlass ? std::max(2, classes) : 2),
      binary_(kind == QualityKind::kBinary ? kQualityFineBins : 1),
      multiclass_(kind == QualityKind::kMulticlass ? classes_ : 2,
                  kind == QualityKind::kMulticlass ? kQualityFineBins : 1) {
  if (kind_ == QualityKind::kBinary) {
    pred_w_.assign(kQualityFineBins, 0.0);
    pred_s_.assign(kQualityFineBins, 0.0);
  }
}

void QualityProfile::AddPrediction(std::span<const double> scores, double weight) {
  if (!ValidWeight(weight)) return;
  predicted_weight_ += weight;
  ++predicted_;
  if (kind_ == QualityKind::kBinary && !scores.empty() && scores[0] >= 0 && scores[0] <= 1) {
    const int b = binary_.BinOf(scores[0]);
    pred_w_[b] += weight;
    pred_s_[b] += weight * scores[0];
  }
}

void QualityProfile::AddLabel(std::span<const double> scores, double label, double weight,
                              double delay_ms) {
  if (!ValidWeight(weight)) return;
  labelled_weight_ += weight;
  ++labelled_;
  delay_.Add(delay_ms, weight);
  switch (kind_) {
    case QualityKind::kBinary:
      if (!scores.empty()) binary_.Add(scores[0], label, weight);
      break;
    case QualityKind::kMulticlass:
      multiclass_.Add(scores, static_cast<int>(label), weight);
      break;
    case QualityKind::kRegression:
      if (!scores.empty()) regression_.Add(scores[0], label, weight);
      break;
    case QualityKind::kRanking:
      break;
  }
}

absl::Status QualityProfile::Merge(const QualityProfile& other) {
  if (other.kind_ != kind_ || other.classes_ != classes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("quality profiles of kind ", static_cast<int>(other.kind_), " (",
                     other.classes_, " classes) and ", static_cast<int>(kind_), " (", classes_,
                     " classes) do not merge"));
  }
  predicted_weight_ += other.predicted_weight_;
  labelled_weight_ += other.labelled_weight_;
  expired_weight_ += other.expired_weight_;
  predicted_ += other.predicted_;
  labelled_ += other.labelled_;
  expired_ += other.expired_;
  switch (kind_) {
    case QualityKind::kBinary:
      DW_RETURN_IF_ERROR(binary_.Merge(other.binary_));
      for (int b = 0; b < kQualityFineBins; ++b) {
        pred_w_[b] += other.pred_w_[b];
        pred_s_[b] += other.pred_s_[b];
      }
      break;
    case QualityKind::kMulticlass:
      DW_RETURN_IF_ERROR(multiclass_.Merge(other.multiclass_));
      break;
    case QualityKind::kRegression:
      regression_.Merge(other.regression_);
      break;
    case QualityKind::kRanking:
      ndcg_.Merge(other.ndcg_);
      break;
  }
  delay_.Merge(other.delay_);
  return absl::OkStatus();
}

std::string QualityProfile::Serialize() const {
  base::ByteWriter w;
  w.Header(kMagic, kVersion);
  w.U32(static_cast<uint32_t>(kind_));
  w.U32(static_cast<uint32_t>(classes_));
  w.U64(predicted_);
  w.U64(labelled_);
  w.U64(expired_);
  for (double d : {predicted_weight_, labelled_weight_, expired_weight_}) w.F64(d);
  switch (kind_) {
    case QualityKind::kBinary:
      w.Str(binary_.Serialize());
      {  // v2: the non-empty prediction bins only
        uint32_t nonempty = 0;
        for (size_t i = 0; i < pred_w_.size(); ++i) nonempty += pred_w_[i] != 0 || pred_s_[i] != 0;
        w.U32(nonempty);
        for (size_t i = 0; i < pred_w_.size(); ++i) {
          if (pred_w_[i] == 0 && pred_s_[i] == 0) continue;
          w.U32(static_cast<uint32_t>(i));
          w.F64(pred_w_[i]);
          w.F64(pred_s_[i]);
        }
      }
      break;
    case QualityKind::kMulticlass:
      w.Str(multiclass_.Serialize());
      break;
    case QualityKind::kRegression:
      w.Str(regression_.Serialize());
      break;
    case QualityKind::kRanking:
      w.F64(ndcg_.weighted_sum());
      w.F64(ndcg_.weight());
      w.U64(ndcg_.queries());
      break;
  }
  std::string out = std::move(w).Finish();
  delay_.AppendTo(&out);
  return out;
}

absl::StatusOr<QualityProfile> QualityProfile::Deserialize(std::string_view bytes) {
  base::ByteReader r(bytes);
  // v1 (dense prediction bins) is still read.
  uint32_t version = kVersion;
  if (absl::Status st = r.Header(kFormat, kMagic, kVersion); !st.ok()) {
    base::ByteReader v1(bytes);
    if (!v1.Header(kFormat, kMagic, uint32_t{1}).ok()) return st;
    r = v1;
    version = 1;
  }
  uint32_t kind = 0, classes = 0;
  if (!r.U32(&kind) || !r.U32(&classes)) return base::DataLoss(kFormat, "truncated");
  if (kind < 1 || kind > 4) return base::DataLoss(kFormat, absl::StrCat("unknown kind ", kind));
  if (classes < 2 || classes > 4096) {
    return base::DataLoss(kFormat, absl::StrCat(classes, " classes out of range"));
  }
  QualityProfile p(static_cast<QualityKind>(kind), static_cast<int>(classes));
  if (!r.U64(&p.predicted_) || !r.U64(&p.labelled_) || !r.U64(&p.expired_) ||
      !r.F64(&p.predicted_weight_) || !r.F64(&p.labelled_weight_) ||
      !r.F64(&p.expired_weight_)) {
    return base::DataLoss(kFormat, "truncated counts");
  }
  if (!ValidWeight(p.predicted_weight_) || !ValidWeight(p.labelled_weight_) ||
      !ValidWeight(p.expired_weight_)) {
    return base::DataLoss(kFormat, "negative or non-finite weight");
  }
  std::string blob;
  switch (p.kind_) {
    case QualityKind::kBinary: {
      if (!r.Str(&blob)) return base::DataLoss(kFormat, "truncated score summary");
      absl::StatusOr<ScoreLabelSummary> s = ScoreLabelSummary::Deserialize(blob);
      if (!s.ok()) return s.status();
      if (s->fine_bins() != kQualityFineBins) {
        return base::DataLoss(kFormat, absl::StrCat("fine_bins ", s->fine_bins()));
      }
      p.binary_ = std::move(*s);
      if (version == 1) {
        for (std::vector<double>* v : {&p.pred_w_, &p.pred_s_}) {
          for (double& d : *v) {
            if (!r.F64(&d) || !ValidWeight(d)) {
              return base::DataLoss(kFormat, "truncated or bad prediction bins");
            }
          }
        }
        break;
      }
      uint32_t nonempty = 0;
      if (!r.U32(&nonempty) || nonempty > p.pred_w_.size()) {
        return base::DataLoss(kFormat, "truncated or bad prediction bin count");
      }
      int64_t previous = -1;
      for (uint32_t k = 0; k < nonempty; ++k) {
        uint32_t i = 0;
        double w = 0, sum = 0;
        if (!r.U32(&i) || !r.F64(&w) || !r.F64(&sum)) {
          return base::DataLoss(kFormat, "truncated prediction bins");
        }
        if (i >= p.pred_w_.size() || static_cast<int64_t>(i) <= previous || !ValidWeight(w) ||
            !ValidWeight(sum)) {
          return base::DataLoss(kFormat, absl::StrCat("bad prediction bin ", i));
        }
        previous = i;
        p.pred_w_[i] = w;
        p.pred_s_[i] = sum;
      }
      break;
    }
    case QualityKind::kMulticlass: {
      if (!r.Str(&blob)) return base::DataLoss(kFormat, "truncated multiclass summary");
      absl::StatusOr<MulticlassSummary> m = MulticlassSummary::Deserialize(blob);
      if (!m.ok()) return m.status();
      if (m->classes() != p.classes_) return base::DataLoss(kFormat, "class count mismatch");
      p.multiclass_ = std::move(*m);
      break;
    }
    case QualityKind::kRegression: {
      if (!r.Str(&blob)) return base::DataLoss(kFormat, "truncated regression summary");
      absl::StatusOr<RegressionErrorSummary> e = RegressionErrorSummary::Deserialize(blob);
      if (!e.ok()) return e.status();
      p.regression_ = std::move(*e);
      break;
    }
    case QualityKind::kRanking: {
      double sum = 0, weight = 0;
      uint64_t queries = 0;
      if (!r.F64(&sum) || !r.F64(&weight) || !r.U64(&queries)) {
        return base::DataLoss(kFormat, "truncated ndcg");
      }
      if (!ValidWeight(sum) || !ValidWeight(weight)) return base::DataLoss(kFormat, "bad ndcg");
      p.ndcg_ = NdcgAccumulator(sum, weight, queries);
      break;
    }
  }
  std::string_view rest = bytes.substr(bytes.size() - r.remaining());
  if (!p.delay_.ReadFrom(&rest)) return base::DataLoss(kFormat, "bad delay histogram");
  if (!rest.empty()) return base::DataLoss(kFormat, "trailing bytes");
  return p;
}

namespace {

// Isotonic (non-decreasing) fit of the positive rate over the fine bins of
// `labelled` that hold weight: the fitted rate at each such bin's mean
// score, as (score, rate) knots in ascending score order.
std::vector<std::pair<double, double>> FitCalibration(const ScoreLabelSummary& labelled) {
  struct Block {
    double score_sum, weight, pos;
  };
  std::vector<Block> blocks;
  for (int b = 0; b < labelled.fine_bins(); ++b) {
    const double w = labelled.positives(b) + labelled.negatives(b);
    if (!(w > 0)) continue;
    blocks.push_back({labelled.score_sum(b), w, labelled.positives(b)});
    // Pool adjacent violators.
    while (blocks.size() >= 2) {
      Block& last = blocks[blocks.size() - 1];
      Block& prev = blocks[blocks.size() - 2];
      if (prev.pos / prev.weight <= last.pos / last.weight) break;
      prev.score_sum += last.score_sum;
      prev.weight += last.weight;
      prev.pos += last.pos;
      blocks.pop_back();
    }
  }
  std::vector<std::pair<double, double>> knots;
  knots.reserve(blocks.size());
  for (const Block& b : blocks) knots.emplace_back(b.score_sum / b.weight, b.pos / b.weight);
  return knots;
}

double Interpolate(const std::vector<std::pair<double, double>>& knots, double s) {
  if (s <= knots.front().first) return knots.front().second;
  if (s >= knots.back().first) return knots.back().second;
  auto hi = std::lower_bound(knots.begin(), knots.end(), s,
                             [](const std::pair<double, double>& k, double x) { return k.first < x; });
  auto lo = hi - 1;
  const double t = (s - lo->first) / (hi->first - lo->first);
  return lo->second + t * (hi->second - lo->second);
}

}  // namespace

PerformanceEstimate EstimatePerformance(const QualityProfile& current,
                                        const ScoreLabelSummary* calibration, double threshold) {
  PerformanceEstimate e;
  std::vector<std::pair<double, double>> knots;
  if (calibration != nullptr && calibration->positive_weight() + calibration->negative_weight() > 0) {
    knots = FitCalibration(*calibration);
  }
  e.calibrated = !knots.empty();
  if (current.kind() != QualityKind::kBinary) {
    e.auc = e.accuracy = std::numeric_limits<double>::quiet_NaN();
    return e;
  }
  const ScoreLabelSummary& labelled = current.binary();
  double pos_total = 0, neg_total = 0, wins = 0, correct = 0;
  for (int b = 0; b < kQualityFineBins; ++b) {
    const double lw = labelled.positives(b) + labelled.negatives(b);
    const double w = current.predicted_bin_weight(b) - lw;
    if (!(w > 1e-12 * std::max(1.0, current.predicted_bin_weight(b)))) continue;
    const double mean = std::clamp(
        (current.predicted_bin_score_sum(b) - labelled.score_sum(b)) / w, 0.0, 1.0);
    const double p = knots.empty() ? mean : std::clamp(Interpolate(knots, mean), 0.0, 1.0);
    const double pos = w * p, neg = w * (1 - p);
    wins += pos * (neg_total + 0.5 * neg);
    pos_total += pos;
    neg_total += neg;
    correct += mean >= threshold ? pos : neg;
    e.unlabelled_weight += w;
  }
  e.auc = pos_total > 0 && neg_total > 0 ? wins / (pos_total * neg_total)
                                         : std::numeric_limits<double>::quiet_NaN();
  e.accuracy = e.unlabelled_weight > 0 ? correct / e.unlabelled_weight
                                       : std::numeric_limits<double>::quiet_NaN();
  return e;
}

std::optional<double> BinnedAccuracy(const ScoreLabelSummary& labelled, double threshold) {
  double total = 0, correct = 0;
  for (int b = 0; b < labelled.fine_bins(); ++b) {
    const double w = labelled.positives(b) + labelled.negatives(b);
    if (!(w > 0)) continue;
    const double mean = labelled.score_sum(b) / w;
    correct += mean >= threshold ? labelled.positives(b) : labelled.negatives(b);
    total += w;
  }
  if (!(total > 0)) return std::nullopt;
  return correct / total;
}

}  // namespace driftwatch::detectors
