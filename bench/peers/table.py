#!/usr/bin/env python3
"""bench/peers/table.py - one table from scripts/bench-peers.sh's process runs.

Reads DIR/<pass>/<peer>-pool<N>-run<R>.tsv (the TSV rows each peer program appended: group,
variant, metric, median, min, max, unit), and prints per configuration (1 or 64 in flight, pool
of N) and per peer: the median over process runs of each run's median ns per call (min-max over
the runs), calls per second, CPU ns per call (user+sys of the process), and the peer's time and
CPU over smartasync's, paired run by run (run R of a peer ran right after run R of smartasync).
Then the idle pools' CPU right after a burst.

  table.py DIR                    the table, as text
  table.py --markdown DIR         the same in docs/benchmarks.md's format
  table.py --plot FILE DIR        also write FILE: ns per call, one block per pass, for peers.gp
  table.py --tsv FILE DIR         also append the aggregated rows to FILE (results.tsv)
"""
import argparse
import glob
import math
import os
import re
import statistics
import sys

PEERS = ("smartasync", "tokio", "tokioio", "libuv", "python", "nospin")
PLOTTED = PEERS[:5]
# "tokioio" is tokio's runtime with its IO driver enabled, as a server's is: its thread then
# sleeps in epoll_wait like an Asio io_context's, where plain "tokio" parks on a futex.
# "nospin" is smartasync with pool_options::spin_before_park = 0: beside it, what the spin
# buys and costs, the one thing the peers' pools (which never spin) do not do.
LABELS = {"tokioio": "tokio+IO", "nospin": "no spin"}
NAMES = {"tokioio": "tokio, IO driver", "nospin": "smartasync, no spin"}
PASSES = {
    "quiet": "the machine as it is",
    "loaded": "4 busy processes (yes > /dev/null) on the machine",
}
FILE_NAME = re.compile(r"(?P<peer>[a-z]+)-pool(?P<pool>\d+)-run(?P<run>\d+)\.tsv$")
GROUP = re.compile(r"peers, (?P<inflight>\d+) in flight, pool of (?P<pool>\d+)$")
IDLE = re.compile(r"peers, idle after a burst, pool of (?P<pool>\d+)$")


def load(directory):
    """{pass: {"runs": {(inflight, pool, peer): {run: (ns, cpu)}}, "idle": {(pool, peer): [pct]}}}"""
    passes = {}
    for path in sorted(glob.glob(os.path.join(directory, "*", "*.tsv"))):
        m = FILE_NAME.search(os.path.basename(path))
        if not m or m["peer"] not in PEERS:
            continue
        name = os.path.basename(os.path.dirname(path))
        p = passes.setdefault(name, {"runs": {}, "idle": {}})
        peer, run = m["peer"], int(m["run"])
        metrics = {}
        with open(path) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 7:
                    continue
                group, _variant, metric, median = fields[:4]
                g = GROUP.match(group)
                if g:
                    metrics.setdefault((int(g["inflight"]), int(g["pool"])), {})[metric] = float(median)
                i = IDLE.match(group)
                if i and metric == "cpu_percent":
                    p["idle"].setdefault((int(i["pool"]), peer), []).append(float(median))
        for (inflight, pool), values in metrics.items():
            if "ns_per_op" in values and "cpu_ns_per_op" in values:
                # The loop's CPU per call: the share of the wall time its thread ran, times the
                # wall time per call (None from results written before the loop was measured).
                loop = values["ns_per_op"] * values["caller_busy"] / 100 if "caller_busy" in values else None
                p["runs"].setdefault((inflight, pool, peer), {})[run] = (
                    values["ns_per_op"], values["cpu_ns_per_op"], loop)
    return passes


def configurations(p):
    return sorted({(inflight, pool) for inflight, pool, _ in p["runs"]}, key=lambda c: (c[1], c[0]))


def summary(p, inflight, pool, peer):
    """Medians over runs: ns (median, min, max), cpu, loop cpu, the paired ratios to smartasync,
    and the pairs in which smartasync took less time (wins, of pairs)."""
    runs = p["runs"].get((inflight, pool, peer))
    if not runs:
        return None
    ns = [v[0] for v in runs.values()]
    cpu = [v[1] for v in runs.values()]
    loop = [v[2] for v in runs.values() if v[2] is not None]
    ours = p["runs"].get((inflight, pool, "smartasync"), {})
    paired = [r for r in runs if r in ours]
    ratio = statistics.median(runs[r][0] / ours[r][0] for r in paired) if paired else None
    cpu_ratio = statistics.median(runs[r][1] / ours[r][1] for r in paired) if paired else None
    return {
        "ns": (statistics.median(ns), min(ns), max(ns)),
        "cpu": statistics.median(cpu),
        "loop": statistics.median(loop) if loop else None,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "wins": (sum(runs[r][0] > ours[r][0] for r in paired), len(paired)),
        "runs": len(runs),
    }


def rows(p):
    """(inflight, pool, peer, summary) of every peer measured, configuration by configuration."""
    for inflight, pool in configurations(p):
        for peer in PEERS:
            s = summary(p, inflight, pool, peer)
            if s:
                yield inflight, pool, peer, s


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def fmt_ns(v):
    return "-" if v is None else f"{v:,.0f}"


def sign_test(wins, pairs):
    """Two-sided sign test: the chance of a split at least this uneven if neither side were
    faster (each pair a coin toss). Below 0.05, the side that won more pairs is faster."""
    tail = min(wins, pairs - wins)
    p = 2 * sum(math.comb(pairs, k) for k in range(tail + 1)) / 2 ** pairs
    return min(1.0, p)


def fmt_wins(peer, s):
    wins, pairs = s["wins"]
    if peer == "smartasync" or not pairs:
        return "-"
    p = sign_test(wins, pairs)
    return f"{wins}/{pairs} (p {'< 0.01' if p < 0.01 else f'{p:.2f}'})"


def text(passes):
    for name, p in passes.items():
        runs = max((len(v) for v in p["runs"].values()), default=0)
        print(f"\n## Peers: {PASSES.get(name, name)} ({runs} process run(s) each, alternating; "
              "medians over runs of each run's median)")
        print(f"{'configuration':<24} {'peer':<11} {'ns/call':>10} {'(min-max over runs)':>21} "
              f"{'calls/s':>11} {'CPU ns/call':>11} {'loop CPU':>9} {'time/ours':>10} {'CPU/ours':>9} "
              f"{'ours less (sign test)':>21}")
        shown = None
        for inflight, pool, peer, s in rows(p):
            # The configuration on its first row only.
            label = f"{inflight} in flight, pool of {pool}" if (inflight, pool) != shown else ""
            shown = (inflight, pool)
            ns = s["ns"]
            print(f"{label:<24} {LABELS.get(peer, peer):<11} {ns[0]:>10,.0f} {f'({ns[1]:,.0f}-{ns[2]:,.0f})':>21} "
                  f"{1e9 / ns[0]:>11,.0f} {s['cpu']:>11,.0f} {fmt_ns(s['loop']):>9} "
                  f"{fmt_ratio(s['ratio']):>10} {fmt_ratio(s['cpu_ratio']):>9} {fmt_wins(peer, s):>21}")
        for pool in sorted({pool for pool, _ in p["idle"]}):
            cells = ", ".join(f"{LABELS.get(peer, peer)} {statistics.median(p['idle'][(pool, peer)]):.2f} %"
                              for peer in PEERS if (pool, peer) in p["idle"])
            print(f"idle CPU right after a burst, pool of {pool} (% of one core): {cells}")
    print("(loop CPU: ns per call the event loop's thread ran. time/ours, CPU/ours: the peer's ns "
          "and CPU per call over smartasync's, paired run by run; above 1 smartasync is faster or "
          "cheaper. ours less: the pairs in which smartasync took less time, and the two-sided sign "
          "test's p: below 0.05, the side that won more pairs is faster. tokio+IO: tokio's "
          "runtime with its IO driver. no spin: smartasync with spin_before_park = 0)")


def markdown(passes):
    for name, p in passes.items():
        print(f"\n**{PASSES.get(name, name).capitalize()}**\n")
        print("| configuration | peer | ns per call (min-max over runs) | calls/s | CPU ns per call "
              "| loop CPU ns per call | time / smartasync | CPU / smartasync | runs smartasync took less (sign test p) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for inflight, pool, peer, s in rows(p):
            ns = s["ns"]
            who = f"**{peer}**" if peer == "smartasync" else NAMES.get(peer, peer)
            print(f"| {inflight} in flight, pool of {pool} | {who} | {ns[0]:,.0f} "
                  f"({ns[1]:,.0f}-{ns[2]:,.0f}) | {1e9 / ns[0]:,.0f} | {s['cpu']:,.0f} | "
                  f"{fmt_ns(s['loop'])} | {fmt_ratio(s['ratio'])} | {fmt_ratio(s['cpu_ratio'])} | "
                  f"{fmt_wins(peer, s)} |")
        pools = sorted({pool for pool, _ in p["idle"]})
        if pools:
            print("\n| idle CPU right after a burst (% of one core) | "
                  + " | ".join(LABELS.get(peer, peer) for peer in PEERS) + " |")
            print("|---|" + "---:|" * len(PEERS))
            for pool in pools:
                cells = [f"{statistics.median(p['idle'][(pool, peer)]):.2f}"
                         if (pool, peer) in p["idle"] else "-" for peer in PEERS]
                print(f"| pool of {pool} | " + " | ".join(cells) + " |")


def plot_data(passes, path):
    """One block per pass (gnuplot `index`): configuration, then ns per call of each peer."""
    with open(path, "w") as f:
        for name in ("quiet", "loaded"):
            p = passes.get(name)
            if not p:
                continue
            f.write(f"# {PASSES[name]}\n# configuration " + " ".join(PLOTTED) + "\n")
            for inflight, pool in configurations(p):
                cells = []
                for peer in PLOTTED:
                    s = summary(p, inflight, pool, peer)
                    cells.append(f"{s['ns'][0]:.1f}" if s else "NaN")
                f.write(f"\"{inflight} in flight, pool of {pool}\" " + " ".join(cells) + "\n")
            f.write("\n\n")


def tsv(passes, path):
    with open(path, "a") as f:
        for name, p in passes.items():
            prefix = "peers" if name == "quiet" else "peers, 4 busy processes"
            for inflight, pool, peer, s in rows(p):
                group = f"{prefix}, {inflight} in flight, pool of {pool}"
                med, lo, hi = s["ns"]
                f.write(f"{group}\t{peer}\tns_per_op\t{med:.6g}\t{lo:.6g}\t{hi:.6g}\tns\n")
                f.write(f"{group}\t{peer}\tcpu_ns_per_op\t{s['cpu']:.6g}\t{s['cpu']:.6g}\t"
                        f"{s['cpu']:.6g}\tns\n")
                if s["ratio"] is not None and peer != "smartasync":
                    f.write(f"{group}\t{peer}\tratio_this_over_ours\t{s['ratio']:.6g}\t"
                            f"{s['ratio']:.6g}\t{s['ratio']:.6g}\tx\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--plot", metavar="FILE")
    parser.add_argument("--tsv", metavar="FILE")
    args = parser.parse_args()
    passes = load(args.directory)
    if not passes:
        sys.exit(f"{args.directory}: no peer results (<pass>/<peer>-pool<N>-run<R>.tsv)")
    ordered = {name: passes[name] for name in sorted(passes, key=lambda n: (n != "quiet", n))}
    (markdown if args.markdown else text)(ordered)
    if args.plot:
        plot_data(ordered, args.plot)
    if args.tsv:
        tsv(ordered, args.tsv)


if __name__ == "__main__":
    main()
