// Notifications, pure: the configuration and its errors, the Standard
// Webhooks signature (the spec's own test vector), the payload shapes of
// Alertmanager, the webhook (version 4) and PagerDuty, and the
// dispatcher's grouping on an injected time: group_wait, group_interval,
// repeat_interval, resolution, routes, and a restart of its state.
#include "driftwatch/alerting/notify.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftwatch::alerting {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr int64_t kSec = 1000;
constexpr int64_t kT0 = 1'796'000'000'000;

absl::StatusOr<std::string> NoFiles(const std::string& path) {
  if (path == "keys.txt") {
    return std::string("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n\nwhsec_AAAAAAAAAAAAAAAAAAAAAAAA\n");
  }
  return absl::NotFoundError(path);
}

NotificationConfig Config(const std::string& yaml) {
  absl::StatusOr<NotificationConfig> c = ParseNotificationConfig(yaml, "config.yaml", NoFiles);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : NotificationConfig();
}

std::string Error(const std::string& yaml) {
  absl::StatusOr<NotificationConfig> c = ParseNotificationConfig(yaml, "config.yaml", NoFiles);
  return c.ok() ? std::string("ok") : std::string(c.status().message());
}

Alert MakeAlert(const std::string& rule, const std::string& slice, AlertState state,
                const std::string& severity = "warning") {
  Alert a;
  a.rule = rule;
  a.labels = {{"alertname", rule},
              {"model", "loan"},
              {"model_version", "v1"},
              {"slice", slice},
              {"severity", severity}};
  a.fingerprint = FingerprintHex(a.labels);
  a.state = state;
  a.active_at_ms = kT0;
  a.fired_at_ms = kT0;
  if (state == AlertState::kResolved) a.resolved_at_ms = kT0 + 600 * kSec;
  a.value = 0.4;
  a.annotations = {{"summary", rule + " in " + slice}, {"runbook_url", "runbooks/feature-drift.md"}};
  return a;
}

std::function<std::string()> Ids() {
  auto n = std::make_shared<int>(0);
  return [n] { return "msg_" + std::to_string(++*n); };
}

TEST(NotifyConfigTest, ParsesReceiversRoutesAndRetry) {
  NotificationConfig c = Config(R"(
external_url: http://driftwatch:7070
runbook_base_url: https://git.example/driftwatch/blob/main
receivers:
  - {name: hook, type: webhook, url: 'http://127.0.0.1:9000/hook', secret_file: keys.txt, timeout: 5s}
  - {name: am, type: alertmanager, url: 'http://127.0.0.1:9093/'}
  - {name: pd, type: pagerduty, routing_key: 0123456789abcdef0123456789abcdef}
route:
  receiver: hook
  group_by: [alertname, model]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 150s
  routes:
    - matchers: ['severity="page"']
      receiver: pd
      continue: true
    - matchers: ['severity="page"']
      receiver: am
retry: {initial_backoff: 2s, max_backoff: 1m, max_age: 1h}
)");
  ASSERT_EQ(c.receivers.size(), 3u);
  EXPECT_EQ(c.receivers[0].signing_keys.size(), 2u);
  EXPECT_EQ(c.receivers[0].timeout_ms, 5000);
  EXPECT_EQ(c.receivers[1].url, "http://127.0.0.1:9093/api/v2/alerts");
  EXPECT_EQ(c.receivers[2].url, "https://events.pagerduty.com/v2/enqueue");
  ASSERT_TRUE(c.route.has_value());
  EXPECT_EQ(c.route->key, "{}");
  EXPECT_EQ(c.route->repeat_interval_ms, 180'000);  // rounded up to whole group_intervals
  ASSERT_EQ(c.route->routes.size(), 2u);
  EXPECT_EQ(c.route->routes[0].key, "{}/{severity=\"page\"}");
  EXPECT_EQ(c.route->routes[0].group_by, (std::vector<std::string>{"alertname", "model"}));
  EXPECT_EQ(c.route->routes[0].group_wait_ms, 10'000);  // inherited
  EXPECT_EQ(c.retry.initial_backoff_ms, 2000);
  EXPECT_EQ(c.retry.max_age_ms, 3'600'000);
}

TEST(NotifyConfigTest, ErrorsNameTheKeyAndLine) {
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: slack, url: 'http://a'}\nroute: {receiver: x}\n"),
              HasSubstr("config.yaml:2: notifications: type must be alertmanager, webhook or "
                        "pagerduty, got \"slack\""));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: webhook, url: 'file:///etc/passwd'}\n"
                    "route: {receiver: x}\n"),
              HasSubstr("only http:// and https:// URLs"));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: webhook, url: 'http://a/b'}\n"
                    "route: {receiver: y}\n"),
              HasSubstr("names receiver \"y\", which is not among notifications.receivers"));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: webhook, url: 'http://a/b', secret: hunter2}\n"
                    "route: {receiver: x}\n"),
              HasSubstr("whsec_"));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: pagerduty}\nroute: {receiver: x}\n"),
              HasSubstr("pagerduty needs routing_key"));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: webhook, url: 'http://a/b', colour: red}\n"),
              HasSubstr("unknown receiver key \"colour\""));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: webhook, url: 'http://a/b'}\n"),
              HasSubstr("receivers without a route"));
  EXPECT_THAT(Error("receivers:\n  - {name: x, type: webhook, url: 'http://a/b', "
                    "secret_file: missing.txt}\nroute: {receiver: x}\n"),
              HasSubstr("secret_file missing.txt: cannot be read"));
  EXPECT_EQ(Error(""), "ok");  // no notifications at all
}

TEST(NotifyTest, WebhookSignatureIsTheStandardWebhooksOne) {
  // The test vector of the Standard Webhooks specification.
  absl::StatusOr<std::string> key = Base64Decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(WebhookSignature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})",
                             {*key}),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Two keys (rotation): two signatures, space-separated.
  const std::string two = WebhookSignature("id", 1, "{}", {*key, "another key of 16+"});
  EXPECT_EQ(std::count(two.begin(), two.end(), ' '), 1);
  EXPECT_TRUE(two.starts_with("v1,"));
  EXPECT_EQ(Base64("hello"), "aGVsbG8=");
  EXPECT_EQ(*Base64Decode("aGVsbG8="), "hello");
  EXPECT_FALSE(Base64Decode("a").ok());
  EXPECT_EQ(Rfc3339(kT0 + 123), "2026-11-30T00:53:20.123Z");
}

TEST(DispatcherTest, GroupsWaitsRepeatsAndResolves) {
  NotificationConfig c = Config(R"(
external_url: http://driftwatch:7070
runbook_base_url: https://git.example/dw/blob/main
receivers: [{name: hook, type: webhook, url: 'http://127.0.0.1:9000/hook'}]
route: {receiver: hook, group_by: [alertname], group_wait: 30s, group_interval: 5m, repeat_interval: 1h}
)");
  Dispatcher d(&c);
  auto ids = Ids();
  d.Update(MakeAlert("feature_drift", "platform=android", AlertState::kFiring), kT0);
  EXPECT_TRUE(d.Flush(kT0 + 29 * kSec, ids).empty());  // group_wait
  d.Update(MakeAlert("feature_drift", "platform=ios", AlertState::kFiring), kT0 + 20 * kSec);
  std::vector<Notification> n = d.Flush(kT0 + 30 * kSec, ids);
  ASSERT_EQ(n.size(), 1u);  // one notification carries the group's two alerts
  Json body = Json::parse(n[0].body);
  EXPECT_EQ(body["version"], "4");
  EXPECT_EQ(body["status"], "firing");
  EXPECT_EQ(body["receiver"], "hook");
  EXPECT_EQ(body["groupKey"], "{}:{alertname=\"feature_drift\"}");
  EXPECT_EQ(body["groupLabels"], Json({{"alertname", "feature_drift"}}));
  EXPECT_EQ(body["commonLabels"]["model"], "loan");
  EXPECT_FALSE(body["commonLabels"].contains("slice"));
  EXPECT_EQ(body["truncatedAlerts"], 0);
  EXPECT_EQ(body["externalURL"], "http://driftwatch:7070");
  ASSERT_EQ(body["alerts"].size(), 2u);
  EXPECT_EQ(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(body["alerts"][0]["annotations"]["runbook_url"],
            "https://git.example/dw/blob/main/runbooks/feature-drift.md");
  EXPECT_EQ(body["commonAnnotations"]["runbook_url"],
            "https://git.example/dw/blob/main/runbooks/feature-drift.md");
  EXPECT_EQ(n[0].id, "msg_1");
  // Nothing new: nothing at the next group_interval; at the repeat, again.
  EXPECT_TRUE(d.Flush(kT0 + 330 * kSec, ids).empty());
  EXPECT_TRUE(d.Flush(kT0 + 1830 * kSec, ids).empty());
  n = d.Flush(kT0 + 3630 * kSec, ids);
  ASSERT_EQ(n.size(), 1u);
  // One resolves: told at the next flush, status still firing (the other).
  d.Update(MakeAlert("feature_drift", "platform=ios", AlertState::kResolved), kT0 + 3700 * kSec);
  EXPECT_TRUE(d.Flush(kT0 + 3800 * kSec, ids).empty());  // before group_interval
  n = d.Flush(kT0 + 3930 * kSec, ids);
  ASSERT_EQ(n.size(), 1u);
  body = Json::parse(n[0].body);
  EXPECT_EQ(body["status"], "firing");
  ASSERT_EQ(body["alerts"].size(), 2u);
  EXPECT_EQ(body["alerts"][1]["status"], "resolved");
  EXPECT_NE(body["alerts"][1]["endsAt"], "0001-01-01T00:00:00Z");
  // The last one resolves: a resolved notification, then the group goes.
  d.Update(MakeAlert("feature_drift", "platform=android", AlertState::kResolved),
           kT0 + 4000 * kSec);
  n = d.Flush(kT0 + 4230 * kSec, ids);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(Json::parse(n[0].body)["status"], "resolved");
  EXPECT_EQ(d.group_count(), 0u);
  EXPECT_TRUE(d.Flush(kT0 + 9000 * kSec, ids).empty());
}

TEST(DispatcherTest, AnAlertResolvedWithinGroupWaitIsNeverSent) {
  NotificationConfig c = Config(
      "receivers: [{name: hook, type: webhook, url: 'http://h/x'}]\n"
      "route: {receiver: hook, group_by: [alertname], group_wait: 30s}\n");
  Dispatcher d(&c);
  auto ids = Ids();
  d.Update(MakeAlert("r", "*", AlertState::kFiring), kT0);
  d.Update(MakeAlert("r", "*", AlertState::kResolved), kT0 + 10 * kSec);
  EXPECT_TRUE(d.Flush(kT0 + 30 * kSec, ids).empty());
  EXPECT_EQ(d.group_count(), 0u);
}

TEST(DispatcherTest, RoutesPagerDutyAndAlertmanager) {
  NotificationConfig c = Config(R"(
receivers:
  - {name: hook, type: webhook, url: 'http://h/x'}
  - {name: pd, type: pagerduty, routing_key: 0123456789abcdef0123456789abcdef}
  - {name: am, type: alertmanager, url: 'http://am:9093'}
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  routes:
    - {matchers: ['severity="page"'], receiver: pd, continue: true}
    - {matchers: ['severity="page"'], receiver: am}
alertmanager_resend: 1m
)");
  Dispatcher d(&c);
  auto ids = Ids();
  Alert page = MakeAlert("auc_drop", "platform=android", AlertState::kFiring, "page");
  d.Update(page, kT0);
  d.Update(MakeAlert("feature_drift", "*", AlertState::kFiring), kT0);
  std::vector<Notification> n = d.Flush(kT0, ids);
  std::map<std::string, Notification> by;
  for (const Notification& x : n) by[x.receiver] = x;
  ASSERT_EQ(n.size(), 3u);  // the page to pd and am (continue), the warning to hook
  Json pd = Json::parse(by["pd"].body);
  EXPECT_EQ(pd["event_action"], "trigger");
  EXPECT_EQ(pd["dedup_key"], page.fingerprint);
  EXPECT_EQ(pd["routing_key"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(pd["payload"]["severity"], "critical");
  EXPECT_EQ(pd["payload"]["summary"], "auc_drop in platform=android");
  EXPECT_EQ(pd["links"][0]["href"], "runbooks/feature-drift.md");
  Json am = Json::parse(by["am"].body);
  ASSERT_TRUE(am.is_array());
  ASSERT_EQ(am.size(), 1u);
  EXPECT_EQ(am[0]["labels"]["alertname"], "auc_drop");
  EXPECT_EQ(am[0]["startsAt"], Rfc3339(kT0));
  EXPECT_EQ(am[0]["endsAt"], Rfc3339(kT0 + 4 * 60'000));  // a lease of 4 resends
  EXPECT_EQ(by["am"].url, "http://am:9093/api/v2/alerts");
  // While firing the Alertmanager copy is re-sent each minute; nothing else.
  EXPECT_TRUE(d.Flush(kT0 + 30 * kSec, ids).empty());
  n = d.Flush(kT0 + 60 * kSec, ids);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].receiver, "am");
  EXPECT_EQ(Json::parse(n[0].body)[0]["endsAt"], Rfc3339(kT0 + 60 * kSec + 4 * 60'000));
  // Resolved: a resolve event to PagerDuty, endsAt = resolve time to am.
  Alert resolved = page;
  resolved.state = AlertState::kResolved;
  resolved.resolved_at_ms = kT0 + 300 * kSec;
  d.Update(resolved, kT0 + 300 * kSec);
  n = d.Flush(kT0 + 300 * kSec, ids);
  by.clear();
  for (const Notification& x : n) by[x.receiver] = x;
  ASSERT_TRUE(by.contains("pd"));
  ASSERT_TRUE(by.contains("am"));
  EXPECT_EQ(Json::parse(by["pd"].body)["event_action"], "resolve");
  EXPECT_EQ(Json::parse(by["am"].body)[0]["endsAt"], Rfc3339(kT0 + 300 * kSec));
}

TEST(DispatcherTest, StateSurvivesARestartSoNothingPagesTwice) {
  NotificationConfig c = Config(
      "receivers: [{name: hook, type: webhook, url: 'http://h/x'}]\n"
      "route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1m}\n");
  Dispatcher d(&c);
  auto ids = Ids();
  d.Update(MakeAlert("r", "*", AlertState::kFiring), kT0);
  ASSERT_EQ(d.Flush(kT0, ids).size(), 1u);
  const std::string state = d.EncodeState();
  Dispatcher after(&c);
  ASSERT_TRUE(after.RestoreState(state).ok());
  EXPECT_EQ(after.group_count(), 1u);
  after.Update(MakeAlert("r", "*", AlertState::kFiring), kT0 + 90 * kSec);  // same alert
  EXPECT_TRUE(after.Flush(kT0 + 120 * kSec, ids).empty());              // already told
  after.Update(MakeAlert("r", "*", AlertState::kResolved), kT0 + 130 * kSec);
  EXPECT_EQ(after.Flush(kT0 + 180 * kSec, ids).size(), 1u);
  // Corrupt state is refused, not half-applied.
  std::string bad = state;
  bad.resize(bad.size() / 2);
  Dispatcher broken(&c);
  EXPECT_FALSE(broken.RestoreState(bad).ok());
  EXPECT_EQ(broken.group_count(), 0u);
}

}  // namespace
}  // namespace driftwatch::alerting
