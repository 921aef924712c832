// The notification relay against a real HTTP receiver on port 0, on an
// injected clock: 500, 500, 200 is one delivery with the same webhook-id
// three times; 429 with Retry-After: 2 waits at least 2 s; a receiver that
// hangs past the timeout is retried; a 400 is final; the signature
// verifies with an independent HMAC; past max_age a row fails.
#include "driftwatch/service/notifier.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "fake_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http_receiver.h"

namespace driftwatch::service {
namespace {

using ::testing::HasSubstr;
constexpr int64_t kT0 = 1'796'000'000'000;

class NotifierTest : public ::testing::Test {
 protected:
  void Configure(const std::string& extra = "") {
    absl::StatusOr<alerting::NotificationConfig> c = alerting::ParseNotificationConfig(
        "receivers:\n"
        "  - {name: hook, type: webhook, url: '" +
            receiver_.url() +
            "', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, timeout: 500ms}\n"
            "route: {receiver: hook}\n" + extra,
        "test", [](const std::string&) -> absl::StatusOr<std::string> { return ""; });
    ASSERT_TRUE(c.ok()) << c.status();
    config_ = *c;
    notifier_ = std::make_unique<Notifier>(&store_, &config_, &clock_, NewCurlSender());
  }

  void Enqueue(const std::string& id) {
    storage::NotifyWrite w;
    storage::OutboxRow row;
    row.id = id;
    row.receiver = "hook";
    row.url = receiver_.url();
    row.body = R"({"version":"4","status":"firing","alerts":[]})";
    row.created_ms = clock_.NowMs();
    row.next_attempt_ms = clock_.NowMs();
    w.outbox.push_back(row);
    ASSERT_TRUE(store_.SaveAlerts({}, {}, w).ok());
  }

  storage::OutboxRow Row(const std::string& id) {
    absl::StatusOr<std::vector<storage::OutboxRow>> rows = store_.ReadOutbox(false, 100);
    if (!rows.ok()) {
      ADD_FAILURE() << rows.status();
      return {};
    }
    const std::vector<storage::OutboxRow> all = *std::move(rows);
    for (const storage::OutboxRow& r : all) {
      if (r.id == id) return r;
    }
    ADD_FAILURE() << "no row " << id;
    return {};
  }

  testing::HttpReceiver receiver_;
  testing::FakeStore store_;
  base::ManualClock clock_{kT0};
  alerting::NotificationConfig config_;
  std::unique_ptr<Notifier> notifier_;
};

TEST_F(NotifierTest, RetriesUntilA2xxWithTheSameIdAndAVerifiableSignature) {
  ASSERT_NO_FATAL_FAILURE(Configure());
  receiver_.Script({{500}, {500}, {200}});
  Enqueue("msg_a");
  notifier_->RunOnce();
  storage::OutboxRow r = Row("msg_a");
  EXPECT_EQ(r.state, storage::OutboxRow::kPending);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.last_status, 500);
  // Backoff 1 s x jitter [0.5, 1.5): not due before 0.5 s.
  EXPECT_GE(r.next_attempt_ms, kT0 + 500);
  EXPECT_LT(r.next_attempt_ms, kT0 + 1500);
  notifier_->RunOnce();  // not due yet: nothing sent
  EXPECT_EQ(receiver_.requests().size(), 1u);
  clock_.Advance(1500);
  notifier_->RunOnce();
  r = Row("msg_a");
  EXPECT_EQ(r.attempts, 2);
  EXPECT_GE(r.next_attempt_ms, clock_.NowMs() + 1000);  // 2 s x [0.5, 1.5)
  clock_.Advance(3000);
  notifier_->RunOnce();
  r = Row("msg_a");
  EXPECT_EQ(r.state, storage::OutboxRow::kDelivered);
  EXPECT_EQ(r.attempts, 3);
  clock_.Advance(60'000);
  notifier_->RunOnce();  // delivered: never again
  const std::vector<testing::HttpReceiver::Request> got = receiver_.requests();
  ASSERT_EQ(got.size(), 3u);
  const std::string key_b64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  unsigned char key[64];
  const int key_len = EVP_DecodeBlock(key, reinterpret_cast<const unsigned char*>(key_b64.data()),
                                      static_cast<int>(key_b64.size()));
  ASSERT_EQ(key_len, 24);
  for (const testing::HttpReceiver::Request& q : got) {
    EXPECT_EQ(q.method, "POST");
    EXPECT_EQ(q.path, "/hook");
    EXPECT_EQ(q.headers.at("webhook-id"), "msg_a");  // the idempotency key, every attempt
    EXPECT_EQ(q.headers.at("content-type"), "application/json");
    // An independent HMAC-SHA256 of "id.timestamp.body".
    const std::string signed_content =
        q.headers.at("webhook-id") + "." + q.headers.at("webhook-timestamp") + "." + q.body;
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, 24, reinterpret_cast<const unsigned char*>(signed_content.data()),
         signed_content.size(), mac, &mac_len);
    unsigned char b64[64];
    const int b64_len = EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
    EXPECT_EQ(q.headers.at("webhook-signature"),
              "v1," + std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(b64_len)));
  }
  // webhook-timestamp is per attempt.
  EXPECT_NE(got[0].headers.at("webhook-timestamp"), got[2].headers.at("webhook-timestamp"));
  NotifierStats stats = notifier_->TakeStats();
  EXPECT_EQ((stats.results[{"hook", "retried"}]), 2u);
  EXPECT_EQ((stats.results[{"hook", "delivered"}]), 1u);
  EXPECT_EQ(stats.pending, 0);
}

TEST_F(NotifierTest, HonoursRetryAfterAndTreats400AsFinal) {
  ASSERT_NO_FATAL_FAILURE(Configure());
  receiver_.Script({{429, "Retry-After: 2\r\n"}, {400}});
  Enqueue("msg_b");
  notifier_->RunOnce();
  storage::OutboxRow r = Row("msg_b");
  EXPECT_EQ(r.state, storage::OutboxRow::kPending);
  EXPECT_GE(r.next_attempt_ms, kT0 + 2000);  // not the 0.5-1.5 s backoff
  clock_.Advance(1900);
  notifier_->RunOnce();
  EXPECT_EQ(receiver_.requests().size(), 1u);
  clock_.Advance(200);
  notifier_->RunOnce();
  r = Row("msg_b");
  EXPECT_EQ(r.state, storage::OutboxRow::kFailed);  // 400: the receiver refuses it
  EXPECT_EQ(r.last_status, 400);
  clock_.Advance(3'600'000);
  notifier_->RunOnce();
  EXPECT_EQ(receiver_.requests().size(), 2u);
  EXPECT_EQ((notifier_->TakeStats().results[{"hook", "failed"}]), 1u);
}

TEST_F(NotifierTest, AReceiverThatHangsIsCutAtItsTimeoutAndRetried) {
  ASSERT_NO_FATAL_FAILURE(Configure());
  receiver_.Script({{200, "", 3000}});  // answers after 3 s; the timeout is 500 ms
  Enqueue("msg_c");
  const auto start = std::chrono::steady_clock::now();
  notifier_->RunOnce();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2500));
  storage::OutboxRow r = Row("msg_c");
  EXPECT_EQ(r.state, storage::OutboxRow::kPending);
  EXPECT_EQ(r.last_status, 0);
  EXPECT_THAT(r.last_error, HasSubstr("imeout"));
}

TEST_F(NotifierTest, ARowPastMaxAgeFails) {
  ASSERT_NO_FATAL_FAILURE(Configure("retry: {initial_backoff: 1s, max_backoff: 10s, max_age: 5s}\n"));
  receiver_.Script({{503}, {503}, {503}, {503}, {503}, {503}});
  Enqueue("msg_d");
  for (int i = 0; i < 6 && Row("msg_d").state == storage::OutboxRow::kPending; ++i) {
    notifier_->RunOnce();
    clock_.Advance(10'000);
  }
  storage::OutboxRow r = Row("msg_d");
  EXPECT_EQ(r.state, storage::OutboxRow::kFailed);
  EXPECT_THAT(r.last_error, HasSubstr("max_age"));
}

TEST(AfterAttemptTest, BackoffDoublesUpToItsCap) {
  alerting::RetryPolicy p{1000, 8000, 3'600'000};
  storage::OutboxRow row;
  row.created_ms = 0;
  HttpResult fail{503, "", -1};
  int64_t now = 0;
  std::vector<int64_t> waits;
  for (int i = 0; i < 6; ++i) {
    row = AfterAttempt(row, fail, p, now, 0.5);  // jitter 1.0 exactly
    waits.push_back(row.next_attempt_ms - now);
    now = row.next_attempt_ms;
  }
  EXPECT_EQ(waits, (std::vector<int64_t>{1000, 2000, 4000, 8000, 8000, 8000}));
  row = AfterAttempt(row, HttpResult{408, "", -1}, p, now, 0.5);
  EXPECT_EQ(row.state, storage::OutboxRow::kPending);  // 408 and 429 retry
  row = AfterAttempt(row, HttpResult{204, "", -1}, p, now, 0.5);
  EXPECT_EQ(row.state, storage::OutboxRow::kDelivered);
}

}  // namespace
}  // namespace driftwatch::service
