// Names the calling thread (at most 15 bytes, as Linux keeps them), so
// `top -H`, perf and /proc/PID/task/*/comm tell driftwatchd's threads apart.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace driftwatch::base {

inline void SetCurrentThreadName(std::string_view name) {
  const std::string truncated(name.substr(0, 15));
  (void)pthread_setname_np(pthread_self(), truncated.c_str());
}

}  // namespace driftwatch::base
