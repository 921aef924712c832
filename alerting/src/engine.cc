#include "driftwatch/alerting/engine.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "driftwatch/base/byte_io.h"

namespace driftwatch::alerting {
namespace {

// The signals of one (model, slice) in one evaluation.
struct Group {
  std::string model;                                                        // "id@version"
  std::string slice;                                                        // "*" or "k=v[,k=v]"
  absl::flat_hash_map<std::string, std::map<std::string, double>> by_name;  // name -> feature -> v
  std::set<std::string> per_feature;  // names with a value for some feature
};

bool ModelMatches(const std::string& selector, const std::string& model) {
  if (selector == "*") return true;
  if (selector == model) return true;
  const size_t at = model.rfind('@');
  return at != std::string::npos && selector == model.substr(0, at);
}

bool SliceMatches(const Rule& rule, const std::string& slice) {
  if (slice == "*") return rule.population;
  if (rule.slices.empty()) return true;
  std::map<std::string, std::string> kv;
  for (absl::string_view part : absl::StrSplit(slice, ',')) {
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    kv[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
  }
  for (const Matcher& m : rule.slices) {
    auto it = kv.find(m.name);
    if (!m.Matches(it == kv.end() ? std::string_view() : std::string_view(it->second))) {
      return false;
    }
  }
  return true;
}

// Calls fn on each threshold of the tree, depth first.
template <typename Fn>
void ForEachThreshold(const Condition& c, Fn&& fn) {
  if (c.kind == Condition::Kind::kThreshold) {
    fn(c.threshold);
    return;
  }
  for (const Condition& child : c.children) ForEachThreshold(child, fn);
}

bool FeatureMatches(const Threshold& t, const std::string& feature) {
  for (const Matcher& m : t.feature) {
    if (!m.Matches(feature)) return false;
  }
  return true;
}

// Whether `t` reads a per-feature signal in this group.
bool PerFeature(const Threshold& t, const Group& g) {
  return !t.feature.empty() || g.per_feature.contains(t.signal);
}

std::optional<double> ValueOf(const Threshold& t, const Group& g, const std::string& feature) {
  auto it = g.by_name.find(t.signal);
  if (it == g.by_name.end()) return std::nullopt;
  const bool per_feature = PerFeature(t, g);
  const std::string& key = per_feature ? feature : std::string();
  if (per_feature && !FeatureMatches(t, feature)) return std::nullopt;
  auto v = it->second.find(key);
  if (v == it->second.end()) return std::nullopt;
  return v->second;
}

bool Holds(const Condition& c, const Group& g, const std::string& feature, bool active) {
  switch (c.kind) {
    case Condition::Kind::kThreshold: {
      const std::optional<double> v = ValueOf(c.threshold, g, feature);
      return v && c.threshold.Holds(*v, active);
    }
    case Condition::Kind::kAll:
      for (const Condition& child : c.children) {
        if (!Holds(child, g, feature, active)) return false;
      }
      return true;
    case Condition::Kind::kAny:
      for (const Condition& child : c.children) {
        if (Holds(child, g, feature, active)) return true;
      }
      return false;
    case Condition::Kind::kAtLeast: {
      int n = 0;
      for (const Condition& child : c.children) n += Holds(child, g, feature, active);
      return n >= c.at_least;
    }
  }
  return false;
}

Labels LabelsFor(const Rule& rule, const Group& g, const std::string& feature) {
  Labels labels(rule.labels.begin(), rule.labels.end());
  labels["alertname"] = rule.name;
  const size_t at = g.model.rfind('@');
  labels["model"] = at == std::string::npos ? g.model : g.model.substr(0, at);
  if (at != std::string::npos) labels["model_version"] = g.model.substr(at + 1);
  labels["slice"] = g.slice;
  if (!feature.empty()) labels["feature"] = feature;
  labels["severity"] = rule.severity;
  return labels;
}

}  // namespace

std::string_view AlertStateName(AlertState state) {
  switch (state) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "unknown";
}

std::string ExpandTemplate(std::string_view text, const Labels& labels, double value) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find("{{", i);
    if (open == std::string_view::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out.append(text.substr(i, open - i));
    std::string_view expr = text.substr(open + 2, close - open - 2);
    while (!expr.empty() && expr.front() == ' ') expr.remove_prefix(1);
    while (!expr.empty() && expr.back() == ' ') expr.remove_suffix(1);
    if (expr == "$value") {
      absl::StrAppend(&out, value);
    } else if (expr.starts_with("$labels.")) {
      expr.remove_prefix(8);
      auto it = labels.find(std::string(expr));
      if (it != labels.end()) out.append(it->second);
    } else {
      out.append(text.substr(open, close + 2 - open));  // not ours: left as written
    }
    i = close + 2;
  }
  out.append(text.substr(i));
  return out;
}

std::string EncodeAlert(const Alert& a) {
  base::ByteWriter w;
  w.Header(std::string_view("DWAL"), uint32_t{1});
  auto str = [&w](const std::string& s) { w.Str(s); };
  str(a.rule);
  str(a.fingerprint);
  w.U32(static_cast<uint32_t>(a.state));
  for (int64_t t : {a.active_at_ms, a.fired_at_ms, a.resolved_at_ms, a.last_held_at_ms}) {
    w.U64(static_cast<uint64_t>(t));
  }
  w.F64(a.value);
  for (const std::map<std::string, std::string>* m : {&a.labels, &a.annotations}) {
    w.U32(static_cast<uint32_t>(m->size()));
    for (const auto& [k, v] : *m) {
      str(k);
      str(v);
    }
  }
  return std::move(w).Finish();
}

absl::StatusOr<Alert> DecodeAlert(std::string_view bytes) {
  base::ByteReader r(bytes);
  if (absl::Status st = r.Header("alert", std::string_view("DWAL"), uint32_t{1}); !st.ok()) {
    return st;
  }
  auto bad = [](const char* what) { return absl::DataLossError(absl::StrCat("alert: ", what)); };
  Alert a;
  uint32_t state = 0;
  if (!r.Str(&a.rule) || !r.Str(&a.fingerprint) || !r.U32(&state)) return bad("truncated");
  if (state > static_cast<uint32_t>(AlertState::kResolved)) return bad("unknown state");
  a.state = static_cast<AlertState>(state);
  for (int64_t* t : {&a.active_at_ms, &a.fired_at_ms, &a.resolved_at_ms, &a.last_held_at_ms}) {
    uint64_t v = 0;
    if (!r.U64(&v)) return bad("truncated times");
    *t = static_cast<int64_t>(v);
  }
  if (!r.F64(&a.value)) return bad("truncated value");
  for (std::map<std::string, std::string>* m : {&a.labels, &a.annotations}) {
    uint32_t n = 0;
    if (!r.U32(&n) || n > r.remaining() / 8) return bad("bad map size");
    for (uint32_t i = 0; i < n; ++i) {
      std::string k, v;
      if (!r.Str(&k) || !r.Str(&v)) return bad("truncated map");
      (*m)[k] = v;
    }
  }
  if (r.remaining() != 0) return bad("trailing bytes");
  return a;
}

void RuleEngine::SetRules(std::vector<Rule> rules) { rules_ = std::move(rules); }

void RuleEngine::Restore(std::vector<Alert> alerts) {
  for (Alert& a : alerts) {
    if (a.state == AlertState::kInactive) continue;
    std::string fp = a.fingerprint;
    alerts_[fp] = std::move(a);
  }
}

std::vector<AlertChange> RuleEngine::Evaluate(const std::vector<detectors::Signal>& signals,
                                              int64_t now_ms) {
  std::map<std::pair<std::string, std::string>, Group> groups;
  for (const detectors::Signal& s : signals) {
    Group& g = groups[{s.model, s.slice}];
    if (g.model.empty()) {
      g.model = s.model;
      g.slice = s.slice;
    }
    g.by_name[s.name][s.feature] = s.value;
    if (!s.feature.empty()) g.per_feature.insert(s.name);
  }

  struct Held {
    const Rule* rule;
    Labels labels;
    double value;
  };
  std::map<std::string, Held> held;  // by fingerprint
  for (const Rule& rule : rules_) {
    for (const auto& group : groups) {
      const Group& g = group.second;  // not a binding: lambdas below capture it
      if (!ModelMatches(rule.model, g.model) || !SliceMatches(rule, g.slice)) continue;
      if (rule.min_support > 0) {
        auto it = g.by_name.find(rule.support_signal);
        const double support =
            it == g.by_name.end() || !it->second.contains("") ? 0 : it->second.at("");
        if (!(support >= rule.min_support)) continue;
      }
      // The features this rule is evaluated for: those of its per-feature
      // thresholds' signals that their matchers allow; or none.
      std::set<std::string> features;
      bool per_feature = false;
      ForEachThreshold(rule.condition, [&](const Threshold& t) {
        if (!PerFeature(t, g)) return;
        per_feature = true;
        auto it = g.by_name.find(t.signal);
        if (it == g.by_name.end()) return;
        for (const auto& [feature, v] : it->second) {
          if (!feature.empty() && FeatureMatches(t, feature)) features.insert(feature);
        }
      });
      if (!per_feature) features.insert("");
      for (const std::string& feature : features) {
        Labels labels = LabelsFor(rule, g, feature);
        const std::string fp = FingerprintHex(labels);
        auto existing = alerts_.find(fp);
        const bool active =
            existing != alerts_.end() && (existing->second.state == AlertState::kPending ||
                                          existing->second.state == AlertState::kFiring);
        if (!Holds(rule.condition, g, feature, active)) continue;
        double value = 0;
        bool first = true;
        ForEachThreshold(rule.condition, [&](const Threshold& t) {
          if (!first) return;
          first = false;
          value = ValueOf(t, g, feature).value_or(std::nan(""));
        });
        held[fp] = Held{&rule, std::move(labels), value};
      }
    }
  }

  std::vector<AlertChange> changes;
  auto change = [&](Alert& a, AlertState to) {
    AlertChange c{a, a.state};
    a.state = to;
    c.alert.state = to;
    changes.push_back(std::move(c));
  };
  for (auto& [fp, h] : held) {
    auto [it, added] = alerts_.try_emplace(fp);
    Alert& a = it->second;
    if (added || a.state == AlertState::kResolved || a.state == AlertState::kInactive) {
      a = Alert{};
      a.rule = h.rule->name;
      a.labels = h.labels;
      a.fingerprint = fp;
      a.active_at_ms = now_ms;
    }
    a.last_held_at_ms = now_ms;
    a.value = h.value;
    a.annotations.clear();
    for (const auto& [name, text] : h.rule->annotations) {
      a.annotations[name] = ExpandTemplate(text, a.labels, a.value);
    }
    a.annotations["runbook_url"] = ExpandTemplate(h.rule->runbook_url, a.labels, a.value);
    if (a.state != AlertState::kPending && a.state != AlertState::kFiring) {
      if (h.rule->for_ms == 0) {
        a.fired_at_ms = now_ms;
        // Straight to firing: one change, from inactive.
        change(a, AlertState::kFiring);
      } else {
        change(a, AlertState::kPending);
      }
    } else if (a.state == AlertState::kPending && now_ms - a.active_at_ms >= h.rule->for_ms) {
      a.fired_at_ms = now_ms;
      change(a, AlertState::kFiring);
    }
  }
  std::map<std::string, const Rule*> rule_by_name;
  for (const Rule& r : rules_) rule_by_name[r.name] = &r;
  for (auto it = alerts_.begin(); it != alerts_.end();) {
    Alert& a = it->second;
    if (held.contains(it->first)) {
      ++it;
      continue;
    }
    auto rule = rule_by_name.find(a.rule);
    const bool rule_gone = rule == rule_by_name.end();
    if (a.state == AlertState::kPending) {
      change(a, AlertState::kInactive);
      it = alerts_.erase(it);
      continue;
    }
    // A firing alert of a rule that is gone resolves now.
    if (a.state == AlertState::kFiring &&
        (rule_gone || now_ms - a.last_held_at_ms >= rule->second->keep_firing_for_ms)) {
      a.resolved_at_ms = now_ms;
      change(a, AlertState::kResolved);
    }
    if (a.state == AlertState::kResolved &&
        now_ms - a.resolved_at_ms >= options_.resolved_retention_ms) {
      it = alerts_.erase(it);
      continue;
    }
    ++it;
  }
  return changes;
}

}  // namespace driftwatch::alerting
