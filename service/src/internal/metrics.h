// The /metrics exposition: ingest counters per model version (read from
// the registry at every scrape), flush and dedup counters (read from the
// Ingestor), label counters per model version and the joiner's totals,
// batch latency and the evaluator's latest signals (drift per feature,
// quality per slice) as gauges.
// docs/configuration.md lists every family.
// prometheus-cpp stays in this file's .cc; nothing outside service/src
// sees it. Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "driftwatch/service/alert_rules.h"
#include "driftwatch/service/evaluator.h"
#include "driftwatch/service/notifier.h"
#include "driftwatch/service/ingestor.h"
#include "driftwatch/service/label_joiner.h"
#include "driftwatch/service/model_registry.h"

namespace driftwatch::service::internal {

class Metrics {
 public:
  // They must outlive this object (or StopExposing must run first);
  // `labels` may be null (no label series but the per-model counters).
  Metrics(const Ingestor* ingestor, const ModelRegistry* registry, const Evaluator* evaluator,
          const LabelJoiner* labels = nullptr, const AlertRules* alerts = nullptr,
          Notifier* notifier = nullptr);
  ~Metrics();

  // Serves /metrics on `listen` ("host:port"; port 0 picks a free one).
  // UNAVAILABLE when the address cannot be bound.
  absl::Status Expose(const std::string& listen);
  // Stops the HTTP server; later scrapes are refused. Idempotent.
  void StopExposing();
  // The bound port, 0 when not exposing.
  int port() const;

  // One batch applied in `seconds`.
  void ObserveBatch(double seconds);
  // A batch waited for a running query (QueryPriority).
  void OnQueryYield();
  // One report query (GetDriftReport, RankSlices) answered in `seconds`.
  void ObserveQuery(const std::string& method, double seconds);
  // One evaluator run (signals and rules) took `seconds`; `ok`: it published.
  void ObserveEvaluation(double seconds, bool ok);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace driftwatch::service::internal
