// An uploaded baseline (a ReferenceProfile of raw rows) summarised with a
// model's profile layout: what Baselines::Create stores for source = profile.
#pragma once

#include "absl/status/statusor.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/v1/models.pb.h"

namespace driftwatch::service::reports {

// INVALID_ARGUMENT naming the field: no rows, ragged columns, a column that
// is not a feature of the model or appears twice, a weight that is not a
// finite number > 0, a dictionary code outside its dictionary.
absl::StatusOr<detectors::Profile> ProfileFromReference(const RegisteredModel& model,
                                                        const v1::ReferenceProfile& ref);

}  // namespace driftwatch::service::reports
