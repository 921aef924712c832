// The rules engine's alert state (docs/alerting.md): one row per alert by
// fingerprint, written when it changes, read back at start so a restart
// neither forgets a pending `for` nor fires a firing alert again. The
// alert itself is an opaque encoding (alerting::EncodeAlert).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace driftwatch::storage {

struct AlertRow {
  std::string fingerprint;
  std::string rule;
  std::string alert;  // the encoded alert
};

class AlertStore {
 public:
  virtual ~AlertStore() = default;
  // Upserts and deletes, in one transaction.
  virtual absl::Status SaveAlerts(const std::vector<AlertRow>& upserts,
                                  const std::vector<std::string>& deleted_fingerprints) = 0;
  virtual absl::StatusOr<std::vector<AlertRow>> ReadAlerts() = 0;
};

}  // namespace driftwatch::storage
