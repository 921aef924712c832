// The reject reasons are part of the wire contract and documented once, in
// docs/ingest.md: the table there lists exactly the names of the enum.
#include "driftwatch/service/reject_reason.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace driftwatch::service {
namespace {

TEST(RejectReasonTest, NamesAreUniqueSnakeCase) {
  std::set<std::string> seen;
  for (std::string_view name : kRejectReasonNames) {
    EXPECT_TRUE(std::regex_match(std::string(name), std::regex("[a-z]+(_[a-z]+)*"))) << name;
    EXPECT_TRUE(seen.insert(std::string(name)).second) << name << " twice";
  }
  EXPECT_EQ(RejectReasonName(RejectReason::kMissingEventId), "missing_event_id");
  EXPECT_EQ(RejectReasonName(RejectReason::kBadDictionaryCode), "bad_dictionary_code");
}

TEST(RejectReasonTest, DocsListExactlyTheEnum) {
  std::ifstream in(DRIFTWATCH_DOCS_DIR "/ingest.md");
  ASSERT_TRUE(in) << "cannot read docs/ingest.md";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t section = doc.find("## Reject reasons");
  ASSERT_NE(section, std::string::npos);
  // Table rows of the section: | `name` | step | ... |
  std::set<std::string> documented;
  const std::regex row(R"(\n\| `([a-z_]+)` \|)");
  const std::string rest = doc.substr(section);
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), row); it != std::sregex_iterator();
       ++it) {
    documented.insert((*it)[1]);
  }
  std::set<std::string> names;
  for (std::string_view name : kRejectReasonNames) names.insert(std::string(name));
  EXPECT_EQ(documented, names);
}

}  // namespace
}  // namespace driftwatch::service
