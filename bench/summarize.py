#!/usr/bin/env python3
"""bench/summarize.py - the headline numbers of one scripts/bench.sh run, checked against goals.

Reads the TSV rows every benchmark program appended (group, variant, metric, median, min, max,
unit) and prints smartasync's ratios to its baselines from the same run, and whether each goal
in docs/benchmarks.md is met. It only reports; it never fails the run.
`summarize.py --markdown results.tsv` prints the offload tables in docs/benchmarks.md's format.
"""
import sys
from collections import defaultdict

OURS = "smartasync"
LEAN = "lean async_initiate+thread_pool"
FLOOR = "floor: always-spinning thread"
NO_SPIN = "smartasync, no spin (spin_before_park=0)"


def load(path):
    rows = {}
    groups = defaultdict(list)
    with open(path) as f:
        for line in f:
            group, variant, metric, med, lo, hi, unit = line.rstrip("\n").split("\t")
            rows[(group, variant, metric)] = (float(med), float(lo), float(hi))
            if variant not in groups[group]:
                groups[group].append(variant)
    return rows, groups


def verdict(ok):
    return "met" if ok else "MISSED"


def main(path):
    rows, groups = load(path)

    def get(group, variant, metric):
        return rows.get((group, variant, metric))

    def ours_in(group):
        return next(v for v in groups[group] if v.startswith(OURS))

    print("\n# Summary: smartasync against its baselines (medians of the same run)\n")
    goals = []

    off = get("detection, off-loop", "is_running_event_loop off-loop", "ns_per_op")
    on = get("detection, on-loop", "is_running_event_loop on-loop", "ns_per_op")
    if off and on:
        print(f"detection: {off[0]:.2f} ns/call off-loop, {on[0]:.2f} ns/call on-loop "
              "(including the loop and barrier)")
        goals.append(("detection < 5 ns", max(off[0], on[0]) < 5,
                      f"{max(off[0], on[0]):.2f} ns"))
    sync = get("sync form vs direct call, off-loop", "trivial(x) direct call", "ratio_ours_over")
    if sync:
        print(f"sync form: {sync[0]:.3f}x a direct call of a trivial function "
              f"({sync[1]:.3f}-{sync[2]:.3f})")
        goals.append(("sync form <= 1.05x direct call (trivial function)", sync[0] <= 1.05,
                      f"{sync[0]:.3f}x"))
    sync100 = get("sync form vs direct call, small function (~70 ns), off-loop",
                  "small_work(x) direct call", "ratio_ours_over")
    if sync100:
        print(f"sync form: {sync100[0]:.3f}x a direct call of a small (~70 ns) function "
              f"({sync100[1]:.3f}-{sync100[2]:.3f})")
        goals.append(("sync form <= 1.05x direct call (small ~70 ns function)", sync100[0] <= 1.05,
                      f"{sync100[0]:.3f}x"))
    chained = get("sync form vs direct call, small function (~70 ns) chained, off-loop",
                  "small_work(x) direct call, chained", "ratio_ours_over")
    if chained:
        print(f"sync form: {chained[0]:.3f}x a direct call of a small (~70 ns) function, chained "
              f"calls ({chained[1]:.3f}-{chained[2]:.3f})")
        goals.append(("sync form <= 1.05x direct call (small function, chained calls)",
                      chained[0] <= 1.05, f"{chained[0]:.3f}x"))

    print(f"\n{'configuration':<36} {'ours ns/op':>11} {'lean ns/op':>11} {'ours/lean':>10} "
          f"{'throughput':>11} {'co_spawn':>9} {'std::async':>11}")
    worst = 0.0
    for group in groups:
        if not get(group, LEAN, "ratio_ours_over"):
            continue
        ours = ours_in(group)
        t_ours = get(group, ours, "ns_per_op")[0]
        t_lean = get(group, LEAN, "ns_per_op")[0]
        ratio = get(group, LEAN, "ratio_ours_over")[0]
        worst = max(worst, ratio)
        cells = []
        for base in ("co_spawn(thread_pool, use_awaitable)", "std::async(...).get()"):
            r = get(group, base, "ratio_ours_over")
            cells.append(f"{r[0]:.2f}x" if r else "-")
        print(f"{group:<36} {t_ours:>11.0f} {t_lean:>11.0f} {ratio:>9.2f}x {1 / ratio:>10.2f}x "
              f"{cells[0]:>9} {cells[1]:>11}")
        if group.startswith("await, 1 in flight"):
            goals.append((f"aim: {group}: latency <= 0.6x lean", ratio <= 0.6, f"{ratio:.2f}x"))
        if group.startswith("await, 64 in flight"):
            goals.append((f"aim: {group}: throughput >= 1.3x lean", 1 / ratio >= 1.3,
                          f"{1 / ratio:.2f}x"))
    for group in groups:
        r = get(group, NO_SPIN, "ratio_ours_over")
        if r:
            cpu_ours = get(group, ours_in(group), "cpu_ns_per_op")[0]
            cpu_no_spin = get(group, NO_SPIN, "cpu_ns_per_op")[0]
            print(f"spin_before_park 25 us vs 0, {group}: {r[0]:.2f}x the time per round trip, "
                  f"{cpu_ours / cpu_no_spin:.2f}x the CPU ({cpu_ours:.0f} vs {cpu_no_spin:.0f} ns/op)")
    if worst:
        goals.append(("floor: never worse than 1.10x lean (any configuration)", worst <= 1.10,
                      f"worst {worst:.2f}x"))
    print("(ours/lean: paired per-round ratio of ns/op, lower is better; throughput = its inverse;"
          " co_spawn, std::async columns: ours/that)")

    idle = get("idle cpu", "smartasync blocking_pool{4}", "cpu_percent")
    if idle:
        print(f"\nidle pool after a burst: {idle[0]:.2f} % of one core")
        goals.append(("idle pool ~0% CPU (< 0.5%)", idle[0] < 0.5, f"{idle[0]:.2f} %"))

    hb_idle = get("heartbeat", "idle", "lag_p99_us")
    hb_off = get("heartbeat", "offload", "lag_p99_us")
    hb_in = get("heartbeat", "inline", "lag_p99_us")
    if hb_idle and hb_off and hb_in:
        print(f"heartbeat p99 lag: idle {hb_idle[0]:.0f} us, offloaded {hb_off[0]:.0f} us, "
              f"inline {hb_in[0]:.0f} us")
        goals.append(("heartbeat p99 offloaded within 10% of idle", hb_off[0] <= 1.10 * hb_idle[0],
                      f"{hb_off[0] / hb_idle[0]:.2f}x idle"))

    mem = get("memory", "smartasync w.async_call(x, callback)", "bytes_per_queued_op")
    mem_lean = get("memory", LEAN, "bytes_per_queued_op")
    if mem and mem_lean:
        print(f"heap per queued operation: {mem[0]:.0f} bytes (lean {mem_lean[0]:.0f})")

    for inflight in ("1", "64"):
        py = get("python", f"asyncio.to_thread, {inflight} in flight", "ns_per_op")
        group = next((g for g in groups if g == f"await, {inflight} in flight, pool of 2"), None) \
            or next((g for g in groups if g.startswith(f"await, {inflight} in flight")), None)
        if py and group:
            ours = get(group, ours_in(group), "ns_per_op")[0]
            print(f"python asyncio.to_thread, {inflight} in flight: {py[0]:.0f} ns/op = "
                  f"{py[0] / ours:.1f}x smartasync ({group})")
            if inflight == "1":
                goals.append((">= 50x faster than asyncio.to_thread per sequential round trip",
                              py[0] / ours >= 50, f"{py[0] / ours:.1f}x"))
                floor = get(group, FLOOR, "ns_per_op")
                if floor:
                    print(f"  the floor (a thread that never sleeps, the loop wakes once) is "
                          f"{floor[0]:.0f} ns/op: at most {py[0] / floor[0]:.1f}x asyncio.to_thread "
                          f"for any design that lets the loop sleep")

    peer_groups = [g for g in groups if g.startswith("peers") and "idle" not in g]
    if peer_groups:
        print("\npeers (scripts/bench-peers.sh), ns per call of each over smartasync's, paired per "
              "process run:")
        for group in peer_groups:
            cells = []
            for peer in ("tokio", "libuv", "python", "nospin"):
                r = get(group, peer, "ratio_this_over_ours")
                if r:
                    cells.append(f"{peer.replace('nospin', 'smartasync without its spin')} {r[0]:.2f}x")
            print(f"  {group}: " + ", ".join(cells))

    print("\n# Goals")
    for name, ok, value in goals:
        print(f"  {verdict(ok):<7} {name}: {value}")


def markdown(path):
    """The offload tables of docs/benchmarks.md, from one run's results.tsv."""
    rows, groups = load(path)
    print("| configuration | variant | median ns/op | min | max | round trips/s | CPU ns/op | "
          "smartasync / this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for group in groups:
        if not rows.get((group, groups[group][0], "ns_per_op")) or group == "python":
            continue
        if not group.startswith(("await", "callback", "use_future")):
            continue
        for variant in groups[group]:
            t = rows[(group, variant, "ns_per_op")]
            cpu = rows[(group, variant, "cpu_ns_per_op")]
            r = rows.get((group, variant, "ratio_ours_over"))
            ratio = f"{r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})" if r else "-"
            name = f"**{variant}**" if variant == groups[group][0] else variant
            print(f"| {group} | {name} | {t[0]:,.0f} | {t[1]:,.0f} | {t[2]:,.0f} | "
                  f"{1e9 / t[0]:,.0f} | {cpu[0]:,.0f} | {ratio} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--markdown":
        markdown(sys.argv[2] if len(sys.argv) > 2 else "results.tsv")
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "results.tsv")
