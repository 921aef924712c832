#include "driftwatch/detectors/quality.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"
#include "driftwatch/base/status_macros.h"

namespace driftwatch::detectors {
namespace {

// Upper limit for fine_bins, so a corrupt header cannot make us allocate
// gigabytes.
constexpr int kMaxFineBins = 1 << 20;

// Index of the equal-width bin of `score` in [0, 1]: the number of inner
// edges strictly below it, so a bin holds (lower, upper] and 0 lands in bin
// 0. Edges are k * (1.0 / bins), bit-identical to
// numpy.linspace(0, 1, bins + 1), so a value on an edge (0.2, 0.3, ...) lands
// exactly where sklearn's calibration_curve puts it.
int UniformBin(double score, int bins, double step) {
  int b = static_cast<int>(std::ceil(score * bins)) - 1;
  b = std::clamp(b, 0, bins - 1);
  // s * bins may round across an edge; at most one step either way.
  while (b > 0 && !(static_cast<double>(b) * step < score)) --b;
  while (b < bins - 1 && !(score <= static_cast<double>(b + 1) * step)) ++b;
  return b;
}

bool IsBinaryLabel(double label) { return label == 0.0 || label == 1.0; }
bool IsProbability(double score) { return score >= 0.0 && score <= 1.0; }  // false for NaN
bool IsValidWeight(double w) { return std::isfinite(w) && w >= 0.0; }

double WeightAt(std::span<const double> weights, size_t i) {
  return weights.empty() ? 1.0 : weights[i];
}

// Shared checks of (scores, labels, weights) for the binary metrics.
absl::Status CheckBinaryInput(std::span<const double> scores, std::span<const double> labels,
                              std::span<const double> weights, bool scores_are_probabilities) {
  if (scores.empty()) return absl::InvalidArgumentError("scores is empty");
  if (labels.size() != scores.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels has ", labels.size(), " rows but scores has ", scores.size()));
  }
  if (!weights.empty() && weights.size() != scores.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights has ", weights.size(), " rows but scores has ", scores.size()));
  }
  double total = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (scores_are_probabilities ? !IsProbability(scores[i]) : !std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("scores[", i, "] = ", scores[i],
                       scores_are_probabilities ? " is outside [0, 1]" : " is not finite"));
    }
    if (!IsBinaryLabel(labels[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", i, "] = ", labels[i], " is not 0 or 1"));
    }
    const double w = WeightAt(weights, i);
    if (!IsValidWeight(w)) {
      return absl::InvalidArgumentError(
          absl::StrCat("weights[", i, "] = ", w, " is negative or not finite"));
    }
    total += w;
  }
  if (!(total > 0)) return absl::InvalidArgumentError("weights sum to 0");
  return absl::OkStatus();
}

// Per-bin sums from which every calibration number follows; shared by the
// exact path and the summary so both compute ECE/MCE the same way.
struct CalibrationSums {
  std::vector<double> weight, label_sum, score_sum;
  double sq_err = 0;
  explicit CalibrationSums(int bins) : weight(bins), label_sum(bins), score_sum(bins) {}
};

CalibrationResult FinishCalibration(const CalibrationSums& sums) {
  CalibrationResult r;
  for (double w : sums.weight) r.n += w;
  for (size_t b = 0; b < sums.weight.size(); ++b) {
    const double w = sums.weight[b];
    if (!(w > 0)) continue;  // zero-weight bins have no mean
    ReliabilityBin rb;
    rb.bin = static_cast<int>(b);
    rb.count = w;
    rb.mean_label = sums.label_sum[b] / w;
    rb.mean_score = sums.score_sum[b] / w;
    const double gap = std::abs(rb.mean_label - rb.mean_score);
    r.ece += (w / r.n) * gap;
    r.mce = std::max(r.mce, gap);
    r.reliability.push_back(rb);
  }
  r.brier = sums.sq_err / r.n;
  return r;
}

constexpr std::string_view kMagic = "DWSL";
constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderBytes = 4 + 4 + 4 + 8;  // magic, version, fine_bins, invalid
constexpr std::string_view kFormatName = "score-label summary";

}  // namespace

absl::StatusOr<CalibrationResult> Calibration(std::span<const double> scores,
                                              std::span<const double> labels,
                                              std::span<const double> weights, int bins) {
  if (bins < 1) return absl::InvalidArgumentError(absl::StrCat("bins = ", bins, " is < 1"));
  if (absl::Status s = CheckBinaryInput(scores, labels, weights, true); !s.ok()) return s;
  CalibrationSums sums(bins);
  const double step = 1.0 / bins;
  for (size_t i = 0; i < scores.size(); ++i) {
    const double w = WeightAt(weights, i);
    const int b = UniformBin(scores[i], bins, step);
    sums.weight[b] += w;
    sums.label_sum[b] += w * labels[i];
    sums.score_sum[b] += w * scores[i];
    const double e = scores[i] - labels[i];
    sums.sq_err += w * e * e;
  }
  return FinishCalibration(sums);
}

absl::StatusOr<double> RocAuc(std::span<const double> scores, std::span<const double> labels,
                              std::span<const double> weights) {
  if (absl::Status s = CheckBinaryInput(scores, labels, weights, false); !s.ok()) return s;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney over tie groups in ascending score: a positive beats every
  // negative below its group and half of those inside it.
  double pos_total = 0, neg_total = 0, wins = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    double pos = 0, neg = 0;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j) {
      const double w = WeightAt(weights, order[j]);
      (labels[order[j]] == 1.0 ? pos : neg) += w;
    }
    wins += pos * (neg_total + 0.5 * neg);
    pos_total += pos;
    neg_total += neg;
    i = j;
  }
  if (!(pos_total > 0) || !(neg_total > 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("ROC AUC needs both classes; positive weight = ", pos_total,
                     ", negative weight = ", neg_total));
  }
  return wins / (pos_total * neg_total);
}

double QueryNdcg(std::span<const double> scores, std::span<const double> relevance, int k) {
  const size_t n = std::min(scores.size(), relevance.size());
  if (n == 0) return 0;
  const size_t cutoff = k <= 0 ? n : std::min<size_t>(n, static_cast<size_t>(k));
  // discount_cumsum[r] = sum of 1/log2(i + 2) for 0-based ranks i <= r, with
  // ranks at or past the cutoff discounted to 0 (as sklearn's dcg@k).
  std::vector<double> discount_cumsum(n);
  double acc = 0;
  for (size_t r = 0; r < n; ++r) {
    if (r < cutoff) acc += 1.0 / std::log2(static_cast<double>(r) + 2.0);
    discount_cumsum[r] = acc;
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  // A tie group gets its mean gain times the sum of discounts of the ranks it
  // spans (McSherry & Najork), i.e. the average DCG over its orderings.
  double dcg = 0;
  for (size_t i = 0; i < n && i < cutoff;) {
    size_t j = i;
    double gain = 0;
    for (; j < n && scores[order[j]] == scores[order[i]]; ++j) gain += relevance[order[j]];
    const double discounts = discount_cumsum[j - 1] - (i == 0 ? 0.0 : discount_cumsum[i - 1]);
    dcg += gain / static_cast<double>(j - i) * discounts;
    i = j;
  }
  std::vector<double> ideal(relevance.begin(), relevance.begin() + static_cast<long>(n));
  std::sort(ideal.begin(), ideal.end(), std::greater<>());
  double idcg = 0;
  for (size_t r = 0; r < cutoff; ++r) {
    idcg += ideal[r] * (discount_cumsum[r] - (r == 0 ? 0.0 : discount_cumsum[r - 1]));
  }
  return idcg == 0 ? 0.0 : dcg / idcg;
}

absl::StatusOr<double> NdcgAtK(std::span<const std::string> query_ids,
                               std::span<const double> scores, std::span<const double> relevance,
                               std::span<const double> weights, int k) {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k = ", k, " is < 1"));
  if (query_ids.empty()) return absl::InvalidArgumentError("query_ids is empty");
  const size_t n = query_ids.size();
  if (scores.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("scores has ", scores.size(), " rows but query_ids has ", n));
  }
  if (relevance.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("relevance has ", relevance.size(), " rows but query_ids has ", n));
  }
  if (!weights.empty() && weights.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights has ", weights.size(), " rows but query_ids has ", n));
  }
  struct Query {
    double weight;
    std::vector<double> scores, relevance;
  };
  std::vector<Query> queries;  // in order of first appearance
  absl::flat_hash_map<std::string_view, size_t> index;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("scores[", i, "] = ", scores[i], " is not finite"));
    }
    if (!std::isfinite(relevance[i]) || relevance[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("relevance[", i, "] = ", relevance[i], " is negative or not finite"));
    }
    const double w = WeightAt(weights, i);
    if (!IsValidWeight(w)) {
      return absl::InvalidArgumentError(
          absl::StrCat("weights[", i, "] = ", w, " is negative or not finite"));
    }
    auto [it, inserted] = index.try_emplace(query_ids[i], queries.size());
    if (inserted) queries.push_back(Query{w, {}, {}});
    queries[it->second].scores.push_back(scores[i]);
    queries[it->second].relevance.push_back(relevance[i]);
  }
  double sum = 0, total = 0;
  for (const Query& q : queries) {
    sum += q.weight * QueryNdcg(q.scores, q.relevance, k);
    total += q.weight;
  }
  if (!(total > 0)) return absl::InvalidArgumentError("query weights sum to 0");
  return sum / total;
}

ScoreLabelSummary::ScoreLabelSummary(int fine_bins)
    : fine_bins_(std::clamp(fine_bins, 1, kMaxFineBins)),
      pos_(fine_bins_),
      neg_(fine_bins_),
      score_sum_(fine_bins_),
      sq_err_(fine_bins_) {}

void ScoreLabelSummary::Add(double score, double label, double weight) {
  if (!IsProbability(score) || !IsBinaryLabel(label) || !IsValidWeight(weight)) {
    ++invalid_;
    return;
  }
  const int b = UniformBin(score, fine_bins_, 1.0 / fine_bins_);
  (label == 1.0 ? pos_ : neg_)[b] += weight;
  score_sum_[b] += weight * score;
  const double e = score - label;
  sq_err_[b] += weight * e * e;
}

int FineBinOf(double score, int fine_bins) {
  return UniformBin(score, fine_bins, 1.0 / fine_bins);
}

int ScoreLabelSummary::BinOf(double score) const {
  return UniformBin(score, fine_bins_, 1.0 / fine_bins_);
}

absl::Status ScoreLabelSummary::Merge(const ScoreLabelSummary& other) {
  if (other.fine_bins_ != fine_bins_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot merge a summary of fine_bins = ", other.fine_bins_, " into one of ", fine_bins_));
  }
  for (int b = 0; b < fine_bins_; ++b) {
    pos_[b] += other.pos_[b];
    neg_[b] += other.neg_[b];
    score_sum_[b] += other.score_sum_[b];
    sq_err_[b] += other.sq_err_[b];
  }
  invalid_ += other.invalid_;
  return absl::OkStatus();
}

double ScoreLabelSummary::positive_weight() const {
  return std::accumulate(pos_.begin(), pos_.end(), 0.0);
}
double ScoreLabelSummary::negative_weight() const {
  return std::accumulate(neg_.begin(), neg_.end(), 0.0);
}

absl::StatusOr<CalibrationResult> ScoreLabelSummary::Calibration(int bins) const {
  if (bins < 1 || fine_bins_ % bins != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bins = ", bins, " does not divide fine_bins = ", fine_bins_));
  }
  if (!(positive_weight() + negative_weight() > 0)) {
    return absl::FailedPreconditionError("calibration of an empty summary");
  }
  const int ratio = fine_bins_ / bins;
  CalibrationSums sums(bins);
  for (int f = 0; f < fine_bins_; ++f) {
    const int b = f / ratio;
    sums.weight[b] += pos_[f] + neg_[f];
    sums.label_sum[b] += pos_[f];
    sums.score_sum[b] += score_sum_[f];
    sums.sq_err += sq_err_[f];
  }
  return FinishCalibration(sums);
}

absl::StatusOr<ScoreLabelSummary::Auc> ScoreLabelSummary::RocAuc() const {
  double pos_total = 0, neg_total = 0, wins = 0, tied_pairs = 0;
  for (int b = 0; b < fine_bins_; ++b) {
    wins += pos_[b] * (neg_total + 0.5 * neg_[b]);
    tied_pairs += pos_[b] * neg_[b];
    pos_total += pos_[b];
    neg_total += neg_[b];
  }
  if (!(pos_total > 0) || !(neg_total > 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("ROC AUC needs both classes; positive weight = ", pos_total,
                     ", negative weight = ", neg_total));
  }
  const double pn = pos_total * neg_total;
  return Auc{wins / pn, tied_pairs / (2 * pn)};
}

std::string ScoreLabelSummary::Serialize() const {
  // v2: sparse, the non-empty bins only (a window's labels fill few of
  // the fine bins, and every label commit rewrites its rows).
  uint32_t nonempty = 0;
  for (size_t i = 0; i < pos_.size(); ++i) {
    nonempty += pos_[i] != 0 || neg_[i] != 0 || score_sum_[i] != 0 || sq_err_[i] != 0;
  }
  base::ByteWriter w;
  w.Header(kMagic, kVersion);
  w.U32(static_cast<uint32_t>(fine_bins_));
  w.U64(invalid_);
  w.U32(nonempty);
  for (size_t i = 0; i < pos_.size(); ++i) {
    if (pos_[i] == 0 && neg_[i] == 0 && score_sum_[i] == 0 && sq_err_[i] == 0) continue;
    w.U32(static_cast<uint32_t>(i));
    for (double d : {pos_[i], neg_[i], score_sum_[i], sq_err_[i]}) w.F64(d);
  }
  return std::move(w).Finish();
}

absl::StatusOr<ScoreLabelSummary> ScoreLabelSummary::Deserialize(std::string_view bytes) {
  base::ByteReader r(bytes);
  // v1 (dense: every bin's four sums, bin-major by sum) is still read.
  uint32_t version = kVersion;
  if (absl::Status st = r.Header(kFormatName, kMagic, kVersion); !st.ok()) {
    base::ByteReader v1(bytes);
    if (!v1.Header(kFormatName, kMagic, uint32_t{1}).ok()) return st;
    r = v1;
    version = 1;
  }
  uint32_t fine_bins;
  uint64_t invalid;
  if (!r.U32(&fine_bins) || !r.U64(&invalid)) {
    return base::DataLoss(kFormatName, absl::StrCat("truncated: ", bytes.size(), " bytes"));
  }
  if (fine_bins < 1 || fine_bins > static_cast<uint32_t>(kMaxFineBins)) {
    return base::DataLoss(kFormatName,
                              absl::StrCat("fine_bins = ", fine_bins, " out of range"));
  }
  ScoreLabelSummary s(static_cast<int>(fine_bins));
  s.invalid_ = invalid;
  if (version == 1) {
    const size_t expected = kHeaderBytes + 4 * 8 * static_cast<size_t>(fine_bins);
    if (bytes.size() != expected) {
      return base::DataLoss(kFormatName,
                                absl::StrCat(bytes.size(), " bytes, expected ", expected));
    }
    for (std::vector<double>* v : {&s.pos_, &s.neg_, &s.score_sum_, &s.sq_err_}) {
      for (double& d : *v) {
        // The length is checked above, so only the value can be wrong.
        if (!r.F64(&d) || !IsValidWeight(d)) {
          return base::DataLoss(kFormatName, "negative or non-finite bin value");
        }
      }
    }
    return s;
  }
  uint32_t nonempty = 0;
  if (!r.U32(&nonempty)) return base::DataLoss(kFormatName, "truncated bin count");
  if (nonempty > fine_bins) {
    return base::DataLoss(kFormatName,
                              absl::StrCat(nonempty, " bins of ", fine_bins, " claimed"));
  }
  const size_t expected = kHeaderBytes + 4 + 36 * static_cast<size_t>(nonempty);
  if (bytes.size() != expected) {
    return base::DataLoss(kFormatName,
                              absl::StrCat(bytes.size(), " bytes, expected ", expected));
  }
  int64_t previous = -1;
  for (uint32_t k = 0; k < nonempty; ++k) {
    uint32_t i = 0;
    (void)r.U32(&i);  // the length is checked above
    if (i >= fine_bins || static_cast<int64_t>(i) <= previous) {
      return base::DataLoss(kFormatName, absl::StrCat("bin index ", i, " out of order or range"));
    }
    previous = i;
    for (std::vector<double>* v : {&s.pos_, &s.neg_, &s.score_sum_, &s.sq_err_}) {
      double& d = (*v)[i];
      if (!r.F64(&d) || !IsValidWeight(d)) {
        return base::DataLoss(kFormatName, "negative or non-finite bin value");
      }
    }
  }
  return s;
}

void NdcgAccumulator::AddQuery(double ndcg, double weight) {
  weighted_sum_ += weight * ndcg;
  weight_ += weight;
  ++queries_;
}

void NdcgAccumulator::Merge(const NdcgAccumulator& other) {
  weighted_sum_ += other.weighted_sum_;
  weight_ += other.weight_;
  queries_ += other.queries_;
}

double NdcgAccumulator::mean() const { return weight_ > 0 ? weighted_sum_ / weight_ : 0.0; }

}  // namespace driftwatch::detectors

namespace driftwatch::detectors {
namespace {

constexpr std::string_view kRegressionMagic = "DWRE";
constexpr uint32_t kRegressionVersion = 1;
constexpr std::string_view kRegressionFormat = "regression error summary";
constexpr int kMaxClasses = 4096;
// sklearn 1.2 log_loss(eps="auto") clips to the float64 machine epsilon.
constexpr double kLogLossEps = 0x1.0p-52;

}  // namespace

void RegressionErrorSummary::Add(double prediction, double target, double weight) {
  if (!std::isfinite(prediction) || !std::isfinite(target) || !IsValidWeight(weight)) {
    ++invalid_;
    return;
  }
  const double e = prediction - target;
  weight_ += weight;
  abs_sum_ += weight * std::abs(e);
  sq_sum_ += weight * e * e;
  err_sum_ += weight * e;
  ++count_;
}

void RegressionErrorSummary::Merge(const RegressionErrorSummary& other) {
  weight_ += other.weight_;
  abs_sum_ += other.abs_sum_;
  sq_sum_ += other.sq_sum_;
  err_sum_ += other.err_sum_;
  count_ += other.count_;
  invalid_ += other.invalid_;
}

absl::StatusOr<RegressionErrorSummary::Errors> RegressionErrorSummary::Compute() const {
  if (!(weight_ > 0)) {
    return absl::FailedPreconditionError("regression errors: no labelled weight");
  }
  return Errors{abs_sum_ / weight_, std::sqrt(sq_sum_ / weight_), err_sum_ / weight_};
}

std::string RegressionErrorSummary::Serialize() const {
  base::ByteWriter w;
  w.Header(kRegressionMagic, kRegressionVersion);
  w.U64(count_);
  w.U64(invalid_);
  for (double d : {weight_, abs_sum_, sq_sum_, err_sum_}) w.F64(d);
  return std::move(w).Finish();
}

absl::StatusOr<RegressionErrorSummary> RegressionErrorSummary::Deserialize(
    std::string_view bytes) {
  base::ByteReader r(bytes);
  if (absl::Status st = r.Header(kRegressionFormat, kRegressionMagic, kRegressionVersion);
      !st.ok()) {
    return st;
  }
  RegressionErrorSummary s;
  if (!r.U64(&s.count_) || !r.U64(&s.invalid_) || !r.F64(&s.weight_) || !r.F64(&s.abs_sum_) ||
      !r.F64(&s.sq_sum_) || !r.F64(&s.err_sum_) || r.remaining() != 0) {
    return base::DataLoss(kRegressionFormat, absl::StrCat(bytes.size(), " bytes, expected 56"));
  }
  if (!IsValidWeight(s.weight_) || !IsValidWeight(s.abs_sum_) || !IsValidWeight(s.sq_sum_) ||
      !std::isfinite(s.err_sum_)) {
    return base::DataLoss(kRegressionFormat, "negative or non-finite sum");
  }
  return s;
}

MulticlassSummary::MulticlassSummary(int classes, int fine_bins) {
  per_class_.assign(std::clamp(classes, 2, kMaxClasses), ScoreLabelSummary(fine_bins));
}

void MulticlassSummary::Add(std::span<const double> probabilities, int label, double weight) {
  const int k = classes();
  if (static_cast<int>(probabilities.size()) != k || label < 0 || label >= k ||
      !IsValidWeight(weight)) {
    ++invalid_;
    return;
  }
  double clipped_sum = 0;
  size_t best = 0;
  for (size_t c = 0; c < probabilities.size(); ++c) {
    const double p = probabilities[c];
    if (!IsProbability(p)) {
      ++invalid_;
      return;
    }
    clipped_sum += std::clamp(p, kLogLossEps, 1 - kLogLossEps);
    if (p > probabilities[best]) best = c;
  }
  for (int c = 0; c < k; ++c) per_class_[c].Add(probabilities[c], c == label ? 1.0 : 0.0, weight);
  weight_ += weight;
  correct_ += static_cast<int>(best) == label ? weight : 0.0;
  const double p_true = std::clamp(probabilities[label], kLogLossEps, 1 - kLogLossEps);
  log_loss_sum_ += -weight * std::log(p_true / clipped_sum);
}

absl::Status MulticlassSummary::Merge(const MulticlassSummary& other) {
  if (other.classes() != classes()) {
    return absl::InvalidArgumentError(absl::StrCat("multiclass summaries of ", classes(), " and ",
                                                   other.classes(), " classes do not merge"));
  }
  for (int c = 0; c < classes(); ++c) {
    if (other.per_class_[c].fine_bins() != per_class_[c].fine_bins()) {
      return absl::InvalidArgumentError("multiclass summaries of different fine bins do not merge");
    }
  }
  for (int c = 0; c < classes(); ++c) DW_RETURN_IF_ERROR(per_class_[c].Merge(other.per_class_[c]));
  weight_ += other.weight_;
  correct_ += other.correct_;
  log_loss_sum_ += other.log_loss_sum_;
  invalid_ += other.invalid_;
  return absl::OkStatus();
}

absl::StatusOr<MulticlassSummary::Metrics> MulticlassSummary::Compute() const {
  if (!(weight_ > 0)) return absl::FailedPreconditionError("multiclass: no labelled weight");
  Metrics m;
  double auc_sum = 0, bound_sum = 0;
  for (const ScoreLabelSummary& s : per_class_) {
    absl::StatusOr<ScoreLabelSummary::Auc> auc = s.RocAuc();
    if (!auc.ok()) continue;  // the class is absent, or alone
    auc_sum += auc->auc;
    bound_sum += auc->error_bound;
    ++m.auc_classes;
  }
  if (m.auc_classes < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "multiclass: macro AUC needs two classes with positives and negatives, have ",
        m.auc_classes));
  }
  m.macro_auc = auc_sum / m.auc_classes;
  m.macro_auc_error_bound = bound_sum / m.auc_classes;
  m.accuracy = correct_ / weight_;
  m.log_loss = log_loss_sum_ / weight_;
  return m;
}

constexpr std::string_view kMulticlassMagic = "DWMC";
constexpr uint32_t kMulticlassVersion = 1;
constexpr std::string_view kMulticlassFormat = "multiclass summary";

std::string MulticlassSummary::Serialize() const {
  base::ByteWriter w;
  w.Header(kMulticlassMagic, kMulticlassVersion);
  w.U32(static_cast<uint32_t>(classes()));
  w.U64(invalid_);
  for (double d : {weight_, correct_, log_loss_sum_}) w.F64(d);
  for (const ScoreLabelSummary& s : per_class_) w.Str(s.Serialize());
  return std::move(w).Finish();
}

absl::StatusOr<MulticlassSummary> MulticlassSummary::Deserialize(std::string_view bytes) {
  base::ByteReader r(bytes);
  DW_RETURN_IF_ERROR(r.Header(kMulticlassFormat, kMulticlassMagic, kMulticlassVersion));
  uint32_t classes = 0;
  uint64_t invalid = 0;
  double weight = 0, correct = 0, log_loss = 0;
  if (!r.U32(&classes) || !r.U64(&invalid) || !r.F64(&weight) || !r.F64(&correct) ||
      !r.F64(&log_loss)) {
    return base::DataLoss(kMulticlassFormat, absl::StrCat("truncated: ", bytes.size(), " bytes"));
  }
  if (classes < 2 || classes > static_cast<uint32_t>(kMaxClasses)) {
    return base::DataLoss(kMulticlassFormat, absl::StrCat(classes, " classes out of range"));
  }
  if (!IsValidWeight(weight) || !IsValidWeight(correct) || !IsValidWeight(log_loss)) {
    return base::DataLoss(kMulticlassFormat, "negative or non-finite sum");
  }
  MulticlassSummary m(static_cast<int>(classes));
  m.invalid_ = invalid;
  m.weight_ = weight;
  m.correct_ = correct;
  m.log_loss_sum_ = log_loss;
  for (uint32_t c = 0; c < classes; ++c) {
    std::string blob;
    if (!r.Str(&blob)) {
      return base::DataLoss(kMulticlassFormat, absl::StrCat("truncated in class ", c));
    }
    absl::StatusOr<ScoreLabelSummary> s = ScoreLabelSummary::Deserialize(blob);
    if (!s.ok()) return s.status();
    m.per_class_[c] = std::move(*s);
  }
  if (r.remaining() != 0) return base::DataLoss(kMulticlassFormat, "trailing bytes");
  return m;
}

}  // namespace driftwatch::detectors
