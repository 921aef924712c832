#include "reports/version_comparison.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "driftwatch/detectors/drift.h"
#include "driftwatch/detectors/histogram.h"

namespace driftwatch::service::reports {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Weighted Pearson correlation; NaN when either side is constant.
double Correlation(std::span<const ScorePair> pairs) {
  double w = 0, ma = 0, mb = 0;
  for (const ScorePair& p : pairs) {
    w += p.weight;
    ma += p.weight * p.a;
    mb += p.weight * p.b;
  }
  if (w <= 0) return kNaN;
  ma /= w;
  mb /= w;
  double saa = 0, sbb = 0, sab = 0;
  for (const ScorePair& p : pairs) {
    const double da = p.a - ma, db = p.b - mb;
    saa += p.weight * da * da;
    sbb += p.weight * db * db;
    sab += p.weight * da * db;
  }
  if (saa <= 0 || sbb <= 0) return kNaN;
  return std::clamp(sab / std::sqrt(saa * sbb), -1.0, 1.0);
}

// PSI of b's scores against a's: equal-frequency bins of a's paired
// scores (numpy.quantile's linear method), weighted counts, empty bins
// floored at 1e-4 (detectors::CompareBinCounts).
double ScorePsi(std::span<const ScorePair> pairs) {
  std::vector<double> a;
  a.reserve(pairs.size());
  for (const ScorePair& p : pairs) a.push_back(p.a);
  absl::StatusOr<detectors::BinEdges> edges =
      detectors::BinEdges::FromQuantiles(a, detectors::kDefaultBins);
  if (!edges.ok()) return kNaN;
  std::vector<double> ca(edges->bin_count()), cb(edges->bin_count());
  for (const ScorePair& p : pairs) {
    ca[edges->BinOf(p.a)] += p.weight;
    cb[edges->BinOf(p.b)] += p.weight;
  }
  absl::StatusOr<detectors::Divergences> d = detectors::CompareBinCounts(ca, cb);
  return d.ok() ? d->psi : kNaN;
}

// Mean over queries with >= 2 paired items of |top-k(a) ∩ top-k(b)| /
// min(k, n); each side's top-k by its score, descending, ties by id.
double TopKOverlap(std::span<const ScorePair> pairs, uint32_t k) {
  std::map<uint64_t, std::vector<const ScorePair*>> by_query;
  for (const ScorePair& p : pairs) {
    if (p.ranked) by_query[p.query].push_back(&p);
  }
  double sum = 0;
  int queries = 0;
  for (const auto& entry : by_query) {
    const std::vector<const ScorePair*>& items = entry.second;
    if (items.size() < 2) continue;
    const size_t top = std::min<size_t>(std::max<uint32_t>(k, 1), items.size());
    auto top_of = [&](bool side_a) {
      std::vector<const ScorePair*> sorted = items;
      std::sort(sorted.begin(), sorted.end(), [&](const ScorePair* x, const ScorePair* y) {
        const double sx = side_a ? x->a : x->b, sy = side_a ? y->a : y->b;
        return sx != sy ? sx > sy : x->id < y->id;
      });
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < top; ++i) ids.push_back(sorted[i]->id);
      std::sort(ids.begin(), ids.end());
      return ids;
    };
    const std::vector<uint64_t> ta = top_of(true), tb = top_of(false);
    std::vector<uint64_t> both;
    std::set_intersection(ta.begin(), ta.end(), tb.begin(), tb.end(), std::back_inserter(both));
    sum += static_cast<double>(both.size()) / static_cast<double>(top);
    ++queries;
  }
  return queries > 0 ? sum / queries : kNaN;
}

}  // namespace

void Agree(std::span<const ScorePair> pairs, const AgreementOptions& options,
           v1::VersionAgreement* out) {
  out->set_paired(pairs.size());
  double w = 0, diff = 0, agree = 0;
  bool decides = !std::isnan(options.threshold);
  for (const ScorePair& p : pairs) {
    w += p.weight;
    diff += p.weight * std::abs(p.b - p.a);
    if (p.class_a >= 0 || p.class_b >= 0) {
      decides = true;
      agree += p.class_a == p.class_b ? p.weight : 0;
    } else if (!std::isnan(options.threshold)) {
      agree += (p.a >= options.threshold) == (p.b >= options.threshold) ? p.weight : 0;
    }
  }
  out->set_weight(w);
  if (pairs.empty() || w <= 0) {
    for (auto set : {&v1::VersionAgreement::set_score_correlation,
                     &v1::VersionAgreement::set_decision_agreement,
                     &v1::VersionAgreement::set_topk_overlap,
                     &v1::VersionAgreement::set_mean_abs_diff, &v1::VersionAgreement::set_psi}) {
      (out->*set)(kNaN);
    }
    return;
  }
  out->set_mean_abs_diff(diff / w);
  out->set_decision_agreement(decides ? agree / w : kNaN);
  out->set_score_correlation(Correlation(pairs));
  out->set_psi(ScorePsi(pairs));
  out->set_topk_overlap(TopKOverlap(pairs, options.k));
}

}  // namespace driftwatch::service::reports
