// Shadow / canary agreement (docs/data-quality.md "Shadow and canary"):
// two versions of one model that scored the same event ids, compared pair
// by pair. Pure; thread-compatible. The pairs come from the versions' join
// state (ReportEngine::CompareVersions).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "driftwatch/v1/reports.pb.h"

namespace driftwatch::service::reports {

// One event id scored by both versions.
struct ScorePair {
  uint64_t id = 0;          // the event-id hash (tie-break of top-k)
  double a = 0;             // first score (or first class probability)
  double b = 0;
  int class_a = -1;         // multiclass: the argmax class; -1 otherwise
  int class_b = -1;
  double weight = 1;        // version a's 1 / sample_rate
  bool ranked = false;      // a ranker's row: query below
  uint64_t query = 0;
};

struct AgreementOptions {
  // Binary (and regression when set): a score >= threshold is positive.
  // NaN: no threshold decision (multiclass decides by argmax regardless).
  double threshold = std::numeric_limits<double>::quiet_NaN();
  uint32_t k = 10;  // rankers' top-k
};

// Fills paired, weight, score_correlation, decision_agreement,
// topk_overlap, mean_abs_diff and psi of `out` from `pairs` (order does
// not matter). No pairs: paired 0 and every statistic NaN.
void Agree(std::span<const ScorePair> pairs, const AgreementOptions& options,
           v1::VersionAgreement* out);

}  // namespace driftwatch::service::reports
