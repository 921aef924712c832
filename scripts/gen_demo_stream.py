#!/usr/bin/env python3
"""Writes the live demo's model schema and event stream.

A loan-default model with three numeric features, a categorical one, a
binary score and two slice keys. Events fill two event-time ranges ending
at "now": a baseline period (50 to 30 minutes ago) and a current period
(the last 20 minutes) in which only platform=android drifts (income up,
score up). Stdlib only, seeded.

usage: gen_demo_stream.py OUT_DIR NOW_MS
"""
import csv
import json
import math
import random
import sys

PLATFORMS = ["ios", "android", "web"]
APP_VERSIONS = ["7.1", "7.2", "7.3", "8.0"]
COUNTRIES = ["US", "DE", "BR", "IN", "JP"]


def features(rng, drifted):
    age = max(18, int(rng.gauss(41, 12)))
    income = math.exp(rng.gauss(10.9 if drifted else 10.5, 0.5))
    tenure = rng.randint(0, 120)
    score = 1 / (1 + math.exp(-rng.gauss(0.8 if drifted else 0.0, 1.0)))
    return age, income, tenure, score


def main():
    out_dir, now_ms = sys.argv[1], int(sys.argv[2])
    rng = random.Random(42)
    reference = [features(rng, False) for _ in range(2000)]
    schema = {
        "model": {"modelId": "loan-default", "modelVersion": "v1"},
        "features": [
            {"name": "age", "kind": "FEATURE_KIND_NUMERIC",
             "referenceSample": [r[0] for r in reference]},
            {"name": "income", "kind": "FEATURE_KIND_NUMERIC",
             "referenceSample": [round(r[1], 2) for r in reference]},
            {"name": "tenure_months", "kind": "FEATURE_KIND_NUMERIC",
             "referenceSample": [r[2] for r in reference]},
            {"name": "country", "kind": "FEATURE_KIND_CATEGORICAL"},
        ],
        "sliceKeys": [{"key": "platform"}, {"key": "app_version"}],
        "scoreKind": "SCORE_KIND_BINARY_PROBABILITY",
        "scoreNames": ["score"],
        "labelKind": "LABEL_KIND_BINARY",
    }
    with open(f"{out_dir}/schema.json", "w") as f:
        json.dump(schema, f)

    minute = 60_000
    periods = [(now_ms - 50 * minute, now_ms - 30 * minute, False),
               (now_ms - 20 * minute, now_ms, True)]
    with open(f"{out_dir}/events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event_id", "event_time_ms", "age", "income", "tenure_months", "country",
                    "score", "platform", "app_version"])
        n = 0
        for start, end, drift_period in periods:
            for i in range(60_000):
                t = start + (end - start) * i // 60_000
                platform = rng.choices(PLATFORMS, weights=[0.45, 0.35, 0.2])[0]
                age, income, tenure, score = features(rng, drift_period and platform == "android")
                w.writerow([f"evt-{n:07d}", t, age, round(income, 2), tenure,
                            rng.choice(COUNTRIES), round(score, 6), platform,
                            rng.choice(APP_VERSIONS)])
                n += 1


if __name__ == "__main__":
    main()
