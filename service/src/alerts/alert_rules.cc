#include "driftwatch/service/alert_rules.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "internal/log.h"

namespace driftwatch::service {
namespace {

std::string Label(const alerting::Labels& l, const char* name) {
  auto it = l.find(name);
  return it == l.end() ? std::string() : it->second;
}

// A random version-4 UUID, as Alertmanager names its silences.
std::string NewSilenceId() {
  static std::mt19937_64 rng(std::random_device{}());
  const uint64_t a = rng(), b = rng();
  char out[37];
  std::snprintf(out, sizeof out, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return out;
}

// A notification id: Standard Webhooks' "msg_" and 128 random bits.
std::string NewNotificationId() {
  static std::mt19937_64 rng(std::random_device{}());
  char out[40];
  std::snprintf(out, sizeof out, "msg_%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return out;
}

storage::SilenceRow ToRow(const alerting::Silence& s, int64_t now_ms) {
  storage::SilenceRow row;
  row.id = s.id;
  for (const alerting::Matcher& m : s.matchers) row.matchers.push_back(m.ToString());
  row.starts_at_ms = s.starts_at_ms;
  row.ends_at_ms = s.ends_at_ms;
  row.created_by = s.created_by;
  row.comment = s.comment;
  row.updated_at_ms = now_ms;
  return row;
}

}  // namespace

AlertRules::AlertRules(storage::AlertStore* store, const base::Clock* clock,
                       AlertRulesOptions options)
    : store_(store),
      clock_(clock),
      options_(options),
      engine_(alerting::EngineOptions{.resolved_retention_ms = options.resolved_retention_ms}) {}

absl::Status AlertRules::LoadFileLocked(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("rules_file ", path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<alerting::RulesFile> file = alerting::ParseRulesFile(text.str(), path);
  if (!file.ok()) return file.status();
  for (const alerting::Rule& r : file->rules) {
    if (api_rules_.contains(r.name)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ":", r.line, ": rule \"", r.name,
                       "\": a rule of that name was put through the API; delete it there "
                       "(Alerts.DeleteRule) or rename this one"));
    }
  }
  file_rules_ = std::move(file->rules);
  inhibit_rules_ = std::move(file->inhibit_rules);
  rules_file_ = path;
  internal::LogInfo("rules loaded", {{"rules_file", path},
                                     {"rules", absl::StrCat(file_rules_.size())},
                                     {"inhibit_rules", absl::StrCat(inhibit_rules_.size())}});
  return absl::OkStatus();
}

void AlertRules::ApplyRulesLocked() {
  std::vector<alerting::Rule> rules = file_rules_;
  for (const auto& [name, r] : api_rules_) rules.push_back(r);
  engine_.SetRules(std::move(rules));
}

void AlertRules::AttachNotifications(const alerting::NotificationConfig* config,
                                     std::function<void()> on_outbox) {
  absl::MutexLock lock(&mu_);
  dispatcher_ = std::make_unique<alerting::Dispatcher>(config);
  on_outbox_ = std::move(on_outbox);
}

absl::Status AlertRules::Start(const std::string& rules_file) {
  absl::MutexLock lock(&mu_);
  if (store_ != nullptr) {
    absl::StatusOr<std::vector<storage::RuleRow>> rows = store_->ReadRules();
    if (!rows.ok()) return rows.status();
    for (const storage::RuleRow& row : *rows) {
      absl::StatusOr<alerting::Rule> rule = alerting::ParseRule(row.yaml, "api");
      if (!rule.ok()) {
        // Saved by an older build that accepted it: kept on disk, not in force.
        internal::LogWarn("rules: a rule saved through the API no longer parses; not in force",
                          {{"rule", row.name}, {"error", rule.status().ToString()}});
        continue;
      }
      api_rules_[rule->name] = std::move(*rule);
    }
    absl::StatusOr<std::vector<storage::SilenceRow>> silences = store_->ReadSilences();
    if (!silences.ok()) return silences.status();
    for (const storage::SilenceRow& row : *silences) {
      alerting::Silence s;
      s.id = row.id;
      s.starts_at_ms = row.starts_at_ms;
      s.ends_at_ms = row.ends_at_ms;
      s.created_by = row.created_by;
      s.comment = row.comment;
      bool ok = true;
      for (const std::string& text : row.matchers) {
        absl::StatusOr<alerting::Matcher> m = alerting::ParseMatcher(text);
        if (!m.ok()) {
          ok = false;
          break;
        }
        s.matchers.push_back(std::move(*m));
      }
      if (ok) silences_[s.id] = std::move(s);
    }
  }
  if (!rules_file.empty()) {
    if (absl::Status st = LoadFileLocked(rules_file); !st.ok()) return st;
  }
  ApplyRulesLocked();
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<storage::AlertRow>> rows = store_->ReadAlerts();
  if (!rows.ok()) return rows.status();
  std::vector<alerting::Alert> alerts;
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
  if (dispatcher_ != nullptr) {
    absl::StatusOr<std::optional<std::string>> state = store_->ReadDispatcherState();
    if (!state.ok()) return state.status();
    if (state->has_value()) {
      if (absl::Status st = dispatcher_->RestoreState(**state); !st.ok()) {
        internal::LogWarn("notifications: the saved grouping state does not decode; groups "
                          "start anew",
                          {{"error", st.ToString()}});
      }
    }
  }
  internal::LogInfo("alerts restored", {{"alerts", absl::StrCat(n)},
                                        {"api_rules", absl::StrCat(api_rules_.size())},
                                        {"silences", absl::StrCat(silences_.size())}});
  return absl::OkStatus();
}

absl::Status AlertRules::ReloadFile() {
  absl::MutexLock lock(&mu_);
  if (rules_file_.empty()) {
    internal::LogInfo("rules: no rules_file to reload", {});
    return absl::OkStatus();
  }
  const std::string path = rules_file_;
  if (absl::Status st = LoadFileLocked(path); !st.ok()) {
    ++rule_load_errors_;
    internal::LogWarn("rules: reload refused; the rules in force stay",
                      {{"rules_file", path}, {"error", st.ToString()}});
    return st;
  }
  ApplyRulesLocked();
  return absl::OkStatus();
}

absl::StatusOr<alerting::Rule> AlertRules::PutRule(const std::string& yaml) {
  absl::StatusOr<alerting::Rule> rule = alerting::ParseRule(yaml, "api");
  if (!rule.ok()) return rule.status();
  absl::MutexLock lock(&mu_);
  for (const alerting::Rule& r : file_rules_) {
    if (r.name == rule->name) {
      return absl::FailedPreconditionError(
          absl::StrCat("rule \"", r.name, "\" is defined in ", r.source, ":", r.line,
                       "; edit it there (the rules file wins)"));
    }
  }
  if (store_ != nullptr) {
    if (absl::Status st = store_->SaveRule({rule->name, yaml, clock_->NowMs()}); !st.ok()) {
      return st;
    }
  }
  api_rules_[rule->name] = *rule;
  ApplyRulesLocked();
  internal::LogInfo("rule put", {{"rule", rule->name}});
  return rule;
}

absl::Status AlertRules::DeleteRule(const std::string& name) {
  absl::MutexLock lock(&mu_);
  for (const alerting::Rule& r : file_rules_) {
    if (r.name == name) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rule \"", name, "\" is defined in ", r.source, "; remove it there and reload"));
    }
  }
  if (!api_rules_.contains(name)) {
    return absl::NotFoundError(absl::StrCat("no rule \"", name, "\" was put through the API"));
  }
  if (store_ != nullptr) {
    absl::Status st = store_->DeleteRule(name);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  api_rules_.erase(name);
  ApplyRulesLocked();
  internal::LogInfo("rule deleted", {{"rule", name}});
  return absl::OkStatus();
}

std::vector<alerting::Rule> AlertRules::Rules() const {
  absl::MutexLock lock(&mu_);
  return engine_.rules();
}

absl::StatusOr<alerting::Silence> AlertRules::CreateSilence(alerting::Silence silence) {
  const int64_t now_ms = clock_->NowMs();
  if (silence.starts_at_ms == 0) silence.starts_at_ms = now_ms;
  if (absl::Status st = alerting::ValidateSilence(silence); !st.ok()) return st;
  if (silence.ends_at_ms <= now_ms) {
    return absl::InvalidArgumentError("ends_at: the silence would already have ended");
  }
  silence.id = NewSilenceId();
  absl::MutexLock lock(&mu_);
  if (store_ != nullptr) {
    if (absl::Status st = store_->SaveSilence(ToRow(silence, now_ms)); !st.ok()) return st;
  }
  silences_[silence.id] = silence;
  std::string matchers;
  for (const alerting::Matcher& m : silence.matchers) {
    absl::StrAppend(&matchers, matchers.empty() ? "" : ",", m.ToString());
  }
  internal::LogInfo("silence created", {{"id", silence.id},
                                        {"matchers", matchers},
                                        {"created_by", silence.created_by},
                                        {"ends_at_ms", absl::StrCat(silence.ends_at_ms)}});
  return silence;
}

absl::Status AlertRules::ExpireSilence(const std::string& id) {
  const int64_t now_ms = clock_->NowMs();
  absl::MutexLock lock(&mu_);
  auto it = silences_.find(id);
  if (it == silences_.end()) return absl::NotFoundError(absl::StrCat("no silence ", id));
  alerting::Silence s = it->second;
  if (s.ends_at_ms <= now_ms) {
    return absl::FailedPreconditionError(absl::StrCat("silence ", id, " has already expired"));
  }
  s.ends_at_ms = now_ms;
  if (s.starts_at_ms > now_ms) s.starts_at_ms = now_ms;
  if (store_ != nullptr) {
    if (absl::Status st = store_->SaveSilence(ToRow(s, now_ms)); !st.ok()) return st;
  }
  it->second = s;
  internal::LogInfo("silence expired", {{"id", id}});
  return absl::OkStatus();
}

std::vector<alerting::Silence> AlertRules::Silences() const {
  absl::MutexLock lock(&mu_);
  std::vector<alerting::Silence> out;
  for (const auto& [id, s] : silences_) out.push_back(s);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.starts_at_ms, a.id) < std::tie(b.starts_at_ms, b.id);
  });
  return out;
}

void AlertRules::MarkLocked(std::vector<alerting::Alert>* alerts, int64_t now_ms) const {
  std::vector<alerting::Silence> silences;
  for (const auto& [id, s] : silences_) silences.push_back(s);
  alerting::MarkSuppressed(alerts, engine_.alerts(), silences, inhibit_rules_, now_ms);
}

void AlertRules::Evaluate(const Evaluation& evaluation, int64_t now_ms) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<alerting::AlertChange> changes;
  std::vector<storage::AlertRow> upserts;
  std::vector<std::string> deletes;
  {
    absl::MutexLock lock(&mu_);
    if (engine_.rules().empty() && engine_.alerts().empty()) return;
    if (evaluation.generation == last_generation_) return;
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
    std::vector<alerting::Alert> changed;
    for (const alerting::AlertChange& c : changes) changed.push_back(c.alert);
    MarkLocked(&changed, now_ms);
    // The notifications these changes (and the groups' timers) cause:
    // silenced and inhibited alerts are not told about.
    storage::NotifyWrite notify;
    if (dispatcher_ != nullptr) {
      for (const alerting::Alert& a : changed) {
        if (a.silenced_by.empty() && !a.inhibited) dispatcher_->Update(a, now_ms);
      }
      for (alerting::Notification& n : dispatcher_->Flush(now_ms, NewNotificationId)) {
        storage::OutboxRow row;
        row.id = std::move(n.id);
        row.receiver = std::move(n.receiver);
        row.url = std::move(n.url);
        row.body = std::move(n.body);
        row.group_key = std::move(n.group_key);
        row.created_ms = now_ms;
        row.next_attempt_ms = now_ms;
        notify.outbox.push_back(std::move(row));
      }
      if (!changes.empty() || !notify.outbox.empty()) {
        notify.dispatcher_state = dispatcher_->EncodeState();
      }
    }
    // Saved before anyone can see it (the lock is held): an alert listed or
    // watched as firing is on disk, so a kill -9 right after cannot make it
    // fire again; its notifications are in the same transaction.
    bool saved = true;
    if (store_ != nullptr &&
        (!upserts.empty() || !deletes.empty() || notify.dispatcher_state)) {
      if (absl::Status st = store_->SaveAlerts(upserts, deletes, notify); !st.ok()) {
        saved = false;
        internal::LogWarn("alerts: cannot save alert state (retried at the next evaluation)",
                          {{"error", st.ToString()}});
      }
    }
    if (saved) {
      for (const storage::AlertRow& r : upserts) persisted_.insert(r.fingerprint);
      for (const std::string& fp : deletes) persisted_.erase(fp);
      if (!notify.outbox.empty() && on_outbox_) on_outbox_();
    } else {
      ++evaluation_failures_;
      // The dispatcher moved on in memory; what it did not save it does
      // again after a restart (at least once).
    }
    for (alerting::Alert& a : changed) {
      events_.push_back({++seq_, std::move(a)});
      if (events_.size() > options_.watch_backlog) events_.pop_front();
    }
    last_evaluation_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  for (const alerting::AlertChange& c : changes) {
    const alerting::Labels& l = c.alert.labels;
    internal::LogInfo("alert", {{"rule", c.alert.rule},
                                {"state", std::string(alerting::AlertStateName(c.alert.state))},
                                {"from", std::string(alerting::AlertStateName(c.from))},
                                {"model", Label(l, "model")},
                                {"slice", Label(l, "slice")},
                                {"feature", Label(l, "feature")},
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
  const int64_t now_ms = clock_->NowMs();
  absl::MutexLock lock(&mu_);
  for (const auto& [fp, a] : engine_.alerts()) {
    if (std::find(want.begin(), want.end(), a.state) != want.end()) out.push_back(a);
  }
  MarkLocked(&out, now_ms);
  return out;
}

std::vector<AlertEvent> AlertRules::WaitForChanges(uint64_t after_seq, absl::Duration timeout,
                                                   uint64_t* next_seq, bool* missed) const {
  absl::MutexLock lock(&mu_);
  auto ready = [this, after_seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seq_ > after_seq; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  std::vector<AlertEvent> out;
  *missed = !events_.empty() && events_.front().seq > after_seq + 1;
  for (const AlertEvent& e : events_) {
    if (e.seq > after_seq) out.push_back(e);
  }
  *next_seq = std::max(after_seq, seq_);
  return out;
}

uint64_t AlertRules::last_seq() const {
  absl::MutexLock lock(&mu_);
  return seq_;
}

AlertRulesStats AlertRules::Stats() const {
  const int64_t now_ms = clock_->NowMs();
  absl::MutexLock lock(&mu_);
  AlertRulesStats out;
  for (const auto& [fp, a] : engine_.alerts()) {
    ++out.alerts[{std::string(alerting::AlertStateName(a.state)), a.rule,
                  Label(a.labels, "severity")}];
  }
  out.evaluations = evaluations_;
  out.evaluation_failures = evaluation_failures_;
  out.rule_load_errors = rule_load_errors_;
  out.last_evaluation_seconds = last_evaluation_seconds_;
  out.rules = engine_.rules().size();
  for (const auto& [id, s] : silences_) out.active_silences += s.ActiveAt(now_ms);
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
