// driftctl rules check FILE...: parses rules files as driftwatchd does and
// prints each rule (or the first error, naming file, line and rule).
#include "driftwatch/alerting/rules.h"

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
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

}  // namespace

int RunRulesCheck(const RulesCheckOptions& options, std::ostream& out, std::ostream& err) {
  int failed = 0;
  for (const std::string& path : options.files) {
    std::ifstream in(path);
    if (!in) {
      err << "driftctl rules check: cannot read " << path << "\n";
      ++failed;
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<std::vector<alerting::Rule>> rules = alerting::ParseRules(text.str(), path);
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

}  // namespace driftwatch::cli
