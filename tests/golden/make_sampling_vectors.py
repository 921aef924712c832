#!/usr/bin/python3
"""Test vectors of driftwatch's sampling rule (docs/sampling.md).

hash = splitmix64_finaliser(fnv1a_64(utf8(event_id)))
unit = (hash >> 11) * 2**-53; an event is in a sample of rate r iff unit < r.

Written from the definitions, independently of the C++ code; the C++ test
(tests/base/sampling_test.cc) checks it computes the same values.

  tests/golden/make_sampling_vectors.py > tests/golden/sampling.json
"""
import json

MASK = (1 << 64) - 1


def fnv1a_64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def splitmix64_finaliser(h: int) -> int:
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & MASK
    h ^= h >> 31
    return h


def sample_hash(event_id: str) -> int:
    return splitmix64_finaliser(fnv1a_64(event_id.encode("utf-8")))


def sample_unit(event_id: str) -> float:
    return (sample_hash(event_id) >> 11) * 2.0 ** -53


def main():
    ids = ["", "a", "e0", "e1", "event-000001", "order:2024-06-01:77", "ünïcødé-id",
           "0123456789abcdef0123456789abcdef", "x" * 300]
    vectors = [{"event_id": i, "hash": f"{sample_hash(i):016x}", "unit": sample_unit(i),
                "in_0.25": sample_unit(i) < 0.25} for i in ids]
    # The share of e0..e99999 in a 0.25 sample: ~0.25 (a check of uniformity).
    n = 100000
    share = sum(sample_unit(f"e{k}") < 0.25 for k in range(n)) / n
    print(json.dumps({"vectors": vectors, "share_e0_e99999_at_0.25": share}, indent=1,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
