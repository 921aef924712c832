#include "driftwatch/alerting/labels.h"

#include <cstdio>

namespace driftwatch::alerting {
namespace {

constexpr uint64_t kOffset = 14695981039346656037ULL;
constexpr uint64_t kPrime = 1099511628211ULL;
constexpr unsigned char kSeparator = 0xFF;

uint64_t Add(uint64_t h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= kPrime;
  }
  return h;
}

uint64_t AddByte(uint64_t h, unsigned char c) {
  h ^= c;
  h *= kPrime;
  return h;
}

}  // namespace

uint64_t Fingerprint(const Labels& labels) {
  uint64_t h = kOffset;
  for (const auto& [name, value] : labels) {
    h = AddByte(Add(h, name), kSeparator);
    h = AddByte(Add(h, value), kSeparator);
  }
  return h;
}

std::string FingerprintHex(const Labels& labels) {
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(Fingerprint(labels)));
  return out;
}

}  // namespace driftwatch::alerting
