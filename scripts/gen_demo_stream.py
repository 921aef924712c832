#!/usr/bin/env python3
"""Writes the live demo's model schema, event stream and delayed labels.

A loan-default model with three numeric features, a categorical one, a
binary score, two slice keys and binary labels. Events fill two 20-minute
event-time ranges: a baseline period and a current period (the 20
minutes ending 5 minutes before "now") in which only platform=android
drifts (income up; scores up and squeezed towards 0.5, so the model is
less sure there). A third file holds the last 4.5 minutes before "now"
with the drift gone, which the demo sends last so that its alerts resolve.

Quality summaries are kept per event-time hour and quality windows are
widened to whole hours (docs/labels.md), so the baseline period is placed
in the hour before the one the current period starts in: the two never
share an hour, and `quality --window 20m` sees only the current period.

Labels (the true outcome, known some minutes later): label time = event
time + a lognormal delay (median ~2 min); a label whose time would be after
"now" is not known yet and is left out, so every label time lies in
[event time, now]. Baseline labels of every slice, and the current labels
of ios and web, follow the score (label ~ Bernoulli(score): calibrated);
android's current labels barely depend on the score and are rarer than it
says (worse AUC and ECE). Stdlib only, seeded.

Writes OUT_DIR/schema.json, events.csv, labels_baseline.csv,
labels_current_1.csv (the first ~40% of the current labels by label time),
labels_current_2.csv (the rest) and layout.env (the periods, for demo.sh).

usage: gen_demo_stream.py OUT_DIR NOW_MS
"""
import csv
import json
import math
import random
import sys

PLATFORMS = ["ios", "android", "web"]
APP_VERSIONS = ["7.1", "7.2", "7.3", "8.0"]
# 8.0 is the newest release, still a small share of traffic; in the current
# period its client stops sending tenure_months (an instrumentation failure,
# not a change in the users).
APP_WEIGHTS = [0.36, 0.30, 0.28, 0.06]
COUNTRIES = ["US", "DE", "BR", "IN", "JP"]
MINUTE = 60_000
HOUR = 60 * MINUTE
EVENTS_PER_PERIOD = 60_000
RECOVERY_EVENTS = 15_000
FIRST_WAVE = 0.4


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def features(rng, drifted):
    age = max(18, int(rng.gauss(41, 12)))
    income = math.exp(rng.gauss(10.9 if drifted else 10.5, 0.5))
    tenure = rng.randint(0, 120)
    logit = rng.gauss(0.4, 0.5) if drifted else rng.gauss(0.0, 1.0)
    return age, income, tenure, sigmoid(logit)


def label_for(rng, score, degraded):
    if degraded:
        # The world moved under the model: the outcome hardly follows the
        # score, and defaults are rarer than it predicts.
        p = sigmoid(0.35 * math.log(score / (1 - score)) - 0.6)
    else:
        p = score
    return 1 if rng.random() < p else 0


def label_delay_ms(rng):
    # lognormal minutes: median 2 min, p95 ~9 min
    return max(1, int(rng.lognormvariate(math.log(2.0), 0.9) * MINUTE))


def write_labels(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event_id", "value", "label_time_ms"])
        w.writerows(rows)


def main():
    out_dir, now_ms = sys.argv[1], int(sys.argv[2])
    current = (now_ms - 25 * MINUTE, now_ms - 5 * MINUTE)
    current_hour = current[0] // HOUR * HOUR
    baseline = (current_hour - 40 * MINUTE, current_hour - 20 * MINUTE)

    rng = random.Random(42)
    label_rng = random.Random(7)
    reference = [features(rng, False) for _ in range(2000)]
    schema = {
        "model": {"modelId": "loan-default", "modelVersion": "v1"},
        "features": [
            {"name": "age", "kind": "FEATURE_KIND_NUMERIC",
             "referenceSample": [r[0] for r in reference]},
            {"name": "income", "kind": "FEATURE_KIND_NUMERIC",
             "referenceSample": [round(r[1], 2) for r in reference]},
            {"name": "tenure_months", "kind": "FEATURE_KIND_NUMERIC", "nullable": True,
             "referenceSample": [r[2] for r in reference]},
            {"name": "country", "kind": "FEATURE_KIND_CATEGORICAL"},
        ],
        "sliceKeys": [{"key": "platform"}, {"key": "app_version"}],
        "scoreKind": "SCORE_KIND_BINARY_PROBABILITY",
        "scoreNames": ["score"],
        "labelKind": "LABEL_KIND_BINARY",
        "labelJoinRate": 1.0,
        "decisionThreshold": 0.5,
    }
    with open(f"{out_dir}/schema.json", "w") as f:
        json.dump(schema, f)

    baseline_labels, current_labels = [], []
    with open(f"{out_dir}/events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event_id", "event_time_ms", "age", "income", "tenure_months", "country",
                    "score", "platform", "app_version"])
        n = 0
        for (start, end), drift_period in ((baseline, False), (current, True)):
            labels = current_labels if drift_period else baseline_labels
            for i in range(EVENTS_PER_PERIOD):
                t = start + (end - start) * i // EVENTS_PER_PERIOD
                platform = rng.choices(PLATFORMS, weights=[0.45, 0.35, 0.2])[0]
                drifted = drift_period and platform == "android"
                age, income, tenure, score = features(rng, drifted)
                score = round(score, 6)
                event_id = f"evt-{n:07d}"
                app = rng.choices(APP_VERSIONS, weights=APP_WEIGHTS)[0]
                broken = drift_period and app == "8.0"
                w.writerow([event_id, t, age, round(income, 2), "" if broken else tenure,
                            rng.choice(COUNTRIES), score, platform, app])
                n += 1
                label_time = t + label_delay_ms(label_rng)
                value = label_for(label_rng, score, drifted)
                if label_time <= now_ms:  # later ones are not known yet
                    labels.append((event_id, value, label_time))

    # The traffic back to normal: the 4.5 minutes before now, android as
    # the baseline. Sent last, they move the watermark past the drift, and
    # the demo's 3-minute evaluator window (ending at the watermark) then
    # holds only them, so the drift alerts resolve.
    recovery = (now_ms - 5 * MINUTE, now_ms - 30_000)
    with open(f"{out_dir}/events_recovered.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["event_id", "event_time_ms", "age", "income", "tenure_months", "country",
                    "score", "platform", "app_version"])
        for i in range(RECOVERY_EVENTS):
            t = recovery[0] + (recovery[1] - recovery[0]) * i // RECOVERY_EVENTS
            platform = rng.choices(PLATFORMS, weights=[0.45, 0.35, 0.2])[0]
            age, income, tenure, score = features(rng, False)
            w.writerow([f"rec-{i:07d}", t, age, round(income, 2), tenure, rng.choice(COUNTRIES),
                        round(score, 6), platform,
                        rng.choices(APP_VERSIONS, weights=APP_WEIGHTS)[0]])

    write_labels(f"{out_dir}/labels_baseline.csv", baseline_labels)
    current_labels.sort(key=lambda r: r[2])
    cut = int(len(current_labels) * FIRST_WAVE)
    write_labels(f"{out_dir}/labels_current_1.csv", current_labels[:cut])
    write_labels(f"{out_dir}/labels_current_2.csv", current_labels[cut:])

    with open(f"{out_dir}/layout.env", "w") as f:
        f.write(f"BASELINE_START_MS={baseline[0]}\nBASELINE_END_MS={baseline[1]}\n"
                f"CURRENT_START_MS={current[0]}\n"
                f"BASELINE_LABELS={len(baseline_labels)}\n"
                f"CURRENT_LABELS_1={cut}\nCURRENT_LABELS_2={len(current_labels) - cut}\n"
                f"WAVE_1_UNTIL_MS={current_labels[cut - 1][2]}\n")


if __name__ == "__main__":
    main()
