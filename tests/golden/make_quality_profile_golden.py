#!/usr/bin/python3
"""Golden values for detectors/quality_profile.h, from numpy 1.24 /
scikit-learn 1.2 (tests/detectors/quality_profile_test.cc reads them):

- "delay": label delays (ms; lognormal, some negative, some below 1 ms)
  with integer weights (1 / sample_rate) and their weighted "inverted CDF"
  quantiles, as np.quantile(np.repeat(x, w), q, method="inverted_cdf")
  (numpy 1.24 has no weighted quantile; with integer weights repeating the
  rows is that definition). The total weight is odd, so q * W is never an
  integer for the stored q and no quantile sits on a cumulative-weight tie.
- "calibration": a baseline's labelled rows, each non-empty fine bin with
  both classes present and real-valued weights (so no two PAV blocks have
  equal rates and sklearn's fitted runs are exactly the PAV blocks); the
  map sklearn.isotonic.isotonic_regression fits over the bins' positive
  rates (weighted by bin weight), read by np.interp between the blocks'
  weighted mean scores (flat beyond the ends: docs/labels.md) at probe
  scores; and the CBPE AUC and accuracy at 0.5 of a few hundred unlabelled
  scores under that map, by a plain double loop over fine bins.

Deterministic (fixed seed); inputs are rounded before anything is computed:

    /usr/bin/python3 tests/golden/make_quality_profile_golden.py > tests/golden/quality_profile.json
"""
import json

import numpy as np
import sklearn
from sklearn.isotonic import isotonic_regression

QUANTILES = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]
FINE_BINS = 1000


def r(a, digits):
    return [round(float(x), digits) for x in a]


def delay_case(name, rng, parts, weights):
    """parts: (count, sampler) pairs; weights: the values weights are drawn from."""
    x = np.concatenate([sampler(rng, count) for count, sampler in parts])
    x = np.array(r(x, 3))
    w = rng.choice(weights, len(x)).astype(np.int64)
    if w.sum() % 2 == 0:  # keep W odd (see above)
        x = np.append(x, round(float(rng.lognormal(5, 1)), 3))
        w = np.append(w, 1)
    assert w.sum() % 2 == 1
    order = rng.permutation(len(x))  # not sorted: the histogram must not care
    x, w = x[order], w[order]
    rep = np.repeat(x, w)
    return {
        "name": name, "delay_ms": list(map(float, x)), "weights": list(map(int, w)),
        "q": QUANTILES,
        "quantile_ms": [float(np.quantile(rep, q, method="inverted_cdf")) for q in QUANTILES],
    }


def bin_of(s):
    # ScoreLabelSummary's rule: (lower, upper] on numpy.linspace edges, 0 in bin 0.
    return np.searchsorted(np.linspace(0, 1, FINE_BINS + 1)[1:-1], s, side="left")


def calibration_case(rng):
    bins = np.sort(rng.choice(FINE_BINS, 60, replace=False))
    scores, labels, weights, intended = [], [], [], []
    for b in bins:
        n = int(rng.integers(5, 40))
        while True:
            # Inside the bin, away from its edges (rounding cannot move a score).
            s = np.array(r((b + 0.05 + 0.9 * rng.random(n)) / FINE_BINS, 7))
            p = 1 / (1 + np.exp(-3 * (s - 0.4)))
            y = (rng.random(n) < p).astype(float)
            if 0 < y.sum() < n:
                break
        scores += list(s)
        intended += [b] * n
        labels += list(y)
        weights += r(0.5 + 2.5 * rng.random(n), 6)
    s, y, w = np.array(scores), np.array(labels), np.array(weights)
    ids = bin_of(s)
    assert (ids == np.array(intended)).all()
    bw = np.array([w[ids == b].sum() for b in bins])
    bpos = np.array([(w * y)[ids == b].sum() for b in bins])
    bss = np.array([(w * s)[ids == b].sum() for b in bins])
    fitted = isotonic_regression(bpos / bw, sample_weight=bw, increasing=True)
    # Runs of equal fitted values are the PAV blocks.
    starts = [0] + [i for i in range(1, len(fitted)) if fitted[i] != fitted[i - 1]]
    ends = starts[1:] + [len(fitted)]
    knot_s = np.array([bss[a:e].sum() / bw[a:e].sum() for a, e in zip(starts, ends)])
    knot_p = np.array([fitted[a] for a in starts])
    assert np.all(np.diff(knot_p) > 1e-9) and len(starts) < len(bins) - 5  # PAV pooled
    probes = sorted(set(r(list(knot_s) + list((knot_s[1:] + knot_s[:-1]) / 2) +
                          list(rng.random(40)) + [0.0, 0.001, 0.9995, 1.0], 9)))
    mapped = [float(np.interp(x, knot_s, knot_p)) for x in probes]

    # CBPE of unlabelled scores (weight 1 each) under that map.
    cur = np.array(r(np.sqrt(rng.random(400)), 6))
    cids = bin_of(cur)
    ub = np.unique(cids)
    cw = np.array([np.sum(cids == b) for b in ub], dtype=float)
    cmean = np.array([cur[cids == b].sum() for b in ub]) / cw
    cp = np.interp(cmean, knot_s, knot_p)
    pos, neg = cw * cp, cw * (1 - cp)
    wins = 0.0
    for i in range(len(ub)):
        for j in range(len(ub)):
            wins += pos[i] * neg[j] * (1.0 if ub[i] > ub[j] else 0.5 if i == j else 0.0)
    auc = wins / (pos.sum() * neg.sum())
    accuracy = float(np.where(cmean >= 0.5, pos, neg).sum() / cw.sum())
    return {
        "scores": list(map(float, s)), "labels": list(map(float, y)),
        "weights": list(map(float, w)),
        "blocks": len(starts), "probe_score": probes, "probe_rate": mapped,
        "current_scores": list(map(float, cur)), "current_auc": float(auc),
        "current_accuracy_at_0_5": accuracy,
    }


def main():
    rng = np.random.default_rng(20261215)
    lognormal = lambda mu, sigma: lambda g, n: g.lognormal(mu, sigma, n)
    out = {
        "generator": f"sklearn {sklearn.__version__}, numpy {np.__version__}",
        "delay": [
            # About an hour, 10% within the clock skew before the event,
            # 6% under 1 ms.
            delay_case("hourly_with_skew", rng,
                       [(2520, lognormal(np.log(3.6e6), 1.5)),
                        (300, lambda g, n: -g.uniform(0, 5000, n)),
                        (180, lambda g, n: g.uniform(0, 1, n))], [1, 2, 5, 10]),
            # 60% immediate: the median is in bin 0 (reads 0).
            delay_case("mostly_immediate", rng,
                       [(1200, lambda g, n: g.uniform(-500, 1, n)),
                        (800, lognormal(np.log(200), 1.0))], [1, 2, 5, 10]),
            # Unweighted, spread over ~30 octaves.
            delay_case("wide_unweighted", rng, [(2999, lognormal(np.log(50), 3.0))], [1]),
        ],
        "calibration": calibration_case(rng),
    }
    print(json.dumps(out, indent=None))


if __name__ == "__main__":
    main()
