// driftctl: wires CLI11 to the subcommand functions in driftwatch::cli.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "driftwatch/cli/commands.h"

namespace {

using driftwatch::cli::kExitBadInput;
using driftwatch::cli::kExitInternal;
using driftwatch::cli::kExitOk;

// An option whose absence must stay visible (std::nullopt), not a default.
template <typename T>
CLI::Option* AddOptional(CLI::App* app, const std::string& name, std::optional<T>* target,
                         const std::string& description) {
  return app->add_option_function<T>(
      name, [target](const T& value) { *target = value; }, description);
}

void AddCompareFlags(CLI::App* app, driftwatch::cli::CompareOptions* compare) {
  app->add_option("--bins", compare->bins, "equal-frequency reference bins")->capture_default_str();
  app->add_option("--categorical", compare->categorical, "columns to treat as categorical")
      ->delimiter(',');
  AddOptional(app, "--weight-column", &compare->weight_column,
              "column holding each row's weight (1/sample_rate)");
}

void AddSequentialFlags(CLI::App* app, driftwatch::cli::SequentialFlags* f, bool calibrate) {
  app->add_option("--method", f->method, "ewma | cusum | page-hinkley")->required();
  AddOptional(app, "--lambda", &f->lambda, "EWMA smoothing (default 0.2)");
  AddOptional(app, "--L", &f->L, "EWMA control-limit width in sigmas (default 3)");
  AddOptional(app, "--k", &f->k, "CUSUM allowance in sigmas (default 0.5)");
  AddOptional(app, "--h", &f->h, "CUSUM decision threshold in sigmas (default 5)");
  AddOptional(app, "--warmup", &f->warmup, "EWMA/CUSUM warm-up points (default 30)");
  AddOptional(app, "--min-instances", &f->min_instances, "Page-Hinkley (default 30)");
  AddOptional(app, "--delta", &f->delta, "Page-Hinkley (default 0.005)");
  AddOptional(app, "--threshold", &f->threshold, "Page-Hinkley (default 50)");
  AddOptional(app, "--alpha", &f->alpha, "Page-Hinkley (default 1 - 1e-4)");
  AddOptional(app, "--mode", &f->mode, "Page-Hinkley: both | up | down (default both)");
  AddOptional(app, "--mu0", &f->mu0, "EWMA/CUSUM in-control mean (skips warm-up with --sigma)");
  // In calibrate, --sigma belongs to the in-control model; see RunCalibrate.
  if (!calibrate) {
    AddOptional(app, "--sigma", &f->sigma, "EWMA/CUSUM in-control sigma");
  }
}

int Run(int argc, char** argv) {
  CLI::App app{"driftctl: offline drift statistics, change points and reports"};
  app.name("driftctl");
  app.require_subcommand(1);

  driftwatch::cli::StatsOptions stats;
  CLI::App* stats_cmd = app.add_subcommand("stats", "per-feature drift between two CSV files");
  stats_cmd->add_option("--reference", stats.reference, "reference CSV")->required();
  stats_cmd->add_option("--current", stats.current, "current CSV")->required();
  AddCompareFlags(stats_cmd, &stats.compare);
  stats_cmd->add_flag("--json", stats.json, "print JSON");
  stats_cmd->add_flag("--fail-on-drift", stats.fail_on_drift, "exit 3 if a feature drifted");

  driftwatch::cli::ReportOptions report;
  CLI::App* report_cmd = app.add_subcommand("report", "self-contained HTML drift report");
  report_cmd->add_option("--reference", report.reference, "reference CSV")->required();
  report_cmd->add_option("--current", report.current, "current CSV")->required();
  report_cmd->add_option("--out", report.out_path, "HTML file to write")->required();
  AddCompareFlags(report_cmd, &report.compare);
  report_cmd->add_flag("--fail-on-drift", report.fail_on_drift, "exit 3 if a feature drifted");

  driftwatch::cli::ChangepointOptions changepoint;
  CLI::App* cp_cmd =
      app.add_subcommand("changepoint", "alarm indices of a detector on a series from stdin");
  AddSequentialFlags(cp_cmd, &changepoint.flags, /*calibrate=*/false);
  cp_cmd->add_flag("--json", changepoint.json, "print JSON");

  driftwatch::cli::CalibrateOptions calibrate;
  CLI::App* cal_cmd = app.add_subcommand(
      "calibrate", "detector threshold for a target in-control average run length");
  AddSequentialFlags(cal_cmd, &calibrate.flags, /*calibrate=*/true);
  cal_cmd->add_option("--target-arl", calibrate.target_arl, "target ARL0")->required();
  cal_cmd->add_option("--runs", calibrate.runs, "simulated streams")->capture_default_str();
  cal_cmd->add_option("--seed", calibrate.seed, "random seed")->capture_default_str();
  cal_cmd->add_option("--max-run-length", calibrate.max_run_length,
                      "censor runs at this length (0 = 20 x target)");
  AddOptional(cal_cmd, "--mean", &calibrate.mean, "Gaussian in-control mean");
  AddOptional(cal_cmd, "--sigma", &calibrate.model_sigma, "Gaussian in-control sigma");
  cal_cmd->add_flag("--known-params", calibrate.known_params,
                    "detector uses --mean/--sigma as mu0/sigma instead of a warm-up");
  cal_cmd->add_flag("--json", calibrate.json, "print JSON");

  driftwatch::cli::QualityOptions quality;
  CLI::App* q_cmd = app.add_subcommand("quality", "AUC, calibration and NDCG from a scored CSV");
  q_cmd->add_option("--input", quality.input, "scored CSV")->required();
  q_cmd->add_option("--score-column", quality.score_column, "model score column")->required();
  q_cmd->add_option("--label-column", quality.label_column, "label column")->required();
  AddOptional(q_cmd, "--query-column", &quality.query_column, "query id column (for NDCG)");
  AddOptional(q_cmd, "--k", &quality.k, "NDCG cut-off (default 10)");
  q_cmd->add_option("--bins", quality.bins, "calibration bins")->capture_default_str();
  AddOptional(q_cmd, "--weight-column", &quality.weight_column, "row weight column");
  q_cmd->add_flag("--json", quality.json, "print JSON");

  // CLI11 reports a mistyped subcommand as "a subcommand is required";
  // name it instead.
  const std::string first = argc > 1 ? argv[1] : "";
  if (!first.empty() && first[0] != '-' && first != "stats" && first != "report" &&
      first != "changepoint" && first != "calibrate" && first != "quality") {
    std::cerr << "driftctl: unknown subcommand \"" << argv[1]
              << "\" (expected stats, report, changepoint, calibrate or quality)\n";
    return kExitBadInput;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "driftctl: " << e.what() << "\nRun 'driftctl --help' for usage.\n";
    return kExitBadInput;
  }

  if (stats_cmd->parsed()) return driftwatch::cli::RunStats(stats, std::cout, std::cerr);
  if (report_cmd->parsed()) return driftwatch::cli::RunReport(report, std::cout, std::cerr);
  if (q_cmd->parsed()) return driftwatch::cli::RunQuality(quality, std::cout, std::cerr);
  if (cp_cmd->parsed()) {
    if (isatty(STDIN_FILENO)) {
      std::cerr << "driftctl: changepoint reads the series from stdin (one number a line)\n";
      return kExitBadInput;
    }
    return driftwatch::cli::RunChangepoint(changepoint, std::cin, "stdin", std::cout, std::cerr);
  }
  if (cal_cmd->parsed()) {
    // Without a Gaussian model the reference series comes from stdin.
    std::istream* in = (calibrate.mean || isatty(STDIN_FILENO)) ? nullptr : &std::cin;
    return driftwatch::cli::RunCalibrate(calibrate, in, "stdin", std::cout, std::cerr);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  // Nothing below is meant to throw; this is the last line of defence so
  // that a bug still ends with a message instead of std::terminate.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "driftctl: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "driftctl: internal error\n";
  }
  return kExitInternal;
}
