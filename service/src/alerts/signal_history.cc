#include "driftwatch/service/signal_history.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "driftwatch/service/window_reader.h"

namespace driftwatch::service {

absl::Status SignalHistory::Record(const Evaluation& evaluation) {
  absl::MutexLock lock(&mu_);
  if (evaluation.generation == 0 || evaluation.generation == recorded_generation_) {
    return absl::OkStatus();
  }
  std::vector<storage::SignalPoint> points;
  points.reserve(evaluation.signals.size());
  for (const detectors::Signal& s : evaluation.signals) {
    points.push_back({s.model, s.name, s.feature, s.slice, s.value, s.baseline});
  }
  DW_RETURN_IF_ERROR(store_->AppendSignals(evaluation.evaluated_at_ms, points));
  recorded_generation_ = evaluation.generation;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SignalHistory::Compact(const storage::SignalRetention& retention,
                                               int64_t now_ms) {
  return store_->CompactSignals(retention, now_ms);
}

absl::StatusOr<v1::SignalSeries> SignalHistory::GetSeries(
    const v1::GetSignalSeriesRequest& request) const {
  if (request.signal().empty()) {
    return absl::InvalidArgumentError("signal: name the signal (psi, score_psi, auc, volume, ...)");
  }
  DW_ASSIGN_OR_RETURN(std::shared_ptr<const RegisteredModel> model,
                      registry_->Find(request.model()));
  const int64_t now_ms = clock_->NowMs();
  Interval range;
  if (request.window().has_range()) {
    DW_ASSIGN_OR_RETURN(range, CheckedRange(request.window().range(), "window.range"));
  } else {
    const int64_t last = request.window().last_seconds() > 0 ? request.window().last_seconds()
                                                              : 6 * 3600;
    if (last > kMaxWindowSeconds) {
      return absl::InvalidArgumentError(
          absl::StrCat("window.last_seconds: at most ", kMaxWindowSeconds));
    }
    range = {now_ms - last * 1000, now_ms + 1};
  }
  const std::string slice = request.slice().empty() ? std::string("*") : request.slice();
  DW_ASSIGN_OR_RETURN(std::vector<storage::SignalSample> samples,
                      store_->ReadSignalSeries(model->label(), request.signal(), request.feature(),
                                               slice, range.start_ms, range.end_ms));
  v1::SignalSeries out;
  *out.mutable_model() = model->ref();
  out.set_signal(request.signal());
  out.set_feature(request.feature());
  out.set_slice(slice);
  SetRange(range, out.mutable_window());
  for (const storage::SignalSample& s : samples) {
    v1::SignalSample* p = out.add_samples();
    SetMs(s.t_ms, p->mutable_time());
    p->set_value(s.value);
    if (std::isfinite(s.baseline)) p->set_baseline(s.baseline);
    p->set_resolution(s.resolution);
  }
  return out;
}

}  // namespace driftwatch::service
