#!/usr/bin/python3
"""Golden values for Reports.CompareVersions' per-pair statistics
(service/src/reports/version_comparison.h), from numpy:

  score_correlation   weighted Pearson: np.cov(a, b, aweights=w) -> r
  decision_agreement  sum w [(a >= t) == (b >= t)] / sum w
  mean_abs_diff       np.average(|b - a|, weights=w)
  psi                 edges np.quantile(a, k/10) (linear, duplicates removed),
                      bins (e[k-1], e[k]] (np.searchsorted side="left"),
                      weighted proportions, 0 -> 1e-4, sum (c - r) ln(c / r)
  topk_overlap        per query with >= 2 items: |top-k(a) & top-k(b)| /
                      min(k, n), top-k by score descending, ties by id; mean

Run: /usr/bin/python3 tests/golden/make_version_agreement_golden.py \
       > tests/golden/version_agreement.json
"""
import json
import sys

import numpy as np


def r6(x):
    return [round(float(v), 6) for v in x]


def psi(a, b, w):
    edges = np.unique(np.quantile(a, [k / 10 for k in range(1, 10)]))
    ia = np.searchsorted(edges, a, side="left")
    ib = np.searchsorted(edges, b, side="left")
    n = len(edges) + 1
    ca = np.bincount(ia, weights=w, minlength=n)
    cb = np.bincount(ib, weights=w, minlength=n)
    r = ca / ca.sum()
    c = cb / cb.sum()
    r = np.where(r == 0, 1e-4, r)
    c = np.where(c == 0, 1e-4, c)
    return float(np.sum((c - r) * np.log(c / r)))


def topk(ids, a, b, q, k):
    out = []
    for query in sorted(set(q)):
        idx = [i for i in range(len(ids)) if q[i] == query]
        if len(idx) < 2:
            continue
        top = min(k, len(idx))
        ta = sorted(idx, key=lambda i: (-a[i], ids[i]))[:top]
        tb = sorted(idx, key=lambda i: (-b[i], ids[i]))[:top]
        out.append(len({ids[i] for i in ta} & {ids[i] for i in tb}) / top)
    return float(np.mean(out))


def case(name, a, b, w, threshold, ids=None, q=None, k=10):
    a, b, w = np.array(r6(a)), np.array(r6(b)), np.array(r6(w))
    cov = np.cov(a, b, aweights=w)
    out = {
        "name": name,
        "a": list(map(float, a)),
        "b": list(map(float, b)),
        "w": list(map(float, w)),
        "threshold": threshold,
        "score_correlation": float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])),
        "decision_agreement": float(np.sum(w * ((a >= threshold) == (b >= threshold))) / w.sum()),
        "mean_abs_diff": float(np.average(np.abs(b - a), weights=w)),
        "psi": psi(a, b, w),
    }
    if q is not None:
        out.update(ids=ids, query=q, k=k, topk_overlap=topk(ids, list(a), list(b), q, k))
    return out


rng = np.random.default_rng(20261204)
cases = []
a = rng.beta(2, 5, 500)
cases.append(case("close", a, np.clip(a + rng.normal(0, 0.02, 500), 0, 1), np.ones(500), 0.5))
cases.append(case("weighted_shift", a, np.clip(a * 0.7 + 0.25 + rng.normal(0, 0.1, 500), 0, 1),
                  rng.choice([1.0, 2.0, 4.0], 500), 0.3))
a = rng.normal(0, 1, 300)
b = -0.5 * a + rng.normal(0, 1, 300)
ids = [int(i) for i in rng.permutation(10_000)[:300]]
q = [int(x) for x in rng.integers(0, 12, 300)]
cases.append(case("ranker", a, b, np.ones(300), 0.0, ids=ids, q=q, k=5))
json.dump({"generator": f"numpy {np.__version__}, python {sys.version.split()[0]}",
           "cases": cases}, sys.stdout, indent=1)
print()
