// driftctl rules check: the shipped default rules parse, each with a
// runbook under runbooks/, and a broken file is refused naming file,
// line and rule.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "driftwatch/alerting/rules.h"
#include "driftwatch/cli/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftwatch::cli {
namespace {

using ::testing::HasSubstr;

const std::string kDefaultRules = std::string(DRIFTWATCH_GOLDEN_DIR) + "/../../deploy/rules.yaml";

TEST(RulesCheckTest, TheDefaultRulesParseAndEachLinksARunbook) {
  std::ostringstream out, err;
  RulesCheckOptions options;
  options.files = {kDefaultRules};
  ASSERT_EQ(RunRulesCheck(options, out, err), kExitOk) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("8 rules OK"));
  std::ifstream in(kDefaultRules);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<alerting::Rule>> rules = alerting::ParseRules(text.str(), "default");
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::set<std::string> names;
  for (const alerting::Rule& r : *rules) {
    names.insert(r.name);
    EXPECT_TRUE(r.runbook_url.starts_with("runbooks/") && r.runbook_url.ends_with(".md"))
        << r.name << ": " << r.runbook_url;
    EXPECT_GT(r.for_ms, 0) << r.name << ": a default rule waits before firing";
  }
  // The kinds issue 10 asks the defaults to cover.
  for (const char* kind : {"feature_drift", "score_drift", "calibration_drift", "auc_drop",
                           "estimated_auc_drop", "null_rate_spike", "volume_drop"}) {
    EXPECT_TRUE(names.contains(kind)) << kind;
  }
}

TEST(RulesCheckTest, ABrokenFileIsRefusedNamingFileLineAndRule) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "driftctl_rules_check_test.yaml";
  {
    std::ofstream f(path);
    f << "rules:\n  - name: ok\n    condition: 'psi > 1'\n    runbook_url: runbooks/x.md\n"
         "  - name: broken\n    condition: 'psi >> 1'\n    runbook_url: runbooks/x.md\n";
  }
  std::ostringstream out, err;
  RulesCheckOptions options;
  options.files = {path.string()};
  EXPECT_EQ(RunRulesCheck(options, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr(path.string() + ":6: rule \"broken\""));
  options.files = {(path.string() + ".missing")};
  EXPECT_EQ(RunRulesCheck(options, out, err), kExitBadInput);
  EXPECT_THAT(err.str(), HasSubstr("cannot read"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace driftwatch::cli
