// Notifications (docs/notifications.md): where alerts go and in what
// shape. Pure: configuration in, notifications (receiver, body, headers)
// out; the service writes them to its outbox and a relay sends them.
//
//   - Receivers: `alertmanager` (POST {url}/api/v2/alerts, the JSON array
//     Prometheus sends, re-sent while firing so the endsAt lease never
//     lapses), `webhook` (the Alertmanager webhook payload, version "4",
//     signed per Standard Webhooks) and `pagerduty` (Events API v2, one
//     event per alert, dedup_key = its fingerprint).
//   - The routing tree and grouping of Alertmanager: group_by, group_wait,
//     group_interval, repeat_interval, child routes with matchers that
//     inherit the rest; a notification carries every alert of its group.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "driftwatch/alerting/engine.h"
#include "driftwatch/alerting/labels.h"
#include "driftwatch/alerting/rules.h"

namespace driftwatch::alerting {

struct Receiver {
  enum class Type { kAlertmanager, kWebhook, kPagerDuty };
  std::string name;
  Type type = Type::kWebhook;
  std::string url;
  // webhook: signing keys (the bytes after "whsec_", base64-decoded), one
  // signature each so that keys can rotate.
  std::vector<std::string> signing_keys;
  std::string routing_key;  // pagerduty
  int64_t timeout_ms = 10'000;
  bool send_resolved = true;
  int max_alerts = 0;  // webhook: 0 = all; the rest counted in truncatedAlerts
};

struct Route {
  std::string receiver;
  std::vector<std::string> group_by;  // label names; {"..."}: every label
  int64_t group_wait_ms = 30'000;
  int64_t group_interval_ms = 300'000;
  int64_t repeat_interval_ms = 4 * 3'600'000LL;
  std::vector<Matcher> matchers;  // a child route's; the root matches every alert
  bool continue_matching = false;  // after this route matches, try its siblings too
  std::vector<Route> routes;
  std::string key;  // "{}", "{}/{severity=\"page\"}": the route's path (set by the parser)
};

struct RetryPolicy {
  int64_t initial_backoff_ms = 1'000;
  int64_t max_backoff_ms = 300'000;
  int64_t max_age_ms = 24 * 3'600'000LL;
};

struct NotificationConfig {
  std::vector<Receiver> receivers;
  std::optional<Route> route;  // unset: nothing is sent
  RetryPolicy retry;
  std::string external_url;      // externalURL of webhooks, generatorURL's base
  std::string runbook_base_url;  // prefixed to a relative runbook_url
  int64_t alertmanager_resend_ms = 60'000;  // firing alerts re-sent this often
  const Receiver* Find(std::string_view name) const;
};

// The notifications configuration: YAML text of the map itself, or of a
// whole server configuration file (its `notifications:` key). INVALID_ARGUMENT naming the key and line: an unknown type or key,
// a URL that is not http(s), a route naming an unknown receiver, a
// webhook secret that is not whsec_ + base64, a pagerduty receiver
// without routing_key. `read_file` reads secret_file paths.
absl::StatusOr<NotificationConfig> ParseNotificationConfig(
    std::string_view yaml, std::string_view source,
    const std::function<absl::StatusOr<std::string>(const std::string&)>& read_file);

// One message to send: a POST of `body` to `url`, with these headers. The
// id is stable across retries (webhook-id, the outbox key).
struct Notification {
  std::string id;
  std::string receiver;
  std::string url;
  std::string body;     // JSON
  std::string group_key;
  bool firing = false;  // any alert of it fires
  int alerts = 0;
  int64_t created_ms = 0;
};

// The runbook URL an alert links to: its runbook_url annotation, prefixed
// with runbook_base_url when it is relative.
std::string RunbookUrl(const Alert& alert, const NotificationConfig& config);

// RFC 3339 with milliseconds, UTC ("2026-12-03T10:00:00.123Z").
std::string Rfc3339(int64_t unix_ms);

// Standard Webhooks: "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>",
// one per key, space-separated.
std::string WebhookSignature(std::string_view id, int64_t timestamp_s, std::string_view body,
                             const std::vector<std::string>& keys);
std::string Base64(std::string_view bytes);
absl::StatusOr<std::string> Base64Decode(std::string_view text);

// Routing and grouping (Alertmanager's dispatcher, on evaluation time):
// Update with every alert whose state changed, then Flush at each
// evaluation for the notifications due. Pending and inactive alerts are
// not notified. Thread-compatible; its state serialises so that a restart
// neither re-pages nor forgets a group.
class Dispatcher {
 public:
  explicit Dispatcher(const NotificationConfig* config) : config_(config) {}

  void Update(const Alert& alert, int64_t now_ms);
  // The notifications due at now_ms. `new_id` names each one.
  std::vector<Notification> Flush(int64_t now_ms, const std::function<std::string()>& new_id);

  // Groups and Alertmanager resend state, for the store (docs/notifications.md).
  std::string EncodeState() const;
  absl::Status RestoreState(std::string_view bytes);
  size_t group_count() const { return groups_.size(); }

 private:
  struct Group {
    std::string receiver;
    std::string key;  // groupKey: "<route key>:<group labels>"
    Labels group_labels;
    std::string route_key;
    const alerting::Route* route = nullptr;
    std::map<std::string, Alert> alerts;  // by fingerprint
    int64_t next_flush_ms = 0;
    int64_t last_sent_ms = 0;
    std::set<std::string> sent_firing;    // fingerprints firing at the last send
    std::set<std::string> sent_resolved;  // resolved at the last send
  };
  void Place(const alerting::Route& route, const Alert& alert, int64_t now_ms, bool* matched);

  const NotificationConfig* const config_;
  std::map<std::string, Group> groups_;  // by receiver + "\x1f" + groupKey
  // Alertmanager receivers: alerts changed since the last send, and when
  // the firing ones were last re-sent.
  std::map<std::string, std::map<std::string, Alert>> am_changed_;
  std::map<std::string, std::map<std::string, Alert>> am_firing_;
  std::map<std::string, int64_t> am_last_resend_ms_;
};

}  // namespace driftwatch::alerting
