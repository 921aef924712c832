// driftctl: wires CLI11 to the subcommand functions in driftwatch::cli.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "driftwatch/cli/client.h"
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

void AddServerFlags(CLI::App* app, driftwatch::cli::ServerOptions* server) {
  app->add_option("--server", server->server, "driftwatchd gRPC address host:port")
      ->capture_default_str();
  app->add_option("--timeout", server->timeout, "per-RPC timeout (90s, 5m, ...)")
      ->capture_default_str();
}

void AddModelFlags(CLI::App* app, std::string* model, std::string* version) {
  app->add_option("--model", *model, "model id")->required();
  app->add_option("--version", *version, "model version (default: the latest registered)");
}

void AddWindowFlags(CLI::App* app, driftwatch::cli::WindowFlags* window) {
  AddOptional(app, "--window", &window->window, "the last LENGTH (1h, 30m, ...)");
  AddOptional(app, "--from", &window->from, "window start (Unix ms or RFC 3339)");
  AddOptional(app, "--to", &window->to, "window end (Unix ms or RFC 3339)");
}

constexpr const char* kSubcommands[] = {"stats",   "report",   "changepoint", "calibrate",
                                        "quality", "register", "models",      "push",
                                        "labels",  "baseline", "rank",        "sample",
                                        "rules",   "alerts",   "silence",     "signals",
                                        "notifications", "quality-data", "compare-versions"};

int Run(int argc, char** argv) {
  CLI::App app{"driftctl: drift statistics offline, and the driftwatchd client"};
  app.name("driftctl");
  app.require_subcommand(1);

  driftwatch::cli::StatsOptions stats;
  CLI::App* stats_cmd = app.add_subcommand("stats", "per-feature drift between two CSV files");
  stats_cmd->add_option("--reference", stats.reference, "reference CSV")->required();
  stats_cmd->add_option("--current", stats.current, "current CSV")->required();
  AddCompareFlags(stats_cmd, &stats.compare);
  stats_cmd->add_flag("--json", stats.json, "print JSON");
  stats_cmd->add_flag("--fail-on-drift", stats.fail_on_drift, "exit 3 if a feature drifted");

  // `report` is offline with --reference/--current/--out (an HTML page)
  // and online with --model (the server's window report).
  driftwatch::cli::ReportOptions report;
  driftwatch::cli::OnlineReportOptions online_report;
  CLI::App* report_cmd = app.add_subcommand(
      "report", "HTML drift report from two CSV files, or with --model the server's report");
  CLI::Option* report_ref = report_cmd->add_option("--reference", report.reference, "reference CSV");
  CLI::Option* report_cur = report_cmd->add_option("--current", report.current, "current CSV");
  CLI::Option* report_out = report_cmd->add_option("--out", report.out_path, "HTML file to write");
  AddCompareFlags(report_cmd, &report.compare);
  CLI::Option* report_fail =
      report_cmd->add_flag("--fail-on-drift", report.fail_on_drift, "exit 3 if a feature drifted");
  CLI::Option* report_model =
      report_cmd->add_option("--model", online_report.model, "online: model id");
  report_cmd->add_option("--version", online_report.version, "online: model version");
  report_cmd->add_option("--slice", online_report.slice, "online: slice key=value");
  AddWindowFlags(report_cmd, &online_report.window);
  report_cmd->add_option("--baseline", online_report.baseline, "online: baseline name");
  report_cmd->add_flag("--json", online_report.json, "online: print JSON");
  AddServerFlags(report_cmd, &online_report.server);
  for (CLI::Option* offline : {report_ref, report_cur, report_out, report_fail}) {
    report_model->excludes(offline);
  }

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

  // `quality` is offline with --input (a scored CSV) and online with
  // --model (the server's report as labels join); --k, --bins and --json
  // serve both.
  driftwatch::cli::QualityOptions quality;
  driftwatch::cli::OnlineQualityOptions online_quality;
  CLI::App* q_cmd = app.add_subcommand(
      "quality", "AUC, calibration and NDCG from a scored CSV, or with --model the server's");
  CLI::Option* q_input = q_cmd->add_option("--input", quality.input, "scored CSV");
  CLI::Option* q_score =
      q_cmd->add_option("--score-column", quality.score_column, "model score column");
  CLI::Option* q_label = q_cmd->add_option("--label-column", quality.label_column, "label column");
  CLI::Option* q_query =
      AddOptional(q_cmd, "--query-column", &quality.query_column, "query id column (for NDCG)");
  AddOptional(q_cmd, "--k", &quality.k, "NDCG cut-off (default 10)");
  q_cmd->add_option("--bins", quality.bins, "calibration bins")->capture_default_str();
  CLI::Option* q_weight =
      AddOptional(q_cmd, "--weight-column", &quality.weight_column, "row weight column");
  q_cmd->add_flag("--json", quality.json, "print JSON");
  CLI::Option* q_model = q_cmd->add_option("--model", online_quality.model, "online: model id");
  q_cmd->add_option("--version", online_quality.version, "online: model version");
  q_cmd->add_option("--slice", online_quality.slice, "online: slice key=value");
  AddWindowFlags(q_cmd, &online_quality.window);
  q_cmd->add_option("--baseline", online_quality.baseline, "online: baseline name");
  AddServerFlags(q_cmd, &online_quality.server);

  driftwatch::cli::DataQualityOptions data_quality;
  CLI::App* dq_cmd = app.add_subcommand(
      "quality-data", "the server's data-quality report of a model's slice: nulls, invalid "
                      "values, duplicates, lateness, freshness, sampling, fingerprints, "
                      "latency, score health");
  AddModelFlags(dq_cmd, &data_quality.model, &data_quality.version);
  dq_cmd->add_option("--slice", data_quality.slice, "slice key=value (default: the population)");
  AddWindowFlags(dq_cmd, &data_quality.window);
  dq_cmd->add_option("--baseline", data_quality.baseline, "baseline name");
  dq_cmd->add_flag("--json", data_quality.json, "print JSON");
  AddServerFlags(dq_cmd, &data_quality.server);

  driftwatch::cli::CompareVersionsOptions compare;
  CLI::App* cmp_cmd = app.add_subcommand(
      "compare-versions", "shadow / canary: how far two versions of a model agree on the same "
                          "event ids (score correlation, decisions, top-k, PSI), per slice");
  cmp_cmd->add_option("--model", compare.model, "model id")->required();
  cmp_cmd->add_option("--a", compare.a, "the reference version (e.g. the champion)")->required();
  cmp_cmd->add_option("--b", compare.b, "the challenger version")->required();
  cmp_cmd->add_option("--slice", compare.slice, "slice key=value (default: every slice)");
  AddWindowFlags(cmp_cmd, &compare.window);
  cmp_cmd->add_option("--k", compare.k, "rankers: top-k (default 10)");
  cmp_cmd->add_option("--threshold", compare.threshold,
                      "decision threshold (default: version a's)");
  cmp_cmd->add_flag("--json", compare.json, "print JSON");
  AddServerFlags(cmp_cmd, &compare.server);
  for (CLI::Option* offline : {q_input, q_score, q_label, q_query, q_weight}) {
    q_model->excludes(offline);
  }

  driftwatch::cli::RegisterOptions reg;
  CLI::App* reg_cmd = app.add_subcommand("register", "register a model schema with driftwatchd");
  reg_cmd->add_option("--schema", reg.schema_path, "ModelSchema as proto JSON or YAML")
      ->required();
  AddServerFlags(reg_cmd, &reg.server);

  driftwatch::cli::ModelsOptions models;
  CLI::App* models_cmd = app.add_subcommand("models", "list the registered models");
  models_cmd->add_flag("--json", models.json, "print JSON");
  AddServerFlags(models_cmd, &models.server);

  driftwatch::cli::PushOptions push;
  CLI::App* push_cmd = app.add_subcommand("push", "stream a CSV or JSONL file of predictions");
  push_cmd->add_option("file", push.input, "FILE.csv or FILE.jsonl")->required();
  AddModelFlags(push_cmd, &push.model, &push.version);
  push_cmd->add_option("--batch", push.batch, "events per batch")->capture_default_str();
  push_cmd->add_option("--stream-batches", push.stream_batches,
                       "batches per stream (the server acks at stream end)")
      ->capture_default_str();
  push_cmd->add_flag("--columnar", push.columnar, "send ColumnarBatch instead of rows");
  push_cmd->add_option("--event-id-column", push.event_id_column, "event id column")
      ->capture_default_str();
  push_cmd->add_option("--time-column", push.time_column, "event time column (Unix ms or RFC 3339)")
      ->capture_default_str();
  AddOptional(push_cmd, "--sample-rate-column", &push.sample_rate_column,
              "column with each event's sample rate");
  push_cmd->add_flag("--json", push.json, "print the summary as JSON");
  push_cmd->add_flag("--allow-rejects", push.allow_rejects,
                     "exit 0 even when the server rejected events (else exit 4)");
  AddServerFlags(push_cmd, &push.server);

  CLI::App* labels_cmd = app.add_subcommand("labels", "delayed labels");
  labels_cmd->require_subcommand(1);
  driftwatch::cli::LabelsPushOptions lpush;
  CLI::App* lpush_cmd =
      labels_cmd->add_subcommand("push", "stream a CSV or JSONL file of labels to join");
  lpush_cmd->add_option("file", lpush.input, "FILE.csv or FILE.jsonl")->required();
  AddModelFlags(lpush_cmd, &lpush.model, &lpush.version);
  lpush_cmd->add_option("--batch", lpush.batch, "labels per batch")->capture_default_str();
  lpush_cmd->add_flag("--json", lpush.json, "print the summary as JSON");
  lpush_cmd->add_flag("--allow-rejects", lpush.allow_rejects,
                      "exit 0 even when the server rejected labels (else exit 4)");
  AddServerFlags(lpush_cmd, &lpush.server);

  CLI::App* baseline_cmd = app.add_subcommand("baseline", "create or list baselines");
  baseline_cmd->require_subcommand(1);
  driftwatch::cli::BaselineCreateOptions bcreate;
  CLI::App* bcreate_cmd = baseline_cmd->add_subcommand("create", "create a baseline");
  AddModelFlags(bcreate_cmd, &bcreate.model, &bcreate.version);
  bcreate_cmd->add_option("--name", bcreate.name, "baseline name")->capture_default_str();
  AddOptional(bcreate_cmd, "--range", &bcreate.range, "pinned range START..END");
  AddOptional(bcreate_cmd, "--trailing", &bcreate.trailing, "trailing window LENGTH[:LAG]");
  AddOptional(bcreate_cmd, "--profile", &bcreate.profile, "reference CSV or JSONL");
  AddOptional(bcreate_cmd, "--weight-column", &bcreate.weight_column,
              "profile column with row weights");
  bcreate_cmd->add_option("--bins", bcreate.bins, "PSI/KL/JS bins")->capture_default_str();
  AddServerFlags(bcreate_cmd, &bcreate.server);
  driftwatch::cli::BaselineListOptions blist;
  CLI::App* blist_cmd = baseline_cmd->add_subcommand("list", "list a model's baselines");
  AddModelFlags(blist_cmd, &blist.model, &blist.version);
  blist_cmd->add_flag("--json", blist.json, "print JSON");
  AddServerFlags(blist_cmd, &blist.server);

  driftwatch::cli::RankOptions rank;
  CLI::App* rank_cmd = app.add_subcommand("rank", "slices ranked by drift");
  AddModelFlags(rank_cmd, &rank.model, &rank.version);
  rank_cmd->add_option("--metric", rank.metric,
                       "psi | js | ks | wasserstein_norm | auc_drop | ece_rise")
      ->capture_default_str();
  rank_cmd->add_option("--feature", rank.feature, "rank by this feature (default: the worst)");
  rank_cmd->add_option("--top", rank.top, "slices to show")->capture_default_str();
  rank_cmd->add_option("--min-support", rank.min_support, "minimum current weight (drift metrics)")
      ->capture_default_str();
  rank_cmd->add_option("--min-labels", rank.min_labels,
                       "auc_drop / ece_rise: minimum labelled predictions per slice")
      ->capture_default_str();
  AddWindowFlags(rank_cmd, &rank.window);
  rank_cmd->add_option("--baseline", rank.baseline, "baseline name");
  rank_cmd->add_flag("--json", rank.json, "print JSON");
  AddServerFlags(rank_cmd, &rank.server);

  driftwatch::cli::SampleOptions sample;
  CLI::App* sample_cmd = app.add_subcommand(
      "sample", "which event ids a deterministic sample of --rate keeps (docs/sampling.md)");
  sample_cmd->add_option("--rate", sample.rate, "sample rate in [0, 1]")->required();
  sample_cmd->add_option("ids", sample.ids, "event ids (default: one per line on stdin)");
  sample_cmd->add_flag("--kept", sample.only_kept, "print only the ids in the sample");
  sample_cmd->add_flag("--ids-only", sample.ids_only, "print ids only (with --kept: a filter)");

  driftwatch::cli::RulesCheckOptions rules_check;
  CLI::App* rules_cmd = app.add_subcommand("rules", "alerting rules files (docs/alerting.md)");
  rules_cmd->require_subcommand(1);
  CLI::App* rcheck_cmd =
      rules_cmd->add_subcommand("check", "parse rules files as driftwatchd does; list the rules");
  rcheck_cmd->add_option("files", rules_check.files, "rules files")->required();
  driftwatch::cli::RulesTestOptions rules_test;
  CLI::App* rtest_cmd = rules_cmd->add_subcommand(
      "test", "run a rules file's unit tests: synthetic signals in, expected alerts checked");
  rtest_cmd->add_option("rules", rules_test.rules_file, "the rules file")->required();
  rtest_cmd->add_option("tests", rules_test.test_files, "test files")->required();

  driftwatch::cli::RulesListOptions rules_list;
  CLI::App* rlist_cmd = rules_cmd->add_subcommand("list", "the rules in force on the server");
  rlist_cmd->add_flag("--json", rules_list.json, "print JSON");
  AddServerFlags(rlist_cmd, &rules_list.server);
  driftwatch::cli::RulesPutOptions rules_put;
  CLI::App* rput_cmd = rules_cmd->add_subcommand(
      "put", "put one rule (a YAML map in the rules file's schema) through the API");
  rput_cmd->add_option("file", rules_put.file, "FILE.yaml holding one rule")->required();
  AddServerFlags(rput_cmd, &rules_put.server);
  driftwatch::cli::RulesDeleteOptions rules_delete;
  CLI::App* rdel_cmd = rules_cmd->add_subcommand("delete", "delete a rule put through the API");
  rdel_cmd->add_option("name", rules_delete.name, "rule name")->required();
  AddServerFlags(rdel_cmd, &rules_delete.server);

  driftwatch::cli::AlertsOptions alerts;
  CLI::App* alerts_cmd = app.add_subcommand("alerts", "the server's alerts (docs/alerting.md)");
  alerts_cmd->add_option("--model", alerts.model, "only this model's");
  alerts_cmd->add_option("--version", alerts.version, "only this version's");
  alerts_cmd->add_option("--state", alerts.states, "pending, firing, resolved (repeatable)");
  alerts_cmd->add_flag("--watch", alerts.watch, "stream every state change until interrupted");
  alerts_cmd->add_flag("--skip-current", alerts.skip_current,
                       "--watch: only changes from now, not the current alerts first");
  alerts_cmd->add_flag("--json", alerts.json, "print JSON");
  AddServerFlags(alerts_cmd, &alerts.server);

  CLI::App* silence_cmd = app.add_subcommand("silence", "silences: add, list, expire");
  silence_cmd->require_subcommand(1);
  driftwatch::cli::SilenceAddOptions silence_add;
  CLI::App* sadd_cmd = silence_cmd->add_subcommand("add", "silence the alerts matching");
  sadd_cmd->add_option("--matcher", silence_add.matchers,
                       "label matcher: alertname=feature_drift, slice=~\"platform=.*\" "
                       "(repeatable; all must match)")
      ->required();
  sadd_cmd->add_option("--duration", silence_add.duration, "how long")->capture_default_str();
  AddOptional(sadd_cmd, "--start", &silence_add.start, "start (Unix ms or RFC 3339; default now)");
  sadd_cmd->add_option("--created-by", silence_add.created_by, "who silences")->required();
  sadd_cmd->add_option("--comment", silence_add.comment, "why");
  AddServerFlags(sadd_cmd, &silence_add.server);
  driftwatch::cli::SilenceListOptions silence_list;
  CLI::App* slist_cmd = silence_cmd->add_subcommand("list", "active and pending silences");
  slist_cmd->add_flag("--all", silence_list.all, "expired ones too");
  slist_cmd->add_flag("--json", silence_list.json, "print JSON");
  AddServerFlags(slist_cmd, &silence_list.server);
  driftwatch::cli::SilenceExpireOptions silence_expire;
  CLI::App* sexp_cmd = silence_cmd->add_subcommand("expire", "end silences now");
  sexp_cmd->add_option("ids", silence_expire.ids, "silence ids")->required();
  AddServerFlags(sexp_cmd, &silence_expire.server);

  driftwatch::cli::SignalsOptions signals;
  CLI::App* signals_cmd =
      app.add_subcommand("signals", "one signal's history, as the rules read it");
  AddModelFlags(signals_cmd, &signals.model, &signals.version);
  signals_cmd->add_option("--signal", signals.signal, "psi, score_psi, auc, volume, ...")
      ->required();
  signals_cmd->add_option("--feature", signals.feature, "the feature (per-feature signals)");
  signals_cmd->add_option("--slice", signals.slice, "key=value, or * for the whole model")
      ->capture_default_str();
  AddOptional(signals_cmd, "--range", &signals.range, "the last RANGE (default 6h)");
  signals_cmd->add_flag("--json", signals.json, "print JSON");
  AddServerFlags(signals_cmd, &signals.server);

  CLI::App* notifications_cmd =
      app.add_subcommand("notifications", "the notification outbox (docs/notifications.md)");
  notifications_cmd->require_subcommand(1);
  driftwatch::cli::NotificationsListOptions notifications_list;
  CLI::App* nlist_cmd = notifications_cmd->add_subcommand("list", "notifications, newest first");
  nlist_cmd->add_flag("--pending", notifications_list.pending, "only those not delivered yet");
  nlist_cmd->add_option("--limit", notifications_list.limit, "at most this many")
      ->capture_default_str();
  nlist_cmd->add_flag("--json", notifications_list.json, "print JSON (bodies included)");
  AddServerFlags(nlist_cmd, &notifications_list.server);

  // CLI11 reports a mistyped subcommand as "a subcommand is required";
  // name it instead.
  const std::string first = argc > 1 ? argv[1] : "";
  if (!first.empty() && first[0] != '-' &&
      std::find(std::begin(kSubcommands), std::end(kSubcommands), first) ==
          std::end(kSubcommands)) {
    std::cerr << "driftctl: unknown subcommand \"" << argv[1]
              << "\" (expected stats, report, changepoint, calibrate, quality, register, "
                 "models, push, labels, baseline, rank, sample, rules, alerts, silence, signals, "
                 "notifications or quality-data)\n";
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
  if (report_cmd->parsed()) {
    if (!online_report.model.empty()) {
      return driftwatch::cli::RunOnlineReport(online_report, std::cout, std::cerr);
    }
    for (const CLI::Option* required : {report_ref, report_cur, report_out}) {
      if (required->count() == 0) {
        std::cerr << "driftctl: report: " << required->get_name()
                  << " is required (or --model for the server's report)\n";
        return kExitBadInput;
      }
    }
    return driftwatch::cli::RunReport(report, std::cout, std::cerr);
  }
  if (reg_cmd->parsed()) return driftwatch::cli::RunRegister(reg, std::cout, std::cerr);
  if (models_cmd->parsed()) return driftwatch::cli::RunModels(models, std::cout, std::cerr);
  if (push_cmd->parsed()) {
    return driftwatch::cli::RunPush(push, std::cout, std::cerr, isatty(STDERR_FILENO) != 0);
  }
  if (bcreate_cmd->parsed()) {
    return driftwatch::cli::RunBaselineCreate(bcreate, std::cout, std::cerr);
  }
  if (blist_cmd->parsed()) return driftwatch::cli::RunBaselineList(blist, std::cout, std::cerr);
  if (rank_cmd->parsed()) return driftwatch::cli::RunRank(rank, std::cout, std::cerr);
  if (dq_cmd->parsed()) return driftwatch::cli::RunDataQuality(data_quality, std::cout, std::cerr);
  if (cmp_cmd->parsed()) {
    return driftwatch::cli::RunCompareVersions(compare, std::cout, std::cerr);
  }
  if (rcheck_cmd->parsed()) return driftwatch::cli::RunRulesCheck(rules_check, std::cout, std::cerr);
  if (rtest_cmd->parsed()) return driftwatch::cli::RunRulesTest(rules_test, std::cout, std::cerr);
  if (rlist_cmd->parsed()) return driftwatch::cli::RunRulesList(rules_list, std::cout, std::cerr);
  if (rput_cmd->parsed()) return driftwatch::cli::RunRulesPut(rules_put, std::cout, std::cerr);
  if (rdel_cmd->parsed()) return driftwatch::cli::RunRulesDelete(rules_delete, std::cout, std::cerr);
  if (alerts_cmd->parsed()) return driftwatch::cli::RunAlerts(alerts, std::cout, std::cerr);
  if (sadd_cmd->parsed()) return driftwatch::cli::RunSilenceAdd(silence_add, std::cout, std::cerr);
  if (slist_cmd->parsed()) {
    return driftwatch::cli::RunSilenceList(silence_list, std::cout, std::cerr);
  }
  if (sexp_cmd->parsed()) {
    return driftwatch::cli::RunSilenceExpire(silence_expire, std::cout, std::cerr);
  }
  if (signals_cmd->parsed()) return driftwatch::cli::RunSignals(signals, std::cout, std::cerr);
  if (nlist_cmd->parsed()) {
    return driftwatch::cli::RunNotificationsList(notifications_list, std::cout, std::cerr);
  }
  if (sample_cmd->parsed()) {
    return driftwatch::cli::RunSample(sample, std::cin, std::cout, std::cerr);
  }
  if (lpush_cmd->parsed()) {
    return driftwatch::cli::RunLabelsPush(lpush, std::cout, std::cerr, isatty(STDERR_FILENO) != 0);
  }
  if (q_cmd->parsed()) {
    if (!online_quality.model.empty()) {
      online_quality.k = quality.k;
      online_quality.bins = quality.bins;
      online_quality.json = quality.json;
      return driftwatch::cli::RunOnlineQuality(online_quality, std::cout, std::cerr);
    }
    for (const CLI::Option* required : {q_input, q_score, q_label}) {
      if (required->count() == 0) {
        std::cerr << "driftctl: quality: " << required->get_name()
                  << " is required (or --model for the server's quality report)\n";
        return kExitBadInput;
      }
    }
    return driftwatch::cli::RunQuality(quality, std::cout, std::cerr);
  }
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
