// Reports.GetQualityReport server-side: one of 10 slices over 24 h of
// quality rows (one per slice and hour, each from 5,000 labelled binary
// predictions, so most of the 1,000 fine bins are in use), with a 24 h
// trailing baseline and the CBPE estimate; the real SQLite store and
// ReportEngine, in process. Time per iteration = one report; the
// percentiles are printed as counters (p50_ms, p99_ms over 2,000 calls).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "driftwatch/detectors/quality_profile.h"
#include "driftwatch/service/baselines.h"
#include "driftwatch/service/model_registry.h"
#include "driftwatch/service/reports.h"
#include "driftwatch/service/window_reader.h"
#include "driftwatch/storage/store.h"

namespace dw = driftwatch;

namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int kSlices = 10;

struct Fixture {
  std::filesystem::path dir;
  dw::base::ManualClock clock{1'700'006'400'000};
  std::unique_ptr<dw::storage::Store> store;
  std::unique_ptr<dw::service::ModelRegistry> registry;
  std::unique_ptr<dw::service::WindowReader> windows;
  std::unique_ptr<dw::service::Baselines> baselines;
  std::unique_ptr<dw::service::ReportEngine> reports;
  bool ok = false;

  Fixture() {
    const char* base = std::getenv("DRIFTWATCH_BENCH_DIR");
    dir = (base != nullptr ? std::filesystem::path(base) : std::filesystem::temp_directory_path()) /
          ("driftwatch_quality_bench_" + std::to_string(::getpid()));
    dw::storage::SqliteOptions so;
    so.path = (dir / "bench.db").string();
    so.synchronous_full = false;
    so.clock = &clock;
    auto opened = dw::storage::OpenSqliteStore(so);
    if (!opened.ok()) return;
    store = *std::move(opened);
    registry = std::make_unique<dw::service::ModelRegistry>(store.get(), &clock,
                                                            dw::service::RegistryOptions{});
    if (!registry->Recover().ok()) return;
    dw::v1::ModelSchema s;
    s.mutable_model()->set_model_id("bench");
    s.mutable_model()->set_model_version("v1");
    auto* x = s.add_features();
    x->set_name("x");
    x->set_kind(dw::v1::FEATURE_KIND_NUMERIC);
    for (int i = 0; i < 100; ++i) x->add_reference_sample(i);
    s.set_score_kind(dw::v1::SCORE_KIND_BINARY_PROBABILITY);
    s.add_score_names("p");
    s.set_label_kind(dw::v1::LABEL_KIND_BINARY);
    s.add_slice_keys()->set_key("platform");
    if (!registry->Register(s).ok()) return;
    auto model = registry->Find(s.model());
    if (!model.ok()) return;
    std::vector<int32_t> ids = {0};
    for (int i = 0; i < kSlices; ++i) {
      // In the registry only: the reports resolve slices there.
      ids.push_back((*model)->slices().Resolve(0, "p" + std::to_string(i)).slice_id);
    }
    // 48 hours: 24 current, 24 of baseline before them.
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> u(0, 1);
    const int64_t now = clock.NowMs();
    const int64_t first = now - now % kHour - 47 * kHour;
    for (int h = 0; h < 48; ++h) {
      dw::storage::LabelCommit commit;
      for (int32_t id : ids) {
        dw::detectors::QualityProfile p(dw::detectors::QualityKind::kBinary);
        for (int i = 0; i < 5000; ++i) {
          const double score[] = {u(rng)};
          p.AddPrediction(score, 1);
          p.AddLabel(score, u(rng) < score[0] ? 1 : 0, 1, 60'000 * (1 + 60 * u(rng)));
        }
        commit.quality_merges.push_back({(*model)->model_key(), id, first + h * kHour,
                                         p.Serialize()});
      }
      if (!store->CommitLabels(commit).ok()) return;
    }
    windows = std::make_unique<dw::service::WindowReader>(store.get(), store.get(), 60'000);
    baselines = std::make_unique<dw::service::Baselines>(store.get(), windows.get(), 10);
    reports = std::make_unique<dw::service::ReportEngine>(registry.get(), windows.get(),
                                                          baselines.get(), &clock,
                                                          dw::service::ReportOptions{});
    reports->AttachLabels(store.get(), dw::service::LabelOptions{});
    ok = true;
  }
  ~Fixture() {
    reports.reset();
    baselines.reset();
    windows.reset();
    registry.reset();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

void BM_GetQualityReportOneOf10Slices24h(benchmark::State& state) {
  static Fixture* f = new Fixture();  // built once, kept for the process
  if (!f->ok) {
    state.SkipWithError("fixture failed");
    return;
  }
  dw::v1::GetQualityReportRequest q;
  q.mutable_model()->set_model_id("bench");
  q.mutable_window()->set_last_seconds(24 * 3600);
  std::vector<double> ms;
  int i = 0;
  for (auto _ : state) {
    (*q.mutable_slice()->mutable_values())["platform"] = "p" + std::to_string(i++ % kSlices);
    const auto start = std::chrono::steady_clock::now();
    auto r = f->reports->GetQualityReport(q);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    if (!r.ok()) {
      state.SkipWithError("report failed");
      return;
    }
    benchmark::DoNotOptimize(r->current().auc());
  }
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    state.counters["p50_ms"] = ms[ms.size() / 2];
    state.counters["p99_ms"] = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  }
}
BENCHMARK(BM_GetQualityReportOneOf10Slices24h)->Iterations(2000)->Unit(benchmark::kMillisecond);

}  // namespace
