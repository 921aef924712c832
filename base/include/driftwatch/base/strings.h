// String helpers every layer needs.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace driftwatch::base {

// Debian's abseil (20220623) has its own string_view, which std::string_view
// does not convert to implicitly; hash-map lookups and StrCat go through this.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace driftwatch::base
