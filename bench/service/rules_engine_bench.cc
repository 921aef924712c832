// One rules-engine evaluation as the service will run it: the default rules
// (deploy/rules.yaml) over one evaluation's signals for 20 features x 100
// slices (+ the population) of one model, a tenth of the slices drifting so
// alerts exist and move through their states. Issue 10's target: <= 50 ms
// on one core.
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "driftwatch/alerting/engine.h"
#include "driftwatch/alerting/rules.h"

namespace driftwatch::alerting {
namespace {

std::vector<detectors::Signal> MakeSignals(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<detectors::Signal> out;
  for (int s = 0; s <= 100; ++s) {
    const std::string slice = s == 0 ? "*" : absl::StrCat("app_version=1.", s);
    const bool drifting = s % 10 == 3;
    for (int f = 0; f < 20; ++f) {
      const std::string feature = absl::StrCat("f", f);
      out.push_back({"loan@v1", slice, feature, "psi", (drifting ? 0.3 : 0.02) + 0.05 * u(rng)});
      out.push_back({"loan@v1", slice, feature, "js", (drifting ? 0.15 : 0.01) + 0.02 * u(rng)});
      out.push_back({"loan@v1", slice, feature, "null_rate_delta", 0.01 * u(rng)});
    }
    for (auto [name, v] : {std::pair{"score_psi", drifting ? 0.3 : 0.01},
                           {"auc_delta", drifting ? -0.08 : 0.0},
                           {"estimated_auc_delta", drifting ? -0.06 : 0.0},
                           {"ece_delta", 0.01},
                           {"label_coverage", 0.5},
                           {"volume", 5000.0},
                           {"volume_ratio", 1.0}}) {
      out.push_back({"loan@v1", slice, "", name, v + 0.001 * u(rng)});
    }
  }
  return out;
}

void BM_RulesEngineDefaultRules20Features100Slices(benchmark::State& state) {
  std::ifstream in(std::string(DRIFTWATCH_SOURCE_DIR) + "/deploy/rules.yaml");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(text.str(), "deploy/rules.yaml");
  if (!rules.ok()) {
    state.SkipWithError(std::string(rules.status().message()).c_str());
    return;
  }
  RuleEngine engine;
  engine.SetRules(*rules);
  std::vector<std::vector<detectors::Signal>> evaluations;
  for (uint64_t i = 0; i < 8; ++i) evaluations.push_back(MakeSignals(i));
  int64_t now = 1'796'000'000'000;
  size_t i = 0, changes = 0;
  for (auto _ : state) {
    changes += engine.Evaluate(evaluations[i++ % evaluations.size()], now).size();
    now += 15'000;
  }
  state.counters["signals"] = static_cast<double>(evaluations[0].size());
  state.counters["alerts"] = static_cast<double>(engine.alerts().size());
  state.counters["changes"] = static_cast<double>(changes);
}
BENCHMARK(BM_RulesEngineDefaultRules20Features100Slices)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace driftwatch::alerting
