#include "driftwatch/alerting/notify.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "driftwatch/base/byte_io.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace driftwatch::alerting {
namespace {

using Json = nlohmann::ordered_json;

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::string_view(what.data(), what.size()));
}

int Line(const YAML::Node& n) { return n.Mark().line + 1; }

std::string LabelsText(const Labels& labels) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) {
    std::string escaped;
    for (char c : v) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    parts.push_back(k + "=\"" + escaped + "\"");
  }
  return "{" + absl::StrJoin(parts, ",") + "}";
}

Json MapJson(const std::map<std::string, std::string>& m) {
  Json out = Json::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

// Labels and annotations shared by every alert of a list.
std::map<std::string, std::string> Common(const std::vector<const Alert*>& alerts, bool labels) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < alerts.size(); ++i) {
    const auto& m = labels ? alerts[i]->labels : alerts[i]->annotations;
    if (i == 0) {
      out = m;
      continue;
    }
    for (auto it = out.begin(); it != out.end();) {
      auto other = m.find(it->first);
      if (other == m.end() || other->second != it->second) {
        it = out.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

class ConfigParser {
 public:
  ConfigParser(std::string_view source,
               const std::function<absl::StatusOr<std::string>(const std::string&)>& read_file)
      : source_(source), read_file_(read_file) {}

  absl::Status Error(const YAML::Node& at, const std::string& why) const {
    return Bad(absl::StrCat(source_, ":", Line(at), ": notifications: ", why));
  }

  absl::StatusOr<std::string> Scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return Error(n, key + " must be a single value");
    return n.as<std::string>();
  }

  absl::StatusOr<int64_t> Duration(const YAML::Node& n, const std::string& key) const {
    absl::StatusOr<std::string> s = Scalar(n, key);
    if (!s.ok()) return s.status();
    absl::StatusOr<int64_t> ms = ParseDurationMs(*s);
    if (!ms.ok()) return Error(n, absl::StrCat(key, ": ", ms.status().message()));
    return *ms;
  }

  absl::Status CheckUrl(const YAML::Node& n, const std::string& url) const {
    if (!(url.starts_with("http://") || url.starts_with("https://")) || url.size() < 9) {
      return Error(n, "url \"" + url + "\": only http:// and https:// URLs are sent to");
    }
    return absl::OkStatus();
  }

  absl::Status AddKey(const YAML::Node& at, const std::string& secret, Receiver* r) const {
    if (!secret.starts_with("whsec_")) {
      return Error(at, "a webhook secret is whsec_ followed by base64 (Standard Webhooks)");
    }
    absl::StatusOr<std::string> key = Base64Decode(secret.substr(6));
    if (!key.ok() || key->size() < 16) {
      return Error(at, "the webhook secret after whsec_ must be base64 of at least 16 bytes");
    }
    r->signing_keys.push_back(*key);
    return absl::OkStatus();
  }

  absl::StatusOr<Receiver> ParseReceiver(const YAML::Node& node) const {
    if (!node.IsMap()) return Error(node, "a receiver is a map {name, type, url, ...}");
    Receiver r;
    bool typed = false;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "name" || key == "url" || key == "routing_key" || key == "type") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        if (key == "name") r.name = *s;
        if (key == "url") r.url = *s;
        if (key == "routing_key") r.routing_key = *s;
        if (key == "type") {
          typed = true;
          if (*s == "alertmanager") {
            r.type = Receiver::Type::kAlertmanager;
          } else if (*s == "webhook") {
            r.type = Receiver::Type::kWebhook;
          } else if (*s == "pagerduty") {
            r.type = Receiver::Type::kPagerDuty;
          } else {
            return Error(v, "type must be alertmanager, webhook or pagerduty, got \"" + *s + "\"");
          }
        }
      } else if (key == "secret") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        if (absl::Status st = AddKey(v, *s, &r); !st.ok()) return st;
      } else if (key == "secrets") {
        if (!v.IsSequence()) return Error(v, "secrets must be a list (several keys: rotation)");
        for (const YAML::Node& s : v) {
          absl::StatusOr<std::string> text = Scalar(s, "a secret");
          if (!text.ok()) return text.status();
          if (absl::Status st = AddKey(s, *text, &r); !st.ok()) return st;
        }
      } else if (key == "secret_file") {
        absl::StatusOr<std::string> path = Scalar(v, key);
        if (!path.ok()) return path.status();
        absl::StatusOr<std::string> text = read_file_(*path);
        if (!text.ok()) return Error(v, "secret_file " + *path + ": cannot be read");
        // One key per line; blank lines ignored.
        size_t start = 0;
        while (start <= text->size()) {
          size_t end = text->find('\n', start);
          if (end == std::string::npos) end = text->size();
          std::string line = text->substr(start, end - start);
          while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
          if (!line.empty()) {
            if (absl::Status st = AddKey(v, line, &r); !st.ok()) return st;
          }
          start = end + 1;
        }
      } else if (key == "timeout") {
        absl::StatusOr<int64_t> ms = Duration(v, key);
        if (!ms.ok()) return ms.status();
        if (*ms <= 0 || *ms > 120'000) return Error(v, "timeout must be in (0, 2m]");
        r.timeout_ms = *ms;
      } else if (key == "send_resolved") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        if (*s != "true" && *s != "false") return Error(v, "send_resolved must be true or false");
        r.send_resolved = *s == "true";
      } else if (key == "max_alerts") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        int n = -1;
        auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
        if (ec != std::errc() || p != s->data() + s->size() || n < 0) {
          return Error(v, "max_alerts must be a whole number >= 0");
        }
        r.max_alerts = n;
      } else {
        return Error(kv.first, "unknown receiver key \"" + key +
                                   "\" (name, type, url, secret, secrets, secret_file, "
                                   "routing_key, timeout, send_resolved, max_alerts)");
      }
    }
    if (r.name.empty()) return Error(node, "a receiver needs a name");
    if (!typed) return Error(node, "receiver \"" + r.name + "\" needs a type");
    if (r.type == Receiver::Type::kPagerDuty) {
      if (r.url.empty()) r.url = "https://events.pagerduty.com/v2/enqueue";
      if (r.routing_key.empty()) {
        return Error(node, "receiver \"" + r.name + "\": pagerduty needs routing_key");
      }
    }
    if (r.url.empty()) return Error(node, "receiver \"" + r.name + "\" needs a url");
    if (absl::Status st = CheckUrl(node["url"] ? node["url"] : node, r.url); !st.ok()) return st;
    if (r.type == Receiver::Type::kAlertmanager) {
      while (!r.url.empty() && r.url.back() == '/') r.url.pop_back();
      r.url += "/api/v2/alerts";
    }
    return r;
  }

  absl::StatusOr<Route> ParseRoute(const YAML::Node& node, const Route* parent,
                                   const std::string& parent_key, int depth) const {
    if (depth > 16) return Error(node, "routes nest more than 16 deep");
    if (!node.IsMap()) return Error(node, "a route is a map");
    Route r;
    if (parent != nullptr) {
      r.receiver = parent->receiver;
      r.group_by = parent->group_by;
      r.group_wait_ms = parent->group_wait_ms;
      r.group_interval_ms = parent->group_interval_ms;
      r.repeat_interval_ms = parent->repeat_interval_ms;
    }
    const YAML::Node* children = nullptr;
    YAML::Node kids;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "receiver") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        r.receiver = *s;
      } else if (key == "group_by") {
        if (!v.IsSequence()) return Error(v, "group_by must be a list of label names");
        r.group_by.clear();
        for (const YAML::Node& n : v) {
          absl::StatusOr<std::string> s = Scalar(n, "a label name");
          if (!s.ok()) return s.status();
          r.group_by.push_back(*s);
        }
      } else if (key == "group_wait" || key == "group_interval" || key == "repeat_interval") {
        absl::StatusOr<int64_t> ms = Duration(v, key);
        if (!ms.ok()) return ms.status();
        if (key != "group_wait" && *ms <= 0) return Error(v, key + " must be positive");
        (key == "group_wait"       ? r.group_wait_ms
         : key == "group_interval" ? r.group_interval_ms
                                   : r.repeat_interval_ms) = *ms;
      } else if (key == "matchers") {
        if (parent == nullptr) return Error(v, "the root route matches every alert: no matchers");
        if (!v.IsSequence()) return Error(v, "matchers must be a list");
        for (const YAML::Node& n : v) {
          absl::StatusOr<std::string> s = Scalar(n, "a matcher");
          if (!s.ok()) return s.status();
          absl::StatusOr<Matcher> m = ParseMatcher(*s);
          if (!m.ok()) return Error(n, std::string(m.status().message()));
          r.matchers.push_back(std::move(*m));
        }
      } else if (key == "continue") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        r.continue_matching = *s == "true";
      } else if (key == "routes") {
        if (!v.IsSequence()) return Error(v, "routes must be a list");
        kids = v;
        children = &kids;
      } else {
        return Error(kv.first, "unknown route key \"" + key +
                                   "\" (receiver, group_by, group_wait, group_interval, "
                                   "repeat_interval, matchers, continue, routes)");
      }
    }
    if (r.receiver.empty()) return Error(node, "the root route needs a receiver");
    std::vector<std::string> ms;
    for (const Matcher& m : r.matchers) ms.push_back(m.ToString());
    r.key = parent == nullptr ? "{}" : parent_key + "/{" + absl::StrJoin(ms, ",") + "}";
    // Repeats happen at flushes: round repeat_interval up to a multiple.
    if (r.repeat_interval_ms % r.group_interval_ms != 0) {
      r.repeat_interval_ms = (r.repeat_interval_ms / r.group_interval_ms + 1) * r.group_interval_ms;
    }
    if (children != nullptr) {
      for (const YAML::Node& child : *children) {
        absl::StatusOr<Route> c = ParseRoute(child, &r, r.key, depth + 1);
        if (!c.ok()) return c.status();
        r.routes.push_back(std::move(*c));
      }
    }
    return r;
  }

  absl::Status CheckReceivers(const Route& r, const NotificationConfig& config,
                              const YAML::Node& at) const {
    if (config.Find(r.receiver) == nullptr) {
      return Error(at, "route " + r.key + " names receiver \"" + r.receiver +
                           "\", which is not among notifications.receivers");
    }
    for (const Route& c : r.routes) {
      if (absl::Status st = CheckReceivers(c, config, at); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NotificationConfig> Parse(std::string_view yaml) const {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      return Bad(absl::StrCat(source_, ":", e.mark.line + 1, ": not YAML: ", e.msg));
    }
    NotificationConfig config;
    // A whole server configuration file: its `notifications:` map.
    if (root && root.IsMap() && root["notifications"]) root = root["notifications"];
    if (!root || root.IsNull()) return config;
    if (!root.IsMap()) return Error(root, "expected a map");
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "receivers") {
        if (!v.IsSequence()) return Error(v, "receivers must be a list");
        for (const YAML::Node& n : v) {
          absl::StatusOr<Receiver> r = ParseReceiver(n);
          if (!r.ok()) return r.status();
          if (config.Find(r->name) != nullptr) {
            return Error(n, "two receivers are named \"" + r->name + "\"");
          }
          config.receivers.push_back(std::move(*r));
        }
      } else if (key == "route") {
        // Parsed after the receivers (below).
      } else if (key == "retry") {
        if (!v.IsMap()) return Error(v, "retry must be a map");
        for (const auto& rk : v) {
          const std::string name = rk.first.as<std::string>();
          absl::StatusOr<int64_t> ms = Duration(rk.second, "retry." + name);
          if (!ms.ok()) return ms.status();
          if (*ms <= 0) return Error(rk.second, "retry." + name + " must be positive");
          if (name == "initial_backoff") {
            config.retry.initial_backoff_ms = *ms;
          } else if (name == "max_backoff") {
            config.retry.max_backoff_ms = *ms;
          } else if (name == "max_age") {
            config.retry.max_age_ms = *ms;
          } else {
            return Error(rk.first, "unknown retry key \"" + name +
                                       "\" (initial_backoff, max_backoff, max_age)");
          }
        }
      } else if (key == "external_url" || key == "runbook_base_url") {
        absl::StatusOr<std::string> s = Scalar(v, key);
        if (!s.ok()) return s.status();
        (key == "external_url" ? config.external_url : config.runbook_base_url) = *s;
      } else if (key == "alertmanager_resend") {
        absl::StatusOr<int64_t> ms = Duration(v, key);
        if (!ms.ok()) return ms.status();
        if (*ms <= 0) return Error(v, "alertmanager_resend must be positive");
        config.alertmanager_resend_ms = *ms;
      } else {
        return Error(kv.first, "unknown key \"" + key +
                                   "\" (receivers, route, retry, external_url, "
                                   "runbook_base_url, alertmanager_resend)");
      }
    }
    if (const YAML::Node route = root["route"]; route) {
      absl::StatusOr<Route> r = ParseRoute(route, nullptr, "", 0);
      if (!r.ok()) return r.status();
      if (absl::Status st = CheckReceivers(*r, config, route); !st.ok()) return st;
      config.route = std::move(*r);
    } else if (!config.receivers.empty()) {
      return Error(root, "receivers without a route: set route.receiver");
    }
    if (config.retry.max_backoff_ms < config.retry.initial_backoff_ms) {
      return Error(root["retry"], "retry.max_backoff must be >= retry.initial_backoff");
    }
    return config;
  }

 private:
  std::string source_;
  const std::function<absl::StatusOr<std::string>(const std::string&)>& read_file_;
};

}  // namespace

const Receiver* NotificationConfig::Find(std::string_view name) const {
  for (const Receiver& r : receivers) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

absl::StatusOr<NotificationConfig> ParseNotificationConfig(
    std::string_view yaml, std::string_view source,
    const std::function<absl::StatusOr<std::string>(const std::string&)>& read_file) {
  try {
    return ConfigParser(source, read_file).Parse(yaml);
  } catch (const YAML::Exception& e) {
    return Bad(absl::StrCat(std::string(source), ":", e.mark.line + 1, ": notifications: ", e.msg));
  }
}

std::string Rfc3339(int64_t unix_ms) {
  const time_t secs = static_cast<time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  const int ms = static_cast<int>(unix_ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

absl::StatusOr<std::string> Base64Decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return absl::InvalidArgumentError("base64: length is not a multiple of 4");
  }
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return absl::InvalidArgumentError("base64: not base64");
  size_t size = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding's zero bytes.
  if (text.size() >= 1 && text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

std::string WebhookSignature(std::string_view id, int64_t timestamp_s, std::string_view body,
                             const std::vector<std::string>& keys) {
  const std::string content = absl::StrCat(absl::string_view(id.data(), id.size()), ".",
                                           timestamp_s, ".",
                                           absl::string_view(body.data(), body.size()));
  std::vector<std::string> out;
  for (const std::string& key : keys) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
    out.push_back("v1," + Base64(std::string_view(reinterpret_cast<const char*>(mac), len)));
  }
  return absl::StrJoin(out, " ");
}

std::string RunbookUrl(const Alert& alert, const NotificationConfig& config) {
  auto it = alert.annotations.find("runbook_url");
  if (it == alert.annotations.end()) return "";
  const std::string& url = it->second;
  if (config.runbook_base_url.empty() || url.find("://") != std::string::npos) return url;
  std::string base = config.runbook_base_url;
  if (!base.empty() && base.back() != '/') base.push_back('/');
  return base + url;
}

namespace {

// An alert as Prometheus posts it to Alertmanager (postableAlert).
Json PostableAlert(const Alert& a, const NotificationConfig& config, int64_t now_ms) {
  Json j;
  j["labels"] = MapJson(a.labels);
  std::map<std::string, std::string> annotations = a.annotations;
  if (annotations.contains("runbook_url")) annotations["runbook_url"] = RunbookUrl(a, config);
  j["annotations"] = MapJson(annotations);
  j["startsAt"] = Rfc3339(a.fired_at_ms != 0 ? a.fired_at_ms : a.active_at_ms);
  // Firing: a lease Alertmanager lets lapse unless re-sent (4 resend
  // periods, as Prometheus does); resolved: the resolve time.
  j["endsAt"] = Rfc3339(a.state == AlertState::kResolved
                            ? a.resolved_at_ms
                            : now_ms + 4 * config.alertmanager_resend_ms);
  j["generatorURL"] = config.external_url.empty()
                          ? std::string()
                          : config.external_url + "/alerts?rule=" + a.rule;
  return j;
}

std::string WebhookBody(const std::vector<const Alert*>& alerts, int truncated,
                        const std::string& receiver, const std::string& group_key,
                        const Labels& group_labels, const NotificationConfig& config) {
  Json j;
  j["version"] = "4";
  j["groupKey"] = group_key;
  j["truncatedAlerts"] = truncated;
  bool firing = false;
  for (const Alert* a : alerts) firing |= a->state == AlertState::kFiring;
  j["status"] = firing ? "firing" : "resolved";
  j["receiver"] = receiver;
  j["groupLabels"] = MapJson(group_labels);
  j["commonLabels"] = MapJson(Common(alerts, true));
  std::map<std::string, std::string> common_annotations = Common(alerts, false);
  if (common_annotations.contains("runbook_url") && !alerts.empty()) {
    common_annotations["runbook_url"] = RunbookUrl(*alerts[0], config);
  }
  j["commonAnnotations"] = MapJson(common_annotations);
  j["externalURL"] = config.external_url;
  Json list = Json::array();
  for (const Alert* a : alerts) {
    Json x;
    x["status"] = a->state == AlertState::kFiring ? "firing" : "resolved";
    x["labels"] = MapJson(a->labels);
    std::map<std::string, std::string> annotations = a->annotations;
    if (annotations.contains("runbook_url")) annotations["runbook_url"] = RunbookUrl(*a, config);
    x["annotations"] = MapJson(annotations);
    x["startsAt"] = Rfc3339(a->fired_at_ms != 0 ? a->fired_at_ms : a->active_at_ms);
    x["endsAt"] = a->state == AlertState::kResolved ? Rfc3339(a->resolved_at_ms)
                                                    : std::string("0001-01-01T00:00:00Z");
    x["generatorURL"] = config.external_url.empty()
                            ? std::string()
                            : config.external_url + "/alerts?rule=" + a->rule;
    x["fingerprint"] = a->fingerprint;
    list.push_back(std::move(x));
  }
  j["alerts"] = std::move(list);
  return j.dump();
}

std::string PagerDutySeverity(const std::string& severity) {
  if (severity == "page" || severity == "critical") return "critical";
  if (severity == "error") return "error";
  if (severity == "info") return "info";
  return "warning";
}

std::string PagerDutyBody(const Alert& a, const Receiver& r, const NotificationConfig& config) {
  Json j;
  j["routing_key"] = r.routing_key;
  j["event_action"] = a.state == AlertState::kFiring ? "trigger" : "resolve";
  j["dedup_key"] = a.fingerprint;
  auto label = [&a](const char* name) {
    auto it = a.labels.find(name);
    return it == a.labels.end() ? std::string() : it->second;
  };
  if (a.state == AlertState::kFiring) {
    auto summary = a.annotations.find("summary");
    std::string text = summary != a.annotations.end()
                           ? summary->second
                           : absl::StrCat(a.rule, " on ", label("model"), " ", label("slice"),
                                          label("feature").empty() ? "" : " ",
                                          label("feature"));
    if (text.size() > 1024) text.resize(1024);
    Json payload;
    payload["summary"] = text;
    payload["source"] = absl::StrCat("driftwatch/", label("model"), "@", label("model_version"));
    payload["severity"] = PagerDutySeverity(label("severity"));
    payload["timestamp"] = Rfc3339(a.fired_at_ms != 0 ? a.fired_at_ms : a.active_at_ms);
    payload["component"] = label("model");
    payload["group"] = label("slice");
    payload["class"] = a.rule;
    Json details = Json::object();
    for (const auto& [k, v] : a.labels) details[k] = v;
    details["value"] = a.value;
    payload["custom_details"] = std::move(details);
    j["payload"] = std::move(payload);
    const std::string runbook = RunbookUrl(a, config);
    if (!runbook.empty()) {
      j["links"] = Json::array({Json{{"href", runbook}, {"text", "runbook"}}});
    }
    j["client"] = "driftwatch";
    if (!config.external_url.empty()) j["client_url"] = config.external_url;
  }
  return j.dump();
}

std::string AlertKey(const Alert& a) { return a.fingerprint; }

}  // namespace

void Dispatcher::Place(const alerting::Route& route, const Alert& alert, int64_t now_ms,
                       bool* matched) {
  // The deepest matching route takes the alert (siblings after it only
  // with continue).
  for (const alerting::Route& child : route.routes) {
    if (!MatchesAll(child.matchers, alert.labels)) continue;
    bool deeper = false;
    Place(child, alert, now_ms, &deeper);
    *matched = true;
    if (!child.continue_matching) return;
  }
  if (*matched) return;
  *matched = true;
  const Receiver* receiver = config_->Find(route.receiver);
  if (receiver == nullptr) return;
  if (receiver->type == Receiver::Type::kAlertmanager) {
    am_changed_[receiver->name][AlertKey(alert)] = alert;
    if (alert.state == AlertState::kFiring) {
      am_firing_[receiver->name][AlertKey(alert)] = alert;
    } else {
      am_firing_[receiver->name].erase(AlertKey(alert));
    }
    return;
  }
  Labels group_labels;
  const bool all = route.group_by.size() == 1 && route.group_by[0] == "...";
  if (all) {
    group_labels = alert.labels;
  } else {
    for (const std::string& name : route.group_by) {
      auto it = alert.labels.find(name);
      if (it != alert.labels.end()) group_labels[name] = it->second;
    }
  }
  const std::string group_key = route.key + ":" + LabelsText(group_labels);
  const std::string id = receiver->name + "\x1f" + group_key;
  auto it = groups_.find(id);
  if (it == groups_.end()) {
    if (alert.state != AlertState::kFiring) return;  // nothing to tell about
    Group g;
    g.receiver = receiver->name;
    g.key = group_key;
    g.route_key = route.key;
    g.group_labels = group_labels;
    g.next_flush_ms = now_ms + route.group_wait_ms;
    it = groups_.emplace(id, std::move(g)).first;
  }
  it->second.route = &route;
  it->second.alerts[AlertKey(alert)] = alert;
}

void Dispatcher::Update(const Alert& alert, int64_t now_ms) {
  if (!config_->route) return;
  if (alert.state != AlertState::kFiring && alert.state != AlertState::kResolved) return;
  bool matched = false;
  Place(*config_->route, alert, now_ms, &matched);
}

std::vector<Notification> Dispatcher::Flush(int64_t now_ms,
                                            const std::function<std::string()>& new_id) {
  std::vector<Notification> out;
  for (auto it = groups_.begin(); it != groups_.end();) {
    Group& g = it->second;
    const Receiver* receiver = config_->Find(g.receiver);
    if (receiver == nullptr || g.route == nullptr) {
      it = groups_.erase(it);  // its receiver or route is gone (a reload)
      continue;
    }
    if (now_ms < g.next_flush_ms) {
      ++it;
      continue;
    }
    std::set<std::string> firing, resolved;
    for (const auto& [fp, a] : g.alerts) {
      (a.state == AlertState::kFiring ? firing : resolved).insert(fp);
    }
    const bool new_firing =
        !std::includes(g.sent_firing.begin(), g.sent_firing.end(), firing.begin(), firing.end());
    const bool new_resolved = !std::includes(g.sent_resolved.begin(), g.sent_resolved.end(),
                                             resolved.begin(), resolved.end());
    const bool all_resolved = firing.empty() && !g.sent_firing.empty();
    const bool repeat = !firing.empty() && g.last_sent_ms != 0 &&
                        now_ms - g.last_sent_ms >= g.route->repeat_interval_ms;
    const bool send = (!firing.empty() && new_firing) ||
                      (receiver->send_resolved && new_resolved && !g.sent_firing.empty()) ||
                      all_resolved || repeat;
    if (send && !(firing.empty() && !receiver->send_resolved && !all_resolved)) {
      std::vector<const Alert*> alerts;
      for (const auto& [fp, a] : g.alerts) {
        if (a.state == AlertState::kFiring || receiver->send_resolved) alerts.push_back(&a);
      }
      if (receiver->type == Receiver::Type::kWebhook) {
        int truncated = 0;
        if (receiver->max_alerts > 0 && static_cast<int>(alerts.size()) > receiver->max_alerts) {
          truncated = static_cast<int>(alerts.size()) - receiver->max_alerts;
          alerts.resize(static_cast<size_t>(receiver->max_alerts));
        }
        Notification n;
        n.id = new_id();
        n.receiver = receiver->name;
        n.url = receiver->url;
        n.group_key = g.key;
        n.firing = !firing.empty();
        n.alerts = static_cast<int>(alerts.size());
        n.created_ms = now_ms;
        n.body = WebhookBody(alerts, truncated, receiver->name, g.key, g.group_labels, *config_);
        out.push_back(std::move(n));
      } else if (receiver->type == Receiver::Type::kPagerDuty) {
        // One event per alert that changed since the last send (or all,
        // on a repeat): PagerDuty dedups on the alert's fingerprint.
        for (const Alert* a : alerts) {
          const bool was_firing = g.sent_firing.contains(a->fingerprint);
          const bool is_firing = a->state == AlertState::kFiring;
          if (!repeat && was_firing == is_firing && !(is_firing && !was_firing)) continue;
          if (!is_firing && !was_firing) continue;  // never triggered there
          Notification n;
          n.id = new_id();
          n.receiver = receiver->name;
          n.url = receiver->url;
          n.group_key = g.key;
          n.firing = is_firing;
          n.alerts = 1;
          n.created_ms = now_ms;
          n.body = PagerDutyBody(*a, *receiver, *config_);
          out.push_back(std::move(n));
        }
      }
      g.sent_firing = firing;
      g.sent_resolved = resolved;
      g.last_sent_ms = now_ms;
    }
    // Resolved alerts leave the group once told (or when nothing tells).
    for (auto a = g.alerts.begin(); a != g.alerts.end();) {
      if (a->second.state == AlertState::kResolved) {
        g.sent_resolved.erase(a->first);
        g.sent_firing.erase(a->first);
        a = g.alerts.erase(a);
      } else {
        ++a;
      }
    }
    g.next_flush_ms = now_ms + g.route->group_interval_ms;
    if (g.alerts.empty()) {
      it = groups_.erase(it);
    } else {
      ++it;
    }
  }
  // Alertmanager receivers: what changed now, and every firing alert again
  // each resend period so its endsAt lease never lapses.
  for (const Receiver& r : config_->receivers) {
    if (r.type != Receiver::Type::kAlertmanager) continue;
    std::map<std::string, Alert> batch = std::move(am_changed_[r.name]);
    am_changed_.erase(r.name);
    int64_t& last = am_last_resend_ms_[r.name];
    if (now_ms - last >= config_->alertmanager_resend_ms) {
      for (const auto& [fp, a] : am_firing_[r.name]) batch.emplace(fp, a);
      if (!am_firing_[r.name].empty()) last = now_ms;
    }
    if (batch.empty()) continue;
    Json list = Json::array();
    bool firing = false;
    for (const auto& [fp, a] : batch) {
      list.push_back(PostableAlert(a, *config_, now_ms));
      firing |= a.state == AlertState::kFiring;
    }
    Notification n;
    n.id = new_id();
    n.receiver = r.name;
    n.url = r.url;
    n.firing = firing;
    n.alerts = static_cast<int>(batch.size());
    n.created_ms = now_ms;
    n.body = list.dump();
    out.push_back(std::move(n));
  }
  return out;
}

std::string Dispatcher::EncodeState() const {
  base::ByteWriter w;
  w.Header(std::string_view("DWDS"), uint32_t{1});
  w.U32(static_cast<uint32_t>(groups_.size()));
  for (const auto& [id, g] : groups_) {
    w.Str(g.receiver);
    w.Str(g.key);
    w.Str(g.route_key);
    w.U32(static_cast<uint32_t>(g.group_labels.size()));
    for (const auto& [k, v] : g.group_labels) {
      w.Str(k);
      w.Str(v);
    }
    w.U64(static_cast<uint64_t>(g.next_flush_ms));
    w.U64(static_cast<uint64_t>(g.last_sent_ms));
    w.U32(static_cast<uint32_t>(g.alerts.size()));
    for (const auto& [fp, a] : g.alerts) w.Str(EncodeAlert(a));
    for (const std::set<std::string>* s : {&g.sent_firing, &g.sent_resolved}) {
      w.U32(static_cast<uint32_t>(s->size()));
      for (const std::string& fp : *s) w.Str(fp);
    }
  }
  w.U32(static_cast<uint32_t>(am_firing_.size()));
  for (const auto& [name, alerts] : am_firing_) {
    w.Str(name);
    w.U64(static_cast<uint64_t>(am_last_resend_ms_.contains(name) ? am_last_resend_ms_.at(name)
                                                                   : 0));
    w.U32(static_cast<uint32_t>(alerts.size()));
    for (const auto& [fp, a] : alerts) w.Str(EncodeAlert(a));
  }
  return std::move(w).Finish();
}

absl::Status Dispatcher::RestoreState(std::string_view bytes) {
  base::ByteReader r(bytes);
  if (absl::Status st = r.Header("dispatcher state", std::string_view("DWDS"), uint32_t{1});
      !st.ok()) {
    return st;
  }
  auto bad = [](const char* what) {
    return absl::DataLossError(absl::StrCat("dispatcher state: ", what));
  };
  std::map<std::string, Group> groups;
  uint32_t n = 0;
  if (!r.U32(&n) || n > r.remaining()) return bad("bad group count");
  for (uint32_t i = 0; i < n; ++i) {
    Group g;
    uint32_t labels = 0;
    if (!r.Str(&g.receiver) || !r.Str(&g.key) || !r.Str(&g.route_key) || !r.U32(&labels) ||
        labels > r.remaining()) {
      return bad("truncated group");
    }
    for (uint32_t j = 0; j < labels; ++j) {
      std::string k, v;
      if (!r.Str(&k) || !r.Str(&v)) return bad("truncated group labels");
      g.group_labels[k] = v;
    }
    uint64_t next = 0, last = 0;
    uint32_t alerts = 0;
    if (!r.U64(&next) || !r.U64(&last) || !r.U32(&alerts) || alerts > r.remaining()) {
      return bad("truncated group times");
    }
    g.next_flush_ms = static_cast<int64_t>(next);
    g.last_sent_ms = static_cast<int64_t>(last);
    for (uint32_t j = 0; j < alerts; ++j) {
      std::string enc;
      if (!r.Str(&enc)) return bad("truncated group alert");
      absl::StatusOr<Alert> a = DecodeAlert(enc);
      if (!a.ok()) return a.status();
      g.alerts[a->fingerprint] = std::move(*a);
    }
    for (std::set<std::string>* s : {&g.sent_firing, &g.sent_resolved}) {
      uint32_t m = 0;
      if (!r.U32(&m) || m > r.remaining()) return bad("truncated sent set");
      for (uint32_t j = 0; j < m; ++j) {
        std::string fp;
        if (!r.Str(&fp)) return bad("truncated sent set");
        s->insert(fp);
      }
    }
    g.route = nullptr;
    // Re-attach the route by its key (a reload may have removed it).
    std::function<const alerting::Route*(const alerting::Route&)> find =
        [&](const alerting::Route& route) -> const alerting::Route* {
      if (route.key == g.route_key) return &route;
      for (const alerting::Route& c : route.routes) {
        if (const alerting::Route* x = find(c)) return x;
      }
      return nullptr;
    };
    if (config_->route) g.route = find(*config_->route);
    if (g.route == nullptr) continue;  // dropped: its route is gone
    groups[g.receiver + "\x1f" + g.key] = std::move(g);
  }
  uint32_t am = 0;
  if (!r.U32(&am) || am > r.remaining()) return bad("bad alertmanager count");
  std::map<std::string, std::map<std::string, Alert>> firing;
  std::map<std::string, int64_t> last_resend;
  for (uint32_t i = 0; i < am; ++i) {
    std::string name;
    uint64_t last = 0;
    uint32_t m = 0;
    if (!r.Str(&name) || !r.U64(&last) || !r.U32(&m) || m > r.remaining()) {
      return bad("truncated alertmanager state");
    }
    last_resend[name] = static_cast<int64_t>(last);
    for (uint32_t j = 0; j < m; ++j) {
      std::string enc;
      if (!r.Str(&enc)) return bad("truncated alertmanager alert");
      absl::StatusOr<Alert> a = DecodeAlert(enc);
      if (!a.ok()) return a.status();
      firing[name][a->fingerprint] = std::move(*a);
    }
  }
  if (r.remaining() != 0) return bad("trailing bytes");
  groups_ = std::move(groups);
  am_firing_ = std::move(firing);
  am_last_resend_ms_ = std::move(last_resend);
  return absl::OkStatus();
}

}  // namespace driftwatch::alerting
