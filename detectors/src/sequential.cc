#include "driftwatch/detectors/sequential.h"

#include <cmath>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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

// ---- Binary encoding: magic(4) version(u16) fields... fnv1a32(u32), LE. ----

constexpr uint16_t kStateVersion = 1;

uint32_t Fnv1a(std::string_view bytes) {
  uint32_t h = 2166136261u;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

class Writer {
 public:
  explicit Writer(std::string_view magic) {
    out_.append(magic);
    PutUint(kStateVersion, 2);
  }
  void PutUint(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void PutI64(int64_t v) { PutUint(static_cast<uint64_t>(v), 8); }
  void PutF64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    PutUint(bits, 8);
  }
  void PutBool(bool v) { PutUint(v ? 1 : 0, 1); }
  std::string Finish() {
    PutUint(Fnv1a(out_), 4);
    return std::move(out_);
  }

 private:
  std::string out_;
};

class Reader {
 public:
  // `payload_size`: bytes of fields between the version and the checksum.
  static absl::StatusOr<Reader> Open(std::string_view bytes, std::string_view magic,
                                     size_t payload_size, const char* kind) {
    const size_t expected = magic.size() + 2 + payload_size + 4;
    if (bytes.size() < magic.size() + 2) {
      return absl::DataLossError(absl::StrCat(kind, " state truncated: ", bytes.size(), " bytes"));
    }
    if (bytes.substr(0, magic.size()) != magic) {
      return absl::DataLossError(absl::StrCat("not a ", kind, " state (bad magic)"));
    }
    Reader r(bytes);
    r.pos_ = magic.size();
    const uint64_t version = r.GetUint(2);
    if (version != kStateVersion) {
      return absl::DataLossError(absl::StrCat(kind, " state has unsupported version ", version));
    }
    if (bytes.size() != expected) {
      return absl::DataLossError(
          absl::StrCat(kind, " state is ", bytes.size(), " bytes, expected ", expected,
                       bytes.size() < expected ? " (truncated)" : " (trailing bytes)"));
    }
    Reader tail(bytes);
    tail.pos_ = expected - 4;
    if (tail.GetUint(4) != Fnv1a(bytes.substr(0, expected - 4))) {
      return absl::DataLossError(absl::StrCat(kind, " state checksum mismatch (corrupt)"));
    }
    return r;
  }
  uint64_t GetUint(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[pos_++])) << (8 * i);
    }
    return v;
  }
  int64_t GetI64() { return static_cast<int64_t>(GetUint(8)); }
  double GetF64() {
    const uint64_t bits = GetUint(8);
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  absl::StatusOr<bool> GetBool() {
    const uint64_t v = GetUint(1);
    if (v > 1) return absl::DataLossError(absl::StrCat("bad boolean byte ", v, " (corrupt)"));
    return v == 1;
  }

 private:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  std::string_view bytes_;
  size_t pos_ = 0;
};

constexpr std::string_view kEwmaMagic = "DWEW";
constexpr std::string_view kCusumMagic = "DWCU";
constexpr std::string_view kPageHinkleyMagic = "DWPH";
// Field bytes per kind (see docs/formats/detector_state.md).
constexpr size_t kWarmupBytes = 8 + 8 + 8;
constexpr size_t kEwmaPayload = kWarmupBytes + 1 + 8 + 8 + 8 + 8;
constexpr size_t kCusumPayload = kWarmupBytes + 1 + 8 + 8 + 8 + 8;
constexpr size_t kPageHinkleyPayload = 8 + 8 + 8 + 8 + 8 + 8 + 1;

void PutWarmup(Writer& w, const WarmupState& s) {
  w.PutI64(s.n);
  w.PutF64(s.mean);
  w.PutF64(s.m2);
}

WarmupState GetWarmup(Reader& r) {
  WarmupState s;
  s.n = r.GetI64();
  s.mean = r.GetF64();
  s.m2 = r.GetF64();
  return s;
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
  state_ = State{};
  if (params_.mu0.has_value()) {
    state_.armed = true;
    state_.mu0 = *params_.mu0;
    state_.sigma = *params_.sigma;
    state_.z = state_.mu0;
  }
}

bool Ewma::Update(double x) {
  if (!std::isfinite(x)) return false;
  State& s = state_;
  if (!s.armed) {
    WelfordAdd(s.warmup, x);
    if (s.warmup.n < params_.warmup) return false;
    s.mu0 = s.warmup.mean;
    s.sigma = std::sqrt(s.warmup.m2 / static_cast<double>(s.warmup.n - 1));
    s.z = s.mu0;
    s.t = 0;
    s.armed = true;
    s.warmup = WarmupState{};
    return false;  // the last warm-up point raises no alarm
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

void Cusum::StartRun() {
  state_ = State{};
  if (params_.mu0.has_value()) {
    state_.armed = true;
    state_.mu0 = *params_.mu0;
    state_.sigma = *params_.sigma;
  }
}

bool Cusum::Update(double x) {
  if (!std::isfinite(x)) return false;
  State& s = state_;
  if (!s.armed) {
    WelfordAdd(s.warmup, x);
    if (s.warmup.n < params_.warmup) return false;
    s.mu0 = s.warmup.mean;
    s.sigma = std::sqrt(s.warmup.m2 / static_cast<double>(s.warmup.n - 1));
    s.s_pos = s.s_neg = 0;
    s.armed = true;
    s.warmup = WarmupState{};
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

std::string SerializeState(const Ewma::State& state) {
  Writer w(kEwmaMagic);
  PutWarmup(w, state.warmup);
  w.PutBool(state.armed);
  w.PutF64(state.mu0);
  w.PutF64(state.sigma);
  w.PutF64(state.z);
  w.PutI64(state.t);
  return w.Finish();
}

std::string SerializeState(const Cusum::State& state) {
  Writer w(kCusumMagic);
  PutWarmup(w, state.warmup);
  w.PutBool(state.armed);
  w.PutF64(state.mu0);
  w.PutF64(state.sigma);
  w.PutF64(state.s_pos);
  w.PutF64(state.s_neg);
  return w.Finish();
}

std::string SerializeState(const PageHinkley::State& state) {
  Writer w(kPageHinkleyMagic);
  w.PutI64(state.n);
  w.PutF64(state.mean);
  w.PutF64(state.sum_increase);
  w.PutF64(state.sum_decrease);
  w.PutF64(state.min_increase);
  w.PutF64(state.max_decrease);
  w.PutBool(state.drift_detected);
  return w.Finish();
}

absl::StatusOr<Ewma::State> DeserializeEwmaState(std::string_view bytes) {
  absl::StatusOr<Reader> r = Reader::Open(bytes, kEwmaMagic, kEwmaPayload, "EWMA");
  if (!r.ok()) return r.status();
  Ewma::State s;
  s.warmup = GetWarmup(*r);
  absl::StatusOr<bool> armed = r->GetBool();
  if (!armed.ok()) return armed.status();
  s.armed = *armed;
  s.mu0 = r->GetF64();
  s.sigma = r->GetF64();
  s.z = r->GetF64();
  s.t = r->GetI64();
  return s;
}

absl::StatusOr<Cusum::State> DeserializeCusumState(std::string_view bytes) {
  absl::StatusOr<Reader> r = Reader::Open(bytes, kCusumMagic, kCusumPayload, "CUSUM");
  if (!r.ok()) return r.status();
  Cusum::State s;
  s.warmup = GetWarmup(*r);
  absl::StatusOr<bool> armed = r->GetBool();
  if (!armed.ok()) return armed.status();
  s.armed = *armed;
  s.mu0 = r->GetF64();
  s.sigma = r->GetF64();
  s.s_pos = r->GetF64();
  s.s_neg = r->GetF64();
  return s;
}

absl::StatusOr<PageHinkley::State> DeserializePageHinkleyState(std::string_view bytes) {
  absl::StatusOr<Reader> r =
      Reader::Open(bytes, kPageHinkleyMagic, kPageHinkleyPayload, "Page-Hinkley");
  if (!r.ok()) return r.status();
  PageHinkley::State s;
  s.n = r->GetI64();
  s.mean = r->GetF64();
  s.sum_increase = r->GetF64();
  s.sum_decrease = r->GetF64();
  s.min_increase = r->GetF64();
  s.max_decrease = r->GetF64();
  absl::StatusOr<bool> drift = r->GetBool();
  if (!drift.ok()) return drift.status();
  s.drift_detected = *drift;
  return s;
}

}  // namespace driftwatch::detectors
