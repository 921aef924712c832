#include "driftwatch/alerting/rule_tests.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/alerting/engine.h"
#include "yaml-cpp/yaml.h"

namespace driftwatch::alerting {
namespace {

constexpr int64_t kDefaultIntervalMs = 60'000;
// Bounds a test case's work: evaluations per case, samples per series.
constexpr int64_t kMaxEvaluations = 1'000'000;
// The engine reads 0 as "never" in places (e.g. a change point's last
// alarm), so test time t runs on the engine's clock as kClockStartMs + t.
constexpr int64_t kClockStartMs = 1'000'000'000'000;

std::string Str(std::string_view s) { return std::string(s); }
std::string Msg(const absl::Status& st) {
  return std::string(st.message().data(), st.message().size());
}
absl::Status Bad(const std::string& what) { return absl::InvalidArgumentError(what); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A number that is all of `s` (from_chars: no leading +).
std::optional<double> WholeNumber(std::string_view s) {
  double d = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return d;
}

// "25m", "90s", "1500ms": the largest unit that divides it.
std::string FormatDuration(int64_t ms) {
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return absl::StrCat(ms / 3'600'000, "h");
  if (ms % 60'000 == 0) return absl::StrCat(ms / 60'000, "m");
  if (ms % 1000 == 0) return absl::StrCat(ms / 1000, "s");
  return absl::StrCat(ms, "ms");
}

// {a="b", c="d"}, sorted by name as Labels are.
std::string FormatLabels(const std::map<std::string, std::string>& labels) {
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ", ";
    out += name + "=\"";
    for (char c : value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

// Splits on `sep` outside "..." and '...' (with \ escapes).
std::vector<std::string_view> SplitOutsideQuotes(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (quote != 0) {
      if (s[i] == '\\') {
        ++i;
      } else if (s[i] == quote) {
        quote = 0;
      }
    } else if (s[i] == '"' || s[i] == '\'') {
      quote = s[i];
    } else if (s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// One series of a test case: the signal it stands for and its samples.
struct InputSeries {
  detectors::Signal signal;  // value set per evaluation
  std::vector<std::optional<double>> samples;
  int line = 0;
};

struct ExpectedAlert {
  std::map<std::string, std::string> labels;       // a subset of the alert's
  std::map<std::string, std::string> annotations;  // each compared exactly
  int line = 0;
};

struct AlertCheck {
  int64_t eval_time_ms = 0;
  std::string alertname;
  std::vector<ExpectedAlert> expected;
  int line = 0;
};

struct TestCase {
  std::string name;
  std::vector<InputSeries> series;
  std::vector<AlertCheck> checks;
  int line = 0;
};

struct TestFile {
  int64_t interval_ms = kDefaultIntervalMs;
  std::vector<TestCase> cases;
};

// A selector `name{model="id@version", slice="k=v", feature="f"}` as the
// Signal it names (model "model@v1", slice "*", feature "" by default).
absl::StatusOr<detectors::Signal> ParseInputSelector(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Bad(absl::StrCat("series \"", Str(text), "\": ", why));
  };
  std::string_view s = Trim(text);
  size_t n = 0;
  while (n < s.size() && IsNameChar(s[n])) ++n;
  if (n == 0) return bad("expected a signal name (psi, volume, ...)");
  detectors::Signal signal;
  signal.name = Str(s.substr(0, n));
  signal.model = "model@v1";
  signal.slice = "*";
  s = Trim(s.substr(n));
  if (s.empty()) return signal;
  if (s.front() != '{' || s.back() != '}') {
    return bad(absl::StrCat("expected {labels} after ", signal.name, ", got \"", Str(s), "\""));
  }
  std::set<std::string> seen;
  for (std::string_view part : SplitOutsideQuotes(s.substr(1, s.size() - 2), ',')) {
    if (Trim(part).empty()) continue;
    absl::StatusOr<Matcher> m = ParseMatcher(part);
    if (!m.ok()) return bad(Msg(m.status()));
    if (m->op != Matcher::Op::kEq) {
      return bad(absl::StrCat("label ", m->name, ": an input series names its labels with ="));
    }
    if (m->name != "model" && m->name != "slice" && m->name != "feature") {
      return bad(absl::StrCat("unknown label \"", m->name, "\" (model, slice, feature)"));
    }
    if (!seen.insert(m->name).second) return bad(absl::StrCat("label ", m->name, " given twice"));
    if (m->name == "model") {
      const size_t at = m->value.find('@');
      if (at == std::string::npos || at == 0 || at + 1 == m->value.size()) {
        return bad(absl::StrCat("model \"", m->value, "\": expected id@version (loan@v1)"));
      }
      signal.model = m->value;
    } else if (m->name == "slice") {
      if (m->value != "*") {
        for (std::string_view kv : SplitOutsideQuotes(m->value, ',')) {
          if (kv.find('=') == std::string_view::npos || kv.front() == '=') {
            return bad(absl::StrCat("slice \"", m->value,
                                    "\": expected \"*\" or key=value (platform=android)"));
          }
        }
      }
      signal.slice = m->value;
    } else {
      signal.feature = m->value;
    }
  }
  return signal;
}

class TestFileParser {
 public:
  TestFileParser(const std::vector<Rule>& rules, std::string_view source) : source_(source) {
    for (const Rule& r : rules) rule_names_.insert(r.name);
  }

  absl::StatusOr<TestFile> Parse(std::string_view yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(Str(yaml));
    } catch (const YAML::Exception& e) {
      return Bad(absl::StrCat(source_, ":", e.mark.line + 1, ": not YAML: ", e.msg));
    }
    TestFile file;
    if (!root || !root.IsMap()) {
      return Bad(absl::StrCat(source_, ":1: expected a map with `tests:`"));
    }
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (key == "evaluation_interval") {
        absl::StatusOr<int64_t> ms = Duration(kv.second, "", key);
        if (!ms.ok()) return ms.status();
        if (*ms <= 0) return Error(kv.second, "", "evaluation_interval must be more than 0");
        file.interval_ms = *ms;
      } else if (key != "tests") {
        return Error(kv.first, "",
                     absl::StrCat("unknown top-level key \"", key,
                                  "\" (expected evaluation_interval, tests)"));
      }
    }
    const YAML::Node tests = root["tests"];
    if (!tests || !tests.IsSequence() || tests.size() == 0) {
      return Error(tests ? tests : root, "", "tests must be a list of test cases");
    }
    for (const YAML::Node& node : tests) {
      absl::StatusOr<TestCase> tc = ParseCase(node, file.interval_ms);
      if (!tc.ok()) return tc.status();
      file.cases.push_back(std::move(*tc));
    }
    return file;
  }

 private:
  static int Line(const YAML::Node& n) { return n.Mark().line + 1; }

  absl::Status Error(const YAML::Node& at, const std::string& test, const std::string& why) const {
    return Bad(absl::StrCat(source_, ":", Line(at), ": ",
                            test.empty() ? "" : absl::StrCat("test \"", test, "\": "), why));
  }

  absl::StatusOr<std::string> Scalar(const YAML::Node& n, const std::string& test,
                                     const std::string& key) const {
    if (!n.IsScalar()) return Error(n, test, absl::StrCat(key, " must be a single value"));
    return n.as<std::string>();
  }

  absl::StatusOr<int64_t> Duration(const YAML::Node& n, const std::string& test,
                                   const std::string& key) const {
    absl::StatusOr<std::string> s = Scalar(n, test, key);
    if (!s.ok()) return s.status();
    absl::StatusOr<int64_t> ms = ParseDurationMs(*s);
    if (!ms.ok()) return Error(n, test, absl::StrCat(key, ": ", Msg(ms.status())));
    return *ms;
  }

  // A map of names to single values (exp_labels, exp_annotations).
  absl::Status StringMap(const YAML::Node& n, const std::string& test, const std::string& key,
                         std::map<std::string, std::string>* out) const {
    if (!n || n.IsNull()) return absl::OkStatus();
    if (!n.IsMap()) return Error(n, test, absl::StrCat(key, " must be a map"));
    for (const auto& kv : n) {
      const std::string name = kv.first.as<std::string>();
      absl::StatusOr<std::string> v = Scalar(kv.second, test, absl::StrCat(key, ".", name));
      if (!v.ok()) return v.status();
      (*out)[name] = *v;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<TestCase> ParseCase(const YAML::Node& node, int64_t interval_ms) const {
    TestCase tc;
    tc.line = Line(node);
    if (!node.IsMap()) return Error(node, "", "a test case must be a map");
    if (const YAML::Node name = node["name"]; name && name.IsScalar()) {
      tc.name = name.as<std::string>();
    }
    if (tc.name.empty()) return Error(node, "", "a test case needs a name");
    const std::string& t = tc.name;
    bool has_checks = false;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "name") continue;
      if (key == "input_series") {
        if (v.IsNull()) continue;
        if (!v.IsSequence()) return Error(v, t, "input_series must be a list");
        for (const YAML::Node& s : v) {
          absl::StatusOr<InputSeries> series = ParseSeries(s, t);
          if (!series.ok()) return series.status();
          for (const InputSeries& other : tc.series) {
            const detectors::Signal &a = other.signal, &b = series->signal;
            if (std::tie(a.name, a.model, a.slice, a.feature) ==
                std::tie(b.name, b.model, b.slice, b.feature)) {
              return Error(s, t,
                           absl::StrCat("the same signal as the series of line ", other.line));
            }
          }
          tc.series.push_back(std::move(*series));
        }
      } else if (key == "alert_rule_test") {
        if (!v.IsSequence() || v.size() == 0) {
          return Error(v, t, "alert_rule_test must be a list of checks");
        }
        for (const YAML::Node& c : v) {
          absl::StatusOr<AlertCheck> check = ParseCheck(c, t, interval_ms);
          if (!check.ok()) return check.status();
          tc.checks.push_back(std::move(*check));
        }
        has_checks = true;
      } else {
        return Error(kv.first, t,
                     absl::StrCat("unknown key \"", key,
                                  "\" (expected name, input_series, alert_rule_test)"));
      }
    }
    if (!has_checks) return Error(node, t, "alert_rule_test is required");
    return tc;
  }

  absl::StatusOr<InputSeries> ParseSeries(const YAML::Node& node, const std::string& t) const {
    InputSeries series;
    series.line = Line(node);
    if (!node.IsMap()) return Error(node, t, "an input series is a map (series, values, baseline)");
    bool has_selector = false, has_values = false;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "series") {
        absl::StatusOr<std::string> s = Scalar(v, t, key);
        if (!s.ok()) return s.status();
        absl::StatusOr<detectors::Signal> signal = ParseInputSelector(*s);
        if (!signal.ok()) return Error(v, t, Msg(signal.status()));
        const double baseline = series.signal.baseline;
        series.signal = std::move(*signal);
        series.signal.baseline = baseline;
        has_selector = true;
      } else if (key == "values") {
        absl::StatusOr<std::string> s = Scalar(v, t, key);
        if (!s.ok()) return s.status();
        absl::StatusOr<std::vector<std::optional<double>>> samples = ExpandSeriesValues(*s);
        if (!samples.ok()) return Error(v, t, Msg(samples.status()));
        series.samples = std::move(*samples);
        has_values = true;
      } else if (key == "baseline") {
        absl::StatusOr<std::string> s = Scalar(v, t, key);
        if (!s.ok()) return s.status();
        const std::optional<double> d = WholeNumber(Trim(*s));
        if (!d || !std::isfinite(*d)) {
          return Error(v, t, absl::StrCat("baseline: expected a number, got \"", *s, "\""));
        }
        series.signal.baseline = *d;
      } else {
        return Error(kv.first, t,
                     absl::StrCat("unknown key \"", key,
                                  "\" in an input series (series, values, baseline)"));
      }
    }
    if (!has_selector) return Error(node, t, "an input series needs `series`");
    if (!has_values) return Error(node, t, "an input series needs `values`");
    return series;
  }

  absl::StatusOr<AlertCheck> ParseCheck(const YAML::Node& node, const std::string& t,
                                        int64_t interval_ms) const {
    AlertCheck check;
    check.line = Line(node);
    if (!node.IsMap()) {
      return Error(node, t, "an alert_rule_test entry is a map (eval_time, alertname, exp_alerts)");
    }
    bool has_time = false;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "eval_time") {
        absl::StatusOr<int64_t> ms = Duration(v, t, key);
        if (!ms.ok()) return ms.status();
        if (*ms / interval_ms >= kMaxEvaluations) {
          return Error(v, t,
                       absl::StrCat("eval_time ", FormatDuration(*ms), " is more than ",
                                    kMaxEvaluations, " evaluations away"));
        }
        check.eval_time_ms = *ms;
        has_time = true;
      } else if (key == "alertname") {
        absl::StatusOr<std::string> s = Scalar(v, t, key);
        if (!s.ok()) return s.status();
        if (!rule_names_.contains(*s)) {
          return Error(v, t,
                       absl::StrCat("alertname \"", *s, "\" is not a rule of the rules file"));
        }
        check.alertname = *s;
      } else if (key == "exp_alerts") {
        if (v.IsNull()) continue;
        if (!v.IsSequence()) return Error(v, t, "exp_alerts must be a list (empty: no alert)");
        for (const YAML::Node& e : v) {
          ExpectedAlert exp;
          exp.line = Line(e);
          if (!e.IsMap())
            return Error(e, t, "an expected alert is a map (exp_labels, exp_annotations)");
          for (const auto& ekv : e) {
            const std::string ekey = ekv.first.as<std::string>();
            if (ekey != "exp_labels" && ekey != "exp_annotations") {
              return Error(ekv.first, t,
                           absl::StrCat("unknown key \"", ekey,
                                        "\" in an expected alert "
                                        "(exp_labels, exp_annotations)"));
            }
            absl::Status st = StringMap(ekv.second, t, ekey,
                                        ekey == "exp_labels" ? &exp.labels : &exp.annotations);
            if (!st.ok()) return st;
          }
          check.expected.push_back(std::move(exp));
        }
      } else {
        return Error(kv.first, t,
                     absl::StrCat("unknown key \"", key,
                                  "\" in alert_rule_test "
                                  "(eval_time, alertname, exp_alerts)"));
      }
    }
    if (!has_time) return Error(node, t, "eval_time is required");
    if (check.alertname.empty()) return Error(node, t, "alertname is required");
    return check;
  }

  std::string source_;
  std::set<std::string> rule_names_;
};

bool Matches(const ExpectedAlert& exp, const Alert& a) {
  for (const auto& [name, value] : exp.labels) {
    auto it = a.labels.find(name);
    if (it == a.labels.end() || it->second != value) return false;
  }
  for (const auto& [name, value] : exp.annotations) {
    auto it = a.annotations.find(name);
    if (it == a.annotations.end() || it->second != value) return false;
  }
  return true;
}

bool LabelsMatch(const ExpectedAlert& exp, const Alert& a) {
  ExpectedAlert labels_only = exp;
  labels_only.annotations.clear();
  return Matches(labels_only, a);
}

// Kuhn's augmenting paths: a largest one-to-one matching of expected to
// actual alerts. match_of_actual[j] is the expected index or -1.
std::vector<int> MatchOneToOne(const std::vector<ExpectedAlert>& expected,
                               const std::vector<const Alert*>& actual) {
  std::vector<int> match_of_actual(actual.size(), -1);
  std::vector<char> seen;
  auto augment = [&](auto&& self, int i) -> bool {
    for (size_t j = 0; j < actual.size(); ++j) {
      if (seen[j] || !Matches(expected[i], *actual[j])) continue;
      seen[j] = 1;
      if (match_of_actual[j] < 0 || self(self, match_of_actual[j])) {
        match_of_actual[j] = i;
        return true;
      }
    }
    return false;
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    seen.assign(actual.size(), 0);
    augment(augment, static_cast<int>(i));
  }
  return match_of_actual;
}

std::string Plural(size_t n, const char* what) {
  return absl::StrCat(n, " ", what, n == 1 ? "" : "s");
}

// Empty when the firing alerts of check.alertname are the expected ones;
// otherwise what differs, one item a line.
std::string Check(const RuleEngine& engine, const AlertCheck& check, const std::string& source) {
  std::vector<const Alert*> firing, other;
  for (const auto& [fp, a] : engine.alerts()) {
    if (a.rule != check.alertname) continue;
    (a.state == AlertState::kFiring ? firing : other).push_back(&a);
  }
  const std::vector<int> match_of_actual = MatchOneToOne(check.expected, firing);
  std::vector<bool> expected_matched(check.expected.size(), false);
  size_t matched = 0;
  for (int i : match_of_actual) {
    if (i >= 0) {
      expected_matched[i] = true;
      ++matched;
    }
  }
  if (matched == check.expected.size() && matched == firing.size()) return "";

  auto since = [](int64_t clock_ms) { return FormatDuration(clock_ms - kClockStartMs); };
  std::string out = absl::StrCat(
      source, ":", check.line, ": ", check.alertname, " at ", FormatDuration(check.eval_time_ms),
      ": expected ", Plural(check.expected.size(), "firing alert"), ", got ", firing.size());
  for (size_t i = 0; i < check.expected.size(); ++i) {
    if (expected_matched[i]) continue;
    const ExpectedAlert& exp = check.expected[i];
    absl::StrAppend(&out, "\n  missing:    ", FormatLabels(exp.labels));
    if (!exp.annotations.empty()) {
      absl::StrAppend(&out, " annotations ", FormatLabels(exp.annotations));
    }
    // Close calls: the labels match but an annotation does not.
    for (const Alert* a : firing) {
      if (!LabelsMatch(exp, *a)) continue;
      for (const auto& [name, value] : exp.annotations) {
        auto it = a->annotations.find(name);
        absl::StrAppend(&out, "\n    annotation ", name, " of ", FormatLabels(a->labels),
                        ": expected \"", value, "\", got ",
                        it == a->annotations.end() ? std::string("none")
                                                   : absl::StrCat("\"", it->second, "\""));
      }
    }
  }
  for (size_t j = 0; j < firing.size(); ++j) {
    if (match_of_actual[j] >= 0) continue;
    const Alert& a = *firing[j];
    absl::StrAppend(&out, "\n  unexpected: ", FormatLabels(a.labels), " value ", a.value,
                    ", firing since ", since(a.fired_at_ms));
  }
  for (size_t j = 0; j < firing.size(); ++j) {
    if (match_of_actual[j] < 0) continue;
    absl::StrAppend(&out, "\n  matched:    ", FormatLabels(firing[j]->labels));
  }
  // Not firing, but telling: a `for` not yet over, an alert just resolved.
  for (const Alert* a : other) {
    if (a->state == AlertState::kPending) {
      absl::StrAppend(&out, "\n  pending:    ", FormatLabels(a->labels), " value ", a->value,
                      ", since ", since(a->active_at_ms));
    } else if (a->state == AlertState::kResolved) {
      absl::StrAppend(&out, "\n  resolved:   ", FormatLabels(a->labels), " at ",
                      since(a->resolved_at_ms));
    }
  }
  return out;
}

RuleTestCaseResult RunCase(const std::vector<Rule>& rules, const TestCase& tc, int64_t interval_ms,
                           const std::string& source) {
  RuleTestCaseResult result;
  result.name = tc.name;
  result.line = tc.line;
  // The checks in time order; failures reported in file order.
  std::vector<size_t> order(tc.checks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tc.checks[a].eval_time_ms < tc.checks[b].eval_time_ms;
  });
  std::vector<std::string> failures(tc.checks.size());
  const int64_t last_step = tc.checks[order.back()].eval_time_ms / interval_ms;

  RuleEngine engine;
  engine.SetRules(rules);
  size_t next = 0;
  std::vector<detectors::Signal> signals;
  for (int64_t step = 0; step <= last_step; ++step) {
    signals.clear();
    for (const InputSeries& s : tc.series) {
      if (step >= static_cast<int64_t>(s.samples.size()) || !s.samples[step]) continue;
      signals.push_back(s.signal);
      signals.back().value = *s.samples[step];
    }
    engine.Evaluate(signals, kClockStartMs + step * interval_ms);
    // A check between two evaluations sees the state of the earlier one.
    while (next < order.size() && tc.checks[order[next]].eval_time_ms / interval_ms == step) {
      failures[order[next]] = Check(engine, tc.checks[order[next]], source);
      ++next;
    }
  }
  for (std::string& f : failures) {
    if (!f.empty()) result.failures.push_back(std::move(f));
  }
  return result;
}

}  // namespace

int RuleTestReport::passed() const {
  return static_cast<int>(
      std::count_if(cases.begin(), cases.end(), [](const auto& c) { return c.passed(); }));
}

int RuleTestReport::failed() const { return static_cast<int>(cases.size()) - passed(); }

absl::StatusOr<std::vector<std::optional<double>>> ExpandSeriesValues(std::string_view values) {
  std::vector<std::optional<double>> out;
  size_t i = 0;
  while (i < values.size()) {
    while (i < values.size() && std::isspace(static_cast<unsigned char>(values[i]))) ++i;
    size_t end = i;
    while (end < values.size() && !std::isspace(static_cast<unsigned char>(values[end]))) ++end;
    if (end == i) break;
    const std::string_view token = values.substr(i, end - i);
    i = end;
    auto bad = [&](const std::string& why) {
      return Bad(absl::StrCat("values: \"", Str(token), "\": ", why));
    };
    std::string_view body = token;
    int64_t count = 1;
    const bool repeated = token.rfind('x') != std::string_view::npos;
    if (repeated) {
      const size_t x = token.rfind('x');
      const std::string_view n = token.substr(x + 1);
      const auto [nend, ec] = std::from_chars(n.data(), n.data() + n.size(), count);
      if (n.empty() || ec != std::errc() || nend != n.data() + n.size() || count < 1) {
        return bad("expected a whole number of samples >= 1 after x");
      }
      body = token.substr(0, x);
    }
    if (static_cast<int64_t>(out.size()) + count > kMaxEvaluations) {
      return bad(absl::StrCat("a series has at most ", kMaxEvaluations, " samples"));
    }
    if (body == "_") {
      out.insert(out.end(), static_cast<size_t>(count), std::nullopt);
      continue;
    }
    // v, or a+b / a-b: from_chars reads a and stops at the sign of b.
    double start = 0;
    const auto [aend, aec] = std::from_chars(body.data(), body.data() + body.size(), start);
    if (body.empty() || aec != std::errc()) {
      return bad("expected a number, _, vxN, a+bxN, a-bxN or _xN");
    }
    double step = 0;
    std::string_view rest = body.substr(static_cast<size_t>(aend - body.data()));
    if (!rest.empty()) {
      const std::optional<double> b =
          rest.front() == '+' || rest.front() == '-' ? WholeNumber(rest.substr(1)) : std::nullopt;
      if (!b || (rest.size() > 1 && (rest[1] == '+' || rest[1] == '-'))) {
        return bad("expected a number, _, vxN, a+bxN, a-bxN or _xN");
      }
      if (!repeated) return bad(absl::StrCat("a step needs a count: ", Str(body), "xN"));
      step = rest.front() == '-' ? -*b : *b;
    }
    for (int64_t k = 0; k < count; ++k) out.push_back(start + static_cast<double>(k) * step);
  }
  return out;
}

absl::StatusOr<RuleTestReport> RunRuleTests(const std::vector<Rule>& rules,
                                            std::string_view tests_yaml, std::string_view source) {
  absl::StatusOr<TestFile> file;
  try {
    file = TestFileParser(rules, source).Parse(tests_yaml);
  } catch (const YAML::Exception& e) {
    return Bad(absl::StrCat(Str(source), ":", e.mark.line + 1, ": ", e.msg));
  }
  if (!file.ok()) return file.status();
  RuleTestReport report;
  for (const TestCase& tc : file->cases) {
    report.cases.push_back(RunCase(rules, tc, file->interval_ms, Str(source)));
  }
  return report;
}

}  // namespace driftwatch::alerting
