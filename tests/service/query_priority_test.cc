#include "driftwatch/service/query_priority.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace driftwatch::service {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

TEST(QueryPriorityTest, IngestDoesNotWaitWhenNoQueryRuns) {
  QueryPriority priority(1000);
  const auto t0 = Clock::now();
  EXPECT_FALSE(priority.Yield());
  EXPECT_LT(MsSince(t0), 500);
}

TEST(QueryPriorityTest, IngestWaitsUntilTheLastQueryEnds) {
  QueryPriority priority(10'000);
  std::atomic<bool> done{false};
  std::thread ingest;
  {
    QueryPriority::Scope a(&priority);
    {
      QueryPriority::Scope b(&priority);
      EXPECT_EQ(priority.active(), 2);
      ingest = std::thread([&] {
        EXPECT_TRUE(priority.Yield());
        done = true;
      });
    }
    // One query still runs: ingest is still waiting.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(done.load());
  }
  ingest.join();  // released by the last scope, long before the 10 s bound
  EXPECT_TRUE(done.load());
  EXPECT_EQ(priority.active(), 0);
}

TEST(QueryPriorityTest, TheWaitIsBounded) {
  QueryPriority priority(30);
  QueryPriority::Scope stuck(&priority);
  const auto t0 = Clock::now();
  EXPECT_TRUE(priority.Yield());
  EXPECT_GE(MsSince(t0), 25);
}

TEST(QueryPriorityTest, ZeroTurnsItOff) {
  QueryPriority priority(0);
  QueryPriority::Scope query(&priority);
  EXPECT_FALSE(priority.Yield());
}

}  // namespace
}  // namespace driftwatch::service
