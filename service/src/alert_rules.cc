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

absl::Status AlertRules::Restore() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<storage::AlertRow>> rows = store_->ReadAlerts();
  if (!rows.ok()) return rows.status();
  std::vector<alerting::Alert> alerts;
  absl::MutexLock lock(&mu_);
  for (const storage::AlertRow& row : *rows) {
    persisted_.insert(row.fingerprint);  // a bad row is deleted by the next save
    absl::StatusOr<alerting::Alert> a = alerting::DecodeAlert(row.alert);
    if (!a.ok()) {
      internal::LogWarn("alerts: skipping a saved alert that does not decode",
                        {{"fingerprint", row.fingerprint}, {"error", a.status().ToString()}});
      continue;
    }
    alerts.push_back(std::move(*a));
  }
  const size_t n = alerts.size();
  engine_.Restore(std::move(alerts));
  internal::LogInfo("alerts restored", {{"alerts", absl::StrCat(n)}});
  return absl::OkStatus();
}

void AlertRules::Evaluate(const Evaluation& evaluation, int64_t now_ms) {
  std::vector<alerting::AlertChange> changes;
  std::vector<storage::AlertRow> upserts;
  std::vector<std::string> deletes;
  {
    absl::MutexLock lock(&mu_);
    if (engine_.rules().empty() || evaluation.generation == last_generation_) return;
    last_generation_ = evaluation.generation;
    ++evaluations_;
    changes = engine_.Evaluate(evaluation.signals, now_ms);
    if (store_ != nullptr) {
      // Pending and firing alerts move on every evaluation (when they last
      // held, their value); a resolved one only when it resolved.
      std::set<std::string> changed;
      for (const alerting::AlertChange& c : changes) changed.insert(c.alert.fingerprint);
      for (const auto& [fp, a] : engine_.alerts()) {
        if (a.state == alerting::AlertState::kPending || a.state == alerting::AlertState::kFiring ||
            changed.contains(fp) || !persisted_.contains(fp)) {
          upserts.push_back({fp, a.rule, alerting::EncodeAlert(a)});
        }
      }
      for (const std::string& fp : persisted_) {
        if (!engine_.alerts().contains(fp)) deletes.push_back(fp);
      }
    }
  }
  if (store_ != nullptr && (!upserts.empty() || !deletes.empty())) {
    // Only this (the evaluator's) thread saves, so the rows are written in
    // evaluation order.
    if (absl::Status st = store_->SaveAlerts(upserts, deletes); !st.ok()) {
      internal::LogWarn("alerts: cannot save alert state (retried at the next evaluation)",
                        {{"error", st.ToString()}});
    } else {
      absl::MutexLock lock(&mu_);
      for (const storage::AlertRow& r : upserts) persisted_.insert(r.fingerprint);
      for (const std::string& fp : deletes) persisted_.erase(fp);
    }
  }
  for (const alerting::AlertChange& c : changes) {
    const alerting::Labels& l = c.alert.labels;
    auto label = [&l](const char* name) {
      auto it = l.find(name);
      return it == l.end() ? std::string() : it->second;
    };
    internal::LogInfo("alert", {{"rule", c.alert.rule},
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
