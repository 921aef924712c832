#!/usr/bin/python3
"""Writes sequential.json: seeded streams and the alarm indices expected from
the sequential detectors (tests/detectors/sequential_test.cc checks the C++
gives exactly these indices).

  * Page-Hinkley: river semantics, via the port in river_page_hinkley.py.
  * EWMA and CUSUM: the formulas of DESIGN.md ("Statistical conventions"),
    written here as plain numpy/Python, independently of the C++ code.

Run with the system interpreter (numpy): /usr/bin/python3 make_sequential_golden.py
"""

import json
import math
import os
import random

import numpy as np

import river_page_hinkley

HERE = os.path.dirname(os.path.abspath(__file__))


def run_alarms(x, scan, warmup, mu0, sigma):
    """DESIGN.md run rules shared by EWMA and CUSUM: each run takes mu0/sigma
    as given, or else estimates them from a warm-up of the next `warmup` points
    (mean, std with ddof=1); scan(i, m, s) then reads x from index i and
    returns the index of the run's alarm (None if x ends first); after an
    alarm a new run starts."""
    alarms = []
    i = 0
    n = len(x)
    while i < n:
        if mu0 is not None:
            m, s = mu0, sigma
        else:
            if i + warmup > n:
                break
            w = np.asarray(x[i:i + warmup], dtype=float)
            m, s = float(np.mean(w)), float(np.std(w, ddof=1))
            i += warmup
        alarm = scan(i, m, s)
        if alarm is None:
            break
        alarms.append(alarm)
        i = alarm + 1
    return alarms


def ewma_alarms(x, lam=0.2, L=3.0, warmup=30, mu0=None, sigma=None):
    """DESIGN.md EWMA: the t-th point after warm-up (t = 1, 2, ...) updates z,
    starting from z = mu0."""
    def scan(i, m, s):
        z = m
        for t, j in enumerate(range(i, len(x)), start=1):
            if s == 0:
                alarm = x[j] != m
            else:
                z = lam * x[j] + (1 - lam) * z
                limit = L * s * math.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * t)))
                alarm = abs(z - m) > limit
            if alarm:
                return j
        return None
    return run_alarms(x, scan, warmup, mu0, sigma)


def cusum_alarms(x, k=0.5, h=5.0, warmup=30, mu0=None, sigma=None):
    """DESIGN.md tabular two-sided CUSUM on (x - mu0) / sigma."""
    def scan(i, m, s):
        sp = sn = 0.0
        for j in range(i, len(x)):
            zs = (x[j] - m) / s
            sp = max(0.0, sp + zs - k)
            sn = max(0.0, sn - zs - k)
            if sp > h or sn > h:
                return j
        return None
    return run_alarms(x, scan, warmup, mu0, sigma)


def streams():
    rng = np.random.default_rng(20240601)
    out = {}
    out["shift_up"] = np.concatenate([rng.normal(0, 1, 300), rng.normal(3, 1, 200)])
    out["shift_down"] = np.concatenate([rng.normal(10, 2, 250), rng.normal(4, 2, 250)])
    out["ramp"] = rng.normal(0, 1, 600) + np.concatenate(
        [np.zeros(200), np.linspace(0, 4, 400)])
    out["noise"] = rng.normal(5, 0.5, 1000)
    out["short"] = rng.normal(0, 1, 20) + np.concatenate([np.zeros(10), np.full(10, 50.0)])
    segments = [(0, 1, 150), (4, 1, 150), (-2, 1, 150), (6, 1, 150), (0, 1, 150)]
    out["several"] = np.concatenate([rng.normal(m, s, n) for m, s, n in segments])
    # The example from river's PageHinkley docstring (river reports index 1006).
    py = random.Random(12345)
    out["river_docstring"] = np.array(
        py.choices([0, 1], k=1000) + py.choices(range(4, 8), k=1000), dtype=float)
    return out


# Detector configurations; names and params are read by the C++ test.
PH_CONFIGS = {
    "ph_default": {},
    "ph_up_t10": {"threshold": 10.0, "mode": "up"},
    "ph_down_t10": {"threshold": 10.0, "mode": "down"},
    "ph_both_t10_alpha": {"threshold": 10.0, "alpha": 0.99, "delta": 0.1, "min_instances": 10},
}
EWMA_CONFIGS = {
    "ewma_default": {},
    "ewma_l01_w20": {"lam": 0.1, "L": 2.7, "warmup": 20},
}
CUSUM_CONFIGS = {
    "cusum_default": {},
    "cusum_k1_h3_w10": {"k": 1.0, "h": 3.0, "warmup": 10},
}
# Known-baseline variants use the stream's own generating mean/sigma.
KNOWN = {
    "shift_up": (0.0, 1.0), "shift_down": (10.0, 2.0), "ramp": (0.0, 1.0),
    "noise": (5.0, 0.5), "short": (0.0, 1.0), "several": (0.0, 1.0),
    "river_docstring": (0.5, 0.5),
}


def main():
    cases = []
    for name, x in streams().items():
        xs = [float(v) for v in x]
        expected = {}
        for cfg, p in PH_CONFIGS.items():
            expected[cfg] = river_page_hinkley.detections(xs, **p)
        for cfg, p in EWMA_CONFIGS.items():
            expected[cfg] = ewma_alarms(xs, **p)
        for cfg, p in CUSUM_CONFIGS.items():
            expected[cfg] = cusum_alarms(xs, **p)
        mu0, sigma = KNOWN[name]
        expected["ewma_known"] = ewma_alarms(xs, mu0=mu0, sigma=sigma)
        expected["cusum_known"] = cusum_alarms(xs, mu0=mu0, sigma=sigma)
        cases.append({"name": name, "mu0": mu0, "sigma": sigma, "series": xs,
                      "expected": expected})
    configs = {
        "page_hinkley": PH_CONFIGS,
        "ewma": {k: {("lambda" if a == "lam" else a): v for a, v in p.items()}
                 for k, p in EWMA_CONFIGS.items()},
        "cusum": CUSUM_CONFIGS,
    }
    doc = {
        "generated_by": "tests/golden/make_sequential_golden.py",
        "configs": configs,
        "cases": cases,
    }
    with open(os.path.join(HERE, "sequential.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for c in cases:
        print(c["name"], {k: len(v) for k, v in c["expected"].items()})
        print("   ", {k: v[:4] for k, v in c["expected"].items()})


if __name__ == "__main__":
    main()
