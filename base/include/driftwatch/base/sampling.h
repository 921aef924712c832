// The deterministic sampling rule every driftwatch table and every client
// shares (docs/sampling.md): an event is in a sample of rate r iff
// SampleUnit(event_id) < r. Because the decision depends on the id alone,
// an event kept in one sample (the label join, the raw sample) is kept in
// every sample of the same or a higher rate, and a label pipeline can send
// only the labels that will join.
//
// SampleHash is FNV-1a 64 over the id's bytes followed by the splitmix64
// finaliser; SampleUnit is its top 53 bits as a double in [0, 1). Both are
// a public contract: test vectors in tests/golden/sampling.json, made by
// tests/golden/make_sampling_vectors.py.
#pragma once

#include <cstdint>
#include <string_view>

namespace driftwatch::base {

constexpr uint64_t SampleHash(std::string_view id) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
  for (char c : id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;  // FNV-1a 64 prime
  }
  h ^= h >> 30;  // splitmix64 finaliser
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

// The id's position in [0, 1): (SampleHash >> 11) * 2^-53, exact in a double.
constexpr double SampleUnit(std::string_view id) {
  return static_cast<double>(SampleHash(id) >> 11) * 0x1.0p-53;
}

// Whether the event is in a sample of `rate` (rate >= 1: every event;
// rate <= 0 or NaN: none).
constexpr bool InSample(std::string_view id, double rate) {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false;
  return SampleUnit(id) < rate;
}

}  // namespace driftwatch::base
