// The one little-endian byte codec of every binary format driftwatch
// writes: summaries (docs/formats/summary.md), profiles, detector state
// (docs/formats/detector_state.md), the score-label summary
// (docs/quality.md) and the dedup id chunks (docs/formats/sqlite_schema.md).
// Each format keeps its own layout and trailer; they share these primitives.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace driftwatch::base {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI,
// ext4 and LevelDB, so that any standard implementation can verify a blob.
// Every flushed profile is checksummed under the model's lock, so on x86
// with SSE4.2 (checked at run time) the crc32 instruction does it 8 bytes
// at a time; elsewhere a table, a byte at a time. Same result either way.
inline uint32_t Crc32cTable(uint32_t crc, std::string_view data) {
  static constexpr std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  for (unsigned char byte : data) crc = kTable[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) inline uint32_t Crc32cSse42(uint32_t crc,
                                                                std::string_view data) {
  uint64_t c = crc;
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, data.data() + i, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; i < data.size(); ++i) {
    c32 = __builtin_ia32_crc32qi(c32, static_cast<unsigned char>(data[i]));
  }
  return c32;
}
#endif

inline uint32_t Crc32c(std::string_view data) {
#if defined(__x86_64__)
  static const bool kHardware = __builtin_cpu_supports("sse4.2");
  if (kHardware) return Crc32cSse42(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;
#endif
  return Crc32cTable(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;
}

// 32-bit FNV-1a, the checksum of the detector-state format.
inline uint32_t Fnv1a32(std::string_view data) {
  uint32_t h = 2166136261u;
  for (unsigned char c : data) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

using Checksum = uint32_t (*)(std::string_view);

// The field types with a fixed encoding: unsigned and i64 as that many bytes,
// f64 as the IEEE-754 bit pattern, bool as one byte 0 or 1.
template <typename T>
concept FixedWidth = std::is_same_v<T, bool> || std::is_same_v<T, uint8_t> ||
    std::is_same_v<T, uint16_t> || std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t> ||
    std::is_same_v<T, int64_t> || std::is_same_v<T, double>;

template <FixedWidth T>
inline constexpr int kWidth = std::is_same_v<T, bool> ? 1 : static_cast<int>(sizeof(T));

// Appends fields regardless of host byte order. Not thread-safe.
class ByteWriter {
 public:
  // Put(v) writes v in the encoding of its type; the named forms spell out
  // the width where a format's table does.
  template <FixedWidth T>
  void Put(T v) {
    uint64_t bits;
    if constexpr (std::is_same_v<T, double>) {
      bits = std::bit_cast<uint64_t>(v);
    } else {
      bits = static_cast<uint64_t>(v);
    }
    if constexpr (std::endian::native == std::endian::little) {
      // The low kWidth bytes of `bits` are the encoding: one append.
      char bytes[8];
      std::memcpy(bytes, &bits, sizeof(bytes));
      out_.append(bytes, kWidth<T>);
    } else {
      for (int i = 0; i < kWidth<T>; ++i) {
        out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
      }
    }
  }
  void U32(uint32_t v) { Put(v); }
  void U64(uint64_t v) { Put(v); }
  void F64(double v) { Put(v); }
  void Raw(std::string_view bytes) { out_.append(bytes); }
  // Every value as a u64, in order: one append on a little-endian host.
  void U64s(std::span<const uint64_t> values) {
    if constexpr (std::endian::native == std::endian::little) {
      Raw(std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * 8));
    } else {
      for (uint64_t v : values) U64(v);
    }
  }
  void Reserve(size_t bytes) { out_.reserve(bytes); }
  size_t size() const { return out_.size(); }
  // u32 length, then the bytes.
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s);
  }
  // Magic bytes, then the version in the width of `Version` (u16 or u32).
  template <FixedWidth Version>
  void Header(std::string_view magic, Version version) {
    Raw(magic);
    Put(version);
  }

  std::string Finish() && { return std::move(out_); }
  // Appends `checksum` of everything written so far, u32, and returns the blob.
  std::string FinishWithChecksum(Checksum checksum) && {
    U32(checksum(out_));
    return std::move(out_);
  }
  std::string FinishWithCrc() && { return std::move(*this).FinishWithChecksum(Crc32c); }

 private:
  std::string out_;
};

// DATA_LOSS "<what>: <detail>", the error of every decoder of these formats.
inline absl::Status DataLoss(std::string_view what, std::string_view detail) {
  std::string message(what);
  message.append(": ").append(detail);
  return absl::DataLossError(message);
}

// Reads what ByteWriter wrote; `in` must outlive the reader. Every read
// returns false once the input is exhausted, so a truncated blob is detected
// at the first short field. Not thread-safe.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  // False on truncation, or for bool on a byte other than 0/1.
  template <FixedWidth T>
  bool Get(T* v) {
    if (in_.size() < static_cast<size_t>(kWidth<T>)) return false;
    uint64_t bits = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&bits, in_.data(), kWidth<T>);  // the low bytes: one load
    } else {
      for (int i = 0; i < kWidth<T>; ++i) {
        bits |= uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
      }
    }
    if constexpr (std::is_same_v<T, bool>) {
      if (bits > 1) return false;
      *v = bits == 1;
    } else if constexpr (std::is_same_v<T, double>) {
      *v = std::bit_cast<double>(bits);
    } else {
      *v = static_cast<T>(bits);
    }
    in_.remove_prefix(kWidth<T>);
    return true;
  }
  bool U32(uint32_t* v) { return Get(v); }
  bool U64(uint64_t* v) { return Get(v); }
  bool F64(double* v) { return Get(v); }
  bool Raw(size_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n;
    std::string_view bytes;
    if (!U32(&n) || !Raw(n, &bytes)) return false;
    s->assign(bytes);
    return true;
  }
  // Reads what ByteWriter::Header wrote; DATA_LOSS naming `what` if the input
  // is short, the magic is not `magic` or the version is not `version`.
  template <FixedWidth Version>
  absl::Status Header(std::string_view what, std::string_view magic, Version version) {
    std::string_view got;
    if (!Raw(magic.size(), &got)) return DataLoss(what, "truncated header");
    if (got != magic) return DataLoss(what, "bad magic");
    Version v{};
    if (!Get(&v)) return DataLoss(what, "truncated header");
    if (v != version) return DataLoss(what, absl::StrCat("unsupported version ", v));
    return absl::OkStatus();
  }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

// Splits a blob into body and trailing u32 `checksum` of the body; false if
// too short or the checksum does not match.
inline bool VerifyChecksum(std::string_view blob, Checksum checksum, std::string_view* body) {
  if (blob.size() < 4) return false;
  std::string_view payload = blob.substr(0, blob.size() - 4);
  ByteReader tail(blob.substr(blob.size() - 4));
  uint32_t stored;
  if (!tail.U32(&stored) || stored != checksum(payload)) return false;
  *body = payload;
  return true;
}
inline bool VerifyCrc(std::string_view blob, std::string_view* body) {
  return VerifyChecksum(blob, Crc32c, body);
}

}  // namespace driftwatch::base
