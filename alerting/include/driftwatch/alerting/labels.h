// An alert's label set and its fingerprint: the identity Alertmanager,
// PagerDuty dedup keys and silences use (docs/alerting.md). Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace driftwatch::alerting {

// Sorted by name, as the fingerprint needs.
using Labels = std::map<std::string, std::string>;

// Prometheus / Alertmanager's fingerprint (prometheus/common model
// LabelSet.Fingerprint): FNV-1a 64 over the labels sorted by name, hashing
// name, 0xFF, value, 0xFF for each; an empty set hashes to the offset basis.
uint64_t Fingerprint(const Labels& labels);
// As Alertmanager prints it: 16 lowercase hex digits.
std::string FingerprintHex(const Labels& labels);

}  // namespace driftwatch::alerting
