#include "driftwatch/detectors/sequential.h"

#include <cmath>
#include <string>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "driftwatch/base/byte_io.h"

namespace driftwatch::detectors {
namespace {

absl::Status Invalid(const std::string& what) { return absl::InvalidArgumentError(what); }

// Shared by EWMA and CUSUM: mu0/sigma are given together or not at all.
absl::Status ValidateBaseline(const std::optional<double>& mu0, const std::optional<double>& sigma,
                              int warmup) {
  if (mu0.has_value() != sigma.has_value()) {
    return Invalid("mu0 and sigma must be given together (or neither, to use a warm-up)");
  }
  if (mu0.has_value()) {
    if (!std::isfinite(*mu0)) return Invalid(absl::StrCat("mu0 must be finite, got ", *mu0));
    if (!(std::isfinite(*sigma) && *sigma > 0)) {
      return Invalid(absl::StrCat("sigma must be finite and > 0, got ", *sigma));
    }
  } else if (warmup < 2) {
    // ddof = 1 needs two points.
    return Invalid(absl::StrCat("warmup must be >= 2 when mu0/sigma are not given, got ", warmup));
  }
  return absl::OkStatus();
}

void WelfordAdd(WarmupState& w, double x) {
  ++w.n;
  const double d = x - w.mean;
  w.mean += d / static_cast<double>(w.n);
  w.m2 += d * (x - w.mean);
}

// EWMA and CUSUM: adds `x` to a run's warm-up. True when this point
// completes it: then mu0 and sigma hold the warm-up's mean and sample std
// (ddof = 1) and the warm-up state is cleared.
bool CompleteWarmup(WarmupState& w, double x, int warmup, double* mu0, double* sigma) {
  WelfordAdd(w, x);
  if (w.n < warmup) return false;
  *mu0 = w.mean;
  *sigma = std::sqrt(w.m2 / static_cast<double>(w.n - 1));
  w = WarmupState{};
  return true;
}

// EWMA and CUSUM: a new run, armed at once when mu0 and sigma are given.
template <typename State, typename Params>
void ResetRun(const Params& params, State* state) {
  *state = State{};
  if (params.mu0.has_value()) {
    state->armed = true;
    state->mu0 = *params.mu0;
    state->sigma = *params.sigma;
  }
}

// Checks the parts of an EWMA/CUSUM state common to both detectors.
absl::Status ValidateRunState(const WarmupState& w, bool armed, double mu0, double sigma,
                              const std::optional<double>& given_mu0,
                              const std::optional<double>& given_sigma, int warmup) {
  if (given_mu0.has_value()) {
    if (!armed) return Invalid("state.armed must be true when mu0/sigma are given");
    if (mu0 != *given_mu0 || sigma != *given_sigma) {
      return Invalid("state.mu0/sigma differ from the given params.mu0/sigma");
    }
  }
  if (armed) {
    if (!std::isfinite(mu0)) return Invalid("state.mu0 must be finite");
    if (!(std::isfinite(sigma) && sigma >= 0)) return Invalid("state.sigma must be finite, >= 0");
    if (w.n != 0) return Invalid("state.warmup.n must be 0 once armed");
    return absl::OkStatus();
  }
  if (w.n < 0 || w.n >= warmup) {
    return Invalid(absl::StrCat("state.warmup.n must be in [0, ", warmup, "), got ", w.n));
  }
  if (!std::isfinite(w.mean)) return Invalid("state.warmup.mean must be finite");
  if (!(std::isfinite(w.m2) && w.m2 >= 0)) return Invalid("state.warmup.m2 must be finite, >= 0");
  return absl::OkStatus();
}

// ---- Binary encoding (docs/formats/detector_state.md) ----------------------

constexpr uint16_t kStateVersion = 1;

// The fields EWMA and CUSUM states share, in encoding order.
auto RunFields(auto& s) {
  return std::tie(s.warmup.n, s.warmup.mean, s.warmup.m2, s.armed, s.mu0, s.sigma);
}

// Per kind: magic, name in errors, and the fields in encoding order as a
// tuple of references, one list for both SerializeState and Deserialize*State.
template <typename State>
struct StateFormat;

template <>
struct StateFormat<Ewma::State> {
  static constexpr std::string_view kMagic = "DWEW";
  static constexpr std::string_view kName = "EWMA state";
  static auto Fields(auto& s) { return std::tuple_cat(RunFields(s), std::tie(s.z, s.t)); }
};

template <>
struct StateFormat<Cusum::State> {
  static constexpr std::string_view kMagic = "DWCU";
  static constexpr std::string_view kName = "CUSUM state";
  static auto Fields(auto& s) { return std::tuple_cat(RunFields(s), std::tie(s.s_pos, s.s_neg)); }
};

template <>
struct StateFormat<PageHinkley::State> {
  static constexpr std::string_view kMagic = "DWPH";
  static constexpr std::string_view kName = "Page-Hinkley state";
  static auto Fields(auto& s) {
    return std::tie(s.n, s.mean, s.sum_increase, s.sum_decrease, s.min_increase, s.max_decrease,
                    s.drift_detected);
  }
};

// magic(4) version(u16) fields... fnv1a32(u32).
template <typename State>
std::string EncodeState(const State& state) {
  using Format = StateFormat<State>;
  base::ByteWriter w;
  w.Header(Format::kMagic, kStateVersion);
  std::apply([&w](const auto&... field) { (w.Put(field), ...); }, Format::Fields(state));
  return std::move(w).FinishWithChecksum(base::Fnv1a32);
}

template <typename State>
absl::StatusOr<State> DecodeState(std::string_view bytes) {
  using Format = StateFormat<State>;
  std::string_view body;
  if (!base::VerifyChecksum(bytes, base::Fnv1a32, &body)) {
    return base::DataLoss(Format::kName, "truncated or checksum mismatch");
  }
  base::ByteReader r(body);
  if (absl::Status st = r.Header(Format::kName, Format::kMagic, kStateVersion); !st.ok()) return st;
  State state;
  if (!std::apply([&r](auto&... field) { return (r.Get(&field) && ...); }, Format::Fields(state))) {
    return base::DataLoss(Format::kName, "truncated, or a bool byte other than 0/1");
  }
  if (r.remaining() != 0) return base::DataLoss(Format::kName, "trailing bytes");
  return state;
}

}  // namespace

// ---- EWMA ------------------------------------------------------------------

Ewma::Ewma(const EwmaParams& params) : params_(params) { StartRun(); }

absl::StatusOr<Ewma> Ewma::Create(const EwmaParams& params) {
  if (!(std::isfinite(params.lambda) && params.lambda > 0 && params.lambda <= 1)) {
    return Invalid(absl::StrCat("lambda must be in (0, 1], got ", params.lambda));
  }
  if (!(std::isfinite(params.L) && params.L > 0)) {
    return Invalid(absl::StrCat("L must be finite and > 0, got ", params.L));
  }
  if (absl::Status s = ValidateBaseline(params.mu0, params.sigma, params.warmup); !s.ok()) return s;
  return Ewma(params);
}

void Ewma::StartRun() {
  ResetRun(params_, &state_);
  if (state_.armed) state_.z = state_.mu0;
}

bool Ewma::Update(double x) {
  if (!std::isfinite(x)) return false;
  State& s = state_;
  if (!s.armed) {
    if (CompleteWarmup(s.warmup, x, params_.warmup, &s.mu0, &s.sigma)) {
      s.z = s.mu0;
      s.t = 0;
      s.armed = true;
    }
    return false;  // no alarm during warm-up, nor at its last point
  }
  ++s.t;
  bool alarm;
  if (s.sigma == 0) {
    // No variation seen: the limit is 0, so any departure alarms. Compared on
    // x directly because lambda*mu0 + (1-lambda)*mu0 may round away from mu0.
    alarm = x != s.mu0;
  } else {
    const double lambda = params_.lambda;
    s.z = lambda * x + (1 - lambda) * s.z;
    const double var_factor =
        lambda / (2 - lambda) * (1 - std::pow(1 - lambda, 2.0 * static_cast<double>(s.t)));
    alarm = std::abs(s.z - s.mu0) > params_.L * s.sigma * std::sqrt(var_factor);
  }
  if (alarm) StartRun();
  return alarm;
}

absl::Status Ewma::Restore(const State& state) {
  if (absl::Status st = ValidateRunState(state.warmup, state.armed, state.mu0, state.sigma,
                                         params_.mu0, params_.sigma, params_.warmup);
      !st.ok()) {
    return st;
  }
  if (state.armed && !std::isfinite(state.z)) return Invalid("state.z must be finite");
  if (state.t < 0) return Invalid(absl::StrCat("state.t must be >= 0, got ", state.t));
  state_ = state;
  return absl::OkStatus();
}

// ---- CUSUM -----------------------------------------------------------------

Cusum::Cusum(const CusumParams& params) : params_(params) { StartRun(); }

absl::StatusOr<Cusum> Cusum::Create(const CusumParams& params) {
  if (!(std::isfinite(params.k) && params.k >= 0)) {
    return Invalid(absl::StrCat("k must be finite and >= 0, got ", params.k));
  }
  if (!(std::isfinite(params.h) && params.h > 0)) {
    return Invalid(absl::StrCat("h must be finite and > 0, got ", params.h));
  }
  if (absl::Status s = ValidateBaseline(params.mu0, params.sigma, params.warmup); !s.ok()) return s;
  return Cusum(params);
}

void Cusum::StartRun() { ResetRun(params_, &state_); }

bool Cusum::Update(double x) {
  if (!std::isfinite(x)) return false;
  State& s = state_;
  if (!s.armed) {
    if (CompleteWarmup(s.warmup, x, params_.warmup, &s.mu0, &s.sigma)) {
      s.s_pos = s.s_neg = 0;
      s.armed = true;
    }
    return false;
  }
  bool alarm;
  if (s.sigma == 0) {
    // Standardised deviation is +-inf for x != mu0 (alarm) and taken as 0 at x == mu0.
    alarm = x != s.mu0;
    if (!alarm) {
      s.s_pos = std::max(0.0, s.s_pos - params_.k);
      s.s_neg = std::max(0.0, s.s_neg - params_.k);
    }
  } else {
    const double z = (x - s.mu0) / s.sigma;
    s.s_pos = std::max(0.0, s.s_pos + z - params_.k);
    s.s_neg = std::max(0.0, s.s_neg - z - params_.k);
    alarm = s.s_pos > params_.h || s.s_neg > params_.h;
  }
  if (alarm) StartRun();
  return alarm;
}

absl::Status Cusum::Restore(const State& state) {
  if (absl::Status st = ValidateRunState(state.warmup, state.armed, state.mu0, state.sigma,
                                         params_.mu0, params_.sigma, params_.warmup);
      !st.ok()) {
    return st;
  }
  for (double v : {state.s_pos, state.s_neg}) {
    if (!(std::isfinite(v) && v >= 0)) return Invalid("state.s_pos/s_neg must be finite, >= 0");
  }
  state_ = state;
  return absl::OkStatus();
}

// ---- Page-Hinkley (river.drift.PageHinkley semantics) ------------------------

PageHinkley::PageHinkley(const PageHinkleyParams& params) : params_(params) { Reset(); }

absl::StatusOr<PageHinkley> PageHinkley::Create(const PageHinkleyParams& params) {
  if (params.min_instances < 1) {
    return Invalid(absl::StrCat("min_instances must be >= 1, got ", params.min_instances));
  }
  if (!(std::isfinite(params.delta) && params.delta >= 0)) {
    return Invalid(absl::StrCat("delta must be finite and >= 0, got ", params.delta));
  }
  if (!(std::isfinite(params.threshold) && params.threshold > 0)) {
    return Invalid(absl::StrCat("threshold must be finite and > 0, got ", params.threshold));
  }
  if (!(std::isfinite(params.alpha) && params.alpha > 0 && params.alpha <= 1)) {
    return Invalid(absl::StrCat("alpha must be in (0, 1], got ", params.alpha));
  }
  switch (params.mode) {
    case PageHinkleyMode::kBoth:
    case PageHinkleyMode::kUp:
    case PageHinkleyMode::kDown:
      break;
    default:
      return Invalid(
          absl::StrCat("mode must be kBoth, kUp or kDown, got ", static_cast<int>(params.mode)));
  }
  return PageHinkley(params);
}

void PageHinkley::Reset() { state_ = State{}; }

bool PageHinkley::Update(double x) {
  if (!std::isfinite(x)) return false;
  State& s = state_;
  // River resets lazily: on the update after a detection, not at the detection.
  if (s.drift_detected) Reset();
  ++s.n;
  // Same operation order as river.stats.Mean so results agree to the bit.
  s.mean += (1.0 / static_cast<double>(s.n)) * (x - s.mean);
  const double dev = x - s.mean;  // deviation from the mean including x
  s.sum_increase = params_.alpha * s.sum_increase + dev - params_.delta;
  s.sum_decrease = params_.alpha * s.sum_decrease + dev + params_.delta;
  if (s.sum_increase < s.min_increase) s.min_increase = s.sum_increase;
  if (s.sum_decrease > s.max_decrease) s.max_decrease = s.sum_decrease;
  if (s.n >= params_.min_instances) {
    const bool up = s.sum_increase - s.min_increase > params_.threshold;
    const bool down = s.max_decrease - s.sum_decrease > params_.threshold;
    switch (params_.mode) {
      case PageHinkleyMode::kUp:
        s.drift_detected = up;
        break;
      case PageHinkleyMode::kDown:
        s.drift_detected = down;
        break;
      case PageHinkleyMode::kBoth:
        s.drift_detected = up || down;
        break;
    }
  }
  return s.drift_detected;
}

absl::Status PageHinkley::Restore(const State& state) {
  if (state.n < 0) return Invalid(absl::StrCat("state.n must be >= 0, got ", state.n));
  if (!std::isfinite(state.mean) || !std::isfinite(state.sum_increase) ||
      !std::isfinite(state.sum_decrease)) {
    return Invalid("state.mean/sum_increase/sum_decrease must be finite");
  }
  if (state.n == 0) {
    const State fresh;
    if (state.min_increase != fresh.min_increase || state.max_decrease != fresh.max_decrease ||
        state.drift_detected) {
      return Invalid("state with n = 0 must have River's initial extrema (+inf, -1)");
    }
  } else if (!std::isfinite(state.min_increase) || !std::isfinite(state.max_decrease)) {
    return Invalid("state.min_increase/max_decrease must be finite once n > 0");
  }
  if (state.drift_detected && state.n < params_.min_instances) {
    return Invalid("state.drift_detected is impossible with n < min_instances");
  }
  state_ = state;
  return absl::OkStatus();
}

// ---- Serialisation -------------------------------------------------------------

std::string SerializeState(const Ewma::State& state) { return EncodeState(state); }
std::string SerializeState(const Cusum::State& state) { return EncodeState(state); }
std::string SerializeState(const PageHinkley::State& state) { return EncodeState(state); }

absl::StatusOr<Ewma::State> DeserializeEwmaState(std::string_view bytes) {
  return DecodeState<Ewma::State>(bytes);
}
absl::StatusOr<Cusum::State> DeserializeCusumState(std::string_view bytes) {
  return DecodeState<Cusum::State>(bytes);
}
absl::StatusOr<PageHinkley::State> DeserializePageHinkleyState(std::string_view bytes) {
  return DecodeState<PageHinkley::State>(bytes);
}

}  // namespace driftwatch::detectors
