// The encoding of a numeric summary's counts (NumericCounts + the invalid
// weight counter), shared by the summary blob (docs/formats/summary.md) and
// the profile blob (docs/formats/profile.md): six f64, six u64, then (from
// version 2 of either format) missing_weight, f64.
// Private to detectors.
#pragma once

#include <bit>
#include <cstdint>
#include <string_view>

#include "driftwatch/detectors/histogram.h"
#include "driftwatch/base/byte_io.h"

namespace driftwatch::detectors::internal {

using base::ByteReader;
using base::ByteWriter;

inline void PutCounts(ByteWriter& w, const NumericCounts& c, uint64_t invalid_weights) {
  if constexpr (std::endian::native == std::endian::little) {
    // One append (the flush serializes thousands of profiles a second,
    // under the model's lock); the bytes are what the loop below writes.
    const uint64_t fields[13] = {std::bit_cast<uint64_t>(c.weight),
                                 std::bit_cast<uint64_t>(c.weight_sq),
                                 std::bit_cast<uint64_t>(c.sum),
                                 std::bit_cast<uint64_t>(c.sum_sq),
                                 std::bit_cast<uint64_t>(c.min),
                                 std::bit_cast<uint64_t>(c.max),
                                 c.count, c.nulls, c.nans, c.pos_infs, c.neg_infs, invalid_weights,
                                 std::bit_cast<uint64_t>(c.missing_weight)};
    w.Raw(std::string_view(reinterpret_cast<const char*>(fields), sizeof(fields)));
    return;
  }
  w.F64(c.weight);
  w.F64(c.weight_sq);
  w.F64(c.sum);
  w.F64(c.sum_sq);
  w.F64(c.min);
  w.F64(c.max);
  w.U64(c.count);
  w.U64(c.nulls);
  w.U64(c.nans);
  w.U64(c.pos_infs);
  w.U64(c.neg_infs);
  w.U64(invalid_weights);
  w.F64(c.missing_weight);
}

// The counts of a blob of format `version` (both formats number alike);
// false when the input ends early. Version 1 kept no missing weight: the
// count of missing values times the mean weight of the finite ones stands in
// for it (the count itself when there are none).
inline bool GetCounts(ByteReader& r, uint32_t version, NumericCounts* c,
                      uint64_t* invalid_weights) {
  if (!(r.F64(&c->weight) && r.F64(&c->weight_sq) && r.F64(&c->sum) && r.F64(&c->sum_sq) &&
        r.F64(&c->min) && r.F64(&c->max) && r.U64(&c->count) && r.U64(&c->nulls) &&
        r.U64(&c->nans) && r.U64(&c->pos_infs) && r.U64(&c->neg_infs) &&
        r.U64(invalid_weights))) {
    return false;
  }
  if (version >= 2) return r.F64(&c->missing_weight);
  const double missing = static_cast<double>(c->nulls + c->nans + c->pos_infs + c->neg_infs);
  c->missing_weight = c->count > 0 ? missing * (c->weight / static_cast<double>(c->count)) : missing;
  return true;
}

}  // namespace driftwatch::detectors::internal
