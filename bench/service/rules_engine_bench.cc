// One rules-engine evaluation as the service will run it: the default rules
// (deploy/rules.yaml) over one evaluation's signals for 20 features x 100
// slices (+ the population) of one model, a tenth of the slices drifting so
// alerts exist and move through their states. Issue 10's target: <= 50 ms
// on one core.
#include <cmath>
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

// The signals the evaluator emits for one model (docs/alerting.md), with
// their baseline values where they have one.
std::vector<detectors::Signal> MakeSignals(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<detectors::Signal> out;
  for (int s = 0; s <= 100; ++s) {
    const std::string slice = s == 0 ? "*" : absl::StrCat("app_version=1.", s);
    const bool drifting = s % 10 == 3;
    auto add = [&](const std::string& feature, const char* name, double v, double b = NAN) {
      out.push_back({"loan@v1", slice, feature, name, v, b});
    };
    for (int f = 0; f < 20; ++f) {
      const std::string feature = absl::StrCat("f", f);
      add(feature, "psi", (drifting ? 0.3 : 0.02) + 0.05 * u(rng));
      add(feature, "js", (drifting ? 0.15 : 0.01) + 0.02 * u(rng));
      add(feature, "ks", 0.05 * u(rng));
      add(feature, "ks_p", drifting ? 1e-6 * u(rng) : u(rng));
      add(feature, "wasserstein_norm", 0.1 * u(rng));
      add(feature, "ks_error_bound", 0.01);
      add(feature, "wasserstein_norm_error_bound", 0.01);
      add(feature, "null_rate", 0.01 + 0.01 * u(rng), 0.01);
    }
    add("", "score_psi", (drifting ? 0.3 : 0.01) + 0.01 * u(rng));
    add("", "score_mean", 0.3 + 0.01 * u(rng), 0.3);
    add("", "volume", 5000 + 100 * u(rng), 5000);
    add("", "events", 300000);
    add("", "auc", (drifting ? 0.70 : 0.78) + 0.005 * u(rng), 0.78);
    add("", "estimated_auc", (drifting ? 0.71 : 0.78) + 0.005 * u(rng), 0.78);
    add("", "ece", 0.02 + 0.005 * u(rng), 0.02);
    add("", "brier", 0.15, 0.15);
    add("", "label_coverage", 0.5);
    add("", "labelled", 150000);
  }
  return out;
}

std::vector<Rule> RulesOf(const std::string& yaml, const std::string& source,
                          benchmark::State& state) {
  absl::StatusOr<std::vector<Rule>> rules = ParseRules(yaml, source);
  if (!rules.ok()) state.SkipWithError(std::string(rules.status().message()).c_str());
  return rules.ok() ? *rules : std::vector<Rule>();
}

void BM_RulesEngineDefaultRules20Features100Slices(benchmark::State& state) {
  std::ifstream in(std::string(DRIFTWATCH_SOURCE_DIR) + "/deploy/rules.yaml");
  std::stringstream text;
  text << in.rdbuf();
  RuleEngine engine;
  engine.SetRules(RulesOf(text.str(), "deploy/rules.yaml", state));
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

// The default rules plus a CUSUM change point on every feature's PSI
// (2,020 detectors fed per evaluation, given parameters) and a
// Benjamini-Hochberg rule over the 2,020 KS p-values.
void BM_RulesEngineDefaultRulesPlusChangePointAndBh(benchmark::State& state) {
  std::ifstream in(std::string(DRIFTWATCH_SOURCE_DIR) + "/deploy/rules.yaml");
  std::stringstream text;
  text << in.rdbuf();
  std::vector<Rule> rules = RulesOf(text.str(), "deploy/rules.yaml", state);
  for (Rule& r : RulesOf(R"(rules:
  - name: psi_shift
    condition: {change_point: psi, method: cusum, k: 0.5, h: 5, warmup: 30, hold: 30m}
    runbook_url: runbooks/feature-drift.md
  - name: ks_many
    condition: 'ks_p < 0.05'
    fdr_q: 0.05
    runbook_url: runbooks/feature-drift.md
)",
                         "bench", state)) {
    rules.push_back(std::move(r));
  }
  RuleEngine engine;
  engine.SetRules(rules);
  std::vector<std::vector<detectors::Signal>> evaluations;
  for (uint64_t i = 0; i < 8; ++i) evaluations.push_back(MakeSignals(i));
  int64_t now = 1'796'000'000'000;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(engine.Evaluate(evaluations[i++ % evaluations.size()], now));
    now += 15'000;
  }
  state.counters["detectors"] = static_cast<double>(engine.detectors().size());
  state.counters["alerts"] = static_cast<double>(engine.alerts().size());
}
BENCHMARK(BM_RulesEngineDefaultRulesPlusChangePointAndBh)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace driftwatch::alerting
