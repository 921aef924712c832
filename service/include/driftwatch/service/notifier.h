// The notification relay (docs/notifications.md): sends the outbox's
// pending rows (written by AlertRules in the same transaction as the alert
// changes that cause them), retries with exponential backoff and jitter
// until the row's max_age, honours Retry-After, treats a 4xx other than
// 408 / 429 as final, and marks a row delivered only after a 2xx. The
// webhook-id is the row's id on every attempt; webhook-timestamp and the
// signature are per attempt. One thread (dw-relay); a slow receiver holds
// only its own request, bounded by the receiver's timeout.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "driftwatch/alerting/notify.h"
#include "driftwatch/base/clock.h"
#include "driftwatch/storage/alert_store.h"

namespace driftwatch::service {

struct HttpResult {
  int status = 0;           // 0: no response (connect error, timeout)
  std::string error;        // transport error, when status is 0
  int64_t retry_after_ms = -1;  // Retry-After, when the response had one
};

// One POST. The relay's only I/O besides the store; tests script it.
class HttpSender {
 public:
  virtual ~HttpSender() = default;
  virtual HttpResult Post(const std::string& url, const std::vector<std::string>& headers,
                          const std::string& body, int64_t timeout_ms) = 0;
};
// libcurl: http and https only, no redirects followed, timeouts.
std::unique_ptr<HttpSender> NewCurlSender();

// What a relay attempt makes of a row: delivered, final failure, or the
// next attempt (backoff initial * 2^attempts, capped, times a jitter in
// [0.5, 1.5), at least Retry-After), failed once past max_age.
storage::OutboxRow AfterAttempt(storage::OutboxRow row, const HttpResult& result,
                                const alerting::RetryPolicy& retry, int64_t now_ms,
                                double jitter01);

struct NotifierStats {
  // Sends by (receiver, result): delivered, retried, failed, expired.
  std::map<std::pair<std::string, std::string>, uint64_t> results;
  int64_t pending = 0;
  int64_t oldest_pending_ms = 0;  // created_ms of the oldest pending row, 0: none
  std::vector<double> latencies_s;  // delivery latencies since the last Stats (created -> 2xx)
};

class Notifier {
 public:
  // Every pointer must outlive this.
  Notifier(storage::AlertStore* store, const alerting::NotificationConfig* config,
           const base::Clock* clock, std::unique_ptr<HttpSender> sender);
  ~Notifier();
  void Start();
  void Stop();
  // New rows were written: look now rather than at the next poll.
  void Wake();
  // One pass over the due rows (the thread's body; tests call it directly).
  void RunOnce();
  NotifierStats TakeStats();

 private:
  void Loop();
  void Send(storage::OutboxRow row);

  storage::AlertStore* const store_;
  const alerting::NotificationConfig* const config_;
  const base::Clock* const clock_;
  const std::unique_ptr<HttpSender> sender_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::pair<std::string, std::string>, uint64_t> results_ ABSL_GUARDED_BY(mu_);
  std::vector<double> latencies_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  uint64_t rng_ = 0x9e3779b97f4a7c15ULL;  // the relay thread's jitter
};

}  // namespace driftwatch::service
