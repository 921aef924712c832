// An in-memory storage::Store for unit tests of the ingest path: the same
// contract as the SQLite store (atomic Commit, rollups merged with the
// batch's layouts), plus a switch that makes the next commits fail.
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "driftwatch/detectors/profile.h"
#include "driftwatch/storage/store.h"

namespace driftwatch::testing {

class FakeStore : public storage::Store {
 public:

  void FailCommits(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_commits_ = n;
  }
  int commits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return commits_;
  }

  using storage::AlertStore::SaveAlerts;
  absl::Status SaveAlerts(const std::vector<storage::AlertRow>& upserts,
                          const std::vector<std::string>& deleted,
                          const storage::NotifyWrite& notify) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const storage::AlertRow& r : upserts) alerts_[r.fingerprint] = r;
    for (const std::string& fp : deleted) alerts_.erase(fp);
    for (const storage::OutboxRow& r : notify.outbox) outbox_[r.id] = r;
    if (notify.dispatcher_state) dispatcher_state_ = notify.dispatcher_state;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<storage::OutboxRow>> ReadOutbox(bool pending_only,
                                                             int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::OutboxRow> out;
    for (const auto& [id, r] : outbox_) {
      if (!pending_only || r.state == storage::OutboxRow::kPending) out.push_back(r);
    }
    // As the SQLite store orders them: due first (pending), newest first (all).
    std::sort(out.begin(), out.end(), [pending_only](const auto& a, const auto& b) {
      return pending_only ? a.next_attempt_ms < b.next_attempt_ms : a.created_ms > b.created_ms;
    });
    if (static_cast<int>(out.size()) > limit) out.resize(static_cast<size_t>(limit));
    return out;
  }
  absl::Status UpdateOutbox(const storage::OutboxRow& row) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!outbox_.contains(row.id)) return absl::NotFoundError(row.id);
    outbox_[row.id] = row;
    return absl::OkStatus();
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> OutboxDepth() override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0, oldest = 0;
    for (const auto& [id, r] : outbox_) {
      if (r.state != storage::OutboxRow::kPending) continue;
      ++n;
      if (oldest == 0 || r.created_ms < oldest) oldest = r.created_ms;
    }
    return std::pair<int64_t, int64_t>{n, oldest};
  }
  absl::StatusOr<int64_t> DeleteFinishedOutbox(int64_t) override { return 0; }
  absl::StatusOr<std::optional<std::string>> ReadDispatcherState() override {
    std::lock_guard<std::mutex> lock(mu_);
    return dispatcher_state_;
  }
  absl::StatusOr<std::vector<storage::AlertRow>> ReadAlerts() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::AlertRow> out;
    for (const auto& [fp, r] : alerts_) out.push_back(r);
    return out;
  }
  absl::Status SaveRule(const storage::RuleRow& rule) override {
    std::lock_guard<std::mutex> lock(mu_);
    rules_[rule.name] = rule;
    return absl::OkStatus();
  }
  absl::Status DeleteRule(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (rules_.erase(name) == 0) return absl::NotFoundError("no rule " + name);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<storage::RuleRow>> ReadRules() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::RuleRow> out;
    for (const auto& [name, r] : rules_) out.push_back(r);
    return out;
  }
  absl::Status SaveSilence(const storage::SilenceRow& silence) override {
    std::lock_guard<std::mutex> lock(mu_);
    silences_[silence.id] = silence;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<storage::SilenceRow>> ReadSilences() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::SilenceRow> out;
    for (const auto& [id, r] : silences_) out.push_back(r);
    return out;
  }
  absl::StatusOr<int64_t> DeleteSilencesEndedBefore(int64_t before_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (auto it = silences_.begin(); it != silences_.end();) {
      if (it->second.ends_at_ms < before_ms) {
        it = silences_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }
  absl::Status AppendSignals(int64_t t_ms, const std::vector<storage::SignalPoint>& points) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const storage::SignalPoint& p : points) {
      signals_[{p.model, p.signal, p.feature, p.slice}][t_ms] = {t_ms, p.value, p.baseline, 0};
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<storage::SignalSample>> ReadSignalSeries(
      const std::string& model, const std::string& signal, const std::string& feature,
      const std::string& slice, int64_t from_ms, int64_t to_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::SignalSample> out;
    auto it = signals_.find({model, signal, feature, slice});
    if (it == signals_.end()) return out;
    for (const auto& [t, sample] : it->second) {
      if (t >= from_ms && t < to_ms) out.push_back(sample);
    }
    return out;
  }
  absl::StatusOr<int64_t> CompactSignals(const storage::SignalRetention&, int64_t) override {
    return 0;
  }
  absl::StatusOr<storage::ModelRecord> PutModel(const storage::ModelRecord& model) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, m] : models_) {
      if (m.model_id == model.model_id && m.model_version == model.model_version) {
        if (m.schema != model.schema) return absl::AlreadyExistsError("different schema");
        return m;
      }
    }
    storage::ModelRecord r = model;
    r.model_key = static_cast<int64_t>(models_.size()) + 1;
    models_[r.model_key] = r;
    return r;
  }
  absl::StatusOr<std::vector<storage::ModelRecord>> ListModels() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::ModelRecord> out;
    for (auto& [key, m] : models_) out.push_back(m);
    return out;
  }
  absl::StatusOr<storage::ModelProgress> ReadProgress(int64_t model_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(model_key);
    if (it == models_.end()) return absl::NotFoundError("unknown model key");
    return storage::ModelProgress{it->second.watermark_ms, it->second.closed_until_ms};
  }
  absl::StatusOr<std::vector<storage::SliceRecord>> ListSlices(int64_t model_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::SliceRecord> out;
    for (auto& [k, s] : slices_) {
      if (std::get<0>(k) == model_key) out.push_back(s);
    }
    return out;
  }
  absl::Status Commit(const storage::FlushBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_commits_ > 0) {
      --fail_commits_;
      return absl::UnavailableError("injected commit failure");
    }
    // Stage on copies so that a failed merge leaves nothing applied.
    auto buckets = buckets_;
    for (const auto& row : batch.minute_upserts) buckets[Key(row)] = row;
    std::vector<storage::BucketRow> merges = batch.minute_merges;
    merges.insert(merges.end(), batch.rollups.begin(), batch.rollups.end());
    for (const auto& row : merges) {
      auto it = buckets.find(Key(row));
      if (it == buckets.end()) {
        buckets[Key(row)] = row;
      } else {
        auto layout = batch.layouts.find(row.model_key);
        if (layout == batch.layouts.end()) return absl::InvalidArgumentError("no layout");
        absl::StatusOr<std::string> merged =
            detectors::MergeSerializedProfiles(layout->second, it->second.profile, row.profile);
        if (!merged.ok()) return merged.status();
        it->second.profile = *merged;
      }
    }
    buckets_ = std::move(buckets);
    for (const auto& s : batch.new_slices) slices_[{s.model_key, s.slice_id}] = s;
    for (const auto& c : batch.dedup) dedup_.push_back(c);
    for (const auto& d : batch.drop_dedup) {
      std::erase_if(dedup_, [&](const storage::DedupChunk& c) {
        return c.model_key == d.model_key && c.bucket_start_ms == d.bucket_start_ms;
      });
    }
    for (const auto& r : batch.raw_events) raw_.emplace(std::make_pair(r.model_key, r.event_id), r);
    for (const auto& p : batch.progress) {
      auto& m = models_[p.model_key];
      m.watermark_ms = std::max(m.watermark_ms, p.watermark_ms);
      m.closed_until_ms = std::max(m.closed_until_ms, p.closed_until_ms);
    }
    for (const auto& p : batch.pending_events) pending_[{p.model_key, p.seq}] = p;
    for (int64_t model : batch.clear_pending) {
      std::erase_if(pending_, [model](const auto& kv) { return kv.first.first == model; });
    }
    for (const auto& a : batch.arrivals) {
      storage::ArrivalCounts& mine = arrivals_[{a.model_key, a.minute_start_ms}];
      mine.duplicates += a.duplicates;
      mine.too_late += a.too_late;
      mine.rejected += a.rejected;
    }
    ++commits_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<storage::PendingEventRow>> ReadPendingEvents(
      int64_t model_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::PendingEventRow> out;
    for (const auto& [key, p] : pending_) {
      if (key.first == model_key) out.push_back(p);
    }
    return out;
  }
  absl::Status UpdateResolvedEdges(int64_t model_key, const std::string& edges) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(model_key);
    if (it == models_.end()) return absl::NotFoundError("unknown model");
    it->second.resolved_edges = edges;
    return absl::OkStatus();
  }
  absl::StatusOr<storage::ArrivalCounts> ReadArrivalCounts(int64_t model_key, int64_t start_ms,
                                                           int64_t end_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    storage::ArrivalCounts out;
    out.model_key = model_key;
    out.minute_start_ms = start_ms;
    for (const auto& [key, a] : arrivals_) {
      if (key.first != model_key || key.second < start_ms || key.second >= end_ms) continue;
      out.duplicates += a.duplicates;
      out.too_late += a.too_late;
      out.rejected += a.rejected;
    }
    return out;
  }
  absl::StatusOr<std::vector<storage::BucketRow>> ReadBuckets(
      int64_t model_key, storage::Level level, int64_t start_ms, int64_t end_ms,
      const std::vector<int32_t>& slices) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::BucketRow> out;
    for (auto& [k, row] : buckets_) {
      if (row.model_key != model_key || row.level != level || row.bucket_start_ms < start_ms ||
          row.bucket_start_ms >= end_ms) {
        continue;
      }
      if (!slices.empty() && std::find(slices.begin(), slices.end(), row.slice_id) == slices.end()) {
        continue;
      }
      out.push_back(row);
    }
    return out;
  }
  absl::StatusOr<std::vector<storage::DedupChunk>> ReadDedup(int64_t model_key,
                                                             int64_t from_bucket_ms,
                                                             int64_t to_bucket_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++dedup_reads_;
    std::vector<storage::DedupChunk> out;
    for (const auto& c : dedup_) {
      if (c.model_key == model_key && c.bucket_start_ms >= from_bucket_ms &&
          c.bucket_start_ms < to_bucket_ms) {
        out.push_back(c);
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.bucket_start_ms < b.bucket_start_ms;
    });
    return out;
  }
  int dedup_reads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dedup_reads_;
  }
  // Every committed bucket row, for comparing two stores byte for byte.
  std::map<std::tuple<int64_t, int, int64_t, int32_t>, storage::BucketRow> bucket_rows() const {
    std::lock_guard<std::mutex> lock(mu_);
    return buckets_;
  }
  absl::StatusOr<std::vector<storage::RawEventRow>> ReadRawEvents(int64_t model_key, int64_t,
                                                                  int64_t, int) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::RawEventRow> out;
    for (auto& [k, r] : raw_) {
      if (r.model_key == model_key) out.push_back(r);
    }
    return out;
  }
  absl::Status PutBaseline(const storage::BaselineRecord& b) override {
    std::lock_guard<std::mutex> lock(mu_);
    baselines_[{b.model_key, b.name}] = b;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<storage::BaselineRecord>> ListBaselines(int64_t model_key) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::BaselineRecord> out;
    for (auto& [k, b] : baselines_) {
      if (b.model_key == model_key) out.push_back(b);
    }
    return out;
  }
  absl::StatusOr<int64_t> ApplyRetention(const storage::RetentionPolicy&, int64_t) override {
    return 0;
  }
  absl::StatusOr<int64_t> DeleteRawEvents(int64_t, const std::vector<std::string>&) override {
    return 0;
  }
  // The label join is tested against real SQLite (labels_test.cc); the fake
  // keeps no label state.
  absl::Status CommitLabels(const storage::LabelCommit&) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<storage::JoinChunk>> ReadJoinChunks(int64_t, int64_t, int) override {
    return std::vector<storage::JoinChunk>{};
  }
  absl::StatusOr<std::vector<storage::LabelLogRow>> ReadLabelLog(int64_t) override {
    return std::vector<storage::LabelLogRow>{};
  }
  absl::StatusOr<std::vector<storage::PendingLabelRow>> ReadPendingLabels(int64_t) override {
    return std::vector<storage::PendingLabelRow>{};
  }
  absl::StatusOr<std::vector<storage::QualityRow>> ReadQuality(int64_t, int32_t, int64_t,
                                                               int64_t) override {
    return std::vector<storage::QualityRow>{};
  }
  absl::StatusOr<storage::LabelCounts> ReadLabelCounts(int64_t, int64_t, int64_t) override {
    return storage::LabelCounts{};
  }
  absl::StatusOr<std::vector<storage::SourceLabelCounts>> ReadSourceLabelCounts(int64_t, int64_t,
                                                                                int64_t) override {
    return std::vector<storage::SourceLabelCounts>{};
  }
  absl::StatusOr<int64_t> ReadLabelProgress(int64_t) override { return 0; }

  size_t dedup_chunks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dedup_.size();
  }
  size_t raw_events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return raw_.size();
  }

 private:
  using RowKey = std::tuple<int64_t, int, int64_t, int32_t>;
  static RowKey Key(const storage::BucketRow& r) {
    return {r.model_key, static_cast<int>(r.level), r.bucket_start_ms, r.slice_id};
  }

  mutable std::mutex mu_;
  int fail_commits_ = 0;
  int commits_ = 0;
  int dedup_reads_ = 0;
  std::map<int64_t, storage::ModelRecord> models_;
  std::map<std::pair<int64_t, int32_t>, storage::SliceRecord> slices_;
  std::map<RowKey, storage::BucketRow> buckets_;
  std::vector<storage::DedupChunk> dedup_;
  std::map<std::pair<int64_t, std::string>, storage::RawEventRow> raw_;
  std::map<std::pair<int64_t, int64_t>, storage::ArrivalCounts> arrivals_;
  std::map<std::pair<int64_t, int64_t>, storage::PendingEventRow> pending_;
  std::map<std::pair<int64_t, std::string>, storage::BaselineRecord> baselines_;
  std::map<std::string, storage::AlertRow> alerts_;
  std::map<std::string, storage::RuleRow> rules_;
  std::map<std::string, storage::OutboxRow> outbox_;
  std::optional<std::string> dispatcher_state_;
  std::map<std::string, storage::SilenceRow> silences_;
  std::map<std::tuple<std::string, std::string, std::string, std::string>,
           std::map<int64_t, storage::SignalSample>>
      signals_;
};

}  // namespace driftwatch::testing
