#!/usr/bin/env python3
"""Alert latency, end to end: from the ack of the batch that makes a rule
fire to the webhook receiving its notification.

usage: alert_latency.py BUILD_DIR [N]

driftwatchd (a fresh data dir) evaluates every second; one rule with
`for: 0` fires on PSI > 0.25 per slice; the route groups by slice with
group_wait 0s, so each drifting slice is one notification. N times: push
(driftctl push, which returns at the ack) 300 drifted events of a new slice
value, and time until the receiver (in this process) gets that slice's
notification. Prints p50 / p90 / p99 / max. What bounds it: the evaluation
interval (1 s: the change waits for the next evaluation), the flush
interval (1 s: an evaluation reads committed buckets), then one relay send.
"""
import http.server
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time


def main():
    build = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    driftwatchd = os.path.join(build, "service", "driftwatchd")
    driftctl = os.path.join(build, "cli", "driftctl")
    work = tempfile.mkdtemp(prefix="alert_latency_")
    received = {}  # slice -> receipt time
    lock = threading.Lock()

    class Hook(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            now = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            for a in body["alerts"]:
                if a["status"] == "firing":
                    with lock:
                        received.setdefault(a["labels"]["slice"], now)

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    with open(f"{work}/config.yaml", "w") as f:
        f.write("notifications:\n"
                f"  receivers: [{{name: hook, type: webhook, url: 'http://127.0.0.1:{hook.server_address[1]}/h'}}]\n"
                "  route: {receiver: hook, group_by: [slice], group_wait: 0s, group_interval: 1m}\n")
    with open(f"{work}/rules.yaml", "w") as f:
        f.write("rules:\n  - name: drift\n    slices: ['platform=~\".+\"']\n"
                "    condition: 'psi{feature=\"x\"} > 0.25'\n    runbook_url: runbooks/feature-drift.md\n")
    server = subprocess.Popen(
        [driftwatchd, "--config", f"{work}/config.yaml", "--listen", "127.0.0.1:0",
         "--metrics-listen", "", "--data-dir", f"{work}/data", "--port-file", f"{work}/ports",
         "--rules-file", f"{work}/rules.yaml", "--evaluator-interval", "1s",
         "--evaluator-window", "10m"],
        stdout=subprocess.DEVNULL, stderr=open(f"{work}/server.log", "w"))
    try:
        for _ in range(100):
            if os.path.exists(f"{work}/ports") and os.path.getsize(f"{work}/ports") > 0:
                break
            time.sleep(0.1)
        port = open(f"{work}/ports").read().split()[0].split("=")[1]
        srv = ["--server", f"127.0.0.1:{port}"]
        with open(f"{work}/schema.json", "w") as f:
            json.dump({"model": {"modelId": "lat", "modelVersion": "v1"},
                       "features": [{"name": "x", "kind": "FEATURE_KIND_NUMERIC"}],
                       "scoreKind": "SCORE_KIND_BINARY_PROBABILITY", "scoreNames": ["score"],
                       "sliceKeys": [{"key": "platform"}]}, f)
        subprocess.run([driftctl, "register", "--schema", f"{work}/schema.json", *srv],
                       check=True, stdout=subprocess.DEVNULL)
        rng = random.Random(1)
        with open(f"{work}/ref.csv", "w") as f:
            f.write("x,score\n" + "".join(f"{rng.gauss(0, 1)},0.5\n" for _ in range(3000)))
        subprocess.run([driftctl, "baseline", "create", "--model", "lat", "--profile",
                        f"{work}/ref.csv", *srv], check=True, stdout=subprocess.DEVNULL)
        latencies = []
        t = int(time.time() * 1000) - 60_000
        for i in range(n):
            slice_value = f"p{i}"
            path = f"{work}/batch{i}.csv"
            with open(path, "w") as f:
                f.write("event_id,event_time_ms,x,score,platform\n")
                for j in range(300):
                    f.write(f"e{i}-{j},{t + j},{rng.gauss(3, 1)},0.5,{slice_value}\n")
            subprocess.run([driftctl, "push", path, "--model", "lat", "--batch", "300", *srv],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            acked = time.time()
            key = f"platform={slice_value}"
            deadline = acked + 30
            while time.time() < deadline:
                with lock:
                    if key in received:
                        break
                time.sleep(0.005)
            with lock:
                if key not in received:
                    print(f"slice {key}: no notification within 30 s", file=sys.stderr)
                    continue
                latencies.append(received[key] - acked)
        latencies.sort()

        def q(p):
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))]
        print(f"alert latency, ack -> webhook, {len(latencies)} alerts (evaluator.interval 1s, "
              f"ingest.flush_interval 1s, group_wait 0s): p50 {q(0.5):.2f} s, p90 {q(0.9):.2f} s, "
              f"p99 {q(0.99):.2f} s, max {latencies[-1]:.2f} s")
    finally:
        server.terminate()
        server.wait(timeout=30)
        hook.shutdown()


if __name__ == "__main__":
    main()
