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

// One signal's value and baseline value.
struct Value {
  double value = 0;
  double baseline = 0;  // NaN when it has none
};

// The signals of one (model, slice) in one evaluation.
struct Group {
  std::string model;                                                       // "id@version"
  std::string slice;                                                       // "*" or "k=v[,k=v]"
  absl::flat_hash_map<std::string, std::map<std::string, Value>> by_name;  // name -> feature -> v
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
  return MatchesAll(rule.slices, kv);
}

// Calls fn on each series (of a threshold or a change point) of the tree,
// depth first.
template <typename Fn>
void ForEachSeries(const Condition& c, Fn&& fn) {
  if (c.kind == Condition::Kind::kThreshold) {
    fn(static_cast<const Series&>(c.threshold));
    return;
  }
  if (c.kind == Condition::Kind::kChangePoint) {
    fn(static_cast<const Series&>(c.change_point));
    return;
  }
  for (const Condition& child : c.children) ForEachSeries(child, fn);
}

template <typename Fn>
void ForEachChangePoint(const Condition& c, Fn&& fn) {
  if (c.kind == Condition::Kind::kChangePoint) fn(c.change_point);
  for (const Condition& child : c.children) ForEachChangePoint(child, fn);
}

template <typename Fn>
void ForEachThreshold(const Condition& c, Fn&& fn) {
  if (c.kind == Condition::Kind::kThreshold) fn(c.threshold);
  for (const Condition& child : c.children) ForEachThreshold(child, fn);
}

bool FeatureMatches(const Series& t, const std::string& feature) {
  for (const Matcher& m : t.feature) {
    if (!m.Matches(feature)) return false;
  }
  return true;
}

// Whether `t` reads a per-feature signal in this group.
bool PerFeature(const Series& t, const Group& g) {
  return !t.feature.empty() || g.per_feature.contains(t.signal);
}

std::optional<double> ValueOf(const Series& t, const Group& g, const std::string& feature) {
  auto it = g.by_name.find(t.signal);
  if (it == g.by_name.end()) return std::nullopt;
  const bool per_feature = PerFeature(t, g);
  const std::string& key = per_feature ? feature : std::string();
  if (per_feature && !FeatureMatches(t, feature)) return std::nullopt;
  auto v = it->second.find(key);
  if (v == it->second.end()) return std::nullopt;
  const Value& x = v->second;
  switch (t.transform) {
    case Transform::kValue:
      return x.value;
    case Transform::kChange:
      if (!std::isfinite(x.baseline)) return std::nullopt;
      return x.value - x.baseline;
    case Transform::kRatio:
      if (!std::isfinite(x.baseline) || x.baseline == 0) return std::nullopt;
      return x.value / x.baseline;
  }
  return std::nullopt;
}

// What Holds needs besides the condition.
struct HoldContext {
  const Group& group;
  const std::string& feature;
  bool active;  // the alert is pending or firing
  const std::map<const Threshold*, double>& bh_cuts;  // BH: the threshold's p-value cut-off
  const std::map<const ChangePoint*, bool>& alarmed;  // within `hold` of an alarm
};

bool Holds(const Condition& c, const HoldContext& x) {
  switch (c.kind) {
    case Condition::Kind::kThreshold: {
      const std::optional<double> v = ValueOf(c.threshold, x.group, x.feature);
      if (!v) return false;
      if (auto cut = x.bh_cuts.find(&c.threshold); cut != x.bh_cuts.end()) {
        return std::isfinite(*v) && *v <= cut->second;
      }
      return c.threshold.Holds(*v, x.active);
    }
    case Condition::Kind::kChangePoint: {
      auto it = x.alarmed.find(&c.change_point);
      return it != x.alarmed.end() && it->second;
    }
    case Condition::Kind::kAll:
      for (const Condition& child : c.children) {
        if (!Holds(child, x)) return false;
      }
      return true;
    case Condition::Kind::kAny:
      for (const Condition& child : c.children) {
        if (Holds(child, x)) return true;
      }
      return false;
    case Condition::Kind::kAtLeast: {
      int n = 0;
      for (const Condition& child : c.children) n += Holds(child, x);
      return n >= c.at_least;
    }
  }
  return false;
}

// Benjamini-Hochberg at q over `p`: the largest p_(k) with p_(k) <= k q / m,
// or -1 when no hypothesis is rejected.
double BhCut(std::vector<double> p, double q) {
  std::sort(p.begin(), p.end());
  const double m = static_cast<double>(p.size());
  double cut = -1;
  for (size_t k = 1; k <= p.size(); ++k) {
    if (p[k - 1] <= static_cast<double>(k) * q / m) cut = p[k - 1];
  }
  return cut;
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

std::string_view Silence::StateAt(int64_t now_ms) const {
  if (now_ms < starts_at_ms) return "pending";
  return now_ms < ends_at_ms ? "active" : "expired";
}

absl::Status ValidateSilence(const Silence& silence) {
  if (silence.matchers.empty()) {
    return absl::InvalidArgumentError("a silence needs at least one matcher");
  }
  bool narrows = false;
  for (const Matcher& m : silence.matchers) narrows |= !m.Matches("");
  if (!narrows) {
    return absl::InvalidArgumentError(
        "every matcher of this silence matches an empty label, so it would silence every "
        "alert; add one that names something (e.g. alertname=\"feature_drift\")");
  }
  if (silence.ends_at_ms <= silence.starts_at_ms) {
    return absl::InvalidArgumentError("a silence must end after it starts");
  }
  return absl::OkStatus();
}

void MarkSuppressed(std::vector<Alert>* alerts, const std::map<std::string, Alert>& all,
                    const std::vector<Silence>& silences,
                    const std::vector<InhibitRule>& inhibit_rules, int64_t now_ms) {
  // The firing alerts that are sources of some inhibit rule, per rule.
  std::vector<std::vector<const Alert*>> sources(inhibit_rules.size());
  for (size_t i = 0; i < inhibit_rules.size(); ++i) {
    for (const auto& [fp, a] : all) {
      if (a.state == AlertState::kFiring && MatchesAll(inhibit_rules[i].source, a.labels)) {
        sources[i].push_back(&a);
      }
    }
  }
  auto label = [](const Labels& l, const std::string& name) {
    auto it = l.find(name);
    return it == l.end() ? std::string() : it->second;
  };
  for (Alert& a : *alerts) {
    a.silenced_by.clear();
    a.inhibited = false;
    for (const Silence& s : silences) {
      if (s.ActiveAt(now_ms) && MatchesAll(s.matchers, a.labels)) a.silenced_by.push_back(s.id);
    }
    for (size_t i = 0; i < inhibit_rules.size() && !a.inhibited; ++i) {
      const InhibitRule& r = inhibit_rules[i];
      if (!MatchesAll(r.target, a.labels)) continue;
      for (const Alert* src : sources[i]) {
        if (src->fingerprint == a.fingerprint) continue;
        bool equal = true;
        for (const std::string& name : r.equal) {
          equal &= label(src->labels, name) == label(a.labels, name);
        }
        if (equal) {
          a.inhibited = true;
          break;
        }
      }
    }
  }
}

void RuleEngine::SetRules(std::vector<Rule> rules) {
  rules_ = std::move(rules);
  // Detectors of conditions that are gone (or changed) go with them.
  std::set<std::pair<std::string, std::string>> kept;
  for (const Rule& r : rules_) {
    ForEachChangePoint(r.condition, [&](const ChangePoint& cp) { kept.insert({r.name, cp.ToString()}); });
  }
  for (auto it = detectors_.begin(); it != detectors_.end();) {
    if (kept.contains({it->second.info.rule, it->second.info.series})) {
      ++it;
    } else {
      it = detectors_.erase(it);
    }
  }
}

void RuleEngine::Restore(std::vector<Alert> alerts) {
  for (Alert& a : alerts) {
    if (a.state == AlertState::kInactive) continue;
    std::string fp = a.fingerprint;
    alerts_[fp] = std::move(a);
  }
}

std::vector<DetectorInfo> RuleEngine::detectors() const {
  std::vector<DetectorInfo> out;
  for (const auto& [key, slot] : detectors_) out.push_back(slot.info);
  return out;
}

bool RuleEngine::Feed(const ChangePoint& cp, Slot& slot, double x, int* calibrations_left) {
  using M = ChangePoint::Method;
  const bool created = slot.ewma || slot.cusum || slot.page_hinkley;
  if (!created && cp.target_arl0 && slot.info.error.empty()) {
    // Calibrate on the series' own first points: its warm-up (EWMA,
    // CUSUM) or min_instances (Page-Hinkley), at least 30.
    if (std::isfinite(x)) slot.calibration_points.push_back(x);
    const size_t need = static_cast<size_t>(std::max(
        30, cp.method == M::kPageHinkley ? cp.page_hinkley.min_instances
            : cp.method == M::kEwma      ? cp.ewma.warmup
                                         : cp.cusum.warmup));
    slot.info.calibrating = true;
    if (slot.calibration_points.size() < need || *calibrations_left <= 0) return false;
    --*calibrations_left;
    detectors::ArlCalibrationOptions o;
    o.target_arl0 = *cp.target_arl0;
    o.runs = options_.calibration_runs;
    o.seed = options_.calibration_seed;
    detectors::InControlModel model;
    model.reference = slot.calibration_points;
    absl::StatusOr<detectors::ArlCalibration> cal =
        cp.method == M::kEwma    ? detectors::CalibrateEwma(cp.ewma, model, o)
        : cp.method == M::kCusum ? detectors::CalibrateCusum(cp.cusum, model, o)
                                 : detectors::CalibratePageHinkley(cp.page_hinkley, model, o);
    ChangePoint tuned = cp;
    if (cal.ok()) {
      tuned.ewma.L = tuned.cusum.h = tuned.page_hinkley.threshold = cal->threshold;
      slot.info.calibrated_arl0 = cal->arl0;
    } else {
      slot.info.error = std::string(cal.status().message());
    }
    slot.info.calibrating = false;
    // The detector runs from the series' start with the tuned threshold:
    // the calibration points are replayed through it (its warm-up).
    std::vector<double> replay = std::move(slot.calibration_points);
    slot.calibration_points.clear();
    slot.ewma = *detectors::Ewma::Create(tuned.ewma);
    if (cp.method == M::kCusum) {
      slot.ewma.reset();
      slot.cusum = *detectors::Cusum::Create(tuned.cusum);
    } else if (cp.method == M::kPageHinkley) {
      slot.ewma.reset();
      slot.page_hinkley = *detectors::PageHinkley::Create(tuned.page_hinkley);
    }
    slot.info.threshold = cp.method == M::kEwma    ? tuned.ewma.L
                          : cp.method == M::kCusum ? tuned.cusum.h
                                                   : tuned.page_hinkley.threshold;
    bool alarm = false;
    for (double p : replay) {
      alarm = slot.ewma ? slot.ewma->Update(p)
              : slot.cusum ? slot.cusum->Update(p)
                           : slot.page_hinkley->Update(p);
    }
    slot.info.points = static_cast<int64_t>(replay.size());
    return alarm;
  }
  if (!created) {
    // The parameters as given (validated at load).
    if (cp.method == M::kEwma) {
      slot.ewma = *detectors::Ewma::Create(cp.ewma);
      slot.info.threshold = cp.ewma.L;
    } else if (cp.method == M::kCusum) {
      slot.cusum = *detectors::Cusum::Create(cp.cusum);
      slot.info.threshold = cp.cusum.h;
    } else {
      slot.page_hinkley = *detectors::PageHinkley::Create(cp.page_hinkley);
      slot.info.threshold = cp.page_hinkley.threshold;
    }
  }
  ++slot.info.points;
  return slot.ewma ? slot.ewma->Update(x)
         : slot.cusum ? slot.cusum->Update(x)
                      : slot.page_hinkley->Update(x);
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
    g.by_name[s.name][s.feature] = Value{s.value, s.baseline};
    if (!s.feature.empty()) g.per_feature.insert(s.name);
  }

  struct Held {
    const Rule* rule;
    Labels labels;
    double value;
  };
  std::map<std::string, Held> held;  // by fingerprint
  int calibrations_left = options_.max_calibrations_per_evaluation;
  for (const Rule& rule : rules_) {
    // The (model, slice, feature) candidates of this rule.
    struct Candidate {
      const Group* group;
      std::string feature;
    };
    std::vector<Candidate> candidates;
    for (const auto& entry : groups) {
      const Group& g = entry.second;  // not a binding: lambdas below capture it
      if (!ModelMatches(rule.model, g.model) || !SliceMatches(rule, g.slice)) continue;
      if (rule.min_support > 0) {
        double support = 0;
        if (auto it = g.by_name.find(rule.support_signal); it != g.by_name.end()) {
          if (auto v = it->second.find(""); v != it->second.end()) support = v->second.value;
        }
        if (!(support >= rule.min_support)) continue;
      }
      // The features this rule is evaluated for: those of its per-feature
      // series' signals that their matchers allow; or none.
      std::set<std::string> features;
      bool per_feature = false;
      ForEachSeries(rule.condition, [&](const Series& t) {
        if (!PerFeature(t, g)) return;
        per_feature = true;
        auto it = g.by_name.find(t.signal);
        if (it == g.by_name.end()) return;
        for (const auto& [feature, v] : it->second) {
          if (!feature.empty() && FeatureMatches(t, feature)) features.insert(feature);
        }
      });
      if (!per_feature) features.insert("");
      for (const std::string& feature : features) candidates.push_back({&g, feature});
    }

    // Benjamini-Hochberg over every candidate's p-value, per threshold.
    std::map<const Threshold*, double> bh_cuts;
    if (rule.fdr_q) {
      ForEachThreshold(rule.condition, [&](const Threshold& t) {
        if (!IsPValue(t.signal)) return;
        std::vector<double> p;
        for (const Candidate& c : candidates) {
          const std::optional<double> v = ValueOf(t, *c.group, c.feature);
          if (v && std::isfinite(*v)) p.push_back(*v);
        }
        bh_cuts[&t] = BhCut(std::move(p), *rule.fdr_q);
      });
    }

    for (const Candidate& cand : candidates) {
      const Group& g = *cand.group;
      const std::string& feature = cand.feature;
      // Every change-point detector gets this evaluation's point, whatever
      // the rest of the condition does.
      std::map<const ChangePoint*, bool> alarmed;
      int index = 0;
      ForEachChangePoint(rule.condition, [&](const ChangePoint& cp) {
        const std::string key = absl::StrCat(rule.name, "\x1f", index++, "\x1f", cp.ToString(),
                                             "\x1f", g.model, "\x1f", g.slice, "\x1f", feature);
        const std::optional<double> v = ValueOf(cp, g, feature);
        auto [it, added] = detectors_.try_emplace(key);
        Slot& slot = it->second;
        if (added) {
          slot.info = DetectorInfo{rule.name, g.model, g.slice, feature, cp.ToString()};
        }
        if (v) {
          slot.last_point_ms = now_ms;
          if (Feed(cp, slot, *v, &calibrations_left)) slot.info.last_alarm_ms = now_ms;
        }
        alarmed[&cp] = slot.info.last_alarm_ms > 0 && now_ms >= slot.info.last_alarm_ms &&
                       now_ms - slot.info.last_alarm_ms <= cp.hold_ms;
      });

      Labels labels = LabelsFor(rule, g, feature);
      const std::string fp = FingerprintHex(labels);
      auto existing = alerts_.find(fp);
      const bool active =
          existing != alerts_.end() && (existing->second.state == AlertState::kPending ||
                                        existing->second.state == AlertState::kFiring);
      if (!Holds(rule.condition, HoldContext{g, feature, active, bh_cuts, alarmed})) continue;
      double value = 0;
      bool first = true;
      ForEachSeries(rule.condition, [&](const Series& t) {
        if (!first) return;
        first = false;
        value = ValueOf(t, g, feature).value_or(std::nan(""));
      });
      held[fp] = Held{&rule, std::move(labels), value};
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
  std::set<std::string> rule_names;
  for (const Rule& r : rules_) rule_names.insert(r.name);
  for (auto it = detectors_.begin(); it != detectors_.end();) {
    const bool idle = now_ms - it->second.last_point_ms >= options_.detector_idle_ms;
    if (idle || !rule_names.contains(it->second.info.rule)) {
      it = detectors_.erase(it);
    } else {
      ++it;
    }
  }
  return changes;
}

}  // namespace driftwatch::alerting
