#include "driftwatch/service/alert_rules.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "internal/log.h"

namespace driftwatch::service {

absl::Status AlertRules::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("rules_file ", path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<alerting::Rule>> rules = alerting::ParseRules(text.str(), path);
  if (!rules.ok()) return rules.status();
  const size_t n = rules->size();
  {
    absl::MutexLock lock(&mu_);
    engine_.SetRules(std::move(*rules));
  }
  internal::LogInfo("rules loaded", {{"rules_file", path}, {"rules", absl::StrCat(n)}});
  return absl::OkStatus();
}

void AlertRules::Evaluate(const Evaluation& evaluation, int64_t now_ms) {
  std::vector<alerting::AlertChange> changes;
  {
    absl::MutexLock lock(&mu_);
    if (engine_.rules().empty() || evaluation.generation == last_generation_) return;
    last_generation_ = evaluation.generation;
    ++evaluations_;
    changes = engine_.Evaluate(evaluation.signals, now_ms);
  }
  for (const alerting::AlertChange& c : changes) {
    const alerting::Labels& l = c.alert.labels;
    auto label = [&l](const char* name) {
      auto it = l.find(name);
      return it == l.end() ? std::string() : it->second;
    };
    internal::LogInfo(
        "alert", {{"rule", c.alert.rule},
                  {"state", std::string(alerting::AlertStateName(c.alert.state))},
                  {"from", std::string(alerting::AlertStateName(c.from))},
                  {"model", label("model")},
                  {"slice", label("slice")},
                  {"feature", label("feature")},
                  {"value", absl::StrCat(c.alert.value)},
                  {"fingerprint", c.alert.fingerprint},
                  {"runbook_url", c.alert.annotations.contains("runbook_url")
                                      ? c.alert.annotations.at("runbook_url")
                                      : std::string()}});
  }
}

std::vector<alerting::Alert> AlertRules::List(
    const std::vector<alerting::AlertState>& states) const {
  std::vector<alerting::AlertState> want = states;
  if (want.empty()) want = {alerting::AlertState::kPending, alerting::AlertState::kFiring};
  std::vector<alerting::Alert> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [fp, a] : engine_.alerts()) {
    if (std::find(want.begin(), want.end(), a.state) != want.end()) out.push_back(a);
  }
  return out;
}

size_t AlertRules::rule_count() const {
  absl::MutexLock lock(&mu_);
  return engine_.rules().size();
}

uint64_t AlertRules::evaluations() const {
  absl::MutexLock lock(&mu_);
  return evaluations_;
}

}  // namespace driftwatch::service
