// driftwatch_loadgen: drives driftwatchd's Ingest.StreamPredictions with
// synthetic traffic (row or columnar batches) from several concurrent client
// streams, optionally queries Reports.GetDriftReport while it ingests, and
// reports throughput, acked counts, wire rate, client CPU per event and
// report latency. With --labels it drives Ingest.StreamLabels instead: a
// label for each event id an earlier prediction run with the same
// --run-id, --streams, --batch and --events-per-stream sent, and reports
// labels/s and the acks by result. docs/benchmarks.md describes the
// scenarios.
//
// Cheap generation: each stream pre-generates a small pool of batches once
// and, per send, rewrites only event ids ("<run>-<stream>-<counter>", unique
// across the run) and event times (a synthetic clock shared by all streams,
// so the server's watermark advances smoothly and buckets roll). The message
// objects are reused, so a send allocates nothing on the client.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "driftwatch/v1/ingest.grpc.pb.h"
#include "driftwatch/v1/models.grpc.pb.h"
#include "driftwatch/v1/reports.grpc.pb.h"

namespace {

namespace v1 = driftwatch::v1;
using Clock = std::chrono::steady_clock;

constexpr int kNumericFeatures = 20;
constexpr int kReferenceSample = 2000;
constexpr int kCategoryValues = 20;
constexpr double kDriftShift = 1.5;  // in standard deviations, android only

struct Options {
  std::string target = "127.0.0.1:7070";
  std::string model = "loadgen";
  std::string version = "v1";
  bool do_register = false;
  int categorical = 0;
  std::string mode = "row";
  int batch = 1000;
  int streams = 2;
  int messages_per_stream = 200;
  double duration_s = 60;
  double rate = 0;
  double drift_after_s = -1;
  int64_t event_time_start_ms = 0;
  int64_t events_per_sim_second = 20'000;
  double report_qps = 0;
  int report_slices = 0;  // 0: every sent slice value; else the population + N-1 values
  std::string report_window = "24h";
  bool baseline = false;
  double baseline_after_s = 10;
  int pool = 8;
  int slice_tuples = 2000;
  bool dry_run = false;
  bool json = false;
  int64_t rpc_deadline_s = 120;
  bool labels = false;            // Ingest.StreamLabels instead of predictions
  std::string run_id;             // the ids' "<run>" part; empty: a fresh one
  int64_t events_per_stream = 0;  // 0: until --duration
  // The registered model's label_join_rate; 0: registered without a label
  // kind (no join state at all).
  double label_join_rate = 1.0;
};

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// "24h", "30m", "90s", "3600" -> seconds; -1 when malformed.
int64_t ParseDurationSeconds(const std::string& text) {
  if (text.empty()) return -1;
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'h': unit = 3600; digits.pop_back(); break;
    case 'm': unit = 60; digits.pop_back(); break;
    case 's': digits.pop_back(); break;
    default: break;
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value <= 0) return -1;
  return value * unit;
}

// The slice universe: 3 + 50 + 947 = 1000 distinct values over three keys.
struct SliceUniverse {
  std::vector<std::string> keys = {"platform", "country", "app_version"};
  std::vector<std::vector<std::string>> values;

  SliceUniverse() {
    values.push_back({"android", "ios", "web"});
    std::vector<std::string> countries;
    for (int i = 0; i < 50; ++i) {
      countries.push_back({static_cast<char>('A' + i / 26), static_cast<char>('A' + i % 26)});
    }
    values.push_back(std::move(countries));
    std::vector<std::string> versions;
    for (int i = 0; i < 947; ++i) versions.push_back(absl::StrCat("1.", i / 100, ".", i % 100));
    values.push_back(std::move(versions));
  }
  size_t total() const {
    size_t n = 0;
    for (const auto& v : values) n += v.size();
    return n;
  }
};

// The registered schema: f0..f19 numeric with a fixed-seed N(0,1)
// reference sample (so the server derives quantile edges), c0.. categorical,
// one binary-probability score, three slice keys with caps above their counts.
v1::ModelSchema MakeSchema(const Options& opt, const SliceUniverse& universe) {
  v1::ModelSchema schema;
  schema.mutable_model()->set_model_id(opt.model);
  schema.mutable_model()->set_model_version(opt.version);
  std::mt19937_64 rng(12345);
  std::normal_distribution<double> normal(0, 1);
  for (int f = 0; f < kNumericFeatures; ++f) {
    v1::FeatureSpec* spec = schema.add_features();
    spec->set_name(absl::StrCat("f", f));
    spec->set_kind(v1::FEATURE_KIND_NUMERIC);
    for (int i = 0; i < kReferenceSample; ++i) spec->add_reference_sample(normal(rng));
  }
  for (int c = 0; c < opt.categorical; ++c) {
    v1::FeatureSpec* spec = schema.add_features();
    spec->set_name(absl::StrCat("c", c));
    spec->set_kind(v1::FEATURE_KIND_CATEGORICAL);
  }
  for (size_t k = 0; k < universe.keys.size(); ++k) {
    v1::SliceKeySpec* key = schema.add_slice_keys();
    key->set_key(universe.keys[k]);
    key->set_max_values(static_cast<uint32_t>(universe.values[k].size() + 16));
  }
  schema.set_score_kind(v1::SCORE_KIND_BINARY_PROBABILITY);
  if (opt.label_join_rate > 0) {
    schema.set_label_kind(v1::LABEL_KIND_BINARY);
    schema.set_label_join_rate(opt.label_join_rate);
  }
  schema.add_score_names("p");
  return schema;
}

// One synthetic event before it is laid out as a row or a column entry.
struct SyntheticEvent {
  double numeric[kNumericFeatures];
  std::vector<int> categorical;  // index into "v0".."v19"
  double score = 0;
  int slice[3] = {0, 0, 0};  // index per key into SliceUniverse::values
};

class EventSource {
 public:
  // `slice_tuples` > 0: events draw their (platform, country, app_version)
  // from that many fixed tuples, Zipf(1)-weighted, covering every value, as
  // correlated production traffic does; 0: each key drawn independently.
  EventSource(uint64_t seed, int categorical, int slice_tuples, const SliceUniverse& u)
      : rng_(seed), categorical_(categorical) {
    for (int j = 0; j < slice_tuples; ++j) {
      tuples_.push_back({j % static_cast<int>(u.values[0].size()),
                         j % static_cast<int>(u.values[1].size()),
                         j % static_cast<int>(u.values[2].size())});
      zipf_cdf_.push_back((zipf_cdf_.empty() ? 0 : zipf_cdf_.back()) + 1.0 / (j + 1));
    }
  }

  // `forced_tuple` >= 0 picks that tuple instead of a Zipf draw, so a pool
  // can cover every slice value however skewed the draws are.
  SyntheticEvent Next(const SliceUniverse& u, int forced_tuple) {
    SyntheticEvent e;
    for (double& x : e.numeric) x = normal_(rng_);
    for (int c = 0; c < categorical_; ++c) e.categorical.push_back(Skewed(kCategoryValues));
    const double logit = 0.8 * e.numeric[0] - 0.5 * e.numeric[1] + 0.3 * normal_(rng_);
    e.score = 1.0 / (1.0 + std::exp(-logit));
    if (forced_tuple >= 0 && static_cast<size_t>(forced_tuple) < tuples_.size()) {
      for (int k = 0; k < 3; ++k) e.slice[k] = tuples_[forced_tuple][k];
      return e;
    }
    if (!tuples_.empty()) {
      const double r = uniform_(rng_) * zipf_cdf_.back();
      const size_t j = std::min(tuples_.size() - 1,
                                static_cast<size_t>(std::upper_bound(zipf_cdf_.begin(),
                                                                     zipf_cdf_.end(), r) -
                                                    zipf_cdf_.begin()));
      for (int k = 0; k < 3; ++k) e.slice[k] = tuples_[j][k];
      return e;
    }
    e.slice[0] = static_cast<int>(rng_() % u.values[0].size());
    e.slice[1] = Skewed(static_cast<int>(u.values[1].size()));
    e.slice[2] = Skewed(static_cast<int>(u.values[2].size()));
    return e;
  }

 private:
  // Head-heavy (density ~ 1/sqrt(i)) but every value occurs.
  int Skewed(int n) {
    const double r = uniform_(rng_);
    return std::min(n - 1, static_cast<int>(n * r * r));
  }
  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_{0, 1};
  std::uniform_real_distribution<double> uniform_{0, 1};
  int categorical_;
  std::vector<std::array<int, 3>> tuples_;
  std::vector<double> zipf_cdf_;
};

// The demo drift: android traffic shifts its features and its score.
SyntheticEvent Drifted(SyntheticEvent e) {
  if (e.slice[0] != 0) return e;
  for (double& x : e.numeric) x += kDriftShift;
  e.score = std::min(1.0, e.score + 0.2);
  return e;
}

std::string CategoryValue(int i) { return absl::StrCat("v", i); }

// Lays out `events` as one batch message. Event ids and times are left
// as placeholders sized for the run's ids; Stamp() fills them per send.
v1::PredictionBatch BuildBatch(const Options& opt, const SliceUniverse& u,
                               const std::vector<SyntheticEvent>& events) {
  v1::PredictionBatch batch;
  batch.mutable_model()->set_model_id(opt.model);
  batch.mutable_model()->set_model_version(opt.version);
  const size_t n = events.size();
  const std::string placeholder(40, '0');  // capacity for any id of the run
  if (opt.mode == "row") {
    v1::RowBatch* rows = batch.mutable_rows();
    for (const SyntheticEvent& e : events) {
      v1::PredictionEvent* ev = rows->add_events();
      ev->set_event_id(placeholder);
      ev->set_event_time_ms(1);
      for (double x : e.numeric) ev->add_numeric(x);
      for (int c : e.categorical) ev->add_categorical(CategoryValue(c));
      ev->add_scores(e.score);
      for (int k = 0; k < 3; ++k) ev->add_slice_values(u.values[k][e.slice[k]]);
    }
    return batch;
  }
  v1::ColumnarBatch* cols = batch.mutable_columns();
  cols->set_num_events(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) {
    cols->add_event_ids(placeholder);
    cols->add_event_time_ms(1);
  }
  cols->mutable_numeric()->Reserve(static_cast<int>(n * kNumericFeatures));
  for (int f = 0; f < kNumericFeatures; ++f) {
    for (const SyntheticEvent& e : events) cols->add_numeric(e.numeric[f]);
  }
  for (int c = 0; c < opt.categorical; ++c) {
    v1::CategoricalColumn* col = cols->add_categorical();
    col->set_name(absl::StrCat("c", c));
    for (int v = 0; v < kCategoryValues; ++v) col->add_dictionary(CategoryValue(v));
    for (const SyntheticEvent& e : events) col->add_codes(e.categorical[c]);
  }
  for (const SyntheticEvent& e : events) cols->add_scores(e.score);
  std::map<std::array<int, 3>, uint32_t> tuples;
  for (const SyntheticEvent& e : events) {
    const std::array<int, 3> key{e.slice[0], e.slice[1], e.slice[2]};
    auto [it, inserted] = tuples.emplace(key, static_cast<uint32_t>(tuples.size()));
    if (inserted) {
      v1::SliceTuple* t = cols->add_slice_dictionary();
      for (int k = 0; k < 3; ++k) t->add_values(u.values[k][key[k]]);
    }
    cols->add_slice_codes(it->second);
  }
  return batch;
}

// Writes "<prefix><counter>" into `out`, reusing its capacity.
void WriteId(const std::string& prefix, uint64_t counter, std::string* out) {
  char buf[64];
  const size_t p = std::min(prefix.size(), sizeof(buf) - 24);
  std::memcpy(buf, prefix.data(), p);
  char* end = std::to_chars(buf + p, buf + sizeof(buf), counter).ptr;
  out->assign(buf, end - buf);
}

// Shared by every stream: the synthetic event clock and the run's state.
struct Shared {
  Options opt;
  SliceUniverse universe;
  std::string run_id;
  Clock::time_point start;
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> event_seq{0};  // events stamped so far, all streams
  std::atomic<int64_t> max_event_time_ms{0};
  std::atomic<uint64_t> sent_events{0}, sent_bytes{0}, sent_messages{0}, streams_done{0};
  std::atomic<uint64_t> accepted{0}, duplicates{0}, rejected{0}, late_accepted{0};
  // --labels: the acks by result (duplicates and rejected above).
  std::atomic<uint64_t> joined{0}, pending{0}, conflicting{0}, not_sampled{0}, orphan{0};
  std::atomic<int> workers_running{0};
  std::mutex mu;  // guards errors, stop_cv waits
  std::condition_variable stop_cv;
  std::vector<std::string> errors;
  // (key index, value index) pairs some stream sends; set before start.
  std::vector<std::pair<int, int>> sent_slices;
  std::vector<std::pair<int, int>> report_slices;  // what reports pick from

  void Fail(std::string message) {
    {
      std::lock_guard<std::mutex> lock(mu);
      errors.push_back(std::move(message));
    }
    failed = true;
    RequestStop();
  }
  void RequestStop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    stop_cv.notify_all();
  }
  // A stream thread is done (its --events-per-stream sent, or failed);
  // the last one ends the run.
  void WorkerDone() {
    if (--workers_running == 0) RequestStop();
  }
  // Sleeps until `until` or a stop; false on stop.
  bool SleepUntil(Clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu);
    return !stop_cv.wait_until(lock, until, [&] { return stop.load(); });
  }

  // Event time of the i-th event of the run: a synthetic clock of
  // events_per_sim_second, never ahead of the wall clock (the server
  // rejects event times far in the future).
  int64_t EventTimeMs(uint64_t seq, int64_t wall_ms) const {
    const int64_t t = opt.event_time_start_ms +
                      static_cast<int64_t>(seq * 1000 / opt.events_per_sim_second);
    return std::min(t, wall_ms);
  }
};

void SetTimestampMs(int64_t ms, google::protobuf::Timestamp* ts) {
  ts->set_seconds(ms / 1000);
  ts->set_nanos(static_cast<int32_t>((ms % 1000) * 1'000'000));
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per stream
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// The events of stream `index`'s pool come from this source, in order
// (StreamWorker; LabelWorker replays it for the scores).
EventSource StreamSource(const Options& opt, const SliceUniverse& u, int index) {
  return EventSource(0x5eed0000ull + static_cast<uint64_t>(index), opt.categorical,
                     opt.slice_tuples, u);
}

// Event `i` of pooled batch `b`, drawn next from `source`.
SyntheticEvent NextPoolEvent(EventSource* source, const Options& opt, const SliceUniverse& u, int b,
                             int i) {
  // Every 8th event walks the tuple list: a pool of >= 8 x 947 events
  // holds every slice value.
  const int64_t k = static_cast<int64_t>(b) * opt.batch + i;
  const int forced = k % 8 == 0 ? static_cast<int>(k / 8) : -1;
  return source->Next(u, forced);
}

// One client stream thread: pre-generated pool, reused messages.
class StreamWorker {
 public:
  StreamWorker(Shared* shared, int index) : s_(*shared), index_(index) {
    const Options& opt = s_.opt;
    prefix_ = absl::StrCat(s_.run_id, "-", index, "-");
    EventSource source = StreamSource(opt, s_.universe, index);
    for (int b = 0; b < opt.pool; ++b) {
      std::vector<SyntheticEvent> events;
      events.reserve(opt.batch);
      for (int i = 0; i < opt.batch; ++i) {
        events.push_back(NextPoolEvent(&source, opt, s_.universe, b, i));
        for (int key = 0; key < 3; ++key) seen_[key].insert(events.back().slice[key]);
      }
      pool_.push_back(BuildBatch(opt, s_.universe, events));
      if (opt.drift_after_s >= 0) {
        for (SyntheticEvent& e : events) e = Drifted(e);
        drifted_pool_.push_back(BuildBatch(opt, s_.universe, events));
      }
    }
  }

  // Mean distinct slice tuples per pooled batch (columnar dictionary size).
  double MeanSliceTuples() const {
    double total = 0;
    for (const v1::PredictionBatch& b : pool_) total += b.columns().slice_dictionary_size();
    return total / static_cast<double>(pool_.size());
  }

  // Slice values (index per key) present in this stream's pool.
  const std::array<std::set<int>, 3>& seen() const { return seen_; }

  void Run() {
    const Options& opt = s_.opt;
    std::unique_ptr<v1::Ingest::Stub> stub;
    if (!opt.dry_run) stub = v1::Ingest::NewStub(MakeChannel(opt.target));
    const double stream_rate = opt.rate > 0 ? opt.rate / opt.streams : 0;
    uint64_t my_events = 0;
    uint64_t sends = 0;
    std::string scratch;  // dry run: serialized bytes
    const uint64_t limit = static_cast<uint64_t>(opt.events_per_stream);  // 0: none
    auto more = [&] { return !s_.stop && (limit == 0 || my_events < limit); };
    while (more()) {
      std::unique_ptr<grpc::ClientContext> ctx;
      std::unique_ptr<grpc::ClientWriter<v1::PredictionBatch>> writer;
      v1::IngestAck ack;
      if (!opt.dry_run) {
        ctx = std::make_unique<grpc::ClientContext>();
        ctx->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(opt.rpc_deadline_s));
        writer = stub->StreamPredictions(ctx.get(), &ack);
      }
      bool broken = false;
      for (int m = 0; m < opt.messages_per_stream && more(); ++m) {
        if (stream_rate > 0) {
          const auto due = s_.start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(my_events / stream_rate));
          if (due > Clock::now() && !s_.SleepUntil(due)) break;
        }
        const bool drifted = opt.drift_after_s >= 0 &&
                             Seconds(Clock::now() - s_.start) >= opt.drift_after_s;
        v1::PredictionBatch& batch = (drifted ? drifted_pool_ : pool_)[sends % pool_.size()];
        Stamp(&batch);
        ++sends;
        size_t bytes = 0;
        if (opt.dry_run) {
          batch.SerializeToString(&scratch);
          bytes = scratch.size();
        } else {
          if (!writer->Write(batch)) {
            broken = true;
            break;
          }
          bytes = static_cast<size_t>(batch.GetCachedSize());  // set by Write's serialization
        }
        my_events += opt.batch;
        s_.sent_events += opt.batch;
        s_.sent_bytes += bytes;
        ++s_.sent_messages;
      }
      if (opt.dry_run) continue;
      if (!broken) writer->WritesDone();
      const grpc::Status status = writer->Finish();
      if (!status.ok()) {
        s_.Fail(absl::StrCat("stream ", index_, ": StreamPredictions failed: ",
                             static_cast<int>(status.error_code()), " ",
                             status.error_message()));
        return;
      }
      ++s_.streams_done;
      s_.accepted += ack.accepted();
      s_.duplicates += ack.duplicates();
      s_.rejected += ack.rejected();
      s_.late_accepted += ack.late_accepted();
      if (ack.rejected() > 0 || ack.duplicates() > 0) {
        std::string reasons;
        for (const v1::RejectReason& r : ack.reasons()) {
          absl::StrAppend(&reasons, " ", r.reason(), "=", r.count(), " (", r.message(), ")");
        }
        s_.Fail(absl::StrCat("stream ", index_, ": ack reports rejected=", ack.rejected(),
                             " duplicates=", ack.duplicates(), reasons));
        return;
      }
    }
  }

 private:
  // Rewrites ids and event times of a pooled batch for this send.
  void Stamp(v1::PredictionBatch* batch) {
    const int n = s_.opt.batch;
    const uint64_t seq = s_.event_seq.fetch_add(n);
    const int64_t wall = WallMs();
    int64_t last = 0;
    if (batch->has_rows()) {
      auto* events = batch->mutable_rows()->mutable_events();
      for (int i = 0; i < n; ++i) {
        v1::PredictionEvent* e = events->Mutable(i);
        WriteId(prefix_, counter_++, e->mutable_event_id());
        last = s_.EventTimeMs(seq + i, wall);
        e->set_event_time_ms(last);
      }
    } else {
      v1::ColumnarBatch* c = batch->mutable_columns();
      auto* ids = c->mutable_event_ids();
      int64_t* times = c->mutable_event_time_ms()->mutable_data();
      for (int i = 0; i < n; ++i) {
        WriteId(prefix_, counter_++, ids->Mutable(i));
        last = s_.EventTimeMs(seq + i, wall);
        times[i] = last;
      }
    }
    int64_t prev = s_.max_event_time_ms.load();
    while (last > prev && !s_.max_event_time_ms.compare_exchange_weak(prev, last)) {
    }
  }

  Shared& s_;
  const int index_;
  std::string prefix_;
  uint64_t counter_ = 0;
  std::vector<v1::PredictionBatch> pool_;
  std::vector<v1::PredictionBatch> drifted_pool_;
  std::array<std::set<int>, 3> seen_;
};

// A deterministic uniform in [0, 1) from a 64-bit key (splitmix64).
double UnitHash(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

// --labels: one Ingest.StreamLabels client thread. It labels the event ids
// prediction stream `index` of run --run-id sent, "<run>-<index>-<counter>"
// for counter 0, 1, ... (--events-per-stream of them), in LabelBatch
// messages of --batch labels; the one message is reused and only ids,
// values and the label time (the wall clock) are rewritten per send. A
// label is 1 with probability the prediction's score: the worker replays
// stream `index`'s pool (same seed, --batch, --pool, --categorical,
// --slice-tuples) for the scores, so the labels are calibrated and AUC is
// meaningful (not with --drift-after, whose scores it does not replay).
class LabelWorker {
 public:
  LabelWorker(Shared* shared, int index) : s_(*shared), index_(index) {
    const Options& opt = s_.opt;
    prefix_ = absl::StrCat(s_.run_id, "-", index, "-");
    EventSource source = StreamSource(opt, s_.universe, index);
    scores_.reserve(static_cast<size_t>(opt.pool) * opt.batch);
    for (int b = 0; b < opt.pool; ++b) {
      for (int i = 0; i < opt.batch; ++i) {
        scores_.push_back(NextPoolEvent(&source, opt, s_.universe, b, i).score);
      }
    }
    batch_.mutable_model()->set_model_id(opt.model);
    batch_.mutable_model()->set_model_version(opt.version);
    const std::string placeholder(40, '0');  // capacity for any id of the run
    for (int i = 0; i < opt.batch; ++i) {
      v1::Label* label = batch_.add_labels();
      label->set_event_id(placeholder);
      label->set_label_time_ms(1);
    }
  }

  void Run() {
    const Options& opt = s_.opt;
    std::unique_ptr<v1::Ingest::Stub> stub;
    if (!opt.dry_run) stub = v1::Ingest::NewStub(MakeChannel(opt.target));
    const double stream_rate = opt.rate > 0 ? opt.rate / opt.streams : 0;
    const uint64_t limit = static_cast<uint64_t>(opt.events_per_stream);  // 0: none
    auto more = [&] { return !s_.stop && (limit == 0 || next_ < limit); };
    std::string scratch;  // dry run: serialized bytes
    while (more()) {
      std::unique_ptr<grpc::ClientContext> ctx;
      std::unique_ptr<grpc::ClientWriter<v1::LabelBatch>> writer;
      v1::LabelAck ack;
      if (!opt.dry_run) {
        ctx = std::make_unique<grpc::ClientContext>();
        ctx->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(opt.rpc_deadline_s));
        writer = stub->StreamLabels(ctx.get(), &ack);
      }
      bool broken = false;
      for (int m = 0; m < opt.messages_per_stream && more(); ++m) {
        if (stream_rate > 0) {
          const auto due = s_.start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(next_ / stream_rate));
          if (due > Clock::now() && !s_.SleepUntil(due)) break;
        }
        const uint64_t n = limit == 0 ? opt.batch : std::min<uint64_t>(opt.batch, limit - next_);
        Stamp(static_cast<int>(n));
        size_t bytes = 0;
        if (opt.dry_run) {
          batch_.SerializeToString(&scratch);
          bytes = scratch.size();
        } else {
          if (!writer->Write(batch_)) {
            broken = true;
            break;
          }
          bytes = static_cast<size_t>(batch_.GetCachedSize());  // set by Write's serialization
        }
        s_.sent_events += n;
        s_.sent_bytes += bytes;
        ++s_.sent_messages;
      }
      if (opt.dry_run) continue;
      if (!broken) writer->WritesDone();
      const grpc::Status status = writer->Finish();
      if (!status.ok()) {
        s_.Fail(absl::StrCat("label stream ", index_, ": StreamLabels failed: ",
                             static_cast<int>(status.error_code()), " ", status.error_message()));
        return;
      }
      ++s_.streams_done;
      s_.joined += ack.joined();
      s_.pending += ack.pending();
      s_.duplicates += ack.duplicates();
      s_.conflicting += ack.conflicting();
      s_.not_sampled += ack.not_sampled();
      s_.orphan += ack.orphan();
      s_.rejected += ack.rejected();
      if (ack.rejected() > 0) {
        std::string reasons;
        for (const v1::RejectReason& r : ack.reasons()) {
          absl::StrAppend(&reasons, " ", r.reason(), "=", r.count(), " (", r.message(), ")");
        }
        s_.Fail(absl::StrCat("label stream ", index_, ": ack reports rejected=", ack.rejected(),
                             reasons));
        return;
      }
    }
  }

 private:
  // Rewrites the first `n` labels (and drops the rest: the last, short batch).
  void Stamp(int n) {
    auto* labels = batch_.mutable_labels();
    if (n < labels->size()) labels->DeleteSubrange(n, labels->size() - n);
    const int64_t now = WallMs();
    const uint64_t salt = static_cast<uint64_t>(index_) << 48;
    for (int i = 0; i < n; ++i) {
      v1::Label* label = labels->Mutable(i);
      const uint64_t counter = next_ + static_cast<uint64_t>(i);
      WriteId(prefix_, counter, label->mutable_event_id());
      const double score = scores_[counter % scores_.size()];
      label->set_value(UnitHash(salt ^ counter) < score ? 1.0 : 0.0);
      label->set_label_time_ms(now);
    }
    next_ += static_cast<uint64_t>(n);
  }

  Shared& s_;
  const int index_;
  std::string prefix_;
  uint64_t next_ = 0;           // the next counter to label
  std::vector<double> scores_;  // of the pool's events, in send order
  v1::LabelBatch batch_;
};

// Issues GetDriftReport for random slices at a fixed rate, recording latency.
class ReportWorker {
 public:
  explicit ReportWorker(Shared* shared) : s_(*shared) {}

  void Run(int64_t window_s) {
    const Options& opt = s_.opt;
    auto stub = v1::Reports::NewStub(MakeChannel(opt.target));
    std::mt19937_64 rng(99);
    const auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / opt.report_qps));
    auto next = Clock::now();
    while (s_.SleepUntil(next)) {
      next += period;
      v1::GetDriftReportRequest request;
      request.mutable_model()->set_model_id(opt.model);
      request.mutable_model()->set_model_version(opt.version);
      request.mutable_window()->set_last_seconds(window_s);
      request.set_baseline("default");
      // --report-slices N: uniform over the population and N-1 key=value
      // slices. Otherwise one in 8 the whole population, else key=value,
      // uniform over the values the streams send.
      const std::vector<std::pair<int, int>>& slices = s_.report_slices;
      const size_t pick = opt.report_slices > 0 ? rng() % (slices.size() + 1)
                                                : rng() % (slices.size() * 8 / 7 + 1);
      if (pick < slices.size()) {
        const auto [k, v] = slices[pick];
        (*request.mutable_slice()->mutable_values())[s_.universe.keys[k]] =
            s_.universe.values[k][v];
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::DriftReport report;
      const auto t0 = Clock::now();
      const grpc::Status status = stub->GetDriftReport(&ctx, request, &report);
      const double ms = Seconds(Clock::now() - t0) * 1e3;
      std::lock_guard<std::mutex> lock(mu_);
      if (status.ok()) {
        latencies_ms_.push_back(ms);
      } else {
        ++errors_;
        if (first_error_.empty()) {
          first_error_ = absl::StrCat(static_cast<int>(status.error_code()), " ",
                                      status.error_message());
        }
      }
    }
  }

  struct Summary {
    size_t count = 0;
    size_t errors = 0;
    std::string first_error;
    double p50 = 0, p90 = 0, p99 = 0, max = 0;
  };
  Summary Summarise() {
    std::lock_guard<std::mutex> lock(mu_);
    Summary out;
    out.count = latencies_ms_.size();
    out.errors = errors_;
    out.first_error = first_error_;
    std::vector<double> v = latencies_ms_;
    std::sort(v.begin(), v.end());
    auto q = [&](double p) {
      return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
    };
    out.p50 = q(0.5);
    out.p90 = q(0.9);
    out.p99 = q(0.99);
    out.max = v.empty() ? 0 : v.back();
    return out;
  }

 private:
  Shared& s_;
  std::mutex mu_;
  std::vector<double> latencies_ms_;  // guarded by mu_
  size_t errors_ = 0;                 // guarded by mu_
  std::string first_error_;           // guarded by mu_
};

bool RegisterModel(const Shared& s) {
  auto stub = v1::Models::NewStub(MakeChannel(s.opt.target));
  v1::RegisterModelRequest request;
  *request.mutable_schema() = MakeSchema(s.opt, s.universe);
  v1::RegisterModelResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status = stub->RegisterModel(&ctx, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "RegisterModel failed: %d %s\n", static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    return false;
  }
  std::fprintf(stderr, "model %s@%s %s\n", s.opt.model.c_str(), s.opt.version.c_str(),
               response.created() ? "registered" : "already registered (identical schema)");
  return true;
}

// A pinned_range baseline "default" over the event times sent so far.
bool CreateBaseline(Shared& s) {
  auto stub = v1::Models::NewStub(MakeChannel(s.opt.target));
  v1::CreateBaselineRequest request;
  request.mutable_model()->set_model_id(s.opt.model);
  request.mutable_model()->set_model_version(s.opt.version);
  v1::BaselineSpec* spec = request.mutable_baseline();
  spec->set_name("default");
  const int64_t end_ms = s.max_event_time_ms.load() + 1;
  SetTimestampMs(s.opt.event_time_start_ms, spec->mutable_pinned_range()->mutable_start());
  SetTimestampMs(end_ms, spec->mutable_pinned_range()->mutable_end());
  v1::Baseline response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status = stub->CreateBaseline(&ctx, request, &response);
  if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    std::fprintf(stderr, "baseline \"default\" already exists; keeping it\n");
    return true;
  }
  if (!status.ok()) {
    s.Fail(absl::StrCat("CreateBaseline failed: ", static_cast<int>(status.error_code()), " ",
                        status.error_message()));
    return false;
  }
  std::fprintf(stderr, "baseline \"default\" pinned to event time [%lld, %lld) ms\n",
               static_cast<long long>(s.opt.event_time_start_ms),
               static_cast<long long>(end_ms));
  return true;
}

// --labels: LabelWorkers on every stream until each has sent its
// --events-per-stream labels (or --duration passes), progress every 5 s,
// then the summary: labels/s up to the last ack and the acks by result.
int RunLabelLoad(Shared* shared) {
  const Options& opt = shared->opt;
  const auto gen_started = Clock::now();
  std::vector<std::unique_ptr<LabelWorker>> workers;
  for (int i = 0; i < opt.streams; ++i) {
    workers.push_back(std::make_unique<LabelWorker>(shared, i));
  }
  std::fprintf(stderr,
               "run %s: labels, batch %d, %d streams, %lld labels per stream, %.1f s to "
               "pre-generate\n",
               shared->run_id.c_str(), opt.batch, opt.streams,
               static_cast<long long>(opt.events_per_stream), Seconds(Clock::now() - gen_started));

  const double cpu0 = CpuSeconds();
  shared->start = Clock::now();
  shared->workers_running = opt.streams;
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&w, shared] {
      w->Run();
      shared->WorkerDone();
    });
  }
  const auto deadline = shared->start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(opt.duration_s));
  auto next_progress = shared->start + std::chrono::seconds(5);
  uint64_t last_sent = 0;
  auto last_time = shared->start;
  auto acked = [&] {
    return shared->joined.load() + shared->pending.load() + shared->duplicates.load() +
           shared->conflicting.load() + shared->not_sampled.load() + shared->orphan.load() +
           shared->rejected.load();
  };
  while (shared->SleepUntil(std::min(deadline, next_progress))) {
    const auto now = Clock::now();
    if (now >= next_progress) {
      const uint64_t sent = shared->sent_events.load();
      std::fprintf(stderr, "[%5.1f s] sent %llu labels, %.0f labels/s; acked %llu\n",
                   Seconds(now - shared->start), static_cast<unsigned long long>(sent),
                   (sent - last_sent) / Seconds(now - last_time),
                   static_cast<unsigned long long>(acked()));
      last_sent = sent;
      last_time = now;
      next_progress += std::chrono::seconds(5);
    }
    if (now >= deadline) break;
  }
  shared->RequestStop();
  const auto send_end = Clock::now();
  for (auto& t : threads) t.join();
  const auto end = Clock::now();
  const double cpu = CpuSeconds() - cpu0;

  const double elapsed = Seconds(end - shared->start);
  const uint64_t sent = shared->sent_events.load();
  const uint64_t total_acked = acked();
  const double labels_per_s = (opt.dry_run ? sent : total_acked) / elapsed;
  const double mb_per_s = shared->sent_bytes.load() / elapsed / 1e6;
  const double cpu_ns = sent > 0 ? cpu / sent * 1e9 : 0;
  const double bytes_per_label =
      sent > 0 ? static_cast<double>(shared->sent_bytes.load()) / sent : 0;
  const bool ok =
      !shared->failed && (opt.dry_run || (total_acked == sent && shared->rejected == 0));
  for (const std::string& e : shared->errors) std::fprintf(stderr, "ERROR: %s\n", e.c_str());
  if (!opt.dry_run && total_acked != sent && !shared->failed) {
    std::fprintf(stderr, "ERROR: sent %llu labels but acks account for %llu\n",
                 static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(total_acked));
  }
  auto u = [](const std::atomic<uint64_t>& x) { return static_cast<unsigned long long>(x.load()); };
  if (opt.json) {
    std::printf(
        "{\"mode\":\"labels\",\"run_id\":\"%s\",\"dry_run\":%s,\"batch\":%d,\"streams\":%d,"
        "\"messages_per_stream\":%d,\"events_per_stream\":%lld,\"duration_s\":%.3f,"
        "\"drain_s\":%.3f,\"labels_sent\":%llu,\"labels_per_s\":%.0f,\"joined\":%llu,"
        "\"pending\":%llu,\"duplicates\":%llu,\"conflicting\":%llu,\"not_sampled\":%llu,"
        "\"orphan\":%llu,\"rejected\":%llu,\"streams_completed\":%llu,"
        "\"wire_bytes_per_label\":%.1f,\"wire_mb_per_s\":%.1f,\"client_cpu_s\":%.3f,"
        "\"client_cpu_ns_per_label\":%.1f,\"ok\":%s}\n",
        shared->run_id.c_str(), opt.dry_run ? "true" : "false", opt.batch, opt.streams,
        opt.messages_per_stream, static_cast<long long>(opt.events_per_stream), elapsed,
        Seconds(end - send_end), static_cast<unsigned long long>(sent), labels_per_s,
        u(shared->joined), u(shared->pending), u(shared->duplicates), u(shared->conflicting),
        u(shared->not_sampled), u(shared->orphan), u(shared->rejected), u(shared->streams_done),
        bytes_per_label, mb_per_s, cpu, cpu_ns, ok ? "true" : "false");
  } else {
    std::printf("labels%s, run %s, batch %d, %d streams, %d messages/stream\n",
                opt.dry_run ? " (dry run)" : "", shared->run_id.c_str(), opt.batch, opt.streams,
                opt.messages_per_stream);
    std::printf("  labels sent      %llu in %.2f s (last acks %.2f s after the sends ended)\n",
                static_cast<unsigned long long>(sent), elapsed, Seconds(end - send_end));
    std::printf("  labels/s         %.0f%s\n", labels_per_s,
                opt.dry_run ? " (generated)" : " (acked)");
    std::printf(
        "  acks             joined %llu, pending %llu, duplicates %llu, conflicting %llu, "
        "not sampled %llu, orphan %llu, rejected %llu, %llu streams\n",
        u(shared->joined), u(shared->pending), u(shared->duplicates), u(shared->conflicting),
        u(shared->not_sampled), u(shared->orphan), u(shared->rejected), u(shared->streams_done));
    std::printf("  wire             %.1f MB/s, %.1f B/label\n", mb_per_s, bytes_per_label);
    std::printf("  client CPU       %.2f s, %.1f ns/label (all client threads)\n", cpu, cpu_ns);
    std::printf("  result           %s\n", ok ? "OK" : "FAILED");
  }
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  auto shared = std::make_unique<Shared>();
  Options& opt = shared->opt;
  CLI::App app{"driftwatch_loadgen: synthetic prediction (or label) traffic for driftwatchd"};
  app.add_option("--target", opt.target, "driftwatchd gRPC address HOST:PORT");
  app.add_option("--model", opt.model, "model id");
  app.add_option("--version", opt.version, "model version");
  app.add_flag("--register", opt.do_register,
               "register the model first (20 numeric features, 1 score, 3 slice keys)");
  app.add_option("--categorical", opt.categorical, "categorical features c0.. (20 values each)")
      ->check(CLI::Range(0, 100));
  app.add_option("--mode", opt.mode, "batch layout")->check(CLI::IsMember({"row", "columnar"}));
  app.add_option("--batch", opt.batch, "events per message")->check(CLI::Range(1, 1'000'000));
  app.add_option("--streams", opt.streams, "concurrent client streams (one thread each)")
      ->check(CLI::Range(1, 256));
  app.add_option("--messages-per-stream", opt.messages_per_stream,
                 "messages before a stream is ended and its ack awaited")
      ->check(CLI::Range(1, 1'000'000'000));
  app.add_option("--duration", opt.duration_s, "seconds to send for")
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--rate", opt.rate, "events/s over all streams; 0 = as fast as possible")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--drift-after", opt.drift_after_s,
                 "after this many seconds, platform=android events drift (+1.5 sd)");
  app.add_option("--event-time-start", opt.event_time_start_ms,
                 "first event time, Unix ms (default: now - 6 h)");
  app.add_option("--events-per-sim-second", opt.events_per_sim_second,
                 "synthetic event clock: events per simulated second (capped at wall time)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}));
  app.add_option("--report-qps", opt.report_qps, "GetDriftReport calls per second; 0 = none")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--report-slices", opt.report_slices,
                 "reports pick from the population and N-1 slices (round robin over the keys, "
                 "most frequent values first); 0 = every slice value sent")
      ->check(CLI::Range(0, 100000));
  app.add_option("--report-window", opt.report_window, "report window: 24h, 30m, 3600s");
  app.add_flag("--baseline", opt.baseline,
               "after --baseline-after s, create a pinned_range baseline \"default\"");
  app.add_option("--baseline-after", opt.baseline_after_s, "warm-up before the baseline, s")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--pool", opt.pool, "pre-generated batches per stream")
      ->check(CLI::Range(1, 1024));
  app.add_option("--slice-tuples", opt.slice_tuples,
                 "distinct (platform, country, app_version) tuples, Zipf-weighted; "
                 "0 = keys drawn independently")
      ->check(CLI::Range(0, 1'000'000));
  app.add_flag("--dry-run", opt.dry_run, "no server: only stamp and serialize batches");
  app.add_flag("--json", opt.json, "print the summary as one JSON object on stdout");
  app.add_flag("--labels", opt.labels,
               "stream labels (Ingest.StreamLabels) for the ids of an earlier prediction run "
               "with the same --run-id, --streams, --batch and --events-per-stream");
  app.add_option("--run-id", opt.run_id,
                 "event ids are <run>-<stream>-<counter>; default: a fresh run id "
                 "(--labels: required, the prediction run's)");
  app.add_option("--events-per-stream", opt.events_per_stream,
                 "events (or labels) each stream sends, then it ends; 0 = until --duration "
                 "(predictions: a multiple of --batch)")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000'000}));
  app.add_option("--label-join-rate", opt.label_join_rate,
                 "--register: the model's label_join_rate (binary labels); 0 = no label kind, "
                 "so predictions keep no join state")
      ->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);

  const int64_t window_s = ParseDurationSeconds(opt.report_window);
  if (window_s <= 0) {
    std::fprintf(stderr, "--report-window: cannot parse \"%s\"\n", opt.report_window.c_str());
    return 2;
  }
  if (opt.event_time_start_ms == 0) opt.event_time_start_ms = WallMs() - 6 * 3600 * 1000;
  if (opt.labels && opt.run_id.empty() && !opt.dry_run) {
    std::fprintf(stderr, "--labels needs --run-id: the run id of the prediction run to label\n");
    return 2;
  }
  if (!opt.labels && opt.events_per_stream % opt.batch != 0) {
    std::fprintf(stderr, "--events-per-stream must be a multiple of --batch (%d)\n", opt.batch);
    return 2;
  }
  if (opt.run_id.find('-') != std::string::npos || opt.run_id.size() > 24) {
    std::fprintf(stderr, "--run-id: at most 24 characters and no '-'\n");
    return 2;
  }
  shared->run_id = !opt.run_id.empty() ? opt.run_id
                                       : absl::StrCat(absl::Hex(static_cast<uint32_t>(
                                             WallMs() ^ (static_cast<int64_t>(getpid()) << 20))));
  opt.rpc_deadline_s = static_cast<int64_t>(opt.duration_s) + 120;

  if (!opt.dry_run && opt.do_register && !RegisterModel(*shared)) return 1;
  if (opt.labels) return RunLabelLoad(shared.get());

  const auto gen_started = Clock::now();
  std::vector<std::unique_ptr<StreamWorker>> workers;
  for (int i = 0; i < opt.streams; ++i) {
    workers.push_back(std::make_unique<StreamWorker>(shared.get(), i));
  }
  std::fprintf(stderr,
               "run %s: %s mode, batch %d, %d streams, pool %d, %.1f s to pre-generate",
               shared->run_id.c_str(), opt.mode.c_str(), opt.batch, opt.streams, opt.pool,
               Seconds(Clock::now() - gen_started));
  std::array<std::set<int>, 3> seen;
  for (const auto& w : workers) {
    for (int k = 0; k < 3; ++k) seen[k].insert(w->seen()[k].begin(), w->seen()[k].end());
  }
  for (int k = 0; k < 3; ++k) {
    for (int v : seen[k]) shared->sent_slices.emplace_back(k, v);
  }
  shared->report_slices = shared->sent_slices;
  if (opt.report_slices > 0) {
    // Value indices are drawn head-heavy, so the lowest are the busiest.
    shared->report_slices.clear();
    std::array<std::set<int>::const_iterator, 3> next;
    for (int k = 0; k < 3; ++k) next[k] = seen[k].begin();
    for (int k = 0; shared->report_slices.size() + 1 < static_cast<size_t>(opt.report_slices);
         k = (k + 1) % 3) {
      if (next[0] == seen[0].end() && next[1] == seen[1].end() && next[2] == seen[2].end()) break;
      if (next[k] != seen[k].end()) shared->report_slices.emplace_back(k, *next[k]++);
    }
  }
  std::fprintf(stderr, ", %zu of %zu slice values", shared->sent_slices.size(),
               shared->universe.total());
  if (opt.mode == "columnar") {
    std::fprintf(stderr, ", %.0f distinct slice tuples per batch", workers[0]->MeanSliceTuples());
  }
  std::fprintf(stderr, "\n");
  if (opt.events_per_stream > 0) {
    std::fprintf(stderr,
                 "label these events with: --labels --run-id %s --streams %d --batch %d "
                 "--pool %d --categorical %d --slice-tuples %d --events-per-stream %lld\n",
                 shared->run_id.c_str(), opt.streams, opt.batch, opt.pool, opt.categorical,
                 opt.slice_tuples, static_cast<long long>(opt.events_per_stream));
  }

  const double cpu0 = CpuSeconds();
  shared->start = Clock::now();
  std::vector<std::thread> threads;
  shared->workers_running = opt.streams;
  for (auto& w : workers) {
    threads.emplace_back([&w, s = shared.get()] {
      w->Run();
      s->WorkerDone();
    });
  }

  ReportWorker reports(shared.get());
  std::thread report_thread;
  const bool want_reports = opt.report_qps > 0 && !opt.dry_run;
  bool baseline_done = !opt.baseline || opt.dry_run;
  if (want_reports && baseline_done) report_thread = std::thread([&] { reports.Run(window_s); });

  // Main thread: progress every 5 s, the baseline, the deadline.
  const auto deadline = shared->start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(opt.duration_s));
  const auto baseline_at = shared->start + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(opt.baseline_after_s));
  auto next_progress = shared->start + std::chrono::seconds(5);
  uint64_t last_events = 0;
  auto last_time = shared->start;
  while (true) {
    auto wake = std::min(deadline, next_progress);
    if (!baseline_done) wake = std::min(wake, baseline_at);
    if (!shared->SleepUntil(wake)) break;
    const auto now = Clock::now();
    if (!baseline_done && now >= baseline_at) {
      baseline_done = true;
      if (CreateBaseline(*shared) && want_reports) {
        report_thread = std::thread([&] { reports.Run(window_s); });
      }
    }
    if (now >= next_progress) {
      const uint64_t events = shared->sent_events.load();
      std::fprintf(stderr, "[%5.1f s] sent %llu events, %.0f events/s; acked %llu\n",
                   Seconds(now - shared->start), static_cast<unsigned long long>(events),
                   (events - last_events) / Seconds(now - last_time),
                   static_cast<unsigned long long>(shared->accepted.load()));
      last_events = events;
      last_time = now;
      next_progress += std::chrono::seconds(5);
    }
    if (now >= deadline) break;
  }
  shared->RequestStop();
  const auto send_end = Clock::now();
  for (auto& t : threads) t.join();
  const auto end = Clock::now();
  if (report_thread.joinable()) report_thread.join();
  const double cpu = CpuSeconds() - cpu0;

  // Summary. Throughput counts up to the last ack (durable on the server).
  const double elapsed = Seconds(end - shared->start);
  const uint64_t sent = shared->sent_events.load();
  const uint64_t acked = shared->accepted.load();
  const double events_per_s = (opt.dry_run ? sent : acked) / elapsed;
  const double mb_per_s = shared->sent_bytes.load() / elapsed / 1e6;
  const double cpu_ns_per_event = sent > 0 ? cpu / sent * 1e9 : 0;
  const double bytes_per_event = sent > 0 ? static_cast<double>(shared->sent_bytes.load()) / sent : 0;
  ReportWorker::Summary rep = reports.Summarise();
  const bool ok = !shared->failed && rep.errors == 0 &&
                  (opt.dry_run || (acked == sent && shared->duplicates == 0 &&
                                   shared->rejected == 0));
  for (const std::string& e : shared->errors) std::fprintf(stderr, "ERROR: %s\n", e.c_str());
  if (rep.errors > 0) {
    std::fprintf(stderr, "ERROR: %zu GetDriftReport calls failed, first: %s\n", rep.errors,
                 rep.first_error.c_str());
  }
  if (!opt.dry_run && acked != sent && !shared->failed) {
    std::fprintf(stderr, "ERROR: sent %llu events but acks account for %llu\n",
                 static_cast<unsigned long long>(sent), static_cast<unsigned long long>(acked));
  }

  if (opt.json) {
    std::printf(
        "{\"mode\":\"%s\",\"run_id\":\"%s\",\"dry_run\":%s,\"batch\":%d,\"streams\":%d,"
        "\"messages_per_stream\":%d,\"events_per_stream\":%lld,"
        "\"duration_s\":%.3f,\"drain_s\":%.3f,\"events_sent\":%llu,\"events_per_s\":%.0f,"
        "\"accepted\":%llu,\"late_accepted\":%llu,\"duplicates\":%llu,\"rejected\":%llu,"
        "\"streams_completed\":%llu,\"wire_bytes_per_event\":%.1f,\"wire_mb_per_s\":%.1f,"
        "\"client_cpu_s\":%.3f,\"client_cpu_ns_per_event\":%.1f,"
        "\"reports\":{\"ok\":%zu,\"errors\":%zu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"max_ms\":%.3f},\"ok\":%s}\n",
        opt.mode.c_str(), shared->run_id.c_str(), opt.dry_run ? "true" : "false", opt.batch,
        opt.streams, opt.messages_per_stream, static_cast<long long>(opt.events_per_stream),
        elapsed, Seconds(end - send_end), static_cast<unsigned long long>(sent), events_per_s,
        static_cast<unsigned long long>(acked),
        static_cast<unsigned long long>(shared->late_accepted.load()),
        static_cast<unsigned long long>(shared->duplicates.load()),
        static_cast<unsigned long long>(shared->rejected.load()),
        static_cast<unsigned long long>(shared->streams_done.load()), bytes_per_event, mb_per_s,
        cpu, cpu_ns_per_event, rep.count, rep.errors, rep.p50, rep.p90, rep.p99, rep.max,
        ok ? "true" : "false");
  } else {
    std::printf("mode %s%s, run %s, batch %d, %d streams, %d messages/stream\n", opt.mode.c_str(),
                opt.dry_run ? " (dry run)" : "", shared->run_id.c_str(), opt.batch, opt.streams,
                opt.messages_per_stream);
    std::printf("  events sent      %llu in %.2f s (last acks %.2f s after the deadline)\n",
                static_cast<unsigned long long>(sent), elapsed, Seconds(end - send_end));
    std::printf("  events/s         %.0f%s\n", events_per_s, opt.dry_run ? " (generated)" : " (acked)");
    std::printf("  acks             accepted %llu (late %llu), duplicates %llu, rejected %llu, "
                "%llu streams\n",
                static_cast<unsigned long long>(acked),
                static_cast<unsigned long long>(shared->late_accepted.load()),
                static_cast<unsigned long long>(shared->duplicates.load()),
                static_cast<unsigned long long>(shared->rejected.load()),
                static_cast<unsigned long long>(shared->streams_done.load()));
    std::printf("  wire             %.1f MB/s, %.1f B/event\n", mb_per_s, bytes_per_event);
    std::printf("  client CPU       %.2f s, %.1f ns/event (all client threads)\n", cpu,
                cpu_ns_per_event);
    if (want_reports) {
      std::printf("  reports          %zu ok, %zu failed; p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
                  "max %.2f ms\n",
                  rep.count, rep.errors, rep.p50, rep.p90, rep.p99, rep.max);
    }
    std::printf("  result           %s\n", ok ? "OK" : "FAILED");
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
