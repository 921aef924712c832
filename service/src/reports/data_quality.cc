#include "reports/data_quality.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace driftwatch::service::reports {
namespace {

using detectors::DataQuality;
using detectors::Profile;

double Share(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

double NumericNullRate(const detectors::NumericSummary& s) {
  const detectors::NumericCounts& c = s.counts();
  return Share(c.missing_weight, c.missing_weight + c.weight);
}

double CategoricalNullRate(const detectors::CategoricalSummary& s) {
  return Share(s.missing_weight(), s.total_weight());
}

// Quantiles of a fixed-edge histogram; the bound is relative to the
// returned upper edge: the exact value lies in (lower edge, upper edge].
void SetQuantiles(std::span<const uint64_t> counts, std::span<const double> edges,
                  v1::Quantiles* out) {
  out->set_p50(detectors::HistogramQuantile(counts, edges, 0.50));
  out->set_p95(detectors::HistogramQuantile(counts, edges, 0.95));
  out->set_p99(detectors::HistogramQuantile(counts, edges, 0.99));
  // The bins are at most 2.5x wide (edges 1-2-5): within 60% below the edge.
  out->set_relative_error_bound(0.6);
  if (std::isnan(out->p50())) {
    out->set_p50(0);
    out->set_p95(0);
    out->set_p99(0);
  }
}

}  // namespace

void BuildDataQuality(const RegisteredModel& model, const Profile& current,
                      const Profile* reference,
                      const std::vector<std::string>& reference_hashes, int64_t now_ms,
                      const DataQualityOptions& options, v1::DataQualityReport* out) {
  const DataQuality& q = current.quality();
  const double events = static_cast<double>(current.counters().events);
  out->set_events(current.counters().events);
  out->set_duplicates(q.duplicates);
  out->set_duplicate_rate(Share(static_cast<double>(q.duplicates), events + q.duplicates));
  out->set_unknown_fields(q.unknown_fields);
  out->set_unknown_field_rate(Share(static_cast<double>(q.unknown_fields), events));
  const detectors::ProfileLayout& layout = current.layout();
  const size_t n_numeric = layout.numeric_names.size();
  auto invalid_of = [&](size_t f) { return f < q.invalid.size() ? q.invalid[f] : 0; };
  for (size_t f = 0; f < n_numeric; ++f) {
    v1::FeatureQuality* fq = out->add_features();
    fq->set_name(layout.numeric_names[f]);
    fq->set_kind("numeric");
    fq->set_null_rate(NumericNullRate(current.numeric()[f]));
    fq->set_invalid(invalid_of(f));
    fq->set_invalid_rate(Share(static_cast<double>(invalid_of(f)), events));
    fq->set_out_of_range(f < q.out_of_range.size() ? q.out_of_range[f] : 0);
    if (reference != nullptr) fq->set_reference_null_rate(NumericNullRate(reference->numeric()[f]));
  }
  for (size_t f = 0; f < layout.categorical_names.size(); ++f) {
    v1::FeatureQuality* fq = out->add_features();
    fq->set_name(layout.categorical_names[f]);
    fq->set_kind("categorical");
    fq->set_null_rate(CategoricalNullRate(current.categorical()[f]));
    fq->set_invalid(invalid_of(n_numeric + f));
    fq->set_invalid_rate(Share(static_cast<double>(invalid_of(n_numeric + f)), events));
    if (reference != nullptr) {
      fq->set_reference_null_rate(CategoricalNullRate(reference->categorical()[f]));
    }
  }
  SetQuantiles(q.lateness, detectors::kLatenessEdgesSeconds, out->mutable_lateness_seconds());
  out->set_late_accepted(current.counters().late_accepted);
  out->set_late_share(Share(static_cast<double>(current.counters().late_accepted), events));
  const double to_s = 1.0 / 1000.0;
  out->set_freshness_seconds(
      q.newest_event_ms > 0 ? std::max<double>(0, now_ms - q.newest_event_ms) * to_s : 0);
  out->set_silence_seconds(
      q.newest_received_ms > 0 ? std::max<double>(0, now_ms - q.newest_received_ms) * to_s : 0);
  out->set_silent(q.newest_received_ms > 0 &&
                  now_ms - q.newest_received_ms > options.silence_timeout_ms);
  out->set_declared_sample_rate(model.declared_sample_rate());
  out->set_rate_mismatch(q.rate_mismatch);
  out->set_rate_mismatch_rate(Share(static_cast<double>(q.rate_mismatch), events));
  out->set_hash_unsampled(q.hash_unsampled);
  out->set_hash_unsampled_rate(Share(static_cast<double>(q.hash_unsampled), events));
  // Fingerprints: the baseline's (its profile's, and an upload's declared).
  std::set<std::string> known(reference_hashes.begin(), reference_hashes.end());
  if (reference != nullptr) {
    for (const auto& [hash, n] : reference->quality().fingerprints) {
      if (hash != DataQuality::kOtherFingerprint) known.insert(hash);
    }
  }
  for (const std::string& hash : known) out->add_baseline_feature_hashes(hash);
  uint64_t fingerprinted = 0, unknown = 0;
  for (const auto& [hash, n] : q.fingerprints) {
    (*out->mutable_feature_hashes())[hash] += n;
    fingerprinted += n;
    if (!known.contains(hash)) unknown += n;
  }
  // Only when both sides carry fingerprints: a baseline made before
  // clients sent them says nothing.
  out->set_fingerprint_mismatch(known.empty() || fingerprinted == 0
                                    ? 0.0
                                    : Share(static_cast<double>(unknown), events));
  SetQuantiles(q.latency, detectors::kLatencyEdgesMs, out->mutable_latency_ms());
  out->set_latency_observed(q.latency_observed);
  for (size_t s = 0; s < layout.score_names.size(); ++s) {
    v1::ScoreHealth* h = out->add_scores();
    h->set_name(layout.score_names[s]);
    const detectors::NumericCounts& c = current.scores()[s].counts();
    if (s < q.scores.size()) {
      const detectors::ScoreHealthCounts& sh = q.scores[s];
      h->set_zero_one_share(Share(static_cast<double>(sh.zeros + sh.ones), events));
      h->set_out_of_range_share(Share(static_cast<double>(sh.out_of_range), events));
      h->set_longest_constant_run(sh.longest_run);
    }
    // Constant: every finite score the same, over a window with enough
    // of them that a real model would have varied.
    h->set_constant(c.count >= 20 && c.min == c.max);
  }
}

void QualifySilence(double per_hour, v1::DataQualityReport* r) {
  if (!r->silent()) return;
  const bool seasonal = !r->volume_baseline().empty() && r->volume_baseline() != "none";
  const double rate = seasonal ? r->volume_expected() : per_hour;
  if (!(rate * r->silence_seconds() / 3600.0 >= kMinExpectedInSilence)) r->set_silent(false);
}

bool IsDataQualityMetric(const std::string& metric) {
  static const char* const kNames[] = {
      "null_rate",          "invalid_rate",        "duplicate_rate",      "lateness_p95",
      "late_share",         "freshness_seconds",   "rate_mismatch_rate",  "hash_unsampled_rate",
      "fingerprint_mismatch", "latency_p95",       "score_zero_one_share", "unknown_field_rate", "volume_drop"};
  for (const char* name : kNames) {
    if (metric == name) return true;
  }
  return false;
}

std::optional<std::pair<double, std::string>> DataQualityMetric(const v1::DataQualityReport& r,
                                                                const std::string& metric,
                                                                const std::string& feature) {
  if (metric == "null_rate" || metric == "invalid_rate") {
    std::optional<std::pair<double, std::string>> best;
    for (const v1::FeatureQuality& f : r.features()) {
      if (!feature.empty() && f.name() != feature) continue;
      const double v = metric == "null_rate" ? f.null_rate() : f.invalid_rate();
      if (!best || v > best->first) best.emplace(v, f.name());
    }
    return best;
  }
  double v = 0;
  if (metric == "duplicate_rate") v = r.duplicate_rate();
  else if (metric == "lateness_p95") v = r.lateness_seconds().p95();
  else if (metric == "late_share") v = r.late_share();
  else if (metric == "freshness_seconds") v = r.freshness_seconds();
  else if (metric == "rate_mismatch_rate") v = r.rate_mismatch_rate();
  else if (metric == "hash_unsampled_rate") v = r.hash_unsampled_rate();
  else if (metric == "fingerprint_mismatch") v = r.fingerprint_mismatch();
  else if (metric == "latency_p95") v = r.latency_ms().p95();
  else if (metric == "unknown_field_rate") v = r.unknown_field_rate();
  else if (metric == "volume_drop") {
    // How far below its seasonal expectation: -volume_z.
    if (r.volume_baseline().empty() || r.volume_baseline() == "none") return std::nullopt;
    v = -r.volume_z();
  }
  else if (metric == "score_zero_one_share") {
    if (r.scores_size() == 0) return std::nullopt;
    v = r.scores(0).zero_one_share();
  } else {
    return std::nullopt;
  }
  return std::make_pair(v, std::string());
}

void AddDataQualitySignals(const v1::DataQualityReport& r, const std::string& model,
                           const std::string& slice, std::vector<detectors::Signal>* out) {
  auto emit = [&](const std::string& feature, const char* name, double value,
                  double baseline = std::numeric_limits<double>::quiet_NaN()) {
    out->push_back(detectors::Signal{model, slice, feature, name, value, baseline});
  };
  if (r.events() == 0 && r.duplicates() == 0) return;
  for (const v1::FeatureQuality& f : r.features()) {
    emit(f.name(), "invalid_rate", f.invalid_rate());
  }
  emit("", "duplicate_rate", r.duplicate_rate());
  emit("", "unknown_field_rate", r.unknown_field_rate());
  if (r.events() > 0) {
    emit("", "lateness_p50", r.lateness_seconds().p50());
    emit("", "lateness_p95", r.lateness_seconds().p95());
    emit("", "lateness_p99", r.lateness_seconds().p99());
    emit("", "late_share", r.late_share());
  }
  emit("", "freshness_seconds", r.freshness_seconds());
  emit("", "silence_seconds", r.silence_seconds());
  emit("", "slice_silent", r.silent() ? 1.0 : 0.0);
  if (!r.volume_baseline().empty() && r.volume_baseline() != "none") {
    emit("", "volume_z", r.volume_z(), r.volume_expected());
  }
  if (r.declared_sample_rate() > 0) {
    emit("", "rate_mismatch_rate", r.rate_mismatch_rate());
    emit("", "hash_unsampled_rate", r.hash_unsampled_rate());
  }
  if (r.baseline_feature_hashes_size() > 0 && !r.feature_hashes().empty()) {
    emit("", "fingerprint_mismatch", r.fingerprint_mismatch());
  }
  if (r.latency_observed() > 0) {
    emit("", "latency_p95", r.latency_ms().p95());
    emit("", "latency_p99", r.latency_ms().p99());
  }
  if (r.scores_size() > 0 && r.events() > 0) {
    const v1::ScoreHealth& s = r.scores(0);
    emit("", "score_zero_one_share", s.zero_one_share());
    emit("", "score_out_of_range_share", s.out_of_range_share());
    emit("", "score_constant", s.constant() ? 1.0 : 0.0);
  }
}

}  // namespace driftwatch::service::reports
