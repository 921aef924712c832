// Test helpers shared by the storage tests: a unique scratch directory under
// the system temp dir, removed on destruction, and row builders.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

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

// A merger whose result shows the merge happened: "<stored>+<added>".
inline absl::StatusOr<std::string> ConcatMerger(int64_t, std::string_view stored,
                                                std::string_view added) {
  return std::string(stored) + "+" + std::string(added);
}

}  // namespace driftwatch::storage::testing
