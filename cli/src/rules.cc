// driftctl rules check FILE...: parses rules files as driftwatchd does and
// prints each rule (or the first error, naming file, line and rule).
// driftctl rules test RULES TESTS...: runs the rules' unit tests.
#include "driftwatch/alerting/rules.h"

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "driftwatch/alerting/rule_tests.h"
#include "driftwatch/cli/commands.h"

namespace driftwatch::cli {
namespace {

std::string Describe(const alerting::Condition& c) {
  switch (c.kind) {
    case alerting::Condition::Kind::kThreshold: {
      std::string out = c.threshold.ToString();
      if (c.threshold.resolve) absl::StrAppend(&out, " (resolve ", *c.threshold.resolve, ")");
      return out;
    }
    case alerting::Condition::Kind::kChangePoint:
      return c.change_point.ToString();
    case alerting::Condition::Kind::kAll:
    case alerting::Condition::Kind::kAny:
    case alerting::Condition::Kind::kAtLeast: {
      std::string out = c.kind == alerting::Condition::Kind::kAll ? "all("
                        : c.kind == alerting::Condition::Kind::kAny
                            ? "any("
                            : absl::StrCat("at_least ", c.at_least, " of (");
      for (size_t i = 0; i < c.children.size(); ++i) {
        if (i > 0) out += ", ";
        out += Describe(c.children[i]);
      }
      return out + ")";
    }
  }
  return "";
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int RunRulesCheck(const RulesCheckOptions& options, std::ostream& out, std::ostream& err) {
  int failed = 0;
  for (const std::string& path : options.files) {
    const std::optional<std::string> text = ReadFile(path);
    if (!text) {
      err << "driftctl rules check: cannot read " << path << "\n";
      ++failed;
      continue;
    }
    absl::StatusOr<std::vector<alerting::Rule>> rules = alerting::ParseRules(*text, path);
    if (!rules.ok()) {
      err << "driftctl rules check: " << rules.status().message() << "\n";
      ++failed;
      continue;
    }
    for (const alerting::Rule& r : *rules) {
      out << r.name << "  [" << r.severity << "]  model " << r.model << "  for " << r.for_ms / 1000
          << "s  " << Describe(r.condition) << "  runbook " << r.runbook_url << "\n";
    }
    out << path << ": " << rules->size() << " rules OK\n";
  }
  return failed == 0 ? kExitOk : kExitBadInput;
}

int RunRulesTest(const RulesTestOptions& options, std::ostream& out, std::ostream& err) {
  const std::optional<std::string> rules_text = ReadFile(options.rules_file);
  if (!rules_text) {
    err << "driftctl rules test: cannot read " << options.rules_file << "\n";
    return kExitBadInput;
  }
  absl::StatusOr<std::vector<alerting::Rule>> rules =
      alerting::ParseRules(*rules_text, options.rules_file);
  if (!rules.ok()) {
    err << "driftctl rules test: " << rules.status().message() << "\n";
    return kExitBadInput;
  }
  bool bad_input = false;
  int passed = 0, failed = 0, files_run = 0;
  for (const std::string& path : options.test_files) {
    const std::optional<std::string> text = ReadFile(path);
    if (!text) {
      err << "driftctl rules test: cannot read " << path << "\n";
      bad_input = true;
      continue;
    }
    absl::StatusOr<alerting::RuleTestReport> report = alerting::RunRuleTests(*rules, *text, path);
    if (!report.ok()) {
      err << "driftctl rules test: " << report.status().message() << "\n";
      bad_input = true;
      continue;
    }
    for (const alerting::RuleTestCaseResult& c : report->cases) {
      out << (c.passed() ? "PASS " : "FAIL ") << c.name << "\n";
      for (const std::string& failure : c.failures) {
        std::string_view rest = failure;
        while (!rest.empty()) {
          const size_t nl = rest.find('\n');
          out << "  " << rest.substr(0, nl) << "\n";
          rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        }
      }
    }
    passed += report->passed();
    failed += report->failed();
    ++files_run;
  }
  if (files_run > 0) {
    out << (passed + failed) << (passed + failed == 1 ? " test case: " : " test cases: ") << passed
        << " passed, " << failed << " failed\n";
  }
  if (bad_input) return kExitBadInput;
  return failed > 0 ? kExitTestsFailed : kExitOk;
}

}  // namespace driftwatch::cli
