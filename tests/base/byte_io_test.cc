// The byte codec's checksum: the SSE4.2 path and the table agree, and
// both give the standard CRC-32C check value.
#include "driftwatch/base/byte_io.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace driftwatch::base {
namespace {

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // RFC 3720 check value
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32c, HardwareAndTableAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string buffer(300, '\0');
  for (char& c : buffer) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n + offset <= 200; ++n) {
      std::string_view s(buffer.data() + offset, n);
      const uint32_t table = Crc32cTable(0xFFFFFFFFu, s) ^ 0xFFFFFFFFu;
      EXPECT_EQ(Crc32c(s), table) << "offset " << offset << " length " << n;
#if defined(__x86_64__)
      if (__builtin_cpu_supports("sse4.2")) {
        EXPECT_EQ(Crc32cSse42(0xFFFFFFFFu, s) ^ 0xFFFFFFFFu, table);
      }
#endif
    }
  }
}

}  // namespace
}  // namespace driftwatch::base
