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
// holds 0. `labels` are 0/1; `weights` empty means all 1. INVALID_ARGUMENT
// if a score is outside [0, 1], a label is not 0/1, sizes differ, or empty.
absl::StatusOr<CalibrationResult> Calibration(std::span<const double> scores,
                                              std::span<const double> labels,
                                              std::span<const double> weights, int bins = 10);

// sklearn.metrics.roc_auc_score(labels, scores, sample_weight=weights):
// ties count 1/2. FAILED_PRECONDITION when only one class is present.
absl::StatusOr<double> RocAuc(std::span<const double> scores, std::span<const double> labels,
                              std::span<const double> weights);

// Mean over queries of sklearn.metrics.ndcg_score([relevance], [score], k)
// (linear gains, ties averaged), each query weighted by the weight of its
// first row (weights empty = 1). A query whose ideal DCG is 0 scores 0, as
// sklearn does. Rows of a query need not be contiguous.
absl::StatusOr<double> NdcgAtK(std::span<const std::string> query_ids,
                               std::span<const double> scores, std::span<const double> relevance,
                               std::span<const double> weights, int k);

// NDCG@k of a single query (same definition).
double QueryNdcg(std::span<const double> scores, std::span<const double> relevance, int k);

// Mergeable score x label summary for a binary classifier: `fine_bins`
// equal-width bins on [0, 1] holding per bin the weight of positives and
// negatives, the weighted score sum and the weighted squared error sum.
//
// Calibration is exact when `bins` divides fine_bins (same bin rule).
// AUC treats scores in one fine bin as tied, so
// |AUC - exact| <= auc_error_bound = sum_b pos_b neg_b / (2 P N).
class ScoreLabelSummary {
 public:
  explicit ScoreLabelSummary(int fine_bins = 1000);
  // Score outside [0, 1] or label not 0/1: counted invalid and skipped.
  void Add(double score, double label, double weight = 1.0);
  absl::Status Merge(const ScoreLabelSummary& other);  // same fine_bins

  absl::StatusOr<CalibrationResult> Calibration(int bins = 10) const;
  struct Auc {
    double auc = 0;
    double error_bound = 0;
  };
  absl::StatusOr<Auc> RocAuc() const;

  int fine_bins() const { return fine_bins_; }
  double positive_weight() const;
  double negative_weight() const;
  uint64_t invalid() const { return invalid_; }

  std::string Serialize() const;
  static absl::StatusOr<ScoreLabelSummary> Deserialize(std::string_view bytes);

 private:
  int fine_bins_;
  std::vector<double> pos_;
  std::vector<double> neg_;
  std::vector<double> score_sum_;  // sum of w * score
  std::vector<double> sq_err_;     // sum of w * (score - label)^2
  uint64_t invalid_ = 0;
};

// Mergeable NDCG: the service scores a query once its labels are in and
// adds it here. Exact (a mean of per-query values).
class NdcgAccumulator {
 public:
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

}  // namespace driftwatch::detectors
