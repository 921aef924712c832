#include "driftwatch/service/query_priority.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "driftwatch/base/clock.h"

namespace driftwatch::service {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

// Spins (without sleeping) until `priority` has `n` streams waiting.
void AwaitWaiting(const QueryPriority& priority, int n) {
  while (priority.waiting() != n) std::this_thread::yield();
}

TEST(QueryPriorityTest, IngestDoesNotWaitWhenNoQueryRuns) {
  base::ManualClock clock(kT0);
  QueryPriority priority(1000, &clock);
  EXPECT_FALSE(priority.Yield());
}

TEST(QueryPriorityTest, IngestWaitsUntilTheLastQueryEnds) {
  base::ManualClock clock(kT0);
  QueryPriority priority(10'000, &clock);
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
      AwaitWaiting(priority, 1);
    }
    // One query still runs and the clock has not moved: ingest still waits.
    EXPECT_EQ(priority.waiting(), 1);
    EXPECT_FALSE(done.load());
  }
  ingest.join();  // released by the last scope, with the clock still at kT0
  EXPECT_TRUE(done.load());
  EXPECT_EQ(priority.active(), 0);
  EXPECT_EQ(clock.NowMs(), kT0);
}

TEST(QueryPriorityTest, TheWaitIsBounded) {
  base::ManualClock clock(kT0);
  QueryPriority priority(30, &clock);
  QueryPriority::Scope stuck(&priority);
  std::atomic<bool> done{false};
  std::thread ingest([&] {
    EXPECT_TRUE(priority.Yield());
    done = true;
  });
  AwaitWaiting(priority, 1);
  clock.Advance(29);
  EXPECT_FALSE(done.load());  // 29 of the 30 ms: still waiting
  clock.Advance(1);
  ingest.join();  // the query never ends; the bound releases ingest
  EXPECT_TRUE(done.load());
  EXPECT_EQ(priority.active(), 1);
}

TEST(QueryPriorityTest, ZeroTurnsItOff) {
  base::ManualClock clock(kT0);
  QueryPriority priority(0, &clock);
  QueryPriority::Scope query(&priority);
  EXPECT_FALSE(priority.Yield());
}

}  // namespace
}  // namespace driftwatch::service
