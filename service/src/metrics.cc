#include "internal/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <iterator>
#include <map>
#include <string_view>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace driftwatch::service::internal {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Brings a counter up to a monotonic total kept elsewhere.
void CatchUp(Counter& counter, uint64_t total) {
  const double delta = static_cast<double>(total) - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

}  // namespace

struct Metrics::State {
  State(const Ingestor* ingestor_in, const ModelRegistry* registry_in,
        const Evaluator* evaluator_in, const LabelJoiner* labels_in, const AlertRules* alerts_in,
        Notifier* notifier_in)
      : ingestor(ingestor_in),
        models_registry(registry_in),
        evaluator(evaluator_in),
        labels(labels_in),
        alert_rules(alerts_in),
        notifier(notifier_in) {
    notifications = &Family1("driftwatch_notifications_total",
                             "Notification sends by receiver and result: delivered (2xx), retried, "
                             "failed (a final 4xx) or expired (past retry.max_age)");
    outbox_pending = &Gauge1("driftwatch_notification_outbox_pending",
                             "Notifications in the outbox not delivered yet");
    outbox_oldest = &Gauge1("driftwatch_notification_outbox_oldest_seconds",
                            "Age of the oldest undelivered notification (0: none)");
    delivery_seconds = &BuildHistogram()
                            .Name("driftwatch_notification_delivery_seconds")
                            .Help("From the evaluation that wrote a notification to its 2xx")
                            .Register(*registry)
                            .Add({}, Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10,
                                                                 30, 60, 300, 3600});
    evaluation_seconds = &BuildHistogram()
                              .Name("driftwatch_evaluation_duration_seconds")
                              .Help("Time of one evaluator run: signals, history and rules")
                              .Register(*registry)
                              .Add({}, Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1,
                                                                   0.5, 1, 5, 10, 30});
    evaluation_failures = &Counter1("driftwatch_evaluation_failures_total",
                                    "Evaluator runs that published no signals (storage errors)");
    alerts = &BuildGauge()
                  .Name("driftwatch_alerts")
                  .Help("Alerts by state (pending, firing, resolved), rule and severity")
                  .Register(*registry);
    rule_evaluations = &Counter1("driftwatch_rule_evaluations_total",
                                 "Rules engine evaluations (one per evaluator run with rules)");
    rule_evaluation_failures =
        &Counter1("driftwatch_rule_evaluation_failures_total",
                  "Rules evaluations whose alert state could not be saved (retried)");
    rule_load_errors = &Counter1("driftwatch_rule_load_errors_total",
                                 "Rules files refused at a reload (SIGHUP); the old rules stay");
    rule_evaluation_seconds = &Gauge1("driftwatch_rule_evaluation_seconds",
                                      "Time of the latest rules evaluation");
    rules = &Gauge1("driftwatch_rules", "Rules in force (file and API)");
    silences_active = &Gauge1("driftwatch_silences_active", "Silences in force now");
    events = &Family1("driftwatch_ingest_events_total",
                      "Prediction events by model version and result: accepted, duplicate or "
                      "rejected, disjoint (they sum to the events received)");
    late_accepted = &Family1("driftwatch_ingest_late_accepted_total",
                             "Accepted prediction events that arrived behind the watermark "
                             "(part of result=\"accepted\")");
    backfilled = &Family1("driftwatch_ingest_backfilled_total",
                          "Accepted prediction events merged into closed buckets "
                          "(part of result=\"accepted\")");
    rejected_by_reason = &Family1("driftwatch_ingest_rejected_total",
                                  "Rejected prediction events by reason (they sum to "
                                  "result=\"rejected\"); too_late is one reason");
    batches = &Counter1("driftwatch_ingest_batches_total", "Prediction batches applied");
    batch_seconds = &BuildHistogram()
                         .Name("driftwatch_ingest_batch_seconds")
                         .Help("Time to apply one prediction batch")
                         .Register(*registry)
                         .Add({}, Histogram::BucketBoundaries{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3,
                                                              0.01, 0.05, 0.1, 0.5, 1});
    query_seconds = &BuildHistogram()
                         .Name("driftwatch_query_seconds")
                         .Help("Time to answer a report query, by method")
                         .Register(*registry);
    query_yields = &Counter1("driftwatch_ingest_query_yields_total",
                             "Batches whose apply waited for a running drift report or slice "
                             "ranking (reports.ingest_yield_ms)");
    open_buckets = &Gauge1("driftwatch_open_buckets", "Event-time buckets held open in memory");
    flushes = &Counter1("driftwatch_flushes_total", "Flushes of open buckets to storage");
    flush_failures = &Counter1("driftwatch_flush_failures_total",
                               "Flushes that storage refused (retried by the next flush)");
    early_closes = &Counter1("driftwatch_dedup_early_closes_total",
                             "Buckets closed before their lateness ran out because the dedup "
                             "id cap (ingest.max_dedup_ids) was reached; later events of them "
                             "are too_late");
    evicted_buckets = &Counter1("driftwatch_ingest_dedup_evicted_buckets_total",
                                "Closed buckets whose dedup ids left memory (ingest.max_dedup_ids; "
                                "they stay in storage)");
    loaded_buckets = &Counter1("driftwatch_ingest_dedup_loaded_buckets_total",
                               "Closed buckets whose dedup ids were loaded back from storage for "
                               "a backfilling event");
    flush_seconds = &Gauge1("driftwatch_flush_seconds", "Duration of the last flush");
    models = &Gauge1("driftwatch_models", "Registered model versions");
    const std::pair<const char*, const char*> signal_families[] = {
        {"psi", "Population stability index against the default baseline"},
        {"js", "Jensen-Shannon distance (base 2) against the default baseline"},
        {"ks", "Kolmogorov-Smirnov statistic against the default baseline"},
        {"wasserstein_norm", "Wasserstein-1 distance over the baseline standard deviation"},
        {"ks_error_bound",
         "How far the true KS statistic may lie above driftwatch_ks (summary bound)"},
        {"wasserstein_norm_error_bound",
         "How far the true W1/sd may lie from driftwatch_wasserstein_norm (summary bound)"},
        {"null_rate", "Share of null values in the current window"},
        {"ks_p", "Kolmogorov-Smirnov p-value (asymptotic, from driftwatch_ks)"},
        {"chi2_p", "Chi-squared p-value of a categorical feature against the default baseline"},
        {"invalid_rate",
         "Share of events whose value of the feature is invalid: null where not nullable, "
         "NaN/Inf, outside the enum or the declared min/max (docs/data-quality.md)"},
        {"shadow_paired", "Event ids scored by this version and by the version in label feature"},
        {"shadow_score_correlation",
         "Weighted Pearson correlation of the paired scores with the version in label feature"},
        {"shadow_decision_agreement",
         "Share of paired events decided alike (threshold, or argmax for multiclass)"},
        {"shadow_topk_overlap",
         "Rankers: mean top-k overlap per query with the version in label feature"},
        {"shadow_psi", "PSI of the paired scores against those of the version in label feature"},
        {"shadow_mean_abs_diff", "Mean absolute score difference from the version in label feature"},
        {"orphan_label_rate",
         "Share of the labels from one source (label \"feature\") that had no prediction"},
    };
    for (const auto& [name, help] : signal_families) {
      signals[name] =
          &BuildGauge().Name(absl::StrCat("driftwatch_", name)).Help(help).Register(*registry);
    }
    // Quality per slice as labels mature over the evaluator's quality
    // window (docs/labels.md): labels {model, slice}.
    const std::pair<const char*, const char*> quality_families[] = {
        {"auc", "ROC AUC of the labelled predictions (binned; see driftwatch_auc_error_bound)"},
        {"auc_error_bound", "How far the exact AUC may lie from driftwatch_auc (binned bound)"},
        {"ece", "Expected calibration error of the labelled predictions (10 equal-width bins)"},
        {"mce", "Maximum calibration error of the labelled predictions (10 equal-width bins)"},
        {"brier", "Brier score of the labelled predictions (exact)"},
        {"accuracy", "Accuracy at the model's decision threshold (argmax for multiclass)"},
        {"label_coverage", "Labelled weight over predicted weight of the quality window"},
        {"estimated_auc",
         "Expected AUC of the unlabelled predictions, from their scores calibrated on the "
         "baseline's labels (CBPE)"},
        {"estimated_accuracy",
         "Expected accuracy at the decision threshold of the unlabelled predictions (CBPE)"},
        {"auc_delta", "driftwatch_auc minus the default baseline's AUC"},
        {"ece_delta", "driftwatch_ece minus the default baseline's ECE"},
        {"macro_auc", "Multiclass: macro one-vs-rest ROC AUC (binned)"},
        {"log_loss", "Multiclass: log loss"},
        {"mae", "Regression: mean absolute error"},
        {"rmse", "Regression: root mean squared error"},
        {"bias", "Regression: mean of prediction minus target"},
        {"ndcg", "Ranking: mean NDCG@k over queries (labels.ndcg_k)"},
        {"label_delay_p95",
         "95th percentile of label time minus prediction event time (within 2.2%)"},
    };
    static_assert(std::size(quality_families) == std::size(kQualitySignalNames));
    for (const auto& [name, help] : quality_families) {
      // Prometheus names carry their unit.
      const std::string metric = std::string_view(name) == "label_delay_p95"
                                     ? std::string("label_delay_p95_seconds")
                                     : std::string(name);
      quality_signals[name] =
          &BuildGauge().Name(absl::StrCat("driftwatch_", metric)).Help(help).Register(*registry);
    }
    // The model's first score and its traffic, per slice: labels {model, slice}.
    const std::pair<const char*, const char*> model_families[] = {
        {"score_psi", "PSI of the model's (first) score against the default baseline"},
        {"score_js", "Jensen-Shannon divergence of the model's (first) score"},
        {"score_ks", "Kolmogorov-Smirnov statistic of the model's (first) score"},
        {"score_ks_p", "Kolmogorov-Smirnov p-value of the model's (first) score"},
        {"score_wasserstein_norm", "Wasserstein-1 over the baseline sd of the (first) score"},
        {"score_mean", "Weighted mean of the model's (first) score in the current window"},
        {"score_null_rate", "Share of events without a (first) score in the current window"},
        {"volume", "Events per bucket in the current window (up to the watermark)"},
        {"events", "Events in the evaluator's window"},
        {"labelled", "Labelled predictions (weight) in the quality window"},
        // Data quality (docs/data-quality.md).
        {"duplicate_rate", "Duplicates over events plus duplicates in the evaluator's window"},
        {"unknown_field_rate", "Share of events carrying named fields not in the schema"},
        {"lateness_p50", "Median receive time minus event time, seconds (upper bin edge)"},
        {"lateness_p95", "95th percentile of receive time minus event time, seconds"},
        {"lateness_p99", "99th percentile of receive time minus event time, seconds"},
        {"late_share", "Share of events accepted behind the watermark"},
        {"freshness_seconds", "Server clock minus the newest event time"},
        {"silence_seconds", "Server clock minus the last arrival"},
        {"slice_silent", "1 when the slice sent nothing for evaluator.silence_timeout"},
        {"volume_z", "Robust z of events per hour against the slice's seasonal expectation"},
        {"rate_mismatch_rate", "Share of events whose sample_rate differs from the declared one"},
        {"hash_unsampled_rate", "Share of events the declared hash sampling would not keep"},
        {"fingerprint_mismatch", "Share of events whose feature_hash the baseline never saw"},
        {"latency_p95", "95th percentile of latency_ms (upper bin edge)"},
        {"latency_p99", "99th percentile of latency_ms (upper bin edge)"},
        {"score_zero_one_share", "Share of (first) scores exactly 0 or 1"},
        {"score_out_of_range_share", "Share of (first) scores outside the score kind's range"},
        {"score_constant", "1 when every (first) score in the window is the same value"},
        {"unlabelled_rate", "Share of kept predictions whose label window passed unlabelled"},
    };
    for (const auto& [name, help] : model_families) {
      quality_signals[name] =
          &BuildGauge().Name(absl::StrCat("driftwatch_", name)).Help(help).Register(*registry);
    }
    labels_total = &Family1("driftwatch_labels_total",
                            "Labels by model version and result at arrival: joined, pending, "
                            "duplicate, conflicting, not_sampled, orphan or rejected; a pending "
                            "label counts again when it leaves (joined, orphan or rejected)");
    labels_rejected = &Family1("driftwatch_labels_rejected_total",
                               "Rejected labels by reason (they sum to result=\"rejected\")");
    labels_expired = &Family1("driftwatch_labels_expired_total",
                              "Kept predictions whose join state left labels.window unlabelled");
    labels_join_state_full = &Family1(
        "driftwatch_label_join_state_full_total",
        "Kept predictions whose join record was not held: labels.max_join_records was reached "
        "with no older hour to drop (their labels become orphan)");
    label_commits = &Counter1("driftwatch_label_commits_total", "Label join commits to storage");
    label_commit_failures = &Counter1("driftwatch_label_commit_failures_total",
                                      "Label join commits that storage refused (retried)");
    label_join_records = &Gauge1("driftwatch_label_join_records",
                                 "Join records of kept predictions held in memory");
    labels_pending = &Gauge1("driftwatch_labels_pending",
                             "Labels waiting for their prediction (labels.max_pending)");
  }

  Family<Counter>& Family1(const char* name, const char* help) {
    return BuildCounter().Name(name).Help(help).Register(*registry);
  }
  // A family of one series without labels.
  Counter& Counter1(const char* name, const char* help) {
    return BuildCounter().Name(name).Help(help).Register(*registry).Add({});
  }
  Gauge& Gauge1(const char* name, const char* help) {
    return BuildGauge().Name(name).Help(help).Register(*registry).Add({});
  }

  // Reads the ingestor's totals and the latest evaluation into the
  // registry; runs at every scrape.
  void Sync() {
    const IngestTotals& t = ingestor->totals();
    absl::MutexLock lock(&mu);
    for (const std::shared_ptr<const RegisteredModel>& model : models_registry->List()) {
      SyncModel(*model);
    }
    CatchUp(*evicted_buckets, t.evicted_buckets.load());
    CatchUp(*loaded_buckets, t.loaded_buckets.load());
    CatchUp(*flushes, t.flushes.load());
    CatchUp(*flush_failures, t.flush_failures.load());
    CatchUp(*early_closes, t.early_closes.load());
    flush_seconds->Set(static_cast<double>(t.last_flush_us.load()) / 1e6);
    open_buckets->Set(static_cast<double>(ingestor->open_buckets()));
    models->Set(static_cast<double>(models_registry->List().size()));
    if (labels != nullptr) {
      const LabelTotals& l = labels->totals();
      CatchUp(*label_commits, l.commits.load());
      CatchUp(*label_commit_failures, l.commit_failures.load());
      label_join_records->Set(static_cast<double>(l.join_records.load()));
      labels_pending->Set(static_cast<double>(l.pending_labels.load()));
    }
    if (alert_rules != nullptr) SyncAlerts(alert_rules->Stats());
    if (notifier != nullptr) SyncNotifier(notifier->TakeStats());
    std::shared_ptr<const Evaluation> latest = evaluator->Latest();
    if (latest->generation != signals_generation) {
      SetSignals(latest->signals);
      signals_generation = latest->generation;
    }
  }

  // The per-model ingest series of one model version, added at its first
  // scrape (a reason's series at its first rejection).
  struct ModelSeries {
    Counter* accepted = nullptr;
    Counter* duplicate = nullptr;
    Counter* rejected = nullptr;
    Counter* late_accepted = nullptr;
    Counter* backfilled = nullptr;
    std::array<Counter*, kRejectReasonNames.size()> reasons{};
    // Models with a label kind only.
    std::array<Counter*, 7> label_results{};  // in kLabelResults order
    Counter* labels_expired = nullptr;
    Counter* labels_join_state_full = nullptr;
    std::array<Counter*, kLabelRejectReasonNames.size()> label_reasons{};
  };
  static constexpr std::array<const char*, 7> kLabelResults = {
      "joined", "pending", "duplicate", "conflicting", "not_sampled", "orphan", "rejected"};
  void SyncModel(const RegisteredModel& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const RegisteredModel::IngestCounters& c = model.ingest_counters();
    const prometheus::Labels labels = {{"model", model.ref().model_id()},
                                       {"version", model.ref().model_version()}};
    auto with = [&labels](const char* key, std::string_view value) {
      prometheus::Labels out = labels;
      out.emplace(key, std::string(value));
      return out;
    };
    auto [it, added] = per_model.try_emplace(model.model_key());
    ModelSeries& m = it->second;
    if (added) {
      m.accepted = &events->Add(with("result", "accepted"));
      m.duplicate = &events->Add(with("result", "duplicate"));
      m.rejected = &events->Add(with("result", "rejected"));
      m.late_accepted = &late_accepted->Add(labels);
      m.backfilled = &backfilled->Add(labels);
    }
    CatchUp(*m.accepted, c.accepted.load());
    CatchUp(*m.duplicate, c.duplicates.load());
    CatchUp(*m.rejected, c.rejected.load());
    CatchUp(*m.late_accepted, c.late_accepted.load());
    CatchUp(*m.backfilled, c.backfilled.load());
    for (size_t i = 0; i < kRejectReasonNames.size(); ++i) {
      const uint64_t n = c.rejected_by_reason[i].load();
      if (n == 0) continue;
      if (m.reasons[i] == nullptr) {
        m.reasons[i] = &rejected_by_reason->Add(with("reason", kRejectReasonNames[i]));
      }
      CatchUp(*m.reasons[i], n);
    }
    if (!model.quality_kind()) return;
    const RegisteredModel::LabelCounters& l = model.label_counters();
    if (m.labels_expired == nullptr) {
      for (size_t i = 0; i < kLabelResults.size(); ++i) {
        m.label_results[i] = &labels_total->Add(with("result", kLabelResults[i]));
      }
      m.labels_expired = &labels_expired->Add(labels);
      m.labels_join_state_full = &labels_join_state_full->Add(labels);
    }
    const std::array<uint64_t, 7> results = {
        l.joined.load(), l.pending.load(),     l.duplicates.load(), l.conflicting.load(),
        l.not_sampled.load(), l.orphan.load(), l.rejected.load()};
    for (size_t i = 0; i < results.size(); ++i) CatchUp(*m.label_results[i], results[i]);
    CatchUp(*m.labels_expired, l.expired.load());
    CatchUp(*m.labels_join_state_full, l.join_state_full.load());
    for (size_t i = 0; i < kLabelRejectReasonNames.size(); ++i) {
      const uint64_t n = l.rejected_by_reason[i].load();
      if (n == 0) continue;
      if (m.label_reasons[i] == nullptr) {
        m.label_reasons[i] = &labels_rejected->Add(with("reason", kLabelRejectReasonNames[i]));
      }
      CatchUp(*m.label_reasons[i], n);
    }
  }

  // Replaces the drift gauges: series absent from `signals` are removed.
  void SetSignals(const std::vector<detectors::Signal>& signals) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  void SyncNotifier(const NotifierStats& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const auto& [key, n] : st.results) {
      CatchUp(notifications->Add({{"receiver", key.first}, {"result", key.second}}), n);
    }
    for (double s : st.latencies_s) delivery_seconds->Observe(s);
    outbox_pending->Set(static_cast<double>(st.pending));
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    outbox_oldest->Set(st.oldest_pending_ms == 0
                           ? 0.0
                           : static_cast<double>(now_ms - st.oldest_pending_ms) / 1000.0);
  }

  void SyncAlerts(const AlertRulesStats& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    CatchUp(*rule_evaluations, st.evaluations);
    CatchUp(*rule_evaluation_failures, st.evaluation_failures);
    CatchUp(*rule_load_errors, st.rule_load_errors);
    rule_evaluation_seconds->Set(st.last_evaluation_seconds);
    rules->Set(static_cast<double>(st.rules));
    silences_active->Set(static_cast<double>(st.active_silences));
    // Series of (state, rule, severity) that no longer have an alert go to
    // 0 rather than away, so a resolved count is visible as it drops.
    for (auto& [key, gauge] : alert_series) gauge->Set(0);
    for (const auto& [key, n] : st.alerts) {
      auto [it, added] = alert_series.try_emplace(key, nullptr);
      if (added) {
        it->second = &alerts->Add({{"state", std::get<0>(key)},
                                   {"rule", std::get<1>(key)},
                                   {"severity", std::get<2>(key)}});
      }
      it->second->Set(static_cast<double>(n));
    }
  }

  // What the exposer scrapes: the registry, synced first.
  class Scrape final : public prometheus::Collectable {
   public:
    explicit Scrape(State* state) : state_(state) {}
    std::vector<prometheus::MetricFamily> Collect() const override {
      state_->Sync();
      return state_->registry->Collect();
    }

   private:
    State* const state_;
  };

  const Ingestor* const ingestor;
  const ModelRegistry* const models_registry;
  const Evaluator* const evaluator;
  const LabelJoiner* const labels;  // may be null
  const AlertRules* const alert_rules;  // may be null
  Notifier* const notifier;             // may be null
  Family<Counter>* notifications;
  Gauge* outbox_pending;
  Gauge* outbox_oldest;
  Histogram* delivery_seconds;
  Histogram* evaluation_seconds;
  Counter* evaluation_failures;
  Family<Gauge>* alerts;
  std::map<std::tuple<std::string, std::string, std::string>, Gauge*> alert_series;
  Counter* rule_evaluations;
  Counter* rule_evaluation_failures;
  Counter* rule_load_errors;
  Gauge* rule_evaluation_seconds;
  Gauge* rules;
  Gauge* silences_active;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  // Per model version, read from RegisteredModel::ingest_counters.
  Family<Counter>* events;
  Family<Counter>* late_accepted;
  Family<Counter>* backfilled;
  Family<Counter>* rejected_by_reason;
  Counter* batches;
  Counter* query_yields;
  prometheus::Family<Histogram>* query_seconds;
  Histogram* batch_seconds;
  Gauge* open_buckets;
  Counter* flushes;
  Counter* flush_failures;
  Counter* early_closes;
  Counter* evicted_buckets;
  Counter* loaded_buckets;
  Gauge* flush_seconds;
  Gauge* models;
  std::map<std::string, Family<Gauge>*> signals;  // by signal name; constant after construction
  std::map<std::string, Family<Gauge>*> quality_signals;  // likewise; labels {model, slice}
  Family<Counter>* labels_total;
  Family<Counter>* labels_rejected;
  Family<Counter>* labels_expired;
  Family<Counter>* labels_join_state_full;
  Counter* label_commits;
  Counter* label_commit_failures;
  Gauge* label_join_records;
  Gauge* labels_pending;

  absl::Mutex mu;  // Sync, and the signal series below
  // (name, model, feature, slice) -> gauge
  std::map<std::tuple<std::string, std::string, std::string, std::string>, Gauge*> series
      ABSL_GUARDED_BY(mu);
  uint64_t signals_generation ABSL_GUARDED_BY(mu) = 0;  // the evaluation the gauges show
  std::map<int64_t, ModelSeries> per_model ABSL_GUARDED_BY(mu);  // by model key

  // Declared last: destroyed first, so no scrape runs into a dying State.
  std::shared_ptr<Scrape> scrape = std::make_shared<Scrape>(this);
  std::string listen;  // the exposer's bind address
  std::unique_ptr<prometheus::Exposer> exposer;
};

Metrics::Metrics(const Ingestor* ingestor, const ModelRegistry* registry,
                 const Evaluator* evaluator, const LabelJoiner* labels, const AlertRules* alerts,
                 Notifier* notifier)
    : state_(std::make_shared<State>(ingestor, registry, evaluator, labels, alerts, notifier)) {}

void Metrics::ObserveEvaluation(double seconds, bool ok) {
  state_->evaluation_seconds->Observe(seconds);
  if (!ok) state_->evaluation_failures->Increment();
}

Metrics::~Metrics() { StopExposing(); }

absl::Status Metrics::Expose(const std::string& listen) {
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(listen, 2);
    exposer->RegisterCollectable(state_->scrape);
    if (exposer->GetListeningPorts().empty()) {
      return absl::UnavailableError(absl::StrCat("metrics_listen ", listen, ": not listening"));
    }
    state_->exposer = std::move(exposer);
    state_->listen = listen;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen ", listen, ": cannot serve /metrics: ", e.what()));
  }
  return absl::OkStatus();
}

void Metrics::StopExposing() {
  if (state_->exposer == nullptr) return;
  // civetweb's accept loop polls with a 2 s quantum before it sees the stop
  // flag; a connection (closed at once, so no worker waits on it) wakes it.
  std::atomic<bool> stopped{false};
  std::thread waker;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port()));
  std::string host = state_->listen.substr(0, state_->listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1) {
    waker = std::thread([&stopped, addr] {
      for (int i = 0; i < 100 && !stopped.load(); ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0) {
          (void)connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
          close(fd);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  state_->exposer.reset();
  stopped.store(true);
  if (waker.joinable()) waker.join();
}

int Metrics::port() const {
  if (state_->exposer == nullptr) return 0;
  const std::vector<int> ports = state_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Metrics::ObserveBatch(double seconds) {
  state_->batches->Increment();
  state_->batch_seconds->Observe(seconds);
}

void Metrics::OnQueryYield() { state_->query_yields->Increment(); }

void Metrics::ObserveQuery(const std::string& method, double seconds) {
  // Family::Add returns the existing series for known labels.
  state_->query_seconds
      ->Add({{"method", method}},
            Histogram::BucketBoundaries{5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5})
      .Observe(seconds);
}

void Metrics::State::SetSignals(const std::vector<detectors::Signal>& values) {
  auto previous = std::move(series);
  series.clear();
  for (const detectors::Signal& signal : values) {
    // A model-level quality signal has no feature; the drift ones do.
    const bool quality = signal.feature.empty();
    const std::map<std::string, Family<Gauge>*>& families = quality ? quality_signals : signals;
    auto family = families.find(signal.name);
    if (family == families.end()) continue;
    auto key = std::make_tuple(signal.name, signal.model, signal.feature, signal.slice);
    Gauge* gauge = nullptr;
    if (auto it = previous.find(key); it != previous.end()) {
      gauge = it->second;
      previous.erase(it);
    } else if (auto it2 = series.find(key); it2 != series.end()) {
      gauge = it2->second;
    } else if (quality) {
      gauge = &family->second->Add({{"model", signal.model}, {"slice", signal.slice}});
    } else {
      gauge = &family->second->Add(
          {{"model", signal.model}, {"feature", signal.feature}, {"slice", signal.slice}});
    }
    gauge->Set(signal.value);
    series[key] = gauge;
  }
  for (const auto& [key, gauge] : previous) {
    (std::get<2>(key).empty() ? quality_signals : signals).at(std::get<0>(key))->Remove(gauge);
  }
}

}  // namespace driftwatch::service::internal
