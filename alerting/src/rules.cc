#include "driftwatch/alerting/rules.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "yaml-cpp/yaml.h"

namespace driftwatch::alerting {
namespace {

// absl::StrCat for std::string_view too (Debian's abseil has its own
// string_view type).
void Append(std::string* out, std::string_view s) { out->append(s); }
void Append(std::string* out, const std::string& s) { out->append(s); }
void Append(std::string* out, const char* s) { out->append(s); }
template <typename N>
requires std::is_arithmetic_v<N>
void Append(std::string* out, N n) { out->append(absl::StrCat(n)); }
template <typename... A>
std::string Cat(const A&... a) {
  std::string out;
  (Append(&out, a), ...);
  return out;
}

std::string_view Msg(const absl::Status& st) {
  return std::string_view(st.message().data(), st.message().size());
}

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::string_view(what.data(), what.size()));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.starts_with(p); }
bool EndsWith(std::string_view s, std::string_view p) { return s.ends_with(p); }

template <typename Fn>
void ForEachThresholdOf(const Condition& c, Fn&& fn) {
  if (c.kind == Condition::Kind::kThreshold) fn(c.threshold);
  for (const Condition& child : c.children) ForEachThresholdOf(child, fn);
}

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A quoted string at the front of `s` ("..." or '...', with \" and \\).
absl::StatusOr<std::string> TakeQuoted(std::string_view* s) {
  const char quote = s->front();
  std::string out;
  size_t i = 1;
  for (; i < s->size() && (*s)[i] != quote; ++i) {
    if ((*s)[i] == '\\' && i + 1 < s->size()) ++i;
    out.push_back((*s)[i]);
  }
  if (i >= s->size()) return Bad(Cat("unterminated string in ", *s));
  s->remove_prefix(i + 1);
  return out;
}

const char* OpText(Threshold::Op op) {
  switch (op) {
    case Threshold::Op::kGt:
      return ">";
    case Threshold::Op::kGe:
      return ">=";
    case Threshold::Op::kLt:
      return "<";
    case Threshold::Op::kLe:
      return "<=";
  }
  return "?";
}

bool Compare(Threshold::Op op, double v, double t) {
  switch (op) {
    case Threshold::Op::kGt:
      return v > t;
    case Threshold::Op::kGe:
      return v >= t;
    case Threshold::Op::kLt:
      return v < t;
    case Threshold::Op::kLe:
      return v <= t;
  }
  return false;
}

}  // namespace

bool Matcher::Matches(std::string_view v) const {
  switch (op) {
    case Op::kEq:
      return v == value;
    case Op::kNe:
      return v != value;
    case Op::kRe:
      return std::regex_match(v.begin(), v.end(), *regex);
    case Op::kNre:
      return !std::regex_match(v.begin(), v.end(), *regex);
  }
  return false;
}

std::string Matcher::ToString() const {
  static constexpr const char* kOps[] = {"=", "!=", "=~", "!~"};
  return Cat(name, kOps[static_cast<int>(op)], "\"", value, "\"");
}

absl::StatusOr<Matcher> ParseMatcher(std::string_view text) {
  std::string_view s = Trim(text);
  size_t n = 0;
  while (n < s.size() && IsNameChar(s[n])) ++n;
  if (n == 0) return Bad(Cat("matcher \"", text, "\": expected a label name"));
  Matcher m;
  m.name = std::string(s.substr(0, n));
  s = Trim(s.substr(n));
  if (StartsWith(s, "=~")) {
    m.op = Matcher::Op::kRe;
  } else if (StartsWith(s, "!~")) {
    m.op = Matcher::Op::kNre;
  } else if (StartsWith(s, "!=")) {
    m.op = Matcher::Op::kNe;
  } else if (StartsWith(s, "=")) {
    m.op = Matcher::Op::kEq;
  } else {
    return Bad(Cat("matcher \"", text, "\": expected =, !=, =~ or !~ after ", m.name));
  }
  s = Trim(s.substr(m.op == Matcher::Op::kEq ? 1 : 2));
  if (!s.empty() && (s.front() == '"' || s.front() == '\'')) {
    absl::StatusOr<std::string> v = TakeQuoted(&s);
    if (!v.ok()) return Bad(Cat("matcher \"", text, "\": ", Msg(v.status())));
    m.value = std::move(*v);
    if (!Trim(s).empty()) {
      return Bad(Cat("matcher \"", text, "\": unexpected \"", Trim(s), "\""));
    }
  } else {
    m.value = std::string(s);
  }
  if (m.op == Matcher::Op::kRe || m.op == Matcher::Op::kNre) {
    try {
      m.regex = std::make_shared<const std::regex>(m.value, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return Bad(Cat("matcher \"", text, "\": bad regex \"", m.value, "\": ", e.what()));
    }
  }
  return m;
}

bool Threshold::Holds(double v, bool active) const {
  if (!std::isfinite(v)) return false;
  if (active && resolve) {
    // The resolve threshold replaces the firing one while active.
    return Compare(op == Op::kGt || op == Op::kGe ? Op::kGt : Op::kLt, v, *resolve);
  }
  return Compare(op, v, value);
}

std::string Series::ToString() const {
  std::string out = signal;
  if (!feature.empty()) {
    std::vector<std::string> parts;
    for (const Matcher& m : feature) parts.push_back(m.ToString());
    absl::StrAppend(&out, "{", absl::StrJoin(parts, ","), "}");
  }
  if (transform == Transform::kChange) return Cat("change(", out, ")");
  if (transform == Transform::kRatio) return Cat("ratio(", out, ")");
  return out;
}

std::string Threshold::ToString() const {
  return Cat(Series::ToString(), " ", OpText(op), " ", value);
}

std::string ChangePoint::ToString() const {
  std::string out = Cat("changepoint(", Series::ToString(), ", ");
  switch (method) {
    case Method::kEwma:
      absl::StrAppend(&out, "ewma lambda=", ewma.lambda, " L=", ewma.L, " warmup=", ewma.warmup);
      break;
    case Method::kCusum:
      absl::StrAppend(&out, "cusum k=", cusum.k, " h=", cusum.h, " warmup=", cusum.warmup);
      break;
    case Method::kPageHinkley:
      absl::StrAppend(&out, "page-hinkley delta=", page_hinkley.delta,
                      " threshold=", page_hinkley.threshold,
                      " min_instances=", page_hinkley.min_instances);
      break;
  }
  if (target_arl0) absl::StrAppend(&out, " target_arl0=", *target_arl0);
  if (hold_ms > 0) absl::StrAppend(&out, " hold=", hold_ms / 1000, "s");
  return out + ")";
}

namespace {

// Parses the series at the front of `*s` and advances past it.
absl::Status TakeSeries(std::string_view expr, std::string_view* sp, Series* out) {
  std::string_view& s = *sp;
  s = Trim(s);
  for (auto [word, transform] : {std::pair{std::string_view("change("), Transform::kChange},
                                 std::pair{std::string_view("ratio("), Transform::kRatio}}) {
    if (!StartsWith(s, word)) continue;
    std::string_view inner = s.substr(word.size());
    if (absl::Status st = TakeSeries(expr, &inner, out); !st.ok()) return st;
    if (out->transform != Transform::kValue) {
      return Bad("change() and ratio() do not nest");
    }
    inner = Trim(inner);
    if (inner.empty() || inner.front() != ')') {
      return Bad(Cat("expected ) after ", out->signal));
    }
    out->transform = transform;
    s = inner.substr(1);
    return absl::OkStatus();
  }
  size_t n = 0;
  while (n < s.size() && IsNameChar(s[n])) ++n;
  if (n == 0) {
    return Bad("expected a signal name (psi, score_psi, auc, ...)");
  }
  out->signal = std::string(s.substr(0, n));
  s = Trim(s.substr(n));
  if (!s.empty() && s.front() == '{') {
    size_t close = std::string_view::npos;
    bool quoted = false;
    char q = 0;
    for (size_t i = 1; i < s.size(); ++i) {
      if (quoted) {
        if (s[i] == '\\') {
          ++i;
        } else if (s[i] == q) {
          quoted = false;
        }
      } else if (s[i] == '"' || s[i] == '\'') {
        quoted = true;
        q = s[i];
      } else if (s[i] == '}') {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) return Bad("unclosed {");
    std::string_view inside = s.substr(1, close - 1);
    // Split on commas outside quotes.
    size_t start = 0;
    quoted = false;
    for (size_t i = 0; i <= inside.size(); ++i) {
      if (i < inside.size() && quoted) {
        if (inside[i] == '\\') {
          ++i;
        } else if (inside[i] == q) {
          quoted = false;
        }
        continue;
      }
      if (i < inside.size() && (inside[i] == '"' || inside[i] == '\'')) {
        quoted = true;
        q = inside[i];
        continue;
      }
      if (i == inside.size() || inside[i] == ',') {
        std::string_view part = Trim(inside.substr(start, i - start));
        start = i + 1;
        if (part.empty()) continue;
        absl::StatusOr<Matcher> m = ParseMatcher(part);
        if (!m.ok()) return m.status();
        if (m->name != "feature") {
          return Bad(Cat("only the feature can be matched in a condition (got ", m->name,
                         "); select slices with the rule's slices"));
        }
        out->feature.push_back(std::move(*m));
      }
    }
    s = Trim(s.substr(close + 1));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Series> ParseSeries(std::string_view expr) {
  std::string_view s = expr;
  Series out;
  if (absl::Status st = TakeSeries(expr, &s, &out); !st.ok()) {
    return Bad(Cat("series \"", expr, "\": ", Msg(st)));
  }
  if (!Trim(s).empty()) return Bad(Cat("series \"", expr, "\": unexpected \"", Trim(s), "\""));
  return out;
}

absl::StatusOr<Threshold> ParseThreshold(std::string_view expr) {
  std::string_view s = Trim(expr);
  auto bad = [&](std::string_view why) { return Bad(Cat("condition \"", expr, "\": ", why)); };
  Threshold t;
  if (absl::Status st = TakeSeries(expr, &s, &t); !st.ok()) {
    return Bad(Cat("condition \"", expr, "\": ", Msg(st)));
  }
  s = Trim(s);
  if (StartsWith(s, ">=")) {
    t.op = Threshold::Op::kGe;
    s.remove_prefix(2);
  } else if (StartsWith(s, "<=")) {
    t.op = Threshold::Op::kLe;
    s.remove_prefix(2);
  } else if (StartsWith(s, ">")) {
    t.op = Threshold::Op::kGt;
    s.remove_prefix(1);
  } else if (StartsWith(s, "<")) {
    t.op = Threshold::Op::kLt;
    s.remove_prefix(1);
  } else {
    return bad("expected >, >=, < or <= after the signal");
  }
  s = Trim(s);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), t.value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(t.value)) {
    return bad(Cat("expected a finite number after ", OpText(t.op), ", got \"", s, "\""));
  }
  return t;
}

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text) {
  std::string_view s = Trim(text);
  if (s == "0") return 0;
  int64_t unit = 0;
  if (EndsWith(s, "ms")) {
    unit = 1;
    s.remove_suffix(2);
  } else if (!s.empty()) {
    switch (s.back()) {
      case 's':
        unit = 1000;
        break;
      case 'm':
        unit = 60'000;
        break;
      case 'h':
        unit = 3'600'000;
        break;
      case 'd':
        unit = 86'400'000;
        break;
      default:
        break;
    }
    if (unit != 0) s.remove_suffix(1);
  }
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (unit == 0 || s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 0 ||
      n > INT64_MAX / unit) {
    return Bad(Cat("duration \"", text, "\": expected a count and ms, s, m, h or d"));
  }
  return n * unit;
}

namespace {

class RuleParser {
 public:
  explicit RuleParser(std::string_view source) : source_(source) {}

  absl::StatusOr<RulesFile> Parse(std::string_view yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      return Bad(Cat(source_, ":", e.mark.line + 1, ": not YAML: ", e.msg));
    }
    RulesFile file;
    if (!root || root.IsNull()) return file;
    if (!root.IsMap()) return Bad(Cat(source_, ": expected a map with `rules:`"));
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key != "rules" && key != "inhibit_rules") {
        return Bad(Cat(source_, ":", Line(kv.first), ": unknown top-level key \"", key,
                       "\" (expected rules, inhibit_rules)"));
      }
    }
    if (const YAML::Node list = root["rules"]; list && !list.IsNull()) {
      if (!list.IsSequence()) return Bad(Cat(source_, ":", Line(list), ": rules must be a list"));
      std::set<std::string> names;
      for (const YAML::Node& node : list) {
        absl::StatusOr<Rule> rule = ParseRule(node);
        if (!rule.ok()) return rule.status();
        if (!names.insert(rule->name).second) {
          return Bad(Cat(source_, ":", rule->line, ": rule \"", rule->name,
                         "\": a rule of that name is already defined"));
        }
        file.rules.push_back(std::move(*rule));
      }
    }
    if (const YAML::Node list = root["inhibit_rules"]; list && !list.IsNull()) {
      if (!list.IsSequence()) {
        return Bad(Cat(source_, ":", Line(list), ": inhibit_rules must be a list"));
      }
      for (const YAML::Node& node : list) {
        absl::StatusOr<InhibitRule> rule = ParseInhibitRule(node);
        if (!rule.ok()) return rule.status();
        file.inhibit_rules.push_back(std::move(*rule));
      }
    }
    return file;
  }

  absl::StatusOr<Rule> ParseOne(std::string_view yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      return Bad(Cat(source_, ":", e.mark.line + 1, ": not YAML: ", e.msg));
    }
    return ParseRule(root);
  }

 private:
  static int Line(const YAML::Node& n) { return n.Mark().line + 1; }

  absl::Status Error(const Rule& rule, const YAML::Node& at, std::string_view why) const {
    return Bad(Cat(source_, ":", Line(at), ": rule \"", rule.name.empty() ? "(unnamed)" : rule.name,
                   "\": ", why));
  }

  absl::StatusOr<std::string> Scalar(const Rule& rule, const YAML::Node& n,
                                     std::string_view key) const {
    if (!n.IsScalar()) return Error(rule, n, Cat(key, " must be a single value"));
    return n.as<std::string>();
  }

  absl::StatusOr<Rule> ParseRule(const YAML::Node& node) {
    Rule rule;
    rule.line = Line(node);
    if (!node.IsMap()) return Error(rule, node, "a rule must be a map");
    if (const YAML::Node name = node["name"]; name && name.IsScalar()) {
      rule.name = name.as<std::string>();
    }
    if (rule.name.empty()) return Error(rule, node, "name is required");
    for (char c : rule.name) {
      if (!IsNameChar(c)) {
        return Error(rule, node["name"], "a name is letters, digits and _ (it is the alertname)");
      }
    }
    bool has_condition = false;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "name") continue;
      if (key == "model") {
        absl::StatusOr<std::string> s = Scalar(rule, v, key);
        if (!s.ok()) return s.status();
        rule.model = *s;
        if (rule.model.empty()) return Error(rule, v, "model must be \"*\", an id or id@version");
      } else if (key == "slices") {
        if (v.IsScalar() && v.as<std::string>() == "all") continue;
        if (!v.IsSequence()) {
          return Error(rule, v, "slices must be `all` or a list of matchers (platform=\"ios\")");
        }
        for (const YAML::Node& m : v) {
          absl::StatusOr<std::string> s = Scalar(rule, m, "a slice matcher");
          if (!s.ok()) return s.status();
          absl::StatusOr<Matcher> matcher = ParseMatcher(*s);
          if (!matcher.ok()) return Error(rule, m, Msg(matcher.status()));
          rule.slices.push_back(std::move(*matcher));
        }
        rule.population = false;  // "*" has no slice key to match
      } else if (key == "condition") {
        absl::StatusOr<Condition> c = ParseCondition(rule, v, 0);
        if (!c.ok()) return c.status();
        rule.condition = std::move(*c);
        has_condition = true;
      } else if (key == "for" || key == "keep_firing_for") {
        absl::StatusOr<std::string> s = Scalar(rule, v, key);
        if (!s.ok()) return s.status();
        absl::StatusOr<int64_t> ms = ParseDurationMs(*s);
        if (!ms.ok()) return Error(rule, v, Cat(key, ": ", Msg(ms.status())));
        (key == "for" ? rule.for_ms : rule.keep_firing_for_ms) = *ms;
      } else if (key == "min_support") {
        absl::StatusOr<double> d = Number(rule, v, key);
        if (!d.ok()) return d.status();
        if (*d < 0) return Error(rule, v, "min_support must be >= 0");
        rule.min_support = *d;
      } else if (key == "support_signal") {
        absl::StatusOr<std::string> s = Scalar(rule, v, key);
        if (!s.ok()) return s.status();
        rule.support_signal = *s;
      } else if (key == "severity") {
        absl::StatusOr<std::string> s = Scalar(rule, v, key);
        if (!s.ok()) return s.status();
        rule.severity = *s;
      } else if (key == "labels" || key == "annotations") {
        if (!v.IsMap()) return Error(rule, v, Cat(key, " must be a map"));
        for (const auto& lv : v) {
          const std::string name = lv.first.as<std::string>();
          absl::StatusOr<std::string> value = Scalar(rule, lv.second, name);
          if (!value.ok()) return value.status();
          (key == "labels" ? rule.labels : rule.annotations)[name] = *value;
        }
      } else if (key == "fdr_q") {
        absl::StatusOr<double> d = Number(rule, v, key);
        if (!d.ok()) return d.status();
        if (!(*d > 0 && *d < 1)) return Error(rule, v, "fdr_q must be in (0, 1)");
        rule.fdr_q = *d;
      } else if (key == "runbook_url") {
        absl::StatusOr<std::string> s = Scalar(rule, v, key);
        if (!s.ok()) return s.status();
        rule.runbook_url = *s;
      } else {
        return Error(rule, kv.first, Cat("unknown key \"", key, "\""));
      }
    }
    if (!has_condition) return Error(rule, node, "condition is required");
    rule.yaml = YAML::Dump(node);
    if (rule.runbook_url.empty()) {
      return Error(rule, node,
                   "runbook_url is required: every alert links to what on-call does about it");
    }
    if (rule.fdr_q) {
      bool any = false;
      absl::Status bad = absl::OkStatus();
      ForEachThresholdOf(rule.condition, [&](const Threshold& t) {
        if (!IsPValue(t.signal)) return;
        any = true;
        if (t.op != Threshold::Op::kLt && t.op != Threshold::Op::kLe) {
          bad = Error(rule, node["fdr_q"], Cat("fdr_q: ", t.ToString(),
                                               " must be a < or <= on the p-value"));
        }
        if (t.transform != Transform::kValue) {
          bad = Error(rule, node["fdr_q"], "fdr_q: a p-value is compared as it is");
        }
      });
      if (!bad.ok()) return bad;
      if (!any) {
        return Error(rule, node["fdr_q"],
                     "fdr_q needs a threshold on a p-value signal (ks_p, chi2_p)");
      }
    }
    for (const char* reserved :
         {"alertname", "model", "model_version", "slice", "feature", "severity"}) {
      if (rule.labels.contains(reserved)) {
        return Error(rule, node["labels"], Cat("label \"", reserved, "\" is set by driftwatch"));
      }
    }
    return rule;
  }

  absl::StatusOr<double> Number(const Rule& rule, const YAML::Node& v, std::string_view key) const {
    absl::StatusOr<std::string> s = Scalar(rule, v, key);
    if (!s.ok()) return s.status();
    double d = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
    if (ec != std::errc() || end != s->data() + s->size() || !std::isfinite(d)) {
      return Error(rule, v, Cat(key, ": expected a number, got \"", *s, "\""));
    }
    return d;
  }

  absl::StatusOr<InhibitRule> ParseInhibitRule(const YAML::Node& node) const {
    InhibitRule rule;
    rule.line = Line(node);
    auto error = [&](const YAML::Node& at, std::string_view why) {
      return Bad(Cat(source_, ":", Line(at), ": inhibit rule: ", why));
    };
    if (!node.IsMap()) return error(node, "an inhibit rule is a map");
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "source_matchers" || key == "target_matchers") {
        if (!v.IsSequence()) return error(v, Cat(key, " must be a list of matchers"));
        for (const YAML::Node& m : v) {
          if (!m.IsScalar()) return error(m, "a matcher is one string, e.g. severity=\"page\"");
          absl::StatusOr<Matcher> matcher = ParseMatcher(m.as<std::string>());
          if (!matcher.ok()) return error(m, Msg(matcher.status()));
          (key == "source_matchers" ? rule.source : rule.target).push_back(std::move(*matcher));
        }
      } else if (key == "equal") {
        if (!v.IsSequence()) return error(v, "equal must be a list of label names");
        for (const YAML::Node& n : v) {
          if (!n.IsScalar()) return error(n, "equal must be a list of label names");
          rule.equal.push_back(n.as<std::string>());
        }
      } else {
        return error(kv.first, Cat("unknown key \"", key,
                                   "\" (source_matchers, target_matchers, equal)"));
      }
    }
    if (rule.source.empty() || rule.target.empty()) {
      return error(node, "source_matchers and target_matchers are both required");
    }
    return rule;
  }

  absl::StatusOr<Condition> ParseChangePoint(const Rule& rule, const YAML::Node& v) {
    Condition c;
    c.kind = Condition::Kind::kChangePoint;
    c.line = Line(v);
    ChangePoint& cp = c.change_point;
    absl::StatusOr<std::string> e = Scalar(rule, v["change_point"], "change_point");
    if (!e.ok()) return e.status();
    absl::StatusOr<Series> series = ParseSeries(*e);
    if (!series.ok()) return Error(rule, v["change_point"], Msg(series.status()));
    static_cast<Series&>(cp) = std::move(*series);
    std::string method = "cusum";
    if (v["method"]) {
      absl::StatusOr<std::string> m = Scalar(rule, v["method"], "method");
      if (!m.ok()) return m.status();
      method = *m;
    }
    if (method == "ewma") {
      cp.method = ChangePoint::Method::kEwma;
    } else if (method == "cusum") {
      cp.method = ChangePoint::Method::kCusum;
    } else if (method == "page-hinkley") {
      cp.method = ChangePoint::Method::kPageHinkley;
    } else {
      return Error(rule, v["method"],
                   Cat("method must be ewma, cusum or page-hinkley, got \"", method, "\""));
    }
    // The parameters `driftctl changepoint` takes, by method.
    struct Param {
      const char* name;
      ChangePoint::Method method;
    };
    using M = ChangePoint::Method;
    const Param params[] = {{"lambda", M::kEwma},        {"L", M::kEwma},
                            {"k", M::kCusum},            {"h", M::kCusum},
                            {"min_instances", M::kPageHinkley}, {"delta", M::kPageHinkley},
                            {"threshold", M::kPageHinkley},     {"alpha", M::kPageHinkley},
                            {"mode", M::kPageHinkley}};
    for (const auto& kv : v) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& n = kv.second;
      if (key == "change_point" || key == "method") continue;
      if (key == "warmup" || key == "mu0" || key == "sigma") {
        if (cp.method == M::kPageHinkley) {
          return Error(rule, kv.first, Cat(key, " does not apply to method page-hinkley"));
        }
        absl::StatusOr<double> d = Number(rule, n, key);
        if (!d.ok()) return d.status();
        if (key == "warmup") {
          if (*d < 2 || *d != std::floor(*d) || *d > 1e6) {
            return Error(rule, n, "warmup must be a whole number >= 2");
          }
          cp.ewma.warmup = cp.cusum.warmup = static_cast<int>(*d);
        } else if (key == "mu0") {
          cp.ewma.mu0 = cp.cusum.mu0 = *d;
        } else {
          if (*d <= 0) return Error(rule, n, "sigma must be > 0");
          cp.ewma.sigma = cp.cusum.sigma = *d;
        }
        continue;
      }
      if (key == "target_arl0") {
        absl::StatusOr<double> d = Number(rule, n, key);
        if (!d.ok()) return d.status();
        if (*d < 2 || *d > 1e6) return Error(rule, n, "target_arl0 must be in [2, 1e6]");
        cp.target_arl0 = *d;
        continue;
      }
      if (key == "hold") {
        absl::StatusOr<std::string> h = Scalar(rule, n, key);
        if (!h.ok()) return h.status();
        absl::StatusOr<int64_t> ms = ParseDurationMs(*h);
        if (!ms.ok()) return Error(rule, n, Cat("hold: ", Msg(ms.status())));
        cp.hold_ms = *ms;
        continue;
      }
      const Param* p = nullptr;
      for (const Param& q : params) {
        if (key == q.name) p = &q;
      }
      if (p == nullptr) {
        return Error(rule, kv.first,
                     Cat("unknown key \"", key,
                         "\" in a change_point condition (method, lambda, L, k, h, warmup, mu0, "
                         "sigma, min_instances, delta, threshold, alpha, mode, target_arl0, hold)"));
      }
      if (p->method != cp.method) {
        return Error(rule, kv.first, Cat(key, " does not apply to method ", method));
      }
      if (key == "mode") {
        absl::StatusOr<std::string> m = Scalar(rule, n, key);
        if (!m.ok()) return m.status();
        if (*m == "both") {
          cp.page_hinkley.mode = detectors::PageHinkleyMode::kBoth;
        } else if (*m == "up") {
          cp.page_hinkley.mode = detectors::PageHinkleyMode::kUp;
        } else if (*m == "down") {
          cp.page_hinkley.mode = detectors::PageHinkleyMode::kDown;
        } else {
          return Error(rule, n, "mode must be both, up or down");
        }
        continue;
      }
      absl::StatusOr<double> d = Number(rule, n, key);
      if (!d.ok()) return d.status();
      if (key == "lambda") cp.ewma.lambda = *d;
      if (key == "L") cp.ewma.L = *d;
      if (key == "k") cp.cusum.k = *d;
      if (key == "h") cp.cusum.h = *d;
      if (key == "min_instances") {
        if (*d < 1 || *d != std::floor(*d) || *d > 1e6) {
          return Error(rule, n, "min_instances must be a whole number >= 1");
        }
        cp.page_hinkley.min_instances = static_cast<int>(*d);
      }
      if (key == "delta") cp.page_hinkley.delta = *d;
      if (key == "threshold") cp.page_hinkley.threshold = *d;
      if (key == "alpha") cp.page_hinkley.alpha = *d;
    }
    // The detectors' own validation, naming the parameter.
    absl::Status valid = absl::OkStatus();
    switch (cp.method) {
      case M::kEwma:
        valid = detectors::Ewma::Create(cp.ewma).status();
        break;
      case M::kCusum:
        valid = detectors::Cusum::Create(cp.cusum).status();
        break;
      case M::kPageHinkley:
        valid = detectors::PageHinkley::Create(cp.page_hinkley).status();
        break;
    }
    if (!valid.ok()) return Error(rule, v, Msg(valid));
    return c;
  }

  absl::StatusOr<Condition> ParseCondition(const Rule& rule, const YAML::Node& v, int depth) {
    if (depth > 16) return Error(rule, v, "conditions nest more than 16 deep");
    Condition c;
    c.line = Line(v);
    if (v.IsScalar()) {
      absl::StatusOr<Threshold> t = ParseThreshold(v.as<std::string>());
      if (!t.ok()) return Error(rule, v, Msg(t.status()));
      c.threshold = std::move(*t);
      return c;
    }
    if (!v.IsMap()) return Error(rule, v, "a condition is an expression, or all / any / at_least");
    if (v["change_point"]) return ParseChangePoint(rule, v);
    if (v["expr"]) {
      for (const auto& kv : v) {
        const std::string key = kv.first.as<std::string>();
        if (key != "expr" && key != "resolve") {
          return Error(rule, kv.first,
                       Cat("unknown key \"", key, "\" in a condition (expr, resolve)"));
        }
      }
      absl::StatusOr<std::string> e = Scalar(rule, v["expr"], "expr");
      if (!e.ok()) return e.status();
      absl::StatusOr<Threshold> t = ParseThreshold(*e);
      if (!t.ok()) return Error(rule, v["expr"], Msg(t.status()));
      c.threshold = std::move(*t);
      if (v["resolve"]) {
        absl::StatusOr<double> r = Number(rule, v["resolve"], "resolve");
        if (!r.ok()) return r.status();
        const bool above =
            c.threshold.op == Threshold::Op::kGt || c.threshold.op == Threshold::Op::kGe;
        if (above ? *r > c.threshold.value : *r < c.threshold.value) {
          return Error(rule, v["resolve"],
                       Cat("resolve ", *r, " must be on the other side of the threshold ",
                           c.threshold.value, " (it only widens the firing range)"));
        }
        c.threshold.resolve = *r;
      }
      return c;
    }
    YAML::Node list;
    for (const auto& kv : v) {
      const std::string key = kv.first.as<std::string>();
      if (key == "all") {
        c.kind = Condition::Kind::kAll;
        list = kv.second;
      } else if (key == "any") {
        c.kind = Condition::Kind::kAny;
        list = kv.second;
      } else if (key == "at_least") {
        c.kind = Condition::Kind::kAtLeast;
        absl::StatusOr<double> n = Number(rule, kv.second, "at_least");
        if (!n.ok()) return n.status();
        if (*n < 1 || *n != std::floor(*n)) return Error(rule, kv.second, "at_least must be >= 1");
        c.at_least = static_cast<int>(*n);
      } else if (key == "of") {
        list = kv.second;
      } else {
        return Error(rule, kv.first,
                     Cat("unknown key \"", key,
                         "\" in a condition (all, any, at_least "
                         "+ of, expr + resolve, change_point)"));
      }
    }
    if (!list || !list.IsSequence() || list.size() == 0) {
      return Error(rule, v,
                   c.kind == Condition::Kind::kAtLeast ? "at_least needs `of:` a list"
                                                       : "all / any need a list of conditions");
    }
    for (const YAML::Node& child : list) {
      absl::StatusOr<Condition> cc = ParseCondition(rule, child, depth + 1);
      if (!cc.ok()) return cc.status();
      c.children.push_back(std::move(*cc));
    }
    if (c.kind == Condition::Kind::kAtLeast && c.at_least > static_cast<int>(c.children.size())) {
      return Error(
          rule, v,
          Cat("at_least ", c.at_least, " of ", c.children.size(), " conditions can never hold"));
    }
    return c;
  }

  std::string source_;
};

}  // namespace

absl::StatusOr<RulesFile> ParseRulesFile(std::string_view yaml, std::string_view source) {
  try {
    absl::StatusOr<RulesFile> file = RuleParser(source).Parse(yaml);
    if (file.ok()) {
      for (Rule& r : file->rules) r.source = std::string(source);
    }
    return file;
  } catch (const YAML::Exception& e) {
    return Bad(Cat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
}

absl::StatusOr<std::vector<Rule>> ParseRules(std::string_view yaml, std::string_view source) {
  absl::StatusOr<RulesFile> file = ParseRulesFile(yaml, source);
  if (!file.ok()) return file.status();
  return std::move(file->rules);
}

absl::StatusOr<Rule> ParseRule(std::string_view yaml, std::string_view source) {
  try {
    absl::StatusOr<Rule> rule = RuleParser(source).ParseOne(yaml);
    if (rule.ok()) rule->source = std::string(source);
    return rule;
  } catch (const YAML::Exception& e) {
    return Bad(Cat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
}

bool MatchesAll(const std::vector<Matcher>& matchers,
                const std::map<std::string, std::string>& labels) {
  for (const Matcher& m : matchers) {
    auto it = labels.find(m.name);
    if (!m.Matches(it == labels.end() ? std::string_view() : std::string_view(it->second))) {
      return false;
    }
  }
  return true;
}

bool IsPValue(std::string_view signal) { return signal.ends_with("_p"); }

}  // namespace driftwatch::alerting
