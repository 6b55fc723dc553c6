#!/usr/bin/env python3
"""bench/python_to_thread.py - the cross-language anchor for bench/offload.cpp.

The same trivial round trip as smartasync's benchmark, written the way Python users offload a
blocking call: `await asyncio.to_thread(f, x)` (the loop's default ThreadPoolExecutor), with one
call in flight and with 64 coroutines in flight. Same method as the C++ programs: calibrate,
repeat, report the median and min/max; optional rows appended to --out in the same TSV format.

With --pool N it is the Python peer of scripts/bench-peers.sh: the loop's default executor is a
ThreadPoolExecutor(max_workers=N), the runs follow bench/harness.hpp (rounds of ~150 ms, CPU
time of the process per call), the rows go to the peers' groups, and the idle pool's CPU after a
burst is measured too.
"""
import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
import resource
import statistics
import sys
import time

PEER_VARIANT = "python asyncio.to_thread"


def trivial(x):
    return x + 1


async def sequential(n):
    for i in range(n):
        await asyncio.to_thread(trivial, i)


async def concurrent(n, inflight=64):
    async def chain(per):
        for i in range(per):
            await asyncio.to_thread(trivial, i)

    await asyncio.gather(*(chain(n // inflight) for _ in range(inflight)))


def process_usage():
    """User + system CPU seconds of the whole process, and its voluntary context switches."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, u.ru_nvcsw


async def timed_usage(fn, n):
    """(wall ns, CPU ns, sleeps) per operation over one run of n operations, and the % of the
    wall time the loop's thread (this one) was on a CPU."""
    cpu0, sleeps0 = process_usage()
    loop0 = time.thread_time()
    start = time.perf_counter()
    await fn(n)
    wall = time.perf_counter() - start
    loop_cpu = time.thread_time() - loop0
    cpu1, sleeps1 = process_usage()
    return (wall * 1e9 / n, (cpu1 - cpu0) * 1e9 / n, (sleeps1 - sleeps0) / n,
            100 * loop_cpu / wall)


async def timed(fn, n):
    return (await timed_usage(fn, n))[0]


async def measure(fn, rounds, target, pool=None, usage=False):
    # One event loop (and one default executor, already warm) for every run, as in a server.
    if pool is not None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=pool))
    n = 64
    while True:  # calibrate: grow until one run takes a tenth of the target
        per_op = await timed(fn, n)
        if per_op * n >= target * 1e9 / 10:
            break
        n *= 4
    n = max(64, int(target * 1e9 / per_op) // 64 * 64)
    if usage:
        return [await timed_usage(fn, n) for _ in range(rounds)]
    return [await timed(fn, n) for _ in range(rounds)]


async def idle_after_burst(pool, seconds):
    """% of one core the process uses over `seconds` right after 1000 sequential calls."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=pool))
    await sequential(1000)
    cpu0, _ = process_usage()
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    return 100 * (process_usage()[0] - cpu0) / (time.perf_counter() - start)


def spread(v):
    return statistics.median(v), min(v), max(v)


def peer(args):
    """The Python peer of scripts/bench-peers.sh: a pool of args.pool threads."""
    rounds, target, idle_seconds = (min(args.rounds, 3), 0.02, 0.3) if args.quick \
        else (args.rounds, 0.15, 1.0)
    pool = args.pool
    print(f"# Python {sys.version.split()[0]} asyncio.to_thread round trip of a trivial "
          f"function, ThreadPoolExecutor(max_workers={pool}) ({rounds} rounds, medians)")
    rows = []
    for inflight, fn in ((1, sequential), (64, concurrent)):
        group = f"peers, {inflight} in flight, pool of {pool}"
        samples = asyncio.run(measure(fn, rounds, target, pool=pool, usage=True))
        t, cpu, sleeps, busy = (spread([s[i] for s in samples]) for i in range(4))
        print(f"\n## {group}")
        print(f"{'variant':<34} {'median ns/op':>12} {'min':>12} {'max':>12} {'ops/s (med)':>12} "
              f"{'cpu ns/op':>10} {'sleeps/op':>10} {'caller%':>7}")
        print(f"{PEER_VARIANT:<34} {t[0]:>12.1f} {t[1]:>12.1f} {t[2]:>12.1f} {1e9 / t[0]:>12.0f} "
              f"{cpu[0]:>10.0f} {sleeps[0]:>10.3f} {busy[0]:>7.0f}")
        for metric, (med, lo, hi), unit in (("ns_per_op", t, "ns"), ("cpu_ns_per_op", cpu, "ns"),
                                            ("sleeps_per_op", sleeps, ""), ("caller_busy", busy, "%")):
            rows.append(f"{group}\t{PEER_VARIANT}\t{metric}\t{med:.6g}\t{lo:.6g}\t{hi:.6g}\t{unit}\n")
    idle = asyncio.run(idle_after_burst(pool, idle_seconds))
    print(f"\nidle CPU over {idle_seconds} s after a burst, pool of {pool}: {idle:.2f} % of one core")
    rows.append(f"peers, idle after a burst, pool of {pool}\t{PEER_VARIANT}\tcpu_percent\t"
                f"{idle:.6g}\t{idle:.6g}\t{idle:.6g}\t%\n")
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; 10 with --pool)")
    parser.add_argument("--out")
    parser.add_argument("--pool", type=int, help="threads of the loop's default executor; "
                        "measure as the peer of scripts/bench-peers.sh")
    args = parser.parse_args()
    if args.pool is not None:
        args.rounds = 10 if args.rounds is None else args.rounds
        if args.pool < 1 or args.rounds < 1:
            parser.error("--pool and --rounds need a positive number")
        peer(args)
        return
    rounds, target = (3, 0.05) if args.quick else (args.rounds or 7, 0.3)

    print(f"# Python {sys.version.split()[0]} asyncio.to_thread round trip of a trivial "
          f"function ({rounds} rounds, medians)")
    print(f"{'variant':<34} {'median ns/op':>12} {'min':>12} {'max':>12} {'ops/s (med)':>12}")
    rows = []
    for name, fn in (("asyncio.to_thread, 1 in flight", sequential),
                     ("asyncio.to_thread, 64 in flight", concurrent)):
        v = asyncio.run(measure(fn, rounds, target))
        med = statistics.median(v)
        print(f"{name:<34} {med:>12.1f} {min(v):>12.1f} {max(v):>12.1f} {1e9 / med:>12.0f}")
        rows.append(f"python\t{name}\tns_per_op\t{med:.6g}\t{min(v):.6g}\t{max(v):.6g}\tns\n")
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(rows)


if __name__ == "__main__":
    main()
