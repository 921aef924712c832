#include "driftwatch/service/notifier.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "driftwatch/base/thread_name.h"
#include "internal/log.h"

namespace driftwatch::service {
namespace {

constexpr int kBatch = 32;
constexpr int64_t kPollMs = 1000;

// Retry-After: delay-seconds or an HTTP date.
int64_t ParseRetryAfter(std::string_view v, int64_t now_ms) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  int64_t secs = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (ec == std::errc() && p == v.data() + v.size() && secs >= 0) return secs * 1000;
  std::tm tm{};
  const std::string text(v);
  if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
    const int64_t at = static_cast<int64_t>(timegm(&tm)) * 1000;
    return std::max<int64_t>(0, at - now_ms);
  }
  return -1;
}

class CurlSender final : public HttpSender {
 public:
  CurlSender() { curl_global_init(CURL_GLOBAL_DEFAULT); }

  HttpResult Post(const std::string& url, const std::vector<std::string>& headers,
                  const std::string& body, int64_t timeout_ms) override {
    HttpResult result;
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
      result.error = "curl_easy_init failed";
      return result;
    }
    struct curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    std::string retry_after;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    // Only http(s), and no redirect is followed (to another host or not).
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(
                                                          timeout_ms, 5000)));
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "driftwatch");
    // The response body is not needed (bounded: it is dropped as it comes).
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION,
                     +[](char*, size_t size, size_t n, void*) -> size_t { return size * n; });
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &retry_after);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION,
                     +[](char* data, size_t size, size_t n, void* user) -> size_t {
                       std::string_view line(data, size * n);
                       constexpr std::string_view kName = "retry-after:";
                       if (line.size() > kName.size()) {
                         bool match = true;
                         for (size_t i = 0; i < kName.size() && match; ++i) {
                           match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
                         }
                         if (match) {
                           *static_cast<std::string*>(user) =
                               std::string(line.substr(kName.size()));
                         }
                       }
                       return size * n;
                     });
    const CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      result.status = static_cast<int>(status);
      if (!retry_after.empty()) {
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
        result.retry_after_ms = ParseRetryAfter(retry_after, now_ms);
      }
    } else {
      result.error = curl_easy_strerror(rc);
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return result;
  }
};

}  // namespace

std::unique_ptr<HttpSender> NewCurlSender() { return std::make_unique<CurlSender>(); }

storage::OutboxRow AfterAttempt(storage::OutboxRow row, const HttpResult& result,
                                const alerting::RetryPolicy& retry, int64_t now_ms,
                                double jitter01) {
  ++row.attempts;
  row.last_status = result.status;
  if (result.status >= 200 && result.status < 300) {
    row.state = storage::OutboxRow::kDelivered;
    row.delivered_ms = now_ms;
    row.last_error.clear();
    return row;
  }
  row.last_error = result.status == 0 ? result.error : absl::StrCat("HTTP ", result.status);
  const bool final_4xx = result.status >= 400 && result.status < 500 && result.status != 408 &&
                         result.status != 429;
  if (final_4xx) {
    row.state = storage::OutboxRow::kFailed;
    row.delivered_ms = now_ms;
    return row;
  }
  double backoff = static_cast<double>(retry.initial_backoff_ms) *
                   std::pow(2.0, std::min(row.attempts - 1, 40));
  backoff = std::min(backoff, static_cast<double>(retry.max_backoff_ms));
  int64_t next = now_ms + static_cast<int64_t>(backoff * (0.5 + jitter01));
  if (result.retry_after_ms >= 0) next = std::max(next, now_ms + result.retry_after_ms);
  if (next - row.created_ms > retry.max_age_ms) {
    row.state = storage::OutboxRow::kFailed;
    row.delivered_ms = now_ms;
    row.last_error += " (max_age reached)";
    return row;
  }
  row.next_attempt_ms = next;
  return row;
}

Notifier::Notifier(storage::AlertStore* store, const alerting::NotificationConfig* config,
                   const base::Clock* clock, std::unique_ptr<HttpSender> sender)
    : store_(store), config_(config), clock_(clock), sender_(std::move(sender)) {}

Notifier::~Notifier() { Stop(); }

void Notifier::Start() {
  thread_ = std::thread([this] {
    base::SetCurrentThreadName("dw-relay");
    Loop();
  });
}

void Notifier::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Notifier::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void Notifier::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || woken_; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(kPollMs));
      if (stopping_) return;
      woken_ = false;
    }
    RunOnce();
  }
}

void Notifier::RunOnce() {
  absl::StatusOr<std::vector<storage::OutboxRow>> rows = store_->ReadOutbox(true, kBatch);
  if (!rows.ok()) {
    internal::LogWarn("notifications: cannot read the outbox", {{"error", rows.status().ToString()}});
    return;
  }
  const int64_t now_ms = clock_->NowMs();
  for (storage::OutboxRow& row : *rows) {
    if (row.next_attempt_ms > now_ms) break;  // ordered by next attempt
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    Send(std::move(row));
  }
}

void Notifier::Send(storage::OutboxRow row) {
  const alerting::Receiver* receiver = config_->Find(row.receiver);
  const int64_t now_ms = clock_->NowMs();
  HttpResult result;
  if (receiver == nullptr) {
    result.error = "receiver \"" + row.receiver + "\" is no longer configured";
    row.attempts = std::max(row.attempts, 0);
  } else {
    std::vector<std::string> headers = {"Content-Type: application/json"};
    if (receiver->type == alerting::Receiver::Type::kWebhook) {
      const int64_t ts = now_ms / 1000;
      headers.push_back("webhook-id: " + row.id);
      headers.push_back(absl::StrCat("webhook-timestamp: ", ts));
      if (!receiver->signing_keys.empty()) {
        headers.push_back("webhook-signature: " +
                          alerting::WebhookSignature(row.id, ts, row.body, receiver->signing_keys));
      }
    }
    result = sender_->Post(row.url, headers, row.body, receiver->timeout_ms);
  }
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const double jitter = static_cast<double>(rng_ >> 11) / static_cast<double>(1ULL << 53);
  const int64_t done_ms = clock_->NowMs();
  storage::OutboxRow after = receiver == nullptr
                                 ? [&] {
                                     storage::OutboxRow r = row;
                                     r.state = storage::OutboxRow::kFailed;
                                     r.delivered_ms = done_ms;
                                     r.last_error = result.error;
                                     return r;
                                   }()
                                 : AfterAttempt(row, result, config_->retry, done_ms, jitter);
  // Marked only after the answer: a crash in between re-sends it with the
  // same id (at least once; the receiver dedups on webhook-id).
  if (absl::Status st = store_->UpdateOutbox(after); !st.ok()) {
    internal::LogWarn("notifications: cannot record a send (it will be sent again)",
                      {{"id", row.id}, {"error", st.ToString()}});
  }
  const char* outcome = after.state == storage::OutboxRow::kDelivered ? "delivered"
                        : after.state == storage::OutboxRow::kFailed
                            ? (after.last_error.ends_with("(max_age reached)") ? "expired"
                                                                               : "failed")
                            : "retried";
  {
    absl::MutexLock lock(&mu_);
    ++results_[{row.receiver, outcome}];
    if (after.state == storage::OutboxRow::kDelivered) {
      latencies_.push_back(static_cast<double>(done_ms - row.created_ms) / 1000.0);
    }
  }
  if (after.state != storage::OutboxRow::kDelivered) {
    internal::LogWarn("notification not delivered",
                      {{"id", row.id},
                       {"receiver", row.receiver},
                       {"result", outcome},
                       {"attempt", absl::StrCat(after.attempts)},
                       {"error", after.last_error},
                       {"next_attempt_ms", absl::StrCat(after.next_attempt_ms)}});
  } else {
    internal::LogInfo("notification delivered", {{"id", row.id},
                                                 {"receiver", row.receiver},
                                                 {"attempts", absl::StrCat(after.attempts)}});
  }
}

NotifierStats Notifier::TakeStats() {
  NotifierStats out;
  {
    absl::MutexLock lock(&mu_);
    out.results = results_;
    out.latencies_s.swap(latencies_);
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> depth = store_->OutboxDepth();
  if (depth.ok()) {
    out.pending = depth->first;
    out.oldest_pending_ms = depth->second;
  }
  return out;
}

}  // namespace driftwatch::service
