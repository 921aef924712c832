// `driftctl changepoint` and `driftctl calibrate`: the sequential detectors
// on a series read from a stream.
#include "driftwatch/detectors/sequential.h"

#include <cmath>
#include <istream>
#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "driftwatch/cli/commands.h"
#include "driftwatch/cli/csv.h"
#include "internal/summary.h"
#include "nlohmann/json.hpp"

namespace driftwatch::cli {
namespace {

using internal::ReportError;

enum class Method { kEwma, kCusum, kPageHinkley };

absl::StatusOr<Method> ParseMethod(const std::string& name) {
  if (name == "ewma") return Method::kEwma;
  if (name == "cusum") return Method::kCusum;
  if (name == "page-hinkley") return Method::kPageHinkley;
  return absl::InvalidArgumentError(
      absl::StrCat("--method must be ewma, cusum or page-hinkley, got \"", name, "\""));
}

// Rejects every flag set in `flags` that `method` does not take, so that
// e.g. `--method cusum --lambda 0.1` is an error instead of being ignored.
absl::Status CheckFlagsBelong(const SequentialFlags& f, Method method) {
  struct Flag {
    const char* name;
    bool set;
    bool ewma, cusum, ph;
  };
  const Flag table[] = {
      {"--lambda", f.lambda.has_value(), true, false, false},
      {"--L", f.L.has_value(), true, false, false},
      {"--k", f.k.has_value(), false, true, false},
      {"--h", f.h.has_value(), false, true, false},
      {"--warmup", f.warmup.has_value(), true, true, false},
      {"--mu0", f.mu0.has_value(), true, true, false},
      {"--sigma", f.sigma.has_value(), true, true, false},
      {"--min-instances", f.min_instances.has_value(), false, false, true},
      {"--delta", f.delta.has_value(), false, false, true},
      {"--threshold", f.threshold.has_value(), false, false, true},
      {"--alpha", f.alpha.has_value(), false, false, true},
      {"--mode", f.mode.has_value(), false, false, true},
  };
  for (const Flag& flag : table) {
    const bool belongs = method == Method::kEwma    ? flag.ewma
                         : method == Method::kCusum ? flag.cusum
                                                    : flag.ph;
    if (flag.set && !belongs) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag.name, " does not apply to --method ", f.method));
    }
  }
  return absl::OkStatus();
}

detectors::EwmaParams EwmaFrom(const SequentialFlags& f) {
  detectors::EwmaParams p;
  if (f.lambda) p.lambda = *f.lambda;
  if (f.L) p.L = *f.L;
  if (f.warmup) p.warmup = *f.warmup;
  p.mu0 = f.mu0;
  p.sigma = f.sigma;
  return p;
}

detectors::CusumParams CusumFrom(const SequentialFlags& f) {
  detectors::CusumParams p;
  if (f.k) p.k = *f.k;
  if (f.h) p.h = *f.h;
  if (f.warmup) p.warmup = *f.warmup;
  p.mu0 = f.mu0;
  p.sigma = f.sigma;
  return p;
}

absl::StatusOr<detectors::PageHinkleyParams> PageHinkleyFrom(const SequentialFlags& f) {
  detectors::PageHinkleyParams p;
  if (f.min_instances) p.min_instances = *f.min_instances;
  if (f.delta) p.delta = *f.delta;
  if (f.threshold) p.threshold = *f.threshold;
  if (f.alpha) p.alpha = *f.alpha;
  if (f.mode) {
    if (*f.mode == "both") {
      p.mode = detectors::PageHinkleyMode::kBoth;
    } else if (*f.mode == "up") {
      p.mode = detectors::PageHinkleyMode::kUp;
    } else if (*f.mode == "down") {
      p.mode = detectors::PageHinkleyMode::kDown;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--mode must be both, up or down, got \"", *f.mode, "\""));
    }
  }
  return p;
}

// One number a line; blank lines skipped; the error names the line. For
// detection, NaN / +-inf are kept (the detectors skip them) so that indices
// stay the input's line positions; a bootstrap reference must be finite.
absl::StatusOr<std::vector<double>> ReadSeries(std::istream& in, const std::string& name,
                                               bool allow_non_finite) {
  std::vector<double> series;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) continue;
    const std::optional<double> x = ParseNumber(text);
    if (!x || (!allow_non_finite && !std::isfinite(*x))) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_number, ": expected ",
                       allow_non_finite ? "a number" : "a finite number", ", got \"", text, "\""));
    }
    series.push_back(*x);
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(name, ": read error"));
  return series;
}

template <typename Detector, typename Params>
absl::StatusOr<std::vector<int64_t>> DetectWith(const Params& params,
                                                const std::vector<double>& series) {
  absl::StatusOr<Detector> d = Detector::Create(params);
  if (!d.ok()) return d.status();
  return detectors::DetectAll(std::move(*d), series);
}

absl::StatusOr<std::vector<int64_t>> Detect(const SequentialFlags& flags,
                                            const std::vector<double>& series) {
  absl::StatusOr<Method> method = ParseMethod(flags.method);
  if (!method.ok()) return method.status();
  if (absl::Status s = CheckFlagsBelong(flags, *method); !s.ok()) return s;
  switch (*method) {
    case Method::kEwma:
      return DetectWith<detectors::Ewma>(EwmaFrom(flags), series);
    case Method::kCusum:
      return DetectWith<detectors::Cusum>(CusumFrom(flags), series);
    case Method::kPageHinkley: {
      absl::StatusOr<detectors::PageHinkleyParams> p = PageHinkleyFrom(flags);
      if (!p.ok()) return p.status();
      return DetectWith<detectors::PageHinkley>(*p, series);
    }
  }
  return absl::InternalError("unknown method");
}

struct Calibrated {
  const char* parameter;
  detectors::ArlCalibration result;
};

// EWMA / CUSUM params with the in-control model's mean and sigma as the
// detector's baseline under --known-params.
template <typename Params>
Params WithKnownParams(Params p, const CalibrateOptions& o,
                       const detectors::InControlModel& model) {
  if (o.known_params) {
    p.mu0 = model.mean;
    p.sigma = model.sigma;
  }
  return p;
}

absl::StatusOr<Calibrated> Calibrate(const CalibrateOptions& o,
                                     const detectors::InControlModel& model) {
  absl::StatusOr<Method> method = ParseMethod(o.flags.method);
  if (!method.ok()) return method.status();
  if (absl::Status s = CheckFlagsBelong(o.flags, *method); !s.ok()) return s;
  // The threshold is what calibration searches for; mu0 / sigma come from
  // --known-params so the detector and the in-control model cannot disagree.
  const char* searched = *method == Method::kEwma    ? "L"
                         : *method == Method::kCusum ? "h"
                                                     : "threshold";
  if (o.flags.L || o.flags.h || o.flags.threshold) {
    return absl::InvalidArgumentError(
        absl::StrCat("calibrate searches for --", searched, "; do not pass it"));
  }
  if (o.flags.mu0 || o.flags.sigma) {
    return absl::InvalidArgumentError(
        "calibrate: use --mean/--sigma for the in-control model and --known-params to give "
        "them to the detector");
  }
  if (o.known_params && *method == Method::kPageHinkley) {
    return absl::InvalidArgumentError("--known-params does not apply to --method page-hinkley");
  }
  if (o.known_params && !model.mean) {
    return absl::InvalidArgumentError("--known-params needs --mean and --sigma");
  }
  detectors::ArlCalibrationOptions options;
  options.target_arl0 = o.target_arl;
  options.runs = o.runs;
  options.seed = o.seed;
  options.max_run_length = o.max_run_length;
  absl::StatusOr<detectors::ArlCalibration> result;
  switch (*method) {
    case Method::kEwma:
      result =
          detectors::CalibrateEwma(WithKnownParams(EwmaFrom(o.flags), o, model), model, options);
      break;
    case Method::kCusum:
      result =
          detectors::CalibrateCusum(WithKnownParams(CusumFrom(o.flags), o, model), model, options);
      break;
    case Method::kPageHinkley: {
      absl::StatusOr<detectors::PageHinkleyParams> p = PageHinkleyFrom(o.flags);
      if (!p.ok()) return p.status();
      result = detectors::CalibratePageHinkley(*p, model, options);
      break;
    }
  }
  if (!result.ok()) return result.status();
  return Calibrated{searched, *result};
}

}  // namespace

int RunChangepoint(const ChangepointOptions& options, std::istream& in, const std::string& in_name,
                   std::ostream& out, std::ostream& err) {
  // Validate flags before reading, so a typo fails fast even on a pipe.
  if (absl::StatusOr<std::vector<int64_t>> dry = Detect(options.flags, {}); !dry.ok()) {
    return ReportError(err, dry.status());
  }
  absl::StatusOr<std::vector<double>> series = ReadSeries(in, in_name, /*allow_non_finite=*/true);
  if (!series.ok()) return ReportError(err, series.status());
  absl::StatusOr<std::vector<int64_t>> alarms = Detect(options.flags, *series);
  if (!alarms.ok()) return ReportError(err, alarms.status());
  if (options.json) {
    out << nlohmann::ordered_json{{"detections", *alarms}}.dump() << "\n";
  } else {
    for (int64_t index : *alarms) out << index << "\n";
  }
  return kExitOk;
}

int RunCalibrate(const CalibrateOptions& options, std::istream* in, const std::string& in_name,
                 std::ostream& out, std::ostream& err) {
  detectors::InControlModel model;
  if (options.mean.has_value() != options.model_sigma.has_value()) {
    return ReportError(err, absl::InvalidArgumentError("--mean and --sigma go together"));
  }
  if (options.mean) {
    model.mean = options.mean;
    model.sigma = options.model_sigma;
  } else {
    if (in == nullptr) {
      return ReportError(err, absl::InvalidArgumentError(
                                  "give --mean and --sigma, or a reference series on stdin"));
    }
    absl::StatusOr<std::vector<double>> series =
        ReadSeries(*in, in_name, /*allow_non_finite=*/false);
    if (!series.ok()) return ReportError(err, series.status());
    if (series->empty()) {
      return ReportError(
          err, absl::InvalidArgumentError(absl::StrCat(in_name, ": empty reference series")));
    }
    model.reference = std::move(*series);
  }
  absl::StatusOr<Calibrated> c = Calibrate(options, model);
  if (!c.ok()) return ReportError(err, c.status());
  const detectors::ArlCalibration& r = c->result;
  if (options.json) {
    out << nlohmann::ordered_json{{"method", options.flags.method},
                                  {"parameter", c->parameter},
                                  {"threshold", r.threshold},
                                  {"arl0", r.arl0},
                                  {"arl0_stderr", r.arl0_stderr},
                                  {"censored_runs", r.censored_runs}}
               .dump()
        << "\n";
  } else {
    out << "method:        " << options.flags.method << "\n"
        << "parameter:     " << c->parameter << "\n"
        << "threshold:     " << r.threshold << "\n"
        << "arl0:          " << r.arl0 << "\n"
        << "arl0_stderr:   " << r.arl0_stderr << "\n"
        << "censored_runs: " << r.censored_runs << "\n";
  }
  return kExitOk;
}

}  // namespace driftwatch::cli
