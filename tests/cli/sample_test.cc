#include <sstream>
#include <string>

#include "driftwatch/cli/commands.h"
#include "gtest/gtest.h"

namespace driftwatch::cli {
namespace {

TEST(SampleTest, PrintsTheRuleForArgumentsAndFiltersStdin) {
  std::istringstream none;
  std::ostringstream out, err;
  SampleOptions options;
  options.rate = 0.25;
  options.ids = {"a", "e0"};
  ASSERT_EQ(RunSample(options, none, out, err), kExitOk);
  // tests/golden/sampling.json: "a" is in at 0.25, "e0" is not.
  EXPECT_EQ(out.str(),
            "02c0bdbf481420f8\t0.010753497314070604\tin\ta\n"
            "8308c86e5203d16f\t0.51185276692741799\tout\te0\n");
  EXPECT_NE(err.str().find("1 of 2 ids"), std::string::npos) << err.str();

  std::istringstream lines("e0\r\na\ne1\n");
  std::ostringstream kept, err2;
  SampleOptions filter;
  filter.rate = 0.25;
  filter.only_kept = true;
  filter.ids_only = true;
  ASSERT_EQ(RunSample(filter, lines, kept, err2), kExitOk);
  EXPECT_EQ(kept.str(), "a\n");

  SampleOptions bad;
  bad.rate = 1.5;
  std::ostringstream o, e;
  EXPECT_EQ(RunSample(bad, none, o, e), kExitBadInput);
  EXPECT_NE(e.str().find("--rate must be in [0, 1]"), std::string::npos);
}

}  // namespace
}  // namespace driftwatch::cli
