// driftctl's subcommands as plain functions: parsed options in, text on
// `out` / `err`, an exit code back. main.cc only wires CLI11 to these, so
// each command is testable without a process. No function throws.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "driftwatch/cli/compare.h"

namespace driftwatch::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;  // a bug: an unexpected error
inline constexpr int kExitBadInput = 2;  // bad flags, files or data
inline constexpr int kExitDrift = 3;     // --fail-on-drift and a feature drifted
// push / labels push: the server rejected events or labels (no --allow-rejects)
inline constexpr int kExitRejected = 4;
inline constexpr int kExitTestsFailed = 5;  // rules test: a test case failed

struct StatsOptions {
  std::string reference;
  std::string current;
  CompareOptions compare;
  bool json = false;
  bool fail_on_drift = false;
};
int RunStats(const StatsOptions& options, std::ostream& out, std::ostream& err);

// The sampling rule of docs/sampling.md for `ids` (or stdin lines when
// empty): prints "hash<TAB>unit<TAB>in|out<TAB>id" per id, or with
// only_kept / ids_only just the kept ones / just ids.
struct SampleOptions {
  double rate = 1.0;
  std::vector<std::string> ids;
  bool only_kept = false;
  bool ids_only = false;
};
int RunSample(const SampleOptions& options, std::istream& in, std::ostream& out,
              std::ostream& err);

// driftctl rules check FILE...: each file parsed as driftwatchd parses
// rules files (docs/alerting.md); the rules listed, or the first error.
struct RulesCheckOptions {
  std::vector<std::string> files;
};
int RunRulesCheck(const RulesCheckOptions& options, std::ostream& out, std::ostream& err);

// driftctl rules test RULES TESTS...: runs the rules file's unit tests
// (docs/alerting.md "Testing rules"): PASS / FAIL per test case, what
// differs, then a summary. kExitTestsFailed when a case failed;
// kExitBadInput when a file cannot be read or does not parse.
struct RulesTestOptions {
  std::string rules_file;
  std::vector<std::string> test_files;
};
int RunRulesTest(const RulesTestOptions& options, std::ostream& out, std::ostream& err);

struct ReportOptions {
  std::string reference;
  std::string current;
  std::string out_path;
  CompareOptions compare;
  bool fail_on_drift = false;
};
int RunReport(const ReportOptions& options, std::ostream& out, std::ostream& err);

// Detector parameters as given on the command line: unset = the params
// struct's default. A parameter that does not belong to the method is an
// error, so a typo never silently falls back to a default.
struct SequentialFlags {
  std::string method;  // ewma | cusum | page-hinkley
  std::optional<double> lambda, L, k, h, delta, threshold, alpha, mu0, sigma;
  std::optional<int> warmup, min_instances;
  std::optional<std::string> mode;  // both | up | down
};

struct ChangepointOptions {
  SequentialFlags flags;
  bool json = false;
};
// Reads the series (one number a line) from `in`, named `in_name` in messages.
int RunChangepoint(const ChangepointOptions& options, std::istream& in, const std::string& in_name,
                   std::ostream& out, std::ostream& err);

struct CalibrateOptions {
  SequentialFlags flags;  // the calibrated threshold (L / h / threshold) must be unset
  double target_arl = 0;
  int runs = 200;
  uint64_t seed = 42;
  int64_t max_run_length = 0;  // 0 = 20 * target
  // Gaussian in-control model; when unset the model is a bootstrap of the
  // reference series read from `in`.
  std::optional<double> mean;
  std::optional<double> model_sigma;
  // Give the detector mu0 = mean and sigma = model sigma instead of warm-up.
  bool known_params = false;
  bool json = false;
};
// `in` is read only when no Gaussian model is given; it may be null then.
int RunCalibrate(const CalibrateOptions& options, std::istream* in, const std::string& in_name,
                 std::ostream& out, std::ostream& err);

struct QualityOptions {
  std::string input;
  std::string score_column;
  std::string label_column;
  std::optional<std::string> query_column;
  std::optional<int> k;  // NDCG cut-off; needs a query column; default 10
  int bins = 10;         // calibration bins
  std::optional<std::string> weight_column;
  bool json = false;
};
int RunQuality(const QualityOptions& options, std::ostream& out, std::ostream& err);

}  // namespace driftwatch::cli
