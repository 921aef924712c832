#include "driftwatch/detectors/data_quality.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace driftwatch::detectors {
namespace {

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(absl::StrCat("profile data-quality section: ", std::string(what)));
}

// A histogram as (u8 nonzero, then u8 index + u64 count each): most
// profiles' arrivals fall in one or two bins.
void PutHistogram(base::ByteWriter& w, const std::array<uint64_t, kDelayBins>& h) {
  uint8_t nonzero = 0;
  for (uint64_t c : h) nonzero += c != 0;
  w.Put(nonzero);
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i] == 0) continue;
    w.Put(static_cast<uint8_t>(i));
    w.U64(h[i]);
  }
}

bool GetHistogram(base::ByteReader& r, std::array<uint64_t, kDelayBins>* h) {
  uint8_t nonzero = 0;
  if (!r.Get(&nonzero) || nonzero > kDelayBins) return false;
  for (uint8_t k = 0; k < nonzero; ++k) {
    uint8_t index = 0;
    uint64_t count = 0;
    if (!r.Get(&index) || index >= kDelayBins || !r.U64(&count)) return false;
    (*h)[index] = count;
  }
  return true;
}

void PutCounts(base::ByteWriter& w, const std::vector<uint64_t>& v) {
  w.U32(static_cast<uint32_t>(v.size()));
  w.U64s(v);
}

// At most `limit` values (a layout has fewer features than that).
bool GetCounts(base::ByteReader& r, std::vector<uint64_t>* v, uint32_t limit) {
  uint32_t n = 0;
  if (!r.U32(&n) || n > limit) return false;
  v->assign(n, 0);
  for (uint64_t& c : *v) {
    if (!r.U64(&c)) return false;
  }
  return true;
}

constexpr uint32_t kMaxEntries = 1 << 20;

}  // namespace

double HistogramQuantile(std::span<const uint64_t> counts, std::span<const double> edges,
                         double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return std::nan("");
  const double target = std::max(1.0, std::ceil(q * static_cast<double>(total)));
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    if (static_cast<double>(cumulative) >= target) {
      if (i < edges.size()) return edges[i];
      return edges.back();  // the open last bin: its lower edge
    }
  }
  return edges.back();
}

bool DataQuality::empty() const {
  if (duplicates != 0 || unknown_fields != 0 || rate_mismatch != 0 || hash_unsampled != 0 ||
      latency_observed != 0 || newest_event_ms != 0 || newest_received_ms != 0 ||
      !invalid.empty() || !out_of_range.empty() || !scores.empty() || !fingerprints.empty()) {
    return false;
  }
  for (uint64_t c : lateness) {
    if (c != 0) return false;
  }
  return true;
}

void DataQuality::AddInvalid(size_t feature, size_t features, bool out_of_range_value,
                             size_t numeric) {
  if (invalid.size() < features) invalid.resize(features);
  ++invalid[feature];
  if (out_of_range_value && feature < numeric) {
    if (out_of_range.size() < numeric) out_of_range.resize(numeric);
    ++out_of_range[feature];
  }
}

void DataQuality::AddFingerprint(std::string_view fingerprint, uint64_t events) {
  // The overflow entry, when there is one, is kept last.
  const bool has_other = !fingerprints.empty() && fingerprints.back().first == kOtherFingerprint;
  const size_t named = fingerprints.size() - (has_other ? 1 : 0);
  if (fingerprint != kOtherFingerprint) {
    for (size_t i = 0; i < named; ++i) {
      if (fingerprints[i].first == fingerprint) {
        fingerprints[i].second += events;
        return;
      }
    }
    if (named < kMaxFingerprints) {
      fingerprints.emplace(fingerprints.begin() + static_cast<ptrdiff_t>(named),
                           std::string(fingerprint), events);
      return;
    }
  }
  if (!has_other) fingerprints.emplace_back(std::string(kOtherFingerprint), 0);
  fingerprints.back().second += events;
}

void DataQuality::Merge(const DataQuality& other) {
  duplicates += other.duplicates;
  unknown_fields += other.unknown_fields;
  rate_mismatch += other.rate_mismatch;
  hash_unsampled += other.hash_unsampled;
  latency_observed += other.latency_observed;
  newest_event_ms = std::max(newest_event_ms, other.newest_event_ms);
  newest_received_ms = std::max(newest_received_ms, other.newest_received_ms);
  for (size_t i = 0; i < kDelayBins; ++i) {
    lateness[i] += other.lateness[i];
    latency[i] += other.latency[i];
  }
  if (invalid.size() < other.invalid.size()) invalid.resize(other.invalid.size());
  for (size_t i = 0; i < other.invalid.size(); ++i) invalid[i] += other.invalid[i];
  if (out_of_range.size() < other.out_of_range.size()) out_of_range.resize(other.out_of_range.size());
  for (size_t i = 0; i < other.out_of_range.size(); ++i) out_of_range[i] += other.out_of_range[i];
  if (scores.size() < other.scores.size()) scores.resize(other.scores.size());
  for (size_t s = 0; s < other.scores.size(); ++s) {
    ScoreHealthCounts& h = scores[s];
    const ScoreHealthCounts& o = other.scores[s];
    h.zeros += o.zeros;
    h.ones += o.ones;
    h.out_of_range += o.out_of_range;
    h.longest_run = std::max(h.longest_run, o.longest_run);
    if (o.run > 0) {
      h.run = o.run;
      h.last = o.last;
    }
  }
  for (const auto& [value, count] : other.fingerprints) AddFingerprint(value, count);
}

void DataQuality::Serialize(base::ByteWriter& w) const {
  if (empty()) {
    w.Put(uint8_t{0});
    return;
  }
  w.Put(uint8_t{1});
  w.U64(duplicates);
  w.U64(unknown_fields);
  w.U64(rate_mismatch);
  w.U64(hash_unsampled);
  w.U64(latency_observed);
  w.Put(newest_event_ms);
  w.Put(newest_received_ms);
  PutHistogram(w, lateness);
  PutHistogram(w, latency);
  PutCounts(w, invalid);
  PutCounts(w, out_of_range);
  w.U32(static_cast<uint32_t>(scores.size()));
  for (const ScoreHealthCounts& h : scores) {
    w.U64(h.zeros);
    w.U64(h.ones);
    w.U64(h.out_of_range);
    w.U64(h.longest_run);
    w.U64(h.run);
    w.F64(h.last);
  }
  w.U32(static_cast<uint32_t>(fingerprints.size()));
  for (const auto& [value, count] : fingerprints) {
    w.Str(value);
    w.U64(count);
  }
}

absl::Status DataQuality::Deserialize(base::ByteReader& r, DataQuality* out) {
  *out = DataQuality();
  uint8_t present = 0;
  if (!r.Get(&present) || present > 1) return Corrupt("bad presence byte");
  if (present == 0) return absl::OkStatus();
  if (!r.U64(&out->duplicates) || !r.U64(&out->unknown_fields) || !r.U64(&out->rate_mismatch) ||
      !r.U64(&out->hash_unsampled) || !r.U64(&out->latency_observed) ||
      !r.Get(&out->newest_event_ms) || !r.Get(&out->newest_received_ms)) {
    return Corrupt("truncated counters");
  }
  if (!GetHistogram(r, &out->lateness) || !GetHistogram(r, &out->latency)) {
    return Corrupt("bad delay histogram");
  }
  if (!GetCounts(r, &out->invalid, kMaxEntries) || !GetCounts(r, &out->out_of_range, kMaxEntries)) {
    return Corrupt("bad per-feature counts");
  }
  uint32_t n_scores = 0;
  if (!r.U32(&n_scores) || n_scores > kMaxEntries) return Corrupt("bad score count");
  out->scores.resize(n_scores);
  for (ScoreHealthCounts& h : out->scores) {
    if (!r.U64(&h.zeros) || !r.U64(&h.ones) || !r.U64(&h.out_of_range) ||
        !r.U64(&h.longest_run) || !r.U64(&h.run) || !r.F64(&h.last)) {
      return Corrupt("truncated score health");
    }
  }
  uint32_t n_fingerprints = 0;
  if (!r.U32(&n_fingerprints) || n_fingerprints > kMaxFingerprints + 1) {
    return Corrupt("bad fingerprint count");
  }
  out->fingerprints.resize(n_fingerprints);
  for (auto& [value, count] : out->fingerprints) {
    if (!r.Str(&value) || !r.U64(&count)) return Corrupt("truncated fingerprints");
  }
  return absl::OkStatus();
}

}  // namespace driftwatch::detectors
