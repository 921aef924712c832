// Little-endian encoding helpers and CRC-32C shared by the summary formats
// (docs/formats/summary.md). Private to detectors.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace driftwatch::detectors::internal {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI,
// ext4 and LevelDB, so that any standard implementation can verify a blob.
inline uint32_t Crc32c(std::string_view data) {
  static constexpr std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) crc = kTable[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

// Appends fixed-width little-endian fields regardless of host byte order.
class ByteWriter {
 public:
  void Raw(std::string_view bytes) { out_.append(bytes); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void F64(double v) { U64(std::bit_cast<uint64_t>(v)); }
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s);
  }
  // Appends the CRC-32C of everything written so far and returns the blob.
  std::string FinishWithCrc() && {
    U32(Crc32c(out_));
    return std::move(out_);
  }

 private:
  void Fixed(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string out_;
};

// Reads what ByteWriter wrote. Every read returns false once the input is
// exhausted, so a truncated blob is detected at the first short field.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool Raw(size_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t x;
    if (!Fixed(4, &x)) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool U64(uint64_t* v) { return Fixed(8, v); }
  bool F64(double* v) {
    uint64_t x;
    if (!Fixed(8, &x)) return false;
    *v = std::bit_cast<double>(x);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n;
    std::string_view bytes;
    if (!U32(&n) || !Raw(n, &bytes)) return false;
    s->assign(bytes);
    return true;
  }
  size_t remaining() const { return in_.size(); }

 private:
  bool Fixed(int bytes, uint64_t* v) {
    if (in_.size() < static_cast<size_t>(bytes)) return false;
    uint64_t x = 0;
    for (int i = 0; i < bytes; ++i) x |= uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(bytes);
    *v = x;
    return true;
  }
  std::string_view in_;
};

// Splits a blob into body and trailing CRC-32C; false if too short or the
// checksum does not match.
inline bool VerifyCrc(std::string_view blob, std::string_view* body) {
  if (blob.size() < 4) return false;
  std::string_view payload = blob.substr(0, blob.size() - 4);
  ByteReader tail(blob.substr(blob.size() - 4));
  uint32_t stored;
  if (!tail.U32(&stored) || stored != Crc32c(payload)) return false;
  *body = payload;
  return true;
}

}  // namespace driftwatch::detectors::internal
