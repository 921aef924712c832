#!/usr/bin/python3
"""Golden values for the regression and multiclass quality summaries
(detectors/quality.h: RegressionErrorSummary, MulticlassSummary), from
scikit-learn 1.2 / numpy. Inputs are rounded before anything is computed
and stored in the JSON. Deterministic (fixed seeds):

    /usr/bin/python3 tests/golden/make_label_quality_golden.py > tests/golden/label_quality.json
"""
import json

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, log_loss, mean_absolute_error,
                             mean_squared_error, roc_auc_score)


def r6(a):
    return [round(float(x), 6) for x in a]


def regression_case(name, rng, n, weighted):
    target = np.array(r6(rng.normal(10, 3, n)))
    prediction = np.array(r6(target + rng.normal(0.4, 1.5, n)))
    w = np.array(r6(rng.choice([1.0, 2.0, 10.0], n))) if weighted else np.ones(n)
    return {
        "name": name, "prediction": list(prediction), "target": list(target),
        "weights": list(w) if weighted else None,
        "mae": mean_absolute_error(target, prediction, sample_weight=w),
        "rmse": mean_squared_error(target, prediction, sample_weight=w, squared=False),
        "bias": float(np.average(prediction - target, weights=w)),
    }


def multiclass_case(name, rng, n, k, weighted):
    logits = rng.normal(0, 1, (n, k))
    y = np.array([rng.choice(k, p=np.exp(l) / np.exp(l).sum()) for l in logits * 1.5])
    p = np.exp(logits)
    p = p / p.sum(axis=1, keepdims=True)
    p = np.round(p, 3)  # 3 decimals: scores on the 1000 fine bins' edges are avoided below
    p[:, -1] = np.round(1 - p[:, :-1].sum(axis=1), 3)
    p = np.clip(p, 0, 1)
    w = np.array(r6(rng.choice([1.0, 2.0, 10.0], n))) if weighted else np.ones(n)
    return {
        "name": name, "classes": k, "probabilities": [r6(row) for row in p],
        "labels": [int(v) for v in y], "weights": list(w) if weighted else None,
        "macro_auc": roc_auc_score(y, p, multi_class="ovr", average="macro", sample_weight=w,
                                   labels=list(range(k))),
        "accuracy": accuracy_score(y, p.argmax(axis=1), sample_weight=w),
        "log_loss": log_loss(y, p, sample_weight=w, labels=list(range(k))),
    }


def main():
    rng = np.random.default_rng(20261202)
    out = {
        "generator": f"sklearn {sklearn.__version__}, numpy {np.__version__}",
        "regression": [regression_case("unweighted", rng, 500, False),
                       regression_case("weighted", rng, 500, True)],
        "multiclass": [multiclass_case("three_unweighted", rng, 600, 3, False),
                       multiclass_case("four_weighted", rng, 600, 4, True)],
    }
    print(json.dumps(out, indent=None))


if __name__ == "__main__":
    main()
