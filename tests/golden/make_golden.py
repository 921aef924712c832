#!/usr/bin/python3
"""Regenerates tests/golden/drift.json and tests/golden/quality.json.

Every expected value comes from scipy / scikit-learn (or, where they have no
weighted variant, from a few lines of numpy that follow DESIGN.md
"Statistical conventions" literally). Inputs are rounded BEFORE anything is
computed and stored in the JSON, so the C++ test sees exactly the numbers
scipy saw. Deterministic: fixed seeds; run with Debian's interpreter:

    /usr/bin/python3 tests/golden/make_golden.py

The stats helpers (numeric_drift, categorical_drift, calibration, ...) are
also imported by tests/cli/crosscheck_scipy.py, so both agree on one reading
of the conventions.
"""

import json
import math
import os
import re
import sys
from fractions import Fraction

import numpy as np
import scipy
import scipy.stats
import sklearn
from scipy.spatial.distance import jensenshannon
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, ndcg_score, roc_auc_score

EPS = 1e-4
MISSING = "__missing__"


# ---------------------------------------------------------------- numeric --

def weighted_quantile_inverted_cdf(values, weights, q):
    """Smallest x whose cumulative weight >= q * W (numpy>=2 inverted_cdf).

    Exact rational arithmetic when the weights are integers (the golden
    cases), so a cumulative weight exactly equal to q*W is decided exactly.
    """
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.asarray(weights, dtype=float)[order]
    if np.all(w == np.round(w)):
        q = Fraction(q).limit_denominator(10**6)
        total = int(w.sum())
        cum = 0
        for x, wi in zip(v, w):
            cum += int(wi)
            if cum >= q * total:
                return float(x)
        return float(v[-1])
    cdf = np.cumsum(w) / w.sum()
    i = int(np.searchsorted(cdf, q, side="left"))
    return float(v[min(i, len(v) - 1)])


def reference_edges(ref, ref_w, bins):
    # A reference is weighted when some weight is not 1 (as WeightedSample
    # decides): all-ones weights give numpy's linear quantiles.
    if ref_w is None or np.all(np.asarray(ref_w) == 1.0):
        qs = [np.quantile(ref, k / bins) for k in range(1, bins)]
    else:
        qs = [weighted_quantile_inverted_cdf(ref, ref_w, k / bins) for k in range(1, bins)]
    return np.unique(np.asarray(qs, dtype=float))


def bin_proportions(x, w, edges):
    idx = np.searchsorted(edges, x, side="left")  # (e[k-1], e[k]]
    counts = np.bincount(idx, weights=w, minlength=len(edges) + 1).astype(float)
    return counts / counts.sum()


def divergences(r, c):
    r = np.where(r == 0, EPS, r)
    c = np.where(c == 0, EPS, c)
    psi = float(np.sum((c - r) * np.log(c / r)))
    kl = float(np.sum(c * np.log(c / r)))
    js = float(jensenshannon(r, c, base=2))
    return psi, kl, js


def weighted_ks_statistic(a, aw, b, bw):
    support = np.unique(np.concatenate([a, b]))
    oa = np.argsort(a, kind="stable")
    ob = np.argsort(b, kind="stable")
    ca = np.concatenate([[0.0], np.cumsum(aw[oa])])
    cb = np.concatenate([[0.0], np.cumsum(bw[ob])])
    fa = ca[np.searchsorted(a[oa], support, side="right")] / ca[-1]
    fb = cb[np.searchsorted(b[ob], support, side="right")] / cb[-1]
    return float(np.max(np.abs(fa - fb)))


def kish(w):
    return float(w.sum() ** 2 / np.sum(w * w))


def numeric_drift(ref, cur, bins, ref_w=None, cur_w=None):
    """Every DESIGN.md statistic for one numeric feature."""
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    weighted = ref_w is not None or cur_w is not None
    rw = np.ones_like(ref) if ref_w is None else np.asarray(ref_w, dtype=float)
    cw = np.ones_like(cur) if cur_w is None else np.asarray(cur_w, dtype=float)
    edges = reference_edges(ref, ref_w, bins)
    r = bin_proportions(ref, rw, edges)
    c = bin_proportions(cur, cw, edges)
    psi, kl, js = divergences(r, c)
    if weighted:
        d = weighted_ks_statistic(ref, rw, cur, cw)
        nr, nc = kish(rw), kish(cw)
        u_w, v_w = rw, cw
        mean = np.sum(rw * ref) / rw.sum()
        std = math.sqrt(np.sum(rw * (ref - mean) ** 2) / rw.sum())
    else:
        # The statistic does not depend on `method`; asymp skips the slow
        # exact p-value (which DESIGN.md does not use).
        d = float(scipy.stats.ks_2samp(ref, cur, method="asymp").statistic)
        nr, nc = float(len(ref)), float(len(cur))
        u_w = v_w = None
        std = float(np.std(ref))
    if ref.min() == ref.max():
        std = 0.0  # a constant reference: exactly 0, not rounding noise
    n_e = nr * nc / (nr + nc)
    w1 = float(scipy.stats.wasserstein_distance(ref, cur, u_w, v_w))
    return {
        "n_reference": float(rw.sum()),
        "n_current": float(cw.sum()),
        "edges": [float(e) for e in edges],
        "reference_proportions": [float(v) for v in r],
        "current_proportions": [float(v) for v in c],
        "psi": psi,
        "kl": kl,
        "js": js,
        "ks_statistic": d,
        "ks_n_effective": n_e,
        "ks_p_value": float(scipy.stats.kstwobign.sf(math.sqrt(n_e) * d)),
        "wasserstein": w1,
        "wasserstein_norm": w1 / std if std > 0 else 0.0,
    }


# ------------------------------------------------------------ categorical --

def categorical_drift(ref, cur, ref_w=None, cur_w=None):
    """ref/cur: lists of category strings, None = missing (own bin)."""
    ref = [MISSING if v is None else v for v in ref]
    cur = [MISSING if v is None else v for v in cur]
    rw = np.ones(len(ref)) if ref_w is None else np.asarray(ref_w, dtype=float)
    cw = np.ones(len(cur)) if cur_w is None else np.asarray(cur_w, dtype=float)
    cats = sorted(set(ref) | set(cur))
    index = {k: i for i, k in enumerate(cats)}
    rc = np.zeros(len(cats))
    cc = np.zeros(len(cats))
    np.add.at(rc, [index[v] for v in ref], rw)
    np.add.at(cc, [index[v] for v in cur], cw)
    r, c = rc / rc.sum(), cc / cc.sum()
    psi, kl, js = divergences(r, c)
    # chisquare: f_obs = current counts (rescaled to the Kish size when
    # weighted, per drift.h), f_exp = renormalised floored reference * n.
    n = float(len(cur)) if cur_w is None else kish(cw)
    f_obs = cc if cur_w is None else c * n
    p = np.where(r == 0, EPS, r)
    p = p / p.sum()
    chi = scipy.stats.chisquare(f_obs=f_obs, f_exp=p * n)
    return {
        "n_reference": float(rw.sum()),
        "n_current": float(cw.sum()),
        "categories": cats,
        "reference_proportions": [float(v) for v in r],
        "current_proportions": [float(v) for v in c],
        "psi": psi,
        "kl": kl,
        "js": js,
        "chi2_statistic": float(chi.statistic),
        "chi2_df": len(cats) - 1,
        # One bin: df = 0 and scipy returns nan; the statistic is 0, p = 1.
        "chi2_p_value": float(chi.pvalue) if len(cats) > 1 else 1.0,
    }


# ---------------------------------------------------------------- quality --

def calibration_bins(scores, bins):
    # sklearn 1.2 calibration_curve(strategy="uniform") does exactly this:
    # np.searchsorted(np.linspace(0, 1, B + 1)[1:-1], y_prob) (side left),
    # i.e. (lower, upper] with 0 in the first bin.
    return np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], scores, side="left")


def calibration(scores, labels, weights=None, bins=10):
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    b = calibration_bins(s, bins)
    wt = np.bincount(b, weights=w, minlength=bins)
    ws = np.bincount(b, weights=w * s, minlength=bins)
    wy = np.bincount(b, weights=w * y, minlength=bins)
    nz = wt > 0
    mean_s = ws[nz] / wt[nz]
    mean_y = wy[nz] / wt[nz]
    gap = np.abs(mean_y - mean_s)
    out = {
        "n": float(w.sum()),
        "ece": float(np.sum(wt[nz] / w.sum() * gap)),
        "mce": float(np.max(gap)),
        "brier": float(brier_score_loss(y, s, sample_weight=None if weights is None else w)),
        "reliability": [
            {"bin": int(i), "mean_score": float(ms), "mean_label": float(ml), "count": float(ct)}
            for i, ms, ml, ct in zip(np.nonzero(nz)[0], mean_s, mean_y, wt[nz])
        ],
    }
    if weights is None:
        prob_true, prob_pred = calibration_curve(y, s, n_bins=bins, strategy="uniform")
        assert np.allclose(prob_true, mean_y, rtol=1e-13, atol=0), "binning differs from sklearn"
        assert np.allclose(prob_pred, mean_s, rtol=1e-13, atol=0), "binning differs from sklearn"
        for rb, pt, pp in zip(out["reliability"], prob_true, prob_pred):
            rb["mean_label"], rb["mean_score"] = float(pt), float(pp)  # sklearn's own numbers
    return out


def query_ndcgs(qids, scores, rel, k):
    """Per query (first-appearance order): (qid, ndcg, weight index)."""
    out = []
    seen = {}
    for i, q in enumerate(qids):
        seen.setdefault(q, []).append(i)
    for q, rows in seen.items():
        if len(rows) < 2:
            continue
        v = ndcg_score([np.asarray(rel, dtype=float)[rows]],
                       [np.asarray(scores, dtype=float)[rows]], k=k)
        out.append((q, float(v), rows[0]))
    return out


def mean_ndcg(qids, scores, rel, k, weights=None):
    per = query_ndcgs(qids, scores, rel, k)
    w = np.array([1.0 if weights is None else float(weights[i]) for _, _, i in per])
    v = np.array([x for _, x, _ in per])
    return float(np.sum(w * v) / np.sum(w)), per


# ------------------------------------------------------------------ cases --

def r6(a):
    return np.round(np.asarray(a, dtype=float), 6)


def generator():
    return {
        "script": "tests/golden/make_golden.py",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
    }


def numeric_case(name, bins, ref, cur, ref_w=None, cur_w=None, note=""):
    case = {"name": name, "bins": bins, "note": note,
            "reference": {"values": [float(v) for v in ref]},
            "current": {"values": [float(v) for v in cur]}}
    if ref_w is not None:
        case["reference"]["weights"] = [float(v) for v in ref_w]
    if cur_w is not None:
        case["current"]["weights"] = [float(v) for v in cur_w]
    case["expected"] = numeric_drift(ref, cur, bins, ref_w, cur_w)
    return case


def categorical_case(name, ref, cur, ref_w=None, cur_w=None, note=""):
    case = {"name": name, "note": note,
            "reference": {"values": list(ref)}, "current": {"values": list(cur)}}
    if ref_w is not None:
        case["reference"]["weights"] = [float(v) for v in ref_w]
    if cur_w is not None:
        case["current"]["weights"] = [float(v) for v in cur_w]
    case["expected"] = categorical_drift(ref, cur, ref_w, cur_w)
    return case


def drift_golden():
    rng = np.random.default_rng(20240601)
    weights_from = np.array([1.0, 2.0, 5.0, 10.0])  # 1 / sample_rate
    numeric = []
    numeric.append(numeric_case(
        "normal_shift", 10, r6(rng.normal(0, 1, 2000)), r6(rng.normal(0.3, 1.2, 1500)),
        note="N(0,1) vs N(0.3,1.2)"))
    numeric.append(numeric_case(
        "lognormal_scaled", 10, r6(rng.lognormal(0, 0.8, 1500)),
        r6(1.3 * rng.lognormal(0, 0.8, 1200)), note="lognormal vs 1.3 x lognormal"))
    numeric.append(numeric_case(
        "discrete_ties", 10, rng.poisson(3.0, 1000).astype(float),
        rng.poisson(3.5, 800).astype(float),
        note="Poisson: values on edges, duplicate edges removed"))
    numeric.append(numeric_case(
        "small_n", 4, r6(rng.normal(0, 1, 7)), r6(rng.normal(0.5, 1, 11)),
        note="n=7 vs n=11, bins=4, interpolated edges"))
    numeric.append(numeric_case(
        "small_n_bins10", 10, r6(rng.normal(0, 1, 7)), r6(rng.normal(0.5, 1, 11)),
        note="n=7 vs n=11, bins=10"))
    zeros_ref = np.where(rng.random(1200) < 0.6, 0.0, r6(rng.exponential(2.0, 1200)))
    zeros_cur = np.where(rng.random(900) < 0.4, 0.0, r6(rng.exponential(2.5, 900)))
    numeric.append(numeric_case(
        "many_duplicates", 10, zeros_ref, zeros_cur,
        note="60% zeros in the reference: the first 6 edges collapse to 0"))
    numeric.append(numeric_case(
        "weighted_normal", 10, r6(rng.normal(0, 1, 1000)), r6(rng.normal(0.2, 1.1, 800)),
        rng.choice(weights_from, 1000), rng.choice(weights_from, 800),
        note="weights 1/sample_rate; inverted-CDF weighted edges, Kish sizes"))
    numeric.append(numeric_case(
        "weighted_discrete", 4, rng.integers(0, 6, 300).astype(float),
        rng.integers(0, 7, 250).astype(float),
        rng.choice(weights_from, 300), rng.choice(weights_from, 250),
        note="weighted with ties: cumulative weight can hit q*W exactly"))
    numeric.append(numeric_case(
        "constant_reference", 10, np.full(10, 0.1), np.full(3, 0.2),
        note="reference std is 0 (numpy.std gives exactly 0): wasserstein_norm = 0"))
    same = r6(rng.normal(5, 2, 500))
    numeric.append(numeric_case("identical", 10, same, same.copy(),
                                note="current == reference: everything 0, p = 1"))

    def cats(names, probs, n):
        probs = np.asarray(probs, dtype=float)
        return [str(v) for v in rng.choice(names, n, p=probs / probs.sum())]

    categorical = []
    categorical.append(categorical_case(
        "basic_new_and_vanished", cats(list("abcdef"), [30, 25, 20, 15, 7, 3], 500),
        cats(list("abcdeg"), [20, 25, 20, 20, 10, 5], 400),
        note="'f' vanishes (current 0 -> eps), 'g' is new (reference 0 -> eps)"))
    zipf = [f"c{i:02d}" for i in range(30)]
    categorical.append(categorical_case(
        "zipf_30", cats(zipf, 1.0 / np.arange(1, 31), 3000),
        cats(zipf[3:] + ["zz"], 1.0 / np.arange(1, 29) ** 0.8, 2000),
        note="30 Zipf categories, three vanish, one new"))
    ref = cats(["ios", "android", "web"], [5, 4, 1], 600)
    cur = cats(["ios", "android", "web"], [4, 4, 2], 500)
    ref = [None if rng.random() < 0.05 else v for v in ref]
    cur = [None if rng.random() < 0.12 else v for v in cur]
    categorical.append(categorical_case(
        "weighted_with_missing", ref, cur, rng.choice(weights_from, 600),
        rng.choice(weights_from, 500),
        note="null = missing bin __missing__; chi2 on counts rescaled to the current Kish size"))
    categorical.append(categorical_case(
        "unweighted_with_missing", ref, cur, note="same rows, no weights"))
    # Mild shifts over the same categories: chi2 p-values away from 0.
    five = ["red", "green", "blue", "cyan", "gray"]
    categorical.append(categorical_case(
        "mild_shift", cats(five, [30, 25, 20, 15, 10], 400),
        cats(five, [28, 26, 20, 16, 10], 300), note="same categories, p-value in (0, 1)"))
    categorical.append(categorical_case(
        "mild_shift_weighted", cats(five, [30, 25, 20, 15, 10], 500),
        cats(five, [29, 25, 21, 15, 10], 350), rng.choice(weights_from, 500),
        rng.choice(weights_from, 350), note="weighted, p-value in (0, 1)"))
    same_cats = cats(five, [1, 1, 1, 1, 1], 250)
    categorical.append(categorical_case(
        "identical", same_cats, list(same_cats), note="current == reference: p = 1"))

    xs = [0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0,
          1.1, 1.2, 1.3, 1.358, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0]
    kolmogorov = [{"x": x, "sf": float(scipy.stats.kstwobign.sf(x))} for x in xs]
    return {"generator": generator(), "numeric": numeric, "categorical": categorical,
            "kolmogorov": kolmogorov}


def quality_golden():
    rng = np.random.default_rng(20240602)
    weights_from = np.array([1.0, 2.0, 5.0, 10.0])
    binary = []

    def labels_for(s):
        return (rng.random(len(s)) < np.clip(0.8 * s + 0.1, 0, 1)).astype(float)

    # Unweighted: 3-decimal scores, plus every bin edge exactly.
    s = np.round(rng.beta(2, 3, 1000), 3)
    s[:11] = np.linspace(0, 1, 11).round(1)
    y = labels_for(s)
    binary.append({"name": "unweighted_edges", "scores": s.tolist(), "labels": y.tolist(),
                   "expected": {"auc": float(roc_auc_score(y, s)), **calibration(s, y)}})
    # Weighted with heavy ties (2-decimal scores).
    s = np.round(rng.random(400), 2)
    s[:6] = [0.0, 1.0, 0.3, 0.7, 0.5, 0.1]
    y = labels_for(s)
    w = rng.choice(weights_from, 400)
    binary.append({"name": "weighted_ties", "scores": s.tolist(), "labels": y.tolist(),
                   "weights": w.tolist(),
                   "expected": {"auc": float(roc_auc_score(y, s, sample_weight=w)),
                                **calibration(s, y, w)}})
    # Few distinct scores: AUC dominated by ties, several empty bins.
    s = rng.choice([0.05, 0.2, 0.2, 0.55, 0.9], 200)
    y = labels_for(s)
    binary.append({"name": "coarse_scores", "scores": s.tolist(), "labels": y.tolist(),
                   "expected": {"auc": float(roc_auc_score(y, s)), **calibration(s, y)}})

    # NDCG: shuffled rows (queries not contiguous), graded relevance 0..3.
    qids, sc, rel = [], [], []
    for qi in range(40):
        m = int(rng.integers(2, 16))
        qids += [f"q{qi:02d}"] * m
        sc += np.round(rng.random(m), 1).tolist()  # 1 decimal: many ties
        rel += rng.integers(0, 4, m).astype(float).tolist()
    # Tie group straddling k = 3: ranks 2..5 share one score.
    qids += ["tie"] * 7
    sc += [0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.1]
    rel += [1.0, 0.0, 3.0, 0.0, 2.0, 1.0, 3.0]
    # All-zero relevance: sklearn scores 0.
    qids += ["zero"] * 4
    sc += [0.4, 0.3, 0.2, 0.1]
    rel += [0.0, 0.0, 0.0, 0.0]
    # All scores tied.
    qids += ["alltied"] * 5
    sc += [0.5] * 5
    rel += [3.0, 0.0, 1.0, 0.0, 2.0]
    order = rng.permutation(len(qids))
    qids = [qids[i] for i in order]
    sc = [float(sc[i]) for i in order]
    rel = [float(rel[i]) for i in order]
    w = rng.choice(weights_from, len(qids)).tolist()
    ndcg = {"query_ids": qids, "scores": sc, "relevance": rel, "weights": w, "expected": []}
    for k in (3, 5, 10):
        mean_u, per = mean_ndcg(qids, sc, rel, k)
        mean_w, _ = mean_ndcg(qids, sc, rel, k, w)
        ndcg["expected"].append({"k": k, "mean": mean_u, "weighted_mean": mean_w,
                                 "per_query": {q: v for q, v, _ in per}})
    return {"generator": generator(), "binary": binary, "ndcg": ndcg}


def dumps(data):
    """Indented JSON with scalar arrays on one line (small, diffable)."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    return text + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, data in (("drift.json", drift_golden()), ("quality.json", quality_golden())):
        path = os.path.join(here, name)
        with open(path, "w") as f:
            f.write(dumps(data))
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
