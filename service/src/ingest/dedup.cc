#include "ingest/dedup.h"

#include <sys/mman.h>

#include <cstring>

#include "driftwatch/base/byte_io.h"

namespace driftwatch::service::ingest {

uint64_t EventIdHash(std::string_view id) {
  // Word-at-a-time multiply-mix with a splitmix64 finaliser: stable across
  // processes and builds (absl::Hash is seeded per process).
  uint64_t h = 0x243F6A8885A308D3ull ^ (id.size() * 0x9E3779B97F4A7C15ull);
  size_t i = 0;
  for (; i + 8 <= id.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, id.data() + i, 8);
    h = (h ^ word) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  for (size_t k = 0; i < id.size(); ++i, ++k) {
    tail |= static_cast<uint64_t>(static_cast<unsigned char>(id[i])) << (8 * k);
  }
  h = (h ^ tail) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 32;
  return h == 0 ? 1 : h;
}

namespace {
constexpr size_t kMapBytes = 2u << 20;  // tables this large get their own mapping
}  // namespace

SlotArray::SlotArray(size_t n) : n_(n) {
  const size_t bytes = n * sizeof(uint64_t);
  if (bytes >= kMapBytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      (void)madvise(p, bytes, MADV_HUGEPAGE);  // advisory: fine if refused
      data_ = static_cast<uint64_t*>(p);
      mapped_ = true;
      return;
    }
  }
  data_ = new uint64_t[n]();
}

SlotArray& SlotArray::operator=(SlotArray&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    n_ = std::exchange(other.n_, 0);
    mapped_ = other.mapped_;
  }
  return *this;
}

void SlotArray::Free() {
  if (data_ == nullptr) return;
  if (mapped_) {
    munmap(data_, n_ * sizeof(uint64_t));
  } else {
    delete[] data_;
  }
  data_ = nullptr;
}

void EventIdSet::Rehash(size_t ids) {
  SlotArray old = std::move(slots_);
  slots_ = SlotArray(ids + ids / 3 + 1);
  limit_ = ids;
  size_ = 0;
  for (size_t i = 0; i < old.size(); ++i) {
    if (old.data()[i] != 0) Insert(old.data()[i]);
  }
}

bool EventIdSet::Erase(uint64_t h) {
  const size_t n = slots_.size();
  if (n == 0) return false;
  uint64_t* slots = slots_.data();
  size_t hole = Home(h, n);
  while (slots[hole] != h) {
    if (slots[hole] == 0) return false;
    if (++hole == n) hole = 0;
  }
  // Moves each later id of the run back into the hole unless its home lies
  // (cyclically) after the hole, where a probe for it would not pass.
  for (size_t j = hole;;) {
    if (++j == n) j = 0;
    const uint64_t v = slots[j];
    if (v == 0) break;
    const size_t home = Home(v, n);
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    slots[hole] = v;
    hole = j;
  }
  slots[hole] = 0;
  --size_;
  return true;
}

std::string EncodeEventIds(std::span<const uint64_t> hashes) {
  base::ByteWriter w;
  w.U64s(hashes);
  return std::move(w).Finish();
}

uint64_t DecodeEventIdsInto(std::string_view chunk, EventIdSet* set,
                            std::vector<uint64_t>* added) {
  base::ByteReader r(chunk);
  uint64_t n = 0;
  uint64_t h = 0;
  while (r.U64(&h)) {
    if (h == 0 || !set->Insert(h)) continue;
    ++n;
    if (added != nullptr) added->push_back(h);
  }
  return n;
}

}  // namespace driftwatch::service::ingest
