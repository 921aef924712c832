// Runs the real driftctl binary on small files, as a script would.
#include <sys/wait.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "driftwatch/alerting/rules.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ShellQuote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A fresh directory per test; files are written there and driftctl runs in it.
class DriftctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("driftctl_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // Runs driftctl with `args` in the temp dir, stdin from `stdin_text`.
  Result Run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    Write("stdin.txt", stdin_text);
    std::string cmd = "cd " + ShellQuote(dir_.string()) + " && " + ShellQuote(DRIFTCTL_PATH);
    for (const std::string& a : args) cmd += " " + ShellQuote(a);
    cmd += " < stdin.txt > stdout.txt 2> stderr.txt";
    const int status = std::system(cmd.c_str());
    Result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = Slurp(dir_ / "stdout.txt");
    r.err = Slurp(dir_ / "stderr.txt");
    return r;
  }

  nlohmann::json Json(const Result& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  // Expects exit 2 and one stderr message containing each of `parts`.
  void ExpectBadInput(const Result& r, const std::vector<std::string>& parts) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr("driftctl: "));
    for (const std::string& p : parts) EXPECT_THAT(r.err, HasSubstr(p));
  }

  fs::path dir_;
};

const nlohmann::json& Feature(const nlohmann::json& doc, const std::string& name) {
  for (const auto& f : doc.at("features")) {
    if (f.at("name") == name) return f;
  }
  static const nlohmann::json kNone;
  ADD_FAILURE() << "no feature " << name;
  return kNone;
}

constexpr char kSmall[] = "x,color\n1,a\n2,a\n3,b\n4,b\n5,a\n6,a\n7,b\n8,b\n9,a\n10,b\n";

TEST_F(DriftctlTest, IdenticalFilesShowNoDrift) {
  Write("ref.csv", kSmall);
  Write("cur.csv", kSmall);
  nlohmann::json doc =
      Json(Run({"stats", "--reference", "ref.csv", "--current", "cur.csv", "--json"}));
  ASSERT_EQ(doc.at("features").size(), 2u);
  const auto& x = doc["features"][0];
  EXPECT_EQ(x["name"], "x");
  EXPECT_EQ(x["kind"], "numeric");
  EXPECT_EQ(x["n_reference"], 10.0);
  EXPECT_EQ(x["n_current"], 10.0);
  EXPECT_NEAR(x["psi"].get<double>(), 0, 1e-12);
  EXPECT_NEAR(x["kl"].get<double>(), 0, 1e-12);
  EXPECT_NEAR(x["js"].get<double>(), 0, 1e-7);
  EXPECT_EQ(x["ks"]["statistic"], 0.0);
  EXPECT_NEAR(x["ks"]["p_value"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(x["wasserstein"], 0.0);
  EXPECT_FALSE(x.contains("chi2"));
  EXPECT_EQ(x["drifted"], false);
  const auto& color = doc["features"][1];
  EXPECT_EQ(color["kind"], "categorical");
  EXPECT_FALSE(color.contains("ks"));
  EXPECT_FALSE(color.contains("wasserstein"));
  EXPECT_EQ(color["chi2"]["df"], 1);
  EXPECT_NEAR(color["chi2"]["statistic"].get<double>(), 0, 1e-12);
  EXPECT_NEAR(color["psi"].get<double>(), 0, 1e-12);
}

TEST_F(DriftctlTest, HandCheckedShiftAndCategoricalDrift) {
  // x: 1..10 vs 6..15 (shift 5); c: a,a,b,b vs a,a,a,b; reference column
  // order differs from the current file's.
  std::string ref = "x,c\n", cur = "c,x\n";
  const char* ref_c = "aabbaabbab";
  const char* cur_c = "aaabaaabab";  // 7 a, 3 b
  for (int i = 1; i <= 10; ++i) {
    ref += std::to_string(i) + "," + ref_c[i - 1] + "\n";
    cur += std::string(1, cur_c[i - 1]) + "," + std::to_string(i + 5) + "\n";
  }
  Write("ref.csv", ref);
  Write("cur.csv", cur);
  nlohmann::json doc =
      Json(Run({"stats", "--reference", "ref.csv", "--current", "cur.csv", "--json"}));
  const auto& x = Feature(doc, "x");
  EXPECT_NEAR(x["ks"]["statistic"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(x["wasserstein"].get<double>(), 5.0, 1e-12);
  EXPECT_NEAR(x["wasserstein_norm"].get<double>(), 5.0 / std::sqrt(8.25), 1e-12);
  // c: r = (0.5, 0.5), c = (0.7, 0.3); expected counts (5, 5), observed (7, 3).
  const auto& c = Feature(doc, "c");
  const double psi = 0.2 * std::log(0.7 / 0.5) + (-0.2) * std::log(0.3 / 0.5);
  EXPECT_NEAR(c["psi"].get<double>(), psi, 1e-12);
  EXPECT_NEAR(c["chi2"]["statistic"].get<double>(), 0.8 + 0.8, 1e-12);
  EXPECT_NEAR(c["chi2"]["p_value"].get<double>(), 0.20590321073206466, 1e-9);
  EXPECT_EQ(c["n_current"], 10.0);
  EXPECT_EQ(doc["features"][0]["name"], "x");  // reference column order
}

TEST_F(DriftctlTest, DriftedFeatureIsMarkedInTableAndJson) {
  std::string ref = "v,stable\n", cur = "v,stable\n";
  for (int i = 0; i < 200; ++i) {
    ref += std::to_string(i) + "," + std::to_string(i % 7) + "\n";
    cur += std::to_string(i + 150) + "," + std::to_string(i % 7) + "\n";
  }
  Write("ref.csv", ref);
  Write("cur.csv", cur);
  Result table = Run({"stats", "--reference", "ref.csv", "--current", "cur.csv"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("* v "));
  EXPECT_THAT(table.out, HasSubstr("  stable "));
  EXPECT_THAT(table.out, HasSubstr("drifted: PSI >= 0.2"));
  EXPECT_LT(table.out.find("* v "), table.out.find("  stable "));  // sorted by PSI
  nlohmann::json doc =
      Json(Run({"stats", "--reference", "ref.csv", "--current", "cur.csv", "--json"}));
  EXPECT_EQ(Feature(doc, "v")["drifted"], true);
  EXPECT_EQ(Feature(doc, "stable")["drifted"], false);
  EXPECT_GE(Feature(doc, "v")["psi"].get<double>(), 0.2);
  Result fail = Run({"stats", "--reference", "ref.csv", "--current", "cur.csv", "--fail-on-drift"});
  EXPECT_EQ(fail.exit_code, 3);
}

TEST_F(DriftctlTest, WeightsNullsAndForcedCategorical) {
  Write("ref.csv", "w,x,code\n1,1,10\n1,2,20\n2,3,10\n2,4,20\n");
  Write("cur.csv", "w,x,code\n1,1,10\n1,,20\n1,nan,10\n1,4,20\n");
  nlohmann::json doc = Json(Run({"stats", "--reference", "ref.csv", "--current", "cur.csv",
                                 "--weight-column", "w", "--categorical", "code", "--json"}));
  ASSERT_EQ(doc["features"].size(), 2u);  // the weight column is not a feature
  const auto& x = Feature(doc, "x");
  EXPECT_EQ(x["n_reference"], 6.0);
  EXPECT_EQ(x["n_current"], 2.0);
  EXPECT_EQ(x["null_rate_reference"], 0.0);
  EXPECT_EQ(x["null_rate_current"], 0.5);
  EXPECT_EQ(Feature(doc, "code")["kind"], "categorical");
}

TEST_F(DriftctlTest, QuotedCrlfBomFiles) {
  Write("ref.csv", "\xEF\xBB\xBF\"city, name\",n\r\n\"Paris, FR\",1\r\n\"a \"\"b\"\"\",2\r\n");
  Write("cur.csv", "n,\"city, name\"\n1,\"Paris, FR\"\n2,\"a \"\"b\"\"\"\n");
  nlohmann::json doc =
      Json(Run({"stats", "--reference", "ref.csv", "--current", "cur.csv", "--json"}));
  EXPECT_EQ(doc["features"][0]["name"], "city, name");
  EXPECT_NEAR(doc["features"][0]["psi"].get<double>(), 0, 1e-12);
}

TEST_F(DriftctlTest, BadInputIsExitTwoWithFileLineAndColumn) {
  Write("ok.csv", "age,city\n1,a\n2,b\n");
  Write("ragged.csv", "age,city\n1,a\n2,b\n3\n");
  Write("other.csv", "age,town\n1,a\n");
  Write("empty.csv", "");
  Write("header.csv", "age,city\n");
  Write("w.csv", "age,city,w\n1,a,1\n2,b,zero\n");
  Write("nulls.csv", "age,city\n,a\n,b\n");
  const std::vector<std::string> stats = {"stats", "--reference", "ok.csv", "--current"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = stats;
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  ExpectBadInput(with({"missing.csv"}), {"missing.csv", "cannot open"});
  ExpectBadInput(with({"ragged.csv"}), {"ragged.csv:4: column \"city\": expected 2 fields, got 1"});
  ExpectBadInput(with({"other.csv"}), {"other.csv", "\"city\""});
  ExpectBadInput(with({"empty.csv"}), {"empty.csv", "empty file"});
  ExpectBadInput(with({"header.csv"}), {"header.csv", "no data rows"});
  ExpectBadInput(with({"nulls.csv"}), {"nulls.csv", "\"age\"", "no finite"});
  ExpectBadInput(
      Run({"stats", "--reference", "w.csv", "--current", "w.csv", "--weight-column", "w"}),
      {"w.csv:3: column \"w\"", "\"zero\""});
  ExpectBadInput(with({"ok.csv", "--bogus"}), {"--bogus"});
  ExpectBadInput(Run({"frobnicate"}), {"unknown subcommand \"frobnicate\""});
  ExpectBadInput(Run({}), {"subcommand"});
  ExpectBadInput(with({"ok.csv", "--bins", "zero"}), {"--bins"});
}

std::string StepSeries() {
  std::string s;
  for (int i = 0; i < 120; ++i) {
    const double noise = (i % 2 == 0 ? 0.1 : -0.1) * (1 + (i % 3));
    s += std::to_string((i >= 60 ? 5.0 : 0.0) + noise) + "\n";
    if (i == 10) s += "\n";  // blank lines are skipped
  }
  return s;
}

TEST_F(DriftctlTest, ChangepointDetectsNearTheStep) {
  for (const char* method : {"ewma", "cusum", "page-hinkley"}) {
    nlohmann::json doc = Json(Run({"changepoint", "--method", method, "--json"}, StepSeries()));
    ASSERT_TRUE(doc.contains("detections")) << method;
    ASSERT_FALSE(doc["detections"].empty()) << method;
    const int64_t first = doc["detections"][0].get<int64_t>();
    EXPECT_GE(first, 60) << method;
    EXPECT_LE(first, 80) << method;
  }
  Result plain = Run({"changepoint", "--method", "cusum", "--h", "4"}, StepSeries());
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("60\n"));
}

TEST_F(DriftctlTest, ChangepointRejectsBadLinesAndForeignParameters) {
  ExpectBadInput(Run({"changepoint", "--method", "ewma"}, "1\n2\n\nfoo\n"), {"stdin:4", "\"foo\""});
  ExpectBadInput(Run({"changepoint", "--method", "cusum", "--lambda", "0.1"}, "1\n"),
                 {"--lambda", "cusum"});
  ExpectBadInput(Run({"changepoint", "--method", "ewma", "--lambda", "3"}, "1\n"), {"lambda"});
  ExpectBadInput(Run({"changepoint", "--method", "magic"}, "1\n"), {"magic"});
}

TEST_F(DriftctlTest, CalibrateReportsThreshold) {
  nlohmann::json doc = Json(Run({"calibrate", "--method", "cusum", "--target-arl", "100", "--runs",
                                 "50", "--mean", "0", "--sigma", "1", "--json"}));
  EXPECT_EQ(doc["method"], "cusum");
  EXPECT_EQ(doc["parameter"], "h");
  EXPECT_GT(doc["threshold"].get<double>(), 0);
  EXPECT_GT(doc["arl0"].get<double>(), 0);
  EXPECT_TRUE(doc.contains("arl0_stderr"));
  EXPECT_TRUE(doc.contains("censored_runs"));
  ExpectBadInput(Run({"calibrate", "--method", "ewma", "--target-arl", "100", "--L", "3", "--mean",
                      "0", "--sigma", "1"}),
                 {"--L"});
}

TEST_F(DriftctlTest, QualityMatchesHandComputedAuc) {
  // Positives 0.35, 0.8, 0.7 beat 8 of the 9 negative pairs: AUC = 8/9.
  Write("scored.csv", "s,y,q\n0.1,0,a\n0.4,0,a\n0.35,1,a\n0.8,1,b\n0.7,1,b\n0.2,0,b\n");
  nlohmann::json doc = Json(Run({"quality", "--input", "scored.csv", "--score-column", "s",
                                 "--label-column", "y", "--json"}));
  EXPECT_EQ(doc["n"], 6.0);
  EXPECT_NEAR(doc["auc"].get<double>(), 8.0 / 9.0, 1e-12);
  EXPECT_NEAR(doc["brier"].get<double>(), 0.7625 / 6, 1e-12);
  EXPECT_TRUE(doc.contains("ece"));
  EXPECT_EQ(doc["reliability"][0]["bin"], 0);
  EXPECT_FALSE(doc.contains("ndcg"));
  // Query a: ranked 0.4 (0), 0.35 (1), 0.1 (0): DCG = 1/log2(3), IDCG = 1.
  // Query b: ranked 0.8 (1), 0.7 (1), 0.2 (0): NDCG = 1.
  doc = Json(Run({"quality", "--input", "scored.csv", "--score-column", "s", "--label-column", "y",
                  "--query-column", "q", "--k", "3", "--json"}));
  EXPECT_NEAR(doc["ndcg"].get<double>(), (1 / std::log2(3.0) + 1) / 2, 1e-12);
  ExpectBadInput(
      Run({"quality", "--input", "scored.csv", "--score-column", "nope", "--label-column", "y"}),
      {"scored.csv", "\"nope\""});
  Write("bad.csv", "s,y\n0.1,0\nx,1\n");
  ExpectBadInput(
      Run({"quality", "--input", "bad.csv", "--score-column", "s", "--label-column", "y"}),
      {"bad.csv:3: column \"s\""});
}

TEST_F(DriftctlTest, ReportIsSelfContainedAndEscaped) {
  std::string ref = "\"<b>&x\",cat\n", cur = ref;
  for (int i = 0; i < 50; ++i) {
    ref += std::to_string(i) + "," + (i % 3 ? "<script>" : "ok") + "\n";
    cur += std::to_string(i * 2) + "," + (i % 2 ? "<script>" : "ok") + "\n";
  }
  Write("ref.csv", ref);
  Write("cur.csv", cur);
  Result r =
      Run({"report", "--reference", "ref.csv", "--current", "cur.csv", "--out", "report.html"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = Slurp(dir_ / "report.html");
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("&lt;b&gt;&amp;x"));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<b>&x")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, HasSubstr("ref.csv"));
  EXPECT_LT(html.size(), 100000u);
}

TEST_F(DriftctlTest, FiftyFeatureReportStaysSmall) {
  std::string ref, cur;
  for (int f = 0; f < 50; ++f) ref += (f ? ",f" : "f") + std::to_string(f);
  ref += "\n";
  cur = ref;
  for (int i = 0; i < 300; ++i) {
    for (int f = 0; f < 50; ++f) {
      const std::string sep = f ? "," : "";
      ref += sep + (f % 5 == 0 ? "c" + std::to_string((i * 7 + f) % 40)
                               : std::to_string((i * 37 + f * 11) % 101));
      cur += sep + (f % 5 == 0 ? "c" + std::to_string((i * 3 + f) % 45)
                               : std::to_string((i * 41 + f * 5) % 97 + 3));
    }
    ref += "\n";
    cur += "\n";
  }
  Write("ref.csv", ref);
  Write("cur.csv", cur);
  Result r =
      Run({"report", "--reference", "ref.csv", "--current", "cur.csv", "--out", "report.html"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(fs::file_size(dir_ / "report.html"), 1000000u);
}

// driftctl rules test: the shipped tests of the default rules pass and
// cover every rule; a wrong expectation fails (exit 5) saying what
// differs; a broken test file is bad input (exit 2) naming file and line.
const fs::path kSourceDir = fs::path(DRIFTWATCH_GOLDEN_DIR) / ".." / "..";
const std::string kRules = (kSourceDir / "deploy" / "rules.yaml").string();
const std::string kRuleTests = (kSourceDir / "deploy" / "rules_test.yaml").string();

TEST_F(DriftctlTest, TheDefaultRulesPassTheirTestsWhichCoverEveryRule) {
  const Result r = Run({"rules", "test", kRules, kRuleTests});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
  EXPECT_THAT(r.out, HasSubstr(" passed, 0 failed\n"));
  absl::StatusOr<std::vector<driftwatch::alerting::Rule>> rules =
      driftwatch::alerting::ParseRules(Slurp(kRules), kRules);
  ASSERT_TRUE(rules.ok()) << rules.status();
  const std::string tests = Slurp(kRuleTests);
  for (const driftwatch::alerting::Rule& rule : *rules) {
    EXPECT_THAT(tests, HasSubstr("alertname: " + rule.name + "\n")) << "no test of " << rule.name;
  }
}

TEST_F(DriftctlTest, AWrongExpectationFailsWithExit5AndSaysWhatDiffers) {
  // volume_drop waits 15m: at 14m it is still pending.
  const std::string tests = (dir_ / "wrong.yaml").string();
  Write("wrong.yaml", R"(tests:
  - name: volume drop fires at once
    input_series:
      - series: 'volume{model="loan@v1",slice="*"}'
        values: '3000x30'
        baseline: 10000
    alert_rule_test:
      - eval_time: 14m
        alertname: volume_drop
        exp_alerts:
          - exp_labels: {slice: '*', severity: page}
      - eval_time: 20m
        alertname: volume_drop
        exp_alerts:
          - exp_labels: {slice: '*', severity: page}
)");
  const Result r = Run({"rules", "test", kRules, tests});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAIL volume drop fires at once\n"));
  EXPECT_THAT(r.out,
              HasSubstr("  " + tests + ":8: volume_drop at 14m: expected 1 firing alert, got 0\n"));
  EXPECT_THAT(r.out, HasSubstr("    missing:    {severity=\"page\", slice=\"*\"}\n"));
  EXPECT_THAT(r.out, HasSubstr("    pending:    {alertname=\"volume_drop\", model=\"loan\", "
                               "model_version=\"v1\", severity=\"page\", slice=\"*\"} value 0.3, "
                               "since 0s\n"));
  EXPECT_THAT(r.out, Not(HasSubstr(":12:")));  // the 20m check passed
  EXPECT_THAT(r.out, HasSubstr("1 test case: 0 passed, 1 failed\n"));
}

TEST_F(DriftctlTest, ABrokenTestFileExits2NamingFileAndLine) {
  const std::string tests = (dir_ / "broken.yaml").string();
  Write("broken.yaml", R"(tests:
  - name: typo
    input_series:
      - series: 'volume{model="loan@v1"}'
        vals: '1000x3'
    alert_rule_test:
      - {eval_time: 1m, alertname: volume_drop}
)");
  Result r = Run({"rules", "test", kRules, tests});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr(tests + ":5: test \"typo\": unknown key \"vals\" in an input series"));
  r = Run({"rules", "test", kRules, (dir_ / "missing.yaml").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot read"));
}


// Every default rule links a runbook that exists, and every driftctl
// command of every runbook (in its ```sh blocks, the alert's labels filled
// in) parses: run against a closed port, each fails on the RPC (exit 1),
// never on its arguments (exit 2).
TEST_F(DriftctlTest, EveryDefaultRuleHasARunbookWhoseCommandsParse) {
  absl::StatusOr<std::vector<driftwatch::alerting::Rule>> rules =
      driftwatch::alerting::ParseRules(Slurp(kRules), kRules);
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::set<std::string> runbooks;
  for (const driftwatch::alerting::Rule& r : *rules) {
    EXPECT_TRUE(fs::exists(kSourceDir / r.runbook_url)) << r.name << ": " << r.runbook_url;
    runbooks.insert(r.runbook_url);
  }
  EXPECT_GE(runbooks.size(), 6u);
  int commands = 0;
  for (const auto& entry : fs::directory_iterator(kSourceDir / "runbooks")) {
    if (entry.path().extension() != ".md") continue;
    std::istringstream in(Slurp(entry.path()));
    std::string line;
    bool sh = false;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.starts_with("```")) {
        sh = !sh && line == "```sh";
        continue;
      }
      if (!sh || !line.starts_with("driftctl ")) continue;
      std::string cmd = ShellQuote(DRIFTCTL_PATH) + line.substr(8);
      for (auto [from, to] : {std::pair<std::string, std::string>{"$SERVER", "127.0.0.1:1"},
                              {"$MODEL", "loan-default"},
                              {"$VERSION", "v1"},
                              {"$SLICE", "platform=android"},
                              {"$FEATURE", "income"}}) {
        for (size_t at = cmd.find(from); at != std::string::npos; at = cmd.find(from, at)) {
          cmd.replace(at, from.size(), to);
        }
      }
      if (cmd.find("--timeout") == std::string::npos) cmd += " --timeout 2s";
      cmd += " > /dev/null 2> " + ShellQuote((dir_ / "stderr.txt").string());
      const int status = std::system(cmd.c_str());
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      EXPECT_EQ(code, 1) << entry.path().filename().string() << ":" << lineno << ": " << line
                         << "\n" << Slurp(dir_ / "stderr.txt");
      ++commands;
    }
  }
  EXPECT_GE(commands, 50);
}

}  // namespace
