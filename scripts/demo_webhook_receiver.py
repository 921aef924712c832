#!/usr/bin/env python3
"""A small local webhook receiver for `make demo` (loopback only).

usage: demo_webhook_receiver.py PORT_FILE LOG_FILE SECRET

Listens on 127.0.0.1 (a free port, written to PORT_FILE), checks each
POST's Standard Webhooks signature (HMAC-SHA256 of "id.timestamp.body"
with the whsec_ key), de-duplicates on webhook-id, answers 200, and
appends one readable block per notification to LOG_FILE: status, group,
and per alert its rule, slice, feature, value and runbook link.
"""
import base64
import hashlib
import hmac
import http.server
import json
import sys


def main():
    port_file, log_file, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    key = base64.b64decode(secret[len("whsec_"):])
    seen = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            msg_id = self.headers.get("webhook-id", "")
            ts = self.headers.get("webhook-timestamp", "")
            expected = base64.b64encode(
                hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
            signatures = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split()
                          if s.startswith("v1,")]
            valid = any(hmac.compare_digest(expected, s) for s in signatures)
            self.send_response(200 if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with open(log_file, "a") as log:
                if not valid:
                    log.write(f"REJECTED {msg_id}: bad signature\n")
                    return
                if msg_id in seen:
                    log.write(f"(duplicate delivery of {msg_id} ignored)\n")
                    return
                seen.add(msg_id)
                doc = json.loads(body)
                log.write(f"notification {msg_id} (signature ok): {doc['status']}, "
                          f"group {doc['groupKey']}, {len(doc['alerts'])} alerts\n")
                for a in doc["alerts"]:
                    labels = a["labels"]
                    value = a["annotations"].get("summary", "")
                    log.write(f"  {a['status']:8s} {labels.get('alertname', ''):24s} "
                              f"slice={labels.get('slice', '')} "
                              f"feature={labels.get('feature', '-')} severity={labels.get('severity', '')}\n"
                              f"           {value}\n"
                              f"           runbook: {a['annotations'].get('runbook_url', '')}\n")

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
