// The sampling rule is a contract with every client (docs/sampling.md):
// the C++ values must equal those the Python reference computes from the
// definitions (tests/golden/make_sampling_vectors.py).
#include "driftwatch/base/sampling.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::base {
namespace {

TEST(SamplingTest, MatchesThePublishedVectors) {
  std::ifstream in(std::string(DRIFTWATCH_GOLDEN_DIR) + "/sampling.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_GE(golden["vectors"].size(), 9u);
  for (const auto& v : golden["vectors"]) {
    const std::string id = v["event_id"];
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(SampleHash(id)));
    EXPECT_EQ(hex, v["hash"].get<std::string>()) << id;
    EXPECT_EQ(SampleUnit(id), v["unit"].get<double>()) << id;  // exact: 53 bits
    EXPECT_EQ(InSample(id, 0.25), v["in_0.25"].get<bool>()) << id;
  }
  int in_sample = 0;
  for (int k = 0; k < 100000; ++k) in_sample += InSample("e" + std::to_string(k), 0.25);
  EXPECT_DOUBLE_EQ(in_sample / 100000.0, golden["share_e0_e99999_at_0.25"].get<double>());
}

TEST(SamplingTest, RatesNestAndEndsAreExact) {
  static_assert(SampleHash("a") == 0x02c0bdbf481420f8ull);  // usable at compile time
  for (int k = 0; k < 10000; ++k) {
    const std::string id = "id-" + std::to_string(k);
    // In a sample of rate r means in every sample of a higher rate.
    if (InSample(id, 0.1)) {
      EXPECT_TRUE(InSample(id, 0.5)) << id;
    }
    EXPECT_TRUE(InSample(id, 1.0));
    EXPECT_TRUE(InSample(id, 2.0));
    EXPECT_FALSE(InSample(id, 0.0));
    EXPECT_FALSE(InSample(id, -1.0));
    EXPECT_FALSE(InSample(id, std::nan("")));
    EXPECT_LT(SampleUnit(id), 1.0);
    EXPECT_GE(SampleUnit(id), 0.0);
  }
}

}  // namespace
}  // namespace driftwatch::base
