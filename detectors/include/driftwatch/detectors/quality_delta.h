// The sparse side of QualityProfile, for the label joiner's hot path.
//
// A (slice, hour) row of quality changes by a few dozen labels between two
// commits, and a dense QualityProfile is ~53 KB of bins (1000 fine bins of
// six sums, 641 delay bins): allocating, filling, encoding and merging one
// per row per commit cost more than the labels themselves. QualityDelta
// records the adds as a log and encodes it straight into the sparse
// DWQP v2 format; MergeQualityEncodings merges a stored row with a delta
// in that sparse form. Both produce, byte for byte, what QualityProfile's
// Serialize gives for the same adds and Merge (the sums of a bin are taken
// in the same order), which tests/detectors/quality_delta_test.cc checks.
// A delta that grows past a few thousand adds switches to dense bins (the
// sums keep their order). Kinds other than binary go through a QualityProfile inside (their
// summaries are small, or, multiclass, not on a hot path yet).
// Pure; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/detectors/quality_profile.h"

namespace driftwatch::detectors {

class QualityDelta {
 public:
  explicit QualityDelta(QualityKind kind, int classes = 2);
  ~QualityDelta();
  QualityDelta(QualityDelta&&) noexcept;
  QualityDelta& operator=(QualityDelta&&) noexcept;

  // As QualityProfile's.
  void AddPrediction(std::span<const double> scores, double weight);
  void AddLabel(std::span<const double> scores, double label, double weight, double delay_ms);
  void AddQuery(double ndcg, double weight);
  void AddExpired(double weight);

  // Adds recorded (predictions, labels, queries, expiries): the log's
  // length, for bounding memory between commits.
  size_t adds() const { return adds_; }
  // DWQP v2, as QualityProfile::Serialize of a profile given the same adds.
  std::string Serialize() const;

 private:
  struct Prediction {
    uint32_t bin;
    double weight, score;
  };
  struct Label {
    uint32_t bin;  // kNoBin: no score-label update (no score, or invalid)
    uint32_t delay_bin;
    double weight, score, label;
  };
  static constexpr uint32_t kNoBin = UINT32_MAX;
  // Past this many logged adds a delta keeps dense bins instead (the log
  // would outgrow them; the population's row of a busy hour gets one add
  // per prediction).
  static constexpr size_t kDenseAfter = 2048;
  struct DenseBins;
  void AddToDense(const Prediction& x);
  void AddToDense(const Label& x);
  void MaybeGoDense();

  QualityKind kind_;
  size_t adds_ = 0;
  // kBinary.
  double predicted_weight_ = 0, labelled_weight_ = 0, expired_weight_ = 0;
  uint64_t predicted_ = 0, labelled_ = 0, expired_ = 0, invalid_ = 0;
  std::vector<Prediction> predictions_;
  std::vector<Label> labels_;
  std::unique_ptr<DenseBins> dense_bins_;  // once past kDenseAfter; the logs are then empty
  // The other kinds.
  std::optional<QualityProfile> dense_;
};

// The DWQP encoding of QualityProfile `stored` merged with `delta`, as
// Deserialize, Merge and Serialize would give, without the dense bins when
// both are binary v2 encodings. DATA_LOSS naming the side and what is wrong
// when either is malformed; INVALID_ARGUMENT when kinds or classes differ.
absl::StatusOr<std::string> MergeQualityEncodings(std::string_view stored, std::string_view delta);

// Merges encoded profile `bytes` into `*into`, as Deserialize then Merge
// would (the same sums in the same order), without a temporary dense
// profile when `bytes` is a binary v2 encoding (a report merges a row per
// hour). On an error (Deserialize's DATA_LOSS, Merge's INVALID_ARGUMENT)
// `*into` is unchanged.
absl::Status MergeEncodingInto(std::string_view bytes, QualityProfile* into);

}  // namespace driftwatch::detectors
