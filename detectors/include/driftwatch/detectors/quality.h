// Model quality as labels mature: calibration, ROC AUC and NDCG@k, both
// exactly from raw rows (offline CLI) and from mergeable binned summaries
// (service buckets). Pure; thread-safe for const use.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace driftwatch::detectors {

struct ReliabilityBin {
  int bin = 0;            // 0-based index of the equal-width bin
  double mean_score = 0;  // weighted
  double mean_label = 0;  // weighted (fraction of positives)
  double count = 0;       // weight in the bin (row count when unweighted)
};

struct CalibrationResult {
  double n = 0;           // total weight
  double ece = 0;
  double mce = 0;
  double brier = 0;
  std::vector<ReliabilityBin> reliability;  // non-empty bins only, ascending
};

// Equal-width bins on [0, 1]; a bin holds (lower, upper] and the first also
// holds 0; edges are numpy.linspace(0, 1, bins + 1) bit for bit, so a score
// on an edge lands where sklearn's calibration_curve puts it. `labels` are
// 0/1; `weights` empty means all 1. Bins of zero weight are left out of the
// reliability curve and of MCE. INVALID_ARGUMENT if bins < 1, a score is
// outside [0, 1], a label is not 0/1, a weight is negative or not finite,
// sizes differ, the input is empty or the weights sum to 0.
absl::StatusOr<CalibrationResult> Calibration(std::span<const double> scores,
                                              std::span<const double> labels,
                                              std::span<const double> weights, int bins = 10);

// sklearn.metrics.roc_auc_score(labels, scores, sample_weight=weights):
// ties count 1/2. Scores may be any finite value. FAILED_PRECONDITION when
// only one class has positive weight; INVALID_ARGUMENT as for Calibration.
absl::StatusOr<double> RocAuc(std::span<const double> scores, std::span<const double> labels,
                              std::span<const double> weights);

// Mean over queries of sklearn.metrics.ndcg_score([relevance], [score], k)
// (linear gains, ties averaged), each query weighted by the weight of its
// first row (weights empty = 1). A query whose ideal DCG is 0 scores 0, as
// sklearn does. Rows of a query need not be contiguous. A one-document
// query (sklearn refuses it) scores 1 if its relevance > 0, else 0.
// INVALID_ARGUMENT if k < 1, sizes differ, input is empty, a score is not
// finite, a relevance is negative or not finite, a weight is negative or not
// finite, or the query weights sum to 0.
absl::StatusOr<double> NdcgAtK(std::span<const std::string> query_ids,
                               std::span<const double> scores, std::span<const double> relevance,
                               std::span<const double> weights, int k);

// NDCG@k of a single query (same definition); k <= 0 means no cutoff.
// Unchecked: callers pass finite scores and relevances of equal length
// (extra elements of the longer span are ignored).
double QueryNdcg(std::span<const double> scores, std::span<const double> relevance, int k);

// Mergeable score x label summary for a binary classifier: `fine_bins`
// equal-width bins on [0, 1] holding per bin the weight of positives and
// negatives, the weighted score sum and the weighted squared error sum.
//
// Calibration(bins) equals the exact Calibration when `bins` divides
// fine_bins (same bin rule; INVALID_ARGUMENT otherwise), up to summation
// order, except for a score lying between two roundings of one edge (e.g.
// 0.30000000000000004: numpy's edge 3/10 for 10 bins is that value, its edge
// 300/1000 is 0.3); such a score may move to the neighbouring bin.
// AUC treats scores in one fine bin as tied, so
// |AUC - exact| <= error_bound = sum_b pos_b neg_b / (2 P N).
// Not thread-safe for mutation; const methods may run concurrently.
namespace internal {
struct QualityEncodingAccess;  // quality_delta.cc: merges sparse encodings in place
}  // namespace internal

// The fine bin of probability `score` among `fine_bins` uniform bins over
// [0, 1] (right-closed, as numpy.digitize(right=True) on linspace edges;
// the rule ScoreLabelSummary::Add uses). `score` must be in [0, 1].
int FineBinOf(double score, int fine_bins);

class ScoreLabelSummary {
 public:
  // fine_bins is clamped to [1, 2^20].
  explicit ScoreLabelSummary(int fine_bins = 1000);
  // Score outside [0, 1], label not 0/1 or weight negative / not finite:
  // counted invalid and skipped.
  void Add(double score, double label, double weight = 1.0);
  // INVALID_ARGUMENT when fine_bins differ.
  absl::Status Merge(const ScoreLabelSummary& other);

  // FAILED_PRECONDITION when the summary holds no weight.
  absl::StatusOr<CalibrationResult> Calibration(int bins = 10) const;
  // FAILED_PRECONDITION when either class has no weight.
  struct Auc {
    double auc = 0;
    double error_bound = 0;
  };
  absl::StatusOr<Auc> RocAuc() const;

  int fine_bins() const { return fine_bins_; }
  // The fine bin a probability falls in (the rule Add uses).
  int BinOf(double score) const;
  // Per fine bin b in [0, fine_bins): weight of positives, of negatives,
  // and the weighted score sum.
  double positives(int b) const { return pos_[b]; }
  double negatives(int b) const { return neg_[b]; }
  double score_sum(int b) const { return score_sum_[b]; }
  double positive_weight() const;
  double negative_weight() const;
  uint64_t invalid() const { return invalid_; }

  // Format: docs/quality.md. Deserialize returns DATA_LOSS on bad magic,
  // unknown version, wrong length or a negative / non-finite bin value.
  std::string Serialize() const;
  static absl::StatusOr<ScoreLabelSummary> Deserialize(std::string_view bytes);

 private:
  int fine_bins_;
  std::vector<double> pos_;
  std::vector<double> neg_;
  std::vector<double> score_sum_;  // sum of w * score
  std::vector<double> sq_err_;     // sum of w * (score - label)^2
  uint64_t invalid_ = 0;
  friend struct internal::QualityEncodingAccess;
};

// Mergeable NDCG: the service scores a query once its labels are in and
// adds it here. Exact (a mean of per-query values).
class NdcgAccumulator {
 public:
  NdcgAccumulator() = default;
  // From its parts (a stored summary); the caller checks them.
  NdcgAccumulator(double weighted_sum, double weight, uint64_t queries)
      : weighted_sum_(weighted_sum), weight_(weight), queries_(queries) {}
  double weighted_sum() const { return weighted_sum_; }
  void AddQuery(double ndcg, double weight = 1.0);
  void Merge(const NdcgAccumulator& other);
  double mean() const;  // 0 when empty
  double weight() const { return weight_; }
  uint64_t queries() const { return queries_; }

 private:
  double weighted_sum_ = 0;
  double weight_ = 0;
  uint64_t queries_ = 0;
};

// Mergeable error sums of a regression model: per (prediction, target,
// weight) the weight, and the weighted sums of |e|, e^2 and e with
// e = prediction - target. Exact (sums), as
//   mae  = sklearn.metrics.mean_absolute_error(target, prediction, sample_weight=w)
//   rmse = sklearn.metrics.mean_squared_error(..., squared=False)
//   bias = numpy.average(prediction - target, weights=w)  (> 0: over-predicts)
// A non-finite value or a weight that is negative or not finite is counted
// invalid and skipped. Not thread-safe for mutation.
class RegressionErrorSummary {
 public:
  void Add(double prediction, double target, double weight = 1.0);
  void Merge(const RegressionErrorSummary& other);

  double weight() const { return weight_; }
  uint64_t count() const { return count_; }
  uint64_t invalid() const { return invalid_; }
  // FAILED_PRECONDITION when the summary holds no weight.
  struct Errors {
    double mae = 0, rmse = 0, bias = 0;
  };
  absl::StatusOr<Errors> Compute() const;

  // Format "DWRE" v1 (docs/quality.md); DATA_LOSS on a bad blob.
  std::string Serialize() const;
  static absl::StatusOr<RegressionErrorSummary> Deserialize(std::string_view bytes);

 private:
  double weight_ = 0, abs_sum_ = 0, sq_sum_ = 0, err_sum_ = 0;
  uint64_t count_ = 0, invalid_ = 0;
};

// Mergeable summary of a multiclass classifier over `classes` classes:
// one-vs-rest ScoreLabelSummary per class (score = that class's
// probability, label = whether it is the true class), plus exact weighted
// sums for accuracy (argmax, the first of equal maxima, as numpy) and log
// loss (sklearn 1.2's log_loss: probabilities clipped to [eps, 1 - eps]
// with eps = 2^-52, then each row renormalised). Definitions:
//   macro_auc = sklearn.metrics.roc_auc_score(y, P, multi_class="ovr",
//               average="macro", sample_weight=w), binned per class, within
//               macro_auc_error_bound = the mean of the classes' AUC bounds;
//               classes absent (or alone) in the data are left out of the mean
//               (sklearn refuses them), and it needs two classes present;
//   accuracy  = sklearn.metrics.accuracy_score(y, argmax P, sample_weight=w);
//   log_loss  = sklearn.metrics.log_loss(y, P, sample_weight=w, labels=0..K-1).
// A row with a wrong number of probabilities, a non-finite or out of
// [0, 1] probability, a label outside 0..K-1 or a bad weight is invalid.
class MulticlassSummary {
 public:
  // classes is clamped to [2, 4096]; fine_bins as ScoreLabelSummary's.
  explicit MulticlassSummary(int classes, int fine_bins = 1000);
  void Add(std::span<const double> probabilities, int label, double weight = 1.0);
  // INVALID_ARGUMENT when the class counts or fine bins differ.
  absl::Status Merge(const MulticlassSummary& other);

  int classes() const { return static_cast<int>(per_class_.size()); }
  double weight() const { return weight_; }
  uint64_t invalid() const { return invalid_; }
  const ScoreLabelSummary& one_vs_rest(int c) const { return per_class_[c]; }

  struct Metrics {
    double macro_auc = 0, macro_auc_error_bound = 0;
    int auc_classes = 0;  // classes in the AUC mean
    double accuracy = 0, log_loss = 0;
  };
  // FAILED_PRECONDITION when the summary holds no weight or fewer than two
  // classes have both positives and negatives.
  absl::StatusOr<Metrics> Compute() const;

  // Format "DWMC" v1 (docs/quality.md): the sums, then each class's
  // ScoreLabelSummary blob with its length. DATA_LOSS on a bad blob.
  std::string Serialize() const;
  static absl::StatusOr<MulticlassSummary> Deserialize(std::string_view bytes);

 private:
  std::vector<ScoreLabelSummary> per_class_;
  double weight_ = 0, correct_ = 0, log_loss_sum_ = 0;
  uint64_t invalid_ = 0;
};

}  // namespace driftwatch::detectors
