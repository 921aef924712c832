#!/usr/bin/python3
"""Service statistics against the exact ones, as a new user sees them.

Starts driftwatchd, registers one model per case, uploads a reference
profile, pushes current events of the last few minutes, and compares
`driftctl report --json` (the summary path) with `driftctl stats --json`
(the exact path) on the same rows. Prints one line per statistic with the
service value, its exposed bound (when the report has one) and the exact
value. Reproduces the numbers of issue 8; used before and after its fixes.

  tests/service/service_accuracy.py --build build-h1 [--seed 7]
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if (isinstance(v, float) and np.isnan(v)) else v for v in r])


def cases(rng):
    n_ref, n_cur = 20000, 20000
    out = []
    # 1. Weighted null rate: sample rates 1, 0.5, 0.1; nulls more likely at rate 0.1.
    rates = rng.choice([1.0, 0.5, 0.1], size=n_cur)
    x = rng.normal(0, 1, n_cur)
    null = rng.random(n_cur) < np.where(rates == 0.1, 0.35, 0.05)
    x[null] = np.nan
    out.append(dict(name="nullrate", feature={"reference_sample": list(rng.normal(0, 1, 2000))},
                    ref=rng.normal(0, 1, n_ref), cur=x, rates=rates))
    # 2. Integer-valued with summary_edges 0..30.
    out.append(dict(name="integer", feature={"summary_edges": [float(k) for k in range(31)]},
                    ref=rng.poisson(4, n_ref).astype(float),
                    cur=rng.poisson(4.6, n_cur).astype(float)))
    # 3. A 2,000-row reference sample (64 fine bins), lognormal with a shift.
    out.append(dict(name="sample2000",
                    feature={"reference_sample": list(rng.lognormal(3, 1, 2000))},
                    ref=rng.lognormal(3, 1, n_ref), cur=rng.lognormal(3.3, 1.1, n_cur)))
    # 4. Neither edges nor a sample: the log-spaced default edges.
    out.append(dict(name="default_edges", feature={},
                    ref=rng.normal(50, 10, n_ref), cur=rng.normal(52, 10, n_cur)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    driftwatchd = os.path.join(args.build, "service", "driftwatchd")
    driftctl = os.path.join(args.build, "cli", "driftctl")
    rng = np.random.default_rng(args.seed)
    tmp = tempfile.mkdtemp(prefix="dw-accuracy-")
    ports = os.path.join(tmp, "ports")
    log = open(os.path.join(tmp, "driftwatchd.log"), "w")
    server = subprocess.Popen([driftwatchd, "--listen", "127.0.0.1:0", "--metrics-listen",
                               "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data"),
                               "--port-file", ports], stdout=log, stderr=log)
    try:
        for _ in range(200):
            if os.path.exists(ports) and os.path.getsize(ports) > 0:
                break
            time.sleep(0.05)
        grpc = open(ports).read().split("grpc=")[1].split()[0]
        addr = f"127.0.0.1:{grpc}"

        def ctl(*a):
            r = subprocess.run([driftctl, *a, "--server", addr], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"driftctl {' '.join(a)}: {r.stderr}")
            return r.stdout

        now_ms = int(time.time() * 1000)
        for case in cases(rng):
            name = case["name"]
            feature = {"name": "x", "kind": "FEATURE_KIND_NUMERIC", "nullable": True,
                       **case["feature"]}
            schema = {"model": {"model_id": name, "model_version": "1"},
                      "features": [feature],
                      "score_kind": "SCORE_KIND_BINARY_PROBABILITY", "score_names": ["p"]}
            sp = os.path.join(tmp, f"{name}.json")
            json.dump(schema, open(sp, "w"))
            ctl("register", "--schema", sp)
            ref, cur = case["ref"], case["cur"]
            rates = case.get("rates", np.ones(len(cur)))
            p_ref = 1 / (1 + np.exp(-rng.normal(-1, 1.5, len(ref))))
            p_cur = 1 / (1 + np.exp(-rng.normal(-0.8, 1.5, len(cur))))
            ref_csv = os.path.join(tmp, f"{name}_ref.csv")
            cur_csv = os.path.join(tmp, f"{name}_cur.csv")
            write_csv(ref_csv, ["x", "p", "w"], zip(ref, p_ref, np.ones(len(ref))))
            times = now_ms - 240_000 + np.arange(len(cur)) * (200_000 // len(cur))
            write_csv(cur_csv, ["event_id", "event_time_ms", "x", "p", "sample_rate", "w"],
                      ((f"e{i}", int(t), v, s, r, 1 / r)
                       for i, (t, v, s, r) in enumerate(zip(times, cur, p_cur, rates))))
            exact_csv = os.path.join(tmp, f"{name}_cur_exact.csv")
            write_csv(exact_csv, ["x", "p", "w"], zip(cur, p_cur, 1 / rates))
            ctl("baseline", "create", "--model", name, "--profile", ref_csv)
            ctl("push", cur_csv, "--model", name, "--sample-rate-column", "sample_rate")
            rep = json.loads(ctl("report", "--model", name, "--window", "1h", "--json"))
            exact = json.loads(subprocess.run(
                [driftctl, "stats", "--reference", ref_csv, "--current", exact_csv,
                 "--weight-column", "w", "--json"], capture_output=True, text=True).stdout)
            ex = {f["name"]: f for f in exact["features"]}
            for got in rep["features"] + rep["scores"]:
                e = ex[got["name"]]
                label = f"{name}/{got['name']}"
                print(f"{label:26s} null_rate  service {got['null_rate_current']:.4f}  "
                      f"exact {e['null_rate_current']:.4f}")
                for k in ("psi", "kl", "js"):
                    print(f"{label:26s} {k:10s} service {got[k]:.4f}  exact {e[k]:.4f}")
                ks, eks = got["ks"], e["ks"]
                print(f"{label:26s} ks         service {ks['statistic']:.4f} "
                      f"+{ks.get('error_bound', 0):.4f}  exact {eks['statistic']:.4f}")
                nan = float("nan")
                print(f"{label:26s} w1         service {got['wasserstein']:.4f} "
                      f"±{got.get('wasserstein_error_bound', nan):.4f}  "
                      f"exact {e['wasserstein']:.4f}")
                print(f"{label:26s} w1/sd      service {got['wasserstein_norm']:.4f} "
                      f"±{got.get('wasserstein_norm_error_bound', nan):.4f}  "
                      f"exact {e['wasserstein_norm']:.4f}")
    finally:
        server.terminate()
        server.wait(timeout=20)
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
