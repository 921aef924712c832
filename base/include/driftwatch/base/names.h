// The reserved names of slices and categories. They are part of the wire
// contract: reports, /metrics labels and stored slice rows carry them.
#pragma once

#include <string_view>

namespace driftwatch::base {

// The whole population of a model: slice id 0.
inline constexpr std::string_view kAllSlice = "*";
// Values past a cap: the category bin of a capped categorical summary, and
// the slice that unseen values of a slice key share once the key is full.
inline constexpr std::string_view kOther = "__other__";
// A missing value: the null bin of a categorical summary, and the slice of
// events that do not send a slice key.
inline constexpr std::string_view kMissing = "__missing__";

}  // namespace driftwatch::base
