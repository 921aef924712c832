#include "driftwatch/service/ingestor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <sys/mman.h>

#include <cstring>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/status_macros.h"
#include "internal/log.h"

namespace driftwatch::service {

using detectors::Profile;
using detectors::ProfileAccumulator;

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

// Zeroed memory for a table of `n` slots. Large tables are their own
// anonymous mapping, advised to use huge pages: probes are random, so with
// 4 KiB pages nearly every one would also miss the TLB.
class SlotArray {
 public:
  SlotArray() = default;
  explicit SlotArray(size_t n) : n_(n) {
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
  SlotArray(SlotArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), n_(std::exchange(o.n_, 0)), mapped_(o.mapped_) {}
  SlotArray& operator=(SlotArray&& o) noexcept {
    if (this != &o) {
      Free();
      data_ = std::exchange(o.data_, nullptr);
      n_ = std::exchange(o.n_, 0);
      mapped_ = o.mapped_;
    }
    return *this;
  }
  ~SlotArray() { Free(); }

  uint64_t* data() const { return data_; }
  size_t size() const { return n_; }

 private:
  static constexpr size_t kMapBytes = 2u << 20;
  void Free() {
    if (data_ == nullptr) return;
    if (mapped_) {
      munmap(data_, n_ * sizeof(uint64_t));
    } else {
      delete[] data_;
    }
    data_ = nullptr;
  }
  uint64_t* data_ = nullptr;
  size_t n_ = 0;
  bool mapped_ = false;
};

// Open-addressing set of non-zero 64-bit hashes (0 marks an empty slot),
// linear probing at load <= 3/4: ~10.7 bytes per id when sized by Reserve.
// The ids are already well mixed (EventIdHash), so the home slot is the
// hash scaled to any table size (multiply-shift), not a power of two.
class HashSet {
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
  // True if inserted, false if already present.
  bool Insert(uint64_t h) {
    if (size_ >= limit_) Rehash(std::max<size_t>(48, size_ * 2));
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
  size_t size() const { return size_; }

 private:
  __extension__ using U128 = unsigned __int128;
  static size_t Home(uint64_t h, size_t n) {
    return static_cast<size_t>((static_cast<U128>(h) * n) >> 64);
  }
  // Rebuilds the table with room for `ids` ids.
  void Rehash(size_t ids) {
    SlotArray old = std::move(slots_);
    slots_ = SlotArray(ids + ids / 3 + 1);
    limit_ = ids;
    size_ = 0;
    for (size_t i = 0; i < old.size(); ++i) {
      if (old.data()[i] != 0) Insert(old.data()[i]);
    }
  }
  SlotArray slots_;
  size_t size_ = 0;
  size_t limit_ = 0;  // ids the table holds before it grows
};

// How many events ahead Apply prefetches dedup slots.
constexpr size_t kIdAhead = 8;

std::string EncodeHashes(const std::vector<uint64_t>& hashes) {
  std::string out(hashes.size() * 8, '\0');
  for (size_t i = 0; i < hashes.size(); ++i) {
    uint64_t h = hashes[i];
    for (int b = 0; b < 8; ++b) out[i * 8 + b] = static_cast<char>((h >> (8 * b)) & 0xFF);
  }
  return out;
}

}  // namespace

struct Ingestor::OpenBucket {
  // By slice id; null = no event yet.
  std::vector<std::unique_ptr<ProfileAccumulator>> slices;
  std::vector<std::byte*> blocks;  // slices[id]->block(), or null
  std::vector<uint8_t> dirty;
  HashSet ids;
  std::vector<uint64_t> new_ids;  // accepted since the last flush

  // Marks slice `id` dirty and returns its block, creating the profile.
  std::byte* Block(int32_t id, const std::shared_ptr<const ProfileAccumulator::Shape>& shape) {
    if (blocks.size() <= static_cast<size_t>(id) || blocks[id] == nullptr) {
      Set(id, std::make_unique<ProfileAccumulator>(shape));
    }
    dirty[id] = 1;
    return blocks[id];
  }
  void Set(int32_t id, std::unique_ptr<ProfileAccumulator> profile) {
    if (slices.size() <= static_cast<size_t>(id)) {
      slices.resize(id + 1);
      blocks.resize(id + 1, nullptr);
      dirty.resize(id + 1, 0);
    }
    blocks[id] = profile->block();
    slices[id] = std::move(profile);
  }
};

namespace {

// Accepted events whose numeric values are not added to their profiles
// yet. Filled under the model's mu; drained under its drain_mu.
struct ApplyQueue {
  size_t chunk = 0;                 // events it holds
  std::vector<double> x;            // [summary * chunk + event]
  std::vector<double> w;            // per event
  std::vector<uint8_t> late;        // per event
  std::vector<uint64_t> invalid;    // per event
  std::vector<size_t> first;        // per event: its first target; one more at the end
  std::vector<std::byte*> targets;  // ProfileAccumulator::block() of each target
  std::vector<uint32_t> bins;       // of one summary, per event
};

// A full queue handed off by Apply, drained after the model's mu is
// released. Tickets are drained in order.
struct HandOff {
  std::unique_ptr<ApplyQueue> queue;
  uint64_t ticket = 0;
};

// Per-model buffers of one Apply, kept across batches (guarded by mu).
struct ApplyScratch {
  std::vector<ProfileAccumulator*> profiles;  // of the current event
  std::vector<int32_t> slice_ids;  // row batches: of the current event
  std::vector<int32_t> tuple_ids;  // columnar batches: per dictionary tuple, 1 + keys ids
  std::vector<uint64_t> hashes;    // EventIdHash of each event of the batch
};

}  // namespace

struct Ingestor::ModelState {
  std::shared_ptr<ModelRuntime> runtime;
  std::shared_ptr<const ProfileAccumulator::Shape> shape;  // of runtime->layout()
  mutable std::mutex mu;
  // Guarded by mu:
  std::map<int64_t, OpenBucket> buckets;  // closed ones stay until the next flush
  uint64_t dedup_ids = 0;                 // sum of buckets' ids.size()
  int64_t watermark_ms = 0;
  int64_t closed_until_ms = 0;  // buckets before it are closed (by watermark or early)
  bool progress_dirty = false;
  // watermark_ms and closed_until_ms as of the last batch or flush, for
  // readers that must not take mu.
  std::atomic<int64_t> published_watermark_ms{0};
  std::atomic<int64_t> published_closed_until_ms{0};
  std::vector<storage::SliceRecord> new_slices;
  std::vector<storage::RawEventRow> raw;
  ApplyScratch scratch;
  // The queue being filled (under mu). When full it is handed off with the
  // next ticket and drained by the thread that filled it once that thread
  // has released mu, so other batches of the model go on meanwhile.
  std::unique_ptr<ApplyQueue> queue = std::make_unique<ApplyQueue>();
  uint64_t next_ticket = 0;  // under mu: hand-offs so far
  std::mutex drain_mu;       // one drain at a time; order: mu, then drain_mu
  std::condition_variable drain_cv;
  uint64_t drained = 0;      // under drain_mu: hand-offs drained
  std::mutex spare_mu;       // leaf
  std::vector<std::unique_ptr<ApplyQueue>> spare;  // drained queues, for reuse
};

void IngestCounts::Reject(std::string_view reason, std::string_view event_id,
                          std::string message) {
  ++rejected;
  RejectStat& stat = reasons[Sv(reason)];
  if (stat.count++ == 0) {
    stat.example_event_id = std::string(event_id);
    stat.message = std::move(message);
  }
}

void IngestCounts::Merge(const IngestCounts& other) {
  batches += other.batches;
  accepted += other.accepted;
  duplicates += other.duplicates;
  rejected += other.rejected;
  late_accepted += other.late_accepted;
  too_late += other.too_late;
  for (const auto& [reason, stat] : other.reasons) {
    RejectStat& mine = reasons[reason];
    if (mine.count == 0) {
      mine.example_event_id = stat.example_event_id;
      mine.message = stat.message;
    }
    mine.count += stat.count;
  }
}

// Applies events of one batch to one model (under the model's lock). The
// two batch layouts fill an EventView; everything after is shared.
//
// Two phases, so the histogram updates run feature-major: Apply validates,
// dedups, buckets and counts each event in order and queues its numeric
// values and target profiles; AddQueued (when the queue is full, which
// may be batches later, and before every flush) then, per feature, bins the
// queued values in one tight loop and adds them to the profiles in event
// order. Each profile sees its values in the same order as one event at a
// time would, so the result is bit-identical; the gains are that one
// feature's bins of all slices are a small working set, and that a slice
// profile's lines, once fetched, take all its values of the chunk.
class Ingestor::EventSink {
 public:
  struct EventView {
    std::string_view event_id;
    int64_t event_time_ms = 0;
    double sample_rate = 1;
    // Filled by the caller, in schema order.
    std::vector<double> numeric;
    std::vector<std::string_view> categorical;
    std::vector<bool> categorical_null;
    std::vector<double> scores;
    std::span<const int32_t> slice_ids;  // slice ids incl. 0, pre-resolved
    uint64_t id_hash = 0;                // EventIdHash(event_id) if known, else 0
    // An event that comes soon (id hash, time), to prefetch its dedup slot.
    uint64_t next_hash = 0;
    int64_t next_time_ms = 0;
  };

  EventSink(Ingestor& ingestor, ModelState& m, IngestCounts& counts,
            std::vector<HandOff>& handoffs)
      : ing_(ingestor),
        m_(m),
        rt_(*m.runtime),
        counts_(counts),
        now_ms_(ingestor.clock_->NowMs()),
        shape_(m.shape),
        summaries_(shape_->edges.size()),
        chunk_(std::clamp<size_t>(kQueueValues / std::max<size_t>(1, summaries_), kMinChunk,
                                  kMaxChunk)),
        s_(m.scratch),
        handoffs_(handoffs) {
    Prepare();
  }

  // Sized once per queue: no allocation per batch. The queue carries over
  // between batches; see DrainFilling().
  void Prepare() {
    q_ = m_.queue.get();
    if (q_->chunk != chunk_) {
      q_->chunk = chunk_;
      q_->x.resize(summaries_ * chunk_);
      q_->bins.resize(chunk_);
    }
    if (q_->first.empty()) q_->first.assign(1, 0);
  }

  // Adds every queued value to its profiles. Values wait in the queue
  // across batches until chunk_ events are queued (a larger chunk gives
  // each slice profile several values per pass, so its lines are fetched
  // once for many adds) or a flush collects the model: CollectFlush waits
  // for every hand-off and drains the rest first, under the model's lock,
  // so a flush never misses an applied event. The caller holds the model's
  // mu and drain_mu, and every hand-off is drained.
  static void DrainFilling(ModelState& m) { AddQueued(*m.shape, *m.queue); }

  // Drains hand-offs in ticket order; the caller holds no lock of the model.
  static void DrainHandOffs(ModelState& m, std::vector<HandOff>& handoffs) {
    for (HandOff& h : handoffs) {
      {
        std::unique_lock<std::mutex> lock(m.drain_mu);
        m.drain_cv.wait(lock, [&] { return m.drained == h.ticket; });
        AddQueued(*m.shape, *h.queue);
        ++m.drained;
      }
      m.drain_cv.notify_all();
      std::lock_guard<std::mutex> lock(m.spare_mu);
      m.spare.push_back(std::move(h.queue));
    }
    handoffs.clear();
  }

  // Returns true when the event was accepted (for raw sampling by caller).
  bool Apply(const EventView& e, uint64_t* hash_out) {
    const IngestOptions& opt = ing_.options_;
    if (e.event_id.empty()) {
      counts_.Reject("missing_event_id", "", "event_id is empty");
      return false;
    }
    if (!(e.sample_rate > 0 && e.sample_rate <= 1)) {
      counts_.Reject("invalid_sample_rate", e.event_id,
                     absl::StrCat("sample_rate must be in (0, 1], got ", e.sample_rate));
      return false;
    }
    if (e.event_time_ms <= 0) {
      counts_.Reject("missing_event_time", e.event_id, "event_time_ms must be > 0");
      return false;
    }
    if (e.event_time_ms > now_ms_ + opt.max_future_skew_ms) {
      counts_.Reject("event_time_in_future", e.event_id,
                     absl::StrCat("event_time_ms ", e.event_time_ms, " is more than ",
                                  opt.max_future_skew_ms, " ms ahead of the server clock"));
      return false;
    }
    const int64_t bucket_start = storage::BucketStart(e.event_time_ms, opt.bucket_width_ms);
    if (TooLate(bucket_start, e)) return false;
    if (e.next_hash != 0) PrefetchId(e.next_hash, e.next_time_ms);
    const uint64_t hash = e.id_hash != 0 ? e.id_hash : EventIdHash(e.event_id);
    if (m_.dedup_ids >= opt.max_dedup_ids) {
      CloseOldestEarly();
      if (TooLate(bucket_start, e)) return false;
    }
    OpenBucket& bucket = BucketFor(bucket_start);
    if (!bucket.ids.Insert(hash)) {
      ++counts_.duplicates;
      return false;
    }
    ++m_.dedup_ids;
    bucket.new_ids.push_back(hash);
    const bool late = e.event_time_ms < m_.watermark_ms;
    const double w = 1.0 / e.sample_rate;

    // Queue the numeric values; count the invalid ones now.
    const size_t j = q_->w.size();
    const int numeric_count = rt_.numeric_count();
    uint64_t invalid = 0;
    for (int f = 0; f < numeric_count; ++f) {
      const double x = e.numeric[f];
      q_->x[f * chunk_ + j] = x;
      if (!std::isfinite(x)) {
        // NaN is how a client sends null; a null where the schema forbids
        // it is also an invalid value.
        invalid += std::isnan(x) ? !rt_.Nullable(true, f) : 1;
      }
    }
    for (int s = 0; s < rt_.score_count(); ++s) {
      const double x = e.scores[s];
      q_->x[(numeric_count + s) * chunk_ + j] = x;
      invalid += !std::isfinite(x);
    }
    for (int32_t id : e.slice_ids) q_->targets.push_back(bucket.Block(id, shape_));
    q_->first.push_back(q_->targets.size());

    for (int f = 0; f < rt_.categorical_count(); ++f) {
      if (f == 0) {
        s_.profiles.clear();
        for (int32_t id : e.slice_ids) s_.profiles.push_back(bucket.slices[id].get());
      }
      if (e.categorical_null[f]) {
        invalid += !rt_.Nullable(false, f);
        for (ProfileAccumulator* p : s_.profiles) p->categorical()[f].AddMissing(w);
        continue;
      }
      std::string_view v = e.categorical[f];
      if (const auto* allowed = rt_.AllowedValues(f);
          allowed != nullptr && !allowed->contains(Sv(v))) {
        ++invalid;
        v = base::kOther;
      }
      for (ProfileAccumulator* p : s_.profiles) p->categorical()[f].Add(v, w);
    }
    q_->w.push_back(w);
    q_->late.push_back(late);
    q_->invalid.push_back(invalid);
    if (e.event_time_ms > m_.watermark_ms) {
      m_.watermark_ms = e.event_time_ms;
      m_.progress_dirty = true;
    }
    ++counts_.accepted;
    counts_.late_accepted += late;
    *hash_out = hash;
    if (q_->w.size() == chunk_) HandOffQueue();
    return true;
  }

  // A hint that an event with this id hash and time comes soon: starts
  // loading its dedup slot (a cache and TLB miss in a table of millions).
  void PrefetchId(uint64_t hash, int64_t event_time_ms) {
    const int64_t start = storage::BucketStart(event_time_ms, ing_.options_.bucket_width_ms);
    if (cached_bucket_ != nullptr && cached_start_ == start) {
      cached_bucket_->ids.Prefetch(hash);
      return;
    }
    auto it = m_.buckets.find(start);
    if (it != m_.buckets.end()) it->second.ids.Prefetch(hash);
  }

  // Whether an accepted event is in the raw sample.
  bool Sampled(uint64_t hash) const {
    return static_cast<double>(hash >> 11) * 0x1.0p-53 < ing_.options_.raw_sample_rate;
  }

  void KeepRaw(std::string_view event_id, int64_t event_time_ms, std::string serialized) {
    storage::RawEventRow row;
    row.model_key = rt_.model_key();
    row.event_id = std::string(event_id);
    row.event_time_ms = event_time_ms;
    row.received_at_ms = now_ms_;
    row.event = std::move(serialized);
    m_.raw.push_back(std::move(row));
  }

  int32_t ResolveSlice(int key, std::string_view value) {
    return rt_.slices().Resolve(key, value, &m_.new_slices, rt_.model_key());
  }

 private:
  // The queue holds up to kQueueValues numeric values (4 MiB), and between
  // kMinChunk and kMaxChunk events.
  static constexpr size_t kQueueValues = size_t{1} << 19;
  static constexpr size_t kMinChunk = 1024;
  static constexpr size_t kMaxChunk = 16384;
  static constexpr size_t kAhead = 16;
  static constexpr uint32_t kNonFinite = ~0u;

  bool TooLate(int64_t bucket_start, const EventView& e) {
    const IngestOptions& opt = ing_.options_;
    if (bucket_start >= m_.closed_until_ms &&
        bucket_start + opt.bucket_width_ms + opt.allowed_lateness_ms > m_.watermark_ms) {
      return false;
    }
    ++counts_.too_late;
    counts_.Reject("too_late", e.event_id,
                   absl::StrCat("event_time_ms ", e.event_time_ms,
                                " falls in a bucket already closed (watermark ", m_.watermark_ms,
                                ", allowed lateness ", opt.allowed_lateness_ms, " ms)"));
    return true;
  }

  // The max_dedup_ids degraded mode: closes the oldest open bucket now, as
  // the watermark would later. Its profiles stay (queued values still land
  // in them) and are rolled up by the next flush; its ids go.
  void CloseOldestEarly() {
    auto it = m_.buckets.lower_bound(m_.closed_until_ms);
    if (it == m_.buckets.end()) return;
    OpenBucket& bucket = it->second;
    m_.dedup_ids -= bucket.ids.size();
    const size_t dropped = bucket.ids.size();
    bucket.ids = HashSet();
    bucket.new_ids = std::vector<uint64_t>();  // the close drops its stored ids too
    m_.closed_until_ms = it->first + ing_.options_.bucket_width_ms;
    m_.progress_dirty = true;
    ++ing_.totals_.early_closes;
    internal::LogWarn("dedup id cap reached: closed the oldest open bucket early",
                      {{"model_key", absl::StrCat(rt_.model_key())},
                       {"bucket_start_ms", absl::StrCat(it->first)},
                       {"ids_dropped", absl::StrCat(dropped)},
                       {"max_dedup_ids", absl::StrCat(ing_.options_.max_dedup_ids)}});
  }

  OpenBucket& BucketFor(int64_t start) {
    if (cached_bucket_ != nullptr && cached_start_ == start) return *cached_bucket_;
    cached_start_ = start;
    auto [it, created] = m_.buckets.try_emplace(start);
    if (created) {
      // Size the dedup set like the fullest open bucket so that it rarely
      // rehashes while it fills.
      size_t expect = 0;
      for (const auto& [other_start, other] : m_.buckets) expect = std::max(expect, other.ids.size());
      it->second.ids.Reserve(std::min<uint64_t>(expect, ing_.options_.max_dedup_ids));
    }
    cached_bucket_ = &it->second;
    return *cached_bucket_;
  }

  // The queue is full: hand it off (drained once mu is released) and go
  // on with a spare one.
  void HandOffQueue() {
    handoffs_.push_back(HandOff{std::move(m_.queue), m_.next_ticket++});
    {
      std::lock_guard<std::mutex> lock(m_.spare_mu);
      if (!m_.spare.empty()) {
        m_.queue = std::move(m_.spare.back());
        m_.spare.pop_back();
      }
    }
    if (m_.queue == nullptr) m_.queue = std::make_unique<ApplyQueue>();
    Prepare();
  }

  // Adds the queued numeric values to their profiles, feature by feature.
  static void AddQueued(const ProfileAccumulator::Shape& shape, ApplyQueue& q) {
    const size_t summaries = shape.edges.size();
    const size_t n = q.w.size();
    if (n == 0) return;
    const double* w = q.w.data();
    const size_t* first = q.first.data();
    std::byte* const* targets = q.targets.data();
    uint32_t* bins = q.bins.data();
    for (size_t j = 0; j < n; ++j) {
      if (j + kAhead < n) {
        for (size_t t = first[j + kAhead]; t < first[j + kAhead + 1]; ++t) {
          __builtin_prefetch(targets[t], 1);
        }
      }
      for (size_t t = first[j]; t < first[j + 1]; ++t) {
        detectors::ProfileCounters& c = *ProfileAccumulator::CountersAt(targets[t]);
        ++c.events;
        c.late_accepted += q.late[j];
        c.invalid_values += q.invalid[j];
        c.weight += w[j];
        c.weight_sq += w[j] * w[j];
      }
    }
    for (size_t k = 0; k < summaries; ++k) {
      const detectors::BinEdges& edges = *shape.edges[k];
      const uint32_t line = shape.first_line[k];
      const double* xs = &q.x[k * q.chunk];
      for (size_t j = 0; j < n; ++j) {
        bins[j] = std::isfinite(xs[j]) ? static_cast<uint32_t>(edges.BinOf(xs[j])) : kNonFinite;
      }
      for (size_t j = 0; j < n; ++j) {
        // The targets' lines are mostly cache misses (thousands of slice
        // profiles): fetch kAhead events ahead so that they overlap.
        if (j + kAhead < n && bins[j + kAhead] != kNonFinite) {
          for (size_t t = first[j + kAhead]; t < first[j + kAhead + 1]; ++t) {
            std::byte* block = targets[t];
            __builtin_prefetch(ProfileAccumulator::MomentsAt(block, line), 1);
            __builtin_prefetch(ProfileAccumulator::BinsAt(block, line) + bins[j + kAhead], 1);
          }
        }
        const double x = xs[j];
        if (bins[j] == kNonFinite) {
          for (size_t t = first[j]; t < first[j + 1]; ++t) {
            if (std::isnan(x)) {
              ++ProfileAccumulator::MomentsAt(targets[t], line)->nulls;
            } else {
              ProfileAccumulator::CountNonFinite(
                  ProfileAccumulator::ColdAt(targets[t], shape)[k], x);
            }
          }
          continue;
        }
        for (size_t t = first[j]; t < first[j + 1]; ++t) {
          std::byte* block = targets[t];
          ProfileAccumulator::AddAt(*ProfileAccumulator::MomentsAt(block, line),
                                    ProfileAccumulator::BinsAt(block, line), bins[j], x, w[j]);
        }
      }
    }
    q.w.clear();
    q.late.clear();
    q.invalid.clear();
    q.first.resize(1);
    q.targets.clear();
  }

  Ingestor& ing_;
  ModelState& m_;
  ModelRuntime& rt_;
  IngestCounts& counts_;
  const int64_t now_ms_;
  const std::shared_ptr<const ProfileAccumulator::Shape> shape_;
  const size_t summaries_;  // numeric features + scores
  const size_t chunk_;      // events the queue holds
  ApplyQueue* q_ = nullptr;
  ApplyScratch& s_;
  std::vector<HandOff>& handoffs_;
  OpenBucket* cached_bucket_ = nullptr;
  int64_t cached_start_ = 0;
};

Ingestor::Ingestor(storage::Store* store, const base::Clock* clock, IngestOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

Ingestor::~Ingestor() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    stopping_ = true;
  }
  flusher_cv_.notify_all();
  wait_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  (void)Flush();
}

void Ingestor::StartFlusher() {
  flusher_ = std::thread([this] { FlusherLoop(); });
}

void Ingestor::FlusherLoop() {
  std::unique_lock<std::mutex> lock(wait_mu_);
  while (!stopping_) {
    flusher_cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms),
                         [this] { return stopping_ || flush_requested_; });
    if (stopping_) break;
    flush_requested_ = false;
    lock.unlock();
    (void)Flush();
    lock.lock();
  }
}

absl::StatusOr<std::shared_ptr<Ingestor::ModelState>> Ingestor::AddModel(
    const storage::ModelRecord& record) {
  v1::ModelSchema schema;
  if (!schema.ParseFromString(record.schema)) {
    return absl::DataLossError(absl::StrCat("stored schema of model ", record.model_id, "@",
                                            record.model_version, " does not parse"));
  }
  DW_ASSIGN_OR_RETURN(std::unique_ptr<ModelRuntime> runtime,
                      ModelRuntime::Create(record.model_key, std::move(schema), options_.runtime));
  auto state = std::make_shared<ModelState>();
  state->runtime = std::move(runtime);
  state->shape = ProfileAccumulator::Shape::Of(state->runtime->layout());
  state->watermark_ms = record.watermark_ms;
  state->published_watermark_ms.store(record.watermark_ms);
  state->closed_until_ms = record.closed_until_ms;
  state->published_closed_until_ms.store(record.closed_until_ms);
  std::unique_lock<std::shared_mutex> lock(models_mu_);
  models_[{record.model_id, record.model_version}] = state;
  latest_[record.model_id] = state;
  model_list_.push_back(state);
  return state;
}

absl::Status Ingestor::Recover() {
  DW_ASSIGN_OR_RETURN(std::vector<storage::ModelRecord> records, store_->ListModels());
  for (const storage::ModelRecord& record : records) {
    DW_ASSIGN_OR_RETURN(std::shared_ptr<ModelState> m, AddModel(record));
    std::lock_guard<std::mutex> lock(m->mu);
    DW_ASSIGN_OR_RETURN(std::vector<storage::SliceRecord> slices,
                        store_->ListSlices(record.model_key));
    for (const storage::SliceRecord& s : slices) m->runtime->slices().Restore(s);
    // Buckets not yet closed come back into memory with their dedup ids.
    DW_ASSIGN_OR_RETURN(std::vector<storage::BucketRow> rows,
                        store_->ReadBuckets(record.model_key, storage::Level::kMinute,
                                            record.closed_until_ms,
                                            std::numeric_limits<int64_t>::max(), {}));
    const auto layout = m->runtime->layout();
    const bool derived_all = m->runtime->slice_key_count() > 0;
    for (storage::BucketRow& row : rows) {
      // A derived "*" is rebuilt from the key slices at the next flush.
      if (derived_all && row.slice_id == 0) {
        m->buckets[row.bucket_start_ms];
        continue;
      }
      DW_ASSIGN_OR_RETURN(Profile profile, Profile::Deserialize(layout, row.profile));
      OpenBucket& bucket = m->buckets[row.bucket_start_ms];
      bucket.Set(row.slice_id, std::make_unique<ProfileAccumulator>(
                                   ProfileAccumulator::FromProfile(m->shape, profile)));
    }
    DW_ASSIGN_OR_RETURN(std::vector<storage::DedupChunk> chunks,
                        store_->ReadDedup(record.model_key, record.closed_until_ms));
    for (const storage::DedupChunk& chunk : chunks) {
      OpenBucket& bucket = m->buckets[chunk.bucket_start_ms];
      for (size_t i = 0; i + 8 <= chunk.hashes.size(); i += 8) {
        uint64_t h = 0;
        for (int b = 0; b < 8; ++b) {
          h |= static_cast<uint64_t>(static_cast<unsigned char>(chunk.hashes[i + b])) << (8 * b);
        }
        m->dedup_ids += bucket.ids.Insert(h);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ModelSchema> Ingestor::RegisterModel(v1::ModelSchema schema, bool* created) {
  if (schema.model().model_version().empty()) {
    return absl::InvalidArgumentError("schema.model.model_version is empty");
  }
  // Validate before storing: a schema the runtime cannot use is refused.
  DW_RETURN_IF_ERROR(ModelRuntime::Create(0, schema, options_.runtime).status());
  if (schema.registered_at().seconds() == 0) {
    schema.mutable_registered_at()->set_seconds(clock_->NowMs() / 1000);
  }
  std::shared_ptr<ModelState> existing = Lookup(schema.model());
  if (existing != nullptr) {
    v1::ModelSchema stored = existing->runtime->schema();
    v1::ModelSchema candidate = schema;
    candidate.clear_registered_at();
    stored.clear_registered_at();
    if (candidate.SerializeAsString() != stored.SerializeAsString()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "model ", schema.model().model_id(), "@", schema.model().model_version(),
          " is registered with a different schema; register a new model_version"));
    }
    *created = false;
    return existing->runtime->schema();
  }
  storage::ModelRecord record;
  record.model_id = schema.model().model_id();
  record.model_version = schema.model().model_version();
  record.schema = schema.SerializeAsString();
  record.registered_at_ms = clock_->NowMs();
  DW_ASSIGN_OR_RETURN(storage::ModelRecord stored, store_->PutModel(record));
  DW_ASSIGN_OR_RETURN(std::shared_ptr<ModelState> m, AddModel(stored));
  *created = true;
  return m->runtime->schema();
}

std::vector<v1::ModelSchema> Ingestor::ListModels() const {
  std::shared_lock<std::shared_mutex> lock(models_mu_);
  std::vector<v1::ModelSchema> out;
  for (const auto& m : model_list_) out.push_back(m->runtime->schema());
  return out;
}

std::shared_ptr<Ingestor::ModelState> Ingestor::Lookup(const v1::ModelRef& ref) const {
  std::shared_lock<std::shared_mutex> lock(models_mu_);
  if (ref.model_version().empty()) {
    auto it = latest_.find(ref.model_id());
    return it == latest_.end() ? nullptr : it->second;
  }
  auto it = models_.find({ref.model_id(), ref.model_version()});
  return it == models_.end() ? nullptr : it->second;
}

absl::StatusOr<Ingestor::ModelView> Ingestor::FindModel(const v1::ModelRef& ref) const {
  std::shared_ptr<ModelState> m = Lookup(ref);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("model \"", ref.model_id(), "\" version \"",
                                            ref.model_version(), "\" is not registered"));
  }
  // Not under m->mu: a report must not wait for a batch or a flush.
  return ModelView{m->runtime, m->published_watermark_ms.load(std::memory_order_relaxed),
                   m->published_closed_until_ms.load(std::memory_order_relaxed)};
}

std::optional<int32_t> Ingestor::FindSlice(const v1::ModelRef& ref, std::string_view key,
                                           std::string_view value) const {
  std::shared_ptr<ModelState> m = Lookup(ref);
  if (m == nullptr) return std::nullopt;
  std::optional<int> key_index = m->runtime->SliceKeyIndex(key);
  if (!key_index) return std::nullopt;
  return m->runtime->slices().Find(*key_index, value);
}

std::vector<storage::SliceRecord> Ingestor::Slices(const v1::ModelRef& ref) const {
  std::shared_ptr<ModelState> m = Lookup(ref);
  if (m == nullptr) return {};
  return m->runtime->slices().Records();
}

std::shared_ptr<const detectors::ProfileLayout> Ingestor::LayoutFor(int64_t model_key) const {
  std::shared_lock<std::shared_mutex> lock(models_mu_);
  for (const auto& m : model_list_) {
    if (m->runtime->model_key() == model_key) return m->runtime->layout();
  }
  return nullptr;
}

size_t Ingestor::open_buckets() const {
  std::shared_lock<std::shared_mutex> lock(models_mu_);
  size_t n = 0;
  for (const auto& m : model_list_) {
    std::lock_guard<std::mutex> model_lock(m->mu);
    n += m->buckets.size();
  }
  return n;
}

absl::StatusOr<uint64_t> Ingestor::Apply(const v1::PredictionBatch& batch, IngestCounts* counts) {
  std::shared_ptr<ModelState> m = Lookup(batch.model());
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("model \"", batch.model().model_id(), "\" version \"",
                                            batch.model().model_version(),
                                            "\" is not registered (register it with Models.RegisterModel)"));
  }
  if (batch.has_rows() && batch.has_columns()) {
    return absl::InvalidArgumentError(
        "batch sets both rows and columns; send one form per PredictionBatch");
  }
  const ModelRuntime& rt = *m->runtime;
  IngestCounts local;
  local.batches = 1;
  uint64_t seq = 0;
  // Full queues this batch hands off; drained once mu is released, on every
  // path out (a flush waits for them).
  std::vector<HandOff> handoffs;
  struct DrainOnExit {
    ModelState& m;
    std::vector<HandOff>& handoffs;
    ~DrainOnExit() { EventSink::DrainHandOffs(m, handoffs); }
  } drain_on_exit{*m, handoffs};
  {
    std::lock_guard<std::mutex> lock(m->mu);
    seq = applied_seq_.fetch_add(1) + 1;
    EventSink sink(*this, *m, local, handoffs);
    EventSink::EventView view;
    view.numeric.resize(rt.numeric_count());
    view.categorical.resize(rt.categorical_count());
    view.categorical_null.resize(rt.categorical_count());
    view.scores.resize(rt.score_count());
    std::vector<int32_t>& slice_ids = m->scratch.slice_ids;

    if (batch.has_rows()) {
      const auto& events = batch.rows().events();
      std::vector<uint64_t>& hashes = m->scratch.hashes;
      hashes.resize(events.size());
      for (int i = 0; i < events.size(); ++i) hashes[i] = EventIdHash(events[i].event_id());
      for (int i = 0; i < events.size(); ++i) {
        const v1::PredictionEvent& e = events[i];
        const bool ahead = i + kIdAhead < static_cast<size_t>(events.size());
        view.next_hash = ahead ? hashes[i + kIdAhead] : 0;
        view.next_time_ms = ahead ? events[i + kIdAhead].event_time_ms() : 0;
        view.id_hash = hashes[i];
        view.event_id = e.event_id();
        view.event_time_ms = e.event_time_ms();
        view.sample_rate = e.sample_rate() == 0 ? 1.0 : e.sample_rate();
        // Positional values, then named ones on top.
        if (e.numeric_size() != 0 && e.numeric_size() != rt.numeric_count()) {
          local.Reject("numeric_count_mismatch", e.event_id(),
                       absl::StrCat("numeric has ", e.numeric_size(), " values, the schema has ",
                                    rt.numeric_count(), " numeric features"));
          continue;
        }
        if (e.categorical_size() != 0 && e.categorical_size() != rt.categorical_count()) {
          local.Reject("categorical_count_mismatch", e.event_id(),
                       absl::StrCat("categorical has ", e.categorical_size(),
                                    " values, the schema has ", rt.categorical_count(),
                                    " categorical features"));
          continue;
        }
        if (e.scores_size() != rt.score_count()) {
          local.Reject("score_count_mismatch", e.event_id(),
                       absl::StrCat("scores has ", e.scores_size(), " values, the schema has ",
                                    rt.score_count()));
          continue;
        }
        if (e.slice_values_size() != 0 && e.slice_values_size() != rt.slice_key_count()) {
          local.Reject("slice_count_mismatch", e.event_id(),
                       absl::StrCat("slice_values has ", e.slice_values_size(),
                                    " values, the schema has ", rt.slice_key_count(),
                                    " slice keys"));
          continue;
        }
        for (int f = 0; f < rt.numeric_count(); ++f) {
          view.numeric[f] = e.numeric_size() ? e.numeric(f) : std::nan("");
        }
        for (int f = 0; f < rt.categorical_count(); ++f) {
          view.categorical[f] = e.categorical_size() ? std::string_view(e.categorical(f)) : "";
          view.categorical_null[f] = view.categorical[f].empty();
        }
        bool bad = false;
        for (const auto& [name, value] : e.named_numeric()) {
          std::optional<int> f = rt.NumericIndex(name);
          if (!f) {
            local.Reject("unknown_feature", e.event_id(),
                         absl::StrCat("named_numeric \"", name, "\" is not a numeric feature"));
            bad = true;
            break;
          }
          view.numeric[*f] = value;
        }
        if (bad) continue;
        for (const auto& [name, value] : e.named_categorical()) {
          std::optional<int> f = rt.CategoricalIndex(name);
          if (!f) {
            local.Reject("unknown_feature", e.event_id(),
                         absl::StrCat("named_categorical \"", name,
                                      "\" is not a categorical feature"));
            bad = true;
            break;
          }
          view.categorical[*f] = value;
          view.categorical_null[*f] = value.empty();
        }
        if (bad) continue;
        for (int s = 0; s < rt.score_count(); ++s) view.scores[s] = e.scores(s);
        // "*" is derived from the first key's slices at flush time (each
        // event is in exactly one of them) unless the model has no keys.
        slice_ids.clear();
        if (rt.slice_key_count() == 0) slice_ids.push_back(0);
        for (int k = 0; k < rt.slice_key_count(); ++k) {
          std::string_view value;
          if (e.slice_values_size()) value = e.slice_values(k);
          auto named = e.named_slices().find(rt.slice_keys()[k]);
          if (named != e.named_slices().end()) value = named->second;
          slice_ids.push_back(sink.ResolveSlice(k, value));
        }
        for (const auto& [key, value] : e.named_slices()) {
          if (!rt.SliceKeyIndex(key)) {
            local.Reject("unknown_slice_key", e.event_id(),
                         absl::StrCat("named_slices \"", key, "\" is not a slice key"));
            bad = true;
            break;
          }
        }
        if (bad) continue;
        view.slice_ids = slice_ids;
        uint64_t hash = 0;
        if (sink.Apply(view, &hash) && sink.Sampled(hash)) {
          sink.KeepRaw(e.event_id(), e.event_time_ms(), e.SerializeAsString());
        }
      }
    } else if (batch.has_columns()) {
      const v1::ColumnarBatch& c = batch.columns();
      const size_t n = c.num_events();
      auto check = [&](size_t got, size_t want, std::string_view field) -> absl::Status {
        if (got != want) {
          return absl::InvalidArgumentError(absl::StrCat("columns.", Sv(field), " has ", got,
                                                         " values, expected ", want));
        }
        return absl::OkStatus();
      };
      DW_RETURN_IF_ERROR(check(c.event_ids_size(), n, "event_ids"));
      DW_RETURN_IF_ERROR(check(c.event_time_ms_size(), n, "event_time_ms"));
      DW_RETURN_IF_ERROR(check(c.numeric_size(), n * rt.numeric_count(), "numeric"));
      DW_RETURN_IF_ERROR(check(c.scores_size(), n * rt.score_count(), "scores"));
      if (c.sample_rate_size() > 1) DW_RETURN_IF_ERROR(check(c.sample_rate_size(), n, "sample_rate"));
      if (rt.slice_key_count() > 0) DW_RETURN_IF_ERROR(check(c.slice_codes_size(), n, "slice_codes"));
      // Categorical columns by name, dictionary-coded.
      std::vector<const v1::CategoricalColumn*> cat_cols(rt.categorical_count(), nullptr);
      for (const v1::CategoricalColumn& col : c.categorical()) {
        std::optional<int> f = rt.CategoricalIndex(col.name());
        if (!f) {
          return absl::InvalidArgumentError(
              absl::StrCat("columns.categorical \"", col.name(), "\" is not a categorical feature"));
        }
        DW_RETURN_IF_ERROR(check(col.codes_size(), n, absl::StrCat("categorical[", col.name(), "].codes")));
        cat_cols[*f] = &col;
      }
      // Each distinct slice tuple resolves once per batch.
      const size_t fanout = rt.slice_key_count();  // "*" is derived at flush
      std::vector<int32_t>& tuple_ids = m->scratch.tuple_ids;
      tuple_ids.clear();
      for (int t = 0; t < c.slice_dictionary_size(); ++t) {
        const v1::SliceTuple& tuple = c.slice_dictionary(t);
        if (tuple.values_size() != rt.slice_key_count()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "columns.slice_dictionary[", t, "] has ", tuple.values_size(),
              " values, the schema has ", rt.slice_key_count(), " slice keys"));
        }
        for (int k = 0; k < rt.slice_key_count(); ++k) {
          tuple_ids.push_back(sink.ResolveSlice(k, tuple.values(k)));
        }
      }
      static constexpr int32_t kAllOnly[1] = {0};
      std::vector<uint64_t>& hashes = m->scratch.hashes;
      hashes.resize(n);
      for (size_t i = 0; i < n; ++i) hashes[i] = EventIdHash(c.event_ids(i));
      for (size_t i = 0; i < n; ++i) {
        view.next_hash = i + kIdAhead < n ? hashes[i + kIdAhead] : 0;
        view.next_time_ms = i + kIdAhead < n ? c.event_time_ms(i + kIdAhead) : 0;
        view.id_hash = hashes[i];
        view.event_id = c.event_ids(i);
        view.event_time_ms = c.event_time_ms(i);
        view.sample_rate = c.sample_rate_size() == 0   ? 1.0
                           : c.sample_rate_size() == 1 ? c.sample_rate(0)
                                                       : c.sample_rate(i);
        if (view.sample_rate == 0) view.sample_rate = 1.0;
        for (int f = 0; f < rt.numeric_count(); ++f) view.numeric[f] = c.numeric(f * n + i);
        bool bad = false;
        for (int f = 0; f < rt.categorical_count(); ++f) {
          const v1::CategoricalColumn* col = cat_cols[f];
          const int code = col == nullptr ? -1 : col->codes(i);
          if (code >= (col == nullptr ? 0 : col->dictionary_size())) {
            local.Reject("bad_dictionary_code", view.event_id,
                         absl::StrCat("categorical \"", col->name(), "\" code ", code,
                                      " is outside its dictionary"));
            bad = true;
            break;
          }
          view.categorical_null[f] = code < 0;
          view.categorical[f] = code < 0 ? std::string_view() : col->dictionary(code);
        }
        if (bad) continue;
        for (int s = 0; s < rt.score_count(); ++s) view.scores[s] = c.scores(s * n + i);
        if (rt.slice_key_count() > 0) {
          const uint32_t code = c.slice_codes(i);
          if (code >= static_cast<size_t>(c.slice_dictionary_size())) {
            local.Reject("bad_dictionary_code", view.event_id,
                         absl::StrCat("slice_codes value ", code, " is outside slice_dictionary"));
            continue;
          }
          view.slice_ids = std::span<const int32_t>(tuple_ids).subspan(code * fanout, fanout);
        } else {
          view.slice_ids = kAllOnly;
        }
        uint64_t hash = 0;
        if (sink.Apply(view, &hash) && sink.Sampled(hash)) {
          // Materialise the sampled event in row form for the raw table.
          v1::PredictionEvent e;
          e.set_event_id(std::string(view.event_id));
          e.set_event_time_ms(view.event_time_ms);
          for (double x : view.numeric) e.add_numeric(x);
          for (int f = 0; f < rt.categorical_count(); ++f) {
            e.add_categorical(std::string(view.categorical[f]));
          }
          for (double x : view.scores) e.add_scores(x);
          if (rt.slice_key_count() > 0) {
            for (const std::string& v : c.slice_dictionary(c.slice_codes(i)).values()) {
              e.add_slice_values(v);
            }
          }
          e.set_sample_rate(view.sample_rate);
          sink.KeepRaw(view.event_id, view.event_time_ms, e.SerializeAsString());
        }
      }
    }
    m->published_watermark_ms.store(m->watermark_ms, std::memory_order_relaxed);
    m->published_closed_until_ms.store(m->closed_until_ms, std::memory_order_relaxed);
  }
  totals_.accepted += local.accepted;
  totals_.duplicates += local.duplicates;
  totals_.rejected += local.rejected;
  totals_.late_accepted += local.late_accepted;
  totals_.too_late += local.too_late;
  counts->Merge(local);
  return seq;
}

// What a flush takes from one model under its lock: copies of the dirty
// profiles (one memcpy each) and the closing buckets themselves. Encoding
// them (the bulk of a flush's CPU) happens after the lock is released, so
// ingest of the model waits only for the copies.
struct Ingestor::FlushSnapshot {
  struct Bucket {
    int64_t start = 0;
    bool closing = false;
    // By slice id; null where not taken. Open buckets: the dirty slices, and
    // every first-key slice when "*" must be rewritten. Closing: all.
    std::vector<std::unique_ptr<ProfileAccumulator>> slices;
    std::vector<int32_t> dirty;  // minute rows to write (not "*")
    bool population_dirty = false;
  };
  int64_t model_key = 0;
  std::shared_ptr<const detectors::ProfileLayout> layout;
  bool derived_all = false;
  // The first slice key's slices, by value: "*" is their merge, in this
  // order, so its bytes do not depend on slice ids.
  std::vector<std::pair<std::string, int32_t>> first_key;
  std::vector<Bucket> buckets;
};

// "*" of a bucket of a model with slice keys: the merge of the first key's
// slices (every event is in exactly one of them, "__missing__" and
// "__other__" included), at a quarter less work per event with 3 keys.
// nullopt when the bucket has none.
std::optional<std::string> Ingestor::PopulationProfile(const FlushSnapshot& snap, size_t bucket) {
  const FlushSnapshot::Bucket& b = snap.buckets[bucket];
  std::optional<Profile> all;
  for (const auto& [value, id] : snap.first_key) {
    if (static_cast<size_t>(id) >= b.slices.size() || !b.slices[id]) continue;
    if (!all) all.emplace(snap.layout);
    // Same layout by construction; a failure would be a bug, not bad input.
    (void)all->Merge(b.slices[id]->ToProfile());
  }
  if (!all) return std::nullopt;
  return all->Serialize();
}

void Ingestor::CollectFlush(ModelState& m, storage::FlushBatch* batch, FlushSnapshot* snap) {
  const int64_t key = m.runtime->model_key();
  {
    std::unique_lock<std::mutex> drain_lock(m.drain_mu);
    m.drain_cv.wait(drain_lock, [&] { return m.drained == m.next_ticket; });
    EventSink::DrainFilling(m);
  }
  for (storage::SliceRecord& s : m.new_slices) batch->new_slices.push_back(std::move(s));
  m.new_slices.clear();
  snap->model_key = key;
  snap->layout = m.runtime->layout();
  snap->derived_all = m.runtime->slice_key_count() > 0;
  const SliceDirectory& dir = m.runtime->slices();
  if (snap->derived_all) {
    for (size_t id = 1; id < dir.size(); ++id) {
      const storage::SliceRecord& r = dir.record(static_cast<int32_t>(id));
      if (r.key_index == 0) snap->first_key.emplace_back(r.value, static_cast<int32_t>(id));
    }
    std::sort(snap->first_key.begin(), snap->first_key.end());
  }
  const IngestOptions& opt = options_;
  for (auto it = m.buckets.begin(); it != m.buckets.end();) {
    const int64_t start = it->first;
    OpenBucket& bucket = it->second;
    FlushSnapshot::Bucket& b = snap->buckets.emplace_back();
    b.start = start;
    // Closed early (max_dedup_ids), or by the watermark: rolled into its
    // hour and day, its dedup ids dropped.
    b.closing = start < m.closed_until_ms ||
                start + opt.bucket_width_ms + opt.allowed_lateness_ms <= m.watermark_ms;
    b.slices.resize(bucket.slices.size());
    for (size_t id = snap->derived_all ? 1 : 0; id < bucket.slices.size(); ++id) {
      if (!bucket.dirty[id] || !bucket.slices[id]) continue;
      bucket.dirty[id] = 0;
      b.dirty.push_back(static_cast<int32_t>(id));
      if (dir.record(static_cast<int32_t>(id)).key_index == 0) b.population_dirty = true;
    }
    if (b.closing) {
      for (size_t id = 0; id < bucket.slices.size(); ++id) b.slices[id] = std::move(bucket.slices[id]);
    } else {
      for (int32_t id : b.dirty) b.slices[id] = std::make_unique<ProfileAccumulator>(bucket.slices[id]->Clone());
      if (b.population_dirty) {
        for (const auto& [value, id] : snap->first_key) {
          if (static_cast<size_t>(id) < bucket.slices.size() && bucket.slices[id] && !b.slices[id]) {
            b.slices[id] = std::make_unique<ProfileAccumulator>(bucket.slices[id]->Clone());
          }
        }
      }
    }
    if (!bucket.new_ids.empty()) {
      batch->dedup.push_back(storage::DedupChunk{key, start, EncodeHashes(bucket.new_ids)});
      bucket.new_ids.clear();
    }
    if (!b.closing) {
      ++it;
      continue;
    }
    m.dedup_ids -= bucket.ids.size();
    batch->drop_dedup.push_back({key, start});
    m.closed_until_ms = std::max(m.closed_until_ms, start + opt.bucket_width_ms);
    m.progress_dirty = true;
    it = m.buckets.erase(it);
  }
  for (storage::RawEventRow& row : m.raw) batch->raw_events.push_back(std::move(row));
  m.raw.clear();
  if (m.progress_dirty) {
    batch->progress.push_back({key, m.watermark_ms, m.closed_until_ms});
    m.progress_dirty = false;
  }
  m.published_watermark_ms.store(m.watermark_ms, std::memory_order_relaxed);
  m.published_closed_until_ms.store(m.closed_until_ms, std::memory_order_relaxed);
}

void Ingestor::EncodeFlush(const FlushSnapshot& snap, storage::FlushBatch* batch) {
  const int64_t key = snap.model_key;
  batch->layouts[key] = snap.layout;  // the store merges this model's rollups with it
  for (size_t i = 0; i < snap.buckets.size(); ++i) {
    const FlushSnapshot::Bucket& b = snap.buckets[i];
    if (snap.derived_all && (b.population_dirty || b.closing)) {
      std::optional<std::string> all = PopulationProfile(snap, i);
      if (all && b.population_dirty) {
        batch->minute_upserts.push_back(storage::BucketRow{key, storage::Level::kMinute, b.start, 0, *all});
      }
      if (all && b.closing) {
        batch->rollups.push_back(storage::BucketRow{
            key, storage::Level::kHour, storage::BucketStart(b.start, storage::kHourMs), 0, *all});
        batch->rollups.push_back(storage::BucketRow{
            key, storage::Level::kDay, storage::BucketStart(b.start, storage::kDayMs), 0, *std::move(all)});
      }
    }
    for (int32_t id : b.dirty) {
      batch->minute_upserts.push_back(
          storage::BucketRow{key, storage::Level::kMinute, b.start, id, b.slices[id]->Serialize()});
    }
    if (!b.closing) continue;
    for (size_t id = snap.derived_all ? 1 : 0; id < b.slices.size(); ++id) {
      if (!b.slices[id]) continue;
      std::string bytes = b.slices[id]->Serialize();
      batch->rollups.push_back(storage::BucketRow{key, storage::Level::kHour,
                                                  storage::BucketStart(b.start, storage::kHourMs),
                                                  static_cast<int32_t>(id), bytes});
      batch->rollups.push_back(storage::BucketRow{key, storage::Level::kDay,
                                                  storage::BucketStart(b.start, storage::kDayMs),
                                                  static_cast<int32_t>(id), std::move(bytes)});
    }
  }
}

absl::Status Ingestor::Flush() {
  std::lock_guard<std::mutex> flush_lock(flush_mu_);
  const uint64_t seq = applied_seq_.load();
  auto batch = std::make_unique<storage::FlushBatch>();
  if (retry_ != nullptr) batch = std::move(retry_);
  std::vector<std::shared_ptr<ModelState>> models;
  {
    std::shared_lock<std::shared_mutex> lock(models_mu_);
    models = model_list_;
  }
  for (const auto& m : models) {
    FlushSnapshot snap;
    {
      std::lock_guard<std::mutex> lock(m->mu);
      CollectFlush(*m, batch.get(), &snap);
    }
    EncodeFlush(snap, batch.get());
  }
  const auto started = std::chrono::steady_clock::now();
  absl::Status status = absl::OkStatus();
  if (!batch->empty()) status = store_->Commit(*batch);
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  ++totals_.flushes;
  totals_.last_flush_us = elapsed.count();
  if (!status.ok()) {
    ++totals_.flush_failures;
    retry_ = std::move(batch);  // committed with the next flush (all-or-nothing)
    return status;
  }
  totals_.flushed_rows += batch->minute_upserts.size() + batch->rollups.size();
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    if (seq > durable_seq_.load()) durable_seq_.store(seq);
  }
  wait_cv_.notify_all();
  return absl::OkStatus();
}

absl::Status Ingestor::WaitDurable(uint64_t seq, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(wait_mu_);
  if (durable_seq_.load() >= seq) return absl::OkStatus();
  if (!flusher_.joinable()) {
    lock.unlock();
    DW_RETURN_IF_ERROR(Flush());
    return durable_seq_.load() >= seq ? absl::OkStatus()
                                      : absl::UnavailableError("flush did not cover the batch");
  }
  flush_requested_ = true;
  flusher_cv_.notify_all();
  const bool done = wait_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    return stopping_ || durable_seq_.load() >= seq;
  });
  if (durable_seq_.load() >= seq) return absl::OkStatus();
  if (!done) return absl::UnavailableError("storage did not commit the batch in time; retry");
  return absl::UnavailableError("server is shutting down; retry");
}

}  // namespace driftwatch::service
