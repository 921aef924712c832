// Dedup by event id: the stable id hash, the open-addressing set each open
// bucket keeps, and the codec of the hashes persisted per flush (so a
// restarted service still knows them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace driftwatch::service::ingest {

// Stable 64-bit hash of an event id (persisted: never change it). Never 0.
uint64_t EventIdHash(std::string_view event_id);

// Zeroed memory for a table of `n` slots. Large tables are their own
// anonymous mapping, advised to use huge pages: probes are random, so with
// 4 KiB pages nearly every one would also miss the TLB. Move-only.
class SlotArray {
 public:
  SlotArray() = default;
  explicit SlotArray(size_t n);
  SlotArray(SlotArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        n_(std::exchange(other.n_, 0)),
        mapped_(other.mapped_) {}
  SlotArray& operator=(SlotArray&& other) noexcept;
  ~SlotArray() { Free(); }

  uint64_t* data() const { return data_; }
  size_t size() const { return n_; }

 private:
  void Free();
  uint64_t* data_ = nullptr;
  size_t n_ = 0;
  bool mapped_ = false;
};

// A set of event-id hashes (one per model: every id ingest holds, whatever
// its bucket): open
// addressing over non-zero hashes (0 marks an empty slot), linear probing
// at load <= 3/4, ~10.7 bytes per id when sized by Reserve. The ids are
// already well mixed (EventIdHash), so the home slot is the hash scaled to
// the table size (multiply-shift), not a power of two. Not thread-safe.
class EventIdSet {
 public:
  // Makes room for `n` ids without rehashing.
  void Reserve(size_t n) {
    if (n > limit_) Rehash(n);
  }
  // Starts loading the slot where `h` would be probed first.
  void Prefetch(uint64_t h) const {
    if (slots_.size() == 0) return;
    const uint64_t* slot = slots_.data() + Home(h, slots_.size());
#if defined(__x86_64__)
    // GCC 12 drops a __builtin_prefetch here as dead code; an asm is kept.
    asm volatile("prefetcht0 %0" : : "m"(*slot));
#else
    __builtin_prefetch(slot);
#endif
  }
  // True if inserted, false if already present. `h` must not be 0.
  bool Insert(uint64_t h) {
    if (size_ >= limit_) Rehash(size_ * 2 > 48 ? size_ * 2 : 48);
    const size_t n = slots_.size();
    uint64_t* slots = slots_.data();
    for (size_t i = Home(h, n);;) {
      if (slots[i] == h) return false;
      if (slots[i] == 0) {
        slots[i] = h;
        ++size_;
        return true;
      }
      if (++i == n) i = 0;
    }
  }
  // True if `h` is present.
  bool Contains(uint64_t h) const {
    const size_t n = slots_.size();
    if (n == 0) return false;
    const uint64_t* slots = slots_.data();
    for (size_t i = Home(h, n);;) {
      if (slots[i] == h) return true;
      if (slots[i] == 0) return false;
      if (++i == n) i = 0;
    }
  }
  // Removes `h` if present (backward-shift deletion: no tombstones, so
  // probes stay as short as if `h` had never been inserted).
  bool Erase(uint64_t h);
  size_t size() const { return size_; }

 private:
  __extension__ using U128 = unsigned __int128;
  static size_t Home(uint64_t h, size_t n) {
    return static_cast<size_t>((static_cast<U128>(h) * n) >> 64);
  }
  // Rebuilds the table with room for `ids` ids.
  void Rehash(size_t ids);

  SlotArray slots_;
  size_t size_ = 0;
  size_t limit_ = 0;  // ids the table holds before it grows
};

// The persisted form of a chunk of ids: little-endian u64 each
// (docs/formats/sqlite_schema.md, table dedup).
std::string EncodeEventIds(std::span<const uint64_t> hashes);
// Inserts every id of a chunk into `set` (and the new ones, in order, into
// `added` unless null); returns how many were new. A trailing partial id
// (never written by EncodeEventIds) is ignored.
uint64_t DecodeEventIdsInto(std::string_view chunk, EventIdSet* set,
                            std::vector<uint64_t>* added = nullptr);

}  // namespace driftwatch::service::ingest
