// What the service keeps of a model's quality per slice and event-time
// hour as its labels arrive: the kept predictions (their weight, and for a
// binary classifier their score histogram, which the performance estimate
// reads), the joined labels in the summary of the model's kind, and the
// label delay. Mergeable exactly (sums); format in docs/quality.md.
// Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/quality.h"

namespace driftwatch::detectors {

// Label delay (label time - prediction event time, ms), in log-spaced bins:
// bin 0 holds delays below 1 ms (including negative ones, within the
// allowed clock skew), bin 1 + j holds [2^(j/16), 2^((j+1)/16)) ms, the
// last bin everything from 2^40 ms (35 years) on. A quantile is the
// geometric middle of the bin where the weighted "inverted CDF" quantile
// (numpy method="inverted_cdf") falls, so it is within a relative
// kRelativeErrorBound (2^(1/32) - 1 = 2.2%) of it; 0 for bin 0.
class DelayHistogram {
 public:
  static constexpr int kPerOctave = 16;
  static constexpr int kOctaves = 40;
  static constexpr int kBins = 1 + kPerOctave * kOctaves;
  static const double kRelativeErrorBound;

  // The bin of a delay (the rule Add uses).
  static int BinOf(double delay_ms);
  void Add(double delay_ms, double weight);
  void Merge(const DelayHistogram& other);
  double weight() const { return weight_; }
  // q in [0, 1]; nullopt when empty.
  std::optional<double> Quantile(double q) const;

  // Sparse: the count of non-empty bins, then (u32 bin, f64 weight) each.
  void AppendTo(std::string* out) const;
  // False on a malformed encoding; `bytes` moves past what was read.
  bool ReadFrom(std::string_view* bytes);

 private:
  std::vector<double> bins_;  // empty until the first Add
  double weight_ = 0;
  friend struct internal::QualityEncodingAccess;
};

enum class QualityKind : uint8_t {
  kBinary = 1,      // ScoreLabelSummary + the kept scores' histogram
  kMulticlass = 2,  // MulticlassSummary
  kRegression = 3,  // RegressionErrorSummary
  kRanking = 4,     // NdcgAccumulator (a query counts once)
};

// The fine bins of the service's score summaries (the calibration bins of
// a report must divide it).
inline constexpr int kQualityFineBins = 1000;

class QualityProfile {
 public:
  // `classes` is used by kMulticlass only.
  explicit QualityProfile(QualityKind kind, int classes = 2);

  QualityKind kind() const { return kind_; }
  int classes() const { return classes_; }

  // A kept prediction (its join state came in): `scores` are the model's
  // scores (one, or one per class). `weight` estimates how many events it
  // stands for (1 / (sample_rate * label_join_rate)).
  void AddPrediction(std::span<const double> scores, double weight);
  // A joined label for a prediction added before. Rankers: only the
  // labelled weight and delay (their quality comes in AddQuery).
  void AddLabel(std::span<const double> scores, double label, double weight, double delay_ms);
  // Rankers: one query's NDCG@k, once.
  void AddQuery(double ndcg, double weight) { ndcg_.AddQuery(ndcg, weight); }
  // Kept predictions whose join state left the label window unlabelled.
  void AddExpired(double weight) {
    expired_weight_ += weight;
    ++expired_;
  }

  // INVALID_ARGUMENT when kinds or class counts differ.
  absl::Status Merge(const QualityProfile& other);

  double predicted_weight() const { return predicted_weight_; }
  uint64_t predicted() const { return predicted_; }
  double labelled_weight() const { return labelled_weight_; }
  uint64_t labelled() const { return labelled_; }
  double expired_weight() const { return expired_weight_; }
  uint64_t expired() const { return expired_; }
  const DelayHistogram& delay() const { return delay_; }

  // kBinary: the labelled scores and labels, and per fine bin the weight
  // and weighted score sum of every kept prediction.
  const ScoreLabelSummary& binary() const { return binary_; }
  double predicted_bin_weight(int b) const { return pred_w_[b]; }
  double predicted_bin_score_sum(int b) const { return pred_s_[b]; }
  const MulticlassSummary& multiclass() const { return multiclass_; }
  const RegressionErrorSummary& regression() const { return regression_; }
  const NdcgAccumulator& ndcg() const { return ndcg_; }

  // Format "DWQP" v1 (docs/quality.md). Deserialize: DATA_LOSS naming what
  // is wrong.
  std::string Serialize() const;
  static absl::StatusOr<QualityProfile> Deserialize(std::string_view bytes);

 private:
  QualityKind kind_;
  int classes_;
  double predicted_weight_ = 0, labelled_weight_ = 0, expired_weight_ = 0;
  uint64_t predicted_ = 0, labelled_ = 0, expired_ = 0;
  ScoreLabelSummary binary_;
  std::vector<double> pred_w_, pred_s_;  // kBinary: per fine bin
  MulticlassSummary multiclass_;
  RegressionErrorSummary regression_;
  NdcgAccumulator ndcg_;
  DelayHistogram delay_;
  friend struct internal::QualityEncodingAccess;
};

// Confidence-based performance estimation (NannyML's CBPE, on binned
// scores) for a binary classifier: the expected AUC and accuracy of
// predictions whose labels are not in yet, assuming P(label = 1 | score) is
// the calibration map. The map is fitted on labelled data (the baseline's):
// isotonic regression (pool adjacent violators) over its fine bins, read at
// the unlabelled bin's mean score by linear interpolation between fitted
// bin means; the identity when no labelled data is given.
struct PerformanceEstimate {
  double auc = 0;             // NaN when an expected class has no weight
  double accuracy = 0;        // at `threshold`: predicted positive iff score >= threshold
  double unlabelled_weight = 0;
  bool calibrated = false;    // false: the identity map was used
};

// `current` gives the unlabelled predictions (every kept prediction minus
// the labelled ones, per fine bin); `calibration` the labelled data the map
// is fitted on (may be null or empty: identity). Scores within one fine
// bin are tied (as ScoreLabelSummary::RocAuc), and the bin holding the
// threshold is judged by its mean score.
PerformanceEstimate EstimatePerformance(const QualityProfile& current,
                                        const ScoreLabelSummary* calibration, double threshold);

// Accuracy of the labelled predictions at `threshold`, judging each fine bin
// by its mean score (exact unless a fine bin straddles the threshold:
// within the weight of that one bin). nullopt when nothing is labelled.
std::optional<double> BinnedAccuracy(const ScoreLabelSummary& labelled, double threshold);

}  // namespace driftwatch::detectors
