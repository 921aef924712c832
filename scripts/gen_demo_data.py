#!/usr/bin/env python3
"""Writes a reference and a current CSV for the offline demo.

A loan-scoring model's features: the current window has an obvious drift in
`income` (mean shift), `platform` (android share jumps) and `score`, while
`age` and `tenure_months` stay put. Stdlib only, seeded, so the demo is the
same every time.
"""
import csv
import math
import random
import sys


def rows(n, drifted, rng):
    for _ in range(n):
        platform = rng.choices(["ios", "android", "web"],
                               weights=[0.3, 0.6, 0.1] if drifted else [0.45, 0.35, 0.2])[0]
        age = int(rng.gauss(41, 12))
        income = math.exp(rng.gauss(10.8 if drifted else 10.5, 0.5))
        tenure = rng.randint(0, 120)
        country = rng.choice(["US", "DE", "BR", "IN", "JP"])
        score = 1 / (1 + math.exp(-(rng.gauss(0.6 if drifted else 0.0, 1.0))))
        yield {
            "age": age if rng.random() > 0.01 else "",
            "income": round(income, 2),
            "tenure_months": tenure,
            "platform": platform,
            "country": country,
            "score": round(score, 6),
        }


def main():
    out_dir = sys.argv[1]
    rng = random.Random(20261124)
    for name, drifted, n in (("reference", False, 20000), ("current", True, 5000)):
        with open(f"{out_dir}/{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["age", "income", "tenure_months",
                                                   "platform", "country", "score"])
            writer.writeheader()
            for row in rows(n, drifted, rng):
                writer.writerow(row)
    # A PSI-per-hour series for the change-point demo: stable, then a step.
    with open(f"{out_dir}/psi_series.txt", "w") as f:
        for t in range(200):
            level = 0.02 if t < 120 else 0.08
            f.write(f"{max(0.0, rng.gauss(level, 0.01)):.5f}\n")


if __name__ == "__main__":
    main()
