#!/usr/bin/env python3
"""Parses exposition's output (stdin) with prometheus_client's text parser and checks the
families, their types, labels and values against what the program did.

Usage: exposition P L | check_exposition.py P L
"""
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("check_exposition.py needs the Prometheus Python client "
             "(Debian: apt-get install python3-prometheus-client; scripts/install-deps.sh)")

pool_calls, lane_calls = int(sys.argv[1]), int(sys.argv[2])
POOL = 'search "main"\\1'
LANE = "ledger"

text = sys.stdin.read()
if not text:
    sys.exit("no exposition on stdin (did the program fail?)")
families = {f.name: f for f in text_string_to_metric_families(text)}
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def samples(family, name=None):
    f = families.get(family)
    if f is None:
        failures.append(f"family {family} is missing")
        return []
    return [s for s in f.samples if name is None or s.name == name]


def value(family, sample, labels):
    for s in samples(family, sample):
        if s.labels == labels:
            return s.value
    failures.append(f"{sample}{labels} is missing")
    return math.nan


# Types: the parser strips _total from a counter's family name.
expected_types = {
    "smartasync_pool_threads": "gauge",
    "smartasync_pool_queue_capacity": "gauge",
    "smartasync_pool_queued": "gauge",
    "smartasync_pool_parked": "gauge",
    "smartasync_pool_running": "gauge",
    "smartasync_pool_blocked_submitters": "gauge",
    "smartasync_pool_submitted": "counter",
    "smartasync_pool_completed": "counter",
    "smartasync_pool_failed": "counter",
    "smartasync_pool_cancelled": "counter",
    "smartasync_pool_expired": "counter",
    "smartasync_pool_timed_out": "counter",
    "smartasync_pool_rejected": "counter",
    "smartasync_pool_slow_calls": "counter",
    "smartasync_pool_threads_added": "counter",
    "smartasync_pool_threads_retired": "counter",
    "smartasync_pool_queue_wait_seconds": "histogram",
    "smartasync_pool_run_time_seconds": "histogram",
    "smartasync_lane_queued": "gauge",
    "smartasync_lane_busy": "gauge",
    "smartasync_lane_blocked_submitters": "gauge",
    "smartasync_lane_submitted": "counter",
    "smartasync_lane_rejected": "counter",
    "smartasync_lane_cancelled": "counter",
    "smartasync_lane_turn_wait_seconds": "histogram",
}
for name, kind in expected_types.items():
    f = families.get(name)
    check(f is not None, f"family {name} is missing")
    if f is not None:
        check(f.type == kind, f"{name} is a {f.type}, not a {kind}")
        check(f.documentation, f"{name} has no HELP text")
check(set(families) == set(expected_types),
      f"unexpected families: {sorted(set(families) - set(expected_types))}")

# Labels: one pool, one lane, the escaped name read back intact, the destroyed pool gone.
for f in families.values():
    for s in f.samples:
        key = "pool" if f.name.startswith("smartasync_pool_") else "lane"
        want = POOL if key == "pool" else LANE
        check(s.labels.get(key) == want, f"{s.name}{s.labels}: label {key} is not {want!r}")

pool = {"pool": POOL}
lane = {"lane": LANE}
# Every call reaches the pool: the lane's too.
all_calls = pool_calls + lane_calls
check(value("smartasync_pool_threads", "smartasync_pool_threads", pool) == 2, "threads")
check(value("smartasync_pool_submitted", "smartasync_pool_submitted_total", pool) == all_calls,
      "pool submitted_total equals the calls made")
check(value("smartasync_pool_completed", "smartasync_pool_completed_total", pool) == all_calls - 1,
      "pool completed_total")
check(value("smartasync_pool_failed", "smartasync_pool_failed_total", pool) == 1, "failed_total")
check(value("smartasync_pool_running", "smartasync_pool_running", pool) == 0, "running")
check(value("smartasync_pool_slow_calls", "smartasync_pool_slow_calls_total", pool) == 0, "slow calls")
check(value("smartasync_lane_submitted", "smartasync_lane_submitted_total", lane) == lane_calls,
      "lane submitted_total equals the calls made")
check(value("smartasync_lane_busy", "smartasync_lane_busy", lane) == 0, "lane busy")

# Histograms: cumulative buckets in increasing `le`, +Inf last and equal to _count.
for family, labels, count in [
    ("smartasync_pool_run_time_seconds", pool, all_calls),
    ("smartasync_pool_queue_wait_seconds", pool, all_calls),
    ("smartasync_lane_turn_wait_seconds", lane, lane_calls),
]:
    buckets = [s for s in samples(family, family + "_bucket")
               if {k: v for k, v in s.labels.items() if k != "le"} == labels]
    bounds = [float(s.labels["le"]) for s in buckets]
    check(len(buckets) == 16, f"{family}: {len(buckets)} buckets, not 16")
    check(bounds == sorted(bounds) and bounds[-1] == math.inf, f"{family}: le not increasing to +Inf")
    counts = [s.value for s in buckets]
    check(counts == sorted(counts), f"{family}: buckets not cumulative")
    check(counts[-1] == count, f"{family}: +Inf bucket {counts[-1]}, not {count}")
    check(value(family, family + "_count", labels) == count, f"{family}_count is not {count}")
    total = value(family, family + "_sum", labels)
    check(0 <= total < 60, f"{family}_sum {total} is not a plausible number of seconds")

if failures:
    print("exposition check failed:", *failures, sep="\n  ", file=sys.stderr)
    print("--- exposition ---", text, sep="\n", file=sys.stderr)
    sys.exit(1)
print(f"exposition ok: {len(families)} families")
