#include "labels/join_record.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"

namespace driftwatch::service::labels {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kRankedBit = 0x80;
constexpr uint32_t kMaxClasses = 4096;
constexpr uint32_t kMaxSlices = 64;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

template <typename T>
void PutFixed(T v, std::string* out) {
  uint64_t bits;
  if constexpr (sizeof(T) == 8) {
    bits = std::bit_cast<uint64_t>(v);
  } else {
    bits = std::bit_cast<uint32_t>(v);
  }
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<char>(bits >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Byte(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;  // over 10 bytes
  }
  template <typename T>
  bool Fixed(T* v) {
    if (in_.size() < sizeof(T)) return false;
    uint64_t bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      bits |= static_cast<uint64_t>(static_cast<unsigned char>(in_[i])) << (8 * i);
    }
    in_.remove_prefix(sizeof(T));
    if constexpr (std::is_same_v<T, double>) {
      *v = std::bit_cast<double>(bits);
    } else if constexpr (std::is_same_v<T, float>) {
      *v = std::bit_cast<float>(static_cast<uint32_t>(bits));
    } else {
      *v = static_cast<T>(bits);
    }
    return true;
  }
  bool done() const { return in_.empty(); }
  // The next n bytes.
  bool Bytes(uint64_t n, std::string_view* out) {
    if (n > in_.size()) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }

 private:
  std::string_view in_;
};

absl::Status Corrupt(const std::string& what) {
  return absl::DataLossError(absl::StrCat("join record: ", what));
}

template <typename Record>
void Encode(const Record& r, std::string* out) {
  out->push_back(static_cast<char>(kVersion | (r.ranked ? kRankedBit : 0) |
                                   (static_cast<uint8_t>(r.kind) << 4)));
  PutFixed(r.event_time_ms, out);
  PutFixed(r.weight, out);
  PutVarint(r.slices.size(), out);
  for (auto s : r.slices) PutVarint(static_cast<uint32_t>(s), out);
  if (r.kind == JoinRecord::Scores::kOne) {
    PutFixed(r.scores.empty() ? NAN : r.scores[0], out);
  } else {
    PutVarint(r.scores.size(), out);
    for (double p : r.scores) PutFixed(static_cast<float>(p), out);
  }
  if (r.ranked) {
    PutFixed(r.query_hash, out);
    PutVarint(r.position, out);
  }
}

}  // namespace

void EncodeJoinRecord(const JoinRecord& r, std::string* out) { Encode(r, out); }
void EncodeJoinRecord(const JoinRecordRef& r, std::string* out) { Encode(r, out); }

void AppendChunkEntry(uint64_t hash, const JoinRecordRef& record, std::string* chunk) {
  PutFixed(hash, chunk);
  const size_t len_at = chunk->size();
  chunk->push_back(0);  // the length, a one-byte varint in nearly every case
  Encode(record, chunk);
  const size_t len = chunk->size() - len_at - 1;
  if (len < 0x80) {
    (*chunk)[len_at] = static_cast<char>(len);
    return;
  }
  std::string varint;
  PutVarint(len, &varint);
  chunk->replace(len_at, 1, varint);
}

absl::Status ForEachChunkEntry(std::string_view chunk,
                               absl::FunctionRef<void(uint64_t, std::string_view)> fn) {
  Reader in(chunk);
  while (!in.done()) {
    uint64_t hash = 0, len = 0;
    std::string_view record;
    if (!in.Fixed(&hash) || !in.Varint(&len) || !in.Bytes(len, &record)) {
      return absl::DataLossError("join chunk: truncated entry");
    }
    fn(hash, record);
  }
  return absl::OkStatus();
}

absl::StatusOr<JoinRecord> DecodeJoinRecord(std::string_view bytes) {
  JoinRecord r;
  DW_RETURN_IF_ERROR(DecodeJoinRecordInto(bytes, &r));
  return r;
}

absl::Status DecodeJoinRecordInto(std::string_view bytes, JoinRecord* out) {
  Reader in(bytes);
  JoinRecord& r = *out;
  r.slices.clear();
  r.scores.clear();
  r.query_hash = 0;
  r.position = 0;
  uint8_t head;
  if (!in.Byte(&head)) return Corrupt("empty");
  if ((head & 0x0F) != kVersion) return Corrupt(absl::StrCat("unknown version ", head & 0x0F));
  const uint8_t kind = (head >> 4) & 0x07;
  if (kind > 1) return Corrupt(absl::StrCat("unknown score kind ", kind));
  r.kind = static_cast<JoinRecord::Scores>(kind);
  r.ranked = (head & kRankedBit) != 0;
  uint64_t slices;
  if (!in.Fixed(&r.event_time_ms) || !in.Fixed(&r.weight) || !in.Varint(&slices)) {
    return Corrupt("truncated header");
  }
  if (!(r.weight > 0) || !std::isfinite(r.weight)) return Corrupt("weight not finite and > 0");
  if (slices > kMaxSlices) return Corrupt(absl::StrCat(slices, " slice keys"));
  for (uint64_t i = 0; i < slices; ++i) {
    uint64_t id;
    if (!in.Varint(&id) || id > UINT32_MAX) return Corrupt("truncated or bad slice id");
    r.slices.push_back(static_cast<uint32_t>(id));
  }
  if (r.kind == JoinRecord::Scores::kOne) {
    double s;
    if (!in.Fixed(&s)) return Corrupt("truncated score");
    r.scores.push_back(s);
  } else {
    uint64_t n;
    if (!in.Varint(&n) || n < 2 || n > kMaxClasses) return Corrupt("bad class count");
    for (uint64_t i = 0; i < n; ++i) {
      float p;
      if (!in.Fixed(&p)) return Corrupt("truncated class probabilities");
      r.scores.push_back(p);
    }
  }
  if (r.ranked) {
    uint64_t position;
    if (!in.Fixed(&r.query_hash) || !in.Varint(&position) || position > UINT32_MAX) {
      return Corrupt("truncated query");
    }
    r.position = static_cast<uint32_t>(position);
  }
  if (!in.done()) return Corrupt("trailing bytes");
  return absl::OkStatus();
}

}  // namespace driftwatch::service::labels
