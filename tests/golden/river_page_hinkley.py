"""Pure-Python port of river.drift.PageHinkley (river >= 0.19), for golden files.

river cannot be installed here (no pip), so this module restates its update
rule, operation for operation, so that the detection indices are the ones
river would give. Source read: `river/drift/page_hinkley.py` of
online-ml/river, the version with the `mode` parameter ("up", "down",
"both"), `stats.Mean` for the running mean and `_test_increase` /
`_test_decrease` / `_test_both` (the form shipped from 0.19 on), together with
`river/stats/mean.py` (`Mean.update`: n += w; mean += (w / n) * (x - mean)).

River's rules, paraphrased (our code, not river's):
  * `_reset()`: a fresh Mean, sum_increase = sum_decrease = 0,
    min_increase = +inf, max_decrease = -1, drift_detected = False.
  * `update(x)`:
      1. if drift_detected (set by the previous update): `_reset()` first;
         so the reset happens lazily, on the update after a detection;
      2. the running mean is updated with x, then dev = x - mean (the mean
         already includes x);
      3. sum_increase = alpha * sum_increase + dev - delta
         sum_decrease = alpha * sum_decrease + dev + delta
      4. min_increase = min(min_increase, sum_increase),
         max_decrease = max(max_decrease, sum_decrease), both BEFORE the test;
      5. only if mean.n >= min_instances (the count includes x):
            test_increase = sum_increase - min_increase
            test_decrease = max_decrease - sum_decrease
            drift_detected = test_increase > threshold      (mode "up")
                           | test_decrease > threshold      (mode "down")
                           | either                         (mode "both")
         (strict >); below min_instances drift_detected keeps its value,
         which is False after a reset.
Defaults: min_instances=30, delta=0.005, threshold=50, alpha=1-1e-4, mode="both".

One documented difference in driftwatch's C++ (not in this port): non-finite
inputs are ignored there; the golden streams contain none.
"""

import math

MODES = ("up", "down", "both")


class PageHinkley:
    def __init__(self, min_instances=30, delta=0.005, threshold=50.0, alpha=1 - 0.0001,
                 mode="both"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._reset()

    def _reset(self):
        self.n = 0.0  # river's Mean.n becomes a float once w=1.0 is added
        self.mean = 0.0
        self.sum_increase = 0.0
        self.sum_decrease = 0.0
        self.min_increase = math.inf
        self.max_decrease = -1.0
        self.drift_detected = False

    def update(self, x):
        if self.drift_detected:
            self._reset()
        self.n += 1.0
        self.mean += (1.0 / self.n) * (x - self.mean)
        dev = x - self.mean
        self.sum_increase = self.alpha * self.sum_increase + dev - self.delta
        self.sum_decrease = self.alpha * self.sum_decrease + dev + self.delta
        if self.sum_increase < self.min_increase:
            self.min_increase = self.sum_increase
        if self.sum_decrease > self.max_decrease:
            self.max_decrease = self.sum_decrease
        if self.n >= self.min_instances:
            up = self.sum_increase - self.min_increase > self.threshold
            down = self.max_decrease - self.sum_decrease > self.threshold
            if self.mode == "up":
                self.drift_detected = up
            elif self.mode == "down":
                self.drift_detected = down
            else:
                self.drift_detected = up or down
        return self.drift_detected


def detections(series, **params):
    """0-based indices at which a fresh detector reports drift."""
    ph = PageHinkley(**params)
    return [i for i, x in enumerate(series) if ph.update(float(x))]


if __name__ == "__main__":
    # The example in river's docstring: a stream from {0, 1}, then from
    # {4, ..., 7}; river documents a single detection at index 1006.
    import random

    rng = random.Random(12345)
    stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    print(detections(stream))
