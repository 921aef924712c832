// Test helpers shared by the storage tests: a unique scratch directory under
// the system temp dir, removed on destruction, and row builders.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <filesystem>
#include <string>
#include <system_error>

#include "driftwatch/detectors/histogram.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/storage/store.h"
#include "gtest/gtest.h"

namespace driftwatch::storage::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info != nullptr ? info->name() : "unknown";
    for (char& c : name) {
      if (c == '/') c = '_';  // parameterised test names
    }
    path_ = std::filesystem::temp_directory_path() /
            ("driftwatch_storage_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
             "_" + name);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline BucketRow Bucket(int64_t model_key, Level level, int64_t start_ms, int32_t slice_id,
                        std::string profile) {
  BucketRow row;
  row.model_key = model_key;
  row.level = level;
  row.bucket_start_ms = start_ms;
  row.slice_id = slice_id;
  row.profile = std::move(profile);
  return row;
}

inline RawEventRow RawEvent(int64_t model_key, std::string id, int64_t time_ms, std::string event) {
  RawEventRow row;
  row.model_key = model_key;
  row.event_id = std::move(id);
  row.event_time_ms = time_ms;
  row.received_at_ms = time_ms + 5;
  row.event = std::move(event);
  return row;
}

inline ModelRecord Model(std::string id, std::string version, std::string schema) {
  ModelRecord m;
  m.model_id = std::move(id);
  m.model_version = std::move(version);
  m.schema = std::move(schema);
  m.registered_at_ms = 1'000;
  return m;
}

// Roll-ups merge real profiles: a layout of one numeric feature, and
// profiles of it whose sum of values shows which were merged.
inline std::shared_ptr<const detectors::ProfileLayout> TestLayout() {
  static const auto* layout = [] {
    auto* l = new std::shared_ptr<detectors::ProfileLayout>(
        std::make_shared<detectors::ProfileLayout>());
    (*l)->numeric_names = {"x"};
    (*l)->numeric_edges = {std::make_shared<const detectors::BinEdges>(
        *detectors::BinEdges::Create({0.0, 10.0, 100.0}))};
    return l;
  }();
  return *layout;
}

// A serialized profile of TestLayout() holding `values`.
inline std::string TestProfile(std::initializer_list<double> values) {
  detectors::Profile p(TestLayout());
  for (double x : values) p.numeric()[0].Add(x);
  p.counters().events = values.size();
  return p.Serialize();
}

// The sum of the values a TestLayout() profile holds; NaN if it does not decode.
inline double SumOf(const std::string& bytes) {
  auto p = detectors::Profile::Deserialize(TestLayout(), bytes);
  return p.ok() ? p->numeric()[0].counts().sum : std::nan("");
}

// The layouts a batch with rollups of `model_key` carries.
inline void WithLayout(FlushBatch* batch, int64_t model_key) {
  batch->layouts[model_key] = TestLayout();
}

}  // namespace driftwatch::storage::testing
