// driftctl sample: the deterministic sampling rule (docs/sampling.md) for
// event ids given as arguments or one per line on stdin, so a pipeline can
// check which events a sample of a rate keeps (e.g. which labels will join
// under a model's label_join_rate) without the service.
#include <cmath>
#include <iostream>
#include <string>

#include "absl/strings/str_format.h"
#include "driftwatch/base/sampling.h"
#include "driftwatch/cli/commands.h"

namespace driftwatch::cli {

int RunSample(const SampleOptions& options, std::istream& in, std::ostream& out,
              std::ostream& err) {
  if (!(options.rate >= 0) || !(options.rate <= 1)) {
    err << "driftctl sample: --rate must be in [0, 1], got " << options.rate << "\n";
    return kExitBadInput;
  }
  uint64_t kept = 0, total = 0;
  auto one = [&](const std::string& id) {
    const bool in_sample = base::InSample(id, options.rate);
    kept += in_sample;
    ++total;
    if (options.only_kept && !in_sample) return;
    if (options.ids_only) {
      out << id << "\n";
      return;
    }
    out << absl::StrFormat("%016x\t%.17g\t%s\t%s\n", base::SampleHash(id), base::SampleUnit(id),
                           in_sample ? "in" : "out", id);
  };
  if (!options.ids.empty()) {
    for (const std::string& id : options.ids) one(id);
  } else {
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      one(line);
    }
  }
  err << absl::StrFormat("driftctl sample: %d of %d ids in the sample at rate %g\n", kept, total,
                         options.rate);
  return kExitOk;
}

}  // namespace driftwatch::cli
